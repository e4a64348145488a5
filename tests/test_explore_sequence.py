"""lossviz.explore.sequence against numpy: the page's batch (padded with a pad
id of its own or with the end token), its losses with the mask on and off and
their gradients (analytic, from softmax - one-hot), what the loss counts, the
class weights by hand and from the data, the metrics, the sweeps, the intro's
numbers, the Train panel's runs and the lessons' checks."""

import collections
import dataclasses
import math

import keras
import numpy as np
import pytest

from lossviz import registry
from lossviz.explore import sequence as explore
from lossviz.explore.attempts import sequence as attempts
from lossviz.explore.sequence import (
    ALL_FROM_DATA,
    END_FROM_DATA,
    END_WEIGHT,
    MASKED,
    PADDING,
    UNMASKED,
    Setting,
    example_batch,
)
from lossviz.sequence import (
    MaskedSparseCategoricalCrossentropy,
    end_token_class_weights,
)
from lossviz.training import core
from lossviz.training import sequence as task

B, T, C = explore.NUM_SEQUENCES, explore.MAX_LEN, explore.NUM_CLASSES
START, END = explore.START_ID, explore.END_ID
HAND = (1.0, 0.5, 3.0, 1.0, 2.0, 1.0, 1.0, 0.25)

SETTINGS = [
    Setting(),
    Setting(mask_ratio=0.5, pad_id=7, weight_mode=END_FROM_DATA, end_bias=6.0),
    Setting(mask_ratio=0.45, pad_id=-1, hand_weights=HAND, end_bias=0.0),
    Setting(mask_ratio=0.0, hand_weights=HAND, end_bias=8.0),
    Setting(mask_ratio=0.85, pad_id=0, weight_mode=END_FROM_DATA),
    Setting(mask_ratio=0.4, mask=UNMASKED, weight_mode=ALL_FROM_DATA),
    Setting(mask_ratio=0.5, pad_id=END, hand_weights=HAND),
    Setting(mask_ratio=0.5, pad_id=END, mask=UNMASKED, weight_mode=END_FROM_DATA),
    Setting(mask_ratio=0.3, pad_id=7, mask=UNMASKED, hand_weights=HAND),
    Setting(mask_ratio=0.3, pad_id=-1, mask=UNMASKED, weight_mode=ALL_FROM_DATA),
]
IDS = [
    "default",
    "pad 7 end from data",
    "pad -1 by hand",
    "no padding",
    "85 % padding",
    "unmasked every class from data",
    "pad = end",
    "pad = end unmasked",
    "pad 7 unmasked",
    "pad -1 asks unmasked",
]


# ----------------------------------------------------------------- references


def batch_of(setting, seed=0, mask_ratio=None):
    ratio = setting.mask_ratio if mask_ratio is None else mask_ratio
    return example_batch(
        B, T, C, mask_ratio=ratio, pad_id=setting.pad_id, start_id=START,
        end_id=END, end_bias=setting.end_bias, seed=seed, return_lengths=True,
    )  # fmt: skip


def is_masked(setting):
    return setting.mask == MASKED or setting.pad_id < 0


def ref_counted(setting, y):
    """The steps the loss counts, by a loop."""
    counted = np.zeros(y.shape, bool)
    for (b, t), label in np.ndenumerate(y):
        counted[b, t] = label != setting.pad_id if is_masked(setting) else True
    return counted


def ref_weights(setting, y):
    """The weights in use, counted with a Counter over the counted labels."""
    if setting.weight_mode == explore.BY_HAND:
        return np.array(setting.hand_weights, float)
    counted = ref_counted(setting, y).ravel()
    counts = collections.Counter(
        int(v) for v, c in zip(y.ravel(), counted, strict=True) if c
    )
    weights = np.ones(C)
    if setting.weight_mode == END_FROM_DATA:
        others = [n for label, n in counts.items() if label != END]
        if counts[END] and others:
            weights[END] = sum(others) / len(others) / counts[END]
        return weights
    total = sum(counts.values())
    for label, n in counts.items():
        weights[label] = total / (len(counts) * n)
    return weights


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_losses(y, z, setting, weights):
    """Each loss and its gradient by plain loops. The gradient of a token's
    cross-entropy is softmax - one-hot; each loss scales it by the token's
    weight over the loss's denominator (the sequence's count of counted
    steps times the number of sequences, the batch's counted steps, or every
    step). "masked" rows count the non-pad steps, "unmasked" rows every step."""
    p = softmax(z)
    masked = is_masked(setting)
    counts = {
        "masked": (y != setting.pad_id).sum(axis=1),
        "unmasked": np.full(B, T),
    }
    in_use, other = ("masked", "unmasked") if masked else ("unmasked", "masked")
    keys = ["ours", "token", "trap"]
    if setting.pad_id >= 0:
        keys.append(other)
    counted = (y != setting.pad_id) if masked else np.ones(y.shape, bool)
    tokens = counted.sum()
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
            counts_in = {"unmasked": True, "masked": label != setting.pad_id}
            shares = {}
            for kind, counts_here in counts_in.items():
                if counts_here:
                    rows[kind][b] += w * ce / counts[kind][b]
                    share = 1.0 / (B * counts[kind][b])
                    shares["ours" if kind == in_use else kind] = share
            if counted[b, t]:
                shares.update(token=1.0 / tokens, trap=1.0 / (B * T))
            for key, share in shares.items():
                if key in values:
                    values[key] += share * w * ce
                    grads[key][b, t] += share * w * push
    if setting.pad_id < 0:
        del rows["unmasked"]
    return values, grads, rows


