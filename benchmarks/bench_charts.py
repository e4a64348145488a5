"""What a chart costs the browser on a slider move.

    .venv/bin/python -m benchmarks.bench_charts [--moves 20]

Four small pages, each a slider, a metric and line charts drawn as the pages
draw them (``ui.charts.line`` through ``ui.plot``), served side by side and
moved in turn in one headless chromium, measured as bench_app measures the
pages (key press -> the server's "script finished" message -> the next frame
drawn; and the server's own time for that run):

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
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import server_notes  # noqa: E402
from benchmarks.bench_app import browser_latency, report  # noqa: E402
from tests.browser.conftest import _free_port, start_app, wait_for_health  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls, notes = {}, {}
        for n, (name, (charts, follow)) in enumerate(VARIANTS.items()):
            script = Path(tmp) / f"variant_{n}.py"
            script.write_text(PAGE.format(charts=charts, follow=follow))
            port = _free_port()
            notes[name] = stack.enter_context(server_notes.notes())
            server = start_app(port, script)
            stack.callback(server.wait, timeout=10)
            stack.callback(server.terminate)
            urls[name] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            wait_for_health(url)
        browser_s, server_s = browser_latency(urls, notes, args.moves)
    report("Browser: key press -> finished message -> next frame drawn", browser_s)
    report("Server: wall time of that script run (the server's note)", server_s)


if __name__ == "__main__":
    main()
