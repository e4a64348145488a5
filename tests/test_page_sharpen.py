"""The "Softmax → one-hot" page, run headless with Streamlit's AppTest.

The numbers are tested in tests/test_explore_sharpen.py; here, what only the
page does: it runs, its controls move what they should, it shows the explore
layer's numbers as they are, and its Train panel runs.
"""

import ast
from pathlib import Path

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

import ui
from lossviz.explore import sharpen as explore
from lossviz.explore.attempts import sharpen as attempts
from ui.attempts import SECTION as ATTEMPTS_SECTION
from ui.figures import sharpen as figures
from ui.figures.play import full
from views.content import sharpen as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sharpen.py")

# name -> (widget, min, default, max)
CONTROLS = {
    "sharpen_by": ("radio", "power", "power", "temperature"),
    "power": ("select_slider", 0.1, 2.0, 1e4),
    "temperature": ("select_slider", 1e-4, 0.5, 10.0),
    "iterations": ("slider", 1, 1, 10),
    "distance": ("selectbox", "cosine", "cosine", "mse"),
    "logit_scale": ("slider", 0.5, 2.0, 8.0),
    "sample": ("selectbox", 0, 0, 3),
    "hard": ("toggle", False, False, True),
}


# The controls that only the one or the other way of sharpening uses.
ONLY_BY = {"power": "power", "iterations": "power", "temperature": "temperature"}


def widget(at, name):
    return getattr(at, CONTROLS[name][0])(key=content.CONTROLS.key(name))


def sharpen_by(at, by):
    """Chooses how to sharpen, and runs (the controls it greys out change)."""
    widget(at, "sharpen_by").set_value(by)
    at.run()
    assert not at.exception, at.exception


def metrics(at):
    return {m.label: m.value for m in at.metric}


def chart_specs(at):
    return [c.proto.spec for c in at.get("plotly_chart")]


def captions(at):
    return " ".join(c.value for c in at.caption)


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_the_declaration_matches_the_explore_layer():
    controls = content.CONTROLS.resolved()
    assert controls.names == tuple(CONTROLS)
    for name, (_, low, default, high) in CONTROLS.items():
        bounds = controls[name].bounds()
        assert controls[name].default == default, name
        assert (bounds[0], bounds[-1]) in ((low, high), (default, default)), name
    assert controls["sample"].options == tuple(range(explore.NUM_SAMPLES))
    assert controls["sharpen_by"].options == explore.SHARPEN_BY
    assert controls["temperature"].options == explore.PARAMS["temperature"].ui_options
    # at the defaults the greyed temperature shows the derived one, T = 1/k
    assert controls["temperature"].default == 1 / controls["power"].default
    # the sweeps span the power and the temperature controls' ranges
    assert explore.SWEEP_POWERS[0] == pytest.approx(controls["power"].options[0])
    assert explore.SWEEP_POWERS[-1] == pytest.approx(controls["power"].options[-1])
    temperatures = controls["temperature"].options
    assert explore.SWEEP_TEMPERATURES.max() == pytest.approx(temperatures[-1])
    assert explore.SWEEP_TEMPERATURES.min() == pytest.approx(temperatures[0])
    # "Sharpen by" is drawn first: the controls it greys out see its value;
    # it and the two it chooses between stand beside the Play chart
    assert content.LEAD == ("sharpen_by", "power", "temperature")
    assert not set(content.LEAD) & {n for group in content.COLUMNS for n in group}


def test_page_runs_with_title_formula_and_metrics(app):
    assert app.title[0].value == "Softmax → one-hot"
    assert app.latex, "the formula is shown"
    shown = metrics(app)
    assert set(shown) == {
        "Loss (batch mean)",
        "‖∂L/∂logits‖",
        "Temperature T = 1/kⁿ",
        "Naive: NaN/Inf count",
    }
    assert shown["Temperature T = 1/kⁿ"] == "0.5"
    assert shown["Naive: NaN/Inf count"] == "0"
    assert all("⚠" not in value for value in shown.values())
    # the sweep reaches powers where the naive form is NaN, and says so
    assert any("naive form over the sweep" in w.value for w in app.warning)
    assert any("Use it in your model" in e.label for e in app.expander)


