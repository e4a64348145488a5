"""Sampled softmax: cross-entropy over a large vocabulary at a fraction of the cost.

The full softmax over ``C`` classes needs the logits of every class for every
sample, an ``[N, C]`` matrix. Sampled softmax (Jean et al. 2015) scores the
true class and a shared set of ``S`` sampled classes only, and corrects each
logit by the log of its expected count under the sampler, so that the loss
estimates the full one. The estimate is biased low (the true class's logit is
raised by ``-log Q(y)``), by more than its spread over seeds; the bias shrinks
as ``S`` grows, so evaluate with the full loss. This module holds:

- ``full_softmax_loss``: the exact per-sample cross-entropy, the reference.
- ``sampled_softmax_loss``: the estimate, with the same meaning and the same
  logit correction as ``tf.nn.sampled_softmax_loss``, written with ops that XLA
  compiles (``tf.nn.sampled_softmax_loss`` itself cannot run under
  ``jit_compile=True``: its candidate sampler and its accidental-hit removal
  have no XLA kernel) and with candidates that a fixed seed repeats.
- ``log_uniform_candidate_sampler``: TensorFlow's log-uniform (Zipfian)
  candidate sampler, rebuilt from stateless random ops: a seed gives the same
  candidates on every call, eagerly, in a graph and under XLA.
- ``SampledSoftmax``: a Keras layer that owns the output projection, adds the
  sampled loss while training and returns full-softmax probabilities otherwise.

References:
  Jean, Cho, Memisevic, Bengio (2015), "On Using Very Large Target Vocabulary
  for Neural Machine Translation", ACL, section 3.
  TensorFlow, ``tf.nn.sampled_softmax_loss`` and "Candidate Sampling
  Algorithms Reference" (https://www.tensorflow.org/extras/candidate_sampling.pdf).
"""

from __future__ import annotations

from numbers import Integral

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz._common import as_float, check_number

INT64_MAX = 2**63 - 1
# These functions have no Python control flow on tensors: calling them inside
# ``tf.function`` needs no AutoGraph conversion, which would cost seconds of
# tracing for the whole module.
_plain = tf.autograph.experimental.do_not_convert
# Stateless integers are the same with and without XLA; stateless floats are
# not (their bits-to-float conversion differs), so uniforms are built from
# 53-bit integers.
_UNIFORM_BITS = 53

FORMULAS = {
    "full": (
        r"\ell(x, y) = -z_y + \log \sum_{c=1}^{C} e^{z_c},"
        r"\qquad z = W x + b,\; W \in \mathbb{R}^{C \times D}"
    ),
    "sampled": (
        r"\hat\ell(x, y) = -\tilde z_y + \log\Big(e^{\tilde z_y}"
        r" + \sum_{s \in S,\, s \ne y} e^{\tilde z_s}\Big),"
        r"\qquad \tilde z_c = z_c - \log Q(c)"
    ),
    "log_uniform": (
        r"P(c) = \frac{\log(c + 2) - \log(c + 1)}{\log(C + 1)},"
        r"\qquad c \in \{0, \dots, C - 1\}"
    ),
    "expected_count": (
        r"Q(c) = 1 - \big(1 - P(c)\big)^{n_{\mathrm{tries}}}"
        r"\quad (\text{unique}),\qquad Q(c) = |S|\, P(c)"
        r"\quad (\text{with replacement})"
    ),
}
FORMULA = FORMULAS["sampled"]


# --------------------------------------------------------------------------
# Argument handling shared by the two losses.


def _is_variable(x) -> bool:
    return isinstance(x, (tf.Variable, keras.Variable))


def _unwrap_variable(x):
    """Returns the ``tf.Variable`` behind a Keras variable, else ``x``.

    ``tf.gather`` on a ``tf.Variable`` reads only the gathered rows
    (``ResourceGather``) and its gradient is ``tf.IndexedSlices``; a Keras
    variable would first be converted to a dense tensor, copying the whole
    matrix and making the gradient dense.
    """
    if isinstance(x, keras.Variable):
        return x.value
    return x


