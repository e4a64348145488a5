"""What the "Loss as a layer (triplet)" page computes.

Two parts, each keyed on its own frozen settings:

- The cosine triplet loss on 64 seeded (question, right answer, wrong answer)
  embeddings (``example_triplets``): the cosines and gaps of the batch
  (``triplets``, keyed on ``Batch``: the share of hard triplets), the loss
  and its gradient with respect to the question embeddings at one margin
  (``at_setting``, keyed on ``Setting``), and both at every margin of the
  page's slider at once (``over_grid``, keyed on ``Batch``; ``margin_sweep``
  its batch means). A triplet is *active* (loss > 0, gradient not 0)
  exactly when its gap ``cos(q, a+) - cos(q, a-)`` is below the margin, so
  every triplet is active once the margin passes the largest gap.
- The masked cross-entropy that ``MaskedCrossEntropyLayer`` adds with
  ``add_loss``, on a padded token batch (``example_token_batch``): what the
  layer reports with the mask and without it, and the per-token
  cross-entropy (``layer_reports``, keyed on ``LayerSetting``).

The numbers the page's words state are computed here too: ``page_facts``
(the intro's largest gap at the default share, where the slider makes every
triplet active), ``layer_facts`` (what the layer adds when every position is
padding), ``TRAIN_FACTS`` (the Train panel's sizes and examples), and each
lesson's outcome (``check_lesson``).

The value and gradient go through compiled graphs
(``tf.function(autograph=False)``) fed with tensors, the margin included, so
no control retraces. ``at_setting`` differentiates the loss as a user's model
would; ``over_grid`` uses what the margin does not change: the cosines, and
an active triplet's gradient ``d(cos(q, a-) - cos(q, a+))/dq``, which the
margin only switches on (gap < m) or off. One call gives every margin of the
slider, and the tests hold the two equal at each.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lossviz import registry, sequence, triplet
from lossviz._common import check_number
from lossviz._tf import tf
from lossviz.explore._base import (
    Claim,
    RunSpec,
    TrainSpec,
    first_where,
    grad_norm,
    grad_norms,
    train,
)
from lossviz.training import core as training_core
from lossviz.training import triplet as task

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


@dataclass(frozen=True)
class TrainFacts:
    """The numbers and examples the page's words about the Train panel state,
    read from ``lossviz.training.triplet`` and its data at seed 0."""

    topics_per_pair: int  # topics a question (and its answer) is about
    heldout_answers: int  # each held-out question is ranked against these
    chance: float  # recall@1 of a random ranking: 1 / heldout_answers
    clock: int  # the counting sequences' clock, in hours
    example_question: str  # the first held-out question, decoded
    example_answer: str  # its right answer, decoded
    example_sequence: str  # the first held-out counting sequence that wraps


def _train_facts() -> TrainFacts:
    heldout = task.TRIPLET_PARAMS["num_answers"][0]
    data = task.qa_dataset(0, num_answers=heldout)
    tokens, _ = task.counting_sequences(training_core.rng(0, salt=4), task.LM_HELDOUT)
    wraps = next(row[row > 0] for row in tokens if np.any(np.diff(row[row > 0]) < 0))
    return TrainFacts(
        topics_per_pair=task.TOPICS_PER_PAIR,
        heldout_answers=heldout,
        chance=1.0 / heldout,
        clock=task.CLOCK,
        example_question=task.decode(data["heldout_question"][0]),
        example_answer=task.decode(data["heldout_answer"][0]),
        example_sequence=" ".join(str(int(t)) for t in wraps),
    )


TRAIN_FACTS = _train_facts()


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

    Runs a fresh layer once, eagerly, and reads the loss it added, the
    gradient of that loss with respect to the logits, and its two metrics. A
    ``pad_id`` that never occurs in ``y_true`` (e.g. ``-1``) counts every
    position, as an unmasked loss would.

    Args:
      y_true: int ``[batch, time]``.
      logits: float ``[batch, time, num_classes]``.
      pad_id: int, the padding id.

    Returns:
      A ``LayerReport``. A batch of padding only gives loss 0 with a zero
      gradient, perplexity 1 and accuracy 0.
    """
    check_number("pad_id", pad_id, integer=True)
    layer = triplet.MaskedCrossEntropyLayer(pad_id=pad_id)
    logits = tf.constant(logits, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        layer([y_true, logits])
        (loss,) = layer.losses
    return LayerReport(
        loss=float(loss),
        grad_norm=grad_norm(tape.gradient(loss, logits).numpy()),
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
    hard_wrong_order: int  # of those, the hard ones


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


@dataclass(frozen=True)
class Grid:
    """``at_setting``'s numbers at every margin of ``MARGINS`` (``values``),
    for one batch: ``at(margin)`` is the ``Point`` of a slider margin."""

    values: np.ndarray  # [M] the margins
    gap: np.ndarray  # [N] cos(q, a+) - cos(q, a-), the same at every margin
    hard: np.ndarray  # [N] bool
    # [N, D] a triplet's dL/dq while it is active, the same at every margin:
    # d(cos(q, a-) - cos(q, a+))/dq. The margin only switches it on or off.
    active_grad: np.ndarray
    active_grad_norms: np.ndarray  # [N] its row norms
    loss: np.ndarray  # [M, N]
    active: np.ndarray  # [M, N] bool, loss > 0
    grad: np.ndarray  # [M, N, D] active * active_grad
    mean_loss: np.ndarray  # [M]
    active_count: np.ndarray  # [M] int
    active_share: np.ndarray  # [M]
    grad_norm: np.ndarray  # [M]
    all_active_from: float | None  # the first margin with every triplet active
    nonfinite_from: float | None  # the first margin with a non-finite number

    def _found(self, margin: float) -> np.ndarray:
        return np.flatnonzero(np.isclose(self.values, margin, rtol=0, atol=1e-9))

    def holds(self, margin: float) -> bool:
        """Whether ``margin`` is one of ``values``."""
        return bool(self._found(margin).size)

    def index(self, margin: float) -> int:
        """The position of ``margin`` in ``values``; ValueError off the grid."""
        found = self._found(margin)
        if not found.size:
            raise ValueError(
                f"`margin` {margin!r} is not on the grid "
                f"[{self.values[0]:g}, {self.values[-1]:g}] in steps of "
                f"{self.values[1] - self.values[0]:g}."
            )
        return int(found[0])

    def at(self, margin: float) -> Point:
        """The loss and its gradient at a margin of the grid."""
        i = self.index(margin)
        return _point(margin, self.loss[i], self.grad[i])


@functools.lru_cache(maxsize=1)
def _graphs():
    """The compiled cosines, value-and-gradient and margin grid, built once
    per process. Shapes are left open and every input is a tensor, so no
    control retraces."""
    embeddings = tf.TensorSpec([None, None], tf.float32)

    @tf.function(autograph=False, input_signature=[embeddings] * 3)
    def cosines(anchor, positive, negative):
        return (
            triplet.cosine_similarity(anchor, positive),
            triplet.cosine_similarity(anchor, negative),
            triplet.cosine_gap(anchor, positive, negative),
        )

    @tf.function(
        autograph=False,
        input_signature=[*[embeddings] * 3, tf.TensorSpec([], tf.float32)],
    )
    def value_and_grad(anchor, positive, negative, margin):
        # The loss as a model computes it, differentiated through its relu.
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
    def grid(anchor, positive, negative, margins):
        # relu(m + cos- - cos+): the cosines do not depend on m, and the
        # gradient of an active triplet is that of cos- - cos+, so both are
        # computed once; [M, N] losses by broadcasting, in the loss's order
        # of operations (m + cos-, then - cos+).
        with tf.GradientTape() as tape:
            tape.watch(anchor)
            cos_positive = triplet.cosine_similarity(anchor, positive)
            cos_negative = triplet.cosine_similarity(anchor, negative)
            total = tf.reduce_sum(cos_negative - cos_positive)
        active_grad = tape.gradient(total, anchor)
        losses = tf.nn.relu(
            margins[:, None] + cos_negative[None, :] - cos_positive[None, :]
        )
        return losses, active_grad

    return cosines, value_and_grad, grid


@functools.lru_cache(maxsize=64)
def triplets(batch: Batch, seed: int) -> Triplets:
    """The example triplets of ``batch`` and their cosines."""
    anchor, positive, negative, hard = example_triplets(
        NUM_TRIPLETS, DIM, hard_share=batch.hard_share, seed=seed
    )
    cosines, _, _ = _graphs()
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
        hard_wrong_order=int((gap[hard] < 0).sum()),
    )


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
    """The loss and its gradient at ``setting.margin``, through the loss
    function itself (``over_grid`` gives every slider margin at once)."""
    batch = triplets(setting.batch, seed)
    _, value_and_grad, _ = _graphs()
    loss, grad = value_and_grad(
        batch.anchor,
        batch.positive,
        batch.negative,
        tf.constant(setting.margin, tf.float32),
    )
    return _point(setting.margin, loss.numpy(), grad.numpy())


@functools.lru_cache(maxsize=64)
def over_grid(batch: Batch, seed: int) -> Grid:
    """The loss, active triplets, gradient and their batch numbers at every
    margin of ``MARGINS``, in one graph call: a slider move is then a lookup
    (``Grid.at``)."""
    example = triplets(batch, seed)
    _, _, graph = _graphs()
    losses, active_grad = graph(
        example.anchor,
        example.positive,
        example.negative,
        tf.constant(MARGINS.astype(np.float32)),
    )
    losses, active_grad = losses.numpy(), active_grad.numpy()
    active = losses > 0
    # Exactly 0 off the active rows, as relu's gradient gives.
    grads = np.where(active[..., None], active_grad[None], np.float32(0))
    mean_loss = losses.mean(axis=1, dtype=np.float32).astype(np.float64)
    norms = grad_norms(grads, axis=(1, 2))
    share = active.mean(axis=1)
    finite = np.isfinite(mean_loss) & np.isfinite(norms)
    return Grid(
        values=MARGINS,
        gap=example.gap,
        hard=example.hard,
        active_grad=active_grad,
        active_grad_norms=grad_norms(active_grad, axis=1),
        loss=losses,
        active=active,
        grad=grads,
        mean_loss=mean_loss,
        active_count=active.sum(axis=1),
        active_share=share,
        grad_norm=norms,
        all_active_from=first_where(MARGINS, share == 1.0),
        nonfinite_from=first_where(MARGINS, ~finite),
    )


def margin_sweep(batch: Batch, seed: int) -> MarginSweep:
    """``at_setting``'s batch numbers at every margin of ``MARGINS``."""
    grid = over_grid(batch, seed)
    return MarginSweep(
        margins=grid.values,
        mean_loss=grid.mean_loss,
        active_share=grid.active_share,
        grad_norm=grid.grad_norm,
        all_active_from=grid.all_active_from,
        nonfinite_from=grid.nonfinite_from,
    )


@dataclass(frozen=True)
class PageFacts:
    """The numbers the page's intro states, at the default share of hard
    triplets and the page's seed."""

    num_triplets: int
    dim: int
    hard_share: float  # the default share of hard triplets
    max_gap: float  # the largest gap: every triplet is active above it
    all_active_from: float | None  # the first slider margin above it
    margin_high: float  # where the slider ends
    zero_answer_cosine: float  # cos(q, a-) of the last, zero, wrong answer


def page_facts(seed: int) -> PageFacts:
    """The intro's numbers: the batch of the default ``Setting`` at ``seed``."""
    batch = Setting().batch
    example = triplets(batch, seed)
    return PageFacts(
        num_triplets=NUM_TRIPLETS,
        dim=DIM,
        hard_share=batch.hard_share,
        max_gap=example.max_gap,
        all_active_from=margin_sweep(batch, seed).all_active_from,
        margin_high=float(MARGINS[-1]),
        zero_answer_cosine=float(example.cos_negative[-1]),
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
    grad_norm: float  # of d(loss)/d(logits)
    perplexity: float  # exp of that mean, from the layer's own metric
    masked_accuracy: float  # share of counted tokens whose argmax is the target
    tokens: int  # how many positions count


@dataclass(frozen=True)
class TokenBatch:
    """The padded token batch, the layer's reports and the per-token loss."""

    y_true: np.ndarray  # [B, T] int, 0 = padding
    token_ce: np.ndarray  # [B, T], 0 on padding
    tokens_per_row: np.ndarray  # [B] int, real tokens in each row
    padded: int  # padding positions
    # The smallest probability the logits give padding at a padding
    # position (NaN when there is none).
    pad_probability: float
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
    padded = y_true == PAD_ID
    pad_probability = tf.nn.softmax(logits[padded])[:, PAD_ID].numpy()
    return TokenBatch(
        y_true=y_true,
        token_ce=_token_graph()(y_true, logits).numpy(),
        tokens_per_row=(~padded).sum(axis=1),
        padded=int(padded.sum()),
        pad_probability=float(pad_probability.min()) if padded.any() else np.nan,
        masked=masked_cross_entropy_report(y_true, logits, pad_id=PAD_ID),
        unmasked=masked_cross_entropy_report(y_true, logits, pad_id=NO_PAD_ID),
    )


@dataclass(frozen=True)
class LayerFacts:
    """The numbers the add_loss section's words state: the token batch's
    sizes and what the masked layer reports when every position is padding
    (at the default model confidence)."""

    batch_size: int
    length: int
    num_classes: int
    pad_id: int
    all_padding: LayerReport


def layer_facts(seed: int) -> LayerFacts:
    """``LayerFacts`` of the token batch at ``seed``."""
    padding_only = layer_reports(LayerSetting(pad_share=1.0), seed)
    return LayerFacts(
        batch_size=BATCH_SIZE,
        length=LENGTH,
        num_classes=NUM_CLASSES,
        pad_id=PAD_ID,
        all_padding=padding_only.masked,
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


# ----------------------------------------------------------------- lessons


def _only_wrong_order_active(setting: Setting, seed: int) -> Claim:
    batch = triplets(setting.batch, seed)
    point = at_setting(setting, seed)
    wrong = batch.gap < 0
    inactive = ~point.active
    exact_zero = not np.any(point.loss[inactive]) and not np.any(point.grad[inactive])
    same = bool(np.array_equal(point.active, wrong))
    active = int(point.active.sum())
    those = "exactly those" if same else f"{active} triplets, not just those,"
    return Claim(
        holds=same and exact_zero,
        statement=f"At m = {setting.margin:g}, {batch.wrong_order} of "
        f"{NUM_TRIPLETS} triplets are ranked the wrong way round (gap below 0) "
        f"and {those} are active; the other {NUM_TRIPLETS - active} "
        f"{'each have' if exact_zero else 'do not all have'} a loss of 0 and a "
        "gradient of exactly 0.",
    )


def _every_triplet_active(setting: Setting, seed: int) -> Claim:
    batch = triplets(setting.batch, seed)
    point = at_setting(setting, seed)
    mean_gap = float(batch.gap.astype(np.float64).mean())
    linear = np.isclose(point.mean_loss, setting.margin - mean_gap, atol=1e-5)
    in_range = -2.0 <= batch.gap.min() and batch.max_gap <= 2.0
    active = int(point.active.sum())
    return Claim(
        holds=bool(
            in_range
            and batch.max_gap < setting.margin
            and point.active_share == 1.0
            and point.zero_gradient == 0
            and linear
        ),
        statement=f"Every gap lies in [{batch.gap.min():.3g}, {batch.max_gap:.3g}], "
        f"{'below' if batch.max_gap < setting.margin else 'not below'} m = "
        f"{setting.margin:g}: {active} of {NUM_TRIPLETS} triplets are active, "
        f"{point.zero_gradient} with a zero gradient, and the mean loss "
        f"{point.mean_loss:.4g} {'is' if linear else 'is not'} m minus the mean "
        f"gap ({mean_gap:.4g}).",
    )


@functools.lru_cache(maxsize=8)
def _margin_training(margin: float, seed: int) -> Claim:
    """Two runs of the Train panel's triplet model, at its default epochs and
    learning rate: at margin 0 and at ``margin``."""
    runs = {
        m: train(
            TRAINING.task,
            "triplet",
            epochs=TRAINING.epochs,
            learning_rate=TRAINING.learning_rate,
            seed=seed,
            margin=m,
        )
        for m in (0.0, margin)
    }
    zero, wide = (runs[m].history for m in (0.0, margin))
    loss = zero["loss"][-1]
    recall_zero, recall_wide = zero["recall_at_1"][-1], wide["recall_at_1"][-1]
    return Claim(
        holds=bool(margin > 0 and loss < 0.01 and recall_wide >= 2 * recall_zero),
        statement=f"Trained {TRAINING.epochs} epochs at seed {seed}: at m = 0 the "
        f"training loss ends at {loss:.2g} and held-out recall@1 at "
        f"{recall_zero:.3g}; at m = {margin:g} recall@1 ends at {recall_wide:.3g} "
        f"(chance {TRAIN_FACTS.chance:.3g}).",
    )


LESSON_CHECKS = {
    "only_wrong_order_active": _only_wrong_order_active,
    "every_triplet_active": _every_triplet_active,
    "margin_trains": lambda setting, seed: _margin_training(setting.margin, seed),
}


def check_lesson(name: str, values: Mapping, seed: int) -> Claim:
    """The outcome the lesson ``name`` states, at the control ``values`` (by
    name, as the page holds them; only ``margin`` and ``hard_share`` count).

    - ``"only_wrong_order_active"``: the active triplets are exactly those
      ranked the wrong way round (gap < 0), and every other one has a loss of
      0 and a gradient of exactly 0 (at margin 0);
    - ``"every_triplet_active"``: every gap lies in [-2, 2] and below the
      margin, so every triplet is active, none has a zero gradient, and the
      mean loss is the margin minus the mean gap;
    - ``"margin_trains"``: trained as the Train panel does (its default epochs
      and learning rate, at ``seed``), a run at margin 0 ends with a training
      loss below 0.01 and a held-out recall@1 at most half that of a run at
      the page's margin.
    """
    if name not in LESSON_CHECKS:
        raise ValueError(f"`name` must be one of {tuple(LESSON_CHECKS)}, got {name!r}.")
    setting = Setting(margin=values["margin"], hard_share=values["hard_share"])
    return LESSON_CHECKS[name](setting, seed)
