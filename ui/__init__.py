"""Streamlit-only helpers for the lossviz pages: controls, figures, layout,
the train panel and the classroom.

Arrows point one way: views -> ui -> lossviz.explore. Nothing here computes a
loss, and nothing here imports TensorFlow or Keras. Streamlit's internals are
touched only by ``ui.streamlit_internals``, which the router installs.
"""

from __future__ import annotations

import functools

import streamlit as st

from ui import figures
from ui.attempts import attempts
from ui.classroom import Lesson, lesson_note, presenting, secondary
from ui.controls import (
    Choice,
    Controls,
    Number,
    Slider,
    Toggle,
    Values,
    reset_button,
    seed,
)
from ui.figures import charts
from ui.layout import (
    format_value,
    header,
    metric,
    metrics,
    nonfinite_note,
    plot,
    use_it,
)
from ui.train_panel import train_panel


def cached(function=None, *, max_entries: int = 256, spinner: str | bool = False):
    """Caches ``function``'s result per arguments for every session of the
    server, without copying it: the explore layer returns frozen dataclasses
    of numpy arrays and figures that no page changes. Keyed on the
    arguments' values (a frozen settings object, a seed). ``spinner``: a
    message shown while a new value is computed (for the slow ones)."""
    if function is None:
        return lambda f: cached(f, max_entries=max_entries, spinner=spinner)
    return _cached(function, max_entries, spinner)


@functools.lru_cache(maxsize=None)
def _cached(function, max_entries, spinner):
    # One wrapper per function: making it reads the function's source to key
    # its cache (2-4 ms a call), which a page would otherwise pay on every run.
    return st.cache_resource(function, show_spinner=spinner, max_entries=max_entries)


__all__ = [
    "Choice",
    "Controls",
    "Lesson",
    "Number",
    "Slider",
    "Toggle",
    "Values",
    "attempts",
    "cached",
    "charts",
    "figures",
    "format_value",
    "header",
    "lesson_note",
    "metric",
    "metrics",
    "nonfinite_note",
    "plot",
    "presenting",
    "reset_button",
    "secondary",
    "seed",
    "train_panel",
    "use_it",
]
