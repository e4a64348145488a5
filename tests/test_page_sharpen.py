"""The "Softmax → one-hot" page, run headless with Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sharpening.py")

# key -> (min, default, max)
CONTROLS = {
    "sh_power": ("select_slider", 0.1, 2.0, 1e4),
    "sh_iterations": ("slider", 1, 1, 4),
    "sh_distance": ("selectbox", "cosine", "cosine", "mse"),
    "sh_scale": ("slider", 0.5, 2.0, 8.0),
    "sh_sample": ("selectbox", 0, 0, 3),
    "sh_hard": ("toggle", False, False, True),
}


def widget(at, key):
    return getattr(at, CONTROLS[key][0])(key=key)


def metrics(at):
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


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


def test_every_chart_has_a_text_summary(app):
    # ui.plot writes a summary of each figure's own data under it
    captions = " ".join(c.value for c in app.caption)
    for name in ("loss, batch mean:", "‖∂L/∂logits‖:", "log space:", "softmax p:"):
        assert name in captions, name


def test_every_control_at_min_default_and_max(app):
    for key, (_, low, default, high) in CONTROLS.items():
        for value in (low, high, default):
            widget(app, key).set_value(value)
            app.run()
            assert not app.exception, f"{key}={value!r}: {app.exception}"
            assert widget(app, key).value == value


def test_moving_the_power_changes_the_loss_and_breaks_only_the_naive_form(app):
    before = metrics(app)
    widget(app, "sh_power").set_value(200.0)
    app.run()
    after = metrics(app)
    assert after["Loss (batch mean)"] != before["Loss (batch mean)"]
    assert "⚠" not in after["Loss (batch mean)"]
    assert float(after["‖∂L/∂logits‖"]) < float(before["‖∂L/∂logits‖"])
    assert after["Temperature 1/kⁿ"] == "0.005"
    assert after["Naive: NaN/Inf count"] == "32"
    assert any("naive x**k" in w.value for w in app.warning)
    widget(app, "sh_power").set_value(2.0)
    app.run()
    assert metrics(app) == before


def test_reset_restores_defaults(app):
    defaults = metrics(app)
    changed = {"sh_power": 500.0, "sh_iterations": 2, "sh_distance": "mse",
               "sh_scale": 4.0, "sh_sample": 2, "sh_hard": True}  # fmt: skip
    for key, value in changed.items():
        widget(app, key).set_value(value)
    app.run()
    assert metrics(app) != defaults
    app.button(key="reset_sharpening").click().run()
    assert not app.exception
    for key, (_, _, default, _) in CONTROLS.items():
        assert widget(app, key).value == default, key
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
    widget(at, "sh_power").set_value(200.0)
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
    # the last run's decoded words
    assert any("held-out word accuracy" in m.value for m in at.markdown)
    words = [df.value for df in at.dataframe if "target word" in df.value.columns]
    assert len(words) == 1 and len(words[0]) == 6
