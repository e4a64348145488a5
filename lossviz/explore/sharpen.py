"""What the "Softmax -> one-hot" page computes.

A seeded batch of logits, an embedding table and target embeddings; the loss
``embedding_target_loss`` of ``softmax(logits)`` at a setting (power,
iterations, distance) with its gradient with respect to the logits; every
sharpened form of the distribution (log space, naive, temperature,
straight-through, Gumbel-softmax); and a sweep over the power grid of the
page's control. Every number a sentence on the page states (the temperature
``1/k**n``, the naive form's NaN count, the gap between power sharpening and
the temperature softmax, the first power where the naive form is NaN or the
gradient exactly 0) is a field here.

The graphs are compiled once per (iterations, distance[, hard]) and fed
tensors, so a slider move never retraces them. No autograph: lossviz has no
tensor-dependent Python control flow, and converting it took seconds.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lossviz import registry, sharpen
from lossviz._common import check_number
from lossviz._tf import tf
from lossviz.explore._base import (
    RunSpec,
    TrainSpec,
    first_where,
    grad_norm,
    grad_norms,
)

FORMULA = sharpen.FORMULA
NUM_SAMPLES, VOCAB_SIZE, EMBEDDING_DIM = 4, 8, 5

_ENTRY = registry.get("embedding_target_loss")
PARAMS = {name: _ENTRY.param(name) for name in ("power", "iterations", "distance")}
MAX_ITERATIONS = PARAMS["iterations"].ui_range[1]
# Eight powers per decade over the power control's range.
_LOW, _HIGH = min(PARAMS["power"].ui_options), max(PARAMS["power"].ui_options)
SWEEP_POWERS = np.geomspace(_LOW, _HIGH, round(8 * math.log10(_HIGH / _LOW)) + 1)

# What the page's "Use it in your model" shows the source of.
SOURCES = (sharpen.power_sharpen, sharpen.embedding_target_loss,
           sharpen.EmbeddingTargetLoss)  # fmt: skip

TRAINING = TrainSpec(
    task="sharpen",
    metrics={
        "val_loss": "Held-out loss",
        "val_word_accuracy": "Held-out word accuracy",
    },
    epochs=10,
)


@dataclass(frozen=True)
class Batch:
    """A seeded example: ``logits [B, V]``, ``embedding [V, D]``, ``target
    [B, D]`` (float32) and ``target_ids [B]`` (int64)."""

    logits: np.ndarray
    embedding: np.ndarray
    target: np.ndarray
    target_ids: np.ndarray


def example_batch(
    num_samples=NUM_SAMPLES,
    vocab_size=VOCAB_SIZE,
    embedding_dim=EMBEDDING_DIM,
    *,
    logit_scale=2.0,
    seed=0,
) -> Batch:
    """A small seeded example: logits, an embedding table and target embeddings.

    Logits are ``N(0, 1) * logit_scale``; the embedding rows are ``N(0, 1)``.
    The first half of the samples (rounded up) have their target token at the
    argmax of the logits (the model is right, so sharpening helps), the others
    a different token (the model is wrong, so sharpening locks in the error).

    Raises:
      ValueError: ``num_samples < 1``, ``vocab_size < 2``, ``embedding_dim <
        1``, ``logit_scale <= 0`` or a negative ``seed``.
    """
    check_number("num_samples", num_samples, low=1, integer=True)
    check_number("vocab_size", vocab_size, low=2, integer=True)
    check_number("embedding_dim", embedding_dim, low=1, integer=True)
    check_number("logit_scale", logit_scale, low=0.0, low_open=True)
    check_number("seed", seed, low=0, integer=True)
    rng = np.random.default_rng(int(seed))
    logits = rng.normal(size=(num_samples, vocab_size)) * logit_scale
    embedding = rng.normal(size=(vocab_size, embedding_dim))
    target_ids = logits.argmax(-1)
    wrong = np.arange(num_samples) >= (num_samples + 1) // 2
    offsets = rng.integers(1, vocab_size, size=num_samples)
    target_ids = np.where(wrong, (target_ids + offsets) % vocab_size, target_ids)
    return Batch(
        logits.astype(np.float32),
        embedding.astype(np.float32),
        embedding[target_ids].astype(np.float32),
        target_ids.astype(np.int64),
    )


def sample_names(logits, target_ids) -> tuple[str, ...]:
    """``"2: target 5 (not argmax)"``: each sample, its target token, and
    whether the target is the argmax of its logits."""
    right = np.asarray(logits).argmax(-1) == np.asarray(target_ids)
    return tuple(
        f"{i}: target {t} ({'= argmax' if ok else 'not argmax'})"
        for i, (t, ok) in enumerate(zip(target_ids, right, strict=True))
    )


@dataclass(frozen=True)
class SweepSetting:
    """What the power sweep depends on: the page's controls but the power."""

    iterations: int = 1
    distance: str = "cosine"
    logit_scale: float = 2.0

    def __post_init__(self):
        iterations = PARAMS["iterations"].validate(self.iterations)
        check_number("iterations", iterations, high=MAX_ITERATIONS)
        object.__setattr__(self, "iterations", iterations)
        object.__setattr__(self, "distance", PARAMS["distance"].validate(self.distance))
        check_number("logit_scale", self.logit_scale, low=0.0, low_open=True)


