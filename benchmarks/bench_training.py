"""Each page's default training run, as its Train button starts it.

    .venv/bin/python -m benchmarks.bench_training [--repeats 3] [--pages ...]

For every page, the page is run in process (AppTest) with its defaults and its
Train button pressed: every default run at the default epochs and learning
rate, exactly what a user's first click trains. ``lossviz.training.train`` is
wrapped to note when each epoch's progress reaches the panel. Printed per page
(medians over the repeats, pages interleaved in each round):

- first curve point: click -> the first epoch's progress handed to the panel;
- whole run: click -> the page's script finished with every run drawn;
- CPU seconds of the whole run (process time: on a loaded machine the wall
  time grows, the CPU time much less).

The targets: first point within 2 s, whole default run within 10 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As app.py sets it for the explorer (the pages here run without app.py).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from ui.catalog import PAGE_DIR, page_names  # noqa: E402


class EpochClock:
    """Wraps ``lossviz.training.train`` to note when each epoch is reported."""

    def __init__(self):
        from lossviz import training

        self.training = training
        self.original = training.train
        self.epochs: list[float] = []
        self.runs = 0

    def __enter__(self):
        original = self.original

        def timed(*args, on_epoch=None, **kwargs):
            self.runs += 1

            def hook(result):
                self.epochs.append(time.perf_counter())
                if on_epoch is not None:
                    on_epoch(result)

            return original(*args, on_epoch=hook, **kwargs)

        self.training.train = timed
        return self

    def __exit__(self, *exc):
        self.training.train = self.original


def one_click(name: str) -> dict:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / PAGE_DIR / f"{name}.py"), default_timeout=600)
    app.run()
    if app.exception:
        raise RuntimeError(f"{name}: {app.exception[0].message}")
    (button,) = [b for b in app.button if str(b.key).startswith("train_go_")]
    epochs = app.number_input(key=button.key.replace("train_go_", "train_epochs_"))
    with EpochClock() as clock:
        start, cpu = time.perf_counter(), time.process_time()
        button.click().run()
        end, cpu_end = time.perf_counter(), time.process_time()
    if app.exception:
        raise RuntimeError(f"{name}: {app.exception[0].message}")
    return {
        "runs": clock.runs,
        "epochs": int(epochs.value),
        "first": clock.epochs[0] - start,
        "whole": end - start,
        "cpu": cpu_end - cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pages", nargs="*", choices=page_names(), default=None)
    args = parser.parse_args()
    pages = args.pages or page_names()

    import lossviz  # noqa: F401  (TensorFlow's import is not part of a click)

    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in pages}
    for round_ in range(args.repeats):
        for name in pages:
            results[name].append(one_click(name))
            r = results[name][-1]
            print(
                f"  round {round_ + 1} {name}: first {r['first']:.2f} s, "
                f"whole {r['whole']:.2f} s, CPU {r['cpu']:.2f} s",
                flush=True,
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| page | runs × epochs | first curve point s | whole run s | CPU s |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in results.items():

        def median(key, rows=rows):
            return statistics.median(r[key] for r in rows)

        print(
            f"| {name} | {rows[0]['runs']} × {rows[0]['epochs']} | "
            f"{median('first'):.2f} | {median('whole'):.2f} | {median('cpu'):.2f} |"
        )


if __name__ == "__main__":
    main()
