"""What the multi-label (BP-MLL) page computes, against numpy written here.

The references: BP-MLL as the paper's double loop over pairs, its closed-form
gradient, binary cross-entropy from logits and its gradient, and the
factorised product in float32, all in numpy; the numbers the page states (the
samples without pairs, the scales where a form first overflows) are recounted
from them.
"""

import dataclasses
import math

import numpy as np
import pytest

from lossviz.explore import multilabel as explore
from lossviz.explore.attempts import multilabel as attempts
from lossviz.training import core
from lossviz.training import multilabel as task
from views.content import multilabel as content

FLOAT32_MAX = float(np.finfo(np.float32).max)


def bpmll_reference(y_true, logits):
    """Zhang & Zhou (2006) eq. (3) per row, float64, and its gradient: every
    (positive k, negative l) pair's term ``e^(c_l - c_k) / pairs``."""
    y_true = np.asarray(y_true)
    logits = np.asarray(logits, dtype=np.float64)
    loss = np.zeros(len(y_true))
    grad = np.zeros_like(logits)
    for i, (labels, scores) in enumerate(zip(y_true, logits, strict=True)):
        positives = np.flatnonzero(labels == 1)
        negatives = np.flatnonzero(labels == 0)
        if not len(positives) or not len(negatives):
            continue
        # terms[a, b]: the pair (positives[a], negatives[b])
        terms = np.exp(np.subtract.outer(-scores[positives], -scores[negatives]))
        terms /= terms.size
        loss[i] = terms.sum()
        grad[i, positives] = -terms.sum(axis=1)
        grad[i, negatives] = terms.sum(axis=0)
    return loss, grad


def bce_reference(y_true, logits):
    """Sigmoid cross-entropy from logits, mean over labels, and its gradient."""
    y = np.asarray(y_true, dtype=np.float64)
    c = np.asarray(logits, dtype=np.float64)
    values = np.maximum(c, 0) - c * y + np.log1p(np.exp(-np.abs(c)))
    return values.mean(axis=-1), (1 / (1 + np.exp(-c)) - y) / c.shape[-1]


def factorised_float32(y_true, logits):
    """``(sum_Y e^-c)(sum_Ybar e^c) / pairs``, every step in float32."""
    c = np.asarray(logits, dtype=np.float32)
    positive = np.asarray(y_true) == 1
    zero = np.float32(0)
    with np.errstate(over="ignore", invalid="ignore"):
        pos_sum = np.where(positive, np.exp(-c), zero).sum(-1, dtype=np.float32)
        neg_sum = np.where(~positive, np.exp(c), zero).sum(-1, dtype=np.float32)
        pairs = (positive.sum(-1) * (~positive).sum(-1)).astype(np.float32)
        return np.where(pairs > 0, pos_sum * neg_sum / np.maximum(pairs, 1), zero)


def keras_mean_overflows(values64):
    """Whether a float32 batch mean of these (float64) losses is not finite."""
    return bool(np.sum(values64) > FLOAT32_MAX)


# ------------------------------------------------------------- the batch


def test_example_batch_is_seeded_bounded_and_has_degenerate_rows():
    y_true, logits = explore.example_batch(
        8, 6, label_density=0.4, logit_scale=2.5, seed=3
    )
    again = explore.example_batch(8, 6, label_density=0.4, logit_scale=2.5, seed=3)
    np.testing.assert_array_equal(y_true, again[0])
    np.testing.assert_array_equal(logits, again[1])
    assert y_true.shape == logits.shape == (8, 6)
    assert y_true.dtype == logits.dtype == np.float32
    assert set(np.unique(y_true)) <= {0.0, 1.0}
    assert np.all(np.abs(logits) <= 2.5)
    assert not y_true[0].any() and y_true[1].all()
    other = explore.example_batch(8, 6, label_density=0.4, logit_scale=2.5, seed=4)
    assert not np.array_equal(logits, other[1])


