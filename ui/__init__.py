"""Streamlit-only helpers for the lossviz pages: controls, charts, layout.

Arrows point one way: pages -> ui -> lossviz. Nothing here computes a loss.
"""

import streamlit as st

from ui import charts
from ui.classroom import Lesson, lessons, presenting, secondary
from ui.controls import (
    number_input,
    radio,
    reset_button,
    seed,
    select_slider,
    selectbox,
    slider,
    toggle,
)
from ui.layout import format_value, header, metric, nonfinite_note, plot, use_it
from ui.runtime import keep_compiled_kernels
from ui.train_panel import train_panel

# Every page imports ui: from then on the server keeps TensorFlow's compiled
# kernels between runs (see ui/runtime.py).
keep_compiled_kernels()

cache_data = st.cache_data
cache_resource = st.cache_resource

__all__ = [
    "Lesson",
    "lessons",
    "presenting",
    "secondary",
    "cache_data",
    "cache_resource",
    "charts",
    "format_value",
    "header",
    "metric",
    "nonfinite_note",
    "number_input",
    "plot",
    "radio",
    "reset_button",
    "seed",
    "select_slider",
    "selectbox",
    "slider",
    "toggle",
    "train_panel",
    "use_it",
]
