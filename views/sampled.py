"""Sampled softmax: how biased and noisy the estimate is, and what it saves.

A thin view: controls, then the numbers and charts of
``lossviz.explore.sampled``. No loss is computed here.
"""

import streamlit as st

import ui
from lossviz.explore import sampled as explore
from lossviz.explore.attempts import sampled as attempts
from ui.figures import sampled as figures
from views.content import sampled as content

TIMING_NONCE = "sampled_timing_nonce"


def remeasure():
    """A new nonce: the timing's cache key changes, both passes are timed anew."""
    st.session_state[TIMING_NONCE] = st.session_state.get(TIMING_NONCE, 0) + 1


seed = ui.seed()
defaults = explore.Setting.capped(content.CONTROLS.defaults())
ui.header(
    content.TITLE,
    explore.FORMULA,
    content.intro(ui.cached(explore.intro_facts)(defaults, seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
)
values = content.CONTROLS.render(
    columns=[("num_sampled", "num_classes"), ("remove_accidental_hits", "zipf_labels")]
)
ui.reset_button("sampled")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
)
s = explore.Setting.capped(values)
if s.num_sampled < values.num_sampled:
    st.caption(content.capped(s.num_sampled))
point = ui.cached(explore.at_setting)(s, seed)

ui.metrics(
    {
        "Full loss (batch mean)": point.full_mean,
        "Sampled loss (batch mean)": point.sampled_mean,
        "Bias": point.bias,
        "Spread": point.spread,
    },
    helps=content.metric_helps(s.num_sampled, seed, explore.NUM_DRAWS),
)
ui.nonfinite_note("full loss per sample", point.full_loss)
ui.nonfinite_note("sampled loss per sample", point.sampled_loss)

st.subheader(content.DRAWS_SECTION, divider="gray")
ui.plot(ui.cached(figures.histogram)(point))
ui.nonfinite_note("sampled loss over seeds", point.draw_means)
st.caption(content.draws_caption(point))

with ui.secondary(content.SWEEP_SECTION, section=True):
    grid = ui.cached(explore.count_sweep, spinner=content.SWEEPING)(s.sweep, seed)
    error, loss, grad = ui.cached(figures.sweeps)(grid, s.num_sampled)
    ui.plot(error)
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(loss)
    with curve_right:
        ui.plot(grad)
    ui.nonfinite_note("loss over the sweep", grid.mean_loss)
    ui.nonfinite_note("gradient norm over the sweep", grid.grad_norm)
    st.caption(content.sweep_caption(grid))

with ui.secondary(content.GRADIENT_SECTION, section=True):
    full_grad, sampled_grad = ui.cached(figures.gradients)(point)
    grad_left, grad_right = st.columns(2)
    with grad_left:
        ui.plot(full_grad)
    with grad_right:
        ui.plot(sampled_grad)
    ui.nonfinite_note("sampled gradient", point.sampled_logit_grad)
    st.caption(
        content.gradient_caption(point, explore.SHOWN_FREQUENT, explore.SHOWN_SAMPLES)
    )

with ui.secondary(content.COST_SECTION, section=True):
    nonce = st.session_state.get(TIMING_NONCE, 0)
    cost = ui.cached(explore.timings, spinner=content.TIMING)(s, seed, nonce)
    shown, button = st.columns([3, 1])
    with shown:
        ui.metrics(
            {
                "Full (ms)": cost.full_ms,
                "Sampled (ms)": cost.sampled_ms,
                "Full ÷ sampled": cost.speedup,
            },
            helps=content.cost_helps(cost.repeats, explore.BATCH, explore.DIM),
        )
    button.button(
        "Measure again",
        key="sampled_remeasure",
        on_click=remeasure,
        icon=":material/timer:",
        help=content.remeasure_help(cost.repeats),
    )

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))
ui.use_it(
    explore.SOURCES,
    content.snippet(s.num_classes, s.num_sampled, s.remove_accidental_hits),
)
st.markdown(content.train_intro(explore.TRAIN_FACTS))
ui.train_panel(explore.TRAINING, explore.train_runs(s))
