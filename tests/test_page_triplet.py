"""The "Loss as a layer (triplet)" page: runs, shows what the explore layer
computes (its words included), a margin move as a lookup that redraws only
the Play chart, the Play chart's frames, every control's range, reset, the
lessons' checked outcomes, the original attempts, the Train panel."""

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.explore import triplet as explore
from lossviz.explore.attempts import triplet as attempts
from ui.figures import triplet as figures
from ui.figures.play import full
from ui.layout import format_value
from views.content import triplet as content

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "triplet.py")
CONTROLS = content.CONTROLS.resolved()
DEFAULTS = dict(CONTROLS.defaults())
KEYS = {name: CONTROLS.key(name) for name in CONTROLS.names}


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    return at


def metrics(at):
    return {m.label: m.value for m in at.metric[:4]}


def layer_metrics(at):
    """(masked, unmasked) values of the add_loss section: loss, ppl, accuracy."""
    values = [m.value for m in at.metric[4:]]
    return values[:3], values[3:]


def chart_specs(at):
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def set_defaults(at):
    for name, value in DEFAULTS.items():
        at.slider(key=KEYS[name]).set_value(value)
    at.run()
    assert not at.exception


def test_controls_are_keyed_by_page_and_name_and_margin_follows_the_registry():
    assert KEYS == {
        "margin": "triplet_margin",
        "hard_share": "triplet_hard_share",
        "pad_share": "triplet_pad_share",
        "logit_scale": "triplet_logit_scale",
    }
    margin = CONTROLS["margin"]
    assert (margin.low, margin.high, margin.step) == explore.PARAMS["margin"].ui_range
    assert margin.default == explore.PARAMS["margin"].default


def test_page_shows_the_numbers_the_explore_layer_computes(app):
    set_defaults(app)
    setting = explore.Setting(DEFAULTS["margin"], DEFAULTS["hard_share"])
    point = explore.at_setting(setting, 0)
    assert metrics(app) == {
        "Triplet loss, batch mean": format_value(point.mean_loss),
        "Share of active triplets": format_value(point.active_share),
        "‖∂L/∂q‖ over the batch": format_value(point.grad_norm),
        "Triplets with zero gradient": format_value(point.zero_gradient),
    }
    tokens = explore.layer_reports(
        explore.LayerSetting(DEFAULTS["pad_share"], DEFAULTS["logit_scale"]), 0
    )
    masked, unmasked = layer_metrics(app)
    for shown, report in ((masked, tokens.masked), (unmasked, tokens.unmasked)):
        assert shown == [
            format_value(report.loss),
            format_value(report.perplexity),
            format_value(report.masked_accuracy),
        ]
    text = [m.value for m in app.markdown]
    assert f"{tokens.masked.tokens} tokens count" in " ".join(text)
    batch = explore.triplets(setting.batch, 0)
    captions = " ".join(c.value for c in app.caption)
    assert content.gap_caption(batch) in captions
    assert content.layer_caption(tokens) in captions
    markdown = [m.value for m in app.markdown]
    assert content.intro(explore.page_facts(0)).strip() in markdown
    assert content.masked_intro(explore.layer_facts(0)).strip() in markdown
    assert content.train_intro(explore.TRAIN_FACTS).strip() in markdown
    sweep = explore.margin_sweep(setting.batch, 0)
    assert content.sweep_caption(sweep.all_active_from) in captions
    assert len(app.get("plotly_chart")) == 7
    grid = explore.over_grid(setting.batch, 0)
    index = grid.index(setting.margin)
    assert figures.summary(grid, index) in captions
    # Nothing non-finite at the defaults: the only warnings are the original
    # attempts' "wrong" or "waste" outcomes (none for this family).
    assert not app.warning


def test_moving_the_margin_changes_the_loss_metric_and_the_snippet(app):
    set_defaults(app)
    before = metrics(app)
    app.slider(key="triplet_margin").set_value(0.8).run()
    assert not app.exception
    after = metrics(app)
    assert float(after["Triplet loss, batch mean"]) > float(
        before["Triplet loss, batch mean"]
    )
    assert float(after["Share of active triplets"]) > float(
        before["Share of active triplets"]
    )
    assert any("margin=0.8)" in code.value for code in app.code)


