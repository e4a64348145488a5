"""lossviz.explore.sequence against numpy: the page's batch, its four losses
and their gradients (analytic, from softmax - one-hot), the metrics, the
sweeps and the numbers the Train panel's words state."""

import collections
import math

import keras
import numpy as np
import pytest

from lossviz import registry
from lossviz.explore import sequence as explore
from lossviz.explore.sequence import (
    END_WEIGHT,
    FROM_DATA,
    PADDING,
    Setting,
    example_batch,
    single_class_weights,
)
from lossviz.sequence import MaskedSparseCategoricalCrossentropy
from lossviz.training import core
from lossviz.training import sequence as task

B, T, C = explore.NUM_SEQUENCES, explore.MAX_LEN, explore.NUM_CLASSES
START, END = explore.START_ID, explore.END_ID

SETTINGS = [
    Setting(),
    Setting(mask_ratio=0.5, pad_id=7, end_mode=FROM_DATA, end_bias=6.0),
    Setting(mask_ratio=0.45, pad_id=-1, end_weight=3.0, end_bias=0.0),
    Setting(mask_ratio=0.0, end_weight=0.0, end_bias=8.0),
    Setting(mask_ratio=0.85, pad_id=0, end_mode=FROM_DATA),
]
IDS = ["default", "pad 7 from data", "pad -1 weight 3", "no padding", "85 % padding"]


# ----------------------------------------------------------------- references


def batch_of(setting, seed=0, mask_ratio=None):
    ratio = setting.mask_ratio if mask_ratio is None else mask_ratio
    return example_batch(
        B, T, C, mask_ratio=ratio, pad_id=setting.pad_id, start_id=START,
        end_id=END, end_bias=setting.end_bias, seed=seed,
    )  # fmt: skip


def ref_end_weights(y, pad_id):
    """The end token's balanced weight, counted with a Counter."""
    counts = collections.Counter(int(v) for v in np.ravel(y) if v != pad_id)
    others = [n for label, n in counts.items() if label != END]
    weights = np.ones(C)
    if counts[END] and others:
        weights[END] = sum(others) / len(others) / counts[END]
    return weights


def ref_weights(setting, y):
    if setting.end_mode == FROM_DATA:
        return ref_end_weights(y, setting.pad_id)
    weights = np.ones(C)
    weights[END] = setting.end_weight
    return weights


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_losses(y, z, pad_id, weights):
    """Each loss and its gradient by plain loops. The gradient of a token's
    cross-entropy is softmax - one-hot; each loss scales it by the token's
    weight over the loss's denominator (the sequence's length times the
    number of sequences, the batch's tokens, or every step)."""
    p = softmax(z)
    real = y != pad_id
    lengths = real.sum(axis=1)
    tokens = real.sum()
    keys = ["ours", "token", "trap"] + (["unmasked"] if pad_id >= 0 else [])
    values = dict.fromkeys(keys, 0.0)
    grads = {k: np.zeros(z.shape) for k in keys}
    rows = {"masked": np.zeros(B), "unmasked": np.zeros(B)}
    for b in range(B):
        for t in range(T):
            label = int(y[b, t])
            if label < 0:  # a sentinel pad: nothing to predict there
                continue
            w = weights[label]
            ce = -math.log(p[b, t, label])
            push = p[b, t].copy()
            push[label] -= 1.0
            shares = {"unmasked": 1.0 / (B * T)}
            rows["unmasked"][b] += w * ce / T
            if real[b, t]:
                shares.update(
                    ours=1.0 / (B * lengths[b]), token=1.0 / tokens, trap=1.0 / (B * T)
                )
                rows["masked"][b] += w * ce / lengths[b]
            for key, share in shares.items():
                if key in values:
                    values[key] += share * w * ce
                    grads[key][b, t] += share * w * push
    if pad_id < 0:
        del rows["unmasked"]
    return values, grads, rows


def ref_metrics(y, z, pad_id):
    p = softmax(z)
    real = y != pad_id
    ce = np.zeros(y.shape)
    one_hot = np.zeros(z.shape)
    for b, t in zip(*np.nonzero(y >= 0), strict=True):
        ce[b, t] = -math.log(p[b, t, y[b, t]])
        one_hot[b, t, y[b, t]] = 1.0
    perplexity = math.exp(ce[real].sum() / real.sum()) if real.any() else 1.0
    right = np.argmax(z, axis=-1) == y
    accuracy = right[real].mean() if real.any() else 0.0
    mae = np.abs(one_hot - p).mean(axis=-1)
    true, guess = one_hot.argmax(axis=-1), p.argmax(axis=-1)
    forgiven = (true == guess) & np.isin(true, [START, END])
    return {
        "perplexity": perplexity,
        "accuracy": accuracy,
        "special_mae": np.where(forgiven, 0.0, mae).mean(),
        "keras_mae": mae.mean(),
    }


