"""Simulated students in a lecture hall: Streamlit's own protocol through HAProxy.

    .venv/bin/python -m benchmarks.students [--replicas 2] [--students 40]
        [--seconds 60] [--think 2:4] [--ramp 10] [--pages NAME ...]
        [--trainers-per-process 0] [--epochs 2] [--train-at 15]
        [--blip-share 0] [--kill p2 --kill-at 30]
        [--staircase START:STEP:MAX --step-seconds 60 --settle 15]
        [--url http://host:port] [--json PATH] [--timeout 900]

Starts a lecture hall (deploy/serve.py: ``--replicas`` `streamlit run app.py`
processes behind HAProxy on free loopback ports) unless ``--url`` names one
already running, and fills it with students. A student is a coroutine that
does what the browser's frontend does, without drawing anything:

1. it opens its page over HTTP (``GET /<page>``, then the frontend's
   ``/_stcore/health`` and ``/_stcore/host-config``), keeping the cookies:
   HAProxy's ``lossviz_server`` (which process it sticks to) and Streamlit's
   ``_streamlit_xsrf``;
2. it opens ``/_stcore/stream`` with those cookies, the subprotocols
   ``streamlit, <xsrf token>[, <session id to resume>]`` and the proxy's origin,
   and sends a ``BackMsg`` ``rerun_script`` (a ``ClientState``: the page name,
   then the page's script hash, the hashes of the messages it has cached, the
   widget states);
3. it reads the ``ForwardMsg`` stream: ``new_session`` (the session id),
   ``navigation`` (the page's script hash), ``delta`` (each element; a
   widget's id is in its element), ``script_finished``, ``ref_hash`` (a
   message it cached); an ``exception`` element is an error.

Each student sets its own seed (the sidebar's ``number_input`` key="seed")
once, then every ``--think`` seconds moves its page's first slider (five
steps right, five left, as benchmarks/load_test.py does) and times the move
from sending the rerun to the "script finished" message. A browser sends
every widget's value with each rerun and writes bound controls into its URL;
a student sends only the control it moved and keeps the URL of the link it
opened, so the seed it set lives only in its session on the server: a move
that reached a process without that session would run with seed 0, and the
server's notes (below) would show it.

``--trainers-per-process K``: once the students have joined, K of those on
each process set "Epochs" to ``--epochs`` and press Train together, ``--train-at``
seconds into the run, more than the ``MAX_CONCURRENT_RUNS`` a process lets
train at once. ``--blip-share F``: that share of the students drops its
websocket once (a network blip) and reconnects as the frontend does (health
probes, then the stream with its session id): the cookie must bring it back
to its process and its session. ``--kill NAME --kill-at S``: the process
NAME is killed (SIGKILL) S seconds in; its students reconnect the same way,
land on another process in a new session, and carry on.

The processes run with the hooks of benchmarks/server_notes.py (a
``sitecustomize`` on PYTHONPATH; the app is not changed), one notes file per
process, plus a note after every script run of its session id and the seed
held in its ``st.session_state``. Reported:

- moves: count, per second, p50/p95/max latency, per page and per process;
  with ``--staircase``, each step's (``STEP`` more students join every
  ``--step-seconds``, measured after ``--settle`` s) and the most students held
  at p95 <= 1 s, and the moves per second then;
- stickiness: every student's HTTP answers and stream handshakes came from
  one process (HAProxy's ``X-Lossviz-Server`` header and cookie), it kept one
  session id through its blip, every run of its session was noted by that
  process, and each run after it set its seed ran with that seed;
- errors: exception elements, connections dropped by the server side, HTTP
  statuses >= 500 (and any other failed request), moves without an answer
  within ``--move-timeout``, runs that did not finish normally;
- training: per process, runs that took a slot and the most held at once (the
  server's own record), who was sent the waiting message;
- the kill: when HAProxy marked the process DOWN, its connection errors and
  redispatches, and for each of its students the time to a working page
  again, the new process and session, and what was lost (seed, Train runs);
- CPU of each process, HAProxy and the students' own process, and how late
  the students' event loop ran (if the students starve, latency is theirs).

Loopback only; the whole run is bounded by ``--timeout``, every student by
``--max-moves`` and the run's end, every wait by its own timeout. Exit
status 1 on any error among students not on a killed process, on a student
not kept on its process, or on more runs training at once on a process than
the limit allows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import server_notes  # noqa: E402
from deploy import serve  # noqa: E402
from ui.catalog import page_names  # noqa: E402
from ui.train_panel import MAX_CONCURRENT_RUNS  # noqa: E402

COOKIE = "lossviz_server"  # deploy/haproxy.cfg.tmpl
SERVER_HEADER = "x-lossviz-server"
XSRF_COOKIE = "_streamlit_xsrf"
WAITING = "runs are training on this server"  # ui/train_panel.py
FINISHED = ForwardMsg.ScriptFinishedStatus
DONE = (FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
MAX_CACHED_MESSAGE_AGE = 2  # Streamlit's global.maxCachedMessageAge
TARGET_P95 = 1.0  # s: a move answered within a second, 19 times in 20
# The seeds students set (not 0, the default, so that a session that lost it
# shows): a few, as in a class where the teacher says which to try.
SEEDS = (1, 2, 3)

# Loaded by every process (after benchmarks/server_notes.py's hooks, in the
# same module): one notes file per process, and after every script run the
# session's id and the seed in its st.session_state.
NOTES_PREFIX = """
import os

os.environ["LOSSVIZ_SERVER_LOG"] += "." + os.environ.get(
    "LOSSVIZ_SERVER_NAME", str(os.getpid())
)
"""
SESSION_NOTES = """

_time_runs_only = _time_runs


