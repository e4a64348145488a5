"""Attempts at the BP-MLL ranking loss in Keras, run live.

BP-MLL (Zhang & Zhou 2006) averages ``exp(-(c_k - c_l))`` over the pairs of
a positive label ``k`` and a negative label ``l``. The attempts: a Python
loop over the batch, the same loop with the exponent's sign flipped, the
upper triangle of an outer product (the wrong pairs), and the outer-product
form that divides by ``|Y||Ybar|`` and sums the batch into one number.
``flipped_descent`` records the flipped sign's descent step by step, beside
lossviz's, for the page's chart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz import multilabel
from lossviz.explore.attempts import (
    Outcome,
    attempt,
    capture,
    describe,
    error_outcome,
    fmt,
    run_attempts,
    unexpected,
)

NUM_SAMPLES, NUM_LABELS = 8, 6
DEGENERATE_ROW = 3
STEPS, LEARNING_RATE = 40, 0.5


@dataclass(frozen=True)
class Batch:
    """``labels`` 0/1 float32 ``[B, L]``, every row with a positive and a
    negative label; ``no_positive``: the same with row ``DEGENERATE_ROW`` all
    0; ``logits [B, L]`` float32; ``features [B, 3]`` for a tiny model;
    ``seed``: the seed that drew them."""

    labels: np.ndarray
    no_positive: np.ndarray
    logits: np.ndarray
    features: np.ndarray
    seed: int


def example_batch(seed=0) -> Batch:
    """8 samples with 6 labels, 1 to 5 of them positive."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((NUM_SAMPLES, NUM_LABELS), dtype=np.float32)
    for row, count in enumerate(rng.integers(1, NUM_LABELS, NUM_SAMPLES)):
        labels[row, rng.choice(NUM_LABELS, count, replace=False)] = 1.0
    no_positive = labels.copy()
    no_positive[DEGENERATE_ROW] = 0.0
    return Batch(
        labels=labels,
        no_positive=no_positive,
        logits=rng.normal(size=(NUM_SAMPLES, NUM_LABELS)).astype(np.float32),
        features=rng.normal(size=(NUM_SAMPLES, 3)).astype(np.float32),
        seed=seed,
    )


def ranking_share(labels, logits) -> float:
    """Share of (positive, negative) label pairs ranked right: ``c_k > c_l``."""
    labels, logits = np.asarray(labels) > 0.5, np.asarray(logits, dtype=np.float64)
    pairs = labels[:, :, None] & ~labels[:, None, :]
    right = logits[:, :, None] > logits[:, None, :]
    return float(np.sum(pairs & right) / np.sum(pairs))


# --------------------------------------------------------------------------
# The attempts, as written.


def bpmll_loop(y_true, y_pred):
    n = tf.shape(y_true)[0]
    losses = []
    for i in range(n):
        positive = tf.boolean_mask(y_pred[i], y_true[i] > 0.5)
        negative = tf.boolean_mask(y_pred[i], y_true[i] < 0.5)
        pairs = tf.exp(-(positive[:, None] - negative[None, :]))
        losses.append(tf.reduce_mean(pairs))
    return tf.stack(losses)


def bpmll_loop_flipped(y_true, y_pred):
    losses = []
    for i in range(y_true.shape[0]):
        positive = tf.boolean_mask(y_pred[i], y_true[i] > 0.5)
        negative = tf.boolean_mask(y_pred[i], y_true[i] < 0.5)
        pairs = tf.exp(positive[:, None] - negative[None, :])
        losses.append(tf.reduce_mean(pairs))
    return tf.stack(losses)


def bpmll_upper_triangle(y_true, y_pred):
    differences = y_pred[:, :, None] - y_pred[:, None, :]
    upper = tf.linalg.band_part(tf.ones_like(differences), 0, -1)
    upper -= tf.linalg.band_part(upper, 0, 0)
    return tf.reduce_sum(upper * tf.exp(-differences), axis=[1, 2])


