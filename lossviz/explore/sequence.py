"""What the "Sequence masking and class weights" page computes.

A seeded batch of 6 padded target sequences of 10 steps over 8 classes and
the logits of a model that leans toward the end token (``example_batch``);
the pad id may be the end token's own id (the mistake of padding by
repeating the end token). At a setting (padding share, pad id, mask on or
off, class weights by hand or from the data, the model's lean), the ways to
average the cross-entropy and their gradients with respect to the logits
(``at_setting``):

- ``"ours"``: the per-sequence mean (``masked_sparse_categorical_crossentropy``
  with the pad id, or ``pad_id=None`` with the mask off) averaged over the
  sequences, as Keras' default ``"sum_over_batch_size"`` reduction averages
  ``MaskedSparseCategoricalCrossentropy``'s values;
- ``"token"``: Keras' own masked reduction, the mean over every counted token
  of the batch (``token_mean_crossentropy``);
- ``"trap"``: the pad mask passed as ``sample_weight`` with the default
  reduction, which divides by every step (``mask_as_sample_weight_crossentropy``);
  with the mask off the three coincide;
- ``"unmasked"`` (mask on) or ``"masked"`` (mask off): the per-sequence mean
  with the other choice of the mask, for comparison (there is no unmasked
  loss when the pad id is not a class).

Beside them the usual metrics (perplexity, accuracy over the steps the loss
counts), the special-token MAE against Keras' plain ``mean_absolute_error``,
what the loss counts (padding's share of the gradient, the real end tokens
left, the end token's share of the counted steps), the class weights in use
with the counts they come from (``class_weights``: by hand, the end token
balanced by ``end_token_class_weights``, or every class by inverse frequency,
``inverse_frequency_class_weights``); every loss with its gradient norm over
the padding share or over the end-token weight (``sweep``). ``train_data``
states what the Train panel's data look like, ``train_runs`` what it runs
(following the mask, the pad id and the weights), and ``check_lesson`` the
outcome each lesson states.

Every gradient drawn is that of the number Keras trains on: the per-sequence
losses are averaged over the batch by ``keras.ops.mean``, as the reduction
does. All the losses and their gradients go through one compiled graph per
choice of the mask (``tf.function(autograph=False)``) fed with tensors, the
pad id and the class weights included, so a slider move never retraces it;
batches are stacked ``[n, sequences, steps]`` so a sweep is one call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

# TensorFlow first, through lossviz's quiet import. The app imports lossviz
# in a background thread while a page may import this module: Python does not
# wait for a half-imported parent package, and a bare `import keras` here then
# races that thread's TensorFlow import into a _DeadlockError; importing
# lossviz._tf first waits on its module lock until TensorFlow is in.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz import registry, sequence
from lossviz._common import check_choice, check_number
from lossviz.explore._base import Claim, RunSpec, TrainSpec, grad_norms

FORMULA = sequence.FORMULA
PARAMS = {
    "pad_id": registry.get("masked_sparse_categorical_crossentropy").param("pad_id")
}

NUM_SEQUENCES, MAX_LEN, NUM_CLASSES = 6, 10, 8
START_ID, END_ID = 1, 2
MASKED, UNMASKED = "masked", "unmasked"
MASKS = (MASKED, UNMASKED)
BY_HAND, END_FROM_DATA, ALL_FROM_DATA = (
    "by hand",
    "end token from data",
    "every class from data",
)
WEIGHT_MODES = (BY_HAND, END_FROM_DATA, ALL_FROM_DATA)
ONES = (1.0,) * NUM_CLASSES
# "ours", "token" and "trap" follow the mask; the last two are the
# per-sequence mean with the other choice of the mask.
LOSSES = ("ours", "token", "trap", "unmasked", "masked")
METRICS = ("perplexity", "accuracy", "special_mae", "keras_mae")
PADDING, END_WEIGHT = "padding share", "end-token weight"
SWEEPS = (PADDING, END_WEIGHT)
PADDING_GRID = np.linspace(0.0, 1.0, 21)  # every step of the padding control
# The end-token weight grid runs from 0 to this, or to the weight in use
# rounded up where that is larger (a weight from the data may be).
WEIGHT_GRID_END, WEIGHT_GRID_POINTS = 5.0, 26

# The inverse-frequency ("balanced") weights of every class, as the page
# renders them: N counted tokens, K classes among them, n_c of class c.
BALANCED_FORMULA = r"w_c = \frac{N}{K\, n_c}\ \ (n_c > 0),\qquad w_c = 1\ \ (n_c = 0)"
END_WEIGHT_FORMULA = sequence.FORMULAS["end_token_weight"]

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
        "stop_share": "Content steps answered </s> or <pad>",
        "end_step_share": "Sequence ends answered </s>",
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
    return_lengths=False,
):
    """A seeded batch of padded sequences and logits leaning toward the end token.

    Each row is ``[start, content..., end, pad, ...]``. The number of padded
    positions is ``round(mask_ratio * num_sequences * max_len)``, spread over
    rows at seed-dependent speeds so rows have different lengths; the padded
    set only grows with ``mask_ratio`` (the same seed gives nested batches, so
    sweeps over the ratio are smooth). A row of length 1 is ``[end]``.
    ``pad_id == end_id`` pads by repeating the end token: the rows have the
    same lengths, with their start and end tokens where they were, and their
    padding is end tokens (content tokens are the classes that are not
    special, so their ids change with the pad id).

    The logits are those of a model that "predicts mostly the end token":
    ``N(0, 1)`` noise, ``+ signal`` on the true label at every real step,
    ``+ end_bias`` on the end token everywhere. Under padding the model has
    learnt the pad class (``+ 4`` on it, when ``pad_id`` is a class), as real
    models do, which makes the unmasked loss look better than it is.

    Args:
      num_sequences: ``B >= 1``.
      max_len: ``T >= 1``.
      num_classes: ``C``; at least one class must be left for content tokens.
      mask_ratio: share of padded positions, in [0, 1].
      pad_id: padding label ``<= C - 1`` (negative: a sentinel, not a class);
        different from ``start_id``, and may equal ``end_id``.
      start_id, end_id: special token classes in ``[0, C - 1]``, distinct.
      end_bias: logit added to the end token everywhere, in [0, 50].
      signal: logit added to the true label, in [0, 50].
      seed: integer seed.
      return_lengths: also return each row's length (its tokens before the
        padding), which the targets alone do not tell apart when the padding
        is the end token.

    Returns:
      ``(y_true, logits)``: numpy int32 ``[B, T]`` and float32 ``[B, T, C]``;
      with ``return_lengths``, ``(y_true, logits, lengths)``, ``lengths`` int
      ``[B]``.
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
    if int(start_id) in (int(pad_id), int(end_id)):
        raise ValueError(
            "`start_id` must differ from `pad_id` and `end_id` (the pad id may be "
            f"the end id), got pad_id={pad_id}, start_id={start_id}, "
            f"end_id={end_id}."
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
    real = np.arange(t)[None, :] < lengths[:, None]
    rows, cols = np.nonzero(real)
    logits[rows, cols, y_true[rows, cols]] += signal
    if pad_id >= 0:
        logits[..., pad_id] += np.where(real, 0.0, 4.0)
    if return_lengths:
        return y_true, logits.astype(np.float32), lengths.astype(np.int64)
    return y_true, logits.astype(np.float32)


@functools.lru_cache(maxsize=256)
def _batch(mask_ratio: float, pad_id: int, end_bias: float, seed: int):
    """The page's batch and its lengths, read-only (shared by every caller)."""
    arrays = example_batch(
        NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, mask_ratio=mask_ratio, pad_id=pad_id,
        start_id=START_ID, end_id=END_ID, end_bias=end_bias, seed=seed,
        return_lengths=True,
    )  # fmt: skip
    for array in arrays:
        array.setflags(write=False)
    return arrays


# ------------------------------------------------------------ class weights


def parse_weights(weights, num_classes: int = NUM_CLASSES) -> tuple[float, ...]:
    """Class weights as a tuple of floats, from a sequence or from the text
    the page's URL holds (``"1,1,0.5,1,1,1,1,1"``).

    Raises:
      ValueError: naming ``hand_weights``: not ``num_classes`` numbers, or a
        weight that is negative or not finite.
    """
    if isinstance(weights, str):
        try:
            weights = [float(part) for part in weights.split(",")]
        except ValueError:
            raise ValueError(
                f"`hand_weights` must be comma-separated numbers, got {weights!r}."
            ) from None
    values = tuple(float(w) for w in weights)
    if len(values) != num_classes or not all(
        math.isfinite(w) and w >= 0 for w in values
    ):
        raise ValueError(
            f"`hand_weights` must be {num_classes} finite numbers >= 0, one per "
            f"class, got {list(values)}."
        )
    return values


def weights_text(weights) -> str:
    """Class weights as the page's URL writes them: 4 significant digits,
    comma-separated (``parse_weights`` reads them back)."""
    return ",".join(f"{float(w):.4g}" for w in weights)


def inverse_frequency_class_weights(labels, num_classes: int) -> np.ndarray:
    """Every class weighted by its inverse frequency, scikit-learn's "balanced".

    ``w_c = N / (K * n_c)`` for every class that occurs, where ``N`` is the
    number of labels, ``K`` the number of classes that occur and ``n_c`` the
    count of class ``c``; ``w_c = 1`` for a class that never occurs. The
    weighted counts ``w_c * n_c`` are then equal (``N / K``) and sum to ``N``.

    Args:
      labels: int class ids in ``[0, num_classes - 1]``, any shape (the
        labels the loss counts: padding left out when it is masked).
      num_classes: ``C >= 1``.

    Returns:
      numpy float64 vector ``[num_classes]``.
    """
    check_number("num_classes", num_classes, low=1, integer=True)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    counts = np.bincount(labels, minlength=int(num_classes)).astype(np.float64)
    weights = np.ones(int(num_classes), dtype=np.float64)
    present = counts > 0
    if present.any():
        weights[present] = labels.size / (present.sum() * counts[present])
    return weights


# ------------------------------------------------------------ settings


@dataclass(frozen=True)
class Setting:
    """The page's controls that the numbers depend on.

    ``pad_id`` may be the end id (padding by repeating the end token). With
    ``mask == UNMASKED`` every step counts, padding included; a pad id that is
    not a class (-1) is always masked (``masked``). ``hand_weights``: one
    weight per class (a sequence, or the comma-separated text of the page's
    URL), read only with ``weight_mode == BY_HAND``; the other modes compute
    the weights from the batch (``class_weights``).
    """

    mask_ratio: float = 0.3
    pad_id: int = 0
    mask: str = MASKED
    weight_mode: str = BY_HAND
    hand_weights: tuple = ONES
    end_bias: float = 2.5

    def __post_init__(self):
        check_number("mask_ratio", self.mask_ratio, low=0.0, high=1.0)
        check_number("pad_id", self.pad_id, high=NUM_CLASSES - 1, integer=True)
        if self.pad_id == START_ID:
            raise ValueError(
                f"`pad_id` must differ from the start id {START_ID}, got {self.pad_id}."
            )
        check_choice("mask", self.mask, MASKS)
        check_choice("weight_mode", self.weight_mode, WEIGHT_MODES)
        object.__setattr__(self, "hand_weights", parse_weights(self.hand_weights))
        check_number("end_bias", self.end_bias, low=0.0, high=50.0)

    @property
    def masked(self) -> bool:
        """Whether the loss masks padding: a pad id that is not a class is
        never predicted, so it is masked whatever ``mask`` says."""
        return self.mask == MASKED or self.pad_id < 0

    @property
    def pad_is_end(self) -> bool:
        return self.pad_id == END_ID

    @property
    def loss_pad_id(self) -> int | None:
        """The ``pad_id`` the loss is given: None (mask nothing) when unmasked."""
        return self.pad_id if self.masked else None

    @property
    def losses(self) -> tuple[str, ...]:
        """The losses there are: the three means with the mask as set, and the
        per-sequence mean with the other choice of the mask (none unmasked
        where the pad id is not a class)."""
        if not self.masked:
            return ("ours", "token", "trap", "masked")
        return LOSSES[:4] if self.pad_id >= 0 else LOSSES[:3]

    def for_sweep(self, over: str) -> Setting:
        """This setting with the fields the sweep ``over`` does not read set
        to fixed values, so one (cached) sweep serves every value of them: a
        move along the swept axis reuses the curves.

        The padding sweep reads neither the padding share nor, with weights
        from the data, the hand weights; the weight sweep reads the end
        token's hand weight only where it stretches the grid past
        ``WEIGHT_GRID_END``.
        """
        check_choice("over", over, SWEEPS)
        fixed = {}
        if over == PADDING:
            fixed["mask_ratio"] = 0.0
        if self.weight_mode != BY_HAND:
            fixed["hand_weights"] = ONES
        elif over == END_WEIGHT and self.hand_weights[END_ID] <= WEIGHT_GRID_END:
            weights = list(self.hand_weights)
            weights[END_ID] = 0.0
            fixed["hand_weights"] = tuple(weights)
        return dataclasses.replace(self, **fixed)


def setting_of(values: Mapping) -> Setting:
    """The ``Setting`` of the page's control values by name (extra names,
    such as the sweep's axis, are left out)."""
    names = {f.name for f in dataclasses.fields(Setting)}
    return Setting(**{k: v for k, v in values.items() if k in names})


def counted_steps(setting: Setting, y_true) -> np.ndarray:
    """Bool, the shape of ``y_true``: the steps the loss counts (every step
    without the mask, the non-pad steps with it)."""
    y_true = np.asarray(y_true)
    if setting.masked:
        return y_true != setting.pad_id
    return np.ones(y_true.shape, dtype=bool)


def class_weights(setting: Setting, y_true) -> np.ndarray:
    """The class weights in use on ``y_true``, float64 ``[C]``.

    By hand: ``setting.hand_weights``. From the data, on the labels the loss
    counts (``counted_steps``: with the mask off, padding is a class like the
    others): the end token's weight by ``end_token_class_weights`` (every
    other class 1; 1 where no end token is counted, as when the mask removes
    them all), or every class by ``inverse_frequency_class_weights``.
    """
    if setting.weight_mode == BY_HAND:
        return np.asarray(setting.hand_weights, dtype=np.float64)
    labels = np.asarray(y_true)[counted_steps(setting, y_true)]
    if setting.weight_mode == END_FROM_DATA:
        return sequence.end_token_class_weights(labels, NUM_CLASSES, end_id=END_ID)
    return inverse_frequency_class_weights(labels, NUM_CLASSES)


# ------------------------------------------------------------ the graphs

_STACKED = (
    tf.TensorSpec([None, None, None], tf.int32),  # y_true [n, B, T]
    tf.TensorSpec([None, None, None, NUM_CLASSES], tf.float32),  # logits
    tf.TensorSpec([], tf.int32),  # pad_id
    tf.TensorSpec([None, NUM_CLASSES], tf.float32),  # class weights, one per batch
)


@functools.lru_cache(maxsize=None)
def _loss_graph(masked: bool, pad_is_class: bool):
    """Every loss of ``n`` stacked batches, its gradient, and the per-sequence
    values: ``({loss: [n]}, {loss: [n, B, T, C]}, {"masked"/"unmasked": [n,
    B]})``. Batches are independent, so the gradient of each loss's sum over
    the stack is each batch's own gradient. One graph per choice of the mask
    (``masked``) and per kind of pad id (``pad_is_class``: only then is there
    an unmasked loss)."""

    def losses(y_true, logits, pad_id, weights):
        loss_pad = pad_id if masked else None
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(logits)
            rows = {
                "masked": sequence.masked_sparse_categorical_crossentropy(
                    y_true, logits, pad_id=pad_id, class_weights=weights
                )
            }
            if pad_is_class:
                rows["unmasked"] = sequence.masked_sparse_categorical_crossentropy(
                    y_true, logits, pad_id=None, class_weights=weights
                )
            in_use, other = ("masked", "unmasked") if masked else ("unmasked", "masked")
            values = {
                # Keras' "sum_over_batch_size" reduction of the Keras class.
                "ours": keras.ops.mean(rows[in_use], axis=-1),
                "token": sequence.token_mean_crossentropy(
                    y_true, logits, pad_id=loss_pad, class_weights=weights
                ),
                "trap": sequence.mask_as_sample_weight_crossentropy(
                    y_true, logits, pad_id=loss_pad, class_weights=weights
                ),
            }
            if other in rows:
                values[other] = keras.ops.mean(rows[other], axis=-1)
        grads = {key: tape.gradient(value, logits) for key, value in values.items()}
        del tape
        return values, grads, rows

    return tf.function(losses, input_signature=_STACKED, autograph=False)


@functools.lru_cache(maxsize=None)
def _metrics_graph(masked: bool):
    """Perplexity, accuracy (over the steps the loss counts: the non-pad steps
    with the mask, every step without) and the two MAEs of each of ``n``
    stacked batches (``[n]`` each): the one-batch metrics mapped over the
    stack inside the graph, so a grid of batches is one call."""

    def one_batch(y_true, logits, pad_id):
        loss_pad = pad_id if masked else None
        one_hot = keras.ops.one_hot(y_true, NUM_CLASSES)  # a -1 pad is all zeros
        probs = keras.ops.softmax(logits)
        special = sequence.special_token_mae(
            one_hot, probs, start_id=START_ID, end_id=END_ID
        )
        return {
            "perplexity": sequence.perplexity(y_true, logits, pad_id=loss_pad),
            "accuracy": sequence.masked_accuracy(y_true, logits, pad_id=loss_pad),
            "special_mae": keras.ops.mean(special),
            "keras_mae": keras.ops.mean(
                keras.losses.mean_absolute_error(one_hot, probs)
            ),
        }

    def metrics(y_true, logits, pad_id):
        return tf.map_fn(
            lambda batch: one_batch(batch[0], batch[1], pad_id),
            (y_true, logits),
            fn_output_signature={key: tf.float32 for key in METRICS},
        )

    return tf.function(metrics, input_signature=_STACKED[:3], autograph=False)


def _metrics(setting: Setting, ys, zs) -> dict:
    """The metrics graph of ``setting``'s mask on stacked batches, numpy out."""
    graph = _metrics_graph(setting.masked)
    values = graph(ys, zs, tf.constant(setting.pad_id, tf.int32))
    return {key: v.numpy() for key, v in values.items()}


def _losses(setting: Setting, ys, zs, weights):
    """The loss graph of ``setting``'s mask on stacked numpy batches, numpy out."""
    graph = _loss_graph(setting.masked, setting.pad_id >= 0)
    values, grads, rows = graph(
        ys, zs, tf.constant(setting.pad_id, tf.int32), np.asarray(weights, np.float32)
    )
    return (
        {k: v.numpy() for k, v in values.items()},
        {k: g.numpy() for k, g in grads.items()},
        {k: r.numpy() for k, r in rows.items()},
    )


def padding_share(step_grad_norms, padding) -> float:
    """The share of a gradient's squared norm that lies on the padding steps:
    ``sum_pad ||g_t||^2 / sum_t ||g_t||^2`` (0 for a zero gradient)."""
    squares = np.square(np.asarray(step_grad_norms, dtype=np.float64))
    total = float(squares.sum())
    return float(squares[np.asarray(padding)].sum() / total) if total > 0 else 0.0


# ------------------------------------------------------------ at a setting


@dataclass(frozen=True)
class Point:
    """Everything the page shows at one setting.

    ``y_true [B, T]`` is the batch's targets, ``lengths [B]`` the tokens of
    each sequence before its padding (``real [B, T]`` those steps;
    ``all_padding`` when there is none at all) and ``counted [B, T]`` the
    steps the loss counts (``counted_steps``). ``class_counts [C]`` counts
    each class over the counted steps, the class weights ``[C]`` in use come
    from them (or from the hand), with the end token's among them.
    ``values[loss]`` is the batch loss Keras reports, ``vs_ours[loss]`` its
    difference from ours, ``grads[loss]`` its gradient ``[B, T, C]`` with
    respect to the logits, ``step_grad_norms[loss]`` that gradient's norm at
    each step ``[B, T]`` and ``padding_grad_share[loss]`` the share of its
    squared norm on the padding steps (``padding_share``), for each of
    ``losses``. ``per_sequence`` holds the per-sequence losses ``[B]`` with
    the mask (``"masked"``) and, when there is one, without
    (``"unmasked"``). ``end_tokens`` is the number of real end tokens (one
    per non-empty sequence), ``real_ends_counted`` how many of them the loss
    counts, and ``end_share_counted`` the end token's share of all the
    counted steps (padding included when the padding is the end token and
    the mask is off).
    """

    y_true: np.ndarray
    pad_id: int
    start_id: int
    end_id: int
    mask_ratio: float
    masked: bool
    pad_is_end: bool
    lengths: np.ndarray
    real: np.ndarray
    counted: np.ndarray
    all_padding: bool
    weight_mode: str
    class_counts: np.ndarray
    class_weights: np.ndarray
    end_weight: float
    losses: tuple
    values: dict
    vs_ours: dict
    grads: dict
    step_grad_norms: dict
    padding_grad_share: dict
    per_sequence: dict
    end_tokens: int
    real_ends_counted: int
    end_share_counted: float
    perplexity: float
    accuracy: float
    special_mae: float
    keras_mae: float
    special_mae_vs_keras: float


def _point(setting, mask_ratio, y_true, lengths, weights, values, grads, rows, metrics):
    """The ``Point`` of one batch from its graphs' numbers (one entry of a
    stack each): what ``at_setting`` and ``Grid.at`` both return."""
    values = {k: float(v) for k, v in values.items()}
    metrics = {k: float(v) for k, v in metrics.items()}
    real = np.arange(MAX_LEN)[None, :] < lengths[:, None]
    counted = counted_steps(setting, y_true)
    step_norms = {k: grad_norms(g, axis=-1) for k, g in grads.items()}
    is_end = y_true == END_ID
    return Point(
        y_true=y_true,
        pad_id=setting.pad_id,
        start_id=START_ID,
        end_id=END_ID,
        mask_ratio=float(mask_ratio),
        masked=setting.masked,
        pad_is_end=setting.pad_is_end,
        lengths=lengths,
        real=real,
        counted=counted,
        all_padding=not lengths.any(),
        weight_mode=setting.weight_mode,
        class_counts=np.bincount(y_true[counted], minlength=NUM_CLASSES),
        class_weights=weights,
        end_weight=float(weights[END_ID]),
        losses=setting.losses,
        values=values,
        vs_ours={k: v - values["ours"] for k, v in values.items()},
        grads=grads,
        step_grad_norms=step_norms,
        padding_grad_share={k: padding_share(n, ~real) for k, n in step_norms.items()},
        per_sequence=rows,
        end_tokens=int(np.sum(lengths > 0)),
        real_ends_counted=int(np.sum(is_end & real & counted)),
        end_share_counted=float(np.sum(is_end & counted) / max(counted.sum(), 1)),
        special_mae_vs_keras=metrics["special_mae"] - metrics["keras_mae"],
        **metrics,
    )


def at_setting(setting: Setting, seed: int = 0) -> Point:
    """The batch at ``setting`` and every loss, gradient and metric on it."""
    y_true, logits, lengths = _batch(
        setting.mask_ratio, setting.pad_id, setting.end_bias, seed
    )
    weights = class_weights(setting, y_true)
    values, grads, rows = _losses(setting, y_true[None], logits[None], weights[None])
    metrics = _metrics(setting, y_true[None], logits[None])
    first = {}
    for name, arrays in (("values", values), ("grads", grads), ("rows", rows)):
        first[name] = {k: v[0] for k, v in arrays.items()}
    return _point(
        setting, setting.mask_ratio, y_true, lengths, weights,
        metrics={k: v[0] for k, v in metrics.items()}, **first,
    )  # fmt: skip


# ------------------------------------------------------------ over the padding grid


@dataclass(frozen=True)
class Grid:
    """Everything the page shows at every padding share of ``values``
    (``PADDING_GRID``, the padding control's every step), the other controls
    as in ``setting`` (its own padding share is not read).

    Stacked over the grid (first axis ``n``): the batches ``y_true [n, B, T]``
    and their ``lengths [n, B]``, the class weights in use ``[n, C]``, each
    loss's value ``loss_values[loss] [n]``, gradient ``grads[loss] [n, B, T,
    C]``, its norm at each step ``step_grad_norms[loss] [n, B, T]``, the share
    of its squared norm on the padding steps ``padding_grad_share[loss]
    [n]`` and that squared norm summed over the batch at each step, as a
    share of the whole, on the real steps and on the padding steps
    (``step_shares[loss] [n, 2, T]``: ``[:, 0]`` real, ``[:, 1]`` padding;
    the two sum to 1 over the steps, 0 for a zero gradient); the
    per-sequence losses ``rows[...] [n, B]`` and the metrics ``metrics[name]
    [n]``; the batch's start and end ids. ``at(value)`` is the ``Point``
    that ``at_setting`` gives there.
    """

    setting: Setting
    values: np.ndarray
    y_true: np.ndarray
    lengths: np.ndarray
    class_weights: np.ndarray
    losses: tuple
    loss_values: dict
    grads: dict
    step_grad_norms: dict
    padding_grad_share: dict
    step_shares: dict
    rows: dict
    metrics: dict
    start_id: int = START_ID
    end_id: int = END_ID

    def index(self, value: float) -> int:
        """The grid index of the padding share ``value`` (a step of the
        control, up to float rounding)."""
        i = int(np.argmin(np.abs(self.values - float(value))))
        if abs(self.values[i] - float(value)) > 1e-6:
            raise ValueError(
                f"`mask_ratio` must be a step of the grid {list(self.values)}, "
                f"got {value}."
            )
        return i

    def mean_key(self, masked: bool) -> str | None:
        """The key of the per-sequence mean with the mask (``masked``) or
        without: ``"ours"`` for the one the setting uses; None when there is
        no unmasked loss (a pad id that is not a class)."""
        if masked == self.setting.masked:
            return "ours"
        key = MASKED if masked else UNMASKED
        return key if key in self.losses else None

    def point(self, i: int) -> Point:
        """The ``Point`` at the grid's ``i``-th padding share."""
        return _point(
            self.setting,
            self.values[i],
            self.y_true[i],
            self.lengths[i],
            self.class_weights[i],
            values={k: v[i] for k, v in self.loss_values.items()},
            grads={k: g[i] for k, g in self.grads.items()},
            rows={k: r[i] for k, r in self.rows.items()},
            metrics={k: v[i] for k, v in self.metrics.items()},
        )

    def at(self, value: float) -> Point:
        """The ``Point`` at the padding share ``value``."""
        return self.point(self.index(value))


def step_shares(step_grad_norms, real) -> np.ndarray:
    """``[..., 2, T]``: each step's ``sum_b ||g_bt||^2`` over ``sum_bt
    ||g_bt||^2``, on the real steps (``[..., 0, :]``) and on the padding
    steps (``[..., 1, :]``), from ``[..., B, T]`` norms and real steps (0
    for a zero gradient)."""
    squares = np.square(np.asarray(step_grad_norms, dtype=np.float64))
    real = np.asarray(real, dtype=bool)
    parts = np.stack(
        [np.where(real, squares, 0.0), np.where(real, 0.0, squares)], axis=-3
    ).sum(axis=-2)
    total = squares.sum(axis=(-2, -1))[..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, parts / np.where(total > 0, total, 1.0), 0.0)


def over_grid(setting: Setting, seed: int = 0) -> Grid:
    """Every loss, gradient and metric at every padding share of
    ``PADDING_GRID`` (the page's batches, the same seed at each: rows are cut
    shorter, the noise stays; the weights from the data are those of each
    batch), the other controls as in ``setting``, whose padding share is not
    read (pass ``setting.for_sweep(PADDING)`` so that one entry serves every
    share). The batches are stacked: one call of the loss graph and one of
    the metrics graph, fed with tensors, so no value retraces them."""
    grid = PADDING_GRID
    ys, zs, lengths = (
        np.stack(arrays)
        for arrays in zip(
            *(_batch(float(r), setting.pad_id, setting.end_bias, seed) for r in grid),
            strict=True,
        )
    )
    weights = np.stack([class_weights(setting, y) for y in ys])
    values, grads, rows = _losses(setting, ys, zs, weights)
    norms = {k: grad_norms(g, axis=-1) for k, g in grads.items()}
    real = np.arange(MAX_LEN)[None, None, :] < lengths[..., None]
    shares = {k: step_shares(n, real) for k, n in norms.items()}
    arrays = {
        "y_true": ys, "lengths": lengths, "class_weights": weights,
        "loss_values": values, "grads": grads, "step_grad_norms": norms,
        "step_shares": shares, "rows": rows, "metrics": _metrics(setting, ys, zs),
        "padding_grad_share": {
            k: np.array([padding_share(n[i], ~real[i]) for i in range(len(grid))])
            for k, n in norms.items()
        },
    }  # fmt: skip
    for array in _arrays(arrays):
        array.setflags(write=False)
    return Grid(setting=setting, values=grid.copy(), losses=setting.losses, **arrays)


def _arrays(tree):
    for value in tree.values():
        if isinstance(value, dict):
            yield from _arrays(value)
        else:
            yield value


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
    the same seed at every point: rows are cut shorter, the noise stays; the
    weights from the data are those of each batch) or over the end-token
    weight (``weight_grid``, on the setting's batch, every other class
    keeping its weight in use). Reads only what ``setting.for_sweep(over)``
    keeps."""
    check_choice("over", over, SWEEPS)
    if over == PADDING:
        grid = PADDING_GRID
        ys, zs, _ = zip(
            *(_batch(float(r), setting.pad_id, setting.end_bias, seed) for r in grid),
            strict=True,
        )
        weights = [class_weights(setting, y) for y in ys]
    else:
        y_true, logits, _ = _batch(
            setting.mask_ratio, setting.pad_id, setting.end_bias, seed
        )
        in_use = class_weights(setting, y_true)
        grid = weight_grid(in_use[END_ID])
        weights = np.repeat(in_use[None], len(grid), axis=0)
        weights[:, END_ID] = grid
        ys, zs = [y_true] * len(grid), [logits] * len(grid)
    values, grads, _ = _losses(setting, np.stack(ys), np.stack(zs), weights)
    return Sweep(
        over=over,
        grid=grid,
        losses=setting.losses,
        values=values,
        grad_norms={k: grad_norms(g, axis=(1, 2, 3)) for k, g in grads.items()},
    )


@dataclass(frozen=True)
class WeightSweeps:
    """The end-token weight sweep (``sweep(..., END_WEIGHT)``) at every
    padding share of ``shares`` (``PADDING_GRID``): ``sweeps[i]`` on the
    batch of ``shares[i]``."""

    shares: np.ndarray
    sweeps: tuple

    def at(self, share: float) -> Sweep:
        return self.sweeps[int(np.argmin(np.abs(self.shares - float(share))))]


def weight_sweeps(setting: Setting, seed: int = 0) -> WeightSweeps:
    """``sweep(setting, END_WEIGHT, seed)`` at every padding share of
    ``PADDING_GRID`` (``setting``'s own share is not read), all the batches
    stacked into one call of the loss graph."""
    ys, zs, weights, grids = [], [], [], []
    for share in PADDING_GRID:
        y_true, logits, _ = _batch(float(share), setting.pad_id, setting.end_bias, seed)
        in_use = class_weights(setting, y_true)
        grid = weight_grid(in_use[END_ID])
        each = np.repeat(in_use[None], len(grid), axis=0)
        each[:, END_ID] = grid
        ys.append(np.repeat(y_true[None], len(grid), axis=0))
        zs.append(np.repeat(logits[None], len(grid), axis=0))
        weights.append(each)
        grids.append(grid)
    values, grads, _ = _losses(
        setting, np.concatenate(ys), np.concatenate(zs), np.concatenate(weights)
    )
    n, points = len(PADDING_GRID), WEIGHT_GRID_POINTS
    values = {k: v.reshape(n, points) for k, v in values.items()}
    norms = {
        k: grad_norms(g, axis=(1, 2, 3)).reshape(n, points) for k, g in grads.items()
    }
    sweeps = tuple(
        Sweep(
            over=END_WEIGHT,
            grid=grids[i],
            losses=setting.losses,
            values={k: v[i] for k, v in values.items()},
            grad_norms={k: g[i] for k, g in norms.items()},
        )
        for i in range(n)
    )
    return WeightSweeps(shares=PADDING_GRID.copy(), sweeps=sweeps)


# ------------------------------------------------------------ training


@dataclass(frozen=True)
class TrainData:
    """What the Train panel's copy task trains on, at its default sizes:
    sequences of 1 to ``max_len`` of ``num_tokens`` content tokens padded to
    ``padded_len`` steps (``num_classes`` classes: the three special ids and
    the content tokens); the share of the target steps that are padding, the
    end token's balanced weight (``end_token_class_weights`` over the real
    tokens), and whether the end token is the most frequent real token."""

    max_len: int
    padded_len: int
    num_tokens: int
    num_classes: int
    padding_share: float
    end_weight: float
    end_most_frequent: bool


def _task_targets(seed: int, pad_as_end: bool = False):
    """The training targets of the task's run with ``seed`` (its defaults)."""
    from lossviz.training import core
    from lossviz.training import sequence as task

    params = task.check_params({})
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    _, targets = task.copy_dataset(
        core.rng(seed, 1), params["num_train"], pad_id=task.pad_id_of(pad_as_end),
        **sizes,
    )  # fmt: skip
    return targets, sizes