def ref_metrics(y, z, setting):
    p = softmax(z)
    counted = ref_counted(setting, y) & (y >= 0)
    ce = np.zeros(y.shape)
    one_hot = np.zeros(z.shape)
    for b, t in zip(*np.nonzero(y >= 0), strict=True):
        ce[b, t] = -math.log(p[b, t, y[b, t]])
        one_hot[b, t, y[b, t]] = 1.0
    perplexity = math.exp(ce[counted].sum() / counted.sum()) if counted.any() else 1.0
    right = np.argmax(z, axis=-1) == y
    accuracy = right[counted].mean() if counted.any() else 0.0
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
    y, z, lengths = batch_of(setting, seed=3)
    np.testing.assert_array_equal(point.y_true, y)
    np.testing.assert_array_equal(point.lengths, lengths)
    weights = ref_weights(setting, y)
    np.testing.assert_allclose(point.class_weights, weights, rtol=1e-12)
    assert point.end_weight == pytest.approx(weights[END])
    values, grads, rows = ref_losses(y, z, setting, weights)
    assert point.losses == tuple(values)
    assert set(point.values) == set(values)
    for key, value in values.items():
        assert point.values[key] == pytest.approx(value, rel=1e-5), key
        assert point.vs_ours[key] == pytest.approx(value - values["ours"], abs=1e-5), (
            key
        )
        np.testing.assert_allclose(point.grads[key], grads[key], atol=1e-7)
        np.testing.assert_allclose(
            point.step_grad_norms[key], norm(grads[key], axis=-1), atol=1e-7
        )
    assert set(point.per_sequence) == set(rows)
    for key, row in rows.items():
        np.testing.assert_allclose(point.per_sequence[key], row, rtol=1e-5)
    assert point.masked == is_masked(setting)
    assert not point.all_padding


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_what_the_loss_counts_matches_numpy(setting):
    """Padding's share of the squared gradient, the real end tokens counted,
    the end token's share of the counted steps and the class counts."""
    point = explore.at_setting(setting, seed=2)
    y, z, lengths = batch_of(setting, seed=2)
    counted = ref_counted(setting, y)
    np.testing.assert_array_equal(point.counted, counted)
    _, grads, _ = ref_losses(y, z, setting, ref_weights(setting, y))
    padding = np.arange(T)[None, :] >= lengths[:, None]
    for key, grad in grads.items():
        squares = np.square(norm(grad, axis=-1))
        expected = squares[padding].sum() / squares.sum()
        assert point.padding_grad_share[key] == pytest.approx(expected, abs=1e-6)
    ends = [(b, lengths[b] - 1) for b in range(B) if lengths[b] > 0]
    assert point.end_tokens == len(ends)
    assert point.real_ends_counted == sum(counted[b, t] for b, t in ends)
    assert point.end_share_counted == pytest.approx(
        np.sum((y == END) & counted) / counted.sum()
    )
    counter = collections.Counter(int(v) for v in y[counted])
    assert point.class_counts.tolist() == [counter[c] for c in range(C)]
    if is_masked(setting):
        assert point.padding_grad_share["ours"] == 0.0
    else:
        assert point.padding_grad_share["ours"] > 0.0


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_metrics_match_numpy(setting):
    point = explore.at_setting(setting, seed=1)
    y, z, _ = batch_of(setting, seed=1)
    expected = ref_metrics(y, z, setting)
    for name, value in expected.items():
        assert getattr(point, name) == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert point.special_mae_vs_keras == pytest.approx(
        expected["special_mae"] - expected["keras_mae"], abs=1e-6
    )


