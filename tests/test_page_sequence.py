"""The sequence masking page: runs, every control at its ends, the mask, the
pad id equal to the end id, the class-weight table, reset, live metrics, the
original attempts, the train panel; and its words agree with what it shows."""

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.explore import sequence as explore
from lossviz.explore.attempts import sequence as attempts
from ui import format_value
from ui.figures import sequence as figures
from ui.figures.play import full, summary
from ui.figures.sequence import LOSS_LABELS
from views.content import sequence as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sequence.py")
WEIGHTS = "sequence_hand_weights"

# (min, max, default): the default comes last, back on cached results.
SLIDERS = {
    "sequence_mask_ratio": (0.0, 1.0, 0.3),
    "sequence_end_bias": (0.0, 8.0, 2.5),
}
CHOICES = {
    ("selectbox", "sequence_pad_id"): (0, 7, -1, 2),
    ("radio", "sequence_mask"): ("unmasked", "masked"),
    ("radio", "sequence_weight_mode"): explore.WEIGHT_MODES,
    ("radio", "sequence_sweep"): ("padding share", "end-token weight"),
    ("selectbox", "sequence_grad_of"): tuple(LOSS_LABELS),
}


def metric(at, label):
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}"
    return values[0]


def play_chart(at) -> dict:
    """The Play chart's figure as the page sent it (the first chart)."""
    return json.loads(at.get("plotly_chart")[0].proto.spec)


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception
    return at


@pytest.fixture
def at(app):
    app.button(key="reset_sequence").click().run()
    assert not app.exception
    return app


def test_page_runs_with_title_formula_and_metrics(at):
    assert at.title[0].value == "Sequence masking and class weights"
    labels = [m.label for m in at.metric]
    for label in (
        "Per-sequence mean",
        "Keras token mean",
        "sample_weight=mask",
        "Unmasked",
        "Perplexity",
        "Accuracy",
        "Special-token MAE",
        "End-token weight",
        "Padding's share of the gradient",
        "Real ends the loss counts",
        "</s> share of counted steps",
    ):
        assert label in labels
    assert not [w for w in at.warning if "not finite" in w.value]
    assert metric(at, "End-token weight") == "1"
    assert metric(at, "Padding's share of the gradient") == "0"
    assert metric(at, "Real ends the loss counts") == "6"
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
    # The Play chart, padding's share of the gradient, the per-sequence
    # losses, the loss and gradient-norm sweeps.
    assert len(at.get("plotly_chart")) == 5
    play = play_chart(at)
    assert len(play["frames"]) == len(explore.PADDING_GRID)
    assert play["layout"]["sliders"][0]["active"] == 6  # 30 %
    assert (
        "padding 30%: unmasked, the padding steps hold"
        in play["layout"]["title"]["text"]
    )
    assert any("1/(6 · len_b)" in c.value for c in at.caption)
    assert any("of the target steps are padding" in m.value for m in at.markdown)


def test_the_intro_states_the_computed_numbers(at):
    facts = explore.intro_facts(0)
    text = content.intro(facts)
    for number in (facts.ours[1], facts.token[1], facts.trap[0], facts.trap[1]):
        assert f"{number:.3g}" in text
    assert any(text.strip() in m.value.strip() for m in at.markdown)


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
    assert at.radio(key="sequence_mask").disabled
    # Unmasked first, then pad id -1: greyed out, and masked all the same.
    at.selectbox(key="sequence_pad_id").set_value(0).run()
    at.radio(key="sequence_mask").set_value("unmasked").run()
    at.selectbox(key="sequence_pad_id").set_value(-1).run()
    assert not at.exception
    assert any(content.ALWAYS_MASKED == c.value for c in at.caption)
    assert metric(at, "Unmasked") == "n/a"
    at.selectbox(key="sequence_grad_of").set_value("unmasked").run()
    assert not at.exception
    assert any(content.NO_OTHER_GRADIENT == c.value for c in at.caption)


