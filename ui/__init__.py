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
    Stage,
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


def keyed(function, *, max_entries: int = 1024, spinner: str | bool = False):
    """``keyed(f)(key, *args)``: ``f(*args)``, cached for every session under
    the small hashable ``key`` alone, its arguments never hashed. For results
    derived from a big cached value (a page's grid of numbers and an index
    into it), which ``cached`` would hash array by array on every run: the
    key must name everything the arguments hold (the settings, the seed, the
    index)."""
    return functools.partial(
        _keyed(max_entries, spinner),
        (function.__module__, function.__qualname__),
        function,
    )


@functools.lru_cache(maxsize=None)
def _keyed(max_entries, spinner):
    # One cache for every function (Streamlit keys a cache by its function's
    # source): the function's name is part of each key.
    # Streamlit skips hashing a parameter whose name starts with "_"; the
    # arguments travel as one such parameter (a "*_args" would be hashed).
    @st.cache_resource(show_spinner=spinner, max_entries=max_entries)
    def lookup(name, key, _function, _args):
        return _function(*_args)

    return lambda name, function, key, *args: lookup(name, key, function, args)


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
    "Stage",
    "Toggle",
    "Values",
    "attempts",
    "cached",
    "charts",
    "figures",
    "format_value",
    "header",
    "keyed",
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
