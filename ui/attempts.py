"""The "original attempt" section: each broken attempt, failing live, beside
the lossviz fix (``lossviz.explore.attempts``)."""

from __future__ import annotations

import streamlit as st

from ui import classroom

SECTION = "The original attempt"
INTRO = (
    "What people first write for this loss, re-created and run on this page's "
    "data just now: each failure below is the real error message or number, "
    "not a description of one."
)
# How each outcome reads: an alert box and a short label.
_SHOWN = {
    "error": (st.error, "raises"),
    "nan": (st.error, "NaN"),
    "no_gradient": (st.error, "no gradient"),
    "wrong": (st.warning, "wrong result"),
    "waste": (st.warning, "wasteful"),
    "ok": (st.info, "no longer fails"),
}


def attempts(results, *, intro: str = INTRO) -> None:
    """Draws ``((attempt, outcome), ...)`` as the page's "original attempt"
    section (folded away in presenter mode)."""
    with classroom.secondary(SECTION, section=True):
        st.markdown(intro)
        for number, (attempt, outcome) in enumerate(results, start=1):
            alert, label = _SHOWN[outcome.kind]
            with st.container(border=True):
                st.markdown(f"**{number}. {attempt.title}** ({label})")
                code, result = st.columns([3, 2])
                code.code(attempt.code, language="python")
                with result:
                    alert(outcome.message, icon=":material/error:")
                    for where, what in outcome.details:
                        st.caption(f"{where}: {what}")
                    st.markdown(f"**Why:** {attempt.why}")
                    st.markdown(f"**Fix:** {attempt.fix}")
                    if outcome.fix_message:
                        st.success(outcome.fix_message, icon=":material/check:")
