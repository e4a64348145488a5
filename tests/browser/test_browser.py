"""Every page in a real browser: drawn, a control moved, a short training run.

No Streamlit exception box and no browser console error may show. One
screenshot per page goes to artifacts/screenshots (not committed).
"""

import pytest

from tests.browser.conftest import screenshot, wait_until_idle
from ui.catalog import page_names

PAGES = page_names()


def _assert_clean(page):
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert page.console_errors == []


def test_landing_page_links_every_page(app_url, page):
    page.goto(app_url)
    wait_until_idle(page)
    _assert_clean(page)
    links = page.locator("[data-testid='stMain'] [data-testid='stPageLink'] a")
    hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
    for name in PAGES:
        assert any(h and h.rstrip("/").endswith(name) for h in hrefs), (name, hrefs)
    screenshot(page, "home")


@pytest.mark.parametrize("name", PAGES)
def test_page_draws_responds_and_trains(app_url, page, name):
    page.goto(f"{app_url}/{name}")
    wait_until_idle(page, timeout=180_000)
    _assert_clean(page)
    metrics = page.locator("[data-testid='stMetricValue']")
    assert metrics.count() > 0
    before = "|".join(metrics.all_inner_texts())
    slider = page.locator(
        "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
    )
    if slider.count():
        slider.first.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        # The metrics change once the rerun has drawn them.
        page.wait_for_function(
            """(before) => [...document.querySelectorAll(
                    "[data-testid='stMetricValue']")]
                .map(e => e.innerText).join("|") !== before""",
            arg=before,
            timeout=120_000,
        )
        wait_until_idle(page, timeout=120_000)
        _assert_clean(page)
    screenshot(page, name)
    train = page.get_by_role("button", name="Train", exact=True)
    if train.count():
        epochs = page.get_by_label("Epochs")
        if epochs.count():
            epochs.fill("1")
            epochs.press("Enter")
            wait_until_idle(page, timeout=120_000)
        charts_before = page.locator("[data-testid='stPlotlyChart']").count()
        train.first.click()
        page.wait_for_function(
            """(n) => document.querySelectorAll(
                "[data-testid='stPlotlyChart']").length > n""",
            arg=charts_before,
            timeout=240_000,
        )
        wait_until_idle(page, timeout=240_000)
        _assert_clean(page)
        screenshot(page, f"{name}-trained")