def train_data(seed: int = 0) -> TrainData:
    """The training targets of a run with ``seed``, described."""
    from lossviz.training import sequence as task

    targets, sizes = _task_targets(seed)
    classes = task.num_classes(sizes["num_tokens"])
    weights = sequence.end_token_class_weights(
        targets, classes, end_id=task.END_ID, pad_id=task.PAD_ID
    )
    counts = np.bincount(targets[targets != task.PAD_ID], minlength=classes)
    return TrainData(
        **sizes,
        num_classes=classes,
        padding_share=float(np.mean(targets == task.PAD_ID)),
        end_weight=float(weights[task.END_ID]),
        end_most_frequent=bool(np.argmax(counts) == task.END_ID),
    )


def train_class_weights(setting: Setting, seed: int = 0) -> list[float] | None:
    """The class weights the Train panel's run at ``setting`` gives its loss,
    on the task's own targets (its classes are not the page's 8): from the
    data as on the page, over the steps the loss counts (the end token's
    weight by ``end_token_class_weights``, or every class by
    ``inverse_frequency_class_weights``); by hand, the end token's weight from
    the page, every other class 1. None when every weight is 1."""
    from lossviz.training import sequence as task

    targets, sizes = _task_targets(seed, setting.pad_is_end)
    classes = task.num_classes(sizes["num_tokens"])
    if setting.weight_mode == BY_HAND:
        weights = np.ones(classes)
        weights[task.END_ID] = setting.hand_weights[END_ID]
    else:
        pad = task.pad_id_of(setting.pad_is_end)
        labels = targets[targets != pad] if setting.masked else targets.ravel()
        if setting.weight_mode == END_FROM_DATA:
            weights = sequence.end_token_class_weights(
                labels, classes, end_id=task.END_ID
            )
        else:
            weights = inverse_frequency_class_weights(labels, classes)
    if np.all(weights == 1.0):
        return None
    return [float(w) for w in weights]


