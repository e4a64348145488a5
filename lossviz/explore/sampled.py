"""What the "Sampled softmax" page computes.

One output layer and batch per vocabulary size, label law and seed
(``example_problem``: ``BATCH`` hidden states of size ``DIM`` and a
``[C, DIM]`` output layer whose biases are the log-frequencies of a Zipfian
vocabulary), on which:

- ``at_setting`` (keyed on ``Setting``): the full and the sampled loss at the
  page's seed, the batch-mean sampled loss under ``NUM_DRAWS`` seeds, its
  bias (mean of the draws minus the full loss) and spread, and the first
  samples' gradients with respect to their logits, full and sampled;
- ``over_grid`` (keyed on ``SweepSetting``, the setting without ``S``):
  ``at_setting`` at every ``S`` the page's control reaches (``sweep_points``),
  in one call of one compiled graph, so that a move of ``S`` is a lookup
  (``Grid.at``); ``count_sweep`` (``Grid.sweep``): bias, spread, loss and
  input-gradient norm over that grid;
- ``timings``: one compiled forward and backward pass of each loss. The full
  pass does not depend on ``S``, the hits or the label law: it is timed once
  per (``C``, seed) and kept; the sampled pass is timed per setting, or at
  every ``S`` of the grid (``timings_over_grid``);
- ``optimizer_rows``: how many rows of the ``[C, DIM]`` output matrix one
  sampled step changes under Keras' ``Adam`` and under ``LazyAdam``, counted
  after running each;
- ``intro_facts``: the numbers the page's introduction states, at the page's
  defaults; ``check_lesson``: each lesson's outcome, computed.

The full loss, which no ``S`` changes, is computed once per ``Problem`` and
kept (``functools.lru_cache``), as are the example arrays and the compiled
passes. Sizes, counts and seeds reach the compiled graphs as tensors
(``tf.function(autograph=False, reduce_retracing=True)``): after the first
move of ``S`` has relaxed their shapes, moving it traces nothing. The grid's
graph has a fixed signature of open shapes: it is traced once, ever.

The module also holds the explorer-only helpers of the loss module: many
seeded draws of the sampled loss in one call, the per-sample logit
gradients, a compiled forward and backward pass for timing, and the example
problem.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lossviz import analysis, registry
from lossviz import sampled as family
from lossviz._common import as_float, check_choice, check_number
from lossviz._tf import tf
from lossviz.explore._base import Claim, RunSpec, TrainSpec, grad_norm, grad_norms
from lossviz.optimizers import LazyAdam
from lossviz.sampled import (
    INT64_MAX,
    _candidates,
    _check_flag,
    _check_num_sampled,
    _draw_unique,
    _flatten_inputs,
    _full_loss_core,
    _gather_rows,
    _log_uniform_draws,
    _logits_from_rows,
    _num_classes,
    _plain,
    _prepare,
    _sampled_loss_core,
    _stateless_seed,
    _unpack_sampled_values,
    _with_counts,
    full_softmax_loss,
    log_uniform_candidate_sampler,
    log_uniform_probability,
    sampled_softmax_loss,
)
from lossviz.training import sampled as task

# isort: split
# After lossviz: it imports TensorFlow quietly, keras would import it noisily.
import keras

FORMULA = family.FORMULA
FORMULAS = family.FORMULAS
_ENTRY = registry.get("sampled_softmax_loss")
PARAMS = {
    "num_sampled": _ENTRY.param("num_sampled"),
    "remove_accidental_hits": _ENTRY.param("remove_accidental_hits"),
}

BATCH, DIM = 32, 64
SHOWN_SAMPLES = 8  # rows of the gradient heatmaps
SHOWN_FREQUENT = 10  # the most frequent classes, columns of the heatmaps
NUM_DRAWS = 100  # seeds behind the histogram, the bias and the spread
TIMING_REPEATS = 7
# The grid of the sweep over S: the page's choices of S.
SAMPLED_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# The Train panel trains at the page's vocabulary size: the task's cap.
MAX_CLASSES = task.COMMON_PARAMS["vocab_size"][2]

# The source the page's "Use it in your model" shows.
SOURCES = (family.SampledSoftmax, family.sampled_softmax_loss)

TRAINING = TrainSpec(
    task=task.TASK.name,
    metrics={
        "loss": "Training loss (what each run minimises)",
        "val_perplexity": "Held-out perplexity (full softmax)",
        "seconds": "Seconds per epoch (training steps)",
    },
    epochs=5,
    learning_rate=1e-2,
)


@dataclass(frozen=True)
class TrainFacts:
    """The numbers the page's words about the Train panel state."""

    successors: int  # favourite successors per word
    follow: float  # how often the next word is one of them
    embed_dim: int
    pairs_per_epoch: int
    batch_size: int


TRAIN_FACTS = TrainFacts(
    successors=len(task.SUCCESSOR_WEIGHTS),
    follow=task.FOLLOW,
    embed_dim=task.COMMON_PARAMS["embed_dim"][0],
    pairs_per_epoch=task.COMMON_PARAMS["pairs_per_epoch"][0],
    batch_size=task.BATCH_SIZE,
)


# ------------------------------------------------------------- the settings


@dataclass(frozen=True)
class Problem:
    """Which example: the vocabulary size ``C`` and whether the labels follow
    the sampler's own log-uniform (Zipf) law or are uniform."""

    num_classes: int = 10_000
    zipf_labels: bool = True

    def __post_init__(self):
        classes = check_number(
            "num_classes", self.num_classes, low=1, high=MAX_CLASSES, integer=True
        )
        object.__setattr__(self, "num_classes", int(classes))
        zipf = _check_flag("zipf_labels", self.zipf_labels)
        object.__setattr__(self, "zipf_labels", zipf)


@dataclass(frozen=True)
class SweepSetting(Problem):
    """A ``Problem`` and whether accidental hits are removed: everything the
    sweep over ``S`` depends on."""

    remove_accidental_hits: bool = True

    def __post_init__(self):
        super().__post_init__()
        hits = PARAMS["remove_accidental_hits"].validate(self.remove_accidental_hits)
        object.__setattr__(self, "remove_accidental_hits", hits)

    @property
    def problem(self) -> Problem:
        return Problem(self.num_classes, self.zipf_labels)


