"""lossviz.explore.sampled against numpy: the example, both losses, the draws'
bias and spread, the logit gradients, every S at once (the page's grid and
its sweep), the timing's caching,
the train runs; and the explorer-only helpers moved here from the loss module."""

import dataclasses

import numpy as np
import pytest
from test_sampled import candidates_with_hits, np_log_uniform, problem

from lossviz import sampled as family
from lossviz._tf import tf
from lossviz.explore import sampled as explore
from lossviz.training import sampled as task
from views.content import sampled as content

SMALL = explore.Setting(num_sampled=16, num_classes=1_000)
SEED = 3


# --------------------------------------------------------------------------
# Independent references, vectorised numpy in float64 (the loops, the log-
# uniform law and the small problems are test_sampled's).


def np_logsumexp(z):
    top = np.max(z, axis=-1, keepdims=True)
    return (top + np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True)))[..., 0]


def np_full(weights, biases, labels, inputs):
    """Per-sample loss, gradient w.r.t. the logits and w.r.t. the inputs."""
    w, b, x = (np.asarray(a, np.float64) for a in (weights, biases, inputs))
    logits = x @ w.T + b
    rows = np.arange(len(labels))
    loss = np_logsumexp(logits) - logits[rows, labels]
    grad_logits = np.exp(logits - np_logsumexp(logits)[:, None])
    grad_logits[rows, labels] -= 1.0
    return loss, grad_logits, grad_logits @ w


def np_sampled(weights, biases, labels, inputs, candidates, remove_hits):
    """Per-sample sampled loss, its logit gradient ``[B, C]`` and its input
    gradient, for given ``(sampled, true_count, sampled_count)``."""
    sampled, true_count, sampled_count = (np.asarray(v) for v in candidates)
    w, b, x = (np.asarray(a, np.float64) for a in (weights, biases, inputs))
    true_logit = np.sum(x * w[labels], 1) + b[labels] - np.log(true_count)
    logits = x @ w[sampled].T + b[sampled] - np.log(sampled_count)
    if remove_hits:
        logits = np.where(labels[:, None] == sampled[None, :], -np.inf, logits)
    all_logits = np.concatenate([true_logit[:, None], logits], 1)
    loss = np_logsumexp(all_logits) - true_logit
    p = np.exp(all_logits - np_logsumexp(all_logits)[:, None])
    grad_logits = np.zeros((len(labels), len(w)))
    rows = np.arange(len(labels))
    grad_logits[rows, labels] += p[:, 0] - 1.0
    for j, s in enumerate(sampled):
        grad_logits[rows, s] += p[:, j + 1]
    grad_inputs = (p[:, :1] - 1.0) * w[labels] + p[:, 1:] @ w[sampled]
    return loss, grad_logits, grad_inputs


def candidates(labels, num_sampled, num_classes, seed):
    """The loss module's sampler (tested in test_sampled.py) at ``seed``."""
    return family.log_uniform_candidate_sampler(
        labels, num_sampled, num_classes, seed=seed
    )


def draw_seed(seed, i):
    """The stateless seed of draw ``i``, as sampled_softmax_loss_draws folds it."""
    return tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), tf.constant(i, tf.int64), alg="philox"
    )


def np_draw_means(arrays, setting, seed, num_draws):
    weights, biases, labels, inputs = arrays
    return np.array(
        [
            np.mean(
                np_sampled(
                    weights, biases, labels, inputs,
                    candidates(labels, setting.num_sampled, setting.num_classes,
                               draw_seed(seed, i)),
                    setting.remove_accidental_hits,
                )[0]
            )
            for i in range(num_draws)
        ]
    )  # fmt: skip


# --------------------------------------------------------------------------
# The example.


def test_example_problem_shapes_and_repeatability():
    data = explore.example_problem(100, 4, 6, time_steps=3, seed=1)
    assert data["weights"].shape == (100, 4) and data["biases"].shape == (100,)
    assert data["labels"].shape == (6, 3) and data["inputs"].shape == (6, 3, 4)
    np.testing.assert_allclose(np.exp(data["biases"]), np_log_uniform(100), rtol=1e-6)
    again = explore.example_problem(100, 4, 6, time_steps=3, seed=1)
    for key in data:
        np.testing.assert_array_equal(data[key], again[key])
    assert data["labels"].max() < 100 and data["labels"].min() >= 0


