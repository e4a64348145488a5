"""The sampled-softmax family's training task: a next-word model, sampled vs full."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from lossviz import LazyAdam, SampledSoftmax, training
from lossviz._tf import tf
from lossviz.training import core
from lossviz.training import sampled as task

SMALL = {"vocab_size": 2_000, "pairs_per_epoch": 1_024, "embed_dim": 16}
LEARNING_RATE = 0.03  # learns in 3 short epochs at these sizes
RUNS = {
    "lazy_adam": ("sampled", {"num_sampled": 64, "optimizer": "lazy_adam"}),
    "adam": ("sampled", {"num_sampled": 64, "optimizer": "adam"}),
    "full": ("full", {}),
}


def train(variant, seed, **params):
    return training.train(
        "sampled", variant, epochs=3, seed=seed, learning_rate=LEARNING_RATE,
        **SMALL, **params,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    return {
        name: train(variant, seed=0, **params)
        for name, (variant, params) in RUNS.items()
    }


def zipf(vocab_size):
    """The log-uniform law, written out: (log(c + 2) - log(c + 1)) / log(C + 1)."""
    c = np.arange(vocab_size, dtype=np.float64)
    return (np.log(c + 2) - np.log(c + 1)) / np.log(vocab_size + 1)


def next_word_loop(successors, previous, following):
    """The generator's conditional probability, one word pair at a time."""
    p = (1 - task.FOLLOW) * zipf(len(successors))[following]
    for successor, weight in zip(
        successors[previous], task.SUCCESSOR_WEIGHTS, strict=True
    ):
        if successor == following:
            p += task.FOLLOW * weight
    return p


# ------------------------------------------------------------------ the data


def test_word_names_are_distinct_and_short_for_frequent_words():
    names = [task.word(i) for i in range(5_000)]
    assert len(set(names)) == len(names)
    assert [task.word(i) for i in (0, 1, 20, 21)] == ["ka", "lo", "kaka", "kalo"]
    assert all(len(name) == 2 for name in names[:20])
    assert all(len(name) == 4 for name in names[20:420])


def test_zipf_probabilities_follow_the_log_uniform_law():
    p = task.zipf_probabilities(1_000)
    np.testing.assert_allclose(p, zipf(1_000), rtol=1e-12)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(np.diff(p) < 0)  # word 0 is the most frequent


def test_next_word_probability_against_a_loop_and_normalised():
    successors = task.language(3, 60)
    assert successors.shape == (60, len(task.SUCCESSOR_WEIGHTS))
    rng = np.random.default_rng(0)
    previous, following = rng.integers(60, size=200), rng.integers(60, size=200)
    expected = [
        next_word_loop(successors, p, f)
        for p, f in zip(previous, following, strict=True)
    ]
    np.testing.assert_allclose(
        task.next_word_probability(successors, previous, following),
        expected,
        rtol=1e-12,
    )
    # Every word's next-word distribution sums to one, repeated successors too.
    grid = np.arange(60)
    table = task.next_word_probability(successors, grid[:, None], grid[None, :])
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-12)


def test_corpus_follows_the_generator():
    vocab_size = 40
    successors = task.language(1, vocab_size)
    text = task.corpus(np.random.default_rng(2), successors, 200_001)
    assert text.dtype == np.int32 and text.shape == (200_001,)
    assert 0 <= text.min() and text.max() < vocab_size
    grid = np.arange(vocab_size)
    expected = task.next_word_probability(successors, grid[:, None], grid[None, :])
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (text[:-1], text[1:]), 1)
    for previous in range(3):  # the frequent words: thousands of pairs each
        observed = counts[previous] / counts[previous].sum()
        assert counts[previous].sum() > 5_000
        assert 0.5 * np.abs(observed - expected[previous]).sum() < 0.03


def test_dataset_shapes_seeds_and_best_perplexity():
    data = task.dataset(5, 300, 1_000)
    size = 1_000 - 1_000 % task.BATCH_SIZE
    assert data["x"].shape == data["y"].shape == (size,)
    assert data["x_val"].shape == data["y_val"].shape == (task.VAL_PAIRS,)
    # Pairs of one text: each target is the next pair's word.
    np.testing.assert_array_equal(data["x"][1:], data["y"][:-1])
    np.testing.assert_array_equal(data["x_val"][1:], data["y_val"][:-1])
    true = [
        next_word_loop(data["successors"], p, f)
        for p, f in zip(data["x_val"], data["y_val"], strict=True)
    ]
    assert data["best_perplexity"] == pytest.approx(np.exp(-np.mean(np.log(true))))
    # Far below the vocabulary size: there is structure to learn.
    assert data["best_perplexity"] < 300 / 5
    again, other = task.dataset(5, 300, 1_000), task.dataset(6, 300, 1_000)
    for key in ("successors", "x", "y", "x_val", "y_val"):
        np.testing.assert_array_equal(data[key], again[key])
        assert not np.array_equal(data[key], other[key])


# ----------------------------------------------------------------- the model