def _run_label(setting: Setting, weights) -> str:
    pad = "pad = </s>" if setting.pad_is_end else "pad <pad>"
    if setting.weight_mode == BY_HAND:
        end = 1.0 if weights is None else weights[END_ID]
        described = f"end weight {end:.3g} by hand"
    elif setting.weight_mode == END_FROM_DATA:
        end = 1.0 if weights is None else weights[END_ID]
        described = f"end weight {end:.3g} from data"
    else:
        described = "every class weighted from data"
    return f"{MASKED if setting.masked else UNMASKED}, {pad}, {described}"


def train_run(setting: Setting, seed: int = 0) -> RunSpec:
    """The Train panel's run of ``setting``: masked or not, padded with
    ``<pad>`` or with ``</s>`` (when the page's pad id is the end id), with
    ``train_class_weights``. The task's own pad id stands for the page's
    (0, 7 or -1): a distinct pad id."""
    weights = train_class_weights(setting, seed)
    return RunSpec(
        _run_label(setting, weights),
        MASKED if setting.masked else UNMASKED,
        {"pad_as_end": setting.pad_is_end, "class_weights": weights},
    )


def train_settings(setting: Setting) -> tuple[Setting, ...]:
    """The settings of the Train panel's runs: the page's, the same with the
    other choice of the mask, and the fix (masked, a distinct pad id, the
    end token's weight from the data), each once."""
    other = UNMASKED if setting.masked else MASKED
    flipped = dataclasses.replace(
        setting, mask=other, pad_id=0 if setting.pad_id < 0 else setting.pad_id
    )
    fix = Setting(pad_id=0, mask=MASKED, weight_mode=END_FROM_DATA)
    return (setting, flipped, fix)


