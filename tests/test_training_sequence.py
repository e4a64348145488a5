"""The sequence family's training task: copying padded sequences."""

import json

import keras
import numpy as np
import pytest

from lossviz import sequence, training
from lossviz.training import core
from lossviz.training import sequence as task

TINY = {"num_train": 64, "max_len": 3, "padded_len": 6, "num_tokens": 4, "units": 8}


def end_weights(seed=0):
    """The end token's balanced weight on the default run's targets."""
    _, targets = task.copy_dataset(core.rng(seed, 1), 512)
    return sequence.end_token_class_weights(
        targets, task.num_classes(10), end_id=task.END_ID, pad_id=task.PAD_ID
    ).tolist()


RUNS = {
    "unmasked": ("unmasked", {}),
    "masked": ("masked", {}),
    "masked_end_weight": ("masked", {"class_weights": end_weights()}),
    "unmasked_pad_as_end": ("unmasked", {"pad_as_end": True}),
    "masked_pad_as_end": ("masked", {"pad_as_end": True}),
}


@pytest.fixture(scope="module")
def runs():
    """Each run at the page's default sizes and epochs, seed 0."""
    return {
        name: training.train(
            "sequence", variant, epochs=5, learning_rate=1e-2, seed=0, **params
        )
        for name, (variant, params) in RUNS.items()
    }


# ------------------------------------------------------------------ the data


def test_copy_dataset_against_a_plain_loop():
    sizes = {"max_len": 4, "padded_len": 7, "num_tokens": 3}
    sources, targets = task.copy_dataset(core.rng(5, 1), 200, **sizes)
    assert sources.shape == targets.shape == (200, 7)
    assert sources.dtype == targets.dtype == np.int32
    lengths = []
    for source, target in zip(sources, targets, strict=True):
        # Read the row back token by token.
        content = []
        for token in target:
            if token == task.END_ID:
                break
            content.append(int(token))
        length = len(content)
        lengths.append(length)
        assert 1 <= length <= 4
        assert all(3 <= t <= 5 for t in content)
        assert list(target) == content + [2] + [0] * (7 - length - 1)
        assert list(source) == [1] + content + [2] + [0] * (7 - length - 2)
    assert set(lengths) == {1, 2, 3, 4}
    again = task.copy_dataset(core.rng(5, 1), 200, **sizes)
    np.testing.assert_array_equal(again[1], targets)
    other = task.copy_dataset(core.rng(6, 1), 200, **sizes)
    assert not np.array_equal(other[1], targets)


def test_padding_with_the_end_token_keeps_the_sequences():
    sizes = {"max_len": 4, "padded_len": 7, "num_tokens": 3}
    sources, targets = task.copy_dataset(core.rng(5, 1), 50, **sizes)
    end_sources, end_targets = task.copy_dataset(
        core.rng(5, 1), 50, pad_id=task.END_ID, **sizes
    )
    real = task.real_steps(targets)
    np.testing.assert_array_equal(task.real_steps(end_targets), real)
    np.testing.assert_array_equal(end_targets[real], targets[real])
    assert np.all(end_targets[~real] == task.END_ID)
    assert np.all(end_sources[:, 1:] == end_targets[:, :-1])
    assert np.all(end_sources[:, 0] == task.START_ID)
    assert not np.any(end_targets == task.PAD_ID)


def test_real_steps_against_a_loop():
    targets = np.array(
        [[3, 4, 2, 0, 0], [2, 2, 2, 2, 2], [5, 2, 2, 6, 2], [3, 3, 3, 3, 3]]
    )
    expected = []
    for row in targets:
        seen, mask = False, []
        for token in row:
            mask.append(not seen)
            seen = seen or token == task.END_ID
        expected.append(mask)
    np.testing.assert_array_equal(task.real_steps(targets), expected)


def test_default_data_is_mostly_padding():
    params = task.check_params({})
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    _, targets = task.copy_dataset(core.rng(0, 1), 512, **sizes)
    # Lengths 1..6 (+ the end token) in 20 steps: about 78 % padding.
    assert 0.7 < np.mean(targets == task.PAD_ID) < 0.85


