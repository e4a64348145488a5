"""What the "Multi-label ranking (BP-MLL)" page computes.

A seeded multi-label batch (labels and logits, two rows without pairs); at a
setting, BP-MLL per sample (``bpmll_loss``, log space) with its gradient with
respect to the logits, binary cross-entropy (Keras, from logits) with its
gradient beside it, and the same loss in its four forms (loop, pairwise, log
space, factorised product) with each form's gap to the loop; a sweep of the
logit scale over ``SWEEP_SCALES``; the median time of each form; the Train
panel's runs and the facts of its introduction (``train_facts``); each
lesson's outcome (``check_lesson``). Every number a sentence on the page
states (the samples without pairs, the batch means, the share of gradients
of the expected sign, the largest gap between forms, the growth of each loss
with the scale, the scales where the factorised product, the batch mean and
a sample's loss first overflow) is a field here.

The graph of the values and gradients is compiled once, for any batch and
label count (``[None, None]`` inputs), and fed tensors, so a slider move never
retraces it; the sweep runs through the same graph, its scales stacked on the
batch axis (the losses are per row, so rows of different scales never mix).
The loop form needs a static shape: its graph (with the pairwise form's) is
traced once per label count, and the scale and density are fed to it. No
autograph: lossviz has no tensor-dependent Python control flow.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lossviz import analysis, multilabel
from lossviz._common import as_float, check_number
from lossviz._tf import tf
from lossviz.explore._base import Claim, RunSpec, TrainSpec, first_where, grad_norms
from lossviz.training import multilabel as task

# isort: split
# After lossviz: it imports TensorFlow quietly, keras would import it noisily.
import keras

FORMULA = multilabel.FORMULA
LOG_SPACE_FORMULA = multilabel.FORMULAS["log_space"]
PARAMS = {}  # BP-MLL has no parameter: every control shapes the example
NUM_SAMPLES = 8
MAX_LABELS = 256  # the pairwise form holds [B, L, L]; the page offers up to 256
SWEEP_SCALES = np.arange(1.5, 60.1, 1.5)  # 40 points, 1.5 apart
# The page's logit-scale slider, 0.5 to 60 in steps of 0.5: ``over_grid``
# computes every one of its 120 values at once.
SCALE_LOW, SCALE_HIGH, SCALE_STEP = 0.5, 60.0, 0.5
GRID_SCALES = SCALE_STEP * np.arange(
    round(SCALE_LOW / SCALE_STEP), round(SCALE_HIGH / SCALE_STEP) + 1
)
TIMING_REPEATS = 5
TIMING_SCALE, TIMING_DENSITY = 3.0, 0.4
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A loss above FLOAT32_MAX needs a pair ranked this many logits the wrong way:
# E is a mean of e^(c_l - c_k), so E <= e^(largest c_l - c_k).
LOG_FLOAT32_MAX = float(np.log(FLOAT32_MAX))
FLOAT32_ROUNDING = 2.0**-24  # unit roundoff of float32

# What the page's "Use it in your model" shows the source of.
SOURCES = (multilabel.bpmll_loss, multilabel.BPMLL)

TRAINING = TrainSpec(
    task="multilabel",
    metrics={
        "loss": "Training loss",
        "ranking_loss": "Held-out ranking loss",
        "hamming_loss": "Held-out Hamming loss (logit > 0)",
    },
    epochs=10,
)


def bpmll_loss_factorised(y_true, logits):
    """BP-MLL as the literal factorised product, kept to show where it breaks.

    ``E = (sum_{k in Y} exp(-c_k)) * (sum_{l in Ybar} exp(c_l)) / (|Y| |Ybar|)``.
    Same value as ``bpmll_loss`` in exact arithmetic and O(B·L) memory, but the
    product of the two sums is formed before dividing by the pair count, so in
    float32 it overflows to ``inf`` (and its gradient to ``inf``/NaN) for
    large ``|logits|`` even where the loss itself is finite. Use
    ``lossviz.bpmll_loss``.

    Args:
      y_true: 0/1 multi-hot labels, `[batch, num_labels]` (above 0.5 counts as
        a positive; not checked: the page's batches are 0/1 by construction).
      logits: outputs, same shape.

    Returns:
      Loss per sample, `[batch]` (may be ``inf``; that is its point). Rows
      without pairs give 0.
    """
    logits = as_float(logits)
    positive = tf.cast(y_true, logits.dtype) > 0.5
    negative = tf.logical_not(positive)
    zeros = tf.zeros_like(logits)
    pos_sum = tf.reduce_sum(tf.where(positive, tf.exp(-logits), zeros), axis=-1)
    neg_sum = tf.reduce_sum(tf.where(negative, tf.exp(logits), zeros), axis=-1)
    num_pairs = tf.reduce_sum(tf.cast(positive, logits.dtype), axis=-1) * (
        tf.reduce_sum(tf.cast(negative, logits.dtype), axis=-1)
    )
    # May be 0! A row with no positive or no negative label has no pairs.
    return tf.math.divide_no_nan(pos_sum * neg_sum, num_pairs)


def binary_crossentropy(y_true, logits):
    """Keras' binary cross-entropy from logits, mean over labels: `[batch]`."""
    return keras.losses.binary_crossentropy(y_true, logits, from_logits=True)


# name: per-sample function, in the order of the page's tables.
FORMS = {
    "loop": multilabel.bpmll_loss_loop,
    "pairwise": multilabel.bpmll_loss_pairwise,
    "log space": multilabel.bpmll_loss,
    "factorised": bpmll_loss_factorised,
}


def example_batch(
    num_samples=NUM_SAMPLES, num_labels=6, *, label_density=0.4, logit_scale=3.0,
    seed=0,
):  # fmt: skip
    """A small seeded multi-label batch with the two degenerate rows included.

    Labels are Bernoulli(``label_density``); logits are
    ``logit_scale * uniform(-1, 1)``, so ``|logits| <= logit_scale``. Row 0 is
    made all-negative and row 1 all-positive (when there are at least two
    samples), the rows BP-MLL gives 0. The same seed draws the same labels
    and the same unit logits at every scale.

    Args:
      num_samples: batch size, an integer >= 1.
      num_labels: number of labels, an integer >= 1.
      label_density: probability of each label being positive, in [0, 1].
      logit_scale: half-width of the logit range, > 0.
      seed: integer seed; the same seed gives the same batch.

    Returns:
      ``(y_true, logits)``: numpy float32 arrays `[num_samples, num_labels]`.
    """
    check_number("num_samples", num_samples, low=1, integer=True)
    check_number("num_labels", num_labels, low=1, integer=True)
    check_number("label_density", label_density, low=0, high=1)
    check_number("logit_scale", logit_scale, low=0, low_open=True)
    check_number("seed", seed, low=0, integer=True)
    y_true, unit_logits = _draw(num_samples, num_labels, label_density, seed)
    return y_true, (logit_scale * unit_logits).astype(np.float32)


def _draw(num_samples, num_labels, label_density, seed):
    """``example_batch``'s labels (float32) and its unit logits (float64, in
    [-1, 1]): the batch at a scale is ``(scale * unit_logits)`` in float32."""
    rng = np.random.default_rng(int(seed))
    shape = (int(num_samples), int(num_labels))
    y_true = (rng.random(shape) < label_density).astype(np.float32)
    unit_logits = rng.uniform(-1.0, 1.0, size=shape)
    y_true[0] = 0.0
    if num_samples >= 2:
        y_true[1] = 1.0
    return y_true, unit_logits


def sample_names(y_true) -> tuple[str, ...]:
    """``"s0 no positive"``, ``"s1 all positive"``, ``"s2"``: each sample,
    and whether it has no pairs."""
    names = []
    for i, row in enumerate(np.asarray(y_true)):
        if not row.any():
            names.append(f"s{i} no positive")
        elif row.all():
            names.append(f"s{i} all positive")
        else:
            names.append(f"s{i}")
    return tuple(names)


def batch_mean(values) -> np.ndarray:
    """The mean over the last (sample) axis as Keras' default reduction forms
    it: a float32 sum divided by the count, so +Inf once the sum passes the
    float32 maximum, even where every sample is finite."""
    values = np.asarray(values, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(values, axis=-1, dtype=np.float32)
        return total / np.float32(values.shape[-1])


def relative_gap(values, reference) -> float:
    """Largest ``|values - reference| / max(|reference|, 1)``: 0 for an empty
    batch, NaN or Inf where either side is not finite."""
    values = np.asarray(values, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(values - reference) / np.maximum(np.abs(reference), 1.0)
    return float(np.max(gap)) if gap.size else 0.0


def _label_count(num_labels) -> int:
    check_number("num_labels", num_labels, low=1, high=MAX_LABELS, integer=True)
    return int(num_labels)


@dataclass(frozen=True)
class SweepSetting:
    """What the scale sweep depends on: the page's controls but the scale."""

    label_density: float = 0.4
    num_labels: int = 6

    def __post_init__(self):
        check_number("label_density", self.label_density, low=0, high=1)
        object.__setattr__(self, "label_density", float(self.label_density))
        object.__setattr__(self, "num_labels", _label_count(self.num_labels))


@dataclass(frozen=True)
class Setting(SweepSetting):
    """The page's controls the loss and its gradient depend on."""

    logit_scale: float = 3.0

    def __post_init__(self):
        super().__post_init__()
        check_number("logit_scale", self.logit_scale, low=0, low_open=True)
        object.__setattr__(self, "logit_scale", float(self.logit_scale))

    @property
    def sweep_setting(self) -> SweepSetting:
        """The fields the scale sweep depends on (a cache key without the scale)."""
        return SweepSetting(self.label_density, self.num_labels)


@dataclass(frozen=True)
class TimingSetting:
    """What the timing table depends on: the label count and the batch size."""

    num_labels: int = 6
    timing_batch: int = 8

    def __post_init__(self):
        check_number("timing_batch", self.timing_batch, low=1, high=1024, integer=True)
        object.__setattr__(self, "num_labels", _label_count(self.num_labels))
        object.__setattr__(self, "timing_batch", int(self.timing_batch))


@dataclass(frozen=True)
class Point:
    """Everything the page shows at one setting (numpy, float32 as computed).

    ``y_true`` and ``logits [B, L]``; ``loss [B]`` (``bpmll_loss``) with its
    gradient ``grad [B, L]`` (of the summed loss, with respect to the logits);
    ``bce`` and ``bce_grad`` the same for binary cross-entropy; ``forms``:
    each form of ``FORMS`` per sample, and ``form_gaps`` its
    ``relative_gap`` to the loop; ``mean_loss``, ``mean_bce`` and
    ``mean_factorised``: ``batch_mean`` of each; ``without_pairs [B]``: the
    rows with no positive or no negative label, and ``num_without_pairs``
    their count; ``without_pairs_zero``: whether each of them gives BP-MLL 0
    with a gradient of exactly 0, and ``bce_moves_without_pairs`` how many of
    them binary cross-entropy still gives a non-zero gradient.

    What the gradient caption states: ``sign_share``, the share of the labels
    in rows with pairs whose gradient has the sign of its role (negative for
    a positive label, positive for a negative one), ``wrong_sign_count``, how
    many have the opposite sign (0 in exact arithmetic: the others are 0 or
    NaN), and ``row_sum_gap``, the
    largest ``|sum of a row's gradient| / sum of its absolute values`` (0 in
    exact arithmetic: BP-MLL only ranks); both None without a row with pairs,
    ``row_sum_gap`` NaN where a gradient is not finite. What the timing
    caption states: ``largest_finite_gap``, the largest finite value of
    ``form_gaps`` (0 if none), and ``largest_log_loss``, the largest
    ``|log E|`` of a sample with a finite, positive loss (None if none).
    """

    setting: Setting
    y_true: np.ndarray
    logits: np.ndarray
    sample_names: tuple
    without_pairs: np.ndarray
    num_without_pairs: int
    loss: np.ndarray
    grad: np.ndarray
    bce: np.ndarray
    bce_grad: np.ndarray
    forms: dict
    form_gaps: dict
    mean_loss: float
    mean_bce: float
    mean_factorised: float
    without_pairs_zero: bool
    bce_moves_without_pairs: int
    sign_share: float | None
    wrong_sign_count: int
    row_sum_gap: float | None
    largest_finite_gap: float
    largest_log_loss: float | None


@dataclass(frozen=True)
class Sweep:
    """The batch-mean losses and gradient norms over ``scales`` (``SWEEP_SCALES``),
    the same labels and unit logits throughout, for BP-MLL (log space), the
    factorised product and binary cross-entropy.

    ``loss_overflow`` and ``factorised_overflow``: the first scale where that
    batch mean is not finite (Keras sums the batch in float32, so this can
    come before any sample's loss overflows); ``sample_overflow``: the first
    scale where some sample's log-space loss itself is not finite; each None
    if there is none. ``curves_gap``: the largest relative gap between the
    two BP-MLL batch means where both are finite.

    How fast each grows with the scale: ``widest_gap``, the widest wrong-way
    gap ``c_l - c_k`` (``l`` negative, ``k`` positive) of the unit draw, so
    the worst pair at scale ``s`` is ranked ``widest_gap * s`` the wrong way
    (at most 2; None without a row with pairs); ``loss_growth`` and
    ``grad_growth``, the slope of ``log`` of the BP-MLL batch mean and of its
    gradient norm per unit of scale between the last two scales where they
    are finite and positive (None if there are no such two); ``bce_growth``,
    the slope of the cross-entropy batch mean between its last two scales.
    The slope of ``log E`` is a weighted mean of the pairs' gaps, so
    ``loss_growth <= widest_gap``, rising toward it as the worst pair takes
    over."""

    setting: SweepSetting
    scales: np.ndarray
    mean_loss: np.ndarray
    mean_factorised: np.ndarray
    mean_bce: np.ndarray
    grad_norm: np.ndarray
    factorised_grad_norm: np.ndarray
    bce_grad_norm: np.ndarray
    loss_overflow: float | None
    factorised_overflow: float | None
    sample_overflow: float | None
    curves_gap: float
    widest_gap: float | None
    loss_growth: float | None
    grad_growth: float | None
    bce_growth: float | None


@dataclass(frozen=True)
class Timings:
    """Median milliseconds per eager call of each form on a seeded
    ``timing_batch x num_labels`` batch (``repeats`` calls after a warm-up),
    each as a multiple of the log-space form's, and the ``fastest`` and the
    ``slowest`` form of this measurement."""

    setting: TimingSetting
    milliseconds: dict
    relative: dict
    repeats: int
    fastest: str
    slowest: str


_MATRIX = tf.TensorSpec([None, None], tf.float32)


@functools.lru_cache(maxsize=None)
def _values_and_grads():
    """``fn(y_true, logits)`` -> ``{name: (values [B], grad [B, L])}`` for
    BP-MLL, the factorised product and binary cross-entropy."""
    losses = {
        "loss": multilabel.bpmll_loss,
        "factorised": bpmll_loss_factorised,
        "bce": binary_crossentropy,
    }

    @tf.function(input_signature=[_MATRIX, _MATRIX], autograph=False)
    def fn(y_true, logits):
        out = {}
        for name, loss in losses.items():
            with tf.GradientTape() as tape:
                tape.watch(logits)
                values = loss(y_true, logits)
            out[name] = (values, tape.gradient(values, logits))
        return out

    return fn


def _loop_and_pairwise(y_true, logits) -> dict:
    return {
        "loop": multilabel.bpmll_loss_loop(y_true, logits),
        "pairwise": multilabel.bpmll_loss_pairwise(y_true, logits),
    }


@functools.lru_cache(maxsize=None)
def _forms(num_labels: int):
    """``fn(y_true, logits)`` -> ``{"loop": [B], "pairwise": [B]}`` for a
    ``[NUM_SAMPLES, num_labels]`` batch: a concrete function, traced here
    once per label count (the loop form needs a static shape), so no call
    traces it and TensorFlow's frequent-retracing warning never fires; the
    scale and the density are values fed to it."""
    spec = tf.TensorSpec([NUM_SAMPLES, num_labels], tf.float32)
    graph = tf.function(_loop_and_pairwise, autograph=False)
    return graph.get_concrete_function(spec, spec)


def _evaluate(y_true, logits) -> dict:
    out = _values_and_grads()(tf.constant(y_true), tf.constant(logits))
    return {name: (v.numpy(), g.numpy()) for name, (v, g) in out.items()}


def at_setting(setting: Setting, seed: int = 0) -> Point:
    """BP-MLL, binary cross-entropy and every form of BP-MLL at ``setting``."""
    y_true, logits = example_batch(
        NUM_SAMPLES, setting.num_labels, label_density=setting.label_density,
        logit_scale=setting.logit_scale, seed=seed,
    )  # fmt: skip
    out = _evaluate(y_true, logits)
    forms = _forms(setting.num_labels)(tf.constant(y_true), tf.constant(logits))
    return _point(
        setting,
        y_true,
        logits,
        loss=out["loss"],
        bce=out["bce"],
        loop=forms["loop"].numpy(),
        pairwise=forms["pairwise"].numpy(),
        factorised=out["factorised"][0],
    )


def _point(setting, y_true, logits, *, loss, bce, loop, pairwise, factorised):
    """The ``Point`` of one batch from what the graphs computed for it:
    ``loss`` and ``bce`` as ``(values [B], grad [B, L])``, the other forms'
    values ``[B]``."""
    (loss, grad), (bce, bce_grad) = loss, bce
    forms = {
        "loop": loop,
        "pairwise": pairwise,
        "log space": loss,
        "factorised": factorised,
    }
    positives = y_true.sum(axis=-1)
    without_pairs = (positives == 0) | (positives == y_true.shape[1])
    form_gaps = {name: relative_gap(v, forms["loop"]) for name, v in forms.items()}
    finite_gaps = [gap for gap in form_gaps.values() if np.isfinite(gap)]
    return Point(
        setting=setting,
        y_true=y_true,
        logits=logits,
        sample_names=sample_names(y_true),
        without_pairs=without_pairs,
        num_without_pairs=int(np.sum(without_pairs)),
        loss=loss,
        grad=grad,
        bce=bce,
        bce_grad=bce_grad,
        forms=forms,
        form_gaps=form_gaps,
        mean_loss=float(batch_mean(loss)),
        mean_bce=float(batch_mean(bce)),
        mean_factorised=float(batch_mean(forms["factorised"])),
        without_pairs_zero=bool(
            not np.any(loss[without_pairs]) and not np.any(grad[without_pairs])
        ),
        bce_moves_without_pairs=int(np.sum(np.any(bce_grad[without_pairs], axis=-1))),
        **_gradient_facts(y_true > 0.5, grad, ~without_pairs),
        largest_finite_gap=max(finite_gaps, default=0.0),
        largest_log_loss=_largest_log(loss),
    )


def _gradient_facts(positive, grad, has_pairs) -> dict:
    """``sign_share`` and ``row_sum_gap`` of ``Point`` (see there)."""
    if not has_pairs.any():
        return {"sign_share": None, "wrong_sign_count": 0, "row_sum_gap": None}
    positive, grad = positive[has_pairs], grad[has_pairs].astype(np.float64)
    expected = np.where(positive, grad < 0, grad > 0)
    opposite = np.where(positive, grad > 0, grad < 0)
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.sum(np.abs(grad), axis=-1)
        gap = np.abs(np.sum(grad, axis=-1)) / np.where(total > 0, total, 1.0)
    return {
        "sign_share": float(np.mean(expected)),
        "wrong_sign_count": int(np.sum(opposite)),
        "row_sum_gap": float(np.max(gap)),
    }


def _largest_log(loss) -> float | None:
    """The largest ``|log E|`` of a finite, positive ``E`` in ``loss``."""
    loss = np.asarray(loss, dtype=np.float64)
    kept = loss[np.isfinite(loss) & (loss > 0)]
    return float(np.max(np.abs(np.log(kept)))) if kept.size else None


def scale_sweep(setting: SweepSetting, seed: int = 0) -> Sweep:
    """The three losses and their gradient norms at every scale of
    ``SWEEP_SCALES``, in one call of the graph (the scales' batches stacked)."""
    batches = [
        example_batch(
            NUM_SAMPLES,
            setting.num_labels,
            label_density=setting.label_density,
            logit_scale=scale,
            seed=seed,
        )
        for scale in SWEEP_SCALES
    ]
    y_true = np.concatenate([labels for labels, _ in batches])
    logits = np.concatenate([scores for _, scores in batches])
    shape = (len(SWEEP_SCALES), NUM_SAMPLES)
    out = {
        name: (values.reshape(shape), grads.reshape(*shape, -1))
        for name, (values, grads) in _evaluate(y_true, logits).items()
    }
    means = {name: batch_mean(values) for name, (values, _) in out.items()}
    norms = {name: grad_norms(grads, axis=(1, 2)) for name, (_, grads) in out.items()}
    both = np.isfinite(means["loss"]) & np.isfinite(means["factorised"])
    unit_batch = example_batch(
        NUM_SAMPLES, setting.num_labels, label_density=setting.label_density,
        logit_scale=1.0, seed=seed,
    )  # fmt: skip
    return Sweep(
        setting=setting,
        scales=SWEEP_SCALES.copy(),
        mean_loss=means["loss"],
        mean_factorised=means["factorised"],
        mean_bce=means["bce"],
        grad_norm=norms["loss"],
        factorised_grad_norm=norms["factorised"],
        bce_grad_norm=norms["bce"],
        loss_overflow=first_where(SWEEP_SCALES, ~np.isfinite(means["loss"])),
        factorised_overflow=first_where(
            SWEEP_SCALES, ~np.isfinite(means["factorised"])
        ),
        sample_overflow=first_where(
            SWEEP_SCALES, ~np.isfinite(out["loss"][0]).all(axis=1)
        ),
        curves_gap=relative_gap(means["factorised"][both], means["loss"][both]),
        widest_gap=widest_gap(*unit_batch),
        loss_growth=_log_slope(SWEEP_SCALES, means["loss"]),
        grad_growth=_log_slope(SWEEP_SCALES, norms["loss"]),
        bce_growth=_slope(SWEEP_SCALES, means["bce"]),
    )


@dataclass(frozen=True)
class Grid:
    """Everything the page shows at every logit scale of ``values``
    (``GRID_SCALES``, the steps of the page's slider) for one
    ``SweepSetting`` and ``seed``: the same labels ``y_true [B, L]`` and the
    same unit draw, scaled by each value.

    The grid comes first in every array: ``logits [G, B, L]``; per sample
    ``loss`` (log space), ``loop``, ``pairwise``, ``factorised`` and ``bce``
    `[G, B]`; the gradients ``grad`` and ``bce_grad`` `[G, B, L]` and each
    sample's gradient norm ``grad_norm`` and ``bce_grad_norm`` `[G, B]` (not
    finite where some entry is not); ``without_pairs [B]``, the samples
    with no (positive, negative) pair. What the Play chart's summary states
    at each value, `[G]`: ``finite_count``, the samples whose log-space loss
    is finite, ``largest_loss``, the largest of them (NaN if none),
    ``factorised_inf`` and ``factorised_nan``, the samples whose factorised
    product is +Inf and NaN. ``at(value)`` is the ``Point`` of one value, as
    ``at_setting`` computes it."""

    setting: SweepSetting
    seed: int
    values: np.ndarray
    y_true: np.ndarray
    without_pairs: np.ndarray
    logits: np.ndarray
    loss: np.ndarray
    grad: np.ndarray
    bce: np.ndarray
    bce_grad: np.ndarray
    loop: np.ndarray
    pairwise: np.ndarray
    factorised: np.ndarray
    grad_norm: np.ndarray
    bce_grad_norm: np.ndarray
    finite_count: np.ndarray
    largest_loss: np.ndarray
    factorised_inf: np.ndarray
    factorised_nan: np.ndarray

    def index(self, value) -> int | None:
        """The position of ``value`` in ``values``, None if it is not one."""
        hits = np.flatnonzero(np.isclose(self.values, float(value), rtol=0, atol=1e-9))
        return int(hits[0]) if hits.size else None

    def nearest(self, value) -> int:
        """The position of the grid value nearest ``value``."""
        return int(np.argmin(np.abs(self.values - float(value))))

    def at(self, value) -> Point:
        """The ``Point`` at the logit scale ``value``: looked up for a grid
        value, computed by ``at_setting`` for any other."""
        setting = Setting(self.setting.label_density, self.setting.num_labels, value)
        i = self.index(value)
        if i is None:
            return at_setting(setting, self.seed)
        return _point(
            setting,
            self.y_true,
            self.logits[i],
            loss=(self.loss[i], self.grad[i]),
            bce=(self.bce[i], self.bce_grad[i]),
            loop=self.loop[i],
            pairwise=self.pairwise[i],
            factorised=self.factorised[i],
        )


@functools.lru_cache(maxsize=None)
def _grid_forms(num_labels: int):
    """``fn(y_true [B, L], logits [G, B, L])`` -> ``{"loop": [G, B],
    "pairwise": [G, B]}``: the forms of ``_forms`` for each of the ``G``
    batches in turn (``tf.map_fn``: the loop form needs the static
    ``[NUM_SAMPLES, num_labels]`` of one batch, and one batch's pair tensor
    is all the memory the pairwise form holds at a time). Traced once per
    label count; the grid's length, the scales and the density are fed."""
    labels = tf.TensorSpec([NUM_SAMPLES, num_labels], tf.float32)
    grid = tf.TensorSpec([None, NUM_SAMPLES, num_labels], tf.float32)
    per_batch = tf.TensorSpec([NUM_SAMPLES], tf.float32)

    @tf.function(input_signature=[labels, grid], autograph=False)
    def fn(y_true, logits):
        return tf.map_fn(
            lambda batch: _loop_and_pairwise(y_true, batch),
            logits,
            fn_output_signature={"loop": per_batch, "pairwise": per_batch},
        )

    return fn


def over_grid(setting: SweepSetting, seed: int = 0) -> Grid:
    """Every number ``at_setting`` gives, at every logit scale of
    ``GRID_SCALES``, in two graph calls: the values and gradients with the
    grid's batches stacked on the batch axis (each row is a sample at a
    scale; the losses are per row, so rows never mix), and the loop and
    pairwise forms mapped over the grid."""
    y_true, unit_logits = _draw(
        NUM_SAMPLES, setting.num_labels, setting.label_density, seed
    )
    values = GRID_SCALES.copy()
    # As example_batch scales it: float64 scale times float64 draw, then float32.
    logits = (values[:, None, None] * unit_logits).astype(np.float32)
    shape = logits.shape
    stacked = np.broadcast_to(y_true, shape).reshape(-1, shape[-1])
    out = {
        name: (v.reshape(shape[:2]), g.reshape(shape))
        for name, (v, g) in _evaluate(stacked, logits.reshape(-1, shape[-1])).items()
    }
    forms = _grid_forms(setting.num_labels)(tf.constant(y_true), tf.constant(logits))
    loss, grad = out["loss"]
    bce, bce_grad = out["bce"]
    factorised = out["factorised"][0]
    finite = np.isfinite(loss)
    positives = y_true.sum(axis=-1)
    return Grid(
        setting=setting,
        seed=int(seed),
        values=values,
        y_true=y_true,
        without_pairs=(positives == 0) | (positives == y_true.shape[1]),
        logits=logits,
        loss=loss,
        grad=grad,
        bce=bce,
        bce_grad=bce_grad,
        loop=forms["loop"].numpy(),
        pairwise=forms["pairwise"].numpy(),
        factorised=factorised,
        grad_norm=grad_norms(grad, axis=-1),
        bce_grad_norm=grad_norms(bce_grad, axis=-1),
        finite_count=finite.sum(axis=-1),
        largest_loss=np.where(
            finite.any(axis=-1),
            np.max(np.where(finite, loss, -np.inf), axis=-1),
            np.nan,
        ),
        factorised_inf=np.isposinf(factorised).sum(axis=-1),
        factorised_nan=np.isnan(factorised).sum(axis=-1),
    )


def widest_gap(y_true, logits) -> float | None:
    """The widest wrong-way gap ``max c_l - min c_k`` (``l`` negative, ``k``
    positive) over the rows with pairs; None if no row has a pair."""
    positive = np.asarray(y_true) > 0.5
    logits = np.asarray(logits, dtype=np.float64)
    has_pairs = positive.any(axis=-1) & ~positive.all(axis=-1)
    if not has_pairs.any():
        return None
    positive, logits = positive[has_pairs], logits[has_pairs]
    highest_negative = np.max(np.where(positive, -np.inf, logits), axis=-1)
    lowest_positive = np.min(np.where(positive, logits, np.inf), axis=-1)
    return float(np.max(highest_negative - lowest_positive))


def _slope(x, y) -> float | None:
    """``dy/dx`` between the last two points where ``y`` is finite."""
    kept = np.flatnonzero(np.isfinite(y))
    if kept.size < 2:
        return None
    a, b = kept[-2], kept[-1]
    return float((y[b] - y[a]) / (x[b] - x[a]))


def _log_slope(x, y) -> float | None:
    """``_slope`` of ``log y`` over the points where ``y`` is positive."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _slope(x, np.where(y > 0, np.log(y), np.nan))


def timings(setting: TimingSetting, run: int = 0) -> Timings:
    """Times every form of ``FORMS`` eagerly on a seeded batch (seed 0, the
    default scale and density). ``run`` only tells measurements apart: a new
    value asks a cache for a new measurement."""
    del run
    y_true, logits = example_batch(
        setting.timing_batch, setting.num_labels, label_density=TIMING_DENSITY,
        logit_scale=TIMING_SCALE, seed=0,
    )  # fmt: skip
    seconds = {
        name: analysis.median_time(
            lambda form=form: form(y_true, logits), repeats=TIMING_REPEATS
        )
        for name, form in FORMS.items()
    }
    return Timings(
        setting=setting,
        milliseconds={name: s * 1e3 for name, s in seconds.items()},
        relative={name: s / seconds["log space"] for name, s in seconds.items()},
        repeats=TIMING_REPEATS,
        fastest=min(seconds, key=seconds.get),
        slowest=max(seconds, key=seconds.get),
    )


def check_lesson(name: str, values: Mapping, seed: int) -> Claim:
    """The outcome the lesson ``name`` states, at the control ``values`` (by
    name, as the page holds them).

    - ``"no_pairs"``: some samples have no (positive, negative) pair, so
      ``|Y||Ybar| = 0``, and each of them gives BP-MLL 0 with a gradient of
      exactly 0;
    - ``"overflow"``: the factorised product is +Inf in some sample, every
      log-space value and gradient is finite, and a few scales further on (at
      most 6 above the setting's) some sample's log-space loss itself passes
      the float32 maximum.
    """
    setting = Setting(
        label_density=values["label_density"],
        num_labels=values["num_labels"],
        logit_scale=values["logit_scale"],
    )
    point = at_setting(setting, seed)
    if name == "no_pairs":
        count, zero = point.num_without_pairs, point.without_pairs_zero
        return Claim(
            holds=count > 0 and zero,
            statement=f"{count} of {NUM_SAMPLES} samples have no pairs "
            f"(|Y||Ȳ| = 0), and {'each gives' if zero else 'not all give'} BP-MLL "
            "0 with a gradient of exactly 0.",
        )
    if name == "overflow":
        overflowed = np.isposinf(point.forms["factorised"])
        finite = np.isfinite(point.loss).all() and np.isfinite(point.grad).all()
        overflow = scale_sweep(setting.sweep_setting, seed).sample_overflow
        further = overflow is not None and 0 < overflow - setting.logit_scale <= 6
        loss_text = (
            "every log-space value and gradient is finite (largest value "
            f"{np.max(point.loss):.3g})"
            if finite
            else "the log-space form is not finite either"
        )
        at = (
            "at no scale of the sweep"
            if overflow is None
            else f"from a scale of {overflow:g}, "
            f"{overflow - setting.logit_scale:g} above this one"
        )
        return Claim(
            holds=bool(overflowed.any() and finite and further),
            statement=f"At a scale of {setting.logit_scale:g} with "
            f"{setting.num_labels} labels the factorised product is +Inf in "
            f"{int(overflowed.sum())} of {NUM_SAMPLES} samples while {loss_text}; "
            f"a sample's log-space loss itself passes the float32 maximum {at}.",
        )
    raise ValueError(f"`name` must be 'no_pairs' or 'overflow', got {name!r}.")


@dataclass(frozen=True)
class TrainFacts:
    """What the Train panel's introduction states about its task, from
    ``lossviz.training.multilabel`` at its defaults: the model's
    ``hidden_units``, the ``num_labels`` logits, the ``num_features``, the
    ``label_density``, the expected ``labels_per_sample`` (a sample drawn
    without a positive gets one: ``L·d + (1 - d)^L``), the ``num_heldout``
    samples scored after each epoch and the logit ``threshold`` of the
    Hamming loss."""

    hidden_units: int
    num_labels: int
    num_features: int
    label_density: float
    labels_per_sample: float
    num_heldout: int
    threshold: float


def train_facts() -> TrainFacts:
    """The Train panel's task at its defaults (``TrainFacts``)."""
    params = task.check_params({})
    labels, density = params["num_labels"], params["label_density"]
    return TrainFacts(
        hidden_units=params["hidden_units"],
        num_labels=labels,
        num_features=params["num_features"],
        label_density=density,
        labels_per_sample=labels * density + (1 - density) ** labels,
        num_heldout=task.NUM_HELDOUT,
        threshold=task.THRESHOLD,
    )


def train_runs(setting: Setting | None = None) -> tuple[RunSpec, ...]:
    """The Train panel's runs: binary cross-entropy, then BP-MLL (last, so the
    summary the panel shows below its table is the one of this page's loss).
    No control of the page changes them."""
    del setting
    return (
        RunSpec("binary cross-entropy", "bce"),
        RunSpec("BP-MLL", "bpmll"),
    )