def train_runs(setting: Setting, seed: int = 0) -> tuple[RunSpec, ...]:
    """The Train panel's runs (``train_settings``, each a ``train_run``),
    without repeats; the task's data are its own, not the page's batch."""
    runs = []
    for each in train_settings(setting):
        run = train_run(each, seed)
        if all((r.variant, r.params) != (run.variant, run.params) for r in runs):
            runs.append(run)
    return tuple(runs)


@functools.lru_cache(maxsize=32)
def _trained(variant: str, pad_as_end: bool, weights: tuple | None, seed: int):
    """The summary of a Train panel run at its default epochs and learning
    rate (cached: a lesson's check reads it)."""
    from lossviz.explore._base import train

    result = train(
        TRAINING.task,
        variant,
        epochs=TRAINING.epochs,
        learning_rate=TRAINING.learning_rate,
        seed=seed,
        pad_as_end=pad_as_end,
        class_weights=None if weights is None else list(weights),
    )
    return dict(result.summary)


def trained_summary(setting: Setting, seed: int = 0) -> dict:
    """The summary (``lossviz.training.sequence.run_summary``) of the Train
    panel's run of ``setting`` (``train_run``), trained at the panel's
    default epochs and learning rate with ``seed``."""
    run = train_run(setting, seed)
    weights = run.params["class_weights"]
    return _trained(
        run.variant,
        run.params["pad_as_end"],
        None if weights is None else tuple(weights),
        seed,
    )


