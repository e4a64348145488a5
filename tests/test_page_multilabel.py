"""The "Multi-label ranking (BP-MLL)" page: it lays out what
``lossviz.explore.multilabel`` computes, reacts to every control, resets,
trains, and runs inside the router. The numbers themselves are tested in
tests/test_explore_multilabel.py."""

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.explore import multilabel as explore
from lossviz.explore.attempts import multilabel as attempts
from ui.attempts import SECTION
from ui.figures import multilabel as figures
from ui.figures.play import full
from ui.layout import format_value
from views.content import multilabel as content

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "views" / "multilabel.py")
TITLE = "Multi-label ranking (BP-MLL)"
SLIDERS = {  # key: (min, default, max)
    "multilabel_logit_scale": (0.5, 3.0, 60.0),
    "multilabel_label_density": (0.0, 0.4, 1.0),
}
SELECT_SLIDERS = {
    "multilabel_num_labels": (2, 6, 256),
    "multilabel_timing_batch": (8, 8, 128),
}
TOGGLE = "multilabel_bce_grad"
LOSS = "BP-MLL (batch mean)"
BCE = "Cross-entropy (mean)"
NAIVE = "Factorised (mean)"
NO_PAIRS = "Samples without pairs"
FORMS = ["loop", "pairwise", "log space", "factorised"]


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
    at.toggle(key=TOGGLE).set_value(False)
    at.run()
    assert not at.exception, at.exception


def expected_metrics(**setting):
    point = explore.at_setting(explore.Setting(**setting), seed=0)
    return {
        LOSS: format_value(point.mean_loss),
        BCE: format_value(point.mean_bce),
        NAIVE: format_value(point.mean_factorised),
        NO_PAIRS: format_value(point.num_without_pairs),
    }


def test_page_shows_what_explore_computes(app):
    set_defaults(app)
    assert app.title[0].value == TITLE
    assert metrics(app) == expected_metrics()
    assert metrics(app)[NO_PAIRS] == "2"
    infos = [info.value for info in app.info]
    assert any(v.startswith("2 of 8 samples have no positive") for v in infos)
    # Nothing non-finite in the example at the defaults; only the sweep, which
    # runs to a scale of 60, passes the float32 range.
    # (The other warnings are the original attempts' wrong results.)
    warnings = [w.value for w in app.warning if "not finite" in w.value]
    assert warnings and all("over the sweep" in w for w in warnings), warnings
    # the Play chart, the labels, 2 sweep curves, the flipped sign's 2 curves
    assert len(app.get("plotly_chart")) == 6
    play = json.loads(app.get("plotly_chart")[0].proto.spec)
    grid = explore.over_grid(explore.SweepSetting(), seed=0)
    assert len(play["frames"]) == len(grid.values) == 120
    assert play["layout"]["sliders"][0]["active"] == grid.index(3.0)
    caption = " ".join(c.value for c in app.caption)
    assert figures.play_summary(grid, grid.index(3.0)) in caption
    sweep = explore.scale_sweep(explore.SweepSetting(), seed=0)
    caption = " ".join(c.value for c in app.caption)
    assert content.sweep_caption(sweep) in caption
    assert f"overflows from a scale of {sweep.factorised_overflow:g}" in caption
    assert f"batch mean overflows from a scale of {sweep.loss_overflow:g}" in caption
    point = explore.at_setting(explore.Setting(), seed=0)
    assert content.gradient_caption(point) in caption
    wide = explore.scale_sweep(explore.SweepSetting(num_labels=256), seed=0)
    intro = content.intro(sweep, wide, explore.FLOAT32_MAX, explore.LOG_FLOAT32_MAX)
    assert any(m.value == intro.strip() for m in app.markdown)
    train = content.train_intro(explore.train_facts())
    assert any(m.value == train.strip() for m in app.markdown)


