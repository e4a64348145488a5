"""Tests for lossviz.sequence against numpy loops and Keras' own losses."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossviz import sequence
from lossviz._tf import tf
from lossviz.sequence import (
    MaskedSparseCategoricalCrossentropy,
    end_token_class_weights,
    mask_as_sample_weight_crossentropy,
    masked_accuracy,
    masked_sparse_categorical_crossentropy,
    perplexity,
    special_token_mae,
    token_crossentropy,
    token_mean_crossentropy,
)

B, T, C = 4, 6, 5
DTYPES = [np.float32, np.float64]
PAD_IDS = [0, 3, -1, None]


# ----------------------------------------------------------------- references
def ref_ce(label, logit_row):
    """-log softmax(logit_row)[label], in float64 with a log-sum-exp."""
    z = np.asarray(logit_row, dtype=np.float64)
    top = z.max()
    return top + np.log(np.sum(np.exp(z - top))) - z[label]


def ref_tokens(y, z, pad_id, weights):
    """Returns (terms, mask) as float64 numpy arrays [B, T], with plain loops."""
    terms = np.zeros(y.shape)
    mask = np.zeros(y.shape)
    for b in range(y.shape[0]):
        for t in range(y.shape[1]):
            if pad_id is not None and y[b, t] == pad_id:
                continue
            w = 1.0 if weights is None else weights[y[b, t]]
            terms[b, t] = w * ref_ce(y[b, t], z[b, t])
            mask[b, t] = 1.0
    return terms, mask


def ref_per_sequence(y, z, pad_id=0, weights=None):
    terms, mask = ref_tokens(y, z, pad_id, weights)
    out = np.zeros(y.shape[0])
    for b in range(y.shape[0]):
        if mask[b].sum() > 0:
            out[b] = terms[b].sum() / mask[b].sum()
    return out


def ref_token_mean(y, z, pad_id=0, weights=None):
    terms, mask = ref_tokens(y, z, pad_id, weights)
    return terms.sum() / mask.sum() if mask.sum() else 0.0


def ref_end_weights(y, num_classes, end_id, pad_id=None):
    counts = {}
    for label in np.asarray(y).reshape(-1).tolist():
        if pad_id is not None and label == pad_id:
            continue
        counts[label] = counts.get(label, 0) + 1
    weights = np.ones(num_classes)
    others = [n for c, n in counts.items() if c != end_id and n > 0]
    if counts.get(end_id, 0) and others:
        weights[end_id] = sum(others) / len(others) / counts[end_id]
    return weights


def batch(dtype=np.float32, pad_id=0, seed=0, all_pad_row=True, small=False):
    """Random labels [B, T] padded at the end, logits [B, T, C].

    Row lengths are T, 3, 1 and 0 (or 2); ``small`` keeps 3 rows of 4 steps,
    enough for numerical gradients, which cost two evaluations per logit.
    """
    rng = np.random.default_rng(seed)
    content = [c for c in range(C) if c != pad_id]
    lengths = [T, 3, 1, 0] if all_pad_row else [T, 3, 1, 2]
    if small:
        lengths = [4, 2, 0]
    y = rng.choice(content, size=(len(lengths), max(lengths))).astype(np.int32)
    pad_label = C - 1 if pad_id is None else pad_id
    for b, length in enumerate(lengths):
        y[b, length:] = pad_label
    z = (rng.standard_normal(y.shape + (C,)) * 3).astype(dtype)
    return y, z


def grads_of(fn, z):
    z = tf.Variable(z)
    with tf.GradientTape() as tape:
        value = fn(z)
    return value, tape.gradient(value, z)


def assert_numerical_gradient(fn, z):
    theoretical, numerical = tf.test.compute_gradient(fn, [tf.constant(z)])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------- masked_sparse_categorical_crossentropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad_id", PAD_IDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_masked_loss_matches_numpy_loop(dtype, pad_id, weighted):
    y, z = batch(dtype, pad_id)
    weights = np.linspace(0.0, 2.0, C) if weighted else None
    loss = masked_sparse_categorical_crossentropy(
        y, z, pad_id=pad_id, class_weights=weights
    )
    assert loss.shape == (B,)
    assert loss.dtype == tf.as_dtype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        loss.numpy(), ref_per_sequence(y, z, pad_id, weights), rtol=tol, atol=tol
    )


def test_unweighted_equals_ones_and_full_rows_equal_keras():
    y, z = batch(all_pad_row=False)
    ones = masked_sparse_categorical_crossentropy(y, z, class_weights=np.ones(C))
    plain = masked_sparse_categorical_crossentropy(y, z)
    np.testing.assert_allclose(ones, plain, rtol=1e-6)
    # Row 0 has no padding: its per-sequence mean is Keras' mean over time.
    keras_row = keras.losses.sparse_categorical_crossentropy(
        y[0], z[0], from_logits=True
    )
    np.testing.assert_allclose(plain[0], np.mean(keras_row), rtol=1e-5)


def test_no_mask_is_the_plain_mean_over_time():
    y, z = batch()
    unmasked = masked_sparse_categorical_crossentropy(y, z, pad_id=None)
    keras_tokens = keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True)
    np.testing.assert_allclose(unmasked, np.mean(keras_tokens, axis=-1), rtol=1e-5)


def test_labels_as_float_and_trailing_axis():
    y, z = batch()
    expected = masked_sparse_categorical_crossentropy(y, z)
    as_keras_passes = y[..., None].astype(np.float32)
    np.testing.assert_allclose(
        masked_sparse_categorical_crossentropy(as_keras_passes, z), expected
    )


@pytest.mark.parametrize("pad_id", [0, -1])
def test_all_pad_row_gives_zero_value_and_zero_gradient(pad_id):
    y, z = batch(np.float32, pad_id)
    value, grad = grads_of(
        lambda v: masked_sparse_categorical_crossentropy(y, v, pad_id=pad_id), z
    )
    assert value.numpy()[3] == 0.0
    assert np.all(np.isfinite(grad.numpy()))
    np.testing.assert_array_equal(grad.numpy()[3], 0.0)
    # Padded positions of the other rows get no gradient either.
    padded = y == pad_id
    np.testing.assert_array_equal(grad.numpy()[padded], 0.0)
    assert np.all(np.abs(grad.numpy()[~padded]).sum(axis=-1) > 0)


def test_garbage_logits_under_padding_do_not_leak():
    y, z = batch(np.float32)
    dirty = z.copy()
    dirty[y == 0] = np.nan
    dirty[3, 0, 0] = np.inf
    clean_value = masked_sparse_categorical_crossentropy(y, z)
    value, grad = grads_of(
        lambda v: masked_sparse_categorical_crossentropy(y, v), dirty
    )
    np.testing.assert_allclose(value, clean_value)
    assert np.all(np.isfinite(grad.numpy()))


def test_extreme_logits_stay_finite():
    y, z = batch(np.float32)
    z = z * 1e4
    value, grad = grads_of(lambda v: masked_sparse_categorical_crossentropy(y, v), z)
    assert np.all(np.isfinite(value.numpy()))
    assert np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(value, ref_per_sequence(y, z), rtol=1e-5)


@pytest.mark.parametrize("pad_id", [0, None])
def test_masked_loss_gradient_matches_numerical(pad_id):
    y, z = batch(np.float64, pad_id, small=True)
    weights = np.array([0.5, 1.0, 2.0, 0.0, 3.0])
    assert_numerical_gradient(
        lambda v: masked_sparse_categorical_crossentropy(
            y, v, pad_id=pad_id, class_weights=weights
        ),
        z,
    )


def test_class_weights_scale_each_token():
    y, z = batch()
    weights = np.ones(C)
    weights[2] = 3.0
    terms = token_crossentropy(y, z, class_weights=weights).numpy()
    plain = token_crossentropy(y, z).numpy()
    np.testing.assert_allclose(terms[y == 2], 3.0 * plain[y == 2], rtol=1e-6)
    np.testing.assert_allclose(terms[y != 2], plain[y != 2], rtol=1e-6)
    np.testing.assert_array_equal(plain[y == 0], 0.0)


# ----------------------------------------------------- Keras' own reductions
@pytest.mark.parametrize("pad_id", [0, 3, -1])
def test_token_mean_equals_keras_ignore_class(pad_id):
    y, z = batch(np.float32, pad_id)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=pad_id
    )(y, z)
    ours = token_mean_crossentropy(y, z, pad_id=pad_id)
    np.testing.assert_allclose(ours, keras_loss, rtol=1e-6)
    np.testing.assert_allclose(ours, ref_token_mean(y, z, pad_id), rtol=1e-5)


def test_token_mean_with_weights_matches_numpy():
    y, z = batch(np.float64)
    weights = np.array([1.0, 0.2, 4.0, 1.0, 0.0])
    np.testing.assert_allclose(
        token_mean_crossentropy(y, z, class_weights=weights),
        ref_token_mean(y, z, 0, weights),
        rtol=1e-12,
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_sample_weight_trap_equals_keras(weighted):
    y, z = batch(np.float32)
    weights = np.array([1.0, 0.5, 2.0, 1.5, 0.0]) if weighted else np.ones(C)
    mask = (y != 0).astype(np.float32)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, z, sample_weight=mask * weights[y]
    )
    ours = mask_as_sample_weight_crossentropy(
        y, z, class_weights=weights if weighted else None
    )
    np.testing.assert_allclose(ours, keras_loss, rtol=1e-6)
    # It divides by every token: the token mean scaled by the non-pad share.
    expected = token_mean_crossentropy(y, z, class_weights=weights) * mask.mean()
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "fn", [token_mean_crossentropy, mask_as_sample_weight_crossentropy]
)
def test_stacked_batches_reduce_each_batch(fn):
    batches = [batch(seed=seed) for seed in range(3)]
    y = np.stack([b[0] for b in batches])
    z = np.stack([b[1] for b in batches])
    stacked = fn(y, z)
    assert stacked.shape == (3,)
    for i, (y_i, z_i) in enumerate(batches):
        np.testing.assert_allclose(stacked[i], fn(y_i, z_i), rtol=1e-6)
    np.testing.assert_allclose(
        token_mean_crossentropy(y, z)[1], ref_token_mean(y[1], z[1]), rtol=1e-5
    )


@pytest.mark.parametrize(
    "fn",
    [
        masked_sparse_categorical_crossentropy,
        token_mean_crossentropy,
        mask_as_sample_weight_crossentropy,
    ],
)
def test_stacked_class_weights_give_each_batch_its_vector(fn):
    batches = [batch(seed=seed) for seed in range(3)]
    y = np.stack([b[0] for b in batches])
    z = np.stack([b[1] for b in batches])
    weights = np.random.default_rng(7).uniform(0.0, 3.0, size=(3, C))
    stacked = fn(y, z, class_weights=weights).numpy()
    for i, (y_i, z_i) in enumerate(batches):
        np.testing.assert_allclose(
            stacked[i], fn(y_i, z_i, class_weights=weights[i]), rtol=1e-6
        )
    np.testing.assert_allclose(
        masked_sparse_categorical_crossentropy(y, z, class_weights=weights)[2],
        ref_per_sequence(y[2], z[2], 0, weights[2]),
        rtol=1e-5,
    )


@pytest.mark.parametrize("pad_id", [0, -1])
def test_mean_with_sample_weight_reduction_avoids_the_trap(pad_id):
    y, z = batch(np.float32, pad_id)
    mask = (y != pad_id).astype(np.float32)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )(np.where(y == pad_id, 0, y), z, sample_weight=mask)
    np.testing.assert_allclose(
        keras_loss, token_mean_crossentropy(y, z, pad_id=pad_id), rtol=1e-6
    )


def test_three_reductions_agree_without_padding_and_equal_lengths():
    y, z = batch(np.float64, pad_id=None)
    per_sequence = masked_sparse_categorical_crossentropy(y, z, pad_id=None)
    token = token_mean_crossentropy(y, z, pad_id=None)
    trap = mask_as_sample_weight_crossentropy(y, z, pad_id=None)
    np.testing.assert_allclose(np.mean(per_sequence), token, rtol=1e-12)
    np.testing.assert_allclose(token, trap, rtol=1e-12)


@pytest.mark.parametrize(
    "fn", [token_mean_crossentropy, mask_as_sample_weight_crossentropy, perplexity]
)
def test_scalar_losses_gradient_matches_numerical(fn):
    y, z = batch(np.float64, small=True)
    assert_numerical_gradient(lambda v: fn(y, v), z)


def test_all_pad_batch_is_finite():
    y = np.zeros((2, 3), np.int32)
    z = np.random.default_rng(1).standard_normal((2, 3, C)).astype(np.float32)
    for fn, expected in [
        (token_mean_crossentropy, 0.0),
        (mask_as_sample_weight_crossentropy, 0.0),
        (perplexity, 1.0),
        (masked_accuracy, 0.0),
    ]:
        value, grad = grads_of(lambda v, fn=fn: fn(y, v), z)
        assert value.numpy() == expected, fn.__name__
        if grad is not None:
            np.testing.assert_array_equal(grad.numpy(), 0.0)


# ------------------------------------------------------------ metrics
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad_id", [0, -1])
def test_perplexity_matches_numpy(dtype, pad_id):
    y, z = batch(dtype, pad_id)
    value = perplexity(y, z, pad_id=pad_id)
    assert value.shape == ()
    assert value.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(
        value, np.exp(ref_token_mean(y, z, pad_id)), rtol=1e-5
    )


def test_perplexity_of_uniform_model_is_num_classes():
    y, _ = batch()
    np.testing.assert_allclose(perplexity(y, np.zeros((B, T, C))), C, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_accuracy_matches_loop(dtype):
    y, z = batch(dtype)
    hits = total = 0
    for b in range(B):
        for t in range(T):
            if y[b, t] != 0:
                total += 1
                hits += int(np.argmax(z[b, t]) == y[b, t])
    value = masked_accuracy(y, z)
    assert value.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(value, hits / total, rtol=1e-6)


def test_masked_accuracy_ignores_padding():
    y = np.array([[3, 4, 0, 0]])
    z = np.zeros((1, 4, C), np.float32)
    z[0, 0, 3] = z[0, 1, 1] = 5.0
    z[0, 2:, 1] = 5.0  # padded positions predict class 1, not the pad class 0
    np.testing.assert_allclose(masked_accuracy(y, z), 0.5)
    np.testing.assert_allclose(masked_accuracy(y, z, pad_id=None), 0.25)


# ------------------------------------------------------------ special_token_mae
def ref_special_mae(y_true, y_pred, start_id, end_id):
    out = np.zeros(y_true.shape[:2])
    for b in range(y_true.shape[0]):
        for t in range(y_true.shape[1]):
            true_c, pred_c = np.argmax(y_true[b, t]), np.argmax(y_pred[b, t])
            if true_c == pred_c and true_c in (start_id, end_id):
                continue
            out[b, t] = np.mean(np.abs(y_true[b, t] - y_pred[b, t]))
    return out


def probs_and_onehot(dtype, seed=0, shape=(B, T)):
    """One-hot labels and softmax probabilities, every probability > 0.01.

    Keeping probabilities away from 0 and the argmax away from ties keeps the
    finite differences (step ~1e-3) off the kinks of |.| and of the argmax.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=shape)
    logits = rng.uniform(-0.5, 0.5, size=shape + (C,))
    logits[0, :, 1] += 3.0  # start predicted everywhere in row 0
    labels[0, :2] = 1
    labels[1, -1] = 2
    logits[1, -1, 2] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return np.eye(C)[labels].astype(dtype), probs.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_token_mae_matches_loop(dtype):
    y_true, y_pred = probs_and_onehot(dtype)
    value = special_token_mae(y_true, y_pred, start_id=1, end_id=2)
    assert value.shape == (B, T)
    assert value.dtype == tf.as_dtype(dtype)
    expected = ref_special_mae(y_true, y_pred, 1, 2)
    np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)
    assert value[0, 0] == 0.0 and value[1, -1] == 0.0
    plain = keras.losses.mean_absolute_error(y_true, y_pred).numpy()
    forgiven = expected == 0
    np.testing.assert_allclose(value.numpy()[~forgiven], plain[~forgiven], rtol=1e-5)