def test_keras_itself_gives_the_three_batch_values():
    """What the metric helps say: ours is what the Keras class reports, the
    token mean is Keras' ignore_class reduction (class weights passed as a
    sample weight), the trap is the mask passed as sample_weight; with the
    mask off, all three are plain SparseCategoricalCrossentropy."""
    setting = Setting(mask_ratio=0.4, hand_weights=HAND)
    point = explore.at_setting(setting)
    y, z, _ = batch_of(setting)
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
    unmasked = explore.at_setting(dataclasses.replace(setting, mask=UNMASKED))
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, z, sample_weight=w[y].astype(np.float32)
    )
    for key in ("ours", "token", "trap"):
        assert unmasked.values[key] == pytest.approx(float(plain), rel=1e-5), key
    assert unmasked.values["masked"] == pytest.approx(point.values["ours"], rel=1e-6)


def test_padded_steps_get_exactly_zero_gradient():
    point = explore.at_setting(Setting(mask_ratio=0.5, pad_id=7))
    padded = point.y_true == 7
    assert padded.any()
    for key in ("ours", "token", "trap"):
        assert np.all(point.step_grad_norms[key][padded] == 0.0), key
        assert np.all(point.step_grad_norms[key][~padded] > 0.0), key
    assert np.all(point.step_grad_norms["unmasked"][padded] > 0.0)
    unmasked = explore.at_setting(Setting(mask_ratio=0.5, pad_id=7, mask=UNMASKED))
    for key in ("ours", "token", "trap"):
        assert np.all(unmasked.step_grad_norms[key][padded] > 0.0), key


def test_padding_with_the_end_token():
    """pad id = end id: the rows are those of a pad of their own, padded with
    end tokens; the mask then removes every end token, the real ones too,
    and no end token is left to weight; without it, end tokens fill the
    counted steps."""
    own = explore.at_setting(Setting(mask_ratio=0.5))
    point = explore.at_setting(Setting(mask_ratio=0.5, pad_id=END))
    np.testing.assert_array_equal(point.lengths, own.lengths)
    np.testing.assert_array_equal(point.real, own.real)
    for special in (START, END):  # the content ids differ: 0 is content here
        np.testing.assert_array_equal(
            point.y_true[point.real] == special, own.y_true[own.real] == special
        )
    assert np.all(point.y_true[~point.real] == END)
    assert point.pad_is_end and point.end_tokens == B
    assert point.real_ends_counted == 0 and point.end_share_counted == 0.0
    assert np.all(point.step_grad_norms["ours"][point.y_true == END] == 0.0)
    data = explore.at_setting(
        Setting(mask_ratio=0.5, pad_id=END, weight_mode=END_FROM_DATA)
    )
    assert data.end_weight == 1.0  # no end token counted
    unmasked = explore.at_setting(
        Setting(mask_ratio=0.5, pad_id=END, mask=UNMASKED, weight_mode=END_FROM_DATA)
    )
    assert unmasked.real_ends_counted == B
    assert unmasked.end_share_counted == pytest.approx(np.mean(point.y_true == END))
    assert unmasked.end_share_counted > 0.5 and unmasked.end_weight < 0.2


def test_all_padding_is_zero_not_nan():
    """The page's note: masked losses 0 with a zero gradient, perplexity
    exp(0) = 1, accuracy 0."""
    for pad_id in (0, END):
        point = explore.at_setting(Setting(mask_ratio=1.0, pad_id=pad_id))
        assert point.all_padding
        np.testing.assert_array_equal(point.lengths, 0)
        for key in ("ours", "token", "trap"):
            assert point.values[key] == 0.0
            np.testing.assert_array_equal(point.grads[key], 0.0)
        np.testing.assert_array_equal(point.per_sequence["masked"], 0.0)
        assert point.perplexity == 1.0 and point.accuracy == 0.0
        y, z, _ = batch_of(Setting(mask_ratio=1.0, pad_id=pad_id))
        expected, _, _ = ref_losses(y, z, Setting(pad_id=pad_id), np.ones(C))
        assert point.values["unmasked"] == pytest.approx(expected["unmasked"], rel=1e-5)


def test_a_pad_id_outside_the_classes_has_no_unmasked_loss():
    point = explore.at_setting(Setting(pad_id=-1))
    assert point.losses == ("ours", "token", "trap")
    assert "unmasked" not in point.values and "unmasked" not in point.per_sequence
    assert Setting(pad_id=7).losses == explore.LOSSES[:4]
    assert Setting(pad_id=7, mask=UNMASKED).losses == (
        "ours",
        "token",
        "trap",
        "masked",
    )
    forced = Setting(pad_id=-1, mask=UNMASKED)
    assert forced.masked and forced.loss_pad_id == -1
    assert forced.losses == ("ours", "token", "trap")


