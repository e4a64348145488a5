"""lossviz.explore.triplet against numpy: the example batches, the loss and its
gradient at a margin, the margin sweep, the claims the page states, and the
add_loss layer's reports."""

import math

import numpy as np
import pytest

from lossviz import registry
from lossviz.explore import triplet as explore
from lossviz.training import core

SEEDS = [0, 3]


# ---------------------------------------------------------------- references


def np_cosines(u, v):
    """Row-wise cosine in float64; 0 where either vector is zero."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
    both = (nu > 0) & (nv > 0)
    out = np.zeros(len(u))
    out[both] = np.sum(u * v, axis=1)[both] / (nu * nv)[both]
    return out


def np_cosine_grad(u, v):
    """d cos(u, v) / du, row-wise: v/(|u||v|) - cos u/|u|^2; 0 for a zero v."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    nu = np.linalg.norm(u, axis=1, keepdims=True)
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    cos = np_cosines(u, v)[:, None]
    grad = v / (nu * np.where(nv > 0, nv, 1.0)) - cos * u / nu**2
    return np.where(nv > 0, grad, 0.0)


def np_loss_and_grad(a, p, n, margin):
    """Per-triplet hinge loss and the gradient of its sum with respect to a."""
    gap = np_cosines(a, p) - np_cosines(a, n)
    loss = np.maximum(0.0, margin - gap)
    active = (loss > 0)[:, None]
    grad = np.where(active, np_cosine_grad(a, n) - np_cosine_grad(a, p), 0.0)
    return loss, grad


def np_token_ce(y_true, logits, pad_id):
    """Per-token cross-entropy with a stable log-sum-exp, 0 at padding."""
    z = np.asarray(logits, np.float64)
    top = z.max(axis=-1, keepdims=True)
    log_sum = top[..., 0] + np.log(np.exp(z - top).sum(axis=-1))
    picked = np.take_along_axis(z, np.where(y_true == pad_id, 0, y_true)[..., None], -1)
    return np.where(y_true == pad_id, 0.0, log_sum - picked[..., 0])


# ------------------------------------------------------------ example data


def test_example_triplets_are_seeded_and_have_hard_and_zero_cases():
    a, p, n, hard = explore.example_triplets(64, 8, hard_share=0.25, seed=3)
    again = explore.example_triplets(64, 8, hard_share=0.25, seed=3)
    for x, y in zip((a, p, n, hard), again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.shape == p.shape == n.shape == (64, 8) and a.dtype == np.float32
    assert hard.sum() == 16
    assert np.all(n[-1] == 0)
    gap = np_cosines(a, p) - np_cosines(a, n)
    assert np.median(gap[~hard]) > 0.5 and np.median(gap[hard]) < 0
    # Same vectors for every hard share: only the hard rows change.
    _, p0, n0, hard0 = explore.example_triplets(64, 8, hard_share=0.0, seed=3)
    assert not hard0.any()
    np.testing.assert_array_equal(p0[~hard], p[~hard])
    with pytest.raises(ValueError, match="`hard_share`"):
        explore.example_triplets(hard_share=1.5)


@pytest.mark.parametrize("pad_share", [0.0, 0.3, 1.0])
def test_example_token_batch_pads_the_end_of_each_row(pad_share):
    y_true, logits = explore.example_token_batch(
        4, 8, 6, pad_share=pad_share, logit_scale=2.0, seed=1
    )
    assert y_true.shape == (4, 8) and logits.shape == (4, 8, 6)
    share = np.mean(y_true == 0)
    assert abs(share - pad_share) <= 1.5 / 8  # rounding and ±1 jitter per row
    for row in y_true:
        length = int((row != 0).sum())
        assert (row[:length] != 0).all() and (row[length:] == 0).all()
    # Padding is predicted with confidence PAD_CONFIDENCE on id 0.
    padded = y_true == 0
    assert (np.argmax(logits, -1)[padded] == 0).all()


# ------------------------------------------------------------- the triplets


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hard_share", [0.0, 0.25, 1.0])
def test_triplets_cosines_gaps_and_claims_match_numpy(seed, hard_share):
    batch = explore.triplets(explore.Batch(hard_share), seed)
    a, p, n, hard = explore.example_triplets(
        explore.NUM_TRIPLETS, explore.DIM, hard_share=hard_share, seed=seed
    )
    np.testing.assert_array_equal(batch.hard, hard)
    np.testing.assert_allclose(batch.cos_positive, np_cosines(a, p), atol=1e-6)
    np.testing.assert_allclose(batch.cos_negative, np_cosines(a, n), atol=1e-6)
    gap = np_cosines(a, p) - np_cosines(a, n)
    np.testing.assert_allclose(batch.gap, gap, atol=1e-6)
    assert batch.cos_negative[-1] == 0.0  # the empty answer
    assert batch.max_gap == pytest.approx(gap.max(), abs=1e-6)
    assert batch.wrong_order == int((gap < 0).sum())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.35, 1.0, 2.5, 0.123])
