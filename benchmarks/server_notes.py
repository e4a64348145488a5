"""What a Streamlit server notes about itself while a benchmark drives it.

``notes()`` puts SERVER_HOOKS on the PYTHONPATH of the servers started inside
it, as a ``sitecustomize`` (the app itself is not changed). The hooks write
to one file, with the server's clock: each acquire and release of the train
panel's slots, and the wall and CPU time of every script run. ``server_log``
reads that file back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from unittest import mock

SERVER_HOOKS = """
import importlib.abc
import importlib.util
import os
import sys
import threading
import time

_LOG = os.environ["LOSSVIZ_SERVER_LOG"]
_MAKER = os.path.join("ui", "train_panel.py")
_RUNNER = "streamlit.runtime.scriptrunner.script_runner"


def _note(*words):
    with open(_LOG, "a") as log:
        log.write(" ".join(map(str, (f"{time.time():.6f}", *words))) + "\\n")


class BoundedSemaphore(threading.BoundedSemaphore):
    def __init__(self, value=1):
        super().__init__(value)
        self._lossviz_log = sys._getframe(1).f_code.co_filename.endswith(_MAKER)

    def acquire(self, blocking=True, timeout=None):
        got = super().acquire(blocking, timeout)
        if got and self._lossviz_log:
            _note("acquire")
        return got

    __enter__ = acquire

    def release(self, n=1):
        if self._lossviz_log:
            _note("release")  # first, so that no acquire it allows comes before
        super().release(n)


threading.BoundedSemaphore = BoundedSemaphore


def _time_runs(module):
    run_script = module.ScriptRunner._run_script

    def timed(self, rerun_data):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return run_script(self, rerun_data)
        finally:
            kind = "fragment" if rerun_data.fragment_id_queue else "full"
            _note(
                "run",
                kind,
                f"{time.perf_counter() - wall:.6f}",
                f"{time.thread_time() - cpu:.6f}",
            )

    module.ScriptRunner._run_script = timed


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _RUNNER:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _time_runs(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
"""


def server_log(path: Path) -> dict:
    """What the server noted: training slots taken and held at once, and the
    wall and CPU seconds of its full-page script runs."""
    lines = (
        [line.split() for line in path.read_text().splitlines()]
        if path.exists()
        else []
    )
    slots = sorted(
        (float(w[0]), w[1] != "release", w[1])  # a release first at a tie
        for w in lines
        if w[1] in ("acquire", "release")
    )
    held = peak = taken = 0
    for _, _, event in slots:
        taken += event == "acquire"
        held += 1 if event == "acquire" else -1
        peak = max(peak, held)
    runs = _full_runs(lines)
    return {
        "taken": taken,
        "peak": peak,
        "run_wall": [float(w[3]) for w in runs],
        "run_cpu": [float(w[4]) for w in runs],
    }


@contextlib.contextmanager
def notes():
    """Servers started inside this block note their runs; yields the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "server.log"
        (Path(folder) / "sitecustomize.py").write_text(SERVER_HOOKS)
        python_path = os.pathsep.join(
            p for p in (folder, os.environ.get("PYTHONPATH")) if p
        )
        with mock.patch.dict(
            os.environ, {"LOSSVIZ_SERVER_LOG": str(path), "PYTHONPATH": python_path}
        ):
            yield path


def _full_runs(lines: list[list[str]]) -> list[list[str]]:
    """The noted lines of full-page script runs: time, "run", "full", wall, CPU."""
    return [w for w in lines if w[1:3] == ["run", "full"]]


def run_times(path: Path, since: int = 0) -> tuple[list[float], int]:
    """The wall seconds of the full script runs noted after byte ``since``,
    and the file's size now (the ``since`` of the next call)."""
    if not path.exists():
        return [], since
    with open(path) as log:
        log.seek(since)
        lines = [line.split() for line in log.read().splitlines()]
        end = log.tell()
    return [float(w[3]) for w in _full_runs(lines)], end