def bpmll_outer_product(y_true, y_pred):
    positive = tf.cast(tf.equal(y_true, 1), tf.float32)
    negative = 1.0 - positive
    pairs = positive[:, :, None] * negative[:, None, :]
    differences = y_pred[:, :, None] - y_pred[:, None, :]
    sums = tf.reduce_sum(pairs * tf.exp(-differences), axis=[1, 2])
    normalizers = tf.reduce_sum(positive, axis=1) * tf.reduce_sum(negative, axis=1)
    return tf.reduce_sum(sums / normalizers)


# --------------------------------------------------------------------------
# Running them.


def _fix(labels, logits, row=None) -> dict:
    """lossviz.bpmll_loss on the same data; ``row``: the row without pairs."""
    values = multilabel.bpmll_loss(labels, logits).numpy()
    note = "" if row is None else f" (row {row}, without pairs: {fmt(values[row])})"
    return dict(
        fix_value=values,
        fix_message=f"lossviz.bpmll_loss: [{', '.join(fmt(v) for v in values)}]{note}",
    )


def _result_text(result, error) -> str:
    if error is not None:
        return describe(error)
    return f"runs: [{', '.join(fmt(v) for v in np.ravel(result))}]"


def _run_loop(function, batch: Batch) -> Outcome:
    labels, logits = tf.constant(batch.labels), tf.constant(batch.logits)
    eager, eager_error = capture(function, labels, logits)
    plain, plain_error = capture(tf.function(function, autograph=False), labels, logits)
    graph, graph_error = capture(tf.function(function), labels, logits)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(NUM_LABELS)])
    model.compile(optimizer="sgd", loss=function)
    fitted, fit_error = capture(
        model.fit, batch.features, batch.labels, epochs=1, verbose=0
    )
    details = (
        ("eagerly", _result_text(eager, eager_error)),
        ("tf.function(autograph=False)", _result_text(plain, plain_error)),
        ("tf.function (AutoGraph turns the loop into a tf.while_loop)",
         _result_text(graph, graph_error)),
        ("in model.fit (AutoGraph does not reach the loss)",
         describe(fit_error) if fit_error else "runs"),
    )  # fmt: skip
    common = dict(details=details, **_fix(labels, logits))
    if eager_error is None:
        difference = float(np.max(np.abs(np.asarray(eager) - common["fix_value"])))
        common["numbers"] = {"eager_max_difference_from_fix": difference}
    if fit_error is not None:
        return error_outcome(fit_error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


@dataclass(frozen=True)
class Descent:
    """Plain SGD on the logits themselves (no model): ``loss`` (the batch
    mean) and ``ranking`` (``ranking_share``) before the first step and after
    each of the ``STEPS`` steps, ``[STEPS + 1]`` each, and the final
    ``logits``."""

    loss: np.ndarray
    ranking: np.ndarray
    logits: np.ndarray


@dataclass(frozen=True)
class FlippedDescent:
    """The same descent, from the same logits, on the flipped loop
    (``flipped``) and on ``lossviz.bpmll_loss`` (``fix``): what the chart of
    the flipped sign draws."""

    flipped: Descent
    fix: Descent
    steps: int = STEPS
    learning_rate: float = LEARNING_RATE


def descend(loss, labels, logits) -> Descent:
    """``STEPS`` steps of plain SGD (``LEARNING_RATE``) on ``logits`` for the
    batch mean of ``loss(labels, logits)``, recorded at every step."""
    labels = np.asarray(labels, dtype=np.float32)
    targets = tf.constant(labels)
    variable = tf.Variable(np.asarray(logits, dtype=np.float32))
    losses, shares = [], []
    for step in range(STEPS + 1):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(targets, variable))
        losses.append(float(value))
        shares.append(ranking_share(labels, variable.numpy()))
        if step < STEPS:
            variable.assign_sub(LEARNING_RATE * tape.gradient(value, variable))
    return Descent(np.array(losses), np.array(shares), variable.numpy())


