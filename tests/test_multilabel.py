"""Tests for lossviz.multilabel (BP-MLL), against a numpy double loop over pairs."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossviz._tf import tf
from lossviz.multilabel import (
    BPMLL,
    FORMULA,
    FORMULAS,
    bpmll_loss,
    bpmll_loss_loop,
    bpmll_loss_pairwise,
)

FORMS = {
    "vectorised": bpmll_loss,
    "pairwise": bpmll_loss_pairwise,
    "loop": bpmll_loss_loop,
}
GRAD_STEP = 2.0**-16  # exactly representable, small enough for float64


def reference_bpmll(y_true, logits):
    """Zhang & Zhou (2006) eq. (3), literally: a double loop over pairs."""
    y_true = np.asarray(y_true, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    flat_y = y_true.reshape(-1, y_true.shape[-1])
    flat_c = logits.reshape(-1, logits.shape[-1])
    out = np.zeros(flat_y.shape[0])
    for i, (labels, scores) in enumerate(zip(flat_y, flat_c, strict=True)):
        positives = [k for k in range(len(labels)) if labels[k] == 1]
        negatives = [l for l in range(len(labels)) if labels[l] == 0]  # noqa: E741
        if not positives or not negatives:
            continue
        total = 0.0
        for k in positives:
            for l in negatives:  # noqa: E741
                total += np.exp(-(scores[k] - scores[l]))
        out[i] = total / (len(positives) * len(negatives))
    return out.reshape(y_true.shape[:-1])


def random_batch(shape, rng, scale=3.0, density=0.5):
    y_true = (rng.random(shape) < density).astype(np.float32)
    logits = rng.uniform(-scale, scale, size=shape)
    return y_true, logits


def loss_and_grad(fn, y_true, logits):
    logits = tf.convert_to_tensor(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = fn(y_true, logits)
    return loss, tape.gradient(loss, logits)


# --- values -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", [(5, 4), (7, 9), (2, 3, 6), (1, 2)])
def test_matches_numpy_double_loop(form, shape, dtype):
    rng = np.random.default_rng(1)
    y_true, logits = random_batch(shape, rng)
    loss = FORMS[form](y_true, logits.astype(dtype))
    assert loss.dtype == tf.as_dtype(dtype)
    assert loss.shape == shape[:-1]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.numpy(), reference_bpmll(y_true, logits), rtol=rtol)


def test_three_forms_agree_on_a_larger_batch():
    rng = np.random.default_rng(2)
    y_true, logits = random_batch((16, 20), rng, scale=10.0, density=0.3)
    logits = logits.astype(np.float64)
    vectorised = bpmll_loss(y_true, logits).numpy()
    np.testing.assert_allclose(
        bpmll_loss_pairwise(y_true, logits).numpy(), vectorised, rtol=1e-12
    )
    np.testing.assert_allclose(
        bpmll_loss_loop(y_true, logits).numpy(), vectorised, rtol=1e-12
    )


def test_one_positive_one_negative_is_a_single_exponential():
    loss = bpmll_loss([[1.0, 0.0], [0.0, 1.0]], [[2.0, -1.0], [2.0, -1.0]])
    np.testing.assert_allclose(loss.numpy(), [np.exp(-3.0), np.exp(3.0)], rtol=1e-6)


def test_equal_logits_give_one_and_a_row_shift_changes_nothing():
    rng = np.random.default_rng(3)
    y_true, logits = random_batch((6, 5), rng)
    y_true[:, 0], y_true[:, 1] = 1.0, 0.0  # every row has pairs
    np.testing.assert_allclose(bpmll_loss(y_true, np.zeros((6, 5))).numpy(), 1.0)
    shifted = logits + rng.normal(size=(6, 1)) * 20.0
    np.testing.assert_allclose(
        bpmll_loss(y_true, shifted).numpy(),
        bpmll_loss(y_true, logits).numpy(),
        rtol=1e-10,
    )


def test_label_types_bool_int_float_agree():
    rng = np.random.default_rng(4)
    y_true, logits = random_batch((4, 5), rng)
    expected = reference_bpmll(y_true, logits)
    for labels in (y_true.astype(bool), y_true.astype(np.int32), y_true):
        np.testing.assert_allclose(bpmll_loss(labels, logits).numpy(), expected)


# --- degenerate rows ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", FORMS)
def test_rows_without_pairs_give_zero_with_zero_finite_gradient(form, dtype):
    y_true = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]], dtype=np.float32)
    # Rows without pairs give 0 whatever their logits, even past the float32
    # range of exp: nothing from a non-pair may reach exp unmasked.
    logits = np.array(
        [[60, -60, 3, 0], [-60, 60, 0, 1], [0.5, -0.5, 1, 2]], dtype=dtype
    )
    loss, grad = loss_and_grad(FORMS[form], y_true, logits)
    assert np.all(np.isfinite(loss.numpy())) and np.all(np.isfinite(grad.numpy()))
    np.testing.assert_array_equal(loss.numpy()[:2], 0.0)
    np.testing.assert_array_equal(grad.numpy()[:2], 0.0)
    np.testing.assert_allclose(
        loss.numpy()[2], reference_bpmll(y_true, logits)[2], rtol=1e-6
    )
    assert np.any(grad.numpy()[2] != 0.0)


@pytest.mark.parametrize("form", FORMS)
def test_single_label_and_empty_batch(form):
    loss, grad = loss_and_grad(FORMS[form], [[1.0], [0.0]], [[3.0], [-3.0]])
    np.testing.assert_array_equal(loss.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(grad.numpy(), [[0.0], [0.0]])
    empty = FORMS[form](np.zeros((0, 4)), np.zeros((0, 4), np.float32))
    assert empty.shape == (0,)


# --- float32 range: log space against the factorised product ----------------


def naive_factorised_float32(y_true, logits):
    """The factorised product written by hand in float32, as many people do."""
    logits = np.asarray(logits, np.float32)
    positive = np.asarray(y_true) == 1
    with np.errstate(over="ignore"):
        pos_sum = np.where(positive, np.exp(-logits), np.float32(0)).sum(-1)
        neg_sum = np.where(~positive, np.exp(logits), np.float32(0)).sum(-1)
        product = pos_sum * neg_sum
    count = positive.sum(-1) * (~positive).sum(-1)
    return (product / count).astype(np.float32)


def test_factorised_product_overflows_where_log_space_is_finite():
    num_labels = 200  # 100 positives at -40, 100 negatives at +40
    y_true = np.zeros((2, num_labels), np.float32)
    y_true[:, :100] = 1.0
    logits = np.where(y_true == 1, -40.0, 40.0).astype(np.float32)
    logits[1] = np.linspace(-40, 40, num_labels)
    naive = naive_factorised_float32(y_true, logits)
    assert np.isinf(naive[0])

    loss, grad = loss_and_grad(bpmll_loss, y_true, logits)
    assert loss.dtype == tf.float32
    np.testing.assert_allclose(loss.numpy(), reference_bpmll(y_true, logits), rtol=1e-5)
    np.testing.assert_allclose(loss.numpy()[0], np.exp(80.0), rtol=1e-5)
    assert np.all(np.isfinite(grad.numpy()))


# --- gradients ----------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_gradient_matches_numerical_gradient_float64(form):
    rng = np.random.default_rng(5)
    y_true, logits = random_batch((4, 5), rng)
    y_true[0] = 0.0  # a degenerate row inside the Jacobian
    y_true[1, :2] = [1.0, 0.0]

    def fn(c):
        return FORMS[form](y_true, c)

    theoretical, numerical = tf.test.compute_gradient(fn, [logits], delta=GRAD_STEP)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


def test_gradient_matches_closed_form():
    rng = np.random.default_rng(6)
    y_true, logits = random_batch((5, 6), rng)
    y_true[:, 0], y_true[:, 1] = 1.0, 0.0
    loss, grad = loss_and_grad(bpmll_loss, y_true, logits)
    expected = np.zeros_like(logits)
    for i in range(logits.shape[0]):
        pos, neg = y_true[i] == 1, y_true[i] == 0
        for k in np.flatnonzero(pos):
            for l in np.flatnonzero(neg):  # noqa: E741
                term = np.exp(-(logits[i, k] - logits[i, l])) / (pos.sum() * neg.sum())
                expected[i, k] -= term
                expected[i, l] += term
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-10)


# --- input checks -------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, np.nan])
@pytest.mark.parametrize("form", FORMS.values())
def test_non_binary_labels_raise_naming_y_true(form, bad):
    y_true = np.array([[1.0, 0.0, bad]])
    with pytest.raises(ValueError, match="`y_true`.*0 and 1"):
        form(y_true, np.zeros((1, 3)))


@pytest.mark.parametrize("form", FORMS.values())
def test_shape_mismatch_raises_naming_y_true(form):
    with pytest.raises(ValueError, match="`y_true`.*same shape"):
        form(np.ones((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="`y_true`.*same shape"):
        form(np.ones((2, 1)), np.zeros((2, 4)))


def test_string_labels_and_scalar_logits_raise():
    with pytest.raises(ValueError, match="`y_true`"):
        bpmll_loss(tf.constant([["a", "b"]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="`logits`"):
        bpmll_loss(1.0, 0.0)


# --- tf.function and Keras ----------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_inside_tf_function(form):
    rng = np.random.default_rng(7)
    y_true, logits = random_batch((3, 4), rng)
    y_true[0] = 1.0
    compiled = tf.function(FORMS[form])
    loss = compiled(tf.constant(y_true), tf.constant(logits, tf.float32))
    np.testing.assert_allclose(loss.numpy(), reference_bpmll(y_true, logits), rtol=1e-5)


def test_vectorised_form_takes_a_dynamic_batch_without_retracing():
    spec = tf.TensorSpec([None, 4], tf.float32)
    compiled = tf.function(bpmll_loss, input_signature=[spec, spec])
    rng = np.random.default_rng(8)
    for batch in (2, 5):
        y_true, logits = random_batch((batch, 4), rng)
        np.testing.assert_allclose(
            compiled(y_true, logits.astype(np.float32)).numpy(),
            reference_bpmll(y_true, logits),
            rtol=1e-5,
        )
    assert compiled.experimental_get_tracing_count() == 1


def test_loop_form_needs_a_static_batch():
    spec = tf.TensorSpec([None, 4], tf.float32)
    compiled = tf.function(bpmll_loss_loop, input_signature=[spec, spec])
    with pytest.raises(ValueError, match="`logits`.*static shape"):
        compiled(np.ones((2, 4), np.float32), np.zeros((2, 4), np.float32))


def test_keras_loss_reduces_bpmll_and_round_trips_config():
    rng = np.random.default_rng(9)
    y_true, logits = random_batch((6, 5), rng)
    expected = reference_bpmll(y_true, logits)
    np.testing.assert_allclose(
        BPMLL()(y_true, logits).numpy(), expected.mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        BPMLL(reduction=None)(y_true, logits).numpy(), expected, rtol=1e-5
    )
    loss = BPMLL(reduction="sum", name="ranking")
    config = loss.get_config()
    assert config == {"name": "ranking", "reduction": "sum", "dtype": "float32"}
    rebuilt = BPMLL.from_config(config)
    assert rebuilt.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, BPMLL) and restored.get_config() == config


def test_compiled_model_saves_and_loads_without_custom_objects(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (rng.random((32, 5)) < 0.4).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    model.compile(optimizer="adam", loss=BPMLL())
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, BPMLL)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    expected = reference_bpmll(y, model.predict(x, verbose=0)).mean()
    np.testing.assert_allclose(
        loaded.evaluate(x, y, batch_size=32, verbose=0), expected, rtol=1e-5
    )


def test_formulas_are_latex_strings():
    assert FORMULAS["bpmll"] == FORMULA
    assert r"\bar Y_i" in FORMULA
    assert {"factorised", "log_space", "gradient", "degenerate"} <= set(FORMULAS)


# --- properties ---------------------------------------------------------------

_batches = st.integers(1, 4).flatmap(
    lambda rows: st.integers(1, 7).flatmap(
        lambda labels: st.tuples(
            hnp.arrays(
                np.float32, (rows, labels), elements=st.sampled_from([0.0, 1.0])
            ),
            hnp.arrays(
                np.float32,
                (rows, labels),
                elements=st.floats(-40, 40, width=32, allow_nan=False),
            ),
        )
    )
)


@settings(max_examples=30, deadline=None)
@given(_batches)
def test_loss_and_gradient_finite_for_logits_within_40_float32(batch):
    y_true, logits = batch
    for form in FORMS.values():
        loss, grad = loss_and_grad(form, y_true, logits)
        assert np.all(np.isfinite(loss.numpy()))
        assert np.all(np.isfinite(grad.numpy()))
        assert np.all(loss.numpy() >= 0.0)


@settings(max_examples=30, deadline=None)
@given(_batches)
def test_vectorised_matches_reference_on_random_float32_batches(batch):
    y_true, logits = batch
    np.testing.assert_allclose(
        bpmll_loss(y_true, logits).numpy(),
        reference_bpmll(y_true, logits),
        rtol=2e-5,
        atol=1e-30,
    )
