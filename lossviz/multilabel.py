"""BP-MLL: the multi-label ranking loss of Zhang & Zhou (2006), vectorised.

For one sample with label set ``Y`` (the positives), its complement ``Ybar``
(the negatives) and network outputs ``c``, BP-MLL averages an exponential
penalty over every (positive, negative) pair, so that each positive label is
pushed above each negative one:

    E = 1/(|Y| |Ybar|) * sum_{k in Y, l in Ybar} exp(-(c_k - c_l))

The double sum factorises, ``(sum_{k in Y} exp(-c_k)) * (sum_{l in Ybar}
exp(c_l))``, which is what makes an O(B·L) form possible, but that product
overflows in float32 long before the loss itself does. ``bpmll_loss``
therefore works in log space with masked log-sum-exps. ``bpmll_loss_pairwise``
(the ``[B, L, L]`` outer product) and ``bpmll_loss_loop`` (a Python loop over
samples) give the same value and are kept for teaching and benchmarks.
(The literal product, kept to show where it breaks, and the explorer's example
batches live in ``lossviz.explore.multilabel``.)

Public names: ``bpmll_loss``, ``bpmll_loss_pairwise``, ``bpmll_loss_loop``,
``BPMLL``, ``FORMULA``, ``FORMULAS``.

Reference: M.-L. Zhang and Z.-H. Zhou, "Multilabel Neural Networks with
Applications to Functional Genomics and Text Categorization", IEEE TKDE 18(10),
2006.
"""

from __future__ import annotations

import keras
import numpy as np

from lossviz._common import as_float
from lossviz._tf import tf

FORMULA = (
    r"E_i = \frac{1}{|Y_i|\,|\bar Y_i|}"
    r"\sum_{k \in Y_i}\sum_{l \in \bar Y_i} e^{-(c_{ik} - c_{il})}"
)

FORMULAS = {
    "bpmll": FORMULA,
    "factorised": (
        r"E_i = \frac{1}{|Y_i|\,|\bar Y_i|}"
        r"\Big(\sum_{k \in Y_i} e^{-c_{ik}}\Big)"
        r"\Big(\sum_{l \in \bar Y_i} e^{c_{il}}\Big)"
    ),
    "log_space": (
        r"\log E_i = \operatorname{LSE}_{k \in Y_i}(-c_{ik})"
        r" + \operatorname{LSE}_{l \in \bar Y_i}(c_{il})"
        r" - \log|Y_i| - \log|\bar Y_i|"
    ),
    "gradient": (
        r"\frac{\partial E_i}{\partial c_{ik}} = "
        r"-E_i\,\operatorname{softmax}_{Y_i}(-c_i)_k \;(k \in Y_i),\quad"
        r"\frac{\partial E_i}{\partial c_{il}} = "
        r"E_i\,\operatorname{softmax}_{\bar Y_i}(c_i)_l \;(l \in \bar Y_i)"
    ),
    "degenerate": (
        r"E_i = 0 \quad\text{if } Y_i = \emptyset \text{ or } \bar Y_i = \emptyset"
    ),
}


def _prepare(y_true, logits):
    """Checks inputs and returns ``(positive mask, logits)``.

    ``y_true`` must hold only 0 and 1 (checked when its value is known, i.e.
    eagerly; inside ``tf.function`` values are not checked and anything above
    0.5 counts as a positive) and have the shape of ``logits``.
    """
    logits = as_float(logits)
    y_true = tf.convert_to_tensor(y_true)
    if logits.shape.rank is not None and logits.shape.rank < 1:
        raise ValueError(
            f"`logits` must have at least one axis (labels), got shape {logits.shape}."
        )
    if not y_true.shape.is_compatible_with(logits.shape):
        raise ValueError(
            f"`y_true` and `logits` must have the same shape [..., num_labels], "
            f"got {y_true.shape} and {logits.shape}."
        )
    if y_true.dtype == tf.bool:
        return y_true, logits
    if not (y_true.dtype.is_floating or y_true.dtype.is_integer):
        raise ValueError(
            f"`y_true` must hold 0/1 labels as numbers or booleans, "
            f"got dtype {y_true.dtype.name}."
        )
    if tf.executing_eagerly():
        # Checked on the host: a few TensorFlow ops and a sync cost more here
        # than the loss itself on the explorer's small batches.
        labels = y_true.numpy()
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError("`y_true` must contain only 0 and 1 (multi-hot).")
    return tf.cast(y_true, logits.dtype) > 0.5, logits