def test_value_and_gradient_at_a_margin_match_numpy(seed, margin):
    # 0.123 is off the slider's grid: computed on its own, not read off it.
    point = explore.at_setting(explore.Setting(margin, 0.25), seed)
    a, p, n, _ = explore.example_triplets(64, 8, hard_share=0.25, seed=seed)
    loss, grad = np_loss_and_grad(a, p, n, margin)
    np.testing.assert_allclose(point.loss, loss, atol=2e-6)
    np.testing.assert_allclose(point.grad, grad, rtol=1e-4, atol=1e-5)
    assert point.margin == margin
    assert point.mean_loss == pytest.approx(loss.mean(), abs=1e-6)
    np.testing.assert_array_equal(point.active, loss > 0)
    assert point.active_share == pytest.approx((loss > 0).mean())
    assert point.grad_norm == pytest.approx(np.linalg.norm(grad), rel=1e-4)
    np.testing.assert_allclose(
        point.row_grad_norms, np.linalg.norm(grad, axis=1), rtol=1e-4, atol=1e-6
    )
    assert point.zero_gradient == int((np.abs(grad).max(axis=1) == 0).sum())


def test_gradient_matches_finite_differences_of_the_numpy_loss():
    point = explore.at_setting(explore.Setting(0.5, 0.5), 0)
    a, p, n, _ = explore.example_triplets(64, 8, hard_share=0.5, seed=0)
    a = a.astype(np.float64)
    step = 1e-6
    for row, col in [(0, 0), (5, 3), (17, 7), (63, 2)]:
        up, down = a.copy(), a.copy()
        up[row, col] += step
        down[row, col] -= step
        numeric = (
            np_loss_and_grad(up, p, n, 0.5)[0].sum()
            - np_loss_and_grad(down, p, n, 0.5)[0].sum()
        ) / (2 * step)
        assert point.grad[row, col] == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_the_lessons_claims():
    batch = explore.triplets(explore.Batch(0.25), 0)
    # Margin 0: only the triplets ranked the wrong way round are active.
    zero = explore.at_setting(explore.Setting(0.0, 0.25), 0)
    np.testing.assert_array_equal(zero.active, batch.gap < 0)
    assert zero.zero_gradient == explore.NUM_TRIPLETS - batch.wrong_order
    # Margin 2: gaps are at most 2, so every triplet is active.
    two = explore.at_setting(explore.Setting(2.0, 0.25), 0)
    assert two.active_share == 1.0 and two.zero_gradient == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hard_share", [0.0, 0.5])
def test_margin_sweep_matches_numpy_and_its_caption(seed, hard_share):
    sweep = explore.margin_sweep(explore.Batch(hard_share), seed)
    step = registry.get("cosine_triplet_loss").param("margin").ui_range[2]
    np.testing.assert_allclose(sweep.margins, np.linspace(0.0, 2.5, 51), atol=1e-12)
    assert sweep.margins[1] - sweep.margins[0] == pytest.approx(step)
    a, p, n, _ = explore.example_triplets(64, 8, hard_share=hard_share, seed=seed)
    gap = np_cosines(a, p) - np_cosines(a, n)
    for i, margin in enumerate(sweep.margins):
        loss, grad = np_loss_and_grad(a, p, n, margin)
        assert sweep.mean_loss[i] == pytest.approx(loss.mean(), abs=1e-6)
        assert sweep.active_share[i] == pytest.approx((loss > 0).mean())
        assert sweep.grad_norm[i] == pytest.approx(np.linalg.norm(grad), rel=1e-4)
    # Every triplet is active from the first grid margin above the largest gap.
    assert sweep.all_active_from == pytest.approx(
        sweep.margins[sweep.margins > gap.max()][0]
    )
    assert sweep.nonfinite_from is None
    # The caption: from there the gradient stops changing and the mean loss
    # grows by as much as the margin.
    after = sweep.margins >= sweep.all_active_from
    np.testing.assert_allclose(
        np.diff(sweep.mean_loss[after]), np.diff(sweep.margins[after]), atol=1e-5
    )
    np.testing.assert_allclose(
        sweep.grad_norm[after], sweep.grad_norm[after][0], rtol=1e-5
    )