def _as_parameter(x):
    """A weight or bias: variables stay variables, anything else becomes float."""
    x = _unwrap_variable(x)
    return x if _is_variable(x) else as_float(x)


def _num_classes(weights) -> int:
    shape = weights.shape
    if shape.rank != 2:
        raise ValueError(
            f"`weights` must have shape [num_classes, dim], got shape {shape}."
        )
    if shape[0] is None:
        raise ValueError(
            "`weights` must have a known number of rows (num_classes); "
            f"got shape {shape}."
        )
    return int(shape[0])


def _check_shapes(weights, biases, inputs, num_classes: int) -> None:
    if biases.shape.rank is not None and (
        biases.shape.rank != 1 or biases.shape[0] not in (None, num_classes)
    ):
        raise ValueError(
            f"`biases` must have shape [num_classes] = [{num_classes}], "
            f"got shape {biases.shape}."
        )
    if inputs.shape.rank is not None and inputs.shape.rank < 2:
        raise ValueError(
            "`inputs` must have shape [batch, dim] or [batch, time, dim], "
            f"got shape {inputs.shape}."
        )
    dim, input_dim = weights.shape[1], inputs.shape[-1]
    if dim is not None and input_dim is not None and dim != input_dim:
        raise ValueError(
            f"`inputs` last dimension ({input_dim}) must equal the `weights` "
            f"dimension ({dim})."
        )


def _flat_labels(labels, inputs, num_classes: int) -> tf.Tensor:
    """Labels as int64 ``[N]`` matching ``inputs`` flattened to ``[N, dim]``."""
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_floating:
        labels = tf.cast(labels, tf.int64)
    if not labels.dtype.is_integer:
        raise ValueError(f"`labels` must hold integer class ids, got {labels.dtype}.")
    rank, lead = inputs.shape.rank, inputs.shape[:-1]
    if rank is not None and labels.shape.rank is not None:
        if labels.shape.rank == rank and labels.shape[-1] == 1:
            labels = tf.squeeze(labels, -1)
        if not labels.shape.is_compatible_with(lead):
            raise ValueError(
                f"`labels` must have shape {lead.as_list()} (or with a trailing "
                f"1) to match `inputs` of shape {inputs.shape.as_list()}, got "
                f"{labels.shape.as_list()}."
            )
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int64)
    if tf.executing_eagerly() and labels.shape[0]:
        low, high = int(tf.reduce_min(labels)), int(tf.reduce_max(labels))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"`labels` must be class ids in [0, {num_classes - 1}], "
                f"got values in [{low}, {high}]."
            )
    return labels


def _prepare(weights, biases, labels, inputs):
    weights = _as_parameter(weights)
    biases = _as_parameter(biases)
    inputs = as_float(inputs)
    num_classes = _num_classes(weights)
    _check_shapes(weights, biases, inputs, num_classes)
    labels_flat = _flat_labels(labels, inputs, num_classes)
    return weights, biases, labels_flat, inputs, num_classes


def _flatten_inputs(inputs) -> tf.Tensor:
    dim = inputs.shape[-1]
    return tf.reshape(inputs, [-1, tf.shape(inputs)[-1] if dim is None else dim])


# --------------------------------------------------------------------------
# The full loss.


