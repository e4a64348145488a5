"""Attempts at a sampled softmax in Keras, run live.

The attempts: a Keras function that does not exist, a loss layer that reaches
the output Dense layer's weights through the private ``_keras_history`` of its
logits, ``tf.nn.sampled_softmax_loss`` fed the output layer's logits and kernel,
labels recovered from one-hot targets, a placeholder loss that averages the
model's output, and a loss layer that has no inference path and breaks on
sequence (3-D) outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz import sampled
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

NUM_SAMPLES, HIDDEN_DIM, NUM_CLASSES, NUM_SAMPLED, TIME_STEPS = 8, 6, 50, 10, 4


@dataclass(frozen=True)
class Batch:
    """``hidden [B, D]`` activations with int64 ``labels [B]`` and their
    float32 ``one_hot [B, C]``; an output layer ``weights [C, D]`` and
    ``biases [C]``; ``hidden_seq [B, T, D]`` with ``labels_seq [B, T]`` (an
    LSTM with ``return_sequences=True``); ``seed`` for the samplers."""

    hidden: np.ndarray
    labels: np.ndarray
    one_hot: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    hidden_seq: np.ndarray
    labels_seq: np.ndarray
    seed: int


def example_batch(seed=0) -> Batch:
    """A seeded batch: 8 samples, hidden size 6, 50 classes, 4 time steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, NUM_SAMPLES).astype(np.int64)
    return Batch(
        hidden=rng.normal(size=(NUM_SAMPLES, HIDDEN_DIM)).astype(np.float32),
        labels=labels,
        one_hot=np.eye(NUM_CLASSES, dtype=np.float32)[labels],
        weights=(0.5 * rng.normal(size=(NUM_CLASSES, HIDDEN_DIM))).astype(np.float32),
        biases=np.zeros(NUM_CLASSES, dtype=np.float32),
        hidden_seq=rng.normal(size=(NUM_SAMPLES, TIME_STEPS, HIDDEN_DIM)).astype(
            np.float32
        ),
        labels_seq=rng.integers(0, NUM_CLASSES, (NUM_SAMPLES, TIME_STEPS)).astype(
            np.int64
        ),
        seed=int(seed),
    )


# --------------------------------------------------------------------------
# The attempts, as written.


def keras_sampled_softmax(weights, biases, labels, inputs, num_sampled, num_classes):
    K = keras.backend
    return K.sampled_softmax(weights, biases, labels, inputs, num_sampled, num_classes)


class SampledLossFromDenseHistory(keras.layers.Layer):
    def call(self, inputs):
        logits, one_hot_targets = inputs
        dense = logits._keras_history[0]  # the Dense layer that made the logits
        labels = tf.argmax(one_hot_targets, axis=-1)[:, tf.newaxis]
        return tf.nn.sampled_softmax_loss(
            weights=dense.kernel,
            biases=dense.bias,
            labels=labels,
            inputs=logits,
            num_sampled=10,
            num_classes=50,
        )


def sampled_loss_on_logits(dense, hidden, labels, num_sampled):
    logits = dense(hidden)
    return tf.nn.sampled_softmax_loss(
        weights=dense.kernel,
        biases=dense.bias,
        labels=labels,
        inputs=logits,
        num_sampled=num_sampled,
        num_classes=dense.units,
    )


def sampled_loss_from_one_hot(weights, biases, one_hot_targets, hidden, num_sampled):
    labels = tf.argmax(one_hot_targets, axis=-1)[:, tf.newaxis]
    return tf.nn.sampled_softmax_loss(
        weights=weights,
        biases=biases,
        labels=labels,
        inputs=hidden,
        num_sampled=num_sampled,
        num_classes=one_hot_targets.shape[-1],
    )


def sampled_loss(y_true, y_pred, num_sampled=10, num_classes=50):
    return tf.reduce_mean(y_pred)