def test_the_label_law_changes_the_labels_not_the_output_layer():
    zipf = explore.example(explore.Problem(1_000, True), SEED)
    uniform = explore.example(explore.Problem(1_000, False), SEED)
    np.testing.assert_array_equal(zipf.weights, uniform.weights)
    np.testing.assert_array_equal(zipf.biases, uniform.biases)
    assert zipf.labels.shape == (explore.BATCH,)
    assert zipf.inputs.shape == (explore.BATCH, explore.DIM)
    # Zipfian labels are mostly frequent words, uniform ones mostly rare.
    assert np.median(zipf.labels) < 100 < np.median(uniform.labels)
    assert not zipf.weights.flags.writeable  # shared by every session


# --------------------------------------------------------------------------
# One setting.


@pytest.fixture(scope="module")
def small():
    arrays = explore.example(SMALL.problem, SEED).arrays
    return arrays, explore.at_setting(SMALL, SEED)


def test_both_losses_match_numpy(small):
    (weights, biases, labels, inputs), point = small
    full, _, _ = np_full(weights, biases, labels, inputs)
    np.testing.assert_allclose(point.full_loss, full, rtol=1e-5)
    assert point.full_mean == pytest.approx(np.mean(full), rel=1e-6)
    # The sampled loss at the page's seed: the sampler's candidates at it.
    drawn = candidates(labels, 16, 1_000, SEED)
    sampled, _, _ = np_sampled(weights, biases, labels, inputs, drawn, True)
    np.testing.assert_allclose(point.sampled_loss, sampled, rtol=1e-5)
    assert point.sampled_mean == pytest.approx(np.mean(sampled), rel=1e-6)


def test_bias_and_spread_of_the_draws_match_numpy(small):
    arrays, point = small
    means = np_draw_means(arrays, SMALL, SEED, explore.NUM_DRAWS)
    np.testing.assert_allclose(point.draw_means, means, rtol=1e-5)
    full = np.mean(np_full(*arrays)[0])
    assert point.draws_mean == pytest.approx(np.mean(means), rel=1e-5)
    assert point.bias == pytest.approx(np.mean(means) - full, rel=1e-4)
    assert point.spread == pytest.approx(np.std(means), rel=1e-3)


def test_logit_gradients_of_the_shown_samples_match_numpy(small):
    (weights, biases, labels, inputs), point = small
    shown = slice(0, explore.SHOWN_SAMPLES)
    expected_classes = sorted(set(range(10)) | set(labels[shown].tolist()))
    np.testing.assert_array_equal(point.classes, expected_classes)
    _, full, _ = np_full(weights, biases, labels[shown], inputs[shown])
    np.testing.assert_allclose(
        point.full_logit_grad, full[:, expected_classes], atol=1e-6
    )
    drawn = candidates(labels[shown], 16, 1_000, SEED)
    _, sampled, _ = np_sampled(
        weights, biases, labels[shown], inputs[shown], drawn, True
    )
    np.testing.assert_allclose(
        point.sampled_logit_grad, sampled[:, expected_classes], atol=1e-6
    )
    np.testing.assert_array_equal(point.labels, labels)


def test_the_estimate_is_biased_low_by_more_than_its_spread_at_the_defaults():
    # The page's claims at its defaults: the histogram lies left of the full
    # loss; more samples shrink bias and spread; uniform labels enlarge it.
    default = explore.at_setting(explore.Setting(), 0)
    assert default.bias < 0 and -default.bias > default.spread
    assert np.all(default.draw_means < default.full_mean)
    more = explore.at_setting(explore.Setting(num_sampled=1024), 0)
    assert abs(more.bias) < abs(default.bias) and more.spread < default.spread
    assert more.full_mean == default.full_mean
    uniform = explore.at_setting(explore.Setting(zipf_labels=False), 0)
    assert abs(uniform.bias) > 2 * abs(default.bias)


def test_a_kept_accidental_hit_counts_twice():
    # With every class sampled, each label is a hit: kept, it is added to
    # the label's own logit gradient.
    every = explore.Setting(num_sampled=100, num_classes=100)
    kept = explore.Setting(num_sampled=100, num_classes=100,
                           remove_accidental_hits=False)  # fmt: skip
    arrays = explore.example(every.problem, SEED).arrays
    weights, biases, labels, inputs = arrays
    for setting in (every, kept):
        point = explore.at_setting(setting, SEED)
        drawn = candidates(labels, 100, 100, SEED)
        loss, _, _ = np_sampled(
            weights, biases, labels, inputs, drawn, setting.remove_accidental_hits
        )
        np.testing.assert_allclose(point.sampled_loss, loss, rtol=1e-5)
    removed = explore.at_setting(every, SEED).sampled_mean
    assert explore.at_setting(kept, SEED).sampled_mean > removed


# --------------------------------------------------------------------------
# The sweep over S.


