"""The shared parts of an instant page: the Play chart, the stage, the
lead controls, a keyed cache and a chart sent from its cached JSON."""

import importlib
import json

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from ui.figures.play import frame_ms, frames, full, nearest, play, spec, summary

# the module (ui.figures re-exports its function ``play`` under that name)
play_module = importlib.import_module("ui.figures.play")
VALUES = [0.5, 1.0, 2.0, 5.0]


def _frames():
    return [[{"type": "bar", "x": [0, 1], "y": [v, 2 * v]}] for v in VALUES]


def _figure(active=2):
    return play(
        VALUES,
        _frames(),
        active=active,
        label="k",
        title="Sharpening",
        summaries=[f"k = {v:g}: top {2 * v:g}" for v in VALUES],
        layout={"yaxis": {"range": [0, 10]}},
    )


def test_a_play_chart_opens_on_its_active_frame_and_holds_one_frame_per_value():
    fig = full(_figure(active=2))
    go.Figure(fig.to_dict())  # plotly validates it
    assert [f.name for f in fig.frames] == ["f0", "f1", "f2", "f3"]
    assert list(fig.data[0].y) == [2.0, 4.0]  # frame 2's data
    assert [list(f.data[0].y) for f in fig.frames][0] == [0.5, 1.0]
    slider = fig.layout.sliders[0]
    assert slider.active == 2
    assert [s.label for s in slider.steps] == ["0.5", "1", "2", "5"]
    assert [list(s.args[0]) for s in slider.steps] == [["f0"], ["f1"], ["f2"], ["f3"]]
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["▶ Play", "❚❚ Pause"]
    # each frame says its own numbers; the caption gets the opening frame's
    assert "k = 0.5: top 1" in fig.frames[0].layout.title.text
    assert summary(fig) == "k = 2: top 4"
    assert "k = 2: top 4" in fig.layout.title.text


def test_frames_are_serialised_once_and_shared_by_every_opening_frame():
    grid = frames(VALUES, _frames(), title="t", summaries=[str(v) for v in VALUES])
    styles = [{"marker": {"color": "red"}, "name": "p", "y": [0, 0]}]
    one, other = (play(grid, active=i, label="k", styles=styles) for i in (0, 3))
    assert not one.frames  # kept serialised, beside the figure
    assert grid.json in spec(one) and grid.json in spec(other)
    # the opening data: the frame's own values, in the shared style
    assert list(other.data[0].y) == [5.0, 10.0]
    assert other.data[0].marker.color == "red" and other.data[0].name == "p"
    assert [len(f.data) for f in full(one).frames] == [1] * 4
    assert full(one).frames[3].data[0].y == full(other).data[0].y


PLOTTED = """
import streamlit as st
import ui
from ui.figures.play import play
fig = play([1.0, 2.0], [[{"type": "bar", "y": [1, 2]}], [{"type": "bar", "y": [2, 1]}]],
           active=1, label="k", title="t", summaries=["one", "two"])
ui.plot(fig, summary="two")
"""


def test_ui_plot_sends_a_play_chart_with_its_frames():
    at = AppTest.from_string(PLOTTED).run()
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    sent = go.Figure(json.loads(chart.proto.spec))
    assert [f.name for f in sent.frames] == ["f0", "f1"]
    assert list(sent.data[0].y) == [2, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"active": 4}, "active must lie in [0, 3]"),
        ({"summaries": ["a"]}, "they must be as many"),
    ],
)
def test_a_play_chart_names_what_is_wrong(kwargs, message):
    args = {"active": 0, "label": "k", "title": "t",
            "summaries": [str(v) for v in VALUES]} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        play(VALUES, _frames(), **args)


def test_frames_need_the_same_traces():
    frames = _frames()
    frames[1] = frames[1] * 2
    with pytest.raises(ValueError, match="same traces"):
        play(VALUES, frames, active=0, label="k", title="t", summaries=["a"] * 4)


def test_a_long_grid_plays_faster_but_never_faster_than_the_floor():
    assert frame_ms(4) == play_module.PLAY_MS
    assert frame_ms(120) < frame_ms(16) <= play_module.PLAY_MS
    assert frame_ms(10_000) == play_module.MIN_PLAY_MS


