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
from views.content import sharpen as content

TINY32 = np.finfo(np.float32).tiny


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_weights(logits, power, iterations):
    """sharpen_k applied n times to softmax(z) = softmax(k**n * z)."""
    return np_softmax(float(power) ** iterations * np.asarray(logits, np.float64))


def np_tempered(logits, temperature):
    """The temperature softmax itself: softmax(z / T)."""
    return np_softmax(np.asarray(logits, np.float64) / float(temperature))


def np_loss_and_grad(batch, power, iterations, distance, temperature=None):
    """Per-sample loss and the gradient of its sum with respect to the logits,
    sharpened by ``power`` (``iterations`` times), or by ``temperature``
    (softmax(z / T)) where one is given."""
    target = batch.target.astype(np.float64)
    table = batch.embedding.astype(np.float64)
    if temperature is None:
        w = np_weights(batch.logits, power, iterations)
        scale = float(power) ** iterations
    else:
        w = np_tempered(batch.logits, temperature)
        scale = 1.0 / float(temperature)
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
    # by temperature: softmax(z / T) drives, the power is 1/T
    explore.Setting(sharpen_by="temperature", temperature=0.5),
    explore.Setting(sharpen_by="temperature", temperature=5.0, distance="mse"),
    explore.Setting(sharpen_by="temperature", temperature=0.02, logit_scale=0.5),
    explore.Setting(sharpen_by="temperature", temperature=0.005, hard=True),
]


def np_reference(setting, seed=0):
    """The numpy loss and gradient along the setting's own path."""
    by_t = setting.sharpen_by == "temperature"
    return np_loss_and_grad(
        batch(setting, seed),
        setting.power,
        setting.iterations,
        setting.distance,
        temperature=setting.temperature if by_t else None,
    )


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


def test_the_temperature_grid_is_the_reciprocal_of_the_power_grid():
    powers = explore.PARAMS["power"].ui_options
    temperatures = explore.PARAMS["temperature"].ui_options
    assert temperatures == tuple(sorted(temperatures))
    # each temperature stands for a power of the power control, exactly
    assert sorted(1.0 / t for t in temperatures) == sorted(powers)
    np.testing.assert_allclose(explore.SWEEP_TEMPERATURES * explore.SWEEP_POWERS, 1.0)
    # every temperature of the control is allowed; below 1/10⁴ the power is not
    for t in temperatures:
        explore.Setting(sharpen_by="temperature", temperature=t)
    default = explore.PARAMS["temperature"].default
    assert default == explore.Setting().temperature  # T = 1/k at the default k