def test_a_margin_move_is_a_lookup_and_redraws_only_the_play_chart(count_calls):
    computes = ("over_grid", "at_setting", "margin_sweep", "triplets", "_graphs")
    patched = {name: count_calls(explore, name) for name in (*computes, "check_lesson")}
    calls = {name: calls for name, (calls, _) in patched.items()}
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    margins = (0.35, 2.0, 1.25, 0.0, 0.85)  # 2.0 and 0.0 are lessons' margins
    for margin in margins:  # the first pass may compute (lessons' checks)
        at.slider(key=KEYS["margin"]).set_value(margin).run()
    before = chart_specs(at)
    for name in calls:
        calls[name].clear()
    setting = explore.Setting(DEFAULTS["margin"], DEFAULTS["hard_share"])
    grid = patched["over_grid"][1](setting.batch, 0)
    for margin in margins[::-1]:
        at.slider(key=KEYS["margin"]).set_value(margin).run()
        assert not at.exception
        assert all(not c for c in calls.values()), (margin, calls)
        point = grid.at(margin)  # the page's numbers are explore's
        assert metrics(at)["Triplet loss, batch mean"] == format_value(point.mean_loss)
        assert metrics(at)["Triplets with zero gradient"] == format_value(
            point.zero_gradient
        )
        captions = " ".join(c.value for c in at.caption)
        assert figures.summary(grid, grid.index(margin)) in captions
    # 0.85 -> 0.35: the Play chart (the first) opens on another frame; every
    # other chart is the same figure.
    after = chart_specs(at)
    assert before[0] != after[0]
    assert before[0]["layout"]["sliders"][0]["active"] == grid.index(0.85)
    assert after[0]["layout"]["sliders"][0]["active"] == grid.index(0.35)
    assert before[1:] == after[1:]


