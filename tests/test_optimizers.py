"""Tests for lossviz.optimizers: LazyAdam against Keras' Adam and a numpy lazy Adam."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossviz._tf import tf
from lossviz.optimizers import FORMULA, FORMULAS, LazyAdam

MODES = ["eager", "function", "xla"]


def numpy_lazy_adam(weights, steps, learning_rate, beta_1, beta_2, epsilon):
    """Lazy Adam as TF1's LazyAdamOptimizer writes it, with a plain loop over rows.

    ``steps`` is a list of ``(indices, values)``. Returns the weights and both
    moments after each step (float64).
    """
    w = weights.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    history = []
    for t, (indices, values) in enumerate(steps, start=1):
        summed = {}
        for i, row in zip(indices, values, strict=True):
            summed[int(i)] = summed.get(int(i), 0.0) + row.astype(np.float64)
        lr_t = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in summed.items():
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
        history.append((w.copy(), m.copy(), v.copy()))
    return history


def moments(optimizer):
    """The optimizer's (momentum, velocity) variables for its single variable."""
    by_suffix = {}
    for variable in optimizer.variables:
        for suffix in ("_momentum", "_velocity"):
            if variable.name.endswith(suffix):
                by_suffix[suffix] = variable
    return by_suffix["_momentum"], by_suffix["_velocity"]


def make_step(optimizer, variable, mode):
    def step(indices, values):
        # The static shape: tf.shape(variable) would read the whole variable.
        dense_shape = tf.constant(tuple(variable.shape), dtype=indices.dtype)
        slices = tf.IndexedSlices(values, indices, dense_shape)
        optimizer.apply_gradients([(slices, variable)])

    if mode == "eager":
        return step
    return tf.function(step, jit_compile=(mode == "xla"))


def make_dense_step(optimizer, variable):
    @tf.function
    def step(gradient):
        optimizer.apply([gradient], [variable])

    return step


def random_sparse_steps(rng, num_rows, row_shape, num_steps, num_slices, dtype):
    steps = []
    for _ in range(num_steps):
        # Few distinct rows per step, so that duplicates and absent rows occur.
        indices = rng.integers(0, num_rows, size=num_slices).astype(np.int32)
        values = rng.normal(size=(num_slices, *row_shape)).astype(dtype)
        steps.append((indices, values))
    return steps


# ----------------------------------------------------------------- dense path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_gradients_follow_keras_adam(dtype):
    rng = np.random.default_rng(1)
    start = rng.normal(size=(5, 3)).astype(dtype)
    grads = [rng.normal(size=(5, 3)).astype(dtype) for _ in range(6)]
    results = []
    for optimizer in (
        keras.optimizers.Adam(learning_rate=0.05, beta_1=0.8, beta_2=0.99),
        LazyAdam(learning_rate=0.05, beta_1=0.8, beta_2=0.99),
    ):
        variable = keras.Variable(start, dtype=dtype)
        for g in grads:
            optimizer.apply_gradients([(tf.constant(g), variable)])
        results.append(variable.numpy())
    assert results[1].dtype == np.dtype(dtype)
    # In float64 Keras' Adam rounds beta_1 and beta_2 through float32
    # (tf.cast of a Python float); LazyAdam keeps them exact, hence 1e-5.
    tol = 1e-6 if dtype == "float32" else 1e-5
    np.testing.assert_allclose(results[1], results[0], rtol=tol, atol=tol)
    assert not np.array_equal(results[1], start)


