"""The "Softmax → one-hot" page, run headless with Streamlit's AppTest.

The numbers are tested in tests/test_explore_sharpen.py; here, what only the
page does: it runs, its controls move what they should, it shows the explore
layer's numbers as they are, and its Train panel runs.
"""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from lossviz.explore import sharpen as explore
from views.content import sharpen as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sharpen.py")

# name -> (widget, min, default, max)
CONTROLS = {
    "power": ("select_slider", 0.1, 2.0, 1e4),
    "iterations": ("slider", 1, 1, 10),
    "distance": ("selectbox", "cosine", "cosine", "mse"),
    "logit_scale": ("slider", 0.5, 2.0, 8.0),
    "sample": ("selectbox", 0, 0, 3),
    "hard": ("toggle", False, False, True),
}


def widget(at, name):
    return getattr(at, CONTROLS[name][0])(key=content.CONTROLS.key(name))


def metrics(at):
    return {m.label: m.value for m in at.metric}


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
    # the sweep spans the power control's range
    assert explore.SWEEP_POWERS[0] == pytest.approx(controls["power"].options[0])
    assert explore.SWEEP_POWERS[-1] == pytest.approx(controls["power"].options[-1])


def test_page_runs_with_title_formula_and_metrics(app):
    assert app.title[0].value == "Softmax → one-hot"
    assert app.latex, "the formula is shown"
    shown = metrics(app)
    assert set(shown) == {
        "Loss (batch mean)",
        "‖∂L/∂logits‖",
        "Temperature 1/kⁿ",
        "Naive: NaN/Inf count",
    }
    assert shown["Temperature 1/kⁿ"] == "0.5"
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
    sweep = explore.power_sweep(explore.SweepSetting(), 0)
    assert f"{len(sweep.powers)} powers from 0.1 to 10000" in captions(app)
    assert f"From k ≈ {sweep.first_zero_grad:.3g} the gradient" in captions(app)


def test_every_chart_has_a_text_summary(app):
    # ui.plot writes a summary of each figure's own data under it
    for name in ("loss, batch mean:", "‖∂L/∂logits‖:", "log space:", "softmax p:"):
        assert name in captions(app), name


def test_every_control_at_min_default_and_max(app):
    for name, (_, low, default, high) in CONTROLS.items():
        for value in (low, high, default):
            widget(app, name).set_value(value)
            app.run()
            assert not app.exception, f"{name}={value!r}: {app.exception}"
            assert widget(app, name).value == value


def test_moving_the_power_changes_the_loss_and_breaks_only_the_naive_form(app):
    before = metrics(app)
    widget(app, "power").set_value(200.0)
    app.run()
    after = metrics(app)
    assert after["Loss (batch mean)"] != before["Loss (batch mean)"]
    assert "⚠" not in after["Loss (batch mean)"]
    assert float(after["‖∂L/∂logits‖"]) < float(before["‖∂L/∂logits‖"])
    assert after["Temperature 1/kⁿ"] == "0.005"
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
    assert metrics(app)["Temperature 1/kⁿ"] == "0.125"  # 1 / 2**3
    assert "with 3 iteration(s)" in captions(app)
    assert "hard Gumbel-softmax sample:" in captions(app)
    widget(app, "iterations").set_value(1)
    widget(app, "hard").set_value(False)
    app.run()
    assert "hard Gumbel" not in captions(app)


def test_reset_restores_defaults(app):
    defaults = metrics(app)
    changed = {"power": 500.0, "iterations": 2, "distance": "mse",
               "logit_scale": 4.0, "sample": 2, "hard": True}  # fmt: skip
    for name, value in changed.items():
        widget(app, name).set_value(value)
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
