"""Losses as layers: a cosine triplet loss and a masked cross-entropy.

Some losses do not fit ``loss(y_true, y_pred)``: a triplet loss needs three
embeddings that come from three inputs, and a sequence loss may need targets
the model sees as an input. Two Keras 3 patterns cover them:

- **The loss is the output.** ``CosineTripletLossLayer`` outputs the
  per-sample loss; the training model is compiled with ``IdentityLoss()``,
  whose value is ``y_pred`` itself (``y_true`` is ignored, pass zeros). The
  question and answer encoders are separate models sharing the weights, used
  for inference (``build_triplet_models``).
- **The loss is added from inside a layer.** ``MaskedCrossEntropyLayer`` calls
  ``self.add_loss`` in ``call`` and updates metric objects it owns, so
  ``fit`` reports ``loss``, ``perplexity`` and ``masked_accuracy``
  (``build_masked_lm_model``). Keras 3 removed ``Model.add_loss`` on
  functional models, ``add_metric`` and ``metrics_tensors``; ``Layer.add_loss``
  inside ``call`` and metrics owned by a layer are what remains.

Every layer and loss here is registered with
``keras.saving.register_keras_serializable(package="lossviz")``, so models
that use them save with ``model.save("x.keras")`` and load with
``keras.saving.load_model`` without ``custom_objects``.

References:
  Tan, Santos, Xiang, Zhou, "LSTM-based Deep Learning Models for Non-factoid
  Answer Selection", 2015 (the cosine triplet/hinge loss for QA retrieval).
  Keras guide "Making new layers and models via subclassing" (add_loss and
  metrics owned by layers in Keras 3).
"""

from __future__ import annotations

import keras

from lossviz import sequence
from lossviz._common import as_float, check_number
from lossviz._tf import tf

FORMULA = (
    r"\mathcal{L}(q, a^+, a^-) = \max\bigl(0,\; m + \cos(q, a^-) - \cos(q, a^+)\bigr)"
)

FORMULAS = {
    "cosine_triplet": FORMULA,
    "cosine": (
        r"\cos(u, v) = \frac{u \cdot v}{\lVert u \rVert\,\lVert v \rVert},"
        r"\qquad \cos(0, v) := 0"
    ),
    "masked_cross_entropy": (
        r"\mathcal{L} = \frac{\sum_{b,t} m_{bt}\,\bigl(-\log \mathrm{softmax}"
        r"(z_{bt})_{y_{bt}}\bigr)}{\sum_{b,t} m_{bt}},"
        r"\qquad m_{bt} = [\,y_{bt} \neq \text{pad}\,]"
    ),
    "perplexity": r"\mathrm{PPL} = \exp(\mathcal{L})",
    "masked_accuracy": (
        r"\mathrm{acc} = \frac{\sum_{b,t} m_{bt}\,[\arg\max_c z_{btc} = y_{bt}]}"
        r"{\sum_{b,t} m_{bt}}"
    ),
}


def _common_float(*values):
    """Converts every value to float; all float64 if any of them is float64."""
    tensors = [as_float(v) for v in values]
    dtype = tf.float64 if any(t.dtype == tf.float64 for t in tensors) else tf.float32
    return [tf.cast(t, dtype) for t in tensors]


def _unit(x):
    """``x / ||x||`` along the last axis; a zero vector stays zero.

    Cosine does not change when a vector is scaled, so ``x`` is first divided
    by its largest absolute entry (held constant for the gradient, which is
    exact because of that invariance): the squared norm then lies in
    ``[1, D]`` and neither overflows nor underflows. A zero vector keeps a
    squared norm of 0, which is replaced by 1 *before* the square root, so
    neither the value nor the gradient sees ``sqrt(0)``.
    """
    scale = tf.stop_gradient(tf.reduce_max(tf.abs(x), axis=-1, keepdims=True))
    scaled = x / tf.where(scale > 0, scale, tf.ones_like(scale))
    squared_norm = tf.reduce_sum(tf.square(scaled), axis=-1, keepdims=True)
    # May be 0! (a zero vector): divide by 1 instead, giving the zero vector.
    safe = tf.where(squared_norm > 0, squared_norm, tf.ones_like(squared_norm))
    return scaled / tf.sqrt(safe)


