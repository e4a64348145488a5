"""Sampled softmax: how biased and noisy the estimate is, and what it saves.

A thin view: the number of sampled classes beside its metrics and the Play
chart, then the other controls, the numbers and charts of
``lossviz.explore.sampled``; the words are in ``views.content.sampled``.
Every ``S`` the slider reaches is computed at once (``explore.over_grid``),
so a move of it is a lookup, and only the Play chart changes.
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
stage = ui.header(
    content.TITLE,
    explore.FORMULA,
    controls=content.CONTROLS,
    lessons=content.LESSONS,
    stage=True,
)
# Filled once the stage is drawn: its numbers cost a second on a cold start.
intro = st.container()
values = content.CONTROLS.render(
    columns=content.COLUMNS, lead=content.LEAD, into=stage.controls
)
ui.reset_button("sampled")
s = explore.Setting.capped(values)
if s.num_sampled < values.num_sampled:
    stage.controls.caption(content.capped(s.num_sampled))

# Every S the slider reaches, once per setting of the other controls; a move
# of S indexes it (the keys name the setting, the seed and the index).
grid = ui.cached(explore.over_grid, spinner=content.SWEEPING)(s.sweep, seed)
index = grid.index(s.num_sampled)
key = (s.sweep, seed)
point = ui.keyed(grid.at)((*key, index), s.num_sampled)
with stage.metrics:
    ui.metrics(
        {
            "Bias": point.bias,
            "Spread": point.spread,
            "Full loss (batch mean)": point.full_mean,
            "Sampled loss (batch mean)": point.sampled_mean,
        },
        helps=content.metric_helps(s.num_sampled, seed, explore.NUM_DRAWS),
        # Presenting, one per row: the bias and the spread first, on the
        # first screen.
        per_row=2,
    )
    ui.nonfinite_note("full loss per sample", point.full_loss)
    ui.nonfinite_note("sampled loss per sample", point.sampled_loss)
with stage.chart:
    height = 400 if ui.presenting() else 430  # a projector's first screen
    play = ui.keyed(figures.play_figure)((*key, index, height), grid, index, height)
    ui.plot(play, summary=figures.summary(play))
    ui.nonfinite_note("sampled loss over seeds", point.draw_means)
    st.caption(content.draws_caption(point))
    note = st.container()  # the lesson's note, filled last (a check may train)

defaults = explore.Setting.capped(content.CONTROLS.defaults())
facts = ui.keyed(explore.intro_facts)((defaults, seed), defaults, seed, grid)
with intro, ui.secondary(content.INTRO_LABEL):
    st.markdown(content.intro(facts))

with ui.secondary(content.SWEEP_SECTION, section=True):
    sweep = ui.keyed(grid.sweep)(key)
    error, loss, grad = ui.keyed(figures.sweeps)(key, sweep)
    ui.plot(error)
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(loss)
    with curve_right:
        ui.plot(grad)
    ui.nonfinite_note("loss over the sweep", sweep.mean_loss)
    ui.nonfinite_note("gradient norm over the sweep", sweep.grad_norm)
    st.caption(content.sweep_caption(sweep))

with ui.secondary(content.GRADIENT_SECTION, section=True):
    grad_left, grad_right = st.columns(2)
    with grad_left:
        ui.plot(ui.keyed(figures.full_gradient)(key, grid))
    with grad_right:
        ui.nonfinite_note("sampled gradient", point.sampled_logit_grad)
        st.caption(
            content.gradient_caption(
                point, explore.SHOWN_FREQUENT, explore.SHOWN_SAMPLES
            )
        )

with ui.secondary(content.COST_SECTION, section=True):
    nonce = st.session_state.get(TIMING_NONCE, 0)
    timing = ui.cached(explore.timings_over_grid, spinner=content.TIMING)
    cost = timing(s.sweep, seed, nonce).at(s.num_sampled)
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

with note:
    ui.lesson_note(
        content.CONTROLS,
        content.LESSONS,
        lambda lesson: ui.keyed(explore.check_lesson)(
            (lesson.check, s, seed), lesson.check, values, seed, grid
        ),
    )

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))
ui.use_it(
    explore.SOURCES,
    content.snippet(s.num_classes, s.num_sampled, s.remove_accidental_hits),
)
st.markdown(content.train_intro(explore.TRAIN_FACTS))
ui.train_panel(explore.TRAINING, explore.train_runs(s))