def _time_runs(module):
    _time_runs_only(module)
    run_script = module.ScriptRunner._run_script

    def noted(self, rerun_data):
        started = time.time()
        try:
            return run_script(self, rerun_data)
        finally:
            try:
                state = self._session_state
                seed = state["seed"] if "seed" in state else "-"
            except Exception:  # noqa: BLE001 - a note must not break a run
                seed = "?"
            kind = "fragment" if rerun_data.fragment_id_queue else "full"
            _note("session", self._session_id, kind, seed, f"{started:.6f}")

    module.ScriptRunner._run_script = noted
"""


@contextlib.contextmanager
def session_notes():
    """Processes started inside note their runs; yields (env, notes path base)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sitecustomize.py").write_text(
            NOTES_PREFIX + server_notes.SERVER_HOOKS + SESSION_NOTES
        )
        base = Path(folder) / "server.log"
        python_path = os.pathsep.join(
            p for p in (folder, os.environ.get("PYTHONPATH")) if p
        )
        yield {"LOSSVIZ_SERVER_LOG": str(base), "PYTHONPATH": python_path}, base


def read_sessions(path: Path) -> list[tuple[float, str, str, str]]:
    """(server time at its start, session id, "full"/"fragment", seed) of
    each noted run."""
    if not path.exists():
        return []
    return [
        (float(w[5]), w[2], w[3], w[4])
        for w in (line.split() for line in path.read_text().splitlines())
        if len(w) == 6 and w[1] == "session"
    ]


# -- HTTP, as little of it as a browser's first requests need -----------------
@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def cookies(self) -> dict[str, str]:
        found = {}
        for key, value in self.headers:
            if key == "set-cookie":
                name, _, rest = value.partition("=")
                found[name.strip()] = rest.split(";", 1)[0].strip()
        return found


