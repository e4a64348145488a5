"""Page furniture shared by every loss page."""

from __future__ import annotations

import functools
import inspect
import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import plotly.io
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from ui import classroom, streamlit_internals
from ui import controls as control_state
from ui.figures.play import splice
from ui.summary import summarize

_NONFINITE_HELP = (
    "Not a finite number: the computation overflowed (Inf) or formed 0/0 or "
    "Inf-Inf (NaN). A loss like this stops training: one NaN in a batch turns "
    "every weight into NaN at the next step."
)


@dataclass(frozen=True)
class Stage:
    """The first screen of a loss page: its main control(s) and key metrics
    in a narrow column (``controls``, ``metrics``) beside its main chart
    (``chart``), so that a projector's first 1280x720 shows the slider and
    what it does together. Draw into each with ``with stage.chart: ...``."""

    controls: DeltaGenerator
    metrics: DeltaGenerator
    chart: DeltaGenerator


def header(
    title: str,
    formula: str | None = None,
    intro: str | None = None,
    *,
    controls=None,
    lessons=(),
    stage: bool = False,
) -> Stage | None:
    """The page title, its formula (LaTeX), the page's lessons, which set its
    ``controls`` (a ``ui.Controls``), and a few sentences of what to try.

    With ``stage=True``, the stage (``Stage``) comes between the lessons and
    the sentences, and is returned."""
    control_state.start_page()
    classroom.start_page()
    if formula and stage:  # side by side: the stage's first screen is short
        lines = _formula_lines(formula)
        widths = [1, 1] if len(lines) > 1 else [3, 2]
        title_column, formula_column = st.columns(widths, vertical_alignment="center")
        title_column.title(title)
        formula_column.latex(
            lines[0]
            if len(lines) == 1
            else r"\begin{gathered}" + r" \\ ".join(lines) + r"\end{gathered}"
        )
    else:
        st.title(title)
        if formula:
            st.latex(formula)
    if lessons:
        classroom.lessons(controls, list(lessons))
    result = None
    if stage:
        left, right = st.columns([2, 5], gap="medium")
        with left:
            result = Stage(st.container(), st.container(), None)
        with right:
            result = Stage(result.controls, result.metrics, st.container())
    if intro:
        with classroom.secondary("What to try"):
            st.markdown(intro)
    return result


def _formula_lines(formula: str, long: int = 100) -> list[str]:
    """A long formula of several equations (joined by ``\\qquad``) as two
    lines, to stand beside the title: its first equation, then the rest."""
    parts = [p.strip().rstrip(",") for p in formula.split(r"\qquad")]
    if len(formula) <= long or len(parts) < 2:
        return [formula]
    return [parts[0], r"\quad ".join(parts[1:])]


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


def metrics(items: dict, helps: dict | None = None, per_row: int | None = None) -> None:
    """Metrics in a row, one column each (label -> value), or in rows of
    ``per_row`` (a stage's narrow column: 2; presenting, 1, since a
    projector's digits do not fit two abreast there)."""
    helps = helps or {}
    entries = list(items.items())
    if per_row and classroom.presenting():
        per_row = 1
    per_row = per_row or len(entries)
    for start in range(0, len(entries), per_row):
        row = entries[start : start + per_row]
        for column, (label, value) in zip(st.columns(per_row), row, strict=False):
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
    spec, text = _prepared(fig, summary)
    spec = splice(spec, fig)
    config = kwargs.pop("config", _CONFIG)
    if kwargs:  # what the JSON path does not cover
        st.plotly_chart(
            fig, theme="streamlit", width="stretch", config=config, **kwargs
        )
    else:
        streamlit_internals.plotly_json_chart(
            spec, height=fig.layout.height, config=config
        )
    if text:
        st.caption(text)


_CONFIG = {"displaylogo": False, "responsive": True}
# id(figure) -> (a weak reference to it, its JSON, its summary): a figure
# that a cache keeps is serialised and summarised once, not on every run.
_PREPARED: dict[int, tuple] = {}
_PREPARED_LOCK = threading.Lock()


def _prepared(fig, summary: str | None) -> tuple[str, str | None]:
    key = id(fig)
    entry = _PREPARED.get(key)
    if entry is not None and entry[0]() is fig and entry[3] == summary:
        return entry[1], entry[2]
    # Summarise first: serialising the figure turns its arrays into base64.
    text = summary if summary is not None else summarize(fig)
    # Without a Play chart's frames: each grid keeps them once (``splice``).
    spec = plotly.io.to_json(fig, validate=False)
    with _PREPARED_LOCK:
        _PREPARED[key] = (
            weakref.ref(fig, lambda _, key=key: _PREPARED.pop(key, None)),
            spec,
            text,
            summary,
        )
    return spec, text


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