def test_special_token_mae_gradient_matches_numerical():
    y_true, y_pred = probs_and_onehot(np.float64, seed=3, shape=(2, 4))
    assert_numerical_gradient(
        lambda p: special_token_mae(y_true, p, start_id=1, end_id=2), y_pred
    )
    _, grad = grads_of(
        lambda p: special_token_mae(y_true, p, start_id=1, end_id=2), y_pred
    )
    np.testing.assert_array_equal(grad.numpy()[0, 0], 0.0)


# ------------------------------------------------------------ end_token_class_weights
@pytest.mark.parametrize("pad_id", [0, None, -1])
def test_end_token_class_weights_matches_counting(pad_id):
    y, _ = batch(pad_id=0 if pad_id is None else pad_id, seed=4)
    y[:, 0] = 2
    weights = end_token_class_weights(y, C, end_id=2, pad_id=pad_id)
    assert isinstance(weights, np.ndarray) and weights.shape == (C,)
    np.testing.assert_allclose(weights, ref_end_weights(y, C, 2, pad_id))
    assert weights[2] != 1.0
    np.testing.assert_array_equal(np.delete(weights, 2), 1.0)


def test_end_token_class_weights_by_hand():
    y = np.array([[1, 3, 3, 3, 2, 0], [1, 4, 2, 0, 0, 0]])
    # counts without pad: 1 -> 2, 3 -> 3, 4 -> 1; end (2) -> 2; mean(2, 3, 1) = 2.
    weights = end_token_class_weights(y, C, end_id=2, pad_id=0)
    np.testing.assert_allclose(weights, [1, 1, 1.0, 1, 1])
    y = np.array([[1, 3, 3, 3, 3, 3, 3, 2, 0]])
    # mean(1, 6) = 3.5 over a single end token.
    np.testing.assert_allclose(
        end_token_class_weights(y, C, end_id=2, pad_id=0)[2], 3.5
    )
    # With pad counted (pad_id=None): mean(1, 6, 1) / 1.
    np.testing.assert_allclose(end_token_class_weights(y, C, end_id=2)[2], 8 / 3)


