"""Probe a user's own loss: a named battery of sanity checks on generated inputs.

``probe(loss, task)`` takes a loss as users write it (a function
``(y_true, y_pred) -> values``, a ``keras.losses.Loss`` instance, or its class)
and runs thirteen checks, in this order:

``call``
  It accepts the task's inputs and returns float values, one per sample
  (``[batch]``). A scalar warns: Keras applies its reduction
  (``sum_over_batch_size`` by default) to the values ``call`` returns, so a
  scalar cannot be weighted per sample. Other shapes that keep the batch axis
  warn; a result that loses the batch axis, ``None`` or integers fail.
``finite_typical``
  Value and gradient w.r.t. ``y_pred`` are finite on typical inputs.
``finite_extreme``
  The same on extreme but legal rows: logits at ±1e2 and ±1e4 (right, wrong,
  all high, all low), probabilities exactly 0 and 1, a one-hot target at the
  wrong class; for regression, predictions 1e2 and 1e4 away from the target
  and a prediction equal to it.
``finite_degenerate``
  The same on degenerate rows: no positive label, every label positive, an
  all-zero target row, every prediction equal, the first and last class ids.
``gradient_exists``
  The gradient w.r.t. ``y_pred`` is not ``None`` and not zero everywhere.
``gradient_matches_numeric``
  Autodiff agrees with central differences in float64
  (``tf.test.compute_gradient``, step at most 1e-5 and small beside every
  probability, relative tolerance 1e-3) on a few typical rows. A loss that
  cannot run in float64 is compared in float32 (step 1e-3, tolerance 2e-2).
``descent``
  The perfect prediction (logits with a margin of 10 at the true class, ±10
  per label for multi-label; the target itself for probabilities and
  regression) has a lower batch mean than random predictions, and one small
  step against the gradient lowers the batch mean.
``per_sample_independent``
  Each sample's value stays the same (relative tolerance 1e-5) when the batch
  is reordered, when the other samples change, and when they are removed.
``graph_mode``
  Under ``tf.function(autograph=False)`` (model.fit does not convert a loss
  with AutoGraph) the values equal the eager ones, new values of the same
  shape do not retrace, and it also runs with an unknown batch size, as
  model.fit traces it.
``xla``
  Value and gradient compile with ``jit_compile=True`` and agree with eager
  (relative tolerance 1e-4); a warn, not a fail, as Keras' ``"auto"`` falls
  back without XLA.
``dtypes``
  Value and gradient are finite in float16 and bfloat16 on typical and
  confident rows (a warn).
``serialization``
  For a Loss class or instance: ``from_config(get_config())`` gives the same
  values, and a tiny model compiled with it saves to ``.keras`` and loads
  (without ``custom_objects``) with a loss that gives the same values.
``speed``
  Time per call (value and gradient under ``tf.function``) beside the
  closest Keras built-in at the same size; informational.

Inputs reach the loss as Keras passes them: both ``y_true`` and ``y_pred`` as
float tensors of one dtype (integer class ids too). A Loss's ``call`` is used,
so the per-sample values are seen before the reduction.

Each check gives ``pass``, ``warn`` or ``fail`` and one sentence, with the
smallest input row that shows a problem. A check that does not apply passes
and says so. A loss that raises on the typical inputs never crashes the
probe: ``call`` fails with its error and the checks that need its values fail
as not run (``graph_mode`` still traces it, to show its own error).

``scale_sweep`` follows the loss and its gradient as the logits of the typical
batch grow (a failing check's story, drawn by the probe page). ``load_source``
is the one place where lossviz runs code a user typed: only when the server
was started with ``LOSSVIZ_ALLOW_PASTED_CODE=1``, in its own process.

Public names: ``TASKS``, ``OUTPUTS``, ``CHECKS``, ``STATUSES``, ``CheckResult``,
``ProbeReport``, ``ProbeError``, ``probe``, ``assert_sane``, ``format_report``,
``load_target``, ``SWEEP_SCALES``, ``ScaleSweep``, ``scale_sweep``,
``PASTED_CODE_ENV``, ``pasted_code_allowed``, ``load_source``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import os
import re
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lossviz._tf import tf

# isort: split
import keras

from lossviz._common import check_choice
from lossviz.explore.attempts import describe

TASKS = ("categorical", "sparse", "multilabel", "regression")
OUTPUTS = ("logits", "probabilities")
STATUSES = ("pass", "warn", "fail")
CHECKS = (
    "call",
    "finite_typical",
    "finite_extreme",
    "finite_degenerate",
    "gradient_exists",
    "gradient_matches_numeric",
    "descent",
    "per_sample_independent",
    "graph_mode",
    "xla",
    "dtypes",
    "serialization",
    "speed",
)

BATCH_SIZE = 8
WIDTH = 5
MARGIN = 10.0
EXTREME_SCALES = (1e2, 1e4)
NUMERIC_ROWS = 3
MAX_STEP = 1e-5
NUMERIC_RTOL = 1e-3
FLOAT32_STEP = 1e-3
FLOAT32_RTOL = 2e-2
INDEPENDENT_RTOL = 1e-5
GRAPH_RTOL = 1e-5
XLA_RTOL = 1e-4
RANDOM_DRAWS = 3
STEP_SIZES = (1e-2, 1e-3, 1e-4)
MAX_SHOWN = 8
_HALF = (tf.float16, tf.bfloat16)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class ProbeError(ValueError):
    """The probe cannot run: bad arguments, arrays or target; one line says why."""


# --- the report -----------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``status`` in ``STATUSES`` and one sentence."""

    name: str
    status: str
    detail: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(
                f"`status` must be one of {STATUSES}, got {self.status!r}."
            )

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class ProbeReport:
    """What ``probe`` found.

    Attributes:
      loss: the loss as named in messages (``my_loss``, ``BPMLL()``).
      task, outputs: as given to ``probe``.
      y_true_shape, y_pred_shape: the shapes of the typical inputs.
      checks: one ``CheckResult`` per name of ``CHECKS``, in that order.
      seconds: how long the battery took.
    """

    loss: str
    task: str
    outputs: str
    y_true_shape: tuple
    y_pred_shape: tuple
    checks: tuple[CheckResult, ...]
    seconds: float = 0.0

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(f"no check {name!r}; the checks: {', '.join(CHECKS)}")

    def status(self, name: str) -> str:
        return self.check(name).status

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "warn")

    @property
    def ok(self) -> bool:
        """True when no check fails (warnings allowed)."""
        return not self.failures

    @property
    def verdict(self) -> str:
        """One line: how many checks fail or warn, and which."""
        total = len(self.checks)
        warned = [c.name for c in self.warnings]
        warn_text = (
            f"{len(warned)} {'warns' if len(warned) == 1 else 'warn'}: "
            + ", ".join(warned)
            if warned
            else ""
        )
        if self.failures:
            failed = [c.name for c in self.failures]
            text = f"{len(failed)} of {total} checks fail: {', '.join(failed)}"
            return text + (f"; {warn_text}." if warned else ".")
        if warned:
            return f"No check fails; {warn_text}."
        return f"All {total} checks pass."

    def to_dict(self) -> dict:
        return {
            "loss": self.loss,
            "task": self.task,
            "outputs": self.outputs,
            "y_true_shape": list(self.y_true_shape),
            "y_pred_shape": list(self.y_pred_shape),
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
        }


def format_report(report: ProbeReport, target: str | None = None) -> str:
    """The report as text: a heading, one row per check, the verdict."""
    shapes = f"y_true {_dims(report.y_true_shape)}, y_pred {_dims(report.y_pred_shape)}"
    lines = [
        f"probe {target or report.loss}: {report.task}, {report.outputs}, on {shapes}"
    ]
    width = max(len(name) for name in CHECKS)
    for result in report.checks:
        lines.append(f"{result.name:<{width}}  {result.status:<4}  {result.detail}")
    lines.append(f"verdict: {report.verdict}")
    return "\n".join(lines)


# --- text -------------------------------------------------------------------------


def _num(x) -> str:
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return f"{x:.4g}"


