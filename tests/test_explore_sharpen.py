"""lossviz.explore.sharpen against numpy references.

The references use an identity rather than the code under test: sharpening
``softmax(z)`` by ``k``, ``n`` times, is ``softmax(k**n * z)``, so the loss and
its analytic gradient are written in float64 from the logits directly (and
that gradient is checked by finite differences). The naive form's NaN is
recomputed with numpy's float32 and the CPU's flush of subnormal numbers to
zero; the power where the gradient becomes exactly 0 is checked against the
exact gradient, which must have fallen below float32's resolution there.
"""

import dataclasses

import numpy as np
import pytest

from lossviz import registry
from lossviz.explore import grad_norm
from lossviz.explore import sharpen as explore
from lossviz.training import sharpen as training_sharpen

TINY32 = np.finfo(np.float32).tiny


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_weights(logits, power, iterations):
    """sharpen_k applied n times to softmax(z) = softmax(k**n * z)."""
    return np_softmax(float(power) ** iterations * np.asarray(logits, np.float64))


def np_loss_and_grad(batch, power, iterations, distance):
    """Per-sample loss and the gradient of its sum with respect to the logits."""
    target = batch.target.astype(np.float64)
    table = batch.embedding.astype(np.float64)
    w = np_weights(batch.logits, power, iterations)
    e = w @ table
    if distance == "cosine":
        nt = np.linalg.norm(target, axis=-1, keepdims=True)
        ne = np.linalg.norm(e, axis=-1, keepdims=True)
        dot = np.sum(target * e, -1, keepdims=True)
        loss = np.clip(1.0 - dot[:, 0] / (nt * ne)[:, 0], 0.0, 2.0)
        grad_e = -(target / (nt * ne) - dot * e / (nt * ne**3))
    else:
        loss = np.mean((target - e) ** 2, -1)
        grad_e = -2.0 * (target - e) / target.shape[-1]
    u = grad_e @ table.T
    scale = float(power) ** iterations
    grad = scale * w * (u - np.sum(w * u, -1, keepdims=True))
    return loss, grad


def np_flush(x):
    """The CPU kernels' flush of subnormal float32 results to zero."""
    return np.where(np.abs(x) < TINY32, np.float32(0), x)


def np_naive_float32(logits, power, iterations):
    """The literal x**k / sum(x**k), in float32, subnormals flushed."""
    out = np.asarray(np_softmax(logits), np.float32)
    with np.errstate(all="ignore"):
        for _ in range(iterations):
            raised = np_flush(out ** np.float32(power))
            out = raised / raised.sum(-1, keepdims=True)
    return out


def batch(setting, seed=0):
    return explore.example_batch(logit_scale=setting.logit_scale, seed=seed)


SETTINGS = [
    explore.Setting(),
    explore.Setting(power=0.5, distance="mse"),
    explore.Setting(power=5.0, iterations=2, logit_scale=1.0),
    explore.Setting(power=50.0, distance="mse", logit_scale=0.5),
    explore.Setting(power=200.0, hard=True),
]


# --- the example batch -----------------------------------------------------------


def test_example_batch_is_seeded_and_half_right():
    b = explore.example_batch(5, 8, 3, logit_scale=2.0, seed=4)
    assert b.logits.shape == (5, 8) and b.embedding.shape == (8, 3)
    assert b.target.shape == (5, 3)
    assert b.logits.dtype == np.float32 and b.target_ids.dtype == np.int64
    np.testing.assert_array_equal(b.target, b.embedding[b.target_ids])
    right = b.target_ids == b.logits.argmax(-1)
    np.testing.assert_array_equal(right, [True, True, True, False, False])
    again = explore.example_batch(5, 8, 3, logit_scale=2.0, seed=4)
    np.testing.assert_array_equal(again.logits, b.logits)
    other = explore.example_batch(5, 8, 3, logit_scale=2.0, seed=5)
    assert not np.allclose(other.logits, b.logits)
    # the scale multiplies the same draw
    doubled = explore.example_batch(5, 8, 3, logit_scale=4.0, seed=4)
    np.testing.assert_allclose(doubled.logits, 2 * b.logits, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_samples": 0}, "num_samples"), ({"vocab_size": 1}, "vocab_size"),
     ({"embedding_dim": 0}, "embedding_dim"), ({"logit_scale": 0.0}, "logit_scale"),
     ({"seed": -1}, "seed")],
)  # fmt: skip
def test_example_batch_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        explore.example_batch(**kwargs)