async def http_get(host: str, port: int, path: str, cookies: dict, timeout: float):
    """One GET over a fresh connection (``Connection: close``)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), timeout
    )
    try:
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "User-Agent: lossviz-student\r\nAccept: */*\r\n"
                + (f"Cookie: {cookie}\r\n" if cookie else "")
                + "Connection: close\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    headers = [
        (k.strip().lower(), v.strip())
        for k, _, v in (line.partition(":") for line in head[1:])
    ]
    return Answer(status, headers)


# -- one student --------------------------------------------------------------
@dataclass
class Widget:
    id: str
    kind: str  # the element's type: "slider", "number_input", "button", ...
    element: object  # its protobuf
    fragment_id: str
    main: bool  # in the main area, not the sidebar


def widget_key(widget_id: str) -> str:
    """The user key in a Streamlit widget id (``$$ID-<hash>-<key>``)."""
    return widget_id.split("-", 2)[-1]


@dataclass
class Move:
    at: float  # s since the start of the run, when the rerun was sent
    seconds: float
    kind: str  # "slider", "seed", "epochs", "train"
    server: str
    after_kill: bool = False


@dataclass
class Student:
    number: int
    page: str
    seed: int
    blip_at: float | None = None  # s into its moves
    trainer: bool = False
    # Who answered: (s since start, server) for every HTTP answer and stream
    # handshake; and the session ids the server gave, in order.
    answers: list[tuple[float, str, str]] = field(default_factory=list)
    cookie_values: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    seed_sent_wall: float | None = None
    opened_s: float | None = None
    moves: list[Move] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # errors on a killed process
    blipped: bool = False
    reconnects: list[dict] = field(default_factory=list)
    pressed: float | None = None
    train_seconds: float | None = None
    sent_waiting: bool = False
    curves_before_kill: bool = False
    curves_after_kill: bool | None = None
    note: str = ""


class Browserless:
    """A student's connection to the hall: cookies, the stream, the runs."""

    def __init__(self, student: Student, host: str, port: int, args, clock):
        self.student, self.host, self.port, self.args = student, host, port, args
        self.clock = clock  # () -> s since the start of the run
        self.base = f"http://{host}:{port}"
        self.cookies: dict[str, str] = {}
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.session_id = ""
        self.page_hash = ""
        self.widgets: dict[str, Widget] = {}
        self.values: dict[str, list[float]] = {}
        self.pending: asyncio.Future | None = None
        self.cache: dict[str, tuple[int, ForwardMsg]] = {}
        self.runs = 0
        self.closed = asyncio.Event()
        self.closing = False  # we close it ourselves
        self.killed_at: float | None = None  # set by the run when our process dies
        self.curves = False

    # -- identity -----------------------------------------------------------
    @property
    def server(self) -> str:
        return self.cookies.get(COOKIE, "?")

    def _answered(self, what: str, answer_headers) -> None:
        server = answer_headers.get(SERVER_HEADER) or "-"
        self.student.answers.append((self.clock(), what, server))

    def _take_cookies(self, found: dict[str, str]) -> None:
        if COOKIE in found:
            self.student.cookie_values.append(found[COOKIE])
        self.cookies.update(found)

    def _error(self, text: str) -> None:
        after_kill = self.killed_at is not None
        (self.student.expected if after_kill else self.student.errors).append(
            f"{self.clock():.1f}s {text}"
        )

    # -- HTTP ---------------------------------------------------------------
    async def get(self, path: str) -> bool:
        try:
            answer = await http_get(
                self.host, self.port, path, self.cookies, self.args.http_timeout
            )
        except (OSError, asyncio.TimeoutError) as error:
            self._error(f"GET {path}: {type(error).__name__}")
            return False
        self._answered(f"GET {path}", answer)
        self._take_cookies(answer.cookies())
        if answer.status != 200:
            self._error(f"GET {path}: HTTP {answer.status}")
            return False
        return True

    async def probe(self) -> bool:
        """What the frontend asks before it opens (or reopens) the stream."""
        health = await self.get("/_stcore/health")
        return health and await self.get("/_stcore/host-config")

    # -- the stream ---------------------------------------------------------
    async def connect(self, resume: str = "") -> None:
        protocols = ["streamlit", self.cookies.get(XSRF_COOKIE, "")]
        if resume:
            protocols.append(resume)
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.closed.clear()
        self.closing = False
        self.ws = await connect(
            f"ws://{self.host}:{self.port}/_stcore/stream",
            origin=self.base,
            subprotocols=protocols,
            additional_headers={"Cookie": cookie},
            user_agent_header="lossviz-student",
            proxy=None,  # loopback, whatever the environment says
            compression=None,  # off in Streamlit (server.enableWebsocketCompression)
            open_timeout=self.args.http_timeout,
            ping_interval=None,  # browsers do not ping; the server does
            max_size=None,
        )
        headers = self.ws.response.headers
        self._answered("stream", {SERVER_HEADER: headers.get(SERVER_HEADER)})
        self._take_cookies(
            Answer(0, [(k.lower(), v) for k, v in headers.raw_items()]).cookies()
        )
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        try:
            async for data in ws:
                self._handle(data)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                code = ws.close_code
                self._error(f"stream dropped (close code {code})")
            if self.pending and not self.pending.done():
                self.pending.set_exception(ConnectionError("stream closed"))
            self.closed.set()

    def _handle(self, data: bytes) -> None:
        message = ForwardMsg()
        message.ParseFromString(data)
        kind = message.WhichOneof("type")
        if kind == "ref_hash":
            cached = self.cache.get(message.ref_hash)
            if cached is None:
                self._error(f"cached message {message.ref_hash} unknown")
                return
            self.cache[message.ref_hash] = (self.runs, cached[1])
            message, kind = cached[1], cached[1].WhichOneof("type")
        elif message.metadata.cacheable and message.hash:
            self.cache[message.hash] = (self.runs, message)
        if kind == "new_session":
            self.session_id = message.new_session.initialize.session_id
            if self.session_id not in self.student.sessions:
                self.student.sessions.append(self.session_id)
        elif kind == "navigation":
            # st.navigation names the page that runs; the frontend reruns it
            # by this hash (new_session's is the script's, not the page's).
            self.page_hash = message.navigation.page_script_hash
        elif kind == "delta":
            self._delta(message)
        elif kind == "script_finished":
            status = message.script_finished
            if status == FINISHED.FINISHED_EARLY_FOR_RERUN:
                return  # another run follows
            self.runs += 1
            self.cache = {
                h: (age, m)
                for h, (age, m) in self.cache.items()
                if self.runs - age <= MAX_CACHED_MESSAGE_AGE
            }
            if self.pending and not self.pending.done():
                self.pending.set_result(status)
        elif kind == "page_not_found":
            self._error(f"page not found: {message.page_not_found.page_name}")

    def _delta(self, message: ForwardMsg) -> None:
        delta = message.delta
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            error = element.exception
            self._error(f"exception element: {error.type}: {error.message[:200]}")
            return
        if kind == "alert" and WAITING in element.alert.body:
            self.student.sent_waiting = True
            return
        proto = getattr(element, kind)
        widget_id = getattr(proto, "id", "") if kind != "plotly_chart" else ""
        if kind == "plotly_chart" and "train_curve_" in proto.id:
            self.curves = True
        if widget_id:
            key = widget_key(widget_id)
            self.widgets[key] = Widget(
                widget_id,
                kind,
                proto,
                delta.fragment_id,
                list(message.metadata.delta_path[:1]) == [0],
            )

    async def close(self, abort: bool = False) -> None:
        self.closing = True
        if self.ws is not None:
            if abort:  # a network blip: no closing handshake
                self.ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 5)

    # -- runs ---------------------------------------------------------------
    async def rerun(
        self, states=(), fragment_id: str = "", timeout: float | None = None
    ) -> tuple[float, int]:
        """Sends a rerun, as the frontend does; (seconds to its end, status)."""
        message = BackMsg()
        client = message.rerun_script
        client.query_string = ""
        if self.page_hash:
            client.page_script_hash = self.page_hash
        else:
            client.page_name = self.student.page
        client.fragment_id = fragment_id
        client.widget_states.widgets.extend(states)
        client.cached_message_hashes.extend(self.cache)
        client.context_info.timezone = "UTC"
        client.context_info.locale = "en-US"
        client.context_info.url = f"{self.base}/{self.student.page}"
        client.context_info.color_scheme = "light"
        if not fragment_id:
            self.curves = False  # redrawn by the run if the session has runs
        self.pending = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        await self.ws.send(message.SerializeToString())
        status = await asyncio.wait_for(self.pending, timeout or self.args.move_timeout)
        return time.perf_counter() - started, status


def slider_state(widget: Widget, values: list[float]) -> WidgetState:
    """A slider sends its values; a select slider (``st.select_slider``, the
    same element with options) the labels of the options at those indices."""
    state = WidgetState(id=widget.id)
    element = widget.element
    if element.type == element.SELECT_SLIDER:
        state.string_array_value.data.extend(element.options[int(v)] for v in values)
    else:
        state.double_array_value.data.extend(values)
    return state


def number_state(widget: Widget, value: float) -> WidgetState:
    state = WidgetState(id=widget.id)
    if widget.element.data_type == widget.element.INT:
        state.int_value = int(value)
    else:
        state.double_value = float(value)
    return state


def trigger_state(widget: Widget) -> WidgetState:
    state = WidgetState(id=widget.id)
    state.trigger_value = True
    return state


def first_slider(widgets: dict[str, Widget]) -> Widget | None:
    """The page's first slider in the main area, outside the Train panel."""
    return next(
        (
            w
            for w in widgets.values()
            if w.kind == "slider" and w.main and not w.fragment_id
        ),
        None,
    )