def _vector(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return _num(a)
    flat = a.ravel()
    items = [_num(v) for v in flat[:MAX_SHOWN]]
    if flat.size > MAX_SHOWN:
        items.append(f"… {flat.size} values")
    return "[" + ", ".join(items) + "]"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _row_text(y_true_row, y_pred_row) -> str:
    return f"y_true={_vector(y_true_row)}, y_pred={_vector(y_pred_row)}"


_XLA_NOISE = re.compile(r"\[_XlaMustCompile=[^\]]*\]")


def _error_text(error: BaseException) -> str:
    text = _XLA_NOISE.sub("", describe(error))
    return text if len(text) <= 240 else text[:239] + "…"


# --- the loss under test ----------------------------------------------------------


class _NotValues(Exception):
    """The loss returned something that is not loss values."""


@dataclass
class _Loss:
    """The loss as the checks call it: ``fn(y_true, y_pred)`` gives its values
    before any reduction (a Loss's ``call``)."""

    name: str
    kind: str  # "function", "instance" or "class"
    obj: object
    instance: keras.losses.Loss | None
    error: str | None

    def fn(self, y_true, y_pred):
        if self.instance is not None:
            return self.instance.call(y_true, y_pred)
        return self.obj(y_true, y_pred)


def _subject(loss) -> _Loss:
    if isinstance(loss, type):
        if not issubclass(loss, keras.losses.Loss):
            raise ProbeError(
                f"`loss` must be a function (y_true, y_pred) -> values or a "
                f"keras.losses.Loss instance or class, got the class {loss.__name__} "
                "(not a keras.losses.Loss)."
            )
        try:
            instance = loss()
        except Exception as error:  # a class that needs arguments
            return _Loss(
                loss.__name__,
                "class",
                loss,
                None,
                f"{loss.__name__}() raises {_error_text(error)}; pass an instance",
            )
        return _Loss(f"{loss.__name__}()", "class", loss, instance, None)
    if isinstance(loss, keras.losses.Loss):
        return _Loss(f"{type(loss).__name__}()", "instance", loss, loss, None)
    if callable(loss):
        name = getattr(loss, "__qualname__", None) or getattr(loss, "__name__", None)
        return _Loss(name or type(loss).__name__, "function", loss, None, None)
    raise ProbeError(
        "`loss` must be a function (y_true, y_pred) -> values or a "
        f"keras.losses.Loss instance or class, got {type(loss).__name__}."
    )


def _values(out) -> tf.Tensor:
    if out is None:
        raise _NotValues("returns None, not values (a function without `return`?)")
    try:
        return tf.convert_to_tensor(out)
    except Exception:
        raise _NotValues(
            f"returns a {type(out).__name__}, not a tensor of loss values"
        ) from None


@dataclass
class _Run:
    """One evaluation: values (float64 numpy), the gradient of their sum
    w.r.t. y_pred (None when there is none), or the error."""

    values: np.ndarray | None = None
    grad: np.ndarray | None = None
    dtype: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _total(values: tf.Tensor):
    if not values.dtype.is_floating:
        return None
    if values.dtype in _HALF:  # the sum of the batch must not overflow
        values = tf.cast(values, tf.float32)
    return tf.reduce_sum(values)


def _run(loss: _Loss, y_true, y_pred, dtype=tf.float32) -> _Run:
    y_true = tf.constant(np.asarray(y_true), dtype=dtype)
    y_pred = tf.constant(np.asarray(y_pred), dtype=dtype)
    try:
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            values = _values(loss.fn(y_true, y_pred))
            total = _total(values)
        grad = None if total is None else tape.gradient(total, y_pred)
    except _NotValues as error:
        return _Run(error=str(error))
    except Exception as error:  # the user's loss may raise anything
        return _Run(error=f"raises {_error_text(error)}")
    if grad is not None:
        grad = np.asarray(tf.cast(tf.convert_to_tensor(grad), tf.float64))
    if values.dtype.is_floating or values.dtype.is_integer:
        array = np.asarray(tf.cast(values, tf.float64))
    else:
        array = np.asarray(values)
    return _Run(values=array, grad=grad, dtype=values.dtype.name)


def _numbers(run: _Run) -> bool:
    """Whether the run gave float values the checks can use."""
    return run.ok and run.dtype is not None and tf.as_dtype(run.dtype).is_floating


# --- inputs -----------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _one_hot(ids, width):
    return np.eye(width)[np.asarray(ids, dtype=np.int64)]


@dataclass
class _Shapes:
    batch: int
    true_row: tuple
    pred_row: tuple

    @property
    def width(self) -> int:
        return self.pred_row[-1] if self.pred_row else 1


def _targets(task, outputs, rng, shapes: _Shapes, like=None):
    batch, width = shapes.batch, shapes.width
    if task == "categorical":
        return _one_hot(rng.integers(0, width, batch), width)
    if task == "sparse":
        ids = rng.integers(0, width, batch).astype(np.float64)
        return ids.reshape((batch, *shapes.true_row))
    if task == "multilabel":
        labels = (rng.random((batch, width)) < 0.4).astype(np.float64)
        for row in labels:  # typical rows have a positive and a negative label
            if row.all() or not row.any():
                row[:] = 0.0
                row[rng.permutation(width)[: max(1, width // 2)]] = 1.0
        return labels
    size = (batch, *shapes.true_row)
    if outputs == "probabilities":
        return rng.uniform(0.05, 0.95, size)
    if like is not None:
        return rng.normal(float(np.mean(like)), float(np.std(like)) or 1.0, size)
    return rng.normal(size=size)


def _predictions(task, outputs, rng, shapes: _Shapes, like=None):
    size = (shapes.batch, *shapes.pred_row)
    if task == "regression":
        if outputs == "probabilities":
            return rng.uniform(0.05, 0.95, size)
        if like is not None:
            return rng.normal(float(np.mean(like)), float(np.std(like)) or 1.0, size)
        return rng.normal(size=size)
    logits = rng.normal(scale=1.5, size=size)
    if outputs == "logits":
        return logits
    return _sigmoid(logits) if task == "multilabel" else _softmax(logits)


def _class_ids(task, y_true) -> np.ndarray:
    if task == "sparse":
        return np.asarray(y_true).reshape(len(y_true)).astype(np.int64)
    return np.argmax(y_true, axis=-1)


def _as_array(value, name: str) -> np.ndarray:
    if tf.is_tensor(value):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except Exception:
        raise ProbeError(f"`{name}` is not an array of numbers.") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise ProbeError(f"`{name}` must hold numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ProbeError(
            f"`{name}` must have a batch axis with at least one sample, got shape "
            f"{_dims(array.shape)}."
        )
    bad = ~np.isfinite(array)
    if bad.any():
        where = [int(i) for i in np.argwhere(bad)[0]]
        raise ProbeError(
            f"`{name}` holds {_num(array[tuple(where)])} at {where}; the probe needs "
            "finite inputs (python -m lossviz check traces NaN in your data)."
        )
    return array


def _check_given(task, outputs, y_true, y_pred) -> None:
    """Raises ProbeError unless the user's arrays fit the task."""
    if y_true.shape[0] != y_pred.shape[0]:
        raise ProbeError(
            f"`y_true` has {y_true.shape[0]} samples but `y_pred` has "
            f"{y_pred.shape[0]}; the first axis is the batch."
        )
    if task != "regression":
        if y_pred.ndim != 2 or y_pred.shape[1] < 2:
            raise ProbeError(
                f"for task {task!r} `y_pred` must be [batch, classes] with at least "
                f"2 classes, got {_dims(y_pred.shape)}."
            )
    if task in ("categorical", "multilabel") and y_true.shape != y_pred.shape:
        raise ProbeError(
            f"for task {task!r} `y_true` must have y_pred's shape "
            f"{_dims(y_pred.shape)}, got {_dims(y_true.shape)}."
        )
    if task == "sparse":
        if y_true.ndim not in (1, 2) or (y_true.ndim == 2 and y_true.shape[1] != 1):
            raise ProbeError(
                "for task 'sparse' `y_true` must be class ids [batch] (or "
                f"[batch, 1]), got {_dims(y_true.shape)}."
            )
        classes = y_pred.shape[1]
        if np.any(y_true != np.round(y_true)) or np.any(
            (y_true < 0) | (y_true >= classes)
        ):
            raise ProbeError(
                f"for task 'sparse' `y_true` must hold class ids in [0, {classes - 1}] "
                "(y_pred's last axis has that many classes)."
            )
    if task == "multilabel" and np.any((y_true < 0) | (y_true > 1)):
        raise ProbeError("for task 'multilabel' `y_true` must hold values in [0, 1].")
    if outputs == "probabilities" and np.any((y_pred < 0) | (y_pred > 1)):
        raise ProbeError(
            "with outputs='probabilities' `y_pred` must hold values in [0, 1]; "
            "pass outputs='logits' for raw scores."
        )


# Special rows: (label, y_true row, y_pred row).


def _extreme_rows(task, outputs, shapes: _Shapes, y_true, y_pred):
    width = shapes.width
    rows = []
    if task in ("categorical", "sparse"):
        right, wrong = 1 % width, 0

        def target(k):
            if task == "categorical":
                return _one_hot(k, width)
            return np.full(shapes.true_row, float(k))

        if outputs == "logits":
            for s in EXTREME_SCALES:
                high = np.full(width, -s)
                high[right] = s
                rows.append(
                    (f"logits ±{s:g}, the true class highest", target(right), high)
                )
                off = np.full(width, -s)
                off[wrong] = s
                rows.append(
                    (f"logits ±{s:g}, a one-hot target at the wrong class",
                     target(right), off)
                )  # fmt: skip
                rows.append((f"every logit +{s:g}", target(right), np.full(width, s)))
                rows.append((f"every logit -{s:g}", target(right), np.full(width, -s)))
        else:
            rows.append(
                ("probabilities exactly one-hot at the true class", target(right),
                 _one_hot(right, width))
            )  # fmt: skip
            rows.append(
                ("probabilities exactly one-hot at the wrong class", target(right),
                 _one_hot(wrong, width))
            )  # fmt: skip
            zero = np.full(width, 1.0 / (width - 1))
            zero[right] = 0.0
            rows.append(
                ("probability exactly 0 at the true class", target(right), zero)
            )
    elif task == "multilabel":
        labels = np.zeros(width)
        labels[::2] = 1.0
        if labels.all():
            labels[-1] = 0.0
        sign = 2.0 * labels - 1.0
        if outputs == "logits":
            for s in EXTREME_SCALES:
                rows.append((f"logits ±{s:g}, every label right", labels, s * sign))
                rows.append((f"logits ±{s:g}, every label wrong", labels, -s * sign))
                rows.append((f"every logit +{s:g}", labels, np.full(width, s)))
                rows.append((f"every logit -{s:g}", labels, np.full(width, -s)))
        else:
            rows.append(("probabilities exactly the target (0 and 1)", labels, labels))
            rows.append(
                ("probabilities exactly wrong (1 - target)", labels, 1 - labels)
            )
            rows.append(("every probability exactly 0", labels, np.zeros(width)))
            rows.append(("every probability exactly 1", labels, np.ones(width)))
    else:
        target, prediction = y_true[0], y_pred[0]
        same = shapes.true_row == shapes.pred_row
        if outputs == "probabilities":
            zeros_t, ones_t = np.zeros(shapes.true_row), np.ones(shapes.true_row)
            zeros_p, ones_p = np.zeros(shapes.pred_row), np.ones(shapes.pred_row)
            rows += [
                ("target exactly 0, prediction exactly 1", zeros_t, ones_p),
                ("target exactly 1, prediction exactly 0", ones_t, zeros_p),
                ("target and prediction exactly 0", zeros_t, zeros_p),
                ("target and prediction exactly 1", ones_t, ones_p),
            ]
        else:
            for s in EXTREME_SCALES:
                if same:
                    rows.append((f"prediction {s:g} above the target", target,
                                 target + s))  # fmt: skip
                    rows.append((f"prediction {s:g} below the target", target,
                                 target - s))  # fmt: skip
                else:
                    rows.append((f"every prediction +{s:g}", target,
                                 np.full(shapes.pred_row, s)))  # fmt: skip
                    rows.append((f"every prediction -{s:g}", target,
                                 np.full(shapes.pred_row, -s)))  # fmt: skip
                rows.append(
                    (f"every target +{s:g}, every prediction -{s:g}"
                     if same else f"every target +{s:g}",
                     np.full(shapes.true_row, s),
                     np.full(shapes.pred_row, -s) if same else prediction)
                )  # fmt: skip
            if same:
                rows.append(("prediction exactly equal to the target", target, target))
    return rows


def _degenerate_rows(task, outputs, shapes: _Shapes, y_true, y_pred):
    width = shapes.width
    typical = y_pred[0]
    if task == "regression":
        zero_t = np.zeros(shapes.true_row)
        rows = [("an all-zero target row", zero_t, typical)]
        if shapes.true_row == shapes.pred_row:
            rows.append(("target and prediction both all zero", zero_t, zero_t))
        return rows
    equal = (
        np.zeros(width)
        if outputs == "logits"
        else np.full(width, 0.5 if task == "multilabel" else 1.0 / width)
    )
    if task == "multilabel":
        labels = y_true[0]
        return [
            ("no positive label (an all-zero target row)", np.zeros(width), typical),
            ("every label positive", np.ones(width), typical),
            ("every prediction equal", labels, equal),
        ]
    if task == "categorical":
        return [
            ("an all-zero target row (no class)", np.zeros(width), typical),
            ("every prediction equal", y_true[0], equal),
        ]
    first = np.zeros(shapes.true_row)
    last = np.full(shapes.true_row, float(width - 1))
    return [
        ("class id 0", first, typical),
        (f"the last class id, {width - 1}", last, typical),
        ("every prediction equal", y_true[0], equal),
    ]


def _perfect(task, outputs, y_true, shapes: _Shapes):
    """The perfect prediction for ``y_true``, or None (regression whose y_true
    and y_pred differ in shape)."""
    if task == "regression":
        return y_true.copy() if shapes.true_row == shapes.pred_row else None
    width = shapes.width
    if task == "multilabel":
        if outputs == "probabilities":
            return y_true.copy()
        return np.where(y_true > 0.5, MARGIN, -MARGIN)
    if outputs == "probabilities":
        if task == "categorical":
            return y_true.copy()
        return _one_hot(_class_ids(task, y_true), width)
    return MARGIN * _one_hot(_class_ids(task, y_true), width)


def _smoothed(task, perfect, width):
    if task in ("categorical", "sparse"):
        return (1 - 1e-3) * perfect + 1e-3 / width
    return np.clip(perfect, 1e-3, 1 - 1e-3)


# --- locating problems ------------------------------------------------------------


def _row_flags(array, batch: int):
    """Per-row ``True`` where ``array`` is not finite, or None if ``array``
    does not keep the batch axis."""
    if array is None or np.ndim(array) == 0 or np.shape(array)[0] != batch:
        return None
    bad = ~np.isfinite(array)
    return bad.reshape(batch, -1).any(axis=1)


def _close(expected, got, rtol) -> np.ndarray:
    """Elementwise closeness; NaN matches NaN, an infinity itself."""
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    finite = np.abs(expected[np.isfinite(expected)])
    atol = 0.1 * rtol * max(1.0, float(finite.max()) if finite.size else 1.0)
    with np.errstate(invalid="ignore"):
        near = (
            np.abs(expected - got)
            <= rtol * np.maximum(np.abs(expected), np.abs(got)) + atol
        )
    return near | (np.isnan(expected) & np.isnan(got)) | (expected == got)


class _Context:
    def __init__(self, loss: _Loss, task, outputs, y_true, y_pred, given, seed):
        self.loss = loss
        self.task = task
        self.outputs = outputs
        self.y_true = y_true
        self.y_pred = y_pred
        self.given = given
        self.shapes = _Shapes(y_pred.shape[0], y_true.shape[1:], y_pred.shape[1:])
        self.rng = np.random.default_rng([int(seed), 1])
        like_true = y_true if given else None
        like_pred = y_pred if given else None
        self.other = (
            _targets(task, outputs, self.rng, self.shapes, like_true),
            _predictions(task, outputs, self.rng, self.shapes, like_pred),
        )
        self.typical = (
            _Run(error=loss.error) if loss.error else _run(loss, y_true, y_pred)
        )
        # Set by graph_mode: the loss traces with an unknown batch size, as
        # model.fit traces it (xla and speed compile it that way).
        self.traces = False

    @property
    def batch(self) -> int:
        return self.shapes.batch

    def run(self, y_true, y_pred, dtype=tf.float32) -> _Run:
        return _run(self.loss, y_true, y_pred, dtype)

    def not_run(self, name: str) -> CheckResult | None:
        """A fail saying why ``name`` cannot run, or None when it can."""
        run = self.typical
        if self.loss.error:
            return CheckResult(name, "fail", f"Not run: {self.loss.error} (see call).")
        if not run.ok:
            return CheckResult(
                name, "fail", f"Not run: the loss {run.error} on the typical inputs "
                "(see call)."
            )  # fmt: skip
        if not _numbers(run):
            return CheckResult(
                name, "fail", f"Not run: the loss returns {run.dtype} values, not "
                "floats (see call)."
            )  # fmt: skip
        return None


def _bad_rows(ctx: _Context, rows, run: _Run, dtype=tf.float32) -> list:
    """``[(index, what), ...]`` for the rows whose value or gradient is not
    finite (or which raise), trying rows alone when the values do not keep
    the batch axis; empty if no single row shows it."""
    n = len(rows)
    if run.ok:
        value_flags = _row_flags(run.values, n)
        grad_flags = _row_flags(run.grad, n)
        if value_flags is not None:
            flags = value_flags | (grad_flags if grad_flags is not None else False)
            return [(int(i), _what(run, i)) for i in np.flatnonzero(flags)]
    bad = []
    for i, (_, yt, yp) in enumerate(rows):
        alone = ctx.run(yt[None], yp[None], dtype)
        if not alone.ok:
            bad.append((i, f"it {alone.error}"))
        elif not np.all(np.isfinite(alone.values)) or (
            alone.grad is not None and not np.all(np.isfinite(alone.grad))
        ):
            bad.append((i, _what(alone, 0)))
    return bad


def _first_bad_row(ctx: _Context, rows, run: _Run, dtype=tf.float32):
    """The first of ``_bad_rows``, or None."""
    bad = _bad_rows(ctx, rows, run, dtype)
    return bad[0] if bad else None


def _parts(run: _Run) -> list:
    return [run.values] + ([run.grad] if run.grad is not None else [])


def _overflow(ctx: _Context, row) -> str | None:
    """Why ``row`` is not finite in float32, if only because the loss's true
    value (or gradient) is beyond float32's range; None for a numerical fault.

    An overflow leaves ±Inf and no NaN, and float64 either holds the value,
    beyond float32's largest number, or overflows too, again with no NaN. A
    value that float64 finds within float32's range is a fault (an
    intermediate that under- or overflows, as -log(softmax) written out).
    """
    _, y_true, y_pred = row
    narrow = ctx.run(y_true[None], y_pred[None])
    if not narrow.ok or any(np.isnan(p).any() for p in _parts(narrow)):
        return None
    if all(np.isfinite(p).all() for p in _parts(narrow)):
        return None  # not finite only beside the other rows
    wide = ctx.run(y_true[None], y_pred[None], tf.float64)
    if not wide.ok or wide.dtype != "float64":
        return None
    parts = _parts(wide)
    if any(np.isnan(p).any() for p in parts):
        return None
    if all(np.isfinite(p).all() for p in parts):
        biggest = max(float(np.max(np.abs(p))) for p in parts)
        if biggest <= _FLOAT32_MAX:
            return None
        return (
            f"in float64 it reaches {_num(biggest)}, beyond float32's largest "
            f"number, {_num(_FLOAT32_MAX)}"
        )
    return "it is Inf in float64 too, with no NaN"


def _what(run: _Run, i) -> str:
    value = run.values if np.ndim(run.values) == 0 else run.values[i]
    if not np.all(np.isfinite(value)):
        shown = np.ravel(value)[~np.isfinite(np.ravel(value))][0]
        return f"the loss is {_num(shown)}"
    grad = np.ravel(run.grad[i] if np.ndim(run.grad) else run.grad)
    shown = grad[~np.isfinite(grad)][0]
    return f"the gradient w.r.t. y_pred holds {_num(shown)}"


def _finite_on(ctx: _Context, name: str, rows, kind: str) -> CheckResult:
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    y_true = np.stack([r[1] for r in rows])
    y_pred = np.stack([r[2] for r in rows])
    run = ctx.run(y_true, y_pred)
    finite = (
        run.ok
        and np.all(np.isfinite(run.values))
        and (run.grad is None or np.all(np.isfinite(run.grad)))
    )
    labels = "; ".join(r[0] for r in rows[:4]) + ("; …" if len(rows) > 4 else "")
    if finite:
        no_grad = (
            " (it has no gradient: see gradient_exists)" if run.grad is None else ""
        )
        return CheckResult(
            name, "pass", f"Value and gradient are finite on the "
            f"{_count(len(rows), f'{kind} row')} ({labels}){no_grad}."
        )  # fmt: skip
    bad = _bad_rows(ctx, rows, run)
    if not bad:
        why = run.error if not run.ok else "is not finite"
        return CheckResult(
            name, "fail", f"The loss {why} on the batch of the {len(rows)} {kind} rows "
            f"together ({labels}), though no row alone shows it."
        )  # fmt: skip
    overflows = []
    for i, what in bad:
        why = _overflow(ctx, rows[i]) if kind == "extreme" else None
        label, yt, yp = rows[i]
        if why is None:
            return CheckResult(
                name, "fail", f"On the {kind} row '{label}' {what}: "
                f"{_row_text(yt, yp)}."
            )  # fmt: skip
        overflows.append((i, what, why))
    i, what, why = overflows[0]
    label, yt, yp = rows[i]
    return CheckResult(
        name, "warn", f"The loss overflows float32 on {len(overflows)} of {len(rows)} "
        f"{kind} rows, where its true value is too large rather than miscomputed: "
        f"on '{label}' {what} ({why}): {_row_text(yt, yp)}."
    )  # fmt: skip


# --- the checks -------------------------------------------------------------------


def _check_call(ctx: _Context) -> CheckResult:
    name = "call"
    if ctx.loss.error:
        return CheckResult(name, "fail", f"{ctx.loss.error}.")
    shapes = f"y_true {_dims(ctx.y_true.shape)} and y_pred {_dims(ctx.y_pred.shape)}"
    where = "`call`" if ctx.loss.instance is not None else "The loss"
    run = ctx.typical
    if not run.ok:
        return CheckResult(name, "fail", f"On {shapes}, {where.lower()} {run.error}.")
    if not _numbers(run):
        return CheckResult(
            name, "fail", f"{where} returns {run.dtype} values; a loss must return "
            "floats (cast before you return, and only where the maths allows)."
        )  # fmt: skip
    shape = np.shape(run.values)
    batch = ctx.batch
    if ctx.loss.instance is not None:
        try:
            ctx.loss.instance(
                tf.constant(ctx.y_true, tf.float32), tf.constant(ctx.y_pred, tf.float32)
            )
        except Exception as error:
            return CheckResult(
                name, "fail", f"`call` works, but calling the loss as Keras does "
                f"(__call__, with its reduction) raises {_error_text(error)}."
            )  # fmt: skip
    if shape == (batch,):
        return CheckResult(
            name, "pass", f"Accepts {shapes} and returns {run.dtype} values of shape "
            f"[{batch}], one per sample."
        )  # fmt: skip
    if shape == ():
        return CheckResult(
            name, "warn", f"Returns a scalar for {shapes}, not one value per sample "
            f"[{batch}]: Keras applies its reduction (sum_over_batch_size by default) "
            "to the values a loss returns, so sample_weight cannot weight samples "
            "and reduction='sum' or None cannot work as documented."
        )  # fmt: skip
    if len(shape) > 1 and shape[0] == batch:
        return CheckResult(
            name, "warn", f"Returns shape {_dims(shape)} for {shapes}, not one value "
            f"per sample [{batch}]: Keras' reduction (sum_over_batch_size) then "
            "averages every entry; reduce the other axes in the loss."
        )  # fmt: skip
    return CheckResult(
        name, "fail", f"Returns shape {_dims(shape)} for {shapes}: the batch axis of "
        f"{batch} samples is lost; a loss returns one value per sample [{batch}]."
    )  # fmt: skip


def _typical_rows(ctx: _Context):
    return [
        (f"row {i} of the typical batch", ctx.y_true[i], ctx.y_pred[i])
        for i in range(ctx.batch)
    ]


def _check_finite_typical(ctx: _Context) -> CheckResult:
    name = "finite_typical"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    run = ctx.typical
    if np.all(np.isfinite(run.values)) and (
        run.grad is None or np.all(np.isfinite(run.grad))
    ):
        source = "your" if ctx.given else "the typical"
        no_grad = (
            " (it has no gradient: see gradient_exists)" if run.grad is None else ""
        )
        return CheckResult(
            name, "pass", f"Value and gradient are finite on {source} inputs "
            f"({ctx.batch} samples){no_grad}."
        )  # fmt: skip
    rows = _typical_rows(ctx)
    found = _first_bad_row(ctx, rows, run)
    if found is None:
        return CheckResult(
            name, "fail", "The loss is not finite on the typical batch, though no "
            "sample alone shows it."
        )  # fmt: skip
    i, what = found
    return CheckResult(
        name, "fail", f"On row {i} of the typical inputs {what}: "
        f"{_row_text(rows[i][1], rows[i][2])}."
    )  # fmt: skip


def _check_finite_extreme(ctx: _Context) -> CheckResult:
    rows = _extreme_rows(ctx.task, ctx.outputs, ctx.shapes, ctx.y_true, ctx.y_pred)
    return _finite_on(ctx, "finite_extreme", rows, "extreme")


def _check_finite_degenerate(ctx: _Context) -> CheckResult:
    rows = _degenerate_rows(ctx.task, ctx.outputs, ctx.shapes, ctx.y_true, ctx.y_pred)
    return _finite_on(ctx, "finite_degenerate", rows, "degenerate")


_NO_GRADIENT = (
    "argmax, round, a cast to an integer, stop_gradient or a trip through numpy "
    "cut the path from y_pred to the loss"
)


def _check_gradient_exists(ctx: _Context) -> CheckResult:
    name = "gradient_exists"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    row = _row_text(ctx.y_true[0], ctx.y_pred[0])
    if ctx.typical.grad is None:
        return CheckResult(
            name, "fail", f"The gradient w.r.t. y_pred is None ({_NO_GRADIENT}); "
            f"e.g. for {row}."
        )  # fmt: skip
    if np.any(ctx.typical.grad != 0):
        return CheckResult(
            name, "pass", "The gradient w.r.t. y_pred exists and is not zero "
            "everywhere."
        )  # fmt: skip
    again = ctx.run(*ctx.other)
    if again.ok and again.grad is not None and np.any(again.grad != 0):
        return CheckResult(
            name, "pass", "The gradient w.r.t. y_pred exists; it is zero on the "
            "typical batch but not on a second random one."
        )  # fmt: skip
    return CheckResult(
        name, "fail", f"The gradient w.r.t. y_pred is zero everywhere on two random "
        f"batches ({_NO_GRADIENT}); e.g. for {row}."
    )  # fmt: skip


def _numeric_rows(ctx: _Context) -> np.ndarray:
    """The typical rows the numeric check uses: the first few, or for
    probabilities those farthest from 0 and 1."""
    count = min(NUMERIC_ROWS, ctx.batch)
    if ctx.outputs != "probabilities":
        return np.arange(count)
    room = np.minimum(ctx.y_pred, 1 - ctx.y_pred).reshape(ctx.batch, -1).min(axis=1)
    return np.sort(np.argsort(-room, kind="stable")[:count])


def _check_gradient_matches_numeric(ctx: _Context) -> CheckResult:
    name = "gradient_matches_numeric"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    if ctx.typical.grad is None:
        return CheckResult(
            name, "fail", "No gradient to compare with central differences (see "
            "gradient_exists)."
        )  # fmt: skip
    rows = _numeric_rows(ctx)
    y_true, y_pred = ctx.y_true[rows], ctx.y_pred[rows]
    room = 1.0
    if ctx.outputs == "probabilities":
        room = float(np.minimum(y_pred, 1 - y_pred).min())
        if room <= 0:
            return CheckResult(
                name, "pass", "Does not apply: every row of y_pred has a probability "
                "of exactly 0 or 1, where central differences leave [0, 1]."
            )  # fmt: skip
    note = ""
    precision, step, rtol = "float64", min(MAX_STEP, 1e-3 * room), NUMERIC_RTOL
    trial = ctx.run(y_true, y_pred, tf.float64)
    if not trial.ok or trial.dtype != "float64":
        why = f"it {trial.error}" if not trial.ok else f"it returns {trial.dtype}"
        note = f" (in float32: in float64 {why})"
        precision, step, rtol = "float32", min(FLOAT32_STEP, 0.1 * room), FLOAT32_RTOL
    dtype = tf.as_dtype(precision)
    y_true_t = tf.constant(y_true, dtype)

    def values(x):
        return tf.reshape(_values(ctx.loss.fn(y_true_t, x)), [-1])

    try:
        theoretical, numerical = tf.test.compute_gradient(
            values, [tf.constant(y_pred, dtype)], delta=step
        )
    except Exception as error:
        return CheckResult(
            name, "fail", f"Computing the Jacobian raises {_error_text(error)}{note}."
        )
    autodiff, numeric = theoretical[0], numerical[0]  # [y size, x size]
    if not (np.all(np.isfinite(autodiff)) and np.all(np.isfinite(numeric))):
        return CheckResult(
            name, "fail", f"The Jacobian on {len(rows)} typical rows is not finite "
            f"in {precision} (see finite_typical){note}."
        )  # fmt: skip
    near = _close(numeric, autodiff, rtol)
    if near.all():
        return CheckResult(
            name, "pass", f"Autodiff matches central differences on {len(rows)} "
            f"typical rows ({precision}, step {step:.0e}, relative tolerance "
            f"{rtol:g}){note}."
        )  # fmt: skip
    y_size, x_size = autodiff.shape
    per_row = y_size // len(rows) if y_size % len(rows) == 0 else 0
    out_rows = np.arange(y_size) // per_row if per_row else np.full(y_size, -1)
    x_rows = np.arange(x_size) // (x_size // len(rows))
    scale = np.abs(autodiff - numeric) / (
        rtol * np.maximum(np.abs(autodiff), np.abs(numeric)) + 1e-300
    )
    scale[near] = 0
    own = out_rows[:, None] == x_rows[None, :]  # a sample's own row first
    ranked = np.where(own & ~near, scale + np.max(scale) + 1, scale)
    out, flat_x = np.unravel_index(int(np.argmax(ranked)), ranked.shape)
    index = np.unravel_index(flat_x, y_pred.shape)
    row = int(rows[index[0]])
    entry = ", ".join(str(int(i)) for i in (row, *index[1:]))
    of = f"loss[{int(rows[out_rows[out]])}]" if per_row == 1 else "loss"
    if per_row > 1:
        of = f"loss[{int(rows[out_rows[out]])}, …]"
    return CheckResult(
        name, "fail", f"d {of} / d y_pred[{entry}] is {_num(autodiff[out, flat_x])} "
        f"by autodiff but {_num(numeric[out, flat_x])} by central differences "
        f"({precision}, step {step:.0e}){note} — a wrong custom gradient?: "
        f"{_row_text(ctx.y_true[row], ctx.y_pred[row])}."
    )  # fmt: skip


def _batch_mean(run: _Run) -> float:
    return float(np.mean(run.values)) if _numbers(run) else float("nan")


def _check_descent(ctx: _Context) -> CheckResult:
    name = "descent"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    typical = ctx.typical
    first = ""
    perfect = _perfect(ctx.task, ctx.outputs, ctx.y_true, ctx.shapes)
    if perfect is not None:
        best = ctx.run(ctx.y_true, perfect)
        smoothed = ""
        if not np.isfinite(_batch_mean(best)) and ctx.outputs == "probabilities":
            perfect = _smoothed(ctx.task, perfect, ctx.shapes.width)
            best = ctx.run(ctx.y_true, perfect)
            smoothed = " (0.001 from the exact target, which is not finite)"
        if not np.isfinite(_batch_mean(best)):
            why = best.error if not best.ok else "is not finite"
            return CheckResult(
                name, "fail", f"On the perfect prediction the loss {why} (see "
                "finite_extreme)."
            )  # fmt: skip
        randoms = [typical] + [
            ctx.run(
                ctx.y_true,
                _predictions(
                    ctx.task,
                    ctx.outputs,
                    ctx.rng,
                    ctx.shapes,
                    ctx.y_pred if ctx.given else None,
                ),
            )  # fmt: skip
            for _ in range(RANDOM_DRAWS)
        ]
        means = [_batch_mean(r) for r in randoms]
        lowest = min(means)
        perfect_mean = _batch_mean(best)
        what = (
            "the target itself"
            if ctx.outputs == "probabilities" or ctx.task == "regression"
            else f"a margin of {MARGIN:g} at the true class"
            if ctx.task != "multilabel"
            else f"±{MARGIN:g} per label"
        )
        if not perfect_mean < lowest:
            row = ""
            if _row_flags(best.values, ctx.batch) is not None and np.ndim(
                typical.values
            ) == np.ndim(best.values):
                gap = (best.values - typical.values).reshape(ctx.batch, -1).max(axis=1)
                i = int(np.argmax(gap))
                row = (
                    f"; e.g. y_true={_vector(ctx.y_true[i])} scores "
                    f"{_num(np.max(best.values[i]))} with the perfect "
                    f"y_pred={_vector(perfect[i])} but "
                    f"{_num(np.max(typical.values[i]))} with "
                    f"y_pred={_vector(ctx.y_pred[i])}"
                )
            if perfect_mean == lowest:
                relation, why = "the same as", "does it read y_true?"
            else:
                relation, why = "above", "a flipped sign?"
            return CheckResult(
                name, "fail", f"The perfect prediction ({what}{smoothed}) scores "
                f"{_num(perfect_mean)} on the batch mean, {relation} random "
                f"predictions ({_num(lowest)}): the loss does not reward right "
                f"answers ({why}){row}."
            )  # fmt: skip
        first = (
            f"The perfect prediction ({what}{smoothed}) scores {_num(perfect_mean)} "
            f"against {_num(lowest)} or more for random ones"
        )
    else:
        first = "No perfect prediction to compare (y_true and y_pred differ in shape)"
    grad = typical.grad
    if grad is None or not np.any(grad != 0):
        return CheckResult(
            name, "fail", f"{first}, but there is no gradient to step along (see "
            "gradient_exists)."
        )  # fmt: skip
    start = _batch_mean(typical)
    if not np.isfinite(start) or not np.all(np.isfinite(grad)):
        return CheckResult(
            name, "fail", f"{first}, but the loss or its gradient is not finite on "
            "the typical inputs (see finite_typical)."
        )  # fmt: skip
    direction = grad / np.max(np.abs(grad))
    tried = []
    for size in STEP_SIZES:
        after = _batch_mean(ctx.run(ctx.y_true, ctx.y_pred - size * direction))
        tried.append(after)
        if after < start:
            return CheckResult(
                name, "pass", f"{first}; a step of {size:g} against the gradient "
                f"lowers the batch mean from {_num(start)} to {_num(after)}."
            )  # fmt: skip
    return CheckResult(
        name, "fail", f"{first}, but steps of {', '.join(map(_num, STEP_SIZES))} "
        f"against the gradient raise the batch mean from {_num(start)} to "
        f"{', '.join(_num(t) for t in tried)}: the gradient points uphill (a "
        "flipped sign in a custom gradient?)."
    )  # fmt: skip


def _check_per_sample_independent(ctx: _Context) -> CheckResult:
    name = "per_sample_independent"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    values = ctx.typical.values
    batch = ctx.batch
    if batch < 2:
        return CheckResult(name, "pass", "Does not apply: the batch has one sample.")
    perm = np.roll(np.arange(batch), 1)
    reordered = ctx.run(ctx.y_true[perm], ctx.y_pred[perm])
    if np.ndim(values) == 0:
        if not reordered.ok:
            return CheckResult(
                name, "fail", f"The loss {reordered.error} when the batch is reordered."
            )
        if _close(values, reordered.values, INDEPENDENT_RTOL).all():
            return CheckResult(
                name, "pass", "Only the batch order could be checked, as the loss "
                "returns one value for the batch (see call): reordering keeps it."
            )  # fmt: skip
        return CheckResult(
            name, "fail", f"The loss changes from {_num(values)} to "
            f"{_num(reordered.values)} when the batch is reordered."
        )  # fmt: skip
    if np.shape(values)[:1] != (batch,):
        return CheckResult(
            name, "fail", f"The values {_dims(np.shape(values))} have no batch axis "
            "to check (see call)."
        )  # fmt: skip
    half = batch // 2
    mixed_true = np.concatenate([ctx.y_true[:half], ctx.other[0][half:]])
    mixed_pred = np.concatenate([ctx.y_pred[:half], ctx.other[1][half:]])
    trials = (  # (situation, run, its batch, samples compared, their positions)
        ("the batch is reordered", reordered, batch, perm, np.arange(batch)),
        (
            "the other samples change",
            ctx.run(mixed_true, mixed_pred),
            batch,
            np.arange(half),
            np.arange(half),
        ),
        (
            f"the other samples are removed (a batch of {half})",
            ctx.run(ctx.y_true[:half], ctx.y_pred[:half]),
            half,
            np.arange(half),
            np.arange(half),
        ),
    )
    for situation, run, size, samples, positions in trials:
        if not run.ok:
            return CheckResult(name, "fail", f"The loss {run.error} when {situation}.")
        expected = values[samples].reshape(len(samples), -1)
        wanted = (size, *np.shape(values)[1:])
        if np.shape(run.values) != wanted:
            return CheckResult(
                name, "fail", f"When {situation} the loss returns shape "
                f"{_dims(np.shape(run.values))} instead of {_dims(wanted)}."
            )  # fmt: skip
        got = run.values[positions].reshape(len(samples), -1)
        near = _close(expected, got, INDEPENDENT_RTOL).all(axis=1)
        if not near.all():
            j = int(np.flatnonzero(~near)[0])
            i = int(samples[j])
            k = int(np.argmax(~_close(expected[j], got[j], INDEPENDENT_RTOL)))
            return CheckResult(
                name, "fail", f"Sample {i}'s value changes from "
                f"{_num(expected[j][k])} to {_num(got[j][k])} when {situation}: the "
                "loss mixes samples (a batch statistic, or a reduction over the "
                f"wrong axis?); its row: {_row_text(ctx.y_true[i], ctx.y_pred[i])}."
            )  # fmt: skip
    return CheckResult(
        name, "pass", "Each sample's value stays the same (relative tolerance "
        f"{INDEPENDENT_RTOL:g}) when the batch is reordered, when the other samples "
        "change and when they are removed."
    )  # fmt: skip


def _spec(array, batch=None) -> tf.TensorSpec:
    return tf.TensorSpec((batch, *np.shape(array)[1:]), tf.float32)


def _check_graph_mode(ctx: _Context) -> CheckResult:
    name = "graph_mode"
    if ctx.loss.error:
        return CheckResult(name, "fail", f"Not run: {ctx.loss.error} (see call).")
    traces = []

    def traced(y_true, y_pred):
        traces.append(1)
        return _values(ctx.loss.fn(y_true, y_pred))

    where = "Under tf.function (autograph=False, as model.fit calls a loss)"
    graph = tf.function(traced, autograph=False)
    batches = ((ctx.y_true, ctx.y_pred), ctx.other)
    outputs = []
    try:
        for y_true, y_pred in batches:
            outputs.append(
                graph(tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32))
            )
    except Exception as error:
        text = (
            str(error)
            if isinstance(error, _NotValues)
            else (f"raises {_error_text(error)}")
        )
        return CheckResult(name, "fail", f"{where} the loss {text}.")
    if not _numbers(ctx.typical):
        return CheckResult(
            name, "fail", "It traces, but the eager values it should equal are "
            "missing (see call)."
        )  # fmt: skip
    eager = (ctx.typical, ctx.run(*ctx.other))
    for k, (out, run) in enumerate(zip(outputs, eager, strict=True)):
        got = np.asarray(tf.cast(out, tf.float64))
        if run.ok and np.shape(got) == np.shape(run.values):
            near = _close(run.values, got, GRAPH_RTOL)
            if near.all():
                continue
            flat = int(np.argmax(~near.ravel()))
            index = np.unravel_index(flat, np.shape(got))
            i = index[0] if index else 0
            row = _row_text(batches[k][0][i], batches[k][1][i])
            return CheckResult(
                name, "fail", f"{where} the value {_num(got[index])} differs from "
                f"the eager {_num(run.values[index])} (Python control flow or "
                f"state read at trace time?): {row}."
            )  # fmt: skip
        return CheckResult(
            name, "fail", f"{where} the loss returns shape {_dims(np.shape(got))}, "
            "not the eager one."
        )  # fmt: skip
    if len(traces) > 1:
        return CheckResult(
            name, "fail", f"{where} the loss retraces on new values of the same "
            f"shape ({len(traces)} traces for 2 calls)."
        )  # fmt: skip
    unknown = tf.function(
        lambda y_true, y_pred: _values(ctx.loss.fn(y_true, y_pred)),
        autograph=False,
        input_signature=[_spec(ctx.y_true), _spec(ctx.y_pred)],
    )
    try:
        out = unknown(
            tf.constant(ctx.y_true, tf.float32), tf.constant(ctx.y_pred, tf.float32)
        )
    except Exception as error:
        text = (
            str(error)
            if isinstance(error, _NotValues)
            else (f"raises {_error_text(error)}")
        )
        return CheckResult(
            name, "fail", f"It runs under tf.function with a known batch size, but "
            f"with the batch size unknown (None), as model.fit traces it, the loss "
            f"{text}."
        )  # fmt: skip
    ctx.traces = True
    got = np.asarray(tf.cast(out, tf.float64))
    if (
        np.shape(got) != np.shape(ctx.typical.values)
        or not _close(ctx.typical.values, got, GRAPH_RTOL).all()
    ):
        return CheckResult(
            name, "fail", "With the batch size unknown (None), as model.fit traces "
            "it, the values differ from the eager ones."
        )  # fmt: skip
    return CheckResult(
        name, "pass", "Under tf.function (autograph=False) it gives the eager values, "
        "traces once for new values of the same shape, and runs with an unknown "
        "batch size."
    )  # fmt: skip


def _value_and_grad_fn(fn: Callable) -> Callable:
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            values = _values(fn(y_true, y_pred))
            total = _total(values)
        grad = None if total is None else tape.gradient(total, y_pred)
        return (values,) if grad is None else (values, tf.convert_to_tensor(grad))

    return step


def _check_xla(ctx: _Context) -> CheckResult:
    name = "xla"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    if not ctx.traces:
        return CheckResult(
            name, "warn", "Not compiled: the loss does not run under tf.function "
            "with an unknown batch size, as model.fit traces it (see graph_mode)."
        )  # fmt: skip
    compiled = tf.function(
        _value_and_grad_fn(ctx.loss.fn),
        autograph=False,
        jit_compile=True,
        input_signature=[_spec(ctx.y_true), _spec(ctx.y_pred)],
    )
    try:
        out = compiled(
            tf.constant(ctx.y_true, tf.float32), tf.constant(ctx.y_pred, tf.float32)
        )
    except Exception as error:
        return CheckResult(
            name, "warn", f"Does not compile with XLA (jit_compile=True): "
            f"{_error_text(error)}; Keras' jit_compile='auto' then runs the step "
            "without XLA."
        )  # fmt: skip
    values = np.asarray(tf.cast(out[0], tf.float64))
    expected = [ctx.typical.values]
    got = [values]
    if len(out) > 1 and ctx.typical.grad is not None:
        expected.append(ctx.typical.grad)
        got.append(np.asarray(tf.cast(out[1], tf.float64)))
    for what, e, g in zip(("values", "gradient"), expected, got, strict=False):
        if np.shape(e) != np.shape(g) or not _close(e, g, XLA_RTOL).all():
            return CheckResult(
                name, "warn", f"Compiles with XLA, but its {what} differ from the "
                f"eager ones beyond a relative {XLA_RTOL:g}."
            )  # fmt: skip
    return CheckResult(
        name, "pass", "Value and gradient compile with XLA (jit_compile=True) and "
        "match the eager ones."
    )  # fmt: skip


def _check_dtypes(ctx: _Context) -> CheckResult:
    name = "dtypes"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    perfect = _perfect(ctx.task, ctx.outputs, ctx.y_true, ctx.shapes)
    rows = _typical_rows(ctx)
    if perfect is not None:
        if ctx.outputs == "probabilities":
            perfect = _smoothed(ctx.task, perfect, ctx.shapes.width)
        rows += [
            (f"confident row {i}", ctx.y_true[i], perfect[i]) for i in range(ctx.batch)
        ]
    y_true = np.stack([r[1] for r in rows])
    y_pred = np.stack([r[2] for r in rows])
    for dtype in _HALF:
        run = ctx.run(y_true, y_pred, dtype)
        if not run.ok:
            return CheckResult(
                name, "warn", f"In {dtype.name} the loss {run.error} (Keras casts "
                "to the loss's dtype, float32 by default; a loss built or called in "
                "half precision needs this)."
            )  # fmt: skip
        if np.all(np.isfinite(run.values)) and (
            run.grad is None or np.all(np.isfinite(run.grad))
        ):
            continue
        found = _first_bad_row(ctx, rows, run, dtype)
        where = ""
        if found is not None:
            i, what = found
            where = (
                f" on {rows[i][0]}, where {what}: {_row_text(rows[i][1], rows[i][2])}"
            )
        return CheckResult(
            name, "warn", f"Not finite in {dtype.name}{where} (Keras casts to the "
            "loss's dtype, float32 by default; a loss built or called in half "
            "precision needs this)."
        )  # fmt: skip
    return CheckResult(
        name, "pass", "Value and gradient are finite in float16 and bfloat16 on "
        "typical and confident rows."
    )  # fmt: skip


def _check_serialization(ctx: _Context) -> CheckResult:
    name = "serialization"
    if ctx.loss.kind == "function":
        return CheckResult(
            name, "pass", "Does not apply to a plain function (to load a compiled "
            "model without custom_objects, register it with "
            "keras.saving.register_keras_serializable)."
        )  # fmt: skip
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    loss = ctx.loss.instance
    y_true = tf.constant(ctx.y_true, tf.float32)
    y_pred = tf.constant(ctx.y_pred, tf.float32)
    expected = ctx.typical.values
    cls = type(loss).__name__
    try:
        config = loss.get_config()
        clone = type(loss).from_config(config)
        again = np.asarray(tf.cast(clone.call(y_true, y_pred), tf.float64))
    except Exception as error:
        return CheckResult(
            name, "fail", f"{cls}.from_config(get_config()) fails: "
            f"{_error_text(error)}; get_config must return every argument of "
            "__init__."
        )  # fmt: skip
    if np.shape(again) != np.shape(expected) or not _close(expected, again, 1e-6).all():
        return CheckResult(
            name, "fail", f"{cls}.from_config(get_config()) gives other values "
            "than the loss itself: get_config misses a parameter."
        )  # fmt: skip
    features = 3
    width = ctx.shapes.pred_row
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(int(np.prod(width))),
            keras.layers.Reshape(width),
        ]
    )
    try:
        model.compile(optimizer="sgd", loss=loss)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "probe.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        restored = loaded.loss
        again = np.asarray(tf.cast(restored.call(y_true, y_pred), tf.float64))
    except Exception as error:
        hint = (
            "; decorate the class with @keras.saving.register_keras_serializable()"
            if "register_keras_serializable" in str(error)
            or "Could not locate" in str(error)
            else ""
        )
        return CheckResult(
            name, "fail", f"A model compiled with it does not save and load as "
            f".keras: {_error_text(error)}{hint}."
        )  # fmt: skip
    if np.shape(again) != np.shape(expected) or not _close(expected, again, 1e-6).all():
        return CheckResult(
            name, "fail", "A model compiled with it saves and loads, but the loaded "
            "loss gives other values."
        )  # fmt: skip
    return CheckResult(
        name, "pass", f"{cls}.from_config(get_config()) gives the same values, and a "
        "model compiled with it saves to .keras and loads with the same loss values."
    )  # fmt: skip


def _builtin(task, outputs):
    """``(label, function)`` of the closest Keras built-in, per sample."""
    logits = outputs == "logits"
    if task == "categorical":
        return (
            f"keras.losses.categorical_crossentropy(from_logits={logits})",
            lambda t, p: keras.losses.categorical_crossentropy(
                t, p, from_logits=logits
            ),
        )
    if task == "sparse":
        return (
            f"keras.losses.sparse_categorical_crossentropy(from_logits={logits})",
            lambda t, p: keras.losses.sparse_categorical_crossentropy(
                t, p, from_logits=logits
            ),
        )
    if task == "multilabel":
        return (
            f"keras.losses.binary_crossentropy(from_logits={logits})",
            lambda t, p: keras.losses.binary_crossentropy(t, p, from_logits=logits),
        )
    return "keras.losses.mean_squared_error", keras.losses.mean_squared_error


def _per_call(step, y_true, y_pred, budget=0.02) -> float:
    """Seconds per call: the best of three rounds of about ``budget`` each."""
    step(y_true, y_pred)
    start = time.perf_counter()
    step(y_true, y_pred)
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, min(200, int(budget / once)))
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            step(y_true, y_pred)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def _check_speed(ctx: _Context) -> CheckResult:
    name = "speed"
    skipped = ctx.not_run(name)
    if skipped:
        return skipped
    y_true = tf.constant(ctx.y_true, tf.float32)
    y_pred = tf.constant(ctx.y_pred, tf.float32)
    label, builtin = _builtin(ctx.task, ctx.outputs)
    if ctx.traces:
        mode = "under tf.function"
        signature = [_spec(ctx.y_true), _spec(ctx.y_pred)]
        ours, theirs = (
            tf.function(
                _value_and_grad_fn(fn), autograph=False, input_signature=signature
            )
            for fn in (ctx.loss.fn, builtin)
        )
    else:
        mode = "eagerly, as it does not run under tf.function"
        ours, theirs = _value_and_grad_fn(ctx.loss.fn), _value_and_grad_fn(builtin)
    try:
        seconds = _per_call(ours, y_true, y_pred)
    except Exception as error:
        return CheckResult(name, "fail", f"Cannot be timed: it {_error_text(error)}.")
    try:
        reference = _per_call(theirs, y_true, y_pred)
    except Exception as error:
        return CheckResult(
            name, "pass", f"{seconds * 1e3:.3g} ms per call (value and gradient, "
            f"{mode}); {label} does not run on these inputs ({_error_text(error)})."
        )  # fmt: skip
    return CheckResult(
        name, "pass", f"{seconds * 1e3:.3g} ms per call (value and gradient, {mode}) "
        f"on y_pred {_dims(ctx.y_pred.shape)}, against {reference * 1e3:.3g} ms for "
        f"{label} ({seconds / reference:.2g}x)."
    )  # fmt: skip


