"""The sharpening family's training run: word from a target embedding."""

import functools
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from lossviz import EmbeddingTargetLoss, registry, training
from lossviz.training import sharpen as task

EPOCHS = 8


@functools.cache
def run(variant, seed=0, epochs=EPOCHS, **params):
    return training.train("sharpen", variant, epochs=epochs, seed=seed, **params)


def np_power_sharpen(p, power):
    """p**power / sum(p**power) row by row, in float64 log space."""
    logits = power * np.log(np.asarray(p, np.float64))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_cosine_distance(a, b):
    out = []
    for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64), strict=True):
        out.append(1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
    return np.array(out)


def improvement(result):
    """How far the held-out loss and accuracy moved from before training."""
    summary = result.summary
    history = result.history
    return (
        summary["held-out loss before training"] - history["val_loss"][-1],
        history["val_word_accuracy"][-1]
        - summary["held-out word accuracy before training"],
    )


def test_task_is_registered_with_its_variants_and_metrics():
    spec = training.TASKS["sharpen"]
    assert spec.variants == ("softmax", "sharpened", "straight-through")
    assert spec.metrics == ("loss", "val_loss", "val_word_accuracy")


@pytest.mark.parametrize(
    "variant, params",
    [("softmax", {}), ("sharpened", {"power": 2.0}), ("straight-through", {})],
)
def test_each_variant_lowers_its_loss_and_learns_the_words(variant, params):
    result = run(variant, **params)
    history = result.history
    assert result.epochs == list(range(1, EPOCHS + 1))
    assert set(history) == {"loss", "val_loss", "val_word_accuracy"}
    assert all(len(v) == EPOCHS for v in history.values())
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    summary = result.summary
    assert history["val_loss"][-1] < 0.6 * summary["held-out loss before training"]
    assert history["val_word_accuracy"][-1] > 5 * summary["chance"]
    after = summary["held-out word accuracy after training"]
    assert after == history["val_word_accuracy"][-1]


def test_a_high_power_stalls_where_power_one_learns():
    soft_loss, soft_accuracy = improvement(run("softmax"))
    sharp_loss, sharp_accuracy = improvement(run("sharpened", power=200.0))
    assert soft_loss > 0.3 and soft_accuracy > 0.3
    # Adam rescales what gradient is left (from inputs whose top two words are
    # nearly tied), so the loss still creeps down; the words are not learnt.
    assert 0 <= sharp_loss < 0.4 * soft_loss
    assert sharp_accuracy < 0.15 * soft_accuracy


def test_a_fixed_seed_repeats_exactly():
    a = run("sharpened", power=2.0)
    b = training.train("sharpen", "sharpened", epochs=EPOCHS, seed=0, power=2.0)
    assert a.history == b.history
    assert a.summary == b.summary and a.rows == b.rows
    c = training.train("sharpen", "sharpened", epochs=1, seed=1, power=2.0)
    assert c.history["val_loss"][0] != a.history["val_loss"][0]
    assert c.rows != a.rows


def test_summary_and_rows_decode_words_as_plain_data():
    result = run("softmax")
    json.dumps(result.to_dict())  # plain data all the way down
    summary = result.summary
    assert summary["chance"] == 1 / 16 and summary["held-out inputs"] == 256
    assert summary["held-out word accuracy before training"] < 0.2
    assert len(result.rows) == task.NUM_EXAMPLES
    for row in result.rows:
        target, emitted = row["target word"], row["emitted word"]
        assert target in task.WORDS and emitted in task.WORDS
        assert row["right?"] == (target == emitted)
        assert 0.0 <= row["p(target)"] <= row["p(emitted)"] <= 1.0
        assert -1.0 <= row["cos(emitted, target)"] <= 1.0
        if row["right?"]:
            assert row["cos(emitted, target)"] == pytest.approx(1.0, abs=1e-5)


def test_rows_are_the_first_heldout_words_as_the_model_emits_them():
    result = run("softmax")
    data = task.word_dataset(0)
    targets = [task.WORDS[w] for w in data["word_heldout"][: task.NUM_EXAMPLES]]
    assert [row["target word"] for row in result.rows] == targets


def test_iterations_go_as_far_as_the_page_and_registry_offer():
    high = registry.get("embedding_target_loss").param("iterations").ui_range[1]
    result = training.train("sharpen", "sharpened", epochs=1, iterations=high)
    assert np.isfinite(result.history["val_loss"]).all()
    with pytest.raises(ValueError, match="`iterations`"):
        training.train("sharpen", "sharpened", epochs=1, iterations=high + 1)


@pytest.mark.parametrize(
    "power, straight_through", [(1.0, False), (3.0, False), (1.0, True)]
)
def test_heldout_metrics_match_a_numpy_reference(power, straight_through):
    data = task.word_dataset(1, num_heldout=40)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(16, activation="softmax")]
    )
    loss = EmbeddingTargetLoss(
        data["embedding"], power=power, straight_through=straight_through
    )
    callback = task.HeldOutWords(
        loss, data["x_heldout"], data["target_heldout"], data["word_heldout"]
    )
    callback.set_model(model)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    kernel, bias = (w.numpy().astype(np.float64) for w in model.layers[0].weights)
    z = data["x_heldout"] @ kernel + bias
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if straight_through:
        weights = np.eye(16)[probs.argmax(-1)]
    else:
        weights = np_power_sharpen(probs, power)
    expected = np_cosine_distance(data["target_heldout"], weights @ data["embedding"])
    assert logs["loss"] == 1.0
    assert logs["val_loss"] == pytest.approx(expected.mean(), rel=1e-5)
    accuracy = np.mean(probs.argmax(-1) == data["word_heldout"])
    assert logs["val_word_accuracy"] == pytest.approx(accuracy)


