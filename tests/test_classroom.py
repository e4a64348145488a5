"""Presenter mode, predict-then-reveal, lessons and chart summaries."""

import numpy as np
import plotly.io as pio
from streamlit.testing.v1 import AppTest

from ui.classroom import fold_key
from ui.figures import charts
from ui.summary import describe_series, summarize

PAGE = """
import streamlit as st
import ui
from ui import classroom

with st.sidebar:
    classroom.sidebar_switches()
CONTROLS = ui.Controls("demo", [ui.Slider("x", "x", 2.0, low=0.0, high=5.0, step=0.5)])
LESSONS = [
    ui.Lesson("big", {"x": 4.0}, "Look how large it is."),
    ui.Lesson("small", {"x": 0.5}, "Tiny."),
]
ui.header("Demo", r"L = x^2", "Move the slider.", controls=CONTROLS, lessons=LESSONS)
x = CONTROLS.render().x
ui.lesson_note(CONTROLS, LESSONS)
ui.metric("loss", x * x)
with ui.secondary():
    st.markdown("details")
with ui.secondary("Curve", section=True):
    curve = {"loss": [x, x * x]}
    ui.plot(ui.charts.line([0, 1], curve, title="loss", x_title="t", y_title="loss"))
"""


def _metric(at):
    return at.metric[0].value


def test_predict_then_reveal_hides_until_reveal():
    at = AppTest.from_string(PAGE, default_timeout=30).run()
    at.toggle(key="predict").set_value(True).run()
    assert _metric(at) == "4"  # switching it on hides nothing yet
    at.slider(key="demo_x").set_value(3.0).run()
    assert _metric(at) == "?"
    at.button(key="reveal").click().run()
    assert _metric(at) == "9"
    at.toggle(key="predict").set_value(False).run()
    at.slider(key="demo_x").set_value(1.0).run()
    assert _metric(at) == "1"


def test_lesson_sets_its_controls_and_shows_its_note():
    at = AppTest.from_string(PAGE, default_timeout=30).run()
    at.button(key="lesson_demo_big").click().run()
    assert at.slider(key="demo_x").value == 4.0
    assert _metric(at) == "16"
    assert "Look how large it is." in at.info[0].value
    at.slider(key="demo_x").set_value(1.0).run()
    assert not at.info  # the note goes once the controls leave the lesson


def test_presenter_mode_folds_secondary_material_and_survives_reruns():
    at = AppTest.from_string(PAGE, default_timeout=30).run()
    assert not at.expander
    at.toggle(key="present").set_value(True).run()
    # The intro ("What to try") and the page's secondary material fold away.
    assert [e.label for e in at.expander] == ["What to try", "More on this", "Curve"]
    at.slider(key="demo_x").set_value(3.0).run()
    assert at.toggle(key="present").value is True
    assert len(at.expander) == 3
    assert not at.exception


def test_folded_section_sends_no_chart_until_unfolded():
    at = AppTest.from_string(PAGE, default_timeout=30).run()
    assert len(at.get("plotly_chart")) == 1  # a section, not folded
    at.toggle(key="present").set_value(True).run()
    assert not at.get("plotly_chart")
    at.slider(key="demo_x").set_value(3.0).run()
    assert not at.get("plotly_chart")
    assert at.expander(key=fold_key("Curve")).label == "Curve"
    at.session_state[fold_key("Curve")] = True  # what unfolding it does
    at.run()
    (chart,) = at.get("plotly_chart")
    np.testing.assert_array_equal(pio.from_json(chart.proto.spec).data[0].y, [3, 9])


def test_series_summary_names_change_and_where_it_breaks():
    x = np.array([1.0, 2.0, 5.0, 150.0, 200.0])
    y = np.array([1.0, 0.6, 0.37, np.nan, np.nan])
    text = describe_series("loss", x, y)
    assert text == (
        "loss: falls 63% from 1 at 1 to 0.37 at 5; NaN from 150 (2 of 5 points)"
    )
    assert describe_series("g", [0, 1, 2], [0.0, 2.0, 1.0]).startswith(
        "g: rises from 0 at 0 to 1 at 2; peak 2 at 1"
    )


