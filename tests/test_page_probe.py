"""The "Probe your loss" page: shipped losses, module paths, pasted code (only
with the opt-in), the table of checks and the scale charts. The checks
themselves are tested in tests/test_probe.py."""

import json
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from lossviz import probe, registry
from ui.figures import probe as figures
from views.content import probe as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "probe.py")
FIXTURES = "tests.fixtures.probe_losses"
# Registry losses that are not (y_true, y_pred) losses of a task (as
# tests/test_probe.py's DOES_NOT_FIT says).
DOES_NOT_FIT = {"cosine_triplet_loss", "full_softmax_loss", "sampled_softmax_loss"}
# What the probe finds in each shipped loss besides passes (tests/test_probe.py
# documents why).
FINDINGS = {
    "bpmll_loss": {"finite_extreme": "warn"},
    "BPMLL": {"finite_extreme": "warn"},
    "masked_sparse_categorical_crossentropy": {"call": "warn"},
    "MaskedSparseCategoricalCrossentropy": {"call": "warn"},
    "special_token_mae": {},
    "EmbeddingTargetLoss": {},
}


@pytest.fixture(scope="module", autouse=True)
def _no_full_gc_after_each_run():
    """Streamlit runs gc.collect(2) after every script run; with TensorFlow
    loaded that takes about 0.5 s per run."""
    saved = config.get_option("runner.postScriptGC")
    config.set_option("runner.postScriptGC", False)
    yield
    config.set_option("runner.postScriptGC", saved)


@pytest.fixture(autouse=True)
def _no_opt_in(monkeypatch):
    monkeypatch.delenv(probe.PASTED_CODE_ENV, raising=False)


def _fresh():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def _rows(at) -> dict:
    """``{check: (status cell, detail)}`` of the table of checks."""
    (table,) = at.table
    frame = table.value
    assert list(frame.columns) == ["check", "status", "detail"]
    return {
        row.check: (row.status, row.detail) for row in frame.itertuples(index=False)
    }


def _statuses(at) -> dict:
    return {name: status for name, (status, _) in _rows(at).items()}


def _expected(findings: dict) -> dict:
    return {
        name: figures.status_text(findings.get(name, "pass")) for name in probe.CHECKS
    }


def _charts(at) -> dict:
    """``{title: layout}`` of every plotly chart on the page."""
    layouts = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    return {layout["title"]["text"]: layout for layout in layouts}


def _probe_module(at, target, task, outputs="logits"):
    at.radio(key="probe_source").set_value("module").run()
    at.text_input(key="probe_target").set_value(target)
    at.selectbox(key="probe_task").set_value(task)
    at.radio(key="probe_outputs").set_value(outputs).run()
    assert not at.exception, at.exception


def test_the_controls_offer_the_probes_tasks_outputs_and_the_shipped_losses():
    assert tuple(content.TASKS) == probe.TASKS
    assert tuple(content.OUTPUTS) == probe.OUTPUTS
    assert tuple(content.CHECKS) == probe.CHECKS
    assert content.CONTROLS["task"].options == probe.TASKS
    assert content.CONTROLS.key("loss") == "probe_loss"
    assert content.LESSONS == ()
    assert set(FINDINGS) == set(content.SHIPPED)
    placed = {spec["registry"] for spec in content.SHIPPED.values()}
    assert placed == set(registry.names()) - DOES_NOT_FIT
    for key, spec in content.SHIPPED.items():
        entry = registry.get(spec["registry"])
        assert spec["task"] in probe.TASKS and spec["outputs"] in probe.OUTPUTS
        assert spec["build"] in content.BUILDS
        # A function is offered under its name, a class under its class name.
        is_class = spec["build"] in ("class", "example")
        assert key == (entry.keras_class.__name__ if is_class else entry.name)


def test_the_page_opens_on_a_shipped_loss_with_every_check_and_its_status():
    at = _fresh()
    assert at.title[0].value == "Probe your loss"
    assert not at.error
    assert _statuses(at) == _expected(FINDINGS["bpmll_loss"])
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Pass"], metrics["Warn"], metrics["Fail"]) == ("12", "1", "0")
    assert [w.value for w in at.warning] == ["No check fails; 1 warns: finite_extreme."]
    # The status is a word, not only a colour; the colour follows the status.
    styled = at.table[0].proto.arrow_data.styler.styles
    for status, (_, background, _) in figures.STATUS.items():
        assert (background in styled) == (status in ("pass", "warn")), status
    assert not at.get("plotly_chart")  # no fail, no scale chart
    assert not at.text_area  # no code box without the opt-in


def test_every_shipped_loss_shows_every_check_with_its_status():
    at = _fresh()
    for key, findings in FINDINGS.items():
        at.selectbox(key="probe_loss").set_value(key).run()
        assert not at.exception, (key, at.exception)
        assert not at.error, (key, [e.value for e in at.error])
        assert _statuses(at) == _expected(findings), key
        task, outputs = content.SHIPPED[key]["task"], content.SHIPPED[key]["outputs"]
        assert any(f"Task {task}, y_pred {outputs}" in c.value for c in at.caption)