@dataclass(frozen=True)
class Setting(SweepSetting):
    """The page's controls: ``S`` in ``[1, C]`` (the loss's range), ``C``,
    the hits and the label law."""

    num_sampled: int = 64

    def __post_init__(self):
        super().__post_init__()
        num_sampled = PARAMS["num_sampled"].validate(self.num_sampled)
        num_sampled = _check_num_sampled(num_sampled, self.num_classes)
        object.__setattr__(self, "num_sampled", num_sampled)

    @classmethod
    def capped(cls, controls) -> Setting:
        """The setting of ``controls`` (the page's control values by name),
        with ``S`` capped at the vocabulary size ``C``."""
        names = ("num_classes", "zipf_labels", "remove_accidental_hits")
        num_sampled = min(controls["num_sampled"], controls["num_classes"])
        return cls(**{n: controls[n] for n in names}, num_sampled=num_sampled)

    @property
    def sweep(self) -> SweepSetting:
        return SweepSetting(
            self.num_classes, self.zipf_labels, self.remove_accidental_hits
        )


def _check_seed(seed) -> int:
    return int(check_number("seed", seed, low=0, high=INT64_MAX, integer=True))


# ------------------------------------------------- explorer-only helpers


@_plain
def example_problem(
    num_classes, dim, batch_size, *, time_steps=None, seed=0, zipf_labels=True
) -> dict:
    """A small output layer and batch on which to compare the two losses.

    Rows of ``weights`` are ``N(0, 1/dim)``; ``biases`` are the log of the
    log-uniform class probabilities, as a language model's output biases
    roughly learn the log-frequency of words sorted by frequency; ``inputs``
    are ``N(0, 1)``. With ``zipf_labels`` the labels are drawn from that same
    log-uniform distribution (the case the sampler is built for), otherwise
    uniformly (a mismatch that makes the sampled loss far more biased). The
    weights and biases do not depend on ``zipf_labels``.

    Args:
      num_classes: ``C`` >= 1.
      dim: ``D`` >= 1.
      batch_size: ``B`` >= 0.
      time_steps: None for 2-D inputs, else ``T`` >= 0 for 3-D inputs.
      seed: int seed; the same seed gives the same arrays.
      zipf_labels: draw labels log-uniformly (True) or uniformly.

    Returns:
      ``{"weights" [C, D], "biases" [C], "labels" [B] or [B, T], "inputs"
      [B, D] or [B, T, D]}`` as numpy arrays (float32, int64).
    """
    num_classes = int(check_number("num_classes", num_classes, low=1, integer=True))
    dim = int(check_number("dim", dim, low=1, integer=True))
    batch_size = int(check_number("batch_size", batch_size, low=0, integer=True))
    lead = [batch_size]
    if time_steps is not None:
        lead.append(int(check_number("time_steps", time_steps, low=0, integer=True)))
    _check_seed(seed)
    _check_flag("zipf_labels", zipf_labels)
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, dim**-0.5, (num_classes, dim)).astype(np.float32)
    biases = np.log(log_uniform_probability(tf.range(num_classes), num_classes))
    count = int(np.prod(lead))
    if zipf_labels:
        labels = _log_uniform_draws([count], num_classes, [seed, 1]).numpy()
    else:
        labels = rng.integers(0, num_classes, count)
    inputs = rng.normal(size=lead + [dim]).astype(np.float32)
    return {
        "weights": weights,
        "biases": biases.astype(np.float32),
        "labels": labels.astype(np.int64).reshape(lead),
        "inputs": inputs,
    }


def _sampled_logits_core(weights, biases, labels_flat, flat, candidates, remove_hits):
    """``[N, 1 + S]`` corrected logits, the true class first, from flat inputs."""
    rows = _gather_rows(weights, biases, labels_flat, candidates[0], flat.dtype)
    return _logits_from_rows(*rows, labels_flat, flat, candidates, remove_hits)


@_plain
def logit_gradients(
    weights,
    biases,
    labels,
    inputs,
    num_sampled=None,
    *,
    remove_accidental_hits=True,
    sampled_values=None,
    seed=None,
) -> tf.Tensor:
    """Each sample's loss gradient with respect to its own logits ``z = W x + b``.

    Full loss (``num_sampled=None``): ``softmax(z) - onehot(y)`` over every
    class. Sampled loss: with ``p = softmax`` of the corrected logits over the
    true class and the sampled ones, the label's entry is ``p_true - 1``, each
    sampled class gets its ``p_s`` (added to the label's entry if it is the
    label and hits are kept; 0 if the hit is removed), every other class 0.
    These are what flow back into the rows of ``weights`` and ``biases``; they
    equal the gradient of ``sampled_softmax_loss`` for that sample alone with
    respect to ``biases``.

    Args:
      weights, biases, labels, inputs, remove_accidental_hits, sampled_values,
        seed: as in ``sampled_softmax_loss``.
      num_sampled: None for the full loss, else ``S`` as in
        ``sampled_softmax_loss``.

    Returns:
      ``[batch, num_classes]`` (or ``[batch, time, num_classes]``), float32
      unless ``inputs`` is float64. This forms the dense per-sample gradient,
      for inspection; training never needs it.

    Raises:
      ValueError: as ``sampled_softmax_loss``.
    """
    weights, biases, labels_flat, inputs, num_classes = _prepare(
        weights, biases, labels, inputs
    )
    flat = _flatten_inputs(inputs)
    dtype = flat.dtype
    one_hot = tf.one_hot(labels_flat, num_classes, dtype=dtype)
    if num_sampled is None:
        logits = tf.matmul(flat, tf.cast(weights, dtype), transpose_b=True)
        grads = tf.nn.softmax(logits + tf.cast(biases, dtype)) - one_hot
    else:
        num_sampled = _check_num_sampled(num_sampled, num_classes)
        hits = _check_flag("remove_accidental_hits", remove_accidental_hits)
        if sampled_values is None:
            sampled_values = _candidates(
                labels_flat, num_sampled, num_classes, seed, True
            )
        candidates = _unpack_sampled_values(sampled_values, num_sampled)
        probs = tf.nn.softmax(
            _sampled_logits_core(weights, biases, labels_flat, flat, candidates, hits)
        )
        num_labels = tf.shape(labels_flat, out_type=tf.int64)[0]
        rows = tf.repeat(tf.range(num_labels), num_sampled)
        columns = tf.tile(candidates[0], [num_labels])
        grads = tf.tensor_scatter_nd_add(
            one_hot * (probs[:, :1] - 1.0),
            tf.stack([rows, columns], 1),
            tf.reshape(probs[:, 1:], [-1]),
        )
    return tf.reshape(grads, tf.concat([tf.shape(inputs)[:-1], [num_classes]], 0))


