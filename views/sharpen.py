"""Softmax → one-hot: power sharpening in log space, and what it costs.

A thin view: controls, then the numbers and charts of
``lossviz.explore.sharpen``; the words are in ``views.content.sharpen``.
"""

import streamlit as st

import ui
from lossviz.explore import sharpen as explore
from ui.figures import sharpen as figures
from views.content import sharpen as content

ui.header(content.TITLE, explore.FORMULA, content.INTRO,
          controls=content.CONTROLS, lessons=content.LESSONS)  # fmt: skip
values = content.CONTROLS.render(columns=content.COLUMNS)
ui.reset_button("sharpen")
ui.lesson_note(content.CONTROLS, content.LESSONS)

s = values.to(explore.Setting)
seed = ui.seed()
point = ui.cached(explore.at_setting)(s, seed)

ui.metrics(
    {
        content.LOSS: point.mean_loss,
        content.GRAD_NORM: point.grad_norm,
        content.TEMPERATURE: point.temperature,
        content.NAIVE_BAD: point.naive_nonfinite,
    },
    helps=content.metric_helps(point.loss.size, point.naive.size),
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

st.subheader(content.SWEEP, divider="gray")
sweep = ui.cached(explore.power_sweep)(s.sweep_setting, seed)
loss_fig, grad_fig, top_fig = ui.cached(figures.power_sweep)(sweep, s.power)
curve_left, curve_right = st.columns(2)
with curve_left:
    ui.plot(loss_fig)
with curve_right:
    ui.plot(grad_fig)
ui.plot(top_fig)
ui.nonfinite_note("loss over the sweep", sweep.mean_loss)
ui.nonfinite_note("naive form over the sweep", sweep.naive_top)
st.caption(content.sweep_caption(sweep))

ui.use_it(explore.SOURCES, content.snippet(s))

st.markdown(content.TRAIN_INTRO)
ui.train_panel(explore.TRAINING, explore.train_runs(s))