def test_end_token_class_weights_degenerate():
    no_end = np.array([[1, 3, 4, 0]])
    np.testing.assert_array_equal(end_token_class_weights(no_end, C, end_id=2), 1.0)
    only_end = np.array([[2, 2, 0]])
    np.testing.assert_array_equal(
        end_token_class_weights(only_end, C, end_id=2, pad_id=0), 1.0
    )
    np.testing.assert_array_equal(
        end_token_class_weights(np.zeros((0, 3)), C, end_id=2), 1.0
    )


# ------------------------------------------------------------ invalid parameters
@pytest.mark.parametrize(
    "fn",
    [
        masked_sparse_categorical_crossentropy,
        token_mean_crossentropy,
        mask_as_sample_weight_crossentropy,
        token_crossentropy,
    ],
)
def test_invalid_class_weights_raise(fn):
    y, z = batch()
    with pytest.raises(ValueError, match="class_weights.*length"):
        fn(y, z, class_weights=np.ones(C - 1))
    with pytest.raises(ValueError, match="class_weights.*non-negative"):
        fn(y, z, class_weights=[1, 1, -1, 1, 1])
    with pytest.raises(ValueError, match="class_weights.*non-negative"):
        fn(y, z, class_weights=[1, 1, np.nan, 1, 1])
    with pytest.raises(ValueError, match="class_weights.*length"):
        fn(y, z, class_weights=np.ones((C, 1)))
    with pytest.raises(ValueError, match="class_weights.*vector"):
        fn(y, z, class_weights=np.ones((2, 2, C)))