def _loss_draws(weights, biases, labels_flat, flat, num_sampled, num_draws, seed, hits):
    num_classes = tf.shape(weights, out_type=tf.int64)[0]

    def one_draw(index):
        draw_seed = tf.random.experimental.stateless_fold_in(seed, index, alg="philox")
        sampled, num_tries = _draw_unique(num_sampled, num_classes, draw_seed)
        candidates = _with_counts(
            labels_flat, sampled, num_sampled, num_classes, num_tries
        )
        return _sampled_loss_core(weights, biases, labels_flat, flat, candidates, hits)

    return tf.map_fn(
        one_draw,
        tf.range(num_draws, dtype=tf.int64),
        fn_output_signature=tf.TensorSpec([None], flat.dtype),
    )


# Sizes and counts are tensors: one trace serves every setting.
_loss_draws_graph = tf.function(_loss_draws, reduce_retracing=True, autograph=False)


@_plain
def sampled_softmax_loss_draws(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    num_draws,
    *,
    seed=0,
    remove_accidental_hits=True,
) -> tf.Tensor:
    """``num_draws`` independent sampled-softmax estimates in one call.

    Draw ``i`` is exactly ``sampled_softmax_loss(..., seed=s_i)`` with the
    stateless seed ``s_i = tf.random.experimental.stateless_fold_in(s,
    tf.constant(i, tf.int64), alg="philox")``, ``s`` being ``seed`` as a
    stateless pair (``[seed, 0]`` for an int; note that folding in a Python
    int gives a different, int32 seed). One compiled graph serves every size
    and count, so sweeping ``num_sampled`` does not retrace. Comparing the
    draws with ``full_softmax_loss`` shows the estimator's bias (it tends to
    underestimate) and spread.

    Args:
      weights, biases, labels, inputs: as in ``sampled_softmax_loss``.
      num_sampled: ``S`` in ``[1, num_classes]``.
      num_draws: number of independent candidate sets, >= 1.
      seed: int, ``[2]`` int tensor, or None for fresh draws.
      remove_accidental_hits: as in ``sampled_softmax_loss``.

    Returns:
      ``[num_draws, batch]`` (or ``[num_draws, batch, time]``) losses, float32
      unless ``inputs`` is float64.

    Raises:
      ValueError: as ``sampled_softmax_loss``, or ``num_draws`` < 1.
    """
    weights, biases, labels_flat, inputs, num_classes = _prepare(
        weights, biases, labels, inputs
    )
    num_sampled = _check_num_sampled(num_sampled, num_classes)
    num_draws = int(check_number("num_draws", num_draws, low=1, integer=True))
    hits = _check_flag("remove_accidental_hits", remove_accidental_hits)
    losses = _loss_draws_graph(
        tf.convert_to_tensor(weights),
        tf.convert_to_tensor(biases),
        labels_flat,
        _flatten_inputs(inputs),
        tf.constant(num_sampled, tf.int64),
        tf.constant(num_draws, tf.int64),
        _stateless_seed(seed),
        tf.constant(hits),
    )
    return tf.reshape(losses, tf.concat([[num_draws], tf.shape(inputs)[:-1]], 0))


@_plain
def forward_backward_function(weights, biases, *, kind="sampled"):
    """A compiled forward and backward pass of one loss, for timing it.

    The weights and biases are copied into ``tf.Variable``s, as in a model.
    The returned ``step(labels, inputs, num_sampled=1, seed=0,
    remove_accidental_hits=True)`` computes the mean loss over the batch and
    its gradients with respect to the weights, the biases and the inputs, and
    returns ``(mean_loss, checksums)``, a scalar per gradient so that no
    gradient is pruned away. With ``kind="sampled"`` the weight gradient is a
    ``tf.IndexedSlices`` over the ``N + S`` rows used; with ``kind="full"``
    it is a dense ``[C, D]`` matrix. One trace serves every setting.

    Args:
      weights: ``[num_classes, dim]``.
      biases: ``[num_classes]``.
      kind: ``"sampled"`` or ``"full"``.

    Returns:
      the ``step`` callable.

    Raises:
      ValueError: unknown ``kind``; ``step`` raises as the losses do.
    """
    check_choice("kind", kind, ("sampled", "full"))
    weights = tf.Variable(as_float(weights), trainable=True)
    biases = tf.Variable(as_float(biases), trainable=True)
    num_classes = _num_classes(weights)

    @tf.function(reduce_retracing=True, autograph=False)
    def compiled(labels_flat, flat, num_sampled, seed, hits):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            if kind == "full":
                losses = _full_loss_core(weights, biases, labels_flat, flat)
            else:
                classes = tf.cast(num_classes, tf.int64)
                sampled, num_tries = _draw_unique(num_sampled, classes, seed)
                candidates = _with_counts(
                    labels_flat, sampled, num_sampled, classes, num_tries
                )
                losses = _sampled_loss_core(
                    weights, biases, labels_flat, flat, candidates, hits
                )
            loss = tf.reduce_mean(losses)
        grads = tape.gradient(loss, [weights, biases, flat])
        checksums = [
            tf.reduce_sum(g.values if isinstance(g, tf.IndexedSlices) else g)
            for g in grads
        ]
        return loss, checksums

    def step(labels, inputs, num_sampled=1, seed=0, remove_accidental_hits=True):
        _, _, labels_flat, inputs, _ = _prepare(weights, biases, labels, inputs)
        num_sampled = _check_num_sampled(num_sampled, num_classes)
        hits = _check_flag("remove_accidental_hits", remove_accidental_hits)
        return compiled(
            labels_flat,
            _flatten_inputs(inputs),
            tf.constant(num_sampled, tf.int64),
            _stateless_seed(seed),
            tf.constant(hits),
        )

    return step


# ---------------------------------------------------------- the page's numbers