def _descents(function, batch: Batch) -> FlippedDescent:
    return FlippedDescent(
        flipped=descend(function, batch.labels, batch.logits),
        fix=descend(multilabel.bpmll_loss, batch.labels, batch.logits),
    )


@functools.lru_cache(maxsize=8)
def flipped_descent(seed=0) -> FlippedDescent:
    """The flipped loop and lossviz's loss, descended step by step on
    ``example_batch(seed)``: the run behind the flipped attempt's outcome,
    kept (the eager loop takes seconds), so the page's chart and the outcome
    share it."""
    return _descents(bpmll_loop_flipped, example_batch(seed))


def _run_flipped(function, batch: Batch) -> Outcome:
    drawn = example_batch(batch.seed)
    seeded = function is bpmll_loop_flipped and all(
        np.array_equal(getattr(batch, name), getattr(drawn, name))
        for name in ("labels", "logits")
    )
    descent = flipped_descent(batch.seed) if seeded else _descents(function, batch)
    flipped, fix = descent.flipped, descent.fix
    before, after = float(flipped.loss[0]), float(flipped.loss[-1])
    fix_before, fix_after = float(fix.loss[0]), float(fix.loss[-1])
    final = flipped.logits
    share_before = float(flipped.ranking[0])
    numbers = {
        "loss_before": before,
        "loss_after": after,
        "ranking_before": share_before,
        "ranking_after": float(flipped.ranking[-1]),
        "fix_loss_before": fix_before,
        "fix_loss_after": fix_after,
        "fix_ranking_after": float(fix.ranking[-1]),
        "steps": STEPS,
        "learning_rate": LEARNING_RATE,
    }
    common = dict(
        numbers=numbers,
        fix_value=fix.logits,
        fix_message=(
            f"lossviz.bpmll_loss, the same {STEPS} steps: loss {fmt(fix_before)} -> "
            f"{fmt(fix_after)}, pairs ranked right {share_before:.0%} -> "
            f"{numbers['fix_ranking_after']:.0%}"
        ),
    )
    if not (after < before and numbers["ranking_after"] < share_before):
        return unexpected(final, "Descent on the flipped loss", **common)
    return Outcome(
        kind="wrong",
        message=(
            f"{STEPS} SGD steps (learning rate {fmt(LEARNING_RATE)}) on the logits: "
            f"the loss falls {fmt(before)} -> {fmt(after)} while the (positive, "
            f"negative) pairs ranked right fall {share_before:.0%} -> "
            f"{numbers['ranking_after']:.0%}"
        ),
        **common,
    )


def _run_upper_triangle(function, batch: Batch) -> Outcome:
    labels = tf.constant(batch.labels)
    # At equal scores every pair adds exp(0) = 1: the value counts the pairs.
    counted = np.asarray(function(labels, tf.zeros_like(labels)))
    value = np.asarray(function(labels, tf.constant(batch.logits)))
    positives = batch.labels.sum(axis=1)
    wanted = positives * (NUM_LABELS - positives)
    row = 0
    numbers = {
        "pairs_used_row": float(counted[row]),
        "positive_negative_pairs_row": float(wanted[row]),
        "pairs_used": float(counted.sum()),
        "positive_negative_pairs": float(wanted.sum()),
    }
    common = dict(numbers=numbers, **_fix(batch.labels, batch.logits))
    if np.allclose(counted, wanted):
        return unexpected(value, "The upper triangle", **common)
    return Outcome(
        kind="wrong",
        message=(
            f"Row {row} has |Y| = {int(positives[row])} and |Ybar| = "
            f"{int(NUM_LABELS - positives[row])}: it sums {fmt(counted[row])} pairs "
            f"(every i < j, whatever their labels), BP-MLL sums the "
            f"{int(wanted[row])} (positive, negative) pairs; over the batch "
            f"{fmt(counted.sum())} pairs against {int(wanted.sum())}"
        ),
        **common,
    )


