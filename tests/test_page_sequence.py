"""The sequence masking page: runs, every control at its ends, reset, live
metrics, the train panel; and its words agree with what it shows."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lossviz.explore import sequence as explore
from ui.figures.sequence import LOSS_LABELS
from views.content import sequence as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sequence.py")

# (min, max, default): the default comes last, back on cached results.
SLIDERS = {
    "sequence_mask_ratio": (0.0, 1.0, 0.3),
    "sequence_end_weight": (0.0, 5.0, 1.0),
    "sequence_end_bias": (0.0, 8.0, 2.5),
}
CHOICES = {
    ("selectbox", "sequence_pad_id"): (0, 7, -1),
    ("radio", "sequence_end_mode"): ("by hand", "from data"),
    ("radio", "sequence_sweep"): ("padding share", "end-token weight"),
    ("selectbox", "sequence_grad_of"): ("ours", "token", "trap", "unmasked"),
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
    app.button(key="reset_sequence").click().run()
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
    sections = [s.value for s in at.subheader]
    assert sections[:4] == [
        content.MAIN_SECTION,
        content.GRADIENT_SECTION,
        content.PER_SEQUENCE_SECTION,
        content.sweep_section("padding share"),
    ]
    # Gradient heatmap, per-sequence bars, loss and gradient-norm sweeps.
    assert len(at.get("plotly_chart")) == 4
    assert any("1/(6 · len_b)" in c.value for c in at.caption)
    assert any("% of the target steps are `<pad>`" in m.value for m in at.markdown)


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
    at.selectbox(key="sequence_pad_id").set_value(-1).run()
    assert not at.exception
    assert metric(at, "Unmasked") == "n/a"
    at.selectbox(key="sequence_grad_of").set_value("unmasked").run()
    assert not at.exception
    assert any(content.NO_UNMASKED_GRADIENT == c.value for c in at.caption)


def test_padding_share_moves_the_trap_and_the_loss(at):
    ours = metric(at, "Per-sequence mean")
    trap = float(metric(at, "sample_weight=mask"))
    at.slider(key="sequence_mask_ratio").set_value(0.6).run()
    assert metric(at, "Per-sequence mean") != ours
    assert float(metric(at, "sample_weight=mask")) < trap


def test_all_padding_is_finite_and_explained(at):
    at.slider(key="sequence_mask_ratio").set_value(1.0).run()
    assert not at.exception
    assert not at.warning
    assert metric(at, "Per-sequence mean") == "0"
    assert metric(at, "Keras token mean") == "0"
    assert metric(at, "Perplexity") == "1"
    assert any("padding only" in info.value for info in at.info)


def test_end_weight_by_hand_and_from_data(at):
    before = metric(at, "Per-sequence mean")
    at.slider(key="sequence_end_weight").set_value(3.0).run()
    assert metric(at, "End-token weight") == "3"
    assert metric(at, "Per-sequence mean") != before
    at.radio(key="sequence_end_mode").set_value("from data").run()
    assert not at.exception
    assert metric(at, "End-token weight") != "3"
    # The hand weight no longer counts, and its slider says so.
    assert at.slider(key="sequence_end_weight").disabled
    at.radio(key="sequence_end_mode").set_value("by hand").run()
    assert not at.slider(key="sequence_end_weight").disabled
    assert metric(at, "End-token weight") == "3"


def test_the_sweep_control_changes_the_axis(at):
    at.radio(key="sequence_sweep").set_value("end-token weight").run()
    assert not at.exception
    assert content.sweep_section("end-token weight") in [s.value for s in at.subheader]


def test_reset_restores_defaults(at):
    default_loss = metric(at, "Per-sequence mean")
    at.slider(key="sequence_mask_ratio").set_value(0.8)
    at.slider(key="sequence_end_bias").set_value(6.0)
    at.selectbox(key="sequence_pad_id").set_value(7)
    at.radio(key="sequence_sweep").set_value("end-token weight")
    at.selectbox(key="sequence_grad_of").set_value("trap")
    at.run()
    assert not at.exception
    assert metric(at, "Per-sequence mean") != default_loss
    at.button(key="reset_sequence").click().run()
    assert not at.exception
    assert at.slider(key="sequence_mask_ratio").value == 0.3
    assert at.slider(key="sequence_end_bias").value == 2.5
    assert at.selectbox(key="sequence_pad_id").value == 0
    assert at.radio(key="sequence_sweep").value == "padding share"
    assert at.selectbox(key="sequence_grad_of").value == "ours"
    assert metric(at, "Per-sequence mean") == default_loss


def test_lesson_sets_the_controls(at):
    lesson = content.LESSONS[1]
    at.button(key=f"lesson_sequence_{lesson.title}").click().run()
    assert not at.exception
    assert at.slider(key="sequence_mask_ratio").value == 0.6
    assert at.radio(key="sequence_end_mode").value == "from data"
    assert any(lesson.notice in info.value for info in at.info)


def test_train_draws_the_curves_the_summary_and_the_rows(at):
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
    # The last run's summary and its decoded held-out rows.
    assert at.markdown[-1].value.startswith("**#2 masked + end weight**: held-out")
    assert "end-token weight **" in at.markdown[-1].value
    decoded = tables[-1]
    assert list(decoded["target"]) == [row["target"] for row in runs[-1]["rows"]]
    assert list(decoded["input"])[0].startswith("<s> ")
    assert set(decoded["copied"]) <= {"✓", "✗"}
    at.button(key="train_clear_sequence").click().run()
    assert at.session_state["train_runs_sequence"] == []


def test_the_words_name_the_batch_the_page_computes():
    """The content module cannot import the explore layer (no TensorFlow on
    the landing page): its copies of the sizes, ids and choices must agree."""
    assert (
        content.NUM_SEQUENCES, content.MAX_LEN, content.NUM_CLASSES,
        content.START_ID, content.END_ID,
    ) == (
        explore.NUM_SEQUENCES, explore.MAX_LEN, explore.NUM_CLASSES,
        explore.START_ID, explore.END_ID,
    )  # fmt: skip
    sizes = f"{explore.NUM_SEQUENCES} × {explore.MAX_LEN}"
    assert sizes in content.CONTROLS["mask_ratio"].help
    assert sizes in content.HELPS["sample_weight=mask"]
    assert f"class_weights[{explore.END_ID}]" in content.CONTROLS["end_weight"].help
    assert tuple(LOSS_LABELS) == explore.LOSSES
    assert content.CONTROLS["end_mode"].options == explore.END_MODES
    assert content.CONTROLS["sweep"].options == explore.SWEEPS
    controls = content.CONTROLS.resolved()
    for pad_id in controls["pad_id"].options:
        explore.Setting(pad_id=pad_id)
    for name, value in controls.defaults().items():
        if name in explore.Setting.__dataclass_fields__:
            assert getattr(explore.Setting(), name) == value, name
