"""Softmax toward one-hot: power and temperature sharpening, in log space.

A model that predicts a distribution over a vocabulary and is trained against
a target *embedding* needs a differentiable way from "probabilities" to "one
token". This module holds the usual ways, each written so that it stays finite:

- ``power_sharpen``: ``p**k / sum(p**k)`` computed as ``softmax(k * log p)``;
  ``naive_power_sharpen`` is the literal form, kept to show where it breaks
  (in float32, ``0.3**200`` underflows to 0 and the ratio becomes 0/0 = NaN).
- ``temperature_softmax``: ``softmax(z / T)``; sharpening softmax probabilities
  by ``k`` is the same as a softmax at temperature ``1 / k``.
- ``soft_embedding_lookup`` and ``embedding_target_loss``: the expected
  embedding under the sharpened distribution, compared with a target embedding
  by cosine distance or mean squared error; ``EmbeddingTargetLoss`` wraps it
  for ``model.compile``.
- ``straight_through_one_hot`` and ``gumbel_softmax``: a hard one-hot forward
  value with a soft gradient.

Sharpening does not come for free: as the power grows the output saturates to
one-hot and the gradient through it vanishes (a large power is a small
temperature).
"""

from __future__ import annotations

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz._common import as_float, check_choice, check_number

MAX_POWER = 1e4
DISTANCES = ("cosine", "mse")

FORMULAS = {
    "power_sharpen": (
        r"\operatorname{sharpen}_k(p)_i = \frac{p_i^{\,k}}{\sum_j p_j^{\,k}}"
        r" = \operatorname{softmax}(k \log p)_i"
    ),
    "temperature_softmax": (
        r"\operatorname{softmax}(z / T)_i = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}},"
        r"\qquad \operatorname{sharpen}_k(\operatorname{softmax}(z))"
        r" = \operatorname{softmax}(z / \tfrac{1}{k})"
    ),
    "soft_embedding_lookup": r"\hat e = \sum_{v=1}^{V} w_v\, E_{v,:}",
    "cosine": (
        r"d_{\cos}(t, \hat e) = 1 - \frac{t \cdot \hat e}{\lVert t \rVert\,"
        r"\lVert \hat e \rVert} \in [0, 2]"
    ),
    "mse": (
        r"d_{\mathrm{mse}}(t, \hat e) = \frac{1}{D}"
        r" \sum_{d=1}^{D} (t_d - \hat e_d)^2"
    ),
    "straight_through": (
        r"y = \operatorname{onehot}(\arg\max p) + p - \operatorname{sg}(p),"
        r"\qquad \frac{\partial y}{\partial p} = I"
    ),
    "straight_through_loss": (
        r"L = d\!\left(t,\ E_{\arg\max_v p_v,\,:}\right),"
        r"\qquad \nabla_p L = E\, \nabla_{\hat e}\, d(t, \hat e)"
        r"\big|_{\hat e = E_{\arg\max_v p_v,\,:}}"
    ),
    "gumbel_softmax": (
        r"y = \operatorname{softmax}\!\left(\frac{z + g}{T}\right),"
        r"\quad g_i = -\log(-\log u_i),\ u_i \sim U(0, 1)"
    ),
}

FORMULA = (
    r"L(t, p) = d\!\left(t,\ \operatorname{sharpen}_k(p)\, E\right),"
    r"\qquad \operatorname{sharpen}_k(p) = \operatorname{softmax}(k \log p)"
)


def _check_power(power, iterations):
    check_number("power", power, low=0.0, high=MAX_POWER, low_open=True)
    check_number("iterations", iterations, low=1, integer=True)
    if tf.is_tensor(iterations):
        raise ValueError("`iterations` must be a Python integer >= 1, not a tensor.")
    return int(iterations)


def _tiny(dtype):
    return float(np.finfo(dtype.as_numpy_dtype).tiny)