def test_token_names_and_greedy_output():
    assert task.token_names([1, 3, 4, 28, 29, 2, 0]) == [
        "<s>",
        "a",
        "b",
        "z",
        "A",
        "</s>",
        "<pad>",
    ]
    assert task.greedy_output([5, 6, 2, 7, 0]) == [5, 6]
    assert task.greedy_output([5, 0, 6]) == [5]
    assert task.greedy_output([2, 5]) == []
    assert task.greedy_output([5, 6]) == [5, 6]


# --------------------------------------------------------- losses and metrics


def test_unmasked_loss_is_keras_plain_sparse_crossentropy():
    rng = np.random.default_rng(0)
    _, targets = task.copy_dataset(rng, 16, max_len=4, padded_len=8, num_tokens=5)
    logits = rng.normal(size=(16, 8, 8)).astype("float32")
    ours = task.make_loss("unmasked")(targets, logits)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(ours, keras_loss(targets, logits), rtol=1e-5)
    assert task.make_loss("unmasked", pad_id=task.END_ID).pad_id is None


def test_masked_losses_ignore_padding_and_weight_the_end_token():
    rng = np.random.default_rng(1)
    _, targets = task.copy_dataset(rng, 16, max_len=4, padded_len=8, num_tokens=5)
    logits = rng.normal(size=(16, 8, 8))
    # The end weight by hand: mean count of the content tokens that occur,
    # over the count of end tokens (one per row).
    counts = {}
    for token in targets.ravel():
        if token not in (task.PAD_ID, task.END_ID):
            counts[token] = counts.get(token, 0) + 1
    expected = np.ones(8)
    expected[task.END_ID] = np.mean(list(counts.values())) / len(targets)
    masked = task.make_loss("masked")
    weighted = task.make_loss("masked", class_weights=expected)
    assert masked.pad_id == weighted.pad_id == task.PAD_ID
    assert masked.class_weights is None
    np.testing.assert_allclose(weighted.class_weights, expected)

    # The loss by hand: per row, the weighted mean over the non-pad steps.
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = []
    for y, lp in zip(targets, log_probs, strict=True):
        real = [t for t in range(8) if y[t] != task.PAD_ID]
        rows.append(sum(-lp[t, y[t]] * expected[y[t]] for t in real) / len(real))
    np.testing.assert_allclose(weighted(targets, logits), np.mean(rows), rtol=1e-5)
    # Garbage logits under padding change nothing.
    noisy = np.where((targets == task.PAD_ID)[..., None], 1e3, logits)
    np.testing.assert_allclose(masked(targets, noisy), masked(targets, logits))


def test_masking_the_end_id_removes_every_end_token():
    """Padded with the end token and masked with its id, the loss sees only
    the content tokens: the real end tokens are gone too."""
    rng = np.random.default_rng(2)
    _, targets = task.copy_dataset(
        rng, 16, max_len=4, padded_len=8, num_tokens=5, pad_id=task.END_ID
    )
    logits = rng.normal(size=(16, 8, 8))
    loss = task.make_loss("masked", pad_id=task.END_ID)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = []
    for y, lp in zip(targets, log_probs, strict=True):
        kept = [t for t in range(8) if y[t] != task.END_ID]
        rows.append(sum(-lp[t, y[t]] for t in kept) / len(kept))
    np.testing.assert_allclose(loss(targets, logits), np.mean(rows), rtol=1e-5)