@_plain
def full_softmax_loss(weights, biases, labels, inputs) -> tf.Tensor:
    """Exact per-sample softmax cross-entropy of a linear output layer.

    ``loss = -z[y] + logsumexp(z)`` with ``z = inputs @ weights.T + biases``,
    computed by ``tf.nn.sparse_softmax_cross_entropy_with_logits`` (stable for
    any logit size). This is the quantity ``sampled_softmax_loss`` estimates;
    it forms the ``[N, num_classes]`` logits that the sampled loss avoids.

    Args:
      weights: ``[num_classes, dim]`` class embeddings (a tensor, array or
        variable), the layout ``tf.nn.sampled_softmax_loss`` uses.
      biases: ``[num_classes]`` class biases.
      labels: int class ids in ``[0, num_classes)``, ``[batch]`` or
        ``[batch, 1]`` for 2-D inputs, ``[batch, time]`` for 3-D inputs.
      inputs: ``[batch, dim]`` or ``[batch, time, dim]`` activations.

    Returns:
      ``[batch]`` (or ``[batch, time]``) losses, float32 unless ``inputs`` is
      float64. An empty batch gives an empty result. Weights and biases are
      cast to the dtype of ``inputs``.

    Raises:
      ValueError: shapes that do not fit together, or (eagerly) labels
        outside ``[0, num_classes)``.

    References:
      TensorFlow, ``tf.nn.sampled_softmax_loss`` (its "eval" example).
    """
    weights, biases, labels_flat, inputs, _ = _prepare(weights, biases, labels, inputs)
    loss = _full_loss_core(weights, biases, labels_flat, _flatten_inputs(inputs))
    return tf.reshape(loss, tf.shape(inputs)[:-1])


def _full_loss_core(weights, biases, labels_flat, flat) -> tf.Tensor:
    dtype = flat.dtype
    logits = tf.matmul(flat, tf.cast(weights, dtype), transpose_b=True)
    logits = logits + tf.cast(biases, dtype)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels_flat, logits=logits
    )


# --------------------------------------------------------------------------
# The stateless log-uniform candidate sampler.


def _stateless_seed(seed) -> tf.Tensor:
    """A ``[2]`` int64 stateless seed from ``None``, an int or a ``[2]`` tensor."""
    if seed is None:
        # A fresh pair on every call; a stateful draw XLA supports.
        pair = tf.random.uniform([2], minval=-(2**31), maxval=2**31 - 1, dtype=tf.int32)
        return tf.cast(pair, tf.int64)
    if isinstance(seed, (Integral, np.integer)) and not isinstance(seed, bool):
        check_number("seed", int(seed), low=-(2**63), high=INT64_MAX, integer=True)
        return tf.constant([int(seed), 0], tf.int64)
    if isinstance(seed, (bool, float, str)):
        raise ValueError(
            f"`seed` must be None, an integer or a [2] integer tensor, got {seed!r}."
        )
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank not in (0, 1):
        raise ValueError(
            "`seed` must be None, an integer or a [2] integer tensor, got "
            f"{seed.dtype.name} of shape {seed.shape}."
        )
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.zeros([], tf.int64)])
    if seed.shape[0] not in (None, 2):
        raise ValueError(f"`seed` as a tensor must have shape [2], got {seed.shape}.")
    return seed


def _uniform(shape, seed) -> tf.Tensor:
    """Uniform float64 in [0, 1), identical with and without XLA."""
    bits = tf.random.stateless_uniform(
        shape, seed, minval=0, maxval=2**_UNIFORM_BITS, dtype=tf.int64, alg="philox"
    )
    return tf.cast(bits, tf.float64) * (2.0**-_UNIFORM_BITS)


def _log_uniform_draws(shape, num_classes, seed) -> tf.Tensor:
    """Independent log-uniform class ids, by inversion as TensorFlow samples them."""
    log_range = tf.math.log1p(tf.cast(num_classes, tf.float64))
    values = tf.cast(tf.exp(_uniform(shape, seed) * log_range), tf.int64) - 1
    # exp(u * log(C + 1)) - 1 lies in [0, C]; C itself only through rounding.
    return tf.math.floormod(values, tf.cast(num_classes, tf.int64))