def test_word_dataset_is_seeded_and_targets_are_embedding_rows():
    data = task.word_dataset(3, vocab_size=5, embedding_dim=4, num_features=6,
                             num_train=64, num_heldout=32, noise=0.0)  # fmt: skip
    assert data["embedding"].shape == (5, 4)
    assert data["x_train"].shape == (64, 6) and data["x_heldout"].shape == (32, 6)
    assert data["x_train"].dtype == np.float32 and data["word_train"].dtype == np.int64
    for split in ("train", "heldout"):
        np.testing.assert_array_equal(
            data[f"target_{split}"], data["embedding"][data[f"word_{split}"]]
        )
    # without noise, every input of a word is that word's prototype
    for word in range(5):
        rows = data["x_train"][data["word_train"] == word]
        np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
    again = task.word_dataset(3, vocab_size=5, embedding_dim=4, num_features=6,
                              num_train=64, num_heldout=32, noise=0.0)  # fmt: skip
    for name, value in data.items():
        np.testing.assert_array_equal(again[name], value)
    other = task.word_dataset(4, vocab_size=5, embedding_dim=4, num_features=6,
                              num_train=64, num_heldout=32, noise=0.0)  # fmt: skip
    assert not np.allclose(other["embedding"], data["embedding"])


@pytest.mark.parametrize(
    "variant, params, name",
    [
        ("sharpened", {"power": 0.0}, "power"),
        ("sharpened", {"power": 2e4}, "power"),
        ("sharpened", {"iterations": 0}, "iterations"),
        ("sharpened", {"iterations": 1.5}, "iterations"),
        ("softmax", {"vocab_size": 1}, "vocab_size"),
        ("softmax", {"vocab_size": 33}, "vocab_size"),
        ("straight-through", {"num_train": 10**6}, "num_train"),
        ("softmax", {"num_heldout": 8}, "num_heldout"),
        ("softmax", {"embedding_dim": 0}, "embedding_dim"),
        ("softmax", {"num_features": 1000}, "num_features"),
        ("sharpened", {"noise": -1.0}, "noise"),
        ("softmax", {"distance": "l1"}, "distance"),
        ("softmax", {"power": 2.0}, "power"),
        ("straight-through", {"iterations": 2}, "iterations"),
        ("sharpened", {"temperature": 0.5}, "temperature"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(variant, params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.train("sharpen", variant, epochs=1, **params)


def test_trains_mirrored_over_two_logical_cpu_devices():
    # Keras 3 cannot run several steps per call over several replicas
    # (keras-team/keras#19246): the run must fall back to one. Logical devices
    # must be set before TensorFlow initialises: a fresh process.
    script = textwrap.dedent(
        """
        from lossviz._tf import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from lossviz import training
        result = training.train("sharpen", "straight-through", epochs=2)
        assert result.device == "2 CPU devices (mirrored)", result.device
        print("ok", result.history["val_loss"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
