import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from lossviz._tf import tf
from lossviz.triplet import (
    FORMULA,
    FORMULAS,
    CosineTripletLoss,
    CosineTripletLossLayer,
    IdentityLoss,
    MaskedCrossEntropyLayer,
    MaskedMeanPooling,
    MaskedPerplexity,
    build_masked_lm_model,
    build_triplet_models,
    cosine_gap,
    cosine_similarity,
    cosine_triplet_loss,
)

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------- references


def np_cosine(u, v):
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return float(np.dot(u, v) / (nu * nv))


def np_triplet(anchor, positive, negative, margin):
    """Plain loop over every leading index."""
    anchor = np.asarray(anchor, np.float64)
    positive = np.asarray(positive, np.float64)
    negative = np.asarray(negative, np.float64)
    out = np.zeros(anchor.shape[:-1])
    for index in np.ndindex(*anchor.shape[:-1]):
        gap = (
            margin
            + np_cosine(anchor[index], negative[index])
            - np_cosine(anchor[index], positive[index])
        )
        out[index] = max(0.0, gap)
    return out


def np_token_ce(y_true, logits, pad_id):
    """Per-token cross-entropy with a plain loop and a stable log-sum-exp."""
    logits = np.asarray(logits, np.float64)
    out = np.zeros(y_true.shape)
    for b, t in np.ndindex(*y_true.shape):
        if y_true[b, t] == pad_id:
            continue
        z = logits[b, t]
        log_sum = z.max() + math.log(np.exp(z - z.max()).sum())
        out[b, t] = log_sum - z[y_true[b, t]]
    return out


def np_masked_stats(y_true, logits, pad_id):
    """Token-mean cross-entropy, perplexity and accuracy over non-pad tokens."""
    mask = y_true != pad_id
    ce = np_token_ce(y_true, logits, pad_id)
    mean_ce = ce[mask].mean() if mask.any() else 0.0
    accuracy = (np.argmax(logits, -1) == y_true)[mask].mean()
    return mean_ce, math.exp(mean_ce), accuracy


def random_triplets(rng, shape, dtype):
    return [rng.normal(size=shape).astype(dtype) for _ in range(3)]


# ------------------------------------------------------- cosine_triplet_loss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 5), (1, 1)])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.7, 2.5])
def test_triplet_matches_numpy_loop(dtype, shape, margin):
    a, p, n = random_triplets(np.random.default_rng(1), shape, dtype)
    loss = cosine_triplet_loss(a, p, n, margin=margin)
    assert loss.dtype == tf.as_dtype(dtype)
    assert loss.shape == shape[:-1]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        loss.numpy(), np_triplet(a, p, n, margin), rtol=rtol, atol=rtol
    )


def test_cosine_agrees_with_keras_cosine_similarity():
    a, p, n = random_triplets(np.random.default_rng(2), (8, 5), np.float64)
    # With margin 2 no triplet is clipped: loss = 2 + cos(a, n) - cos(a, p).
    keras_cos = keras.losses.cosine_similarity  # returns -cos
    expected = 2.0 - keras_cos(a, n).numpy() + keras_cos(a, p).numpy()
    np.testing.assert_allclose(
        cosine_triplet_loss(a, p, n, margin=2.0).numpy(), expected, rtol=1e-6
    )


def test_scale_invariance_and_extreme_magnitudes():
    a, p, n = random_triplets(np.random.default_rng(3), (5, 6), np.float32)
    base = cosine_triplet_loss(a, p, n, margin=0.3).numpy()
    for scale in (1e-30, 1e-12, 1e12, 1e30):
        scaled = cosine_triplet_loss(
            a * np.float32(scale), p, n * np.float32(scale), margin=0.3
        )
        np.testing.assert_allclose(scaled.numpy(), base, rtol=1e-5, atol=1e-6)