@pytest.mark.parametrize(
    "fn",
    [
        masked_sparse_categorical_crossentropy,
        token_mean_crossentropy,
        perplexity,
        masked_accuracy,
    ],
)
@pytest.mark.parametrize("pad_id", [C, 1.5, "0", True])
def test_invalid_pad_id_raises(fn, pad_id):
    y, z = batch()
    with pytest.raises(ValueError, match="pad_id"):
        fn(y, z, pad_id=pad_id)


def test_invalid_special_ids_raise():
    y_true, y_pred = probs_and_onehot(np.float32)
    with pytest.raises(ValueError, match="start_id"):
        special_token_mae(y_true, y_pred, start_id=-1, end_id=2)
    with pytest.raises(ValueError, match="end_id"):
        special_token_mae(y_true, y_pred, start_id=1, end_id=C)
    with pytest.raises(ValueError, match="end_id"):
        special_token_mae(y_true, y_pred, start_id=1, end_id=0.5)


def test_end_token_class_weights_invalid():
    y = np.array([[1, 2, 0]])
    with pytest.raises(ValueError, match="num_classes"):
        end_token_class_weights(y, 0, end_id=0)
    with pytest.raises(ValueError, match="end_id"):
        end_token_class_weights(y, C, end_id=C)
    with pytest.raises(ValueError, match="pad_id"):
        end_token_class_weights(y, C, end_id=2, pad_id=2)
    with pytest.raises(ValueError, match="pad_id"):
        end_token_class_weights(y, C, end_id=2, pad_id=C)
    with pytest.raises(ValueError, match="y_true"):
        end_token_class_weights(np.array([[1, 7]]), C, end_id=2)
    with pytest.raises(ValueError, match="y_true"):
        end_token_class_weights(np.array([[1.5, 2.0]]), C, end_id=2)


