"""How fast the explorer feels: rerun cost, slider latency, cold start.

    .venv/bin/python -m benchmarks.bench_app [--moves 20] [--skip-browser]
        [--cold-repeats 3] [--present] [--against REV]

Three tables, each measured side by side with a one-line baseline page (a
slider and a metric, the floor Streamlit itself sets) in the same run:

1. in process (AppTest): the rerun after a slider move, AppTest's own
   overhead included (it serialises and parses every element);
2. in a real browser (Playwright + Debian's chromium), against real servers
   (the app and the baseline, each on loopback): key press on the page's
   first slider -> the server's "script finished" message received and the
   next frame drawn, p50 and p95 per page; beside it the server's own wall
   time for that script run (noted by the server, see
   ``benchmarks/server_notes.py``): the server-side time of a rerun after a
   slider move;
3. one frame of each page's Play chart (``ui.figures.play``), scrubbed in
   the browser by a click on its own slider: Plotly's "plotly_animating"
   -> "plotly_animated" (the frame drawn) and -> the next frame painted, and
   the click -> painted as Playwright sees it; no server round trip;
4. cold start: ``streamlit run app.py`` -> landing page drawn, and -> the
   first loss page drawn (the browser launched at the start, as a user's),
   beside the one-slider page, alternated, ``--cold-repeats`` times each.

With ``--against REV`` the app as of git revision REV (checked out into a
temporary worktree) is served too, and its pages are moved beside this
tree's in table 2, in the same browser: a change's effect, side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As app.py sets it for the explorer (the pages here run without app.py).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from benchmarks import server_notes  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    RunWatch,
    _free_port,
    start_app,
    wait_for_health,
    wait_until_idle,
)
from ui.catalog import PAGE_DIR, page_names  # noqa: E402

PAGES = page_names()
SLIDER = "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
METRIC = "[data-testid='stMain'] [data-testid='stMetricValue']"
# Resolves after the browser has drawn the next frame (two animation frames:
# the one that applies the new elements, and the one after it is painted).
NEXT_FRAME = """() => new Promise((resolve) =>
    requestAnimationFrame(() => requestAnimationFrame(resolve)))"""
BASELINE = """
import streamlit as st
x = st.slider("x", 0, 100, 50, key="x")
st.metric("x squared", x * x)
"""


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def rerun_times(moves: int) -> dict[str, list[float]]:
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    import lossviz  # noqa: F401

    # As the server runs: .streamlit/config.toml (which AppTest does not read)
    # turns the collection after every run off, app.py freezes TensorFlow's
    # objects out of later collections.
    config.set_option("runner.postScriptGC", False)
    gc.freeze()
    # As app.py does before any page runs: keep TensorFlow's compiled kernels.
    from ui import streamlit_internals

    streamlit_internals.keep_compiled_kernels()
    apps = {"baseline (one slider)": AppTest.from_string(BASELINE)}
    for name in PAGES:
        apps[name] = AppTest.from_file(str(ROOT / PAGE_DIR / f"{name}.py"))
    for app in apps.values():
        app.default_timeout = 120
        app.run()
    times = {name: [] for name in apps}
    for i in range(moves):  # interleaved across pages
        for name, app in apps.items():
            slider = first_slider(app.main)
            if slider.type == "slider":
                lo, hi = slider.min, slider.max
                step = slider.step or (hi - lo) / 20
                value = min(max(lo + ((i + 1) * step) % (hi - lo + step), lo), hi)
            else:  # a select_slider: walk its options
                options = slider.options
                value = type(slider.value)(options[(i + 1) % len(options)])
            slider.set_value(value)
            start = time.perf_counter()
            app.run()
            times[name].append(time.perf_counter() - start)
            assert not app.exception, (name, app.exception)
    return times


def first_slider(node):
    """The page's first slider or select slider, in the order drawn (a page's
    main control comes first, in its stage)."""
    if getattr(node, "type", None) in ("slider", "select_slider"):
        return node
    children = getattr(node, "children", None) or {}
    for key in sorted(children):
        found = first_slider(children[key])
        if found is not None:
            return found
    return None


def browser_latency(
    url_for: dict[str, str], notes_for: dict[str, Path], moves: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per page: key press -> the server's "script finished" message received
    and the next frame drawn (browser), and the server's wall time of the
    script run that the key press started (its own note)."""
    from playwright.sync_api import sync_playwright

    browser_s = {name: [] for name in url_for}
    server_s = {name: [] for name in url_for}
    unchanged = dict.fromkeys(url_for, 0)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pages = {}
        for name, url in url_for.items():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.runs = RunWatch(page)
            page.goto(url)
            wait_until_idle(page, timeout=120_000)
            pages[name] = page
        for i in range(moves):
            for name, page in pages.items():
                notes = notes_for[name]
                _, since = server_notes.run_times(notes)
                metric = page.locator(METRIC).first
                try:
                    before = metric.inner_text()
                except Exception as error:  # say which page, then stop
                    raise RuntimeError(f"{name}: no metric to read") from error
                slider = page.locator(SLIDER).first
                slider.focus()
                key = "ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft"
                value, low, high = slider.evaluate(
                    "(e) => [Number(e.value), Number(e.min), Number(e.max)]"
                )
                if value >= high or value <= low:  # a key that would not move it
                    key = "ArrowLeft" if value >= high else "ArrowRight"
                done = len(page.runs.finished)
                start = time.perf_counter()
                page.keyboard.press(key)
                page.runs.wait_for_more(done, timeout=60)
                page.evaluate(NEXT_FRAME)
                browser_s[name].append(time.perf_counter() - start)
                wait_until_idle(page, timeout=60_000, quiet_ms=50)
                unchanged[name] += metric.inner_text() == before
                runs: list[float] = []
                deadline = time.monotonic() + 5  # the note follows the run's end
                while not runs and time.monotonic() < deadline:
                    runs, _ = server_notes.run_times(notes, since)
                    time.sleep(0.01)
                server_s[name].append(sum(runs) if runs else float("nan"))
        browser.close()
    for name, count in unchanged.items():
        if count:
            print(f"  {name}: the first metric read the same after {count} moves")
    return browser_s, server_s