def test_the_mask_control_changes_every_loss(at):
    masked = metric(at, "Per-sequence mean")
    unmasked = metric(at, "Unmasked")
    at.radio(key="sequence_mask").set_value("unmasked").run()
    assert not at.exception
    # Ours is now the unmasked loss; the three means coincide; the masked
    # loss is there to compare.
    assert metric(at, "Per-sequence mean") == unmasked
    assert metric(at, "Keras token mean") == unmasked
    assert metric(at, "sample_weight=mask") == unmasked
    assert metric(at, "Masked") == masked
    assert float(metric(at, "Padding's share of the gradient")) > 0


def test_padding_with_the_end_token_is_shown_not_refused(at):
    at.selectbox(key="sequence_pad_id").set_value(2).run()
    assert not at.exception
    assert metric(at, "Real ends the loss counts") == "0"
    assert metric(at, "</s> share of counted steps") == "0"
    # The targets in the Play chart's map: padding shows as E.
    tokens = [t for row in play_chart(at)["data"][-1]["text"] for t in row]
    assert "·" not in tokens and tokens.count("E") > 6
    at.radio(key="sequence_mask").set_value("unmasked").run()
    assert not at.exception
    assert float(metric(at, "</s> share of counted steps")) > 0.3
    # The snippet to copy never pads with the end token.
    code = "".join(c.value for c in at.code)
    assert "pad_id=0" in code and "not 2: the end token" in code


def test_padding_share_moves_the_trap_and_the_loss(at):
    ours = metric(at, "Per-sequence mean")
    trap = float(metric(at, "sample_weight=mask"))
    at.slider(key="sequence_mask_ratio").set_value(0.6).run()
    assert metric(at, "Per-sequence mean") != ours
    assert float(metric(at, "sample_weight=mask")) < trap


def test_all_padding_is_finite_and_explained(at):
    at.slider(key="sequence_mask_ratio").set_value(1.0).run()
    assert not at.exception
    assert not [w for w in at.warning if "not finite" in w.value]
    assert metric(at, "Per-sequence mean") == "0"
    assert metric(at, "Keras token mean") == "0"
    assert metric(at, "Perplexity") == "1"
    point = explore.at_setting(explore.Setting(mask_ratio=1.0))
    assert any(content.all_padding(point) == info.value for info in at.info)
    assert "masked losses are 0 with a gradient norm of 0" in content.all_padding(point)


def test_class_weights_by_hand_from_the_text_and_from_data(at):
    before = metric(at, "Per-sequence mean")
    at.text_input(key=WEIGHTS).set_value("1,1,3,1,1,1,1,1").run()
    assert not at.exception
    assert metric(at, "End-token weight") == "3"
    assert metric(at, "Per-sequence mean") != before
    table = at.dataframe[0].value  # the hand table mirrors the text
    assert list(table["weight"]) == [1, 1, 3, 1, 1, 1, 1, 1]
    at.radio(key="sequence_weight_mode").set_value("every class from data").run()
    assert not at.exception
    assert at.text_input(key=WEIGHTS).disabled
    point = explore.at_setting(
        explore.Setting(
            weight_mode=explore.ALL_FROM_DATA, hand_weights="1,1,3,1,1,1,1,1"
        )
    )
    in_use = next(d.value for d in at.dataframe if "count the loss sees" in d.value)
    assert list(in_use["weight"]) == pytest.approx(point.class_weights.tolist())
    # Copy them into the table: by hand again, with those weights.
    at.button(key="sequence_copy_weights").click().run()
    assert not at.exception
    assert at.radio(key="sequence_weight_mode").value == "by hand"
    assert at.text_input(key=WEIGHTS).value == explore.weights_text(point.class_weights)
    assert not at.text_input(key=WEIGHTS).disabled


