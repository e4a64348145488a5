"""The sequence masking page: runs, every control at its ends, reset, live metrics."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sequence_masking.py")

# (min, max, default): the default comes last, back on cached results.
SLIDERS = {
    "seq_mask_ratio": (0.0, 1.0, 0.3),
    "seq_end_weight": (0.0, 5.0, 1.0),
    "seq_end_bias": (0.0, 8.0, 2.5),
}
CHOICES = {
    ("selectbox", "seq_pad_id"): (0, 7, -1),
    ("radio", "seq_end_mode"): ("by hand", "from data"),
    ("radio", "seq_sweep"): ("padding share", "end-token weight"),
    ("selectbox", "seq_grad_of"): ("ours", "token", "trap", "unmasked"),
}


def metric(at, label):
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}"
    return values[0]


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    return at


@pytest.fixture
def at(app):
    app.button(key="reset_sequence_masking").click().run()
    assert not app.exception
    return app


def test_page_runs_with_title_formula_and_metrics(at):
    assert at.title[0].value == "Sequence masking and class weights"
    assert at.markdown  # the intro
    labels = [m.label for m in at.metric]
    for label in (
        "Per-sequence mean",
        "Keras token mean",
        "sample_weight=mask",
        "Unmasked",
        "Perplexity",
        "Masked accuracy",
        "Special-token MAE",
        "End-token weight",
    ):
        assert label in labels
    assert not at.warning  # every value finite at the defaults
    assert metric(at, "End-token weight") == "1"
    assert any("class_weight" in e.label for e in at.expander)
    code = "".join(c.value for c in at.code)
    assert "MaskedSparseCategoricalCrossentropy" in code
    assert "def masked_sparse_categorical_crossentropy" in code


@pytest.mark.parametrize("key", list(SLIDERS))
def test_every_slider_at_min_default_and_max(at, key):
    for value in SLIDERS[key]:
        at.slider(key=key).set_value(value).run()
        assert not at.exception, (key, value)
        assert metric(at, "Per-sequence mean")


@pytest.mark.parametrize("kind, key", list(CHOICES))
def test_every_choice(at, kind, key):
    for value in CHOICES[(kind, key)]:
        getattr(at, kind)(key=key).set_value(value).run()
        assert not at.exception, (key, value)


def test_pad_id_outside_the_classes_has_no_unmasked_loss(at):
    at.selectbox(key="seq_pad_id").set_value(-1).run()
    assert not at.exception
    assert metric(at, "Unmasked") == "n/a"
    at.selectbox(key="seq_grad_of").set_value("unmasked").run()
    assert not at.exception


def test_padding_share_moves_the_trap_and_the_loss(at):
    ours = metric(at, "Per-sequence mean")
    trap = float(metric(at, "sample_weight=mask"))
    at.slider(key="seq_mask_ratio").set_value(0.6).run()
    assert metric(at, "Per-sequence mean") != ours
    assert float(metric(at, "sample_weight=mask")) < trap


def test_all_padding_is_finite_and_explained(at):
    at.slider(key="seq_mask_ratio").set_value(1.0).run()
    assert not at.exception
    assert not at.warning
    assert metric(at, "Per-sequence mean") == "0"
    assert metric(at, "Keras token mean") == "0"
    assert metric(at, "Perplexity") == "1"
    assert any("padding only" in info.value for info in at.info)


def test_end_weight_by_hand_and_from_data(at):
    before = metric(at, "Per-sequence mean")
    at.slider(key="seq_end_weight").set_value(3.0).run()
    assert metric(at, "End-token weight") == "3"
    assert metric(at, "Per-sequence mean") != before
    at.radio(key="seq_end_mode").set_value("from data").run()
    assert not at.exception
    assert at.slider(key="seq_end_weight").disabled
    assert metric(at, "End-token weight") != "3"


def test_reset_restores_defaults(at):
    default_loss = metric(at, "Per-sequence mean")
    at.slider(key="seq_mask_ratio").set_value(0.8)
    at.slider(key="seq_end_bias").set_value(6.0)
    at.selectbox(key="seq_pad_id").set_value(7)
    at.radio(key="seq_sweep").set_value("end-token weight")
    at.run()
    assert not at.exception
    assert metric(at, "Per-sequence mean") != default_loss
    at.button(key="reset_sequence_masking").click().run()
    assert not at.exception
    assert at.slider(key="seq_mask_ratio").value == 0.3
    assert at.slider(key="seq_end_bias").value == 2.5
    assert at.selectbox(key="seq_pad_id").value == 0
    assert at.radio(key="seq_sweep").value == "padding share"
    assert metric(at, "Per-sequence mean") == default_loss


def test_train_draws_the_curves_and_decodes_the_last_run(at):
    charts_before = len(at.get("plotly_chart"))
    at.multiselect(key="train_choice_sequence").set_value(
        ["unmasked", "masked + end weight"]
    )
    at.number_input(key="train_epochs_sequence").set_value(2)
    at.button(key="train_go_sequence").click().run()
    assert not at.exception
    runs = at.session_state["train_runs_sequence"]
    assert [r["label"] for r in runs] == ["unmasked", "masked + end weight"]
    assert [r["variant"] for r in runs] == ["unmasked", "masked_end_weight"]
    for run in runs:
        assert run["epochs"] == [1, 2]
        for metric_name in ("loss", "masked_accuracy", "end_share", "pad_share"):
            assert len(run["history"][metric_name]) == 2
    # One curve per metric: loss, held-out accuracy, end share, pad share.
    assert len(at.get("plotly_chart")) == charts_before + 4
    tables = [d.value for d in at.dataframe]
    runs_table = next(t for t in tables if "run" in t)
    assert list(runs_table["run"]) == ["#1 unmasked", "#2 masked + end weight"]
    # The last run's decoded predictions, read back from its examples.
    assert "**masked + end weight** after 2 epochs" in at.markdown[-1].value
    decoded = tables[-1]
    rows = [e for e in runs[-1]["examples"] if e["kind"] == "copy"]
    assert list(decoded["target"]) == [" ".join(r["target"]) for r in rows]
    assert list(decoded["input"])[0].startswith("<s> ")
    at.button(key="train_clear_sequence").click().run()
    assert at.session_state["train_runs_sequence"] == []