_CHECKS = {
    "call": _check_call,
    "finite_typical": _check_finite_typical,
    "finite_extreme": _check_finite_extreme,
    "finite_degenerate": _check_finite_degenerate,
    "gradient_exists": _check_gradient_exists,
    "gradient_matches_numeric": _check_gradient_matches_numeric,
    "descent": _check_descent,
    "per_sample_independent": _check_per_sample_independent,
    "graph_mode": _check_graph_mode,
    "xla": _check_xla,
    "dtypes": _check_dtypes,
    "serialization": _check_serialization,
    "speed": _check_speed,
}
assert tuple(_CHECKS) == CHECKS


@contextlib.contextmanager
def _quiet_tensorflow():
    """TensorFlow's retracing notices are about the probe's own functions."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- the entry points -------------------------------------------------------------


def probe(loss, task, *, outputs="logits", y_true=None, y_pred=None, seed=0):
    """Runs the battery of ``CHECKS`` on a user's loss.

    Args:
      loss: a function ``(y_true, y_pred) -> values``, a ``keras.losses.Loss``
        instance, or a Loss class (built with no arguments).
      task: ``"categorical"`` (one-hot ``[batch, classes]``), ``"sparse"``
        (class ids ``[batch]``), ``"multilabel"`` (multi-hot ``[batch,
        labels]``) or ``"regression"`` (``[batch, dim]``).
      outputs: what ``y_pred`` is: ``"logits"`` (default) or
        ``"probabilities"``; for regression, ``"probabilities"`` means targets
        and predictions in [0, 1].
      y_true, y_pred: your own typical inputs (array-likes); either one alone
        gets a generated partner of the same batch. Default: a seeded batch
        of 8 samples over 5 classes (or dimensions).
      seed: seeds the generated inputs.

    Returns:
      A ``ProbeReport``.

    Raises:
      ProbeError (a ValueError): an unknown task or outputs, a ``loss`` that
        is not a loss, or arrays that do not fit the task.
    """
    try:
        check_choice("task", task, TASKS)
        check_choice("outputs", outputs, OUTPUTS)
    except ValueError as error:
        raise ProbeError(str(error)) from None
    subject = _subject(loss)
    rng = np.random.default_rng(int(seed))
    given = y_true is not None or y_pred is not None
    if y_pred is not None:
        y_pred = _as_array(y_pred, "y_pred")
    if y_true is not None:
        y_true = _as_array(y_true, "y_true")
    if y_pred is None and y_true is not None and task in ("categorical", "multilabel"):
        if y_true.ndim != 2 or y_true.shape[1] < 2:
            raise ProbeError(
                f"for task {task!r} `y_true` must be [batch, classes] with at least "
                f"2 classes, got {_dims(y_true.shape)}."
            )
    if y_pred is None:
        if y_true is None:
            shapes = _Shapes(BATCH_SIZE, () if task == "sparse" else (WIDTH,), (WIDTH,))
            y_true = _targets(task, outputs, rng, shapes)
        elif task == "sparse":
            shapes = _Shapes(len(y_true), y_true.shape[1:], (int(y_true.max()) + 2,))
        else:
            shapes = _Shapes(len(y_true), y_true.shape[1:], y_true.shape[1:])
        y_pred = _predictions(task, outputs, rng, shapes)
    elif y_true is None:
        true_row = () if task == "sparse" else y_pred.shape[1:]
        shapes = _Shapes(len(y_pred), true_row, y_pred.shape[1:])
        y_true = _targets(task, outputs, rng, shapes)
    _check_given(task, outputs, y_true, y_pred)
    start = time.perf_counter()
    with _quiet_tensorflow():
        ctx = _Context(subject, task, outputs, y_true, y_pred, given, seed)
        results = tuple(check(ctx) for check in _CHECKS.values())
    return ProbeReport(
        loss=subject.name,
        task=task,
        outputs=outputs,
        y_true_shape=tuple(y_true.shape),
        y_pred_shape=tuple(y_pred.shape),
        checks=results,
        seconds=time.perf_counter() - start,
    )


def assert_sane(loss, task, **kwargs) -> ProbeReport:
    """Runs ``probe``; raises ``AssertionError`` listing every failed check.

    Use it in your own tests: ``lossviz.probe.assert_sane(my_loss,
    "multilabel")``. Returns the report when nothing fails (warnings allowed).
    """
    report = probe(loss, task, **kwargs)
    if report.failures:
        lines = [f"{report.loss} ({report.task}, {report.outputs}): {report.verdict}"]
        lines += [f"  {c.name}: {c.detail}" for c in report.failures]
        raise AssertionError("\n".join(lines))
    return report


# --- the loss as the logits grow --------------------------------------------------

SWEEP_SCALES = tuple(float(s) for s in np.geomspace(1e-2, 1e4, 25))


@dataclass(frozen=True)
class ScaleSweep:
    """The loss and its gradient over a grid of logit scales.

    At scale ``s`` the loss sees the probe's typical ``y_true`` and a
    ``y_pred`` made from ``s * logits``: the logits themselves for
    ``outputs="logits"``; for probabilities, their softmax (categorical,
    sparse) or sigmoid (multi-label, regression), computed in float64 and
    cast to float32 like every input, so large scales give exact 0 and 1.
    At ``s = 1`` these are the probe's typical inputs for the same seed.

    Attributes:
      scales: the grid ``[n]``.
      mean_loss: the mean of the values the loss returns, per scale ``[n]``;
        NaN/Inf kept; NaN where the loss raised or returned no float values.
      grad_norm: the L2 norm of the gradient of the values' sum w.r.t.
        ``y_pred`` ``[n]``; NaN/Inf kept, 0 where there is no gradient
        (``None``), NaN where the loss raised.
      ran: per scale, whether the loss gave float values (it did not raise).
      y_true, logits: the typical targets and logits (at scale 1).
      loss_nonfinite_from, grad_nonfinite_from: the smallest scale from
        which every mean loss (gradient norm) up to the end of the grid is
        NaN or Inf, or None when the last one is finite (scales where the
        loss raised are left out).
      error: the first error the loss raised on the way, or None.
    """

    scales: np.ndarray
    mean_loss: np.ndarray
    grad_norm: np.ndarray
    ran: np.ndarray
    y_true: np.ndarray
    logits: np.ndarray
    loss_nonfinite_from: float | None
    grad_nonfinite_from: float | None
    error: str | None = None


def _trailing_nonfinite_from(scales: np.ndarray, values: np.ndarray) -> float | None:
    finite = np.isfinite(values)
    if finite.size == 0 or finite[-1]:
        return None
    last_finite = np.flatnonzero(finite)
    start = int(last_finite[-1]) + 1 if last_finite.size else 0
    return float(scales[start])


def _from_logits(task, outputs, logits):
    if outputs == "logits":
        return logits
    if task in ("categorical", "sparse"):
        return _softmax(logits)
    return _sigmoid(logits)


def scale_sweep(loss, task, outputs="logits", scales=SWEEP_SCALES, seed=0):
    """Mean loss and gradient norm as the typical logits are multiplied by each
    of ``scales``; see ``ScaleSweep``.

    Args:
      loss, task, outputs, seed: as for ``probe`` (the same typical batch:
        ``BATCH_SIZE`` samples over ``WIDTH`` classes or dimensions).
      scales: positive logit scales, e.g. ``SWEEP_SCALES`` (1e-2 to 1e4).

    Returns:
      A ``ScaleSweep`` of float64 numpy arrays.

    Raises:
      ProbeError: an unknown task or outputs, a ``loss`` that is not a loss,
        or scales that are not positive finite numbers.
    """
    try:
        check_choice("task", task, TASKS)
        check_choice("outputs", outputs, OUTPUTS)
    except ValueError as error:
        raise ProbeError(str(error)) from None
    grid = np.asarray(scales, dtype=np.float64).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
        raise ProbeError("`scales` must be positive finite numbers.")
    subject = _subject(loss)
    rng = np.random.default_rng(int(seed))
    shapes = _Shapes(BATCH_SIZE, () if task == "sparse" else (WIDTH,), (WIDTH,))
    y_true = _targets(task, outputs, rng, shapes)
    if task == "regression":  # the same draws as the probe's typical y_pred
        logits = _predictions(task, outputs, rng, shapes)
        if outputs == "probabilities":  # the logits whose sigmoid they are
            logits = np.log(logits) - np.log1p(-logits)
    else:
        logits = _predictions(task, "logits", rng, shapes)
    mean_loss = np.full(grid.size, np.nan)
    grad_norm = np.full(grid.size, np.nan)
    ran = np.zeros(grid.size, dtype=bool)
    error = subject.error
    with _quiet_tensorflow(), np.errstate(over="ignore", invalid="ignore"):
        for i, scale in enumerate(grid if error is None else ()):
            run = _run(subject, y_true, _from_logits(task, outputs, scale * logits))
            if not _numbers(run):
                error = error or run.error or f"returns {run.dtype} values"
                continue
            ran[i] = True
            mean_loss[i] = np.mean(run.values)
            grad_norm[i] = 0.0 if run.grad is None else np.linalg.norm(run.grad)
    return ScaleSweep(
        scales=grid,
        mean_loss=mean_loss,
        grad_norm=grad_norm,
        ran=ran,
        y_true=y_true,
        logits=logits,
        loss_nonfinite_from=_trailing_nonfinite_from(grid[ran], mean_loss[ran]),
        grad_nonfinite_from=_trailing_nonfinite_from(grid[ran], grad_norm[ran]),
        error=error,
    )


# --- the user's code --------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _import_file(path: str):
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise ProbeError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise ProbeError(f"not a file: {path}")
    folder = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if not name.isidentifier():
        name = "lossviz_probe_target"
    held = sys.modules.get(name)
    if held is not None:
        if os.path.abspath(getattr(held, "__file__", "") or "") == path:
            return held  # imported before (its Keras classes are registered)
        name = f"lossviz_probe_{abs(hash(path))}"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProbeError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        sys.modules.pop(name, None)
        raise ProbeError(
            f"cannot import {path}: {_import_error(error, path)}"
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def _import_error(error: BaseException, path: str | None = None) -> str:
    if isinstance(error, SyntaxError):
        where = f"{os.path.basename(error.filename or '')}, line {error.lineno}"
        return f"{type(error).__name__}: {_one_line(error.msg)} ({where})"
    tb = error.__traceback__
    line = None
    while tb is not None:  # the last line of the user's file on the way
        if path and os.path.abspath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    text = _one_line(f"{type(error).__name__}: {error}")
    return f"{text} (line {line})" if line else text


def load_target(target: str):
    """The object ``TARGET`` names: ``path/to/file.py:NAME`` or ``package.module:NAME``.

    A file is imported as pytest imports a test file: by its path, with its
    folder on ``sys.path`` while it imports; a file imported before is reused.
    A module name is imported with ``importlib``.

    Raises:
      ProbeError: a malformed target, a missing file, an import that fails
        (the message is one line), or a missing name.
    """
    source, sep, name = target.rpartition(":")
    if not sep or not source or not name.isidentifier():
        raise ProbeError(
            f"TARGET must be path/to/file.py:NAME or package.module:NAME, got "
            f"{target!r}"
        )
    if source.endswith(".py") or os.sep in source or "/" in source:
        module = _import_file(source)
        where = source
    else:
        try:
            module = importlib.import_module(source)
        except ModuleNotFoundError as error:
            raise ProbeError(
                f"cannot import {source}: no module named {error.name!r} "
                "(a file path needs its .py suffix)"
            ) from None
        except (Exception, SystemExit) as error:
            raise ProbeError(
                f"cannot import {source}: {_import_error(error)}"
            ) from None
        where = source
    try:
        found = getattr(module, name)
    except AttributeError:
        defined = sorted(
            n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
        )
        shown = ", ".join(defined[:12]) + (", …" if len(defined) > 12 else "")
        raise ProbeError(
            f"{where} has no name {name!r}; it defines: {shown or 'nothing callable'}"
        ) from None
    if not callable(found):
        raise ProbeError(
            f"{target} is a {type(found).__name__}, not a loss: a function (y_true, "
            "y_pred) -> values or a keras.losses.Loss instance or class"
        )
    return found


PASTED_CODE_ENV = "LOSSVIZ_ALLOW_PASTED_CODE"
PASTED_FILE = "<pasted code>"


def pasted_code_allowed() -> bool:
    """Whether this process may run pasted code: ``LOSSVIZ_ALLOW_PASTED_CODE=1``
    in its environment (read on every call)."""
    return os.environ.get(PASTED_CODE_ENV) == "1"


def load_source(text: str, name: str):
    """The object ``name`` that the Python source ``text`` defines.

    The one place where lossviz runs code a user typed. It runs in this
    process, with all of its rights (files, network, the server's memory),
    so it refuses unless the process was started with
    ``LOSSVIZ_ALLOW_PASTED_CODE=1``: meant for a server on your own machine,
    never a shared one. The text runs as a fresh module (``__name__`` is
    ``lossviz_pasted``), not registered in ``sys.modules``.

    Raises:
      ProbeError: pasted code is not allowed, ``name`` is not an identifier,
        the code does not run (one line, with the line number), or it defines
        no callable ``name``.
    """
    if not pasted_code_allowed():
        raise ProbeError(
            f"pasted code is off: start the server with {PASTED_CODE_ENV}=1 to run "
            "it (on your own machine only: it runs in the server's process)"
        )
    if not name.isidentifier():
        raise ProbeError(f"the name of the loss must be a Python name, got {name!r}")
    module = types.ModuleType("lossviz_pasted")
    module.__file__ = PASTED_FILE
    try:
        code = compile(text, PASTED_FILE, "exec")
        # The one exec of user text in lossviz, behind the opt-in above.
        exec(code, module.__dict__)
    except (Exception, SystemExit) as error:
        where = os.path.abspath(PASTED_FILE)  # as _import_error compares paths
        raise ProbeError(
            f"the pasted code does not run: {_import_error(error, where)}"
        ) from None
    found = vars(module).get(name)
    if not callable(found):
        defined = sorted(
            n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
        )
        what = "nothing callable" if not defined else ", ".join(defined)
        raise ProbeError(
            f"the pasted code defines no loss {name!r} (a function (y_true, y_pred) "
            f"-> values or a keras.losses.Loss); it defines: {what}"
        )
    return found