def test_example_batch_scales_one_draw():
    # The sweep's promise: same labels and the same draw at every scale.
    y_a, c_a = explore.example_batch(8, 12, logit_scale=1.0, seed=5)
    y_b, c_b = explore.example_batch(8, 12, logit_scale=30.0, seed=5)
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_allclose(c_b, 30.0 * c_a, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_samples": 0}, "num_samples"),
        ({"num_labels": 2.5}, "num_labels"),
        ({"label_density": 1.5}, "label_density"),
        ({"logit_scale": 0.0}, "logit_scale"),
        ({"seed": -1}, "seed"),
    ],
)
def test_example_batch_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        explore.example_batch(**kwargs)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: explore.Setting(logit_scale=0.0), "logit_scale"),
        (lambda: explore.Setting(label_density=-0.1), "label_density"),
        (lambda: explore.Setting(num_labels=512), "num_labels"),
        (lambda: explore.SweepSetting(num_labels=2.5), "num_labels"),
        (lambda: explore.TimingSetting(timing_batch=0), "timing_batch"),
    ],
)
def test_settings_name_a_bad_field(make, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_sample_names_say_which_rows_have_no_pairs():
    y_true = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 1]])
    assert explore.sample_names(y_true) == (
        "s0 no positive",
        "s1 all positive",
        "s2",
    )


def test_batch_mean_overflows_as_a_float32_sum_does():
    finite = np.array([[3e38, 3e38], [1.0, 2.0]], dtype=np.float32)
    means = explore.batch_mean(finite)
    assert np.isposinf(means[0])  # each sample finite, the sum is not
    assert means[1] == np.float32(1.5)


def test_relative_gap_against_numpy():
    reference = np.array([0.5, 4.0, 0.0])
    values = np.array([0.5 + 1e-3, 4.0 * (1 + 2e-3), 0.0])
    assert explore.relative_gap(values, reference) == pytest.approx(2e-3)
    assert explore.relative_gap([], []) == 0.0


# ------------------------------------------------------------- the factorised form


def test_factorised_form_equals_the_loss_in_float64():
    rng = np.random.default_rng(2)
    y_true = (rng.random((16, 20)) < 0.3).astype(np.float64)
    y_true[0] = 0.0
    logits = rng.uniform(-10, 10, size=(16, 20))
    loss, _ = bpmll_reference(y_true, logits)
    got = explore.bpmll_loss_factorised(y_true, logits).numpy()
    np.testing.assert_allclose(got, loss, rtol=1e-12)
    assert got[0] == 0.0