def test_the_page_shows_the_explore_layers_numbers(app):
    point = explore.at_setting(explore.Setting(), 0)
    shown = metrics(app)
    assert shown["Loss (batch mean)"] == ui.format_value(point.mean_loss)
    assert shown["‖∂L/∂logits‖"] == ui.format_value(point.grad_norm)
    assert ui.format_value(point.max_gap, 3) in captions(app)
    sweep = explore.sweep(explore.SweepSetting(), 0)
    assert f"{len(sweep.powers)} powers from 0.1 to 10000" in captions(app)
    assert f"From k ≈ {sweep.first_zero_grad:.3g} the gradient" in captions(app)
    # the intro's numbers are the explore layer's, at the defaults and seed 0
    facts = explore.facts(0)
    intro = " ".join(m.value for m in app.markdown)
    assert f"Raise the power to k ≈ {facts.naive_nan_from:.3g} or more." in intro
    assert f"from k ≈ {facts.zero_grad_from:.3g} the gradient is exactly 0" in intro
    assert f"vocabulary of {facts.vocab_size} tokens" in intro
    assert content.train_intro(explore.TRAIN_FACTS).strip() in intro


def test_every_chart_has_a_text_summary(app):
    # ui.plot writes a summary of each figure's own data under it; the Play
    # chart's is its opening frame's sentence
    for name in ("loss, batch mean:", "‖∂L/∂logits‖:", "log space:", "17×8 values"):
        assert name in captions(app), name
    grid = explore.over_grid(explore.SweepSetting(), 0)
    opening = figures.summaries(grid, 0)[grid.index(2.0)]
    assert opening.startswith("k = 2: sample 0's top probability")
    assert opening in captions(app)


def test_every_control_at_min_default_and_max(app):
    for name, (_, low, default, high) in CONTROLS.items():
        if name in ONLY_BY:
            sharpen_by(app, ONLY_BY[name])
        for value in (low, high, default):
            widget(app, name).set_value(value)
            app.run()
            assert not app.exception, f"{name}={value!r}: {app.exception}"
            assert widget(app, name).value == value
    sharpen_by(app, "power")


def test_sharpen_by_greys_out_the_control_it_does_not_use(app):
    for by in explore.SHARPEN_BY:
        sharpen_by(app, by)
        for name, used_by in ONLY_BY.items():
            assert widget(app, name).disabled == (used_by != by), (by, name)
    sharpen_by(app, "power")


def test_moving_the_power_changes_the_loss_and_breaks_only_the_naive_form(app):
    before = metrics(app)
    widget(app, "power").set_value(200.0)
    app.run()
    after = metrics(app)
    assert after["Loss (batch mean)"] != before["Loss (batch mean)"]
    assert "⚠" not in after["Loss (batch mean)"]
    assert float(after["‖∂L/∂logits‖"]) < float(before["‖∂L/∂logits‖"])
    assert after["Temperature T = 1/kⁿ"] == "0.005"
    assert after["Naive: NaN/Inf count"] == "32"
    assert any("naive x**k" in w.value for w in app.warning)
    assert any("power=200," in code.value for code in app.code)
    widget(app, "power").set_value(2.0)
    app.run()
    assert metrics(app) == before


def test_iterations_raise_the_power_and_the_toggle_hardens_the_sample(app):
    widget(app, "iterations").set_value(3)
    widget(app, "hard").set_value(True)
    app.run()
    assert not app.exception
    assert metrics(app)["Temperature T = 1/kⁿ"] == "0.125"  # 1 / 2**3
    assert "with 3 iteration(s)" in captions(app)
    assert "k = 2 × 3 (T = 1/kⁿ = 0.125): sample 0's" in captions(app)
    assert "a hard Gumbel-softmax sample" in " ".join(chart_specs(app))
    widget(app, "iterations").set_value(1)
    widget(app, "hard").set_value(False)
    app.run()
    assert "hard Gumbel" not in " ".join(chart_specs(app))