def _draw_unique(num_sampled, num_classes, seed):
    """Rejection sampling of distinct log-uniform ids, as TensorFlow does it.

    Draws come in blocks; a draw is kept when its value has not been seen
    before (earlier blocks, or earlier in its block), until ``num_sampled``
    distinct values are kept. ``num_tries`` counts draws up to and including
    the last kept one, as TensorFlow's ``RangeSampler`` counts its tries.
    First occurrences are found by sorting ``value * n + position`` (distinct
    keys, so no stable sort is needed): no tensor of size ``num_classes``.

    Returns:
      ``(sampled [num_sampled] int64, num_tries int64 scalar)``.
    """
    num_sampled = tf.cast(num_sampled, tf.int64)
    num_classes = tf.cast(num_classes, tf.int64)
    block = tf.maximum(2 * num_sampled, 64)
    total = num_sampled + block
    positions = tf.range(total, dtype=tf.int64)

    def not_done(step, picked, num_picked, num_tries):
        return num_picked < num_sampled

    def draw_block(step, picked, num_picked, num_tries):
        block_seed = tf.random.experimental.stateless_fold_in(seed, step, alg="philox")
        draws = _log_uniform_draws([block], num_classes, block_seed)
        values = tf.concat([picked, draws], 0)
        keys = tf.sort(values * total + positions)
        sorted_values = keys // total
        first_sorted = tf.concat([[True], sorted_values[1:] != sorted_values[:-1]], 0)
        first = tf.scatter_nd(
            (keys % total)[:, None], tf.cast(first_sorted, tf.int64), [total]
        )
        is_new = first[num_sampled:] > 0
        rank = tf.cumsum(tf.cast(is_new, tf.int64))
        need = num_sampled - num_picked
        keep = is_new & (rank <= need)
        # Kept draws go to their slots; the others to a spare slot, dropped.
        slots = tf.where(keep, num_picked + rank - 1, num_sampled)
        picked = tf.tensor_scatter_nd_update(
            tf.concat([picked, [0]], 0), slots[:, None], draws
        )[:-1]
        done = rank[-1] >= need
        last = tf.argmax(tf.cast(keep & (rank == need), tf.int32), output_type=tf.int64)
        tries = tf.where(done, last + 1, block)
        num_picked += tf.minimum(rank[-1], need)
        return step + 1, picked, num_picked, num_tries + tries

    # Placeholder values num_classes + i never match a real class nor each other.
    start = (
        tf.zeros([], tf.int64),
        num_classes + tf.range(num_sampled, dtype=tf.int64),
        tf.zeros([], tf.int64),
        tf.zeros([], tf.int64),
    )
    _, picked, _, num_tries = tf.while_loop(not_done, draw_block, start)
    return picked, num_tries


def _draw_with_replacement(num_sampled, num_classes, seed):
    draws = _log_uniform_draws([num_sampled], num_classes, seed)
    return draws, tf.constant(num_sampled, tf.int64)


@_plain
def log_uniform_probability(classes, num_classes) -> tf.Tensor:
    """Probability of each class id under the log-uniform (Zipfian) sampler.

    ``P(c) = (log(c + 2) - log(c + 1)) / log(C + 1)``, computed as
    ``log1p(1 / (c + 1)) / log1p(C)`` in float64.

    Args:
      classes: int class ids, any shape.
      num_classes: ``C``, the number of classes.

    Returns:
      float64 tensor with the shape of ``classes``; sums to 1 over ``[0, C)``.
    """
    c = tf.cast(classes, tf.float64)
    return tf.math.log1p(1.0 / (c + 1.0)) / tf.math.log1p(
        tf.cast(num_classes, tf.float64)
    )


def _expected_count(probability, num_sampled, num_tries) -> tf.Tensor:
    """TensorFlow's ``ExpectedCountHelper``: ``1 - (1 - p)^tries`` or ``p * S``."""
    num_sampled = tf.cast(num_sampled, tf.float64)
    num_tries = tf.cast(num_tries, tf.float64)
    return tf.where(
        num_tries == num_sampled,
        probability * num_sampled,
        -tf.math.expm1(num_tries * tf.math.log1p(-probability)),
    )


def _candidates(true_classes, num_sampled, num_classes, seed, unique):
    """``(sampled int64 [S], true count float64, sampled count float64)``."""
    seed = _stateless_seed(seed)
    if not unique:
        sampled, num_tries = _draw_with_replacement(num_sampled, num_classes, seed)
        return _with_counts(true_classes, sampled, num_sampled, num_classes, num_tries)
    if tf.executing_eagerly():
        return _unique_candidates_graph(
            true_classes,
            tf.constant(num_sampled, tf.int64),
            tf.constant(num_classes, tf.int64),
            seed,
        )
    return _unique_candidates(true_classes, num_sampled, num_classes, seed)


