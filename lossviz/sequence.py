"""Seq2seq cross-entropy with padding masks and class weights.

A decoder emits logits ``[batch, time, num_classes]`` for integer targets
``[batch, time]`` padded with ``pad_id``. The padded positions must not count,
and rare tokens (typically the end-of-sequence token, one per sequence) may
need a larger weight. The pieces here:

- ``masked_sparse_categorical_crossentropy``: per-sequence mean of the masked,
  class-weighted cross-entropy (``[batch]``), as people write it by hand; the
  Keras class ``MaskedSparseCategoricalCrossentropy`` wraps it;
- ``token_mean_crossentropy``: Keras' own masked reduction, a mean over every
  non-pad token of the whole batch (scalar);
- ``mask_as_sample_weight_crossentropy``: what Keras computes when the mask is
  passed as ``sample_weight`` with the default reduction: padding is zeroed
  but still counted in the denominator (scalar);
- ``end_token_class_weights``: a weight vector that gives the end token the
  mean count of the other tokens;
- ``perplexity``, ``masked_accuracy``: the usual scalar metrics over non-pad
  tokens; ``special_token_mae``: a per-token MAE that forgives correctly
  predicted start/end tokens.

Keras 3's ``class_weight`` argument of ``Model.fit`` does not work for sequence
targets: for an integer target ``[batch, time]`` it takes the argmax over the
*time* axis as "the class" of each sequence, so every sequence gets the weight
of whatever class id equals the position of its largest token id. Use
``class_weights`` here (or a temporal ``sample_weight``) instead.
"""

from __future__ import annotations

import keras
import numpy as np

from lossviz._common import as_float, check_number
from lossviz._tf import tf

FORMULA = (
    r"\mathcal{L}_b = \frac{\sum_t m_{bt}\, w_{y_{bt}}\, \mathrm{CE}_{bt}}"
    r"{\sum_t m_{bt}},\qquad m_{bt} = [\,y_{bt} \neq \mathrm{pad}\,],\qquad"
    r"\mathrm{CE}_{bt} = -\log \operatorname{softmax}(z_{bt})_{y_{bt}}"
)

FORMULAS = {
    "per_sequence_mean": FORMULA,
    "token_mean": (
        r"\mathcal{L} = \frac{\sum_{b,t} m_{bt}\, w_{y_{bt}}\, \mathrm{CE}_{bt}}"
        r"{\sum_{b,t} m_{bt}}"
    ),
    "sample_weight_mask": (
        r"\mathcal{L} = \frac{\sum_{b,t} m_{bt}\, w_{y_{bt}}\, \mathrm{CE}_{bt}}"
        r"{B \cdot T}"
    ),
    "end_token_weight": (
        r"w_{\mathrm{end}} = \frac{\operatorname{mean}\{\, n_c : c \neq "
        r"\mathrm{end},\ c \neq \mathrm{pad},\ n_c > 0 \,\}}{n_{\mathrm{end}}},"
        r"\qquad w_c = 1 \text{ otherwise}"
    ),
    "perplexity": (
        r"\mathrm{PPL} = \exp\!\left(\frac{\sum_{b,t} m_{bt}\, \mathrm{CE}_{bt}}"
        r"{\sum_{b,t} m_{bt}}\right)"
    ),
    "masked_accuracy": (
        r"\mathrm{acc} = \frac{\sum_{b,t} m_{bt}\, [\arg\max_c z_{btc} = y_{bt}]}"
        r"{\sum_{b,t} m_{bt}}"
    ),
    "special_token_mae": (
        r"\mathrm{MAE}_{bt} = \begin{cases} 0 & \arg\max y_{bt} = \arg\max "
        r"\hat y_{bt} \in \{\mathrm{start}, \mathrm{end}\} \\ \frac{1}{C}"
        r"\sum_c |y_{btc} - \hat y_{btc}| & \text{otherwise} \end{cases}"
    ),
}


def _static_num_classes(logits) -> int | None:
    return logits.shape[-1] if logits.shape.rank else None


def _check_pad_id(pad_id, num_classes):
    if pad_id is None:
        return None
    high = None if num_classes is None else num_classes - 1
    check_number("pad_id", pad_id, high=high, integer=True)
    return pad_id