def test_factorised_form_overflows_where_the_float32_product_does():
    y_true = np.zeros((2, 200), np.float32)
    y_true[:, :100] = 1.0
    logits = np.where(y_true == 1, -40.0, 40.0).astype(np.float32)
    logits[1] = np.linspace(-5, 5, 200)
    got = explore.bpmll_loss_factorised(y_true, logits).numpy()
    expected = factorised_float32(y_true, logits)
    assert np.isinf(expected[0]) and np.isinf(got[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5)


# ------------------------------------------------------------- one setting


SETTINGS = [
    explore.Setting(),
    explore.Setting(label_density=0.7, num_labels=16, logit_scale=8.0),
    explore.Setting(label_density=0.2, num_labels=2, logit_scale=0.5),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_point_matches_numpy(setting):
    point = explore.at_setting(setting, seed=1)
    y_true, logits = explore.example_batch(
        explore.NUM_SAMPLES,
        setting.num_labels,
        label_density=setting.label_density,
        logit_scale=setting.logit_scale,
        seed=1,
    )
    np.testing.assert_array_equal(point.y_true, y_true)
    np.testing.assert_array_equal(point.logits, logits)
    loss, grad = bpmll_reference(y_true, logits)
    np.testing.assert_allclose(point.loss, loss, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(point.grad, grad, rtol=1e-4, atol=1e-6)
    bce, bce_grad = bce_reference(y_true, logits)
    np.testing.assert_allclose(point.bce, bce, rtol=1e-5)
    np.testing.assert_allclose(point.bce_grad, bce_grad, rtol=1e-4, atol=1e-7)
    assert list(point.forms) == ["loop", "pairwise", "log space", "factorised"]
    for name, values in point.forms.items():
        np.testing.assert_allclose(values, loss, rtol=1e-5, err_msg=name)
        gap = np.max(np.abs(values - point.forms["loop"]) / np.maximum(loss, 1.0))
        assert point.form_gaps[name] == pytest.approx(gap, abs=1e-12), name
    assert point.form_gaps["loop"] == 0.0
    assert point.mean_loss == pytest.approx(loss.mean(), rel=1e-5)
    assert point.mean_bce == pytest.approx(bce.mean(), rel=1e-5)
    assert point.mean_factorised == pytest.approx(loss.mean(), rel=1e-5)
    positives = y_true.sum(axis=1)
    no_pairs = (positives == 0) | (positives == setting.num_labels)
    np.testing.assert_array_equal(point.without_pairs, no_pairs)
    assert point.num_without_pairs == int(no_pairs.sum())
    assert point.sample_names == explore.sample_names(y_true)


def test_rows_without_pairs_give_zero_loss_and_zero_gradient():
    # The first lesson: few positives among few labels.
    point = explore.at_setting(explore.Setting(label_density=0.1, num_labels=4))
    positives = point.y_true.sum(axis=1)
    no_pairs = (positives == 0) | (positives == 4)
    assert point.num_without_pairs == int(no_pairs.sum()) >= 3
    np.testing.assert_array_equal(point.loss[no_pairs], 0.0)
    np.testing.assert_array_equal(point.grad[no_pairs], 0.0)
    assert np.all(point.bce[no_pairs] > 0)  # cross-entropy still trains them
    assert np.all(point.bce_grad[no_pairs] != 0)


def test_each_row_of_the_gradient_sums_to_zero():
    # The gradient caption: BP-MLL only ranks.
    point = explore.at_setting(explore.Setting(num_labels=12, logit_scale=4.0))
    scale = np.abs(point.grad).sum(axis=1)  # float32 rounding of the terms
    assert np.all(np.abs(point.grad.sum(axis=1)) <= 1e-6 * scale)
    positive = point.y_true == 1
    has_pairs = positive.any(axis=1) & ~positive.all(axis=1)
    assert np.all(point.grad[has_pairs][positive[has_pairs]] < 0)
    assert np.all(point.grad[has_pairs][~positive[has_pairs]] > 0)


def test_overflow_at_the_largest_scale():
    point = explore.at_setting(explore.Setting(logit_scale=60.0))
    loss, _ = bpmll_reference(point.y_true, point.logits)
    assert np.any(loss > FLOAT32_MAX)
    assert np.array_equal(np.isposinf(point.loss), loss > FLOAT32_MAX)
    assert point.mean_loss == np.inf


def test_the_overflow_lesson_shows_what_it_says():
    """ "Logit scale 46.5": the product overflows, the log-space form is finite,
    and a few scales further a sample's loss itself passes the float32
    maximum."""
    lesson = content.LESSONS[1]
    setting = explore.Setting(**lesson.settings)
    point = explore.at_setting(setting)
    loss, _ = bpmll_reference(point.y_true, point.logits)
    overflowed = np.isinf(factorised_float32(point.y_true, point.logits))
    assert overflowed.sum() == 6  # as the check's statement says
    np.testing.assert_array_equal(~np.isfinite(point.forms["factorised"]), overflowed)
    assert point.mean_factorised == np.inf
    assert not keras_mean_overflows(loss)
    assert np.isfinite(point.mean_loss) and np.isfinite(point.grad).all()
    np.testing.assert_allclose(point.loss, loss, rtol=1e-4)
    sweep = explore.scale_sweep(setting.sweep_setting)
    assert setting.logit_scale < sweep.sample_overflow <= setting.logit_scale + 6
    y_true, logits = explore.example_batch(
        8, 256, label_density=0.4, logit_scale=sweep.sample_overflow, seed=0
    )
    assert np.any(bpmll_reference(y_true, logits)[0] > FLOAT32_MAX)


def lesson_values(lesson):
    return {**content.CONTROLS.defaults(), **lesson.settings}


def test_the_no_pairs_check_counts_the_rows_numpy_counts():
    lesson = content.LESSONS[0]
    values = lesson_values(lesson)
    claim = explore.check_lesson(lesson.check, values, 0)
    y_true, logits = explore.example_batch(
        8, values["num_labels"], label_density=values["label_density"],
        logit_scale=values["logit_scale"], seed=0,
    )  # fmt: skip
    positives = y_true.sum(axis=1)
    rows = (positives == 0) | (positives == values["num_labels"])
    loss, grad = bpmll_reference(y_true, logits)
    assert rows.sum() > 2 and not loss[rows].any() and not grad[rows].any()
    assert claim.holds
    assert claim.statement.startswith(f"{rows.sum()} of 8 samples have no pairs")


def test_the_overflow_check_fails_where_nothing_overflows_or_everything_does():
    lesson = content.LESSONS[1]
    claim = explore.check_lesson(lesson.check, lesson_values(lesson), 0)
    assert claim.holds and "+Inf in 6 of 8 samples" in claim.statement
    assert "passes the float32 maximum from a scale of 49.5, 3 above" in (
        claim.statement
    )
    defaults = content.CONTROLS.defaults()
    assert not explore.check_lesson("overflow", defaults, 0).holds
    everything = {**defaults, "logit_scale": 60.0}
    assert not explore.check_lesson("overflow", everything, 0).holds
    with pytest.raises(ValueError, match="`name`"):
        explore.check_lesson("nothing", defaults, 0)


def test_graphs_are_traced_once_for_every_scale_and_density():
    for scale, density in [(1.0, 0.4), (7.5, 0.4), (20.0, 0.9), (2.0, 0.0)]:
        explore.at_setting(explore.Setting(density, 6, scale))
    explore.scale_sweep(explore.SweepSetting(0.3, 6))
    assert explore._values_and_grads().experimental_get_tracing_count() == 1


# ------------------------------------------------------------- the sweep


@pytest.mark.parametrize("num_labels", [6, 256])
def test_sweep_matches_numpy_at_every_scale(num_labels):
    sweep = explore.scale_sweep(explore.SweepSetting(0.4, num_labels), seed=0)
    np.testing.assert_array_equal(sweep.scales, np.arange(1.5, 60.1, 1.5))
    loss_over, naive_over = [], []
    for i, scale in enumerate(sweep.scales):
        y_true, logits = explore.example_batch(
            8, num_labels, label_density=0.4, logit_scale=scale, seed=0
        )
        loss, grad = bpmll_reference(y_true, logits)
        bce, bce_grad = bce_reference(y_true, logits)
        naive = factorised_float32(y_true, logits)
        loss_over.append(keras_mean_overflows(loss))
        naive_over.append(not np.isfinite(naive.sum(dtype=np.float32)))
        assert sweep.mean_bce[i] == pytest.approx(bce.mean(), rel=1e-5)
        assert sweep.bce_grad_norm[i] == pytest.approx(
            np.sqrt(np.sum(bce_grad**2)), rel=1e-4
        )
        if not loss_over[-1]:
            assert sweep.mean_loss[i] == pytest.approx(loss.mean(), rel=1e-4)
        norm = np.sqrt(np.sum(grad**2))
        if np.isfinite(sweep.grad_norm[i]) and norm < 1e37:
            assert sweep.grad_norm[i] == pytest.approx(norm, rel=1e-4)
        if np.isfinite(sweep.factorised_grad_norm[i]) and norm < 1e37:
            assert sweep.factorised_grad_norm[i] == pytest.approx(norm, rel=1e-3)
    np.testing.assert_array_equal(~np.isfinite(sweep.mean_loss), loss_over)
    np.testing.assert_array_equal(~np.isfinite(sweep.mean_factorised), naive_over)
    assert sweep.loss_overflow == sweep.scales[loss_over.index(True)]
    assert sweep.factorised_overflow == sweep.scales[naive_over.index(True)]


def test_the_product_overflows_a_few_steps_before_the_loss_with_256_labels():
    # The intro: "256 labels, then the scale from 40 to 50".
    sweep = explore.scale_sweep(explore.SweepSetting(0.4, 256))
    assert 40 < sweep.factorised_overflow < sweep.loss_overflow <= 50


def test_sweep_without_overflow_says_none():
    sweep = explore.scale_sweep(explore.SweepSetting(0.0, 6))  # no pairs at all
    np.testing.assert_array_equal(sweep.mean_loss, 0.0)
    np.testing.assert_array_equal(sweep.grad_norm, 0.0)
    assert sweep.loss_overflow is None and sweep.factorised_overflow is None


def test_sweep_key_leaves_the_scale_out():
    a = explore.Setting(0.3, 8, 2.0).sweep_setting
    b = explore.Setting(0.3, 8, 40.0).sweep_setting
    assert a == b and hash(a) == hash(b)
    assert {f.name for f in dataclasses.fields(a)} == {"label_density", "num_labels"}


# ------------------------------------------------------------- the grid


def assert_same_point(grid_point, point):
    """Every field of two ``Point``s equal (arrays to float32 rounding)."""
    assert grid_point.setting == point.setting
    for field in dataclasses.fields(point):
        a, b = getattr(grid_point, field.name), getattr(point, field.name)
        if isinstance(b, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0, err_msg=field.name)
        elif isinstance(b, dict):
            assert list(a) == list(b), field.name
            for name in b:
                np.testing.assert_allclose(
                    a[name], b[name], rtol=1e-6, atol=1e-12, err_msg=name
                )
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-12, nan_ok=True), field.name
        else:
            assert a == b, field.name


@pytest.mark.parametrize(
    "setting, seed",
    [
        (explore.SweepSetting(), 0),
        (explore.SweepSetting(0.7, 16), 1),
        (explore.SweepSetting(0.4, 256), 0),
    ],  # fmt: skip
    ids=str,
)
def test_the_grid_is_at_setting_at_every_scale(setting, seed):
    grid = explore.over_grid(setting, seed)
    np.testing.assert_array_equal(grid.values, explore.GRID_SCALES)
    for value in grid.values:
        point = explore.at_setting(
            explore.Setting(setting.label_density, setting.num_labels, value), seed
        )
        assert_same_point(grid.at(value), point)


def test_the_grid_is_the_slider_of_the_page():
    slider = content.CONTROLS["logit_scale"]
    steps = np.arange(slider.low, slider.high + slider.step / 2, slider.step)
    np.testing.assert_allclose(explore.GRID_SCALES, steps, rtol=0, atol=1e-12)
    assert len(explore.GRID_SCALES) == 120
    assert slider.default in explore.GRID_SCALES
    for lesson in content.LESSONS:
        scale = lesson.settings.get("logit_scale", slider.default)
        assert np.isclose(explore.GRID_SCALES, scale).any(), lesson.title


def test_off_the_grid_a_point_is_computed():
    grid = explore.over_grid(explore.SweepSetting(), 0)
    assert grid.index(3.25) is None and grid.nearest(3.25) in (5, 6)
    assert grid.index(3.0) == 5 and grid.nearest(3.0) == 5
    assert_same_point(grid.at(3.25), explore.at_setting(explore.Setting(0.4, 6, 3.25)))


@pytest.mark.parametrize("num_labels", [6, 256])
def test_the_grid_facts_recount_its_arrays(num_labels):
    grid = explore.over_grid(explore.SweepSetting(0.4, num_labels), 0)
    for i, value in enumerate(grid.values):
        y_true, logits = explore.example_batch(
            explore.NUM_SAMPLES, num_labels, logit_scale=value, seed=0
        )
        np.testing.assert_array_equal(grid.logits[i], logits)
        np.testing.assert_array_equal(grid.y_true, y_true)
        loss, factorised = grid.loss[i], grid.factorised[i]
        finite = loss[np.isfinite(loss)]
        assert grid.finite_count[i] == finite.size
        if finite.size:
            assert grid.largest_loss[i] == finite.max()
        else:
            assert np.isnan(grid.largest_loss[i])
        assert grid.factorised_inf[i] == np.isposinf(factorised).sum()
        assert grid.factorised_nan[i] == np.isnan(factorised).sum()
        np.testing.assert_allclose(
            grid.grad_norm[i], np.linalg.norm(grid.grad[i].astype(float), axis=-1)
        )
        np.testing.assert_allclose(
            grid.bce_grad_norm[i],
            np.linalg.norm(grid.bce_grad[i].astype(float), axis=-1),
        )
    np.testing.assert_array_equal(
        grid.without_pairs,
        explore.at_setting(explore.Setting(0.4, num_labels)).without_pairs,
    )
    # The lesson's frame: the product overflows where the log space does not.
    if num_labels == 256:
        i = grid.index(46.5)
        assert grid.finite_count[i] == explore.NUM_SAMPLES
        assert grid.factorised_inf[i] > 0


def test_the_grid_never_retraces_for_another_density_or_seed():
    explore.over_grid(explore.SweepSetting(0.4, 6), 0)
    forms = explore._grid_forms(6)
    values = explore._values_and_grads()
    traced = (
        forms.experimental_get_tracing_count(),
        values.experimental_get_tracing_count(),
    )
    explore.over_grid(explore.SweepSetting(0.7, 6), 0)
    explore.over_grid(explore.SweepSetting(0.55, 6), 3)
    assert forms.experimental_get_tracing_count() == traced[0] == 1
    assert values.experimental_get_tracing_count() == traced[1] == 1


# ------------------------------------------------------------- timings, training


def test_timings_time_every_form():
    timings = explore.timings(explore.TimingSetting(num_labels=4, timing_batch=8))
    assert list(timings.milliseconds) == list(explore.FORMS)
    assert all(ms > 0 for ms in timings.milliseconds.values())
    log_space = timings.milliseconds["log space"]
    for name, ms in timings.milliseconds.items():
        assert timings.relative[name] == pytest.approx(ms / log_space)
    assert timings.repeats == explore.TIMING_REPEATS


def test_train_runs_and_their_charts():
    runs = explore.train_runs(explore.Setting())
    assert [(r.label, r.variant) for r in runs] == [
        ("binary cross-entropy", "bce"),
        ("BP-MLL", "bpmll"),
    ]
    task = core.TASKS[explore.TRAINING.task]
    assert {r.variant for r in runs} == set(task.variants)
    assert set(explore.TRAINING.metrics) <= set(task.metrics)


def test_what_the_page_says_about_its_example():
    assert max(content.CONTROLS["num_labels"].options) == explore.MAX_LABELS
    assert list(content.FORM_NOTES) == list(explore.FORMS)


# ------------------------------------------------------------- what the captions say

FACT_SETTINGS = [
    *SETTINGS,
    explore.Setting(label_density=0.1, num_labels=4),
    explore.Setting(label_density=0.4, num_labels=256, logit_scale=46.5),
    explore.Setting(label_density=0.4, num_labels=6, logit_scale=60.0),
    explore.Setting(label_density=0.0, num_labels=6),
]


@pytest.mark.parametrize("setting", FACT_SETTINGS, ids=str)
def test_point_facts_match_numpy(setting):
    point = explore.at_setting(setting, seed=0)
    loss, grad = bpmll_reference(point.y_true, point.logits)
    _, bce_grad = bce_reference(point.y_true, point.logits)
    rows = point.without_pairs
    assert point.without_pairs_zero
    assert not loss[rows].any() and not grad[rows].any()
    assert point.bce_moves_without_pairs == int(np.sum(np.any(bce_grad[rows], -1)))
    # The signs and the row sums, recounted from the page's float32 gradient;
    # in float64 every label with pairs has the sign of its role.
    positive, paired = point.y_true == 1, ~rows
    if not paired.any():
        assert point.sign_share is None and point.row_sum_gap is None
    else:
        g = point.grad[paired].astype(np.float64)
        right = np.where(positive[paired], g < 0, g > 0)
        assert point.sign_share == pytest.approx(right.mean())
        assert point.wrong_sign_count == 0
        assert np.all(np.where(positive[paired], grad[paired] < 0, grad[paired] > 0))
        if np.isfinite(g).all():
            gap = np.abs(g.sum(-1)) / np.abs(g).sum(-1)
            assert point.row_sum_gap == pytest.approx(gap.max())
            assert point.row_sum_gap < 1e-6  # "float32 rounding"
        else:
            assert math.isnan(point.row_sum_gap)
    # The timing caption: the largest finite gap between forms, and |log E|.
    finite = [v for v in point.form_gaps.values() if np.isfinite(v)]
    assert point.largest_finite_gap == max(finite, default=0.0)
    kept = loss[(loss > 0) & (loss <= FLOAT32_MAX)]
    if kept.size:
        assert point.largest_log_loss == pytest.approx(
            np.abs(np.log(kept)).max(), rel=1e-5, abs=1e-5
        )
    else:
        assert point.largest_log_loss is None
    if np.isfinite(point.form_gaps["loop"]) and kept.size:
        # "float32 rounding": a few roundings per unit of |log E|.
        rounding = explore.FLOAT32_ROUNDING * (1 + point.largest_log_loss)
        assert point.largest_finite_gap <= 8 * rounding


def widest_gap_reference(y_true, unit_logits):
    widest = None
    for labels, scores in zip(y_true == 1, unit_logits.astype(np.float64), strict=True):
        if labels.any() and not labels.all():
            gap = scores[~labels].max() - scores[labels].min()
            widest = gap if widest is None else max(widest, gap)
    return widest


@pytest.mark.parametrize("num_labels, seed", [(6, 0), (6, 3), (256, 0), (256, 2)])
def test_sweep_facts_match_numpy(num_labels, seed):
    sweep = explore.scale_sweep(explore.SweepSetting(0.4, num_labels), seed=seed)
    scales = sweep.scales
    y_true, unit = explore.example_batch(
        8, num_labels, label_density=0.4, logit_scale=1.0, seed=seed
    )
    widest = widest_gap_reference(y_true, unit)
    assert sweep.widest_gap == pytest.approx(widest)
    assert 0 < sweep.widest_gap <= 2
    losses, bces = [], []
    for scale in scales:
        y, c = explore.example_batch(
            8, num_labels, label_density=0.4, logit_scale=scale, seed=seed
        )
        losses.append(bpmll_reference(y, c)[0])
        bces.append(bce_reference(y, c)[0].mean())
    losses, bces = np.array(losses), np.array(bces)
    over = np.any(losses > FLOAT32_MAX, axis=1)
    expected = scales[over.argmax()] if over.any() else None
    assert sweep.sample_overflow == expected
    assert sweep.loss_overflow is None or sweep.loss_overflow <= (
        sweep.sample_overflow or np.inf
    )
    # The growth: the slope of log(batch mean) over the last two finite scales.
    finite = np.flatnonzero(np.isfinite(sweep.mean_loss))
    a, b = finite[-2], finite[-1]
    means = losses.mean(axis=1)
    slope = (np.log(means[b]) - np.log(means[a])) / (scales[b] - scales[a])
    assert sweep.loss_growth == pytest.approx(slope, rel=1e-3)
    # "rising toward the widest gap": the slope of log E is a weighted mean of
    # the pairs' gaps, never above the widest, and it rises with the scale.
    assert sweep.loss_growth <= sweep.widest_gap + 1e-6
    assert sweep.grad_growth <= sweep.widest_gap + 1e-6
    early = (np.log(means[2]) - np.log(means[1])) / (scales[2] - scales[1])
    assert early < sweep.loss_growth
    # Cross-entropy grows linearly: the same slope over the last intervals.
    tail = np.diff(bces)[-5:] / np.diff(scales)[-5:]
    assert sweep.bce_growth == pytest.approx(tail[-1], rel=1e-4)
    np.testing.assert_allclose(tail, tail[-1], rtol=1e-2)
    both = np.isfinite(sweep.mean_loss) & np.isfinite(sweep.mean_factorised)
    gaps = np.abs(sweep.mean_factorised[both] - sweep.mean_loss[both]) / np.maximum(
        np.abs(sweep.mean_loss[both]), 1
    )
    assert sweep.curves_gap == pytest.approx(gaps.max())
    assert sweep.curves_gap < 1e-4  # "the two curves coincide"


def test_widest_gap_without_pairs_is_none():
    assert explore.widest_gap(np.zeros((2, 3)), np.ones((2, 3))) is None
    sweep = explore.scale_sweep(explore.SweepSetting(0.0, 6))
    assert sweep.widest_gap is None and sweep.sample_overflow is None
    assert "No sample has a pair here" in content.sweep_caption(sweep)


def test_the_texts_state_the_computed_numbers():
    default = explore.scale_sweep(explore.SweepSetting(), seed=0)
    wide = explore.scale_sweep(explore.SweepSetting(num_labels=256), seed=0)
    text = content.intro(
        default, wide, explore.FLOAT32_MAX, explore.LOG_FLOAT32_MAX
    ).replace("\n  ", " ")
    assert f"is {default.widest_gap:.2f} × the scale" in text
    assert f"e^{default.loss_growth:.2f} per unit" in text
    assert f"by {default.bce_growth:.2f} per unit" in text
    assert "256 labels, then the scale from 40 to 50" in text
    assert f"+Inf from a scale of {wide.factorised_overflow:g}" in text
    assert wide.loss_overflow == wide.sample_overflow == 49.5
    assert "overflow from a scale of 49.5" in text
    assert f"{np.finfo(np.float32).max:.3g} = e^{np.log(FLOAT32_MAX):.1f}" in text
    assert "88.7 logits the wrong way" in text
    caption = content.sweep_caption(default)
    assert f"overflows from a scale of {default.factorised_overflow:g}" in caption
    assert f"relative gap at most {default.curves_gap:.1g}" in caption
    point = explore.at_setting(explore.Setting(), seed=0)
    note = content.without_pairs(point)
    assert note.startswith("2 of 8 samples have no positive")
    assert "undefined" in note and "each of them a non-zero gradient" in note
    caption = content.gradient_caption(point)
    assert "every label in a sample with pairs" in caption
    assert f"within {point.row_sum_gap:.1g}" in caption
    timings = explore.timings(explore.TimingSetting())
    caption = content.timing_caption(timings, point)
    assert f"at most {point.largest_finite_gap:.2g}" in caption
    assert f"the slowest “{timings.slowest}”" in caption


def test_no_text_calls_zero_what_the_paper_intends():
    # The paper leaves E_i undefined without a pair: 0 is lossviz's convention.
    lesson = content.LESSONS[0]
    assert "convention" in lesson.notice and "undefined" in lesson.notice
    assert "paper intends" not in lesson.notice
    assert "undefined" in content.METRIC_HELP["Samples without pairs"]


def test_timings_name_the_fastest_and_the_slowest():
    timings = explore.timings(explore.TimingSetting(num_labels=4, timing_batch=8))
    ms = timings.milliseconds
    assert ms[timings.fastest] == min(ms.values())
    assert ms[timings.slowest] == max(ms.values())


def test_train_facts_are_the_training_task_at_its_defaults():
    facts = explore.train_facts()
    defaults = {name: spec[0] for name, spec in task.PARAMS.items()}
    assert facts.hidden_units == defaults["hidden_units"]
    assert facts.num_labels == defaults["num_labels"]
    assert facts.num_features == defaults["num_features"]
    assert facts.label_density == defaults["label_density"]
    assert facts.num_heldout == task.NUM_HELDOUT
    assert facts.threshold == task.THRESHOLD
    data = task.multilabel_dataset(0, num_train=4096)
    assert data["y"].sum(axis=1).mean() == pytest.approx(
        facts.labels_per_sample, abs=0.1
    )
    assert data["x"].shape[1] == facts.num_features
    model = task.build_model(facts.num_features, facts.num_labels)
    assert model.get_layer("hidden").units == facts.hidden_units
    text = content.train_intro(facts).replace("\n", " ")
    assert f"one hidden layer of {facts.hidden_units} units" in text
    assert f"{facts.labels_per_sample:.2f} of {facts.num_labels} labels" in text
    assert f"{facts.num_heldout} held-out samples" in text


# ------------------------------------------------------------- the flipped sign


def numpy_descent(labels, logits, flipped: bool):
    """SGD on the logits, float64, with the gradient by hand."""
    c = logits.astype(np.float64).copy()
    positive = labels == 1
    losses, shares = [], []
    for step in range(attempts.STEPS + 1):
        if flipped:
            loss, grad = bpmll_reference(labels, -c)  # exp(c_k - c_l)
            grad = -grad
        else:
            loss, grad = bpmll_reference(labels, c)
        losses.append(loss.mean())
        pairs = positive[:, :, None] & ~positive[:, None, :]
        right = c[:, :, None] > c[:, None, :]
        shares.append(np.sum(pairs & right) / np.sum(pairs))
        if step < attempts.STEPS:
            c -= attempts.LEARNING_RATE * grad / len(c)
    return np.array(losses), np.array(shares)


def test_the_flipped_sign_descends_as_numpy_does():
    batch = attempts.example_batch(0)
    descent = attempts.flipped_descent(0)
    for run, flipped in ((descent.flipped, True), (descent.fix, False)):
        losses, shares = numpy_descent(batch.labels, batch.logits, flipped)
        np.testing.assert_allclose(run.loss, losses, rtol=1e-3)
        np.testing.assert_allclose(run.ranking, shares, atol=1 / 53 + 1e-9)
    # The ranking gets worse while the loss falls; lossviz's ranks right.
    assert descent.flipped.loss[-1] < descent.flipped.loss[0]
    assert descent.flipped.ranking[-1] < descent.flipped.ranking[0]
    assert descent.fix.ranking[-1] > descent.fix.ranking[0]
    caption = content.descent_caption(descent)
    assert f"pairs ranked right fall {descent.flipped.ranking[0]:.0%} → " in caption
    assert f"{descent.flipped.ranking[-1]:.0%}" in caption


def test_the_flipped_attempt_reports_the_ends_of_its_descent():
    (flipped,) = [a for a in attempts.ATTEMPTS if a.key == "flipped_sign"]
    outcome = flipped.run(attempts.example_batch(0))
    descent = attempts.flipped_descent(0)
    assert outcome.kind == "wrong"
    assert outcome.numbers["loss_before"] == descent.flipped.loss[0]
    assert outcome.numbers["loss_after"] == descent.flipped.loss[-1]
    assert outcome.numbers["ranking_after"] == descent.flipped.ranking[-1]
    assert outcome.numbers["fix_ranking_after"] == descent.fix.ranking[-1]
