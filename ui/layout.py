"""Page furniture shared by every loss page."""

from __future__ import annotations

import functools
import inspect
import math
import threading

import numpy as np
import streamlit as st

from ui import classroom
from ui import controls as control_state
from ui.summary import summarize

_NONFINITE_HELP = (
    "Not a finite number: the computation overflowed (Inf) or formed 0/0 or "
    "Inf-Inf (NaN). A loss like this stops training: one NaN in a batch turns "
    "every weight into NaN at the next step."
)


def header(
    title: str,
    formula: str | None = None,
    intro: str | None = None,
    *,
    controls=None,
    lessons=(),
) -> None:
    """The page title, its formula (LaTeX), a few sentences of what to try,
    and the page's lessons, which set its ``controls`` (a ``ui.Controls``)."""
    control_state.start_page()
    classroom.start_page()
    st.title(title)
    if formula:
        st.latex(formula)
    if intro:
        with classroom.secondary("What to try"):
            st.markdown(intro)
    if lessons:
        classroom.lessons(controls, list(lessons))


def format_value(value, digits: int = 4) -> str:
    """A number for display; non-finite values are named, never a bare "nan"."""
    value = float(value)
    if math.isnan(value):
        return "NaN ⚠"
    if math.isinf(value):
        return "+Inf ⚠" if value > 0 else "-Inf ⚠"
    return f"{value:.{digits}g}"


def metric(label: str, value, help: str | None = None, delta=None, **kwargs) -> None:
    """``st.metric`` that shows non-finite values as such, with an explanation."""
    if classroom.hidden():
        st.metric(label, "?", help="Hidden: predict first, then press Reveal.")
        classroom.reveal_button()
        return
    finite = math.isfinite(float(value))
    if not finite:
        help = f"{help}\n\n{_NONFINITE_HELP}" if help else _NONFINITE_HELP
    if delta is not None and not isinstance(delta, str):
        delta = format_value(delta)
    st.metric(label, format_value(value), delta=delta, help=help, **kwargs)


def metrics(items: dict, helps: dict | None = None) -> None:
    """A row of metrics, one column each: label -> value."""
    helps = helps or {}
    for column, (label, value) in zip(
        st.columns(len(items)), items.items(), strict=True
    ):
        with column:
            metric(label, value, help=helps.get(label))


def nonfinite_note(name: str, array) -> int:
    """A warning naming how many entries of ``array`` are NaN/Inf and where."""
    a = np.asarray(array, dtype=float)
    bad = ~np.isfinite(a)
    count = int(bad.sum())
    if count:
        where = ", ".join(str(tuple(map(int, i))) for i in np.argwhere(bad)[:8])
        more = " …" if count > 8 else ""
        nans = int(np.isnan(a).sum())
        st.warning(
            f"**{name}**: {count} of {a.size} values are not finite "
            f"({nans} NaN, {count - nans} ±Inf), at {where}{more}. "
            "They are marked on the charts, not dropped.",
            icon=":material/warning:",
        )
    return count


def plot(fig, *, summary: str | None = None, **kwargs) -> None:
    """Draws a plotly figure in the page width, following the app's theme,
    with a one-line text summary of what it shows below it (from the figure's
    own data unless ``summary`` is given)."""
    if classroom.folded():  # unfolding reruns the page and draws it
        return
    if classroom.hidden():
        st.info(
            "Chart hidden: predict first, then press Reveal.",
            icon=":material/visibility_off:",
        )
        classroom.reveal_button()
        return
    # Summarise first: serialising the figure turns its arrays into base64.
    text = summary if summary is not None else summarize(fig)
    kwargs.setdefault("config", {"displaylogo": False, "responsive": True})
    st.plotly_chart(fig, theme="streamlit", width="stretch", **kwargs)
    if text:
        st.caption(text)


_SOURCE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _source_unlocked(obj) -> str:
    return inspect.getsource(obj)


def _source(obj) -> str:
    # inspect.getsource parses with ast, which is not safe from several
    # sessions' threads at once on CPython 3.11 ("AST constructor recursion
    # depth mismatch", python/cpython#106905).
    with _SOURCE_LOCK:
        return _source_unlocked(obj)


def use_it(objects, snippet: str) -> None:
    """The "Use it in your model" expander: the source behind the page and a snippet."""
    with st.expander("Use it in your model", icon=":material/code:"):
        st.markdown("Copy into your training script:")
        st.code(snippet, language="python")
        for obj in objects:
            st.markdown(f"Source of `{obj.__module__}.{obj.__qualname__}`:")
            st.code(_source(obj), language="python")