def _check_class_weights(class_weights, num_classes, *, stacked=True):
    """Validates ``class_weights``; returns a numpy array (or a symbolic tensor).

    ``[num_classes]``, or with ``stacked`` also ``[n, num_classes]``: one vector
    for each of ``n`` batches stacked on the first axis.
    """
    if class_weights is None:
        return None
    ranks = (1, 2) if stacked else (1,)
    shapes = "[num_classes] or [n, num_classes]" if stacked else "[num_classes]"
    if tf.is_tensor(class_weights) and not tf.executing_eagerly():
        if class_weights.shape.rank not in (None, *ranks):
            raise ValueError(
                f"`class_weights` must be a vector of shape {shapes}, one weight "
                f"per class, got shape {class_weights.shape}."
            )
        return class_weights
    weights = np.asarray(class_weights, dtype=np.float64)
    if weights.ndim not in ranks:
        raise ValueError(
            f"`class_weights` must be a vector of shape {shapes}, one weight "
            f"per class, got shape {weights.shape}."
        )
    if num_classes is not None and weights.shape[-1] != num_classes:
        raise ValueError(
            f"`class_weights` must have length num_classes = {num_classes} "
            f"(one weight per class), got length {weights.shape[-1]}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            "`class_weights` must be finite and non-negative, in [0, inf), "
            f"got {weights.tolist()}."
        )
    return weights


def _labels(y_true, logits) -> tf.Tensor:
    """Integer labels ``[..., T]``; a trailing axis of size 1 is squeezed."""
    y_true = tf.convert_to_tensor(y_true)
    if (
        y_true.shape.rank is not None
        and logits.shape.rank is not None
        and y_true.shape.rank == logits.shape.rank
        and y_true.shape[-1] == 1
    ):
        y_true = tf.squeeze(y_true, axis=-1)
    if y_true.dtype.is_floating:
        # Keras hands labels over as floats; round so 2.9999999 is class 3.
        y_true = tf.round(y_true)
    return tf.cast(y_true, tf.int64)


def _masked_token_terms(y_true, logits, pad_id, class_weights):
    """Checks inputs; returns ``(mask * w[y] * ce, mask)``, both ``[..., T]``.

    Padded positions never reach the cross-entropy: their label is replaced by
    0 and their logits by zeros (as Keras does for ``ignore_class``), so a
    sentinel such as ``pad_id=-1`` or garbage logits under padding cannot give
    an error, NaN or a gradient.
    """
    logits = as_float(logits)
    num_classes = _static_num_classes(logits)
    pad_id = _check_pad_id(pad_id, num_classes)
    class_weights = _check_class_weights(class_weights, num_classes)

    labels = _labels(y_true, logits)
    if pad_id is None:
        keep = tf.ones_like(labels, dtype=tf.bool)
    else:
        keep = tf.not_equal(labels, tf.cast(pad_id, labels.dtype))
    safe_labels = tf.where(keep, labels, tf.zeros_like(labels))
    safe_logits = tf.where(keep[..., tf.newaxis], logits, tf.zeros_like(logits))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=safe_labels, logits=safe_logits
    )
    if class_weights is not None:
        weights = as_float(class_weights, logits.dtype)
        # [n, C] weights: batch b of the stack looks its labels up in row b.
        batch_dims = 1 if weights.shape.rank == 2 else 0
        ce = ce * tf.gather(weights, safe_labels, batch_dims=batch_dims)
    mask = tf.cast(keep, logits.dtype)
    return tf.where(keep, ce, tf.zeros_like(ce)), mask


def token_crossentropy(y_true, logits, *, pad_id=0, class_weights=None):
    """Per-token masked, class-weighted cross-entropy from logits.

    ``loss[b, t] = m[b, t] * w[y[b, t]] * CE(y[b, t], softmax(logits[b, t]))``
    with ``m = (y != pad_id)``.

    Args:
      y_true: int labels ``[batch, time]`` (or ``[batch, time, 1]``).
      logits: ``[batch, time, num_classes]``.
      pad_id: the padding label, an integer ``<= num_classes - 1``; a negative
        sentinel such as -1 (not a class) works too; ``None`` masks nothing.
      class_weights: ``None`` (all ones) or ``num_classes`` non-negative weights.

    Returns:
      ``[batch, time]``: 0 at padded positions, with a zero gradient there.

    Raises:
      ValueError: ``pad_id`` not an integer ``<= num_classes - 1``;
        ``class_weights`` of the wrong length, negative or not finite.
    """
    terms, _ = _masked_token_terms(y_true, logits, pad_id, class_weights)
    return terms