def _cosine(u, v):
    return tf.reduce_sum(_unit(u) * _unit(v), axis=-1)


def cosine_similarity(u, v):
    """Cosine similarity along the last axis; 0 where either vector is zero.

    ``cos(u, v) = u . v / (||u|| ||v||)``, computed on ``u / max|u|`` (cosine
    does not change with scale), so huge or tiny vectors neither overflow nor
    underflow.

    Args:
      u: float ``[batch, dim]`` (any number of leading axes).
      v: float ``[batch, dim]``.

    Returns:
      ``[batch]`` in ``[-1, 1]``; float32, or float64 if either input is.
      A zero vector gives 0, with a finite gradient (see
      ``cosine_triplet_loss``).
    """
    u, v = _common_float(u, v)
    return _cosine(u, v)


def cosine_gap(anchor, positive, negative):
    """How much nearer the positive is: ``cos(anchor, pos) - cos(anchor, neg)``.

    ``cosine_triplet_loss = max(0, margin - cosine_gap)``: a triplet is active
    (loss > 0, gradient non-zero) exactly when its gap is below the margin.

    Args:
      anchor, positive, negative: float ``[batch, dim]`` each.

    Returns:
      ``[batch]`` in ``[-2, 2]``, float32 (float64 if any input is).
    """
    anchor, positive, negative = _common_float(anchor, positive, negative)
    return _cosine(anchor, positive) - _cosine(anchor, negative)


def cosine_triplet_loss(anchor, positive, negative, *, margin=0.1):
    """Cosine triplet (hinge) loss per sample.

    ``loss = max(0, margin + cos(anchor, negative) - cos(anchor, positive))``

    The loss is zero (an *inactive* triplet, with an exactly zero gradient)
    once the positive is more similar to the anchor than the negative by at
    least ``margin``.

    Args:
      anchor: float ``[batch, dim]`` (any number of leading axes), e.g. the
        question embedding.
      positive: float ``[batch, dim]``, the right answer's embedding.
      negative: float ``[batch, dim]``, a wrong answer's embedding.
      margin: number (or scalar tensor) ``>= 0``. Cosines lie in ``[-1, 1]``,
        so ``margin > 2`` keeps every triplet active.

    Returns:
      ``[batch]`` float32 (float64 if any input is float64), in
      ``[0, margin + 2]``.

    Edge cases:
      A zero vector has cosine 0 with anything (no NaN); its gradient is
      finite: that of the cosine with the zero vector's norm taken as 1, i.e.
      the other vector's direction. The gradient of the cosine grows as
      ``1 / ||x||`` near zero, as the true gradient does. At exactly
      ``loss == 0`` the gradient is 0 (the subgradient TensorFlow gives ``relu``).

    Raises:
      ValueError: ``margin < 0``.

    References:
      Tan et al., "LSTM-based Deep Learning Models for Non-factoid Answer
      Selection", 2015.
    """
    check_number("margin", margin, low=0)
    anchor, positive, negative = _common_float(anchor, positive, negative)
    # as_float with a dtype converts a Python float straight to float64
    # (tf.cast would round it through float32 first).
    margin = as_float(margin, dtype=anchor.dtype)
    gap = margin + _cosine(anchor, negative) - _cosine(anchor, positive)
    return tf.nn.relu(gap)


def _split_triplet(y_pred):
    if y_pred.shape.rank is not None and y_pred.shape.rank < 3:
        raise ValueError(
            "`y_pred` must be [batch, 3, dim] (anchor, positive, negative "
            f"stacked on axis 1), got shape {y_pred.shape}."
        )
    if y_pred.shape[-2] is not None and y_pred.shape[-2] != 3:
        raise ValueError(
            "`y_pred` must be [batch, 3, dim] (anchor, positive, negative "
            f"stacked on axis 1), got shape {y_pred.shape}."
        )
    return y_pred[..., 0, :], y_pred[..., 1, :], y_pred[..., 2, :]