def scrub_times(url_for: dict[str, str], moves: int) -> dict[str, list[tuple]]:
    """Per page: ``moves`` clicks on its Play chart's slider, each to another
    step; (click -> painted, animating -> animated, animating -> painted) ms."""
    from playwright.sync_api import sync_playwright

    from tests.browser import play

    times = {name: [] for name in url_for}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for name, url in url_for.items():
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(url)
            wait_until_idle(page, timeout=120_000)
            page.wait_for_function(f"() => !!({play.FIND})()", timeout=60_000)
            steps = play.state(page)["steps"]
            for i in range(moves):
                step = (i * 7 + 3) % steps  # a different step each time
                if step == play.state(page)["active"]:
                    step = (step + 1) % steps
                times[name].append(play.scrub(page, step))
            page.close()
        browser.close()
    return times


def report_scrubs(times: dict[str, list[tuple]]) -> None:
    print("\nPlay chart: one frame scrubbed in the browser (no server round trip)")
    print(f"{'page':<24} {'drawn p50':>10} {'drawn p95':>10} {'painted p50':>12} "
          f"{'click->painted p50':>19}")  # fmt: skip
    for name, rows in times.items():
        total, drawn, painted = (np.asarray(c) for c in zip(*rows, strict=True))
        print(
            f"{name:<24} {percentile(drawn, 50):>10.1f} {percentile(drawn, 95):>10.1f} "
            f"{percentile(painted, 50):>12.1f} {percentile(total, 50):>19.1f}"
        )


