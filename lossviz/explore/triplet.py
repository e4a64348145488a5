"""What the "Loss as a layer (triplet)" page computes.

Two parts, each keyed on its own frozen settings:

- The cosine triplet loss on 64 seeded (question, right answer, wrong answer)
  embeddings (``example_triplets``): the cosines and gaps of the batch
  (``triplets``, keyed on ``Batch``: the share of hard triplets), the loss
  and its gradient with respect to the question embeddings at one margin
  (``at_setting``, keyed on ``Setting``), and both over the page's margin
  grid (``margin_sweep``). A triplet is *active* (loss > 0, gradient not 0)
  exactly when its gap ``cos(q, a+) - cos(q, a-)`` is below the margin, so
  every triplet is active once the margin passes the largest gap.
- The masked cross-entropy that ``MaskedCrossEntropyLayer`` adds with
  ``add_loss``, on a padded token batch (``example_token_batch``): what the
  layer reports with the mask and without it, and the per-token
  cross-entropy (``layer_reports``, keyed on ``LayerSetting``).

The value and gradient go through one compiled graph
(``tf.function(autograph=False)``) fed with tensors, the margin included, so
a slider move never retraces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lossviz import registry, sequence, triplet
from lossviz._common import check_number
from lossviz._tf import tf
from lossviz.explore._base import RunSpec, TrainSpec, first_where, grad_norm, grad_norms

FORMULA = triplet.FORMULA
FORMULAS = triplet.FORMULAS
PARAMS = {"margin": registry.get("cosine_triplet_loss").param("margin")}

NUM_TRIPLETS, DIM = 64, 8
BATCH_SIZE, LENGTH, NUM_CLASSES = 4, 8, 6
PAD_ID, NO_PAD_ID = 0, -1  # -1 never occurs: every position counts
PAD_CONFIDENCE = 8.0

_LOW, _HIGH, _STEP = PARAMS["margin"].ui_range
# Every margin the slider offers.
MARGINS = np.round(np.arange(_LOW, _HIGH + _STEP / 2, _STEP), 2)

# The source the page's "Use it in your model" shows.
SOURCES = (
    triplet.cosine_triplet_loss,
    triplet.CosineTripletLossLayer,
    triplet.IdentityLoss,
    triplet.build_triplet_models,
    triplet.MaskedCrossEntropyLayer,
)

TRAINING = TrainSpec(
    task="triplet",
    metrics={
        "loss": "Training loss",
        "recall_at_1": "Held-out recall@1",
        "perplexity": "Perplexity (masked tokens)",
        "masked_accuracy": "Masked accuracy",
    },
    epochs=5,
)


# ------------------------------------------------------------ example data


def example_triplets(num_triplets=64, dim=8, *, hard_share=0.25, seed=0):
    """A small seeded set of (question, right answer, wrong answer) embeddings.

    Easy triplets: the right answer is the question plus a little noise, the
    wrong answer an unrelated vector (``cos(q, a+)`` near 0.8, ``cos(q, a-)``
    near 0). Hard triplets: the wrong answer is the closer one. The last
    wrong answer is the zero vector (an empty answer, which
    ``MaskedMeanPooling`` encodes as zeros): its cosine is 0. The same seed
    gives the same vectors for every ``hard_share``; only which triplets are
    hard changes.

    Args:
      num_triplets: int ``>= 2``.
      dim: int ``>= 1``.
      hard_share: share of hard triplets, in ``[0, 1]``.
      seed: int ``>= 0``.

    Returns:
      ``(anchor, positive, negative, hard)``: three float32
      ``[num_triplets, dim]`` arrays and a bool ``[num_triplets]`` array.
    """
    check_number("num_triplets", num_triplets, low=2, integer=True)
    check_number("dim", dim, low=1, integer=True)
    check_number("hard_share", hard_share, low=0, high=1)
    check_number("seed", seed, low=0, integer=True)
    rng = np.random.default_rng(int(seed))
    shape = (int(num_triplets), int(dim))
    anchor = rng.normal(size=shape)
    near, far, unrelated = (rng.normal(size=shape) for _ in range(3))
    order = rng.permutation(shape[0])
    hard = np.zeros(shape[0], bool)
    hard[order[: int(round(hard_share * shape[0]))]] = True
    column = hard[:, None]
    positive = np.where(column, anchor + 1.2 * far, anchor + 0.5 * near)
    negative = np.where(column, anchor + 0.6 * near, unrelated)
    negative[-1] = 0.0
    return (
        anchor.astype(np.float32),
        positive.astype(np.float32),
        negative.astype(np.float32),
        hard,
    )


def example_token_batch(
    batch_size=4, length=8, num_classes=6, *, pad_share=0.3, logit_scale=2.0, seed=0
):
    """A small seeded batch of padded target ids and a model's logits.

    Each row holds real tokens (ids ``1..num_classes-1``) then padding (id 0),
    about ``pad_share`` of the positions. The logits are standard normal
    noise plus ``logit_scale`` on the target id, and plus ``PAD_CONFIDENCE``
    on id 0 at padding positions: padding is easy to predict, so a model
    trained without a mask learns it first, and unmasked metrics look better
    than the model is.

    Args:
      batch_size: int ``>= 1``.
      length: int ``>= 1``, positions per row.
      num_classes: int ``>= 2``.
      pad_share: in ``[0, 1]``; 1 gives a batch of padding only.
      logit_scale: ``>= 0``, how confident the model is.
      seed: int ``>= 0``.

    Returns:
      ``(y_true, logits)``: int32 ``[batch_size, length]`` and float32
      ``[batch_size, length, num_classes]``.
    """
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("length", length, low=1, integer=True)
    check_number("num_classes", num_classes, low=2, integer=True)
    check_number("pad_share", pad_share, low=0, high=1)
    check_number("logit_scale", logit_scale, low=0)
    check_number("seed", seed, low=0, integer=True)
    rng = np.random.default_rng(int(seed))
    batch_size, length, num_classes = int(batch_size), int(length), int(num_classes)
    y_true = rng.integers(1, num_classes, size=(batch_size, length))
    jitter = rng.integers(-1, 2, size=batch_size) if 0 < pad_share < 1 else 0
    keep = np.clip(np.round(length * (1 - pad_share)) + jitter, 0, length)
    padded = np.arange(length)[None, :] >= np.broadcast_to(keep, (batch_size,))[:, None]
    y_true[padded] = 0
    logits = rng.normal(size=(batch_size, length, num_classes))
    confidence = np.where(padded, PAD_CONFIDENCE, logit_scale)[..., None]
    logits += confidence * np.eye(num_classes)[y_true]
    return y_true.astype(np.int32), logits.astype(np.float32)


def masked_cross_entropy_report(y_true, logits, *, pad_id=0):
    """What ``fit`` reports for one batch through ``MaskedCrossEntropyLayer``.

    Runs a fresh layer once, eagerly, and reads the loss it added and its two
    metrics. A ``pad_id`` that never occurs in ``y_true`` (e.g. ``-1``) counts
    every position, as an unmasked loss would.

    Args:
      y_true: int ``[batch, time]``.
      logits: float ``[batch, time, num_classes]``.
      pad_id: int, the padding id.

    Returns:
      A ``LayerReport``. A batch of padding only gives loss 0, perplexity 1
      and accuracy 0.
    """
    check_number("pad_id", pad_id, integer=True)
    layer = triplet.MaskedCrossEntropyLayer(pad_id=pad_id)
    layer([y_true, logits])
    return LayerReport(
        loss=float(layer.losses[0]),
        perplexity=float(layer.perplexity.result()),
        masked_accuracy=float(layer.masked_accuracy.result()),
        tokens=int(layer.perplexity.count.numpy()),
    )


# ------------------------------------------------------------- the triplets


def _share(name: str, value) -> float:
    return float(check_number(name, value, low=0, high=1))


def _validated(settings, **values) -> None:
    """Sets the checked ``values`` on a frozen settings object."""
    for name, value in values.items():
        object.__setattr__(settings, name, value)


@dataclass(frozen=True)
class Batch:
    """Which example triplets: the share of hard ones (``[0, 1]``)."""

    hard_share: float = 0.25

    def __post_init__(self):
        _validated(self, hard_share=_share("hard_share", self.hard_share))


@dataclass(frozen=True)
class Setting:
    """The triplet controls: the margin (the loss's ``margin`` range) and the
    share of hard triplets."""

    margin: float = 0.1
    hard_share: float = 0.25

    def __post_init__(self):
        _validated(
            self,
            margin=float(PARAMS["margin"].validate(self.margin)),
            hard_share=_share("hard_share", self.hard_share),
        )

    @property
    def batch(self) -> Batch:
        return Batch(self.hard_share)


@dataclass(frozen=True)
class Triplets:
    """The example batch and how near each answer is to its question."""

    anchor: np.ndarray  # [N, D] question embeddings q
    positive: np.ndarray  # [N, D] right answers a+
    negative: np.ndarray  # [N, D] wrong answers a- (the last is zero)
    hard: np.ndarray  # [N] bool
    cos_positive: np.ndarray  # [N] cos(q, a+)
    cos_negative: np.ndarray  # [N] cos(q, a-)
    gap: np.ndarray  # [N] cos(q, a+) - cos(q, a-)
    max_gap: float  # every triplet is active for a margin above it
    wrong_order: int  # triplets with gap < 0: active even at margin 0


@dataclass(frozen=True)
class Point:
    """The loss and ``dL/dq`` (of the summed loss) at one margin."""

    margin: float
    loss: np.ndarray  # [N]
    grad: np.ndarray  # [N, D]
    mean_loss: float  # what compile(loss=IdentityLoss()) minimises
    active: np.ndarray  # [N] bool, loss > 0
    active_share: float
    grad_norm: float  # over the whole batch
    row_grad_norms: np.ndarray  # [N]
    zero_gradient: int  # triplets whose gradient row is exactly 0


@dataclass(frozen=True)
class MarginSweep:
    """The batch-mean loss, active share and gradient norm at every margin of
    ``MARGINS``."""

    margins: np.ndarray  # [M]
    mean_loss: np.ndarray  # [M]
    active_share: np.ndarray  # [M]
    grad_norm: np.ndarray  # [M]
    all_active_from: float | None  # the first margin with every triplet active
    nonfinite_from: float | None  # the first margin with a non-finite number


@functools.lru_cache(maxsize=1)
def _graphs():
    """The compiled cosines, value-and-gradient and margin sweep, built once
    per process. Shapes are left open and every input is a tensor, so no
    slider move retraces."""
    embeddings = tf.TensorSpec([None, None], tf.float32)

    @tf.function(autograph=False, input_signature=[embeddings] * 3)
    def cosines(anchor, positive, negative):
        return (
            triplet.cosine_similarity(anchor, positive),
            triplet.cosine_similarity(anchor, negative),
            triplet.cosine_gap(anchor, positive, negative),
        )

    def value_and_grad(anchor, positive, negative, margin):
        with tf.GradientTape() as tape:
            tape.watch(anchor)
            loss = triplet.cosine_triplet_loss(
                anchor, positive, negative, margin=margin
            )
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, anchor)

    @tf.function(
        autograph=False,
        input_signature=[*[embeddings] * 3, tf.TensorSpec([None], tf.float32)],
    )
    def sweep(anchor, positive, negative, margins):
        # One call for the whole grid: [M, N] losses and [M, N, D] gradients.
        return tf.map_fn(
            lambda margin: value_and_grad(anchor, positive, negative, margin),
            margins,
            fn_output_signature=(tf.float32, tf.float32),
        )

    return cosines, sweep


@functools.lru_cache(maxsize=64)
def triplets(batch: Batch, seed: int) -> Triplets:
    """The example triplets of ``batch`` and their cosines."""
    anchor, positive, negative, hard = example_triplets(
        NUM_TRIPLETS, DIM, hard_share=batch.hard_share, seed=seed
    )
    cosines, _ = _graphs()
    cos_positive, cos_negative, gap = (
        t.numpy() for t in cosines(anchor, positive, negative)
    )
    return Triplets(
        anchor=anchor,
        positive=positive,
        negative=negative,
        hard=hard,
        cos_positive=cos_positive,
        cos_negative=cos_negative,
        gap=gap,
        max_gap=float(gap.max()),
        wrong_order=int((gap < 0).sum()),
    )


def _values_and_grads(batch: Triplets, margins) -> tuple[np.ndarray, np.ndarray]:
    """Per-triplet losses ``[M, N]`` and ``dL/dq`` ``[M, N, D]`` at ``margins``."""
    _, sweep = _graphs()
    margins = tf.constant(np.asarray(margins, np.float32).reshape(-1))
    losses, grads = sweep(batch.anchor, batch.positive, batch.negative, margins)
    return losses.numpy(), grads.numpy()


@functools.lru_cache(maxsize=64)
def _grid(batch: Batch, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``_values_and_grads`` at every margin of ``MARGINS``, kept: a slider
    move to a margin of the grid then runs no TensorFlow at all."""
    return _values_and_grads(triplets(batch, seed), MARGINS)


def _point(margin: float, loss: np.ndarray, grad: np.ndarray) -> Point:
    row_norms = grad_norms(grad, axis=1)
    return Point(
        margin=float(margin),
        loss=loss,
        grad=grad,
        mean_loss=float(loss.mean()),
        active=loss > 0,
        active_share=float((loss > 0).mean()),
        grad_norm=grad_norm(grad),
        row_grad_norms=row_norms,
        zero_gradient=int((row_norms == 0).sum()),
    )


def at_setting(setting: Setting, seed: int) -> Point:
    """The loss and its gradient at ``setting.margin``."""
    on_grid = np.flatnonzero(np.isclose(MARGINS, setting.margin, rtol=0, atol=1e-9))
    if on_grid.size:
        losses, grads = _grid(setting.batch, seed)
        index = int(on_grid[0])
        return _point(setting.margin, losses[index], grads[index])
    losses, grads = _values_and_grads(triplets(setting.batch, seed), [setting.margin])
    return _point(setting.margin, losses[0], grads[0])


def margin_sweep(batch: Batch, seed: int) -> MarginSweep:
    """``at_setting``'s numbers at every margin of ``MARGINS``."""
    losses, grads = _grid(batch, seed)
    points = [_point(m, losses[i], grads[i]) for i, m in enumerate(MARGINS)]
    mean_loss = np.array([p.mean_loss for p in points])
    active_share = np.array([p.active_share for p in points])
    norms = np.array([p.grad_norm for p in points])
    finite = np.isfinite(mean_loss) & np.isfinite(norms)
    return MarginSweep(
        margins=MARGINS,
        mean_loss=mean_loss,
        active_share=active_share,
        grad_norm=norms,
        all_active_from=first_where(MARGINS, active_share == 1.0),
        nonfinite_from=first_where(MARGINS, ~finite),
    )


# ------------------------------------------------------- the add_loss layer


@dataclass(frozen=True)
class LayerSetting:
    """The token batch's controls: padding share and model confidence."""

    pad_share: float = 0.3
    logit_scale: float = 2.0

    def __post_init__(self):
        _validated(
            self,
            pad_share=_share("pad_share", self.pad_share),
            logit_scale=float(check_number("logit_scale", self.logit_scale, low=0)),
        )


@dataclass(frozen=True)
class LayerReport:
    """What ``fit`` reports after one batch through ``MaskedCrossEntropyLayer``."""

    loss: float  # the value passed to add_loss: the token-mean cross-entropy
    perplexity: float  # exp of that mean, from the layer's own metric
    masked_accuracy: float  # share of counted tokens whose argmax is the target
    tokens: int  # how many positions count


@dataclass(frozen=True)
class TokenBatch:
    """The padded token batch, the layer's reports and the per-token loss."""

    y_true: np.ndarray  # [B, T] int, 0 = padding
    token_ce: np.ndarray  # [B, T], 0 on padding
    tokens_per_row: np.ndarray  # [B] int, real tokens in each row
    masked: LayerReport  # pad_id = 0
    unmasked: LayerReport  # pad_id = -1: every position counts


@functools.lru_cache(maxsize=1)
def _token_graph():
    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None, None], tf.float32),
        ],
    )
    def token_ce(y_true, logits):
        return sequence.token_crossentropy(y_true, logits, pad_id=PAD_ID)

    return token_ce


def layer_reports(setting: LayerSetting, seed: int) -> TokenBatch:
    """The layer with its mask (``pad_id=0``) and without (``pad_id=-1``)."""
    y_true, logits = example_token_batch(
        BATCH_SIZE,
        LENGTH,
        NUM_CLASSES,
        pad_share=setting.pad_share,
        logit_scale=setting.logit_scale,
        seed=seed,
    )
    return TokenBatch(
        y_true=y_true,
        token_ce=_token_graph()(y_true, logits).numpy(),
        tokens_per_row=(y_true != PAD_ID).sum(axis=1),
        masked=masked_cross_entropy_report(y_true, logits, pad_id=PAD_ID),
        unmasked=masked_cross_entropy_report(y_true, logits, pad_id=NO_PAD_ID),
    )


# ---------------------------------------------------------------- training


def train_runs(setting: Setting) -> tuple[RunSpec, ...]:
    """The masked LM, then the retrieval model at the page's margin (last, so
    the panel's summary and rows below the table are its held-out rankings)."""
    return (
        RunSpec("masked LM (add_loss)", "masked_lm", {}),
        RunSpec(
            f"triplet, margin {setting.margin:g}",
            "triplet",
            {"margin": round(setting.margin, 2)},
        ),
    )
