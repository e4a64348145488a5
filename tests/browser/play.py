"""Driving a page's Play chart (``ui.figures.play``) in the browser, as a
user does: clicking its Plotly slider, pressing Play. Shared by the browser
tests and ``benchmarks/bench_app.py``."""

from __future__ import annotations

import time

# The Play chart: the Plotly figure whose layout carries ``meta.play``.
FIND = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.meta && g.layout.meta.play)"""

STATE = f"""() => {{
    const gd = ({FIND})();
    if (!gd) return null;
    const box = gd.getBoundingClientRect();
    return {{
        active: gd.layout.sliders[0].active,
        steps: gd.layout.sliders[0].steps.length,
        frames: (gd._transitionData && gd._transitionData._frames || []).length,
        title: gd.layout.title.text,
        data: JSON.stringify(gd.data.map(t => [t.x, t.y, t.text])),
        box: [box.left, box.top, box.right, box.bottom],
    }};
}}"""

# Where to click on the slider's rail to land on step i: the centre of its
# tick (Plotly draws one tick per step, and labels only some when crowded).
STEP_POINT = f"""(i) => {{
    const gd = ({FIND})();
    const rail = gd.querySelector('.slider-rail-rect').getBoundingClientRect();
    const ticks = [...gd.querySelectorAll('.slider-tick-rect')];
    const steps = gd.layout.sliders[0].steps.length;
    if (ticks.length !== steps) {{
        throw new Error(`${{ticks.length}} ticks for ${{steps}} steps`);
    }}
    const tick = ticks[i].getBoundingClientRect();
    return [tick.left + tick.width / 2, rail.top + rail.height / 2];
}}"""


# Arms the Play chart: on its next frame, ``window.__played`` becomes the ms
# from Plotly's "plotly_animating" (the click handled, the frame begun) to
# its "plotly_animated" (the frame drawn), and to the next frame painted.
ARM = f"""() => {{
    const gd = ({FIND})();
    window.__played = null;
    let start = performance.now();
    gd.once('plotly_animating', () => {{ start = performance.now(); }});
    gd.once('plotly_animated', () => {{
        const drawn = performance.now() - start;
        requestAnimationFrame(() => requestAnimationFrame(() => {{
            window.__played = [drawn, performance.now() - start];
        }}));
    }});
    return true;
}}"""


def state(page) -> dict | None:
    return page.evaluate(STATE)


def scrub(page, step: int, timeout: float = 10) -> tuple[float, float, float]:
    """Clicks the Play chart's slider at ``step``. Returns the ms from the
    click (Playwright's) to the new frame painted, and the browser's own ms
    from Plotly starting the frame to it drawn (``plotly_animated``) and to
    the next frame painted."""
    page.evaluate(ARM)
    x, y = page.evaluate(STEP_POINT, step)
    start = time.perf_counter()
    page.mouse.click(x, y)
    page.wait_for_function("() => window.__played !== null", timeout=timeout * 1e3)
    total = 1e3 * (time.perf_counter() - start)
    drawn, painted = page.evaluate("() => window.__played")
    return total, drawn, painted


def press(page, label: str) -> None:
    """Clicks the Play chart's button ``label`` ("Play" or "Pause")."""
    page.locator(".js-plotly-plot .updatemenu-button", has_text=label).first.click()
