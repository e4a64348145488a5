"""lossviz.explore.attempts: each broken attempt fails the way it says, live.

Every family's attempts run once (a module-scoped fixture); the tests check
the outcome's kind, a robust piece of the real message or number, and
lossviz's fix on the same data against numpy.
"""

import ast
import importlib
import inspect
import textwrap

import numpy as np
import pytest

from lossviz._tf import tf
from lossviz.explore import attempts
from lossviz.explore.attempts import (
    FAMILIES,
    KINDS,
    Outcome,
    error_line,
    multilabel,
    sampled,
    sequence,
    sharpen,
    triplet,
)


@pytest.fixture(scope="module")
def outcomes():
    """``{family: {key: outcome}}``, each family run once on seed 0."""
    runs = {}

    def get(family):
        if family not in runs:
            module = importlib.import_module(f"lossviz.explore.attempts.{family}")
            runs[family] = {a.key: o for a, o in module.run_all(seed=0)}
        return runs[family]

    return get


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_line(text):
    return bool(text) and "\n" not in text


# --------------------------------------------------------------------------
# What every family promises.


@pytest.mark.parametrize("family", FAMILIES)
def test_each_attempt_shows_the_very_code_that_runs(family):
    module = importlib.import_module(f"lossviz.explore.attempts.{family}")
    assert module.ATTEMPTS
    keys = [a.key for a in module.ATTEMPTS]
    assert len(keys) == len(set(keys))
    for a in module.ATTEMPTS:
        source = textwrap.dedent(inspect.getsource(a.function)).strip() + "\n"
        assert a.code == source
        assert a.function.__module__ == module.__name__
        ast.parse(a.code)
        assert all(map(one_line, (a.title, a.why, a.fix))), a.key
        assert "lossviz" in a.fix, a.key
        assert a.task in (None, "categorical", "sparse", "multilabel", "regression")
        assert (a.task is None) == (a.outputs is None)


@pytest.mark.parametrize("family", FAMILIES)
def test_run_all_pairs_every_attempt_with_a_real_failure(family, outcomes):
    module = importlib.import_module(f"lossviz.explore.attempts.{family}")
    ran = outcomes(family)
    assert list(ran) == [a.key for a in module.ATTEMPTS]
    for key, outcome in ran.items():
        assert isinstance(outcome, Outcome)
        # "ok" would mean the attempt no longer fails as its `why` says.
        assert outcome.kind in KINDS and outcome.kind != "ok", (key, outcome.message)
        assert one_line(outcome.message), key
        assert (outcome.error_type is not None) == (outcome.kind == "error"), key
        if outcome.error_type:
            assert outcome.message.startswith(outcome.error_type + ": "), key
        assert all(len(d) == 2 and one_line(d[1]) for d in outcome.details), key
        assert one_line(outcome.fix_message), key


def test_an_outcome_kind_is_checked():
    with pytest.raises(ValueError, match="kind"):
        Outcome(kind="broken", message="x")


def test_error_line_unwraps_tensorflow_and_keras():
    @tf.function(autograph=False)
    def evaluate(x):
        return x.eval()

    _, error = attempts.capture(evaluate, tf.constant(1.0))
    assert error_line(error).startswith("Cannot evaluate tensor using `eval()`")
    _, error = attempts.capture(tf.math.divide, tf.ones([2, 3]), tf.ones([2]))
    line = error_line(error)
    assert line.startswith("Incompatible shapes") and "function_node" not in line
    assert not line.endswith("name:")
    assert error_line(NotImplementedError()) == "(raised with an empty message)"


# --------------------------------------------------------------------------
# sharpen


def test_sharpen_argmax_lookup_has_no_gradient_and_the_fix_has_one(outcomes):
    outcome = outcomes("sharpen")["argmax_lookup"]
    assert outcome.kind == "no_gradient"
    assert "None" in outcome.message
    assert outcome.numbers["fix_grad_norm"] > 0
    assert np.all(np.isfinite(outcome.fix_value))


def test_sharpen_without_keepdims_raises_or_divides_the_wrong_entries(outcomes):
    ran = outcomes("sharpen")
    batch = sharpen.example_batch(0)
    error = ran["no_keepdims"]
    assert error.kind == "error" and error.error_type == "InvalidArgumentError"
    assert "Incompatible shapes" in error.message
    square = ran["no_keepdims_square"]
    assert square.kind == "wrong"
    # numpy broadcasts the same way: entry [i, j] over row j's sum.
    raised = batch.square_probs.astype(np.float64) ** sharpen.POWER
    wrong_sums = (raised / raised.sum(axis=1)).sum(axis=1)
    worst = wrong_sums[np.argmax(np.abs(wrong_sums - 1))]
    np.testing.assert_allclose(square.numbers["worst_row_sum"], worst, rtol=1e-4)
    assert abs(worst - 1) > 0.1
    expected = softmax(sharpen.POWER * np.log(batch.square_probs.astype(np.float64)))
    np.testing.assert_allclose(square.fix_value, expected, rtol=1e-4, atol=1e-6)


