import numpy as np
import pytest

from lossviz._tf import tf
from lossviz.analysis import median_time, nonfinite_summary, sweep, value_and_grad


def test_value_and_grad_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    values, grad = value_and_grad(lambda t: tf.reduce_sum(t**2, axis=-1), x)
    np.testing.assert_allclose(values, (x**2).sum(-1))
    np.testing.assert_allclose(grad, 2 * x)


def test_value_and_grad_disconnected_is_zero():
    x = np.ones((2, 3))
    _, grad = value_and_grad(lambda t: tf.zeros([2]), x)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


def test_sweep_matches_closed_form_and_keeps_nonfinite():
    x = np.array([1.0, 2.0])
    out = sweep(lambda t, p: p * t**2, x, [0.0, 1.0, 3.0])
    np.testing.assert_allclose(out["mean_loss"], np.array([0, 1, 3]) * 2.5)
    np.testing.assert_allclose(
        out["grad_norm"], np.array([0, 1, 3]) * np.linalg.norm(2 * x)
    )
    bad = sweep(lambda t, p: tf.math.log(t - p), x, [0.0, 5.0])
    assert np.isfinite(bad["mean_loss"][0]) and np.isnan(bad["mean_loss"][1])


def test_nonfinite_summary_counts_and_locates():
    a = np.array([[1.0, np.nan], [np.inf, -np.inf]])
    s = nonfinite_summary(a)
    assert (s["total"], s["count"], s["nan"], s["posinf"], s["neginf"]) == (
        4,
        3,
        1,
        1,
        1,
    )
    assert s["where"] == [(0, 1), (1, 0), (1, 1)]
    assert nonfinite_summary(np.arange(3))["count"] == 0


def test_median_time_is_positive_and_checks_repeats():
    assert median_time(lambda: tf.ones([3]) * 2, repeats=3) > 0
    with pytest.raises(ValueError, match="`repeats`"):
        median_time(lambda: None, repeats=0)
