"""The "Sampled softmax" page, run headless with Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from lossviz.explore import sampled as explore
from views.content import sampled as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "sampled.py")

# key -> (widget, min, default, max)
CONTROLS = {
    "sampled_num_sampled": ("select_slider", 1, 64, 4096),
    "sampled_num_classes": ("select_slider", 100, 10_000, 50_000),
    "sampled_remove_accidental_hits": ("toggle", False, True, True),
    "sampled_zipf_labels": ("toggle", False, True, True),
}
METRICS = {
    "Full loss (batch mean)",
    "Sampled loss (batch mean)",
    "Bias",
    "Spread",
    "Full (ms)",
    "Sampled (ms)",
    "Full ÷ sampled",
}


def widget(at, key):
    return getattr(at, CONTROLS[key][0])(key=key)


def metrics(at):
    return {m.label: m.value for m in at.metric}


def estimates(at):
    """The metrics that do not depend on timing."""
    shown = metrics(at)
    return {key: shown[key] for key in ("Full loss (batch mean)",
            "Sampled loss (batch mean)", "Bias", "Spread")}  # fmt: skip


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def test_page_runs_with_title_formula_and_metrics(app):
    assert app.title[0].value == "Sampled softmax"
    assert app.latex, "the formula is shown"
    shown = metrics(app)
    assert set(shown) == METRICS
    assert all("⚠" not in value for value in shown.values())
    # The sampled loss underestimates the full one, by more than its spread.
    assert float(shown["Bias"]) < 0
    assert -float(shown["Bias"]) > float(shown["Spread"])
    full = float(shown["Full loss (batch mean)"])
    assert float(shown["Sampled loss (batch mean)"]) < full
    # What explore computed, as the page formats it.
    point = explore.at_setting(explore.Setting(), 0)
    assert shown["Bias"] == ui.format_value(point.bias)
    assert shown["Spread"] == ui.format_value(point.spread)
    headings = [s.value for s in app.subheader]
    for heading in (content.DRAWS_SECTION, content.SWEEP_SECTION,
                    content.GRADIENT_SECTION, content.COST_SECTION):  # fmt: skip
        assert heading in headings
    assert len(app.get("plotly_chart")) == 6
    assert float(shown["Full (ms)"]) > 0 and float(shown["Sampled (ms)"]) > 0
    assert not app.warning, "no non-finite values at the defaults"
    assert any("Use it in your model" in e.label for e in app.expander)
    assert any("SampledSoftmax(" in c.value for c in app.code)


def test_every_control_at_min_default_and_max(app):
    for key, (_, low, default, high) in CONTROLS.items():
        for value in (low, high, default):
            widget(app, key).set_value(value)
            app.run()
            assert not app.exception, f"{key}={value!r}: {app.exception}"
            assert widget(app, key).value == value
            assert all("⚠" not in v for v in metrics(app).values()), (key, value)


def test_more_sampled_classes_change_the_loss_and_shrink_the_bias(app):
    before = estimates(app)
    widget(app, "sampled_num_sampled").set_value(1024)
    app.run()
    after = estimates(app)
    assert after["Full loss (batch mean)"] == before["Full loss (batch mean)"]
    assert after["Sampled loss (batch mean)"] != before["Sampled loss (batch mean)"]
    assert abs(float(after["Bias"])) < abs(float(before["Bias"]))
    assert float(after["Spread"]) < float(before["Spread"])
    widget(app, "sampled_num_sampled").set_value(64)
    app.run()
    assert estimates(app) == before


def test_uniform_labels_make_the_bias_larger(app):
    zipf = estimates(app)
    widget(app, "sampled_zipf_labels").set_value(False)
    app.run()
    uniform = estimates(app)
    assert abs(float(uniform["Bias"])) > abs(float(zipf["Bias"]))
    widget(app, "sampled_zipf_labels").set_value(True)
    app.run()
    assert estimates(app) == zipf


def test_sampled_classes_capped_at_the_vocabulary(app):
    widget(app, "sampled_num_classes").set_value(100)
    widget(app, "sampled_num_sampled").set_value(4096)
    app.run()
    assert not app.exception
    assert content.capped(100) in [c.value for c in app.caption]
    assert "S=100 + LazyAdam" in app.multiselect(key="train_choice_sampled").value[0]
    widget(app, "sampled_num_classes").set_value(10_000)
    widget(app, "sampled_num_sampled").set_value(64)
    app.run()


def test_measure_again_times_anew(app):
    nonce = app.session_state["sampled_timing_nonce"] if (
        "sampled_timing_nonce" in app.session_state) else 0  # fmt: skip
    app.button(key="sampled_remeasure").click().run()
    assert not app.exception
    assert app.session_state["sampled_timing_nonce"] == nonce + 1
    shown = metrics(app)
    assert float(shown["Full (ms)"]) > 0 and float(shown["Sampled (ms)"]) > 0


def test_a_lesson_sets_the_controls_and_says_what_to_notice(app):
    lesson = content.LESSONS[0]
    app.button(key=f"lesson_sampled_{lesson.title}").click().run()
    assert not app.exception, app.exception
    for name, value in lesson.settings.items():
        assert app.session_state[f"sampled_{name}"] == value
    assert any(lesson.notice in info.value for info in app.info)
    assert metrics(app)["Bias"] == ui.format_value(
        explore.at_setting(explore.Setting(num_sampled=8), 0).bias
    )
    widget(app, "sampled_num_sampled").set_value(64)
    app.run()


def test_reset_restores_defaults(app):
    defaults = estimates(app)
    changed = {"sampled_num_sampled": 512, "sampled_num_classes": 1_000,
               "sampled_remove_accidental_hits": False,
               "sampled_zipf_labels": False}  # fmt: skip
    for key, value in changed.items():
        widget(app, key).set_value(value)
    app.run()
    assert estimates(app) != defaults
    app.button(key="reset_sampled").click().run()
    assert not app.exception
    for key, (_, _, default, _) in CONTROLS.items():
        assert widget(app, key).value == default, key
    assert estimates(app) == defaults


def test_train_draws_the_curves_and_follows_the_controls(app):
    widget(app, "sampled_num_classes").set_value(1_000)
    app.run()
    charts_before = len(app.get("plotly_chart"))
    app.number_input(key="train_epochs_sampled").set_value(1)
    app.button(key="train_go_sampled").click().run()
    assert not app.exception, app.exception
    runs = app.session_state["train_runs_sampled"]
    assert [r["label"] for r in runs] == [
        "sampled S=64 + LazyAdam (C=1,000)",
        "sampled S=64 + Adam (C=1,000)",
        "full softmax + Adam (C=1,000)",
    ]
    assert [r["params"] for r in runs] == [
        {"num_sampled": 64, "optimizer": "lazy_adam", "vocab_size": 1_000},
        {"num_sampled": 64, "optimizer": "adam", "vocab_size": 1_000},
        {"vocab_size": 1_000},
    ]
    for run in runs:
        assert run["epochs"] == [1]
        assert set(run["history"]) == {"loss", "val_perplexity", "seconds"}
        # Trained a little: below the untrained model's ~1000.
        assert run["history"]["val_perplexity"][0] < 900, run
    # One chart per metric: loss, held-out perplexity, seconds.
    assert len(app.get("plotly_chart")) == charts_before + 3
    tables = [t.value for t in app.dataframe]
    summary = next(t for t in tables if "run" in t.columns)
    assert list(summary["run"]) == [
        f"#{i + 1} {r['label']}" for i, r in enumerate(runs)
    ]
    # The last run's summary and its next-word guesses.
    assert "held-out perplexity after training" in app.markdown[-1].value
    guesses = next(t for t in tables if "top guesses" in t.columns)
    assert len(guesses) == len(runs[-1]["rows"]) > 0

    # A new S keeps the picked runs picked, under their new labels.
    widget(app, "sampled_num_sampled").set_value(256)
    app.run()
    assert not app.exception
    assert app.multiselect(key="train_choice_sampled").value == [
        "sampled S=256 + LazyAdam (C=1,000)",
        "sampled S=256 + Adam (C=1,000)",
        "full softmax + Adam (C=1,000)",
    ]
    app.multiselect(key="train_choice_sampled").set_value(
        ["sampled S=256 + LazyAdam (C=1,000)"]
    )
    app.button(key="train_go_sampled").click().run()
    assert not app.exception, app.exception
    runs = app.session_state["train_runs_sampled"]
    assert [r["number"] for r in runs] == [1, 2, 3, 4]
    assert runs[-1]["params"] == {
        "num_sampled": 256,
        "optimizer": "lazy_adam",
        "vocab_size": 1_000,
    }
    app.button(key="train_clear_sampled").click().run()
    assert app.session_state["train_runs_sampled"] == []
    widget(app, "sampled_num_classes").set_value(10_000)
    widget(app, "sampled_num_sampled").set_value(64)
    app.run()
    assert app.multiselect(key="train_choice_sampled").value == [
        "sampled S=64 + LazyAdam (C=10,000)"
    ]