@dataclass(frozen=True)
class Example:
    """The page's output layer and batch (numpy, never modified)."""

    weights: np.ndarray  # [C, DIM] float32
    biases: np.ndarray  # [C] float32, log-frequencies of a Zipfian vocabulary
    labels: np.ndarray  # [BATCH] int64
    inputs: np.ndarray  # [BATCH, DIM] float32

    @property
    def arrays(self) -> tuple:
        return self.weights, self.biases, self.labels, self.inputs


@functools.lru_cache(maxsize=8)
def example(problem: Problem, seed: int) -> Example:
    """The output layer and batch of ``problem`` and ``seed``."""
    data = example_problem(
        problem.num_classes,
        DIM,
        BATCH,
        seed=_check_seed(seed),
        zipf_labels=problem.zipf_labels,
    )
    for array in data.values():
        array.flags.writeable = False
    return Example(**data)


@functools.lru_cache(maxsize=8)
def _tensors(problem: Problem, seed: int) -> tuple:
    """The example as tensors, converted once (a ``[50000, 64]`` matrix is
    13 MB)."""
    data = example(problem, seed)
    return tuple(tf.constant(a) for a in data.arrays)


def shown_classes(labels, num_classes: int) -> np.ndarray:
    """The heatmaps' columns: the ``SHOWN_FREQUENT`` most frequent classes
    and the labels of the first ``SHOWN_SAMPLES`` samples, in order."""
    frequent = range(min(num_classes, SHOWN_FREQUENT))
    shown = set(frequent) | set(np.asarray(labels)[:SHOWN_SAMPLES].tolist())
    return np.array(sorted(shown), dtype=np.int64)


def _mean(values) -> float:
    return float(np.mean(np.asarray(values, dtype=np.float64)))


@dataclass(frozen=True)
class Reference:
    """The full loss of a ``Problem`` at a seed: nothing here depends on ``S``."""

    problem: Problem
    labels: np.ndarray  # [BATCH] int64
    full_loss: np.ndarray  # [BATCH] exact per-sample cross-entropy
    full_mean: float
    full_grad_norm: float  # ||d sum(full loss) / d inputs||
    classes: np.ndarray  # the heatmaps' columns (see shown_classes)
    full_logit_grad: np.ndarray  # [SHOWN_SAMPLES, len(classes)]


@functools.lru_cache(maxsize=16)
def reference(problem: Problem, seed: int) -> Reference:
    """The full loss, its input-gradient norm and the first samples' logit
    gradients, once per problem and seed."""
    weights, biases, labels, inputs = _tensors(problem, seed)
    full, grad = analysis.value_and_grad(
        lambda x: full_softmax_loss(weights, biases, labels, x), inputs
    )
    labels_array = example(problem, seed).labels
    classes = shown_classes(labels_array, problem.num_classes)
    shown = slice(0, SHOWN_SAMPLES)
    logit_grad = logit_gradients(weights, biases, labels[shown], inputs[shown])
    return Reference(
        problem=problem,
        labels=labels_array,
        full_loss=full,
        full_mean=_mean(full),
        full_grad_norm=grad_norm(grad),
        classes=classes,
        full_logit_grad=logit_grad.numpy()[:, classes],
    )


def _draw_means(problem: Problem, seed: int, num_sampled, hits, num_draws):
    """``[num_draws]`` batch means of the sampled loss, draw ``i`` with the
    seed folded in with ``i`` (``sampled_softmax_loss_draws``)."""
    losses = sampled_softmax_loss_draws(
        *_tensors(problem, seed),
        num_sampled,
        num_draws,
        seed=seed,
        remove_accidental_hits=hits,
    )
    return np.mean(np.asarray(losses, dtype=np.float64), axis=1)


@dataclass(frozen=True)
class Point:
    """Both losses at one setting and the page's seed."""

    setting: Setting
    labels: np.ndarray  # [BATCH] int64
    full_loss: np.ndarray  # [BATCH] exact per-sample cross-entropy
    sampled_loss: np.ndarray  # [BATCH] sampled estimate, the page's seed
    full_mean: float
    sampled_mean: float
    draw_means: np.ndarray  # [NUM_DRAWS] batch-mean sampled loss per seed
    draws_mean: float  # mean of draw_means
    bias: float  # draws_mean - full_mean: negative, the estimate is too low
    spread: float  # standard deviation of draw_means
    draws_below: int  # how many of draw_means are below full_mean
    hits: int  # labels of the batch that are in the page seed's sample
    classes: np.ndarray  # the heatmaps' columns (see shown_classes)
    full_logit_grad: np.ndarray  # [SHOWN_SAMPLES, len(classes)]
    sampled_logit_grad: np.ndarray  # [SHOWN_SAMPLES, len(classes)]

    @property
    def num_draws(self) -> int:
        return len(self.draw_means)


def at_setting(setting: Setting, seed: int) -> Point:
    """The full and sampled loss, the draws' bias and spread, and the logit
    gradients at ``setting``; the full part comes from ``reference``."""
    seed = _check_seed(seed)
    ref = reference(setting.problem, seed)
    weights, biases, labels, inputs = _tensors(setting.problem, seed)
    num_sampled, hits = setting.num_sampled, setting.remove_accidental_hits
    estimate = sampled_softmax_loss(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        remove_accidental_hits=hits,
        seed=seed,
    ).numpy()
    draw_means = _draw_means(setting.problem, seed, num_sampled, hits, NUM_DRAWS)
    shown = slice(0, SHOWN_SAMPLES)
    logit_grad = logit_gradients(
        weights,
        biases,
        labels[shown],
        inputs[shown],
        num_sampled,
        remove_accidental_hits=hits,
        seed=seed,
    )
    draws_mean = float(np.mean(draw_means))
    # The candidates sampled_softmax_loss drew at this seed: the sampler's.
    sample = log_uniform_candidate_sampler(
        labels, num_sampled, setting.num_classes, seed=seed
    )[0]
    return Point(
        setting=setting,
        labels=ref.labels,
        full_loss=ref.full_loss,
        sampled_loss=estimate,
        full_mean=ref.full_mean,
        sampled_mean=_mean(estimate),
        draw_means=draw_means,
        draws_mean=draws_mean,
        bias=draws_mean - ref.full_mean,
        spread=float(np.std(draw_means)),
        draws_below=int(np.sum(draw_means < ref.full_mean)),
        hits=int(np.isin(ref.labels, np.asarray(sample)).sum()),
        classes=ref.classes,
        full_logit_grad=ref.full_logit_grad,
        sampled_logit_grad=logit_grad.numpy()[:, ref.classes],
    )