def masked_sparse_categorical_crossentropy(
    y_true, logits, *, pad_id=0, class_weights=None
):
    """Per-sequence mean of the masked, class-weighted cross-entropy.

    ``loss[b] = sum_t m[b,t] w[y[b,t]] CE[b,t] / sum_t m[b,t]`` with
    ``m = (y != pad_id)`` and ``CE = -log softmax(logits)[y]``, computed from the
    logits with ``tf.nn.sparse_softmax_cross_entropy_with_logits`` (stable for
    any logit size).

    This is the mean written by hand, one value per sequence, so a short
    sequence weighs as much as a long one once the batch is averaged. Keras'
    own masked reduction is a token mean over the whole batch instead (see
    ``token_mean_crossentropy``); both agree when every sequence has the same
    number of tokens.

    Args:
      y_true: int labels ``[batch, time]`` (or ``[batch, time, 1]``; floats
        holding integers are accepted, as Keras passes them).
      logits: ``[batch, time, num_classes]``, unnormalised scores.
      pad_id: the padding label (default 0), an integer ``<= num_classes - 1``;
        a negative sentinel such as -1 works too; ``None`` masks nothing
        (the unmasked loss).
      class_weights: ``None`` (all ones) or a vector of ``num_classes``
        non-negative finite weights, ``w[y]`` scaling each token's term. For
        ``n`` batches stacked on the first axis (``y_true [n, batch, time]``),
        ``[n, num_classes]`` gives each batch its own vector.

    Returns:
      ``[batch]``, float32 unless ``logits`` is float64.

    Edge cases:
      A row that is all padding gives 0, with zero (not NaN) gradients
      (``divide_no_nan`` on a count that may be 0). Logits under padding never
      reach the cross-entropy, so their gradient is exactly 0.

    Raises:
      ValueError: ``pad_id`` not an integer ``<= num_classes - 1``;
        ``class_weights`` of the wrong length, negative or not finite.

    References:
      TensorFlow "Neural machine translation with attention" tutorial (masked
      loss); Keras ``SparseCategoricalCrossentropy(ignore_class=...)``.
    """
    terms, mask = _masked_token_terms(y_true, logits, pad_id, class_weights)
    # May be 0 (a row of padding only): divide_no_nan keeps value and gradient 0.
    return tf.math.divide_no_nan(
        tf.reduce_sum(terms, axis=-1), tf.reduce_sum(mask, axis=-1)
    )


def _batch_axes(terms):
    """The (batch, time) axes of ``[..., batch, time]``; everything if rank < 2."""
    return None if terms.shape.rank is None or terms.shape.rank < 2 else [-2, -1]


def token_mean_crossentropy(y_true, logits, *, pad_id=0, class_weights=None):
    """Keras-style masked mean: all weighted token losses over all non-pad tokens.

    ``loss = sum_{b,t} m w[y] CE / sum_{b,t} m``. Without class weights this is
    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=pad_id)`` (and what a Keras mask on the logits gives).

    Args:
      y_true: int labels ``[batch, time]``, or ``[..., batch, time]`` for
        several independent batches at once.
      logits: ``[batch, time, num_classes]`` (or ``[..., batch, time,
        num_classes]``).
      pad_id, class_weights: as in ``masked_sparse_categorical_crossentropy``.

    Returns:
      scalar for one batch; ``[...]`` for stacked batches (the last two axes
      are reduced). A batch that is all padding gives 0 with zero gradients.
    """
    terms, mask = _masked_token_terms(y_true, logits, pad_id, class_weights)
    axes = _batch_axes(terms)
    # May be 0 (padding only): divide_no_nan keeps value and gradient 0.
    return tf.math.divide_no_nan(
        tf.reduce_sum(terms, axis=axes), tf.reduce_sum(mask, axis=axes)
    )


def mask_as_sample_weight_crossentropy(
    y_true, logits, *, pad_id=0, class_weights=None
):
    """What Keras computes when the pad mask is passed as ``sample_weight``.

    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits,
    sample_weight=mask * w[y])`` with the default ``"sum_over_batch_size"``
    reduction divides by *every* token, padding included:
    ``loss = sum_{b,t} m w[y] CE / (B * T)``. The more padding, the smaller the
    loss and its gradient, although the real tokens did not change: the trap.
    Building the Keras loss with ``reduction="mean_with_sample_weight"`` divides
    by the sum of the weights instead (with all class weights 1, that is
    ``token_mean_crossentropy``).

    Args:
      y_true: int labels ``[batch, time]`` (or ``[..., batch, time]``).
      logits: ``[batch, time, num_classes]`` (or ``[..., batch, time,
        num_classes]``).
      pad_id, class_weights: as in ``masked_sparse_categorical_crossentropy``.

    Returns:
      scalar for one batch; ``[...]`` for stacked batches (the last two axes
      are reduced). 0 for an empty batch.
    """
    terms, mask = _masked_token_terms(y_true, logits, pad_id, class_weights)
    axes = _batch_axes(terms)
    num_tokens = tf.reduce_sum(tf.ones_like(mask), axis=axes)
    return tf.math.divide_no_nan(tf.reduce_sum(terms, axis=axes), num_tokens)