def test_a_slider_move_never_retraces():
    for masked in (MASKED, UNMASKED):
        explore.at_setting(Setting(mask=masked))
        explore.sweep(Setting(mask=masked), PADDING)
        explore.over_grid(Setting(mask=masked))
    graphs = [
        explore._loss_graph(True, True),
        explore._loss_graph(False, True),
        explore._metrics_graph(True),
        explore._metrics_graph(False),
    ]
    before = [g.experimental_get_tracing_count() for g in graphs]
    for setting in SETTINGS:
        if setting.pad_id >= 0:
            explore.at_setting(setting, seed=5)
            explore.sweep(setting.for_sweep(END_WEIGHT), END_WEIGHT, seed=5)
            explore.over_grid(setting.for_sweep(PADDING), seed=5)
            explore.weight_sweeps(setting.for_sweep(PADDING), seed=5)
    assert [g.experimental_get_tracing_count() for g in graphs] == before


# ---------------------------------------------------------------- over the grid


def assert_same_point(a, b, context):
    """Every field of two Points equal (float32 numbers within 1e-6)."""
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), (context, field.name)
            for key in x:
                np.testing.assert_allclose(
                    x[key], y[key], rtol=1e-6, atol=1e-9, err_msg=f"{context} {key}"
                )
        elif isinstance(x, np.ndarray | float):
            np.testing.assert_allclose(
                x, y, rtol=1e-6, atol=1e-9, err_msg=f"{context} {field.name}"
            )
        else:
            assert x == y, (context, field.name)


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_the_grid_is_at_setting_at_every_padding_share(setting):
    grid = explore.over_grid(setting.for_sweep(PADDING), seed=3)
    np.testing.assert_allclose(grid.values, np.arange(21) / 20, atol=1e-12)
    assert grid.losses == setting.losses
    for value in grid.values:
        at = dataclasses.replace(setting, mask_ratio=float(value))
        assert_same_point(
            grid.at(value), explore.at_setting(at, seed=3), (setting, value)
        )


@pytest.mark.parametrize(
    "setting", SETTINGS[:3] + SETTINGS[5:7], ids=IDS[:3] + IDS[5:7]
)
def test_the_grids_step_shares_match_numpy(setting):
    grid = explore.over_grid(setting, seed=1)
    for i, ratio in enumerate(grid.values):
        y, z, lengths = batch_of(setting, seed=1, mask_ratio=ratio)
        _, grads, _ = ref_losses(y, z, setting, ref_weights(setting, y))
        for key in setting.losses:
            squares = np.square(norm(grads[key], axis=-1))  # [B, T]
            real = np.arange(T)[None, :] < lengths[:, None]
            total = squares.sum()
            expected = np.zeros((2, T))
            if total > 0:
                expected[0] = np.where(real, squares, 0).sum(axis=0) / total
                expected[1] = np.where(real, 0, squares).sum(axis=0) / total
            np.testing.assert_allclose(
                grid.step_shares[key][i], expected, atol=2e-6, err_msg=f"{ratio} {key}"
            )
            assert grid.padding_grad_share[key][i] == pytest.approx(
                expected[1].sum(), abs=2e-6
            )


def test_the_grid_names_the_masked_and_unmasked_means():
    assert explore.over_grid(Setting()).mean_key(True) == "ours"
    assert explore.over_grid(Setting()).mean_key(False) == "unmasked"
    off = explore.over_grid(Setting(mask=UNMASKED))
    assert (off.mean_key(True), off.mean_key(False)) == ("masked", "ours")
    sentinel = explore.over_grid(Setting(pad_id=-1))
    assert sentinel.mean_key(False) is None
    # With the mask, padding holds none of the gradient; without, a growing part.
    shares = explore.over_grid(Setting()).padding_grad_share
    assert np.all(shares["ours"] == 0)
    assert shares["unmasked"][0] == 0 and shares["unmasked"][-1] == 1
    assert np.all(shares["unmasked"][1:] > 0)


