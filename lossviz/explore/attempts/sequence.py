"""Attempts at weighting the end token of a seq2seq loss, run live.

A decoder predicts one token per step; the end token is rare in the data
and the model never learns to stop, so people weight it. The attempts: a
loss that reads tensor values with ``.eval()``, one that loops and branches
over them in Python, ``fit(class_weight=...)`` with sequence targets (as
integers and as one-hot), and targets padded by repeating the end token.
"""

from __future__ import annotations

from dataclasses import dataclass

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz import sequence
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

NUM_SEQUENCES, MAX_LEN, NUM_CLASSES = 16, 8, 10
# The Python loops run on the first sequences only: traced, they unroll.
LOOP_SEQUENCES = 2
PAD_ID, END_ID, END_WEIGHT = 0, 2, 5.0
EMBEDDING_DIM = 4


@dataclass(frozen=True)
class Batch:
    """``sequences``: token lists, each ending in the end token; ``inputs``
    and ``targets`` int32 ``[B, T]`` (targets padded with ``PAD_ID`` after the
    end token); ``one_hot [B, T, C]`` of the targets; ``logits [B, T, C]``;
    ``seed`` for the tiny models' initial weights."""

    sequences: tuple[tuple[int, ...], ...]
    inputs: np.ndarray
    targets: np.ndarray
    one_hot: np.ndarray
    logits: np.ndarray
    seed: int


def example_batch(seed=0) -> Batch:
    """16 sequences of 2 to 8 tokens (content ids 3..9, then the end token 2),
    padded to 8 with 0; inputs and logits drawn from the same seed."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, NUM_CLASSES, (NUM_SEQUENCES, MAX_LEN)).astype(np.int32)
    logits = rng.normal(size=(NUM_SEQUENCES, MAX_LEN, NUM_CLASSES))
    lengths = rng.integers(2, MAX_LEN + 1, NUM_SEQUENCES)
    sequences = tuple(
        (*(int(t) for t in rng.integers(END_ID + 1, NUM_CLASSES, n - 1)), END_ID)
        for n in lengths
    )
    targets = np.full((NUM_SEQUENCES, MAX_LEN), PAD_ID, dtype=np.int32)
    for row, tokens in enumerate(sequences):
        targets[row, : len(tokens)] = tokens
    return Batch(
        sequences=sequences,
        inputs=inputs,
        targets=targets,
        one_hot=np.eye(NUM_CLASSES, dtype=np.float32)[targets],
        logits=logits.astype(np.float32),
        seed=int(seed),
    )


# --------------------------------------------------------------------------
# The attempts, as written.


def end_weighted_loss_eval(y_true, y_pred, end_id=2, end_weight=5.0):
    labels = y_true.eval()
    probs = y_pred.eval()
    total = 0.0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            weight = end_weight if labels[b, t] == end_id else 1.0
            total += weight * -np.log(probs[b, t, labels[b, t]])
    return total / labels.size


def end_weighted_loss_loop(y_true, y_pred, end_id=2, end_weight=5.0):
    total = 0.0
    for b in range(y_true.shape[0]):
        for t in range(y_true.shape[1]):
            weight = end_weight if y_true[b, t] == end_id else 1.0
            total += weight * -tf.math.log(y_pred[b, t, y_true[b, t]])
    return total / (y_true.shape[0] * y_true.shape[1])


def fit_with_end_token_weight(model, inputs, targets, end_id=2, end_weight=5.0):
    return model.fit(
        inputs, targets, class_weight={end_id: end_weight}, epochs=1, verbose=0
    )


def pad_with_end_token(sequences, max_len, end_id=2):
    return np.array([list(s) + [end_id] * (max_len - len(s)) for s in sequences])


# --------------------------------------------------------------------------
# Running them.


def _tiny_model(batch: Batch, activation=None):
    """Token ids [B, T] -> Embedding -> Dense: [B, T, C], seeded weights."""
    return keras.Sequential([
        keras.Input((MAX_LEN,), dtype="int32"),
        keras.layers.Embedding(
            NUM_CLASSES, EMBEDDING_DIM,
            embeddings_initializer=keras.initializers.RandomNormal(seed=batch.seed),
        ),
        keras.layers.Dense(
            NUM_CLASSES, activation=activation,
            kernel_initializer=keras.initializers.GlorotUniform(batch.seed),
        ),
    ])  # fmt: skip


def _end_weights():
    weights = np.ones(NUM_CLASSES)
    weights[END_ID] = END_WEIGHT
    return weights


def _fix(batch: Batch, logits) -> dict:
    """lossviz's per-sequence loss with the end token weighted, per token."""
    values = sequence.masked_sparse_categorical_crossentropy(
        batch.targets, logits, pad_id=PAD_ID, class_weights=_end_weights()
    ).numpy()
    ends = int(np.sum(batch.targets == END_ID))
    return dict(
        fix_value=values,
        fix_message=(
            f"lossviz.masked_sparse_categorical_crossentropy(pad_id={PAD_ID}, "
            f"class_weights with w[{END_ID}] = {fmt(END_WEIGHT)}) weights the "
            f"{ends} end tokens themselves: mean {fmt(values.mean())}"
        ),
    )


