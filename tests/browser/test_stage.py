"""The first screen of every family page, and its Play chart, in a browser.

A projector shows 1280x720 in presenter mode; a laptop 1920x1080 in the
default view. Before any scrolling, the page's main slider, its first
metric and its main chart (with Play) must all be inside that screen. The
main chart's own slider and Play button must change its frames in the
browser, with no script run on the server.
"""

import pytest

from tests.browser import play
from tests.browser.conftest import SHOTS, screenshot, wait_until_idle
from ui.catalog import page_names

FAMILY_PAGES = page_names()

SCREENS = {
    "default-1920x1080": ({"width": 1920, "height": 1080}, ""),
    "present-1280x720": ({"width": 1280, "height": 720}, "?present=true"),
}
SLIDER = "[data-testid='stMain'] [data-testid='stSlider']"
METRIC = "[data-testid='stMain'] [data-testid='stMetric']"


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not drawn"
    return box


def _inside(box: dict, size: dict) -> bool:
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 1
        and box["y"] + box["height"] <= size["height"] + 1
    )


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("name", FAMILY_PAGES)
def test_the_first_screen_shows_the_slider_a_metric_and_the_main_chart(
    app_url, browser, name, screen
):
    size, query = SCREENS[screen]
    context = browser.new_context(viewport=size)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/{name}{query}")
        wait_until_idle(page, timeout=180_000)
        page.wait_for_function(f"() => !!({play.FIND})()", timeout=60_000)
        state = play.state(page)
        assert state["frames"] == state["steps"] > 1, state
        chart = dict(zip(("x", "y", "right", "bottom"), state["box"], strict=True))
        chart = {"x": chart["x"], "y": chart["y"], "width": chart["right"] - chart["x"],
                 "height": chart["bottom"] - chart["y"]}  # fmt: skip
        where = {
            "main slider": _box(page, SLIDER),
            "first metric": _box(page, METRIC),
            "main chart": chart,
        }
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{screen}.png"))  # the viewport
        outside = {k: b for k, b in where.items() if not _inside(b, size)}
        assert not outside, f"outside the first {size} screen: {outside}"
    finally:
        context.close()


@pytest.mark.parametrize("name", FAMILY_PAGES)
def test_the_main_chart_scrubs_and_plays_in_the_browser(app_url, page, name):
    page.goto(f"{app_url}/{name}")
    wait_until_idle(page, timeout=180_000)
    page.wait_for_function(f"() => !!({play.FIND})()", timeout=60_000)
    first = play.state(page)
    last = first["steps"] - 1
    seen = {first["active"]: (first["title"], first["data"])}
    for step in (0, last, last // 2):
        play.scrub(page, step)
        now = play.state(page)
        assert now["active"] == step, (step, now["active"])
        seen[step] = (now["title"], now["data"])
    titles = {title for title, _ in seen.values()}
    data = {d for _, d in seen.values()}
    assert len(titles) == len(seen) and len(data) == len(seen), "frames did not change"
    play.scrub(page, 0)
    play.press(page, "Play")
    page.wait_for_function(
        f"() => ({play.FIND})().layout.sliders[0].active >= 2", timeout=30_000
    )
    errors_before = len(page.console_errors)
    play.press(page, "Pause")
    assert play.state(page)["title"] != seen[0][0]
    # Plotly rejects an interrupted animation's promise on purpose, and its
    # Play button does not catch it (plotly/plotly.js#2438): the browser logs
    # an "uncaught" undefined. That one, and only after Pause, is expected.
    page.wait_for_timeout(200)
    paused = page.console_errors[errors_before:]
    del page.console_errors[errors_before:]
    assert set(paused) <= {"page error: undefined"}, paused
    # No script ran on the server for any of it: the page is idle and no
    # exception box shows.
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.console_errors == []
    screenshot(page, f"{name}-played")