def test_reset_restores_defaults(app):
    defaults = metrics(app)
    changed = {"power": 500.0, "iterations": 2, "distance": "mse",
               "logit_scale": 4.0, "sample": 2, "hard": True}  # fmt: skip
    for name, value in changed.items():
        widget(app, name).set_value(value)
    app.run()
    sharpen_by(app, "temperature")
    widget(app, "temperature").set_value(0.01)
    app.run()
    assert metrics(app) != defaults
    app.button(key="reset_sharpen").click().run()
    assert not app.exception
    for name, (_, _, default, _) in CONTROLS.items():
        assert widget(app, name).value == default, name
    assert metrics(app) == defaults


def training_curves(at):
    return [c for c in at.get("plotly_chart") if "Held-out" in c.proto.spec]


def test_train_draws_the_curves_of_the_chosen_runs():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert not training_curves(at)
    picker = at.multiselect(key="train_choice_sharpen")
    assert picker.value == [
        "softmax (k = 1)",
        "sharpened (k = 2)",
        "straight-through (k = 1)",
    ]
    # The sharpened run's label follows the power, and stays chosen.
    widget(at, "power").set_value(200.0)
    at.run()
    picker = at.multiselect(key="train_choice_sharpen")
    assert "sharpened (k = 200)" in picker.value
    picker.set_value(["softmax (k = 1)", "sharpened (k = 200)"])
    at.number_input(key="train_epochs_sharpen").set_value(2)
    at.button(key="train_go_sharpen").click().run()
    assert not at.exception, at.exception
    runs = at.session_state["train_runs_sharpen"]
    assert [r["label"] for r in runs] == ["softmax (k = 1)", "sharpened (k = 200)"]
    assert runs[1]["params"] == {"power": 200.0, "iterations": 1, "distance": "cosine"}
    for run in runs:
        assert run["epochs"] == [1, 2]
        assert len(run["history"]["val_word_accuracy"]) == 2
    # one chart per metric, the runs drawn over each other
    curves = training_curves(at)
    assert len(curves) == 2
    assert all("softmax (k = 1)" in c.proto.spec for c in curves)
    assert all("sharpened (k = 200)" in c.proto.spec for c in curves)
    # the last run's summary and decoded words
    assert any("held-out word accuracy after" in m.value for m in at.markdown)
    words = [df.value for df in at.dataframe if "target word" in df.value.columns]
    assert len(words) == 1 and len(words[0]) == 6


def test_by_temperature_the_page_follows_the_temperature():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    sharpen_by(at, "temperature")
    widget(at, "temperature").set_value(0.02)
    at.run()
    assert not at.exception, at.exception
    setting = explore.Setting(sharpen_by="temperature", temperature=0.02)
    point = explore.at_setting(setting, 0)
    shown = metrics(at)
    # the power is derived, shown where the temperature was
    assert "Temperature T = 1/kⁿ" not in shown
    assert shown["Power k = 1/T"] == "50"
    assert shown["Loss (batch mean)"] == ui.format_value(point.mean_loss)
    assert shown["‖∂L/∂logits‖"] == ui.format_value(point.grad_norm)
    assert content.derived_caption(setting) in captions(at)
    assert "k = 1/T = 50, applied once" in captions(at)
    # the sweep runs over the temperatures
    assert "Across the temperature range" in [s.value for s in at.subheader]
    sweep = explore.sweep(setting.sweep_setting, 0)
    assert f"{len(sweep.values)} temperatures from 10 down to 0.0001" in captions(at)
    assert f"From T ≈ {sweep.first_zero_grad:.3g} down the gradient" in captions(at)
    # the Play chart opens on T = 0.02, and its frames run over temperatures
    assert f"{setting.describe()}: sample 0's top probability" in captions(at)
    # the snippet sharpens the logits by T
    snippet = next(c.value for c in at.code if "Rescaling" in c.value)
    assert "temperature = 0.02" in snippet
    ast.parse(snippet)
    # the sharpened run trains at the derived power
    assert "temperature (T = 0.02)" in at.multiselect(key="train_choice_sharpen").value


