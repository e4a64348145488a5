"""The "Sampled softmax" page, run headless with Streamlit's AppTest."""

import ast
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui
from lossviz.explore import sampled as explore
from lossviz.explore.attempts import sampled as attempts
from ui.attempts import SECTION as ATTEMPTS_SECTION
from ui.figures import sampled as figures
from ui.figures.play import full
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


def chart_specs(at):
    return [c.proto.spec for c in at.get("plotly_chart")]


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
    for heading in (content.SWEEP_SECTION, content.GRADIENT_SECTION,
                    content.COST_SECTION):  # fmt: skip
        assert heading in headings
    # The Play chart first (beside the slider), three sweeps, the full gradient.
    specs = chart_specs(app)
    assert len(specs) == 5
    assert '"frames"' in specs[0] and '"play"' in specs[0]
    assert not any('"frames"' in spec for spec in specs[1:])
    assert float(shown["Full (ms)"]) > 0 and float(shown["Sampled (ms)"]) > 0
    # No non-finite values at the defaults (the attempts warn of other things).
    assert not [w.value for w in app.warning if "not finite" in w.value]
    assert any("Use it in your model" in e.label for e in app.expander)
    assert any("SampledSoftmax(" in c.value for c in app.code)


def test_the_words_state_the_computed_numbers(app):
    point = explore.at_setting(explore.Setting(), 0)
    facts = explore.intro_facts(explore.Setting(), 0)
    intro = content.intro(facts)
    assert intro.strip() in [m.value for m in app.markdown]
    for number in (f"{facts.full_mean:.4g}", f"{abs(facts.bias):.4g}",
                   f"{facts.uniform_ratio:.2g} times",
                   f"{facts.draws_below} of {facts.num_draws}"):  # fmt: skip
        assert number in intro, number
    captions = [c.value for c in app.caption]
    assert content.draws_caption(point) in captions
    assert f"{point.draws_below} of {point.num_draws}" in content.draws_caption(point)
    grid = explore.count_sweep(explore.Setting().sweep, 0)
    assert content.sweep_caption(grid) in captions
    assert f"{grid.abs_bias[-1]:.4g} at S = 4,096" in content.sweep_caption(grid)
    gradient = content.gradient_caption(
        point, explore.SHOWN_FREQUENT, explore.SHOWN_SAMPLES
    )
    assert (
        gradient in captions
        and f"{point.hits} of the {explore.BATCH} labels" in gradient
    )


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
    note = next(info.value for info in app.info if lesson.notice in info.value)
    claim = explore.check_lesson(
        lesson.check, content.CONTROLS.defaults() | lesson.settings, 0
    )
    assert claim.holds and f"✓ Checked: {claim.statement}" in note
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


def test_the_original_attempts_fail_on_the_page_and_run_once_per_seed(count_calls):
    calls, _ = count_calls(attempts, "run_all")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    headings = [s.value for s in at.subheader]
    assert ATTEMPTS_SECTION in headings
    # After the page's sections, before "Use it in your model" (an expander).
    assert headings.index(ATTEMPTS_SECTION) > headings.index(content.COST_SECTION)
    texts = [m.value for m in at.markdown]
    alerts = {a.value for a in at.error} | {a.value for a in at.warning}
    # The outcomes the page drew (tf.nn's sampler is not seeded in every
    # attempt: a rerun may give other numbers).
    for attempt, outcome in calls.results[0]:
        assert any(attempt.title in t for t in texts), attempt.key
        assert outcome.kind != "ok" and outcome.message in alerts, attempt.key
        assert attempt.code.strip() in [c.value for c in at.code], attempt.key
    # Every mistake the issue lists for this family.
    assert [attempt.key for attempt, _ in calls.results[0]] == [
        "missing_api", "keras_history", "logits_as_inputs", "one_hot_targets",
        "dummy_loss", "sequence_outputs",
    ]  # fmt: skip
    assert any("_keras_history" in a for a in alerts)
    assert calls == [0]
    # A slider move reuses them: no attempt runs again.
    widget(at, "sampled_num_sampled").set_value(8)
    at.run()
    assert not at.exception, at.exception
    assert calls == [0]


