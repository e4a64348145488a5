"""lossviz.probe: the battery of checks on a user's loss, its fixtures and its CLI.

The user-style losses live in tests/fixtures/probe_losses.py, imported by
path as user code; the broken attempts of lossviz.explore.attempts that are
(y_true, y_pred) losses are probed too. Each check has a loss that passes it
and one that fails (or warns) it.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import lossviz
from lossviz import probe, registry
from lossviz.__main__ import main
from lossviz.explore.attempts import multilabel as multilabel_attempts
from lossviz.explore.attempts import sampled as sampled_attempts

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "probe_losses.py"


def fixture(name):
    """A loss from the fixtures file, imported as ``probe`` imports user code."""
    return probe.load_target(f"{FIXTURES}:{name}")


ATTEMPTS = {
    a.key: a
    for a in (*multilabel_attempts.ATTEMPTS, *sampled_attempts.ATTEMPTS)
    if a.task is not None
}


def resolve(ref):
    """``"fixtures:NAME"``, ``"attempt:KEY"`` or the loss itself."""
    if isinstance(ref, str) and ref.startswith("fixtures:"):
        return fixture(ref.split(":", 1)[1])
    if isinstance(ref, str) and ref.startswith("attempt:"):
        return ATTEMPTS[ref.split(":", 1)[1]].function
    return ref


_square = np.random.default_rng(3)
SQUARE_INPUTS = {  # batch == classes: a missing keepdims broadcasts silently
    "y_true": np.eye(5)[_square.integers(0, 5, 5)],
    "y_pred": _square.normal(size=(5, 5)),
}


@functools.cache
def report_for(ref, task, outputs="logits", inputs=None):
    kwargs = {"square": SQUARE_INPUTS}.get(inputs, {})
    return probe.probe(resolve(ref), task, outputs=outputs, **kwargs)


# --- sound losses pass every check --------------------------------------------------

SOUND = [
    ("fixtures:softmax_crossentropy", "categorical", "logits"),
    ("fixtures:clipped_crossentropy", "categorical", "probabilities"),
    ("fixtures:huber", "regression", "logits"),
    ("fixtures:ScaledCrossentropy", "categorical", "logits"),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse", "logits"),
    (keras.losses.BinaryCrossentropy(from_logits=True), "multilabel", "logits"),
]


@pytest.mark.parametrize("ref, task, outputs", SOUND, ids=lambda v: str(v)[:40])
def test_a_sound_loss_passes_every_check(ref, task, outputs):
    report = report_for(ref, task, outputs)
    assert [c.name for c in report.checks] == list(probe.CHECKS)
    assert report.verdict == "All 13 checks pass.", probe.format_report(report)
    assert report.ok


def test_a_registered_loss_class_passes_serialization_and_a_function_is_told_why_not():
    cls = report_for("fixtures:ScaledCrossentropy", "categorical").check(
        "serialization"
    )
    assert cls.status == "pass" and ".keras" in cls.detail
    fn = report_for("fixtures:softmax_crossentropy", "categorical")
    assert fn.check("serialization").status == "pass"
    assert "Does not apply to a plain function" in fn.check("serialization").detail


# --- each mistake fails (or warns) the check named for it ---------------------------

# (loss, task, outputs, inputs, check, status, words in the detail)
MISTAKES = [
    ("fixtures:argmax_lookup", "categorical", "logits", None,
     "gradient_exists", "fail", "is None"),
    ("fixtures:softmax_without_keepdims", "categorical", "logits", None,
     "call", "fail", "Incompatible shapes"),
    ("fixtures:softmax_without_keepdims", "categorical", "logits", "square",
     "per_sample_independent", "fail", "changes from"),
    ("fixtures:naive_power_crossentropy", "categorical", "probabilities", None,
     "finite_extreme", "fail", "y_true=[0, 1, 0, 0, 0]"),
    ("fixtures:bpmll_flipped", "multilabel", "logits", None,
     "descent", "fail", "above random predictions"),
    ("attempt:flipped_sign", "multilabel", "logits", None,
     "descent", "fail", "a flipped sign?"),
    ("fixtures:bpmll_divide", "multilabel", "logits", None,
     "finite_degenerate", "fail", "no positive label"),
    ("attempt:outer_product", "multilabel", "logits", None,
     "finite_degenerate", "fail", "y_true=[0, 0, 0, 0, 0]"),
    ("fixtures:eval_in_loss", "regression", "logits", None,
     "graph_mode", "fail", "eval()"),
    ("fixtures:numpy_in_loss", "regression", "logits", None,
     "graph_mode", "fail", "numpy"),
    ("fixtures:python_if_on_tensor", "regression", "logits", None,
     "graph_mode", "fail", "Python `bool`"),
    ("attempt:python_loop", "multilabel", "logits", None,
     "graph_mode", "fail", "cannot be interpreted as an integer"),
    ("fixtures:mse_without_return", "regression", "logits", None,
     "call", "fail", "returns None"),
    ("fixtures:log_cosh_wrong_gradient", "regression", "logits", None,
     "gradient_matches_numeric", "fail", "by central differences"),
    ("fixtures:mse_flipped_gradient", "regression", "logits", None,
     "descent", "fail", "points uphill"),
    ("fixtures:batch_normalised_bce", "multilabel", "logits", None,
     "per_sample_independent", "fail", "when the other samples change"),
    ("fixtures:mse_scalar", "regression", "logits", None,
     "call", "warn", "sum_over_batch_size"),
    ("attempt:dummy_loss", "sparse", "probabilities", None,
     "call", "warn", "scalar"),
    ("attempt:dummy_loss", "sparse", "probabilities", None,
     "descent", "fail", "the same as random"),
    ("fixtures:crossentropy_on_logits", "categorical", "logits", None,
     "finite_typical", "fail", "NaN"),
    ("fixtures:numpy_weighted_crossentropy", "categorical", "logits", None,
     "xla", "warn", "PyFunc"),
    ("fixtures:mse_float32_width", "regression", "logits", None,
     "dtypes", "warn", "float16"),
    ("fixtures:UnregisteredCrossentropy", "categorical", "logits", None,
     "serialization", "fail", "register_keras_serializable"),
    ("fixtures:FORGETFUL", "categorical", "logits", None,
     "serialization", "fail", "get_config misses a parameter"),
    ("fixtures:NeedsMargin", "categorical", "logits", None,
     "call", "fail", "pass an instance"),
    ("fixtures:mse_without_return", "regression", "logits", None,
     "speed", "fail", "Not run"),
]  # fmt: skip


@pytest.mark.parametrize(
    "ref, task, outputs, inputs, name, status, words",
    MISTAKES,
    ids=[
        f"{m[0].split(':')[1]}-{m[4]}" + ("-square" if m[3] else "") for m in MISTAKES
    ],
)
def test_a_mistake_fails_the_check_named_for_it(
    ref, task, outputs, inputs, name, status, words
):
    result = report_for(ref, task, outputs, inputs).check(name)
    assert result.status == status, result
    assert words in result.detail


def test_every_check_has_a_loss_that_passes_it_and_one_that_does_not():
    failed_or_warned = {m[4] for m in MISTAKES}
    assert failed_or_warned == set(probe.CHECKS)
    passed = {
        c.name
        for ref, task, outputs in SOUND
        for c in report_for(ref, task, outputs).checks
    }
    assert passed == set(probe.CHECKS)


# Where the mistake is the only one, nothing else fails or warns: the battery
# names the mistake, not a cloud of consequences.
ISOLATED = {
    "fixtures:numpy_in_loss": {"graph_mode": "fail", "xla": "warn"},
    "fixtures:batch_normalised_bce": {"per_sample_independent": "fail"},
    "fixtures:log_cosh_wrong_gradient": {"gradient_matches_numeric": "fail"},
    "fixtures:mse_scalar": {"call": "warn"},
    "fixtures:UnregisteredCrossentropy": {"serialization": "fail"},
    "fixtures:numpy_weighted_crossentropy": {"xla": "warn"},
    "fixtures:mse_float32_width": {"dtypes": "warn"},
}


@pytest.mark.parametrize("ref", sorted(ISOLATED))
def test_an_isolated_mistake_is_the_only_finding(ref):
    task, outputs = next((m[1], m[2]) for m in MISTAKES if m[0] == ref)
    report = report_for(ref, task, outputs)
    found = {c.name: c.status for c in report.checks if c.status != "pass"}
    assert found == ISOLATED[ref], probe.format_report(report)


def test_a_loss_that_raises_does_not_crash_the_probe_and_the_rest_say_why():
    report = report_for("fixtures:mse_without_return", "regression")
    assert report.check("call").status == "fail"
    for result in report.checks[1:]:
        if result.name in ("graph_mode", "serialization"):
            continue
        assert result.status == "fail"
        assert result.detail.startswith("Not run:") and "(see call)" in result.detail
    # graph_mode traces on its own, so `.eval()` shows its graph-mode error.
    graph = report_for("fixtures:eval_in_loss", "regression").check("graph_mode")
    assert "No default session" in graph.detail


def test_a_finite_fail_shows_the_single_row_that_produces_it():
    # The outer-product attempt returns one number for the batch, so the row
    # is found by running the rows alone.
    detail = (
        report_for("attempt:outer_product", "multilabel")
        .check("finite_degenerate")
        .detail
    )
    assert "'no positive label (an all-zero target row)'" in detail
    assert "y_pred=[" in detail


def test_every_attempt_that_is_a_loss_is_probed():
    probed = {m[0].split(":", 1)[1] for m in MISTAKES if m[0].startswith("attempt:")}
    assert probed | {"upper_triangle"} == set(ATTEMPTS)
    upper = report_for("attempt:upper_triangle", "multilabel").check("descent")
    assert upper.status == "fail"  # it pairs every two labels, whatever their labels


# --- the shipped losses -------------------------------------------------------------

# Which registry losses are (y_true, y_pred) losses for a probe task, and how
# they are called. The warns are documented: BP-MLL is exponential in the gap
# between a negative and a positive logit, so at a gap of 200 its true value
# (e^200, 7e86) is beyond float32: an overflow, not a miscomputation (the
# SPEC promises finite values for |logits| <= 40).
EYE = np.eye(5)
EMBEDDING = np.random.default_rng(5).normal(size=(7, 3))
SHIPPED = {
    "bpmll_loss": [
        (lossviz.bpmll_loss, "multilabel", "logits", {}, {"finite_extreme": "warn"}),
        (lossviz.BPMLL, "multilabel", "logits", {}, {"finite_extreme": "warn"}),
        (lossviz.BPMLL(), "multilabel", "logits", {}, {"finite_extreme": "warn"}),
    ],
    # With the identity as embedding, the target embedding is the one-hot row.
    "embedding_target_loss": [
        (lossviz.EmbeddingTargetLoss(EYE), "categorical", "probabilities", {}, {}),
        (lossviz.EmbeddingTargetLoss(EYE, power=2.0, distance="mse"), "categorical",
         "probabilities", {}, {}),
        # A real embedding [V, D]: y_true [B, D] beside y_pred [B, V], so
        # only the user's own arrays fit (regression of the target vector).
        (lossviz.EmbeddingTargetLoss(EMBEDDING), "regression", "probabilities",
         {"y_true": EMBEDDING[[0, 3, 6, 2, 5, 1]],
          "y_pred": np.random.default_rng(6).dirichlet(np.ones(7), 6)}, {}),
    ],
    # A [B, T, C] loss whose maths also holds for [B, C] rows.
    "special_token_mae": [
        (functools.partial(lossviz.special_token_mae, start_id=1, end_id=2),
         "categorical", "probabilities", {}, {}),
    ],
    # Sequence-shaped [B, T]: given sparse [B] labels it reads the batch as
    # one sequence and returns its mean, so it fits no task; it runs, warns.
    "masked_sparse_categorical_crossentropy": [
        (lossviz.MaskedSparseCategoricalCrossentropy(), "sparse", "logits", {},
         {"call": "warn"}),
    ],
}  # fmt: skip
# Not (y_true, y_pred) losses of these tasks: the triplet loss takes three
# embeddings ([B, 3, D] as y_pred), the softmax losses take weights, biases,
# labels and hidden inputs (SampledSoftmax is a layer that adds its loss).
DOES_NOT_FIT = {"cosine_triplet_loss", "full_softmax_loss", "sampled_softmax_loss"}


def test_every_registry_loss_is_placed():
    assert set(SHIPPED) | DOES_NOT_FIT == set(registry.names())
    assert not set(SHIPPED) & DOES_NOT_FIT


@pytest.mark.parametrize(
    "loss, task, outputs, arrays, findings",
    [case for cases in SHIPPED.values() for case in cases],
    ids=[f"{name}-{i}" for name, cases in SHIPPED.items() for i in range(len(cases))],
)
def test_a_shipped_loss_passes_the_battery_or_has_a_documented_warn(
    loss, task, outputs, arrays, findings
):
    report = probe.probe(loss, task, outputs=outputs, **arrays)
    found = {c.name: c.status for c in report.checks if c.status != "pass"}
    assert found == findings, probe.format_report(report)
    if "finite_extreme" in findings:
        detail = report.check("finite_extreme").detail
        assert "overflows float32" in detail and "7.226e+86" in detail


# --- the API --------------------------------------------------------------------


def test_the_report_is_a_frozen_dataclass_with_a_dict_and_a_verdict():
    report = report_for("fixtures:batch_normalised_bce", "multilabel")
    with pytest.raises(AttributeError):
        report.task = "sparse"
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert [c["name"] for c in data["checks"]] == list(probe.CHECKS)
    assert all(set(c) == {"name", "status", "detail"} for c in data["checks"])
    assert report.verdict == "1 of 13 checks fail: per_sample_independent."
    assert "\n" not in report.verdict
    assert report_for("fixtures:mse_scalar", "regression").verdict == (
        "No check fails; 1 warns: call."
    )


def test_assert_sane_lists_every_fail_and_returns_the_report_otherwise():
    with pytest.raises(AssertionError) as raised:
        probe.assert_sane(fixture("bpmll_divide"), "multilabel")
    message = str(raised.value)
    assert "finite_extreme:" in message and "finite_degenerate:" in message
    assert "dtypes" not in message.split("\n", 1)[1]  # a warn is not a fail
    report = probe.assert_sane(fixture("mse_scalar"), "regression")
    assert report.check("call").status == "warn"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"task": "binary"}, "`task` must be one of"),
        ({"task": "sparse", "outputs": "scores"}, "`outputs` must be one of"),
        ({"task": "sparse", "y_true": [0, 7], "y_pred": np.zeros((2, 5))},
         "class ids in [0, 4]"),
        ({"task": "categorical", "y_true": np.zeros((3, 5)),
          "y_pred": np.zeros((4, 5))}, "3 samples"),
        ({"task": "categorical", "y_pred": [[np.nan, 1.0]]}, "holds NaN at [0, 0]"),
        ({"task": "multilabel", "outputs": "probabilities", "y_pred": [[2.0, 0.5]]},
         "values in [0, 1]"),
    ],
)  # fmt: skip
def test_bad_arguments_raise_a_probe_error_that_says_why(kwargs, words):
    with pytest.raises(probe.ProbeError, match=None) as raised:
        probe.probe(fixture("softmax_crossentropy"), **kwargs)
    assert words in str(raised.value)
    with pytest.raises(probe.ProbeError, match="got int"):
        probe.probe(42, "sparse")


def test_the_users_own_arrays_are_the_typical_inputs():
    rng = np.random.default_rng(0)
    y_pred = rng.normal(size=(6, 4))
    report = probe.probe(fixture("softmax_crossentropy"), "categorical", y_pred=y_pred)
    assert (report.y_true_shape, report.y_pred_shape) == ((6, 4), (6, 4))
    assert "your inputs" in report.check("finite_typical").detail
    sparse = probe.probe(
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "sparse",
        y_true=rng.integers(0, 4, (6, 1)),
        y_pred=y_pred,
    )
    assert sparse.ok and sparse.y_true_shape == (6, 1)


def test_the_same_seed_gives_the_same_report_but_for_the_timing():
    def details(report):
        return [c.detail for c in report.checks if c.name != "speed"]

    loss = fixture("bpmll_flipped")
    assert details(probe.probe(loss, "multilabel", seed=4)) == details(
        probe.probe(loss, "multilabel", seed=4)
    )


def test_load_target_imports_a_file_once_with_its_folder_on_the_path_meanwhile():
    first = probe.load_target(f"{FIXTURES}:softmax_crossentropy")
    assert probe.load_target(f"{FIXTURES}:softmax_crossentropy") is first
    assert str(FIXTURES.parent) not in sys.path
    assert probe.load_target("lossviz:BPMLL") is lossviz.BPMLL
    with pytest.raises(probe.ProbeError, match="has no name 'nope'"):
        probe.load_target(f"{FIXTURES}:nope")
    with pytest.raises(probe.ProbeError, match="must be path/to/file.py:NAME"):
        probe.load_target(str(FIXTURES))
    with pytest.raises(probe.ProbeError, match="is a int, not a loss"):
        probe.load_target(f"{FIXTURES}:NOT_A_LOSS")


def test_the_battery_on_a_64_by_32_loss_prints_its_time(capsys):
    # Informational (BENCHMARKS.md has the figure): no timed assertion.
    rng = np.random.default_rng(0)
    y_true = (rng.random((64, 32)) < 0.3).astype(np.float32)
    y_pred = rng.normal(size=(64, 32)).astype(np.float32)
    start = time.perf_counter()
    report = probe.probe(lossviz.BPMLL(), "multilabel", y_true=y_true, y_pred=y_pred)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\nprobe battery on a [64, 32] BP-MLL: {seconds:.2f} s; {report.verdict}"
        )
    assert report.ok


# --- the command line -----------------------------------------------------------


def test_the_cli_runs_in_process_with_files_and_gives_the_exit_status(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "y_pred.npy", rng.normal(size=(6, 4)).astype(np.float32))
    np.savetxt(tmp_path / "y_true.csv", np.eye(4)[rng.integers(0, 4, 6)], delimiter=",")
    target = f"{FIXTURES}:softmax_crossentropy"
    files = ["--y-true", str(tmp_path / "y_true.csv"), "--y-pred",
             str(tmp_path / "y_pred.npy")]  # fmt: skip
    assert main(["probe", target, "--task", "categorical", *files]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "y_true [6, 4], y_pred [6, 4]" in text[0]
    assert [line.split()[0] for line in text[1:14]] == list(probe.CHECKS)
    assert text[-1] == "verdict: All 13 checks pass."
    assert main(["probe", f"{FIXTURES}:bpmll_divide", "--task", "multilabel"]) == 1
    capsys.readouterr()
    missing = ["--y-pred", str(tmp_path / "nothing.npy")]
    assert main(["probe", target, "--task", "categorical", *missing]) == 2
    assert "no such file" in capsys.readouterr().err
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    pickled = ["--y-pred", str(tmp_path / "objects.npy")]
    assert main(["probe", target, "--task", "categorical", *pickled]) == 2
    assert "never unpickles" in capsys.readouterr().err


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "lossviz", "probe", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every end-to-end run at once (each process imports TensorFlow)."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "helper.py").write_text("SCALE = 2.0\n")
    (folder / "user_loss.py").write_text(
        "import tensorflow as tf\nfrom helper import SCALE\n\n"
        "def my_loss(y_true, y_pred):\n"
        "    return SCALE * tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)\n"
    )
    (folder / "broken.py").write_text("import tensorflow as tf\n\nraise_here(\n")
    runs = {
        "pass_json": _cli("user_loss.py:my_loss", "--task", "regression", "--json",
                          cwd=folder),
        "fail": _cli("tests/fixtures/probe_losses.py:argmax_lookup", "--task",
                     "categorical"),
        "syntax": _cli(f"{folder}/broken.py:my_loss", "--task", "regression"),
        "usage": _cli("tests/fixtures/probe_losses.py:huber"),
    }  # fmt: skip
    results = {}
    for key, process in runs.items():
        out, err = process.communicate(timeout=240)
        results[key] = (process.returncode, out, err)
    return results


def test_the_cli_imports_the_users_file_with_its_folder_and_prints_json(cli_runs):
    status, out, err = cli_runs["pass_json"]
    assert status == 0, err
    data = json.loads(out)
    assert data["target"] == "user_loss.py:my_loss"
    assert data["task"] == "regression"
    assert [c["name"] for c in data["checks"]] == list(probe.CHECKS)
    assert all(set(c) == {"name", "status", "detail"} for c in data["checks"])
    assert all(c["status"] == "pass" for c in data["checks"])


def test_the_cli_exits_1_when_a_check_fails(cli_runs):
    status, out, _ = cli_runs["fail"]
    assert status == 1
    assert "gradient_exists           fail" in out
    assert out.strip().splitlines()[-1].startswith("verdict: 3 of 13 checks fail")


def test_a_bad_target_gets_one_line_on_stderr_and_no_traceback(cli_runs):
    status, out, err = cli_runs["syntax"]
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: cannot import ")
    assert "SyntaxError" in lines[0] and "line 3" in lines[0]
    assert "Traceback" not in err


def test_bad_usage_exits_2(cli_runs):
    status, _, err = cli_runs["usage"]
    assert status == 2
    assert "--task" in err and "Traceback" not in err


# --- the loss as the logits grow ------------------------------------------------


def _softmax64(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _as_float32(x):
    """What the loss sees: every input is cast to float32, as Keras does."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def test_scale_sweep_matches_numpy_for_cross_entropy_on_logits():
    scales = (0.1, 1.0, 10.0, 1e3)
    sweep = probe.scale_sweep(
        fixture("softmax_crossentropy"), "categorical", "logits", scales, seed=2
    )
    np.testing.assert_array_equal(sweep.scales, scales)
    y = sweep.y_true
    assert y.shape == sweep.logits.shape == (probe.BATCH_SIZE, probe.WIDTH)
    assert sweep.ran.all() and sweep.error is None
    for i, scale in enumerate(scales):
        z = _as_float32(scale * sweep.logits)
        m = z.max(axis=-1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=-1))
        values = lse - (y * z).sum(axis=-1)
        grad = _softmax64(z) - y
        np.testing.assert_allclose(sweep.mean_loss[i], values.mean(), rtol=1e-5)
        np.testing.assert_allclose(
            sweep.grad_norm[i], np.linalg.norm(grad), rtol=1e-4, atol=1e-6
        )
    assert sweep.loss_nonfinite_from is None and sweep.grad_nonfinite_from is None