def test_bad_weight_text_says_so_and_uses_ones(at):
    at.text_input(key=WEIGHTS).set_value("1,2,x").run()
    assert not at.exception
    assert any("comma-separated" in e.value for e in at.error)
    assert metric(at, "End-token weight") == "1"


def test_table_edits_become_the_urls_text(monkeypatch):
    state = {
        "w": "old",
        "table": {"edited_rows": {2: {"weight": 4.5}, 7: {"weight": -1}}},
    }
    monkeypatch.setattr(content.st, "session_state", state)
    content._table_edited("w", "table", [1.0] * 8)
    assert state["w"] == "1,1,4.5,1,1,1,1,0"
    assert content.CONTROLS["hand_weights"].check("1,1,4.5,1,1,1,1,0")
    with pytest.raises(ValueError, match="hand_weights"):
        content.CONTROLS["hand_weights"].check("1,1")


def test_the_sweep_control_changes_the_axis(at):
    at.radio(key="sequence_sweep").set_value("end-token weight").run()
    assert not at.exception
    assert content.sweep_section("end-token weight") in [s.value for s in at.subheader]
    # One playable chart over the end weight, its own slider opening at 30 %
    # whatever the padding slider says.
    for value in (0.3, 0.75):
        at.slider(key="sequence_mask_ratio").set_value(value).run()
        weights = json.loads(at.get("plotly_chart")[-1].proto.spec)
        assert weights["layout"]["sliders"][0]["active"] == 6
        assert len(weights["frames"]) == len(explore.PADDING_GRID)
    assert content.WEIGHT_SWEEP_CAPTION in [c.value for c in at.caption]


def test_a_padding_move_is_a_lookup(count_calls):
    """After the first run, moving the padding slider calls no explore
    computation (no TensorFlow), on the first pass over the shares as on the
    second: the grid holds every share, and the page shows its numbers."""
    shares = (0.05, 0.5, 0.95, 1.0, 0.3, 0.6)
    expected = {s: explore.at_setting(explore.Setting(mask_ratio=s)) for s in shares}
    names = ("over_grid", "at_setting", "sweep", "weight_sweeps", "_losses",
             "_metrics", "_loss_graph", "_metrics_graph")  # fmt: skip
    counted = {name: count_calls(explore, name)[0] for name in names}
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    assert len(counted["over_grid"]) == 1
    before = {name: len(calls) for name, calls in counted.items()}
    for _ in range(2):
        for share, point in expected.items():
            at.slider(key="sequence_mask_ratio").set_value(share).run()
            assert not at.exception
            assert metric(at, "Per-sequence mean") == format_value(point.values["ours"])
            assert metric(at, "Padding's share of the gradient") == format_value(
                point.padding_grad_share["ours"]
            )
            assert metric(at, "Perplexity") == format_value(point.perplexity)
            assert summary_of(at).startswith(f"padding {share:.0%}: ")
    assert {name: len(calls) for name, calls in counted.items()} == before
    assert counted["at_setting"] == []  # the page reads the grid only


def summary_of(at) -> str:
    play = play_chart(at)
    return play["layout"]["title"]["text"].split("<sup>")[1].split("</sup>")[0]