# ------------------------------------------------------------ tf.function
def test_everything_works_inside_tf_function():
    y, z = batch()
    y_true, y_pred = probs_and_onehot(np.float32)
    weights = np.linspace(0.5, 1.5, C)

    @tf.function
    def run(y, z, y_true, y_pred):
        return (
            masked_sparse_categorical_crossentropy(y, z, class_weights=weights),
            token_mean_crossentropy(y, z),
            mask_as_sample_weight_crossentropy(y, z),
            perplexity(y, z),
            masked_accuracy(y, z),
            special_token_mae(y_true, y_pred, start_id=1, end_id=2),
        )

    graph = run(tf.constant(y), tf.constant(z), y_true, y_pred)
    eager = (
        masked_sparse_categorical_crossentropy(y, z, class_weights=weights),
        token_mean_crossentropy(y, z),
        mask_as_sample_weight_crossentropy(y, z),
        perplexity(y, z),
        masked_accuracy(y, z),
        special_token_mae(y_true, y_pred, start_id=1, end_id=2),
    )
    for g, e in zip(graph, eager, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-6)


def test_tensor_pad_id_and_weights_in_tf_function_do_not_retrace():
    y, z = batch()

    @tf.function
    def run(z, pad_id, weights):
        return masked_sparse_categorical_crossentropy(
            y, z, pad_id=pad_id, class_weights=weights
        )

    for pad in (0, 3):
        weights = np.linspace(0.5, 1.5, C).astype(np.float32)
        np.testing.assert_allclose(
            run(tf.constant(z), tf.constant(pad), tf.constant(weights)),
            ref_per_sequence(y, z, pad, weights),
            rtol=1e-5,
        )
    assert run.experimental_get_tracing_count() == 1


