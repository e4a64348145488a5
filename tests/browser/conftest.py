"""A real browser against the app: Streamlit on loopback, Debian's Chromium.

Skipped with a reason when Chromium or Playwright is missing (`make test`
installs both where it can). Screenshots go to ``artifacts/screenshots``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("LOSSVIZ_CHROMIUM", shutil.which("chromium") or "")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# The page is idle: the script has run to its end, the connection is up and
# nothing is still drawing; for ``quiet`` ms (see ``wait_until_idle``).
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


def is_run_finished(payload) -> bool:
    """Whether a websocket frame from the server is its "script finished"
    message for a whole-page run that ended normally."""
    if not isinstance(payload, bytes) or len(payload) > 256:  # it is a few bytes
        return False
    message = ForwardMsg()
    try:
        message.ParseFromString(payload)
    except Exception:  # noqa: BLE001 - not a ForwardMsg: not what we look for
        return False
    return (
        message.WhichOneof("type") == "script_finished"
        and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
    )


class RunWatch:
    """Notes when the page gets the server's "script finished" messages.

    The page's ``data-test-script-state`` is no signal for a fast rerun: the
    page may go from "notRunning" through "running" and back within one
    render and never show "running". The server's message always comes.
    Create it before the page opens its connection (before ``goto``).
    """

    def __init__(self, page):
        self.page = page
        self.finished: list[float] = []  # time.perf_counter() on arrival
        page.on("websocket", lambda ws: ws.on("framereceived", self._on_frame))

    def _on_frame(self, payload) -> None:
        if is_run_finished(payload):
            self.finished.append(time.perf_counter())

    def wait_for_more(self, count: int, timeout: float = 60) -> float:
        """Waits until more than ``count`` runs have finished; returns when the
        first of them did (``time.perf_counter()``)."""
        self._wait(lambda: len(self.finished) > count, timeout)
        return self.finished[count]

    def wait_for_run_after(self, moment: float, timeout: float = 60) -> None:
        """Waits for a run that finished after ``moment`` (``perf_counter``):
        after the last of several key presses, the run that shows them all
        (a press during a run stops it and starts a new one)."""
        self._wait(lambda: bool(self.finished) and self.finished[-1] > moment, timeout)

    def _wait(self, done, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no script run finished within {timeout:.0f} s")
            self.page.wait_for_timeout(10)  # lets Playwright deliver the frames


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    port: int, script: Path = ROOT / "app.py", cwd: Path = ROOT
) -> subprocess.Popen:
    """Starts the app (or another Streamlit ``script``) on loopback, as
    `make run` does, from ``cwd`` (another checkout of the app, say); its log
    goes to artifacts/app-PORT.log."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    SHOTS.parent.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS.parent / f"app-{port}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_health(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the app did not answer at {url} within {timeout} s")


@pytest.fixture(scope="session")
def app_url():
    port = _free_port()
    server = start_app(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def playwright_driver():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM or not os.path.exists(CHROMIUM):
        if os.environ.get("LOSSVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (LOSSVIZ_REQUIRE_BROWSER=1)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright_driver):
    """A fresh browser per test: one that crashed cannot fail the tests after it."""
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


# Opening /<page> directly, Streamlit's frontend first asks for its endpoints
# under that path, gets a 404, and then finds them at the root: not an error.
_PROBE = re.compile(r"/[^/]+/_stcore/(host-config|health)$")


def watch_errors(page) -> list:
    """Collects console errors, page errors and failed requests of ``page``."""
    errors = []

    def on_console(message):
        if message.type == "error" and not message.text.startswith(
            "Failed to load resource"
        ):
            errors.append(f"console: {message.text}")

    def on_response(response):
        if response.status >= 400 and not _PROBE.search(response.url):
            errors.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("response", on_response)
    page.on(
        "requestfailed",
        lambda r: errors.append(f"request failed: {r.url} ({r.failure})"),
    )
    return errors


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = watch_errors(page)
    yield page
    context.close()


def wait_until_idle(page, timeout: float = 60_000, quiet_ms: int = 400) -> None:
    """Waits until the script has run to its end and stayed idle ``quiet_ms``.

    Streamlit marks its root element with ``data-test-script-state``
    ("running", "notRunning", ...) for exactly this purpose.
    """
    page.wait_for_function(
        IDLE,
        arg=quiet_ms,
        timeout=timeout,
        polling=50,
    )


def screenshot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main area, so the viewport
    is made as tall as that area's content for the shot, then put back."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        """() => {
            const main = document.querySelector("[data-testid='stMain']");
            return main ? main.scrollHeight : document.body.scrollHeight;
        }"""
    )
    page.set_viewport_size({"width": size["width"], "height": max(height, 600)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path