def test_scale_sweep_draws_the_probes_typical_batch_at_scale_one():
    again = probe.scale_sweep(fixture("huber"), "regression", "probabilities", seed=3)
    sweep = probe.scale_sweep(fixture("huber"), "regression", "probabilities", seed=3)
    np.testing.assert_array_equal(sweep.logits, again.logits)
    np.testing.assert_array_equal(sweep.mean_loss, again.mean_loss)
    # The probe's typical predictions for probabilities lie in [0.05, 0.95].
    p = 1.0 / (1.0 + np.exp(-sweep.logits))
    assert p.min() >= 0.05 and p.max() <= 0.95
    np.testing.assert_array_equal(sweep.scales, probe.SWEEP_SCALES)
    for i, scale in enumerate(sweep.scales):
        with np.errstate(over="ignore"):  # exp overflows to Inf: p = 0
            error = _as_float32(1.0 / (1.0 + np.exp(-scale * sweep.logits)))
        error = error - _as_float32(sweep.y_true)
        huber = np.where(np.abs(error) <= 1.0, 0.5 * error**2, np.abs(error) - 0.5)
        np.testing.assert_allclose(
            sweep.mean_loss[i], huber.mean(axis=-1).mean(), rtol=1e-5
        )
        # d/dp of the mean over the last axis: clip(error, -1, 1) / width
        grad = np.clip(error, -1.0, 1.0) / probe.WIDTH
        np.testing.assert_allclose(
            sweep.grad_norm[i], np.linalg.norm(grad), rtol=1e-4, atol=1e-7
        )