def cold_start(script: Path) -> tuple[float, float]:
    """Seconds from starting the server to the landing page drawn, and to the
    first loss page drawn."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    server = start_app(port, script)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            wait_for_health(url)
            page.goto(url)
            page.wait_for_selector(
                "[data-testid='stPageLink'], [data-testid='stMetricValue']",
                timeout=120_000,
            )
            landing = time.perf_counter() - start
            if page.locator("[data-testid='stPageLink']").count():
                page.goto(f"{url}/{PAGES[0]}")
            page.wait_for_selector("[data-testid='stMetricValue']", timeout=120_000)
            wait_until_idle(page, timeout=120_000, quiet_ms=100)
            first = time.perf_counter() - start
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return landing, first


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
    parser.add_argument(
        "--cold-repeats", type=int, default=3, help="0 leaves the cold start out"
    )
    parser.add_argument(
        "--present",
        action="store_true",
        help="also the browser latency of each page in presenter mode",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also serve the app as of this git revision and move its pages "
        "beside this tree's",
    )
    args = parser.parse_args()
    report("Server-side rerun after a slider move (AppTest)", rerun_times(args.moves))
    if args.skip_browser:
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        baseline = Path(tmp) / "baseline.py"
        baseline.write_text(BASELINE)
        app_port, base_port = _free_port(), _free_port()
        app_notes = stack.enter_context(server_notes.notes())
        app = start_app(app_port)
        base_notes = stack.enter_context(server_notes.notes())
        base = start_app(base_port, baseline)
        try:
            wait_for_health(f"http://127.0.0.1:{app_port}")
            wait_for_health(f"http://127.0.0.1:{base_port}")
            urls = {"baseline (one slider)": f"http://127.0.0.1:{base_port}"}
            notes = {"baseline (one slider)": base_notes}
            for name in PAGES:
                urls[name] = f"http://127.0.0.1:{app_port}/{name}"
                notes[name] = app_notes
                if args.present:  # beside it, in the same run
                    urls[f"{name} (present)"] = f"{urls[name]}?present=true"
                    notes[f"{name} (present)"] = app_notes
            if args.against:
                other = stack.enter_context(worktree(args.against, Path(tmp)))
                other_port = _free_port()
                other_notes = stack.enter_context(server_notes.notes())
                other_app = start_app(other_port, other / "app.py", cwd=other)
                stack.callback(other_app.wait, timeout=10)
                stack.callback(other_app.terminate)
                wait_for_health(f"http://127.0.0.1:{other_port}")
                for name, old_name in zip(PAGES, page_names_of(other), strict=True):
                    urls[f"{name} @{args.against}"] = (
                        f"http://127.0.0.1:{other_port}/{old_name}"
                    )
                    notes[f"{name} @{args.against}"] = other_notes
            browser_s, server_s = browser_latency(urls, notes, args.moves)
            report(
                "Browser: key press on a slider -> the server's finished message, "
                "the next frame drawn",
                browser_s,
            )
            report("Server: wall time of that script run (the server's note)", server_s)
            report_scrubs(
                scrub_times({n: urls[n] for n in PAGES}, max(args.moves // 2, 5))
            )
        finally:
            for proc in (app, base):
                proc.terminate()
                proc.wait(timeout=10)
    report_cold_start(args.cold_repeats)


def page_names_of(checkout: Path) -> list[str]:
    """The loss pages' URL names in another checkout (pages were renamed:
    sharpening -> sharpen, ...), in its catalogue's order, which is ours."""
    out = subprocess.run(
        [sys.executable, "-c", "from ui.catalog import page_names; "
         "print(' '.join(page_names()))"],
        cwd=checkout, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


@contextlib.contextmanager
def worktree(rev: str, parent: Path):
    """A detached git worktree of ``rev`` under ``parent``, removed after."""
    path = parent / "against"
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(path), rev],
        cwd=ROOT,
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False
        )


def report_cold_start(repeats: int) -> None:
    if repeats < 1:
        return
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline.py"
        baseline.write_text(BASELINE)
        scripts = {
            # The floor: Streamlit's start, the browser's launch, one slider.
            "baseline (one slider)": baseline,
            "streamlit run app.py": ROOT / "app.py",
        }
        times = {name: [] for name in scripts}
        for _ in range(repeats):  # alternated: both see the same machine
            for name, script in scripts.items():
                times[name].append(cold_start(script))
    print(f"\nCold start, a browser opened at start (median of {repeats})")
    print(f"{'command':<24} {'landing s':>10} {'first page s':>13}")
    for name, pairs in times.items():
        landing, first = (
            statistics.median(column) for column in zip(*pairs, strict=True)
        )
        print(f"{name:<24} {landing:>10.2f} {first:>13.2f}")


if __name__ == "__main__":
    main()