@pytest.mark.parametrize(
    "setting, grad_of",
    [
        (explore.Setting(), "ours"),
        (explore.Setting(mask="unmasked"), "trap"),
        (explore.Setting(pad_id=-1), "token"),
    ],
)
def test_the_play_chart_has_a_frame_per_share_stating_its_numbers(setting, grad_of):
    grid = explore.over_grid(setting.for_sweep(explore.PADDING))
    figure = full(figures.play_figure(grid, 6, grad_of))
    go.Figure(figure.to_plotly_json())  # plotly's own validation
    frames = figure.frames
    assert len(frames) == len(grid.values) == 21
    assert summary(figure) == figures.play_summary(grid, 6)
    # Bars: real and padding, unmasked then masked; the map of grad_of last.
    assert [t.type for t in frames[0].data] == ["bar"] * 4 + ["heatmap"]
    for i in (3, 12):
        a, b = frames[i].data, frames[i + 1].data
        assert a[-1].z != b[-1].z  # the map changes with the padding
        assert a[2].y != b[2].y  # and so do the masked loss's bars
        masked = grid.padding_grad_share[grid.mean_key(True)][i]
        text = frames[i].layout.title.text
        assert f"padding {grid.values[i]:.0%}: " in text
        assert masked == 0
        np.testing.assert_allclose(
            frames[i].data[-1].z, grid.step_grad_norms[grad_of][i], rtol=1e-12
        )
        unmasked = grid.mean_key(False)
        if unmasked is None:
            assert "no unmasked loss" in text
            assert f"hold {figures.percent(masked)} of ‖∂L/∂z‖²</sup>" in text
            assert not any(frames[i].data[0].y)
        else:
            share = grid.padding_grad_share[unmasked][i]
            assert f"padding steps hold {figures.percent(share)} of" in text
            assert text.endswith(f"; masked {figures.percent(masked)}</sup>")
            assert sum(frames[i].data[1].y) == pytest.approx(share)
            assert share > 0
    # The share axis is fixed over the frames.
    assert figure.layout.yaxis.range[1] >= max(
        max(np.add(f.data[0].y, f.data[1].y)) for f in frames
    )
    at = dataclasses.replace(setting, mask_ratio=float(grid.values[6]))
    assert grid.point(6).values == explore.at_setting(at).values


def test_reset_restores_defaults(at):
    default_loss = metric(at, "Per-sequence mean")
    at.slider(key="sequence_mask_ratio").set_value(0.8)
    at.slider(key="sequence_end_bias").set_value(6.0)
    at.selectbox(key="sequence_pad_id").set_value(7)
    at.radio(key="sequence_mask").set_value("unmasked")
    at.text_input(key=WEIGHTS).set_value("2,1,1,1,1,1,1,1")
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
    assert at.radio(key="sequence_mask").value == "masked"
    assert at.text_input(key=WEIGHTS).value == content.ONES
    assert at.radio(key="sequence_sweep").value == "padding share"
    assert at.selectbox(key="sequence_grad_of").value == "ours"
    assert metric(at, "Per-sequence mean") == default_loss


def test_a_lesson_sets_the_controls_and_shows_its_check(at):
    lesson = content.LESSONS[1]
    at.button(key=f"lesson_sequence_{lesson.title}").click().run()
    assert not at.exception
    assert at.selectbox(key="sequence_pad_id").value == 2
    values = content.CONTROLS.defaults() | lesson.settings
    claim = explore.check_lesson(lesson.check, values, 0)
    notes = [info.value for info in at.info if lesson.notice in info.value]
    assert notes and f"✓ Checked: {claim.statement}" in notes[0]


def test_the_original_attempts_fail_on_the_page_and_run_once(count_calls):
    calls, _ = count_calls(attempts, "run_all")
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    assert "The original attempt" in [s.value for s in at.subheader]
    # What the page ran (a second run may word a TensorFlow error otherwise:
    # "[16,8] vs. [16]" or "[16] vs. [16,8]").
    outcomes = {a.key: o for a, o in calls.results[0]}
    errors = [e.value for e in at.error]
    for key in (
        "eval_in_loss",
        "python_loop",
        "class_weight_ids",
        "class_weight_one_hot",
    ):
        assert outcomes[key].kind == "error"
        assert outcomes[key].message in errors, key
    assert outcomes["pad_with_end"].message in [w.value for w in at.warning]
    at.slider(key="sequence_mask_ratio").set_value(0.55).run()
    at.radio(key="sequence_mask").set_value("unmasked").run()
    assert not at.exception
    assert calls == [0]  # cached per seed: a move never reruns them


