"""What the "Sequence masking and class weights" page computes.

A seeded batch of 6 padded target sequences of 10 steps over 8 classes and
the logits of a model that leans toward the end token (``example_batch``);
at a setting (padding share, pad id, end-token weight by hand or from the
data, the model's lean), the four ways to average its masked cross-entropy
and their gradients with respect to the logits (``at_setting``):

- ``"ours"``: the per-sequence mean (``masked_sparse_categorical_crossentropy``)
  averaged over the sequences, as Keras' default ``"sum_over_batch_size"``
  reduction averages ``MaskedSparseCategoricalCrossentropy``'s values;
- ``"token"``: Keras' own masked reduction, the mean over every non-pad token
  of the batch (``token_mean_crossentropy``);
- ``"trap"``: the pad mask passed as ``sample_weight`` with the default
  reduction, which divides by every step (``mask_as_sample_weight_crossentropy``);
- ``"unmasked"``: the per-sequence mean with ``pad_id=None``, padding counted
  as tokens to predict (there is none when the pad id is not a class).

Beside them the usual metrics (perplexity, masked accuracy) and the
special-token MAE against Keras' plain ``mean_absolute_error``; and every
loss with its gradient norm over the padding share or over the end-token
weight (``sweep``). ``train_data`` states what the Train panel's data look
like (its padding share, its balanced end weight).

Every gradient drawn is that of the number Keras trains on: the per-sequence
losses are averaged over the batch by ``keras.ops.mean``, as the reduction
does. All four losses and their gradients go through one compiled graph
(``tf.function(autograph=False)``) fed with tensors, the pad id and the class
weights included, so a slider move never retraces it; batches are stacked
``[n, sequences, steps]`` so a sweep is one call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import keras
import numpy as np

from lossviz import registry, sequence
from lossviz._common import check_choice, check_number
from lossviz._tf import tf
from lossviz.explore._base import RunSpec, TrainSpec, grad_norms

FORMULA = sequence.FORMULA
PARAMS = {
    "pad_id": registry.get("masked_sparse_categorical_crossentropy").param("pad_id")
}

NUM_SEQUENCES, MAX_LEN, NUM_CLASSES = 6, 10, 8
START_ID, END_ID = 1, 2
BY_HAND, FROM_DATA = "by hand", "from data"
END_MODES = (BY_HAND, FROM_DATA)
LOSSES = ("ours", "token", "trap", "unmasked")
PADDING, END_WEIGHT = "padding share", "end-token weight"
SWEEPS = (PADDING, END_WEIGHT)
PADDING_GRID = np.linspace(0.0, 1.0, 21)  # every step of the padding control
# The end-token weight grid runs from 0 to this, or to the weight in use
# rounded up where that is larger (a weight from the data may be).
WEIGHT_GRID_END, WEIGHT_GRID_POINTS = 5.0, 26

# What the page's "Use it in your model" shows the source of.
SOURCES = (
    sequence.masked_sparse_categorical_crossentropy,
    sequence.MaskedSparseCategoricalCrossentropy,
    sequence.end_token_class_weights,
)

TRAINING = TrainSpec(
    task="sequence",
    metrics={
        "loss": "Training loss",
        "masked_accuracy": "Held-out accuracy on real steps",
        "end_share": "Real steps predicted </s>",
        "pad_share": "Real steps predicted <pad>",
    },
    epochs=5,
)


# ------------------------------------------------------------ example data


def example_batch(
    num_sequences=6,
    max_len=10,
    num_classes=8,
    *,
    mask_ratio=0.3,
    pad_id=0,
    start_id=1,
    end_id=2,
    end_bias=2.5,
    signal=1.5,
    seed=0,
):
    """A seeded batch of padded sequences and logits leaning toward the end token.

    Each row is ``[start, content..., end, pad, ...]``. The number of padded
    positions is ``round(mask_ratio * num_sequences * max_len)``, spread over
    rows at seed-dependent speeds so rows have different lengths; the padded
    set only grows with ``mask_ratio`` (the same seed gives nested batches, so
    sweeps over the ratio are smooth). A row of length 1 is ``[end]``.

    The logits are those of a model that "predicts mostly the end token":
    ``N(0, 1)`` noise, ``+ signal`` on the true label, ``+ end_bias`` on the end
    token everywhere. Under padding the model has learnt the pad class (``+ 4``
    on it, when ``pad_id`` is a class), as real models do, which makes the
    unmasked loss look better than it is.

    Args:
      num_sequences: ``B >= 1``.
      max_len: ``T >= 1``.
      num_classes: ``C``; at least one class must be left for content tokens.
      mask_ratio: share of padded positions, in [0, 1].
      pad_id: padding label ``<= C - 1`` (negative: a sentinel, not a class).
      start_id, end_id: special token classes in ``[0, C - 1]``, distinct from
        each other and from ``pad_id``.
      end_bias: logit added to the end token everywhere, in [0, 50].
      signal: logit added to the true label, in [0, 50].
      seed: integer seed.

    Returns:
      ``(y_true, logits)``: numpy int32 ``[B, T]`` and float32 ``[B, T, C]``.
    """
    check_number("num_sequences", num_sequences, low=1, integer=True)
    check_number("max_len", max_len, low=1, integer=True)
    check_number("num_classes", num_classes, low=1, integer=True)
    check_number("mask_ratio", mask_ratio, low=0.0, high=1.0)
    high = int(num_classes) - 1
    check_number("pad_id", pad_id, high=high, integer=True)
    check_number("start_id", start_id, low=0, high=high, integer=True)
    check_number("end_id", end_id, low=0, high=high, integer=True)
    check_number("end_bias", end_bias, low=0.0, high=50.0)
    check_number("signal", signal, low=0.0, high=50.0)
    check_number("seed", seed, low=0, integer=True)
    if len({int(pad_id), int(start_id), int(end_id)}) != 3:
        raise ValueError(
            "`pad_id`, `start_id` and `end_id` must be three different ids, got "
            f"{pad_id}, {start_id}, {end_id}."
        )
    content = [c for c in range(num_classes) if c not in (pad_id, start_id, end_id)]
    if not content:
        raise ValueError(
            f"`num_classes` must leave a content class besides the special ids, "
            f"got {num_classes}."
        )
    b, t, c = int(num_sequences), int(max_len), int(num_classes)
    rng = np.random.default_rng(int(seed))
    speeds = rng.uniform(0.5, 1.5, size=b)
    tokens = rng.choice(content, size=(b, t))
    noise = rng.standard_normal((b, t, c))

    # Position k from the end of row i is padded in the order of (k + 1) * speed_i:
    # taking the smallest keys pads each row from its end, nested in mask_ratio.
    keys = (np.arange(t)[None, :] + 1.0) * speeds[:, None]
    num_pad = int(round(float(mask_ratio) * b * t))
    pad_from_end = np.zeros((b, t), dtype=bool)
    chosen = np.argsort(keys, axis=None, kind="stable")[:num_pad]
    pad_from_end.flat[chosen] = True
    lengths = t - pad_from_end.sum(axis=1)

    y_true = np.full((b, t), pad_id, dtype=np.int32)
    for row, length in enumerate(lengths):
        if length >= 1:
            y_true[row, :length] = tokens[row, :length]
            y_true[row, 0] = start_id if length >= 2 else end_id
            y_true[row, length - 1] = end_id

    logits = noise
    logits[..., end_id] += end_bias
    is_pad = y_true == pad_id
    rows, cols = np.nonzero(~is_pad)
    logits[rows, cols, y_true[rows, cols]] += signal
    if pad_id >= 0:
        logits[..., pad_id] += np.where(is_pad, 4.0, 0.0)
    return y_true, logits.astype(np.float32)


def single_class_weights(num_classes, class_id, weight):
    """A weight vector of ones with ``weight`` at ``class_id``.

    Args:
      num_classes: ``C >= 1``.
      class_id: in ``[0, C - 1]``.
      weight: non-negative finite number.

    Returns:
      numpy float64 vector ``[num_classes]``.
    """
    check_number("num_classes", num_classes, low=1, integer=True)
    check_number("class_id", class_id, low=0, high=num_classes - 1, integer=True)
    check_number("weight", weight, low=0.0, high=float("inf"), high_open=True)
    weights = np.ones(int(num_classes), dtype=np.float64)
    weights[int(class_id)] = float(weight)
    return weights


@functools.lru_cache(maxsize=256)
def _batch(mask_ratio: float, pad_id: int, end_bias: float, seed: int):
    """The page's batch, read-only (shared by every caller)."""
    y_true, logits = example_batch(
        NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, mask_ratio=mask_ratio, pad_id=pad_id,
        start_id=START_ID, end_id=END_ID, end_bias=end_bias, seed=seed,
    )  # fmt: skip
    y_true.setflags(write=False)
    logits.setflags(write=False)
    return y_true, logits


