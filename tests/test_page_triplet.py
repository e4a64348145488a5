"""The "Loss as a layer (triplet)" page: runs, every control's range, reset."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz import triplet
from ui.layout import format_value

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "triplet.py")
DEFAULTS = {
    "triplet_margin": 0.1,
    "triplet_hard": 0.25,
    "triplet_pad": 0.3,
    "triplet_confidence": 2.0,
}
RANGES = {
    "triplet_margin": (0.0, 2.0),
    "triplet_hard": (0.0, 1.0),
    "triplet_pad": (0.0, 1.0),
    "triplet_confidence": (0.0, 6.0),
}


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


def set_defaults(at):
    for key, value in DEFAULTS.items():
        at.slider(key=key).set_value(value)
    at.run()
    assert not at.exception


def test_page_shows_the_numbers_lossviz_computes(app):
    set_defaults(app)
    anchor, positive, negative, _ = triplet.example_triplets(
        64, 8, hard_share=DEFAULTS["triplet_hard"], seed=0
    )
    loss = triplet.cosine_triplet_loss(
        anchor, positive, negative, margin=DEFAULTS["triplet_margin"]
    ).numpy()
    shown = metrics(app)
    assert shown["Triplet loss, batch mean"] == format_value(loss.mean())
    assert shown["Share of active triplets"] == format_value((loss > 0).mean())
    assert shown["Triplets with zero gradient"] == format_value((loss == 0).sum())
    y_true, logits = triplet.example_token_batch(
        4, 8, 6, pad_share=DEFAULTS["triplet_pad"], logit_scale=2.0, seed=0
    )
    report = triplet.masked_cross_entropy_report(y_true, logits, pad_id=0)
    masked, _ = layer_metrics(app)
    assert masked == [
        format_value(report[name]) for name in ("loss", "perplexity", "masked_accuracy")
    ]
    assert len(app.get("plotly_chart")) == 7
    assert not app.warning  # nothing non-finite at the defaults


def test_moving_the_margin_changes_the_loss_metric(app):
    set_defaults(app)
    before = metrics(app)
    app.slider(key="triplet_margin").set_value(0.8).run()
    assert not app.exception
    after = metrics(app)
    assert after["Triplet loss, batch mean"] != before["Triplet loss, batch mean"]
    assert float(after["Triplet loss, batch mean"]) > float(
        before["Triplet loss, batch mean"]
    )
    assert float(after["Share of active triplets"]) > float(
        before["Share of active triplets"]
    )


@pytest.mark.parametrize("key", list(RANGES))
def test_every_control_at_min_default_max(app, key):
    set_defaults(app)
    for value in (*RANGES[key], DEFAULTS[key]):
        app.slider(key=key).set_value(value).run()
        assert not app.exception, (key, value)
        assert all("⚠" not in m.value for m in app.metric), (key, value)


def test_all_padding_gives_zero_loss_and_perplexity_one(app):
    set_defaults(app)
    app.slider(key="triplet_pad").set_value(1.0).run()
    masked, unmasked = layer_metrics(app)
    assert masked[:2] == ["0", "1"]
    assert float(unmasked[0]) > 0


def test_reset_restores_defaults(app):
    set_defaults(app)
    default_metrics = [m.value for m in app.metric]
    for key, (_, high) in RANGES.items():
        app.slider(key=key).set_value(high)
    app.run()
    assert [m.value for m in app.metric] != default_metrics
    app.button(key="reset_triplet").click().run()
    assert not app.exception
    for key, value in DEFAULTS.items():
        assert np.isclose(app.slider(key=key).value, value)
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
    # The last run's extras: held-out questions and the answer ranked first.
    assert "held-out recall@1" in app.markdown[-1].value
    assert len(app.dataframe[1].value) == len(runs[1]["examples"]) - 1
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
    assert at.title[0].value == "Loss as a layer (triplet)"
    at.multiselect(key="train_choice_triplet").set_value(["masked LM (add_loss)"])
    at.number_input(key="train_epochs_triplet").set_value(1)
    at.button(key="train_go_triplet").click().run()
    assert not at.exception
    (run,) = at.session_state["train_runs_triplet"]
    assert run["history"]["perplexity"]
    assert "next-token predictions" in at.markdown[-1].value