def test_the_original_attempts_fail_on_the_page(app):
    set_defaults(app)
    sections = [s.value for s in app.subheader]
    assert SECTION in sections
    # After the main sections, before "Use it in your model" and training.
    assert sections.index(SECTION) > sections.index(
        "Loss and gradient as the logit scale grows"
    )
    assert sections.index(SECTION) < sections.index("Train it")
    outcomes = attempts.run_all(seed=0)
    assert [a.key for a, _ in outcomes] == [
        "python_loop", "flipped_sign", "upper_triangle", "outer_product"
    ]  # fmt: skip
    alerts = [e.value for e in app.error] + [w.value for w in app.warning]
    for attempt, outcome in outcomes:
        assert outcome.kind != "ok", attempt.key
        assert outcome.message in alerts, attempt.key
        assert any(c.value == attempt.code.strip() for c in app.code), attempt.key
    loop = dict(outcomes)[attempts.ATTEMPTS[0]]
    assert "cannot be interpreted as an integer" in loop.message
    caption = " ".join(c.value for c in app.caption)
    assert content.descent_caption(attempts.flipped_descent(0)) in caption


def test_a_slider_move_does_not_rerun_the_attempts(count_calls):
    # A new function is a new cache: the first run computes, moves do not.
    calls, _ = count_calls(attempts, "run_all")
    descents, _ = count_calls(attempts, "flipped_descent")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    # (run_all's own flipped-sign attempt reads the descent too)
    assert calls == [0] and set(descents) == {0}
    first = len(descents)
    at.slider(key="multilabel_logit_scale").set_value(10.0).run()
    at.select_slider(key="multilabel_num_labels").set_value(12).run()
    assert not at.exception, at.exception
    assert calls == [0] and len(descents) == first


def test_forms_and_timing_tables(app):
    set_defaults(app)
    point = explore.at_setting(explore.Setting(), seed=0)
    table = app.dataframe[0].value
    assert list(table.columns) == ["sample", *FORMS]
    assert list(table["sample"]) == list(point.sample_names)
    for name in FORMS:
        shown = [format_value(v, digits=7) for v in point.forms[name]]
        assert list(table[name]) == shown, name
    timing = app.dataframe[1].value
    assert list(timing["form"]) == FORMS
    assert list(timing["how"]) == [content.FORM_NOTES[f][0] for f in FORMS]
    assert all(float(t) > 0 for t in timing["median time (ms)"])
    assert float(timing["× log space"][2]) == 1.0
    assert list(timing["relative gap to loop"]) == [
        format_value(point.form_gaps[f], digits=3) for f in FORMS
    ]


def test_moving_the_logit_scale_changes_the_loss_metric(app):
    set_defaults(app)
    before = metrics(app)
    app.slider(key="multilabel_logit_scale").set_value(10.0).run()
    assert not app.exception, app.exception
    after = metrics(app)
    assert float(after[LOSS]) > float(before[LOSS])
    assert after == expected_metrics(logit_scale=10.0)


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


def test_timing_batch_and_remeasure(app):
    set_defaults(app)
    app.select_slider(key="multilabel_timing_batch").set_value(32).run()
    captions = " ".join(c.value for c in app.caption)
    assert "on a 32 × 6 batch" in captions
    app.button(key="multilabel_remeasure").click().run()
    assert not app.exception, app.exception
    assert app.session_state["multilabel_timing_run"] == 1
    assert len(app.dataframe[1].value) == 4


def play_traces(at) -> list:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"]


def test_toggle_draws_the_cross_entropy_gradient(app):
    # Its gradient norm per sample, beside BP-MLL's in the Play chart.
    set_defaults(app)
    charts, traces = len(app.get("plotly_chart")), play_traces(app)
    app.toggle(key=TOGGLE).set_value(True).run()
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == charts
    drawn = play_traces(app)
    assert len(drawn) == len(traces) + 1
    (bce,) = [t for t in drawn if t["yaxis"] == "y2" and "cross-entropy" in t["name"]]
    grid = explore.over_grid(explore.SweepSetting(), seed=0)
    np.testing.assert_allclose(
        [np.nan if y is None else y for y in bce["y"]], grid.bce_grad_norm[5]
    )


