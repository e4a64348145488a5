"""The multi-label family's training task: BP-MLL against binary cross-entropy."""

import itertools
import json

import keras
import numpy as np
import pytest
from sklearn.metrics import hamming_loss, label_ranking_loss

from lossviz import multilabel, training
from lossviz.training import core
from lossviz.training import multilabel as task

VARIANTS = ("bpmll", "bce")
SMALL = {"num_train": 64}
BEFORE = {  # history key: its summary label before and after training
    "ranking_loss": ("ranking loss before training", "ranking loss after training"),
    "hamming_loss": (
        "Hamming loss (logit > 0) before training",
        "Hamming loss (logit > 0) after training",
    ),
}


@pytest.fixture(scope="module")
def runs():
    return {v: training.train("multilabel", v, epochs=10, seed=0) for v in VARIANTS}


def ranking_loss_loop(y_true, scores):
    """Share of (positive, negative) pairs with the positive not scored higher.

    Averaged over samples; a sample without pairs counts as 0 (Tsoumakas et
    al., "Mining multi-label data", the definition scikit-learn follows).
    """
    losses = []
    for labels, row in zip(y_true, scores, strict=True):
        positives = [s for s, y in zip(row, labels, strict=True) if y]
        negatives = [s for s, y in zip(row, labels, strict=True) if not y]
        pairs = list(itertools.product(positives, negatives))
        wrong = sum(p <= n for p, n in pairs)
        losses.append(wrong / len(pairs) if pairs else 0.0)
    return float(np.mean(losses))


def hamming_loop(y_true, scores, threshold=0.0):
    decisions = [
        (s > threshold) != bool(y)
        for labels, row in zip(y_true, scores, strict=True)
        for s, y in zip(row, labels, strict=True)
    ]
    return sum(decisions) / len(decisions)


# ------------------------------------------------------------------ the data


def test_dataset_is_a_noisy_linear_map_of_the_labels():
    data = task.multilabel_dataset(
        3, num_train=300, num_labels=10, num_features=7, label_density=0.3, noise=0.0
    )
    assert data["x"].shape == (300, 7) and data["x"].dtype == np.float32
    assert data["y"].shape == (300, 10) and data["y"].dtype == np.int32
    assert data["x_heldout"].shape == (task.NUM_HELDOUT, 7)
    assert data["mixing"].shape == (10, 7)
    for x, y in ((data["x"], data["y"]), (data["x_heldout"], data["y_heldout"])):
        assert set(np.unique(y)) == {0, 1}
        assert (y.sum(axis=1) >= 1).all()  # every sample has a label
        # No noise: the features are exactly the labels through the mixing map.
        expected = np.array(
            [[sum(row[k] * data["mixing"][k, j] for k in range(10)) for j in range(7)]
             for row in y]
        )  # fmt: skip
        np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    # Each label's share is near the density (plus the label given to empty rows).
    assert 0.25 < data["y"].mean() < 0.4


def test_dataset_repeats_with_the_seed_and_keeps_its_heldout_set():
    a = task.multilabel_dataset(5, num_train=100)
    b = task.multilabel_dataset(5, num_train=100)
    c = task.multilabel_dataset(6, num_train=100)
    longer = task.multilabel_dataset(5, num_train=200)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["x"], c["x"])
    np.testing.assert_array_equal(a["x_heldout"], longer["x_heldout"])
    np.testing.assert_array_equal(a["y_heldout"], longer["y_heldout"])
    noisy = task.multilabel_dataset(5, num_train=100, noise=2.0)
    np.testing.assert_array_equal(noisy["y"], a["y"])
    residual = noisy["x"] - noisy["y"] @ noisy["mixing"]
    assert 1.7 < residual.std() < 2.3


def test_training_batches_are_one_reshuffled_pass_per_epoch():
    x = np.arange(70, dtype=np.float32).reshape(35, 2)
    y = np.arange(35, dtype=np.float32)[:, None]

    def passes(seed, count=3):
        dataset, steps = task.training_batches(x, y, seed, batch_size=8)
        assert steps == 5  # 4 full batches and one of 3
        batches = [b for _, b in dataset.take(count * steps).as_numpy_iterator()]
        return [np.concatenate(batches[i * steps : (i + 1) * steps]).ravel()
                for i in range(count)]  # fmt: skip

    first = passes(0)
    for order in first:
        assert sorted(order) == list(range(35))  # every sample once per pass
    assert not np.array_equal(first[0], first[1])  # reshuffled each pass
    for a, b in zip(first, passes(0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], passes(1)[0])


