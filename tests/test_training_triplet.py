"""The triplet family's training task: QA retrieval and a masked LM."""

import json

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from lossviz import registry, training
from lossviz.training import core
from lossviz.training import triplet as task

# The page's margin slider ends where the registry's range does; so does training.
MARGIN_HIGH = registry.get("cosine_triplet_loss").param("margin").ui_range[1]
QUESTION_WORD_TOPIC = {q: name for name, (q, _) in task.TOPICS.items()}
ANSWER_WORD_TOPIC = {a: name for name, (_, a) in task.TOPICS.items()}


def topics_of(ids, word_topic):
    """The topics a bag of word ids is about, read back from its words."""
    words = [task.QA_VOCABULARY[i] for i in ids if i != 0]
    return frozenset(word_topic[w] for w in words if w in word_topic)


@pytest.fixture(scope="module")
def triplet_run():
    return training.train("triplet", "triplet", epochs=5, seed=0)


@pytest.fixture(scope="module")
def masked_lm_run():
    return training.train("triplet", "masked_lm", epochs=5, seed=0)


# ------------------------------------------------------------------ the data


def test_qa_dataset_holds_out_topic_pairs_never_seen_in_training():
    data = task.qa_dataset(0, num_train=256, num_answers=16, hard_share=0.5)
    assert data["question"].shape == (256, task.QA_MAX_LEN)
    assert data["heldout_answer"].shape == (16, task.QA_MAX_LEN)
    names = task.TOPIC_NAMES
    heldout = {frozenset(names[t] for t in pair) for pair in data["heldout_topics"]}
    assert len(heldout) == 16  # one right answer per held-out question
    for i in range(16):
        # Read back from the words: the question and its answer agree.
        q = topics_of(data["heldout_question"][i], QUESTION_WORD_TOPIC)
        a = topics_of(data["heldout_answer"][i], ANSWER_WORD_TOPIC)
        assert q == a == {names[t] for t in data["heldout_topics"][i]}
    for question, positive, negative in zip(
        data["question"], data["positive"], data["negative"], strict=True
    ):
        q = topics_of(question, QUESTION_WORD_TOPIC)
        assert len(q) == task.TOPICS_PER_PAIR
        assert q not in heldout
        assert topics_of(positive, ANSWER_WORD_TOPIC) == q
        assert topics_of(negative, ANSWER_WORD_TOPIC) != q


@pytest.mark.parametrize("hard_share, shared", [(1.0, 1), (0.0, None)])
def test_hard_negatives_share_one_topic(hard_share, shared):
    data = task.qa_dataset(3, num_train=200, num_answers=32, hard_share=hard_share)
    overlaps = [
        len(
            topics_of(question, QUESTION_WORD_TOPIC)
            & topics_of(negative, ANSWER_WORD_TOPIC)
        )
        for question, negative in zip(data["question"], data["negative"], strict=True)
    ]
    if shared is None:
        assert set(overlaps) == {0, 1}  # random negatives: some share a topic
    else:
        assert set(overlaps) == {shared}


def test_qa_bags_are_padded_at_the_end_and_repeat_with_the_seed():
    a = task.qa_dataset(5, num_train=64, num_answers=8)
    b = task.qa_dataset(5, num_train=64, num_answers=8)
    c = task.qa_dataset(6, num_train=64, num_answers=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["question"], c["question"])
    for row in a["question"]:
        length = int((row != 0).sum())
        assert 1 + task.TOPICS_PER_PAIR <= length <= task.QA_MAX_LEN
        assert (row[:length] != 0).all() and (row[length:] == 0).all()


