"""What a chart costs the browser on a slider move.

    .venv/bin/python -m benchmarks.bench_charts [--moves 20]

Four small pages, each a slider, a metric and line charts drawn as the pages
draw them (``ui.charts.line`` through ``ui.plot``), served side by side and
moved in turn in one headless chromium (the measure of bench_app: key press
-> the server's "script finished" message -> the next frame drawn):

- one chart whose curve follows the slider;
- six such charts;
- six charts of which only the first follows the slider (Streamlit's browser
  side leaves an unchanged element alone);
- six charts whose curves stay put and whose "current" marker follows the
  slider, as the pages' sweep charts do.

The gaps between the rows are the cost of redrawing a chart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_app import NEXT_FRAME, SLIDER, report  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    RunWatch,
    _free_port,
    wait_for_health,
    wait_until_idle,
)

PAGE = """
import numpy as np
import streamlit as st
import ui

CHARTS, FOLLOW = {charts}, "{follow}"
x = st.slider("x", 0, 100, 50, key="x")
st.metric("x squared", x * x)
t = np.linspace(0.0, 10.0, 200)
for i in range(CHARTS):
    moves = FOLLOW == "all" or (FOLLOW == "first" and i == 0)
    shift = x / 10 if moves else 0.0
    curves = {{f"s{{k}}": np.sin(t * (k + 1) + shift + i) for k in range(3)}}
    marker = x / 10 if FOLLOW == "marker" else None
    ui.plot(ui.charts.line(t, curves, title=f"chart {{i}}", x_title="t",
                           y_title="y", marker_x=marker), summary="")
"""
VARIANTS = {
    "one chart, follows": (1, "all"),
    "six charts, all follow": (6, "all"),
    "six charts, one follows": (6, "first"),
    "six charts, marker only": (6, "marker"),
}


def latency(urls: dict[str, str], moves: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times = {name: [] for name in urls}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pages = {}
        for name, url in urls.items():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.runs = RunWatch(page)
            page.goto(url)
            wait_until_idle(page, timeout=120_000)
            pages[name] = page
        for i in range(moves):  # interleaved across the variants
            for name, page in pages.items():
                slider = page.locator(SLIDER).first
                slider.focus()
                done = len(page.runs.finished)
                start = time.perf_counter()
                page.keyboard.press("ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft")
                page.runs.wait_for_more(done, timeout=60)
                page.evaluate(NEXT_FRAME)
                times[name].append(time.perf_counter() - start)
                wait_until_idle(page, timeout=60_000, quiet_ms=50)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls = {}
        for n, (name, (charts, follow)) in enumerate(VARIANTS.items()):
            script = Path(tmp) / f"variant_{n}.py"
            script.write_text(PAGE.format(charts=charts, follow=follow))
            port = _free_port()
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    str(script),
                    "--server.headless=true",
                    f"--server.port={port}",
                    "--server.address=127.0.0.1",
                    "--server.fileWatcherType=none",
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(server.wait, timeout=10)
            stack.callback(server.terminate)
            urls[name] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            wait_for_health(url)
        report(
            "Browser: key press -> finished message -> next frame drawn",
            latency(urls, args.moves),
        )


if __name__ == "__main__":
    main()