def test_prediction_shares_against_a_loop():
    rng = np.random.default_rng(2)
    _, targets = task.copy_dataset(rng, 30, max_len=5, padded_len=9, num_tokens=3)
    predicted = rng.integers(0, 6, size=(30, 9))
    real = end = pad = content = stop = ends = ended = 0
    for y_row, p_row in zip(targets, predicted, strict=True):
        for y, p in zip(y_row, p_row, strict=True):
            real += 1
            end += p == task.END_ID
            pad += p == task.PAD_ID
            if y == task.END_ID:
                ends += 1
                ended += p == task.END_ID
                break
            content += 1
            stop += p in (task.END_ID, task.PAD_ID)
    shares = task.prediction_shares(targets, predicted)
    assert shares == pytest.approx(
        {
            "end_share": end / real,
            "pad_share": pad / real,
            "stop_share": stop / content,
            "end_step_share": ended / ends,
        }
    )
    # The same sequences padded with the end token: the same shares.
    end_padded = np.where(task.real_steps(targets), targets, task.END_ID)
    assert task.prediction_shares(end_padded, predicted) == shares
    # No content step: 0, not NaN.
    empty = task.prediction_shares(np.full((2, 3), task.END_ID), np.zeros((2, 3)))
    assert empty["stop_share"] == 0.0 and empty["end_step_share"] == 0.0


def test_metrics_callback_logs_against_numpy():
    sources, targets = task.copy_dataset(
        core.rng(3, 2), 40, max_len=3, padded_len=6, num_tokens=4
    )
    keras.utils.set_random_seed(0)
    model = task.build_model(task.num_classes(4), 6, units=8)
    callback = task.SequenceMetrics(sources, targets)
    callback.set_model(model)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    predicted = np.argmax(model(sources), axis=-1)
    assert np.asarray(callback.logits).shape == (40, 6, task.num_classes(4))
    real = targets != task.PAD_ID
    assert logs["masked_accuracy"] == pytest.approx(
        np.mean(predicted[real] == targets[real])
    )
    assert logs["all_steps_accuracy"] == pytest.approx(np.mean(predicted == targets))
    assert logs["end_share"] == pytest.approx(np.mean(predicted[real] == task.END_ID))
    assert logs["pad_share"] == pytest.approx(np.mean(predicted[real] == task.PAD_ID))
    content = real & (targets != task.END_ID)
    assert logs["stop_share"] == pytest.approx(
        np.mean(np.isin(predicted[content], [task.END_ID, task.PAD_ID]))
    )
    assert logs["end_step_share"] == pytest.approx(
        np.mean(predicted[targets == task.END_ID] == task.END_ID)
    )
    assert logs["loss"] == 1.0


def test_decoded_rows_follow_the_argmax():
    sources = np.array([[1, 3, 4, 2, 0, 0], [1, 5, 2, 0, 0, 0], [1, 6, 2, 0, 0, 0]])
    targets = np.array([[3, 4, 2, 0, 0, 0], [5, 2, 0, 0, 0, 0], [6, 2, 0, 0, 0, 0]])
    logits = np.zeros((3, 6, 7))
    guesses = np.array([[3, 5, 2, 0, 0, 0], [0, 2, 2, 2, 0, 0], [6, 2, 2, 0, 0, 0]])
    logits[np.arange(3)[:, None], np.arange(6)[None, :], guesses] = 1.0
    first, second, third = task.decoded_rows(sources, targets, logits, count=3)
    assert first == {
        "input": "<s> a b </s>",
        "target": "a b </s>",
        "predicted, step by step": "a c </s>",
        "output": "a c",
        "steps right": "2 / 3",
        "copied": False,
    }
    assert second["predicted, step by step"] == "<pad> </s>"
    assert second["output"] == "(empty)"
    assert second["steps right"] == "1 / 2"
    assert third["output"] == "d" and third["copied"] is True
    # Padded with the end token, the rows read the same.
    end_sources = np.where(sources == 0, 2, sources)
    end_targets = np.where(targets == 0, 2, targets)
    assert task.decoded_rows(end_sources, end_targets, logits, count=3) == [
        first,
        second,
        third,
    ]