def test_the_snippet_trains_with_lazy_adam(tmp_path):
    """The snippet's model, built here from the same template values on a tiny
    vocabulary, trains one step with LazyAdam, evaluates and round-trips."""
    import keras

    import lossviz

    t = content.SNIPPET
    num_classes, num_sampled, batch, steps = 50, 8, 4, 5
    text = content.snippet(num_classes, num_sampled, True)
    ast.parse(text)
    for line in (
        f"keras.layers.Embedding({num_classes}, {t.embed_dim}, mask_zero=True)(inputs)",
        f"keras.layers.LSTM({t.units}, return_sequences=True)(hidden)",
        f"num_classes={num_classes}, num_sampled={num_sampled},",
        "remove_accidental_hits=True,",
        f"model.compile(optimizer=lossviz.LazyAdam(learning_rate={t.learning_rate:g}), "
        "loss=None)",
        f"model.fit([x, y], epochs={t.epochs})",
    ):
        assert line in text, line
    assert '"adam"' not in text and "optimizers.Adam" not in text

    inputs = keras.Input((None,), dtype="int32")
    labels = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(num_classes, t.embed_dim, mask_zero=True)(inputs)
    hidden = keras.layers.LSTM(t.units, return_sequences=True)(hidden)
    probs = lossviz.SampledSoftmax(
        num_classes=num_classes, num_sampled=num_sampled, remove_accidental_hits=True
    )(hidden, labels)
    model = keras.Model([inputs, labels], probs)
    model.compile(optimizer=lossviz.LazyAdam(learning_rate=t.learning_rate), loss=None)
    rng = np.random.default_rng(0)
    x = rng.integers(1, num_classes, (batch, steps)).astype("int32")
    y = rng.integers(1, num_classes, (batch, steps)).astype("int32")
    before = model.get_weights()
    history = model.fit([x, y], epochs=1, batch_size=batch, verbose=0)
    assert isinstance(model.optimizer, lossviz.LazyAdam)
    assert int(model.optimizer.iterations) == 1
    assert np.isfinite(history.history["loss"][0])
    after = model.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    full = model.evaluate([x, y], batch_size=batch, verbose=0)
    assert np.isfinite(full) and full > 0
    predicted = model.predict([x, y], batch_size=batch, verbose=0)
    assert predicted.shape == (batch, steps, num_classes)
    np.testing.assert_allclose(predicted.sum(-1), 1.0, rtol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, lossviz.LazyAdam)
    np.testing.assert_allclose(
        loaded.predict([x, y], batch_size=batch, verbose=0), predicted, rtol=1e-5
    )


# --- the main control is a lookup, and plays in the browser ----------------------

COMPUTES = ("over_grid", "at_setting", "count_sweep", "intro_facts", "check_lesson",
            "timings", "timings_over_grid", "optimizer_rows", "reference",
            "_grid_graph", "_draw_means", "_median_seconds")  # fmt: skip


def test_the_main_control_leads_the_stage():
    assert content.LEAD == ("num_sampled",)
    assert not set(content.LEAD) & {n for group in content.COLUMNS for n in group}
    controls = content.CONTROLS.resolved()
    assert controls["num_sampled"].options == explore.SAMPLED_CHOICES