def test_sample_names_say_whether_the_target_is_the_argmax():
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 0.0, 1.0]])
    assert explore.sample_names(logits, np.array([1, 2])) == (
        "0: target 1 (= argmax)",
        "1: target 2 (not argmax)",
    )


# --- settings ----------------------------------------------------------------------


def test_params_are_the_registry_specs_and_the_sweep_spans_the_power_control():
    entry = registry.get("embedding_target_loss")
    for name in ("power", "iterations", "distance"):
        assert explore.PARAMS[name] == entry.param(name)
    options = entry.param("power").ui_options
    assert explore.SWEEP_POWERS[0] == pytest.approx(min(options))
    assert explore.SWEEP_POWERS[-1] == pytest.approx(max(options))
    ratios = explore.SWEEP_POWERS[1:] / explore.SWEEP_POWERS[:-1]
    np.testing.assert_allclose(ratios, 10 ** (1 / 8))  # eight per decade


@pytest.mark.parametrize(
    "kwargs, name",
    [({"power": 0.0}, "power"), ({"power": 2e4}, "power"),
     ({"iterations": 0}, "iterations"), ({"iterations": 11}, "iterations"),
     ({"iterations": 1.5}, "iterations"), ({"distance": "l1"}, "distance"),
     ({"logit_scale": 0.0}, "logit_scale"), ({"hard": "yes"}, "hard")],
)  # fmt: skip
def test_setting_rejects_values_outside_the_controls(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        explore.Setting(**kwargs)


@pytest.mark.parametrize(
    "power, iterations, expected",
    [(2.0, 1, 0.5), (2.0, 3, 0.125), (0.1, 2, 100.0), (1e4, 10, 1e-40)],
)
def test_temperature_is_one_over_the_power_to_the_iterations(
    power, iterations, expected
):
    setting = explore.Setting(power=power, iterations=iterations)
    assert setting.temperature == pytest.approx(expected, rel=1e-12)
    assert explore.at_setting(setting).temperature == setting.temperature


# --- one setting -------------------------------------------------------------------


@pytest.mark.parametrize("setting", SETTINGS, ids=repr)
def test_loss_and_gradient_match_numpy(setting):
    point = explore.at_setting(setting, 0)
    loss, grad = np_loss_and_grad(
        batch(setting), setting.power, setting.iterations, setting.distance
    )
    np.testing.assert_allclose(point.loss, loss, rtol=1e-4, atol=1e-5)
    assert point.mean_loss == pytest.approx(loss.mean(), rel=1e-4, abs=1e-6)
    scale = max(np.abs(grad).max(), 1e-3)
    np.testing.assert_allclose(point.grad, grad, rtol=1e-3, atol=1e-4 * scale)
    assert point.grad_norm == pytest.approx(
        np.linalg.norm(grad), rel=1e-3, abs=1e-4 * scale
    )


def test_the_numpy_gradient_reference_matches_finite_differences():
    b = batch(explore.Setting())
    for distance in ("cosine", "mse"):
        _, grad = np_loss_and_grad(b, 3.0, 2, distance)
        numeric = np.zeros_like(grad)
        for index in np.ndindex(*b.logits.shape):
            shifted = []
            for step in (1e-6, -1e-6):
                logits = b.logits.astype(np.float64).copy()
                logits[index] += step
                moved = dataclasses.replace(b, logits=logits)
                shifted.append(np_loss_and_grad(moved, 3.0, 2, distance)[0].sum())
            numeric[index] = (shifted[0] - shifted[1]) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("setting", SETTINGS, ids=repr)
def test_distributions_match_numpy(setting):
    point = explore.at_setting(setting, 0)
    logits = batch(setting).logits
    np.testing.assert_array_equal(point.logits, logits)
    np.testing.assert_allclose(point.probs, np_softmax(logits), atol=1e-6)
    sharpened = np_weights(logits, setting.power, setting.iterations)
    np.testing.assert_allclose(point.stable, sharpened, atol=1e-4)
    np.testing.assert_allclose(point.tempered, sharpened, atol=1e-6)
    one_hot = np.eye(logits.shape[-1])[logits.argmax(-1)]
    np.testing.assert_array_equal(point.straight_through, one_hot)
    naive = np_naive_float32(logits, setting.power, setting.iterations)
    np.testing.assert_allclose(point.naive, naive, rtol=1e-4, atol=1e-6)
    assert point.naive_nonfinite == int((~np.isfinite(naive)).sum())
    gap = np.abs(point.stable.astype(np.float64) - point.tempered).max()
    assert point.max_gap == gap
    assert point.max_gap < 1e-4
    assert point.sample_names == explore.sample_names(logits, point.target_ids)


def test_the_naive_form_breaks_at_power_200_and_the_stable_form_does_not():
    point = explore.at_setting(explore.Setting(power=200.0), 0)
    assert point.naive_nonfinite == point.naive.size  # every row is 0/0
    assert np.isfinite(point.stable).all() and np.isfinite(point.loss).all()


def test_gumbel_sample_is_seeded_and_hard_is_its_one_hot():
    soft = explore.at_setting(explore.Setting(power=1.0), 3).gumbel
    again = explore.at_setting(explore.Setting(power=1.0), 3).gumbel
    hard = explore.at_setting(explore.Setting(power=1.0, hard=True), 3).gumbel
    other = explore.at_setting(explore.Setting(power=1.0), 4).gumbel
    np.testing.assert_array_equal(soft, again)
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
    assert not np.allclose(soft, other)
    np.testing.assert_array_equal(hard, np.eye(soft.shape[-1])[soft.argmax(-1)])
    # at a tiny temperature the soft sample is a one-hot already
    cold = explore.at_setting(explore.Setting(power=1e4, iterations=3), 3).gumbel
    np.testing.assert_array_equal(cold.max(-1), 1.0)


def test_a_power_move_reuses_the_compiled_graph():
    explore.at_setting(explore.Setting(power=2.0), 0)
    graph = explore._point_graph(1, "cosine", False)
    traced = graph.experimental_get_tracing_count()
    explore.at_setting(explore.Setting(power=500.0), 0)
    explore.at_setting(explore.Setting(power=0.1, logit_scale=4.0), 2)
    assert graph.experimental_get_tracing_count() == traced


def test_a_point_is_frozen():
    point = explore.at_setting(explore.Setting(), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.mean_loss = 0.0


# --- the sweep ---------------------------------------------------------------------

SWEEPS = [
    explore.SweepSetting(),
    explore.SweepSetting(iterations=2, distance="mse"),
    explore.SweepSetting(logit_scale=0.5),
    explore.SweepSetting(iterations=3, logit_scale=5.0),
]


@pytest.mark.parametrize("setting", SWEEPS, ids=repr)
def test_sweep_matches_numpy_at_every_power(setting):
    sweep = explore.power_sweep(setting, 0)
    b = batch(setting)
    np.testing.assert_allclose(sweep.powers, explore.SWEEP_POWERS)
    refs = [
        np_loss_and_grad(b, p, setting.iterations, setting.distance)
        for p in explore.SWEEP_POWERS
    ]
    mean_loss = np.array([loss.mean() for loss, _ in refs])
    norms = np.array([np.linalg.norm(grad) for _, grad in refs])
    np.testing.assert_allclose(sweep.mean_loss, mean_loss, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(sweep.grad_norm, norms, rtol=2e-2, atol=1e-4)
    top = np.array(
        [np_weights(b.logits, p, setting.iterations).max(-1).mean()
         for p in explore.SWEEP_POWERS]
    )  # fmt: skip
    np.testing.assert_allclose(sweep.stable_top, top, atol=1e-4)


@pytest.mark.parametrize("setting", SWEEPS, ids=repr)
def test_sweep_first_nan_and_first_zero_gradient_match_float32_in_numpy(setting):
    sweep = explore.power_sweep(setting, 0)
    b = batch(setting)
    naive = [
        np_naive_float32(b.logits, p, setting.iterations) for p in explore.SWEEP_POWERS
    ]
    broken = np.array([not np.isfinite(n).all() for n in naive])
    assert broken.any()
    assert sweep.first_nan == explore.SWEEP_POWERS[broken.argmax()]
    np.testing.assert_array_equal(np.isnan(sweep.naive_top), broken)
    tops = np.array([n.max(-1).mean() for n in naive])
    np.testing.assert_allclose(sweep.naive_top[~broken], tops[~broken], atol=1e-4)
    # "From k ≈ X the gradient is exactly 0": from X on, at every grid power;
    # below it, never.
    first = list(explore.SWEEP_POWERS).index(sweep.first_zero_grad)
    assert (sweep.grad_norm[first:] == 0).all()
    assert (sweep.grad_norm[:first] > 0).all()
    # float32 loses a gradient that has truly vanished: the exact one there is
    # below float32's resolution next to the gradient at power 1 (how it
    # rounds to exactly 0 depends on the order of float32 operations).
    _, at_one = np_loss_and_grad(b, 1.0, setting.iterations, setting.distance)
    _, at_first = np_loss_and_grad(
        b, sweep.first_zero_grad, setting.iterations, setting.distance
    )
    resolution = np.finfo(np.float32).eps * np.abs(at_one).max()
    assert np.abs(at_first).max() < resolution
    point = explore.at_setting(
        explore.Setting(**dataclasses.asdict(setting), power=sweep.first_zero_grad)
    )
    assert point.grad_norm == 0


def test_sweep_agrees_with_the_point_at_a_grid_power():
    power = float(explore.SWEEP_POWERS[20])  # 10
    sweep = explore.power_sweep(explore.SweepSetting(distance="mse"), 1)
    point = explore.at_setting(explore.Setting(power=power, distance="mse"), 1)
    assert sweep.mean_loss[20] == pytest.approx(point.mean_loss, rel=1e-6)
    assert sweep.grad_norm[20] == pytest.approx(point.grad_norm, rel=1e-5)
    assert point.grad_norm == grad_norm(point.grad)


def test_the_sweep_setting_leaves_the_power_out():
    a = explore.Setting(power=2.0, hard=True).sweep_setting
    b = explore.Setting(power=500.0).sweep_setting
    assert a == b == explore.SweepSetting()
    assert hash(a) == hash(b)


# --- training ----------------------------------------------------------------------


def test_train_runs_follow_the_controls_and_training_accepts_them():
    runs = explore.train_runs(
        explore.Setting(power=5.0, iterations=2, distance="mse")
    )
    assert [r.label for r in runs] == [
        "softmax (k = 1, mse)",
        "sharpened (k = 5 × 2, mse)",
        "straight-through (k = 1, mse)",
    ]
    assert [r.variant for r in runs] == list(training_sharpen.VARIANT_PARAMS)
    assert runs[1].params == {"power": 5.0, "iterations": 2, "distance": "mse"}
    high = explore.PARAMS["iterations"].ui_range[1]
    for setting in (explore.Setting(), explore.Setting(power=1e4, iterations=high)):
        for run in explore.train_runs(setting):
            training_sharpen.check_params(run.variant, run.params)
    assert explore.TRAINING.task == training_sharpen.TASK.name
    assert set(explore.TRAINING.metrics) <= set(training_sharpen.TASK.metrics)
