"""A classroom on one server: N students moving sliders, some of them training.

    .venv/bin/python -m benchmarks.load_test [--students 20] [--seconds 60]
        [--trainers 4] [--epochs 2] [--think 0.5] [--ramp 5] [--timeout 900]
        [--pages NAME ...] [--busy-browser] [--no-server-log]

Starts one app server on loopback (``start_app`` of tests/browser/conftest.py),
one headless Chromium and one browser context per student (its own cookies and
Streamlit session), spread over the loss pages of ``ui.catalog`` and joining
over ``--ramp`` seconds. Each student opens its page and, for ``--seconds``
after it has drawn, moves the page's first slider (five steps right, five
left, ...; ``--think`` seconds between moves) and times the key press ->
(a) the page idle again after the rerun it started, which is when
``benchmarks/bench_app.py``'s "metric updated" fires, and (b) the server's
end-of-run message reaching the browser. Moves after which the first metric
reads the same (NaN at two neighbouring settings, a metric the slider does
not drive) are counted, not waited on. Polled every 50 ms, not every frame,
to spare the CPU that 20 pages share with the server here.

``--trainers`` students on pages with a Train panel set "Epochs" to
``--epochs`` and press Train at the same moment, so that the server's limit
(``ui.train_panel.MAX_CONCURRENT_RUNS`` runs at once) is reached; the script
records who was sent, and who saw, the waiting message. Then they move
sliders too.

The server is started with the hooks of ``benchmarks/server_notes.py`` (a
``sitecustomize`` on PYTHONPATH; the app is not changed), which note with the
server's clock each acquire and
release of the training slots, and the wall and CPU time of every script
run: so the limit is checked where it is enforced, and the server's own share
of a move's latency is known.

Reported: errors (Streamlit exception boxes with their traceback, browser
console errors and failed requests via ``watch_errors``, timeouts, tracebacks
in the server's log), slider latency p50/p95 per page and overall, page-open
time, the training timeline, the server's memory (RSS of the server process
and its children, sampled every 0.5 s from /proc, and its high-water mark
VmHWM) and the CPU time of server and browsers. Loopback only; the whole run
is bounded by ``--timeout``. Exit status 1 when there were errors or more
runs trained at once than the limit allows.

The browsers run on the same cores as the server here, while in a classroom
each student's browser has its own machine: Chromium runs under SCHED_IDLE
(``--busy-browser``: at the server's priority) so that the server gets the
CPU first. Latency (a) includes 20 pages' drawing on these cores and (b)
still the browser's delay in sending the key press: both are pessimistic;
the server's own run times are the figure a classroom would see plus the
network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import server_notes  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    SHOTS,
    _free_port,
    is_run_finished,
    start_app,
    wait_for_health,
    watch_errors,
)
from ui.catalog import PAGES, page_name, page_names  # noqa: E402
from ui.train_panel import MAX_CONCURRENT_RUNS  # noqa: E402

SLIDER = "[data-testid='stMain'] [data-testid='stSlider'] input[type='range']"
METRIC = "[data-testid='stMain'] [data-testid='stMetricValue']"
EXCEPTION = "[data-testid='stException']"
WAITING = "runs are training on this server"
RETRIED_PROBE = re.compile(r"request failed: .*/_stcore/(health|host-config) .*ABORTED")

# The run is over: no progress bar, curves drawn, the script idle.
TRAINED = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return app.dataset.testScriptState === "notRunning"
        && !document.querySelector("[data-testid='stMain'] [data-testid='stProgress']")
        && !!document.querySelector(
            "[data-testid='stMain'] [class*='st-key-train_curve_']");
}"""


@dataclass
class Student:
    number: int
    page: str
    trainer: bool = False
    opened_s: float | None = None
    latencies: list[float] = field(default_factory=list)
    # Key press -> the server's "script finished" message reached the browser.
    server_latencies: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)  # perf_counter times
    timeouts: int = 0
    unchanged: int = 0  # moves after which the first metric showed the same text
    exceptions: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = ""
    # Training, in seconds since the start of the test.
    pressed: float | None = None
    saw_waiting: bool = False
    train_waiting_from: float | None = None
    train_waiting_to: float | None = None
    train_first: float | None = None  # progress bar first shown
    train_last: float | None = None  # progress bar text last changed
    train_done: float | None = None  # curves drawn, bar gone, script idle