# ------------------------------------------------------------ settings


@dataclass(frozen=True)
class Setting:
    """The page's controls that the numbers depend on.

    ``end_weight`` is the end token's class weight set by hand; with
    ``end_mode == FROM_DATA`` the weight is ``end_token_class_weights`` of
    the batch instead, and ``end_weight`` is not read.
    """

    mask_ratio: float = 0.3
    pad_id: int = 0
    end_mode: str = BY_HAND
    end_weight: float = 1.0
    end_bias: float = 2.5

    def __post_init__(self):
        check_number("mask_ratio", self.mask_ratio, low=0.0, high=1.0)
        check_number("pad_id", self.pad_id, high=NUM_CLASSES - 1, integer=True)
        if self.pad_id in (START_ID, END_ID):
            raise ValueError(
                f"`pad_id` must differ from the start id {START_ID} and the end "
                f"id {END_ID}, got {self.pad_id}."
            )
        check_choice("end_mode", self.end_mode, END_MODES)
        check_number(
            "end_weight", self.end_weight, low=0.0, high=math.inf, high_open=True
        )
        check_number("end_bias", self.end_bias, low=0.0, high=50.0)

    @property
    def losses(self) -> tuple[str, ...]:
        """The losses there are: no unmasked loss where the pad id is not a
        class (nothing to predict under padding)."""
        return LOSSES if self.pad_id >= 0 else LOSSES[:-1]

    def for_sweep(self, over: str) -> Setting:
        """This setting with the fields the sweep ``over`` does not read set
        to fixed values, so one (cached) sweep serves every value of them: a
        move along the swept axis reuses the curves.

        The padding sweep reads neither the padding share nor, with the
        weight from the data, the hand weight; the weight sweep reads the
        hand weight only where it stretches the grid past
        ``WEIGHT_GRID_END``.
        """
        check_choice("over", over, SWEEPS)
        fixed = {}
        if over == PADDING:
            fixed["mask_ratio"] = 0.0
        if self.end_mode == FROM_DATA or (
            over == END_WEIGHT and self.end_weight <= WEIGHT_GRID_END
        ):
            fixed["end_weight"] = 0.0
        return dataclasses.replace(self, **fixed)


