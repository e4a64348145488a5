"""A lecture hall: several `streamlit run app.py` processes behind HAProxy.

    make serve [REPLICAS=n] [PORT=8501]
    .venv/bin/python deploy/serve.py [--replicas N] [--port 8501] [--bind 0.0.0.0]
        [--first-port 8601] [--address 127.0.0.1] [--no-restart]
    .venv/bin/python deploy/serve.py --no-proxy --address 0.0.0.0 [--replicas N]
    .venv/bin/python deploy/serve.py --servers HOST:PORT [HOST:PORT ...]

One `streamlit run app.py` is one Python process, and Streamlit keeps each
session in the process that holds its websocket. So the processes sit behind
HAProxy with cookie-based session affinity: HAProxy sets a cookie naming the
process on the first response, and sends every later request of that
browser (the websocket, a reconnect after a network blip, uploads) to it.

By default this starts REPLICAS processes (one per core) on 127.0.0.1, ports
``--first-port`` and up, and HAProxy on ``--bind``:``--port`` in front of
them, with the configuration rendered from deploy/haproxy.cfg.tmpl. It waits
until HAProxy sees every process healthy, prints where to go, and then notes
each process that goes down or up. A process that exits is started again
(``--no-restart``: not). Ctrl-C (or SIGTERM) stops everything it started.

On several machines: ``--no-proxy`` starts only the processes (on each app
machine, ``--address`` one the proxy machine can reach), ``--servers`` only
HAProxy, in front of processes elsewhere. README.md, "Serving a class", shows
both.

Logs: artifacts/serve/<port>/ (each process's output, HAProxy's log and the
rendered configuration). Nothing here needs root except installing HAProxy
(`make serve` does it with apt-get where it may).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "haproxy.cfg.tmpl"
LOGS = ROOT / "artifacts" / "serve"
HAPROXY_PATHS = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
MISSING_HAPROXY = (
    "HAProxy is not installed. As root, `make serve` installs Debian's package "
    "(apt-get install haproxy); otherwise ask for it to be installed, or put "
    "its directory on PATH."
)


def find_haproxy() -> str | None:
    """HAProxy's binary: on PATH, or where Debian puts it (/usr/sbin is not
    on every user's PATH)."""
    found = shutil.which("haproxy")
    if found:
        return found
    return next((p for p in HAPROXY_PATHS if os.access(p, os.X_OK)), None)


def server_options(address: str, port: int) -> list[str]:
    """What every process behind the proxy is started with (besides
    .streamlit/config.toml, which each process reads from the repository):

    - headless: no browser window on the server, no e-mail prompt;
    - its own address and port, the ones its "server" line names;
    - XSRF and CORS protection left on: every request reaches the processes
      through one origin (the proxy's address), HAProxy passes the Host
      header and the cookies through unchanged, and Streamlit's XSRF check is
      a double-submit cookie that any process can verify, so a page served
      by one process and a request answered by another agree;
    - no file watcher and no run-on-save: nobody edits the app during a
      lecture, and each watcher costs every process CPU and inotify handles.

    The cookie secret (signing st.login's cookies) must be the same on every
    process; it comes from STREAMLIT_SERVER_COOKIE_SECRET (see ``Hall``).
    """
    return [
        "--server.headless=true",
        f"--server.address={address}",
        f"--server.port={port}",
        "--server.enableXsrfProtection=true",
        "--server.enableCORS=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
    ]


@dataclass
class Server:
    """One process behind the proxy, here or on another machine."""

    name: str  # HAProxy's server name, and the value of its cookie
    host: str
    port: int
    process: subprocess.Popen | None = None  # None: not started by us
    restarts: int = 0

    def line(self) -> str:
        return f"    server {self.name} {self.host}:{self.port} cookie {self.name}"