# ------------------------------------------------------------ lessons

STOP = "content steps predicted `</s>` or `<pad>`"
ENDS = "sequence ends predicted `</s>`"
ACCURACY = "held-out accuracy on real steps"
LESSON_CHECKS = ("no_mask", "pad_is_end", "fixed")


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


def check_lesson(name: str, values: Mapping, seed: int) -> Claim:
    """The outcome the lesson ``name`` states, at the control ``values`` (by
    name, as the page holds them). Each trains the Train panel's runs it
    compares (``trained_summary``: a few seconds each, cached).

    - ``"no_mask"``: with the mask off, padding steps hold part of the
      loss's gradient on the page's batch (none with the mask on); trained,
      the unmasked run answers ``</s>`` or ``<pad>`` on at least 20 points
      more of the content steps than the same run masked;
    - ``"pad_is_end"``: the pad id is the end id and the loss is masked: it
      counts none of the batch's real end tokens, and trained this way the
      run ends at most 5 % of the held-out sequences with ``</s>``, the fix
      at least 90 %;
    - ``"fixed"``: masked with a distinct pad id and the end token's weight
      from the data: padding gets none of the gradient, every real end token
      counts, no class is counted more often than the end token and its
      weight is below 1; trained, the run ends at least 90 % of the held-out
      sequences with ``</s>`` and beats the unmasked run's accuracy on real
      steps by at least 30 points.
    """
    check_choice("name", name, LESSON_CHECKS)
    setting = setting_of(values)
    point = at_setting(setting, seed)
    if name == "no_mask":
        masked = dataclasses.replace(setting, mask=MASKED)
        masked_share = at_setting(masked, seed).padding_grad_share["ours"]
        share = point.padding_grad_share["ours"]
        ran, twin = trained_summary(setting, seed), trained_summary(masked, seed)
        holds = (
            not setting.masked
            and share > 0
            and masked_share == 0
            and ran[STOP] >= twin[STOP] + 0.2
        )
        return Claim(
            holds=bool(holds),
            statement=f"{'Unmasked' if not setting.masked else 'Masked'}, the "
            f"padding steps hold {_pct(share)} of ‖∂L/∂z‖² on this batch (masked: "
            f"{_pct(masked_share)}); trained {TRAINING.epochs} epochs on the copy "
            f"task, this run answers `</s>` or `<pad>` on {_pct(ran[STOP])} of the "
            f"content steps, the masked run on {_pct(twin[STOP])}.",
        )
    fix = train_settings(setting)[-1]
    if name == "pad_is_end":
        fixed = trained_summary(fix, seed)
        ran = trained_summary(setting, seed)
        holds = (
            setting.pad_is_end
            and setting.masked
            and point.end_tokens > 0
            and point.real_ends_counted == 0
            and ran[ENDS] <= 0.05
            and fixed[ENDS] >= 0.9
        )
        return Claim(
            holds=bool(holds),
            statement=f"The loss counts {point.real_ends_counted} of the "
            f"{point.end_tokens} real end tokens of this batch; trained "
            f"{TRAINING.epochs} epochs on the copy task padded this way, the run "
            f"ends {_pct(ran[ENDS])} of the held-out sequences with `</s>`, the "
            f"fix (masked, its own pad id, end weight from data) "
            f"{_pct(fixed[ENDS])}.",
        )
    ran = trained_summary(setting, seed)
    unmasked = trained_summary(dataclasses.replace(fix, mask=UNMASKED), seed)
    counts = point.class_counts
    next_most = int(np.delete(counts, END_ID).max())
    holds = (
        setting.masked
        and not setting.pad_is_end
        and setting.weight_mode == END_FROM_DATA
        and point.padding_grad_share["ours"] == 0
        and point.real_ends_counted == point.end_tokens > 0
        and counts[END_ID] >= next_most
        and point.end_weight < 1
        and ran[ENDS] >= 0.9
        and ran[ACCURACY] >= unmasked[ACCURACY] + 0.3
    )
    return Claim(
        holds=bool(holds),
        statement=f"Padding holds {_pct(point.padding_grad_share['ours'])} of "
        f"‖∂L/∂z‖², the loss counts {point.real_ends_counted} of the "
        f"{point.end_tokens} real end tokens, and the end token is counted "
        f"{counts[END_ID]} times of {counts.sum()} (any other class at most "
        f"{next_most}), so its weight from the data is {point.end_weight:.2f}; trained "
        f"{TRAINING.epochs} epochs, the run ends {_pct(ran[ENDS])} of the held-out "
        f"sequences with `</s>` and gets {_pct(ran[ACCURACY])} of the real steps "
        f"right (the same run unmasked: {_pct(unmasked[ACCURACY])}).",
    )