def perplexity(y_true, logits, *, pad_id=0):
    """Perplexity over the non-pad tokens of the whole batch.

    ``PPL = exp(sum_{b,t} m CE / sum_{b,t} m)`` with ``m = (y != pad_id)``.

    Args:
      y_true: int labels ``[batch, time]``.
      logits: ``[batch, time, num_classes]``.
      pad_id: as in ``masked_sparse_categorical_crossentropy``.

    Returns:
      scalar >= 1. A batch of padding only gives exp(0) = 1. A uniform model
      gives ``num_classes``. It overflows to +Inf only when the mean
      cross-entropy exceeds ~88.7 nats in float32 (~709 in float64), i.e. when
      the true value is beyond the dtype's range.
    """
    terms, mask = _masked_token_terms(y_true, logits, pad_id, None)
    return tf.exp(tf.math.divide_no_nan(tf.reduce_sum(terms), tf.reduce_sum(mask)))


def masked_accuracy(y_true, logits, *, pad_id=0):
    """Share of non-pad tokens whose argmax equals the label.

    ``acc = sum_{b,t} m [argmax_c logits = y] / sum_{b,t} m``.

    Args:
      y_true: int labels ``[batch, time]``.
      logits: ``[batch, time, num_classes]`` (or probabilities: only the argmax
        matters).
      pad_id: as in ``masked_sparse_categorical_crossentropy``.

    Returns:
      scalar in [0, 1]; 0 for a batch of padding only. Not differentiable
      (argmax): a metric, not a loss.
    """
    logits = as_float(logits)
    pad_id = _check_pad_id(pad_id, _static_num_classes(logits))
    labels = _labels(y_true, logits)
    if pad_id is None:
        keep = tf.ones_like(labels, dtype=tf.bool)
    else:
        keep = tf.not_equal(labels, tf.cast(pad_id, labels.dtype))
    correct = tf.logical_and(keep, tf.equal(tf.argmax(logits, axis=-1), labels))
    return tf.math.divide_no_nan(
        tf.reduce_sum(tf.cast(correct, logits.dtype)),
        tf.reduce_sum(tf.cast(keep, logits.dtype)),
    )


def special_token_mae(y_true, y_pred, *, start_id, end_id):
    """Per-token MAE that forgives correctly predicted start and end tokens.

    ``mae[b,t] = mean_c |y_true[b,t,c] - y_pred[b,t,c]|``, set to 0 where
    ``argmax y_true[b,t] == argmax y_pred[b,t]`` and that class is ``start_id``
    or ``end_id``.

    Args:
      y_true: one-hot targets ``[batch, time, num_classes]``.
      y_pred: predicted probabilities ``[batch, time, num_classes]``.
      start_id: the start token's class, an integer in ``[0, num_classes - 1]``.
      end_id: the end token's class, an integer in ``[0, num_classes - 1]``.

    Returns:
      ``[batch, time]`` in [0, 2/num_classes] for probabilities; the gradient
      with respect to ``y_pred`` is ``sign(y_pred - y_true) / num_classes``
      (0 where they are equal, and 0 at forgiven tokens).

    Raises:
      ValueError: ``start_id`` or ``end_id`` not an integer class index.
    """
    y_pred = as_float(y_pred)
    num_classes = _static_num_classes(y_pred)
    high = None if num_classes is None else num_classes - 1
    check_number("start_id", start_id, low=0, high=high, integer=True)
    check_number("end_id", end_id, low=0, high=high, integer=True)
    y_true = as_float(y_true, y_pred.dtype)

    mae = tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)
    true_class = tf.argmax(y_true, axis=-1)
    special = tf.logical_or(
        tf.equal(true_class, tf.cast(start_id, true_class.dtype)),
        tf.equal(true_class, tf.cast(end_id, true_class.dtype)),
    )
    forgiven = tf.logical_and(special, tf.equal(true_class, tf.argmax(y_pred, -1)))
    return tf.where(forgiven, tf.zeros_like(mae), mae)


