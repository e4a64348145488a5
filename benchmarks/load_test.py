"""A classroom on one server: N students moving sliders, some of them training.

    .venv/bin/python -m benchmarks.load_test [--students 20] [--seconds 60]
        [--trainers 4] [--epochs 2] [--think 0.5] [--ramp 5] [--timeout 900]

Starts one app server on loopback (``start_app`` of tests/browser/conftest.py),
one headless Chromium and one browser context per student (its own cookies and
Streamlit session), spread over the loss pages of ``ui.catalog``. Each student
opens its page and, for ``--seconds`` after it has drawn, moves the page's
first slider (five steps right, five left, ...; a pause of ``--think`` between
moves) and times key press -> the rerun it started has finished, which is
when ``benchmarks/bench_app.py``'s "metric updated" fires too; moves after
which the first metric reads the same (NaN at two neighbouring settings) are
counted, not waited on. Polled every 50 ms, not every frame, to spare the
CPU that 20 pages share with the server here.

``--trainers`` students on pages with a Train panel first set "Epochs" and
press Train all at once, so that the server's limit of concurrent runs
(``ui.train_panel.MAX_CONCURRENT_RUNS``) is reached: the script records who
saw the waiting message, and from each trainer's progress bar (first shown
-> last changed, which lies inside the server's hold of a training slot)
how many runs trained at the same time. Then they move sliders too.

Reported: errors (Streamlit exception boxes, browser console errors and
failed requests via ``watch_errors``, timeouts, tracebacks in the server's
log), slider latency p50/p95 per page and overall, and the server's memory
(RSS of the server process and its children, sampled every 0.5 s from /proc,
and the server's own high-water mark VmHWM). Loopback only; the whole run is
bounded by ``--timeout``. Exit status 1 when there were errors or more runs
trained at once than the limit allows.

The browser runs on the same 2 cores as the server here; in a classroom each
student's browser has its own machine, so these latencies are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    _free_port,
    start_app,
    wait_for_health,
    watch_errors,
)
from ui.catalog import PAGES, page_name, page_names  # noqa: E402
from ui.train_panel import MAX_CONCURRENT_RUNS  # noqa: E402

SLIDER = "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
METRIC = "[data-testid='stMain'] [data-testid='stMetricValue']"
EXCEPTION = "[data-testid='stException']"
PROGRESS = "[data-testid='stMain'] [data-testid='stProgress']"
CURVES = "[data-testid='stMain'] [class*='st-key-train_curve_']"
WAITING = "runs are training on this server"

# As tests/browser/conftest.py's wait_until_idle, for the async API.
IDLE = """(quiet) => {
    const app = document.querySelector("[data-testid='stApp']");
    const idle = app
        && app.dataset.testScriptState === "notRunning"
        && app.dataset.testConnectionState === "CONNECTED"
        && !document.querySelector("[data-testid='stSkeleton']");
    const now = performance.now();
    if (!idle) {
        window.__lossvizIdleSince = null;
        return false;
    }
    window.__lossvizIdleSince = window.__lossvizIdleSince || now;
    return now - window.__lossvizIdleSince >= quiet;
}"""
# Counts the script runs of the page that have finished (every change of the
# state out of "running" is recorded, however quickly the next one follows).
COUNT_RUNS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    window.__lossvizRunsDone = 0;
    new MutationObserver((records) => {
        for (const r of records) {
            if (r.oldValue === "running") window.__lossvizRunsDone += 1;
        }
    }).observe(app, {attributes: true, attributeOldValue: true,
                     attributeFilter: ["data-test-script-state"]});
}"""
RUNS_DONE = "() => window.__lossvizRunsDone"
# The move is answered: a run started by it has finished and the script is
# idle; the first metric then shows its new value (as in bench_app.py, which
# waits for the metric text to change; a move that leaves it as it was, e.g.
# NaN at two neighbouring settings, would wait forever there).
ANSWERED = """(runs) => {
    const app = document.querySelector("[data-testid='stApp']");
    return app.dataset.testScriptState === "notRunning"
        && window.__lossvizRunsDone > runs;
}"""
RUNNING = """() => document.querySelector("[data-testid='stApp']")
    ?.dataset.testScriptState === "running" """


