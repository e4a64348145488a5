"""Attempts at a loss that does not fit ``loss(y_true, y_pred)``, run live.

The question/answer model of the triplet page also trains a masked
cross-entropy over padded token sequences, and the attempts come from
porting that Keras 2 code: a helper that computes the loss and never
returns it, a per-row mean that divides by a mask sum of 0, the Keras 2
ways of adding a loss and a metric to a functional model, and a layer that
adds its metric with ``add_metric``.
"""

from __future__ import annotations

from dataclasses import dataclass

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

import lossviz
from lossviz import sequence
from lossviz.explore.attempts import (
    Outcome,
    attempt,
    capture,
    describe,
    error_outcome,
    fmt,
    nan_count,
    run_attempts,
    unexpected,
)

NUM_SEQUENCES, MAX_LEN, VOCAB_SIZE, PAD_ID = 4, 5, 6, 0
PADDING_ROW = 2


@dataclass(frozen=True)
class Batch:
    """``tokens`` and ``targets`` int32 ``[B, T]`` (row ``PADDING_ROW`` of the
    targets is all padding), ``logits [B, T, V]`` float32, ``seed``."""

    tokens: np.ndarray
    targets: np.ndarray
    logits: np.ndarray
    seed: int


def example_batch(seed=0) -> Batch:
    """4 sequences of 5 tokens over 6 ids, padded with 0; one is all padding."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(1, VOCAB_SIZE, (NUM_SEQUENCES, MAX_LEN)).astype(np.int32)
    lengths = rng.integers(2, MAX_LEN + 1, NUM_SEQUENCES)
    targets[np.arange(MAX_LEN)[None, :] >= lengths[:, None]] = PAD_ID
    targets[PADDING_ROW] = PAD_ID
    return Batch(
        tokens=rng.integers(1, VOCAB_SIZE, (NUM_SEQUENCES, MAX_LEN)).astype(np.int32),
        targets=targets,
        logits=rng.normal(size=(NUM_SEQUENCES, MAX_LEN, VOCAB_SIZE)).astype(np.float32),
        seed=int(seed),
    )


# --------------------------------------------------------------------------
# The attempts, as written.


def masked_cross_entropy(y_true, y_pred, pad_id=0):
    mask = tf.cast(tf.not_equal(y_true, pad_id), tf.float32)
    cross_entropy = keras.losses.sparse_categorical_crossentropy(
        y_true, y_pred, from_logits=True
    )
    loss = tf.reduce_sum(cross_entropy * mask, axis=-1)
    loss /= tf.reduce_sum(mask, axis=-1)


def masked_cross_entropy_mean(y_true, y_pred, pad_id=0):
    mask = tf.cast(tf.not_equal(y_true, pad_id), tf.float32)
    cross_entropy = keras.losses.sparse_categorical_crossentropy(
        y_true, y_pred, from_logits=True
    )
    return tf.reduce_sum(cross_entropy * mask, axis=-1) / tf.reduce_sum(mask, axis=-1)


def add_loss_to_model(model, loss):
    model.add_loss([loss])
    return model


def add_perplexity_metric(model, perplexity):
    model.metrics_names.append("perplexity")
    model.metrics_tensors.append(perplexity)
    return model


def perplexity_layer_call(self, inputs):
    targets, logits = inputs
    cross_entropy = keras.losses.sparse_categorical_crossentropy(
        targets, logits, from_logits=True
    )
    self.add_metric(tf.exp(tf.reduce_mean(cross_entropy)), name="perplexity")
    return logits


# --------------------------------------------------------------------------
# Running them.


def _tiny_model(batch: Batch):
    """Token ids [B, T] -> Embedding -> Dense: logits [B, T, V], seeded."""
    return keras.Sequential([
        keras.Input((MAX_LEN,), dtype="int32"),
        keras.layers.Embedding(
            VOCAB_SIZE, 3,
            embeddings_initializer=keras.initializers.RandomNormal(seed=batch.seed),
        ),
        keras.layers.Dense(
            VOCAB_SIZE, kernel_initializer=keras.initializers.GlorotUniform(batch.seed)
        ),
    ])  # fmt: skip


def _functional_model(batch: Batch):
    """The Keras 2 shape of the model: tokens and targets in, logits out, and
    the symbolic per-sequence loss the attempts want to attach."""
    tokens = keras.Input((MAX_LEN,), dtype="int32", name="tokens")
    targets = keras.Input((MAX_LEN,), dtype="int32", name="targets")
    logits = _tiny_model(batch)(tokens)
    ce = keras.ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    model = keras.Model([tokens, targets], logits)
    return model, keras.ops.mean(ce), keras.ops.exp(keras.ops.mean(ce))


def _masked_fix(batch: Batch) -> dict:
    values = sequence.masked_sparse_categorical_crossentropy(
        batch.targets, batch.logits, pad_id=PAD_ID
    ).numpy()
    return dict(
        fix_value=values,
        fix_message=(
            f"lossviz.masked_sparse_categorical_crossentropy(pad_id={PAD_ID}): "
            f"[{', '.join(fmt(v) for v in values)}], "
            f"{fmt(values[PADDING_ROW])} for the all-padding row"
        ),
    )


def _layer_fix(batch: Batch) -> dict:
    """lossviz's model whose layer adds the loss and owns the metrics, fitted."""
    model, _ = lossviz.build_masked_lm_model(
        VOCAB_SIZE, embed_dim=3, hidden_units=4, max_len=MAX_LEN, pad_id=PAD_ID
    )
    model.compile(optimizer="sgd")
    history = model.fit([batch.tokens, batch.targets], epochs=1, verbose=0).history
    reported = sorted(history)
    return dict(
        fix_value=np.array([history[k][-1] for k in reported]),
        fix_message=(
            "lossviz.build_masked_lm_model: its MaskedCrossEntropyLayer calls "
            "self.add_loss in call and owns its metrics; fit reports "
            + ", ".join(f"{k} {fmt(history[k][-1])}" for k in reported)
        ),
    )