@dataclass(frozen=True)
class Setting(SweepSetting):
    """The page's controls the numbers depend on (all but the sample shown)."""

    power: float = 2.0
    hard: bool = False

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "power", PARAMS["power"].validate(self.power))
        if not isinstance(self.hard, bool | np.bool_):
            raise ValueError(f"`hard` must be true or false, got {self.hard!r}.")
        object.__setattr__(self, "hard", bool(self.hard))

    @property
    def sweep_setting(self) -> SweepSetting:
        """The fields the power sweep depends on (a cache key without the power)."""
        return SweepSetting(self.iterations, self.distance, self.logit_scale)

    @property
    def temperature(self) -> float:
        """``1 / power**iterations``: power sharpening of ``softmax(z)``,
        ``iterations`` times, is the softmax of ``z`` at this temperature."""
        return self.power**-self.iterations


@dataclass(frozen=True)
class Point:
    """Everything the page shows at one setting (numpy, float32 as computed).

    ``loss [B]`` per sample and ``mean_loss``; ``grad [B, V]`` of the summed
    loss with respect to the logits and its norm; the equivalent
    ``temperature``; the distributions ``probs`` (softmax), ``stable``
    (``power_sharpen``), ``naive`` (``x**k / sum x**k``), ``tempered``
    (softmax at ``temperature``), ``straight_through`` and ``gumbel`` (a
    Gumbel-softmax sample at ``temperature``, hard if asked), each ``[B, V]``;
    ``naive_nonfinite`` (NaN/Inf entries of ``naive``) and ``max_gap``
    (``max |stable - tempered|``).
    """

    setting: Setting
    logits: np.ndarray
    target_ids: np.ndarray
    sample_names: tuple
    loss: np.ndarray
    mean_loss: float
    grad: np.ndarray
    grad_norm: float
    temperature: float
    probs: np.ndarray
    stable: np.ndarray
    naive: np.ndarray
    tempered: np.ndarray
    straight_through: np.ndarray
    gumbel: np.ndarray
    naive_nonfinite: int
    max_gap: float


@dataclass(frozen=True)
class Sweep:
    """The loss over ``powers`` (``SWEEP_POWERS``), same logits throughout.

    ``mean_loss`` and ``grad_norm`` per power; ``stable_top`` and
    ``naive_top``: the sharpened probability of each sample's top token,
    batch mean (``naive_top`` NaN where the naive form has a non-finite
    entry); ``first_nan``: the first power where it has one;
    ``first_zero_grad``: the first power where the gradient is exactly 0
    (None when there is none).
    """

    setting: SweepSetting
    powers: np.ndarray
    mean_loss: np.ndarray
    grad_norm: np.ndarray
    stable_top: np.ndarray
    naive_top: np.ndarray
    first_nan: float | None
    first_zero_grad: float | None


@functools.lru_cache(maxsize=64)
def _tensors(logit_scale: float, seed: int):
    batch = example_batch(logit_scale=logit_scale, seed=seed)
    return (
        batch,
        tf.constant(batch.logits),
        tf.constant(batch.target),
        tf.constant(batch.embedding),
    )