@keras.saving.register_keras_serializable(package="lossviz")
class CosineTripletLoss(keras.losses.Loss):
    """Keras loss: ``cosine_triplet_loss`` over three stacked embeddings.

    Layout: ``y_pred`` is ``[batch, 3, dim]`` holding anchor, positive and
    negative on axis 1, as ``keras.ops.stack([q, a_pos, a_neg], axis=1)``
    gives. ``y_true`` is ignored (pass zeros of shape ``[batch]``).

    Args:
      margin: number ``>= 0``.
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        margin=0.1,
        reduction="sum_over_batch_size",
        name="cosine_triplet_loss",
        dtype=None,
    ):
        check_number("margin", margin, low=0)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        del y_true  # the three embeddings carry everything
        anchor, positive, negative = _split_triplet(tf.convert_to_tensor(y_pred))
        return cosine_triplet_loss(anchor, positive, negative, margin=self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="lossviz")
class IdentityLoss(keras.losses.Loss):
    """Keras loss whose value is ``y_pred``: for models that output their loss.

    ``model.compile(loss=IdentityLoss())`` on a model whose output is a
    per-sample loss (e.g. ``CosineTripletLossLayer``) trains on that output;
    with the default reduction the batch mean is minimised. ``y_true`` is
    ignored; pass zeros of shape ``[batch]`` to ``fit``.
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="identity_loss", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        del y_true
        return y_pred


@keras.saving.register_keras_serializable(package="lossviz")
class CosineTripletLossLayer(keras.layers.Layer):
    """Layer that outputs the per-sample cosine triplet loss.

    Called as ``layer([anchor, positive, negative])`` with three
    ``[batch, dim]`` tensors; returns ``[batch]``. Train the model that ends
    in this layer with ``compile(loss=IdentityLoss())``.

    Args:
      margin: number ``>= 0``.
      **kwargs: as for ``keras.layers.Layer`` (``name``, ``dtype``, ...).
    """

    def __init__(self, margin=0.1, **kwargs):
        check_number("margin", margin, low=0)
        super().__init__(**kwargs)
        self.margin = float(margin)

    def call(self, inputs):
        anchor, positive, negative = inputs
        return cosine_triplet_loss(anchor, positive, negative, margin=self.margin)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1])

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="lossviz")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over time of the non-masked steps; all-masked rows give zeros.

    Unlike ``keras.layers.GlobalAveragePooling1D`` (which divides by the mask
    count and returns NaN for a row that is all padding), the count here may
    be 0 and the result is then 0 with a zero gradient.

    Called on ``[batch, time, dim]`` with a Keras mask ``[batch, time]``
    (e.g. from ``Embedding(mask_zero=True)``); returns ``[batch, dim]``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return tf.reduce_mean(inputs, axis=1)
        weights = tf.cast(mask, inputs.dtype)[..., tf.newaxis]
        total = tf.reduce_sum(inputs * weights, axis=1)
        count = tf.reduce_sum(weights, axis=1)
        # May be 0! (a row of padding only)
        return tf.math.divide_no_nan(total, count)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def build_triplet_models(vocab_size, embed_dim=16, max_len=8, margin=0.1):
    """Builds a question/answer retrieval model trained by a triplet loss.

    Each tower embeds words (``mask_zero=True``: id 0 is padding), averages the
    non-padding ones (``MaskedMeanPooling``) and projects them with
    ``Dense(embed_dim)``. The towers do not share their word embedding: Keras
    3.15 saves a layer shared by two nested models under one of them only and
    then fails to load the other ("expected 1 variables, but received 0").

    Args:
      vocab_size: int ``>= 2``; token ids lie in ``[0, vocab_size)``, 0 = pad.
      embed_dim: int ``>= 1``, the embedding size.
      max_len: int ``>= 1``, the token sequence length.
      margin: number ``>= 0`` for ``CosineTripletLossLayer``.

    Returns:
      ``(training_model, question_encoder, answer_encoder)``:
      ``training_model`` takes ``[question, answer_pos, answer_neg]``, each
      int ``[batch, max_len]``, and outputs the per-sample loss ``[batch]``;
      compile it with ``loss=IdentityLoss()`` and fit with zeros as targets.
      ``question_encoder`` maps ``[batch, max_len]`` to ``[batch, embed_dim]``,
      and so does ``answer_encoder``; they share the weights of the training
      model, so training it trains them. Rank answers by
      ``cos(question_encoder(q), answer_encoder(a))``. After
      ``keras.saving.load_model``, the encoders are
      ``model.get_layer("question_encoder")`` and
      ``model.get_layer("answer_encoder")``.
    """
    check_number("vocab_size", vocab_size, low=2, integer=True)
    check_number("embed_dim", embed_dim, low=1, integer=True)
    check_number("max_len", max_len, low=1, integer=True)
    check_number("margin", margin, low=0)
    vocab_size, embed_dim, max_len = int(vocab_size), int(embed_dim), int(max_len)

    def encoder(name):
        tokens = keras.Input(shape=(max_len,), dtype="int32", name=f"{name}_tokens")
        words = keras.layers.Embedding(
            vocab_size, embed_dim, mask_zero=True, name=f"{name}_words"
        )(tokens)
        pooled = MaskedMeanPooling(name=f"{name}_pool")(words)
        vector = keras.layers.Dense(embed_dim, name=f"{name}_projection")(pooled)
        return keras.Model(tokens, vector, name=f"{name}_encoder")

    question_encoder = encoder("question")
    answer_encoder = encoder("answer")

    question = keras.Input(shape=(max_len,), dtype="int32", name="question")
    answer_pos = keras.Input(shape=(max_len,), dtype="int32", name="answer_pos")
    answer_neg = keras.Input(shape=(max_len,), dtype="int32", name="answer_neg")
    loss = CosineTripletLossLayer(margin=margin, name="triplet_loss")(
        [
            question_encoder(question),
            answer_encoder(answer_pos),
            answer_encoder(answer_neg),
        ]
    )
    training_model = keras.Model(
        [question, answer_pos, answer_neg], loss, name="triplet_training"
    )
    return training_model, question_encoder, answer_encoder