class Class:
    """All the students of one run, and what they share: the clock, the
    trainers' gate, the kill."""

    def __init__(self, host: str, port: int, args, start: float):
        self.host, self.port, self.args, self.start = host, port, args, start
        self.students: list[Student] = []
        self.connections: dict[int, Browserless] = {}
        self.trainers_go = asyncio.Event()
        self.killed: tuple[str, float] | None = None  # (server, s since start)
        self.ended = False

    def clock(self) -> float:
        return time.monotonic() - self.start

    async def attend(self, student: Student, until: float) -> None:
        """One student, from opening the page until ``until`` (s since start)."""
        link = Browserless(student, self.host, self.port, self.args, self.clock)
        self.connections[student.number] = link
        opened = time.perf_counter()
        try:
            if not (await link.get(f"/{student.page}") and await link.probe()):
                student.note = "could not open the page"
                return
            await link.connect()
            await link.rerun(timeout=self.args.open_timeout)
            student.opened_s = time.perf_counter() - opened
            seed = link.widgets.get("seed")
            slider = first_slider(link.widgets)
            if seed is None or slider is None:
                student.note = "no seed or no slider on the page"
                return
            student.seed_sent_wall = time.time()
            await self._move(link, "seed", [number_state(seed, student.seed)])
            element = slider.element
            link.values[widget_key(slider.id)] = list(
                element.value if element.set_value else element.default
            )
            steps = 0
            while self.clock() < until and not self.ended:
                if steps >= self.args.max_moves:
                    break
                await self._think(link)
                if self.clock() >= until or self.ended:
                    break
                if link.closed.is_set():
                    # As the frontend: reconnect at once; the student then
                    # moves again (the move in flight was lost).
                    if not await self._recover(link):
                        return
                elif student.trainer and self.trainers_go.is_set():
                    if not student.pressed:
                        await self._train(link)
                        continue
                if student.blip_at is not None and not student.blipped:
                    if self.clock() >= student.blip_at:
                        await self._blip(link)
                await self._slide(link, steps)
                steps += 1
        except Exception as error:  # noqa: BLE001 - one student must not stop the class
            link._error(f"{type(error).__name__}: {str(error)[:160]}")
        finally:
            await link.close()

    async def _slide(self, link: Browserless, steps: int) -> None:
        """The page's first slider one step: five right, five left, ..."""
        slider = first_slider(link.widgets)
        if slider is None:
            link.student.note = link.student.note or "the slider is gone"
            return
        element = slider.element
        key = widget_key(slider.id)
        current = (link.values.get(key) or list(element.default))[0]
        direction = 1 if (steps // 5) % 2 == 0 else -1
        value = current + direction * (element.step or 1)
        if not element.min <= value <= element.max:
            value = current - direction * (element.step or 1)
        link.values[key] = [round(value, 10)]
        await self._move(link, "slider", [slider_state(slider, link.values[key])])

    async def _think(self, link: Browserless) -> None:
        """A few seconds between moves, cut short when the stream drops or,
        for a trainer who has not pressed Train yet, when the trainers are
        told to press it."""
        waits = [asyncio.ensure_future(link.closed.wait())]
        if link.student.trainer and not link.student.pressed:
            waits.append(asyncio.ensure_future(self.trainers_go.wait()))
        try:
            await asyncio.wait(waits, timeout=random.uniform(*self.args.think))
        finally:
            for wait in waits:
                wait.cancel()

    async def _move(self, link: Browserless, kind: str, states, fragment="") -> None:
        at = self.clock()
        after_kill = link.killed_at is not None
        try:
            seconds, status = await link.rerun(states, fragment_id=fragment)
        except asyncio.TimeoutError:
            link._error(f"{kind} move: no answer within {self.args.move_timeout:.0f} s")
            return
        except (ConnectionError, ConnectionClosed):
            return  # counted where the stream dropped
        if status not in DONE:
            link._error(f"{kind} move: run ended with {FINISHED.Name(status)}")
        link.student.moves.append(Move(at, seconds, kind, link.server, after_kill))
        if after_kill and link.student.curves_after_kill is None:
            link.student.curves_after_kill = link.curves

    async def _train(self, link: Browserless) -> None:
        student = link.student
        epochs = next(
            (w for k, w in link.widgets.items() if k.startswith("train_epochs_")), None
        )
        button = next(
            (w for k, w in link.widgets.items() if k.startswith("train_go_")), None
        )
        student.pressed = self.clock()
        if epochs is None or button is None:
            student.note = "no Train panel on the page"
            return
        await self._move(
            link, "epochs", [number_state(epochs, self.args.epochs)], epochs.fragment_id
        )
        started = time.perf_counter()
        try:
            _, status = await link.rerun(
                [trigger_state(button)],
                fragment_id=button.fragment_id,
                timeout=self.args.train_timeout,
            )
        except asyncio.TimeoutError:
            link._error(
                f"training: not finished within {self.args.train_timeout:.0f} s"
            )
            return
        except (ConnectionError, ConnectionClosed):
            return
        student.train_seconds = time.perf_counter() - started
        if status not in DONE:
            link._error(f"training run ended with {FINISHED.Name(status)}")
        student.curves_before_kill = link.curves

    async def _blip(self, link: Browserless) -> None:
        """The network drops the stream; the frontend reconnects at once."""
        link.student.blipped = True
        await link.close(abort=True)
        if not await self._recover(link, blip=True):
            link._error("could not reconnect after a blip")

    async def _recover(self, link: Browserless, blip: bool = False) -> bool:
        """Reconnects as the frontend does: health probes with backoff, then
        the stream with the last session id."""
        began = self.clock()
        delay, deadline = 0.1, time.monotonic() + self.args.move_timeout
        while time.monotonic() < deadline and not self.ended:
            if await link.probe():
                try:
                    await link.connect(resume=link.session_id)
                except (OSError, InvalidStatus, asyncio.TimeoutError) as error:
                    link._error(f"stream reopen: {type(error).__name__}: {error}")
                else:
                    link.student.reconnects.append(
                        {
                            "at": round(began, 2),
                            "seconds": round(self.clock() - began, 3),
                            "server": link.server,
                            "blip": blip,
                        }
                    )
                    return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)
        return False


