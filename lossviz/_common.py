"""Small helpers every loss family shares: dtypes and parameter checks."""

from __future__ import annotations

import math
from numbers import Real

from lossviz._tf import tf


def as_float(x, dtype=None) -> tf.Tensor:
    """Returns ``x`` as a float tensor: float64 stays float64, else float32.

    Args:
      x: array-like or tensor.
      dtype: force this dtype instead (e.g. to match another input).
    """
    if dtype is not None:
        return tf.cast(x, dtype) if tf.is_tensor(x) else tf.convert_to_tensor(
            x, dtype=dtype
        )
    if tf.is_tensor(x):
        return x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    probe = tf.convert_to_tensor(x)
    if probe.dtype == tf.float64:
        return probe
    return tf.cast(probe, tf.float32)


def check_number(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
):
    """Raises ``ValueError`` naming ``name`` and its range unless ``value`` fits.

    Tensors are accepted when their value is known (eager); a symbolic value
    inside ``tf.function`` is passed through unchecked.
    """
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = (
        f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    )
    kind = "an integer" if integer else "a number"
    if tf.is_tensor(value):
        if not tf.executing_eagerly() or value.shape.rank != 0:
            if value.shape.rank not in (None, 0):
                raise ValueError(f"`{name}` must be a scalar, got shape {value.shape}.")
            return value
        value = value.numpy().item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"`{name}` must be {kind} in {allowed}, got {value!r}.")
    if integer and int(value) != value:
        raise ValueError(f"`{name}` must be {kind} in {allowed}, got {value!r}.")
    if math.isnan(value):
        raise ValueError(f"`{name}` must be {kind} in {allowed}, got NaN.")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise ValueError(f"`{name}` must be {kind} in {allowed}, got {value!r}.")
    return value


def check_choice(name: str, value, choices) -> str:
    """Raises ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}.")
    return value