def test_nearest_grid_value_on_a_log_grid_and_a_linear_one():
    assert nearest([0.1, 1.0, 10.0, 100.0], 3.5) == 2  # log: 3.5 is nearer 10
    assert nearest([0.0, 0.5, 1.0], 0.3) == 1


STAGE = """
import streamlit as st
import ui

controls = ui.Controls("demo", [
    ui.Slider("a", "A", 1, low=0, high=5, step=1),
    ui.Slider("main", "Main", 2, low=0, high=5, step=1),
    ui.Slider("b", "B", 3, low=0, high=5, step=1),
])
stage = ui.header("Demo", stage=True, intro="What to try")
values = controls.render(columns=2, lead=("main",), into=stage.controls)
with stage.metrics:
    ui.metrics({"m1": 1.0, "m2": 2.0, "m3": 3.0}, per_row=2)
with stage.chart:
    st.markdown("chart here")
st.session_state["values"] = dict(values)
"""


def test_the_stage_puts_the_lead_control_and_metrics_beside_the_chart():
    at = AppTest.from_string(STAGE).run()
    assert not at.exception
    columns = list(at.main.columns)
    left = columns[0]
    assert [s.label for s in left.slider] == ["Main"]
    assert [m.label for m in left.metric] == ["m1", "m2", "m3"]
    (chart,) = [c for c in columns if [m.value for m in c.markdown] == ["chart here"]]
    assert chart is not left and not chart.slider and not chart.metric
    # the other controls follow the stage, in their columns; every value read
    assert sorted(s.label for s in at.slider) == ["A", "B", "Main"]
    assert at.session_state["values"] == {"a": 1, "main": 2, "b": 3}
    at.slider(key="demo_main").set_value(4).run()
    assert at.session_state["values"]["main"] == 4


KEYED = """
import streamlit as st
import ui

calls = st.session_state.setdefault("calls", [])

def add(a, b):
    calls.append(("add", a, b))
    return a + b

def mul(a, b):
    calls.append(("mul", a, b))
    return a * b

st.session_state["out"] = [
    ui.keyed(add)(("k", 1), 2, 3),
    ui.keyed(add)(("k", 1), 2, 3),
    ui.keyed(mul)(("k", 1), 2, 3),
    ui.keyed(add)(("k", 2), 5, 3),
]
"""


def test_keyed_caches_under_the_key_and_the_function():
    at = AppTest.from_string(KEYED).run()
    assert not at.exception
    assert at.session_state["out"] == [5, 5, 6, 8]
    # the same key twice is one call; another function under it is another
    assert at.session_state["calls"] == [("add", 2, 3), ("mul", 2, 3), ("add", 5, 3)]


class Loud:
    """An argument that fails the test if Streamlit hashes it."""

    def __reduce__(self):
        raise AssertionError("a keyed argument was hashed")

    def __getstate__(self):
        raise AssertionError("a keyed argument was hashed")


NOT_HASHED = """
import streamlit as st
import ui
from tests.test_play import Loud

def size(x, y):
    return 1 if isinstance(x, Loud) and isinstance(y, Loud) else 0

st.session_state["out"] = ui.keyed(size)(("k",), Loud(), Loud())
"""


def test_keyed_never_hashes_its_arguments():
    at = AppTest.from_string(NOT_HASHED).run()
    assert not at.exception, at.exception
    assert at.session_state["out"] == 1


def test_per_grid_builds_once_per_grid_object_and_arguments():
    calls = []

    @play_module.per_grid
    def build(grid, flag):
        calls.append((grid.name, flag))
        return object()

    class Grid:
        def __init__(self, name):
            self.name = name

    a, b = Grid("a"), Grid("b")
    assert build(a, True) is build(a, True)
    assert build(a, False) is not build(a, True)
    build(b, True)
    assert calls == [("a", True), ("a", False), ("b", True)]
    del a  # a grid that dies takes its entries with it
    assert build(Grid("c"), True) is not None
    assert calls[-1] == ("c", True)