def _result_text(result, error) -> str:
    if error is not None:
        return describe(error)
    return f"runs: {fmt(np.asarray(result))}"


def _run_eval(function, batch: Batch) -> Outcome:
    probs = tf.nn.softmax(batch.logits)
    eager, eager_error = capture(function, tf.constant(batch.targets), probs)
    model = _tiny_model(batch, activation="softmax")
    model.compile(optimizer="sgd", loss=function)
    fitted, fit_error = capture(
        model.fit, batch.inputs, batch.targets, epochs=1, verbose=0
    )
    details = (
        ("eagerly", _result_text(eager, eager_error)),
        ("in model.fit (a tf.function)",
         describe(fit_error) if fit_error else "runs"),
    )  # fmt: skip
    common = dict(details=details, **_fix(batch, batch.logits))
    error = fit_error or eager_error
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


def _run_loop(function, batch: Batch) -> Outcome:
    targets = tf.constant(batch.targets[:LOOP_SEQUENCES])
    probs = tf.nn.softmax(batch.logits[:LOOP_SEQUENCES])
    eager, eager_error = capture(function, targets, probs)
    graph, graph_error = capture(tf.function(function), targets, probs)
    plain, plain_error = capture(tf.function(function, autograph=False), targets, probs)
    reference = _reference_loop_value(batch.targets[:LOOP_SEQUENCES], probs.numpy())
    model = _tiny_model(batch, activation="softmax")
    model.compile(optimizer="sgd", loss=function)
    fitted, fit_error = capture(
        model.fit, batch.inputs, batch.targets, epochs=1, verbose=0
    )
    first = f"first {LOOP_SEQUENCES} sequences"
    details = (
        (f"eagerly, {first}", _result_text(eager, eager_error)),
        (f"tf.function, {first} (AutoGraph unrolls the loops)",
         _result_text(graph, graph_error)),
        (f"tf.function(autograph=False), {first}", _result_text(plain, plain_error)),
        ("in model.fit (batch size unknown, AutoGraph does not reach the loss)",
         describe(fit_error) if fit_error else "runs"),
    )  # fmt: skip
    numbers = {"reference_value": reference}
    if eager_error is None:
        numbers["eager_value"] = float(eager)
    common = dict(details=details, numbers=numbers, **_fix(batch, batch.logits))
    if fit_error is not None:
        return error_outcome(fit_error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


def _reference_loop_value(targets, probs) -> float:
    """What the loop computes, in numpy: the end-weighted mean of -log p[y]."""
    picked = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]
    weights = np.where(targets == END_ID, END_WEIGHT, 1.0)
    return float(np.mean(weights * -np.log(picked)))


def _per_sequence_crossentropy(y_true, y_pred):
    ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return tf.reduce_mean(ce, axis=-1)