def _loss_and_grad(logits, power, target, embedding, iterations, distance):
    # A fresh tensor in the graph being built (the map_fn body has its own)
    # for the tape to watch.
    logits = tf.identity(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        probs = sharpen.temperature_softmax(logits, 1.0)
        loss = sharpen.embedding_target_loss(
            target, probs, embedding, power, iterations, distance
        )
        total = tf.reduce_sum(loss)
    return probs, loss, tape.gradient(total, logits)


@functools.lru_cache(maxsize=None)
def _point_graph(iterations: int, distance: str, hard: bool):
    """``fn(logits, power, temperature, target, embedding, seed)``."""

    @tf.function(autograph=False)
    def fn(logits, power, temperature, target, embedding, seed):
        probs, loss, grad = _loss_and_grad(
            logits, power, target, embedding, iterations, distance
        )
        return {
            "loss": loss,
            "grad": grad,
            "probs": probs,
            "stable": sharpen.power_sharpen(probs, power, iterations),
            "naive": sharpen.naive_power_sharpen(probs, power, iterations),
            "tempered": sharpen.temperature_softmax(logits, temperature),
            "straight_through": sharpen.straight_through_one_hot(probs),
            "gumbel": sharpen.gumbel_softmax(logits, temperature, hard=hard, seed=seed),
        }

    return fn


@functools.lru_cache(maxsize=None)
def _sweep_graph(iterations: int, distance: str):
    """``fn(logits, powers, target, embedding)``: loss, gradient and both
    sharpened forms at every power, in one call."""

    @tf.function(autograph=False)
    def fn(logits, powers, target, embedding):
        def at(power):
            probs, loss, grad = _loss_and_grad(
                logits, power, target, embedding, iterations, distance
            )
            stable = sharpen.power_sharpen(probs, power, iterations)
            naive = sharpen.naive_power_sharpen(probs, power, iterations)
            return loss, grad, stable, naive

        return tf.map_fn(at, powers, fn_output_signature=(tf.float32,) * 4)

    return fn


def at_setting(setting: Setting, seed: int = 0) -> Point:
    """The loss, its gradient and every sharpened form at ``setting``."""
    batch, logits, target, embedding = _tensors(setting.logit_scale, seed)
    fn = _point_graph(setting.iterations, setting.distance, setting.hard)
    out = fn(
        logits,
        tf.constant(setting.power, tf.float32),
        tf.constant(setting.temperature, tf.float32),
        target,
        embedding,
        tf.constant(seed, tf.int64),
    )
    out = {name: value.numpy() for name, value in out.items()}
    with np.errstate(invalid="ignore", over="ignore"):
        mean_loss = float(np.mean(out["loss"], dtype=np.float64))
        gap = np.abs(out["stable"].astype(np.float64) - out["tempered"])
    return Point(
        setting=setting,
        logits=batch.logits,
        target_ids=batch.target_ids,
        sample_names=sample_names(batch.logits, batch.target_ids),
        mean_loss=mean_loss,
        grad_norm=grad_norm(out["grad"]),
        temperature=setting.temperature,
        naive_nonfinite=int((~np.isfinite(out["naive"])).sum()),
        max_gap=float(np.max(gap)),
        **out,
    )


def power_sweep(setting: SweepSetting, seed: int = 0) -> Sweep:
    """The loss, its gradient norm and the top sharpened probability over
    ``SWEEP_POWERS``."""
    _, logits, target, embedding = _tensors(setting.logit_scale, seed)
    fn = _sweep_graph(setting.iterations, setting.distance)
    powers = tf.constant(SWEEP_POWERS, tf.float32)
    out = fn(logits, powers, target, embedding)
    loss, grad, stable, naive = (t.numpy() for t in out)
    broken = ~np.isfinite(naive).all(axis=(1, 2))
    norms = grad_norms(grad, axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        mean_loss = np.mean(loss, axis=-1, dtype=np.float64)
        naive_top = np.where(broken, np.nan, naive.max(-1).mean(-1, dtype=np.float64))
    return Sweep(
        setting=setting,
        powers=SWEEP_POWERS.copy(),
        mean_loss=mean_loss,
        grad_norm=norms,
        stable_top=stable.max(-1).mean(-1, dtype=np.float64),
        naive_top=naive_top,
        first_nan=first_where(SWEEP_POWERS, broken),
        first_zero_grad=first_where(SWEEP_POWERS, norms == 0),
    )


def train_runs(setting: Setting) -> tuple[RunSpec, ...]:
    """The Train panel's runs: softmax, sharpened at the setting, and
    straight-through. The labels follow the controls, so a run drawn earlier
    keeps the settings it was trained with in its name."""
    distance = setting.distance
    how = "" if distance == "cosine" else f", {distance}"
    times = "" if setting.iterations == 1 else f" × {setting.iterations}"
    sharpened = {"power": setting.power, "iterations": setting.iterations}
    return (
        RunSpec(f"softmax (k = 1{how})", "softmax", {"distance": distance}),
        RunSpec(
            f"sharpened (k = {setting.power:g}{times}{how})",
            "sharpened",
            {**sharpened, "distance": distance},
        ),
        RunSpec(
            f"straight-through (k = 1{how})", "straight-through", {"distance": distance}
        ),
    )
