"""A teacher's clicks in a real browser: lessons from the landing page, and
presenter mode in the light and the dark theme.

Screenshots go to artifacts/screenshots (not committed).
"""

import importlib

import pytest

from tests.browser.conftest import screenshot, wait_until_idle, watch_errors
from ui.catalog import page_names

ALERT = "[data-testid='stMain'] [data-testid='stAlert']"


def _assert_clean(page):
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert page.console_errors == []


def _note_shown(page, title: str) -> bool:
    # The note of a lesson shows only while the page's controls hold the
    # lesson's settings, and it names the lesson ("<title>: what to notice").
    return any(f"{title}:" in text for text in page.locator(ALERT).all_inner_texts())


@pytest.mark.parametrize("name", page_names())
def test_failure_and_fix_in_two_clicks_from_the_landing_page(app_url, page, name):
    failure, fix = importlib.import_module(f"views.content.{name}").LESSONS[:2]
    page.goto(app_url)
    wait_until_idle(page, timeout=120_000)
    link = page.locator("[data-testid='stMain'] [data-testid='stPageLink'] a").filter(
        has_text=failure.title
    )
    assert link.count() == 1, failure.title
    link.click()  # click 1: the page opens in the failure's state
    page.wait_for_url(f"**/{name}?**", timeout=60_000)
    wait_until_idle(page, timeout=180_000)
    _assert_clean(page)
    assert _note_shown(page, failure.title), page.locator(ALERT).all_inner_texts()
    screenshot(page, f"lesson-{name}-failure")

    page.get_by_role("button", name=fix.title, exact=True).click()  # click 2
    page.wait_for_function(
        """([selector, title]) => [...document.querySelectorAll(selector)]
            .some((e) => e.innerText.includes(title + ":"))""",
        arg=[ALERT, fix.title],
        timeout=120_000,
    )
    wait_until_idle(page, timeout=120_000)
    _assert_clean(page)
    assert not _note_shown(page, failure.title)
    screenshot(page, f"lesson-{name}-fix")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_presenter_mode_from_the_url(app_url, browser, scheme):
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    page = context.new_page()
    page.console_errors = watch_errors(page)
    name = page_names()[0]
    page.goto(f"{app_url}/{name}?present=true")
    wait_until_idle(page, timeout=180_000)
    _assert_clean(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_attribute("data-collapsed") == "true"  # folded away
    labels = page.locator("[data-testid='stExpander'] summary").all_inner_texts()
    assert any("What to try" in label for label in labels), labels
    assert len(labels) >= 3, labels  # the intro and the secondary sections
    shot = screenshot(page, f"presenter-{name}-{scheme}")
    assert shot.stat().st_size > 10_000
    context.close()


def test_a_folded_section_draws_its_charts_when_unfolded(app_url, page):
    # Presenter mode sends no chart of a folded section (a slider move would
    # redraw it unseen); one click on the section draws them, and they stay
    # through the next slider move.
    charts = "[data-testid='stPlotlyChart']"
    page.goto(f"{app_url}/sampled?present=true")
    wait_until_idle(page, timeout=180_000)
    folded = page.locator(charts).count()
    section = page.locator("[data-testid='stExpander']").filter(has_text="Gradients")
    assert section.locator(charts).count() == 0
    section.locator("summary").click()
    # its one chart: the full gradient (the sampled one plays in the main chart)
    section.locator(charts).first.wait_for(timeout=120_000)
    wait_until_idle(page, timeout=120_000)
    assert page.locator(charts).count() == folded + 1
    slider = page.locator("[data-testid='stMain'] [data-testid='stSlider'] input")
    slider.first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-testid='stExpander']")]
            .some((e) => e.innerText.includes("the 128 sampled classes"))""",
        timeout=120_000,
    )
    wait_until_idle(page, timeout=120_000)
    assert section.locator(charts).count() == 1
    _assert_clean(page)