def test_figure_summaries_follow_their_data():
    fig = charts.bars(
        ["a", "b", "c"], {"loss": [0.2, 3.0, 1.0]}, title="t", x_title="x", y_title="y"
    )
    assert summarize(fig) == "loss: 3 bars, highest 3 (b), lowest 0.2 (a)"
    fig = charts.histogram({"cos": [0.0, 0.5, 1.0]}, title="t", x_title="x")
    assert summarize(fig) == "cos: 3 values, median 0.5, range 0 to 1"
    fig = charts.heatmap(
        [[0.0, -2.0], [1.0, 0.0]],
        x_labels=["u", "v"],
        y_labels=["r0", "r1"],
        title="t",
        x_title="x",
        y_title="y",
    )
    assert summarize(fig) == "2×2 values, largest magnitude -2 at (r0, v); 2 non-zero"


def test_summary_reads_a_figure_after_it_was_serialised():
    # A page may cache a figure with st.cache_data, which pickles it: the copy
    # holds its arrays as plotly's base64 typed arrays.
    import pickle

    fig = charts.line(
        np.array([1.0, 2.0, 3.0]),
        {"loss": np.array([2.0, 1.0, 0.5])},
        title="t",
        x_title="x",
        y_title="y",
    )
    before = summarize(fig)
    fig = pickle.loads(pickle.dumps(fig))
    assert isinstance(fig.data[0].x, dict)
    assert summarize(fig) == before == "loss: falls 75% from 2 at 1 to 0.5 at 3"
    heat = charts.heatmap(
        np.array([[1.0, -3.0]]),
        x_labels=["a", "b"],
        y_labels=["r"],
        title="t",
        x_title="x",
        y_title="y",
    )
    heat = pickle.loads(pickle.dumps(heat))
    assert "largest magnitude -3" in summarize(heat)


def test_summary_names_infinities_and_large_rises():
    fig = charts.line(
        [1.0, 2.0, 3.0, 4.0],
        {"loss": [1.0, 50.0, np.inf, np.inf]},
        title="t",
        x_title="x",
        y_title="y",
    )
    assert summarize(fig) == (
        "loss: rises 50-fold from 1 at 1 to 50 at 2; +Inf from 3 (2 of 4 points)"
    )


def test_numeric_looking_categories_stay_categories():
    fig = charts.bars(
        ["2", "#2", "s0"], {"loss": [1, 2, 3]}, title="t", x_title="x", y_title="y"
    )
    assert fig.layout.xaxis.type == "category"


def test_a_lesson_link_shows_its_note_on_the_first_run():
    # As the landing page's link opens the page: the settings and the lesson
    # in the URL, no state yet (the lessons are drawn above the controls).
    at = AppTest.from_string(PAGE, default_timeout=30)
    at.query_params["demo_x"] = "4"
    at.query_params["lesson"] = "big"
    at.run()
    assert at.slider(key="demo_x").value == 4.0
    assert "Look how large it is." in at.info[0].value
    at = AppTest.from_string(PAGE, default_timeout=30)
    at.query_params["demo_x"] = "3"  # not the lesson's setting: no note
    at.query_params["lesson"] = "big"
    at.run()
    assert not at.info


def test_reveal_shows_results_above_a_control_drawn_further_down():
    page = PAGE + """
LATER = ui.Controls("demo", [ui.Toggle("detail", "Detail", False)])
detail = LATER.render().detail
ui.metric("after", 1.0 if detail else 0.0)
"""
    at = AppTest.from_string(page, default_timeout=30).run()
    at.toggle(key="predict").set_value(True).run()
    at.slider(key="demo_x").set_value(3.0).run()
    assert [m.value for m in at.metric] == ["?", "?"]
    at.button(key="reveal").click().run()
    assert [m.value for m in at.metric] == ["9", "0"]
    at.toggle(key="demo_detail").set_value(True).run()
    # Only what is drawn below the moved control waits for Reveal.
    assert [m.value for m in at.metric] == ["9", "?"]
    at.button(key="reveal").click().run()
    assert [m.value for m in at.metric] == ["9", "1"]