def test_sharpen_high_power_is_nan_where_lossviz_is_finite(outcomes):
    outcome = outcomes("sharpen")["high_power"]
    batch = sharpen.example_batch(0)
    assert outcome.kind == "nan"
    assert outcome.numbers["nan_count"] > 0 and outcome.numbers["fix_nan_count"] == 0
    expected = softmax(sharpen.HIGH_POWER * np.log(batch.probs.astype(np.float64)))
    np.testing.assert_allclose(outcome.fix_value, expected, atol=1e-5)


def test_sharpen_tiled_lookup_wastes_memory_for_the_same_values(outcomes):
    outcome = outcomes("sharpen")["tiled_embedding"]
    batch = sharpen.example_batch(0)
    assert outcome.kind == "waste"
    b, v = batch.probs.shape
    d = batch.embedding.shape[1]
    assert outcome.numbers["bytes_used"] == b * v * d * 4
    assert outcome.numbers["bytes_needed"] == v * d * 4
    assert outcome.numbers["max_abs_difference"] < 1e-5
    np.testing.assert_allclose(
        outcome.fix_value, batch.probs @ batch.embedding, rtol=1e-5, atol=1e-6
    )


# --------------------------------------------------------------------------
# sampled


def full_cross_entropy(weights, biases, labels, hidden):
    logits = hidden.astype(np.float64) @ weights.T.astype(np.float64) + biases
    top = logits.max(-1)
    log_total = top + np.log(np.exp(logits - top[:, None]).sum(-1))
    return log_total - np.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def test_sampled_softmax_is_not_in_keras(outcomes):
    outcome = outcomes("sampled")["missing_api"]
    assert outcome.kind == "error" and outcome.error_type == "AttributeError"
    assert "sampled_softmax" in outcome.message
    assert outcome.numbers["in_keras_ops"] == 0
    assert outcome.fix_value.shape == (sampled.NUM_SAMPLES,)
    assert np.all(np.isfinite(outcome.fix_value))
    batch = sampled.example_batch(0)
    full = full_cross_entropy(batch.weights, batch.biases, batch.labels, batch.hidden)
    np.testing.assert_allclose(outcome.numbers["fix_full_loss"], full.mean(), 1e-5)


def test_sampled_logits_and_kernel_as_inputs_fail_in_the_gather(outcomes):
    outcome = outcomes("sampled")["logits_as_inputs"]
    assert outcome.kind == "error" and outcome.error_type == "InvalidArgumentError"
    # The ids index the [dim, classes] kernel's rows: only `dim` of them exist.
    assert f"is not in [0, {sampled.HIDDEN_DIM})" in outcome.message


def test_sampled_one_hot_targets_cost_bytes(outcomes):
    outcome = outcomes("sampled")["one_hot_targets"]
    assert outcome.kind == "waste"
    samples, classes = sampled.NUM_SAMPLES, sampled.NUM_CLASSES
    assert outcome.numbers["bytes_used"] == samples * classes * 4
    assert outcome.numbers["bytes_needed"] == samples * 8
    assert np.isfinite(outcome.numbers["loss"])


def test_sampled_dummy_loss_reports_the_mean_output(outcomes):
    outcome = outcomes("sampled")["dummy_loss"]
    numbers = outcome.numbers
    assert outcome.kind == "wrong"
    np.testing.assert_allclose(numbers["reported_loss"], 1 / sampled.NUM_CLASSES, 1e-5)
    assert numbers["reported_loss_shuffled_labels"] == pytest.approx(
        numbers["reported_loss"]
    )
    assert numbers["grad_norm"] < 1e-6
    assert numbers["full_loss"] > 1.0 and np.isfinite(numbers["sampled_loss"])


def test_sampled_3d_outputs_break_tf_nn_and_not_lossviz(outcomes):
    outcome = outcomes("sampled")["sequence_outputs"]
    assert outcome.kind == "error" and outcome.error_type == "InvalidArgumentError"
    assert "true_classes" in outcome.message
    details = dict(outcome.details)
    assert any(v.startswith("runs") for v in details.values())  # the 2-D case
    assert outcome.fix_value.shape == (sampled.NUM_SAMPLES, sampled.TIME_STEPS)
    assert np.all(np.isfinite(outcome.fix_value))
    assert outcome.numbers["inference_rank"] == 3