def test_full_perplexity_against_numpy(monkeypatch):
    params = {"vocab_size": 50, "embed_dim": 4, "num_sampled": 5}
    model, encoder, output = task.build_model("sampled", params, seed=0)
    rng = np.random.default_rng(0)
    previous, following = rng.integers(50, size=37), rng.integers(50, size=37)
    hidden = np.asarray(encoder(previous), np.float64)
    logits = hidden @ output.kernel.numpy().T + output.bias.numpy()
    log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))
    log_p = logits[np.arange(37), following] - logits.max(1) - log_z
    expected = np.exp(-np.mean(log_p))
    assert task.full_perplexity(encoder, output, previous, following) == (
        pytest.approx(expected, rel=1e-5)
    )
    monkeypatch.setattr(task, "MAX_VAL_LOGITS", 50 * 8)  # chunks of 8 rows
    assert task.full_perplexity(encoder, output, previous, following) == (
        pytest.approx(expected, rel=1e-5)
    )


def test_both_output_layers_start_from_the_same_weights():
    params = {"vocab_size": 30, "embed_dim": 4, "num_sampled": 5}
    keras.utils.set_random_seed(4)
    _, _, sampled_output = task.build_model("sampled", params, seed=4)
    keras.utils.set_random_seed(4)
    full_model, _, full_output = task.build_model("full", params, seed=4)
    assert isinstance(sampled_output, SampledSoftmax)
    np.testing.assert_array_equal(sampled_output.kernel, full_output.kernel)
    # The full model adds the exact mean cross-entropy, lossviz's reference.
    x, y = np.array([1, 2, 3]), np.array([4, 0, 29])
    losses = full_model([x, y])
    np.testing.assert_allclose(float(full_model.losses[0]), np.mean(losses), rtol=1e-6)


def gradients(variant, params):
    keras.utils.set_random_seed(0)
    model, _, output = task.build_model(variant, params, seed=0)
    x, y = np.arange(32) % 7, (np.arange(32) * 3) % 11
    with tf.GradientTape() as tape:
        model([x, y], training=True)
        loss = tf.add_n(model.losses)
    words = model.get_layer("words").embeddings
    output_grad, words_grad = tape.gradient(loss, [output.kernel, words])
    return {"output": output_grad, "words": words_grad}


def test_sampled_gradients_are_sparse_full_ones_dense():
    params = {"vocab_size": 1_000, "embed_dim": 8}
    sparse = gradients("sampled", {**params, "num_sampled": 16})
    dense = gradients("full", params)
    # The output kernel: 32 labels + 16 sampled rows, not all 1000.
    assert isinstance(sparse["output"], tf.IndexedSlices)
    assert sparse["output"].values.shape[0] == 32 + 16
    assert isinstance(dense["output"], tf.Tensor)
    assert dense["output"].shape == (1_000, 8)
    # The input embedding is sparse in both.
    assert isinstance(sparse["words"], tf.IndexedSlices)
    assert isinstance(dense["words"], tf.IndexedSlices)


def rows_moved_by_the_last_step(variant, optimizer, params, steps=2):
    """Rows of the output kernel the last of ``steps`` training steps changed."""
    keras.utils.set_random_seed(0)
    model, _, output = task.build_model(variant, params, seed=0)
    model.compile(optimizer, loss=None, jit_compile=False)
    data = task.dataset(0, params["vocab_size"], steps * task.BATCH_SIZE)
    batches = np.split(np.arange(steps * task.BATCH_SIZE), steps)
    for batch in batches:
        before = output.kernel.numpy().copy()
        model.train_on_batch([data["x"][batch], data["y"][batch]])
    moved = np.flatnonzero(np.any(output.kernel.numpy() != before, axis=1))
    return set(moved.tolist()), set(data["y"][batches[-1]].tolist())


def test_lazy_adam_updates_only_the_rows_a_step_touches():
    # With LazyAdam a step moves the rows of its labels and of its 16 sampled
    # classes only. Keras' Adam densifies the gradient and keeps moving every
    # row an earlier step touched (its momentum is not zero); the full softmax
    # moves all of them.
    params = {"vocab_size": 2_000, "embed_dim": 8, "num_sampled": 16}
    moved, labels = rows_moved_by_the_last_step("sampled", LazyAdam(0.01), params)
    assert labels <= moved and len(moved - labels) <= 16
    dense, _ = rows_moved_by_the_last_step(
        "sampled", keras.optimizers.Adam(0.01), params
    )
    assert moved < dense and len(dense) > 1.5 * len(moved)
    full, _ = rows_moved_by_the_last_step("full", keras.optimizers.Adam(0.01), params)
    assert len(full) == 2_000


def test_sampled_epochs_are_faster_than_full_ones():
    # Per step the full softmax forms [256, 20000] logits and a dense [20000,
    # 16] gradient; the sampled one [256, 65] and 320 rows. The measured gap is
    # well above 5x on an idle machine; 2x leaves room for a loaded one.
    sizes = {"vocab_size": 20_000, "pairs_per_epoch": 1_024, "embed_dim": 16}
    seconds = {
        name: training.train("sampled", variant, epochs=2, **sizes, **params).history[
            "seconds"
        ]
        for name, (variant, params) in RUNS.items()
        if name != "adam"
    }
    assert np.median(seconds["full"]) > 2 * np.median(seconds["lazy_adam"])