def end_token_class_weights(y_true, num_classes, *, end_id, pad_id=None):
    """Class weights that give the end token the weight of an average token.

    ``w = ones(num_classes)``, except ``w[end_id] = mean(n_c) / n_end`` where
    ``n_c`` are the counts of the other classes that occur at least once
    (``pad_id`` excluded) and ``n_end`` is the count of the end token.

    Args:
      y_true: int labels of any shape (e.g. ``[batch, time]``), array-like.
      num_classes: number of classes ``C >= 1``.
      end_id: the end token's class, in ``[0, C - 1]``.
      pad_id: the padding label, excluded from the counts; ``None`` (default)
        counts every class; may be a negative sentinel that is not a class.

    Returns:
      numpy float64 vector ``[num_classes]``. ``w[end_id] = 1.0`` where the end
      token never occurs, or where no other class occurs.

    Raises:
      ValueError: ``num_classes``, ``end_id`` or ``pad_id`` out of range,
        ``pad_id == end_id``, or a label (other than ``pad_id``) outside
        ``[0, C - 1]``.
    """
    check_number("num_classes", num_classes, low=1, integer=True)
    num_classes = int(num_classes)
    check_number("end_id", end_id, low=0, high=num_classes - 1, integer=True)
    if pad_id is not None:
        check_number("pad_id", pad_id, high=num_classes - 1, integer=True)
        if pad_id == end_id:
            raise ValueError(
                f"`pad_id` must differ from `end_id` = {end_id}, got {pad_id}."
            )
    labels = np.asarray(y_true).reshape(-1)
    if labels.size and not np.all(np.equal(np.round(labels), labels)):
        raise ValueError("`y_true` must hold integer class ids.")
    labels = labels.astype(np.int64)
    if pad_id is not None:
        labels = labels[labels != pad_id]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`y_true` labels must be in [0, {num_classes - 1}] (or pad_id), "
            f"got values in [{labels.min()}, {labels.max()}]."
        )
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes, dtype=np.float64)
    others = np.ones(num_classes, dtype=bool)
    others[end_id] = False
    if pad_id is not None and pad_id >= 0:
        others[pad_id] = False
    present = counts[others & (counts > 0)]
    if counts[end_id] > 0 and present.size:
        weights[end_id] = present.mean() / counts[end_id]
    return weights


@keras.saving.register_keras_serializable(package="lossviz")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Keras loss: per-sequence mean of the masked, class-weighted cross-entropy.

    Wraps ``masked_sparse_categorical_crossentropy``: ``call`` returns one value
    per sequence ``[batch]`` and the reduction (default
    ``"sum_over_batch_size"``) averages the batch. Expects logits
    (``from_logits=True`` in Keras terms): end the model with a linear ``Dense``.

    ``sample_weight`` for this loss is per sequence ``[batch]``: the padding mask
    is already applied. A Keras mask carried by ``y_pred`` (e.g. from
    ``Embedding(mask_zero=True)``) is ignored for the same reason; Keras would
    otherwise multiply the ``[batch, time]`` mask into the ``[batch]`` losses.

    Args:
      pad_id: the padding label (default 0); ``None`` masks nothing.
      class_weights: ``None`` or ``num_classes`` non-negative weights; stored in
        the config as a list.
      name, reduction, dtype: as for ``keras.losses.Loss``.

    Example:
      ``model.compile(optimizer="adam",
      loss=MaskedSparseCategoricalCrossentropy(pad_id=0))``
    """

    def __init__(
        self,
        pad_id=0,
        class_weights=None,
        name="masked_sparse_categorical_crossentropy",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.pad_id = None if pad_id is None else int(_check_pad_id(pad_id, None))
        weights = _check_class_weights(class_weights, None, stacked=False)
        self.class_weights = None if weights is None else weights.tolist()

    def __call__(self, y_true, y_pred, sample_weight=None):
        keras_mask = getattr(y_pred, "_keras_mask", None)
        if keras_mask is not None:
            y_pred = tf.identity(y_pred)  # a new tensor carries no Keras mask
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return masked_sparse_categorical_crossentropy(
            y_true, y_pred, pad_id=self.pad_id, class_weights=self.class_weights
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pad_id": self.pad_id,
                "class_weights": self.class_weights,
                "dtype": self.dtype,
            }
        )
        return config