def test_run_summary_against_numpy():
    rng = np.random.default_rng(4)
    _, targets = task.copy_dataset(rng, 30, max_len=4, padded_len=8, num_tokens=5)
    _, held = task.copy_dataset(rng, 20, max_len=4, padded_len=8, num_tokens=5)
    logits = rng.normal(size=(20, 8, 8))
    weights = np.ones(8)
    weights[task.END_ID] = 0.4
    loss = task.make_loss("masked", class_weights=weights)
    summary = task.run_summary(loss, targets, held, logits)
    predicted = np.argmax(logits, axis=-1)
    real = held != task.PAD_ID
    content = real & (held != task.END_ID)
    assert summary == pytest.approx(
        {
            "held-out accuracy on real steps": np.mean(predicted[real] == held[real]),
            "real steps predicted `</s>`": np.mean(predicted[real] == task.END_ID),
            "real target steps that are `</s>`": np.sum(held == task.END_ID)
            / real.sum(),
            "real steps predicted `<pad>`": np.mean(predicted[real] == task.PAD_ID),
            "content steps predicted `</s>` or `<pad>`": np.mean(
                np.isin(predicted[content], [task.END_ID, task.PAD_ID])
            ),
            "sequence ends predicted `</s>`": np.mean(
                predicted[held == task.END_ID] == task.END_ID
            ),
            "loss's pad id": task.PAD_ID,
            "end-token weight": 0.4,
            "training target steps that are padding": np.mean(targets == task.PAD_ID),
            "held-out sequences": 20,
        }
    )
    unweighted = task.run_summary(task.make_loss("unmasked"), targets, held, logits)
    assert unweighted["end-token weight"] == 1.0
    assert unweighted["loss's pad id"] == "none (unmasked)"


# ------------------------------------------------------------------ the runs


def test_every_run_lowers_its_loss(runs):
    for name, result in runs.items():
        loss = result.history["loss"]
        assert len(loss) == 5, name
        assert loss[-1] < 0.6 * loss[0], (name, loss)
        assert result.epochs == [1, 2, 3, 4, 5]


def test_unmasked_run_fills_real_steps_with_end_and_padding(runs):
    """The classic failure: trained on every step, padding included, the model
    says </s> or <pad> on many real steps and copies few tokens, although its
    accuracy over every step looks good."""
    history = runs["unmasked"].history
    target_end_share = runs["unmasked"].summary["real target steps that are `</s>`"]
    stop = np.add(history["end_share"], history["pad_share"])
    assert stop[0] > 0.6  # after one epoch, mostly end and padding
    assert stop[-1] > 0.4 > 1.5 * target_end_share
    assert (
        history["stop_share"][-1] > 0.3 > 10 * runs["masked"].history["stop_share"][-1]
    )
    assert history["masked_accuracy"][-1] < 0.35
    assert history["all_steps_accuracy"][-1] > 0.8  # padding is easy to copy


def test_masked_run_with_end_weight_copies(runs):
    weighted = runs["masked_end_weight"].history
    unmasked = runs["unmasked"].history
    masked = runs["masked"].history
    summary = runs["masked_end_weight"].summary
    assert weighted["masked_accuracy"][-1] > 0.85
    assert weighted["masked_accuracy"][-1] > unmasked["masked_accuracy"][-1] + 0.5
    assert weighted["masked_accuracy"][-1] > masked["masked_accuracy"][-1]
    # End where the targets end, padding never on a real step.
    assert weighted["end_share"][-1] == pytest.approx(
        summary["real target steps that are `</s>`"], abs=0.03
    )
    assert weighted["pad_share"][-1] == 0.0
    assert weighted["end_step_share"][-1] > 0.95
    # Without the weight the frequent end token takes over the first epoch.
    assert masked["end_share"][0] > weighted["end_share"][0] + 0.2
    # The end token is the most frequent real token here: balanced, it weighs less.
    assert summary["end-token weight"] < 0.5
    assert runs["masked"].summary["end-token weight"] == 1.0
    # The summary states the last epoch's held-out figures.
    assert summary["held-out accuracy on real steps"] == pytest.approx(
        weighted["masked_accuracy"][-1]
    )
    assert summary["real steps predicted `</s>`"] == pytest.approx(
        weighted["end_share"][-1]
    )