def test_dense_gradients_follow_keras_adam_with_a_schedule_in_a_function():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    rng = np.random.default_rng(2)
    start = rng.normal(size=(4,)).astype(np.float32)
    grads = [rng.normal(size=(4,)).astype(np.float32) for _ in range(5)]
    results = []
    for optimizer in (
        keras.optimizers.Adam(learning_rate=schedule),
        LazyAdam(learning_rate=schedule),
    ):
        variable = keras.Variable(start)
        step = make_dense_step(optimizer, variable)
        for g in grads:
            step(tf.constant(g))
        results.append(variable.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- sparse path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_gradients_follow_numpy_lazy_adam(mode, dtype):
    rng = np.random.default_rng(3)
    num_rows, row_shape = 9, (3,)
    start = rng.normal(size=(num_rows, *row_shape)).astype(dtype)
    steps = random_sparse_steps(rng, num_rows, row_shape, 5, 4, dtype)
    # Keras keeps the learning rate in a float32 variable: 1/128 is exact there,
    # so the float64 comparison can be tight.
    hyper = dict(learning_rate=1 / 128, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    expected = numpy_lazy_adam(start, steps, **hyper)

    variable = keras.Variable(start, dtype=dtype)
    optimizer = LazyAdam(**hyper)
    optimizer.build([variable])
    m, v = moments(optimizer)
    step = make_step(optimizer, variable, mode)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12)
    for (indices, values), (w_ref, m_ref, v_ref) in zip(steps, expected, strict=True):
        before = [x.numpy() for x in (variable, m, v)]
        step(tf.constant(indices), tf.constant(values))
        after = [x.numpy() for x in (variable, m, v)]
        for got, want in zip(after, (w_ref, m_ref, v_ref), strict=True):
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, want, **tol)
        # Rows absent from this step keep weights and moments bit for bit.
        absent = np.setdiff1d(np.arange(num_rows), indices)
        for got, old in zip(after, before, strict=True):
            np.testing.assert_array_equal(got[absent], old[absent])
    assert int(optimizer.iterations.numpy()) == len(steps)


def test_sparse_rows_of_higher_rank_variables():
    rng = np.random.default_rng(4)
    start = rng.normal(size=(6, 2, 3)).astype(np.float32)
    steps = random_sparse_steps(rng, 6, (2, 3), 3, 3, np.float32)
    expected = numpy_lazy_adam(start, steps, 0.02, 0.9, 0.999, 1e-7)[-1][0]
    variable = keras.Variable(start)
    step = make_step(LazyAdam(learning_rate=0.02), variable, "function")
    for indices, values in steps:
        step(tf.constant(indices), tf.constant(values))
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_lazy_rows_do_not_keep_moving_unlike_adam():
    """Touched once, then absent: Adam's momentum moves the row, LazyAdam's does not."""
    first = tf.IndexedSlices(tf.ones((1, 2)), tf.constant([0]), tf.constant([3, 2]))
    second = tf.IndexedSlices(tf.ones((1, 2)), tf.constant([1]), tf.constant([3, 2]))
    row_0 = {}
    for optimizer in (keras.optimizers.Adam(0.1), LazyAdam(0.1)):
        variable = keras.Variable(np.zeros((3, 2), np.float32))
        optimizer.apply_gradients([(first, variable)])
        after_first = variable.numpy()[0].copy()
        optimizer.apply_gradients([(second, variable)])
        row_0[type(optimizer).__name__] = (after_first, variable.numpy()[0])
    lazy_first, lazy_second = row_0["LazyAdam"]
    adam_first, adam_second = row_0["Adam"]
    np.testing.assert_array_equal(lazy_second, lazy_first)
    assert np.all(adam_second < adam_first)


def test_sparse_gradient_over_every_row_equals_dense_adam():
    rng = np.random.default_rng(5)
    start = rng.normal(size=(7, 4)).astype(np.float32)
    lazy_variable = keras.Variable(start)
    adam_variable = keras.Variable(start)
    lazy, adam = LazyAdam(0.03), keras.optimizers.Adam(0.03)
    for _ in range(4):
        dense = rng.normal(size=(7, 4)).astype(np.float32)
        order = rng.permutation(7)
        slices = tf.IndexedSlices(
            tf.constant(dense[order]), tf.constant(order), tf.constant([7, 4])
        )
        lazy.apply_gradients([(slices, lazy_variable)])
        adam.apply_gradients([(tf.constant(dense), adam_variable)])
    np.testing.assert_allclose(
        lazy_variable.numpy(), adam_variable.numpy(), rtol=1e-6, atol=1e-7
    )


