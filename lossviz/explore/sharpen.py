"""What the "Softmax -> one-hot" page computes.

A seeded batch of logits, an embedding table and target embeddings; the loss
``embedding_target_loss`` at a setting, with its gradient with respect to the
logits. The setting sharpens either by a power ``k`` (``power_sharpen`` of
``softmax(logits)``, ``iterations`` times, as ``EmbeddingTargetLoss`` does) or
by a temperature ``T`` (the model's output is ``softmax(logits / T)``): one
drives, the other is derived (``T = 1 / k**n``), so they never disagree.
Every sharpened form of the distribution (log space, naive, temperature,
straight-through, Gumbel-softmax); a sweep over the power grid of the page's
control, or over the temperature grid; each lesson's outcome
(``check_lesson``). Every number a sentence on the page states (the derived
temperature or power, the naive form's NaN count, the gap between power
sharpening and the temperature softmax, the first power where the naive form
is NaN or the gradient exactly 0, the sizes of the example and of the
training task) is a field here.

The page's main control is a lookup: ``over_grid`` computes every point of
the driving control's grid (``GRID``) in one graph call, and ``Grid.at``
gives the ``Point`` of one value. The graphs are compiled once per
(iterations, distance, sharpen_by[, hard]) and fed tensors, so a move of any
other control never retraces them. No autograph: lossviz
has no tensor-dependent Python control flow, and converting it took seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lossviz import registry, sharpen
from lossviz._common import check_choice, check_number
from lossviz._tf import tf
from lossviz.explore._base import (
    Claim,
    RunSpec,
    TrainSpec,
    first_where,
    grad_norm,
    grad_norms,
)
from lossviz.training import sharpen as task

FORMULA = sharpen.FORMULA
NUM_SAMPLES, VOCAB_SIZE, EMBEDDING_DIM = 4, 8, 5

TINY32 = float(np.finfo(np.float32).tiny)

#: What drives the sharpening: the power k or the temperature T.
SHARPEN_BY = ("power", "temperature")

_ENTRY = registry.get("embedding_target_loss")
_POWER = _ENTRY.param("power")
PARAMS = {name: _ENTRY.param(name) for name in ("power", "iterations", "distance")} | {
    # Not a parameter of the loss: the temperature of softmax(z / T), the
    # model's output when the page sharpens by temperature. Its grid is the
    # power grid's reciprocals, so the power it stands for, 1 / T, is one of
    # the power control's values.
    "temperature": registry.ParamSpec(
        "temperature",
        float,
        1.0 / 2.0,
        "temperature T of softmax(z / T): T < 1 sharpens, T = 1/k is power k",
        low=1.0 / sharpen.MAX_POWER,
        ui_options=tuple(sorted(1.0 / k for k in _POWER.ui_options)),
    ),
}
MAX_ITERATIONS = PARAMS["iterations"].ui_range[1]
# Eight powers per decade over the power control's range; the temperatures
# are their reciprocals, in the same order (the distribution sharpens along
# both).
_LOW, _HIGH = min(_POWER.ui_options), max(_POWER.ui_options)
SWEEP_POWERS = np.geomspace(_LOW, _HIGH, round(8 * math.log10(_HIGH / _LOW)) + 1)
SWEEP_TEMPERATURES = 1.0 / SWEEP_POWERS
#: The page's grid: every value the driving control offers, in the order the
#: distribution sharpens (powers up, temperatures down).
GRID = {
    "power": np.array(sorted(PARAMS["power"].ui_options)),
    "temperature": np.array(sorted(PARAMS["temperature"].ui_options, reverse=True)),
}

#: A gradient norm below this share of its value with the plain softmax
#: (k = 1) counts as vanished, and a top probability within it of 1 as one-hot.
VANISHED_FRACTION = 1e-3
#: How close sharpening by T and by k = 1/T must be: the per-sample loss, and
#: the gradient relative to its largest entry (or the plain softmax's).
TIE_TOLERANCE = 1e-4

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
    """What the sweep depends on: the page's controls but the power, the
    temperature and the Gumbel toggle.

    ``sharpen_by`` picks which parameter the page drives: ``"power"`` (``k``,
    applied ``iterations`` times) or ``"temperature"`` (``softmax(z / T)``,
    which is one softmax: ``iterations`` is set to 1, whatever is given).
    """

    iterations: int = 1
    distance: str = "cosine"
    logit_scale: float = 2.0
    sharpen_by: str = "power"

    def __post_init__(self):
        iterations = PARAMS["iterations"].validate(self.iterations)
        check_number("iterations", iterations, high=MAX_ITERATIONS)
        by = check_choice("sharpen_by", self.sharpen_by, SHARPEN_BY)
        object.__setattr__(self, "sharpen_by", by)
        object.__setattr__(self, "iterations", 1 if by == "temperature" else iterations)
        object.__setattr__(self, "distance", PARAMS["distance"].validate(self.distance))
        check_number("logit_scale", self.logit_scale, low=0.0, low_open=True)


@dataclass(frozen=True)
class Setting(SweepSetting):
    """The page's controls the numbers depend on (all but the sample shown).

    The parameter ``sharpen_by`` names drives, and the other is derived from
    it, so the two never disagree: by power, ``temperature = 1 / power **
    iterations`` (the value given is replaced); by temperature, ``power = 1 /
    temperature`` and ``iterations = 1`` (the values given are replaced).
    """

    power: float = 2.0
    hard: bool = False
    temperature: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.sharpen_by == "temperature":
            temperature = PARAMS["temperature"].validate(self.temperature)
            power = PARAMS["power"].validate(1.0 / temperature)
        else:
            power = PARAMS["power"].validate(self.power)
            temperature = power**-self.iterations
        object.__setattr__(self, "power", power)
        object.__setattr__(self, "temperature", temperature)
        if not isinstance(self.hard, bool | np.bool_):
            raise ValueError(f"`hard` must be true or false, got {self.hard!r}.")
        object.__setattr__(self, "hard", bool(self.hard))

    @classmethod
    def of(cls, values: Mapping) -> Setting:
        """The setting of the control ``values`` by name (the page's ``Values``,
        or any mapping); names that are not fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @property
    def sweep_setting(self) -> SweepSetting:
        """The fields the sweep depends on (a cache key without the power or
        the temperature)."""
        return SweepSetting(
            self.iterations, self.distance, self.logit_scale, self.sharpen_by
        )

    @property
    def driving(self) -> float:
        """The value of the control that drives: the power or the temperature."""
        return self.temperature if self.sharpen_by == "temperature" else self.power

    @property
    def derived(self) -> float:
        """The value that follows from it: ``1 / power**iterations`` or
        ``1 / temperature``."""
        return self.power if self.sharpen_by == "temperature" else self.temperature

    def by_power(self, power: float, iterations: int = 1) -> Setting:
        """This setting sharpened by ``power`` (``iterations`` times) instead."""
        return dataclasses.replace(
            self, sharpen_by="power", power=power, iterations=iterations
        )

    def by_temperature(self, temperature: float) -> Setting:
        """This setting sharpened by ``temperature`` instead."""
        return dataclasses.replace(
            self, sharpen_by="temperature", temperature=temperature
        )

    def describe(self) -> str:
        """``"k = 200"``, ``"k = 5 × 2 (T = 1/kⁿ = 0.04)"`` or ``"T = 0.02
        (k = 1/T = 50)"``: the driving parameter, then the derived one."""
        if self.sharpen_by == "temperature":
            return f"T = {self.temperature:g} (k = 1/T = {self.power:g})"
        if self.iterations == 1:
            return f"k = {self.power:g}"
        return (
            f"k = {self.power:g} × {self.iterations} "
            f"(T = 1/kⁿ = {self.temperature:.3g})"
        )