def test_padding_with_the_end_token(runs):
    """Masked with the end id, the model never learns to end; unmasked, the
    end token takes the real steps."""
    masked = runs["masked_pad_as_end"]
    unmasked = runs["unmasked_pad_as_end"]
    assert masked.summary["loss's pad id"] == task.END_ID
    assert masked.history["end_step_share"][-1] < 0.05
    assert masked.summary["sequence ends predicted `</s>`"] < 0.05
    own_pad = runs["masked"].summary["sequence ends predicted `</s>`"]
    assert own_pad > 0.9
    target_end = unmasked.summary["real target steps that are `</s>`"]
    assert unmasked.summary["real steps predicted `</s>`"] > target_end + 0.2
    assert unmasked.summary["real steps predicted `<pad>`"] == 0.0
    # The same sequences either way.
    assert (
        masked.summary["training target steps that are padding"]
        == (runs["masked"].summary["training target steps that are padding"])
    )


def test_rows_decode_the_held_out_rows(runs):
    for name, result in runs.items():
        assert len(result.rows) == task.NUM_EXAMPLES, name
        for row in result.rows:
            source, target = row["input"].split(), row["target"].split()
            predicted = row["predicted, step by step"].split()
            assert source[0] == "<s>" and source[1:] == target
            assert target[-1] == "</s>" and len(predicted) == len(target)
            right = sum(p == t for p, t in zip(predicted, target, strict=True))
            assert row["steps right"] == f"{right} / {len(target)}"
            assert row["copied"] == (row["output"].split() == target[:-1])
    # Same seed: every run decodes the same held-out inputs.
    inputs = {v: [row["input"] for row in r.rows] for v, r in runs.items()}
    assert len({tuple(i) for i in inputs.values()}) == 1
    # Trained with the end weight, the model copies most of them.
    assert sum(row["copied"] for row in runs["masked_end_weight"].rows) >= 3


def test_results_are_plain_json(runs):
    for result in runs.values():
        assert json.loads(json.dumps(result.to_dict()))["task"] == "sequence"


def test_a_fixed_seed_repeats_exactly():
    def run(seed):
        weights = [1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0]
        return training.train(
            "sequence", "masked", epochs=2, seed=seed, class_weights=weights, **TINY
        )

    a, b, c = run(7), run(7), run(8)
    assert a.history == b.history
    assert a.summary == b.summary and a.rows == b.rows
    assert a.history != c.history


def test_should_stop_keeps_the_epoch_the_summary_and_the_rows():
    result = training.train(
        "sequence", "unmasked", epochs=5, should_stop=lambda: True, **TINY
    )
    assert result.epochs == [1]
    assert result.stopped == "stopped by the user"
    assert result.summary["held-out sequences"] == task.NUM_HELDOUT
    assert len(result.rows) == task.NUM_EXAMPLES


def test_task_is_registered():
    spec = core.TASKS["sequence"]
    assert spec.variants == ("unmasked", "masked")
    assert spec.metrics[:6] == (
        "loss",
        "masked_accuracy",
        "end_share",
        "pad_share",
        "stop_share",
        "end_step_share",
    )


@pytest.mark.parametrize(
    "params, name",
    [
        ({"num_train": 10}, "num_train"),
        ({"num_train": 5000}, "num_train"),
        ({"max_len": 0}, "max_len"),
        ({"max_len": 2.5}, "max_len"),
        ({"padded_len": 100}, "padded_len"),
        ({"max_len": 6, "padded_len": 7}, "padded_len"),
        ({"num_tokens": 0}, "num_tokens"),
        ({"units": 1000}, "units"),
        ({"vocabulary": 3}, "vocabulary"),
        ({"pad_as_end": 1}, "pad_as_end"),
        ({"class_weights": [1.0] * 12}, "class_weights"),
        ({"class_weights": [1.0] * 12 + [-1.0]}, "class_weights"),
        ({"class_weights": [1.0] * 12 + [float("nan")]}, "class_weights"),
    ],
)
def test_bad_params_name_the_parameter(params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.train("sequence", "masked", epochs=1, **params)


def test_unknown_variant():
    with pytest.raises(ValueError, match="`variant`"):
        training.train("sequence", "masked_with_class_weight")