def test_scale_sweep_keeps_nan_and_inf_and_says_from_where():
    sweep = probe.scale_sweep(
        fixture("naive_power_crossentropy"), "categorical", "probabilities", seed=0
    )
    assert sweep.ran.all() and sweep.error is None
    start = sweep.loss_nonfinite_from
    assert start is not None and sweep.grad_nonfinite_from is not None
    after = sweep.scales >= start
    assert not np.isfinite(sweep.mean_loss[after]).any()
    assert np.isfinite(sweep.mean_loss[~after][-1])  # finite just before it
    # Where it is finite, it is numpy's: p = softmax(s z), p**3 renormalised.
    low = sweep.scales <= 1.0
    for i in np.flatnonzero(low):
        p = _as_float32(_softmax64(sweep.scales[i] * sweep.logits))
        sharp = p**3 / (p**3).sum(axis=-1, keepdims=True)
        expected = -(sweep.y_true * np.log(sharp)).sum(axis=-1).mean()
        np.testing.assert_allclose(sweep.mean_loss[i], expected, rtol=1e-4)


def test_scale_sweep_of_a_loss_without_gradient_or_values():
    flat = probe.scale_sweep(fixture("argmax_lookup"), "categorical", seed=0)
    assert flat.ran.all()
    np.testing.assert_array_equal(flat.grad_norm, 0.0)  # None: no gradient
    assert np.isfinite(flat.mean_loss).all()
    broken = probe.scale_sweep(fixture("mse_without_return"), "regression")
    assert not broken.ran.any() and "returns None" in broken.error
    assert np.isnan(broken.mean_loss).all() and np.isnan(broken.grad_norm).all()
    assert broken.loss_nonfinite_from is None  # it raised: not a NaN it computed
    needs = probe.scale_sweep(fixture("NeedsMargin"), "categorical")
    assert not needs.ran.any() and "pass an instance" in needs.error


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"task": "binary"}, "`task` must be one of"),
        ({"task": "sparse", "outputs": "scores"}, "`outputs` must be one of"),
        ({"task": "sparse", "scales": (1.0, 0.0)}, "positive finite"),
        ({"task": "sparse", "scales": ()}, "positive finite"),
    ],
)
def test_scale_sweep_bad_arguments_raise_a_probe_error(kwargs, words):
    with pytest.raises(probe.ProbeError) as raised:
        probe.scale_sweep(fixture("softmax_crossentropy"), **kwargs)
    assert words in str(raised.value)