# --------------------------------------------------------------------------
# sequence


def weighted_masked_ce(targets, logits, weights, pad_id):
    log_probs = np.log(softmax(logits.astype(np.float64)))
    ce = -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    mask = targets != pad_id
    terms = mask * weights[targets] * ce
    return terms.sum(-1) / np.maximum(mask.sum(-1), 1)


def test_sequence_eval_has_no_session(outcomes):
    outcome = outcomes("sequence")["eval_in_loss"]
    details = dict(outcome.details)
    assert outcome.kind == "error" and outcome.error_type == "ValueError"
    assert "No default session" in outcome.message
    assert details["eagerly"].startswith("NotImplementedError")
    batch = sequence.example_batch(0)
    weights = np.ones(sequence.NUM_CLASSES)
    weights[sequence.END_ID] = sequence.END_WEIGHT
    expected = weighted_masked_ce(batch.targets, batch.logits, weights, sequence.PAD_ID)
    np.testing.assert_allclose(outcome.fix_value, expected, rtol=1e-5)


def test_sequence_python_loop_runs_eagerly_and_fails_in_fit(outcomes):
    outcome = outcomes("sequence")["python_loop"]
    assert outcome.kind == "error" and outcome.error_type == "TypeError"
    assert "cannot be interpreted as an integer" in outcome.message
    assert any("OperatorNotAllowedInGraphError" in v for _, v in outcome.details)
    batch = sequence.example_batch(0)
    n = sequence.LOOP_SEQUENCES
    probs = softmax(batch.logits[:n].astype(np.float64))
    picked = np.take_along_axis(probs, batch.targets[:n, :, None], -1)[..., 0]
    weights = np.where(batch.targets[:n] == sequence.END_ID, sequence.END_WEIGHT, 1)
    expected = np.mean(weights * -np.log(picked))
    np.testing.assert_allclose(outcome.numbers["eager_value"], expected, rtol=1e-5)


def test_sequence_class_weight_is_looked_up_at_the_argmax_over_time(outcomes):
    outcome = outcomes("sequence")["class_weight_ids"]
    numbers = outcome.numbers
    assert outcome.kind == "error"
    assert "Incompatible shapes" in outcome.message or "Dimensions" in outcome.message
    np.testing.assert_allclose(
        numbers["reported_loss"], numbers["if_weighted_by_argmax_position"], rtol=1e-4
    )
    batch = sequence.example_batch(0)
    positions = np.argmax(batch.targets, axis=-1)
    assert numbers["sequences_weighted"] == np.sum(positions == sequence.END_ID) > 0
    assert not np.isclose(
        numbers["reported_loss"], numbers["if_weighted_by_end_token"], rtol=1e-2
    )


def test_sequence_class_weight_with_one_hot_targets_fails(outcomes):
    outcome = outcomes("sequence")["class_weight_one_hot"]
    assert outcome.kind == "error" and outcome.error_type == "TypeError"
    assert "converted to Python scalars" in outcome.message
    assert np.all(np.isfinite(outcome.fix_value))


def test_sequence_end_token_padding_fills_the_loss_with_end_tokens(outcomes):
    outcome = outcomes("sequence")["pad_with_end"]
    batch = sequence.example_batch(0)
    assert outcome.kind == "wrong"
    lengths = np.array([len(s) for s in batch.sequences])
    ends = len(lengths) + np.sum(sequence.MAX_LEN - lengths)
    assert outcome.numbers["end_tokens"] == ends
    assert outcome.numbers["end_share"] == pytest.approx(ends / batch.targets.size)
    assert outcome.numbers["fix_end_share"] == pytest.approx(
        len(lengths) / lengths.sum()
    )
    assert outcome.numbers["end_share"] > 2 * outcome.numbers["fix_end_share"]
    expected = weighted_masked_ce(
        batch.targets, batch.logits, np.ones(sequence.NUM_CLASSES), sequence.PAD_ID
    )
    np.testing.assert_allclose(outcome.fix_value, expected, rtol=1e-5)


# --------------------------------------------------------------------------
# triplet


def test_triplet_helper_without_return_gives_none(outcomes):
    outcome = outcomes("triplet")["no_return"]
    details = dict(outcome.details)
    assert outcome.kind == "error" and outcome.error_type == "ValueError"
    assert "None values not supported" in outcome.message
    assert details["called directly"] == "returns None"
    assert "add_loss" in details["self.add_loss(...) inside a layer"]


