"""ui.streamlit_internals: what the explorer changes inside Streamlit."""

import dis
import sys

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from ui import streamlit_internals as internals

# What the router does before any page runs, then what a page does.
SCRIPT = """
import keras
import streamlit as st
from ui import streamlit_internals

streamlit_internals.install([])
st.write("ran")
"""
BARE = """
import keras
import streamlit as st

st.write("ran")
"""


@pytest.fixture
def clear_calls(monkeypatch):
    """Counts calls of keras.backend.clear_session, which Streamlit makes
    after each run through sys.modules["keras"]."""
    calls = []
    monkeypatch.setattr(
        keras.backend, "clear_session", lambda *a, **k: calls.append((a, k))
    )
    return calls


@pytest.fixture
def streamlits_own(monkeypatch):
    """Each test starts from Streamlit's own cleaning and leaves it so."""
    monkeypatch.setattr(
        script_runner, "_clean_problem_modules", internals.STREAMLIT_CLEAN
    )


def run_twice(script=SCRIPT):
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception, at.exception
    at.run()
    assert not at.exception, at.exception
    return at


def test_streamlit_still_has_the_function_we_wrap():
    # None would mean this Streamlit no longer has it: the app then runs as
    # Streamlit does, and the kernels are rebuilt on every move.
    assert callable(internals.STREAMLIT_CLEAN)


def test_streamlits_cleaning_touches_the_modules_we_expect():
    """Fails when a Streamlit upgrade changes what its cleaning does: the
    module names it looks up in sys.modules and the calls it makes. Read the
    new function, decide whether hiding Keras from it is still right, then
    update these sets."""
    code = internals.STREAMLIT_CLEAN.__code__
    strings = {c for c in code.co_consts if isinstance(c, str) and "." not in c[:1]}
    modules = {s for s in strings if s in ("keras", "matplotlib.pyplot")}
    assert modules == {"keras", "matplotlib.pyplot"}
    assert {s for s in strings if not s.startswith(("Some modules", "Any"))} == {
        "keras",
        "matplotlib.pyplot",
        "all",
    }
    called = {
        i.argval
        for i in dis.get_instructions(code)
        if i.opname in ("LOAD_ATTR", "LOAD_METHOD")
    }
    assert called == {"modules", "backend", "clear_session", "close"}


def test_install_replaces_the_cleaning_and_is_idempotent(streamlits_own):
    internals.keep_compiled_kernels()
    internals.keep_compiled_kernels()
    assert script_runner._clean_problem_modules is internals.CLEAN_BUT_KERAS
    # The same code object: Streamlit's function, only its `sys` differs.
    assert internals.CLEAN_BUT_KERAS.__code__ is internals.STREAMLIT_CLEAN.__code__


def test_importing_ui_changes_nothing(streamlits_own):
    import ui  # noqa: F401

    assert script_runner._clean_problem_modules is internals.STREAMLIT_CLEAN


def test_runs_after_install_do_not_clear_the_keras_session(clear_calls, streamlits_own):
    run_twice()
    # The first run's own cleaning already is the replacement.
    assert clear_calls == []


def test_streamlits_own_cleaning_would_clear_it_after_every_run(
    clear_calls, streamlits_own
):
    # The control: without install, two runs clear it twice.
    run_twice(BARE)
    assert len(clear_calls) == 2


def test_matplotlib_figures_are_still_closed_after_a_run(monkeypatch, streamlits_own):
    closed = []

    class Pyplot:
        @staticmethod
        def close(which):
            closed.append(which)

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", Pyplot)
    run_twice()
    assert closed == ["all", "all"]


def test_the_view_hides_keras_only():
    view = internals._ModulesWithout()
    assert "keras" not in view and "sys" in view
    assert "keras" not in set(view)
    with pytest.raises(KeyError):
        view["keras"]
    assert view["sys"] is sys


CHARTS = """
import plotly.graph_objects as go
import plotly.io
import streamlit as st
from ui import streamlit_internals

figures = [
    go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), layout={"height": 320}),
    go.Figure(
        data=[go.Bar(x=["a", "b"], y=[1, 2])],
        frames=[go.Frame(data=[go.Bar(y=[2, 1])], name="1")],
    ),
]
config = {"displaylogo": False, "responsive": True}
for figure in figures:
    if st.session_state.get("ours"):
        streamlit_internals.plotly_json_chart(
            plotly.io.to_json(figure, validate=False),
            height=figure.layout.height,
            config=config,
        )
    else:
        st.plotly_chart(figure, theme="streamlit", width="stretch", config=config)
"""


def test_a_chart_from_its_json_is_the_chart_st_plotly_chart_sends():
    # One script, run both ways: Streamlit's element ids fold in its hash.
    at = AppTest.from_string(CHARTS)
    deltas = {}
    for ours in (False, True):
        at.session_state["ours"] = ours
        at.run()
        assert not at.exception
        deltas[ours] = [node.proto for node in at.get("plotly_chart")]
    assert len(deltas[True]) == len(deltas[False]) == 2
    assert deltas[True] == deltas[False]  # spec, config, theme, element id, form
    assert '"frames"' in deltas[True][1].spec