# --- pasted code ------------------------------------------------------------------

PASTED = """import tensorflow as tf

SCALE = 2.0


def scaled_mse(y_true, y_pred):
    return SCALE * tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)
"""


def test_load_source_refuses_without_the_opt_in(monkeypatch):
    for value in (None, "0", "yes", ""):
        if value is None:
            monkeypatch.delenv(probe.PASTED_CODE_ENV, raising=False)
        else:
            monkeypatch.setenv(probe.PASTED_CODE_ENV, value)
        assert not probe.pasted_code_allowed()
        with pytest.raises(probe.ProbeError, match="LOSSVIZ_ALLOW_PASTED_CODE=1"):
            probe.load_source("raise SystemExit('ran')", "my_loss")


def test_load_source_runs_the_text_as_a_fresh_module_with_the_opt_in(monkeypatch):
    monkeypatch.setenv(probe.PASTED_CODE_ENV, "1")
    assert probe.pasted_code_allowed()
    loss = probe.load_source(PASTED, "scaled_mse")
    assert loss.__module__ == "lossviz_pasted" and "lossviz_pasted" not in sys.modules
    assert loss.__globals__["SCALE"] == 2.0
    assert probe.load_source(PASTED, "scaled_mse") is not loss  # runs afresh
    report = probe.probe(loss, "regression")
    assert report.ok and report.loss == "scaled_mse"