def class_weights(setting: Setting, y_true) -> np.ndarray:
    """The class weights in use on ``y_true``: ones, with the end token's
    weight set by hand or balanced by ``end_token_class_weights``."""
    if setting.end_mode == FROM_DATA:
        return sequence.end_token_class_weights(
            y_true, NUM_CLASSES, end_id=END_ID, pad_id=setting.pad_id
        )
    return single_class_weights(NUM_CLASSES, END_ID, setting.end_weight)


# ------------------------------------------------------------ the graphs

_STACKED = (
    tf.TensorSpec([None, None, None], tf.int32),  # y_true [n, B, T]
    tf.TensorSpec([None, None, None, NUM_CLASSES], tf.float32),  # logits
    tf.TensorSpec([], tf.int32),  # pad_id
    tf.TensorSpec([None, NUM_CLASSES], tf.float32),  # class weights, one per batch
)


@functools.lru_cache(maxsize=None)
def _loss_graph(with_unmasked: bool):
    """Every loss of ``n`` stacked batches, its gradient, and the per-sequence
    values: ``({loss: [n]}, {loss: [n, B, T, C]}, {"masked"/"unmasked": [n,
    B]})``. Batches are independent, so the gradient of each loss's sum over
    the stack is each batch's own gradient."""

    def losses(y_true, logits, pad_id, weights):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(logits)
            masked = sequence.masked_sparse_categorical_crossentropy(
                y_true, logits, pad_id=pad_id, class_weights=weights
            )
            values = {
                # Keras' "sum_over_batch_size" reduction of the Keras class.
                "ours": keras.ops.mean(masked, axis=-1),
                "token": sequence.token_mean_crossentropy(
                    y_true, logits, pad_id=pad_id, class_weights=weights
                ),
                "trap": sequence.mask_as_sample_weight_crossentropy(
                    y_true, logits, pad_id=pad_id, class_weights=weights
                ),
            }
            rows = {"masked": masked}
            if with_unmasked:
                rows["unmasked"] = sequence.masked_sparse_categorical_crossentropy(
                    y_true, logits, pad_id=None, class_weights=weights
                )
                values["unmasked"] = keras.ops.mean(rows["unmasked"], axis=-1)
        grads = {key: tape.gradient(value, logits) for key, value in values.items()}
        del tape
        return values, grads, rows

    return tf.function(losses, input_signature=_STACKED, autograph=False)