# ------------------------------------------------------------------ the runs


def test_every_run_lowers_its_loss_and_the_full_perplexity(runs):
    for name, result in runs.items():
        history = result.history
        assert set(history) == {"loss", "val_perplexity", "seconds"}, name
        assert all(np.isfinite(v).all() for v in history.values()), name
        assert history["loss"][-1] < history["loss"][0], name
        perplexity = history["val_perplexity"]
        # An untrained model is near uniform: perplexity near the vocabulary.
        assert perplexity[-1] < 0.5 * SMALL["vocab_size"], name
        assert perplexity[-1] < perplexity[0], name
        # No model beats the generator itself on held-out text.
        best = result.summary["the generator's own, a floor no model beats"]
        assert perplexity[-1] > best, name
        assert all(s > 0 for s in history["seconds"]), name


def test_summary_and_rows_decode_predictions(runs):
    result = runs["lazy_adam"]
    data = task.dataset(0, SMALL["vocab_size"], SMALL["pairs_per_epoch"])
    summary = dict(result.summary)
    assert summary.pop("first step, building the graph (s)") > 0
    assert summary == {
        "held-out perplexity after training": result.history["val_perplexity"][-1],
        "uniform guess (the vocabulary size)": SMALL["vocab_size"],
        "the generator's own, a floor no model beats": pytest.approx(
            data["best_perplexity"]
        ),
    }
    assert len(result.rows) == task.NUM_EXAMPLES
    for i, row in enumerate(result.rows):
        previous, following = data["x_val"][i], data["y_val"][i]
        assert row["previous word"] == task.word(previous)
        assert row["next word"] == task.word(following)
        guesses = row["top guesses"].split(", ")
        assert len(guesses) == task.TOP_K
        percents = [int(g.split("(")[1].rstrip("%)")) for g in guesses]
        assert percents == sorted(percents, reverse=True)
        assert round(100 * row["P(next), model"]) <= percents[0]
        assert row["P(next), true"] == pytest.approx(
            next_word_loop(data["successors"], previous, following)
        )
        assert row["favourite successors"] == ", ".join(
            task.word(s) for s in data["successors"][previous]
        )
    for run in runs.values():
        assert json.loads(json.dumps(run.to_dict()))["task"] == "sampled"


def test_a_fixed_seed_repeats_exactly(runs):
    # The sampled run: its candidates are drawn from the run's seed too.
    name = "lazy_adam"
    variant, params = RUNS[name]
    again = train(variant, seed=0, **params)
    other = train(variant, seed=1, **params)

    def timeless(result):
        history = {k: v for k, v in result.history.items() if k != "seconds"}
        summary = {k: v for k, v in result.summary.items() if "(s)" not in k}
        return history, summary, result.rows

    assert timeless(again) == timeless(runs[name])
    assert timeless(other) != timeless(runs[name])


def test_sampled_run_on_two_mirrored_devices():
    # Sparse gradients, LazyAdam and the layer's seed generator across
    # replicas; logical devices must be set before TensorFlow starts.
    script = textwrap.dedent(
        """
        from lossviz._tf import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from lossviz import training
        result = training.train(
            "sampled", "sampled", epochs=2, learning_rate=0.03, vocab_size=500,
            pairs_per_epoch=1024)
        assert result.device == "2 CPU devices (mirrored)", result.device
        perplexity = result.history["val_perplexity"]
        assert perplexity[-1] < min(perplexity[0], 300), perplexity
        print("ok", perplexity)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


def test_task_is_registered():
    spec = core.TASKS["sampled"]
    assert spec.variants == ("sampled", "full")
    assert spec.metrics == ("loss", "val_perplexity", "seconds")


@pytest.mark.parametrize(
    "variant, params, name",
    [
        ("sampled", {"num_sampled": 0}, "num_sampled"),
        ("sampled", {"num_sampled": 2.5}, "num_sampled"),
        ("sampled", {"num_sampled": 200, "vocab_size": 100}, "num_sampled"),
        ("sampled", {"vocab_size": 50}, "vocab_size"),
        ("full", {"vocab_size": 10**6}, "vocab_size"),
        ("full", {"embed_dim": 0}, "embed_dim"),
        ("sampled", {"pairs_per_epoch": 100}, "pairs_per_epoch"),
        ("full", {"pairs_per_epoch": 20_000}, "pairs_per_epoch"),
        ("sampled", {"optimizer": "sgd"}, "optimizer"),
        ("full", {"num_sampled": 64}, "num_sampled"),
        ("full", {"optimizer": "adam"}, "optimizer"),
    ],
)
def test_bad_params_name_the_parameter(variant, params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.train("sampled", variant, **params)