class _AddsLoss(keras.layers.Layer):
    """Adds ``loss_function(targets, logits)`` from inside ``call``."""

    def __init__(self, loss_function, **kwargs):
        super().__init__(**kwargs)
        self.loss_function = loss_function

    def call(self, inputs):
        targets, logits = inputs
        self.add_loss(self.loss_function(targets, logits))
        return logits


def _run_no_return(function, batch: Batch) -> Outcome:
    targets, logits = tf.constant(batch.targets), tf.constant(batch.logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = function(targets, logits)
    _, grad_error = capture(tape.gradient, value, logits)
    model = _tiny_model(batch)
    model.compile(optimizer="sgd", loss=function)
    fitted, fit_error = capture(
        model.fit, batch.tokens, batch.targets, epochs=1, verbose=0
    )
    tokens = keras.Input((MAX_LEN,), dtype="int32")
    target_input = keras.Input((MAX_LEN,), dtype="int32")
    _, layer_error = capture(
        _AddsLoss(function), [target_input, _tiny_model(batch)(tokens)]
    )
    details = (
        ("called directly", f"returns {value!r}"),
        ("tape.gradient(loss, logits)", describe(grad_error) if grad_error else "runs"),
        ("model.compile(loss=...) then fit",
         describe(fit_error) if fit_error else "runs"),
        ("self.add_loss(...) inside a layer",
         describe(layer_error) if layer_error else "runs"),
    )  # fmt: skip
    common = dict(details=details, **_masked_fix(batch))
    if fit_error is not None:
        return error_outcome(fit_error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


def _run_zero_mask(function, batch: Batch) -> Outcome:
    targets, logits = tf.constant(batch.targets), tf.constant(batch.logits)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        values = function(targets, logits)
        mean = tf.reduce_mean(values)
        fixed = sequence.masked_sparse_categorical_crossentropy(
            targets, logits, pad_id=PAD_ID
        )
        fixed_mean = tf.reduce_mean(fixed)
    grad = tape.gradient(mean, logits).numpy()
    fix_grad = tape.gradient(fixed_mean, logits).numpy()
    values = values.numpy()
    numbers = {
        "nan_values": nan_count(values),
        "nan_gradients": nan_count(grad),
        "batch_mean": float(mean),
        "fix_nan_gradients": nan_count(fix_grad),
        "fix_padding_row_value": float(fixed[PADDING_ROW]),
        "fix_padding_row_grad_norm": float(np.linalg.norm(fix_grad[PADDING_ROW])),
    }
    common = _masked_fix(batch)
    common["fix_message"] += (
        f", its gradient {fmt(numbers['fix_padding_row_grad_norm'])} and "
        f"{numbers['fix_nan_gradients']} NaN gradients"
    )
    if not numbers["nan_values"]:
        return unexpected(values, "The per-row mean", numbers=numbers, **common)
    return Outcome(
        kind="nan",
        message=(
            "The all-padding row divides 0 by a mask sum of 0: "
            f"{numbers['nan_values']} NaN loss of {values.size}, batch mean "
            f"{fmt(float(mean))}, and "
            f"{numbers['nan_gradients']} NaN entries in dL/dlogits"
        ),
        numbers=numbers,
        **common,
    )


def _raised_in(error: BaseException) -> str:
    """The function the exception was raised in, from its traceback."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_qualname if tb is not None else "?"


def _run_add_loss(function, batch: Batch) -> Outcome:
    model, loss, _ = _functional_model(batch)
    result, error = capture(function, model, loss)
    common = _layer_fix(batch)
    if error is not None:
        common["details"] = (("raised in", _raised_in(error)),)
        return error_outcome(error, **common)
    return unexpected(len(result.losses), "model.add_loss", **common)


def _run_metrics(function, batch: Batch) -> Outcome:
    model, _, perplexity = _functional_model(batch)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = list(model.metrics_names)
    result, error = capture(function, model, perplexity)
    after = list(model.metrics_names)
    listed = "perplexity" in after
    lost = "and lists it" if listed else "without an error, but the name is lost"
    details = (
        ("model.metrics_names.append('perplexity')",
         f"runs {lost}: metrics_names is {after} afterwards (was {before})"),
        ("model.metrics_tensors.append(perplexity)",
         describe(error) if error else "runs"),
    )  # fmt: skip
    common = dict(details=details, **_layer_fix(batch))
    common["numbers"] = {"perplexity_listed": int(listed)}
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(after, "model.metrics_names", **common)


def _run_add_metric(function, batch: Batch) -> Outcome:
    """``function`` as the ``call`` of a layer, called on symbolic inputs
    (building a functional model) and on the batch's tensors."""
    layer_class = type("PerplexityLayer", (keras.layers.Layer,), {"call": function})
    tokens = keras.Input((MAX_LEN,), dtype="int32")
    targets = keras.Input((MAX_LEN,), dtype="int32")
    _, symbolic_error = capture(layer_class(), [targets, _tiny_model(batch)(tokens)])
    _, eager_error = capture(
        layer_class(), [tf.constant(batch.targets), tf.constant(batch.logits)]
    )
    error = symbolic_error or eager_error

    def shown(raised):
        if raised is None:
            return "runs"
        if describe(raised) == describe(error):
            return f"raises {type(raised).__name__}, as above"
        return describe(raised)

    details = (
        ("building a functional model", shown(symbolic_error)),
        ("called on tensors", shown(eager_error)),
    )
    common = dict(details=details, **_layer_fix(batch))
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(0.0, "Layer.add_metric", **common)


ATTEMPTS = (
    attempt(
        masked_cross_entropy,
        _run_no_return,
        key="no_return",
        title="A masked cross-entropy helper without a return",
        why="a Python function without return gives None, which is no loss",
        fix=(
            "`lossviz.masked_sparse_categorical_crossentropy` returns [batch]; "
            "`lossviz.MaskedCrossEntropyLayer` adds it"
        ),
    ),
    attempt(
        masked_cross_entropy_mean,
        _run_zero_mask,
        key="zero_mask",
        title="Divide the masked sum by reduce_sum(mask) per row",
        why="a row that is all padding has a mask sum of 0, and 0/0 is NaN",
        fix=(
            "`lossviz.masked_sparse_categorical_crossentropy` uses divide_no_nan: "
            "0, with a zero gradient"
        ),
    ),
    attempt(
        add_loss_to_model,
        _run_add_loss,
        key="model_add_loss",
        title="model.add_loss([loss]) on a functional model",
        why="Keras 3 does not implement add_loss on a functional model",
        fix=(
            "`lossviz.MaskedCrossEntropyLayer` calls self.add_loss inside call "
            "(`lossviz.build_masked_lm_model`)"
        ),
    ),
    attempt(
        add_perplexity_metric,
        _run_metrics,
        key="metrics_tensors",
        title="Append a metric to model.metrics_names and model.metrics_tensors",
        why=(
            "Keras 3 has no metrics_tensors, and metrics_names is a list made "
            "afresh from the metric objects"
        ),
        fix=(
            "`lossviz.MaskedCrossEntropyLayer` owns its perplexity and accuracy "
            "metrics, which fit reports"
        ),
    ),
    attempt(
        perplexity_layer_call,
        _run_add_metric,
        key="layer_add_metric",
        title="self.add_metric(perplexity) in a layer's call",
        why="Keras 3 keeps Layer.add_metric only to raise NotImplementedError",
        fix=(
            "`lossviz.MaskedCrossEntropyLayer` creates keras.metrics objects in "
            "__init__ and updates them in call; fit reports them"
        ),
    ),
)


def run_all(seed=0):
    """``((attempt, outcome), ...)`` for every attempt, on ``example_batch(seed)``."""
    return run_attempts(ATTEMPTS, example_batch(seed))