@pytest.fixture(scope="module")
def sweep():
    setting = explore.Setting(num_sampled=8, num_classes=100, zipf_labels=False)
    return setting, explore.count_sweep(setting.sweep, SEED)


def test_sweep_grid_stops_at_the_vocabulary(sweep):
    setting, grid = sweep
    # The choices above C = 100 are capped at it, as the page caps them.
    np.testing.assert_array_equal(grid.num_sampled, [1, 2, 4, 8, 16, 32, 64, 100])
    assert grid.setting == setting.sweep
    np.testing.assert_array_equal(explore.sweep_points(50_000), explore.SAMPLED_CHOICES)
    np.testing.assert_array_equal(explore.sweep_points(4_096), explore.SAMPLED_CHOICES)
    assert explore.sweep_points(1_000)[-2:].tolist() == [512, 1_000]
    assert explore.sweep_points(1).tolist() == [1]


def test_sweep_matches_numpy_at_every_point(sweep):
    setting, grid = sweep
    arrays = explore.example(setting.problem, SEED).arrays
    weights, biases, labels, inputs = arrays
    full_loss, _, full_grad = np_full(*arrays)
    assert grid.full_loss == pytest.approx(np.mean(full_loss), rel=1e-6)
    assert grid.full_grad_norm == pytest.approx(np.linalg.norm(full_grad), rel=1e-5)
    for i, num_sampled in enumerate(grid.num_sampled):
        at = explore.Setting(num_sampled=int(num_sampled), num_classes=100,
                             zipf_labels=False)  # fmt: skip
        means = np_draw_means(arrays, at, SEED, grid.draws)
        assert grid.bias[i] == pytest.approx(np.mean(means) - np.mean(full_loss),
                                             rel=1e-4, abs=1e-6)  # fmt: skip
        assert grid.abs_bias[i] == pytest.approx(abs(grid.bias[i]))
        assert grid.spread[i] == pytest.approx(np.std(means), rel=1e-3, abs=1e-6)
        drawn = candidates(labels, int(num_sampled), 100, SEED)
        loss, _, grad = np_sampled(weights, biases, labels, inputs, drawn, True)
        assert grid.mean_loss[i] == pytest.approx(np.mean(loss), rel=1e-5)
        assert grid.grad_norm[i] == pytest.approx(np.linalg.norm(grad), rel=1e-4)


def test_sweep_agrees_with_the_setting_and_narrows_as_s_grows(sweep):
    setting, grid = sweep
    point = explore.at_setting(setting, SEED)
    at = int(np.flatnonzero(grid.num_sampled == setting.num_sampled)[0])
    assert grid.mean_loss[at] == pytest.approx(point.sampled_mean, rel=1e-6)
    # The sweep's draws are the histogram's.
    assert grid.draws == point.num_draws == explore.NUM_DRAWS
    assert grid.spread[at] == pytest.approx(point.spread, rel=1e-6)
    assert grid.bias[at] == pytest.approx(point.bias, rel=1e-6)
    assert grid.abs_bias[-1] < grid.abs_bias[0] / 5
    assert grid.spread[-1] < grid.spread[0]


# --------------------------------------------------------------------------
# Every S at once: the page's grid.


def same_point(looked_up, computed):
    """Two ``Point``s hold the same numbers (a tight tolerance: one graph
    computes both, so they agree to the last bit here)."""
    assert looked_up.setting == computed.setting
    for field in dataclasses.fields(computed):
        a, b = getattr(looked_up, field.name), getattr(computed, field.name)
        if isinstance(b, np.ndarray):
            assert a.shape == b.shape and a.dtype == b.dtype, field.name
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=field.name)
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-7), field.name
        else:
            assert a == b, field.name


@pytest.mark.parametrize(
    "setting",
    [
        explore.SweepSetting(num_classes=100, zipf_labels=False),
        explore.SweepSetting(num_classes=1_000, remove_accidental_hits=False),
    ],
    ids=["C=100,uniform", "C=1000,hits-kept"],
)
def test_over_grid_equals_at_setting_at_every_s(setting):
    grid = explore.over_grid(setting, SEED)
    points = explore.sweep_points(setting.num_classes)
    np.testing.assert_array_equal(grid.values, points)
    assert grid.setting == setting
    for i, num_sampled in enumerate(grid.values.tolist()):
        assert grid.index(num_sampled) == i
        at = explore.Setting(**dataclasses.asdict(setting), num_sampled=num_sampled)
        same_point(grid.at(num_sampled), explore.at_setting(at, SEED))
    with pytest.raises(ValueError, match="`num_sampled` must be one of"):
        grid.at(3)