def test_all_rows_without_pairs_give_zero(app):
    set_defaults(app)
    app.slider(key="multilabel_label_density").set_value(0.0).run()
    shown = metrics(app)
    assert shown[LOSS] == "0" and shown[NO_PAIRS] == "8"
    assert float(shown[BCE]) > 0  # cross-entropy still trains every sample


def test_overflow_is_shown_as_such(app):
    set_defaults(app)
    app.slider(key="multilabel_logit_scale").set_value(60.0).run()
    assert not app.exception, app.exception
    shown = metrics(app)
    assert shown[LOSS] == "+Inf ⚠"
    assert shown == expected_metrics(logit_scale=60.0)
    warnings = " ".join(w.value for w in app.warning)
    assert "BP-MLL per sample" in warnings and "not finite" in warnings


def test_the_overflow_lesson_sets_its_controls(app):
    set_defaults(app)
    lesson = content.LESSONS[1]
    app.button(key=f"lesson_multilabel_{lesson.title}").click().run()
    assert not app.exception, app.exception
    assert app.select_slider(key="multilabel_num_labels").value == 256
    shown = metrics(app)
    assert shown == expected_metrics(**lesson.settings)
    assert "⚠" not in shown[LOSS] and shown[NAIVE] == "+Inf ⚠"
    (note,) = [info.value for info in app.info if lesson.notice in info.value]
    assert "✓ Checked: At a scale of 46.5 with 256 labels" in note


def test_predict_then_reveal(app):
    # Every control is drawn above the first number (views/content/multilabel.py):
    # a control drawn further down would keep the numbers above it hidden.
    set_defaults(app)
    app.session_state["predict"] = True
    app.run()
    app.select_slider(key="multilabel_timing_batch").set_value(32).run()
    assert set(metrics(app).values()) == {"?"}
    app.button(key="reveal").click().run()
    assert metrics(app) == expected_metrics()
    app.session_state["predict"] = False
    app.run()


def test_reset_restores_defaults(app):
    set_defaults(app)
    defaults = metrics(app)
    for key, (_, _, high) in SLIDERS.items():
        app.slider(key=key).set_value(high)
    for key, (_, _, high) in SELECT_SLIDERS.items():
        app.select_slider(key=key).set_value(high)
    app.toggle(key=TOGGLE).set_value(True)
    app.run()
    assert metrics(app) != defaults
    app.button(key="reset_multilabel").click().run()
    assert not app.exception, app.exception
    for key, (_, default, _) in SLIDERS.items():
        assert np.isclose(app.slider(key=key).value, default), key
    for key, (_, default, _) in SELECT_SLIDERS.items():
        assert app.select_slider(key=key).value == default, key
    assert app.toggle(key=TOGGLE).value is False
    assert metrics(app) == defaults


def test_train_draws_the_curves_the_summary_and_the_rows(app):
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
    # The last run's summary and its first held-out samples.
    summary = app.markdown[-1].value
    assert summary.startswith("**#2 BP-MLL**: held-out samples **200**")
    after = runs[-1]["summary"]["ranking loss after training"]
    assert f"ranking loss after training **{format_value(after, 3)}**" in summary
    rows = app.dataframe[3].value
    assert list(rows.columns) == list(runs[-1]["rows"][0])
    assert len(rows) == len(runs[-1]["rows"])
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
    assert at.markdown[-1].value.startswith("**#1 BP-MLL**")


def test_the_flipped_sign_chart_draws_both_runs():
    descent = attempts.flipped_descent(0)
    drawn = figures.flipped_descent(descent)
    for fig, field in ((drawn.loss, "loss"), (drawn.ranking, "ranking")):
        go.Figure(fig.to_dict())  # validates every attribute
        flipped, fix = fig.data
        np.testing.assert_allclose(flipped.y, getattr(descent.flipped, field))
        np.testing.assert_allclose(fix.y, getattr(descent.fix, field))
        assert list(flipped.x) == list(range(attempts.STEPS + 1))


