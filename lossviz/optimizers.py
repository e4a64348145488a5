"""What the loss families need from training: a lazy (sparse-row) Adam.

Sampled softmax (``lossviz.sampled``) and embedding lookups give the gradient of
a large ``[V, D]`` matrix as a ``tf.IndexedSlices``: only the few hundred rows
the step touched. Keras 3's ``Adam`` turns that gradient dense (its update is
written with elementwise ops over the whole moment slots, which densify an
``IndexedSlices``), so every step reads and writes all ``V`` rows of the
weights and of both moments, and the saving of the sampled loss is lost.
``LazyAdam`` updates only the rows present in the gradient, as TF1's
``LazyAdamOptimizer`` and tensorflow_addons' ``LazyAdam`` did; on a dense
gradient it is exactly Keras' ``Adam``.
"""

from __future__ import annotations

from numbers import Real

import keras

from lossviz._common import check_number
from lossviz._tf import tf

FORMULAS = {
    "adam": (
        r"m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t,\quad "
        r"v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2,\quad "
        r"\theta_t = \theta_{t-1} - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}"
        r"\,\frac{m_t}{\sqrt{v_t} + \hat\epsilon}"
    ),
    "lazy": (
        r"\text{for each row } i \in \operatorname{unique}(\text{indices}):\ "
        r"g_{t,i} = \sum_{k:\,\text{indices}_k = i} \text{values}_k,\ "
        r"\text{then the Adam update on rows } i \text{ only; other rows keep }"
        r"\ m, v, \theta"
    ),
}
FORMULA = FORMULAS["adam"]


def _adam_rows(m, v, gradient, alpha, beta_1, beta_2, epsilon):
    """The Adam update of some rows (or all of them), in Keras' operation order.

    Keeping Keras' order (``m + (g - m)(1 - beta_1)``, then
    ``m * alpha / (sqrt(v) + epsilon)``) makes the dense path bitwise equal to
    ``keras.optimizers.Adam``.

    Returns:
      ``(new_m, new_v, delta)``, each shaped like ``gradient``; the variable is
      updated by ``variable - delta``.
    """
    new_m = m + (gradient - m) * (1 - beta_1)
    new_v = v + (tf.square(gradient) - v) * (1 - beta_2)
    delta = (new_m * alpha) / (tf.sqrt(new_v) + epsilon)
    return new_m, new_v, delta


def _constant(value, dtype):
    """``value`` as a ``dtype`` tensor, a Python float converted at full precision.

    ``tf.cast(0.999, tf.float64)`` first makes a float32 tensor, so it gives
    0.99900001287...; Keras' Adam does that, which shifts float64 steps by
    about 1e-5 relative in the first steps.
    """
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.constant(value, dtype=dtype)


def _tf_variable(variable):
    """The backend ``tf.Variable`` behind a Keras variable (or itself)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _unscale(gradient, scale):
    """``gradient / scale`` that keeps a ``tf.IndexedSlices`` sparse."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(
            gradient.values / tf.cast(scale, gradient.values.dtype),
            gradient.indices,
            gradient.dense_shape,
        )
    return gradient / tf.cast(scale, gradient.dtype)


