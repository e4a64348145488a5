"""lossviz.explore.triplet against numpy: the example batches, the loss and its
gradient at a margin, the margin sweep, the claims the page states (its
intro, captions and lessons), the add_loss layer's reports, and the original
attempts the page shows beyond tests/test_attempts.py."""

import math
import os

import keras
import numpy as np
import pytest

import lossviz
from lossviz import registry
from lossviz.explore import triplet as explore
from lossviz.explore.attempts import triplet as attempts
from lossviz.training import core
from lossviz.training import triplet as task
from views.content import triplet as content

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
    assert batch.hard_wrong_order == int((gap[hard] < 0).sum())


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


def np_gap(seed, hard_share=0.25):
    a, p, n, hard = explore.example_triplets(64, 8, hard_share=hard_share, seed=seed)
    return np_cosines(a, p) - np_cosines(a, n), hard


def test_page_facts_state_the_default_batch_s_largest_gap():
    facts = explore.page_facts(0)
    gap, _ = np_gap(0, explore.Setting().hard_share)
    # The intro's threshold: every triplet is active for m above the largest
    # gap, 1.71 on the default data (not 2 + anything).
    assert facts.max_gap == pytest.approx(gap.max(), abs=1e-6)
    assert round(facts.max_gap, 2) == 1.71
    assert (facts.num_triplets, facts.dim, facts.hard_share) == (64, 8, 0.25)
    margins = np.linspace(0.0, 2.5, 51)
    assert facts.all_active_from == pytest.approx(margins[margins > gap.max()][0])
    # The slider reaches it, and goes beyond it.
    assert facts.margin_high == explore.PARAMS["margin"].ui_range[1]
    assert facts.all_active_from <= facts.margin_high
    assert facts.zero_answer_cosine == 0.0
    text = " ".join(content.intro(facts).split())
    assert "1.71 with the default share of 0.25" in text
    assert "from m = 1.75 on the" in text and "goes to 2.5" in text