@pytest.mark.parametrize(
    "kwargs, name",
    [({"power": 0.0}, "power"), ({"power": 2e4}, "power"),
     ({"iterations": 0}, "iterations"), ({"iterations": 11}, "iterations"),
     ({"iterations": 1.5}, "iterations"), ({"distance": "l1"}, "distance"),
     ({"logit_scale": 0.0}, "logit_scale"), ({"hard": "yes"}, "hard"),
     ({"sharpen_by": "both"}, "sharpen_by"),
     ({"sharpen_by": "temperature", "temperature": 0.0}, "temperature"),
     ({"sharpen_by": "temperature", "temperature": 5e-5}, "temperature")],
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
    setting = explore.Setting(power=power, iterations=iterations, temperature=7.0)
    assert setting.temperature == pytest.approx(expected, rel=1e-12)
    assert setting.derived == setting.temperature and setting.driving == power
    assert explore.at_setting(setting).temperature == setting.temperature


@pytest.mark.parametrize("temperature", [10.0, 0.5, 0.02, 1e-4])
def test_by_temperature_the_power_is_one_over_it_and_applied_once(temperature):
    setting = explore.Setting(
        sharpen_by="temperature", temperature=temperature, power=3.0, iterations=4
    )
    # the greyed controls' values are replaced by the derived ones
    assert setting.power == pytest.approx(1.0 / temperature, rel=1e-12)
    assert setting.iterations == 1
    assert setting.driving == temperature and setting.derived == setting.power
    assert setting.sweep_setting.iterations == 1
    # so the greyed controls cannot change the setting, nor a cache key
    other = explore.Setting(sharpen_by="temperature", temperature=temperature)
    assert setting == other and hash(setting) == hash(other)
    # and by power the temperature control is the one that cannot
    assert explore.Setting(power=5.0, temperature=0.1) == explore.Setting(
        power=5.0, temperature=9.0
    )


def test_the_pages_defaults_are_the_default_setting():
    assert explore.Setting.of(content.CONTROLS.defaults()) == explore.Setting()


def test_a_setting_is_made_from_the_pages_values_by_name():
    values = {"sharpen_by": "temperature", "temperature": 0.2, "power": 50.0,
              "iterations": 3, "distance": "mse", "logit_scale": 4.0,
              "sample": 2, "hard": True}  # fmt: skip
    setting = explore.Setting.of(values)
    assert setting == explore.Setting(
        distance="mse", logit_scale=4.0, sharpen_by="temperature",
        temperature=0.2, hard=True,
    )  # fmt: skip
    assert setting.describe() == "T = 0.2 (k = 1/T = 5)"
    assert explore.Setting(power=5.0, iterations=2).describe() == (
        "k = 5 × 2 (T = 1/kⁿ = 0.04)"
    )
    assert explore.Setting(power=200.0).describe() == "k = 200"


# --- one setting -------------------------------------------------------------------


@pytest.mark.parametrize("setting", SETTINGS, ids=repr)
def test_loss_and_gradient_match_numpy(setting):
    point = explore.at_setting(setting, 0)
    loss, grad = np_reference(setting)
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
        for power, iterations, temperature in ((3.0, 2, None), (None, 1, 0.3)):
            _, grad = np_loss_and_grad(b, power, iterations, distance, temperature)
            numeric = np.zeros_like(grad)
            for index in np.ndindex(*b.logits.shape):
                shifted = []
                for step in (1e-6, -1e-6):
                    logits = b.logits.astype(np.float64).copy()
                    logits[index] += step
                    moved = dataclasses.replace(b, logits=logits)
                    loss, _ = np_loss_and_grad(
                        moved, power, iterations, distance, temperature
                    )
                    shifted.append(loss.sum())
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
    # softmax(z / T) itself, at the derived (or driving) temperature
    tempered = np_tempered(logits, setting.temperature)
    np.testing.assert_allclose(point.tempered, tempered, atol=1e-6)
    np.testing.assert_allclose(tempered, sharpened, atol=1e-9)  # T = 1/kⁿ
    by_t = setting.sharpen_by == "temperature"
    assert point.sharpened is (point.tempered if by_t else point.stable)
    one_hot = np.eye(logits.shape[-1])[logits.argmax(-1)]
    np.testing.assert_array_equal(point.straight_through, one_hot)
    naive = np_naive_float32(logits, setting.power, setting.iterations)
    np.testing.assert_allclose(point.naive, naive, rtol=1e-4, atol=1e-6)
    assert point.naive_nonfinite == int((~np.isfinite(naive)).sum())
    gap = np.abs(point.stable.astype(np.float64) - point.tempered).max()
    assert point.max_gap == gap
    assert point.max_gap < 1e-4
    assert point.sample_names == explore.sample_names(logits, point.target_ids)
    assert (point.power, point.temperature) == (setting.power, setting.temperature)


@pytest.mark.parametrize("setting", SETTINGS, ids=repr)
def test_each_gradient_row_sums_to_zero(setting):
    # The gradient caption: "Each row sums to 0 (a softmax is shift-invariant)".
    point = explore.at_setting(setting, 0)
    scale = max(np.abs(point.grad).max(), TINY32)
    np.testing.assert_allclose(point.grad.sum(-1) / scale, 0.0, atol=1e-5)


def test_sharpening_by_t_and_by_k_is_one_loss_at_every_control_value():
    # The tie T = 1/k, along both paths, over the temperature control's grid.
    for temperature in explore.PARAMS["temperature"].ui_options:
        by_t = explore.Setting(sharpen_by="temperature", temperature=temperature)
        by_k = explore.Setting(power=1.0 / temperature)
        a, b = explore.at_setting(by_t), explore.at_setting(by_k)
        np.testing.assert_allclose(a.loss, b.loss, atol=1e-5)
        scale = max(np.abs(b.grad).max(), np.abs(explore.at_setting(
            explore.Setting(power=1.0)).grad).max())  # fmt: skip
        np.testing.assert_allclose(a.grad, b.grad, atol=1e-4 * scale)


def test_iterations_are_the_power_raised_to_them():
    # "`k` twice is `k²` once"
    twice = explore.at_setting(explore.Setting(power=3.0, iterations=2))
    once = explore.at_setting(explore.Setting(power=9.0))
    np.testing.assert_allclose(twice.loss, once.loss, atol=1e-6)
    np.testing.assert_allclose(twice.stable, once.stable, atol=1e-6)
    assert twice.temperature == pytest.approx(once.temperature)


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


def test_a_power_or_temperature_move_reuses_the_compiled_graph():
    for by, moves in (
        ("power", [{"power": 500.0}, {"power": 0.1, "logit_scale": 4.0}]),
        ("temperature", [{"temperature": 0.002}, {"temperature": 5.0,
                                                  "logit_scale": 4.0}]),
    ):  # fmt: skip
        first = explore.Setting(sharpen_by=by)
        explore.at_setting(first, 0)
        graph = explore._point_graph(explore._path(first), False)
        traced = graph.experimental_get_tracing_count()
        for seed, move in enumerate(moves, start=1):
            explore.at_setting(explore.Setting(sharpen_by=by, **move), seed)
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
    explore.SweepSetting(sharpen_by="temperature"),
    explore.SweepSetting(sharpen_by="temperature", distance="mse", logit_scale=0.5),
]