def render(servers: list[Server], bind: str, port: int, stats_socket: str) -> str:
    """deploy/haproxy.cfg.tmpl with the hall's values filled in."""
    return string.Template(TEMPLATE.read_text()).substitute(
        bind=bind,
        port=port,
        stats_socket=stats_socket,
        servers="\n".join(s.line() for s in servers),
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host not in ("*", "") else "0.0.0.0", port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The child gets SIGTERM if the launcher dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Hall:
    """The processes and HAProxy in front of them; a context manager.

    ``replicas`` processes on ``address`` (ports from ``first_port``, or free
    ones when it is 0), unless ``remote`` names processes elsewhere
    (``HOST:PORT``); HAProxy on ``bind``:``port`` unless ``proxy`` is False.
    ``env`` is added to each process's environment, which also gets
    LOSSVIZ_SERVER_NAME (its server name) and the shared cookie secret.
    """

    replicas: int = os.cpu_count() or 1
    port: int = 8501
    bind: str = "0.0.0.0"
    first_port: int = 8601
    address: str = "127.0.0.1"
    remote: list[str] = field(default_factory=list)
    proxy: bool = True
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    servers: list[Server] = field(default_factory=list)
    haproxy: subprocess.Popen | None = None

    def __post_init__(self):
        where = self.port if self.proxy else f"processes-{self.first_port}"
        self.log_dir = Path(self.log_dir or LOGS / str(where))
        self._run_dir = Path(tempfile.mkdtemp(prefix="lossviz-hall-"))
        self.stats_socket = str(self._run_dir / "haproxy.sock")
        self._secret = os.environ.get(
            "STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(32)
        )
        if self.remote:
            for number, target in enumerate(self.remote, start=1):
                host, _, port = target.rpartition(":")
                self.servers.append(Server(f"s{number}", host, int(port)))
        else:
            for number in range(1, self.replicas + 1):
                port = self.first_port + number - 1 if self.first_port else 0
                self.servers.append(
                    Server(f"p{number}", self.address, port or free_port(self.address))
                )

    # -- starting and stopping ------------------------------------------------
    def start(self) -> Hall:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        haproxy = find_haproxy() if self.proxy else None
        if self.proxy and haproxy is None:
            raise RuntimeError(MISSING_HAPROXY)
        wanted = [] if self.remote else [(s.host, s.port) for s in self.servers]
        if self.proxy:
            wanted.append((self.bind, self.port))
        busy = [f"{host}:{port}" for host, port in wanted if port_taken(host, port)]
        if busy:
            raise RuntimeError(f"port(s) already in use: {', '.join(busy)}")
        if not self.remote:
            for server in self.servers:
                self.start_process(server)
        if self.proxy:
            config = self.log_dir / "haproxy.cfg"
            config.write_text(
                render(self.servers, self.bind, self.port, self.stats_socket)
            )
            check = subprocess.run(
                [haproxy, "-c", "-q", "-f", str(config)],
                capture_output=True,
                text=True,
            )
            if check.returncode != 0:
                self.stop()
                raise RuntimeError(f"HAProxy rejects {config}:\n{check.stderr}")
            with open(self.log_dir / "haproxy.log", "w") as log:
                self.haproxy = subprocess.Popen(
                    [haproxy, "-db", "-f", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
        return self

    def start_process(self, server: Server) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "STREAMLIT_SERVER_COOKIE_SECRET": self._secret,
            "LOSSVIZ_SERVER_NAME": server.name,
            **self.env,
        }
        command = [sys.executable, "-m", "streamlit", "run", "app.py"]
        with open(self.log_dir / f"{server.name}.log", "a") as log:
            server.process = subprocess.Popen(
                [*command, *server_options(server.host, server.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher: it stops it
                preexec_fn=_die_with_parent,
            )

    def stop(self, timeout: float = 10) -> None:
        """HAProxy first (no new requests), then the processes."""
        started = [p for p in (self.haproxy, *(s.process for s in self.servers)) if p]
        for process in started:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._run_dir, ignore_errors=True)

    def __enter__(self) -> Hall:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    # -- watching -------------------------------------------------------------
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "*", "") else self.bind
        return f"http://{host}:{self.port}"

    def stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's "show stat" for the backend, by server name ("BACKEND"
        for the backend's totals, "FRONTEND" for the public side)."""
        with socket.socket(socket.AF_UNIX) as stats:
            stats.settimeout(2)
            stats.connect(self.stats_socket)
            stats.sendall(b"show stat\n")
            chunks = []
            while chunk := stats.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return {
            row["svname"]: row
            for row in csv.DictReader(text.splitlines())
            if row["pxname"] in ("streamlit", "lecture")
        }

    def status(self) -> dict[str, str]:
        """Each server's state as HAProxy sees it: "UP", "DOWN", ...
        (empty before HAProxy answers)."""
        try:
            rows = self.stats()
        except OSError:
            return {}
        return {s.name: rows[s.name]["status"] for s in self.servers if s.name in rows}

    def wait_until_up(self, timeout: float = 180) -> None:
        """Every process answers its health check, directly and through
        HAProxy (after a passed check, not the initial state)."""
        deadline = time.monotonic() + timeout
        pending = [s for s in self.servers if s.process]
        while pending:
            server = pending[0]
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode}; "
                    f"see {self.log_dir / (server.name + '.log')}"
                )
            try:
                url = f"http://{server.host}:{server.port}/_stcore/health"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        pending.pop(0)
                        continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} not healthy within {timeout:.0f} s")
            time.sleep(0.2)
        while self.proxy:
            try:
                rows = self.stats()
                if all(
                    rows[s.name]["status"] == "UP"
                    and rows[s.name]["check_status"] == "L7OK"
                    for s in self.servers
                ):
                    return
            except (OSError, KeyError):
                pass
            if self.haproxy and self.haproxy.poll() is not None:
                raise RuntimeError(
                    f"HAProxy exited; see {self.log_dir / 'haproxy.log'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"HAProxy did not see every process up: {rows}")
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> float:
        """Sends ``sig`` to one process (a crash, by default); returns when."""
        server = next(s for s in self.servers if s.name == name)
        server.process.send_signal(sig)
        return time.monotonic()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each process we started, and of HAProxy."""
        cpu = {s.name: _cpu_seconds(s.process.pid) for s in self.servers if s.process}
        if self.haproxy:
            cpu["haproxy"] = _cpu_seconds(self.haproxy.pid)
        return cpu


def _serve(hall: Hall, restart: bool) -> None:
    """Until a signal: notes servers going down or up, restarts processes."""
    stopping = []

    def on_signal(number, _frame):
        stopping.append(number)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, on_signal)
    seen: dict[str, str] = {}
    while not stopping:
        if hall.haproxy and hall.haproxy.poll() is not None:
            print(f"HAProxy exited ({hall.haproxy.returncode}): stopping", flush=True)
            return
        for server in hall.servers:
            process = server.process
            if process and process.poll() is not None and restart:
                server.restarts += 1
                print(
                    f"{time.strftime('%H:%M:%S')} {server.name} exited "
                    f"({process.returncode}); starting it again "
                    f"(restart {server.restarts})",
                    flush=True,
                )
                hall.start_process(server)
        for name, state in hall.status().items():
            if seen.get(name) != state:
                print(f"{time.strftime('%H:%M:%S')} {name}: {state}", flush=True)
                seen[name] = state
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8501, help="the public port")
    parser.add_argument(
        "--bind", default="0.0.0.0", help="the public address (all by default)"
    )
    parser.add_argument("--first-port", type=int, default=8601)
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="where the processes listen (an address the proxy can reach)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        default=[],
        metavar="HOST:PORT",
        help="proxy processes started elsewhere, start none here",
    )
    parser.add_argument(
        "--no-proxy", dest="proxy", action="store_false", help="processes only"
    )
    parser.add_argument("--no-restart", dest="restart", action="store_false")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.proxy and find_haproxy() is None:
        print(MISSING_HAPROXY, file=sys.stderr)
        return 1
    hall = Hall(
        replicas=args.replicas,
        port=args.port,
        bind=args.bind,
        first_port=args.first_port,
        address=args.address,
        remote=args.servers,
        proxy=args.proxy,
    )
    where = ", ".join(f"{s.name} {s.host}:{s.port}" for s in hall.servers)
    print(f"Starting {where}; logs in {hall.log_dir}", flush=True)
    try:
        hall.start()
        hall.wait_until_up()
        if args.proxy:
            public = (
                socket.gethostname() if args.bind in ("0.0.0.0", "*") else args.bind
            )
            print(
                f"Serving lossviz on http://{public}:{args.port} "
                f"({len(hall.servers)} processes behind HAProxy). Ctrl-C stops it.",
                flush=True,
            )
        else:
            print("Processes up, no proxy. Ctrl-C stops them.", flush=True)
        _serve(hall, args.restart)
    except (RuntimeError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping...", flush=True)
        hall.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