@pytest.mark.parametrize("by", explore.SHARPEN_BY)
def test_the_figures_are_valid_plotly(by):
    setting = explore.Setting(sharpen_by=by, power=200.0, temperature=0.005)
    grid = explore.over_grid(setting.sweep_setting, 0)
    sweep = explore.sweep(setting.sweep_setting, 0)
    built = [figures.play_figure(grid, grid.index(setting.driving), 2)]
    built += [figures.gumbel_over_grid(grid, 2, hard) for hard in (False, True)]
    built += figures.sweep_figures(sweep)
    for fig in built:
        go.Figure(fig.to_plotly_json())  # validates every attribute, frames too
    loss, _, top = figures.sweep_figures(sweep)
    # no marker of the page's value: the sweeps do not change as it moves
    assert not [s for s in loss.layout.shapes if s.type == "line"]
    if by == "temperature":
        # T falls to the right, so the distribution sharpens to the right;
        # the naive form's NaN range is the low-temperature end
        assert loss.layout.xaxis.autorange == "reversed"
        (shade,) = [s for s in top.layout.shapes if s.type == "rect"]
        assert sorted([shade.x0, shade.x1]) == pytest.approx(
            [sweep.values.min(), sweep.first_nan]
        )
    else:
        assert loss.layout.xaxis.autorange is None
    assert f"naive NaN from {'T' if by == 'temperature' else 'k'} ≈" in str(
        top.layout.annotations
    )


def test_a_lesson_note_shows_its_computed_check():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    for lesson in content.LESSONS:
        at.button(key=f"lesson_sharpen_{lesson.title}").click().run()
        assert not at.exception, at.exception
        claim = explore.check_lesson(
            lesson.check, content.CONTROLS.defaults() | lesson.settings, 0
        )
        notes = [i.value for i in at.info if lesson.notice in i.value]
        assert len(notes) == 1, lesson.title
        assert f"✓ Checked: {claim.statement}" in notes[0]
    # moved off the lesson's settings, its note goes
    widget(at, "sharpen_by").set_value("power")
    at.run()
    assert not any(
        lesson.notice in i.value for i in at.info for lesson in content.LESSONS
    )


def test_the_original_attempts_fail_on_the_page_and_run_once_per_seed(count_calls):
    calls, run_all = count_calls(attempts, "run_all")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    headings = [s.value for s in at.subheader]
    assert ATTEMPTS_SECTION in headings
    # After the page's sections, before "Use it in your model" (an expander).
    assert headings.index(ATTEMPTS_SECTION) > headings.index(content.SWEEP["power"])
    texts = [m.value for m in at.markdown]
    alerts = {a.value for a in at.error} | {a.value for a in at.warning}
    keys = set()
    for attempt, outcome in run_all(0):
        keys.add(attempt.key)
        assert any(attempt.title in t for t in texts), attempt.key
        assert outcome.kind != "ok" and outcome.message in alerts, attempt.key
        code = attempt.code.strip()
        assert code in [c.value.strip() for c in at.code], attempt.key
    # the four mistakes the issue lists (the keepdims one twice)
    assert keys == {"argmax_lookup", "no_keepdims", "no_keepdims_square",
                    "high_power", "tiled_embedding"}  # fmt: skip
    assert any("tape.gradient(loss, logits) is None" in a for a in alerts)
    assert any("Incompatible shapes" in a for a in alerts)
    assert calls == [0]
    # A slider move reuses them: no attempt runs again.
    widget(at, "power").set_value(50.0)
    at.run()
    assert not at.exception, at.exception
    assert calls == [0]