def test_a_failing_fixture_by_module_path_shows_its_fail_row_and_the_scale_chart():
    at = _fresh()
    _probe_module(at, f"{FIXTURES}:bpmll_divide", "multilabel")
    status, detail = _rows(at)["finite_degenerate"]
    assert status == "✖ fail"
    assert "no positive label" in detail and "y_true=[0, 0, 0, 0, 0]" in detail
    (verdict,) = at.error  # the verdict, in red and in words
    assert "checks fail:" in verdict.value and "finite_degenerate" in verdict.value
    fails = sum(status == "✖ fail" for status, _ in _rows(at).values())
    assert {m.label: m.value for m in at.metric}["Fail"] == str(fails)
    # The scale charts: the numbers and the shaded range are lossviz.probe's.
    loss = probe.load_target(f"{FIXTURES}:bpmll_divide")
    curves = probe.scale_sweep(loss, "multilabel", "logits", probe.SWEEP_SCALES, 0)
    assert curves.loss_nonfinite_from is not None
    charts = _charts(at)
    shapes = charts["Mean loss as the logits grow"]["shapes"]
    (shaded,) = [s for s in shapes if s["type"] == "rect"]
    assert shaded["x0"] == curves.loss_nonfinite_from
    assert "Gradient norm as the logits grow" in charts
    assert any(content.SWEEP_TITLE == s.value for s in at.subheader)
    start = f"the mean loss is NaN or Inf from s = {curves.loss_nonfinite_from:.3g}"
    assert any(start in c.value for c in at.caption)


def test_a_loss_that_raises_everywhere_gets_no_curve_but_says_why():
    at = _fresh()
    _probe_module(at, f"{FIXTURES}:mse_without_return", "regression")
    assert _statuses(at)["call"] == "✖ fail"
    assert not at.get("plotly_chart")
    assert any("No curve to draw: the loss returns None" in c.value for c in at.caption)


def test_a_bad_module_path_or_a_file_path_gets_one_message():
    at = _fresh()
    _probe_module(at, f"{FIXTURES}:nope", "regression")
    (error,) = at.error  # and no verdict
    assert "has no name 'nope'" in error.value
    assert not at.table
    at.text_input(key="probe_target").set_value("tests/fixtures/probe_losses.py:huber")
    at.run()
    (error,) = at.error
    assert "python -m lossviz probe tests/fixtures/probe_losses.py:huber" in error.value
    at.text_input(key="probe_target").set_value("").run()
    assert not at.error and any("Give a module path" in i.value for i in at.info)


def test_without_the_opt_in_there_is_no_code_box_and_a_note_says_how():
    at = _fresh()
    at.radio(key="probe_source").set_value("pasted").run()
    assert not at.exception
    assert not at.text_area
    assert not at.table
    (note,) = at.info
    assert f"{probe.PASTED_CODE_ENV}=1 streamlit run app.py" in note.value


@pytest.mark.parametrize("value", ["0", "true", ""])
def test_only_the_exact_opt_in_shows_the_code_box(monkeypatch, value):
    monkeypatch.setenv(probe.PASTED_CODE_ENV, value)
    at = _fresh()
    at.radio(key="probe_source").set_value("pasted").run()
    assert not at.text_area


def test_with_the_opt_in_pasted_code_is_probed_in_the_servers_process(monkeypatch):
    monkeypatch.setenv(probe.PASTED_CODE_ENV, "1")
    at = _fresh()
    at.radio(key="probe_source").set_value("pasted").run()
    assert not at.exception
    (box,) = at.text_area
    assert box.value == content.CODE_EXAMPLE
    assert any("runs in the server's own process" in w.value for w in at.warning)
    # The example: cross-entropy on probabilities without a clip.
    at.radio(key="probe_outputs").set_value("probabilities").run()
    assert not at.exception, at.exception
    statuses = _statuses(at)
    assert statuses["finite_typical"] == "✔ pass"
    assert statuses["finite_extreme"] == "✖ fail"
    assert "Mean loss as the logits grow" in _charts(at)
    # Other code, another name: a scalar loss warns in `call`.
    at.text_area(key="probe_code").set_value(
        "import tensorflow as tf\n\n"
        "def batch_mse(y_true, y_pred):\n"
        "    return tf.reduce_mean(tf.square(y_true - y_pred))\n"
    )
    at.text_input(key="probe_name").set_value("batch_mse")
    at.selectbox(key="probe_task").set_value("regression")
    at.radio(key="probe_outputs").set_value("logits").run()
    assert not at.exception, at.exception
    assert _statuses(at) == _expected({"call": "warn"})
    assert any('assert_sane(batch_mse, "regression")' in c.value for c in at.code)


def test_pasted_code_that_does_not_run_gets_one_line(monkeypatch):
    monkeypatch.setenv(probe.PASTED_CODE_ENV, "1")
    at = _fresh()
    at.radio(key="probe_source").set_value("pasted").run()
    at.text_area(key="probe_code").set_value("def my_loss(y_true, y_pred:\n").run()
    (error,) = at.error
    assert "SyntaxError" in error.value and "line 1" in error.value
    assert "\n" not in error.value and not at.table