def sweep_points(num_classes: int) -> np.ndarray:
    """The ``S`` the page's control reaches at a vocabulary of
    ``num_classes``: its choices, each capped at ``C`` (so ``C`` itself when
    a choice exceeds it)."""
    points = sorted({min(s, num_classes) for s in SAMPLED_CHOICES})
    return np.array(points, dtype=np.int64)


def _position(values: np.ndarray, num_sampled: int) -> int:
    found = np.flatnonzero(values == int(num_sampled))
    if not len(found):
        raise ValueError(
            f"`num_sampled` must be one of {values.tolist()}, got {num_sampled!r}."
        )
    return int(found[0])


# Everything reaches the graph as a tensor of a shape left open: one trace
# serves every vocabulary, grid, seed and hits setting.
_GRID_SIGNATURE = (
    tf.TensorSpec([None, None], tf.float32),  # weights [C, D]
    tf.TensorSpec([None], tf.float32),  # biases [C]
    tf.TensorSpec([None], tf.int64),  # labels [N]
    tf.TensorSpec([None, None], tf.float32),  # inputs [N, D]
    tf.TensorSpec([None], tf.int64),  # the grid of S [P]
    tf.TensorSpec([], tf.int64),  # draws per S
    tf.TensorSpec([2], tf.int64),  # the stateless seed
    tf.TensorSpec([], tf.bool),  # remove accidental hits
    tf.TensorSpec([], tf.int64),  # shown samples (heatmap rows)
    tf.TensorSpec([None], tf.int64),  # shown classes (heatmap columns)
)


@tf.function(input_signature=_GRID_SIGNATURE, autograph=False)
def _grid_graph(
    weights, biases, labels_flat, flat, grid, num_draws, seed, hits, shown, classes
):
    """At every ``S`` of ``grid``, in one call (a ``tf.map_fn`` over ``S``
    inside the graph): the ``num_draws`` seeded draws of the sampled loss
    (``sampled_softmax_loss_draws``), and at ``seed`` itself the sampled loss,
    its input gradient, the shown samples' logit gradients at the shown
    classes (``logit_gradients``) and the labels that are in the sample."""
    num_classes = tf.shape(weights, out_type=tf.int64)[0]

    def at(num_sampled):
        draws = _loss_draws(
            weights, biases, labels_flat, flat, num_sampled, num_draws, seed, hits
        )
        sampled, num_tries = _draw_unique(num_sampled, num_classes, seed)
        candidates = _with_counts(
            labels_flat, sampled, num_sampled, num_classes, num_tries
        )
        x = tf.identity(flat)
        with tf.GradientTape() as tape:
            tape.watch(x)
            losses = _sampled_loss_core(
                weights, biases, labels_flat, x, candidates, hits
            )
            total = tf.reduce_sum(losses)
        input_grad = tape.gradient(total, x)
        # The shown samples alone, as logit_gradients computes them.
        top_labels, top = labels_flat[:shown], flat[:shown]
        top_candidates = (candidates[0], candidates[1][:shown], candidates[2])
        probs = tf.nn.softmax(
            _sampled_logits_core(weights, biases, top_labels, top, top_candidates, hits)
        )
        rows = tf.repeat(tf.range(tf.shape(top_labels, out_type=tf.int64)[0]),
                         num_sampled)  # fmt: skip
        columns = tf.tile(sampled, tf.shape(top_labels, out_type=tf.int64))
        logit_grad = tf.tensor_scatter_nd_add(
            tf.one_hot(top_labels, tf.cast(num_classes, tf.int32), dtype=flat.dtype)
            * (probs[:, :1] - 1.0),
            tf.stack([rows, columns], 1),
            tf.reshape(probs[:, 1:], [-1]),
        )
        in_sample = tf.reduce_any(labels_flat[:, None] == sampled[None, :], axis=1)
        return (
            draws,
            losses,
            input_grad,
            tf.gather(logit_grad, classes, axis=1),
            tf.reduce_sum(tf.cast(in_sample, tf.int64)),
        )

    return tf.map_fn(
        at,
        grid,
        fn_output_signature=(
            tf.TensorSpec([None, None], flat.dtype),
            tf.TensorSpec([None], flat.dtype),
            tf.TensorSpec([None, None], flat.dtype),
            tf.TensorSpec([None, None], flat.dtype),
            tf.TensorSpec([], tf.int64),
        ),
    )


@dataclass(frozen=True)
class Sweep:
    """The estimate at every ``S`` of the grid (``sweep_points``): what the
    page's sweep charts show, the same at every ``S``."""

    setting: SweepSetting
    num_sampled: np.ndarray  # [P] the grid
    bias: np.ndarray  # [P] mean of the draws' batch means - the full loss
    abs_bias: np.ndarray  # [P] |bias|
    spread: np.ndarray  # [P] standard deviation of those batch means
    mean_loss: np.ndarray  # [P] batch-mean sampled loss, the page's seed
    grad_norm: np.ndarray  # [P] ||d sum(sampled loss) / d inputs||, that seed
    full_loss: float  # the full loss (batch mean), the same at every S
    full_grad_norm: float  # ||d sum(full loss) / d inputs||
    draws: int = NUM_DRAWS  # seeds behind each bias and spread