@pytest.mark.parametrize("seed", SEEDS)
def test_raising_the_margin_never_lowers_share_loss_or_gradient(seed):
    # The intro: the share of active triplets, the loss and the gradient grow.
    sweep = explore.margin_sweep(explore.Batch(0.25), seed)
    for series in (sweep.active_share, sweep.mean_loss, sweep.grad_norm):
        assert np.all(np.diff(series) >= -1e-6)
    assert sweep.mean_loss[-1] > sweep.mean_loss[0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_more_hard_triplets_more_wrongly_ranked_and_more_loss_at_margin_zero(seed):
    # The intro and the hard-share help: most hard triplets are ranked the
    # wrong way round, and the loss at margin 0 grows with their share.
    shares = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    wrong, losses = [], []
    for share in shares:
        gap, hard = np_gap(seed, share)
        wrong.append(int((gap < 0).sum()))
        losses.append(np.maximum(0.0, -gap).mean())
        if hard.any():
            assert (gap[hard] < 0).mean() > 0.5, share
    assert np.all(np.diff(wrong) >= 0) and np.all(np.diff(losses) >= 0)
    assert explore.at_setting(explore.Setting(0.0, 1.0), seed).mean_loss == (
        pytest.approx(losses[-1], abs=1e-6)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_exactly_the_inactive_triplets_have_a_zero_gradient(seed):
    # The metric helps: only active triplets carry a gradient, and an
    # inactive one's is exactly 0.
    grid = explore.over_grid(explore.Batch(0.25), seed)
    for loss, grad in zip(grid.loss, grid.grad, strict=True):
        zero_rows = ~np.any(grad != 0, axis=1)
        np.testing.assert_array_equal(zero_rows, loss == 0)


def test_a_descent_step_is_the_answers_directions_perpendicular_to_q():
    # The gradient caption: -dL/dq = P_q(u+ - u-) / |q| for an active triplet,
    # perpendicular to q; a zero answer counts as 0.
    point = explore.at_setting(explore.Setting(0.5, 0.25), 0)
    a, p, n, _ = (x.astype(np.float64) for x in explore.example_triplets(seed=0))

    def unit(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    q = unit(a)
    direction = unit(p) - unit(n)
    direction -= np.sum(direction * q, axis=1, keepdims=True) * q
    step = direction / np.linalg.norm(a, axis=1, keepdims=True)
    active = point.active
    assert active.sum() > 10 and not n[-1].any()
    np.testing.assert_allclose(-point.grad[active], step[active], atol=2e-5)
    along_q = np.abs(np.sum(point.grad * q, axis=1))
    assert along_q.max() < 1e-5 * max(1.0, np.abs(point.grad).max())


def test_gap_caption_counts_the_wrongly_ranked_triplets():
    batch = explore.triplets(explore.Batch(0.25), 0)
    gap, hard = np_gap(0)
    text = content.gap_caption(batch)
    assert text.startswith(
        f"{int((gap < 0).sum())} of 64 triplets are ranked the wrong way round "
        f"(gap below 0; {int((gap[hard] < 0).sum())} of the {int(hard.sum())} hard "
        f"ones and {int((gap[~hard] < 0).sum())} of the {int((~hard).sum())} easy"
    )
    assert f"The largest gap is {gap.max():.3g}:" in text


# ------------------------------------------------------------------ lessons


def lesson(check):
    (found,) = [item for item in content.LESSONS if item.check == check]
    return found


def values_of(check, **overrides):
    return content.CONTROLS.defaults() | lesson(check).settings | overrides


def checked(check, margin, seed, hard_share):
    """The lesson's claim at its settings (asserted to hold and to set
    ``margin``) and the numpy gaps of its batch."""
    values = values_of(check, hard_share=hard_share)
    assert values["margin"] == margin
    claim = explore.check_lesson(check, values, seed)
    assert claim.holds, claim.statement
    return claim, np_gap(seed, hard_share)[0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hard_share", [0.0, 0.25, 1.0])
def test_margin_zero_lesson_only_wrongly_ranked_triplets_are_active(seed, hard_share):
    claim, gap = checked("only_wrong_order_active", 0.0, seed, hard_share)
    wrong = int((gap < 0).sum())
    assert claim.statement == (
        f"At m = 0, {wrong} of 64 triplets are ranked the wrong way round (gap "
        f"below 0) and exactly those are active; the other {64 - wrong} each have "
        "a loss of 0 and a gradient of exactly 0."
    )
    point = explore.at_setting(explore.Setting(0.0, hard_share), seed)
    assert point.active_share == pytest.approx(wrong / 64)
    assert point.zero_gradient == 64 - wrong


def test_margin_zero_lesson_does_not_hold_at_a_positive_margin():
    claim = explore.check_lesson(
        "only_wrong_order_active", values_of("only_wrong_order_active", margin=0.3), 0
    )
    assert not claim.holds and "not just those" in claim.statement


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hard_share", [0.0, 0.25, 1.0])
def test_margin_two_lesson_every_triplet_active(seed, hard_share):
    claim, gap = checked("every_triplet_active", 2.0, seed, hard_share)
    # True on the data: every gap is below 2 (a gap of 2 needs a perfect
    # triplet), so the active share is 1 and the mean loss is 2 - mean gap.
    assert -2 <= gap.min() and gap.max() < 2
    point = explore.at_setting(explore.Setting(2.0, hard_share), seed)
    assert point.active_share == 1.0 and point.zero_gradient == 0
    assert point.mean_loss == pytest.approx(2.0 - gap.mean(), abs=1e-5)
    assert f"the mean loss {point.mean_loss:.4g} is m minus" in claim.statement
    assert f"Every gap lies in [{gap.min():.3g}, {gap.max():.3g}], below" in (
        claim.statement
    )


def test_margin_two_lesson_holds_exactly_above_the_largest_gap():
    gap, _ = np_gap(0)
    for margin in explore.MARGINS:
        values = values_of("every_triplet_active", margin=float(margin))
        claim = explore.check_lesson("every_triplet_active", values, 0)
        assert claim.holds == (margin > gap.max()), margin


def test_training_lesson_margin_zero_stalls_where_its_margin_learns():
    values = values_of("margin_trains")
    claim = explore.check_lesson("margin_trains", values, 0)
    assert claim.holds, claim.statement
    runs = {
        m: core.train("triplet", "triplet", epochs=5, seed=0, margin=m).history
        for m in (0.0, values["margin"])
    }
    zero, wide = runs[0.0], runs[values["margin"]]
    assert zero["loss"][-1] < 0.01
    assert wide["recall_at_1"][-1] >= 2 * zero["recall_at_1"][-1]
    assert f"training loss ends at {zero['loss'][-1]:.2g}" in claim.statement
    assert f"recall@1 ends at {wide['recall_at_1'][-1]:.3g}" in claim.statement


def test_check_lesson_names_an_unknown_check():
    with pytest.raises(ValueError, match="`name`"):
        explore.check_lesson("nothing", content.CONTROLS.defaults(), 0)


def test_every_lesson_names_a_check_of_the_explore_layer():
    assert {item.check for item in content.LESSONS} == set(explore.LESSON_CHECKS)


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
    graphs = explore._graphs()
    explore.at_setting(explore.Setting(0.4, 0.35), 0)
    explore.at_setting(explore.Setting(0.401, 0.35), 0)  # off the grid
    explore.over_grid(explore.Batch(0.35), 0)
    before = tuple(g.experimental_get_tracing_count() for g in graphs)
    for margin, share, seed in [(0.1, 0.6, 1), (0.777, 0.6, 1), (2.3, 0.05, 2)]:
        explore.at_setting(explore.Setting(margin, share), seed)
        explore.margin_sweep(explore.Batch(share), seed)
        # A new share or seed computes a new grid, in the same graph.
        explore.over_grid.__wrapped__(explore.Batch(share), seed)
    after = tuple(g.experimental_get_tracing_count() for g in graphs)
    assert after == before == (1, 1, 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hard_share", [0.0, 0.25, 1.0])
def test_over_grid_is_at_setting_at_every_margin_of_the_slider(seed, hard_share):
    grid = explore.over_grid(explore.Batch(hard_share), seed)
    np.testing.assert_array_equal(grid.values, explore.MARGINS)
    assert grid.loss.shape == (len(explore.MARGINS), explore.NUM_TRIPLETS)
    for i, margin in enumerate(grid.values):
        point = explore.at_setting(explore.Setting(margin, hard_share), seed)
        looked_up = grid.at(margin)
        # The same float32 operations: equal, not just close.
        np.testing.assert_array_equal(looked_up.loss, point.loss)
        np.testing.assert_allclose(looked_up.grad, point.grad, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(looked_up.active, point.active)
        assert looked_up.margin == point.margin
        assert looked_up.mean_loss == pytest.approx(point.mean_loss, rel=1e-6)
        assert looked_up.grad_norm == pytest.approx(point.grad_norm, rel=1e-6)
        assert looked_up.zero_gradient == point.zero_gradient
        assert looked_up.active_share == point.active_share
        # The grid's own batch numbers, read by the sweep and the Play chart.
        assert grid.mean_loss[i] == pytest.approx(point.mean_loss, rel=1e-6)
        assert grid.grad_norm[i] == pytest.approx(point.grad_norm, rel=1e-6)
        assert grid.active_count[i] == point.active.sum()
        assert grid.active_share[i] == point.active_share


def test_over_grid_gradient_is_the_active_mask_times_a_fixed_term():
    grid = explore.over_grid(explore.Batch(0.25), 0)
    a, p, n, hard = explore.example_triplets(seed=0)
    term = np_cosine_grad(a, n) - np_cosine_grad(a, p)
    np.testing.assert_allclose(grid.active_grad, term, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        grid.active_grad_norms, np.linalg.norm(term, axis=1), rtol=1e-4
    )
    gap = np_cosines(a, p) - np_cosines(a, n)
    np.testing.assert_allclose(grid.gap, gap, atol=1e-6)
    np.testing.assert_array_equal(grid.hard, hard)
    for margin, active, grad in zip(grid.values, grid.active, grid.grad, strict=True):
        np.testing.assert_array_equal(active, margin > grid.gap)
        np.testing.assert_array_equal(grad[~active], 0.0)
        np.testing.assert_array_equal(grad[active], grid.active_grad[active])


def test_over_grid_looks_up_only_the_slider_s_margins():
    grid = explore.over_grid(explore.Batch(0.25), 0)
    assert grid.index(0.35) == 7 and grid.at(2.5).margin == 2.5
    with pytest.raises(ValueError, match="not on the grid"):
        grid.at(0.123)


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


def np_token_mean_grad(y_true, logits, pad_id):
    """d(token-mean cross-entropy)/d(logits): (softmax - one-hot) on counted
    positions over their count; 0 where nothing counts."""
    z = np.asarray(logits, np.float64)
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    counted = y_true != pad_id
    one_hot = np.eye(z.shape[-1])[np.where(counted, y_true, 0)]
    count = counted.sum()
    return np.where(counted[..., None], probs - one_hot, 0.0) / max(count, 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pad_share", [0.0, 0.3, 1.0])
def test_layer_gradient_and_padding_probability_match_numpy(seed, pad_share):
    tokens = explore.layer_reports(explore.LayerSetting(pad_share, 2.0), seed)
    y_true, logits = explore.example_token_batch(
        4, 8, 6, pad_share=pad_share, logit_scale=2.0, seed=seed
    )
    for report, pad_id in ((tokens.masked, 0), (tokens.unmasked, -1)):
        expected = np.linalg.norm(np_token_mean_grad(y_true, logits, pad_id))
        assert report.grad_norm == pytest.approx(expected, rel=1e-4, abs=1e-9)
    padded = y_true == 0
    assert tokens.padded == padded.sum()
    if padded.any():
        z = logits.astype(np.float64)[padded]
        probs = np.exp(z - z.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        assert tokens.pad_probability == pytest.approx(probs[:, 0].min(), rel=1e-5)
        # "Padding with near certainty".
        assert tokens.pad_probability > 0.95
    else:
        assert np.isnan(tokens.pad_probability)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_raising_the_padding_lowers_the_unmasked_loss(seed):
    # "Raise the padding: the unmasked loss falls and its accuracy rises."
    shares = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    reports = [
        explore.layer_reports(explore.LayerSetting(s, 2.0), seed) for s in shares
    ]
    unmasked = [r.unmasked for r in reports]
    assert np.all(np.diff([u.loss for u in unmasked]) <= 1e-6)
    assert unmasked[-1].masked_accuracy > unmasked[0].masked_accuracy
    for tokens in reports:
        if tokens.padded and tokens.masked.tokens:
            assert tokens.unmasked.loss <= tokens.masked.loss + 1e-6
            assert tokens.unmasked.masked_accuracy >= tokens.masked.masked_accuracy


@pytest.mark.parametrize("seed", SEEDS)
def test_layer_facts_padding_only_gives_zero_loss_zero_gradient_perplexity_one(seed):
    facts = explore.layer_facts(seed)
    assert (facts.batch_size, facts.length, facts.num_classes, facts.pad_id) == (
        4,
        8,
        6,
        0,
    )
    padding_only = facts.all_padding
    assert (padding_only.loss, padding_only.grad_norm) == (0.0, 0.0)
    assert (padding_only.perplexity, padding_only.tokens) == (1.0, 0)
    text = " ".join(content.masked_intro(facts).split())
    assert "A tiny batch of 4 padded target sequences of 8 positions over 6 ids" in text
    assert (
        "the masked loss is 0, its gradient has norm 0 (not NaN), and the "
        "perplexity is 1." in text
    )


def test_layer_caption_states_the_batch_s_numbers():
    tokens = explore.layer_reports(explore.LayerSetting(0.3, 2.0), 0)
    text = content.layer_caption(tokens)
    assert text.startswith(f"At the {tokens.padded} padded positions")
    assert f"at least {tokens.pad_probability:.3g}" in text
    only = explore.layer_reports(explore.LayerSetting(1.0, 2.0), 0)
    assert content.layer_caption(only).startswith(
        "Every position is padding: the masked layer adds a loss of 0 with a "
        "gradient of norm 0 and reports a perplexity of 1"
    )
    none = explore.layer_reports(explore.LayerSetting(0.0, 2.0), 0)
    assert content.layer_caption(none) == (
        "No position is padding: both layers count the same 32 tokens."
    )


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


def test_train_facts_are_the_training_task_s():
    facts = explore.TRAIN_FACTS
    assert facts.topics_per_pair == task.TOPICS_PER_PAIR == 2
    assert facts.heldout_answers == task.TRIPLET_PARAMS["num_answers"][0] == 32
    assert facts.chance == 1 / 32
    assert facts.clock == task.CLOCK == 12
    data = task.qa_dataset(0)
    assert facts.example_question == task.decode(data["heldout_question"][0])
    assert facts.example_answer == task.decode(data["heldout_answer"][0])
    # A real held-out sequence that wraps around the clock, one step apart.
    tokens, _ = task.counting_sequences(core.rng(0, salt=4), task.LM_HELDOUT)
    hours = [int(h) for h in facts.example_sequence.split()]
    rows = [[int(t) for t in row if t] for row in tokens]
    assert hours in rows
    steps = {(b - a) % 12 for a, b in zip(hours, hours[1:], strict=False)}
    assert len(steps) == 1 and steps <= set(task.STEPS)
    assert any(b < a for a, b in zip(hours, hours[1:], strict=False))
    text = content.train_intro(facts)
    assert "chance is 1/32" in text and "12-hour clock" in text
    assert content.LESSONS[2].title in text


def test_train_runs_follow_the_margin_and_fit_the_task():
    runs = explore.train_runs(explore.Setting(0.35, 0.25))
    assert [(r.label, r.variant, r.params) for r in runs] == [
        ("masked LM (add_loss)", "masked_lm", {}),
        ("triplet, margin 0.35", "triplet", {"margin": 0.35}),
    ]
    task = core.TASKS[explore.TRAINING.task]
    assert set(explore.TRAINING.metrics) == set(task.metrics)
    assert {r.variant for r in runs} == set(task.variants)


# ------------------------------------------------ Keras 3 and the attempts


@pytest.fixture(scope="module")
def attempt_outcomes():
    return {a.key: o for a, o in attempts.run_all(seed=0)}


def test_the_issue_s_attempts_are_all_run(attempt_outcomes):
    assert list(attempt_outcomes) == [
        "no_return",
        "zero_mask",
        "model_add_loss",
        "metrics_tensors",
        "layer_add_metric",
    ]
    assert all(o.kind in ("error", "nan") for o in attempt_outcomes.values())


def test_metrics_names_append_runs_but_is_lost(attempt_outcomes):
    # Keras 3 does not raise on metrics_names.append: the name is just lost.
    details = dict(attempt_outcomes["metrics_tensors"].details)
    appended = details["model.metrics_names.append('perplexity')"]
    assert appended.startswith("runs without an error, but the name is lost")
    assert "perplexity" not in appended.split(":", 1)[1]


def test_layer_add_metric_raises_and_the_fix_reports_its_metrics(attempt_outcomes):
    outcome = attempt_outcomes["layer_add_metric"]
    assert outcome.kind == "error" and outcome.error_type == "NotImplementedError"
    assert "add_metric()" in outcome.message
    assert dict(outcome.details)["called on tensors"].startswith(
        "raises NotImplementedError"
    )
    assert "perplexity" in outcome.fix_message
    assert np.all(np.isfinite(outcome.fix_value))


def test_the_keras3_way_text_holds():
    # "Model.add_loss on a functional model and Layer.add_metric raise
    # NotImplementedError, model.metrics_tensors is gone, metrics_names is
    # rebuilt on every read; a model lists the metrics of its layers."
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(NotImplementedError):
        model.add_loss(keras.ops.sum(inputs))
    with pytest.raises(NotImplementedError, match="add_metric"):
        keras.layers.Layer().add_metric(1.0, name="m")
    assert not hasattr(model, "metrics_tensors")
    assert model.metrics_names is not model.metrics_names
    training_model, _ = lossviz.build_masked_lm_model(6, max_len=5)
    names = {m.name for m in training_model.metrics}
    assert {"perplexity", "masked_accuracy"} <= names


def test_the_snippet_runs(tmp_path):
    rng = np.random.default_rng(0)
    vocab_size, max_len = 12, 5

    def ids(n):
        return rng.integers(0, vocab_size, (n, max_len)).astype("int32")

    namespace = {
        "vocab_size": vocab_size,
        "max_len": max_len,
        "questions": ids(16),
        "right_answers": ids(16),
        "wrong_answers": ids(16),
        "answers": ids(8),
        "tokens": ids(16),
        "targets": ids(16),
    }
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(content.snippet(0.3), namespace)
    finally:
        os.chdir(here)
    assert namespace["q"].shape == (16, 64) and namespace["a"].shape == (8, 64)
    assert (tmp_path / "triplet.keras").exists()
    loaded = keras.saving.load_model(tmp_path / "triplet.keras")
    assert loaded.get_layer("question_encoder") is not None
    assert set(namespace["history"].history) == {
        "loss",
        "perplexity",
        "masked_accuracy",
    }