def _sharpen_once(probs, power):
    # Entries p <= 0 are masked instead of taking log(0) = -inf: both the
    # value and the gradient of log would be non-finite there, and 0 * -inf
    # (the gradient with respect to the power) would be NaN. Subnormal p are
    # masked too: CPU kernels flush some of them to 0 (float32 `1e-40 > 0` is
    # False, float64 `log(1e-310)` is -inf), so only normal numbers are safe.
    positive = probs >= _tiny(probs.dtype)
    log_p = tf.math.log(tf.where(positive, probs, tf.ones_like(probs)))
    logits = power * log_p
    # Softmax is shift-invariant: subtract the largest logit among the
    # positive entries (no gradient needed through the shift).
    shift = tf.reduce_max(
        tf.where(positive, logits, tf.fill(tf.shape(logits), logits.dtype.min)),
        axis=-1,
        keepdims=True,
    )
    shift = tf.stop_gradient(shift)
    shifted = tf.where(positive, logits - shift, tf.zeros_like(logits))
    weights = tf.where(positive, tf.exp(shifted), tf.zeros_like(shifted))
    # May be 0! A row without any positive entry: 0 / 0 -> 0, zero gradient.
    return tf.math.divide_no_nan(weights, tf.reduce_sum(weights, -1, keepdims=True))


def power_sharpen(probs, power, iterations=1):
    """Raises probabilities to a power and renormalises, in log space.

    ``sharpen_k(p)_i = p_i**k / sum_j p_j**k = softmax(k * log p)_i`` along the
    last axis, applied ``iterations`` times (``k**iterations`` in one go,
    mathematically). ``k > 1`` sharpens toward the one-hot of the argmax,
    ``k < 1`` flattens toward uniform over the non-zero entries, ``k = 1``
    renormalises.

    Args:
      probs: non-negative weights ``[..., num_classes]``, usually probabilities.
      power: the exponent ``k`` in ``(0, 1e4]`` (a float or a scalar tensor).
      iterations: how many times to apply the sharpening, an integer >= 1.

    Returns:
      ``[..., num_classes]``, each row summing to 1; float32 unless ``probs``
      is float64.

    Edge cases:
      - ``p_i = 0`` (or negative, or subnormal: below 1.2e-38 in float32,
        2.2e-308 in float64) gives exactly 0, with finite gradients (the log
        is masked there, never evaluated at 0).
      - A row with no positive entry gives a row of zeros, zero gradient.
      - Large powers stay finite where ``naive_power_sharpen`` gives 0/0; the
        output saturates to one-hot and its gradient vanishes. Ties at the
        maximum share the mass equally.
      - If ``probs = softmax(z)``, ``temperature_softmax(z, 1 / k)`` is the same
        value computed from the logits, without the rounding of ``log p``.

    Raises:
      ValueError: ``power`` outside ``(0, 1e4]`` or ``iterations`` < 1.
    """
    iterations = _check_power(power, iterations)
    probs = as_float(probs)
    power = as_float(power, probs.dtype)
    out = probs
    for _ in range(iterations):
        out = _sharpen_once(out, power)
    return out


def naive_power_sharpen(probs, power, iterations=1):
    """The literal ``x**power / reduce_sum(x**power)``; shows where it breaks.

    Same maths as ``power_sharpen``, written the way it is usually first
    written. In float32 ``x**power`` underflows to 0 for every entry once
    ``power`` is large enough (e.g. ``0.3**200 ~ 1e-105``), and the ratio is
    0/0 = NaN; for ``power < 1`` the gradient at ``x = 0`` is infinite.

    Args:
      probs: non-negative weights ``[..., num_classes]``.
      power: the exponent in ``(0, 1e4]``.
      iterations: how many times to apply it, an integer >= 1.

    Returns:
      ``[..., num_classes]``; may contain NaN (that is its point).

    Raises:
      ValueError: ``power`` outside ``(0, 1e4]`` or ``iterations`` < 1.
    """
    iterations = _check_power(power, iterations)
    probs = as_float(probs)
    power = as_float(power, probs.dtype)
    out = probs
    for _ in range(iterations):
        raised = out**power
        out = raised / tf.reduce_sum(raised, axis=-1, keepdims=True)
    return out


