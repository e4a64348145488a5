"""The "Multi-label ranking (BP-MLL)" page: numbers, every control, reset, router."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import lossviz  # noqa: F401  # TensorFlow first, quietly, before keras
from lossviz import multilabel
from ui.layout import format_value

# isort: split
import keras

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "multilabel.py")
TITLE = "Multi-label ranking (BP-MLL)"
SLIDERS = {  # key: (min, default, max)
    "ml_scale": (0.5, 3.0, 60.0),
    "ml_density": (0.0, 0.4, 1.0),
}
SELECT_SLIDERS = {
    "ml_labels": (2, 6, 256),
    "ml_timing_batch": (8, 8, 128),
}
LOSS = "BP-MLL (batch mean)"
BCE = "Cross-entropy (mean)"
NAIVE = "Factorised (mean)"
NO_PAIRS = "Samples without pairs"
FORM_COLUMNS = ["loop", "pairwise", "log space"]


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def metrics(at):
    return {m.label: m.value for m in at.metric}


def set_defaults(at):
    for key, (_, default, _) in SLIDERS.items():
        at.slider(key=key).set_value(default)
    for key, (_, default, _) in SELECT_SLIDERS.items():
        at.select_slider(key=key).set_value(default)
    at.toggle(key="ml_bce_grad").set_value(False)
    at.run()
    assert not at.exception, at.exception


def expected_metrics(scale=3.0, density=0.4, num_labels=6):
    """What the page should show, from lossviz and Keras directly."""
    y_true, logits = multilabel.example_batch(
        8, num_labels, label_density=density, logit_scale=scale, seed=0
    )
    loss = multilabel.bpmll_loss(y_true, logits).numpy()
    bce = keras.losses.binary_crossentropy(y_true, logits, from_logits=True).numpy()
    naive = multilabel.bpmll_loss_factorised(y_true, logits).numpy()
    no_pairs = int(np.sum((y_true.sum(1) == 0) | (y_true.sum(1) == num_labels)))
    return {
        LOSS: format_value(np.mean(loss)),
        BCE: format_value(np.mean(bce)),
        NAIVE: format_value(np.mean(naive)),
        NO_PAIRS: format_value(no_pairs),
    }


def test_page_shows_the_numbers_lossviz_computes(app):
    set_defaults(app)
    assert app.title[0].value == TITLE
    assert metrics(app) == expected_metrics()
    assert metrics(app)[NO_PAIRS] == "2"
    assert any("no positive or no negative" in info.value for info in app.info)
    # Nothing non-finite in the example at the defaults; only the sweep, which
    # runs to a scale of 60, passes the float32 range.
    warnings = [w.value for w in app.warning]
    assert warnings and all("over the sweep" in w for w in warnings), warnings
    assert len(app.get("plotly_chart")) == 5  # bars, 2 heatmaps, 2 sweep curves


def test_forms_table_gives_one_number_per_sample(app):
    set_defaults(app)
    table = app.dataframe[0].value
    assert list(table["sample"][:2]) == ["s0 no positive", "s1 all positive"]
    values = {name: table[name].astype(float).to_numpy() for name in FORM_COLUMNS}
    y_true, logits = multilabel.example_batch(
        8, 6, label_density=0.4, logit_scale=3.0, seed=0
    )
    reference = multilabel.bpmll_loss_loop(y_true, logits).numpy()
    for name in FORM_COLUMNS:
        np.testing.assert_allclose(values[name], reference, rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(values[FORM_COLUMNS[0]][:2], 0.0)
    timing = app.dataframe[1].value
    assert list(timing["form"]) == [*FORM_COLUMNS, "factorised"]
    assert all(float(t) > 0 for t in timing["median time (ms)"])


def test_moving_the_logit_scale_changes_the_loss_metric(app):
    set_defaults(app)
    before = metrics(app)
    app.slider(key="ml_scale").set_value(10.0).run()
    assert not app.exception, app.exception
    after = metrics(app)
    assert after[LOSS] != before[LOSS]
    assert float(after[LOSS]) > float(before[LOSS])
    assert after == expected_metrics(scale=10.0)


@pytest.mark.parametrize("key", list(SLIDERS))
def test_every_slider_at_min_default_max(app, key):
    set_defaults(app)
    low, default, high = SLIDERS[key]
    for value in (low, high, default):
        app.slider(key=key).set_value(value).run()
        assert not app.exception, (key, value, app.exception)


@pytest.mark.parametrize("key", list(SELECT_SLIDERS))
def test_every_select_slider_at_min_default_max(app, key):
    set_defaults(app)
    low, default, high = SELECT_SLIDERS[key]
    for value in (low, high, default):
        app.select_slider(key=key).set_value(value).run()
        assert not app.exception, (key, value, app.exception)


def test_toggle_and_remeasure_button(app):
    set_defaults(app)
    charts = len(app.get("plotly_chart"))
    app.toggle(key="ml_bce_grad").set_value(True).run()
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == charts + 1
    app.button(key="ml_remeasure").click().run()
    assert not app.exception, app.exception
    assert len(app.dataframe[1].value) == 4


def test_all_rows_without_pairs_give_zero(app):
    set_defaults(app)
    app.slider(key="ml_density").set_value(0.0).run()
    shown = metrics(app)
    assert shown[LOSS] == "0" and shown[NO_PAIRS] == "8"
    assert float(shown[BCE]) > 0  # cross-entropy still trains every sample


def test_overflow_is_shown_as_such(app):
    set_defaults(app)
    app.slider(key="ml_scale").set_value(60.0).run()
    assert not app.exception, app.exception
    shown = metrics(app)
    assert shown[LOSS] == "+Inf ⚠"
    assert shown == expected_metrics(scale=60.0)
    warnings = " ".join(w.value for w in app.warning)
    assert "BP-MLL per sample" in warnings and "not finite" in warnings


def test_log_space_stays_finite_where_the_product_overflows(app):
    set_defaults(app)
    app.select_slider(key="ml_labels").set_value(256)
    app.slider(key="ml_scale").set_value(46.5).run()
    assert not app.exception, app.exception
    shown = metrics(app)
    assert shown == expected_metrics(scale=46.5, num_labels=256)
    assert "⚠" not in shown[LOSS]
    assert shown[NAIVE] == "+Inf ⚠"


def test_reset_restores_defaults(app):
    set_defaults(app)
    defaults = metrics(app)
    for key, (_, _, high) in SLIDERS.items():
        app.slider(key=key).set_value(high)
    for key, (_, _, high) in SELECT_SLIDERS.items():
        app.select_slider(key=key).set_value(high)
    app.toggle(key="ml_bce_grad").set_value(True)
    app.run()
    assert metrics(app) != defaults
    app.button(key="reset_multilabel").click().run()
    assert not app.exception, app.exception
    for key, (_, default, _) in SLIDERS.items():
        assert np.isclose(app.slider(key=key).value, default), key
    for key, (_, default, _) in SELECT_SLIDERS.items():
        assert app.select_slider(key=key).value == default, key
    assert app.toggle(key="ml_bce_grad").value is False
    assert metrics(app) == defaults


def test_train_draws_the_curves_and_the_extras(app):
    set_defaults(app)
    charts = len(app.get("plotly_chart"))
    app.number_input(key="train_epochs_multilabel").set_value(2)
    app.button(key="train_go_multilabel").click().run()
    assert not app.exception, app.exception
    runs = app.session_state["train_runs_multilabel"]
    assert [r["label"] for r in runs] == ["binary cross-entropy", "BP-MLL"]
    assert [r["variant"] for r in runs] == ["bce", "bpmll"]
    for run in runs:
        assert run["epochs"] == [1, 2]
        assert set(run["history"]) == {"loss", "ranking_loss", "hamming_loss"}
    # One chart per metric: training loss, ranking loss, Hamming loss.
    assert len(app.get("plotly_chart")) == charts + 3
    table = app.dataframe[2].value
    assert list(table["run"]) == ["#1 binary cross-entropy", "#2 BP-MLL"]
    assert list(table["ranking_loss"]) == [
        format_value(r["history"]["ranking_loss"][-1]) for r in runs
    ]
    # The last run's extras: its held-out summary and first samples.
    summary = runs[-1]["examples"][0]
    extras = app.markdown[-1].value
    assert extras.startswith("**BP-MLL** on 200 held-out samples")
    assert format_value(summary["after"]["ranking_loss"], 3) in extras
    assert len(app.dataframe[3].value) == len(runs[-1]["examples"]) - 1
    app.button(key="train_clear_multilabel").click().run()
    assert app.session_state["train_runs_multilabel"] == []
    assert len(app.get("plotly_chart")) == charts


def test_page_trains_inside_the_app():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    at.switch_page("views/multilabel.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == TITLE
    at.multiselect(key="train_choice_multilabel").set_value(["BP-MLL"])
    at.number_input(key="train_epochs_multilabel").set_value(1)
    at.button(key="train_go_multilabel").click().run()
    assert not at.exception, at.exception
    (run,) = at.session_state["train_runs_multilabel"]
    assert run["history"]["ranking_loss"]
    assert at.markdown[-1].value.startswith("**BP-MLL**")
