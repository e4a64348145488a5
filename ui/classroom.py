"""Classroom helpers: presenter mode, predict-then-reveal, and lessons.

- **Presenter mode** (sidebar switch, kept in the URL as ``present``): larger
  type, and each page's secondary material folded away (``ui.secondary()``),
  so the projector shows the formula, the control and the main chart.
- **Predict, then reveal** (``predict``): after a control moves, the new
  numbers and charts stay hidden until the presenter presses "Reveal".
- **Lessons**: named presets per page that set the controls (through
  ``st.session_state``, so the URL follows), each with what to notice.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field

import streamlit as st

from ui import controls as control_state

PRESENT_KEY = "present"
PREDICT_KEY = "predict"
_REVEALED = "_lossviz_revealed"
_LESSON = "_lossviz_lesson"
# Per script run (each session runs in its own thread, with its own context).
_FOLDED = contextvars.ContextVar("lossviz_folded", default=False)

PRESENTER_CSS = """
<style>
html { font-size: 21px; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stMain"] h1 { font-size: 2.2rem; }
[data-testid="stMetricValue"] { font-size: 3rem; }
[data-testid="stMain"] .stMarkdown p, [data-testid="stMain"] li { font-size: 1.15rem; }
</style>
"""


@dataclass(frozen=True)
class Lesson:
    """A named state of a page's controls that tells a story.

    ``settings`` names controls of the page's declaration (``ui.Controls``),
    not their URL keys: ``Controls.settings`` turns them into keys, checking
    each value against its control.
    """

    title: str
    settings: dict = field(default_factory=dict)
    notice: str = ""
    # The name of the lesson's check in its family's explore module
    # (``check_lesson(name, values, seed)``): the outcome the notice states,
    # computed, shown beside the notice and asserted by a test.
    check: str = ""


def presenting() -> bool:
    return bool(st.session_state.get(PRESENT_KEY, False))


def presenting_url() -> bool:
    """Presenter mode as the URL asks for it, before its switch is drawn."""
    return presenting() or st.query_params.get(PRESENT_KEY) in ("true", "True")


def predicting() -> bool:
    return bool(st.session_state.get(PREDICT_KEY, False))


def sidebar_switches() -> None:
    """The two classroom switches; the router puts them in the sidebar."""
    st.toggle(
        "Presenter mode",
        key=PRESENT_KEY,
        bind="query-params",
        help="Larger type; each page shows its formula, control and main chart, "
        "and folds the rest away.",
    )
    st.toggle(
        "Predict, then reveal",
        key=PREDICT_KEY,
        bind="query-params",
        help="After a control moves, the new values and charts stay hidden until "
        "you press Reveal, so the class can guess first.",
    )


def apply_presenter_style() -> None:
    if presenting():
        st.html(PRESENTER_CSS)


def _signature() -> dict:
    """The page's control values drawn so far in this run, by key."""
    keys = st.session_state.get(control_state.CONTROLS, {})
    return {k: repr(st.session_state.get(k)) for k in keys}


def hidden() -> bool:
    """True while predict-then-reveal hides results the class has not seen.

    Compares only the controls drawn so far: a result drawn above a control
    does not depend on it (and a control drawn further down, e.g. inside a
    section, must not keep the results above it hidden after Reveal).
    """
    current = _signature()
    if not predicting():
        st.session_state[_REVEALED] = current
        return False
    revealed = st.session_state.setdefault(_REVEALED, current)
    return any(revealed.get(k, v) != v for k, v in current.items())


def _reveal() -> None:
    st.session_state[_REVEALED] = _signature()


_REVEAL_DRAWN = "_lossviz_reveal_drawn"


def start_page() -> None:
    """Called by ``ui.header`` at the top of every page run."""
    st.session_state[_REVEAL_DRAWN] = False
    apply_presenter_style()


def reveal_button() -> None:
    """Drawn once per run, where the first hidden result would be."""
    if st.session_state.get(_REVEAL_DRAWN):
        return
    st.session_state[_REVEAL_DRAWN] = True
    st.button(
        "Reveal",
        type="primary",
        key="reveal",
        on_click=_reveal,
        icon=":material/visibility:",
        help="Show the values and charts for the new setting.",
    )


@contextlib.contextmanager
def secondary(label: str = "More on this", *, section: bool = False):
    """Material beyond the main idea; folded into an expander when presenting.

    With ``section=True`` the label is the section's heading: a subheader in
    the page, the expander's label in presenter mode. While the expander is
    folded, the charts in it are not sent (``ui.plot`` skips them; unfolding
    reruns the page): the browser redraws every chart whose figure changed,
    folded or not, at about 60-100 ms a chart here, and a slider move in
    presenter mode should redraw only what the class sees.
    """
    if presenting():
        with st.expander(label, key=fold_key(label), on_change="rerun") as box:
            token = _FOLDED.set(not box.open)
            try:
                yield
            finally:
                _FOLDED.reset(token)
    else:
        with st.container():
            if section:
                st.subheader(label, divider="gray")
            yield


def fold_key(label: str) -> str:
    """The session-state key of the presenter-mode expander of ``label``:
    True while it is unfolded."""
    return f"fold:{label}"


def folded() -> bool:
    """Whether we are drawing inside a folded ``secondary`` section."""
    return _FOLDED.get()


def _holds(key: str, value, text: str) -> bool:
    """Whether the control ``key`` holds ``value`` (``text`` in the URL). On a
    page's first run from a lesson link a control drawn later has no state
    yet, and its value is the one in the URL."""
    if key in st.session_state:
        return repr(st.session_state[key]) == repr(value)
    return st.query_params.get(key) == text


def _apply(settings: dict, title: str) -> None:
    for key, value in settings.items():
        st.session_state[key] = value
    st.session_state[_LESSON] = title


def lesson_links(controls, lesson: Lesson) -> dict[str, str]:
    """The query parameters of a link that opens the page at ``lesson``."""
    return {**controls.url_settings(lesson.settings), "lesson": lesson.title}


def lessons(controls, items) -> None:
    """A row of lesson buttons; ``lesson_note`` draws the note in force."""
    if not items:
        return
    page_key = controls.slug
    label, *columns = st.columns([0.7] + [1] * len(items), vertical_alignment="center")
    label.markdown(
        "**Lessons**",
        help="One click sets the controls; then read the note under them.",
    )
    for column, lesson in zip(columns, items, strict=True):
        column.button(
            lesson.title,
            key=f"lesson_{page_key}_{lesson.title}",
            on_click=_apply,
            args=(controls.settings(lesson.settings), lesson.title),
            width="stretch",
        )


def active_lesson(controls, items):
    """The lesson whose settings the controls hold, if it was picked (by its
    button, or by name in the URL of a landing-page link); else None."""
    active = st.session_state.get(_LESSON) or st.query_params.get("lesson")
    for lesson in items:
        if lesson.title == active:
            keyed = controls.settings(lesson.settings)
            texts = controls.url_settings(lesson.settings)
            if all(_holds(k, v, texts[k]) for k, v in keyed.items()):
                return lesson
    return None


def lesson_note(controls, items, verify=None) -> None:
    """The note of the lesson in force, and its check.

    ``verify(lesson)`` returns the lesson's ``Claim`` (``holds``,
    ``statement``) computed at the page's current setting; the note shows it
    with a tick, or says plainly that it does not hold here.
    """
    lesson = active_lesson(controls, items)
    if lesson is None:
        return
    text = f"**{lesson.title}**: {lesson.notice}"
    claim = verify(lesson) if (verify is not None and lesson.check) else None
    if claim is None:
        st.info(text, icon=":material/school:")
    elif claim.holds:
        st.info(f"{text}\n\n✓ Checked: {claim.statement}", icon=":material/school:")
    else:
        st.warning(
            f"{text}\n\n✗ Not at these settings: {claim.statement}",
            icon=":material/school:",
        )
