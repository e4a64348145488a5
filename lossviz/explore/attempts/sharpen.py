"""Attempts at sharpening a softmax toward one-hot, run live.

A model predicts a distribution over a vocabulary and the loss compares the
embedding of the predicted word with a target embedding. The attempts: an
argmax and a lookup (no gradient), a power written without ``keepdims``
(a shape error, or silently wrong rows when batch == vocab), a power too
high for float32 (NaN), and an embedding tiled per sample (batch times the
memory for the same values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossviz import sharpen
from lossviz._tf import tf
from lossviz.explore.attempts import (
    Outcome,
    attempt,
    capture,
    error_outcome,
    fmt,
    nan_count,
    run_attempts,
    unexpected,
)

NUM_SAMPLES, VOCAB_SIZE, EMBEDDING_DIM = 4, 8, 5
POWER = 3.0
HIGH_POWER = 200.0


@dataclass(frozen=True)
class Batch:
    """``logits [B, V]`` and ``probs = softmax(logits)``, ``embedding [V, D]``,
    ``target [B, D]`` and ``square_probs [V, V]`` (a batch as large as the
    vocabulary), all float32."""

    logits: np.ndarray
    probs: np.ndarray
    embedding: np.ndarray
    target: np.ndarray
    square_probs: np.ndarray


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def example_batch(seed=0) -> Batch:
    """A seeded batch: 4 samples over a vocabulary of 8 words of dimension 5."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(NUM_SAMPLES, VOCAB_SIZE)).astype(np.float32)
    square = rng.normal(size=(VOCAB_SIZE, VOCAB_SIZE)).astype(np.float32)
    embedding = rng.normal(size=(VOCAB_SIZE, EMBEDDING_DIM)).astype(np.float32)
    target = embedding[rng.integers(0, VOCAB_SIZE, NUM_SAMPLES)]
    return Batch(
        logits=logits,
        probs=_softmax(logits).astype(np.float32),
        embedding=embedding,
        target=target.astype(np.float32),
        square_probs=_softmax(square).astype(np.float32),
    )


# --------------------------------------------------------------------------
# The attempts, as written.


def argmax_embedding_loss(target, probs, embedding):
    word_ids = tf.argmax(probs, axis=-1)
    predicted = tf.nn.embedding_lookup(embedding, word_ids)
    return tf.reduce_sum(tf.square(target - predicted), axis=-1)


def sharpen_without_keepdims(probs, power):
    raised = probs**power
    return raised / tf.reduce_sum(raised, axis=1)


def sharpen_with_power(probs, power):
    raised = probs**power
    return raised / tf.reduce_sum(raised, axis=-1, keepdims=True)


def tiled_embedding_lookup(probs, embedding):
    batch_size = tf.shape(probs)[0]
    tiled = tf.tile(embedding[tf.newaxis], [batch_size, 1, 1])
    return tf.squeeze(tf.matmul(probs[:, tf.newaxis, :], tiled), axis=1)


# --------------------------------------------------------------------------
# Running them.


def _run_argmax(function, batch: Batch) -> Outcome:
    logits = tf.constant(batch.logits)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        probs = tf.nn.softmax(logits)
        result, error = capture(function, batch.target, probs, batch.embedding)
        fixed = sharpen.embedding_target_loss(
            batch.target, probs, batch.embedding, power=POWER, distance="mse"
        )
    fix_grad = tape.gradient(fixed, logits)
    fix_norm = float(np.linalg.norm(fix_grad.numpy()))
    fix_message = (
        f"lossviz.embedding_target_loss (power {fmt(POWER)}, mse): loss "
        f"{fmt(np.mean(fixed))}, ||dL/dlogits|| = {fmt(fix_norm)}"
    )
    common = dict(fix_value=fixed.numpy(), fix_message=fix_message)
    if error is not None:
        return error_outcome(error, **common)
    grad = tape.gradient(result, logits)
    numbers = {"loss": float(np.mean(result)), "fix_grad_norm": fix_norm}
    if grad is None:
        return Outcome(
            kind="no_gradient",
            message=(
                f"The loss is {fmt(np.mean(result))}, but "
                "tape.gradient(loss, logits) is None: argmax has no gradient"
            ),
            numbers=numbers,
            **common,
        )
    return unexpected(grad, "tape.gradient(loss, logits)", numbers=numbers, **common)