@functools.lru_cache(maxsize=1)
def _metrics_graph():
    """Perplexity, masked accuracy and the two MAEs of one batch."""

    def metrics(y_true, logits, pad_id):
        one_hot = keras.ops.one_hot(y_true, NUM_CLASSES)  # a -1 pad is all zeros
        probs = keras.ops.softmax(logits)
        special = sequence.special_token_mae(
            one_hot, probs, start_id=START_ID, end_id=END_ID
        )
        return {
            "perplexity": sequence.perplexity(y_true, logits, pad_id=pad_id),
            "accuracy": sequence.masked_accuracy(y_true, logits, pad_id=pad_id),
            "special_mae": keras.ops.mean(special),
            "keras_mae": keras.ops.mean(
                keras.losses.mean_absolute_error(one_hot, probs)
            ),
        }

    signature = (
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None, NUM_CLASSES], tf.float32),
        tf.TensorSpec([], tf.int32),
    )
    return tf.function(metrics, input_signature=signature, autograph=False)


def _losses(ys, zs, pad_id, weights):
    """The loss graph on stacked numpy batches, numpy out."""
    graph = _loss_graph(pad_id >= 0)
    values, grads, rows = graph(
        ys, zs, tf.constant(pad_id, tf.int32), np.asarray(weights, np.float32)
    )
    return (
        {k: v.numpy() for k, v in values.items()},
        {k: g.numpy() for k, g in grads.items()},
        {k: r.numpy() for k, r in rows.items()},
    )


# ------------------------------------------------------------ at a setting


@dataclass(frozen=True)
class Point:
    """Everything the page shows at one setting.

    ``y_true [B, T]`` is the batch's targets, with ``lengths [B]`` non-pad
    tokens per sequence (``all_padding`` when there is none at all), the
    class weights ``[C]`` in use and the end token's among them.
    ``values[loss]`` is the batch loss Keras reports, ``vs_ours[loss]`` its
    difference from ours, ``grads[loss]`` its gradient ``[B, T, C]`` with
    respect to the logits and ``step_grad_norms[loss]`` that gradient's norm
    at each step ``[B, T]``, for each of ``losses``. ``per_sequence`` holds
    the per-sequence losses ``[B]`` with the mask (``"masked"``) and, when
    there is one, without (``"unmasked"``).
    """

    y_true: np.ndarray
    pad_id: int
    start_id: int
    end_id: int
    mask_ratio: float
    lengths: np.ndarray
    all_padding: bool
    class_weights: np.ndarray
    end_weight: float
    losses: tuple
    values: dict
    vs_ours: dict
    grads: dict
    step_grad_norms: dict
    per_sequence: dict
    perplexity: float
    accuracy: float
    special_mae: float
    keras_mae: float
    special_mae_vs_keras: float


def at_setting(setting: Setting, seed: int = 0) -> Point:
    """The batch at ``setting`` and every loss, gradient and metric on it."""
    y_true, logits = _batch(setting.mask_ratio, setting.pad_id, setting.end_bias, seed)
    weights = class_weights(setting, y_true)
    values, grads, rows = _losses(
        y_true[None], logits[None], setting.pad_id, weights[None]
    )
    values = {k: float(v[0]) for k, v in values.items()}
    grads = {k: g[0] for k, g in grads.items()}
    metrics = {
        k: float(v)
        for k, v in _metrics_graph()(
            y_true, logits, tf.constant(setting.pad_id, tf.int32)
        ).items()
    }
    lengths = np.sum(y_true != setting.pad_id, axis=1)
    return Point(
        y_true=y_true,
        pad_id=setting.pad_id,
        start_id=START_ID,
        end_id=END_ID,
        mask_ratio=setting.mask_ratio,
        lengths=lengths,
        all_padding=not lengths.any(),
        class_weights=weights,
        end_weight=float(weights[END_ID]),
        losses=setting.losses,
        values=values,
        vs_ours={k: v - values["ours"] for k, v in values.items()},
        grads=grads,
        step_grad_norms={k: grad_norms(g, axis=-1) for k, g in grads.items()},
        per_sequence={k: r[0] for k, r in rows.items()},
        special_mae_vs_keras=metrics["special_mae"] - metrics["keras_mae"],
        **metrics,
    )