def norm(a, axis=None):
    return np.sqrt(np.sum(np.square(np.asarray(a, np.float64)), axis=axis))


# ---------------------------------------------------------------- at a setting


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_every_loss_and_gradient_matches_numpy(setting):
    point = explore.at_setting(setting, seed=3)
    y, z = batch_of(setting, seed=3)
    np.testing.assert_array_equal(point.y_true, y)
    weights = ref_weights(setting, y)
    np.testing.assert_allclose(point.class_weights, weights, rtol=1e-12)
    assert point.end_weight == pytest.approx(weights[END])
    values, grads, rows = ref_losses(y, z, setting.pad_id, weights)
    assert point.losses == tuple(values)
    assert set(point.values) == set(values)
    for key, value in values.items():
        assert point.values[key] == pytest.approx(value, rel=1e-5), key
        assert point.vs_ours[key] == pytest.approx(
            value - values["ours"], abs=1e-5
        ), key
        np.testing.assert_allclose(point.grads[key], grads[key], atol=1e-7)
        np.testing.assert_allclose(
            point.step_grad_norms[key], norm(grads[key], axis=-1), atol=1e-7
        )
    assert set(point.per_sequence) == set(rows)
    for key, row in rows.items():
        np.testing.assert_allclose(point.per_sequence[key], row, rtol=1e-5)
    np.testing.assert_array_equal(point.lengths, (y != setting.pad_id).sum(axis=1))
    assert not point.all_padding


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_metrics_match_numpy(setting):
    point = explore.at_setting(setting, seed=1)
    y, z = batch_of(setting, seed=1)
    expected = ref_metrics(y, z, setting.pad_id)
    for name, value in expected.items():
        assert getattr(point, name) == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert point.special_mae_vs_keras == pytest.approx(
        expected["special_mae"] - expected["keras_mae"], abs=1e-6
    )


def test_keras_itself_gives_the_three_batch_values():
    """What the metric helps say: ours is what the Keras class reports, the
    token mean is Keras' ignore_class reduction (class weights passed as a
    sample weight), the trap is the mask passed as sample_weight."""
    setting = Setting(mask_ratio=0.4, end_weight=2.5)
    point = explore.at_setting(setting)
    y, z = batch_of(setting)
    w = ref_weights(setting, y)
    mask = (y != 0).astype(np.float32)
    ours = MaskedSparseCategoricalCrossentropy(pad_id=0, class_weights=w)(y, z)
    token = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0
    )(y, z, sample_weight=w[y].astype(np.float32))
    trap = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, z, sample_weight=mask * w[y]
    )
    assert point.values["ours"] == pytest.approx(float(ours), rel=1e-5)
    assert point.values["token"] == pytest.approx(float(token), rel=1e-5)
    assert point.values["trap"] == pytest.approx(float(trap), rel=1e-5)


def test_padded_steps_get_exactly_zero_gradient():
    point = explore.at_setting(Setting(mask_ratio=0.5, pad_id=7))
    padded = point.y_true == 7
    assert padded.any()
    for key in ("ours", "token", "trap"):
        assert np.all(point.step_grad_norms[key][padded] == 0.0), key
        assert np.all(point.step_grad_norms[key][~padded] > 0.0), key
    assert np.all(point.step_grad_norms["unmasked"][padded] > 0.0)


def test_all_padding_is_zero_not_nan():
    """The page's note: masked losses 0 with a zero gradient, perplexity
    exp(0) = 1, accuracy 0."""
    point = explore.at_setting(Setting(mask_ratio=1.0))
    assert point.all_padding
    np.testing.assert_array_equal(point.lengths, 0)
    for key in ("ours", "token", "trap"):
        assert point.values[key] == 0.0
        np.testing.assert_array_equal(point.grads[key], 0.0)
    np.testing.assert_array_equal(point.per_sequence["masked"], 0.0)
    assert point.perplexity == 1.0 and point.accuracy == 0.0
    y, z = batch_of(Setting(mask_ratio=1.0))
    expected, _, _ = ref_losses(y, z, 0, np.ones(C))
    assert point.values["unmasked"] == pytest.approx(expected["unmasked"], rel=1e-5)