def test_the_grid_reads_no_padding_share_and_refuses_a_value_off_it():
    a = explore.over_grid(Setting(mask_ratio=0.3))
    b = explore.over_grid(Setting(mask_ratio=0.8))
    for key in a.loss_values:
        np.testing.assert_array_equal(a.loss_values[key], b.loss_values[key])
    assert a.index(0.15000000000000002) == 3
    with pytest.raises(ValueError, match="mask_ratio"):
        a.at(0.33)


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"mask_ratio": 1.5}, "mask_ratio"),
        ({"pad_id": 1}, "pad_id"),
        ({"pad_id": 8}, "pad_id"),
        ({"pad_id": 0.5}, "pad_id"),
        ({"mask": "half"}, "mask"),
        ({"weight_mode": "by eye"}, "weight_mode"),
        ({"hand_weights": (1.0,) * 7}, "hand_weights"),
        ({"hand_weights": (1.0,) * 7 + (-1.0,)}, "hand_weights"),
        ({"hand_weights": (1.0,) * 7 + (math.inf,)}, "hand_weights"),
        ({"hand_weights": "1,1,one,1,1,1,1,1"}, "hand_weights"),
        ({"end_bias": 51.0}, "end_bias"),
    ],
)
def test_a_bad_setting_names_its_field(fields, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        Setting(**fields)


def test_weights_travel_as_text():
    """The URL keeps the hand weights as comma-separated text; a setting
    reads it, and ``weights_text`` writes what ``parse_weights`` reads back."""
    setting = Setting(hand_weights="1,0.5,3,1,2,1,1,0.25")
    assert setting.hand_weights == HAND
    assert setting == Setting(hand_weights=list(HAND))
    assert explore.weights_text(HAND) == "1,0.5,3,1,2,1,1,0.25"
    weights = (1 / 3, 2 / 3, 12345.678, 0.0, 1.0, 1.0, 1.0, 1e-5)
    back = explore.parse_weights(explore.weights_text(weights))
    np.testing.assert_allclose(back, weights, rtol=5e-4)
    values = {"mask_ratio": 0.2, "hand_weights": "1,1,2,1,1,1,1,1", "sweep": PADDING}
    assert explore.setting_of(values) == Setting(
        mask_ratio=0.2, hand_weights=(1, 1, 2, 1, 1, 1, 1, 1)
    )


def test_params_are_the_registry_entries():
    spec = registry.get("masked_sparse_categorical_crossentropy").param("pad_id")
    assert explore.PARAMS == {"pad_id": spec}


# ---------------------------------------------------------------- class weights


def test_end_weight_from_data_is_the_library_function_on_the_counted_labels():
    """Masked with a pad of its own, it is ``end_token_class_weights`` with
    that pad id, as a user calls it."""
    for pad_id in (0, 7):
        setting = Setting(mask_ratio=0.4, pad_id=pad_id, weight_mode=END_FROM_DATA)
        y, _, _ = batch_of(setting)
        np.testing.assert_allclose(
            explore.class_weights(setting, y),
            end_token_class_weights(y, C, end_id=END, pad_id=pad_id),
        )


def test_inverse_frequency_class_weights():
    labels = np.array([0, 0, 0, 1, 4, 4])
    # N = 6 labels, K = 3 classes present.
    np.testing.assert_allclose(
        explore.inverse_frequency_class_weights(labels, 5),
        [6 / (3 * 3), 6 / (3 * 1), 1.0, 1.0, 6 / (3 * 2)],
    )
    np.testing.assert_array_equal(explore.inverse_frequency_class_weights([], 3), 1.0)
    # Every class present carries the same weighted count, N / K.
    setting = Setting(mask_ratio=0.3, weight_mode=ALL_FROM_DATA)
    point = explore.at_setting(setting)
    present = point.class_counts > 0
    weighted = (point.class_counts * point.class_weights)[present]
    np.testing.assert_allclose(weighted, point.class_counts.sum() / present.sum())
    with pytest.raises(ValueError, match="num_classes"):
        explore.inverse_frequency_class_weights([0], 0)


# ---------------------------------------------------------------- sweeps


@pytest.mark.parametrize(
    "setting", SETTINGS[:3] + SETTINGS[5:8], ids=IDS[:3] + IDS[5:8]
)
def test_padding_sweep_matches_numpy_at_every_share(setting):
    curves = explore.sweep(setting, PADDING, seed=2)
    assert curves.over == PADDING
    np.testing.assert_allclose(curves.grid, np.arange(21) / 20, atol=1e-12)
    assert curves.losses == setting.losses
    for i, ratio in enumerate(curves.grid):
        y, z, _ = batch_of(setting, seed=2, mask_ratio=ratio)
        weights = ref_weights(setting, y)
        values, grads, _ = ref_losses(y, z, setting, weights)
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
        (Setting(mask_ratio=0.35, hand_weights=(1, 1, 7.3, 1, 1, 1, 1, 2)), 8.0),
        (Setting(mask_ratio=0.2, pad_id=-1, weight_mode=END_FROM_DATA), 5.0),
        (Setting(mask_ratio=0.3, mask=UNMASKED, weight_mode=ALL_FROM_DATA), 5.0),
    ],
)
def test_weight_sweep_matches_numpy_on_the_current_batch(setting, end):
    curves = explore.sweep(setting, END_WEIGHT, seed=4)
    np.testing.assert_allclose(curves.grid, np.linspace(0.0, end, 26))
    y, z, _ = batch_of(setting, seed=4)
    in_use = ref_weights(setting, y)
    for i, weight in enumerate(curves.grid):
        weights = in_use.copy()
        weights[END] = weight
        values, grads, _ = ref_losses(y, z, setting, weights)
        for key in setting.losses:
            assert curves.values[key][i] == pytest.approx(values[key], rel=1e-5), (
                weight,
                key,
            )
            assert curves.grad_norms[key][i] == pytest.approx(
                norm(grads[key]), rel=1e-5
            ), (weight, key)