def _run_no_keepdims(function, batch: Batch) -> Outcome:
    result, error = capture(function, batch.probs, POWER)
    fixed = sharpen.power_sharpen(batch.probs, POWER).numpy()
    shape = "x".join(map(str, batch.probs.shape))
    common = dict(
        fix_value=fixed,
        fix_message=(
            f"lossviz.power_sharpen on the same {shape} batch: rows sum to "
            f"{fmt(fixed.sum(axis=1).min())}..{fmt(fixed.sum(axis=1).max())}"
        ),
    )
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(result, f"On a {shape} batch, the division", **common)


def _run_no_keepdims_square(function, batch: Batch) -> Outcome:
    result, error = capture(function, batch.square_probs, POWER)
    fixed = sharpen.power_sharpen(batch.square_probs, POWER).numpy()
    fix_sums = fixed.sum(axis=1)
    common = dict(
        fix_value=fixed,
        fix_message=(
            "lossviz.power_sharpen on the same batch: worst row sum "
            f"{fmt(fix_sums[np.argmax(np.abs(fix_sums - 1))])}"
        ),
    )
    if error is not None:
        return error_outcome(error, **common)
    sums = np.asarray(result).sum(axis=1)
    worst = float(sums[np.argmax(np.abs(sums - 1))])
    numbers = {
        "worst_row_sum": worst,
        "min_row_sum": float(sums.min()),
        "max_row_sum": float(sums.max()),
    }
    if abs(worst - 1) < 1e-4:
        return unexpected(sums, "Row sums", numbers=numbers, **common)
    n = batch.square_probs.shape[0]
    return Outcome(
        kind="wrong",
        message=(
            f"No error with batch = vocab = {n}: entry [i, j] is divided by row "
            f"j's sum, and the rows sum to {fmt(sums.min())}..{fmt(sums.max())} "
            f"(worst {fmt(worst)}), not 1"
        ),
        numbers=numbers,
        **common,
    )


def _run_high_power(function, batch: Batch) -> Outcome:
    result, error = capture(function, batch.probs, HIGH_POWER)
    fixed = sharpen.power_sharpen(batch.probs, HIGH_POWER).numpy()
    common = dict(
        fix_value=fixed,
        fix_message=(
            f"lossviz.power_sharpen (k = {fmt(HIGH_POWER)}): "
            f"{nan_count(fixed)} non-finite entries, the largest entry of each row "
            f"at least {fmt(fixed.max(axis=1).min())}"
        ),
    )
    if error is not None:
        return error_outcome(error, **common)
    values = np.asarray(result)
    count = int(np.sum(np.isnan(values)))
    rows = int(np.sum(np.isnan(values).all(axis=1)))
    numbers = {
        "nan_count": count,
        "size": int(values.size),
        "nan_rows": rows,
        "power": HIGH_POWER,
        "fix_nan_count": nan_count(fixed),
    }
    if count == 0:
        return unexpected(values, f"p ** {fmt(HIGH_POWER)}", numbers=numbers, **common)
    # The largest p of a row that is NaN: its p**k underflowed too.
    largest = float(batch.probs[np.isnan(values).all(axis=1)].max(initial=0.0))
    return Outcome(
        kind="nan",
        message=(
            f"At k = {fmt(HIGH_POWER)}, {count} of {values.size} entries are NaN "
            f"({rows} of {values.shape[0]} rows): in those rows even the largest "
            f"p = {fmt(largest)} gives p**k = {fmt(largest**HIGH_POWER)}, below "
            "float32's smallest number, and 0/0 = NaN"
        ),
        numbers=numbers,
        **common,
    )


def _largest_tensor(function, *arrays):
    """The largest tensor ``function`` builds (bytes, op type, shape), read
    from its graph traced on the shapes of ``arrays``."""
    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in arrays]
    graph = tf.function(function).get_concrete_function(*specs).graph
    sizes = [
        (t.shape.num_elements() * t.dtype.size, op.type, tuple(t.shape))
        for op in graph.get_operations()
        for t in op.outputs
        if t.shape.is_fully_defined() and op.type != "Const"
    ]
    return max(sizes)