def _unique_candidates(true_classes, num_sampled, num_classes, seed):
    sampled, num_tries = _draw_unique(num_sampled, num_classes, seed)
    return _with_counts(true_classes, sampled, num_sampled, num_classes, num_tries)


# Eagerly, the sampler and the loss run as traced graphs whose inputs are all
# tensors (sizes included), so one trace per dtype serves every setting: some
# sixty small eager ops would cost more than the maths. Inside tf.function and
# XLA the plain functions run, with static sizes.
_unique_candidates_graph = tf.function(
    _unique_candidates, reduce_retracing=True, autograph=False
)


def _with_counts(true_classes, sampled, num_sampled, num_classes, num_tries):
    true_count = _expected_count(
        log_uniform_probability(true_classes, num_classes), num_sampled, num_tries
    )
    sampled_count = _expected_count(
        log_uniform_probability(sampled, num_classes), num_sampled, num_tries
    )
    return (
        tf.stop_gradient(sampled),
        tf.stop_gradient(true_count),
        tf.stop_gradient(sampled_count),
    )


def _check_num_sampled(num_sampled, num_classes: int, unique: bool = True) -> int:
    high = num_classes if unique else None
    return int(check_number("num_sampled", num_sampled, low=1, high=high, integer=True))


@_plain
def log_uniform_candidate_sampler(
    true_classes, num_sampled, num_classes, *, seed=None, unique=True
):
    """Log-uniform candidates from stateless random ops: repeatable, XLA-ready.

    The same distribution and the same expected counts as
    ``tf.random.log_uniform_candidate_sampler(true_classes, num_true,
    num_sampled, unique, range_max=num_classes)``: each draw is class ``c``
    with ``P(c) = (log(c + 2) - log(c + 1)) / log(C + 1)``. With
    ``unique=True`` draws are repeated until ``num_sampled`` distinct classes
    are found after ``n_tries`` draws, and the expected count of class ``c``
    is ``1 - (1 - P(c))^n_tries`` (``P(c) * num_sampled`` when no draw was
    rejected); with ``unique=False`` it is ``P(c) * num_sampled``.

    Unlike TensorFlow's sampler op, whose state advances on every call even
    with a fixed seed, a fixed ``seed`` gives the same candidates on every
    call, eagerly, in ``tf.function`` and under ``jit_compile=True`` (where
    TensorFlow's op cannot run at all). The work grows with ``num_sampled``
    and the number of tries, never with ``num_classes``.

    Args:
      true_classes: int class ids of any shape, e.g. ``[batch, 1]``.
      num_sampled: number of candidates ``S``, in ``[1, num_classes]`` when
        ``unique``, at least 1 otherwise.
      num_classes: ``C``, a Python int >= 1.
      seed: ``None`` (a fresh draw on every call), an int, or a ``[2]`` int
        tensor used as the stateless seed (e.g. from
        ``keras.random.SeedGenerator.next()``).
      unique: sample without replacement (TensorFlow's default for sampled
        softmax) or with it.

    Returns:
      ``(sampled_candidates [S] int64, true_expected_count float32 with the
      shape of true_classes, sampled_expected_count [S] float32)``, the
      triple ``sampled_softmax_loss`` takes as ``sampled_values``.

    Raises:
      ValueError: ``num_classes`` < 1, ``num_sampled`` out of range, a bad
        ``seed``.

    References:
      TensorFlow ``tensorflow/core/kernels/range_sampler.cc``
      (``LogUniformSampler``, ``ExpectedCountHelper``).
    """
    num_classes = int(check_number("num_classes", num_classes, low=1, integer=True))
    num_sampled = _check_num_sampled(num_sampled, num_classes, unique)
    sampled, true_count, sampled_count = _candidates(
        tf.convert_to_tensor(true_classes), num_sampled, num_classes, seed, unique
    )
    return sampled, tf.cast(true_count, tf.float32), tf.cast(sampled_count, tf.float32)


# --------------------------------------------------------------------------
# The sampled loss.