def temperature_softmax(logits, temperature):
    """Softmax of ``logits / temperature`` along the last axis.

    ``softmax(z / T)_i = exp(z_i / T) / sum_j exp(z_j / T)``. ``T < 1``
    sharpens, ``T > 1`` flattens, ``T -> 0`` tends to the one-hot of the argmax.
    ``power_sharpen(softmax(z), k) == temperature_softmax(z, 1 / k)``.

    Args:
      logits: ``[..., num_classes]``.
      temperature: ``T > 0`` (a float or a scalar tensor); ``inf`` gives uniform.

    Returns:
      ``[..., num_classes]`` probabilities; float32 unless ``logits`` is float64.

    Edge cases:
      The largest logit is subtracted *before* dividing by ``T``, so a tiny
      temperature cannot overflow ``z / T`` to ``inf - inf = NaN``: the result
      stays finite (one-hot in the limit, ties shared). A subnormal ``T``
      acts as the smallest normal number (CPU kernels flush it to 0, and
      ``0 / 0`` would be NaN).

    Raises:
      ValueError: ``temperature <= 0``.
    """
    check_number("temperature", temperature, low=0.0, low_open=True)
    logits = as_float(logits)
    temperature = tf.maximum(
        as_float(temperature, logits.dtype), _tiny(logits.dtype)
    )
    shifted = logits - tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True))
    return tf.nn.softmax(shifted / temperature, axis=-1)


def soft_embedding_lookup(weights, embedding):
    """Expected embedding under ``weights``: ``weights[..., V] @ embedding[V, D]``.

    ``e_hat = sum_v w_v E[v, :]``. Any number of leading axes; the leading
    axes are flattened into one matrix product, the embedding is never tiled.

    Args:
      weights: ``[..., vocab_size]`` (e.g. sharpened probabilities).
      embedding: ``[vocab_size, embedding_dim]``.

    Returns:
      ``[..., embedding_dim]``, in the dtype of ``weights`` (float32 unless it
      is float64); ``embedding`` is cast to it.

    Raises:
      ValueError: ``embedding`` is not 2-D, or its rows do not match the last
        axis of ``weights``.
    """
    weights = as_float(weights)
    embedding = as_float(embedding, weights.dtype)
    if embedding.shape.rank != 2:
        raise ValueError(
            f"`embedding` must be 2-D [vocab_size, embedding_dim], got shape "
            f"{embedding.shape}."
        )
    vocab, dim = embedding.shape
    if weights.shape.rank == 0:
        raise ValueError("`weights` must have a last axis of size vocab_size.")
    if None not in (vocab, weights.shape[-1]) and weights.shape[-1] != vocab:
        raise ValueError(
            f"`weights` last axis ({weights.shape[-1]}) must equal the number of "
            f"`embedding` rows ({vocab})."
        )
    leading = tf.shape(weights)[:-1]
    flat = tf.reshape(weights, [-1, tf.shape(embedding)[0]])
    out = tf.reshape(
        tf.matmul(flat, embedding), tf.concat([leading, tf.shape(embedding)[1:]], 0)
    )
    if weights.shape.rank is not None:
        out.set_shape(weights.shape[:-1].concatenate([dim]))
    return out


def _unit(x):
    # x / |x| without overflow, underflow or a non-finite gradient: scale by
    # max|x| first (so the squared norm is in [1, D]), and map a zero vector
    # (max|x| below the smallest normal number) to 0.
    scale = tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)
    nonzero = scale >= _tiny(x.dtype)
    scaled = x / tf.where(nonzero, scale, tf.ones_like(scale))
    squared = tf.reduce_sum(tf.square(scaled), axis=-1, keepdims=True)
    norm = tf.sqrt(tf.where(nonzero, squared, tf.ones_like(squared)))
    return tf.where(nonzero, scaled / norm, tf.zeros_like(scaled))


def cosine_distance(a, b):
    """``1 - cos(a, b)`` along the last axis, in ``[0, 2]``; zero vectors give 1.

    Args:
      a: ``[..., D]``.
      b: ``[..., D]``, cast to the dtype of ``a``.

    Returns:
      ``[...]``. A zero vector has cosine 0 with anything (distance 1), with a
      finite gradient; vectors of any magnitude (1e-30 or 1e30 in float32) are
      normalised without overflow.
    """
    a = as_float(a)
    b = as_float(b, a.dtype)
    cos = tf.reduce_sum(_unit(a) * _unit(b), axis=-1)
    return tf.clip_by_value(1.0 - cos, 0.0, 2.0)


def _check_straight_through(straight_through):
    if not isinstance(straight_through, bool | np.bool_):
        raise ValueError(
            f"`straight_through` must be True or False, got {straight_through!r}."
        )
    return bool(straight_through)


