import numpy as np
import pytest

from lossviz._common import as_float, check_choice, check_number
from lossviz._tf import tf


@pytest.mark.parametrize(
    "value", [0, -1.0, float("nan"), 1e5, "3", None, True]
)
def test_check_number_rejects_and_names_parameter(value):
    with pytest.raises(ValueError, match=r"`power`.*\(0, 10000"):
        check_number("power", value, low=0, high=1e4, low_open=True)


def test_check_number_accepts_edges_and_scalar_tensors():
    assert check_number("power", 1e4, low=0, high=1e4, low_open=True) == 1e4
    assert check_number("power", tf.constant(2.5), low=0, low_open=True) == 2.5
    with pytest.raises(ValueError, match="integer"):
        check_number("iterations", 1.5, low=1, integer=True)


def test_check_choice():
    assert check_choice("distance", "mse", ("cosine", "mse")) == "mse"
    with pytest.raises(ValueError, match="`distance`.*'cosine'"):
        check_choice("distance", "l1", ("cosine", "mse"))


def test_as_float_keeps_float64_only():
    assert as_float([1, 2]).dtype == tf.float32
    assert as_float(np.ones(2, np.float64)).dtype == tf.float64
    assert as_float(tf.constant([1, 2])).dtype == tf.float32
    assert as_float([1.0], dtype=tf.float64).dtype == tf.float64