@pytest.mark.parametrize(
    "setting",
    [
        Setting(hand_weights=(1, 1, 7.3, 1, 1, 1, 1, 2)),
        Setting(pad_id=7, weight_mode=END_FROM_DATA),
        Setting(mask=UNMASKED, weight_mode=ALL_FROM_DATA),
        Setting(pad_id=-1),
    ],
)
def test_the_weight_sweeps_are_the_weight_sweep_at_every_padding_share(setting):
    sweeps = explore.weight_sweeps(setting.for_sweep(PADDING), seed=2)
    np.testing.assert_allclose(sweeps.shares, np.arange(21) / 20, atol=1e-12)
    for share, curves in zip(sweeps.shares, sweeps.sweeps, strict=True):
        at = dataclasses.replace(setting, mask_ratio=float(share))
        expected = explore.sweep(at, END_WEIGHT, seed=2)
        assert sweeps.at(share) is curves
        np.testing.assert_array_equal(curves.grid, expected.grid)
        assert curves.losses == expected.losses
        for key in curves.losses:
            np.testing.assert_allclose(
                curves.values[key], expected.values[key], rtol=1e-6, atol=1e-9
            )
            np.testing.assert_allclose(
                curves.grad_norms[key], expected.grad_norms[key], rtol=1e-6, atol=1e-9
            )


def test_the_sweep_of_a_setting_is_the_sweep_of_its_cache_key():
    """``for_sweep`` fixes only fields the sweep does not read: the cached
    curves of the key are those of the setting itself."""
    settings = [
        Setting(mask_ratio=0.7, hand_weights=HAND),
        Setting(mask_ratio=0.1, pad_id=7, weight_mode=END_FROM_DATA, hand_weights=HAND),
        Setting(mask_ratio=0.5, hand_weights=(1, 1, 6.5, 1, 1, 1, 1, 1)),
        Setting(mask_ratio=0.5, pad_id=END, mask=UNMASKED, weight_mode=ALL_FROM_DATA),
    ]
    for setting in settings:
        for over in explore.SWEEPS:
            key = setting.for_sweep(over)
            a, b = explore.sweep(setting, over), explore.sweep(key, over)
            np.testing.assert_array_equal(a.grid, b.grid)
            for loss in setting.losses:
                np.testing.assert_array_equal(a.values[loss], b.values[loss])
                np.testing.assert_array_equal(a.grad_norms[loss], b.grad_norms[loss])
    # One key for every padding share, and for every end weight up to 5.
    assert Setting(mask_ratio=0.2).for_sweep(PADDING) == Setting().for_sweep(PADDING)
    four, half = (1, 1, 4.0, 1, 1, 1, 1, 1), (1, 1, 0.5, 1, 1, 1, 1, 1)
    assert Setting(hand_weights=four).for_sweep(END_WEIGHT) == Setting(
        hand_weights=half
    ).for_sweep(END_WEIGHT)
    with pytest.raises(ValueError, match="`over`"):
        Setting().for_sweep("seed")


# ---------------------------------------------------------------- example data


@pytest.mark.parametrize("pad_id", [0, 7, -1, END])
def test_example_batch_structure(pad_id):
    y, z, lengths = example_batch(
        mask_ratio=0.3, pad_id=pad_id, start_id=1, end_id=2, return_lengths=True
    )
    assert y.shape == (6, 10) and z.shape == (6, 10, 8)
    assert y.dtype == np.int32 and z.dtype == np.float32
    assert np.sum(lengths) == 60 - 18
    for row, length in zip(y, lengths, strict=True):
        np.testing.assert_array_equal(row[length:], pad_id)
        if length:
            assert row[length - 1] == 2
            assert 2 not in row[1 : length - 1]
        if length >= 2:
            assert row[0] == 1
    assert len(set(lengths.tolist())) > 1  # lengths differ
    y2, z2 = example_batch(mask_ratio=0.3, pad_id=pad_id, start_id=1, end_id=2)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(z2, z)


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
    with pytest.raises(ValueError, match="start_id"):
        example_batch(pad_id=1)
    with pytest.raises(ValueError, match="num_classes"):
        example_batch(num_classes=3)


# ---------------------------------------------------------------- the intro