def embedding_target_loss(
    target,
    probs,
    embedding,
    power=1.0,
    iterations=1,
    distance="cosine",
    *,
    straight_through=False,
):
    """Distance between a target embedding and the sharpened expected embedding.

    ``L = d(t, sharpen_k(p) @ E)`` with ``sharpen_k = power_sharpen`` applied
    ``iterations`` times and ``d`` the cosine distance ``1 - cos`` (in
    ``[0, 2]``) or the mean squared error over the embedding axis.

    Args:
      target: ``[..., embedding_dim]`` target embeddings (cast to ``probs``'
        dtype).
      probs: ``[..., vocab_size]`` predicted probabilities.
      embedding: ``[vocab_size, embedding_dim]`` (array or tensor; it may be a
        trainable variable).
      power: sharpening power in ``(0, 1e4]``; 1 only renormalises.
      iterations: sharpening iterations, an integer >= 1.
      distance: ``"cosine"`` or ``"mse"``.
      straight_through: if True, the sharpened probabilities go through
        ``straight_through_one_hot``: the loss is the distance to the
        embedding row of the argmax token exactly, and its gradient with
        respect to the sharpened probabilities is that of the soft lookup at
        that row, ``E @ grad_e d(t, e)`` (identity through the one-hot).

    Returns:
      ``[...]`` per-sample distances; float32 unless ``probs`` is float64.

    Edge cases:
      A zero target or zero predicted embedding has cosine 0 (distance 1) with
      a finite gradient. A large power makes the prediction the embedding row
      of the argmax, and the gradient with respect to ``probs`` vanishes.
      With ``straight_through`` the value only changes when the argmax does
      (ties go to the first maximum; a row without a positive entry still
      gives the zero vector); the gradient does not vanish at ``power=1``,
      but it still does at a large power, through the sharpening.

    Raises:
      ValueError: a parameter outside its range or mismatched shapes.

    References:
      Sharpening in log space: the softmax/temperature identity, e.g. Hinton,
      Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".
      Straight-through: Bengio, Léonard & Courville (2013), "Estimating or
      Propagating Gradients Through Stochastic Neurons".
    """
    check_number("power", power, low=0.0, high=MAX_POWER, low_open=True)
    check_number("iterations", iterations, low=1, integer=True)
    check_choice("distance", distance, DISTANCES)
    straight_through = _check_straight_through(straight_through)
    probs = as_float(probs)
    target = as_float(target, probs.dtype)
    weights = power_sharpen(probs, power, iterations)
    if straight_through:
        # A row without mass stays zero (as without straight-through) rather
        # than becoming the one-hot of token 0.
        has_mass = tf.reduce_any(weights > 0, axis=-1, keepdims=True)
        weights = tf.where(has_mass, straight_through_one_hot(weights), weights)
    predicted = soft_embedding_lookup(weights, embedding)
    if None not in (target.shape.rank, predicted.shape.rank):
        if target.shape[-1] is not None and predicted.shape[-1] is not None:
            if target.shape[-1] != predicted.shape[-1]:
                raise ValueError(
                    f"`target` last axis ({target.shape[-1]}) must equal the "
                    f"embedding dimension ({predicted.shape[-1]})."
                )
    if distance == "cosine":
        return cosine_distance(target, predicted)
    return tf.reduce_mean(tf.square(target - predicted), axis=-1)


def straight_through_one_hot(probs):
    """One-hot of the argmax forward, identity gradient backward.

    ``y = onehot(argmax p) + (p - stop_gradient(p))``: the value is the exact
    one-hot (``p - p`` is exactly 0), and ``dy/dp = I`` (Bengio, Léonard &
    Courville 2013, "Estimating or Propagating Gradients Through Stochastic
    Neurons").

    Args:
      probs: ``[..., num_classes]`` (probabilities or logits).

    Returns:
      ``[..., num_classes]`` exact one-hot rows; ties go to the first maximum.
    """
    probs = as_float(probs)
    hard = tf.one_hot(
        tf.argmax(probs, axis=-1), depth=tf.shape(probs)[-1], dtype=probs.dtype
    )
    return tf.stop_gradient(hard) + (probs - tf.stop_gradient(probs))