@dataclass(frozen=True)
class Grid:
    """``at_setting`` at every ``S`` the page's control reaches
    (``values``, see ``sweep_points``), for one setting of the other
    controls and one seed: ``at(S)`` is the ``Point`` of that ``S``,
    ``sweep()`` the ``Sweep`` over all of them."""

    setting: SweepSetting
    values: np.ndarray  # [P] the grid of S
    reference: Reference  # the full loss: the same at every S
    sampled_loss: np.ndarray  # [P, BATCH] the page's seed
    draw_means: np.ndarray  # [P, NUM_DRAWS] batch-mean sampled loss per seed
    grad_norm: np.ndarray  # [P] ||d sum(sampled loss) / d inputs||, that seed
    sampled_logit_grad: np.ndarray  # [P, SHOWN_SAMPLES, len(classes)]
    hits: np.ndarray  # [P] labels of the batch in the seed's sample

    @property
    def full_mean(self) -> float:
        return self.reference.full_mean

    @property
    def sampled_mean(self) -> np.ndarray:
        """[P] batch-mean sampled loss at the page's seed."""
        return np.mean(np.asarray(self.sampled_loss, dtype=np.float64), axis=1)

    @property
    def draws_mean(self) -> np.ndarray:
        return np.mean(self.draw_means, axis=1)

    @property
    def bias(self) -> np.ndarray:
        return self.draws_mean - self.reference.full_mean

    @property
    def spread(self) -> np.ndarray:
        return np.std(self.draw_means, axis=1)

    @property
    def draws_below(self) -> np.ndarray:
        return np.sum(self.draw_means < self.reference.full_mean, axis=1)

    def index(self, num_sampled: int) -> int:
        """The position of ``num_sampled`` in the grid (ValueError if absent)."""
        return _position(self.values, num_sampled)

    def at(self, num_sampled: int) -> Point:
        """What ``at_setting`` gives at ``S = num_sampled``, looked up."""
        i, num_sampled = self.index(num_sampled), int(num_sampled)
        ref, draw_means = self.reference, self.draw_means[i]
        draws_mean = float(np.mean(draw_means))
        return Point(
            setting=Setting(
                **dataclasses.asdict(self.setting), num_sampled=num_sampled
            ),
            labels=ref.labels,
            full_loss=ref.full_loss,
            sampled_loss=self.sampled_loss[i],
            full_mean=ref.full_mean,
            sampled_mean=_mean(self.sampled_loss[i]),
            draw_means=draw_means,
            draws_mean=draws_mean,
            bias=draws_mean - ref.full_mean,
            spread=float(np.std(draw_means)),
            draws_below=int(np.sum(draw_means < ref.full_mean)),
            hits=int(self.hits[i]),
            classes=ref.classes,
            full_logit_grad=ref.full_logit_grad,
            sampled_logit_grad=self.sampled_logit_grad[i],
        )

    def sweep(self) -> Sweep:
        """Bias, spread, loss and gradient norm over the grid."""
        bias = self.bias
        return Sweep(
            setting=self.setting,
            num_sampled=self.values,
            bias=bias,
            abs_bias=np.abs(bias),
            spread=self.spread,
            mean_loss=self.sampled_mean,
            grad_norm=self.grad_norm,
            full_loss=self.reference.full_mean,
            full_grad_norm=self.reference.full_grad_norm,
            draws=self.draw_means.shape[1],
        )


def over_grid(setting: SweepSetting, seed: int) -> Grid:
    """``at_setting`` at every ``S`` of ``sweep_points(C)``, in one call of
    one compiled graph (``_grid_graph``: a ``tf.map_fn`` over the grid of
    ``S``, each ``S`` drawing its own candidates, as many as it needs, under
    the same seeds as ``at_setting``); the full loss comes from
    ``reference``. Nothing here traces anew for another setting or seed.

    The ``S`` are one call but not one batched op: each ``S`` draws a
    candidate set of its own size by rejection (a while loop whose length
    depends on the draws), so the graph loops over them; the ``NUM_DRAWS``
    seeds of one ``S`` run in a ``tf.map_fn`` as in ``at_setting``.
    """
    seed = _check_seed(seed)
    problem = setting.problem
    ref = reference(problem, seed)
    weights, biases, labels, inputs = _tensors(problem, seed)
    points = sweep_points(setting.num_classes)
    draws, losses, input_grads, logit_grads, hits = _grid_graph(
        weights,
        biases,
        labels,
        inputs,
        tf.constant(points),
        tf.constant(NUM_DRAWS, tf.int64),
        _stateless_seed(seed),
        tf.constant(setting.remove_accidental_hits),
        tf.constant(SHOWN_SAMPLES, tf.int64),
        tf.constant(ref.classes),
    )
    return Grid(
        setting=setting,
        values=points,
        reference=ref,
        sampled_loss=losses.numpy(),
        draw_means=np.mean(np.asarray(draws, dtype=np.float64), axis=2),
        grad_norm=grad_norms(input_grads, axis=(1, 2)),
        sampled_logit_grad=logit_grads.numpy(),
        hits=hits.numpy(),
    )


def count_sweep(setting: SweepSetting, seed: int) -> Sweep:
    """Bias, spread, loss and gradient norm at every ``S`` of the grid, on the
    same batch and with ``at_setting``'s draws (``over_grid``)."""
    return over_grid(setting, seed).sweep()


# ------------------------------------------------------------------- timing


@functools.lru_cache(maxsize=8)
def _pass(num_classes: int, seed: int, kind: str):
    """The compiled pass of ``kind`` over the example's output layer, which
    is the same for both label laws."""
    weights, biases, _, _ = _tensors(Problem(num_classes, True), seed)
    return forward_backward_function(weights, biases, kind=kind)


def _median_seconds(problem: Problem, seed, kind, num_sampled=1, hits=True) -> float:
    _, _, labels, inputs = _tensors(problem, seed)
    step = _pass(problem.num_classes, seed, kind)
    return analysis.median_time(
        lambda: step(labels, inputs, num_sampled, seed, hits),
        repeats=TIMING_REPEATS,
        warmup=2,
    )


@functools.lru_cache(maxsize=16)
def _full_seconds(num_classes: int, seed: int, nonce: int) -> float:
    # Nothing of the full pass depends on S, the hits or which labels: its
    # cost is timed once per vocabulary and seed (and "Measure again").
    return _median_seconds(Problem(num_classes, True), seed, "full")


@dataclass(frozen=True)
class Timing:
    """Median milliseconds of one compiled forward and backward pass."""

    full_ms: float  # logits [BATCH, C], a dense [C, DIM] gradient
    sampled_ms: float  # logits [BATCH, 1 + S], BATCH + S rows, sampling included
    speedup: float  # full_ms / sampled_ms
    repeats: int  # passes behind each median


def timings(setting: Setting, seed: int, nonce: int = 0) -> Timing:
    """Times both passes (median of ``TIMING_REPEATS`` after two warm-ups).

    The full pass is measured once per (``C``, seed, ``nonce``) and kept; the
    sampled pass at every call. A new ``nonce`` measures both anew.
    """
    seed = _check_seed(seed)
    full = _full_seconds(setting.num_classes, seed, nonce)
    sampled = _median_seconds(
        setting.problem,
        seed,
        "sampled",
        setting.num_sampled,
        setting.remove_accidental_hits,
    )
    return Timing(full * 1e3, sampled * 1e3, full / sampled, TIMING_REPEATS)