def _unpack_sampled_values(sampled_values, num_sampled: int):
    try:
        sampled, true_count, sampled_count = sampled_values
    except (TypeError, ValueError):
        raise ValueError(
            "`sampled_values` must be a triple (sampled_candidates, "
            "true_expected_count, sampled_expected_count), as the "
            "tf.random.*_candidate_sampler functions return."
        ) from None
    sampled = tf.cast(tf.reshape(sampled, [-1]), tf.int64)
    if sampled.shape[0] is not None and sampled.shape[0] != num_sampled:
        raise ValueError(
            f"`sampled_values` holds {sampled.shape[0]} candidates, but "
            f"`num_sampled` is {num_sampled}."
        )
    return (
        tf.stop_gradient(sampled),
        tf.stop_gradient(tf.reshape(true_count, [-1])),
        tf.stop_gradient(tf.reshape(sampled_count, [-1])),
    )


def _log_count(count, dtype) -> tf.Tensor:
    # A zero count (a custom sampler) would make the corrected logit +inf.
    count = tf.cast(count, dtype)
    return tf.math.log(tf.maximum(count, np.finfo(dtype.as_numpy_dtype).tiny))


def _gather_rows(weights, biases, labels_flat, sampled, dtype):
    """The rows of the labels, then of the sampled classes: ``[N + S, D]``, ``[N + S]``.

    Gathering from a variable reads only these rows; its gradient is sparse.
    """
    all_ids = tf.concat([labels_flat, sampled], 0)
    all_w = tf.cast(tf.gather(weights, all_ids), dtype)
    all_b = tf.cast(tf.gather(biases, all_ids), dtype)
    return all_w, all_b


def _logits_from_rows(all_w, all_b, labels_flat, flat, candidates, remove_hits):
    sampled, true_count, sampled_count = candidates
    dtype = flat.dtype
    num_labels = tf.shape(labels_flat)[0]
    true_w, sampled_w = tf.split(all_w, tf.stack([num_labels, -1]))
    true_b, sampled_b = tf.split(all_b, tf.stack([num_labels, -1]))

    true_logits = tf.reduce_sum(flat * true_w, -1) + true_b
    true_logits -= _log_count(true_count, dtype)
    sampled_logits = tf.matmul(flat, sampled_w, transpose_b=True) + sampled_b
    sampled_logits -= _log_count(sampled_count, dtype)[None, :]
    hits = tf.logical_and(labels_flat[:, None] == sampled[None, :], remove_hits)
    # The lowest finite value, not -inf: exp gives 0 and the gradient stays 0.
    sampled_logits = tf.where(hits, dtype.min, sampled_logits)
    return tf.concat([true_logits[:, None], sampled_logits], 1)


def _sampled_loss_core(weights, biases, labels_flat, flat, candidates, remove_hits):
    """``[N]`` sampled losses from flat inputs ``[N, D]`` and given candidates."""
    rows = _gather_rows(weights, biases, labels_flat, candidates[0], flat.dtype)
    return _loss_from_rows(*rows, labels_flat, flat, candidates, remove_hits)


def _loss_from_rows(all_w, all_b, labels_flat, flat, candidates, remove_hits):
    logits = _logits_from_rows(all_w, all_b, labels_flat, flat, candidates, remove_hits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.zeros_like(labels_flat), logits=logits
    )


# Eagerly the rows are gathered outside the graph (from a variable, so that its
# gradient stays an IndexedSlices) and the rest runs as one traced graph.
_loss_from_rows_graph = tf.function(
    _loss_from_rows, reduce_retracing=True, autograph=False
)