def _masked_logsumexp(x, mask):
    """``log sum_{mask} exp(x)`` over the last axis, finite even for an empty set.

    Entries outside the mask are replaced by the lowest finite number before
    anything else, so they contribute ``exp(-huge) = 0`` and, through
    ``tf.where``, no gradient. An empty row gives a finite, hugely negative
    value with a zero gradient; callers discard it with their own ``tf.where``.
    The shift by the row max cancels exactly, so it carries no gradient.
    """
    masked = tf.where(mask, x, tf.constant(x.dtype.min, dtype=x.dtype))
    shift = tf.stop_gradient(tf.reduce_max(masked, axis=-1, keepdims=True))
    total = tf.reduce_sum(tf.exp(masked - shift), axis=-1)
    return tf.math.log(total) + tf.squeeze(shift, axis=-1)


def bpmll_loss(y_true, logits):
    """BP-MLL ranking loss per sample, in log space with O(B·L) memory.

    ``E = 1/(|Y| |Ybar|) * sum_{k in Y, l in Ybar} exp(-(c_k - c_l))``, computed
    as ``exp(LSE_{k in Y}(-c_k) + LSE_{l in Ybar}(c_l) - log|Y| - log|Ybar|)``
    with masked log-sum-exps: no ``[B, L, L]`` tensor and no loop over the
    batch.

    Args:
      y_true: 0/1 (or boolean) multi-hot labels, `[batch, num_labels]` (any
        number of leading axes is kept).
      logits: real-valued outputs ``c``, same shape as ``y_true``. The paper
        uses tanh outputs; any real score works.

    Returns:
      Loss per sample, `[batch]`; float32 unless ``logits`` is float64.

    Edge cases:
      A row with no positive or no negative label has no pairs and gives 0,
      with a zero (finite) gradient. Finite in value and gradient for
      ``|logits| <= 40`` in float32 (largest term ``e^80``), where the
      factorised product ``(sum e^(-c_k)) (sum e^(c_l))`` already overflows
      once a row has more than about 80 positives and 80 negatives. The loss itself
      overflows float32 only once some pair has ``c_l - c_k > 88``.

    Raises:
      ValueError: ``y_true`` holds values other than 0/1 (checked eagerly), or
        the shapes differ.

    References:
      Zhang & Zhou, "Multilabel Neural Networks with Applications to
      Functional Genomics and Text Categorization", IEEE TKDE 2006, eq. (3).
    """
    positive, logits = _prepare(y_true, logits)
    negative = tf.logical_not(positive)
    num_pos = tf.reduce_sum(tf.cast(positive, logits.dtype), axis=-1)
    num_labels = logits.shape[-1]
    if num_labels is None:
        num_labels = tf.cast(tf.shape(logits)[-1], logits.dtype)
    num_pairs = num_pos * (num_labels - num_pos)
    has_pairs = num_pairs > 0
    # May be 0! Counts are whole numbers: rows without pairs take log(1) here
    # (log(0) would send 0 * inf = NaN into the gradient) and are set to 0 below.
    log_count = tf.math.log(tf.maximum(num_pairs, 1.0))
    log_loss = (
        _masked_logsumexp(-logits, positive)
        + _masked_logsumexp(logits, negative)
        - log_count
    )
    # Without pairs, one log-sum-exp is about the lowest float: exp gives 0,
    # and the gradient is 0 through this where and the one in the log-sum-exp.
    return tf.where(has_pairs, tf.exp(log_loss), tf.zeros_like(num_pairs))


