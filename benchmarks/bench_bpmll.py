"""BP-MLL: loop vs pairwise vs vectorised (log-space), side by side in one run.

    .venv/bin/python -m benchmarks.bench_bpmll [--batch 256] [--labels 18 1000]

Each form computes value and gradient of the mean loss (what a train step
needs), eagerly, compiled with tf.function, and compiled with XLA
(``jit_compile=True``, which fuses the element-wise ops; Keras uses it for
``model.fit`` where it can). The ratios compare each form at its fastest.
Timings are interleaved (loop, pairwise, vectorised, loop, ...) so that load
on a shared machine hits all three alike; medians and ratios are printed.
An empty compiled function is timed beside them: the fixed cost of a call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lossviz import bpmll_loss, bpmll_loss_loop, bpmll_loss_pairwise
from lossviz._tf import tf


def value_and_grad(fn):
    def step(y_true, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = tf.reduce_mean(fn(y_true, logits))
        return loss, tape.gradient(loss, logits)

    return step


def measure(steps: dict, args: tuple, repeats: int) -> dict[str, float]:
    for step in steps.values():  # warm up (and trace compiled steps)
        step(*args)
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            loss, grad = step(*args)
            grad.numpy()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--labels", type=int, nargs="+", default=[18, 1000])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--loop-repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"BP-MLL value+gradient, batch {args.batch}; median seconds per call")
    header = f"{'labels':>7} {'form':<26} {'median s':>10} {'vs vectorised':>14}"
    print(header)
    print("-" * len(header))
    for num_labels in args.labels:
        y = tf.constant((rng.random((args.batch, num_labels)) < 0.3), tf.float32)
        c = tf.constant(rng.normal(size=(args.batch, num_labels)), tf.float32)
        compiled = {
            # The fixed cost of calling a compiled function and reading its
            # result: a floor under every compiled row.
            "empty call (tf.function)": tf.function(
                lambda y, c: (tf.zeros([]), tf.zeros([]))
            ),
            "pairwise (tf.function)": tf.function(value_and_grad(bpmll_loss_pairwise)),
            "vectorised (tf.function)": tf.function(value_and_grad(bpmll_loss)),
            "pairwise (XLA)": tf.function(
                value_and_grad(bpmll_loss_pairwise), jit_compile=True
            ),
            "vectorised (XLA)": tf.function(
                value_and_grad(bpmll_loss), jit_compile=True
            ),
        }
        eager = {
            "loop (eager)": value_and_grad(bpmll_loss_loop),
            "pairwise (eager)": value_and_grad(bpmll_loss_pairwise),
            "vectorised (eager)": value_and_grad(bpmll_loss),
        }
        # The loop is slow: fewer repeats, interleaved with the eager forms.
        slow = measure(eager, (y, c), args.loop_repeats)
        fast = measure(compiled, (y, c), args.repeats)
        results = {**slow, **fast}
        base = results["vectorised (tf.function)"]
        for name, seconds in results.items():
            print(
                f"{num_labels:>7} {name:<26} {seconds:>10.6f} {seconds / base:>13.1f}x"
            )
        print(
            f"{num_labels:>7} ratios, each form at its fastest (the loop only "
            f"runs eagerly): loop/vectorised = "
            f"{results['loop (eager)'] / best(results, 'vectorised'):.0f}x, "
            f"pairwise/vectorised = "
            f"{best(results, 'pairwise') / best(results, 'vectorised'):.0f}x; "
            f"with tf.function alone: "
            f"{results['loop (eager)'] / base:.0f}x and "
            f"{results['pairwise (tf.function)'] / base:.0f}x"
        )


def best(results: dict[str, float], form: str) -> float:
    """The fastest median of a form over the ways it was run."""
    return min(s for name, s in results.items() if name.startswith(form))


if __name__ == "__main__":
    main()
