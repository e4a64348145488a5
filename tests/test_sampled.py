"""Tests for lossviz.sampled: full and sampled softmax, the sampler, the layer."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossviz._tf import tf
from lossviz.sampled import (
    FORMULA,
    FORMULAS,
    SampledSoftmax,
    full_softmax_loss,
    log_uniform_candidate_sampler,
    log_uniform_probability,
    sampled_softmax_loss,
)

DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------
# Independent references, written with numpy loops.


def np_full_loss(weights, biases, labels, inputs):
    weights, biases = np.float64(weights), np.float64(biases)
    flat_x = np.reshape(inputs, (-1, weights.shape[1])).astype(np.float64)
    flat_y = np.reshape(labels, -1)
    out = []
    for x, y in zip(flat_x, flat_y, strict=True):
        logits = weights @ x + biases
        top = logits.max()
        out.append(top + np.log(np.sum(np.exp(logits - top))) - logits[y])
    return np.reshape(out, np.shape(inputs)[:-1])


def np_sampled_loss(weights, biases, labels, inputs, sampled_values, remove_hits):
    sampled, true_count, sampled_count = (np.asarray(v) for v in sampled_values)
    weights, biases = np.float64(weights), np.float64(biases)
    flat_x = np.reshape(inputs, (-1, weights.shape[1])).astype(np.float64)
    flat_y = np.reshape(labels, -1)
    true_count = np.reshape(true_count, -1).astype(np.float64)
    sampled_count = np.reshape(sampled_count, -1).astype(np.float64)
    out = []
    for i, (x, y) in enumerate(zip(flat_x, flat_y, strict=True)):
        true_logit = weights[y] @ x + biases[y] - np.log(true_count[i])
        terms = [true_logit]
        for s, q in zip(sampled, sampled_count, strict=True):
            if remove_hits and s == y:
                continue
            terms.append(weights[s] @ x + biases[s] - np.log(q))
        terms = np.array(terms)
        top = terms.max()
        out.append(top + np.log(np.sum(np.exp(terms - top))) - true_logit)
    return np.reshape(out, np.shape(inputs)[:-1])


def np_log_uniform(num_classes):
    c = np.arange(num_classes, dtype=np.float64)
    return (np.log(c + 2) - np.log(c + 1)) / np.log(num_classes + 1)


def problem(num_classes=30, dim=5, batch=6, time=None, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    lead = (batch,) if time is None else (batch, time)
    return (
        rng.normal(size=(num_classes, dim)).astype(dtype),
        rng.normal(size=num_classes).astype(dtype),
        rng.integers(0, num_classes, lead),
        rng.normal(size=lead + (dim,)).astype(dtype),
    )


def candidates_with_hits(labels, num_classes, num_sampled, seed=0):
    """A fixed candidate set that contains the first label, with counts."""
    rng = np.random.default_rng(seed)
    others = rng.permutation(np.setdiff1d(np.arange(num_classes), [labels.flat[0]]))
    sampled = np.concatenate([[labels.flat[0]], others[: num_sampled - 1]])
    counts = rng.uniform(0.05, 1.0, num_classes)
    return sampled.astype(np.int64), counts[np.ravel(labels)], counts[sampled]


# --------------------------------------------------------------------------
# Values against references.


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_loss_matches_numpy_and_keras(dtype):
    w, b, y, x = problem(dtype=dtype)
    loss = full_softmax_loss(w, b, y, x)
    assert loss.dtype == tf.as_dtype(dtype) and loss.shape == (6,)
    np.testing.assert_allclose(loss, np_full_loss(w, b, y, x), rtol=1e-5)
    keras_loss = keras.losses.sparse_categorical_crossentropy(
        y, x @ w.T + b, from_logits=True
    )
    np.testing.assert_allclose(loss, keras_loss, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("remove_hits", [True, False])
def test_sampled_loss_matches_numpy_loop(dtype, remove_hits):
    w, b, y, x = problem(dtype=dtype)
    values = candidates_with_hits(y, 30, 8)
    loss = sampled_softmax_loss(
        w, b, y, x, 8, sampled_values=values, remove_accidental_hits=remove_hits
    )
    assert loss.dtype == tf.as_dtype(dtype) and loss.shape == (6,)
    expected = np_sampled_loss(w, b, y, x, values, remove_hits)
    np.testing.assert_allclose(
        loss, expected, rtol=1e-5 if dtype == np.float32 else 1e-12
    )


@pytest.mark.parametrize("remove_hits", [True, False])
def test_sampled_loss_matches_tf_nn_with_same_candidates(remove_hits):
    w, b, y, x = problem(num_classes=200, batch=16)
    values = tf.random.log_uniform_candidate_sampler(
        tf.constant(y[:, None], tf.int64), 1, 40, True, 200, seed=3
    )
    reference = tf.nn.sampled_softmax_loss(
        w,
        b,
        y[:, None],
        x,
        40,
        200,
        sampled_values=values,
        remove_accidental_hits=remove_hits,
    )
    ours = sampled_softmax_loss(
        w, b, y, x, 40, sampled_values=values, remove_accidental_hits=remove_hits
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_candidates_make_sampled_equal_full(dtype):
    w, b, y, x = problem(dtype=dtype)
    values = tf.random.all_candidate_sampler(
        tf.constant(y[:, None], tf.int64), 1, 30, True
    )
    sampled = sampled_softmax_loss(w, b, y, x, 30, sampled_values=values)
    np.testing.assert_allclose(sampled, full_softmax_loss(w, b, y, x), rtol=1e-6)
    # Without removing hits the label is counted twice: log(Z + e^{z_y}) - z_y.
    twice = sampled_softmax_loss(
        w, b, y, x, 30, sampled_values=values, remove_accidental_hits=False
    )
    logits = x.astype(np.float64) @ w.T + b
    true = logits[np.arange(6), y]
    expected = np.log(np.exp(logits).sum(1) + np.exp(true)) - true
    np.testing.assert_allclose(twice, expected, rtol=1e-5)


def test_labels_as_column_and_3d_inputs_match_2d():
    w, b, y, x = problem(batch=3, time=4)
    flat_y, flat_x = y.reshape(-1), x.reshape(-1, 5)
    full3 = full_softmax_loss(w, b, y, x)
    assert full3.shape == (3, 4)
    np.testing.assert_allclose(full3, np_full_loss(w, b, y, x), rtol=1e-5)
    np.testing.assert_allclose(
        full_softmax_loss(w, b, flat_y[:, None], flat_x), np.ravel(full3), rtol=1e-6
    )
    sampled3 = sampled_softmax_loss(w, b, y, x, 7, seed=11)
    sampled2 = sampled_softmax_loss(w, b, flat_y[:, None], flat_x, 7, seed=11)
    assert sampled3.shape == (3, 4)
    np.testing.assert_allclose(np.ravel(sampled3), sampled2, rtol=1e-6)
    values = candidates_with_hits(y, 30, 7)
    np.testing.assert_allclose(
        sampled_softmax_loss(w, b, y, x, 7, sampled_values=values),
        np_sampled_loss(w, b, y, x, values, True),
        rtol=1e-5,
    )


def test_mixed_dtypes_follow_inputs():
    w, b, y, x = problem()
    loss = sampled_softmax_loss(w.astype(np.float64), b, y, x, 5, seed=0)
    assert loss.dtype == tf.float32
    loss = full_softmax_loss(w, b, y, x.astype(np.float64))
    assert loss.dtype == tf.float64


# --------------------------------------------------------------------------
# The sampler.


def test_log_uniform_probability_matches_formula():
    p = log_uniform_probability(tf.range(1000), 1000)
    np.testing.assert_allclose(p, np_log_uniform(1000), rtol=1e-12)
    np.testing.assert_allclose(np.sum(p), 1.0, rtol=1e-12)


def test_unique_sampler_counts_follow_tensorflow_formula():
    labels = np.array([[0], [3], [499]])
    sampled, true_count, sampled_count = log_uniform_candidate_sampler(
        labels, 40, 500, seed=4
    )
    sampled = sampled.numpy()
    assert len(set(sampled)) == 40 and sampled.min() >= 0 and sampled.max() < 500
    assert true_count.shape == (3, 1) and true_count.dtype == tf.float32
    p = np_log_uniform(500)
    # Every count is 1 - (1 - p)^tries for one shared integer number of tries.
    tries = np.log1p(-sampled_count.numpy().astype(np.float64)) / np.log1p(-p[sampled])
    assert tries.min() >= 40
    np.testing.assert_allclose(tries, np.round(tries[0]), rtol=1e-4)
    expected_true = -np.expm1(np.round(tries[0]) * np.log1p(-p[labels[:, 0]]))
    np.testing.assert_allclose(true_count[:, 0], expected_true, rtol=1e-4)


def test_sampler_without_replacement_count_is_p_times_s():
    sampled, true_count, sampled_count = log_uniform_candidate_sampler(
        [1, 2], 64, 100, seed=0, unique=False
    )
    p = np_log_uniform(100)
    np.testing.assert_allclose(sampled_count, 64 * p[sampled.numpy()], rtol=1e-6)
    np.testing.assert_allclose(true_count, 64 * p[[1, 2]], rtol=1e-6)


def test_sampler_frequencies_match_tensorflow_sampler():
    num_classes, num_sampled, draws = 40, 8, 160
    ours = np.zeros(num_classes)
    theirs = np.zeros(num_classes)
    true = tf.zeros([1, 1], tf.int64)
    for i in range(draws):
        ours[
            log_uniform_candidate_sampler(true, num_sampled, num_classes, seed=i)[0]
        ] += 1
        sample = tf.random.log_uniform_candidate_sampler(
            true, 1, num_sampled, True, num_classes
        )[0]
        theirs[sample.numpy()] += 1
    ours, theirs = ours / draws, theirs / draws
    # Two Monte Carlo estimates of each inclusion probability: 5 sigma apart at most.
    sigma = np.sqrt((ours * (1 - ours) + theirs * (1 - theirs)) / draws) + 1e-3
    assert np.all(np.abs(ours - theirs) < 5 * sigma)
    np.testing.assert_allclose(ours.sum(), num_sampled)


def test_all_classes_sampled_when_num_sampled_is_num_classes():
    sampled, _, sampled_count = log_uniform_candidate_sampler([0], 25, 25, seed=2)
    assert sorted(sampled.numpy()) == list(range(25))
    assert np.all(np.isfinite(sampled_count)) and np.all(sampled_count > 0.5)


# --------------------------------------------------------------------------
# Seeds, tf.function and XLA.


def test_fixed_seed_repeats_and_different_seeds_differ():
    w, b, y, x = problem(num_classes=500, batch=8)
    first = sampled_softmax_loss(w, b, y, x, 10, seed=7)
    np.testing.assert_array_equal(first, sampled_softmax_loss(w, b, y, x, 10, seed=7))
    assert not np.allclose(first, sampled_softmax_loss(w, b, y, x, 10, seed=8))
    assert not np.allclose(
        sampled_softmax_loss(w, b, y, x, 10), sampled_softmax_loss(w, b, y, x, 10)
    )
    pair = tf.constant([7, 0], tf.int64)
    np.testing.assert_array_equal(
        first, sampled_softmax_loss(w, b, y, x, 10, seed=pair)
    )


def test_inside_tf_function_same_as_eager():
    w, b, y, x = problem(num_classes=300, batch=8)

    @tf.function
    def losses(x):
        return (
            sampled_softmax_loss(w, b, y, x, 12, seed=5),
            sampled_softmax_loss(w, b, y, x, 12),
            full_softmax_loss(w, b, y, x),
        )

    seeded, unseeded, full = losses(tf.constant(x))
    eager = sampled_softmax_loss(w, b, y, x, 12, seed=5)
    np.testing.assert_allclose(seeded, eager, rtol=1e-6)
    np.testing.assert_allclose(full, full_softmax_loss(w, b, y, x), rtol=1e-6)
    assert np.all(np.isfinite(unseeded))
    assert not np.allclose(unseeded, losses(tf.constant(x))[1])


def test_runs_under_xla_with_the_same_candidates_as_eager():
    w, b, y, x = problem(num_classes=300, batch=8)

    @tf.function(jit_compile=True)
    def losses(x, seed):
        return (
            sampled_softmax_loss(w, b, y, x, 12, seed=seed),
            sampled_softmax_loss(w, b, y, x, 12),
        )

    seeded, unseeded = losses(tf.constant(x), tf.constant([5, 0], tf.int64))
    # Same candidates: only float rounding differs between XLA and TensorFlow.
    eager = sampled_softmax_loss(w, b, y, x, 12, seed=5)
    np.testing.assert_allclose(seeded, eager, rtol=1e-5)
    assert np.all(np.isfinite(unseeded))
    again, unseeded_again = losses(tf.constant(x), tf.constant([6, 0], tf.int64))
    assert not np.allclose(seeded, again)
    assert not np.allclose(unseeded, unseeded_again)


# --------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("remove_hits", [True, False])
def test_sampled_gradients_match_numerical(remove_hits):
    w, b, y, x = problem(num_classes=8, dim=2, batch=3, dtype=np.float64)
    values = candidates_with_hits(y, 8, 5)

    def loss(w, b, x):
        return sampled_softmax_loss(
            w, b, y, x, 5, sampled_values=values, remove_accidental_hits=remove_hits
        )

    theoretical, numerical = tf.test.compute_gradient(loss, [w, b, x])
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6)


def test_full_gradients_match_numerical():
    w, b, y, x = problem(num_classes=7, dim=3, batch=2, time=2, dtype=np.float64)
    theoretical, numerical = tf.test.compute_gradient(
        lambda w, b, x: full_softmax_loss(w, b, y, x), [w, b, x]
    )
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wrap", ["tf", "keras"])
def test_variable_weights_give_sparse_gradients(wrap):
    w, b, y, x = problem(num_classes=100)
    make = tf.Variable if wrap == "tf" else keras.Variable
    weights, biases = make(w), make(b)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sampled_softmax_loss(weights, biases, y, x, 9, seed=0))
    grad_w, grad_b = tape.gradient(loss, [weights, biases])
    assert isinstance(grad_w, tf.IndexedSlices) and isinstance(grad_b, tf.IndexedSlices)
    assert grad_w.values.shape[0] == 6 + 9  # label rows + sampled rows
    # The same numbers as the dense gradient through a tensor.
    with tf.GradientTape() as tape:
        dense_w = tf.constant(w)
        tape.watch(dense_w)
        loss = tf.reduce_sum(sampled_softmax_loss(dense_w, b, y, x, 9, seed=0))
    np.testing.assert_allclose(
        tf.convert_to_tensor(grad_w),
        tf.convert_to_tensor(tape.gradient(loss, dense_w)),
        rtol=1e-5,
        atol=1e-7,
    )


# --------------------------------------------------------------------------
# Limit and degenerate cases.


@pytest.mark.parametrize("lead", [(0,), (0, 3), (2, 0)])
def test_empty_batch_gives_empty_loss_and_finite_gradients(lead):
    w, b, _, _ = problem()
    x = tf.zeros(lead + (5,))
    y = np.zeros(lead, np.int64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        sampled = sampled_softmax_loss(w, b, y, x, 4, seed=0)
        full = full_softmax_loss(w, b, y, x)
    assert sampled.shape == lead and full.shape == lead
    for loss in (sampled, full):
        grad = tape.gradient(tf.reduce_sum(loss), x)
        assert grad is None or np.all(np.isfinite(grad))


def test_single_class_gives_zero_loss():
    x = tf.constant([[1.0, -2.0], [0.5, 3.0]])
    w, b, y = (
        np.ones((1, 2), np.float32),
        np.zeros(1, np.float32),
        np.zeros(2, np.int64),
    )
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = sampled_softmax_loss(w, b, y, x, 1, seed=0)
    np.testing.assert_allclose(loss, [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(tape.gradient(loss, x), np.zeros((2, 2)), atol=1e-7)
    np.testing.assert_allclose(full_softmax_loss(w, b, y, x), [0.0, 0.0], atol=1e-7)


def test_every_candidate_a_hit_and_zero_counts_stay_finite():
    w, b, _, x = problem(num_classes=4, batch=3)
    y = np.array([2, 2, 2])
    values = (np.array([2, 2]), np.zeros(3), np.zeros(2))
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = sampled_softmax_loss(w, b, y, x, 2, sampled_values=values)
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)
    assert np.all(np.isfinite(tape.gradient(loss, x)))


def test_huge_logits_stay_finite():
    w, b, y, x = problem(num_classes=50)
    w, x = w * 300, x * 300
    for loss in (
        full_softmax_loss(w, b, y, x),
        sampled_softmax_loss(w, b, y, x, 10, seed=0),
    ):
        assert np.all(np.isfinite(loss)) and np.all(loss.numpy() >= 0)
    np.testing.assert_allclose(
        full_softmax_loss(w, b, y, x), np_full_loss(w, b, y, x), rtol=1e-4
    )


# --------------------------------------------------------------------------
# Invalid arguments.


@pytest.mark.parametrize("num_sampled", [0, 31, 2.5, -1, "3", None])
def test_num_sampled_out_of_range(num_sampled):
    w, b, y, x = problem()
    with pytest.raises(ValueError, match=r"`num_sampled`.*\[1, 30\]"):
        sampled_softmax_loss(w, b, y, x, num_sampled)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"remove_accidental_hits": "yes"}, "remove_accidental_hits"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"seed": np.zeros(3, np.int64)}, "seed"),
        ({"sampled_values": (1, 2)}, "sampled_values"),
        ({"sampled_values": (np.arange(4), np.ones(6), np.ones(4))}, "sampled_values"),
    ],
)
def test_invalid_options_name_the_parameter(kwargs, name):
    w, b, y, x = problem()
    with pytest.raises(ValueError, match=f"`{name}`"):
        sampled_softmax_loss(w, b, y, x, 5, **kwargs)


@pytest.mark.parametrize("loss", [full_softmax_loss, sampled_softmax_loss])
def test_invalid_shapes_and_labels_name_the_argument(loss):
    w, b, y, x = problem()
    extra = (5,) if loss is sampled_softmax_loss else ()
    cases = [
        ((w[0], b, y, x), "weights"),
        ((w, b[:-1], y, x), "biases"),
        ((w, b, y, x[:, :3]), "inputs"),
        ((w, b, y, x[0]), "inputs"),
        ((w, b, y[:3], x), "labels"),
        ((w, b, y + 30, x), "labels"),
        ((w, b, y - 31, x), "labels"),
    ]
    for args, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            loss(*args, *extra)


def test_other_functions_check_their_parameters():
    with pytest.raises(ValueError, match="`num_classes`"):
        log_uniform_candidate_sampler([0], 1, 0)
    with pytest.raises(ValueError, match="`num_sampled`"):
        log_uniform_candidate_sampler([0], 11, 10)
    with pytest.raises(ValueError, match="`num_sampled`"):
        SampledSoftmax(10, 11)
    with pytest.raises(ValueError, match="`num_classes`"):
        SampledSoftmax(0, 1)


def test_formulas_are_latex_strings():
    assert FORMULA == FORMULAS["sampled"]
    assert {"full", "sampled", "log_uniform", "expected_count"} <= set(FORMULAS)
    assert all(isinstance(f, str) and "\\" in f for f in FORMULAS.values())


# --------------------------------------------------------------------------
# Property tests.


@settings(max_examples=30, deadline=None)
@given(
    num_classes=st.integers(1, 60),
    data=st.data(),
    scale=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_loss_and_gradients_always_finite(num_classes, data, scale, seed):
    num_sampled = data.draw(st.integers(1, num_classes))
    batch = data.draw(st.integers(0, 5))
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(num_classes, 3)).astype(np.float32) * scale
    b = rng.normal(size=num_classes).astype(np.float32) * scale
    y = rng.integers(0, num_classes, batch)
    x = tf.constant(rng.normal(size=(batch, 3)).astype(np.float32) * scale)
    weights = tf.Variable(w)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        sampled = sampled_softmax_loss(weights, b, y, x, num_sampled, seed=seed)
        full = full_softmax_loss(weights, b, y, x)
    for loss in (sampled, full):
        assert np.all(np.isfinite(loss)) and np.all(loss.numpy() >= -1e-6)
        for grad in tape.gradient(tf.reduce_sum(loss), [weights, x]):
            if grad is not None:
                assert np.all(np.isfinite(tf.convert_to_tensor(grad)))


# --------------------------------------------------------------------------
# The Keras layer.


def test_layer_get_config_round_trip():
    layer = SampledSoftmax(
        50, 7, remove_accidental_hits=False, seed=3, kernel_initializer="zeros"
    )
    config = layer.get_config()
    assert config["num_classes"] == 50 and config["num_sampled"] == 7
    assert config["remove_accidental_hits"] is False and config["seed"] == 3
    clone = SampledSoftmax.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(restored, SampledSoftmax) and restored.get_config() == config


def test_layer_inference_is_full_softmax_and_adds_full_loss():
    layer = SampledSoftmax(20, 5, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 6)).astype(np.float32)
    y = rng.integers(0, 20, (4, 3))
    probs = layer(x)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    logits = x @ kernel.T + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    assert probs.shape == (4, 3, 20)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    layer(x, y, training=False)
    np.testing.assert_allclose(
        layer.losses[0], np.mean(full_softmax_loss(kernel, bias, y, x)), rtol=1e-5
    )


def test_layer_training_adds_sampled_loss_without_full_logits():
    num_classes, dim, batch, num_sampled = 997, 3, 5, 7
    layer = SampledSoftmax(num_classes, num_sampled, seed=0)
    x = tf.random.normal([batch, dim])
    labels = tf.constant([1, 2, 3, 500, 996])
    layer(x)

    @tf.function
    def train_call(x, labels):
        with tf.GradientTape() as tape:
            out = layer(x, labels, training=True)
            loss = tf.add_n(layer.losses)
        return out, loss, tape.gradient(loss, [layer.kernel, layer.bias])

    out, loss, (grad_kernel, grad_bias) = train_call(x, labels)
    assert out.shape == (batch,)
    np.testing.assert_allclose(loss, np.mean(out), rtol=1e-6)
    assert isinstance(grad_kernel, tf.IndexedSlices)
    assert isinstance(grad_bias, tf.IndexedSlices)
    graph = train_call.get_concrete_function(x, labels).graph
    for op in graph.get_operations():
        for t in op.outputs:
            dims = t.shape.as_list() if t.shape.rank else []
            assert num_classes not in dims, (op.type, op.name, t.shape)
    # Each call draws new candidates.
    second, _, _ = train_call(x, labels)
    assert not np.allclose(out, second)


def test_layer_mask_leaves_padding_out():
    layer = SampledSoftmax(30, 6, seed=0)
    x = tf.random.normal([2, 4, 5])
    labels = tf.constant([[1, 2, 3, 4], [5, 6, 7, 8]])
    mask = tf.constant([[True, True, False, False], [True, False, False, False]])
    out = layer(x, labels, training=True, mask=mask)
    expected = np.sum(out.numpy() * mask.numpy()) / 3
    np.testing.assert_allclose(layer.losses[0], expected, rtol=1e-5)
    layer(x, labels, training=True, mask=tf.zeros([2, 4], tf.bool))
    np.testing.assert_allclose(layer.losses[0], 0.0)


def _tiny_model(num_classes, dim, num_sampled):
    inputs = keras.Input((dim,), name="x")
    labels = keras.Input((), dtype="int32", name="labels")
    probs = SampledSoftmax(num_classes, num_sampled, seed=1, name="softmax")(
        inputs, labels
    )
    return keras.Model([inputs, labels], probs)


def _tiny_data(num_classes, dim, size=128):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(size, dim)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(dim, num_classes)), 1).astype(np.int32)
    return x, y


def test_model_trains_saves_and_loads(tmp_path):
    num_classes, dim = 40, 6
    x, y = _tiny_data(num_classes, dim)
    model = _tiny_model(num_classes, dim, 8)
    model.compile(keras.optimizers.Adam(0.03), loss=None, jit_compile=False)
    before = model.evaluate([x, y], verbose=0, batch_size=128)
    model.fit([x, y], epochs=4, batch_size=32, verbose=0)
    # evaluate() reports the exact loss the layer adds outside training.
    after = model.evaluate([x, y], verbose=0, batch_size=128)
    assert np.isfinite(after) and after < before - 0.3
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("softmax"), SampledSoftmax)
    assert (
        loaded.get_layer("softmax").get_config()
        == model.get_layer("softmax").get_config()
    )
    np.testing.assert_allclose(
        loaded.predict([x[:8], y[:8]], verbose=0),
        model.predict([x[:8], y[:8]], verbose=0),
        rtol=1e-6,
    )


def test_model_trains_with_jit_compile():
    num_classes, dim = 40, 6
    x, y = _tiny_data(num_classes, dim)
    model = _tiny_model(num_classes, dim, 8)
    model.compile(keras.optimizers.Adam(0.03), loss=None, jit_compile=True)
    # Keras would quietly turn XLA off for a layer it thinks cannot compile.
    assert model.jit_compile is True
    history = model.fit([x, y], epochs=3, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0] - 0.3