def test_intro_facts_match_numpy():
    facts = explore.intro_facts(seed=0)
    assert (facts.low_share, facts.high_share) == pytest.approx((0.0, 0.9))
    setting = Setting()
    for i, share in enumerate((0.0, 0.9)):
        y, z, _ = batch_of(setting, mask_ratio=share)
        values, _, _ = ref_losses(y, z, setting, np.ones(C))
        for key in ("ours", "token", "trap", "unmasked"):
            assert getattr(facts, key)[i] == pytest.approx(values[key], rel=1e-5)
    y, z, _ = batch_of(setting, mask_ratio=1.0)
    values, grads, _ = ref_losses(y, z, setting, np.ones(C))
    masked = ("ours", "token", "trap")
    assert facts.all_padding_value == max(values[k] for k in masked) == 0.0
    assert facts.all_padding_grad == max(norm(grads[k]) for k in masked) == 0.0
    y, _, lengths = batch_of(setting, mask_ratio=0.9)
    real = [int(v) for row, n in zip(y, lengths, strict=True) for v in row[:n]]
    assert facts.special_share == pytest.approx(
        sum(v in (START, END) for v in real) / len(real)
    )
    # What the intro says of them: the trap falls further than both means.
    assert facts.trap[1] < min(facts.ours[1], facts.token[1])
    assert facts.unmasked[1] < facts.unmasked[0]


# ---------------------------------------------------------------- training


def task_targets(seed, pad_as_end=False):
    _, targets = task.copy_dataset(
        core.rng(seed, 1), 512, max_len=6, padded_len=20, num_tokens=10,
        pad_id=task.END_ID if pad_as_end else task.PAD_ID,
    )  # fmt: skip
    return targets


@pytest.mark.parametrize(
    "setting",
    [
        Setting(),
        Setting(weight_mode=END_FROM_DATA),
        Setting(mask=UNMASKED, weight_mode=END_FROM_DATA),
        Setting(pad_id=END, weight_mode=END_FROM_DATA),
        Setting(pad_id=END, mask=UNMASKED, weight_mode=ALL_FROM_DATA),
        Setting(pad_id=7, weight_mode=ALL_FROM_DATA),
        Setting(hand_weights=HAND),
    ],
    ids=[
        "ones",
        "end",
        "end unmasked",
        "end, pad = end",
        "all, pad = end, unmasked",
        "all, pad 7",
        "by hand",
    ],  # fmt: skip
)
def test_train_class_weights_on_the_tasks_own_targets(setting):
    """Counted on the run's targets with a Counter: over the non-pad steps
    masked, every step unmasked; by hand, only the end token's weight."""
    targets = task_targets(3, setting.pad_is_end)
    classes = task.num_classes(10)
    pad = task.END_ID if setting.pad_is_end else task.PAD_ID
    counted = [int(v) for v in targets.ravel() if not (setting.masked and v == pad)]
    counts = collections.Counter(counted)
    expected = np.ones(classes)
    if setting.weight_mode == explore.BY_HAND:
        expected[task.END_ID] = setting.hand_weights[END]
    elif setting.weight_mode == END_FROM_DATA:
        others = [n for label, n in counts.items() if label != task.END_ID]
        if counts[task.END_ID]:
            expected[task.END_ID] = np.mean(others) / counts[task.END_ID]
    else:
        for label, n in counts.items():
            expected[label] = len(counted) / (len(counts) * n)
    weights = explore.train_class_weights(setting, seed=3)
    if np.all(expected == 1.0):
        assert weights is None
    else:
        np.testing.assert_allclose(weights, expected)