def _check_flag(name, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


@_plain
def sampled_softmax_loss(
    weights,
    biases,
    labels,
    inputs,
    num_sampled,
    *,
    remove_accidental_hits=True,
    sampled_values=None,
    seed=None,
) -> tf.Tensor:
    """Per-sample sampled softmax loss, an estimate of ``full_softmax_loss``.

    With ``z_c = w_c . x + b_c`` and ``Q(c)`` the expected count of class ``c``
    in the sample ``S`` (shared by the whole batch), every logit is corrected
    to ``z~_c = z_c - log Q(c)`` and the loss is the cross-entropy of the true
    class among itself and the sampled classes:
    ``loss = -z~_y + log(exp(z~_y) + sum_{s in S, s != y} exp(z~_s))``.
    With ``remove_accidental_hits`` a sampled class equal to the label is left
    out of the sum (its logit is set to the dtype's lowest value, as
    TensorFlow does); otherwise the label may be counted twice. Like
    TensorFlow's, the value is generally below the full loss: compare sampled
    losses with each other and evaluate with ``full_softmax_loss``.

    This is ``tf.nn.sampled_softmax_loss(weights, biases, labels[:, None],
    inputs, num_sampled, num_classes, sampled_values=..., remove_accidental_hits
    =...)``, the same logits and the same correction (the tests compare the
    two), computed here with ops XLA compiles: TensorFlow's version has no XLA
    kernel for its sampler nor for ``compute_accidental_hits``. 3-D inputs and
    ``[batch]`` labels are flattened for it and the result reshaped back.

    Only the ``S`` sampled rows and the ``N`` label rows of ``weights`` are
    read (``tf.gather``), never the ``[N, C]`` logits. Pass ``weights`` as a
    variable (``tf.Variable`` or a Keras variable, as ``SampledSoftmax``
    does): its gradient is then a ``tf.IndexedSlices`` over those rows rather
    than a dense ``[C, D]`` matrix.

    Args:
      weights: ``[num_classes, dim]`` class embeddings; the number of classes
        must be known statically.
      biases: ``[num_classes]``.
      labels: int ids in ``[0, num_classes)``: ``[batch]`` or ``[batch, 1]``
        for 2-D inputs, ``[batch, time]`` for 3-D inputs.
      inputs: ``[batch, dim]`` or ``[batch, time, dim]``.
      num_sampled: ``S``, an int in ``[1, num_classes]``.
      remove_accidental_hits: leave a sampled class that equals the label out
        of that sample's sum (default True, as in TensorFlow).
      sampled_values: ``(sampled_candidates [S], true_expected_count [N] or
        [N, 1], sampled_expected_count [S])`` from any candidate sampler, used
        as given. ``tf.random.all_candidate_sampler(labels, 1, num_classes,
        True)`` samples every class with count 1, and the loss then equals
        ``full_softmax_loss``. By default the candidates come from
        ``log_uniform_candidate_sampler(..., unique=True)``.
      seed: for the default sampler: ``None`` (fresh candidates on every
        call), an int (the same candidates on every call), or a ``[2]`` int
        tensor used as a stateless seed.

    Returns:
      ``[batch]`` (or ``[batch, time]``) losses, float32 unless ``inputs`` is
      float64. Finite for finite inputs: a hit's logit is the dtype's lowest
      finite value and its gradient is 0; a zero expected count from a custom
      sampler is clamped to the smallest normal number. An empty batch gives
      an empty result.

    Raises:
      ValueError: ``num_sampled`` outside ``[1, num_classes]``, shapes that do
        not fit, a bad ``seed`` or ``sampled_values``.

    References:
      Jean et al. (2015), "On Using Very Large Target Vocabulary for Neural
      Machine Translation", section 3; TensorFlow ``tf.nn.sampled_softmax_loss``.
    """
    weights, biases, labels_flat, inputs, num_classes = _prepare(
        weights, biases, labels, inputs
    )
    num_sampled = _check_num_sampled(num_sampled, num_classes)
    remove_accidental_hits = _check_flag(
        "remove_accidental_hits", remove_accidental_hits
    )
    if sampled_values is None:
        candidates = _candidates(labels_flat, num_sampled, num_classes, seed, True)
    else:
        candidates = _unpack_sampled_values(sampled_values, num_sampled)
    flat = _flatten_inputs(inputs)
    if tf.executing_eagerly():
        rows = _gather_rows(weights, biases, labels_flat, candidates[0], flat.dtype)
        loss = _loss_from_rows_graph(
            *rows, labels_flat, flat, candidates, tf.constant(remove_accidental_hits)
        )
    else:
        loss = _sampled_loss_core(
            weights, biases, labels_flat, flat, candidates, remove_accidental_hits
        )
    return tf.reshape(loss, tf.shape(inputs)[:-1])


# --------------------------------------------------------------------------
# The Keras layer.


def _masked_mean(values, mask) -> tf.Tensor:
    values = tf.cast(values, tf.float32)
    weights = tf.ones_like(values) if mask is None else tf.cast(mask, values.dtype)
    # May be 0: an empty batch or an all-padding mask gives a loss of 0.
    return tf.math.divide_no_nan(
        tf.reduce_sum(values * weights), tf.reduce_sum(weights)
    )


@keras.saving.register_keras_serializable(package="lossviz")
class SampledSoftmax(keras.layers.Layer):
    """Output projection with a sampled-softmax training loss.

    Owns ``kernel [num_classes, dim]`` (the layout ``tf.nn`` uses) and
    ``bias [num_classes]``. Called as ``layer(inputs, labels=None,
    training=None)``:

    - training with labels: adds the mean ``sampled_softmax_loss`` with
      ``add_loss`` and returns the per-sample sampled losses ``[batch]`` (or
      ``[batch, time]``); no ``[batch, num_classes]`` logits are formed, and
      the kernel's gradient is a ``tf.IndexedSlices`` over the rows used;
    - otherwise: returns ``softmax(inputs @ kernel.T + bias)``,
      ``[batch, num_classes]`` (or ``[batch, time, num_classes]``), and, when
      labels are given, adds the mean exact cross-entropy (so
      ``model.evaluate`` reports the full loss).

    A Keras mask on ``inputs`` (e.g. from ``Embedding(mask_zero=True)``)
    leaves padded positions out of the mean; an all-padding batch adds 0.

    Train with ``model.compile(optimizer, loss=None)`` and inputs
    ``(x, labels)``. The candidates come from a ``keras.random.SeedGenerator``
    and stateless sampling, so the layer trains under ``jit_compile=True``.

    Args:
      num_classes: ``C`` >= 1.
      num_sampled: ``S`` in ``[1, num_classes]``.
      remove_accidental_hits: as in ``sampled_softmax_loss``.
      seed: int seed of the candidate sampler, or None for a random one.
      kernel_initializer, bias_initializer: Keras initializers.
      **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).
    """

    def __init__(
        self,
        num_classes,
        num_sampled,
        *,
        remove_accidental_hits=True,
        seed=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(
            check_number("num_classes", num_classes, low=1, integer=True)
        )
        self.num_sampled = _check_num_sampled(num_sampled, self.num_classes)
        self.remove_accidental_hits = _check_flag(
            "remove_accidental_hits", remove_accidental_hits
        )
        if seed is not None:
            check_number("seed", seed, integer=True)
            seed = int(seed)
        self.seed = seed
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(
                f"`inputs` need a known last dimension, got shape {input_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_classes, dim),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.num_classes,), initializer=self.bias_initializer
        )

    @_plain
    def call(self, inputs, labels=None, training=None, mask=None):
        if training and labels is not None:
            losses = sampled_softmax_loss(
                self.kernel,
                self.bias,
                labels,
                inputs,
                self.num_sampled,
                remove_accidental_hits=self.remove_accidental_hits,
                seed=self.seed_generator.next(),
            )
            self.add_loss(_masked_mean(losses, mask))
            return losses
        logits = tf.matmul(inputs, tf.cast(self.kernel, inputs.dtype), transpose_b=True)
        logits = logits + tf.cast(self.bias, inputs.dtype)
        if labels is not None:
            labels = tf.cast(labels, tf.int64)
            if labels.shape.rank == inputs.shape.rank:
                labels = tf.squeeze(labels, -1)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            )
            self.add_loss(_masked_mean(losses, mask))
        return tf.nn.softmax(logits)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            num_sampled=self.num_sampled,
            remove_accidental_hits=self.remove_accidental_hits,
            seed=self.seed,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