@dataclass(frozen=True)
class Timings:
    """``timings`` at every ``S`` of the grid (``sweep_points``); ``at(S)``
    is the ``Timing`` of one."""

    setting: SweepSetting
    values: np.ndarray  # [P] the grid of S
    full_ms: float
    sampled_ms: np.ndarray  # [P]
    repeats: int

    def at(self, num_sampled: int) -> Timing:
        sampled = float(self.sampled_ms[_position(self.values, num_sampled)])
        return Timing(self.full_ms, sampled, self.full_ms / sampled, self.repeats)


def timings_over_grid(setting: SweepSetting, seed: int, nonce: int = 0) -> Timings:
    """``timings`` at every ``S`` of the grid: the full pass once, the
    sampled pass once per ``S`` (each its own median; one compiled pass
    serves them all)."""
    seed = _check_seed(seed)
    points = sweep_points(setting.num_classes)
    full = _full_seconds(setting.num_classes, seed, nonce)
    sampled = [
        _median_seconds(
            setting.problem, seed, "sampled", s, setting.remove_accidental_hits
        )
        for s in points.tolist()
    ]
    return Timings(
        setting=setting,
        values=points,
        full_ms=full * 1e3,
        sampled_ms=np.array(sampled) * 1e3,
        repeats=TIMING_REPEATS,
    )


# ---------------------------------------------------------- the optimizers


@dataclass(frozen=True)
class OptimizerRows:
    """Rows of the ``[C, DIM]`` output matrix that one sampled step changes
    under Keras' ``Adam`` and under ``LazyAdam``, counted after running each
    on the example at the Train panel's learning rate.

    Two starts: "warm", after one full-softmax step (whose dense gradient
    gives every row Adam moments), and "fresh", after one sampled step with
    another seed. The counted step is a sampled step at the page's seed,
    whose gradient covers the same ``step_rows`` rows in both starts.
    """

    setting: Setting
    learning_rate: float
    sparse: bool  # the sampled step's gradient of the matrix is a tf.IndexedSlices
    step_rows: int  # the rows it covers: the labels and the sampled classes
    full_rows: int  # rows on which the full-softmax step's gradient is non-zero
    warm_adam: int  # rows the sampled step changes after the full step: Adam
    warm_lazy: int  # the same, LazyAdam
    previous_rows: int  # rows the first sampled step of the fresh start covers
    both_rows: int  # rows either sampled step of the fresh start covers
    fresh_adam: int  # rows the second sampled step changes: Adam
    fresh_lazy: int  # the same, LazyAdam


def _optimizer_step(optimizer, weights, biases, data, kind, setting, seed):
    """One step of ``optimizer`` on the full or the sampled loss of the
    example; returns the gradient of the matrix and which rows changed."""
    _, _, labels, inputs = data
    with tf.GradientTape() as tape:
        if kind == "full":
            losses = full_softmax_loss(weights.value, biases.value, labels, inputs)
        else:
            losses = sampled_softmax_loss(
                weights.value,
                biases.value,
                labels,
                inputs,
                setting.num_sampled,
                remove_accidental_hits=setting.remove_accidental_hits,
                seed=seed,
            )
        loss = tf.reduce_mean(losses)
    grads = tape.gradient(loss, [weights.value, biases.value])
    before = np.array(weights.numpy(), copy=True)
    optimizer.apply_gradients(zip(grads, [weights, biases], strict=True))
    return grads[0], np.any(weights.numpy() != before, axis=1)


def _rows(gradient) -> np.ndarray:
    """The rows a gradient of the matrix covers (sparse) or is non-zero on."""
    if isinstance(gradient, tf.IndexedSlices):
        return np.unique(np.asarray(gradient.indices))
    return np.flatnonzero(np.any(np.asarray(gradient) != 0, axis=1))


def optimizer_rows(setting: Setting, seed: int) -> OptimizerRows:
    """Runs Adam and LazyAdam from the example's weights, each from both
    starts (see ``OptimizerRows``), and counts the rows of the output matrix
    the counted sampled step changes. The first step of the fresh start uses
    the stateless seed ``[seed, 1]``, the counted step ``seed``."""
    seed = _check_seed(seed)
    data = _tensors(setting.problem, seed)
    learning_rate = TRAINING.learning_rate
    counted, rows = {}, {}
    for name, make in (("adam", keras.optimizers.Adam), ("lazy", LazyAdam)):
        for first in ("full", "sampled"):
            weights, biases = keras.Variable(data[0]), keras.Variable(data[1])
            optimizer = make(learning_rate=learning_rate)
            first_seed = tf.constant([seed, 1], tf.int64)
            grad, _ = _optimizer_step(
                optimizer, weights, biases, data, first, setting, first_seed
            )
            rows[first] = _rows(grad)
            grad, changed = _optimizer_step(
                optimizer, weights, biases, data, "sampled", setting, seed
            )
            rows["step"], sparse = _rows(grad), isinstance(grad, tf.IndexedSlices)
            counted[name, first] = int(changed.sum())
    return OptimizerRows(
        setting=setting,
        learning_rate=learning_rate,
        sparse=sparse,
        step_rows=len(rows["step"]),
        full_rows=len(rows["full"]),
        warm_adam=counted["adam", "full"],
        warm_lazy=counted["lazy", "full"],
        previous_rows=len(rows["sampled"]),
        both_rows=len(np.union1d(rows["sampled"], rows["step"])),
        fresh_adam=counted["adam", "sampled"],
        fresh_lazy=counted["lazy", "sampled"],
    )


# ------------------------------------------------------------ words, lessons


@dataclass(frozen=True)
class IntroFacts:
    """The numbers the page's introduction states, at the page's defaults."""

    setting: Setting  # the defaults, labels as they say
    batch: int
    dim: int
    num_draws: int
    full_mean: float
    draws_mean: float
    bias: float
    spread: float
    draws_below: int  # of num_draws
    hits: int  # labels of the batch in the seed's sample
    uniform_bias: float  # the bias with uniform labels, same S and C
    zipf_bias: float  # the bias with Zipfian labels, same S and C

    @property
    def uniform_ratio(self) -> float:
        """How many times larger the bias is with uniform labels."""
        return self.uniform_bias / self.zipf_bias