# ------------------------------------------------------------ Keras class
def test_keras_class_equals_batch_mean_of_function():
    y, z = batch()
    weights = [1.0, 2.0, 0.5, 1.0, 1.0]
    loss = MaskedSparseCategoricalCrossentropy(pad_id=0, class_weights=weights)
    np.testing.assert_allclose(
        loss(y, z), np.mean(ref_per_sequence(y, z, 0, np.array(weights))), rtol=1e-5
    )
    per_sequence = MaskedSparseCategoricalCrossentropy(reduction=None)(y, z)
    np.testing.assert_allclose(per_sequence, ref_per_sequence(y, z), rtol=1e-5)


def test_keras_class_config_round_trip():
    loss = MaskedSparseCategoricalCrossentropy(
        pad_id=-1, class_weights=np.array([1.0, 2.0, 0.5]), name="seq"
    )
    config = loss.get_config()
    assert config["pad_id"] == -1
    assert config["class_weights"] == [1.0, 2.0, 0.5]
    assert isinstance(config["class_weights"], list)
    clone = MaskedSparseCategoricalCrossentropy.from_config(config)
    assert clone.get_config() == config
    serialized = keras.losses.serialize(loss)
    restored = keras.losses.deserialize(serialized)
    assert isinstance(restored, MaskedSparseCategoricalCrossentropy)
    assert restored.get_config() == config