@dataclass(frozen=True)
class Point:
    """Everything the page shows at one setting (numpy, float32 as computed).

    ``loss [B]`` per sample and ``mean_loss``; ``grad [B, V]`` of the summed
    loss with respect to the logits and its norm; the equivalent ``power``
    and ``temperature``; the distributions ``probs`` (softmax), ``stable``
    (``power_sharpen`` of ``probs`` at ``power``, ``iterations`` times),
    ``naive`` (``x**k / sum x**k``, the same), ``tempered`` (softmax of the
    logits at ``temperature``), ``straight_through`` and ``gumbel`` (a
    Gumbel-softmax sample at ``temperature``, hard if asked), each ``[B, V]``;
    ``sharpened``: the one of ``stable`` and ``tempered`` the loss sees (by
    power or by temperature); ``naive_nonfinite`` (NaN/Inf entries of
    ``naive``) and ``max_gap`` (``max |stable - tempered|``).
    """

    setting: Setting
    logits: np.ndarray
    target_ids: np.ndarray
    sample_names: tuple
    loss: np.ndarray
    mean_loss: float
    grad: np.ndarray
    grad_norm: float
    power: float
    temperature: float
    probs: np.ndarray
    stable: np.ndarray
    naive: np.ndarray
    tempered: np.ndarray
    straight_through: np.ndarray
    gumbel: np.ndarray
    naive_nonfinite: int
    max_gap: float

    @property
    def sharpened(self) -> np.ndarray:
        by_temperature = self.setting.sharpen_by == "temperature"
        return self.tempered if by_temperature else self.stable