def _run_class_weight_ids(function, batch: Batch) -> Outcome:
    model = _tiny_model(batch)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    fitted, error = capture(function, model, batch.inputs, batch.targets)
    # What did class_weight become? A loss that is one value per sequence
    # takes any [B] weights, and a learning rate of 0 keeps the model fixed,
    # so the loss fit reports is the mean of weight x per-sequence loss.
    probe = _tiny_model(batch)
    probe.compile(optimizer=keras.optimizers.SGD(0.0), loss=_per_sequence_crossentropy)
    probed = function(probe, batch.inputs, batch.targets)
    reported = float(probed.history["loss"][0])
    per_sequence = _per_sequence_crossentropy(
        tf.constant(batch.targets), probe(batch.inputs)
    ).numpy()
    positions = np.argmax(batch.targets, axis=-1)
    by_position = np.where(positions == END_ID, END_WEIGHT, 1.0)
    by_end_token = np.where((batch.targets == END_ID).any(axis=-1), END_WEIGHT, 1.0)
    numbers = {
        "reported_loss": reported,
        "if_weighted_by_argmax_position": float(np.mean(by_position * per_sequence)),
        "if_weighted_by_end_token": float(np.mean(by_end_token * per_sequence)),
        "sequences_weighted": int(np.sum(positions == END_ID)),
        "sequences": int(len(positions)),
    }
    matches = np.isclose(reported, numbers["if_weighted_by_argmax_position"], 1e-4)
    if not matches:
        found = "which matches no per-sequence weighting tried"
    elif numbers["sequences_weighted"]:
        found = (
            f"= mean(weight x loss) with weight {fmt(END_WEIGHT)} on the "
            f"{numbers['sequences_weighted']} of {numbers['sequences']} sequences "
            f"whose largest token id stands at position {END_ID}: class_weight was "
            "looked up at the argmax over time, not at the end tokens"
        )
    else:
        found = "= the unweighted mean: the end tokens got no weight"
    details = (
        ("SparseCategoricalCrossentropy (a loss per token)",
         describe(error) if error else "runs"),
        ("a per-sequence loss, learning rate 0",
         f"runs, reports {fmt(reported)} {found}"),
    )  # fmt: skip
    common = dict(details=details, numbers=numbers, **_fix(batch, probe(batch.inputs)))
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


def _run_class_weight_one_hot(function, batch: Batch) -> Outcome:
    model = _tiny_model(batch)
    model.compile(
        optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True)
    )
    fitted, error = capture(function, model, batch.inputs, batch.one_hot)
    common = _fix(batch, model(batch.inputs))
    if error is not None:
        return error_outcome(error, **common)
    return unexpected(fitted.history["loss"], "model.fit", **common)


def _copy_task_padded_with(function, seed: int) -> bool:
    """Whether ``function`` pads the copy task's sequences (the Train panel's,
    with ``seed``) into the very targets its run with ``pad_as_end`` trains on."""
    from lossviz.training import core
    from lossviz.training import sequence as task

    params = task.check_params({})
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    _, targets = task.copy_dataset(
        core.rng(seed, 1), params["num_train"], pad_id=task.END_ID, **sizes
    )
    lengths = task.real_steps(targets).sum(axis=-1)
    rows = [
        tuple(int(t) for t in row[:n]) for row, n in zip(targets, lengths, strict=True)
    ]
    padded = np.asarray(function(rows, sizes["padded_len"], task.END_ID))
    return bool(np.array_equal(padded, targets))