def test_counting_sequences_against_a_plain_loop():
    tokens, targets = task.counting_sequences(np.random.default_rng(1), 50)
    assert tokens.shape == targets.shape == (50, task.LM_MAX_LEN)
    for row_tokens, row_targets in zip(tokens, targets, strict=True):
        length = int((row_tokens != 0).sum())
        assert task.LM_MIN_LEN <= length <= task.LM_MAX_LEN
        assert (row_targets != 0).sum() == length
        step = (row_targets[0] - row_tokens[0]) % task.CLOCK
        assert step in task.STEPS
        hour = int(row_tokens[0])
        for t in range(length):
            assert row_tokens[t] == hour
            hour = (hour - 1 + step) % task.CLOCK + 1
            assert row_targets[t] == hour
        assert (row_tokens[length:] == 0).all() and (row_targets[length:] == 0).all()


# ----------------------------------------------------------------- retrieval


def test_retrieval_scores_and_recall_against_sklearn_and_a_loop():
    rng = np.random.default_rng(0)
    questions = rng.normal(size=(6, 4)).astype(np.float32)
    answers = rng.normal(size=(6, 4)).astype(np.float32)
    answers[2] = 0.0  # an empty answer: cosine 0, not NaN

    def identity(x, training=False):
        return x

    scores = task.retrieval_scores(identity, identity, questions, answers)
    np.testing.assert_allclose(scores, sk_cosine(questions, answers), atol=1e-6)
    expected = np.mean([np.argmax(row) == i for i, row in enumerate(scores)])
    assert task.recall_at_1(scores) == pytest.approx(expected)
    assert task.recall_at_1(np.eye(5)) == 1.0
    assert task.recall_at_1(np.eye(5)[::-1]) == pytest.approx(0.2)  # the middle row


def test_recall_at_1_is_well_above_chance_and_above_its_start(triplet_run):
    summary = triplet_run.summary
    assert summary["held-out answers"] == 32
    chance = 1 / summary["held-out answers"]
    assert summary["chance"] == pytest.approx(chance)
    recall = triplet_run.history["recall_at_1"]
    assert len(recall) == 5
    assert summary["… after"] == recall[-1]
    assert recall[-1] >= 8 * chance
    assert recall[-1] > summary["held-out recall@1 before training"]


def test_retrieval_rows_show_the_answer_ranked_first(triplet_run):
    rows = triplet_run.rows
    assert len(rows) == task.NUM_EXAMPLES
    assert all(row["cos first"] >= row["cos right"] for row in rows)
    for row in rows:
        assert row["right?"] == (row["ranked first"] == row["right answer"])
        # The topics read back from the question's words.
        words = [task._QA_IDS[w] for w in row["question"].split()]
        topics = topics_of(words, QUESTION_WORD_TOPIC)
        assert set(row["topics"].split(" + ")) == topics


def test_triplet_lowers_its_loss(triplet_run):
    loss = triplet_run.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert set(triplet_run.history) == {"loss", "recall_at_1"}
    assert np.isfinite(loss).all()


def test_at_margin_zero_the_loss_vanishes_and_recall_stalls():
    # What the page says: at margin 0 the training triplets are soon all
    # satisfied, their gradient is 0, and a larger margin keeps learning.
    zero = training.train("triplet", "triplet", epochs=5, seed=0, margin=0.0)
    wide = training.train("triplet", "triplet", epochs=5, seed=0, margin=1.0)
    assert zero.history["loss"][-1] < 0.01
    assert wide.history["loss"][-1] > 0.1
    assert wide.history["recall_at_1"][-1] > 2 * zero.history["recall_at_1"][-1]


# ----------------------------------------------------------------- masked LM