# -- the run --------------------------------------------------------------------
def assign(args, count: int, first: int = 0) -> list[Student]:
    names = args.pages or page_names()
    rng = random.Random(args.random_seed + first)
    students = []
    rounds = []  # the pages in a fresh order for every len(names) students
    for number in range(first, first + count):
        if not rounds:
            rounds = rng.sample(names, len(names))
        # That share of the students, spread evenly over them.
        blip = int((number + 1) * args.blip_share) > int(number * args.blip_share)
        students.append(
            Student(
                number,
                rounds.pop(),
                seed=SEEDS[number % len(SEEDS)],
                blip_at=None if not blip else rng.uniform(0.3, 0.7) * args.seconds,
            )
        )
    return students


async def warm_up(host: str, port: int, servers: list[str], pages, args) -> float:
    """Each page once on each process (its cookie set by hand), as a teacher
    would open them before the class: TensorFlow's import and each page's
    first compiled calls are not the students' wait."""
    started = time.monotonic()

    async def visit(server: str, page: str) -> None:
        student = Student(-1, page, seed=0)
        link = Browserless(student, host, port, args, lambda: 0.0)
        link.cookies[COOKIE] = server
        try:
            if await link.get(f"/{page}") and await link.probe():
                await link.connect()
                await link.rerun(timeout=args.open_timeout)
                for seed in SEEDS:  # the seeds the students will set
                    state = number_state(link.widgets["seed"], seed)
                    await link.rerun([state], timeout=args.open_timeout)
        finally:
            await link.close()
        if student.errors:
            raise RuntimeError(f"warm-up of {page} on {server}: {student.errors}")

    for page in pages:
        await asyncio.gather(*(visit(server, page) for server in servers))
    return time.monotonic() - started


class LoopLag:
    """How late the students' event loop wakes up (every 0.1 s)."""

    def __init__(self):
        self.lags: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            self.lags.append(time.perf_counter() - before - 0.1)


async def watch_kill(hall, target: str, at: float, klass: Class, found: dict) -> None:
    """Kills ``target`` at ``at`` s, then polls HAProxy until it is DOWN."""
    await asyncio.sleep(max(0.0, at - klass.clock()))
    before = hall.stats().get(target, {})
    killed = hall.kill(target)
    killed_s = klass.clock()
    klass.killed = (target, killed_s)
    for link in klass.connections.values():
        if link.server == target:
            link.killed_at = killed_s
            link.student.note = f"on {target} when it was killed"
    found.update(server=target, killed_at_s=round(killed_s, 2))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = hall.status().get(target, "")
        if status.startswith("DOWN"):
            found["down_after_s"] = round(time.monotonic() - killed, 3)
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, 5 - (time.monotonic() - killed)))
    after = hall.stats().get(target, {})
    for name in ("econ", "wretr", "wredis", "hrsp_5xx", "scur"):
        found[name] = int(after.get(name) or 0) - int(before.get(name) or 0)