def test_keras_class_invalid_parameters():
    with pytest.raises(ValueError, match="class_weights"):
        MaskedSparseCategoricalCrossentropy(class_weights=[1.0, -2.0])
    with pytest.raises(ValueError, match="pad_id"):
        MaskedSparseCategoricalCrossentropy(pad_id=0.5)
    with pytest.raises(ValueError, match="class_weights.*vector"):
        MaskedSparseCategoricalCrossentropy(class_weights=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="class_weights.*length"):
        MaskedSparseCategoricalCrossentropy(class_weights=[1.0, 2.0])(*batch())


def tiny_model(vocab=C, mask_zero=False):
    model = keras.Sequential(
        [
            keras.Input((T,), dtype="int32"),
            keras.layers.Embedding(vocab, 4, mask_zero=mask_zero),
            keras.layers.Dense(vocab),
        ]
    )
    return model


def test_compiled_model_saves_and_loads(tmp_path):
    y, _ = batch()
    x = np.clip(y, 1, None)
    weights = [1.0, 1.0, 3.0, 1.0, 0.5]
    model = tiny_model()
    model.compile(
        optimizer="adam",
        loss=MaskedSparseCategoricalCrossentropy(pad_id=0, class_weights=weights),
    )
    model.fit(x, y, epochs=1, batch_size=B, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, MaskedSparseCategoricalCrossentropy)
    assert loaded.loss.class_weights == weights and loaded.loss.pad_id == 0
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )
    expected = np.mean(ref_per_sequence(y, model.predict(x, verbose=0), 0, weights))
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), expected, rtol=1e-5)


def test_keras_mask_on_outputs_is_not_applied_twice():
    # B == T would let a [B, T] Keras mask broadcast silently against [B] losses.
    rng = np.random.default_rng(2)
    y = rng.integers(1, C, size=(T, T)).astype(np.int32)
    for row, length in enumerate(range(T, 0, -1)):
        y[row, length:] = 0
    model = tiny_model(mask_zero=True)
    model.compile(loss=MaskedSparseCategoricalCrossentropy(pad_id=0))
    logits = model.predict(y, verbose=0)
    expected = np.mean(ref_per_sequence(y, logits, 0))
    np.testing.assert_allclose(model.evaluate(y, y, verbose=0), expected, rtol=1e-5)