@dataclass(frozen=True)
class Sweep:
    """The loss over the grid of the driving parameter, same logits throughout.

    ``values``: ``SWEEP_POWERS`` (by power) or ``SWEEP_TEMPERATURES`` (by
    temperature, from 10 down to 1e-4), both in the order the distribution
    sharpens; ``powers`` and ``temperatures``: the equivalent power ``k`` and
    temperature ``1 / k**n`` at each point. ``mean_loss`` and ``grad_norm``
    per point; ``sharpened_top`` and ``naive_top``: the top probability of
    each sample, batch mean, of what the loss sees (``power_sharpen`` or the
    temperature softmax) and of the naive ``x**k / sum x**k`` at the
    equivalent power (NaN where that has a non-finite entry); ``first_nan``:
    the first value in that order where it has one; ``first_zero_grad``: the
    first value where the gradient is exactly 0 (None when there is none).
    """

    setting: SweepSetting
    values: np.ndarray
    powers: np.ndarray
    temperatures: np.ndarray
    mean_loss: np.ndarray
    grad_norm: np.ndarray
    sharpened_top: np.ndarray
    naive_top: np.ndarray
    first_nan: float | None
    first_zero_grad: float | None

    @property
    def by(self) -> str:
        return self.setting.sharpen_by


@functools.lru_cache(maxsize=64)
def _tensors(logit_scale: float, seed: int):
    batch = example_batch(logit_scale=logit_scale, seed=seed)
    return (
        batch,
        tf.constant(batch.logits),
        tf.constant(batch.target),
        tf.constant(batch.embedding),
    )


def _loss_and_grad(logits, power, temperature, target, embedding, path):
    """``probs = softmax(logits)``, what the loss sees, the loss per sample
    and the gradient of its sum with respect to the logits. By power, the
    loss sharpens ``probs`` (``power_sharpen``, as ``EmbeddingTargetLoss``
    does); by temperature, the model's output is ``softmax(logits / T)`` and
    the loss takes it as it is (power 1 only renormalises)."""
    # A fresh tensor in the graph being built (the map_fn body has its own)
    # for the tape to watch.
    logits = tf.identity(logits)
    iterations, distance, sharpen_by = path
    with tf.GradientTape() as tape:
        tape.watch(logits)
        probs = sharpen.temperature_softmax(logits, 1.0)
        if sharpen_by == "temperature":
            sharpened = sharpen.temperature_softmax(logits, temperature)
            loss = sharpen.embedding_target_loss(
                target, sharpened, embedding, 1.0, 1, distance
            )
        else:
            sharpened = sharpen.power_sharpen(probs, power, iterations)
            loss = sharpen.embedding_target_loss(
                target, probs, embedding, power, iterations, distance
            )
        total = tf.reduce_sum(loss)
    return probs, sharpened, loss, tape.gradient(total, logits)


def _path(setting: SweepSetting) -> tuple[int, str, str]:
    """What a graph depends on: ``(iterations, distance, sharpen_by)`` (the
    logit scale and the seed are fed as tensors)."""
    return setting.iterations, setting.distance, setting.sharpen_by