def bpmll_loss_pairwise(y_true, logits):
    """BP-MLL per sample through the explicit ``[B, L, L]`` pair tensor.

    ``E = sum_{k,l} m_kl exp(-(c_k - c_l)) / sum_{k,l} m_kl`` with the pair
    mask ``m_kl = [k in Y][l in Ybar]``: the textbook form, O(B·L²) memory.

    Args:
      y_true: 0/1 multi-hot labels, `[batch, num_labels]`.
      logits: outputs, same shape.

    Returns:
      Loss per sample, `[batch]`; float32 unless ``logits`` is float64.

    Edge cases:
      Rows without pairs give 0 with zero gradients (``divide_no_nan``, and the
      exponent is masked before ``exp``). The sum of exponentials is not in log
      space, so it overflows float32 where ``bpmll_loss`` does not (many
      pairs with ``c_l - c_k`` near 80).

    References:
      Zhang & Zhou 2006, eq. (3).
    """
    positive, logits = _prepare(y_true, logits)
    negative = tf.logical_not(positive)
    pairs = tf.logical_and(tf.expand_dims(positive, -1), tf.expand_dims(negative, -2))
    # margin[..., k, l] = c_k - c_l
    margin = tf.expand_dims(logits, -1) - tf.expand_dims(logits, -2)
    exponent = tf.where(pairs, -margin, tf.zeros_like(margin))
    terms = tf.where(pairs, tf.exp(exponent), tf.zeros_like(margin))
    num_pairs = tf.reduce_sum(tf.cast(pairs, logits.dtype), axis=[-2, -1])
    # May be 0! A row with no positive or no negative label has no pairs.
    return tf.math.divide_no_nan(tf.reduce_sum(terms, axis=[-2, -1]), num_pairs)


def bpmll_loss_loop(y_true, logits):
    """BP-MLL per sample with a Python loop over samples, as the paper reads.

    For each sample, gathers its positive and negative outputs and averages
    ``exp(-(c_k - c_l))`` over their outer difference. Slow by design: it is
    the reference the vectorised forms are timed against.

    Args:
      y_true: 0/1 multi-hot labels, `[batch, num_labels]` (leading axes must
        have a static size; they are flattened for the loop).
      logits: outputs, same shape.

    Returns:
      Loss per sample, `[batch]`; float32 unless ``logits`` is float64.

    Edge cases:
      A sample without pairs gives 0 with a zero gradient (an empty sum over
      ``divide_no_nan`` of a zero count).

    References:
      Zhang & Zhou 2006, eq. (3).
    """
    positive, logits = _prepare(y_true, logits)
    leading = logits.shape[:-1]
    if not leading.is_fully_defined() or logits.shape[-1] is None:
        raise ValueError(
            f"`logits` needs a static shape for the loop form, got {logits.shape}."
        )
    num_labels = logits.shape[-1]
    rows = tf.unstack(tf.reshape(logits, [-1, num_labels]))
    memberships = tf.unstack(tf.reshape(tf.cast(positive, tf.int32), [-1, num_labels]))
    losses = []
    for row, membership in zip(rows, memberships, strict=True):
        neg, pos = tf.dynamic_partition(row, membership, num_partitions=2)
        total = tf.reduce_sum(tf.exp(tf.expand_dims(neg, 0) - tf.expand_dims(pos, 1)))
        count = tf.cast(tf.size(pos) * tf.size(neg), logits.dtype)
        losses.append(tf.math.divide_no_nan(total, count))  # May be 0!
    if not losses:
        return tf.zeros(leading, dtype=logits.dtype)
    return tf.reshape(tf.stack(losses), leading)


@keras.saving.register_keras_serializable(package="lossviz")
class BPMLL(keras.losses.Loss):
    """BP-MLL ranking loss as a Keras loss; ``y_pred`` are logits (raw scores).

    ``E_i = 1/(|Y_i||Ybar_i|) sum_{k in Y_i, l in Ybar_i} exp(-(c_k - c_l))``,
    computed by ``bpmll_loss`` in log space, then reduced over the batch as
    ``reduction`` says. Use a linear (or tanh, as in the paper) output layer:
    the loss ranks scores, it does not need probabilities.

    Args:
      reduction: Keras reduction, default ``"sum_over_batch_size"``.
      name: loss name, default ``"bpmll"``.
      dtype: dtype of the computation, default Keras' floatx.

    Inside ``fit`` (graph mode) label values are not checked; labels above 0.5
    count as positives.

    Example:
      ``model.compile(optimizer="adam", loss=lossviz.BPMLL())``
    """

    def __init__(self, reduction="sum_over_batch_size", name="bpmll", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return bpmll_loss(y_true, y_pred)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}