def test_triplet_zero_mask_row_is_nan_and_lossviz_is_zero(outcomes):
    outcome = outcomes("triplet")["zero_mask"]
    numbers = outcome.numbers
    assert outcome.kind == "nan"
    assert numbers["nan_values"] == 1 and numbers["nan_gradients"] > 0
    assert np.isnan(numbers["batch_mean"])
    assert numbers["fix_nan_gradients"] == 0
    assert numbers["fix_padding_row_value"] == 0.0
    assert numbers["fix_padding_row_grad_norm"] == 0.0
    batch = triplet.example_batch(0)
    ones = np.ones(triplet.VOCAB_SIZE)
    expected = weighted_masked_ce(batch.targets, batch.logits, ones, triplet.PAD_ID)
    np.testing.assert_allclose(outcome.fix_value, expected, rtol=1e-5)


def test_triplet_keras2_loss_and_metric_plumbing_is_gone(outcomes):
    ran = outcomes("triplet")
    add_loss = ran["model_add_loss"]
    assert add_loss.kind == "error" and add_loss.error_type == "NotImplementedError"
    assert dict(add_loss.details)["raised in"].endswith("add_loss")
    metrics = ran["metrics_tensors"]
    assert metrics.kind == "error" and metrics.error_type == "AttributeError"
    assert "metrics_tensors" in metrics.message
    assert metrics.numbers["perplexity_listed"] == 0
    for outcome in (add_loss, metrics):
        assert "perplexity" in outcome.fix_message
        assert np.all(np.isfinite(outcome.fix_value))


# --------------------------------------------------------------------------
# multilabel


def bpmll_reference(labels, logits):
    out = []
    for y, c in zip(labels > 0.5, logits.astype(np.float64), strict=True):
        pos, neg = c[y], c[~y]
        pairs = np.exp(-(pos[:, None] - neg[None, :]))
        out.append(pairs.mean() if pairs.size else 0.0)
    return np.array(out)


def test_multilabel_loop_over_a_tensor_fails_in_fit(outcomes):
    outcome = outcomes("multilabel")["python_loop"]
    assert outcome.kind == "error" and outcome.error_type == "TypeError"
    assert "cannot be interpreted as an integer" in outcome.message
    details = dict(outcome.details)
    assert details["eagerly"].startswith("runs")
    assert outcome.numbers["eager_max_difference_from_fix"] < 1e-4
    batch = multilabel.example_batch(0)
    expected = bpmll_reference(batch.labels, batch.logits)
    np.testing.assert_allclose(outcome.fix_value, expected, rtol=1e-5)


def test_multilabel_flipped_sign_lowers_the_loss_and_the_ranking(outcomes):
    numbers = outcomes("multilabel")["flipped_sign"].numbers
    assert numbers["loss_after"] < numbers["loss_before"]
    assert numbers["ranking_after"] < numbers["ranking_before"]
    assert numbers["fix_loss_after"] < numbers["fix_loss_before"]
    assert numbers["fix_ranking_after"] > numbers["ranking_before"]
    batch = multilabel.example_batch(0)
    assert numbers["ranking_before"] == pytest.approx(
        multilabel.ranking_share(batch.labels, batch.logits)
    )


def test_ranking_share_counts_positive_negative_pairs():
    labels = np.array([[1, 0, 0], [0, 1, 1]])
    logits = np.array([[2.0, 1.0, 3.0], [0.0, 1.0, -1.0]])
    assert multilabel.ranking_share(labels, logits) == pytest.approx(2 / 4)


def test_multilabel_upper_triangle_pairs_the_wrong_sets(outcomes):
    outcome = outcomes("multilabel")["upper_triangle"]
    batch = multilabel.example_batch(0)
    labels = multilabel.NUM_LABELS
    positives = batch.labels.sum(axis=1)
    assert outcome.kind == "wrong"
    assert outcome.numbers["pairs_used_row"] == labels * (labels - 1) / 2
    assert outcome.numbers["pairs_used"] == len(positives) * labels * (labels - 1) / 2
    assert outcome.numbers["positive_negative_pairs"] == np.sum(
        positives * (labels - positives)
    )


def test_multilabel_outer_product_is_one_nan_for_the_batch(outcomes):
    outcome = outcomes("multilabel")["outer_product"]
    assert outcome.kind == "nan"
    assert outcome.numbers["rank"] == 0 and outcome.numbers["nan_count"] == 1
    batch = multilabel.example_batch(0)
    expected = bpmll_reference(batch.no_positive, batch.logits)
    assert expected[multilabel.DEGENERATE_ROW] == 0
    np.testing.assert_allclose(outcome.fix_value, expected, rtol=1e-5, atol=1e-7)
    clean = bpmll_reference(batch.labels, batch.logits)
    np.testing.assert_allclose(outcome.numbers["clean_value"], clean.sum(), rtol=1e-5)