class SampledSoftmaxLoss(keras.layers.Layer):
    def __init__(self, num_classes, num_sampled, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.num_sampled = num_sampled

    def build(self, input_shape):
        hidden_shape, _ = input_shape
        self.kernel = self.add_weight(shape=(self.num_classes, hidden_shape[-1]))
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros")

    def call(self, inputs):
        hidden, labels = inputs
        return tf.nn.sampled_softmax_loss(
            weights=self.kernel,
            biases=self.bias,
            labels=labels,
            inputs=hidden,
            num_sampled=self.num_sampled,
            num_classes=self.num_classes,
        )


# --------------------------------------------------------------------------
# Running them.


def _fix(batch: Batch, weights=None, biases=None):
    """lossviz's sampled loss on the 2-D batch (the outcome's fix fields),
    and its full loss (numpy ``[B]``)."""
    weights = batch.weights if weights is None else weights
    biases = batch.biases if biases is None else biases
    estimate = sampled.sampled_softmax_loss(
        weights, biases, batch.labels, batch.hidden, NUM_SAMPLED, seed=batch.seed
    ).numpy()
    full = sampled.full_softmax_loss(weights, biases, batch.labels, batch.hidden)
    full = full.numpy()
    message = (
        f"lossviz.sampled_softmax_loss ({NUM_SAMPLED} of {NUM_CLASSES} classes): "
        f"mean {fmt(estimate.mean())}; the full cross-entropy: "
        f"{fmt(np.mean(full))}"
    )
    return dict(fix_value=estimate, fix_message=message), full


def _run_missing_api(function, batch: Batch) -> Outcome:
    result, error = capture(
        function, batch.weights, batch.biases, batch.labels[:, None], batch.hidden,
        NUM_SAMPLED, NUM_CLASSES,
    )  # fmt: skip
    has_it = hasattr(keras.ops, "sampled_softmax")
    softmaxes = sorted(n for n in dir(keras.ops) if "softmax" in n)
    details = (
        ("keras.backend", describe(error) if error else "has sampled_softmax"),
        ("keras.ops", "has sampled_softmax" if has_it else "no sampled_softmax either"),
        ("softmax functions in keras.ops", ", ".join(softmaxes)),
    )
    fix, full = _fix(batch)
    numbers = {"in_keras_ops": int(has_it), "fix_full_loss": float(full.mean())}
    common = dict(details=details, numbers=numbers, **fix)
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(result, "keras.backend.sampled_softmax", **common)


def _seeded_dense(batch: Batch):
    dense = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=keras.initializers.GlorotUniform(batch.seed)
    )
    dense.build((None, HIDDEN_DIM))
    return dense


def _history(tensor) -> str:
    """What ``tensor._keras_history`` holds, in words, or that it has none."""
    kind = type(tensor).__name__
    if not hasattr(tensor, "_keras_history"):
        return f"{kind}, with no _keras_history attribute"
    history = tensor._keras_history
    layer = history[0]
    return (
        f"{kind}._keras_history = {type(history).__name__}(operation="
        f"<{type(layer).__name__}>, node_index={history[1]}, tensor_index="
        f"{history[2]}): the layer that made it (kernel {list(layer.kernel.shape)}), "
        "not the hidden activations it was called on"
    )


def _public_route(tensor, layer) -> str:
    """Whether a public attribute of ``tensor`` gives ``layer``."""
    public = sorted(n for n in dir(tensor) if not n.startswith("_"))
    leads = [n for n in public if getattr(tensor, n, None) is layer]
    if leads:
        return f"{', '.join(leads)} give the layer"
    return f"{', '.join(public)}: none gives the layer"


def _run_keras_history(function, batch: Batch) -> Outcome:
    hidden = keras.Input((HIDDEN_DIM,), name="hidden")
    targets = keras.Input((NUM_CLASSES,), name="one_hot_targets")
    dense = _seeded_dense(batch)
    logits = dense(hidden)
    _, error = capture(lambda: function()([logits, targets]))
    real_logits = dense(batch.hidden)
    _, eager_error = capture(lambda: function()([real_logits, batch.one_hot]))
    details = (
        ("the symbolic logits of the functional model", _history(logits)),
        ("its public attributes", _public_route(logits, dense)),
        ("the logits as a model runs them", _history(real_logits)),
        ("building the model", describe(error) if error else "builds"),
        ("calling the layer on real tensors",
         describe(eager_error) if eager_error else "runs"),
    )  # fmt: skip
    fixed = keras.layers.Input((HIDDEN_DIM,)), keras.layers.Input((), dtype="int64")
    layer = sampled.SampledSoftmax(NUM_CLASSES, NUM_SAMPLED, seed=batch.seed)
    model = keras.Model(list(fixed), layer(*fixed))
    common, _ = _fix(batch)
    common["fix_message"] = (
        "lossviz.SampledSoftmax builds in a functional model on the hidden "
        f"activations, owning its kernel {list(layer.kernel.shape)} ([classes, "
        f"dim]), output {list(model.output.shape)}; " + common["fix_message"]
    )
    common.update(
        details=details,
        numbers={
            "kernel_rows": int(dense.kernel.shape[0]),
            "fix_kernel_rows": int(layer.kernel.shape[0]),
            "history_on_real_tensors": int(hasattr(real_logits, "_keras_history")),
        },
    )
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(np.nan, "The layer reading _keras_history", **common)