def test_after_a_first_pass_a_main_control_move_computes_nothing(count_calls):
    calls = {name: count_calls(explore, name)[0] for name in COMPUTES}
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception, at.exception
    moves = (8, 1, 4096, 1024, 64)
    for value in moves:  # the first pass fills the caches
        widget(at, "sampled_num_sampled").set_value(value)
        at.run()
    for found in calls.values():
        found.clear()
    for value in moves:
        widget(at, "sampled_num_sampled").set_value(value)
        at.run()
        assert not at.exception, at.exception
        assert {n: list(c) for n, c in calls.items() if c} == {}, value
        point = explore.at_setting(explore.Setting(num_sampled=value), 0)
        shown = metrics(at)
        assert shown["Bias"] == ui.format_value(point.bias)
        assert shown["Spread"] == ui.format_value(point.spread)
        assert shown["Sampled loss (batch mean)"] == ui.format_value(point.sampled_mean)
        for found in calls.values():
            found.clear()


def test_a_main_control_move_changes_only_the_play_chart(app):
    before = chart_specs(app)
    widget(app, "sampled_num_sampled").set_value(512)
    app.run()
    after = chart_specs(app)
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [0]  # the Play chart
    widget(app, "sampled_num_sampled").set_value(64)
    app.run()
    assert chart_specs(app) == before


def test_the_play_figure_has_a_frame_per_grid_value_with_its_numbers():
    grid = explore.over_grid(explore.SweepSetting(), 0)
    active = grid.index(64)
    fig = full(figures.play_figure(grid, active))
    assert len(fig.frames) == len(grid.values) == len(explore.SAMPLED_CHOICES)
    assert fig.layout.sliders[0].active == active
    assert fig.data == fig.frames[active].data
    bars = [next(list(t.y) for t in f.data if t.type == "bar") for f in fig.frames]
    assert all(a != b for a, b in zip(bars, bars[1:], strict=False))
    assert all(sum(b) == explore.NUM_DRAWS for b in bars)  # every seed in a bin
    heat = [next(t for t in f.data if t.type == "heatmap") for f in fig.frames]
    assert heat[0].z != heat[-1].z
    # One colour scale in every frame, as the opening data spell it.
    opening = next(t for t in fig.data if t.type == "heatmap")
    assert all(h.colorscale == opening.colorscale for h in heat)
    assert all((h.zmin, h.zmax) == (opening.zmin, opening.zmax) for h in heat)
    # Fixed axes: the histogram tightens within one range.
    low, high = fig.layout.xaxis.range
    assert low <= grid.draw_means.min() and grid.draw_means.max() <= high
    assert low <= grid.full_mean <= high and fig.layout.yaxis.range[0] == 0
    full_at = [next(t.x[0] for t in f.data if t.name == "full loss") for f in
               fig.frames]  # fmt: skip
    assert full_at == [grid.full_mean] * len(fig.frames)
    texts = fig.layout.meta["play"]["summaries"]
    for i, text in enumerate(texts):
        num_sampled, point = int(grid.values[i]), grid.at(int(grid.values[i]))
        assert text == (
            f"S = {num_sampled:,} of 10,000: mean "
            f"{ui.format_value(point.draws_mean, 3)}, "
            f"{ui.format_value(abs(point.bias), 3)} below the full loss "
            f"{ui.format_value(point.full_mean, 3)}; spread "
            f"{ui.format_value(point.spread, 3)}"
        )
    assert figures.summary(fig) == texts[active]
    # The spread shrinks from the first frame to the last.
    assert grid.spread[-1] < grid.spread[0] / 10


def test_the_figures_beside_the_play_chart_do_not_depend_on_s():
    grid = explore.over_grid(explore.SweepSetting(num_classes=100), 0)
    error, loss, grad = figures.sweeps(grid.sweep())
    for fig in (error, loss, grad):
        assert not fig.layout.shapes  # no marker of the current S
    heat = figures.full_gradient(grid)
    scale = max(abs(grid.sampled_logit_grad).max(),
                abs(grid.reference.full_logit_grad).max())  # fmt: skip
    assert heat.data[0].zmax == pytest.approx(scale)
    play = full(figures.play_figure(grid, 0))
    assert play.frames[0].data[-1].zmax == pytest.approx(scale)
    assert grid.values[-1] == 100  # the choices above C, capped