def test_a_move_of_the_scale_is_a_lookup(count_calls):
    # A first pass over some scales computes (a counted function is a new
    # cache); moving over them again runs no explore computation and no graph.
    scales = (10.0, 20.5, 46.5, 3.0)
    expected = {scale: expected_metrics(logit_scale=scale) for scale in scales}
    names = ("over_grid", "at_setting", "scale_sweep", "timings", "check_lesson",
             "_evaluate", "_forms", "_grid_forms", "example_batch")  # fmt: skip
    calls = {name: count_calls(explore, name)[0] for name in names}
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    for scale in scales:
        at.slider(key="multilabel_logit_scale").set_value(scale).run()
        assert not at.exception, at.exception
    assert len(calls["over_grid"]) == 1  # one grid for every scale
    assert not calls["at_setting"]
    first = {name: len(c) for name, c in calls.items()}
    for scale in scales:
        at.slider(key="multilabel_logit_scale").set_value(scale).run()
        assert not at.exception, at.exception
        assert metrics(at) == expected[scale]
    assert {name: len(c) for name, c in calls.items()} == first


def test_the_play_figure_has_a_frame_per_scale():
    grid = explore.over_grid(explore.SweepSetting(0.4, 256), seed=0)
    active = grid.index(46.5)
    fig = full(figures.play_figure(grid, active))
    go.Figure(fig.to_dict())  # validates every attribute
    assert len(fig.frames) == len(grid.values) == 120
    assert fig.layout.sliders[0].active == active
    assert [s.label for s in fig.layout.sliders[0].steps][:2] == ["0.5", "1"]
    drawn = [json.dumps([t.to_plotly_json() for t in f.data]) for f in fig.frames]
    assert len(set(drawn)) == len(drawn)  # every frame differs
    bars = {tuple(frame.data[0].y) for frame in fig.frames}  # the log-space loss
    assert len(bars) > 100
    pairs = ~grid.without_pairs  # the others' 0 has no bar on a log axis
    assert [fig.data[0].y[i] for i in np.flatnonzero(~pairs)] == [None, None]
    np.testing.assert_allclose(
        np.array(fig.data[0].y)[pairs].astype(float), grid.loss[active][pairs]
    )
    # Fixed axes: the range is the figure's, no frame changes it.
    assert fig.layout.yaxis.range == (fig.layout.yaxis.range[0], 46.0)
    assert all(list(f.layout.to_plotly_json()) == ["title"] for f in fig.frames)
    summary = figures.play_summary(grid, active)
    assert summary == (
        f"scale 46.5: log-space loss finite for {grid.finite_count[active]} of 8 "
        f"samples (largest {format_value(grid.largest_loss[active], digits=3)}); "
        f"the factorised product is +Inf in {grid.factorised_inf[active]}"
    )
    assert summary in fig.layout.title.text
    assert grid.finite_count[active] == 8 and grid.factorised_inf[active] > 0
    # The product's +Inf samples are crossed at the top of the opening frame.
    marks = fig.data[2]
    inf = [t for t, m in zip(marks.text, marks.marker.symbol, strict=True)
           if t == "+Inf" and m == "x"]  # fmt: skip
    assert len(inf) == grid.factorised_inf[active]
    # The samples without pairs are marked 0 (a convention) in every frame.
    zeros = [t for t in marks.text if t == "0 (no pairs)"]
    assert len(zeros) == int(grid.without_pairs.sum())
    last = figures.play_summary(grid, len(grid.values) - 1)
    assert last.startswith(
        f"scale 60: log-space loss finite for {grid.finite_count[-1]} of 8"
    )


def test_the_sweep_charts_do_not_mark_the_scale():
    sweep = explore.scale_sweep(explore.SweepSetting(), seed=0)
    drawn = figures.over_scales(sweep)
    for fig in (drawn.loss, drawn.gradient):
        go.Figure(fig.to_dict())
        assert [shape.type for shape in fig.layout.shapes] == ["rect"]  # overflow
