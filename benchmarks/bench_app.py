"""How fast the explorer feels: rerun cost, slider latency, cold start.

    .venv/bin/python -m benchmarks.bench_app [--moves 20] [--skip-browser]

Three tables, each measured side by side with a one-line baseline page (a
slider and a metric, the floor Streamlit itself sets) in the same run:

1. server-side rerun after a slider move (AppTest, in process), per page;
2. in a real browser (Playwright + Debian's chromium): key press on the page's
   first slider -> metric text changed and the script finished, p50 and p95;
3. cold start: ``streamlit run app.py`` -> landing page drawn, and -> the
   first loss page drawn (the browser launched at the start, as a user's).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    _free_port,
    start_app,
    wait_for_health,
    wait_until_idle,
)
from ui.catalog import PAGE_DIR, page_names  # noqa: E402

PAGES = page_names()
SLIDER = "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
BASELINE = """
import streamlit as st
x = st.slider("x", 0, 100, 50, key="x")
st.metric("x squared", x * x)
"""


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def rerun_times(moves: int) -> dict[str, list[float]]:
    from streamlit.testing.v1 import AppTest

    apps = {"baseline (one slider)": AppTest.from_string(BASELINE)}
    for name in PAGES:
        apps[name] = AppTest.from_file(str(ROOT / PAGE_DIR / f"{name}.py"))
    for app in apps.values():
        app.default_timeout = 120
        app.run()
    times = {name: [] for name in apps}
    for i in range(moves):  # interleaved across pages
        for name, app in apps.items():
            if app.slider:
                slider = app.slider[0]
                lo, hi = slider.min, slider.max
                step = slider.step or (hi - lo) / 20
                value = min(max(lo + ((i + 1) * step) % (hi - lo + step), lo), hi)
            else:  # a select_slider: walk its options
                slider = app.select_slider[0]
                options = slider.options
                value = type(slider.value)(options[(i + 1) % len(options)])
            slider.set_value(value)
            start = time.perf_counter()
            app.run()
            times[name].append(time.perf_counter() - start)
            assert not app.exception, (name, app.exception)
    return times


def browser_latency(url_for: dict[str, str], moves: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out = {name: [] for name in url_for}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pages = {}
        for name, url in url_for.items():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            wait_until_idle(page, timeout=120_000)
            pages[name] = page
        for i in range(moves):
            for name, page in pages.items():
                metric = page.locator("[data-testid='stMetricValue']").first
                before = metric.inner_text()
                slider = page.locator(SLIDER).first
                slider.focus()
                key = "ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft"
                start = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function(
                    """(before) => {
                        const app = document.querySelector("[data-testid='stApp']");
                        const m = document.querySelector(
                            "[data-testid='stMetricValue']");
                        return app.dataset.testScriptState === "notRunning"
                            && m && m.innerText !== before;
                    }""",
                    arg=before,
                    timeout=30_000,
                    polling="raf",
                )
                out[name].append(time.perf_counter() - start)
        browser.close()
    return out


def cold_start() -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    server = start_app(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            wait_for_health(url)
            page.goto(url)
            page.wait_for_selector("[data-testid='stPageLink']", timeout=120_000)
            landing = time.perf_counter() - start
            page.goto(f"{url}/{PAGES[0]}")
            page.wait_for_selector("[data-testid='stMetricValue']", timeout=120_000)
            wait_until_idle(page, timeout=120_000, quiet_ms=100)
            first = time.perf_counter() - start
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"landing page drawn": landing, "first loss page drawn": first}


def report(title: str, times: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    base = statistics.median(next(iter(times.values())))
    print(f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}")
    for name, values in times.items():
        p50 = percentile(values, 50)
        print(
            f"{name:<24} {1e3 * p50:>8.1f} {1e3 * percentile(values, 95):>8.1f} "
            f"{p50 / base:>14.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    report("Server-side rerun after a slider move (AppTest)", rerun_times(args.moves))
    if args.skip_browser:
        return
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline.py"
        baseline.write_text(BASELINE)
        app_port, base_port = _free_port(), _free_port()
        app = start_app(app_port)
        base = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(baseline),
                "--server.headless=true",
                f"--server.port={base_port}",
                "--server.address=127.0.0.1",
                "--server.fileWatcherType=none",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_health(f"http://127.0.0.1:{app_port}")
            wait_for_health(f"http://127.0.0.1:{base_port}")
            urls = {"baseline (one slider)": f"http://127.0.0.1:{base_port}"}
            for name in PAGES:
                urls[name] = f"http://127.0.0.1:{app_port}/{name}"
            report(
                "Browser: key press on a slider -> metric updated, script finished",
                browser_latency(urls, args.moves),
            )
        finally:
            for proc in (app, base):
                proc.terminate()
                proc.wait(timeout=10)
    print("\nCold start: `streamlit run app.py` with a browser opened at start")
    for name, seconds in cold_start().items():
        print(f"{name:<24} {seconds:>8.2f} s")


if __name__ == "__main__":
    main()