def test_over_grid_at_the_page_defaults_equals_at_setting():
    grid = explore.over_grid(explore.SweepSetting(), 0)
    for num_sampled in (1, 64, 4_096):
        at = explore.Setting(num_sampled=num_sampled)
        same_point(grid.at(num_sampled), explore.at_setting(at, 0))


def test_over_grid_traces_once_for_every_other_setting_and_seed():
    # Sizes, seeds and the hits flag reach one graph as tensors.
    explore.over_grid(explore.SweepSetting(num_classes=100), SEED)
    traced = explore._grid_graph.experimental_get_tracing_count()
    assert traced == 1
    for setting, seed in (
        (explore.SweepSetting(num_classes=1_000, zipf_labels=False), SEED),
        (explore.SweepSetting(num_classes=100, remove_accidental_hits=False), SEED),
        (explore.SweepSetting(num_classes=100), SEED + 1),
    ):
        explore.over_grid(setting, seed)
        assert explore._grid_graph.experimental_get_tracing_count() == traced


def test_the_sweep_of_the_grid_is_its_points(sweep):
    setting, swept = sweep
    grid = explore.over_grid(setting.sweep, SEED)
    for i, num_sampled in enumerate(grid.values.tolist()):
        point = grid.at(num_sampled)
        assert swept.bias[i] == point.bias and swept.spread[i] == point.spread
        assert swept.mean_loss[i] == point.sampled_mean
    assert swept.full_loss == grid.full_mean
    np.testing.assert_array_equal(grid.draws_below, [
        grid.at(s).draws_below for s in grid.values.tolist()])  # fmt: skip


def test_lessons_and_intro_read_the_grid_as_they_compute():
    grid = explore.over_grid(explore.SweepSetting(num_classes=1_000), SEED)
    for name, num_sampled in (("biased_low", 8), ("closer", 256)):
        at = values(num_sampled=num_sampled, num_classes=1_000)
        assert explore.check_lesson(name, at, SEED, grid) == explore.check_lesson(
            name, at, SEED
        )
    setting = explore.Setting(num_sampled=16, num_classes=1_000)
    assert explore.intro_facts(setting, SEED, grid) == explore.intro_facts(
        setting, SEED
    )
    # A grid of another setting is not read.
    other = explore.over_grid(explore.SweepSetting(num_classes=100), SEED)
    assert explore.intro_facts(setting, SEED, other) == explore.intro_facts(
        setting, SEED
    )


# --------------------------------------------------------------------------
# Timing.


def test_timing_measures_both_passes(monkeypatch):
    timed = []

    def fake_median_time(fn, repeats, warmup):
        loss, checksums = fn()  # the pass runs
        assert np.isfinite(loss) and len(checksums) == 3
        timed.append(repeats)
        return 0.002 * len(timed)

    monkeypatch.setattr(explore.analysis, "median_time", fake_median_time)
    nonce = 1_000_001  # no other test's cache entry
    cost = explore.timings(SMALL, SEED, nonce)
    assert timed == [explore.TIMING_REPEATS] * 2
    assert cost.full_ms == pytest.approx(2.0) and cost.sampled_ms == pytest.approx(4.0)
    assert cost.speedup == pytest.approx(0.5)
    assert cost.repeats == explore.TIMING_REPEATS
    # Another S, the other hits, the other labels: only the sampled pass.
    for other in (
        explore.Setting(num_sampled=64, num_classes=1_000),
        explore.Setting(num_sampled=64, num_classes=1_000, zipf_labels=False,
                        remove_accidental_hits=False),
    ):  # fmt: skip
        again = explore.timings(other, SEED, nonce)
        assert again.full_ms == cost.full_ms
    assert len(timed) == 4
    # "Measure again" (a new nonce) and another vocabulary time both.
    explore.timings(SMALL, SEED, nonce + 1)
    explore.timings(explore.Setting(num_sampled=16, num_classes=100), SEED, nonce)
    assert len(timed) == 8


def test_timings_over_grid_time_the_full_pass_once(monkeypatch):
    timed = []

    def fake_median_time(fn, repeats, warmup):
        fn()
        timed.append(repeats)
        return 0.001 * len(timed)

    monkeypatch.setattr(explore.analysis, "median_time", fake_median_time)
    setting = explore.SweepSetting(num_classes=100)
    grid = explore.timings_over_grid(setting, SEED, nonce=2_000_001)
    points = explore.sweep_points(100)
    assert len(timed) == 1 + len(points)
    np.testing.assert_array_equal(grid.values, points)
    assert grid.full_ms == pytest.approx(1.0)
    for i, num_sampled in enumerate(points.tolist()):
        cost = grid.at(num_sampled)
        assert cost.full_ms == grid.full_ms
        assert cost.sampled_ms == pytest.approx(1.0 * (i + 2))
        assert cost.speedup == pytest.approx(cost.full_ms / cost.sampled_ms)
        assert cost.repeats == explore.TIMING_REPEATS