def test_float32_float64_mixed_inputs_give_float64():
    a, p, n = random_triplets(np.random.default_rng(4), (3, 2), np.float32)
    loss = cosine_triplet_loss(a, p.astype(np.float64), n)
    assert loss.dtype == tf.float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_vectors_have_cosine_zero_and_finite_gradients(dtype):
    a = np.array([[0, 0, 0], [1, 2, 3], [1, 0, 0], [0, 0, 0]], dtype)
    p = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]], dtype)
    n = np.array([[0, 1, 0], [3, 2, 1], [0, 0, 0], [0, 0, 0]], dtype)
    tensors = [tf.constant(x) for x in (a, p, n)]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = cosine_triplet_loss(*tensors, margin=0.2)
    grads = tape.gradient(loss, tensors)
    np.testing.assert_allclose(loss.numpy(), np_triplet(a, p, n, 0.2), atol=1e-6)
    # row 0: both cosines 0 -> margin; row 3 all zero -> margin as well
    np.testing.assert_allclose(loss.numpy()[[0, 3]], [0.2, 0.2], rtol=1e-6)
    for grad in grads:
        assert np.all(np.isfinite(grad.numpy()))


def test_zero_anchor_gradient_points_toward_the_positive():
    """The documented convention: the zero vector's norm is taken as 1."""
    a = tf.zeros((1, 3), tf.float64)
    p = tf.constant([[3.0, 4.0, 0.0]], tf.float64)
    n = tf.constant([[0.0, 0.0, 2.0]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(a)
        loss = cosine_triplet_loss(a, p, n, margin=0.5)
    np.testing.assert_allclose(
        tape.gradient(loss, a).numpy(), [[-0.6, -0.8, 1.0]], rtol=1e-12
    )


def test_gradient_matches_numerical_gradient_float64():
    rng = np.random.default_rng(5)
    a, p, n = random_triplets(rng, (4, 3), np.float64)
    # Keep every triplet active and away from the kink at loss == 0.
    margin = 2.5

    def f(anchor, positive, negative):
        return cosine_triplet_loss(anchor, positive, negative, margin=margin)

    theoretical, numerical = tf.test.compute_gradient(
        f, [tf.constant(a), tf.constant(p), tf.constant(n)]
    )
    for t, m in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, m, rtol=1e-5, atol=1e-6)


def test_inactive_triplets_carry_exactly_zero_gradient():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(6, 4))
    p = a + 0.01 * rng.normal(size=(6, 4))  # positives close to the anchor
    n = -a + 0.01 * rng.normal(size=(6, 4))  # negatives opposite
    p[:3], n[:3] = n[:3].copy(), p[:3].copy()  # first three become hard
    tensors = [tf.constant(x) for x in (a, p, n)]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = cosine_triplet_loss(*tensors, margin=0.2)
    grads = [g.numpy() for g in tape.gradient(loss, tensors)]
    active = loss.numpy() > 0
    np.testing.assert_array_equal(active, [True] * 3 + [False] * 3)
    for grad in grads:
        assert np.all(grad[~active] == 0.0)
        assert np.all(np.linalg.norm(grad[active], axis=-1) > 0)


@pytest.mark.parametrize("margin", [-0.1, -1e-9, float("nan"), "0.1", None])
def test_invalid_margin_raises_naming_margin(margin):
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="`margin`"):
        cosine_triplet_loss(a, a, a, margin=margin)
    with pytest.raises(ValueError, match="`margin`"):
        CosineTripletLoss(margin=margin)
    with pytest.raises(ValueError, match="`margin`"):
        CosineTripletLossLayer(margin=margin)
    with pytest.raises(ValueError, match="`margin`"):
        build_triplet_models(10, margin=margin)


def test_works_in_tf_function_without_retracing_for_margin():
    a, p, n = random_triplets(np.random.default_rng(7), (5, 4), np.float32)

    @tf.function
    def f(anchor, positive, negative, margin):
        return cosine_triplet_loss(anchor, positive, negative, margin=margin)

    for margin in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(
            f(a, p, n, tf.constant(margin)).numpy(),
            np_triplet(a, p, n, margin),
            rtol=1e-5,
            atol=1e-6,
        )
    assert f.experimental_get_tracing_count() == 1