@keras.saving.register_keras_serializable(package="lossviz")
class MaskedPerplexity(keras.metrics.Metric):
    """Perplexity over every non-padding token seen since the last reset.

    ``exp(sum of token cross-entropies / number of tokens)``: the cross-entropy
    is averaged over tokens first, then exponentiated, which a ``Mean`` of
    per-batch perplexities would not give. 1.0 before any token is seen.
    """

    def __init__(self, name="perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, token_cross_entropy, mask):
        weights = tf.cast(mask, self.dtype)
        self.total.assign_add(
            tf.reduce_sum(tf.cast(token_cross_entropy, self.dtype) * weights)
        )
        self.count.assign_add(tf.reduce_sum(weights))

    def result(self):
        return tf.exp(tf.math.divide_no_nan(self.total, self.count))


@keras.saving.register_keras_serializable(package="lossviz")
class MaskedCrossEntropyLayer(keras.layers.Layer):
    """Adds a masked sparse cross-entropy with ``add_loss``; tracks metrics.

    Called as ``layer([y_true, logits])`` with ``y_true`` int ``[batch, time]``
    and ``logits`` ``[batch, time, num_classes]``; returns ``logits``
    unchanged. In ``call`` it adds the token mean

    ``loss = sum(m * ce) / sum(m)``, ``m = (y_true != pad_id)``

    with ``self.add_loss`` (0, with zero gradients, for a batch of padding
    only), and updates two metrics it owns, which ``fit`` and ``evaluate``
    report under their names: ``perplexity`` (``exp`` of the token-mean
    cross-entropy over the epoch) and ``masked_accuracy`` (share of non-pad
    tokens whose argmax is the label). Compile the model with no ``loss``.
    The per-token cross-entropy is ``lossviz.sequence.token_crossentropy``.

    Args:
      pad_id: int, the padding id in ``y_true``, at most ``num_classes - 1``;
        a sentinel that is not a class (e.g. ``-100``) works too, and one
        that never occurs counts every position (an unmasked loss).
      **kwargs: as for ``keras.layers.Layer``.

    Raises:
      ValueError: ``pad_id`` not an integer (at construction), or above
        ``num_classes - 1`` (at the first call).
    """

    def __init__(self, pad_id=0, **kwargs):
        check_number("pad_id", pad_id, integer=True)
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)
        self.perplexity = MaskedPerplexity(name="perplexity")
        self.masked_accuracy = keras.metrics.Mean(name="masked_accuracy")

    def call(self, inputs):
        y_true, logits = inputs
        y_true = tf.cast(y_true, tf.int32)
        # The one masked per-token cross-entropy of the package (its padded
        # logits never reach the op, so a garbage logit under padding cannot
        # give NaN or a gradient).
        ce = sequence.token_crossentropy(y_true, logits, pad_id=self.pad_id)
        mask = tf.not_equal(y_true, self.pad_id)
        weights = tf.cast(mask, ce.dtype)
        # May be 0! (a batch of padding only)
        self.add_loss(tf.math.divide_no_nan(tf.reduce_sum(ce), tf.reduce_sum(weights)))
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(predicted, y_true), ce.dtype)
        self.perplexity.update_state(ce, mask)
        self.masked_accuracy.update_state(correct, sample_weight=weights)
        return logits

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


