"""The "Sampled softmax" page, run headless with Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "sampled_softmax.py")

# key -> (widget, min, default, max)
CONTROLS = {
    "ss_sampled": ("select_slider", 1, 64, 4096),
    "ss_vocab": ("select_slider", 100, 10_000, 50_000),
    "ss_hits": ("toggle", False, True, True),
    "ss_zipf": ("toggle", False, True, True),
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
    widget(app, "ss_sampled").set_value(1024)
    app.run()
    after = estimates(app)
    assert after["Full loss (batch mean)"] == before["Full loss (batch mean)"]
    assert after["Sampled loss (batch mean)"] != before["Sampled loss (batch mean)"]
    assert abs(float(after["Bias"])) < abs(float(before["Bias"]))
    assert float(after["Spread"]) < float(before["Spread"])
    widget(app, "ss_sampled").set_value(64)
    app.run()
    assert estimates(app) == before


def test_uniform_labels_make_the_bias_larger(app):
    zipf = estimates(app)
    widget(app, "ss_zipf").set_value(False)
    app.run()
    uniform = estimates(app)
    assert abs(float(uniform["Bias"])) > abs(float(zipf["Bias"]))
    widget(app, "ss_zipf").set_value(True)
    app.run()
    assert estimates(app) == zipf


def test_sampled_classes_capped_at_the_vocabulary(app):
    widget(app, "ss_vocab").set_value(100)
    widget(app, "ss_sampled").set_value(4096)
    app.run()
    assert not app.exception
    assert any("capped at the vocabulary size: S = 100" in c.value for c in app.caption)
    widget(app, "ss_vocab").set_value(10_000)
    widget(app, "ss_sampled").set_value(64)
    app.run()


def test_measure_again_times_anew(app):
    app.button(key="ss_remeasure").click().run()
    assert not app.exception
    shown = metrics(app)
    assert float(shown["Full (ms)"]) > 0 and float(shown["Sampled (ms)"]) > 0


def test_reset_restores_defaults(app):
    defaults = estimates(app)
    changed = {"ss_sampled": 512, "ss_vocab": 1_000, "ss_hits": False,
               "ss_zipf": False}  # fmt: skip
    for key, value in changed.items():
        widget(app, key).set_value(value)
    app.run()
    assert estimates(app) != defaults
    app.button(key="reset_sampled_softmax").click().run()
    assert not app.exception
    for key, (_, _, default, _) in CONTROLS.items():
        assert widget(app, key).value == default, key
    assert estimates(app) == defaults


def test_page_runs_inside_a_router():
    router = f"""
import streamlit as st
st.navigation([st.Page({PAGE!r}, title="Sampled softmax", default=True)]).run()
"""
    at = AppTest.from_string(router, default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Sampled softmax"
    assert set(metrics(at)) == METRICS


def test_page_runs_inside_the_app():
    missing = [
        path
        for path in ROOT.joinpath("app.py").read_text().split('"')
        if path.startswith("pages/") and not ROOT.joinpath(path).exists()
    ]
    if missing:
        pytest.skip(f"the app's other pages are not written yet: {missing}")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    at.switch_page("pages/sampled_softmax.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Sampled softmax"
    assert set(metrics(at)) == METRICS