def _run_pad_with_end(function, batch: Batch) -> Outcome:
    from lossviz.explore import sequence as explore

    padded = np.asarray(function(batch.sequences, MAX_LEN, END_ID))
    end_share = float(np.mean(padded == END_ID))
    mask = batch.targets != PAD_ID
    fix_share = float(np.sum((batch.targets == END_ID) & mask) / np.sum(mask))
    # Every position counts in a loss without a mask.
    unmasked = keras.losses.sparse_categorical_crossentropy(
        padded, batch.logits, from_logits=True
    ).numpy()
    fixed = sequence.masked_sparse_categorical_crossentropy(
        batch.targets, batch.logits, pad_id=PAD_ID
    ).numpy()
    # The Train panel's copy task, padded by this function, trained unmasked
    # (every position counts), beside the same task with a pad id of its own.
    trained = explore.trained_summary(
        explore.Setting(pad_id=END_ID, mask=explore.UNMASKED), batch.seed
    )
    trained_fix = explore.trained_summary(explore.Setting(), batch.seed)
    said_end, target_end = (
        "real steps predicted `</s>`",
        "real target steps that are `</s>`",
    )
    numbers = {
        "end_share": end_share,
        "fix_end_share": fix_share,
        "end_tokens": int(np.sum(padded == END_ID)),
        "tokens": int(padded.size),
        "loss": float(unmasked.mean()),
        "same_as_task_targets": _copy_task_padded_with(function, batch.seed),
        "trained_end_share": float(trained[said_end]),
        "trained_target_end_share": float(trained[target_end]),
        "trained_stop_share": float(trained[explore.STOP]),
        "fix_trained_end_share": float(trained_fix[said_end]),
    }
    epochs = explore.TRAINING.epochs
    return Outcome(
        kind="wrong",
        message=(
            f"{numbers['end_tokens']} of the {numbers['tokens']} target tokens "
            f"({end_share:.0%}) are the end token, and every one counts in the "
            f"loss: against {fix_share:.0%} of the tokens a mask over a distinct "
            f"pad id keeps. Trained {epochs} epochs on the copy task padded this "
            f"way, the model answers `</s>` on {numbers['trained_end_share']:.0%} "
            "of the real steps, where the targets have "
            f"{numbers['trained_target_end_share']:.0%}"
        ),
        numbers=numbers,
        details=(
            (
                "the copy task's targets, padded by this function",
                "the very targets the run trains on"
                if numbers["same_as_task_targets"]
                else "not the task's targets",
            ),
            (
                f"trained {epochs} epochs, unmasked",
                f"`</s>` or `<pad>` on {numbers['trained_stop_share']:.0%} of the "
                "content steps: the output stops too early",
            ),
        ),  # fmt: skip
        fix_value=fixed,
        fix_message=(
            f"lossviz.masked_sparse_categorical_crossentropy(pad_id={PAD_ID}) with "
            f"the end token once per sequence: end tokens are {fix_share:.0%} of "
            f"the {int(mask.sum())} tokens it counts; mean loss {fmt(fixed.mean())}. "
            f"Trained so on the copy task, the model answers `</s>` on "
            f"{numbers['fix_trained_end_share']:.0%} of the real steps (the targets "
            f"have {numbers['trained_target_end_share']:.0%})"
        ),
    )


ATTEMPTS = (
    attempt(
        end_weighted_loss_eval,
        _run_eval,
        key="eval_in_loss",
        title="Read the labels with .eval() and weight the end token in a loop",
        why=(
            "a loss runs on tensors, eagerly or in a graph: there is no session "
            "to eval() them in"
        ),
        fix=(
            "`lossviz.masked_sparse_categorical_crossentropy(class_weights=...)` "
            "weights tokens with tensor ops"
        ),
    ),
    attempt(
        end_weighted_loss_loop,
        _run_loop,
        key="python_loop",
        title="Loop over batch and time in Python and branch on each label",
        why=(
            "in fit the loss is traced once on symbolic tensors: the batch size "
            "is unknown and a tensor has no Python truth value"
        ),
        fix=(
            "`lossviz.masked_sparse_categorical_crossentropy(class_weights=...)` "
            "gathers w[y] for every token at once"
        ),
    ),
    attempt(
        fit_with_end_token_weight,
        _run_class_weight_ids,
        key="class_weight_ids",
        title="fit(class_weight={end_id: w}) with integer [batch, time] targets",
        why=(
            "Keras makes one weight per sequence from class_weight, looked up "
            "at the argmax over time: per-token losses reject it"
        ),
        fix=(
            "`lossviz.MaskedSparseCategoricalCrossentropy(class_weights=...)` "
            "weights each token (`lossviz.end_token_class_weights` picks w)"
        ),
    ),
    attempt(
        fit_with_end_token_weight,
        _run_class_weight_one_hot,
        key="class_weight_one_hot",
        title="fit(class_weight={end_id: w}) with one-hot [batch, time, classes]",
        why="the argmax of one-hot sequences is still a sequence, not one class",
        fix=(
            "`lossviz.MaskedSparseCategoricalCrossentropy(class_weights=...)` "
            "on integer targets"
        ),
    ),
    attempt(
        pad_with_end_token,
        _run_pad_with_end,
        key="pad_with_end",
        title="Pad the targets by repeating the end token",
        why=(
            "every padded position becomes an end token that the loss counts, "
            "so the model learns to answer the end token where it is unsure"
        ),
        fix=(
            "`lossviz.masked_sparse_categorical_crossentropy(pad_id=...)` masks a "
            "distinct pad id out of the loss"
        ),
    ),
)


def run_all(seed=0):
    """``((attempt, outcome), ...)`` for every attempt, on ``example_batch(seed)``."""
    return run_attempts(ATTEMPTS, example_batch(seed))