vectors = hnp.arrays(
    np.float32,
    (3, 2, 4),
    elements=st.one_of(
        st.just(0.0),
        st.floats(-(2.0**100), 2.0**100, width=32, allow_subnormal=False),
    ),
)


@settings(max_examples=30, deadline=None)
@given(vectors, st.floats(0.0, 3.0))
def test_property_loss_and_gradient_finite(stacked, margin):
    tensors = [tf.constant(x) for x in stacked]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = cosine_triplet_loss(*tensors, margin=margin)
    assert np.all(np.isfinite(loss.numpy()))
    assert np.all(loss.numpy() >= 0)
    assert np.all(loss.numpy() <= margin + 2 + 1e-5)
    for grad in tape.gradient(loss, tensors):
        assert np.all(np.isfinite(grad.numpy()))


# ------------------------------------------------------ Keras loss and layer


def test_cosine_triplet_loss_class_on_stacked_layout():
    a, p, n = random_triplets(np.random.default_rng(8), (6, 4), np.float32)
    y_pred = np.stack([a, p, n], axis=1)
    loss = CosineTripletLoss(margin=0.4)
    np.testing.assert_allclose(
        loss(np.zeros(6), y_pred).numpy(), np_triplet(a, p, n, 0.4).mean(), rtol=1e-5
    )
    per_sample = CosineTripletLoss(margin=0.4, reduction=None)(np.zeros(6), y_pred)
    np.testing.assert_allclose(per_sample, np_triplet(a, p, n, 0.4), rtol=1e-5)
    with pytest.raises(ValueError, match="y_pred"):
        loss(np.zeros(6), np.concatenate([a, p, n], axis=-1))


def test_loss_classes_config_round_trip():
    loss = CosineTripletLoss(margin=0.25, reduction="sum", name="t")
    config = loss.get_config()
    assert config["margin"] == 0.25
    clone = CosineTripletLoss.from_config(config)
    assert clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, CosineTripletLoss) and restored.margin == 0.25
    identity = keras.losses.deserialize(keras.losses.serialize(IdentityLoss()))
    assert isinstance(identity, IdentityLoss)


def test_identity_loss_returns_y_pred():
    values = np.array([0.5, 1.5, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(IdentityLoss()(np.zeros(4), values), values.mean())
    np.testing.assert_allclose(
        IdentityLoss(reduction=None)(np.zeros(4), values), values
    )


def test_triplet_layer_outputs_per_sample_loss_and_config():
    a, p, n = random_triplets(np.random.default_rng(9), (5, 3), np.float32)
    layer = CosineTripletLossLayer(margin=0.3)
    np.testing.assert_allclose(
        layer([a, p, n]).numpy(), np_triplet(a, p, n, 0.3), rtol=1e-5, atol=1e-6
    )
    assert layer.compute_output_shape([(None, 3)] * 3) == (None,)
    clone = CosineTripletLossLayer.from_config(layer.get_config())
    assert clone.margin == 0.3


def test_compiled_model_with_cosine_triplet_loss_saves_and_loads(tmp_path):
    inputs = keras.Input(shape=(4,))
    stacked = keras.layers.Reshape((3, 2))(keras.layers.Dense(6)(inputs))
    model = keras.Model(inputs, stacked)
    model.compile(optimizer="sgd", loss=CosineTripletLoss(margin=0.3))
    x = np.random.default_rng(10).normal(size=(8, 4)).astype(np.float32)
    model.fit(x, np.zeros(8), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, CosineTripletLoss)
    assert loaded.loss.margin == 0.3
    np.testing.assert_allclose(
        loaded.evaluate(x, np.zeros(8), verbose=0),
        model.evaluate(x, np.zeros(8), verbose=0),
        rtol=1e-6,
    )


def test_masked_mean_pooling_all_padding_row_is_zero_with_zero_gradient():
    x = tf.constant(np.random.default_rng(11).normal(size=(3, 4, 2)), tf.float32)
    mask = tf.constant([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]) > 0
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled = MaskedMeanPooling()(x, mask=mask)
    grad = tape.gradient(pooled, x).numpy()
    expected = [x.numpy()[0, :2].mean(0), np.zeros(2), x.numpy()[2].mean(0)]
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-6)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[1] == 0) and np.all(grad[0, 2:] == 0)