def _run_outer_product(function, batch: Batch) -> Outcome:
    logits = tf.constant(batch.logits)
    clean, clean_error = capture(function, tf.constant(batch.labels), logits)
    result, error = capture(function, tf.constant(batch.no_positive), logits)
    common = _fix(batch.no_positive, batch.logits, DEGENERATE_ROW)
    if error is not None:
        return error_outcome(error, **common)
    value = np.asarray(result)
    fix_clean = multilabel.bpmll_loss(batch.labels, batch.logits).numpy()
    numbers = {
        "rank": int(value.ndim),
        "nan_count": int(np.sum(~np.isfinite(value))),
        "value": float(value.sum()),
        "clean_value": float(np.sum(clean)) if clean_error is None else float("nan"),
        "fix_clean_sum": float(fix_clean.sum()),
        "fix_clean_mean": float(fix_clean.mean()),
    }
    common["details"] = (
        ("every row with a positive and a negative label",
         f"{_result_text(clean, clean_error)}: the sum over the batch (lossviz "
         f"sum {fmt(fix_clean.sum())}, mean {fmt(fix_clean.mean())})"),
    )  # fmt: skip
    if not numbers["nan_count"]:
        return unexpected(value, "The outer-product form", numbers=numbers, **common)
    return Outcome(
        kind="nan",
        message=(
            f"It returns shape {value.shape}, one number for a batch of "
            f"{NUM_SAMPLES}, and it is {fmt(value.sum())}: row {DEGENERATE_ROW} has "
            "no positive label, so its |Y||Ybar| is 0 and 0/0 is NaN"
        ),
        numbers=numbers,
        **common,
    )


ATTEMPTS = (
    attempt(
        bpmll_loop,
        _run_loop,
        key="python_loop",
        title="Loop over the batch with for i in range(tf.shape(y)[0])",
        why=(
            "in model.fit the loss is traced without AutoGraph: range() cannot "
            "take a symbolic tensor"
        ),
        fix=(
            "`lossviz.bpmll_loss` is vectorised: masked log-sum-exps, no loop, "
            "O(B·L) memory"
        ),
        task="multilabel",
        outputs="logits",
    ),
    attempt(
        bpmll_loop_flipped,
        _run_flipped,
        key="flipped_sign",
        title="The loop with the exponent's sign flipped: exp(c_k - c_l)",
        why=(
            "minimising exp(c_k - c_l) pushes positives below negatives: the "
            "loss falls as the ranking gets worse"
        ),
        fix="`lossviz.bpmll_loss` computes exp(-(c_k - c_l)), as the paper has it",
        task="multilabel",
        outputs="logits",
    ),
    attempt(
        bpmll_upper_triangle,
        _run_upper_triangle,
        key="upper_triangle",
        title="The upper triangle of the outer product of the outputs",
        why=(
            "i < j pairs every two labels, whatever their labels, instead of "
            "each positive with each negative"
        ),
        fix="`lossviz.bpmll_loss` pairs each k in Y with each l in Ybar",
        task="multilabel",
        outputs="logits",
    ),
    attempt(
        bpmll_outer_product,
        _run_outer_product,
        key="outer_product",
        title="The outer product divided by |Y||Ybar|, summed over the batch",
        why=(
            "a row without a positive (or negative) label divides 0 by 0, and "
            "the sum makes one number of the batch"
        ),
        fix=(
            "`lossviz.bpmll_loss` returns [batch], and 0 with a zero gradient for a "
            "row without pairs (a convention: the paper leaves it undefined)"
        ),
        task="multilabel",
        outputs="logits",
    ),
)


def run_all(seed=0):
    """``((attempt, outcome), ...)`` for every attempt, on ``example_batch(seed)``."""
    return run_attempts(ATTEMPTS, example_batch(seed))