def test_masked_lm_lowers_loss_and_perplexity(masked_lm_run):
    history = masked_lm_run.history
    assert set(history) == {"loss", "perplexity", "masked_accuracy"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    perplexity = history["perplexity"]
    assert all(b < a for a, b in zip(perplexity, perplexity[1:], strict=False))
    assert perplexity[-1] < 0.5 * perplexity[0]
    # Perplexity is exp of the token-mean cross-entropy: at most the number
    # of classes for a model no better than uniform, at least 1.
    assert 1.0 <= perplexity[-1] < task.LM_VOCAB_SIZE
    assert history["masked_accuracy"][-1] > history["masked_accuracy"][0]


def test_masked_lm_rows_decode_next_tokens(masked_lm_run):
    rows = masked_lm_run.rows
    assert len(rows) == task.NUM_EXAMPLES
    for row in rows:
        targets, predicted = row["next tokens"].split(), row["predicted"].split()
        assert len(targets) == len(predicted) == len(row["input"].split())
        hits = np.mean([t == p for t, p in zip(targets, predicted, strict=True)])
        assert row["accuracy"] == pytest.approx(hits)


def test_masked_lm_summary_is_the_held_out_accuracy(masked_lm_run):
    summary = masked_lm_run.summary
    tokens, targets = task.counting_sequences(core.rng(0, salt=4), task.LM_HELDOUT)
    assert summary["held-out tokens"] == int((targets != 0).sum())
    assert summary["chance"] == pytest.approx(1 / task.CLOCK)
    # Every next token but a row's first follows from the two before it.
    assert summary["… after"] > 0.5
    assert summary["… after"] > summary["held-out next-token accuracy before training"]


def test_next_token_accuracy_counts_only_real_targets():
    predicted = np.array([[3, 4, 0, 9], [1, 1, 1, 1]])
    targets = np.array([[3, 5, 0, 0], [1, 2, 0, 0]])
    assert task.next_token_accuracy(predicted, targets) == pytest.approx(2 / 4)


# ------------------------------------------------------------- both variants


def test_results_are_plain_json(triplet_run, masked_lm_run):
    for result in (triplet_run, masked_lm_run):
        assert json.loads(json.dumps(result.to_dict()))["task"] == "triplet"


@pytest.mark.parametrize(
    "variant, params",
    [("triplet", {"margin": 0.3, "num_train": 64}), ("masked_lm", {"num_train": 64})],
)
def test_a_fixed_seed_repeats_exactly(variant, params):
    a = training.train("triplet", variant, epochs=2, seed=7, **params)
    b = training.train("triplet", variant, epochs=2, seed=7, **params)
    c = training.train("triplet", variant, epochs=2, seed=8, **params)
    assert a.history == b.history
    assert (a.summary, a.rows) == (b.summary, b.rows)
    assert a.history != c.history


def test_should_stop_keeps_the_epoch_and_the_summary():
    result = training.train(
        "triplet", "triplet", epochs=4, num_train=64, should_stop=lambda: True
    )
    assert result.epochs == [1]
    assert len(result.history["recall_at_1"]) == 1
    assert result.summary["… after"] == result.history["recall_at_1"][0]
    assert len(result.rows) == task.NUM_EXAMPLES


def test_every_margin_the_page_offers_trains():
    result = training.train(
        "triplet", "triplet", epochs=1, num_train=64, margin=MARGIN_HIGH
    )
    assert result.params == {"margin": MARGIN_HIGH, "num_train": 64}
    assert np.isfinite(result.history["loss"]).all()


def test_task_is_registered():
    spec = core.TASKS["triplet"]
    assert spec.variants == ("triplet", "masked_lm")
    assert spec.metrics == ("loss", "recall_at_1", "perplexity", "masked_accuracy")


@pytest.mark.parametrize(
    "variant, params, name",
    [
        ("triplet", {"margin": -0.1}, "margin"),
        ("triplet", {"margin": MARGIN_HIGH + 0.05}, "margin"),
        ("triplet", {"num_train": 10}, "num_train"),
        ("triplet", {"num_train": 10**6}, "num_train"),
        ("triplet", {"num_answers": 100}, "num_answers"),
        ("triplet", {"num_answers": 2.5}, "num_answers"),
        ("triplet", {"embed_dim": 0}, "embed_dim"),
        ("triplet", {"hard_share": 1.5}, "hard_share"),
        ("triplet", {"hidden_units": 8}, "hidden_units"),
        ("masked_lm", {"hidden_units": 0}, "hidden_units"),
        ("masked_lm", {"num_train": 5000}, "num_train"),
        ("masked_lm", {"margin": 0.1}, "margin"),
    ],
)
def test_bad_params_name_the_parameter(variant, params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.train("triplet", variant, **params)