# --- the main control is a lookup, and plays in the browser ----------------------

COMPUTES = ("over_grid", "at_setting", "sweep", "facts", "check_lesson",
            "_grid_graph", "_point_graph", "_sweep_graph")  # fmt: skip


def test_after_a_first_pass_a_main_control_move_computes_nothing(count_calls):
    calls = {name: count_calls(explore, name)[0] for name in COMPUTES}
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    moves = {"power": (5.0, 200.0, 1e4, 0.1, 50.0, 2.0),
             "temperature": (0.02, 1e-4, 10.0, 0.2, 0.5)}  # fmt: skip
    for by, values in moves.items():
        sharpen_by(at, by)
        for value in values:  # the first pass fills the caches
            widget(at, by).set_value(value)
            at.run()
        for found in calls.values():
            found.clear()
        for value in values:
            widget(at, by).set_value(value)
            at.run()
            assert not at.exception, at.exception
            assert {n: list(c) for n, c in calls.items() if c} == {}, (by, value)
            setting = explore.Setting(sharpen_by=by, **{by: value})
            point = explore.at_setting(setting, 0)
            shown = metrics(at)
            assert shown["Loss (batch mean)"] == ui.format_value(point.mean_loss)
            assert shown["‖∂L/∂logits‖"] == ui.format_value(point.grad_norm)
            assert shown["Naive: NaN/Inf count"] == str(point.naive_nonfinite)
            for found in calls.values():
                found.clear()


def test_a_main_control_move_changes_only_the_play_chart(app):
    before = chart_specs(app)
    widget(app, "power").set_value(200.0)
    app.run()
    after = chart_specs(app)
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    assert '"frames"' in after[changed[0]]  # the Play chart
    widget(app, "power").set_value(2.0)
    app.run()
    assert chart_specs(app) == before


@pytest.mark.parametrize("by", explore.SHARPEN_BY)
def test_the_play_figure_has_a_frame_per_grid_value_with_its_numbers(by):
    grid = explore.over_grid(explore.SweepSetting(sharpen_by=by), 0)
    active = grid.index(0.005 if by == "temperature" else 200.0)
    fig = full(figures.play_figure(grid, active, 1))
    assert len(fig.frames) == len(grid.values) == 16
    assert fig.layout.sliders[0].active == active
    data = [[t.to_plotly_json() for t in frame.data] for frame in fig.frames]
    assert all(a != b for a, b in zip(data, data[1:], strict=False))
    # past k ≈ 178 the bars no longer change (one-hot, naive NaN): the
    # gradient norm's marker still moves
    bars = [[list(t.y) for t in frame.data if t.type == "bar"] for frame in fig.frames]
    assert bars[0] != bars[active] and bars[active // 2] != bars[active]
    assert [list(t.y) for t in fig.data if t.type == "bar"] == bars[active]
    texts = fig.layout.meta["play"]["summaries"]
    for i, text in enumerate(texts):
        assert text.startswith(f"{grid.describe(i)}: sample 1's top probability")
        assert f"loss {ui.format_value(grid.mean_loss[i], 3)}" in text
        assert f"‖∂L/∂logits‖ {ui.format_value(grid.grad_norm[i], 2)}" in text
        assert f"top probability {ui.format_value(grid.top[i, 1], 3)}" in text
    point = grid.at(grid.values[active])
    assert point.naive_nonfinite == 32
    assert texts[active].endswith("naive form NaN in 32 of 32 entries")
    assert figures.summary(fig) == texts[active]
    # the naive form's NaN entries are marked, not dropped
    nan_marks = next(t for t in fig.frames[active].data if t.name == "naive: NaN")
    assert list(nan_marks.text) == ["NaN"] * 8
    plain = next(t for t in fig.frames[grid.index(grid.values[0])].data
                 if t.name == "naive: NaN")  # fmt: skip
    assert len(plain.x) == 0
    assert fig.layout.yaxis.range == (0, 1.05)