def test_duplicate_indices_are_summed_first():
    rng = np.random.default_rng(6)
    start = rng.normal(size=(6, 3)).astype(np.float32)
    a, b, c = (rng.normal(size=(1, 3)).astype(np.float32) for _ in range(3))
    duplicated = tf.IndexedSlices(
        tf.constant(np.concatenate([a, c, b])),
        tf.constant([2, 5, 2]),
        tf.constant([6, 3]),
    )
    summed = tf.IndexedSlices(
        tf.constant(np.concatenate([a + b, c])),
        tf.constant([2, 5]),
        tf.constant([6, 3]),
    )
    dense = np.zeros((6, 3), np.float32)
    dense[2], dense[5] = (a + b)[0], c[0]
    results = []
    for grad in (duplicated, summed, tf.constant(dense)):
        variable = keras.Variable(start)
        optimizer = LazyAdam(0.1)
        optimizer.apply_gradients([(grad, variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-7, atol=0)
    # At the first step a zero dense gradient moves nothing, so dense Adam agrees.
    np.testing.assert_allclose(results[0], results[2], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_empty_and_zero_sparse_gradients_leave_rows_finite_and_unchanged(mode):
    start = np.arange(12, dtype=np.float32).reshape(4, 3)
    variable = keras.Variable(start)
    optimizer = LazyAdam(0.1)
    optimizer.build([variable])
    step = make_step(optimizer, variable, mode)
    # No index at all, then a row whose gradient is exactly zero (0 / epsilon).
    step(tf.zeros([0], tf.int32), tf.zeros([0, 3]))
    step(tf.constant([1]), tf.zeros([1, 3]))
    for value in [variable.numpy(), *(x.numpy() for x in moments(optimizer))]:
        assert np.all(np.isfinite(value))
    np.testing.assert_array_equal(variable.numpy(), start)
    assert int(optimizer.iterations.numpy()) == 2


def test_sparse_path_forms_no_full_size_tensor():
    """No tensor of the variable's [V, D] shape is built; Keras' Adam builds several."""
    num_rows, dim = 5003, 7

    def full_size_tensors(optimizer):
        variable = keras.Variable(np.zeros((num_rows, dim), np.float32))
        optimizer.build([variable])
        step = make_step(optimizer, variable, "function")
        graph = step.get_concrete_function(
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, dim], tf.float32)
        ).graph
        return [
            tensor
            for op in graph.get_operations()
            for tensor in op.outputs
            if tensor.shape.rank and tensor.shape[0] == num_rows
        ]

    assert full_size_tensors(keras.optimizers.Adam()), "the check finds nothing"
    assert full_size_tensors(LazyAdam()) == []


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_custom_loop_with_tape_and_apply_gradients(mode):
    rng = np.random.default_rng(7)
    table = keras.Variable(rng.normal(size=(20, 4)).astype(np.float32))
    start = table.numpy()
    optimizer = LazyAdam(0.05)
    ids = tf.constant([3, 7, 3, 11])

    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(tf.gather(table, ids)))
        (grad,) = tape.gradient(loss, [table])
        optimizer.apply_gradients([(grad, table)])
        return isinstance(grad, tf.IndexedSlices)

    if mode == "function":
        train_step = tf.function(train_step)
    assert train_step()
    train_step()
    changed = np.flatnonzero(np.any(table.numpy() != start, axis=1))
    np.testing.assert_array_equal(changed, [3, 7, 11])
    # The loss pulls the rows toward zero.
    assert np.all(np.abs(table.numpy()[[3, 7, 11]]) < np.abs(start[[3, 7, 11]]))


def test_loss_scale_factor_keeps_sparse_gradients_working():
    grad = tf.IndexedSlices(tf.ones((2, 3)), tf.constant([1, 1]), tf.constant([4, 3]))
    scaled = tf.IndexedSlices(grad.values * 8.0, grad.indices, grad.dense_shape)
    results = []
    for optimizer, g in (
        (LazyAdam(0.1), grad),
        (LazyAdam(0.1, loss_scale_factor=8.0), scaled),
    ):
        variable = keras.Variable(np.zeros((4, 3), np.float32))
        optimizer.apply_gradients([(g, variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-7)
    assert optimizer.loss_scale_factor == 8.0
    assert np.all(results[1][1] < 0) and np.all(results[1][[0, 2, 3]] == 0)


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(beta_1=1.0), "beta_1"),
        (dict(beta_1=-0.1), "beta_1"),
        (dict(beta_2=1.0), "beta_2"),
        (dict(beta_2=float("nan")), "beta_2"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(epsilon=-1e-7), "epsilon"),
    ],
)
def test_invalid_parameters_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        LazyAdam(**kwargs)