def test_sweep_and_point_agree_on_the_grid():
    sweep = explore.margin_sweep(explore.Batch(0.25), 0)
    for i in (0, 7, 50):
        point = explore.at_setting(explore.Setting(sweep.margins[i], 0.25), 0)
        assert point.mean_loss == sweep.mean_loss[i]
        assert point.grad_norm == sweep.grad_norm[i]


def test_slider_moves_never_retrace():
    cosines, sweep = explore._graphs()
    explore.at_setting(explore.Setting(0.4, 0.35), 0)
    explore.at_setting(explore.Setting(0.401, 0.35), 0)  # off the grid
    before = (
        cosines.experimental_get_tracing_count(),
        sweep.experimental_get_tracing_count(),
    )
    for margin, share, seed in [(0.1, 0.6, 1), (0.777, 0.6, 1), (2.3, 0.05, 2)]:
        explore.at_setting(explore.Setting(margin, share), seed)
        explore.margin_sweep(explore.Batch(share), seed)
    after = (
        cosines.experimental_get_tracing_count(),
        sweep.experimental_get_tracing_count(),
    )
    assert after == before == (1, 1)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"margin": -0.1}, "margin"), ({"hard_share": 1.5}, "hard_share")],
)
def test_settings_name_a_bad_field(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        explore.Setting(**kwargs)


def test_params_are_the_registry_s():
    assert explore.PARAMS["margin"] is registry.get("cosine_triplet_loss").param(
        "margin"
    )


# ------------------------------------------------------- the add_loss layer


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pad_share, logit_scale", [(0.3, 2.0), (0.0, 0.0), (0.7, 6.0)])
def test_layer_reports_match_numpy(seed, pad_share, logit_scale):
    tokens = explore.layer_reports(explore.LayerSetting(pad_share, logit_scale), seed)
    y_true, logits = explore.example_token_batch(
        4, 8, 6, pad_share=pad_share, logit_scale=logit_scale, seed=seed
    )
    np.testing.assert_array_equal(tokens.y_true, y_true)
    ce = np_token_ce(y_true, logits, 0)
    np.testing.assert_allclose(tokens.token_ce, ce, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tokens.tokens_per_row, (y_true != 0).sum(axis=1))
    for report, mask in ((tokens.masked, y_true != 0), (tokens.unmasked, None)):
        counted = np.ones_like(y_true, bool) if mask is None else mask
        per_token = np_token_ce(y_true, logits, -1)  # every position's loss
        mean_ce = per_token[counted].mean()
        accuracy = (np.argmax(logits, -1) == y_true)[counted].mean()
        assert report.tokens == counted.sum()
        assert report.loss == pytest.approx(mean_ce, rel=1e-5)
        assert report.perplexity == pytest.approx(math.exp(mean_ce), rel=1e-5)
        assert report.masked_accuracy == pytest.approx(accuracy)


def test_padding_makes_the_unmasked_numbers_look_better():
    # What the section says: the model predicts padding with near certainty,
    # so counting it lowers the loss although the real tokens are the same.
    tokens = explore.layer_reports(explore.LayerSetting(0.5, 2.0), 0)
    assert tokens.unmasked.loss < tokens.masked.loss
    assert tokens.unmasked.perplexity < tokens.masked.perplexity


def test_all_padding_gives_zero_loss_and_perplexity_one():
    tokens = explore.layer_reports(explore.LayerSetting(1.0, 2.0), 0)
    assert (tokens.masked.loss, tokens.masked.perplexity) == (0.0, 1.0)
    assert tokens.masked.tokens == 0 and tokens.masked.masked_accuracy == 0.0
    assert np.all(tokens.token_ce == 0)
    assert tokens.unmasked.tokens == 32 and tokens.unmasked.loss > 0


def test_layer_setting_names_a_bad_field():
    with pytest.raises(ValueError, match="`pad_share`"):
        explore.LayerSetting(pad_share=-0.1)
    with pytest.raises(ValueError, match="`logit_scale`"):
        explore.LayerSetting(logit_scale=-1.0)


# ---------------------------------------------------------------- training


def test_train_runs_follow_the_margin_and_fit_the_task():
    runs = explore.train_runs(explore.Setting(0.35, 0.25))
    assert [(r.label, r.variant, r.params) for r in runs] == [
        ("masked LM (add_loss)", "masked_lm", {}),
        ("triplet, margin 0.35", "triplet", {"margin": 0.35}),
    ]
    task = core.TASKS[explore.TRAINING.task]
    assert set(explore.TRAINING.metrics) == set(task.metrics)
    assert {r.variant for r in runs} == set(task.variants)