def np_sweep_reference(setting, b):
    """Per point: the loss and gradient along the setting's path, and the
    distribution the loss sees."""
    if setting.sharpen_by == "temperature":
        return [
            (*np_loss_and_grad(b, None, 1, setting.distance, t),
             np_tempered(b.logits, t))
            for t in explore.SWEEP_TEMPERATURES
        ]  # fmt: skip
    return [
        (*np_loss_and_grad(b, p, setting.iterations, setting.distance),
         np_weights(b.logits, p, setting.iterations))
        for p in explore.SWEEP_POWERS
    ]  # fmt: skip


@pytest.mark.parametrize("setting", SWEEPS, ids=repr)
def test_sweep_matches_numpy_at_every_point(setting):
    sweep = explore.sweep(setting, 0)
    b = batch(setting)
    by_t = setting.sharpen_by == "temperature"
    assert sweep.by == setting.sharpen_by
    grid = explore.SWEEP_TEMPERATURES if by_t else explore.SWEEP_POWERS
    np.testing.assert_allclose(sweep.values, grid)
    np.testing.assert_allclose(sweep.powers, explore.SWEEP_POWERS)
    np.testing.assert_allclose(
        sweep.temperatures, explore.SWEEP_POWERS**-setting.iterations
    )
    refs = np_sweep_reference(setting, b)
    mean_loss = np.array([loss.mean() for loss, _, _ in refs])
    norms = np.array([np.linalg.norm(grad) for _, grad, _ in refs])
    np.testing.assert_allclose(sweep.mean_loss, mean_loss, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(sweep.grad_norm, norms, rtol=2e-2, atol=1e-4)
    top = np.array([w.max(-1).mean() for _, _, w in refs])
    np.testing.assert_allclose(sweep.sharpened_top, top, atol=1e-4)


@pytest.mark.parametrize("setting", SWEEPS, ids=repr)
def test_sweep_first_nan_and_first_zero_gradient_match_float32_in_numpy(setting):
    sweep = explore.sweep(setting, 0)
    b = batch(setting)
    naive = [np_naive_float32(b.logits, p, setting.iterations) for p in sweep.powers]
    broken = np.array([not np.isfinite(n).all() for n in naive])
    assert broken.any()
    assert sweep.first_nan == sweep.values[broken.argmax()]
    np.testing.assert_array_equal(np.isnan(sweep.naive_top), broken)
    tops = np.array([n.max(-1).mean() for n in naive])
    np.testing.assert_allclose(sweep.naive_top[~broken], tops[~broken], atol=1e-4)
    # "From k ≈ X (T ≈ X down) the gradient is exactly 0": from X on, at every
    # grid point; before it, never.
    first = list(sweep.values).index(sweep.first_zero_grad)
    assert (sweep.grad_norm[first:] == 0).all()
    assert (sweep.grad_norm[:first] > 0).all()
    # float32 loses a gradient that has truly vanished: the exact one there is
    # below float32's resolution next to the gradient at power 1 (how it
    # rounds to exactly 0 depends on the order of float32 operations).
    _, at_one = np_loss_and_grad(b, 1.0, 1, setting.distance)
    _, at_first, _ = np_sweep_reference(setting, b)[first]
    resolution = np.finfo(np.float32).eps * np.abs(at_one).max()
    assert np.abs(at_first).max() < resolution
    fields = dataclasses.asdict(setting)
    if setting.sharpen_by == "temperature":
        point = explore.Setting(**fields, temperature=sweep.first_zero_grad)
    else:
        point = explore.Setting(**fields, power=sweep.first_zero_grad)
    assert explore.at_setting(point).grad_norm == 0


@pytest.mark.parametrize("by", explore.SHARPEN_BY)
def test_sweep_agrees_with_the_point_at_a_grid_value(by):
    value = float(
        (explore.SWEEP_TEMPERATURES if by == "temperature" else explore.SWEEP_POWERS)[
            20
        ]
    )  # 10 or 0.1
    field = "temperature" if by == "temperature" else "power"
    sweep = explore.sweep(explore.SweepSetting(distance="mse", sharpen_by=by), 1)
    point = explore.at_setting(
        explore.Setting(distance="mse", sharpen_by=by, **{field: value}), 1
    )
    assert sweep.mean_loss[20] == pytest.approx(point.mean_loss, rel=1e-6)
    assert sweep.grad_norm[20] == pytest.approx(point.grad_norm, rel=1e-5)
    assert sweep.sharpened_top[20] == pytest.approx(
        point.sharpened.max(-1).mean(), rel=1e-6
    )
    assert point.grad_norm == grad_norm(point.grad)


def test_the_sweep_setting_leaves_the_driving_value_out():
    a = explore.Setting(power=2.0, hard=True).sweep_setting
    b = explore.Setting(power=500.0).sweep_setting
    assert a == b == explore.SweepSetting()
    assert hash(a) == hash(b)
    t = explore.Setting(sharpen_by="temperature", temperature=0.01, iterations=3)
    assert t.sweep_setting == explore.SweepSetting(sharpen_by="temperature")


# --- the page's grid ---------------------------------------------------------------

POINT_ARRAYS = ("loss", "grad", "probs", "stable", "naive", "tempered",
                "straight_through", "gumbel")  # fmt: skip
POINT_NUMBERS = ("mean_loss", "grad_norm", "power", "temperature",
                 "naive_nonfinite", "max_gap")  # fmt: skip


def test_the_grid_is_the_driving_controls_options_in_the_order_p_sharpens():
    controls = content.CONTROLS.resolved()
    np.testing.assert_array_equal(explore.GRID["power"], controls["power"].options)
    np.testing.assert_array_equal(
        explore.GRID["temperature"], controls["temperature"].options[::-1]
    )


@pytest.mark.parametrize(
    "setting",
    [
        explore.SweepSetting(),
        explore.SweepSetting(iterations=3, distance="mse", logit_scale=4.0),
        explore.SweepSetting(sharpen_by="temperature", logit_scale=0.5),
    ],
    ids=["power", "power-3-mse", "temperature"],
)
@pytest.mark.parametrize("seed", [0, 2])
def test_the_grid_at_every_value_is_the_point_there(setting, seed):
    grid = explore.over_grid(setting, seed)
    assert len(grid.values) == 16
    for i, value in enumerate(grid.values):
        for hard in (False, True):
            got = grid.at(value, hard)
            want = explore.at_setting(explore.setting_at(setting, value, hard), seed)
            assert got.setting == want.setting
            assert got.sample_names == want.sample_names
            for name in POINT_ARRAYS:
                np.testing.assert_allclose(
                    getattr(got, name), getattr(want, name), rtol=1e-6, atol=0,
                    err_msg=f"{name} at {value}",
                )  # fmt: skip
            for name in POINT_NUMBERS:
                np.testing.assert_allclose(
                    getattr(got, name), getattr(want, name), rtol=1e-9,
                    err_msg=f"{name} at {value}",
                )  # fmt: skip
        assert grid.mean_loss[i] == pytest.approx(got.mean_loss, rel=1e-12)
        assert grid.grad_norm[i] == got.grad_norm
        assert grid.naive_nonfinite[i] == got.naive_nonfinite
        assert grid.naive_nan[i] == np.isnan(got.naive).sum()
        assert grid.max_gap[i] == got.max_gap
        np.testing.assert_array_equal(grid.top[i], got.sharpened.max(-1))
        assert grid.describe(i) == got.setting.describe()
    finite = np.abs(grid.grad[np.isfinite(grid.grad)])
    assert grid.grad_range == finite.max()


def test_the_grid_matches_numpy():
    setting = explore.SweepSetting(distance="mse")
    grid = explore.over_grid(setting, 1)
    batch = explore.example_batch(seed=1)
    for i, power in enumerate(grid.values):
        if power > 20:  # numpy's float64 is finer than float32 beyond this
            break
        loss, grad = np_loss_and_grad(batch, power, 1, "mse")
        np.testing.assert_allclose(grid.loss[i], loss, rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(grid.grad[i], grad, rtol=2e-3, atol=1e-6)
        np.testing.assert_allclose(
            grid.stable[i], np_weights(batch.logits, power, 1), atol=2e-5
        )


def test_a_grid_value_is_a_lookup_and_other_values_are_refused():
    grid = explore.over_grid(explore.SweepSetting(sharpen_by="temperature"), 0)
    assert grid.index(0.02) == list(grid.values).index(0.02)
    assert grid.at(0.02).setting.power == pytest.approx(50.0)
    with pytest.raises(ValueError, match="grid"):
        grid.at(0.03)


def test_another_controls_move_does_not_retrace_the_grids_graph():
    first = explore.SweepSetting()
    explore.over_grid(first, 0)
    graph = explore._grid_graph(explore._path(first))
    traced = graph.experimental_get_tracing_count()
    for seed, scale in enumerate((4.0, 0.5, 8.0), start=1):
        moved = dataclasses.replace(first, logit_scale=scale)
        assert explore._path(moved) == explore._path(first)
        explore.over_grid(moved, seed)
    assert graph.experimental_get_tracing_count() == traced


# --- the words' numbers ------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_the_intro_facts_match_numpy(seed):
    facts = explore.facts(seed)
    b = explore.example_batch(logit_scale=2.0, seed=seed)
    right = b.logits.argmax(-1) == b.target_ids
    assert facts.vocab_size == b.logits.shape[-1] == 8
    assert facts.num_samples == b.logits.shape[0] == explore.NUM_SAMPLES
    assert facts.right == tuple(np.flatnonzero(right))
    assert facts.wrong == tuple(np.flatnonzero(~right))
    assert facts.max_power == pytest.approx(1e4)
    # the naive form's first NaN on the sweep, recomputed in numpy's float32
    broken = [
        not np.isfinite(np_naive_float32(b.logits, p, 1)).all()
        for p in explore.SWEEP_POWERS
    ]
    assert facts.naive_nan_from == explore.SWEEP_POWERS[int(np.argmax(broken))]
    # at k = 10⁴ the output is the argmax's one-hot: a right sample's target
    # is its prediction (cosine distance 0), a wrong one's is not
    loss, _ = np_loss_and_grad(b, facts.max_power, 1, "cosine")
    assert facts.right_loss_at_max_power == pytest.approx(loss[right].max(), abs=1e-6)
    assert facts.right_loss_at_max_power < 1e-6
    assert facts.wrong_loss_at_max_power == pytest.approx(loss[~right].min(), rel=1e-5)
    sweep = explore.sweep(explore.SweepSetting(), seed)
    assert facts.zero_grad_from == sweep.first_zero_grad


def test_the_train_facts_are_the_training_tasks_defaults():
    facts = explore.TRAIN_FACTS
    for name in ("num_features", "vocab_size", "embedding_dim", "num_heldout"):
        assert getattr(facts, name) == training_sharpen.COMMON_PARAMS[name][0]
    data = training_sharpen.word_dataset(0)
    assert data["x_train"].shape[1] == facts.num_features
    assert data["embedding"].shape == (facts.vocab_size, facts.embedding_dim)
    assert len(data["word_heldout"]) == facts.num_heldout
    assert facts.chance == 1 / facts.vocab_size


def test_the_temperature_snippet_computes_what_the_page_shows():
    # The "Use it in your model" snippet by temperature: Dense logits, then
    # Rescaling(1/T) and Softmax, and EmbeddingTargetLoss with power 1.
    import keras

    import lossviz

    setting = explore.Setting(sharpen_by="temperature", temperature=0.2)
    point = explore.at_setting(setting)
    b = batch(setting)
    head = keras.Sequential(
        [keras.layers.Rescaling(1 / setting.temperature), keras.layers.Softmax()]
    )
    output = np.asarray(head(b.logits))
    np.testing.assert_allclose(output, point.tempered, atol=1e-6)
    loss = lossviz.EmbeddingTargetLoss(b.embedding, power=1, reduction=None)
    np.testing.assert_allclose(
        np.asarray(loss(b.target, output)), point.loss, atol=1e-6
    )


# --- the lessons -------------------------------------------------------------------

# The page's control values at its defaults, by name, as check_lesson takes them.
DEFAULTS = dict(content.CONTROLS.defaults())


def np_grad_norm(setting, seed=0):
    return np.linalg.norm(np_reference(setting, seed)[1])


def test_the_vanished_check_states_the_ratio_numpy_finds():
    values = DEFAULTS | {"power": 50.0}
    claim = explore.check_lesson("vanished", values, 0)
    assert claim.holds
    plain = np_grad_norm(explore.Setting(power=1.0))
    ratio = np_grad_norm(explore.Setting(power=50.0)) / plain
    assert ratio < explore.VANISHED_FRACTION
    assert f"of its {plain:.4g} at k = 1" in claim.statement
    assert (
        f"the {explore.VANISHED_FRACTION:g} that counts as vanished" in claim.statement
    )
    # the same claim does not hold at power 2, nor at a temperature near 1
    assert not explore.check_lesson("vanished", DEFAULTS, 0).holds
    near_one = DEFAULTS | {"sharpen_by": "temperature", "temperature": 1.0}
    assert not explore.check_lesson("vanished", near_one, 0).holds
    # by temperature, T = 0.02 is k = 50
    assert explore.check_lesson(
        "vanished", DEFAULTS | {"sharpen_by": "temperature", "temperature": 0.02}, 0
    ).holds


def test_the_gradient_kept_check_states_the_ratio_numpy_finds():
    claim = explore.check_lesson("gradient_kept", DEFAULTS, 0)
    assert claim.holds
    ratio = np_grad_norm(explore.Setting()) / np_grad_norm(explore.Setting(power=1.0))
    assert ratio > explore.VANISHED_FRACTION
    assert f"{ratio:.4g} of its value at k = 1" in claim.statement
    top = np_weights(batch(explore.Setting()).logits, 2.0, 1).max(-1).mean()
    assert f"mean top probability is {top:.3g}" in claim.statement
    assert not explore.check_lesson(
        "gradient_kept", DEFAULTS | {"power": 50.0}, 0
    ).holds


def test_the_naive_nan_check_counts_what_numpy_counts():
    claim = explore.check_lesson("naive_nan", DEFAULTS | {"power": 200.0}, 0)
    naive = np_naive_float32(batch(explore.Setting()).logits, 200.0, 1)
    count = int(np.isnan(naive).sum())
    assert claim.holds and count > 0
    assert f"has {count} of {naive.size} entries NaN;" in claim.statement
    assert not explore.check_lesson("naive_nan", DEFAULTS, 0).holds
    # at a large logit scale the top p is near 1 and p**200 does not underflow
    assert not explore.check_lesson(
        "naive_nan", DEFAULTS | {"power": 200.0, "logit_scale": 8.0}, 0
    ).holds


@pytest.mark.parametrize("temperature", [0.2, 0.01, 5.0])
def test_the_temperature_tie_check_holds_against_numpy(temperature):
    values = DEFAULTS | {"sharpen_by": "temperature", "temperature": temperature}
    claim = explore.check_lesson("temperature_tie", values, 0)
    assert claim.holds, claim.statement
    # and the temperature path is numpy's softmax(z / T)
    b = batch(explore.Setting())
    loss, _ = np_loss_and_grad(b, None, 1, "cosine", temperature)
    assert f"loss {loss.mean():.4g}" in claim.statement
    assert f"k = 1/T = {1 / temperature:g}" in claim.statement


def test_check_lesson_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="`name`"):
        explore.check_lesson("nope", DEFAULTS, 0)


# --- training ----------------------------------------------------------------------


def test_train_runs_follow_the_controls_and_training_accepts_them():
    runs = explore.train_runs(explore.Setting(power=5.0, iterations=2, distance="mse"))
    assert [r.label for r in runs] == [
        "softmax (k = 1, mse)",
        "sharpened (k = 5 × 2, mse)",
        "straight-through (k = 1, mse)",
    ]
    assert [r.variant for r in runs] == list(training_sharpen.VARIANT_PARAMS)
    assert runs[1].params == {"power": 5.0, "iterations": 2, "distance": "mse"}
    high = explore.PARAMS["iterations"].ui_range[1]
    settings = (
        explore.Setting(),
        explore.Setting(power=1e4, iterations=high),
        explore.Setting(sharpen_by="temperature", temperature=1e-4),
    )
    for setting in settings:
        for run in explore.train_runs(setting):
            training_sharpen.check_params(run.variant, run.params)
    assert explore.TRAINING.task == training_sharpen.TASK.name
    assert set(explore.TRAINING.metrics) <= set(training_sharpen.TASK.metrics)


def test_by_temperature_the_sharpened_run_trains_at_the_power_one_over_t():
    runs = explore.train_runs(
        explore.Setting(sharpen_by="temperature", temperature=0.02, iterations=4)
    )
    assert runs[1].label == "temperature (T = 0.02)"
    assert runs[1].params == {"power": 50.0, "iterations": 1, "distance": "cosine"}