class ProcessSampler(threading.Thread):
    """Memory of the server's process tree and CPU time of everything we started.

    Read from /proc every ``every`` seconds: RSS summed over the server and its
    children (peak kept), the server's own high-water mark (VmHWM), and the
    user+system CPU time of each process under this script, split into the
    server's tree and the rest (Playwright's driver and Chromium).
    """

    def __init__(self, server_pid: int, every: float = 0.5):
        super().__init__(name="process-sampler", daemon=True)
        self.server, self.every = server_pid, every
        self.peak_kb = self.last_kb = self.first_kb = 0
        self.peak_processes = 0
        self.hwm_kb = 0
        self.cpu: dict[int, tuple[bool, float]] = {}  # pid -> (in server, s)
        self._tick = os.sysconf("SC_CLK_TCK")
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

    @staticmethod
    def _stats() -> dict[int, list[str]]:
        """The fields after the command name of /proc/<pid>/stat, by pid."""
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        # The command may hold spaces: the fields follow its ")".
                        stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
        return stats

    @staticmethod
    def _tree(root: int, stats) -> list[int]:
        tree, frontier = [root], [root]
        while frontier:
            frontier = [pid for pid, f in stats.items() if int(f[1]) in frontier]
            tree.extend(frontier)
        return tree

    def sample(self) -> None:
        stats = self._stats()
        server = set(self._tree(self.server, stats))
        for pid in self._tree(os.getpid(), stats):
            if pid in stats:  # utime, stime: fields 14 and 15 of stat
                ticks = int(stats[pid][11]) + int(stats[pid][12])
                self.cpu[pid] = (pid in server, ticks / self._tick)
        rss = sum(self._status(pid, "VmRSS") for pid in server)
        self.last_kb = rss
        self.first_kb = self.first_kb or rss
        self.peak_kb = max(self.peak_kb, rss)
        self.peak_processes = max(self.peak_processes, len(server))
        self.hwm_kb = max(self.hwm_kb, self._status(self.server, "VmHWM"))

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds so far: (server and children, everything else we run)."""
        server = sum(s for in_server, s in self.cpu.values() if in_server)
        return server, sum(s for _, s in self.cpu.values()) - server

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


# What the server sends a trainer's browser, matched in its websocket frames
# (Streamlit's protobuf messages carry their strings as UTF-8): the panel's
# progress text ("Training <run>…", then "<run> (1 of 2): epoch 1 of 2 on …")
# and the waiting message, re-sent every 0.5 s while the run waits.
PROGRESS_FRAME = re.compile(
    rb"Training [^\x00-\x1f]{1,80}?\xe2\x80\xa6|: epoch \d+ of \d+"
)
WAITING_FRAME = WAITING.encode()


def listen(page, student: Student, start: float) -> None:
    """Times the server's messages as they reach the browser's network layer.

    All pages' frames reach this script through one connection to one
    browser, in the order the browser got them, so times compare between
    students, and a page's own drawing, slowed by the load, does not enter.
    Noted: each full run's "script finished" (to time a slider move on the
    server's side) and, for a trainer after pressing Train, its progress and
    waiting messages.
    """

    def on_frame(payload) -> None:
        if not isinstance(payload, bytes):
            return
        if is_run_finished(payload):
            student.finished_at.append(time.perf_counter())
        if student.pressed is None:
            return
        now = time.monotonic() - start
        if WAITING_FRAME in payload:
            student.train_waiting_from = student.train_waiting_from or now
            student.train_waiting_to = now
        elif PROGRESS_FRAME.search(payload):
            student.train_first = student.train_first or now
            student.train_last = now

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))


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
    waiting = page.get_by_text(WAITING)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if await page.locator(EXCEPTION).count():
            student.note = "training ended in an exception"
            break
        if not student.saw_waiting and await waiting.count():
            student.saw_waiting = True  # drawn on the page, not only sent
        if student.train_first is not None and await page.evaluate(TRAINED):
            student.train_done = time.monotonic() - start
            break
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
    moves = 0
    while time.monotonic() < until:
        before = await metric.inner_text()
        await slider.focus()
        key = "ArrowRight" if (moves // 5) % 2 == 0 else "ArrowLeft"
        started = time.perf_counter()
        await page.keyboard.press(key)
        try:
            deadline = time.monotonic() + args.move_timeout
            while not (answered := [t for t in student.finished_at if t > started]):
                if time.monotonic() > deadline:
                    raise TimeoutError("no script run finished")
                await asyncio.sleep(0.02)
            student.server_latencies.append(answered[0] - started)
            await page.wait_for_function(
                IDLE, arg=0, timeout=args.move_timeout * 1e3, polling=50
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
        listen(page, student, start)
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


def idle_chromium(folder: Path) -> str:
    """Chromium under the SCHED_IDLE policy (``chrt --idle 0``), which every
    process and thread it starts inherits: it gets the CPU the server leaves.
    (``nice`` does not hold: Chromium sets its own processes' nice values,
    e.g. -8 for the browser and GPU processes.)"""
    wrapper = folder / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec chrt --idle 0 "{CHROMIUM}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def run_class(url: str, students: list[Student], args, start: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        with tempfile.TemporaryDirectory() as folder:  # needed until launched
            executable = idle_chromium(Path(folder)) if args.idle_browser else CHROMIUM
            browser = await p.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
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


# Loaded by the server (through PYTHONPATH) unless --no-server-log: notes in
# LOSSVIZ_SERVER_LOG, with the server's clock, (1) each acquire and release of
# the training slots' semaphore (made in ui/train_panel.py; every other
# semaphore is left as it is) and (2) each script run: full page or fragment,
# wall time and the CPU time of its thread. The app itself is not changed.
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


def report(
    students, sampler, cpu_before, log_path: Path, notes, args, elapsed, timed_out
) -> int:
    print(
        f"\nLoad test: {len(students)} students, {args.seconds:.0f} s of slider "
        f"moves each (think {args.think} s), {sum(s.trainer for s in students)} "
        f"trainers x {args.epochs} epochs, one server, Chromium "
        + ("under SCHED_IDLE" if args.idle_browser else "at the server's priority")
        + f"; {elapsed:.0f} s in all"
        + ("; HARD TIMEOUT REACHED" if timed_out else "")
    )
    print(
        "Slider move -> page idle again with the new values (what a student "
        "waits for), and -> the server's end-of-run message at the browser:"
    )
    header = (
        f"{'page':<18} {'students':>8} {'moves':>5} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'max ms':>7} {'server p50':>10} {'p95':>6} {'same':>4} {'timeouts':>8} "
        f"{'open s p50':>10}"
    )
    print(header)
    print("-" * len(header))
    rows = {}
    for s in students:
        rows.setdefault(s.page, []).append(s)
    everyone = [*rows.items(), ("all", students)]
    for name, group in everyone:
        latencies = [x for s in group for x in s.latencies]
        server = [x for s in group for x in s.server_latencies]
        opened = [s.opened_s for s in group if s.opened_s is not None]
        print(
            f"{name:<18} {len(group):>8} {len(latencies):>5} {ms(latencies, 50):>7} "
            f"{ms(latencies, 95):>7} {ms(latencies, 100):>7} "
            f"{ms(server, 50):>10} {ms(server, 95):>6} "
            f"{sum(s.unchanged for s in group):>4} "
            f"{sum(s.timeouts for s in group):>8} "
            f"{statistics.median(opened) if opened else float('nan'):>10.1f}"
        )

    if notes is not None and notes["run_wall"]:
        wall, cpu = notes["run_wall"], notes["run_cpu"]
        print(
            f"The server's own full-page runs (page opens included): {len(wall)}, "
            f"wall p50 {ms(wall, 50)} ms, p95 {ms(wall, 95)} ms; CPU of the run's "
            f"thread p50 {ms(cpu, 50)} ms, p95 {ms(cpu, 95)} ms"
        )

    exceptions = [(s.number, e) for s in students for e in s.exceptions]
    # Under load the frontend gives up on its first health/host-config probes
    # and asks again: the session connects, later than it should.
    retries = [
        (s.number, e) for s in students for e in s.console if RETRIED_PROBE.search(e)
    ]
    console = [(s.number, e) for s in students for e in s.console]
    console = [item for item in console if item not in retries]
    failures = [(s.number, e) for s in students for e in s.failures]
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    tracebacks = log.count("Traceback (most recent call last)")
    timeouts = sum(s.timeouts for s in students)
    print(
        f"\nErrors: {len(exceptions)} exception boxes, {len(console)} console "
        f"errors / failed requests, {timeouts} timeouts, {len(failures)} session "
        f"failures, {tracebacks} tracebacks in the server log ({log_path.name}); "
        f"{len(retries)} connection probes aborted and retried by the frontend "
        f"(for {len({n for n, _ in retries})} students)"
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
    sent = [s.number for s in trainers if s.train_waiting_from is not None]
    if trainers:
        print(
            f"\nTraining: {len(trainers)} trainers pressed Train together; "
            f"{sum(s.train_done is not None for s in trainers)} finished; the "
            f"waiting message was sent to students {sent} and seen on the page "
            f"by {waited}"
        )
        if notes is not None:
            print(
                f"  the server noted: {notes['taken']} runs took a training slot, "
                f"at most {notes['peak']} held at once (limit {MAX_CONCURRENT_RUNS})"
            )
        else:  # a weaker view: messages to a slow browser queue up
            print(
                f"  by the browsers: at most {peak} runs overlap between the first "
                "and the last progress message each received (a hand-over can "
                "look like an overlap when a browser lags)"
            )
        print(
            f"  {'student':>7} {'page':<18} {'pressed':>7} {'waited':>13} "
            f"{'progress':>13} {'done':>6}   (s since start)"
        )

        def fmt(a, b=None):
            if a is None:
                return "-"
            return f"{a:.1f}" if b is None else f"{a:.1f}-{b:.1f}"

        for s in trainers:
            print(
                f"  {s.number:>7} {s.page:<18} {fmt(s.pressed):>7} "
                f"{fmt(s.train_waiting_from, s.train_waiting_to):>13} "
                f"{fmt(s.train_first, s.train_last):>13} {fmt(s.train_done):>6}"
            )
    print(
        f"\nServer memory: {sampler.first_kb / 1024:.0f} MB before the students, "
        f"peak RSS {sampler.peak_kb / 1024:.0f} MB (server and children, up to "
        f"{sampler.peak_processes} processes), VmHWM of the server process "
        f"{sampler.hwm_kb / 1024:.0f} MB, {sampler.last_kb / 1024:.0f} MB at the end"
    )
    (server_now, other_now), (server_before, other_before) = (
        sampler.cpu_seconds(),
        cpu_before,
    )
    server_cpu, other_cpu = server_now - server_before, other_now - other_before
    cores = os.cpu_count() or 1
    print(
        f"CPU during the class: server {server_cpu:.0f} s, Chromium + Playwright "
        f"+ this script {other_cpu:.0f} s, of {cores} cores x {elapsed:.0f} s = "
        f"{cores * elapsed:.0f} s (the rest went to other work on the machine)"
    )
    bad = exceptions or console or failures or tracebacks or timeouts or timed_out
    too_many = (notes["peak"] if notes is not None else peak) > MAX_CONCURRENT_RUNS
    return 1 if bad or too_many else 0


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
    parser.add_argument(
        "--no-server-log",
        dest="server_log",
        action="store_false",
        help="do not have the server note its training slots and script runs "
        "(see benchmarks/server_notes.py)",
    )
    parser.add_argument(
        "--busy-browser",
        dest="idle_browser",
        action="store_false",
        help="run Chromium at the server's priority, not under SCHED_IDLE",
    )
    args = parser.parse_args()
    if not CHROMIUM or not os.path.exists(CHROMIUM):
        sys.exit("Chromium is not installed (apt-get install chromium)")

    students = assign(args)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = SHOTS.parent / f"app-{port}.log"
    hooks = contextlib.ExitStack()
    notes_path = hooks.enter_context(server_notes.notes()) if args.server_log else None
    server = start_app(port)  # it passes our environment on

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
    sampler = ProcessSampler(server.pid)
    timed_out = False
    start = time.monotonic()
    try:
        wait_for_health(url)
        sampler.sample()
        cpu_before = sampler.cpu_seconds()
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
    notes = server_notes.server_log(notes_path) if args.server_log else None
    hooks.close()
    return report(
        students, sampler, cpu_before, log_path, notes, args, elapsed, timed_out
    )


if __name__ == "__main__":
    sys.exit(main())