# ------------------------------------------------------------ the intro


@dataclass(frozen=True)
class IntroFacts:
    """The numbers the page's intro states, from the padding sweep at the
    default setting: each loss at the padding shares ``low_share`` and
    ``high_share`` (``(low, high)`` pairs), the share of the real tokens left
    at ``high_share`` that are start or end tokens, and the largest masked
    loss and gradient norm with every step padding."""

    low_share: float
    high_share: float
    special_share: float
    ours: tuple[float, float]
    token: tuple[float, float]
    trap: tuple[float, float]
    unmasked: tuple[float, float]
    all_padding_value: float
    all_padding_grad: float


def intro_facts(seed: int = 0, low: float = 0.0, high: float = 0.9) -> IntroFacts:
    """``IntroFacts`` of the default setting's padding sweep with ``seed``."""
    curves = sweep(Setting(), PADDING, seed)
    at = [int(np.argmin(np.abs(curves.grid - share))) for share in (low, high)]
    last = len(curves.grid) - 1  # every step padding
    masked = ("ours", "token", "trap")
    y_true, _, lengths = _batch(float(curves.grid[at[1]]), 0, Setting().end_bias, seed)
    real = y_true[np.arange(MAX_LEN)[None, :] < lengths[:, None]]
    return IntroFacts(
        low_share=float(curves.grid[at[0]]),
        high_share=float(curves.grid[at[1]]),
        special_share=float(np.mean(np.isin(real, (START_ID, END_ID)))),
        **{
            key: tuple(float(curves.values[key][i]) for i in at)
            for key in (*masked, "unmasked")
        },
        all_padding_value=float(max(curves.values[k][last] for k in masked)),
        all_padding_grad=float(max(curves.grad_norms[k][last] for k in masked)),
    )
