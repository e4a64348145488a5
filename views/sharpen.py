"""Softmax → one-hot: power (or temperature) sharpening in log space, and what
it costs.

A thin view: the main control (power or temperature) beside its metrics and
the Play chart, then the other controls, the numbers and charts of
``lossviz.explore.sharpen``; the words are in ``views.content.sharpen``. Every
value of the main control is computed at once (``explore.over_grid``), so a
move of it is a lookup, and only the Play chart changes.
"""

import streamlit as st

import ui
from lossviz.explore import sharpen as explore
from lossviz.explore.attempts import sharpen as attempts
from ui.figures import sharpen as figures
from views.content import sharpen as content

seed = ui.seed()
stage = ui.header(
    content.TITLE,
    explore.FORMULA,
    content.intro(ui.cached(explore.facts)(seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
    stage=True,
)
values = content.CONTROLS.render(
    columns=content.COLUMNS, lead=content.LEAD, into=stage.controls
)
ui.reset_button("sharpen")
s = explore.Setting.of(values)
st.caption(content.derived_caption(s))

# Everything the main control reaches, once per setting of the others; a move
# of it indexes this (the keys name the setting, the seed and the index).
grid = ui.cached(explore.over_grid)(s.sweep_setting, seed)
index = grid.index(s.driving)
point = ui.keyed(grid.at)((s.sweep_setting, seed, index, s.hard), s.driving, s.hard)
with stage.metrics:
    ui.metrics(
        {
            content.LOSS: point.mean_loss,
            content.GRAD_NORM: point.grad_norm,
            content.DERIVED[s.sharpen_by]: s.derived,
            content.NAIVE_BAD: point.naive_nonfinite,
        },
        helps=content.metric_helps(point),
        per_row=2,
    )
    ui.nonfinite_note("loss per sample", point.loss)
    ui.nonfinite_note("gradient of the loss", point.grad)
    ui.nonfinite_note("naive x**k / Σ x**k", point.naive)
with stage.chart:
    key = (s.sweep_setting, seed, values.sample)
    play = ui.keyed(figures.play_figure)((*key, index), grid, index, values.sample)
    ui.plot(play, summary=figures.summary(play))
    st.caption(content.gap_caption(point.max_gap))
    ui.lesson_note(
        content.CONTROLS,
        content.LESSONS,
        lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
    )

with ui.secondary(content.GUMBEL, section=True):
    key = (s.sweep_setting, seed, values.sample, s.hard)
    ui.plot(ui.keyed(figures.gumbel_over_grid)(key, grid, values.sample, s.hard))
    st.caption(content.GUMBEL_CAPTION)

st.subheader(content.SWEEP[s.sharpen_by], divider="gray")
sweep = ui.cached(explore.sweep)(s.sweep_setting, seed)
loss_fig, grad_fig, top_fig = ui.keyed(figures.sweep_figures)(
    (s.sweep_setting, seed), sweep
)
curve_left, curve_right = st.columns(2)
with curve_left:
    ui.plot(loss_fig)
with curve_right:
    ui.plot(grad_fig)
ui.plot(top_fig)
ui.nonfinite_note("loss over the sweep", sweep.mean_loss)
ui.nonfinite_note("naive form over the sweep", sweep.naive_top)
st.caption(content.sweep_caption(sweep))

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))

ui.use_it(explore.SOURCES, content.snippet(s))

st.markdown(content.train_intro(explore.TRAIN_FACTS))
ui.train_panel(explore.TRAINING, explore.train_runs(s))