def percentile(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarize_moves(moves: list[Move], seconds: float) -> dict:
    latencies = [m.seconds for m in moves]
    return {
        "moves": len(moves),
        "per_s": len(moves) / seconds if seconds else float("nan"),
        "p50_ms": 1e3 * percentile(latencies, 50),
        "p95_ms": 1e3 * percentile(latencies, 95),
        "max_ms": 1e3 * max(latencies) if latencies else float("nan"),
    }


def stickiness(student: Student, notes: dict[str, list], killed) -> dict:
    """Whether a student stayed with its process and its session."""
    kill_s = killed[1] if killed else None
    before = [a for a in student.answers if kill_s is None or a[0] < kill_s]
    after = [a for a in student.answers if kill_s is not None and a[0] >= kill_s]
    # "-": HAProxy answered itself (an error, counted as such), no process.
    servers_before = {s for _, _, s in before} - {"-"}
    servers_after = {s for _, _, s in after} - {"-"}
    on_killed = killed is not None and killed[0] in servers_before
    sessions = student.sessions
    where = {
        session: {
            name for name, runs in notes.items() if any(r[1] == session for r in runs)
        }
        for session in sessions
    }
    seeds = {
        session: [
            r[3]
            for runs in notes.values()
            for r in runs
            if r[1] == session
            and student.seed_sent_wall is not None
            and r[0] >= student.seed_sent_wall
        ]
        for session in sessions
    }
    first = sessions[:1]
    kept_seed = all(s == str(student.seed) for x in first for s in seeds.get(x, []))
    ok = (
        len(servers_before) == 1
        and (not on_killed or len(servers_after) == 1)
        and (on_killed or not servers_after or servers_after == servers_before)
        and len(sessions) == (2 if on_killed and len(sessions) > 1 else 1)
        and (not notes or all(len(w) == 1 for w in where.values()))
        and (
            not notes
            or all(where[s] <= servers_before | servers_after for s in sessions)
        )
        and (not notes or kept_seed)
    )
    return {
        "ok": ok,
        "on_killed": on_killed,
        "servers": sorted(servers_before)
        + (["->"] + sorted(servers_after) if on_killed else []),
        "sessions": len(sessions),
        "seed_runs": sum(len(seeds.get(x, [])) for x in first),
        "seed_kept": kept_seed,
        "seed_after_switch": sorted(set(seeds.get(sessions[1], [])))
        if len(sessions) > 1
        else [],
        "seeds_seen": dict(Counter(s for x in first for s in seeds.get(x, []))),
    }


async def run(args) -> dict:
    """One run: the hall (started here or given), the students, the report."""
    stack = contextlib.ExitStack()
    hall = None
    notes_base = None
    if args.url:
        host_port = args.url.split("//", 1)[-1].rstrip("/")
        host, _, port = host_port.rpartition(":")
        port = int(port)
        servers = args.servers or []
    else:
        env, notes_base = stack.enter_context(session_notes())
        env.update(args.server_env)
        hall = serve.Hall(
            replicas=args.replicas, port=serve.free_port(), bind="127.0.0.1",
            first_port=0, env=env,
        )  # fmt: skip
        host, port = "127.0.0.1", hall.port
        servers = [s.name for s in hall.servers]
    result: dict = {
        "replicas": args.replicas if hall else None,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "proxy": {"hrsp_5xx": "-", "econ": "-", "wredis": "-"},
    }
    try:
        if hall:
            started = time.monotonic()
            hall.start()  # here: its children die with the thread that forks them
            await asyncio.to_thread(hall.wait_until_up)
            result["hall_up_s"] = round(time.monotonic() - started, 1)
            print(f"{len(servers)} process(es) up behind {hall.url}", flush=True)
        pages = args.pages or page_names()
        if servers and args.warm_up:
            result["warm_up_s"] = round(
                await warm_up(host, port, servers, pages, args), 1
            )
            print(f"warmed up in {result['warm_up_s']} s; students join", flush=True)
        result.update(await lecture(host, port, hall, args, notes_base, servers))
        if hall:
            rows = await asyncio.to_thread(hall.stats)
            result["proxy"] = {
                "hrsp_5xx": int(rows["FRONTEND"]["hrsp_5xx"] or 0),
                "econ": int(rows["BACKEND"]["econ"] or 0),
                "wredis": int(rows["BACKEND"]["wredis"] or 0),
            }
    finally:
        if hall:
            result["logs"] = str(hall.log_dir)
            await asyncio.to_thread(hall.stop)
        stack.close()
    return result


async def lecture(host, port, hall, args, notes_base, servers) -> dict:
    start = time.monotonic()
    klass = Class(host, port, args, start)
    steps = args.staircase or [args.students]
    step_seconds = args.step_seconds if args.staircase else args.seconds + args.ramp
    total = step_seconds * len(steps)
    tasks = []
    stop = asyncio.Event()
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run(stop))
    windows = []
    cpu_marks = []
    kill_found: dict = {}
    kill_task = None
    if args.kill and hall:
        kill_task = asyncio.create_task(
            watch_kill(hall, args.kill, args.kill_at, klass, kill_found)
        )
    joined = 0
    for index, count in enumerate(steps):
        step_start = index * step_seconds
        await asyncio.sleep(max(0.0, step_start - klass.clock()))
        new = assign(args, count - joined, first=joined)
        joined = count
        klass.students.extend(new)
        ramp = args.ramp if not args.staircase else min(args.ramp, args.settle)
        for student in new:
            offset = ramp * (student.number - new[0].number) / max(len(new), 1)
            tasks.append(
                asyncio.create_task(_late(offset, klass.attend(student, until=total)))
            )
        window_start = step_start + (args.settle if args.staircase else args.ramp)
        await asyncio.sleep(max(0.0, window_start - klass.clock()))
        if args.trainers_per_process and index == 0:
            _pick_trainers(klass, args.trainers_per_process)
            asyncio.get_running_loop().call_later(
                max(0.0, args.train_at - klass.clock()), klass.trainers_go.set
            )
        cpu_marks.append((klass.clock(), _cpu(hall)))
        window_end = step_start + step_seconds
        await asyncio.sleep(max(0.0, window_end - klass.clock()))
        cpu_end = _cpu(hall)
        window = (window_start, window_end)
        moves = [
            m
            for s in klass.students
            for m in s.moves
            if window[0] <= m.at < window[1] and m.kind in ("slider", "seed")
        ]
        summary = summarize_moves(moves, window[1] - window[0])
        summary["students"] = count
        used = {k: cpu_end[k] - cpu_marks[-1][1].get(k, 0) for k in cpu_end}
        machine = used.pop("machine")
        # With --url the hall's processes are among the rest of the machine.
        rest = "others" if hall else "the rest of the machine"
        used[rest] = max(0.0, machine - sum(used.values()))
        summary["cpu_s"] = {k: round(v, 1) for k, v in used.items()}
        summary["window_s"] = round(window[1] - window[0], 1)
        windows.append(summary)
        print(
            f"  {count:>4} students: {summary['moves']:>5} moves, "
            f"{summary['per_s']:.2f}/s, p50 {summary['p50_ms']:.0f} ms, "
            f"p95 {summary['p95_ms']:.0f} ms, CPU {summary['cpu_s']}",
            flush=True,
        )
        if args.staircase and summary["p95_ms"] > 3e3 * TARGET_P95:
            print("  (p95 above 3 s: no more steps)", flush=True)
            break
    klass.ended = True
    await asyncio.gather(*tasks, return_exceptions=True)
    if kill_task:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(kill_task, 60)
    stop.set()
    await lag_task
    notes = {}
    slots = {}
    if notes_base is not None:
        for name in servers:
            path = Path(f"{notes_base}.{name}")
            notes[name] = read_sessions(path)
            slots[name] = server_notes.server_log(path)
    return report(klass, windows, notes, slots, kill_found, lag, args)


async def _late(delay: float, job):
    await asyncio.sleep(delay)
    return await job


def _pick_trainers(klass: Class, per_process: int) -> None:
    by_server: dict[str, list[Student]] = {}
    for link in klass.connections.values():
        if link.student.opened_s is not None:
            by_server.setdefault(link.server, []).append(link.student)
    for students in by_server.values():
        for student in sorted(students, key=lambda s: s.number)[:per_process]:
            student.trainer = True


