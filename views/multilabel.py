"""Multi-label ranking (BP-MLL): the ranking loss, its four forms and its range.

A thin page: the logit scale, the key metrics and the Play chart on the
stage, then the other controls and the numbers and charts of
``lossviz.explore.multilabel`` (binary cross-entropy drawn beside BP-MLL for
comparison), then the original attempts failing live beside the fix
(``lossviz.explore.attempts.multilabel``, cached per seed). Every logit scale
of the slider is computed at once (``explore.over_grid``, cached per setting
of the other controls), so a move of the scale is a lookup: no TensorFlow
runs, and only the Play chart (the one figure that depends on the scale) is
drawn anew. No loss is computed here.
"""

import streamlit as st

import ui
from lossviz.explore import multilabel as explore
from lossviz.explore.attempts import multilabel as attempts
from ui.figures import multilabel as figures
from ui.figures.play import summary
from views.content import multilabel as content

TIMING_RUN = "multilabel_timing_run"  # bumped by Re-measure: a new measurement


def remeasure():
    st.session_state[TIMING_RUN] = st.session_state.get(TIMING_RUN, 0) + 1


def intro(seed) -> str:
    sweep_at = ui.cached(explore.scale_sweep)
    return content.intro(
        sweep_at(explore.SweepSetting(), seed),
        sweep_at(explore.SweepSetting(num_labels=explore.MAX_LABELS), seed),
        explore.FLOAT32_MAX,
        explore.LOG_FLOAT32_MAX,
    )


seed = ui.seed()
stage = ui.header(
    "Multi-label ranking (BP-MLL)",
    explore.FORMULA,
    controls=content.CONTROLS,
    lessons=content.LESSONS,
    stage=True,
)
intro_box = st.container()  # filled once the stage is drawn: its sweeps wait
values = content.CONTROLS.render(
    columns=content.COLUMNS, lead=content.LEAD, into=stage.controls
)
ui.reset_button("multilabel")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
)
setting = values.to(explore.Setting)
around = setting.sweep_setting  # what the grid depends on: all but the scale
grid = ui.cached(explore.over_grid)(around, seed)
point = ui.keyed(grid.at)((around, seed, setting.logit_scale), setting.logit_scale)
active = grid.nearest(setting.logit_scale)

with stage.metrics:
    ui.metrics(
        {
            "BP-MLL (batch mean)": point.mean_loss,
            "Factorised (mean)": point.mean_factorised,
            "Cross-entropy (mean)": point.mean_bce,
            "Samples without pairs": point.num_without_pairs,
        },
        helps=content.METRIC_HELP,
        per_row=2,  # one per row when presenting (ui.metrics)
    )
with stage.chart:
    height = 420 if ui.presenting() else 560  # a projector's first screen
    play = ui.keyed(figures.play_figure)(
        (around, seed, active, values.bce_grad, height),
        grid, active, values.bce_grad, height,
    )  # fmt: skip
    ui.plot(play, summary=summary(play))
    ui.nonfinite_note("BP-MLL per sample", point.loss)
    ui.nonfinite_note("gradient of BP-MLL", point.grad)
    ui.nonfinite_note("factorised product", point.forms["factorised"])
    if point.num_without_pairs:
        st.info(content.without_pairs(point), icon=":material/info:")
with intro_box, ui.secondary("What to try"):
    if not ui.classroom.folded():  # unfolding reruns the page and draws it
        st.markdown(intro(seed))

with ui.secondary("Labels and the gradient", section=True):
    labels_column, caption_column = st.columns([2, 3])
    with labels_column:
        ui.plot(ui.keyed(figures.labels)((around, seed), point))
    with caption_column:
        st.caption(content.gradient_caption(point))

with ui.secondary("Three forms, one number", section=True):
    st.markdown(content.FORMS_TEXT)
    st.latex(explore.LOG_SPACE_FORMULA)
    key = (around, seed, setting.logit_scale)
    st.dataframe(ui.keyed(figures.forms_table)(key, point), hide_index=True)
    st.button(
        "Re-measure",
        key="multilabel_remeasure",
        on_click=remeasure,
        icon=":material/timer:",
        help=content.remeasure_help(explore.TIMING_REPEATS),
    )
    timings = ui.cached(explore.timings)(
        values.to(explore.TimingSetting), st.session_state.get(TIMING_RUN, 0)
    )
    st.dataframe(
        figures.timing_table(point, timings, content.FORM_NOTES), hide_index=True
    )
    st.caption(content.timing_caption(timings, point))

with ui.secondary("Loss and gradient as the logit scale grows", section=True):
    sweep = ui.cached(explore.scale_sweep)(around, seed)
    sweep_figures = ui.keyed(figures.over_scales)((around, seed), sweep)
    loss_column, gradient_column = st.columns(2)
    with loss_column:
        ui.plot(sweep_figures.loss)
    with gradient_column:
        ui.plot(sweep_figures.gradient)
    ui.nonfinite_note("BP-MLL over the sweep", sweep.mean_loss)
    ui.nonfinite_note("factorised product over the sweep", sweep.mean_factorised)
    st.caption(content.sweep_caption(sweep))

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))
with ui.secondary("The flipped sign, step by step"):
    descent = ui.cached(attempts.flipped_descent)(seed)
    descent_figures = ui.cached(figures.flipped_descent)(descent)
    loss_column, ranking_column = st.columns(2)
    with loss_column:
        ui.plot(descent_figures.loss)
    with ranking_column:
        ui.plot(descent_figures.ranking)
    st.caption(content.descent_caption(descent))

ui.use_it(explore.SOURCES, content.snippet(setting.num_labels))

st.markdown(content.train_intro(explore.train_facts()))
ui.train_panel(explore.TRAINING, explore.train_runs(setting))
