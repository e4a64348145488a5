"""Tests for lossviz.sharpen against numpy references written here."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossviz import sharpen
from lossviz._tf import tf
from lossviz.sharpen import (
    EmbeddingTargetLoss,
    embedding_target_loss,
    gumbel_softmax,
    naive_power_sharpen,
    power_sharpen,
    soft_embedding_lookup,
    straight_through_one_hot,
    temperature_softmax,
)

DTYPES = [np.float32, np.float64]


# --- numpy references (float64, plain loops / log space) --------------------


def np_power_sharpen(p, power, iterations=1):
    """softmax(power * log p) row by row in float64; p <= 0 stays 0."""
    p = np.asarray(p, dtype=np.float64)
    flat = p.reshape(-1, p.shape[-1])
    out = np.zeros_like(flat)
    for r, row in enumerate(flat):
        cur = row.copy()
        for _ in range(iterations):
            mask = cur > 0
            if not mask.any():
                cur = np.zeros_like(cur)
                break
            logits = np.full_like(cur, -np.inf)
            logits[mask] = power * np.log(cur[mask])
            e = np.exp(logits - logits[mask].max())
            cur = e / e.sum()
        out[r] = cur
    return out.reshape(p.shape)


def np_softmax(z, axis=-1):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_cosine_distance(a, b):
    a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])
    b = np.asarray(b, np.float64).reshape(-1, np.shape(b)[-1])
    out = []
    for x, y in zip(a, b, strict=True):
        nx, ny = np.sqrt(sum(v * v for v in x)), np.sqrt(sum(v * v for v in y))
        cos = 0.0 if nx == 0 or ny == 0 else sum(x * y) / (nx * ny)
        out.append(1.0 - cos)
    return np.array(out)


def random_probs(rng, shape, zeros=0):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    if zeros:
        p[..., :zeros] = 0.0
        p /= p.sum(-1, keepdims=True)
    return p


def jacobians(fn, *args):
    # compute_gradient's default step is 1/1024 whatever the dtype: too coarse
    # for p**0.3 near small p (relative error ~1e-3); float64 affords 1e-6.
    theoretical, numerical = tf.test.compute_gradient(fn, list(args), delta=1e-6)
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6)


def gradient(fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x).numpy()


# --- power_sharpen / naive_power_sharpen ------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6,), (3, 6), (2, 3, 5)])
@pytest.mark.parametrize("power", [0.1, 1.0, 3.0, 200.0, 1e4])
def test_power_sharpen_matches_log_space_reference(dtype, shape, power):
    rng = np.random.default_rng(1)
    p = random_probs(rng, shape).astype(dtype)
    out = power_sharpen(p, power)
    assert out.dtype == tf.as_dtype(dtype)
    assert out.shape == shape
    expected = np_power_sharpen(p, power)
    # float32 rounding of log p is amplified by the power.
    rtol = 1e-12 if dtype == np.float64 else 5e-6 * max(power, 1.0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=min(rtol, 0.05), atol=1e-6)
    np.testing.assert_allclose(out.numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_sharpen_equals_plain_power_where_naive_is_fine(dtype):
    rng = np.random.default_rng(2)
    p = random_probs(rng, (4, 7)).astype(dtype)
    plain = p.astype(np.float64) ** 2.5
    plain /= plain.sum(-1, keepdims=True)
    np.testing.assert_allclose(power_sharpen(p, 2.5).numpy(), plain, rtol=1e-5)
    np.testing.assert_allclose(naive_power_sharpen(p, 2.5).numpy(), plain, rtol=1e-5)


def test_naive_gives_nan_at_power_200_float32_but_power_sharpen_is_finite():
    p = np.array([[0.3, 0.25, 0.2, 0.15, 0.1]], np.float32)
    naive = naive_power_sharpen(p, 200.0).numpy()
    assert np.isnan(naive).all()  # 0.3**200 underflows: 0 / 0
    ours = power_sharpen(p, 200.0).numpy()
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, np_power_sharpen(p, 200.0), rtol=1e-4, atol=1e-37)
    # Its gradient is finite too, where the naive one is not.
    grad = gradient(lambda x: power_sharpen(x, 200.0)[:, 1], p)
    assert np.isfinite(grad).all()
    naive_grad = gradient(lambda x: naive_power_sharpen(x, 200.0)[:, 1], p)
    assert not np.isfinite(naive_grad).all()


def test_naive_breaks_at_zero_for_power_below_one():
    p = np.array([[0.0, 0.4, 0.6]], np.float32)
    naive_grad = gradient(lambda x: naive_power_sharpen(x, 0.5)[:, 1], p)
    assert not np.isfinite(naive_grad).all()
    grad = gradient(lambda x: power_sharpen(x, 0.5)[:, 1], p)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("power", [1e-3, 0.5, 3.0, 1e4])
def test_zero_probabilities_stay_zero_with_finite_gradients(dtype, power):
    p = tf.constant([[0.0, 0.2, 0.0, 0.8], [0.5, 0.0, 0.5, 0.0]], dtype)
    k = tf.constant(power, dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([p, k])
        out = power_sharpen(p, k)
        loss = tf.reduce_sum(out * tf.range(4, dtype=dtype))
    assert (out.numpy()[p.numpy() == 0] == 0).all()
    np.testing.assert_allclose(out.numpy(), np_power_sharpen(p, power), atol=1e-6)
    for g in tape.gradient(loss, [p, k]):
        assert np.isfinite(g.numpy()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_zero_row_gives_zeros_and_zero_gradient(dtype):
    p = np.array([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dtype)
    out = power_sharpen(p, 3.0).numpy()
    np.testing.assert_array_equal(out[0], 0.0)
    assert np.isnan(naive_power_sharpen(p, 3.0).numpy()[0]).all()
    grad = gradient(lambda x: power_sharpen(x, 3.0) * [[1.0, 2.0, 3.0]], p)
    np.testing.assert_array_equal(grad[0], 0.0)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype,tiny", [(np.float32, 1e-40), (np.float64, 1e-310)])
def test_subnormal_probabilities_count_as_zero(dtype, tiny):
    p = np.array([[tiny, 0.5, 0.5], [tiny, 0.0, 0.0]], dtype)
    out = power_sharpen(p, 3.0).numpy()
    np.testing.assert_allclose(out, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    k = tf.constant(3.0, dtype)
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch([x, k])
        loss = tf.reduce_sum(power_sharpen(x, k) * tf.constant([1.0, 2.0, 3.0], dtype))
    for g in tape.gradient(loss, [x, k]):
        assert np.isfinite(g.numpy()).all()
    emb = np.array([[tiny, tiny], [1.0, 0.0], [0.0, 1.0]], dtype)
    t = tf.constant(np.array([[tiny, 0.0], [1.0, 1.0]], dtype))
    with tf.GradientTape() as tape:
        tape.watch(t)
        loss = embedding_target_loss(t, np.eye(3, dtype=dtype)[[1, 0]], emb)
    np.testing.assert_allclose(loss.numpy(), [1.0, 1.0])
    assert np.isfinite(tape.gradient(loss, t).numpy()).all()


def test_power_one_renormalises_and_iterations_compose():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 2.0, size=(3, 5))
    np.testing.assert_allclose(
        power_sharpen(p, 1.0).numpy(), p / p.sum(-1, keepdims=True), rtol=1e-6
    )
    q = random_probs(rng, (3, 5))
    np.testing.assert_allclose(
        power_sharpen(q, 1.7, iterations=3).numpy(),
        np_power_sharpen(q, 1.7**3),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        naive_power_sharpen(q, 1.7, iterations=3).numpy(),
        np_power_sharpen(q, 1.7, iterations=3),
        rtol=1e-5,
    )


def test_large_power_tends_to_one_hot_and_small_power_to_uniform():
    p = np.array([[0.1, 0.5, 0.15, 0.25]])
    np.testing.assert_allclose(power_sharpen(p, 1e4).numpy(), [[0, 1, 0, 0]])
    np.testing.assert_allclose(power_sharpen(p, 1e-6).numpy(), 0.25, rtol=1e-5)
    ties = power_sharpen(np.array([[0.4, 0.4, 0.2]]), 1e4).numpy()
    np.testing.assert_allclose(ties, [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("power", [0.3, 2.5, 40.0])
def test_power_sharpen_gradient_float64(power):
    rng = np.random.default_rng(4)
    p = tf.constant(random_probs(rng, (2, 4)))
    weights = tf.constant(rng.normal(size=(2, 4)))
    jacobians(lambda x: power_sharpen(x, power, iterations=2) * weights, p)
    # and with respect to the power itself
    jacobians(lambda k: power_sharpen(p, k), tf.constant(power, tf.float64))


def test_gradient_vanishes_as_power_grows():
    rng = np.random.default_rng(5)
    p = random_probs(rng, (4, 8))
    weights = rng.normal(size=(4, 8))

    def grad_norm(power):
        g = gradient(lambda x: power_sharpen(x, power) * weights, p)
        return np.linalg.norm(g)

    norms = [grad_norm(k) for k in (1.0, 10.0, 100.0, 1000.0)]
    assert norms[0] > 0.1
    assert norms[-1] < 1e-6 * norms[0]
    assert norms[2] < norms[0]


# --- temperature_softmax ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("power", [0.25, 1.0, 4.0, 30.0])
def test_power_sharpen_of_softmax_equals_temperature_softmax(dtype, power):
    rng = np.random.default_rng(6)
    z = rng.normal(scale=2.0, size=(3, 6)).astype(dtype)
    lhs = power_sharpen(tf.nn.softmax(z), power).numpy()
    rhs = temperature_softmax(z, 1.0 / power).numpy()
    tol = 1e-12 if dtype == np.float64 else 1e-5 * power
    np.testing.assert_allclose(lhs, rhs, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1e-3, 0.5, 1.0, 7.0, 1e4])
def test_temperature_softmax_matches_keras_softmax(dtype, temperature):
    rng = np.random.default_rng(7)
    z = rng.normal(size=(2, 3, 5)).astype(dtype)
    out = temperature_softmax(z, temperature)
    assert out.dtype == tf.as_dtype(dtype)
    expected = keras.activations.softmax(
        tf.constant(np.asarray(z, np.float64) / temperature)
    ).numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("temperature", [1e-30, 1e-38, 1e-45])
def test_temperature_softmax_tiny_temperature_is_finite_one_hot(temperature):
    # 1e-38 and 1e-45 are subnormal in float32; 5e9 / 1e-30 overflows.
    z = np.array([[1.0, 3.0, -2.0], [5.0, 5.0, 0.0]], np.float32) * 1e9
    naive = tf.nn.softmax(tf.constant(z) / temperature).numpy()
    assert not np.isfinite(naive).all()
    out = temperature_softmax(z, temperature).numpy()
    np.testing.assert_allclose(out, [[0, 1, 0], [0.5, 0.5, 0]])
    grad = gradient(lambda x: temperature_softmax(x, temperature) * [1.0, 2.0, 3.0], z)
    assert np.isfinite(grad).all()


def test_temperature_softmax_gradient_float64():
    rng = np.random.default_rng(8)
    z = tf.constant(rng.normal(size=(2, 5)))
    jacobians(lambda x: temperature_softmax(x, 0.7), z)
    jacobians(lambda t: temperature_softmax(z, t), tf.constant(0.7, tf.float64))


# --- soft_embedding_lookup / embedding_target_loss ----------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8,), (4, 8), (2, 3, 8), (2, 1, 3, 8)])
def test_soft_embedding_lookup_matches_einsum(dtype, shape):
    rng = np.random.default_rng(9)
    w = rng.normal(size=shape).astype(dtype)
    emb = rng.normal(size=(8, 5))
    out = soft_embedding_lookup(w, emb)
    assert out.dtype == tf.as_dtype(dtype)
    assert out.shape == shape[:-1] + (5,)
    np.testing.assert_allclose(
        out.numpy(), np.einsum("...v,vd->...d", w.astype(np.float64), emb), rtol=1e-5
    )


def test_soft_embedding_lookup_one_hot_picks_rows():
    emb = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(
        soft_embedding_lookup(np.eye(4)[[2, 0]], emb).numpy(), emb[[2, 0]]
    )


def test_soft_embedding_lookup_shape_mismatch_raises():
    with pytest.raises(ValueError, match="embedding"):
        soft_embedding_lookup(np.ones((2, 5)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="embedding"):
        soft_embedding_lookup(np.ones((2, 4)), np.ones(4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["cosine", "mse"])
@pytest.mark.parametrize("power,iterations", [(1.0, 1), (3.0, 2), (500.0, 1)])
def test_embedding_target_loss_matches_reference(dtype, distance, power, iterations):
    rng = np.random.default_rng(10)
    probs = random_probs(rng, (2, 3, 8)).astype(dtype)
    emb = rng.normal(size=(8, 5))
    target = rng.normal(size=(2, 3, 5))
    out = embedding_target_loss(target, probs, emb, power, iterations, distance)
    assert out.dtype == tf.as_dtype(dtype)
    assert out.shape == (2, 3)
    predicted = np_power_sharpen(probs, power, iterations) @ emb
    if distance == "cosine":
        expected = np_cosine_distance(target, predicted).reshape(2, 3)
        # a trusted library for the same quantity (Keras returns -cos)
        keras_neg_cos = keras.losses.cosine_similarity(target, predicted).numpy()
        np.testing.assert_allclose(expected, 1.0 + keras_neg_cos, rtol=1e-9)
    else:
        expected = keras.losses.mean_squared_error(target, predicted).numpy()
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=rtol)


def test_cosine_distance_range_and_extremes():
    e = np.array([[1.0, 2.0], [-1.0, -2.0], [2.0, -1.0]])
    t = np.array([1.0, 2.0])
    out = embedding_target_loss(np.tile(t, (3, 1)), np.eye(3), e, power=1.0).numpy()
    np.testing.assert_allclose(out, [0.0, 2.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_vectors_have_cosine_zero_with_finite_gradients(dtype):
    emb = tf.constant([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]], dtype)
    probs = tf.constant([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype)
    target = tf.constant([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], dtype)
    with tf.GradientTape() as tape:
        tape.watch([emb, probs, target])
        loss = embedding_target_loss(target, probs, emb, power=2.0)
    np.testing.assert_allclose(loss.numpy(), [1.0, 1.0, 1.0])
    for g in tape.gradient(loss, [emb, probs, target]):
        assert np.isfinite(g.numpy()).all()


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_cosine_survives_tiny_and_huge_vectors_float32(scale):
    emb = np.array([[1.0, 2.0, 2.0], [0.0, 1.0, 0.0]], np.float32) * np.float32(scale)
    target = np.array([[2.0, 1.0, 2.0]], np.float32) * np.float32(scale)
    out = embedding_target_loss(target, np.array([[1.0, 0.0]], np.float32), emb)
    np.testing.assert_allclose(out.numpy(), [1.0 - 8.0 / 9.0], rtol=1e-5)
    grad = gradient(
        lambda t: embedding_target_loss(t, np.array([[1.0, 0.0]], np.float32), emb),
        target,
    )
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("distance", ["cosine", "mse"])
def test_embedding_target_loss_gradient_float64(distance):
    rng = np.random.default_rng(11)
    probs = tf.constant(random_probs(rng, (3, 6)))
    emb = tf.constant(rng.normal(size=(6, 4)))
    target = tf.constant(rng.normal(size=(3, 4)))

    def loss(t, p, e):
        return embedding_target_loss(t, p, e, 2.0, 2, distance)

    jacobians(loss, target, probs, emb)


# --- embedding_target_loss(straight_through=True) ---------------------------------


def np_straight_through_grad(target, probs, emb, distance, step=1e-6):
    """d loss / d probs of the straight-through loss at power 1, in numpy.

    The loss sees e = E[argmax p]; its gradient with respect to the one-hot
    weights w is E @ grad_e d(t, e) (central differences here), and the
    renormalisation p / sum(p) at sum(p) = 1 maps it to g_w - (p . g_w).
    """

    def d(t, e):
        if distance == "cosine":
            return np_cosine_distance(t[None], e[None])[0]
        return np.mean((t - e) ** 2)

    out = np.zeros_like(probs, dtype=np.float64)
    for i, (t, p) in enumerate(zip(target, probs, strict=True)):
        e = emb[np.argmax(p)].astype(np.float64)
        grad_e = np.zeros_like(e)
        for k in range(len(e)):
            up, down = e.copy(), e.copy()
            up[k] += step
            down[k] -= step
            grad_e[k] = (d(t, up) - d(t, down)) / (2 * step)
        grad_w = emb @ grad_e
        out[i] = grad_w - np.dot(p, grad_w)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["cosine", "mse"])
@pytest.mark.parametrize("power", [1.0, 3.0, 500.0])
def test_straight_through_loss_is_the_distance_to_the_argmax_row(
    dtype, distance, power
):
    rng = np.random.default_rng(30)
    probs = random_probs(rng, (2, 3, 8)).astype(dtype)
    emb = rng.normal(size=(8, 5))
    target = rng.normal(size=(2, 3, 5))
    out = embedding_target_loss(
        target, probs, emb, power, 1, distance, straight_through=True
    )
    assert out.dtype == tf.as_dtype(dtype)
    assert out.shape == (2, 3)
    hard = emb[np.argmax(probs, axis=-1)]
    if distance == "cosine":
        expected = np_cosine_distance(target, hard).reshape(2, 3)
    else:
        expected = keras.losses.mean_squared_error(target, hard).numpy()
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("distance", ["cosine", "mse"])
def test_straight_through_gradient_float64(distance):
    rng = np.random.default_rng(31)
    probs = random_probs(rng, (4, 6))
    emb = rng.normal(size=(6, 3))
    target = rng.normal(size=(4, 3))
    grad = gradient(
        lambda p: embedding_target_loss(
            target, p, emb, 1.0, 1, distance, straight_through=True
        ),
        probs,
    )
    expected = np_straight_through_grad(target, probs, emb, distance)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 1e-3, "the gradient does not vanish at power 1"

    # Target and embedding enter smoothly: numerical Jacobians apply.
    def loss(t, e):
        return embedding_target_loss(
            t, tf.constant(probs), e, 1.0, 1, distance, straight_through=True
        )

    jacobians(loss, tf.constant(target), tf.constant(emb))


def test_straight_through_gradient_still_vanishes_at_a_large_power():
    rng = np.random.default_rng(32)
    probs = random_probs(rng, (4, 6)).astype(np.float32)
    emb = rng.normal(size=(6, 3)).astype(np.float32)
    target = rng.normal(size=(4, 3)).astype(np.float32)

    def grad_norm(power):
        return np.linalg.norm(
            gradient(
                lambda p: embedding_target_loss(
                    target, p, emb, power, straight_through=True
                ),
                probs,
            )
        )

    assert grad_norm(1.0) > 1e-2
    assert grad_norm(1e4) < 1e-6 * grad_norm(1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_straight_through_row_without_mass_gives_zero_vector(dtype):
    emb = tf.constant([[1.0, 2.0], [3.0, -1.0]], dtype)
    probs = tf.constant([[0.0, 0.0], [0.4, 0.6]], dtype)
    target = tf.constant([[1.0, 2.0], [1.0, 2.0]], dtype)
    with tf.GradientTape() as tape:
        tape.watch(probs)
        loss = embedding_target_loss(target, probs, emb, straight_through=True)
    # the zero vector has cosine 0 with anything: distance 1, as without it
    expected = [1.0, np_cosine_distance([[1.0, 2.0]], [[3.0, -1.0]])[0]]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)
    grad = tape.gradient(loss, probs).numpy()
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[0], [0.0, 0.0])


def test_straight_through_inside_tf_function_and_checked():
    rng = np.random.default_rng(33)
    p = tf.constant(random_probs(rng, (4, 8)), tf.float32)
    emb = tf.constant(rng.normal(size=(8, 5)), tf.float32)
    t = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    fn = tf.function(
        lambda k: embedding_target_loss(t, p, emb, k, straight_through=True)
    )
    eager = embedding_target_loss(t, p, emb, 2.0, straight_through=True)
    np.testing.assert_allclose(fn(tf.constant(2.0)).numpy(), eager.numpy(), 1e-6)
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="`straight_through`"):
            embedding_target_loss(t, p, emb, straight_through=bad)
        with pytest.raises(ValueError, match="`straight_through`"):
            EmbeddingTargetLoss(emb.numpy(), straight_through=bad)


def test_straight_through_class_config_and_saved_model(tmp_path):
    rng = np.random.default_rng(34)
    emb = rng.normal(size=(8, 5)).astype(np.float32)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = rng.normal(size=(16, 5)).astype(np.float32)
    loss = EmbeddingTargetLoss(emb, power=2.0, straight_through=True)
    config = loss.get_config()
    assert config["straight_through"] is True
    assert EmbeddingTargetLoss.from_config(config).get_config() == config
    assert EmbeddingTargetLoss(emb).get_config()["straight_through"] is False
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss=loss)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    probs = model.predict(x, verbose=0)
    expected = np.mean(np_cosine_distance(y, emb[np.argmax(probs, -1)]))
    before = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(before, expected, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss.straight_through is True
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), before, rtol=1e-6)


# --- straight-through and Gumbel-softmax --------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_straight_through_is_exact_one_hot_with_identity_gradient(dtype):
    rng = np.random.default_rng(12)
    p = random_probs(rng, (5, 7)).astype(dtype)
    p[0] = [0.1, 0.3, 0.3, 0.1, 0.1, 0.05, 0.05]  # tie: first maximum wins
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = straight_through_one_hot(x)
    np.testing.assert_array_equal(y.numpy(), np.eye(7)[np.argmax(p, -1)])
    assert y.numpy()[0, 1] == 1.0
    jac = tape.jacobian(y, x).numpy().reshape(35, 35)
    np.testing.assert_array_equal(jac, np.eye(35))


def test_gumbel_fixed_seed_gives_same_sample_and_seed_matters():
    z = np.random.default_rng(13).normal(size=(4, 8)).astype(np.float32)
    a = gumbel_softmax(z, 0.5, seed=7).numpy()
    b = gumbel_softmax(z, 0.5, seed=7).numpy()
    np.testing.assert_array_equal(a, b)
    c = gumbel_softmax(z, 0.5, seed=8).numpy()
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-6)
    fn = tf.function(lambda x: gumbel_softmax(x, 0.5, seed=7))
    np.testing.assert_allclose(fn(tf.constant(z)).numpy(), a, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gumbel_softmax_formula_with_reference_noise(dtype):
    z = np.random.default_rng(14).normal(size=(3, 5)).astype(dtype)
    u = tf.random.stateless_uniform(
        z.shape,
        seed=[21, 0],
        minval=float(np.finfo(dtype).tiny),
        maxval=1.0,
        dtype=dtype,
    ).numpy().astype(np.float64)
    g = -np.log(-np.log(u))
    expected = np_softmax((z + g) / 0.3)
    out = gumbel_softmax(z, 0.3, seed=21)
    assert out.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_gumbel_argmax_samples_follow_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    samples = gumbel_softmax(np.tile(logits, (20000, 1)), 1.0, hard=True, seed=3)
    freq = samples.numpy().mean(0)
    # 4 standard errors of a proportion with n = 20000
    np.testing.assert_allclose(freq, np.exp(logits), atol=4 * np.sqrt(0.25 / 20000))


def test_gumbel_hard_is_one_hot_with_the_soft_gradient():
    z = tf.constant(np.random.default_rng(15).normal(size=(3, 6)))
    weights = tf.constant(np.random.default_rng(16).normal(size=(3, 6)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        soft = gumbel_softmax(z, 0.8, seed=5)
        hard = gumbel_softmax(z, 0.8, hard=True, seed=5)
        ls, lh = tf.reduce_sum(soft * weights), tf.reduce_sum(hard * weights)
    np.testing.assert_array_equal(hard.numpy(), np.eye(6)[np.argmax(soft, -1)])
    np.testing.assert_allclose(
        tape.gradient(lh, z).numpy(), tape.gradient(ls, z).numpy(), rtol=1e-12
    )


def test_gumbel_softmax_gradient_float64():
    z = tf.constant(np.random.default_rng(17).normal(size=(2, 5)))
    jacobians(lambda x: gumbel_softmax(x, 0.9, seed=2), z)


def test_gumbel_without_seed_runs_and_varies():
    z = np.zeros((2, 50), np.float32)
    a, b = gumbel_softmax(z, 1.0).numpy(), gumbel_softmax(z, 1.0).numpy()
    assert np.isfinite(a).all() and not np.allclose(a, b)


# --- parameters -------------------------------------------------------------------


@pytest.mark.parametrize("fn", [power_sharpen, naive_power_sharpen])
@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"power": 0.0}, "power"),
        ({"power": -1.0}, "power"),
        ({"power": 1e4 + 1}, "power"),
        ({"power": float("nan")}, "power"),
        ({"power": 2.0, "iterations": 0}, "iterations"),
        ({"power": 2.0, "iterations": 1.5}, "iterations"),
    ],
)
def test_power_parameters_checked(fn, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        fn(np.ones((1, 3)) / 3, **kwargs)


def test_other_parameters_checked():
    p, emb, t = np.ones((1, 3)) / 3, np.eye(3), np.ones((1, 3))
    for bad in (0.0, -2.0):
        with pytest.raises(ValueError, match="`temperature`"):
            temperature_softmax(p, bad)
        with pytest.raises(ValueError, match="`temperature`"):
            gumbel_softmax(p, bad)
    with pytest.raises(ValueError, match="`seed`"):
        gumbel_softmax(p, 1.0, seed=1.5)
    with pytest.raises(ValueError, match="`distance`"):
        embedding_target_loss(t, p, emb, distance="l1")
    with pytest.raises(ValueError, match="`power`"):
        embedding_target_loss(t, p, emb, power=0.0)
    with pytest.raises(ValueError, match="`iterations`"):
        embedding_target_loss(t, p, emb, iterations=0)
    with pytest.raises(ValueError, match="`target`"):
        embedding_target_loss(np.ones((1, 4)), p, emb)
    with pytest.raises(ValueError, match="`power`"):
        EmbeddingTargetLoss(emb, power=2e4)
    with pytest.raises(ValueError, match="`distance`"):
        EmbeddingTargetLoss(emb, distance="cos")
    with pytest.raises(ValueError, match="`embedding`"):
        EmbeddingTargetLoss(np.ones(3))


# --- tf.function ---------------------------------------------------------------


def test_tensor_power_inside_tf_function_does_not_retrace():
    rng = np.random.default_rng(18)
    p = tf.constant(random_probs(rng, (4, 8)), tf.float32)
    emb = tf.constant(rng.normal(size=(8, 5)), tf.float32)
    t = tf.constant(rng.normal(size=(4, 5)), tf.float32)

    @tf.function
    def loss(power):
        return embedding_target_loss(t, p, emb, power, 2, "cosine")

    for k in (0.5, 3.0, 900.0):
        eager = embedding_target_loss(t, p, emb, k, 2, "cosine")
        np.testing.assert_allclose(loss(tf.constant(k)).numpy(), eager.numpy(), 1e-6)
    assert loss.experimental_get_tracing_count() == 1
    sharpen_fn = tf.function(lambda x, k: power_sharpen(x, k))
    np.testing.assert_allclose(
        sharpen_fn(p, tf.constant(200.0)).numpy(),
        np_power_sharpen(p, 200.0),
        rtol=2e-3,
        atol=1e-6,
    )


# --- Keras loss class --------------------------------------------------------------


def test_embedding_target_loss_class_matches_function_and_config_round_trips():
    rng = np.random.default_rng(19)
    emb = rng.normal(size=(6, 4))
    probs = random_probs(rng, (5, 6)).astype(np.float32)
    target = rng.normal(size=(5, 4)).astype(np.float32)
    loss = EmbeddingTargetLoss(emb, power=3.0, iterations=2, distance="mse")
    config = loss.get_config()
    assert config["embedding"] == emb.tolist()
    assert (config["power"], config["iterations"], config["distance"]) == (
        3.0,
        2,
        "mse",
    )
    again = EmbeddingTargetLoss.from_config(config)
    expected = np.mean(embedding_target_loss(target, probs, emb, 3.0, 2, "mse"))
    np.testing.assert_allclose(loss(target, probs).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(again(target, probs).numpy(), expected, rtol=1e-6)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, EmbeddingTargetLoss)
    assert restored.get_config() == config


def test_compiled_model_saves_and_loads(tmp_path):
    rng = np.random.default_rng(20)
    emb = rng.normal(size=(8, 5)).astype(np.float32)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = rng.normal(size=(16, 5)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="softmax")]
    )
    model.compile(
        optimizer="sgd", loss=EmbeddingTargetLoss(emb, power=2.0, distance="cosine")
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    before = model.evaluate(x, y, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, EmbeddingTargetLoss)
    np.testing.assert_allclose(loaded.loss.embedding, emb, rtol=1e-7)
    assert loaded.loss.power == 2.0
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), before, rtol=1e-6)


def test_module_formulas_present():
    assert sharpen.FORMULA
    for key in ("power_sharpen", "temperature_softmax", "cosine", "mse"):
        assert sharpen.FORMULAS[key]


# --- properties --------------------------------------------------------------------

probs_strategy = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.integers(2, 8)),
    elements=st.floats(0.0, 1.0, width=32),
)


@settings(max_examples=30, deadline=None)
@given(
    p=probs_strategy,
    log_power=st.floats(-6.0, 4.0),
    iterations=st.integers(1, 3),
)
def test_property_power_sharpen_value_and_gradient_finite(p, log_power, iterations):
    power = 10.0**log_power
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = power_sharpen(x, power, iterations)
        loss = tf.reduce_sum(out * tf.range(p.shape[-1], dtype=tf.float32))
    assert np.isfinite(out.numpy()).all()
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()
    sums = out.numpy().sum(-1)
    # Subnormal entries count as 0 (documented): a row of only subnormals has
    # no mass and gives zeros.
    has_mass = (p >= np.finfo(np.float32).tiny).any(-1)
    np.testing.assert_allclose(sums[has_mass], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(sums[~has_mass], 0.0)


@settings(max_examples=30, deadline=None)
@given(
    p=probs_strategy,
    log_power=st.floats(-6.0, 4.0),
    distance=st.sampled_from(["cosine", "mse"]),
    seed=st.integers(0, 2**16),
)
def test_property_embedding_target_loss_finite(p, log_power, distance, seed):
    rng = np.random.default_rng(seed)
    emb = tf.constant(rng.normal(size=(p.shape[-1], 3)), tf.float32)
    target = tf.constant(rng.normal(size=(p.shape[0], 3)) * (seed % 2), tf.float32)
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch([x, emb, target])
        loss = embedding_target_loss(target, x, emb, 10.0**log_power, 1, distance)
    assert np.isfinite(loss.numpy()).all()
    if distance == "cosine":
        assert ((loss.numpy() >= 0) & (loss.numpy() <= 2)).all()
    for g in tape.gradient(loss, [x, emb, target]):
        assert np.isfinite(g.numpy()).all()


@settings(max_examples=30, deadline=None)
@given(
    z=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(2, 8)),
        elements=st.floats(-50.0, 50.0, width=32),
    ),
    log_temperature=st.floats(-4.0, 4.0),
    hard=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_softmax_family_finite(z, log_temperature, hard, seed):
    temperature = 10.0**log_temperature
    x = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        soft = temperature_softmax(x, temperature)
        sample = gumbel_softmax(x, temperature, hard=hard, seed=seed)
        losses = [tf.reduce_sum(v * tf.range(z.shape[-1], dtype=tf.float32))
                  for v in (soft, sample)]
    for value, loss in zip((soft, sample), losses, strict=True):
        assert np.isfinite(value.numpy()).all()
        assert np.isfinite(tape.gradient(loss, x).numpy()).all()


@settings(max_examples=30, deadline=None)
@given(
    p=probs_strategy,
    log_power=st.floats(-6.0, 4.0),
    distance=st.sampled_from(["cosine", "mse"]),
    seed=st.integers(0, 2**16),
)
def test_property_straight_through_loss_finite(p, log_power, distance, seed):
    rng = np.random.default_rng(seed)
    emb = tf.constant(rng.normal(size=(p.shape[-1], 3)), tf.float32)
    target = tf.constant(rng.normal(size=(p.shape[0], 3)) * (seed % 2), tf.float32)
    x = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch([x, emb, target])
        loss = embedding_target_loss(
            target, x, emb, 10.0**log_power, 1, distance, straight_through=True
        )
    assert np.isfinite(loss.numpy()).all()
    for g in tape.gradient(loss, [x, emb, target]):
        assert np.isfinite(g.numpy()).all()


def test_power_sharpen_row_of_subnormals_has_no_mass():
    # Found by the property test above: 1e-45 is subnormal in float32.
    p = np.array([[1e-45, 1e-45], [1e-45, 0.5]], np.float32)
    out = power_sharpen(tf.constant(p), 1.0, 1).numpy()
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_allclose(out[1], [0.0, 1.0])