def test_timing_of_the_real_passes_is_positive():
    cost = explore.timings(explore.Setting(num_sampled=8, num_classes=100), SEED)
    assert cost.full_ms > 0 and cost.sampled_ms > 0
    assert cost.speedup == pytest.approx(cost.full_ms / cost.sampled_ms)


@pytest.mark.parametrize("kind", ["full", "sampled"])
def test_forward_backward_function_computes_the_mean_loss(kind):
    w, b, y, x = problem(num_classes=80)
    step = explore.forward_backward_function(w, b, kind=kind)
    loss, checksums = step(y, x, num_sampled=10, seed=2)
    if kind == "full":
        expected = np.mean(np_full(w, b, y, x)[0])
    else:
        drawn = candidates(y, 10, 80, 2)
        expected = np.mean(np_sampled(w, b, y, x, drawn, True)[0])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert len(checksums) == 3 and np.all(np.isfinite(checksums))


# --------------------------------------------------------------------------
# The helpers moved from the loss module.


def test_draws_are_independent_seeded_calls():
    w, b, y, x = problem(num_classes=200, batch=5, time=2)
    draws = explore.sampled_softmax_loss_draws(w, b, y, x, 16, 4, seed=3)
    assert draws.shape == (4, 5, 2)
    for i in range(4):
        drawn = candidates(y.reshape(-1), 16, 200, draw_seed(3, i))
        expected = np_sampled(w, b, y.reshape(-1), x.reshape(10, -1), drawn, True)[0]
        np.testing.assert_allclose(np.reshape(draws[i], -1), expected, rtol=1e-5)
        np.testing.assert_allclose(
            draws[i],
            family.sampled_softmax_loss(w, b, y, x, 16, seed=draw_seed(3, i)),
            rtol=1e-5,
        )
    assert not np.allclose(draws[0], draws[1])


def test_more_samples_shrink_bias_and_spread():
    data = explore.example_problem(2000, 16, 8, seed=0)
    args = (data["weights"], data["biases"], data["labels"], data["inputs"])
    full = np.mean(np_full(*args)[0])
    draws = explore.sampled_softmax_loss_draws
    few = np.mean(draws(*args, 8, 40, seed=0), axis=1)
    many = np.mean(draws(*args, 1000, 40, seed=0), axis=1)
    assert abs(many.mean() - full) < abs(few.mean() - full)
    assert many.std() < few.std()


@pytest.mark.parametrize("num_sampled", [None, 5])
@pytest.mark.parametrize("remove_hits", [True, False])
def test_logit_gradients_match_numpy_and_per_sample_autodiff(num_sampled, remove_hits):
    w, b, y, x = problem(num_classes=12, dim=3, batch=2, time=2, dtype=np.float64)
    values = None if num_sampled is None else candidates_with_hits(y, 12, 5)
    grads = explore.logit_gradients(
        w, b, y, x, num_sampled,
        remove_accidental_hits=remove_hits, sampled_values=values,
    )  # fmt: skip
    assert grads.shape == (2, 2, 12) and grads.dtype == tf.float64
    flat_y, flat_x = y.reshape(-1), x.reshape(4, 3)
    if num_sampled is None:
        expected = np_full(w, b, flat_y, flat_x)[1]
    else:
        expected = np_sampled(w, b, flat_y, flat_x, values, remove_hits)[1]
    np.testing.assert_allclose(np.reshape(grads, (4, 12)), expected, atol=1e-12)
    for i, j in np.ndindex(2, 2):
        biases = tf.constant(b)
        with tf.GradientTape() as tape:
            tape.watch(biases)
            if num_sampled is None:
                loss = family.full_softmax_loss(
                    w, biases, y[i, j : j + 1], x[i, j : j + 1]
                )
            else:
                one = (values[0], values[1][2 * i + j : 2 * i + j + 1], values[2])
                loss = family.sampled_softmax_loss(
                    w, biases, y[i, j : j + 1], x[i, j : j + 1], 5,
                    remove_accidental_hits=remove_hits, sampled_values=one,
                )  # fmt: skip
        expected = tf.convert_to_tensor(tape.gradient(loss, biases))
        np.testing.assert_allclose(grads[i, j], expected, rtol=1e-10, atol=1e-12)
    if num_sampled is not None:  # only label and sampled rows move
        touched = set(values[0]) | set(y.ravel())
        untouched = [c for c in range(12) if c not in touched]
        np.testing.assert_array_equal(np.asarray(grads)[..., untouched], 0.0)