@functools.lru_cache(maxsize=None)
def _point_graph(path: tuple[int, str, str], hard: bool):
    """``fn(logits, power, temperature, target, embedding, seed)``."""
    iterations = path[0]

    @tf.function(autograph=False)
    def fn(logits, power, temperature, target, embedding, seed):
        probs, _, loss, grad = _loss_and_grad(
            logits, power, temperature, target, embedding, path
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
def _sweep_graph(path: tuple[int, str, str]):
    """``fn(logits, powers, temperatures, target, embedding)``: the loss, its
    gradient, what the loss sees and the naive form at every point, in one
    call."""
    iterations = path[0]

    @tf.function(autograph=False)
    def fn(logits, powers, temperatures, target, embedding):
        def at(point):
            power, temperature = point
            probs, sharpened, loss, grad = _loss_and_grad(
                logits, power, temperature, target, embedding, path
            )
            naive = sharpen.naive_power_sharpen(probs, power, iterations)
            return loss, grad, sharpened, naive

        return tf.map_fn(
            at, (powers, temperatures), fn_output_signature=(tf.float32,) * 4
        )

    return fn


def _point(setting: Setting, batch: Batch, names: tuple, out: dict) -> Point:
    """The ``Point`` of the graph's outputs ``out`` at ``setting``."""
    with np.errstate(invalid="ignore", over="ignore"):
        mean_loss = float(np.mean(out["loss"], dtype=np.float64))
        gap = np.abs(out["stable"].astype(np.float64) - out["tempered"])
    return Point(
        setting=setting,
        logits=batch.logits,
        target_ids=batch.target_ids,
        sample_names=names,
        mean_loss=mean_loss,
        grad_norm=grad_norm(out["grad"]),
        power=setting.power,
        temperature=setting.temperature,
        naive_nonfinite=int((~np.isfinite(out["naive"])).sum()),
        max_gap=float(np.max(gap)),
        **out,
    )


def at_setting(setting: Setting, seed: int = 0) -> Point:
    """The loss, its gradient and every sharpened form at ``setting``."""
    batch, logits, target, embedding = _tensors(setting.logit_scale, seed)
    fn = _point_graph(_path(setting), setting.hard)
    out = fn(
        logits,
        tf.constant(setting.power, tf.float32),
        tf.constant(setting.temperature, tf.float32),
        target,
        embedding,
        tf.constant(seed, tf.int64),
    )
    out = {name: value.numpy() for name, value in out.items()}
    names = sample_names(batch.logits, batch.target_ids)
    return _point(setting, batch, names, out)


# ------------------------------------------------------------- the page's grid


def setting_at(setting: SweepSetting, value: float, hard: bool = False) -> Setting:
    """The page's ``Setting``: ``setting`` driven at ``value`` (a power or a
    temperature, as ``setting.sharpen_by`` says)."""
    fields = dataclasses.asdict(setting) | {"hard": hard}
    fields[setting.sharpen_by] = float(value)
    return Setting(**fields)


@dataclass(frozen=True)
class Grid:
    """Every ``Point`` of the driving control's grid at one setting of the
    other controls, computed together: a move of the page's main control is
    a lookup here.

    ``values``: ``GRID[setting.sharpen_by]`` (powers up, or temperatures
    down: the order the distribution sharpens), ``powers`` and
    ``temperatures`` the equivalent ``k`` and ``1 / k**n`` at each. Per grid
    point (first axis ``G``): ``loss [G, B]``, ``grad``, ``stable``,
    ``naive``, ``tempered``, ``gumbel`` (soft) and ``hard_gumbel`` (its
    one-hot), each ``[G, B, V]``; ``mean_loss``, ``grad_norm``,
    ``naive_nonfinite``, ``naive_nan`` and ``max_gap`` ``[G]`` as a
    ``Point`` has them, and ``top [G, B]``: each sample's top probability of
    what the loss sees. ``probs`` and ``straight_through`` ``[B, V]`` do not
    depend on the grid; ``grad_range``: the largest finite ``|grad|`` over
    the grid (a colour scale that holds for every frame).
    """

    setting: SweepSetting
    seed: int
    values: np.ndarray
    powers: np.ndarray
    temperatures: np.ndarray
    logits: np.ndarray
    target_ids: np.ndarray
    sample_names: tuple
    probs: np.ndarray
    straight_through: np.ndarray
    loss: np.ndarray
    grad: np.ndarray
    stable: np.ndarray
    naive: np.ndarray
    tempered: np.ndarray
    gumbel: np.ndarray
    hard_gumbel: np.ndarray
    mean_loss: np.ndarray
    grad_norm: np.ndarray
    naive_nonfinite: np.ndarray
    naive_nan: np.ndarray
    max_gap: np.ndarray
    top: np.ndarray
    grad_range: float

    @property
    def by(self) -> str:
        return self.setting.sharpen_by

    @property
    def sharpened(self) -> np.ndarray:
        """``[G, B, V]``: what the loss sees (``stable`` or ``tempered``)."""
        return self.tempered if self.by == "temperature" else self.stable

    def index(self, value: float) -> int:
        """The grid index of ``value``.

        Raises:
          ValueError: ``value`` is not a grid value.
        """
        hits = np.flatnonzero(np.isclose(self.values, float(value), rtol=1e-9))
        if hits.size != 1:
            raise ValueError(
                f"`value` must be one of the grid's {self.values.tolist()}, "
                f"got {value!r}."
            )
        return int(hits[0])

    def describe(self, i: int) -> str:
        """``Setting.describe`` of the grid's ``i``-th value."""
        return setting_at(self.setting, self.values[i]).describe()

    def at(self, value: float, hard: bool = False) -> Point:
        """The ``Point`` at the grid value ``value`` (``at_setting`` of that
        setting, with the Gumbel sample ``hard`` or not)."""
        i = self.index(value)
        out = {
            "loss": self.loss[i],
            "grad": self.grad[i],
            "probs": self.probs,
            "stable": self.stable[i],
            "naive": self.naive[i],
            "tempered": self.tempered[i],
            "straight_through": self.straight_through,
            "gumbel": (self.hard_gumbel if hard else self.gumbel)[i],
        }
        batch = Batch(self.logits, None, None, self.target_ids)
        setting = setting_at(self.setting, self.values[i], hard)
        return _point(setting, batch, self.sample_names, out)


@functools.lru_cache(maxsize=None)
def _grid_graph(path: tuple[int, str, str]):
    """``fn(logits, powers, temperatures, target, embedding, seed)``: every
    form ``_point_graph`` gives, at every grid point, in one call."""
    iterations = path[0]

    @tf.function(autograph=False)
    def fn(logits, powers, temperatures, target, embedding, seed):
        def at(point):
            power, temperature = point
            probs, _, loss, grad = _loss_and_grad(
                logits, power, temperature, target, embedding, path
            )
            return (
                loss,
                grad,
                sharpen.power_sharpen(probs, power, iterations),
                sharpen.naive_power_sharpen(probs, power, iterations),
                sharpen.temperature_softmax(logits, temperature),
                sharpen.gumbel_softmax(logits, temperature, seed=seed),
            )

        out = tf.map_fn(
            at, (powers, temperatures), fn_output_signature=(tf.float32,) * 6
        )
        probs = sharpen.temperature_softmax(logits, 1.0)
        straight = sharpen.straight_through_one_hot
        return (probs, straight(probs), *out, straight(out[-1]))

    return fn


def over_grid(setting: SweepSetting, seed: int = 0) -> Grid:
    """Every ``Point`` of the driving control's grid (``GRID``) at
    ``setting``, in one call of a compiled graph (the values, the logit
    scale's logits and the seed are fed as tensors)."""
    batch, logits, target, embedding = _tensors(setting.logit_scale, seed)
    values = GRID[setting.sharpen_by]
    settings = [setting_at(setting, v) for v in values]
    out = _grid_graph(_path(setting))(
        logits,
        tf.constant([s.power for s in settings], tf.float32),
        tf.constant([s.temperature for s in settings], tf.float32),
        target,
        embedding,
        tf.constant(seed, tf.int64),
    )
    probs, straight, loss, grad, stable, naive, tempered, gumbel, hard_gumbel = (
        t.numpy() for t in out
    )
    with np.errstate(invalid="ignore", over="ignore"):
        mean_loss = np.array([np.mean(row, dtype=np.float64) for row in loss])
        gap = np.abs(stable.astype(np.float64) - tempered).max(axis=(1, 2))
        magnitude = np.abs(grad[np.isfinite(grad)])
    sharpened = tempered if setting.sharpen_by == "temperature" else stable
    return Grid(
        setting=setting,
        seed=int(seed),
        values=values.copy(),
        powers=np.array([s.power for s in settings]),
        temperatures=np.array([s.temperature for s in settings]),
        logits=batch.logits,
        target_ids=batch.target_ids,
        sample_names=sample_names(batch.logits, batch.target_ids),
        probs=probs,
        straight_through=straight,
        loss=loss,
        grad=grad,
        stable=stable,
        naive=naive,
        tempered=tempered,
        gumbel=gumbel,
        hard_gumbel=hard_gumbel,
        mean_loss=mean_loss,
        grad_norm=np.array([grad_norm(g) for g in grad]),
        naive_nonfinite=(~np.isfinite(naive)).sum(axis=(1, 2)),
        naive_nan=np.isnan(naive).sum(axis=(1, 2)),
        max_gap=gap,
        top=sharpened.max(-1),
        grad_range=float(magnitude.max()) if magnitude.size else 0.0,
    )


def sweep(setting: SweepSetting, seed: int = 0) -> Sweep:
    """The loss, its gradient norm and the top sharpened probability over
    ``SWEEP_POWERS`` (by power) or ``SWEEP_TEMPERATURES`` (by temperature)."""
    _, logits, target, embedding = _tensors(setting.logit_scale, seed)
    if setting.sharpen_by == "temperature":
        values = SWEEP_TEMPERATURES
        powers, temperatures = 1.0 / values, values
    else:
        values = SWEEP_POWERS
        powers, temperatures = values, values**-setting.iterations
    out = _sweep_graph(_path(setting))(
        logits,
        tf.constant(powers, tf.float32),
        # float32 holds 1/k**n down to ~1e-45; the power path never reads it
        tf.constant(np.maximum(temperatures, TINY32), tf.float32),
        target,
        embedding,
    )
    loss, grad, sharpened, naive = (t.numpy() for t in out)
    broken = ~np.isfinite(naive).all(axis=(1, 2))
    norms = grad_norms(grad, axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        mean_loss = np.mean(loss, axis=-1, dtype=np.float64)
        naive_top = np.where(broken, np.nan, naive.max(-1).mean(-1, dtype=np.float64))
    return Sweep(
        setting=setting,
        values=values.copy(),
        powers=np.asarray(powers, dtype=np.float64).copy(),
        temperatures=np.asarray(temperatures, dtype=np.float64).copy(),
        mean_loss=mean_loss,
        grad_norm=norms,
        sharpened_top=sharpened.max(-1).mean(-1, dtype=np.float64),
        naive_top=naive_top,
        first_nan=first_where(values, broken),
        first_zero_grad=first_where(values, norms == 0),
    )


# ------------------------------------------------------------- the words' numbers


@dataclass(frozen=True)
class Facts:
    """The numbers the page's introduction states, at the page's default
    setting (``Setting()``) and a seed.

    ``right`` and ``wrong``: the samples whose target is (is not) the argmax
    of their logits; ``naive_nan_from`` and ``zero_grad_from``: the first
    power of the sweep where the naive form has a NaN, and where the gradient
    is exactly 0 (None where there is none); ``right_loss_at_max_power`` and
    ``wrong_loss_at_max_power``: the largest loss of a ``right`` sample and
    the smallest of a ``wrong`` one at the largest power, ``max_power``.
    """

    vocab_size: int
    num_samples: int
    right: tuple[int, ...]
    wrong: tuple[int, ...]
    naive_nan_from: float | None
    zero_grad_from: float | None
    max_power: float
    right_loss_at_max_power: float
    wrong_loss_at_max_power: float


def facts(seed: int = 0) -> Facts:
    """The introduction's numbers at the page's defaults and ``seed``."""
    setting = Setting()
    max_power = float(SWEEP_POWERS[-1])
    top = at_setting(setting.by_power(max_power), seed)
    right = top.logits.argmax(-1) == top.target_ids
    powers = sweep(setting.sweep_setting, seed)
    return Facts(
        vocab_size=VOCAB_SIZE,
        num_samples=NUM_SAMPLES,
        right=tuple(int(i) for i in np.flatnonzero(right)),
        wrong=tuple(int(i) for i in np.flatnonzero(~right)),
        naive_nan_from=powers.first_nan,
        zero_grad_from=powers.first_zero_grad,
        max_power=max_power,
        right_loss_at_max_power=float(top.loss[right].max()),
        wrong_loss_at_max_power=float(top.loss[~right].min()),
    )


@dataclass(frozen=True)
class TrainFacts:
    """The numbers the page's words about the Train panel state."""

    num_features: int
    vocab_size: int
    embedding_dim: int
    num_heldout: int

    @property
    def chance(self) -> float:
        return 1.0 / self.vocab_size


TRAIN_FACTS = TrainFacts(
    **{
        name: task.COMMON_PARAMS[name][0]
        for name in ("num_features", "vocab_size", "embedding_dim", "num_heldout")
    }
)


# ------------------------------------------------------------- the lessons


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def _reference(setting: Setting, seed: int) -> Point:
    """The plain softmax (power 1, once) at the same distance, scale and seed."""
    return at_setting(setting.by_power(1.0), seed)


def _naive_nan(setting: Setting, seed: int) -> Claim:
    point = at_setting(setting, seed)
    nans = int(np.isnan(point.naive).sum())
    finite = all(
        np.isfinite(a).all()
        for a in (point.stable, point.tempered, point.loss, point.grad)
    )
    return Claim(
        nans > 0 and finite,
        f"At {setting.describe()} the naive x**k / Σ x**k has {nans} of "
        f"{point.naive.size} entries NaN; power_sharpen's {point.stable.size} "
        f"entries, the loss ({format_number(point.mean_loss)}) and its gradient "
        f"are {'all finite' if finite else 'not all finite'}.",
    )


def _vanished(setting: Setting, seed: int) -> Claim:
    point, plain = at_setting(setting, seed), _reference(setting, seed)
    ratio = _ratio(point.grad_norm, plain.grad_norm)
    top = float(point.sharpened.max(-1).min())
    holds = (
        math.isfinite(point.mean_loss)
        and ratio < VANISHED_FRACTION
        and top >= 1.0 - VANISHED_FRACTION
    )
    return Claim(
        holds,
        f"At {setting.describe()} the loss is {format_number(point.mean_loss)} and "
        f"‖∂L/∂logits‖ = {format_number(point.grad_norm)}, {format_number(ratio)} "
        f"of its {format_number(plain.grad_norm)} at k = 1 "
        f"({'below' if ratio < VANISHED_FRACTION else 'not below'} the "
        f"{VANISHED_FRACTION:g} that counts as vanished); the smallest top "
        f"sharpened probability of any sample is {top:.6g}"
        + (" (an exact one-hot in float32)." if top == 1.0 else "."),
    )


def _gradient_kept(setting: Setting, seed: int) -> Claim:
    point, plain = at_setting(setting, seed), _reference(setting, seed)
    ratio = _ratio(point.grad_norm, plain.grad_norm)
    top, plain_top = (float(p.sharpened.max(-1).mean()) for p in (point, plain))
    holds = (
        math.isfinite(point.mean_loss)
        and ratio >= VANISHED_FRACTION
        and top > plain_top
    )
    return Claim(
        holds,
        f"At {setting.describe()} the mean top probability is {top:.3g} "
        f"(softmax: {plain_top:.3g}), the loss is {format_number(point.mean_loss)} "
        f"and ‖∂L/∂logits‖ = {format_number(point.grad_norm)}, "
        f"{format_number(ratio)} of its value at k = 1 "
        f"({'above' if ratio >= VANISHED_FRACTION else 'below'} the "
        f"{VANISHED_FRACTION:g} that counts as vanished).",
    )


def _temperature_tie(setting: Setting, seed: int) -> Claim:
    by_t = at_setting(setting.by_temperature(setting.temperature), seed)
    by_k = at_setting(setting.by_power(by_t.power), seed)
    loss_gap = float(np.max(np.abs(by_t.loss.astype(np.float64) - by_k.loss)))
    grad_gap = float(np.max(np.abs(by_t.grad.astype(np.float64) - by_k.grad)))
    # Against the larger of this gradient and the plain softmax's: a vanished
    # gradient is float32 rounding in both forms, its relative error is noise.
    plain = _reference(setting, seed)
    scale = float(max(np.max(np.abs(by_k.grad)), np.max(np.abs(plain.grad))))
    relative = _ratio(grad_gap, scale)
    holds = loss_gap <= TIE_TOLERANCE and relative <= TIE_TOLERANCE
    return Claim(
        holds,
        f"By T = {by_t.temperature:g} (softmax(z / T)): loss "
        f"{format_number(by_t.mean_loss)}, ‖∂L/∂logits‖ = "
        f"{format_number(by_t.grad_norm)}; by k = 1/T = {by_k.power:g} "
        f"(power_sharpen): {format_number(by_k.mean_loss)} and "
        f"{format_number(by_k.grad_norm)}. The per-sample losses differ by at "
        f"most {loss_gap:.1e} and the gradients by {grad_gap:.1e}, "
        f"{relative:.1e} of the largest gradient entry (here or with the plain "
        f"softmax; tolerance {TIE_TOLERANCE:g}).",
    )


LESSON_CHECKS = {
    "naive_nan": _naive_nan,
    "vanished": _vanished,
    "gradient_kept": _gradient_kept,
    "temperature_tie": _temperature_tie,
}


def check_lesson(name: str, values: Mapping, seed: int) -> Claim:
    """The outcome the lesson ``name`` states, at the control ``values`` (by
    name, as the page holds them).

    - ``"naive_nan"``: the naive ``x**k / Σ x**k`` has a NaN entry, while
      ``power_sharpen``, the temperature softmax, the loss and its gradient
      are all finite;
    - ``"vanished"``: the loss is finite, the gradient norm is below
      ``VANISHED_FRACTION`` of its value with the plain softmax (``k = 1``)
      and every sample's top sharpened probability is at least ``1 -
      VANISHED_FRACTION``;
    - ``"gradient_kept"``: the loss is finite, the gradient norm is at least
      ``VANISHED_FRACTION`` of its value at ``k = 1``, and the mean top
      probability is above the softmax's;
    - ``"temperature_tie"``: sharpening by the temperature ``T`` of
      ``values`` (``softmax(z / T)``) and by the power ``1 / T`` give the same
      per-sample loss (within ``TIE_TOLERANCE``) and gradient (within
      ``TIE_TOLERANCE`` of the largest gradient entry, of either form or of
      the plain softmax).

    Raises:
      ValueError: an unknown ``name`` or a control value out of range.
    """
    if name not in LESSON_CHECKS:
        raise ValueError(
            f"`name` must be one of {', '.join(LESSON_CHECKS)}, got {name!r}."
        )
    return LESSON_CHECKS[name](Setting.of(values), int(seed))


def format_number(value: float) -> str:
    """A number as the page's metrics show it (4 significant digits)."""
    value = float(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


# ------------------------------------------------------------- training


def train_runs(setting: Setting) -> tuple[RunSpec, ...]:
    """The Train panel's runs: softmax, sharpened at the setting, and
    straight-through. The labels follow the controls, so a run drawn earlier
    keeps the settings it was trained with in its name. Sharpened by
    temperature, the run trains with the equivalent power ``1 / T``
    (``power_sharpen(softmax(z), 1/T) = softmax(z / T)``)."""
    distance = setting.distance
    how = "" if distance == "cosine" else f", {distance}"
    if setting.sharpen_by == "temperature":
        name = f"temperature (T = {setting.temperature:g}{how})"
    else:
        times = "" if setting.iterations == 1 else f" × {setting.iterations}"
        name = f"sharpened (k = {setting.power:g}{times}{how})"
    sharpened = {"power": setting.power, "iterations": setting.iterations}
    return (
        RunSpec(f"softmax (k = 1{how})", "softmax", {"distance": distance}),
        RunSpec(name, "sharpened", {**sharpened, "distance": distance}),
        RunSpec(
            f"straight-through (k = 1{how})", "straight-through", {"distance": distance}
        ),
    )