# ------------------------------------------------- triplet retrieval training


def retrieval_data(rng, count, topics=4, words_per_topic=6, length=5):
    """Questions and answers are bags of words from one topic; 0 is padding."""

    def sentence(topic):
        words = 1 + topic * words_per_topic + rng.integers(0, words_per_topic, length)
        words[rng.integers(2, length + 1) :] = 0  # variable length, padded
        return words

    topic = rng.integers(0, topics, count)
    other = (topic + rng.integers(1, topics, count)) % topics
    question = np.stack([sentence(t) for t in topic])
    positive = np.stack([sentence(t) for t in topic])
    negative = np.stack([sentence(t) for t in other])
    vocab_size = 1 + topics * words_per_topic
    return vocab_size, [question, positive, negative]


def ranking_accuracy(question_encoder, answer_encoder, data):
    """Share of triplets whose right answer has the higher cosine (numpy)."""
    q = question_encoder.predict(data[0], verbose=0)
    pos = answer_encoder.predict(data[1], verbose=0)
    neg = answer_encoder.predict(data[2], verbose=0)
    cos_pos = np.array([np_cosine(x, y) for x, y in zip(q, pos, strict=True)])
    cos_neg = np.array([np_cosine(x, y) for x, y in zip(q, neg, strict=True)])
    return float(np.mean(cos_pos > cos_neg))


def test_triplet_models_learn_retrieval_and_save_load(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(12)
    vocab_size, train = retrieval_data(rng, 256)
    _, test = retrieval_data(rng, 128)
    model, question_encoder, answer_encoder = build_triplet_models(
        vocab_size, embed_dim=8, max_len=5, margin=0.2
    )
    assert model.output_shape == (None,)
    assert question_encoder.output_shape == (None, 8)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=IdentityLoss())
    before = ranking_accuracy(question_encoder, answer_encoder, test)
    history = model.fit(train, np.zeros(256), batch_size=64, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    after = ranking_accuracy(question_encoder, answer_encoder, test)
    assert after >= 0.95 and after > before

    # The model output is exactly the pure loss on the encoders' embeddings.
    per_sample = model.predict(test, verbose=0)
    expected = np_triplet(
        question_encoder.predict(test[0], verbose=0),
        answer_encoder.predict(test[1], verbose=0),
        answer_encoder.predict(test[2], verbose=0),
        0.2,
    )
    np.testing.assert_allclose(per_sample, expected, rtol=1e-4, atol=1e-5)

    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, IdentityLoss)
    np.testing.assert_allclose(
        loaded.predict(test, verbose=0), per_sample, rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        loaded.get_layer("question_encoder").predict(test[0], verbose=0),
        question_encoder.predict(test[0], verbose=0),
        rtol=1e-6,
    )
    assert loaded.get_layer("triplet_loss").margin == 0.2


# ------------------------------------------------------- masked cross-entropy


@pytest.mark.parametrize("pad_id", [0, -100])
def test_masked_layer_loss_matches_numpy_with_a_sentinel_pad_id(pad_id):
    # The pad id need not be a class (-100, as PyTorch's ignore_index).
    rng = np.random.default_rng(13)
    logits = (3 * rng.normal(size=(3, 5, 4))).astype(np.float32)
    y_true = rng.integers(0, 4, (3, 5))
    y_true[0, 3:] = pad_id
    y_true[2, :] = pad_id
    layer = MaskedCrossEntropyLayer(pad_id=pad_id)
    layer([y_true, logits])
    mean_ce, ppl, accuracy = np_masked_stats(y_true, logits, pad_id)
    np.testing.assert_allclose(float(layer.losses[0]), mean_ce, rtol=1e-5)
    np.testing.assert_allclose(float(layer.perplexity.result()), ppl, rtol=1e-5)
    np.testing.assert_allclose(
        float(layer.masked_accuracy.result()), accuracy, rtol=1e-6
    )