# ------------------------------------------------------------- the metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heldout_metrics_are_sklearns_and_match_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((20, 6)) < 0.4).astype(np.int32)
    y_true[0] = 0  # no positive: no pairs
    y_true[1] = 1  # no negative: no pairs
    scores = rng.integers(-2, 3, size=(20, 6)).astype(np.float32)  # many ties
    shown = task.heldout_metrics(y_true, scores)
    assert shown == {
        "ranking_loss": label_ranking_loss(y_true, scores),
        "hamming_loss": hamming_loss(y_true, scores > 0),
    }
    assert shown["ranking_loss"] == pytest.approx(ranking_loss_loop(y_true, scores))
    assert shown["hamming_loss"] == pytest.approx(hamming_loop(y_true, scores))


def test_perfect_and_reversed_rankings():
    y_true = np.array([[1, 0, 0, 1], [0, 1, 0, 0]])
    right = np.where(y_true == 1, 2.0, -2.0)
    assert task.heldout_metrics(y_true, right) == {
        "ranking_loss": 0.0,
        "hamming_loss": 0.0,
    }
    assert task.heldout_metrics(y_true, -right) == {
        "ranking_loss": 1.0,
        "hamming_loss": 1.0,
    }
    # Shifting a row changes the decisions, never the ranking.
    shifted = task.heldout_metrics(y_true, right + 3.0)
    assert shifted["ranking_loss"] == 0.0 and shifted["hamming_loss"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_best_threshold_against_every_candidate(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((15, 5)) < 0.3).astype(np.int32)
    scores = np.round(rng.normal(size=(15, 5)), 1) + (1.5 * y_true)
    threshold, loss = task.best_threshold(y_true, scores)
    assert loss == pytest.approx(hamming_loop(y_true, scores, threshold))
    values = np.unique(scores)
    candidates = [values[0] - 1, *((values[:-1] + values[1:]) / 2), values[-1] + 1]
    brute = [hamming_loss(y_true, scores > t) for t in candidates]
    assert loss == pytest.approx(min(brute))
    assert threshold == pytest.approx(candidates[int(np.argmin(brute))])


def test_reported_metrics_are_sklearns_on_the_same_predictions(monkeypatch):
    """End to end: the logged values are scikit-learn's on the logits scored."""
    scored = []

    class Recording(task.HeldOutMetrics):
        def _score(self):
            shown = super()._score()
            scored.append((self.y.copy(), self.logits.copy(), shown))
            return shown

    monkeypatch.setattr(task, "HeldOutMetrics", Recording)
    result = training.train("multilabel", "bpmll", epochs=2, seed=1, **SMALL)
    assert len(scored) == 3  # before training, then after each epoch
    for name, function in (
        ("ranking_loss", label_ranking_loss),
        ("hamming_loss", lambda y, s: hamming_loss(y, s > 0)),
    ):
        expected = [function(y, logits) for y, logits, _ in scored]
        before, after = BEFORE[name]
        assert result.history[name] == expected[1:]
        assert result.summary[before] == expected[0]
        assert result.summary[after] == expected[-1]
    y, logits, _ = scored[-1]
    assert result.history["ranking_loss"][-1] == pytest.approx(
        ranking_loss_loop(y, logits)
    )


# ---------------------------------------------------------------- the runs


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_lowers_its_loss_and_the_ranking_loss(runs, variant):
    result = runs[variant]
    history = result.history
    assert set(history) == {"loss", "ranking_loss", "hamming_loss"}
    assert result.epochs == list(range(1, 11))
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    start = result.summary["ranking loss before training"]
    assert history["ranking_loss"][-1] < 0.5 * start
    assert history["ranking_loss"][-1] < history["ranking_loss"][0]
    hamming_before = result.summary["Hamming loss (logit > 0) before training"]
    assert history["hamming_loss"][-1] < hamming_before
    assert all(np.isfinite(v).all() for v in history.values())


def test_both_start_from_the_same_model_and_data(runs):
    # Same seed: the same initial weights and held-out set, so the same start.
    before = [
        [runs[v].summary[label] for label, _ in BEFORE.values()] for v in VARIANTS
    ]
    assert before[0] == before[1]


def labels_of(text):
    return [] if text == "none" else [int(i) for i in text.split(", ")]


def test_summary_and_rows_describe_the_heldout_predictions(runs):
    for variant in VARIANTS:
        result = runs[variant]
        summary = result.summary
        assert summary["held-out samples"] == task.NUM_HELDOUT
        assert (
            summary["ranking loss after training"] == result.history["ranking_loss"][-1]
        )
        assert (
            summary["Hamming loss at the best threshold"]
            <= summary["Hamming loss (logit > 0) after training"]
        )
        assert summary["Hamming loss predicting no label"] == pytest.approx(
            summary["true labels per sample"] / task.PARAMS["num_labels"][0]
        )
        assert all(isinstance(v, int | float | str) for v in summary.values())
        assert len(result.rows) == task.NUM_EXAMPLES
        for row in result.rows:
            assert list(row) == [
                "true labels", "predicted (logit > 0)", "ranked first", "ranking loss"
            ]  # fmt: skip
            true, ranked = labels_of(row["true labels"]), labels_of(row["ranked first"])
            assert len(ranked) == len(true) >= 1
            assert 0.0 <= row["ranking loss"] <= 1.0
            if row["ranking loss"] == 0.0:  # every positive above every negative
                assert ranked == true


def test_rows_against_a_hand_made_batch():
    y_true = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]])
    logits = np.array([[2.0, -1.0, 0.5, 1.0], [-1.0, -0.5, -2.0, -3.0],
                       [3.0, 1.0, 2.0, -1.0]])  # fmt: skip
    rows = task.run_rows(y_true, logits)
    assert rows[0] == {
        "true labels": "0, 3",
        "predicted (logit > 0)": "0, 2, 3",
        "ranked first": "0, 3",
        "ranking loss": 0.0,
    }
    assert rows[1]["predicted (logit > 0)"] == "none"
    assert rows[1]["ranked first"] == "1"  # -0.5 is its highest score
    # Labels 2 and 3 are true; 0 and 1 are scored above 3: 3 of 4 pairs wrong
    # (label 2 beats label 1 but not label 0).
    assert rows[2]["ranked first"] == "0, 2"
    assert rows[2]["ranking loss"] == pytest.approx(3 / 4)