def _run_tiled(function, batch: Batch) -> Outcome:
    result, error = capture(function, batch.probs, batch.embedding)
    fixed = sharpen.soft_embedding_lookup(batch.probs, batch.embedding).numpy()
    dot = tf.tensordot(batch.probs, batch.embedding, axes=1).numpy()
    fix_bytes, _, _ = _largest_tensor(
        sharpen.soft_embedding_lookup, batch.probs, batch.embedding
    )
    needed = int(batch.embedding.nbytes)
    common = dict(
        fix_value=fixed,
        fix_message=(
            "lossviz.soft_embedding_lookup: one [B, V] @ [V, D] product, whose "
            f"largest tensor is {fmt(fix_bytes)} bytes"
        ),
    )
    if error is not None:
        return error_outcome(error, **common)
    used, op_type, shape = _largest_tensor(function, batch.probs, batch.embedding)
    values = np.asarray(result)
    diff = float(max(np.max(np.abs(values - fixed)), np.max(np.abs(values - dot))))
    numbers = {
        "bytes_used": used,
        "bytes_needed": needed,
        "fix_bytes": fix_bytes,
        "max_abs_difference": diff,
    }
    if used <= needed:
        return unexpected(values, "The lookup", numbers=numbers, **common)
    return Outcome(
        kind="waste",
        message=(
            f"Its largest tensor, the {op_type} output "
            f"{'x'.join(map(str, shape))}, is {fmt(used)} bytes against "
            f"{fmt(needed)} for the table itself ({used / needed:.3g}x), for the "
            f"same values (largest difference from tf.tensordot: {diff:.1e})"
        ),
        numbers=numbers,
        **common,
    )


ATTEMPTS = (
    attempt(
        argmax_embedding_loss,
        _run_argmax,
        key="argmax_lookup",
        title="Take the argmax, look up its embedding, compare with the target",
        why="argmax is a step function: no gradient reaches the logits",
        fix=(
            "`lossviz.embedding_target_loss` looks up softmax(k·log p) @ E, which "
            "has a gradient; `lossviz.straight_through_one_hot` keeps a one-hot "
            "forward value"
        ),
    ),
    attempt(
        sharpen_without_keepdims,
        _run_no_keepdims,
        key="no_keepdims",
        title="Raise p to a power and divide by reduce_sum over axis 1",
        why=(
            "without keepdims the sum is [batch], which does not broadcast "
            "against [batch, vocab]"
        ),
        fix="`lossviz.power_sharpen` computes softmax(k·log p) along the last axis",
    ),
    attempt(
        sharpen_without_keepdims,
        _run_no_keepdims_square,
        key="no_keepdims_square",
        title="The same division when the batch is as large as the vocabulary",
        why=(
            "[batch] broadcasts along the vocabulary axis, so entry [i, j] is "
            "divided by row j's sum"
        ),
        fix="`lossviz.power_sharpen` computes softmax(k·log p) along the last axis",
    ),
    attempt(
        sharpen_with_power,
        _run_high_power,
        key="high_power",
        title=f"Sharpen with a high power (k = {HIGH_POWER:g}) in float32",
        why="p**k underflows to 0 for every entry of a row, and 0/0 is NaN",
        fix=(
            "`lossviz.power_sharpen` computes softmax(k·log p), finite for any k "
            "up to 1e4"
        ),
    ),
    attempt(
        tiled_embedding_lookup,
        _run_tiled,
        key="tiled_embedding",
        title="Tile the embedding per sample to look it up with a batched matmul",
        why=(
            "a [B, V] @ [V, D] product is already batched: tiling costs "
            "B·V·D floats for nothing"
        ),
        fix=(
            "`lossviz.soft_embedding_lookup` (or tf.tensordot) multiplies by the "
            "table once"
        ),
    ),
)


def run_all(seed=0):
    """``((attempt, outcome), ...)`` for every attempt, on ``example_batch(seed)``."""
    return run_attempts(ATTEMPTS, example_batch(seed))