def test_masked_layer_rejects_a_pad_id_above_the_classes():
    layer = MaskedCrossEntropyLayer(pad_id=7)
    with pytest.raises(ValueError, match="`pad_id`"):
        layer([np.ones((2, 3), np.int32), np.zeros((2, 3, 4), np.float32)])


def added_loss(y_true, logits, pad_id=0):
    layer = MaskedCrossEntropyLayer(pad_id=pad_id, dtype="float64")
    layer([y_true, logits])
    return layer.losses[0]


def test_masked_layer_loss_gradient_matches_numerical_float64():
    rng = np.random.default_rng(14)
    y_true = np.array([[1, 2, 0], [0, 0, 0]])
    logits = tf.constant(rng.normal(size=(2, 3, 4)))
    (theoretical,), (numerical,) = tf.test.compute_gradient(
        lambda z: added_loss(y_true, z), [logits]
    )
    np.testing.assert_allclose(theoretical, numerical, rtol=1e-5, atol=1e-6)


def test_masked_layer_ignores_infinite_logits_under_padding():
    # Garbage under padding never reaches the cross-entropy: neither its value
    # nor its gradient sees the Inf (a single tf.where after the op would give
    # a NaN gradient).
    rng = np.random.default_rng(15)
    y_true = np.array([[1, 2, 0], [3, 0, 0]])
    clean = rng.normal(size=(2, 3, 4))
    dirty = clean.copy()
    dirty[y_true == 0] = np.inf
    logits = tf.constant(dirty)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = added_loss(y_true, logits)
    grad = tape.gradient(loss, logits).numpy()
    np.testing.assert_allclose(float(loss), float(added_loss(y_true, clean)))
    assert np.all(np.isfinite(grad))
    assert np.all(grad[y_true == 0] == 0)


def test_masked_layer_adds_numpy_loss_and_tracks_metrics():
    rng = np.random.default_rng(15)
    logits = (2 * rng.normal(size=(4, 6, 5))).astype(np.float32)
    y_true = rng.integers(1, 5, (4, 6))
    y_true[1, 2:] = 0
    y_true[3, :] = 0
    layer = MaskedCrossEntropyLayer(pad_id=0)
    output = layer([y_true, logits])
    np.testing.assert_array_equal(output.numpy(), logits)
    mean_ce, ppl, accuracy = np_masked_stats(y_true, logits, 0)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(layer.losses[0].numpy(), mean_ce, rtol=1e-5)
    results = {m.name: float(m.result()) for m in layer.metrics}
    assert set(results) == {"perplexity", "masked_accuracy"}
    np.testing.assert_allclose(results["perplexity"], ppl, rtol=1e-5)
    np.testing.assert_allclose(results["masked_accuracy"], accuracy, rtol=1e-6)


def test_masked_layer_all_padding_gives_zero_loss_and_zero_gradient():
    logits = tf.constant(np.random.default_rng(16).normal(size=(2, 3, 4)), tf.float32)
    layer = MaskedCrossEntropyLayer(pad_id=0)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        layer([np.zeros((2, 3), np.int32), logits])
        loss = layer.losses[0]
    grad = tape.gradient(loss, logits).numpy()
    assert float(loss) == 0.0
    assert np.all(grad == 0)
    assert float(layer.perplexity.result()) == 1.0