def _point(setting: Setting, seed: int, grid: Grid | None) -> Point:
    """``at_setting``, looked up in ``grid`` when it holds ``setting`` (the
    same numbers: ``Grid.at`` equals ``at_setting``)."""
    if grid is not None and grid.setting == setting.sweep:
        if setting.num_sampled in grid.values:
            return grid.at(setting.num_sampled)
    return at_setting(setting, seed)


def intro_facts(setting: Setting, seed: int, grid: Grid | None = None) -> IntroFacts:
    """The introduction's numbers at ``setting`` (the page's defaults).
    ``grid``: the page's ``over_grid`` at ``seed``, if it has one, for the
    numbers it holds."""
    point = _point(setting, seed, grid)
    by_law = {
        zipf: point if zipf == setting.zipf_labels else _point(
            dataclasses.replace(setting, zipf_labels=zipf), seed, grid
        )
        for zipf in (True, False)
    }  # fmt: skip
    return IntroFacts(
        setting=setting,
        batch=BATCH,
        dim=DIM,
        num_draws=point.num_draws,
        full_mean=point.full_mean,
        draws_mean=point.draws_mean,
        bias=point.bias,
        spread=point.spread,
        draws_below=point.draws_below,
        hits=point.hits,
        uniform_bias=by_law[False].bias,
        zipf_bias=by_law[True].bias,
    )


def _against_spread(bias: float, spread: float) -> str:
    """``bias`` against ``spread`` in words ("12.3 times their spread 0.07")."""
    if spread > 0:
        return f"{abs(bias) / spread:.3g} times their spread {spread:.4g}"
    return "and their spread is 0"


# The first lesson's S, which the second lesson's compares with.
FEW_SAMPLED = 8
LESSON_CHECKS = ("biased_low", "closer", "optimizer_rows")


def check_lesson(
    name: str, values: Mapping, seed: int, grid: Grid | None = None
) -> Claim:
    """The outcome the lesson ``name`` states, at the control ``values`` (by
    name, as the page holds them; ``S`` capped at ``C`` as the page does).
    ``grid``: the page's ``over_grid`` at ``seed``, if it has one: the points
    it holds are looked up there, not computed.

    - ``"biased_low"``: every one of the ``NUM_DRAWS`` seeds gives a
      batch-mean sampled loss below the full loss, and the mean of the draws
      is below it by more than their spread;
    - ``"closer"``: the bias and the spread are both smaller in size than at
      ``FEW_SAMPLED`` sampled classes (same ``C``, labels and hits);
    - ``"optimizer_rows"``: the sampled step's gradient of the output matrix
      is sparse, on fewer than ``C`` rows; after a full-softmax step (whose
      gradient is non-zero on all ``C`` rows) Keras' Adam changes all ``C``
      rows and LazyAdam only the rows the sampled gradient covers; from a
      fresh start Adam's second step changes the rows of both steps,
      LazyAdam's only its own (``optimizer_rows``).
    """
    setting = Setting.capped(values)
    size = f"S = {setting.num_sampled:,}"
    if name == "biased_low":
        point = _point(setting, seed, grid)
        low = point.bias < 0 and -point.bias > point.spread
        every = point.draws_below == point.num_draws
        return Claim(
            holds=bool(low and every),
            statement=f"At {size} of {setting.num_classes:,} classes, "
            f"{point.draws_below} of {point.num_draws} seeds give a batch-mean "
            f"sampled loss below the full loss {point.full_mean:.4g}; their mean "
            f"{point.draws_mean:.4g} is {abs(point.bias):.4g} "
            f"{'below' if point.bias < 0 else 'above'} it, "
            f"{_against_spread(point.bias, point.spread)}.",
        )
    if name == "closer":
        point = _point(setting, seed, grid)
        few = dataclasses.replace(setting, num_sampled=FEW_SAMPLED)
        few = _point(few, seed, grid)
        closer = abs(point.bias) < abs(few.bias) and point.spread < few.spread
        return Claim(
            holds=bool(closer and setting.num_sampled > FEW_SAMPLED),
            statement=f"At {size} of {setting.num_classes:,} classes the bias is "
            f"{point.bias:.4g} and the spread {point.spread:.4g}, against "
            f"{few.bias:.4g} and {few.spread:.4g} at S = {FEW_SAMPLED}.",
        )
    if name == "optimizer_rows":
        rows = optimizer_rows(setting, seed)
        classes = setting.num_classes
        warm = rows.warm_adam == rows.full_rows == classes
        warm = warm and rows.warm_lazy == rows.step_rows
        fresh = rows.fresh_adam == rows.both_rows > rows.fresh_lazy == rows.step_rows
        return Claim(
            holds=bool(rows.sparse and warm and fresh and rows.step_rows < classes),
            statement=f"One sampled step ({size} of C = {classes:,}) gives the "
            f"output matrix a {'sparse' if rows.sparse else 'dense'} gradient on "
            f"{rows.step_rows:,} rows; after a full-softmax step (gradient on "
            f"{rows.full_rows:,} rows) it changes {rows.warm_adam:,} rows under "
            f"Keras' Adam and {rows.warm_lazy:,} under LazyAdam; from a fresh "
            f"start, as the second of two sampled steps, it changes "
            f"{rows.fresh_adam:,} under Adam (the {rows.both_rows:,} rows of both "
            f"steps) and {rows.fresh_lazy:,} under LazyAdam.",
        )
    raise ValueError(f"`name` must be one of {LESSON_CHECKS}, got {name!r}.")


# ------------------------------------------------------------------ training


def train_runs(setting: Setting) -> tuple[RunSpec, ...]:
    """The Train panel's runs: sampled with LazyAdam and with Adam, and the
    full softmax with Adam, at the page's ``S`` and ``C``."""
    num_sampled, vocab_size = setting.num_sampled, setting.num_classes
    size = f"C={vocab_size:,}"
    sampled = {"num_sampled": num_sampled, "vocab_size": vocab_size}
    return (
        RunSpec(
            f"sampled S={num_sampled} + LazyAdam ({size})",
            "sampled",
            {**sampled, "optimizer": "lazy_adam"},
        ),
        RunSpec(
            f"sampled S={num_sampled} + Adam ({size})",
            "sampled",
            {**sampled, "optimizer": "adam"},
        ),
        RunSpec(f"full softmax + Adam ({size})", "full", {"vocab_size": vocab_size}),
    )