def build_masked_lm_model(
    vocab_size, embed_dim=16, hidden_units=32, max_len=8, pad_id=0
):
    """Builds a tiny next-token model whose loss is added by a layer.

    ``tokens -> Embedding -> causal Conv1D(hidden_units, 3, tanh) -> Dense``
    gives logits ``[batch, max_len, vocab_size]``; ``MaskedCrossEntropyLayer``
    adds the masked cross-entropy against the ``targets`` input.

    Args:
      vocab_size: int ``>= 2``, the number of token ids (classes).
      embed_dim: int ``>= 1``.
      hidden_units: int ``>= 1``.
      max_len: int ``>= 1``, the sequence length.
      pad_id: int in ``[0, vocab_size)``; targets equal to it are left out.

    Returns:
      ``(training_model, inference_model)``: ``training_model`` takes
      ``[tokens, targets]`` (int ``[batch, max_len]`` each) and outputs logits;
      compile it with an optimizer and no loss, and ``fit(x=[tokens,
      targets])`` with no ``y``: its history holds ``loss``, ``perplexity`` and
      ``masked_accuracy``. ``inference_model`` maps ``tokens`` to the same
      logits and shares every weight.
    """
    check_number("vocab_size", vocab_size, low=2, integer=True)
    check_number("embed_dim", embed_dim, low=1, integer=True)
    check_number("hidden_units", hidden_units, low=1, integer=True)
    check_number("max_len", max_len, low=1, integer=True)
    check_number("pad_id", pad_id, low=0, high=vocab_size - 1, integer=True)
    vocab_size, max_len = int(vocab_size), int(max_len)

    tokens = keras.Input(shape=(max_len,), dtype="int32", name="tokens")
    targets = keras.Input(shape=(max_len,), dtype="int32", name="targets")
    hidden = keras.layers.Embedding(vocab_size, int(embed_dim), name="embedding")(
        tokens
    )
    hidden = keras.layers.Conv1D(
        int(hidden_units), 3, padding="causal", activation="tanh", name="context"
    )(hidden)
    logits = keras.layers.Dense(vocab_size, name="logits")(hidden)
    inference_model = keras.Model(tokens, logits, name="masked_lm")
    outputs = MaskedCrossEntropyLayer(pad_id=pad_id, name="masked_cross_entropy")(
        [targets, logits]
    )
    training_model = keras.Model([tokens, targets], outputs, name="masked_lm_training")
    return training_model, inference_model