@pytest.mark.parametrize(
    "text, name, words",
    [
        ("def my_loss(y_true, y_pred:\n", "my_loss", "SyntaxError"),
        ("x = 1\nraise ValueError('boom')\n", "my_loss", "ValueError: boom (line 2)"),
        ("raise SystemExit(3)\n", "my_loss", "SystemExit: 3 (line 1)"),
        (PASTED, "nope", "it defines: scaled_mse"),
        ("LIMIT = 3\n", "LIMIT", "defines no loss 'LIMIT'"),
        (PASTED, "scaled_mse()", "must be a Python name"),
    ],
)
def test_pasted_code_that_does_not_give_a_loss_gets_one_line(
    monkeypatch, text, name, words
):
    monkeypatch.setenv(probe.PASTED_CODE_ENV, "1")
    with pytest.raises(probe.ProbeError) as raised:
        probe.load_source(text, name)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_load_source_is_the_only_exec_or_eval_in_the_project():
    import ast

    paths = [ROOT / "app.py"]
    for folder in ("lossviz", "ui", "views"):
        paths += sorted((ROOT / folder).rglob("*.py"))
    found = []
    for path in paths:
        tree = ast.parse(path.read_text())
        # Each exec/eval call with the function around it (None at module level).
        inside = {}
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef):
                for node in ast.walk(function):
                    inside.setdefault(node, function.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("exec", "eval")
            ):
                found.append((path.relative_to(ROOT).as_posix(), inside.get(node)))
    assert found == [("lossviz/probe.py", "load_source")]


def test_the_readme_shows_the_probes_real_output(monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    command = (
        ".venv/bin/python -m lossviz probe tests/fixtures/probe_losses.py:bpmll_divide"
        " --task multilabel"
    )
    assert f"    {command}\n" in readme
    shown = readme.split(f"{command}\n\n```\n", 1)[1].split("\n```", 1)[0]
    monkeypatch.chdir(ROOT)
    assert main(command.split()[3:]) == 1
    printed = capsys.readouterr().out.rstrip("\n")

    def steady(text):  # the timing line changes from run to run
        return [line for line in text.splitlines() if not line.startswith("speed ")]

    assert steady(shown) == steady(printed)
    assert len(shown.splitlines()) == len(printed.splitlines())