# ------------------------------------------------------------ sweeps


@dataclass(frozen=True)
class Sweep:
    """Every loss (``values[loss]``, ``[len(grid)]``) and its gradient norm
    (``grad_norms[loss]``) at each point of ``grid``, the padding share or the
    end-token weight (``over``)."""

    over: str
    grid: np.ndarray
    losses: tuple
    values: dict
    grad_norms: dict


def weight_grid(end_weight: float) -> np.ndarray:
    """The end-token weights swept: from 0 to ``WEIGHT_GRID_END``, or to the
    weight in use rounded up if that is larger."""
    end = max(WEIGHT_GRID_END, float(math.ceil(end_weight)))
    return np.linspace(0.0, end, WEIGHT_GRID_POINTS)


def sweep(setting: Setting, over: str, seed: int = 0) -> Sweep:
    """Every loss and gradient norm over the padding share (``PADDING_GRID``,
    the same seed at every point: rows are cut shorter, the noise stays) or
    over the end-token weight (``weight_grid``, on the setting's batch).
    Reads only what ``setting.for_sweep(over)`` keeps."""
    check_choice("over", over, SWEEPS)
    if over == PADDING:
        grid = PADDING_GRID
        ys, zs = zip(
            *(_batch(float(r), setting.pad_id, setting.end_bias, seed) for r in grid),
            strict=True,
        )
        weights = [class_weights(setting, y) for y in ys]
    else:
        y_true, logits = _batch(
            setting.mask_ratio, setting.pad_id, setting.end_bias, seed
        )
        grid = weight_grid(class_weights(setting, y_true)[END_ID])
        weights = [single_class_weights(NUM_CLASSES, END_ID, w) for w in grid]
        ys, zs = [y_true] * len(grid), [logits] * len(grid)
    values, grads, _ = _losses(np.stack(ys), np.stack(zs), setting.pad_id, weights)
    return Sweep(
        over=over,
        grid=grid,
        losses=setting.losses,
        values=values,
        grad_norms={k: grad_norms(g, axis=(1, 2, 3)) for k, g in grads.items()},
    )


# ------------------------------------------------------------ training


def train_runs(setting: Setting) -> tuple[RunSpec, ...]:
    """The three runs of the Train panel; they differ only in the loss (the
    task's data are fixed, not the page's batch)."""
    return (
        RunSpec("unmasked", "unmasked"),
        RunSpec("masked", "masked"),
        RunSpec("masked + end weight", "masked_end_weight"),
    )


@dataclass(frozen=True)
class TrainData:
    """What the Train panel's copy task trains on, at its default sizes:
    sequences of 1 to ``max_len`` of ``num_tokens`` content tokens padded to
    ``padded_len`` steps; the share of the target steps that are padding, the
    end token's balanced weight (``end_token_class_weights``, the
    ``masked_end_weight`` run's), and whether the end token is the most
    frequent real token."""

    max_len: int
    padded_len: int
    num_tokens: int
    padding_share: float
    end_weight: float
    end_most_frequent: bool


def train_data(seed: int = 0) -> TrainData:
    """The training targets of a run with ``seed``, described."""
    from lossviz.training import core
    from lossviz.training import sequence as task

    params = task.check_params({})
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    _, targets = task.copy_dataset(core.rng(seed, 1), params["num_train"], **sizes)
    classes = task.num_classes(params["num_tokens"])
    weights = sequence.end_token_class_weights(
        targets, classes, end_id=task.END_ID, pad_id=task.PAD_ID
    )
    counts = np.bincount(targets[targets != task.PAD_ID], minlength=classes)
    return TrainData(
        **sizes,
        padding_share=float(np.mean(targets == task.PAD_ID)),
        end_weight=float(weights[task.END_ID]),
        end_most_frequent=bool(np.argmax(counts) == task.END_ID),
    )