@keras.saving.register_keras_serializable(package="lossviz")
class LazyAdam(keras.optimizers.Optimizer):
    """Adam that updates only the rows present in a sparse gradient.

    Dense gradients follow Keras' ``Adam`` exactly (``amsgrad=False``):

        alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g**2 - v) * (1 - beta_2)
        theta <- theta - alpha * m / (sqrt(v) + epsilon)

    with ``t = iterations + 1``, the global step (bitwise equal to Keras in
    float32; in float64 Keras rounds the betas through float32 and LazyAdam
    does not, a difference of about 1e-5 relative in the first steps).
    A ``tf.IndexedSlices``
    gradient (``[N, ...]`` values for ``N`` row indices into a ``[V, ...]``
    variable) first has its duplicate indices summed (``tf.unique`` then
    ``tf.math.unsorted_segment_sum``, as a dense gradient would add them);
    then the same three lines run on the ``U <= N`` gathered rows of ``m``,
    ``v`` and ``theta`` and are scattered back. Rows absent from the gradient
    keep their weights and both moments bit for bit, and no ``[V, ...]``
    temporary is formed, so a step costs O(U * D) instead of O(V * D). The
    bias correction still uses the global step ``t``, not a per-row count:
    a row's moments decay only on the steps that touch it ("lazy"), which is
    the known difference from dense Adam on sparse data.

    Works in ``model.fit`` with ``jit_compile=False`` and with XLA
    (``jit_compile=True``, also Keras' ``"auto"`` default), in a
    ``tf.function`` and eagerly through ``optimizer.apply_gradients``.

    These base options apply to the whole variable every step and so read or
    write all ``V`` rows, which undoes the saving (they stay correct):
    ``weight_decay``, ``use_ema``, ``gradient_accumulation_steps`` (Keras adds
    the gradient to a dense accumulator) and ``global_clipnorm`` (Keras
    multiplies the ``IndexedSlices`` by a tensor, which densifies it; the
    update then takes the dense path). ``clipnorm``, ``clipvalue``,
    ``loss_scale_factor`` and ``keras.optimizers.LossScaleOptimizer`` keep the
    gradient sparse.

    Args:
      learning_rate: float >= 0, a
        ``keras.optimizers.schedules.LearningRateSchedule``, or a callable
        without arguments. Defaults to ``0.001``.
      beta_1: decay of the first moment, in ``[0, 1)``. Defaults to ``0.9``.
      beta_2: decay of the second moment, in ``[0, 1)``. Defaults to ``0.999``.
      epsilon: "epsilon hat" of Kingma & Ba (added to ``sqrt(v)`` after the
        bias correction is folded into ``alpha``), in ``(0, inf)``: zero would
        give ``0 / 0`` for a row whose gradient is all zeros. Defaults to
        ``1e-7`` as in Keras.
      **kwargs: the base ``keras.optimizers.Optimizer`` options
        (``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``,
        ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``,
        ``loss_scale_factor``, ``gradient_accumulation_steps``, ``name``).

    Raises:
      ValueError: naming the parameter, for ``learning_rate < 0``, ``beta_1``
        or ``beta_2`` outside ``[0, 1)``, or ``epsilon <= 0``.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2014
      (arXiv:1412.6980); TF1 ``tf.contrib.opt.LazyAdamOptimizer``;
      tensorflow_addons ``tfa.optimizers.LazyAdam``.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        **kwargs,
    ):
        if isinstance(learning_rate, Real) and not isinstance(learning_rate, bool):
            learning_rate = float(check_number("learning_rate", learning_rate, low=0.0))
        beta_1 = check_number("beta_1", beta_1, low=0.0, high=1.0, high_open=True)
        beta_2 = check_number("beta_2", beta_2, low=0.0, high=1.0, high_open=True)
        epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        super().__init__(learning_rate=learning_rate, **kwargs)
        # Plain floats, so that get_config is JSON for model.save.
        self.beta_1 = float(beta_1) if isinstance(beta_1, Real) else beta_1
        self.beta_2 = float(beta_2) if isinstance(beta_2, Real) else beta_2
        self.epsilon = float(epsilon) if isinstance(epsilon, Real) else epsilon

    def build(self, var_list):
        """Creates the first and second moment slots, zeros like each variable."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def apply(self, grads, trainable_variables=None):
        """Applies the gradients; see ``keras.optimizers.Optimizer.apply``.

        With ``loss_scale_factor`` set, Keras 3.15 unscales with ``g / scale``,
        which raises ``TypeError`` for a ``tf.IndexedSlices`` (in every Keras
        optimizer). Here sparse gradients are unscaled on their values instead,
        so they stay sparse.
        """
        scale = self.loss_scale_factor
        grads = list(grads)
        if scale is None or not any(isinstance(g, tf.IndexedSlices) for g in grads):
            return super().apply(grads, trainable_variables)
        grads = [_unscale(g, scale) for g in grads]
        self.loss_scale_factor = None
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self.loss_scale_factor = scale

    def update_step(self, gradient, variable, learning_rate):
        """Applies one Adam step: to the gradient's rows only if it is sparse."""
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1_power = tf.pow(_constant(self.beta_1, dtype), local_step)
        beta_2_power = tf.pow(_constant(self.beta_2, dtype), local_step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]

        if isinstance(gradient, tf.IndexedSlices):
            self._sparse_update(gradient, variable, m, v, alpha)
            return

        gradient = tf.cast(gradient, dtype)
        new_m, new_v, delta = _adam_rows(
            tf.convert_to_tensor(m),
            tf.convert_to_tensor(v),
            gradient,
            alpha,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        )
        self.assign(m, new_m)
        self.assign(v, new_v)
        self.assign_sub(variable, delta)

    def _sparse_update(self, gradient, variable, m, v, alpha):
        dtype = variable.dtype
        rows, positions = tf.unique(gradient.indices)
        # Duplicate indices add up, exactly as in the dense gradient.
        summed = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), positions, tf.shape(rows)[0]
        )
        # Gathering from the tf.Variable reads only these rows (ResourceGather);
        # converting the variable to a tensor first would copy all of it.
        new_m, new_v, delta = _adam_rows(
            tf.gather(_tf_variable(m), rows),
            tf.gather(_tf_variable(v), rows),
            summed,
            alpha,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        )
        self.assign(m, tf.IndexedSlices(new_m, rows))
        self.assign(v, tf.IndexedSlices(new_v, rows))
        self.assign_sub(variable, tf.IndexedSlices(delta, rows))

    def get_config(self):
        """The base optimizer's config plus ``beta_1``, ``beta_2``, ``epsilon``."""
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
            }
        )
        return config