def test_keras_class_weight_in_fit_misreads_sequence_targets():
    """Documents why class_weights exist: Keras 3 fit(class_weight=) on [B, T]."""
    y, z = batch(all_pad_row=False)
    model = keras.Sequential(
        [
            keras.Input((T, C)),
            keras.layers.Dense(C, use_bias=False, kernel_initializer="identity"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss=MaskedSparseCategoricalCrossentropy(pad_id=0),
    )
    class_weight = {c: float(c + 1) for c in range(T)}
    history = model.fit(
        z, y, class_weight=class_weight, batch_size=B, epochs=1, verbose=0
    )
    # Keras takes the argmax over *time* as each sequence's class.
    per_sequence_weight = np.array([class_weight[t] for t in np.argmax(y, axis=-1)])
    expected = np.mean(per_sequence_weight * ref_per_sequence(y, z))
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


# ------------------------------------------------------------ properties
@st.composite
def sequences(draw):
    b = draw(st.integers(1, 4))
    t = draw(st.integers(1, 6))
    c = draw(st.integers(2, 6))
    pad_id = draw(st.sampled_from([0, c - 1, -1, None]))
    labels = draw(st.lists(st.integers(0, c - 1), min_size=b * t, max_size=b * t))
    pads = draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))
    y = np.array(labels).reshape(b, t)
    if pad_id is not None:
        y = np.where(np.array(pads).reshape(b, t), pad_id, y)
    z = draw(
        st.lists(
            st.floats(-20, 20, width=32), min_size=b * t * c, max_size=b * t * c
        )
    )
    weights = draw(
        st.none()
        | st.lists(st.floats(0, 10, width=32), min_size=c, max_size=c).map(np.array)
    )
    return y, np.array(z, np.float32).reshape(b, t, c), pad_id, weights


@settings(max_examples=30, deadline=None)
@given(sequences())
def test_losses_and_gradients_are_finite(data):
    y, z, pad_id, weights = data
    for fn in (
        lambda v: masked_sparse_categorical_crossentropy(
            y, v, pad_id=pad_id, class_weights=weights
        ),
        lambda v: token_mean_crossentropy(y, v, pad_id=pad_id, class_weights=weights),
        lambda v: mask_as_sample_weight_crossentropy(
            y, v, pad_id=pad_id, class_weights=weights
        ),
        lambda v: perplexity(y, v, pad_id=pad_id),
    ):
        value, grad = grads_of(fn, z)
        assert np.all(np.isfinite(value.numpy()))
        assert np.all(np.isfinite(grad.numpy()))
    accuracy = masked_accuracy(y, z, pad_id=pad_id).numpy()
    assert 0.0 <= accuracy <= 1.0


@settings(max_examples=30, deadline=None)
@given(sequences(), st.integers(0, 5), st.integers(0, 5))
def test_special_token_mae_is_finite_and_bounded(data, start_id, end_id):
    y, z, _, _ = data
    c = z.shape[-1]
    start_id, end_id = start_id % c, end_id % c
    y_true = np.eye(c, dtype=np.float32)[np.clip(y, 0, c - 1)]
    y_pred = tf.nn.softmax(z)
    value, grad = grads_of(
        lambda p: special_token_mae(y_true, p, start_id=start_id, end_id=end_id),
        y_pred.numpy(),
    )
    assert np.all(np.isfinite(value.numpy())) and np.all(np.isfinite(grad.numpy()))
    assert np.all(value.numpy() >= 0) and np.all(value.numpy() <= 2.0 / c + 1e-6)


def test_module_formulas_are_latex_strings():
    assert sequence.FORMULA and "\\frac" in sequence.FORMULA
    assert sequence.FORMULAS["per_sequence_mean"] == sequence.FORMULA
    assert {"token_mean", "sample_weight_mask", "end_token_weight"} <= set(
        sequence.FORMULAS
    )