def _cpu(hall) -> dict[str, float]:
    """CPU seconds so far: each process, HAProxy, the students, and the whole
    machine's busy time (all cores; /proc/stat)."""
    cpu = hall.cpu_seconds() if hall else {}
    cpu["students"] = time.process_time()
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    cpu["machine"] = (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return cpu


def report(klass, windows, notes, slots, kill_found, lag, args) -> dict:
    students = klass.students
    killed = klass.killed
    sticky = {s.number: stickiness(s, notes, killed) for s in students}
    unaffected = [s for s in students if not sticky[s.number]["on_killed"]]
    errors = [(s.number, e) for s in unaffected for e in s.errors]
    on_killed = [s for s in students if sticky[s.number]["on_killed"]]
    moves = [m for s in students for m in s.moves if m.kind in ("slider", "seed")]
    by_page: dict[str, list[Move]] = {}
    by_server: dict[str, list[Move]] = {}
    for s in students:
        for m in s.moves:
            if m.kind in ("slider", "seed"):
                by_page.setdefault(s.page, []).append(m)
                by_server.setdefault(m.server, []).append(m)
    opened = [s.opened_s for s in students if s.opened_s is not None]
    held = [w for w in windows if w["p95_ms"] <= 1e3 * TARGET_P95]
    result = {
        "students": len(students),
        "windows": windows,
        # The most students a step held at p95 <= 1 s, and its moves/s.
        "held": max(held, key=lambda w: w["students"]) if held else None,
        "moves": summarize_moves(moves, 0),
        "by_page": {k: summarize_moves(v, 0) for k, v in sorted(by_page.items())},
        "by_server": {k: summarize_moves(v, 0) for k, v in sorted(by_server.items())},
        "opened_p50_s": statistics.median(opened) if opened else None,
        "opened": len(opened),
        "stickiness": {
            "students": len(students),
            "kept": sum(v["ok"] for v in sticky.values()),
            "blipped": sum(s.blipped for s in students),
            "blips_resumed": sum(
                1
                for s in students
                if s.blipped
                and sticky[s.number]["ok"]
                and not sticky[s.number]["on_killed"]
            ),
            "not_kept": {n: v for n, v in sticky.items() if not v["ok"]},
            "seed_runs_checked": sum(v["seed_runs"] for v in sticky.values()),
            "notes": bool(notes),
        },
        "errors": {
            "count": len(errors),
            "kinds": dict(Counter(e.split(" ", 1)[1].split(":")[0] for _, e in errors)),
            "first": [f"student {n}: {e}" for n, e in errors[:20]],
            "students_without_moves": [
                s.number
                for s in unaffected
                if not any(m.kind == "slider" for m in s.moves)
            ],
            "notes": [
                f"student {s.number} ({s.page}): {s.note}" for s in students if s.note
            ],
        },
        "training": {
            "trainers": [
                {
                    "student": s.number,
                    "server": sticky[s.number]["servers"][0]
                    if sticky[s.number]["servers"]
                    else "?",
                    "pressed_s": s.pressed,
                    "train_s": s.train_seconds,
                    "sent_waiting": s.sent_waiting,
                }
                for s in students
                if s.trainer
            ],
            "slots": {
                k: {"taken": v["taken"], "peak": v["peak"]} for k, v in slots.items()
            },
            "limit": MAX_CONCURRENT_RUNS,
        },
        "server_runs": {
            k: {
                "runs": len(v["run_wall"]),
                "p50_ms": 1e3 * percentile(v["run_wall"], 50),
                "p95_ms": 1e3 * percentile(v["run_wall"], 95),
            }
            for k, v in slots.items()
        },
        "loop_lag_ms": {
            "p50": 1e3 * percentile(lag.lags, 50),
            "p95": 1e3 * percentile(lag.lags, 95),
            "max": 1e3 * max(lag.lags) if lag.lags else float("nan"),
        },
    }
    if killed:
        after = [m for s in on_killed for m in s.moves if m.after_kill]
        recovered = []
        for s in on_killed:
            first_good = min(
                (m.at + m.seconds for m in s.moves if m.after_kill), default=None
            )
            recovered.append(
                {
                    "student": s.number,
                    "reconnected_after_s": (
                        round(
                            s.reconnects[-1]["at"]
                            + s.reconnects[-1]["seconds"]
                            - killed[1],
                            2,
                        )
                        if s.reconnects
                        else None
                    ),
                    "working_after_s": (
                        round(first_good - killed[1], 2)
                        if first_good is not None
                        else None
                    ),
                    "servers": sticky[s.number]["servers"],
                    "new_session": sticky[s.number]["sessions"] == 2,
                    "seed_after": sticky[s.number]["seed_after_switch"],
                    "trainer_curves": (
                        [s.curves_before_kill, s.curves_after_kill]
                        if s.trainer
                        else None
                    ),
                    "seen": s.expected[:3],
                }
            )
        result["kill"] = {
            **kill_found,
            "students_on_it": len(on_killed),
            "moves_after": summarize_moves(after, 0),
            "students": recovered,
        }
    return result


def _ms(row: dict) -> str:
    per_s = "" if row["per_s"] != row["per_s"] else f"{row['per_s']:.2f}"  # NaN
    return (
        f"{row['moves']:>6} {per_s:>6} {row['p50_ms']:>7.0f} "
        f"{row['p95_ms']:>7.0f} {row['max_ms']:>7.0f}"
    )


def print_report(result: dict, args) -> None:
    """The result, for people (``--json`` writes all of it)."""
    hall = (
        f"{result['replicas']} process(es) behind HAProxy, up in "
        f"{result.get('hall_up_s', '-')} s"
        if result["replicas"]
        else args.url
    )
    print(
        f"\nLecture hall: {hall}; warm-up {result.get('warm_up_s', '-')} s; "
        f"{result['students']} students on {', '.join(args.pages or page_names())}, "
        f"a move every {args.think[0]:g}-{args.think[1]:g} s; "
        f"{os.cpu_count()} cores, load average {result['load_average']}"
    )
    print(
        "\nMoves (full-page reruns: the slider and the seed), rerun sent -> "
        "script finished, in each measured window:"
    )
    print(f"{'students':>8} {'moves':>6} {'per s':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'max ms':>7}   CPU s in the window")  # fmt: skip
    for row in result["windows"]:
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in row["cpu_s"].items())
        print(f"{row['students']:>8} {_ms(row)}   {cpu} (of {row['window_s']:.0f} s)")
    held = result["held"]
    if held and len(result["windows"]) > 1:
        print(
            f"Held at p95 <= {TARGET_P95:g} s: {held['students']} students, "
            f"{held['per_s']:.2f} moves/s (p95 {held['p95_ms']:.0f} ms)"
        )
    print(f"\n{'':<10} {'moves':>6} {'':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for name, row in [("all", result["moves"]), *result["by_page"].items(),
                      *result["by_server"].items()]:  # fmt: skip
        print(f"{name:<10} {_ms(row)}")
    for name, row in result["server_runs"].items():
        print(
            f"{name}'s own full-page runs (warm-up included): {row['runs']}, "
            f"p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms"
        )
    sticky = result["stickiness"]
    print(
        f"\nStickiness: {sticky['kept']} of {sticky['students']} students kept "
        f"their process and their session ({sticky['blips_resumed']} of "
        f"{sticky['blipped']} blips resumed; {sticky['seed_runs_checked']} runs "
        "after a seed was set checked for it"
        + ("" if sticky["notes"] else ": no server notes, not checked")
        + ")"
    )
    for number, why in list(sticky["not_kept"].items())[:10]:
        print(f"  student {number}: {why}")
    errors = result["errors"]
    print(
        f"\nErrors among the students not on a killed process: {errors['count']} "
        f"{errors['kinds'] or ''}; HAProxy answered {result['proxy']['hrsp_5xx']} "
        f"requests with 5xx, {result['proxy']['econ']} connection errors, "
        f"{result['proxy']['wredis']} redispatches"
    )
    for line in errors["first"] + errors["notes"][:10]:
        print(f"  {line}")
    if errors["students_without_moves"]:
        print(f"  students without a slider move: {errors['students_without_moves']}")
    training = result["training"]
    if training["trainers"]:
        print(f"\nTraining (limit {training['limit']} runs at once per process):")
        for name, slot in training["slots"].items():
            mine = [t for t in training["trainers"] if t["server"] == name]
            print(
                f"  {name}: {len(mine)} pressed Train together, {slot['taken']} runs "
                f"took a slot, at most {slot['peak']} at once; sent the waiting "
                f"message: {[t['student'] for t in mine if t['sent_waiting']]}; "
                "run s: "
                + ", ".join(f"{t['train_s']:.1f}" for t in mine if t["train_s"])
            )
    kill = result.get("kill")
    if kill:
        students = kill["students"]
        working = [s["working_after_s"] for s in students if s["working_after_s"]]
        print(
            f"\nKill: {kill['server']} killed (SIGKILL) at {kill['killed_at_s']} s; "
            f"HAProxy marked it DOWN {kill.get('down_after_s', 'never')} s later "
            f"(its connection errors {kill['econ']}, redispatched "
            f"{kill['wredis']}, 5xx {kill['hrsp_5xx']}). Its {len(students)} "
            f"students: a move answered again "
            + (
                f"{min(working):.2f}-{max(working):.2f} s after the kill"
                if working
                else "never"
            )
            + f"; {sum(s['new_session'] for s in students)} in a new session"
        )
        for s in students:
            print(f"  {s}")
    lag = result["loop_lag_ms"]
    print(
        f"\nThe students' process: event loop late p50 {lag['p50']:.1f} ms, "
        f"p95 {lag['p95']:.1f} ms, max {lag['max']:.0f} ms"
    )
    if result.get("logs"):
        print(f"Logs: {result['logs']}")