def test_train_draws_the_curves_the_summary_and_the_rows(at):
    charts_before = len(at.get("plotly_chart"))
    runs = explore.train_runs(explore.Setting(), 0)
    labels = [run.label for run in runs]
    assert at.multiselect(key="train_choice_sequence").options == labels
    at.multiselect(key="train_choice_sequence").set_value([labels[1], labels[2]])
    at.number_input(key="train_epochs_sequence").set_value(2)
    at.button(key="train_go_sequence").click().run()
    assert not at.exception
    history = at.session_state["train_runs_sequence"]
    assert [r["label"] for r in history] == labels[1:]
    assert [r["variant"] for r in history] == ["unmasked", "masked"]
    for run in history:
        assert run["epochs"] == [1, 2]
        for name in explore.TRAINING.metrics:
            assert len(run["history"][name]) == 2
    # One curve per charted metric.
    assert len(at.get("plotly_chart")) == charts_before + len(explore.TRAINING.metrics)
    tables = [d.value for d in at.dataframe]
    runs_table = next(t for t in tables if "run" in t)
    assert list(runs_table["run"]) == [f"#1 {labels[1]}", f"#2 {labels[2]}"]
    # The last run's summary and its decoded held-out rows.
    assert at.markdown[-1].value.startswith(f"**#2 {labels[2]}**: held-out")
    assert "end-token weight **" in at.markdown[-1].value
    decoded = tables[-1]
    assert list(decoded["target"]) == [row["target"] for row in history[-1]["rows"]]
    assert list(decoded["input"])[0].startswith("<s> ")
    assert set(decoded["copied"]) <= {"✓", "✗"}
    at.button(key="train_clear_sequence").click().run()
    assert at.session_state["train_runs_sequence"] == []


def test_the_train_runs_follow_the_mask_and_the_pad_id(at):
    at.selectbox(key="sequence_pad_id").set_value(2).run()
    at.radio(key="sequence_mask").set_value("unmasked").run()
    assert not at.exception
    options = at.multiselect(key="train_choice_sequence").options
    assert options[0] == "unmasked, pad = </s>, end weight 1 by hand"
    assert options[1] == "masked, pad = </s>, end weight 1 by hand"


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
    assert f"class_weights[{explore.END_ID}]" in content.CONTROLS["hand_weights"].help
    defaults = inspect.signature(explore.example_batch).parameters
    assert f"+{defaults['signal'].default:g}" in content.CONTROLS["end_bias"].help
    assert tuple(LOSS_LABELS) == explore.LOSSES
    assert content.CONTROLS["mask"].options == explore.MASKS
    assert content.CONTROLS["weight_mode"].options == explore.WEIGHT_MODES
    assert content.CONTROLS["sweep"].options == explore.SWEEPS
    assert explore.parse_weights(content.ONES) == explore.ONES
    controls = content.CONTROLS.resolved()
    for pad_id in controls["pad_id"].options:
        explore.Setting(pad_id=pad_id)
    assert explore.END_ID in controls["pad_id"].options
    assert explore.setting_of(controls.defaults()) == explore.Setting()
    for setting in (explore.Setting(), explore.Setting(pad_id=2, mask="unmasked")):
        for key in setting.losses:
            label = content.loss_metrics(setting.masked)[key]
            assert label in content.HELPS


def test_on_a_projector_the_play_chart_is_its_bars_alone():
    grid = explore.over_grid(explore.Setting())
    figure = full(figures.play_figure(grid, 6, "ours", compact=True))
    go.Figure(figure.to_plotly_json())
    assert figure.layout.height < figures.play_figure(grid, 6).layout.height
    assert [t.type for t in figure.frames[0].data] == ["bar"] * 4
    assert summary(figure) == figures.play_summary(grid, 6)
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["present"] = True
    at.run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "sequence_grad_of"]
    assert [t["type"] for t in play_chart(at)["data"]] == ["bar"] * 4