def test_masked_layer_and_metric_config_round_trip():
    layer = MaskedCrossEntropyLayer(pad_id=3, name="ce")
    clone = MaskedCrossEntropyLayer.from_config(layer.get_config())
    assert clone.pad_id == 3 and clone.name == "ce"
    with pytest.raises(ValueError, match="`pad_id`"):
        MaskedCrossEntropyLayer(pad_id=0.5)
    metric = MaskedPerplexity.from_config(MaskedPerplexity(name="p").get_config())
    assert metric.name == "p"


def lm_data(rng, count, vocab_size, length):
    """Counting sequences: the next token is the current one plus one."""
    start = rng.integers(1, vocab_size - length, count)
    tokens = start[:, None] + np.arange(length)[None, :]
    targets = tokens + 1
    lengths = rng.integers(2, length + 1, count)
    for row, keep in enumerate(lengths):
        tokens[row, keep:] = 0
        targets[row, keep:] = 0
    return tokens.astype(np.int32), targets.astype(np.int32)


def test_masked_lm_model_reports_metrics_matching_numpy_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(17)
    vocab_size, length = 16, 6
    tokens, targets = lm_data(rng, 128, vocab_size, length)
    training_model, inference_model = build_masked_lm_model(
        vocab_size, embed_dim=8, hidden_units=16, max_len=length
    )
    training_model.compile(optimizer=keras.optimizers.Adam(0.03))
    history = training_model.fit(
        [tokens, targets], batch_size=32, epochs=6, verbose=0
    ).history
    assert {"loss", "perplexity", "masked_accuracy"} <= set(history)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["masked_accuracy"][-1] > 0.8

    # evaluate() over several batches equals numpy over the whole set: the
    # perplexity is exp of the token mean, the accuracy a token share.
    logits = inference_model.predict(tokens, verbose=0)
    mean_ce, ppl, accuracy = np_masked_stats(targets, logits, 0)
    result = training_model.evaluate(
        [tokens, targets], batch_size=40, verbose=0, return_dict=True
    )
    np.testing.assert_allclose(result["perplexity"], ppl, rtol=1e-4)
    np.testing.assert_allclose(result["masked_accuracy"], accuracy, rtol=1e-6)
    one_batch = training_model.evaluate(
        [tokens, targets], batch_size=128, verbose=0, return_dict=True
    )
    np.testing.assert_allclose(one_batch["loss"], mean_ce, rtol=1e-4)

    training_model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    loaded_result = loaded.evaluate(
        [tokens, targets], batch_size=40, verbose=0, return_dict=True
    )
    for name in ("loss", "perplexity", "masked_accuracy"):
        np.testing.assert_allclose(loaded_result[name], result[name], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"vocab_size": 1}, "vocab_size"),
        ({"vocab_size": 10, "embed_dim": 0}, "embed_dim"),
        ({"vocab_size": 10, "hidden_units": 2.5}, "hidden_units"),
        ({"vocab_size": 10, "max_len": 0}, "max_len"),
        ({"vocab_size": 10, "pad_id": 10}, "pad_id"),
    ],
)
def test_masked_lm_builder_checks_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        build_masked_lm_model(**kwargs)


# ------------------------------------------------- helpers the page relies on


@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_similarity_and_gap_match_sklearn(dtype):
    a, p, n = random_triplets(np.random.default_rng(18), (7, 5), dtype)
    n[2] = 0.0  # scikit-learn also gives 0 for a zero vector
    expected_pos = np.diag(sk_cosine(a, p))
    expected_neg = np.diag(sk_cosine(a, n))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    cos = cosine_similarity(a, p)
    assert cos.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(cos.numpy(), expected_pos, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(
        cosine_gap(a, p, n).numpy(), expected_pos - expected_neg, rtol=rtol, atol=rtol
    )
    assert cosine_similarity(a, n).numpy()[2] == 0.0


def test_formulas_are_latex_strings():
    assert FORMULAS["cosine_triplet"] == FORMULA
    assert {"cosine", "masked_cross_entropy", "perplexity"} <= set(FORMULAS)
    assert all(isinstance(v, str) and v for v in FORMULAS.values())
