"""Softmax → one-hot: power (or temperature) sharpening in log space, and what
it costs.

A thin view: controls, then the numbers and charts of
``lossviz.explore.sharpen``; the words are in ``views.content.sharpen``.
"""

import streamlit as st

import ui
from lossviz.explore import sharpen as explore
from lossviz.explore.attempts import sharpen as attempts
from ui.figures import sharpen as figures
from views.content import sharpen as content

seed = ui.seed()
ui.header(
    content.TITLE,
    explore.FORMULA,
    content.intro(ui.cached(explore.facts)(seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
)
values = content.CONTROLS.render(columns=content.COLUMNS)
ui.reset_button("sharpen")
s = explore.Setting.of(values)
st.caption(content.derived_caption(s))
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
)

point = ui.cached(explore.at_setting)(s, seed)
ui.metrics(
    {
        content.LOSS: point.mean_loss,
        content.GRAD_NORM: point.grad_norm,
        content.DERIVED[s.sharpen_by]: s.derived,
        content.NAIVE_BAD: point.naive_nonfinite,
    },
    helps=content.metric_helps(point),
)
ui.nonfinite_note("loss per sample", point.loss)
ui.nonfinite_note("gradient of the loss", point.grad)
ui.nonfinite_note("naive x**k / Σ x**k", point.naive)

with ui.secondary(content.DISTRIBUTIONS, section=True):
    before_after, one_hot = ui.cached(figures.distributions)(point, values.sample)
    ui.plot(before_after)
    ui.plot(one_hot)
    st.caption(content.gap_caption(point.max_gap))

with ui.secondary(content.GRADIENT, section=True):
    ui.plot(ui.cached(figures.gradient)(point))
    st.caption(content.GRADIENT_CAPTION)

st.subheader(content.SWEEP[s.sharpen_by], divider="gray")
sweep = ui.cached(explore.sweep)(s.sweep_setting, seed)
loss_fig, grad_fig, top_fig = ui.cached(figures.sweep_figures)(sweep, s.driving)
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