def test_play_figure_has_a_frame_per_margin_and_states_each_frame_s_numbers():
    grid = explore.over_grid(explore.Batch(0.25), 0)
    fig = full(figures.play_figure(grid, 3))
    fig.to_dict()  # valid for Plotly
    frames = fig.frames
    assert len(frames) == len(grid.values) == len(explore.MARGINS)
    assert fig.layout.sliders[0].active == 3
    assert [step.label for step in fig.layout.sliders[0].steps] == [
        f"{m:g}" for m in explore.MARGINS
    ]
    assert figures.opening_summary(fig) == figures.summary(grid, 3)
    # Fixed axes: Plotly does not rescale as it plays.
    for axis in (fig.layout.xaxis, fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.range is not None
    for i, frame in enumerate(frames):
        active_bars, inactive_bars, line = frame.data[:3]
        assert sum(active_bars.y) == grid.active_count[i]
        assert sum(active_bars.y) + sum(inactive_bars.y) == explore.NUM_TRIPLETS
        assert list(line.x) == [grid.values[i]] * 2
        # Each triplet's loss, in the active or the inactive trace (NaN
        # hides it in the other).
        for trace, flag in ((frame.data[3], True), (frame.data[4], False)):
            shown = np.where(grid.active[i] == flag, grid.loss[i], np.nan)
            np.testing.assert_array_equal(np.asarray(trace.y, float), shown)
        text = frame.layout.title.text
        assert f"m = {grid.values[i]:g}: {grid.active_count[i]} of 64" in text
        assert f"mean loss {format_value(grid.mean_loss[i], 3)}" in text
    # What does not move is drawn once: the triplets' gaps and names.
    np.testing.assert_array_equal(fig.data[3].x, grid.gap)
    assert list(fig.data[4].text) == figures.triplet_names(grid.hard)
    assert frames[0].data[3].x is None
    first, last = frames[0].data, frames[-1].data
    assert list(first[0].y) != list(last[0].y)
    assert sum(last[0].y) == explore.NUM_TRIPLETS  # 2.5 is above every gap
    point = explore.at_setting(explore.Setting(0.5, 0.25), 0)
    sentence = figures.summary(grid, grid.index(0.5))
    assert sentence == (
        f"m = 0.5: {point.active.sum()} of 64 triplets active "
        f"({point.active_share:.0%}), mean loss {format_value(point.mean_loss, 3)}, "
        f"‖∂L/∂q‖ {format_value(point.grad_norm, 3)}"
    )


def click_lesson(at, lesson):
    at.button(key=f"lesson_triplet_{lesson.title}").click().run()
    assert not at.exception, at.exception
    return [info.value for info in at.info if lesson.notice in info.value]


def test_margin_zero_shows_only_wrongly_ranked_triplets_active(app):
    set_defaults(app)
    lesson = content.LESSONS[0]
    (note,) = click_lesson(app, lesson)
    assert app.slider(key="triplet_margin").value == 0.0
    batch = explore.triplets(explore.Batch(DEFAULTS["hard_share"]), 0)
    shown = metrics(app)
    assert shown["Triplets with zero gradient"] == format_value(64 - batch.wrong_order)
    claim = explore.check_lesson(lesson.check, DEFAULTS | lesson.settings, 0)
    assert f"✓ Checked: {claim.statement}" in note


def test_margin_two_note_checks_that_every_triplet_is_active(app):
    set_defaults(app)
    lesson = content.LESSONS[1]
    (note,) = click_lesson(app, lesson)
    assert metrics(app)["Share of active triplets"] == "1"
    assert metrics(app)["Triplets with zero gradient"] == "0"
    assert "✓ Checked: Every gap lies in" in note and "64 of 64" in note
    # Off the lesson's setting its note is gone.
    app.slider(key="triplet_margin").set_value(1.0).run()
    assert not any(lesson.notice in info.value for info in app.info)


def test_attempts_fail_visibly_and_are_not_rerun_on_a_move(count_calls):
    calls, run_all = count_calls(attempts, "run_all")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    headings = [h.value for h in at.subheader]
    # After the page's sections, before "Use it in your model" and Train.
    assert headings.index("The original attempt") == (
        headings.index(content.LAYER_SECTION) + 1
    )
    shown = " ".join(m.value for m in at.markdown)
    errors = [e.value for e in at.error]
    for attempt, outcome in run_all(0):
        assert f". {attempt.title}** (" in shown
        assert outcome.message in errors, attempt.key
    assert calls == [0]
    at.slider(key="triplet_margin").set_value(0.6).run()
    at.slider(key="triplet_pad_share").set_value(0.5).run()
    assert not at.exception
    assert calls == [0]  # cached per seed: a slider move does not rerun them


@pytest.mark.parametrize("name", list(KEYS))
def test_every_control_at_min_default_max(app, name):
    set_defaults(app)
    control = CONTROLS[name]
    for value in (control.low, control.high, control.default):
        app.slider(key=KEYS[name]).set_value(value).run()
        assert not app.exception, (name, value)
        assert all("⚠" not in m.value for m in app.metric), (name, value)


def test_all_padding_gives_zero_loss_and_perplexity_one(app):
    set_defaults(app)
    app.slider(key="triplet_pad_share").set_value(1.0).run()
    masked, unmasked = layer_metrics(app)
    assert masked[:2] == ["0", "1"]
    assert float(unmasked[0]) > 0


def test_reset_restores_defaults(app):
    set_defaults(app)
    default_metrics = [m.value for m in app.metric]
    for name in KEYS:
        app.slider(key=KEYS[name]).set_value(CONTROLS[name].high)
    app.run()
    assert [m.value for m in app.metric] != default_metrics
    app.button(key="reset_triplet").click().run()
    assert not app.exception
    for name, value in DEFAULTS.items():
        assert np.isclose(app.slider(key=KEYS[name]).value, value)
    assert [m.value for m in app.metric] == default_metrics


def test_train_draws_the_curves_and_follows_the_margin(app):
    set_defaults(app)
    charts_before = len(app.get("plotly_chart"))
    app.number_input(key="train_epochs_triplet").set_value(1)
    app.button(key="train_go_triplet").click().run()
    assert not app.exception
    runs = app.session_state["train_runs_triplet"]
    assert [r["label"] for r in runs] == ["masked LM (add_loss)", "triplet, margin 0.1"]
    assert [r["params"] for r in runs] == [{}, {"margin": 0.1}]
    assert all(r["epochs"] == [1] for r in runs)
    assert set(runs[0]["history"]) == {"loss", "perplexity", "masked_accuracy"}
    assert set(runs[1]["history"]) == {"loss", "recall_at_1"}
    # One curve per metric: loss, recall@1, perplexity, masked accuracy.
    assert len(app.get("plotly_chart")) == charts_before + 4
    table = app.dataframe[0].value
    assert list(table["run"]) == ["#1 masked LM (add_loss)", "#2 triplet, margin 0.1"]
    # The last run's summary and rows: held-out questions, the answer first.
    assert "held-out recall@1 before training" in app.markdown[-1].value
    rows = app.dataframe[1].value
    assert len(rows) == len(runs[1]["rows"])
    assert set(rows["right?"]) <= {"✓", "✗"}
    # A new margin keeps the triplet run selected, under its new label.
    app.slider(key="triplet_margin").set_value(0.5).run()
    assert app.multiselect(key="train_choice_triplet").value == [
        "masked LM (add_loss)",
        "triplet, margin 0.5",
    ]
    app.multiselect(key="train_choice_triplet").set_value(["triplet, margin 0.5"])
    app.button(key="train_go_triplet").click().run()
    assert not app.exception
    runs = app.session_state["train_runs_triplet"]
    assert runs[-1]["label"] == "triplet, margin 0.5"
    assert runs[-1]["params"] == {"margin": 0.5}
    assert runs[-1]["history"]["recall_at_1"]
    app.button(key="train_clear_triplet").click().run()
    assert app.session_state["train_runs_triplet"] == []


def test_page_trains_inside_the_app():
    root = Path(PAGE).parents[1]
    at = AppTest.from_file(str(root / "app.py"), default_timeout=120).run()
    assert not at.exception
    at.switch_page("views/triplet.py").run()
    assert not at.exception
    assert at.title[0].value == content.TITLE
    at.multiselect(key="train_choice_triplet").set_value(["masked LM (add_loss)"])
    at.number_input(key="train_epochs_triplet").set_value(1)
    at.button(key="train_go_triplet").click().run()
    assert not at.exception
    (run,) = at.session_state["train_runs_triplet"]
    assert run["history"]["perplexity"]
    assert "held-out next-token accuracy before training" in at.markdown[-1].value
    assert list(at.dataframe[1].value.columns) == [
        "input",
        "next tokens",
        "predicted",
        "accuracy",
    ]
