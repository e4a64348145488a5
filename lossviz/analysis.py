"""Evaluate a loss the way the explorer shows it: values, gradients, sweeps.

These helpers run any lossviz function eagerly and hand back numpy arrays, so
the app pages (and notebooks) never do loss maths themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from lossviz._tf import tf


def value_and_grad(fn: Callable, x) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``fn(x)`` and the gradient of ``sum(fn(x))`` with respect to ``x``.

    Args:
      fn: maps a tensor to per-sample (or per-token) loss values.
      x: the model outputs to differentiate with respect to (array-like).

    Returns:
      ``(values, grad)`` as numpy arrays; ``grad`` has the shape of ``x``. A
      disconnected gradient (the loss does not depend on ``x``) is zeros.
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        values = fn(x)
        total = tf.reduce_sum(values)
    grad = tape.gradient(total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if isinstance(grad, tf.IndexedSlices):
        grad = tf.convert_to_tensor(grad)
    return np.asarray(values), np.asarray(grad)


def sweep(fn: Callable, x, params: Iterable) -> dict[str, np.ndarray]:
    """Evaluates a loss over a range of one parameter.

    Args:
      fn: ``fn(x, p)`` returns per-sample loss values for parameter value ``p``.
      x: the model outputs, fixed across the sweep.
      params: the parameter values.

    Returns:
      ``{"param", "mean_loss", "grad_norm"}``: for each parameter value, the mean
      of the per-sample losses and the L2 norm of the gradient of their sum with
      respect to ``x``. Non-finite results are kept as they are (NaN / Inf), so a
      chart can mark them.
    """
    params = list(params)
    mean_loss = np.empty(len(params))
    grad_norm = np.empty(len(params))
    for i, p in enumerate(params):
        with np.errstate(invalid="ignore", over="ignore"):
            values, grad = value_and_grad(lambda t, p=p: fn(t, p), x)
            mean_loss[i] = np.mean(values)
            grad_norm[i] = np.sqrt(np.sum(np.square(grad, dtype=np.float64)))
    return {
        "param": np.asarray(params, dtype=float),
        "mean_loss": mean_loss,
        "grad_norm": grad_norm,
    }


def nonfinite_summary(array, max_where: int = 20) -> dict:
    """Counts NaN, +Inf and -Inf entries of ``array`` and says where they are.

    Returns:
      ``{"total", "count", "nan", "posinf", "neginf", "where"}``, ``where`` being
      the index tuples of the first ``max_where`` non-finite entries.
    """
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    where = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)[:max_where]]
    return {
        "total": int(a.size),
        "count": int(bad.sum()),
        "nan": int(np.isnan(a).sum()),
        "posinf": int(np.isposinf(a).sum()),
        "neginf": int(np.isneginf(a).sum()),
        "where": where,
    }


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls.

    Tensor results are converted to numpy so asynchronous work is included.
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be an integer in [1, inf), got {repeats!r}.")

    def run():
        out = fn()
        for t in tf.nest.flatten(out):
            if tf.is_tensor(t):
                t.numpy()

    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
