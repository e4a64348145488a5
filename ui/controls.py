"""Controls bound to the URL query string, with a page-wide "back to defaults".

Every control takes a ``key`` (also the query-parameter name) and a default
``value``. A teacher can share the URL of an exact state; the reset button puts
every control of the current page back to its default.
"""

from __future__ import annotations

import streamlit as st

CONTROLS = "_lossviz_controls"


def start_page() -> None:
    """Forgets the controls of the previous page; called by ``ui.header``."""
    st.session_state[CONTROLS] = {}


def _remember(key: str, value) -> None:
    st.session_state.setdefault(CONTROLS, {})[key] = value


def slider(label, *, key, value, min_value, max_value, step=None, **kwargs):
    """``st.slider`` bound to the URL; ``value`` is the page default."""
    _remember(key, value)
    return st.slider(
        label,
        min_value=min_value,
        max_value=max_value,
        value=value,
        step=step,
        key=key,
        bind="query-params",
        **kwargs,
    )


def select_slider(label, *, key, value, options, **kwargs):
    """``st.select_slider`` bound to the URL; ``value`` is the page default."""
    _remember(key, value)
    return st.select_slider(
        label, options=options, value=value, key=key, bind="query-params", **kwargs
    )


def selectbox(label, *, key, value, options, **kwargs):
    """``st.selectbox`` bound to the URL; ``value`` must be one of ``options``."""
    options = list(options)
    _remember(key, value)
    return st.selectbox(
        label,
        options=options,
        index=options.index(value),
        key=key,
        bind="query-params",
        **kwargs,
    )


def radio(label, *, key, value, options, **kwargs):
    """``st.radio`` bound to the URL; ``value`` must be one of ``options``."""
    options = list(options)
    _remember(key, value)
    return st.radio(
        label,
        options=options,
        index=options.index(value),
        key=key,
        bind="query-params",
        **kwargs,
    )


def toggle(label, *, key, value=False, **kwargs):
    """``st.toggle`` bound to the URL."""
    _remember(key, value)
    return st.toggle(label, value=value, key=key, bind="query-params", **kwargs)


def number_input(label, *, key, value, min_value=None, max_value=None, **kwargs):
    """``st.number_input`` bound to the URL."""
    _remember(key, value)
    return st.number_input(
        label,
        min_value=min_value,
        max_value=max_value,
        value=value,
        key=key,
        bind="query-params",
        **kwargs,
    )


def _reset() -> None:
    for key, value in st.session_state.get(CONTROLS, {}).items():
        st.session_state[key] = value


def reset_button(page_key: str, label: str = "Back to defaults") -> bool:
    """A button that puts every control created on this page back to its default."""
    return st.button(
        label,
        key=f"reset_{page_key}",
        on_click=_reset,
        help="Put every control on this page back to its default value.",
        icon=":material/restart_alt:",
    )


def seed() -> int:
    """The shared random seed from the app's sidebar (0 when a page runs alone)."""
    return int(st.session_state.get("seed", 0))
