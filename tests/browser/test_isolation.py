"""Two students on one server: neither sees the other's controls or runs.

Two browser contexts (two students' browsers) open the same page. One moves a
control and trains; the other, rerun, must show exactly what it showed
before: its own controls, its own metrics, its own URL, no training curves.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import RunWatch, wait_until_idle, watch_errors
from ui.catalog import page_names

# One epoch of every run a page's Train button starts, measured on a 2-core
# machine: multilabel 4 s (2 runs), triplet 5.5 s (2), sequence 8 s
# (3), sharpen 9.5 s (3). The fastest page present is used.
FASTEST_FIRST = ("multilabel", "triplet", "sequence", "sharpen")
PAGE = next((n for n in FASTEST_FIRST if n in page_names()), page_names()[0])

SLIDER = "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
CURVES = "[data-testid='stMain'] [class*='st-key-train_curve_']"
PROGRESS = "[data-testid='stMain'] [data-testid='stProgress']"

# What a student sees: every control of the main area by its key, every metric.
STATE = """() => {
    const main = document.querySelector("[data-testid='stMain']");
    const keyOf = (element) => {
        const box = element.closest("[class*='st-key-']");
        const name = box && [...box.classList].find((c) => c.startsWith("st-key-"));
        return name ? name.slice("st-key-".length) : "?";
    };
    const controls = {};
    main.querySelectorAll("[data-testid='stSlider'] input[type='range']")
        .forEach((e) => { controls[keyOf(e)] = e.getAttribute("aria-valuetext"); });
    main.querySelectorAll("input[type='checkbox']")
        .forEach((e) => { controls[keyOf(e)] = e.checked; });
    main.querySelectorAll("[data-testid='stNumberInput'] input")
        .forEach((e) => { controls[keyOf(e)] = e.value; });
    main.querySelectorAll("[data-testid='stSelectbox']")
        .forEach((e) => { controls[keyOf(e)] = e.innerText; });
    const metrics = [...main.querySelectorAll("[data-testid='stMetric']")]
        .map((m) => m.innerText);
    return {controls, metrics};
}"""


def _state(page) -> dict:
    return {**page.evaluate(STATE), "url": page.url}


def _rerun(page) -> None:
    """Reruns the page's script as it stands (Streamlit's "r" key)."""
    done = len(page.runs.finished)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("r")
    page.runs.wait_for_more(done, timeout=120)
    wait_until_idle(page)


def _assert_clean(*pages) -> None:
    for page in pages:
        exceptions = page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert page.console_errors == []


@pytest.fixture
def students(app_url, browser):
    """Two students' browsers on the same page of the same server."""
    contexts = [
        browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)
    ]
    pages = []
    for context in contexts:
        page = context.new_page()
        page.console_errors = watch_errors(page)
        page.runs = RunWatch(page)
        page.goto(f"{app_url}/{PAGE}")
        pages.append(page)
    for page in pages:
        wait_until_idle(page, timeout=120_000)
    yield pages
    for context in contexts:
        context.close()


def test_a_moved_control_stays_in_its_session(students):
    alice, bob = students
    alice_before, bob_before = _state(alice), _state(bob)
    assert alice_before == {**bob_before, "url": alice_before["url"]}

    alice.locator(SLIDER).first.focus()
    for _ in range(3):
        alice.keyboard.press("ArrowRight")
    alice.runs.wait_for_run_after(time.perf_counter(), timeout=120)
    wait_until_idle(alice)
    alice_after = _state(alice)
    assert alice_after["controls"] != alice_before["controls"]
    assert alice_after["metrics"] != alice_before["metrics"]
    assert alice_after["url"] != bob_before["url"]  # the URL follows her control

    _rerun(bob)
    assert _state(bob) == bob_before
    _assert_clean(alice, bob)


def test_a_training_run_stays_in_its_session(students):
    alice, bob = students
    tables = bob.locator("[data-testid='stMain'] [data-testid='stDataFrame']")
    bob_tables = tables.count()
    epochs = alice.get_by_label("Epochs")
    epochs.fill("1")
    epochs.press("Enter")
    wait_until_idle(alice)
    alice.get_by_role("button", name="Train").click()
    alice.locator(PROGRESS).first.wait_for(timeout=120_000)

    _rerun(bob)  # while Alice trains
    assert bob.locator(PROGRESS).count() == 0
    assert bob.locator(CURVES).count() == 0

    alice.locator(CURVES).first.wait_for(timeout=180_000)
    wait_until_idle(alice, timeout=180_000)
    assert alice.locator(PROGRESS).count() == 0
    assert alice.locator(CURVES).count() > 0

    _rerun(bob)  # after her run: still nothing of it here
    assert bob.locator(CURVES).count() == 0
    assert tables.count() == bob_tables
    assert bob.get_by_label("Epochs").input_value() != "1"
    _assert_clean(alice, bob)