@dataclass
class Student:
    number: int
    page: str
    trainer: bool = False
    opened_s: float | None = None
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    unchanged: int = 0  # moves after which the first metric showed the same text
    exceptions: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = ""
    # Training, in seconds since the start of the test.
    pressed: float | None = None
    saw_waiting: bool = False
    train_first: float | None = None
    train_last: float | None = None
    train_done: float | None = None


class MemorySampler(threading.Thread):
    """Peak RSS of a process and its descendants, read from /proc."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(name="memory-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.peak_kb = self.last_kb = self.first_kb = 0
        self.peak_processes = 0
        self.hwm_kb = 0
        self._stop = threading.Event()

    @staticmethod
    def _status(pid: int, field_name: str) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field_name + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree(self) -> list[int]:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        # The command may hold spaces: fields follow its ")".
                        parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = [self.pid], [self.pid]
        while frontier:
            frontier = [c for c, p in parents.items() if p in frontier]
            tree.extend(frontier)
        return tree

    def sample(self) -> None:
        tree = self._tree()
        rss = sum(self._status(pid, "VmRSS") for pid in tree)
        self.last_kb = rss
        self.first_kb = self.first_kb or rss
        self.peak_kb = max(self.peak_kb, rss)
        self.peak_processes = max(self.peak_processes, len(tree))
        self.hwm_kb = max(self.hwm_kb, self._status(self.pid, "VmHWM"))

    def run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self.sample()


async def wait_idle(page, timeout_ms: float = 120_000) -> None:
    await page.wait_for_function(IDLE, arg=400, timeout=timeout_ms, polling=50)


async def check_exceptions(page, student: Student) -> None:
    boxes = page.locator(EXCEPTION)
    if await boxes.count():
        text = await boxes.first.inner_text()
        if text not in student.exceptions:
            student.exceptions.append(text)


async def train(page, student: Student, args, start: float, ready) -> None:
    """Sets Epochs, waits for the other trainers, presses Train and watches."""
    epochs = page.get_by_label("Epochs")
    if await epochs.count():
        await epochs.fill(str(args.epochs))
        await epochs.press("Enter")
        await wait_idle(page)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(ready.wait(student.number), timeout=120)
    student.pressed = time.monotonic() - start
    await page.get_by_role("button", name="Train").click()
    deadline = time.monotonic() + args.train_timeout
    last_text = None
    waiting = page.get_by_text(WAITING)
    while time.monotonic() < deadline:
        now = time.monotonic() - start
        if await page.locator(EXCEPTION).count():
            student.note = "training ended in an exception"
            break
        if not student.saw_waiting and await waiting.count():
            student.saw_waiting = True
        progress = page.locator(PROGRESS)
        if await progress.count():
            with contextlib.suppress(Exception):
                text = await progress.first.inner_text(timeout=1_000)
                if text != last_text:
                    last_text = text
                    student.train_first = student.train_first or now
                    student.train_last = now
        elif (
            await page.locator(CURVES).count()
            and not await page.evaluate(RUNNING)
            and not await waiting.count()
        ):
            student.train_done = now
            break
        await asyncio.sleep(0.1)
    else:
        student.timeouts += 1
        student.note = f"training not finished within {args.train_timeout:.0f} s"
    await check_exceptions(page, student)


async def move_sliders(page, student: Student, args, until: float) -> None:
    slider = page.locator(SLIDER).first
    metric = page.locator(METRIC).first
    if not await slider.count() or not await metric.count():
        student.note = student.note or "no slider or no metric on the page"
        return
    await page.evaluate(COUNT_RUNS)
    moves = 0
    while time.monotonic() < until:
        before = await metric.inner_text()
        runs = await page.evaluate(RUNS_DONE)
        await slider.focus()
        key = "ArrowRight" if (moves // 5) % 2 == 0 else "ArrowLeft"
        started = time.perf_counter()
        await page.keyboard.press(key)
        try:
            await page.wait_for_function(
                ANSWERED, arg=runs, timeout=args.move_timeout * 1e3, polling=50
            )
            student.latencies.append(time.perf_counter() - started)
            if await metric.inner_text() == before:
                student.unchanged += 1
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError, closed page
            student.timeouts += 1
            with contextlib.suppress(Exception):
                await wait_idle(page)
        moves += 1
        await check_exceptions(page, student)
        await asyncio.sleep(args.think)


async def student_session(browser, url, student, args, start, ready) -> None:
    await asyncio.sleep(args.ramp * student.number / max(args.students, 1))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    errors = []
    try:
        page = await context.new_page()
        errors = watch_errors(page)
        opened = time.monotonic()
        try:
            await page.goto(f"{url}/{student.page}", timeout=args.open_timeout * 1e3)
            await wait_idle(page, timeout_ms=args.open_timeout * 1e3)
        except Exception as error:  # noqa: BLE001
            student.failures.append(f"open: {type(error).__name__}")
            student.timeouts += 1
            return
        student.opened_s = time.monotonic() - opened
        await check_exceptions(page, student)
        until = time.monotonic() + args.seconds
        if student.trainer:
            await train(page, student, args, start, ready)
        await move_sliders(page, student, args, until)
    except Exception as error:  # noqa: BLE001 - keep the others going
        student.failures.append(f"{type(error).__name__}: {str(error)[:120]}")
    finally:
        if student.trainer:
            ready.arrive(student.number)  # never keep the others waiting
        student.console = list(errors)  # before closing adds its own noise
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.close(), timeout=30)


class Gate:
    """Releases the trainers together once all have arrived (or given up)."""

    def __init__(self, parties: int):
        self.parties = parties
        self.arrived: set[int] = set()
        self.event = asyncio.Event()
        if parties == 0:
            self.event.set()

    def arrive(self, who: int) -> None:
        self.arrived.add(who)
        if len(self.arrived) >= self.parties:
            self.event.set()

    async def wait(self, who: int) -> None:
        self.arrive(who)
        await self.event.wait()


def assign(args) -> list[Student]:
    """Students round-robin over the loss pages; trainers on pages that train."""
    names = args.pages or page_names()
    trains = {
        page_name(path)
        for path, *_ in PAGES
        if "train_panel(" in (ROOT / path).read_text()
    }
    students = [Student(i, names[i % len(names)]) for i in range(args.students)]
    # Trainers spread over the training pages, one per page before a second.
    candidates = sorted(
        (s for s in students if s.page in trains),
        key=lambda s: (s.number // len(names), s.number),
    )
    for student in candidates[: args.trainers]:
        student.trainer = True
    return students


async def run_class(url: str, students: list[Student], args, start: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        ready = Gate(sum(s.trainer for s in students))
        try:
            await asyncio.gather(
                *(
                    student_session(browser, url, s, args, start, ready)
                    for s in students
                )
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), timeout=30)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted(
        [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same time
    )
    count = peak = 0
    for _, step in events:
        count += step
        peak = max(peak, count)
    return peak


def ms(values, q) -> str:
    return f"{1e3 * float(np.percentile(values, q)):.0f}" if values else "-"


def report(students, sampler, log_path: Path, args, elapsed, timed_out) -> int:
    print(
        f"\nLoad test: {len(students)} students, {args.seconds:.0f} s of slider "
        f"moves each (think {args.think} s), {sum(s.trainer for s in students)} "
        f"trainers x {args.epochs} epochs, one server; {elapsed:.0f} s in all"
        + ("; HARD TIMEOUT REACHED" if timed_out else "")
    )
    header = (
        f"{'page':<20} {'students':>8} {'moves':>6} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'max ms':>7} {'same':>5} {'timeouts':>8} {'open s p50':>10}"
    )
    print(header)
    print("-" * len(header))
    rows = {}
    for s in students:
        rows.setdefault(s.page, []).append(s)
    everyone = [*rows.items(), ("all", students)]
    for name, group in everyone:
        latencies = [x for s in group for x in s.latencies]
        opened = [s.opened_s for s in group if s.opened_s is not None]
        print(
            f"{name:<20} {len(group):>8} {len(latencies):>6} {ms(latencies, 50):>7} "
            f"{ms(latencies, 95):>7} {ms(latencies, 100):>7} "
            f"{sum(s.unchanged for s in group):>5} "
            f"{sum(s.timeouts for s in group):>8} "
            f"{statistics.median(opened) if opened else float('nan'):>10.1f}"
        )

    exceptions = [(s.number, e) for s in students for e in s.exceptions]
    console = [(s.number, e) for s in students for e in s.console]
    failures = [(s.number, e) for s in students for e in s.failures]
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    tracebacks = log.count("Traceback (most recent call last)")
    timeouts = sum(s.timeouts for s in students)
    print(
        f"\nErrors: {len(exceptions)} exception boxes, {len(console)} console "
        f"errors / failed requests, {timeouts} timeouts, {len(failures)} session "
        f"failures, {tracebacks} tracebacks in the server log ({log_path.name})"
    )
    for number, text in (exceptions + console + failures)[:15]:
        print(f"  student {number}: {text.splitlines()[0][:200]}")
    seen = set()
    for number, text in exceptions:  # each kind once, with its traceback
        if text.splitlines()[0] not in seen:
            seen.add(text.splitlines()[0])
            print(f"\n  student {number}'s exception in full:")
            print("    " + "\n    ".join(text.splitlines()[:40]))
    for s in students:
        if s.note:
            print(f"  student {s.number} ({s.page}): {s.note}")

    trainers = [s for s in students if s.trainer]
    intervals = [
        (s.train_first, s.train_last)
        for s in trainers
        if s.train_first is not None and s.train_last is not None
    ]
    peak = max_overlap(intervals)
    waited = [s.number for s in trainers if s.saw_waiting]
    if trainers:
        print(
            f"\nTraining: {len(trainers)} trainers pressed Train together; "
            f"{sum(s.train_done is not None for s in trainers)} finished; waiting "
            f"message seen by {len(waited)} (students {waited}); at most {peak} "
            f"runs trained at once (limit {MAX_CONCURRENT_RUNS})"
        )
        print(
            f"  {'student':>7} {'page':<20} {'pressed s':>9} {'trained from':>12} "
            f"{'to':>6} {'done s':>7} {'waited':>6}"
        )
        for s in trainers:

            def fmt(v):
                return "-" if v is None else f"{v:.1f}"

            print(
                f"  {s.number:>7} {s.page:<20} {fmt(s.pressed):>9} "
                f"{fmt(s.train_first):>12} {fmt(s.train_last):>6} "
                f"{fmt(s.train_done):>7} {'yes' if s.saw_waiting else 'no':>6}"
            )
    print(
        f"\nServer memory: {sampler.first_kb / 1024:.0f} MB before the students, "
        f"peak RSS {sampler.peak_kb / 1024:.0f} MB (server and children, up to "
        f"{sampler.peak_processes} processes), VmHWM of the server process "
        f"{sampler.hwm_kb / 1024:.0f} MB, {sampler.last_kb / 1024:.0f} MB at the end"
    )
    bad = exceptions or console or failures or tracebacks or timeouts or timed_out
    return 1 if bad or peak > MAX_CONCURRENT_RUNS else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="slider time")
    parser.add_argument("--trainers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="per training run")
    parser.add_argument("--think", type=float, default=0.5, help="s between moves")
    parser.add_argument("--ramp", type=float, default=5, help="s over which to join")
    parser.add_argument("--pages", nargs="*", choices=page_names(), default=None)
    parser.add_argument("--move-timeout", type=float, default=60)
    parser.add_argument("--open-timeout", type=float, default=300)
    parser.add_argument("--train-timeout", type=float, default=300)
    parser.add_argument("--timeout", type=float, default=900, help="whole run, s")
    args = parser.parse_args()
    if not CHROMIUM or not os.path.exists(CHROMIUM):
        sys.exit("Chromium is not installed (apt-get install chromium)")

    students = assign(args)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = SHOTS.parent / f"app-{port}.log"
    server = start_app(port)

    def stop_server() -> None:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    def hard_stop(*_):  # the last resort if the event loop itself is stuck
        stop_server()
        os._exit(2)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout) + 120)
    sampler = MemorySampler(server.pid)
    timed_out = False
    start = time.monotonic()
    try:
        wait_for_health(url)
        sampler.sample()
        sampler.start()
        print(
            f"{len(students)} students on {url}: "
            + ", ".join(
                f"{s.number}:{s.page}{'*' if s.trainer else ''}" for s in students
            )
            + "  (* trains)",
            flush=True,
        )
        start = time.monotonic()
        try:
            asyncio.run(
                asyncio.wait_for(
                    run_class(url, students, args, start), timeout=args.timeout
                )
            )
        except TimeoutError:
            timed_out = True
        elapsed = time.monotonic() - start
        sampler.stop()
    finally:
        stop_server()
        signal.alarm(0)
    return report(students, sampler, log_path, args, elapsed, timed_out)


if __name__ == "__main__":
    sys.exit(main())