def _run_logits_as_inputs(function, batch: Batch) -> Outcome:
    dense = _seeded_dense(batch)
    result, error = capture(function, dense, batch.hidden, batch.labels[:, None],
                            NUM_SAMPLED)  # fmt: skip
    # The kernel is [dim, classes]; tf.nn wants [classes, dim].
    kernel = tf.transpose(dense.kernel)
    shapes = (
        f"inputs {list(dense(batch.hidden).shape)} (logits), weights "
        f"{list(dense.kernel.shape)} (Dense kernel); it wants hidden "
        f"{list(batch.hidden.shape)} and [{NUM_CLASSES}, {HIDDEN_DIM}]"
    )
    common = dict(details=(("shapes passed", shapes),))
    common.update(_fix(batch, kernel, dense.bias)[0])
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(result, "The sampled loss on the logits", **common)


def _run_one_hot(function, batch: Batch) -> Outcome:
    result, error = capture(function, batch.weights, batch.biases, batch.one_hot,
                            batch.hidden, NUM_SAMPLED)  # fmt: skip
    common, _ = _fix(batch)
    if error is not None:
        return error_outcome(error, **common)
    used, needed = int(batch.one_hot.nbytes), int(batch.labels.nbytes)
    values = np.asarray(result)
    numbers = {
        "bytes_used": used,
        "bytes_needed": needed,
        "loss": float(values.mean()),
    }
    b, c = batch.one_hot.shape
    return Outcome(
        kind="waste",
        message=(
            f"It runs (mean sampled loss {fmt(values.mean())}), but each batch "
            f"carries a {b}x{c} float32 one-hot, {fmt(used)} bytes, to recover "
            f"{b} int64 ids that take {fmt(needed)} ({used / needed:.3g}x, "
            "growing with the vocabulary)"
        ),
        numbers=numbers,
        **common,
    )


def _run_dummy_loss(function, batch: Batch) -> Outcome:
    init = keras.initializers.GlorotUniform(batch.seed)
    model = keras.Sequential([
        keras.Input((HIDDEN_DIM,)),
        keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=init),
    ])  # fmt: skip
    model.compile(optimizer="sgd", loss=function)
    reported = float(model.evaluate(batch.hidden, batch.labels, verbose=0))
    shuffled = np.random.default_rng(batch.seed).permutation(batch.labels)
    reported_shuffled = float(model.evaluate(batch.hidden, shuffled, verbose=0))
    with tf.GradientTape() as tape:
        outputs = model(batch.hidden)
        value = function(tf.constant(batch.labels), outputs)
    grads = tape.gradient(value, model.trainable_variables)
    grad_norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    dense = model.layers[-1]
    common, full = _fix(batch, tf.transpose(dense.kernel), dense.bias)
    mean_output = float(np.mean(outputs))
    numbers = {
        "reported_loss": reported,
        "reported_loss_shuffled_labels": reported_shuffled,
        "mean_output": mean_output,
        "grad_norm": grad_norm,
        "full_loss": float(full.mean()),
        "sampled_loss": float(np.mean(common["fix_value"])),
    }
    if not np.isclose(reported, mean_output, rtol=1e-5):
        return unexpected(reported, "model.evaluate", numbers=numbers, **common)
    return Outcome(
        kind="wrong",
        message=(
            f"model.evaluate reports loss {fmt(reported)}: the mean of the model's "
            f"softmax output (1/{NUM_CLASSES} = {fmt(1 / NUM_CLASSES)}), the same "
            f"with shuffled labels ({fmt(reported_shuffled)}), with gradient norm "
            f"{grad_norm:.1e}; the cross-entropy is {fmt(numbers['full_loss'])}"
        ),
        numbers=numbers,
        **common,
    )


