"""Everything the explorer changes inside Streamlit, in one place.

``install(page_paths)`` is called once per run by the router (``app.py``);
nothing here happens on ``import ui``. Two changes, and one element:

1. **TensorFlow's compiled kernels are kept between script runs.** After
   every run Streamlit "cleans problem modules"
   (``streamlit/runtime/scriptrunner/script_runner.py``,
   ``_clean_problem_modules``): once Keras is imported it calls
   ``keras.backend.clear_session()``, which in Keras 3 empties TensorFlow's
   eager kernel cache and runs a full ``gc.collect()``. The explorer's numbers
   come from compiled ``tf.function`` graphs that live across runs; with the
   kernel cache emptied each rebuilt its kernels on the next move (the
   sampled-softmax page's sampler: 75-150 ms per call instead of 1.5-7 ms).
   The pages keep no Keras state that needs clearing between runs (models are
   built inside training runs, which seed themselves; nothing sets a global
   dtype policy). So the cleaning step is replaced by *Streamlit's own
   function* run against a view of ``sys.modules`` that hides Keras: whatever
   else Streamlit cleans (matplotlib's figures today) it still cleans.
2. **Every page is compiled before TensorFlow's background import.**
   Importing TensorFlow compiles ~18,000 string annotations, and CPython
   3.11's compiler is not safe from two threads at once: a page compiled for
   one session while another thread imports TensorFlow can fail with
   "SystemError: AST constructor recursion depth mismatch"
   (python/cpython#106905), as it did on a fresh server.

The element, ``plotly_json_chart``, is ``st.plotly_chart`` fed a figure
already serialised: Streamlit's own steps (the same proto, element id and
layout), minus ``figure.to_dict()`` and ``plotly.io.to_json``, which cost
2-20 ms a chart (a Play chart's frames the most) on every script run. The
pages keep each figure's JSON beside the cached figure (``ui.plot``), so a
slider move that lands on a cached figure sends it without serialising it
again. tests/test_streamlit_internals.py checks that it sends exactly what
``st.plotly_chart`` sends.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterable, Mapping

import streamlit as st
from streamlit.elements.lib import agent_spec
from streamlit.elements.lib.form_utils import current_form_id
from streamlit.elements.lib.layout_utils import LayoutConfig
from streamlit.elements.lib.utils import compute_and_register_element_id
from streamlit.elements.plotly_chart import _plotly_data
from streamlit.proto.PlotlyChart_pb2 import PlotlyChart as PlotlyChartProto
from streamlit.runtime.scriptrunner import get_script_run_ctx, script_runner

# Streamlit's own, kept for tests and for anyone who wants it back; None if a
# Streamlit release renames it (then there is nothing to swap, and the app
# runs as Streamlit does; tests/test_streamlit_internals.py fails to say so).
STREAMLIT_CLEAN = getattr(script_runner, "_clean_problem_modules", None)
HIDDEN_MODULES = ("keras",)


class _ModulesWithout(Mapping):
    """A live view of ``sys.modules`` without ``HIDDEN_MODULES``."""

    def __getitem__(self, name):
        if name in HIDDEN_MODULES:
            raise KeyError(name)
        return sys.modules[name]

    def __iter__(self):
        return (name for name in list(sys.modules) if name not in HIDDEN_MODULES)

    def __len__(self):
        return sum(1 for _ in self)

    def __contains__(self, name):
        return name not in HIDDEN_MODULES and name in sys.modules


def _without_keras(function):
    """``function`` with its module's ``sys`` replaced by one whose
    ``modules`` hides Keras; the code is Streamlit's, unchanged."""
    fake_sys = types.SimpleNamespace(modules=_ModulesWithout())
    namespace = {**function.__globals__, "sys": fake_sys}
    wrapped = types.FunctionType(
        function.__code__,
        namespace,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    wrapped.__doc__ = "Streamlit's post-run cleaning, with Keras hidden from it."
    return wrapped


CLEAN_BUT_KERAS = _without_keras(STREAMLIT_CLEAN) if STREAMLIT_CLEAN else None


def keep_compiled_kernels() -> None:
    """Stops Streamlit from clearing Keras' session after every script run.

    Idempotent; affects this server process (every session) from the next
    run's end on.
    """
    if CLEAN_BUT_KERAS is not None:
        script_runner._clean_problem_modules = CLEAN_BUT_KERAS


@st.cache_resource(show_spinner=False)
def precompile_pages(page_paths: tuple[str, ...]) -> None:
    """Compiles every page into Streamlit's script cache, once per server
    (a no-op in bare mode, where there is no server and no cache)."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    for path in page_paths:
        ctx.pages_manager.get_page_script_byte_code(str(path))


def install(page_paths: Iterable[str]) -> None:
    """Both changes; the router calls it before the pages run."""
    keep_compiled_kernels()
    precompile_pages(tuple(str(p) for p in page_paths))


# st.plotly_chart's defaults for a chart that is not a selection widget.
_SELECTION_MODE = ("points", "box", "lasso")
_PLOTLY_DEFAULT_HEIGHT = 450


def plotly_json_chart(
    spec: str,
    *,
    height: int | None = None,
    config: dict | None = None,
    theme: str = "streamlit",
    width="stretch",
):
    """``st.plotly_chart(figure, theme=theme, width=width, config=config)``
    for a figure given as its JSON ``spec`` (``plotly.io.to_json(figure,
    validate=False)``) and its layout's ``height`` (None: Plotly's 450 px).
    Not for selections (``on_select``), keys or ``alt``."""
    dg = st._main  # as st.plotly_chart: _enqueue draws in the active container
    proto = PlotlyChartProto()
    proto.theme = theme or ""
    proto.form_id = current_form_id(dg)
    proto.spec = spec
    proto.config = json.dumps(config or {})
    height = int(height) if height and height > 0 else _PLOTLY_DEFAULT_HEIGHT
    proto.id = compute_and_register_element_id(
        "plotly_chart",
        user_key=None,
        key_as_main_identity=False,
        dg=dg,
        plotly_spec=proto.spec,
        plotly_config=proto.config,
        selection_mode=_SELECTION_MODE,
        is_selection_activated=False,
        theme=theme,
        width=width,
        height="content",
        alt=None,
    )
    return dg._enqueue(
        "plotly_chart",
        proto,
        layout_config=LayoutConfig(width=width, height=height),
        agent_props=agent_spec.element(
            "plotly_chart",
            key=None,
            data_builder=lambda: _plotly_data(proto.spec),
            alt=None,
        ),
    )
