"""The shared page helpers: URL-bound controls, reset, non-finite display."""

import numpy as np
from streamlit.testing.v1 import AppTest

from ui.figures import charts
from ui.layout import format_value

PAGE = """
import numpy as np
import ui

CONTROLS = ui.Controls("demo", [
    ui.Slider("x", "x", 2.0, low=0.0, high=5.0, step=0.5),
    ui.Choice("mode", "mode", "b", options=("a", "b", "c"), widget="selectbox"),
])
ui.header("Demo", r"L = x^2", "Move the slider.")
values = CONTROLS.render(columns=2)
x = values.x
ui.reset_button("demo")
ui.metric("loss", x * x)
ui.metric("broken", float("nan"))
ui.nonfinite_note("loss curve", np.array([1.0, np.nan, np.inf]))
ui.plot(ui.charts.line([1, 2, 3], {"loss": [1.0, np.nan, 3.0]}, title="t",
        x_title="x", y_title="y", marker_x=x))
"""


def test_controls_reset_and_nonfinite_display():
    at = AppTest.from_string(PAGE, default_timeout=30).run()
    assert not at.exception
    assert at.metric[0].value == "4"
    assert at.metric[1].value == "NaN ⚠"
    assert "2 of 3 values are not finite" in at.warning[0].value
    at.slider(key="demo_x").set_value(3.0)
    at.selectbox(key="demo_mode").set_value("c")
    at.run()
    assert at.metric[0].value == "9"
    at.button(key="reset_demo").click().run()
    assert at.slider(key="demo_x").value == 2.0
    assert at.selectbox(key="demo_mode").value == "b"
    assert at.metric[0].value == "4"


def test_format_value_names_nonfinite():
    assert format_value(np.nan) == "NaN ⚠"
    assert format_value(np.inf) == "+Inf ⚠"
    assert format_value(-np.inf) == "-Inf ⚠"
    assert format_value(0.123456) == "0.1235"


def test_line_chart_marks_nonfinite_points_instead_of_dropping_them():
    fig = charts.line(
        [1, 2, 3, 4],
        {"naive": [0.5, np.nan, np.inf, 0.1]},
        title="t",
        x_title="x",
        y_title="y",
    )
    marks = [t for t in fig.data if t.mode == "markers"]
    assert len(marks) == 1
    assert list(marks[0].x) == [2.0, 3.0]
    assert "2 of 4" in marks[0].name
    assert fig.layout.title.text == "t" and fig.layout.xaxis.title.text == "x"


def test_every_chart_is_a_valid_plotly_figure():
    import plotly.graph_objects as go

    figures = [
        charts.line(
            [1, 2, 3],
            {"a": [1.0, np.nan, 2.0], "b": [1, 2, 3]},
            title="t",
            x_title="x",
            y_title="y",
            marker_x=2,
            log_y=True,
        ),
        charts.heatmap(
            [[1.0, -np.inf], [np.nan, 0.5]],
            x_labels=["a", "b"],
            y_labels=[0, 1],
            title="t",
            x_title="x",
            y_title="y",
        ),
        charts.bars(
            ["a", "b"], {"s": [1.0, np.inf]}, title="t", x_title="x", y_title="y"
        ),
        charts.histogram(
            {"h": np.arange(10.0)}, title="t", x_title="x", vlines={"mean": 4.5}
        ),
    ]
    for fig in figures:
        # Validation the builders skip for speed: the dicts must pass it.
        validated = go.Figure(fig.to_dict())
        assert validated.layout.title.text == "t"
        assert validated.layout.xaxis.title.text == "x"


def test_marker_label_sits_on_the_marker_on_a_log_axis():
    fig = charts.line(
        [1, 10, 100],
        {"a": [1, 2, 3]},
        title="t",
        x_title="x",
        y_title="y",
        marker_x=100,
        log_x=True,
    )
    assert fig.layout.shapes[0].x0 == 100
    assert fig.layout.annotations[0].x == 2.0


def test_sweep_marks_the_setting_and_shades_the_nonfinite_end_either_way():
    from ui.figures import sweep

    x = [0.1, 1.0, 10.0, 100.0]
    high = sweep(x, {"naive": [1.0, 0.5, np.nan, np.nan]}, title="t", x_title="k",
                 y_title="p", marker=1.0, nonfinite_from=10.0, log_x=True)  # fmt: skip
    (rect,) = [s for s in high.layout.shapes if s.type == "rect"]
    assert (rect.x0, rect.x1) == (10.0, 100.0)
    (line,) = [s for s in high.layout.shapes if s.type == "line"]
    assert line.x0 == line.x1 == 1.0
    # On a log axis the labels sit at log10 of the value (plotly.py#2580).
    assert sorted(a.x for a in high.layout.annotations) == [0.0, 1.0]
    low = sweep(x, {"naive": [np.nan, 0.5, 1.0, 1.0]}, title="t", x_title="T",
                y_title="p", marker=10.0, nonfinite_from=1.0,
                nonfinite_toward="low", reverse_x=True)  # fmt: skip
    (rect,) = [s for s in low.layout.shapes if s.type == "rect"]
    assert (rect.x0, rect.x1) == (1.0, 0.1)
    assert low.layout.xaxis.autorange == "reversed"