def test_edge_parameters_are_accepted():
    optimizer = LazyAdam(learning_rate=1, beta_1=0.0, beta_2=0.0, epsilon=1e-12)
    assert isinstance(optimizer.get_config()["learning_rate"], float)
    assert "\\beta_1" in FORMULA and set(FORMULAS) == {"adam", "lazy"}


def test_get_config_round_trip():
    optimizer = LazyAdam(
        learning_rate=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6, clipnorm=1.0
    )
    config = optimizer.get_config()
    assert {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}.items() <= config.items()
    assert LazyAdam.from_config(config).get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is LazyAdam and restored.get_config() == config

    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    with_schedule = LazyAdam(learning_rate=schedule)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(with_schedule))
    assert isinstance(restored._learning_rate, type(schedule))
    assert restored.get_config() == with_schedule.get_config()


# ----------------------------------------------------------------------- model


def tiny_embedding_model():
    inputs = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(40, 4, name="embedding")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_is_lazy_and_model_saves_and_loads(jit_compile, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(8)
    model = tiny_embedding_model()
    model.compile(optimizer=LazyAdam(0.01), loss="mse", jit_compile=jit_compile)
    y = rng.normal(size=(32, 1)).astype(np.float32)
    model.fit(rng.integers(0, 20, size=(32, 3)), y, batch_size=8, epochs=1, verbose=0)
    table = model.get_layer("embedding").embeddings
    before = table.numpy()
    # Now only tokens 0..9 occur: rows 10..19 had momentum, yet must not move.
    history = model.fit(
        rng.integers(0, 10, size=(32, 3)), y, batch_size=8, epochs=1, verbose=0
    )
    after = table.numpy()
    np.testing.assert_array_equal(after[10:], before[10:])
    assert np.any(after[:10] != before[:10])
    assert np.all(np.isfinite(history.history["loss"]))

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is LazyAdam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for saved, restored in zip(
        model.optimizer.variables, loaded.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
    probe = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(
        loaded.predict(probe, verbose=0), model.predict(probe, verbose=0)
    )
    if not jit_compile:  # training goes on from the restored moments
        loaded.fit(probe, np.zeros((2, 1)), epochs=1, verbose=0)
        assert int(loaded.optimizer.iterations.numpy()) == 9


# ------------------------------------------------------------------ properties


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    beta_1=st.floats(0.0, 0.999),
    beta_2=st.floats(0.0, 0.9999),
    epsilon=st.floats(1e-8, 1.0),
)
def test_weights_and_moments_stay_finite(data, beta_1, beta_2, epsilon):
    num_rows = 5
    variable = keras.Variable(np.zeros((num_rows, 2), np.float32))
    optimizer = LazyAdam(0.1, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    optimizer.build([variable])
    values = st.floats(-1e4, 1e4, width=32)
    for _ in range(3):
        count = data.draw(st.integers(0, 6))
        indices = data.draw(
            st.lists(st.integers(0, num_rows - 1), min_size=count, max_size=count)
        )
        rows = data.draw(
            st.lists(
                st.lists(values, min_size=2, max_size=2), min_size=count, max_size=count
            )
        )
        grad = tf.IndexedSlices(
            tf.constant(np.array(rows, np.float32).reshape(count, 2)),
            tf.constant(indices, tf.int32),
            tf.constant([num_rows, 2]),
        )
        optimizer.apply_gradients([(grad, variable)])
    for value in [variable.numpy(), *(x.numpy() for x in moments(optimizer))]:
        assert np.all(np.isfinite(value))