def parse_think(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    return float(low), float(high or low)


def parse_staircase(text: str) -> list[int]:
    start, step, top = (int(x) for x in text.split(":"))
    return list(range(start, top + 1, step))


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60, help="of moves")
    parser.add_argument(
        "--think", type=parse_think, default=(2.0, 4.0), help="s, LOW:HIGH"
    )
    parser.add_argument("--ramp", type=float, default=10, help="s over which to join")
    parser.add_argument("--pages", nargs="*", choices=page_names(), default=None)
    parser.add_argument("--trainers-per-process", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-at", type=float, default=15, help="s into the run")
    parser.add_argument("--blip-share", type=float, default=0.0)
    parser.add_argument("--kill", default="", help="the process to kill, e.g. p2")
    parser.add_argument("--kill-at", type=float, default=30, help="s into the run")
    parser.add_argument(
        "--staircase", type=parse_staircase, default=None, help="START:STEP:MAX"
    )
    parser.add_argument("--step-seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=15)
    parser.add_argument("--url", default="", help="a hall already running")
    parser.add_argument("--servers", nargs="*", default=None, help="its server names")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false")
    parser.add_argument("--max-moves", type=int, default=2000, help="per student")
    parser.add_argument("--move-timeout", type=float, default=60)
    parser.add_argument("--open-timeout", type=float, default=180)
    parser.add_argument("--http-timeout", type=float, default=30)
    parser.add_argument("--train-timeout", type=float, default=300)
    parser.add_argument("--timeout", type=float, default=900, help="whole run, s")
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--json", default="", help="write the result here too")
    parser.add_argument(
        "--server-env", nargs="*", default=[], metavar="NAME=VALUE",
        help="extra environment for the processes",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    return args


def main(argv=None) -> int:
    args = arguments(argv)
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))  # the last resort
    signal.alarm(int(args.timeout) + 120)
    try:
        result = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    finally:
        signal.alarm(0)
    print_report(result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0 if ok(result) else 1


def ok(result: dict) -> bool:
    training = result["training"]
    return (
        result["errors"]["count"] == 0
        and not result["errors"]["students_without_moves"]
        and result["stickiness"]["kept"] == result["stickiness"]["students"]
        and all(v["peak"] <= training["limit"] for v in training["slots"].values())
    )


if __name__ == "__main__":
    sys.exit(main())
