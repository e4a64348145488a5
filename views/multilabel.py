"""Multi-label ranking (BP-MLL): the ranking loss, its four forms and its range.

A thin page: its controls, then the numbers and charts of
``lossviz.explore.multilabel`` (binary cross-entropy drawn beside BP-MLL for
comparison), then the original attempts failing live beside the fix
(``lossviz.explore.attempts.multilabel``, cached per seed, so a slider move
never reruns them). No loss is computed here.
"""

import streamlit as st

import ui
from lossviz.explore import multilabel as explore
from lossviz.explore.attempts import multilabel as attempts
from ui.figures import multilabel as figures
from views.content import multilabel as content

TIMING_RUN = "multilabel_timing_run"  # bumped by Re-measure: a new measurement


def remeasure():
    st.session_state[TIMING_RUN] = st.session_state.get(TIMING_RUN, 0) + 1


seed = ui.seed()
sweep_at = ui.cached(explore.scale_sweep)
intro = content.intro(
    sweep_at(explore.SweepSetting(), seed),
    sweep_at(explore.SweepSetting(num_labels=explore.MAX_LABELS), seed),
    explore.FLOAT32_MAX,
    explore.LOG_FLOAT32_MAX,
)
ui.header("Multi-label ranking (BP-MLL)", explore.FORMULA, intro,
          controls=content.CONTROLS, lessons=content.LESSONS)  # fmt: skip
values = content.CONTROLS.render(columns=content.COLUMNS)
ui.reset_button("multilabel")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
)
setting = values.to(explore.Setting)
point = ui.cached(explore.at_setting)(setting, seed)

ui.metrics(
    {
        "BP-MLL (batch mean)": point.mean_loss,
        "Cross-entropy (mean)": point.mean_bce,
        "Factorised (mean)": point.mean_factorised,
        "Samples without pairs": point.num_without_pairs,
    },
    helps=content.METRIC_HELP,
)
ui.nonfinite_note("BP-MLL per sample", point.loss)
ui.nonfinite_note("gradient of BP-MLL", point.grad)
ui.nonfinite_note("factorised product", point.forms["factorised"])

point_figures = ui.cached(figures.at_point)(point)

st.subheader("Loss per sample", divider="gray")
ui.plot(point_figures.loss_per_sample)
if point.num_without_pairs:
    st.info(content.without_pairs(point), icon=":material/info:")

with ui.secondary("Gradient with respect to the logits", section=True):
    labels_column, gradient_column = st.columns([1, 2])
    with labels_column:
        ui.plot(point_figures.labels)
    with gradient_column:
        ui.plot(point_figures.gradient)
    st.caption(content.gradient_caption(point))
    if values.bce_grad:
        ui.plot(ui.cached(figures.bce_gradient)(point))

with ui.secondary("Three forms, one number", section=True):
    st.markdown(content.FORMS_TEXT)
    st.latex(explore.LOG_SPACE_FORMULA)
    st.dataframe(point_figures.forms_table, hide_index=True)
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
    sweep = sweep_at(setting.sweep_setting, seed)
    sweep_figures = ui.cached(figures.over_scales)(sweep, setting.logit_scale)
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
