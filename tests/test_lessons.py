"""Every lesson sets its page's controls in one click and the page runs."""

import importlib

import pytest
from streamlit.testing.v1 import AppTest

from ui.catalog import PAGE_DIR, page_names
from ui.classroom import fold_key

CONTENT = {p: importlib.import_module(f"views.content.{p}") for p in page_names()}
CASES = [(page, lesson) for page, words in CONTENT.items() for lesson in words.LESSONS]


def test_every_loss_page_has_a_failure_and_a_fix():
    assert all(len(words.LESSONS) >= 2 for words in CONTENT.values())


@pytest.mark.parametrize(
    "page, lesson", CASES, ids=[f"{p}:{lesson.title}" for p, lesson in CASES]
)
def test_a_lesson_names_controls_of_its_page_within_their_ranges(page, lesson):
    controls = CONTENT[page].CONTROLS
    assert controls.slug == page
    controls.settings(lesson.settings)  # raises on an unknown name or a bad value


@pytest.mark.parametrize(
    "page, lesson", CASES, ids=[f"{p}:{lesson.title}" for p, lesson in CASES]
)
def test_every_lesson_states_an_outcome_that_holds_at_its_settings(page, lesson):
    """The lesson's check, computed by its family's explore module at the
    page's defaults with the lesson's settings (seed 0, as a new visitor)."""
    assert lesson.check, f"{lesson.title} states no checked outcome"
    explore = importlib.import_module(f"lossviz.explore.{page}")
    values = CONTENT[page].CONTROLS.defaults() | lesson.settings
    claim = explore.check_lesson(lesson.check, values, 0)
    assert claim.holds, claim.statement
    assert claim.statement


@pytest.mark.parametrize(
    "page, lesson", CASES, ids=[f"{p}:{lesson.title}" for p, lesson in CASES]
)
def test_lesson_button_sets_the_controls_it_names(page, lesson):
    at = AppTest.from_file(f"../{PAGE_DIR}/{page}.py", default_timeout=180).run()
    assert not at.exception
    at.button(key=f"lesson_{page}_{lesson.title}").click().run()
    assert not at.exception, at.exception
    for key, value in CONTENT[page].CONTROLS.settings(lesson.settings).items():
        assert at.session_state[key] == value, key
    notes = [info.value for info in at.info]
    assert any(lesson.notice in note for note in notes)


@pytest.mark.parametrize("page", page_names())
def test_back_to_defaults_restores_every_declared_control(page):
    controls = CONTENT[page].CONTROLS
    at = AppTest.from_file(f"../{PAGE_DIR}/{page}.py", default_timeout=180).run()
    assert not at.exception, at.exception
    lesson = CONTENT[page].LESSONS[0]
    at.button(key=f"lesson_{page}_{lesson.title}").click().run()
    at.button(key=f"reset_{page}").click().run()
    assert not at.exception, at.exception
    for name, value in controls.defaults().items():
        assert at.session_state[controls.key(name)] == value, name


@pytest.mark.parametrize("page", page_names())
def test_presenter_mode_keeps_one_idea_on_screen(page):
    at = AppTest.from_file(f"../{PAGE_DIR}/{page}.py", default_timeout=180).run()
    assert not at.exception, at.exception
    sections = [s.value for s in at.subheader]
    charts = len(at.get("plotly_chart"))
    at.session_state["present"] = True
    at.run()
    assert not at.exception, at.exception
    folded = [e.label for e in at.expander]
    assert folded[0] == "What to try"
    # Each section the page folds away was a heading before and is now the
    # label of an expander; the main section keeps its heading.
    moved = [s for s in sections if s in folded]
    assert len(moved) >= 2, folded
    kept = [s.value for s in at.subheader]
    assert kept and not set(kept) & set(moved)
    assert len(kept) < len(sections)
    # A folded section sends no chart (the browser would redraw it on every
    # move); unfolding brings every chart back.
    assert len(at.get("plotly_chart")) < charts
    for label in folded:
        at.session_state[fold_key(label)] = True
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == charts