def gumbel_noise(shape, dtype=tf.float32, seed=None):
    """Standard Gumbel noise ``-log(-log u)``, ``u ~ U(tiny, 1)``, finite.

    A fixed integer ``seed`` uses stateless ops with seed ``(seed, 0)``, so the
    same shape and seed give the same noise on every call.
    """
    dtype = tf.as_dtype(dtype)
    tiny = _tiny(dtype)
    if seed is None:
        u = tf.random.uniform(shape, minval=tiny, maxval=1.0, dtype=dtype)
    else:
        seed = tf.cast(tf.stack([seed, 0]), tf.int64)
        u = tf.random.stateless_uniform(
            shape, seed=seed, minval=tiny, maxval=1.0, dtype=dtype
        )
    return -tf.math.log(-tf.math.log(u))


def gumbel_softmax(logits, temperature, hard=False, seed=None):
    """A relaxed one-hot sample: ``softmax((logits + g) / temperature)``.

    ``g_i = -log(-log u_i)`` is Gumbel noise, so ``argmax(logits + g)`` is a
    sample from ``softmax(logits)`` and the softmax at temperature ``T``
    relaxes it (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017).

    Args:
      logits: ``[..., num_classes]`` unnormalised log-probabilities.
      temperature: ``T > 0``; small ``T`` is nearly one-hot with a vanishing
        gradient, large ``T`` nearly uniform.
      hard: if True the value is the one-hot of the sample's argmax, and the
        gradient is that of the soft sample (straight-through).
      seed: an integer for a reproducible sample (stateless random ops with
        seed ``(seed, 0)``: the same sample on every call), or None.

    Returns:
      ``[..., num_classes]`` rows summing to 1 (exact one-hot when ``hard``).

    Raises:
      ValueError: ``temperature <= 0`` or a non-integer ``seed``.
    """
    check_number("temperature", temperature, low=0.0, low_open=True)
    if seed is not None:
        check_number("seed", seed, integer=True)
    logits = as_float(logits)
    noise = gumbel_noise(tf.shape(logits), logits.dtype, seed)
    soft = temperature_softmax(logits + noise, temperature)
    return straight_through_one_hot(soft) if hard else soft


@keras.saving.register_keras_serializable(package="lossviz")
class EmbeddingTargetLoss(keras.losses.Loss):
    """Keras loss: ``embedding_target_loss(y_true, y_pred, embedding, ...)``.

    ``y_true`` are target embeddings ``[batch, embedding_dim]``, ``y_pred`` the
    model's probabilities ``[batch, vocab_size]``. The embedding is kept in the
    config as a nested list, so a compiled model saves and loads without
    ``custom_objects``.

    Args:
      embedding: ``[vocab_size, embedding_dim]`` array.
      power: sharpening power in ``(0, 1e4]``.
      iterations: sharpening iterations, an integer >= 1.
      distance: ``"cosine"`` or ``"mse"``.
      reduction, name, dtype: as for ``keras.losses.Loss``.
      straight_through: if True, the loss sees the embedding of the argmax
        token and passes the soft gradient (see ``embedding_target_loss``).
    """

    def __init__(
        self,
        embedding,
        power=1.0,
        iterations=1,
        distance="cosine",
        reduction="sum_over_batch_size",
        name="embedding_target_loss",
        dtype=None,
        straight_through=False,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        check_number("power", power, low=0.0, high=MAX_POWER, low_open=True)
        check_number("iterations", iterations, low=1, integer=True)
        check_choice("distance", distance, DISTANCES)
        straight_through = _check_straight_through(straight_through)
        embedding = np.asarray(embedding, dtype=np.float64)
        if embedding.ndim != 2:
            raise ValueError(
                f"`embedding` must be 2-D [vocab_size, embedding_dim], got shape "
                f"{embedding.shape}."
            )
        self.embedding = embedding
        self.power = float(power)
        self.iterations = int(iterations)
        self.distance = distance
        self.straight_through = straight_through

    def call(self, y_true, y_pred):
        return embedding_target_loss(
            y_true,
            y_pred,
            tf.constant(self.embedding, dtype=y_pred.dtype),
            power=self.power,
            iterations=self.iterations,
            distance=self.distance,
            straight_through=self.straight_through,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            embedding=self.embedding.tolist(),
            power=self.power,
            iterations=self.iterations,
            distance=self.distance,
            straight_through=self.straight_through,
        )
        return config