def test_results_are_plain_json(runs):
    for result in runs.values():
        assert json.loads(json.dumps(result.to_dict()))["task"] == "multilabel"


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_fixed_seed_repeats_exactly(variant):
    a = training.train("multilabel", variant, epochs=2, seed=7, **SMALL)
    b = training.train("multilabel", variant, epochs=2, seed=7, **SMALL)
    c = training.train("multilabel", variant, epochs=2, seed=8, **SMALL)
    assert a.history == b.history
    assert (a.summary, a.rows) == (b.summary, b.rows)
    assert a.history != c.history


def test_should_stop_keeps_the_epoch_and_the_summary():
    result = training.train(
        "multilabel", "bce", epochs=4, should_stop=lambda: True, **SMALL
    )
    assert result.epochs == [1]
    after = result.summary["ranking loss after training"]
    assert after == result.history["ranking_loss"][0]
    assert len(result.rows) == task.NUM_EXAMPLES


def test_each_variant_trains_with_the_loss_users_import():
    assert isinstance(task.make_loss("bpmll"), multilabel.BPMLL)
    bce = task.make_loss("bce")
    assert isinstance(bce, keras.losses.BinaryCrossentropy)
    assert bce.get_config()["from_logits"] is True
    model = task.build_model(5, 3, hidden_units=4)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation is keras.activations.linear


def test_task_is_registered():
    spec = core.TASKS["multilabel"]
    assert spec.variants == VARIANTS
    assert spec.metrics == ("loss", "ranking_loss", "hamming_loss")


@pytest.mark.parametrize(
    "params, name",
    [
        ({"num_train": 10}, "num_train"),
        ({"num_train": 10**5}, "num_train"),
        ({"num_labels": 1}, "num_labels"),
        ({"num_labels": 33}, "num_labels"),
        ({"num_labels": 4.5}, "num_labels"),
        ({"num_features": 0}, "num_features"),
        ({"label_density": 0.0}, "label_density"),
        ({"label_density": 1.0}, "label_density"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"hidden_units": 1000}, "hidden_units"),
        ({"margin": 0.1}, "margin"),
    ],
)
def test_bad_params_name_the_parameter(params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.train("multilabel", "bpmll", **params)


def test_what_the_page_says_about_the_two_runs(runs):
    # Cross-entropy ranks at least as well; BP-MLL's scores are not tied to 0,
    # so its decisions at 0 lose much more to the best single threshold.
    bpmll, bce = (runs[v] for v in VARIANTS)
    assert bce.history["ranking_loss"][-1] <= bpmll.history["ranking_loss"][-1]

    def threshold_gap(result):
        summary = result.summary
        return (
            summary["Hamming loss (logit > 0) after training"]
            - summary["Hamming loss at the best threshold"]
        )

    assert threshold_gap(bpmll) > 3 * threshold_gap(bce)
    assert threshold_gap(bpmll) > 0.02