def test_helpers_check_their_parameters():
    w, b, y, x = problem()
    with pytest.raises(ValueError, match="`num_draws`"):
        explore.sampled_softmax_loss_draws(w, b, y, x, 5, 0)
    with pytest.raises(ValueError, match="`num_sampled`"):
        explore.sampled_softmax_loss_draws(w, b, y, x, 31, 2)
    with pytest.raises(ValueError, match="`kind`"):
        explore.forward_backward_function(w, b, kind="fast")
    with pytest.raises(ValueError, match="`dim`"):
        explore.example_problem(10, 0, 4)
    with pytest.raises(ValueError, match="`num_sampled`"):
        explore.logit_gradients(w, b, y, x, 0)


# --------------------------------------------------------------------------
# Settings, controls and train runs.


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"num_sampled": 0}, "num_sampled"),
        ({"num_sampled": 101, "num_classes": 100}, "num_sampled"),
        ({"num_sampled": 2.5}, "num_sampled"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 10**6}, "num_classes"),
        ({"zipf_labels": 1}, "zipf_labels"),
        ({"remove_accidental_hits": "yes"}, "remove_accidental_hits"),
    ],
)
def test_bad_settings_name_the_field(fields, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        explore.Setting(**fields)


def test_capped_setting_and_its_parts():
    controls = {"num_sampled": 4096, "num_classes": 100, "zipf_labels": False,
                "remove_accidental_hits": True}  # fmt: skip
    s = explore.Setting.capped(controls)
    assert s.num_sampled == 100 and s.num_classes == 100 and not s.zipf_labels
    assert s.problem == explore.Problem(100, False)
    assert s.sweep == explore.SweepSetting(100, False, True)
    assert explore.Setting.capped({**controls, "num_sampled": 8}).num_sampled == 8
    with pytest.raises(ValueError, match="`seed`"):
        explore.at_setting(s, -1)


def test_the_page_controls_fit_the_loss_and_the_grid():
    controls = content.CONTROLS.resolved()
    assert set(explore.PARAMS) == {c.name for c in content.CONTROLS if c.param}
    assert controls["num_sampled"].options == explore.SAMPLED_CHOICES
    assert max(controls["num_classes"].options) <= explore.MAX_CLASSES
    assert min(controls["num_classes"].options) >= task.COMMON_PARAMS["vocab_size"][1]
    # Every lesson's setting is a valid Setting.
    for lesson in content.LESSONS:
        defaults = dict(content.CONTROLS.defaults())
        explore.Setting.capped({**defaults, **lesson.settings})


def test_train_runs_follow_the_controls():
    runs = explore.train_runs(explore.Setting(num_sampled=256, num_classes=1_000))
    assert [r.label for r in runs] == [
        "sampled S=256 + LazyAdam (C=1,000)",
        "sampled S=256 + Adam (C=1,000)",
        "full softmax + Adam (C=1,000)",
    ]
    assert [(r.variant, r.params) for r in runs] == [
        ("sampled", {"num_sampled": 256, "optimizer": "lazy_adam", "vocab_size": 1000}),
        ("sampled", {"num_sampled": 256, "optimizer": "adam", "vocab_size": 1000}),
        ("full", {"vocab_size": 1000}),
    ]
    assert explore.TRAINING.task in task.core.TASKS
    assert set(explore.TRAINING.metrics) == set(task.TASK.metrics)


def test_train_facts_describe_the_generator():
    facts = explore.TRAIN_FACTS
    successors = task.language(0, 50)
    assert successors.shape == (50, facts.successors)
    data = task.dataset(0, 100, facts.pairs_per_epoch)
    assert len(data["x"]) == facts.pairs_per_epoch
    assert facts.pairs_per_epoch % facts.batch_size == 0


# --------------------------------------------------------------------------
# The words' numbers and the lessons' outcomes.


def test_point_counts_draws_below_and_accidental_hits(small):
    (weights, biases, labels, inputs), point = small
    full = np.mean(np_full(weights, biases, labels, inputs)[0])
    means = np_draw_means((weights, biases, labels, inputs), SMALL, SEED,
                          explore.NUM_DRAWS)  # fmt: skip
    assert point.draws_below == int(np.sum(means < full))
    assert point.num_draws == explore.NUM_DRAWS
    sample = np.asarray(candidates(labels, 16, 1_000, SEED)[0])
    assert point.hits == int(np.isin(labels, sample).sum())


def test_intro_facts_match_numpy():
    facts = explore.intro_facts(SMALL, SEED)
    arrays = explore.example(SMALL.problem, SEED).arrays
    full = np.mean(np_full(*arrays)[0])
    means = np_draw_means(arrays, SMALL, SEED, explore.NUM_DRAWS)
    assert (facts.batch, facts.dim) == (explore.BATCH, explore.DIM)
    assert facts.num_draws == explore.NUM_DRAWS
    assert facts.full_mean == pytest.approx(full, rel=1e-6)
    assert facts.draws_mean == pytest.approx(np.mean(means), rel=1e-5)
    assert facts.bias == pytest.approx(np.mean(means) - full, rel=1e-4)
    assert facts.spread == pytest.approx(np.std(means), rel=1e-3)
    assert facts.draws_below == int(np.sum(means < full))
    sample = np.asarray(candidates(arrays[2], 16, 1_000, SEED)[0])
    assert facts.hits == int(np.isin(arrays[2], sample).sum())
    uniform = explore.Setting(num_sampled=16, num_classes=1_000, zipf_labels=False)
    uniform_arrays = explore.example(uniform.problem, SEED).arrays
    uniform_means = np_draw_means(uniform_arrays, uniform, SEED, explore.NUM_DRAWS)
    uniform_bias = np.mean(uniform_means) - np.mean(np_full(*uniform_arrays)[0])
    assert facts.uniform_bias == pytest.approx(uniform_bias, rel=1e-4)
    assert facts.zipf_bias == facts.bias
    assert facts.uniform_ratio == pytest.approx(uniform_bias / facts.bias, rel=1e-4)


def np_weight_gradient(grad_logits, inputs):
    """The gradient of the batch-mean loss with respect to the ``[C, D]``
    matrix, from the per-sample logit gradients."""
    return grad_logits.T @ np.asarray(inputs, np.float64) / len(inputs)


def np_changed_rows(steps, weights, lazy, learning_rate):
    """Keras' Adam (``lazy=False``) or LazyAdam in float64 numpy, run over
    ``steps`` (callables ``weights -> (gradient [C, D], rows it covers)``);
    the rows the last step changes."""
    w = np.asarray(weights, np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, step in enumerate(steps, start=1):
        gradient, covered = step(w)
        rows = np.asarray(covered) if lazy else np.arange(len(w))
        alpha = learning_rate * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        m[rows] += (gradient[rows] - m[rows]) * 0.1
        v[rows] += (gradient[rows] ** 2 - v[rows]) * 0.001
        delta = alpha * m[rows] / (np.sqrt(v[rows]) + 1e-7)
        w[rows] -= delta
    changed = np.zeros(len(w), bool)
    changed[rows] = np.any(delta != 0, axis=1)
    return int(changed.sum())


def test_optimizer_rows_match_numpy_adam_and_lazy_adam():
    setting = explore.Setting(num_sampled=16, num_classes=1_000)
    rows = explore.optimizer_rows(setting, SEED)
    weights, biases, labels, inputs = explore.example(setting.problem, SEED).arrays

    def sampled_step(seed):
        drawn = candidates(labels, 16, 1_000, seed)
        covered = np.union1d(labels, np.asarray(drawn[0]))

        def step(w):
            grad = np_sampled(w, biases, labels, inputs, drawn, True)[1]
            return np_weight_gradient(grad, inputs), covered

        return step, covered

    def full_step(w):
        grad = np_full(w, biases, labels, inputs)[1]
        return np_weight_gradient(grad, inputs), np.arange(1_000)

    counted, step_rows = sampled_step(SEED)
    first, first_rows = sampled_step(tf.constant([SEED, 1], tf.int64))
    rate = explore.TRAINING.learning_rate
    assert rows.sparse and rows.learning_rate == rate
    assert rows.step_rows == len(step_rows) < 1_000
    assert rows.previous_rows == len(first_rows)
    assert rows.both_rows == len(np.union1d(first_rows, step_rows))
    assert rows.full_rows == 1_000
    for lazy, warm, fresh in ((False, "warm_adam", "fresh_adam"),
                              (True, "warm_lazy", "fresh_lazy")):  # fmt: skip
        expected = np_changed_rows([full_step, counted], weights, lazy, rate)
        assert getattr(rows, warm) == expected, warm
        expected = np_changed_rows([first, counted], weights, lazy, rate)
        assert getattr(rows, fresh) == expected, fresh
    # What the lesson states: Adam moves every row once all have moments,
    # and the earlier step's rows from a fresh start; LazyAdam only its own.
    assert rows.warm_adam == 1_000 and rows.warm_lazy == rows.step_rows
    assert rows.fresh_adam == rows.both_rows > rows.fresh_lazy == rows.step_rows


def values(**changes):
    return content.CONTROLS.defaults() | changes


def test_check_biased_low_states_numpy_numbers():
    claim = explore.check_lesson(
        "biased_low", values(num_sampled=8, num_classes=1_000), SEED
    )
    setting = explore.Setting(num_sampled=8, num_classes=1_000)
    arrays = explore.example(setting.problem, SEED).arrays
    full = np.mean(np_full(*arrays)[0])
    means = np_draw_means(arrays, setting, SEED, explore.NUM_DRAWS)
    bias, spread = np.mean(means) - full, np.std(means)
    assert claim.holds == bool(np.all(means < full) and -bias > spread)
    assert claim.holds
    for number in (f"{full:.4g}", f"{np.mean(means):.4g}", f"{-bias:.4g}",
                   f"{np.sum(means < full)} of {explore.NUM_DRAWS}"):  # fmt: skip
        assert number in claim.statement, (number, claim.statement)


def test_check_closer_compares_with_few_sampled_classes_in_numpy():
    claim = explore.check_lesson(
        "closer", values(num_sampled=256, num_classes=1_000), SEED
    )
    arrays = explore.example(explore.Problem(1_000, True), SEED).arrays
    full = np.mean(np_full(*arrays)[0])
    stats = {}
    for num_sampled in (256, explore.FEW_SAMPLED):
        at = explore.Setting(num_sampled=num_sampled, num_classes=1_000)
        means = np_draw_means(arrays, at, SEED, explore.NUM_DRAWS)
        stats[num_sampled] = (np.mean(means) - full, np.std(means))
    (bias, spread), (few_bias, few_spread) = stats[256], stats[explore.FEW_SAMPLED]
    assert claim.holds == (abs(bias) < abs(few_bias) and spread < few_spread)
    assert claim.holds
    for number in (bias, spread, few_bias, few_spread):
        assert f"{number:.4g}" in claim.statement, (number, claim.statement)


def test_check_optimizer_rows_states_the_counts():
    claim = explore.check_lesson(
        "optimizer_rows", values(num_sampled=16, num_classes=1_000), SEED
    )
    rows = explore.optimizer_rows(
        explore.Setting(num_sampled=16, num_classes=1_000), SEED
    )
    assert claim.holds
    for count in (rows.step_rows, rows.warm_adam, rows.fresh_adam, rows.both_rows):
        assert f"{count:,}" in claim.statement
    with pytest.raises(ValueError, match="`name`"):
        explore.check_lesson("faster", values(), SEED)


def test_lessons_name_their_settings_and_compare_with_the_first():
    first, second, _ = content.LESSONS
    assert first.settings["num_sampled"] == explore.FEW_SAMPLED
    for lesson in (first, second):
        s = lesson.settings
        assert lesson.title.startswith(f"{s['num_sampled']:,} of {s['num_classes']:,}")
    assert {lesson.check for lesson in content.LESSONS} == set(explore.LESSON_CHECKS)


# --------------------------------------------------------------------------
# The attempt this family adds (tests/test_attempts.py tests the others).


def test_keras_history_is_private_and_absent_from_real_tensors():
    from lossviz.explore.attempts import sampled as attempts

    outcome = dict((a.key, o) for a, o in attempts.run_all(0))["keras_history"]
    assert outcome.kind == "error" and outcome.error_type == "AttributeError"
    assert "_keras_history" in outcome.message
    details = dict(outcome.details)
    symbolic = details["the symbolic logits of the functional model"]
    assert symbolic.startswith("KerasTensor._keras_history = KerasHistory(")
    # The Dense kernel is [dim, classes], where tf.nn wants [classes, dim].
    assert f"kernel [{attempts.HIDDEN_DIM}, {attempts.NUM_CLASSES}]" in symbolic
    assert details["its public attributes"].endswith("none gives the layer")
    assert "no _keras_history" in details["the logits as a model runs them"]
    assert (
        "has no attribute '_keras_history'"
        in (details["calling the layer on real tensors"])
    )
    assert outcome.numbers == {
        "kernel_rows": attempts.HIDDEN_DIM,
        "fix_kernel_rows": attempts.NUM_CLASSES,
        "history_on_real_tensors": 0,
    }
    assert outcome.fix_value.shape == (attempts.NUM_SAMPLES,)
    assert np.all(np.isfinite(outcome.fix_value))