def test_train_runs_follow_the_controls():
    runs = explore.train_runs(Setting(), seed=0)
    end = explore.train_class_weights(Setting(weight_mode=END_FROM_DATA), 0)
    assert [run.label for run in runs] == [
        "masked, pad <pad>, end weight 1 by hand",
        "unmasked, pad <pad>, end weight 1 by hand",
        f"masked, pad <pad>, end weight {end[END]:.3g} from data",
    ]
    assert [run.variant for run in runs] == ["masked", "unmasked", "masked"]
    assert [run.params for run in runs] == [
        {"pad_as_end": False, "class_weights": None},
        {"pad_as_end": False, "class_weights": None},
        {"pad_as_end": False, "class_weights": end},
    ]
    assert {run.variant for run in runs} <= set(task.VARIANTS)
    # The fix is not repeated; padding with the end token reaches the task.
    fix = explore.train_runs(Setting(pad_id=7, weight_mode=END_FROM_DATA), seed=0)
    assert [run.variant for run in fix] == ["masked", "unmasked"]
    assert fix[0].label == runs[2].label
    mistake = explore.train_runs(Setting(pad_id=END, mask=UNMASKED), seed=0)
    assert [run.label for run in mistake][:2] == [
        "unmasked, pad = </s>, end weight 1 by hand",
        "masked, pad = </s>, end weight 1 by hand",
    ]
    assert [run.params["pad_as_end"] for run in mistake] == [True, True, False]
    # A pad id outside the classes trains with the task's own pad: its other
    # run is the unmasked one.
    sentinel = explore.train_runs(Setting(pad_id=-1, mask=UNMASKED), seed=0)
    assert [run.variant for run in sentinel] == ["masked", "unmasked", "masked"]
    assert explore.TRAINING.task == "sequence"
    assert set(explore.TRAINING.metrics) <= set(core.TASKS["sequence"].metrics)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_data_states_the_runs_data(seed):
    """The Train intro's numbers, counted by hand on the run's own targets:
    most steps are padding, the end token is the most frequent real token,
    so its balanced weight is below 1."""
    data = explore.train_data(seed)
    targets = task_targets(seed)
    assert (data.max_len, data.padded_len, data.num_tokens) == (6, 20, 10)
    assert data.num_classes == 13
    assert data.padding_share == pytest.approx(np.mean(targets == 0))
    counts = collections.Counter(int(v) for v in targets.ravel() if v != 0)
    others = [n for label, n in counts.items() if label != task.END_ID]
    assert data.end_weight == pytest.approx(
        sum(others) / len(others) / counts[task.END_ID]
    )
    assert data.end_most_frequent == (max(counts, key=counts.get) == task.END_ID)
    assert data.end_most_frequent and data.end_weight < 1 and data.padding_share > 0.7


# ---------------------------------------------------------------- lessons


def test_a_lessons_check_fails_where_its_outcome_does_not_hold():
    """Each check computes its outcome: at settings where the lesson's story
    is not told, it says so (the checks at the lessons' own settings are
    asserted by tests/test_lessons.py)."""
    no_mask = explore.check_lesson("no_mask", {"mask": MASKED}, 0)
    assert not no_mask.holds
    assert "Masked, the padding steps hold 0%" in no_mask.statement
    own_pad = explore.check_lesson("pad_is_end", {"pad_id": 0}, 0)
    assert not own_pad.holds and "counts 6 of the 6 real end" in own_pad.statement
    unmasked = explore.check_lesson(
        "fixed", {"mask": UNMASKED, "weight_mode": END_FROM_DATA}, 0
    )
    assert not unmasked.holds
    with pytest.raises(ValueError, match="`name`"):
        explore.check_lesson("everything", {}, 0)


def test_the_no_mask_check_states_the_runs_numbers():
    setting = Setting(mask=UNMASKED, mask_ratio=0.6)
    claim = explore.check_lesson("no_mask", dataclasses.asdict(setting), 0)
    ran = explore.trained_summary(setting, 0)
    twin = explore.trained_summary(dataclasses.replace(setting, mask=MASKED), 0)
    assert claim.holds
    assert f"on {ran[explore.STOP]:.0%} of the content steps" in claim.statement
    share = explore.at_setting(setting).padding_grad_share["ours"]
    assert f"hold {share:.0%} of" in claim.statement
    assert ran[explore.STOP] >= twin[explore.STOP] + 0.2


# ---------------------------------------------------------------- the attempt


def test_end_token_padding_attempt_trains_on_its_own_targets():
    """The attempt pads the Train panel's copy task with its own function and
    states what the unmasked run then predicts, beside the run with a pad id
    of its own (numbers from the same cached runs as the lessons)."""
    attempt = next(a for a in attempts.ATTEMPTS if a.key == "pad_with_end")
    outcome = attempt.run(attempts.example_batch(0))
    numbers = outcome.numbers
    assert outcome.kind == "wrong" and numbers["same_as_task_targets"]
    # The function, by hand, on the task's sequences.
    targets = task_targets(0)
    real = task.real_steps(targets)
    rows = [list(row[r]) for row, r in zip(targets, real, strict=True)]
    padded = attempt.function(rows, 20, END)
    np.testing.assert_array_equal(padded, np.where(real, targets, END))
    mistake = explore.trained_summary(Setting(pad_id=END, mask=UNMASKED), 0)
    assert numbers["trained_end_share"] == mistake["real steps predicted `</s>`"]
    target = numbers["trained_target_end_share"]
    _, held = task.copy_dataset(core.rng(0, 2), task.NUM_HELDOUT)
    assert target == pytest.approx(np.mean(held[task.real_steps(held)] == END))
    assert numbers["trained_end_share"] > target + 0.2
    assert numbers["fix_trained_end_share"] == pytest.approx(target, abs=0.05)
    assert f"`</s>` on {numbers['trained_end_share']:.0%}" in outcome.message