def test_a_pad_id_outside_the_classes_has_no_unmasked_loss():
    point = explore.at_setting(Setting(pad_id=-1))
    assert point.losses == ("ours", "token", "trap")
    assert "unmasked" not in point.values and "unmasked" not in point.per_sequence
    assert Setting(pad_id=7).losses == explore.LOSSES


def test_a_slider_move_never_retraces():
    explore.at_setting(Setting())
    explore.sweep(Setting(), PADDING)
    graphs = [explore._loss_graph(True), explore._metrics_graph()]
    before = [g.experimental_get_tracing_count() for g in graphs]
    for setting in SETTINGS:
        if setting.pad_id >= 0:
            explore.at_setting(setting, seed=5)
            explore.sweep(setting.for_sweep(END_WEIGHT), END_WEIGHT, seed=5)
    assert [g.experimental_get_tracing_count() for g in graphs] == before


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"mask_ratio": 1.5}, "mask_ratio"),
        ({"pad_id": 2}, "pad_id"),
        ({"pad_id": 1}, "pad_id"),
        ({"pad_id": 8}, "pad_id"),
        ({"pad_id": 0.5}, "pad_id"),
        ({"end_mode": "by eye"}, "end_mode"),
        ({"end_weight": -1.0}, "end_weight"),
        ({"end_weight": math.inf}, "end_weight"),
        ({"end_bias": 51.0}, "end_bias"),
    ],
)
def test_a_bad_setting_names_its_field(fields, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        Setting(**fields)


def test_params_are_the_registry_entries():
    spec = registry.get("masked_sparse_categorical_crossentropy").param("pad_id")
    assert explore.PARAMS == {"pad_id": spec}


# ---------------------------------------------------------------- sweeps


@pytest.mark.parametrize("setting", SETTINGS[:3], ids=IDS[:3])
def test_padding_sweep_matches_numpy_at_every_share(setting):
    curves = explore.sweep(setting, PADDING, seed=2)
    assert curves.over == PADDING
    np.testing.assert_allclose(curves.grid, np.arange(21) / 20, atol=1e-12)
    assert curves.losses == setting.losses
    for i, ratio in enumerate(curves.grid):
        y, z = batch_of(setting, seed=2, mask_ratio=ratio)
        values, grads, _ = ref_losses(y, z, setting.pad_id, ref_weights(setting, y))
        for key in setting.losses:
            assert curves.values[key][i] == pytest.approx(
                values[key], rel=1e-5, abs=1e-7
            ), (ratio, key)
            assert curves.grad_norms[key][i] == pytest.approx(
                norm(grads[key]), rel=1e-5, abs=1e-9
            ), (ratio, key)


@pytest.mark.parametrize(
    "setting, end",
    [
        (Setting(mask_ratio=0.35), 5.0),
        (Setting(mask_ratio=0.35, end_weight=7.3), 8.0),
        (Setting(mask_ratio=0.2, pad_id=-1, end_mode=FROM_DATA), 5.0),
    ],
)
def test_weight_sweep_matches_numpy_on_the_current_batch(setting, end):
    curves = explore.sweep(setting, END_WEIGHT, seed=4)
    np.testing.assert_allclose(curves.grid, np.linspace(0.0, end, 26))
    y, z = batch_of(setting, seed=4)
    for i, weight in enumerate(curves.grid):
        weights = np.ones(C)
        weights[END] = weight
        values, grads, _ = ref_losses(y, z, setting.pad_id, weights)
        for key in setting.losses:
            assert curves.values[key][i] == pytest.approx(
                values[key], rel=1e-5
            ), (weight, key)
            assert curves.grad_norms[key][i] == pytest.approx(
                norm(grads[key]), rel=1e-5
            ), (weight, key)


def test_the_sweep_of_a_setting_is_the_sweep_of_its_cache_key():
    """``for_sweep`` fixes only fields the sweep does not read: the cached
    curves of the key are those of the setting itself."""
    settings = [
        Setting(mask_ratio=0.7, end_weight=2.0),
        Setting(mask_ratio=0.1, pad_id=7, end_mode=FROM_DATA, end_weight=4.0),
        Setting(mask_ratio=0.5, end_weight=6.5),
    ]
    for setting in settings:
        for over in explore.SWEEPS:
            key = setting.for_sweep(over)
            a, b = explore.sweep(setting, over), explore.sweep(key, over)
            np.testing.assert_array_equal(a.grid, b.grid)
            for loss in setting.losses:
                np.testing.assert_array_equal(a.values[loss], b.values[loss])
                np.testing.assert_array_equal(a.grad_norms[loss], b.grad_norms[loss])
    # One key for every padding share, and for every hand weight up to 5.
    assert Setting(mask_ratio=0.2).for_sweep(PADDING) == Setting().for_sweep(PADDING)
    assert Setting(end_weight=4.0).for_sweep(END_WEIGHT) == Setting(
        end_weight=0.5
    ).for_sweep(END_WEIGHT)
    with pytest.raises(ValueError, match="`over`"):
        Setting().for_sweep("seed")


# ---------------------------------------------------------------- example data


@pytest.mark.parametrize("pad_id", [0, 7, -1])
def test_example_batch_structure(pad_id):
    y, z = example_batch(mask_ratio=0.3, pad_id=pad_id, start_id=1, end_id=2)
    assert y.shape == (6, 10) and z.shape == (6, 10, 8)
    assert y.dtype == np.int32 and z.dtype == np.float32
    assert np.sum(y == pad_id) == 18
    for row in y:
        length = int(np.sum(row != pad_id))
        np.testing.assert_array_equal(row[length:], pad_id)
        if length:
            assert row[length - 1] == 2
        if length >= 2:
            assert row[0] == 1
    assert len({tuple(row) for row in (y != pad_id)}) > 1  # lengths differ


def test_example_batch_is_seeded_and_nested():
    a = example_batch(mask_ratio=0.2, seed=5)
    b = example_batch(mask_ratio=0.2, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    previous = np.zeros((6, 10), bool)
    for ratio in np.linspace(0, 1, 11):
        y, _ = example_batch(mask_ratio=ratio, seed=5)
        padded = y == 0
        assert np.all(padded[previous])
        previous = padded
    assert np.all(previous)


def test_example_batch_model_leans_toward_end_token():
    y, z = example_batch(mask_ratio=0.0, seed=1)
    predicted = np.argmax(z, axis=-1)
    assert np.mean(predicted == 2) > 0.5


def test_example_batch_invalid():
    with pytest.raises(ValueError, match="mask_ratio"):
        example_batch(mask_ratio=1.5)
    with pytest.raises(ValueError, match="pad_id"):
        example_batch(pad_id=2)
    with pytest.raises(ValueError, match="num_classes"):
        example_batch(num_classes=3)


def test_single_class_weights():
    np.testing.assert_array_equal(single_class_weights(4, 2, 3.0), [1, 1, 3, 1])
    with pytest.raises(ValueError, match="weight"):
        single_class_weights(4, 2, -1.0)
    with pytest.raises(ValueError, match="class_id"):
        single_class_weights(4, 4, 1.0)


# ---------------------------------------------------------------- training


def test_train_runs_are_the_three_variants():
    runs = explore.train_runs(Setting())
    assert [run.label for run in runs] == [
        "unmasked",
        "masked",
        "masked + end weight",
    ]
    assert tuple(run.variant for run in runs) == task.VARIANTS
    assert explore.TRAINING.task == "sequence"
    assert set(explore.TRAINING.metrics) <= set(core.TASKS["sequence"].metrics)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_data_states_the_runs_data(seed):
    """The Train intro's numbers, counted by hand on the run's own targets:
    most steps are padding, the end token is the most frequent real token,
    so its balanced weight is below 1."""
    data = explore.train_data(seed)
    _, targets = task.copy_dataset(
        core.rng(seed, 1), 512, max_len=6, padded_len=20, num_tokens=10
    )
    assert (data.max_len, data.padded_len, data.num_tokens) == (6, 20, 10)
    assert data.padding_share == pytest.approx(np.mean(targets == 0))
    counts = collections.Counter(int(v) for v in targets.ravel() if v != 0)
    others = [n for label, n in counts.items() if label != task.END_ID]
    assert data.end_weight == pytest.approx(
        sum(others) / len(others) / counts[task.END_ID]
    )
    assert data.end_most_frequent == (max(counts, key=counts.get) == task.END_ID)
    assert data.end_most_frequent and data.end_weight < 1 and data.padding_share > 0.7