def _run_sequence_layer(function, batch: Batch) -> Outcome:
    layer = function(NUM_CLASSES, NUM_SAMPLED)
    flat, flat_error = capture(layer, [batch.hidden, batch.labels[:, None]])
    seq_labels = batch.labels_seq[..., None]
    result, error = capture(layer, [batch.hidden_seq, seq_labels])
    predicted, inference_error = capture(layer, batch.hidden)
    b, t, d = batch.hidden_seq.shape
    details = (
        (f"2-D hidden [{NUM_SAMPLES}, {d}], labels [{NUM_SAMPLES}, 1]",
         describe(flat_error) if flat_error else f"runs: loss {list(flat.shape)}"),
        (f"3-D hidden [{b}, {t}, {d}], labels [{b}, {t}, 1]",
         describe(error) if error else f"runs: loss {list(result.shape)}"),
        (f"inference: hidden [{NUM_SAMPLES}, {d}] alone",
         describe(inference_error) if inference_error
         else f"returns {list(predicted.shape)}"),
    )  # fmt: skip
    per_token = sampled.sampled_softmax_loss(
        batch.weights, batch.biases, batch.labels_seq, batch.hidden_seq,
        NUM_SAMPLED, seed=batch.seed,
    ).numpy()  # fmt: skip
    fixed_layer = sampled.SampledSoftmax(NUM_CLASSES, NUM_SAMPLED)
    probs = fixed_layer(batch.hidden_seq).numpy()
    common = dict(
        details=details,
        fix_value=per_token,
        fix_message=(
            f"lossviz.sampled_softmax_loss on the same 3-D batch: loss "
            f"{list(per_token.shape)}, mean {fmt(per_token.mean())}; "
            f"lossviz.SampledSoftmax in inference: probabilities "
            f"{list(probs.shape)}, rows summing to {fmt(probs.sum(-1).min())}"
        ),
        numbers={"fix_rank": per_token.ndim, "inference_rank": probs.ndim},
    )
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(result, "The loss layer on 3-D inputs", **common)


ATTEMPTS = (
    attempt(
        keras_sampled_softmax,
        _run_missing_api,
        key="missing_api",
        title="Call K.sampled_softmax from the Keras backend",
        why="Keras has no sampled softmax: not in keras.backend, not in keras.ops",
        fix=(
            "`lossviz.sampled_softmax_loss` (a function) and "
            "`lossviz.SampledSoftmax` (a layer)"
        ),
    ),
    attempt(
        SampledLossFromDenseHistory,
        _run_keras_history,
        key="keras_history",
        title="Reach the output Dense layer's weights through logits._keras_history",
        why=(
            "_keras_history is a private attribute of a symbolic KerasTensor (it "
            "names the layer that made it, with a [D, C] kernel); inside call() "
            "the layer gets backend tensors, which have none"
        ),
        fix=(
            "`lossviz.SampledSoftmax` owns its [C, D] kernel and takes the hidden "
            "activations: it reads no other layer's weights"
        ),
    ),
    attempt(
        sampled_loss_on_logits,
        _run_logits_as_inputs,
        key="logits_as_inputs",
        title="Feed the output Dense layer's logits and kernel to tf.nn",
        why=(
            "tf.nn.sampled_softmax_loss wants the hidden activations [B, D] and "
            "a [C, D] matrix, not logits [B, C] and a [D, C] kernel"
        ),
        fix=(
            "`lossviz.SampledSoftmax` owns a [C, D] kernel and takes the hidden "
            "activations"
        ),
    ),
    attempt(
        sampled_loss_from_one_hot,
        _run_one_hot,
        key="one_hot_targets",
        title="Recover the labels with argmax from one-hot targets",
        why=(
            "a dense one-hot target is num_classes floats per sample to carry "
            "one integer"
        ),
        fix="`lossviz.SampledSoftmax` takes int labels [B] (or [B, T])",
    ),
    attempt(
        sampled_loss,
        _run_dummy_loss,
        key="dummy_loss",
        title="A placeholder loss reduce_mean(y_pred) with the sizes hard-coded",
        why=(
            "Keras calls it with the model's output, so it reports the mean "
            "of that output, not a sampled loss"
        ),
        fix=(
            "`lossviz.SampledSoftmax` adds the sampled loss itself with add_loss; "
            "compile with loss=None"
        ),
        task="sparse",
        outputs="probabilities",
    ),
    attempt(
        SampledSoftmaxLoss,
        _run_sequence_layer,
        key="sequence_outputs",
        title="A loss layer over LSTM outputs (return_sequences=True)",
        why=(
            "tf.nn.sampled_softmax_loss takes 2-D inputs and [B, 1] labels only; "
            "and the layer always needs labels, so it cannot predict"
        ),
        fix=(
            "`lossviz.sampled_softmax_loss` reshapes [B, T, D] for tf.nn; "
            "`lossviz.SampledSoftmax` returns probabilities in inference"
        ),
    ),
)


def run_all(seed=0):
    """``((attempt, outcome), ...)`` for every attempt, on ``example_batch(seed)``."""
    return run_attempts(ATTEMPTS, example_batch(seed))
