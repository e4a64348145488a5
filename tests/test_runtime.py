"""ui.runtime: the pages' server keeps TensorFlow's compiled kernels between runs."""

import sys

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from ui import runtime

# What every page does: import Keras (through lossviz) and ui.
SCRIPT = """
import keras
import streamlit as st
import ui

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


def run_twice():
    at = AppTest.from_string(SCRIPT, default_timeout=60).run()
    assert not at.exception, at.exception
    at.run()
    assert not at.exception, at.exception
    return at


def test_importing_ui_replaces_streamlits_post_run_cleaning():
    # None would mean this Streamlit no longer has the function we replace.
    assert callable(runtime.STREAMLIT_CLEAN)
    assert script_runner._clean_problem_modules is not runtime.STREAMLIT_CLEAN
    assert (
        script_runner._clean_problem_modules
        is runtime._clean_problem_modules_but_keras
    )


def test_runs_of_a_page_do_not_clear_the_keras_session(clear_calls):
    run_twice()
    assert clear_calls == []


def test_streamlits_own_cleaning_would_clear_it_after_every_run(
    clear_calls, monkeypatch
):
    # The control: the count above would be 2 without ui.runtime.
    monkeypatch.setattr(
        script_runner, "_clean_problem_modules", runtime.STREAMLIT_CLEAN
    )
    run_twice()
    assert len(clear_calls) == 2


def test_matplotlib_figures_are_still_closed_after_a_run(monkeypatch):
    closed = []

    class Pyplot:
        @staticmethod
        def close(which):
            closed.append(which)

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", Pyplot)
    run_twice()
    assert closed == ["all", "all"]


def test_keep_compiled_kernels_is_idempotent():
    runtime.keep_compiled_kernels()
    runtime.keep_compiled_kernels()
    assert (
        script_runner._clean_problem_modules
        is runtime._clean_problem_modules_but_keras
    )
