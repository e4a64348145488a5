"""Loss as a layer (triplet): a cosine triplet loss that is the model's output,
and a masked cross-entropy added from inside a layer with ``add_loss``.

A thin view: controls, then the numbers and charts of
``lossviz.explore.triplet``. No loss is computed here.
"""

import streamlit as st

import ui
from lossviz.explore import triplet as explore
from lossviz.explore.attempts import triplet as attempts
from ui.figures import triplet as figures
from views.content import triplet as content

seed = ui.seed()
stage = ui.header(
    content.TITLE,
    explore.FORMULA,
    content.intro(ui.cached(explore.page_facts)(seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
    stage=True,
)
values = content.TRIPLET_CONTROLS.render(
    columns=1, lead=("margin",), into=stage.controls
)
ui.reset_button("triplet")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(explore.check_lesson)(lesson.check, values, seed),
)
s = values.to(explore.Setting)
# Every margin of the slider at once: a margin move is a lookup in it.
grid = ui.cached(explore.over_grid)(s.batch, seed)
key = (s.batch, seed)
if grid.holds(s.margin):
    point = grid.at(s.margin)
else:  # a margin off the slider's steps (a hand-made link)
    point = ui.cached(explore.at_setting)(s, seed)
index = figures.nearest(grid.values, s.margin)

with stage.metrics:
    ui.metrics(
        {
            "Triplet loss, batch mean": point.mean_loss,
            "Share of active triplets": point.active_share,
            "‖∂L/∂q‖ over the batch": point.grad_norm,
            "Triplets with zero gradient": point.zero_gradient,
        },
        helps=content.METRIC_HELP,
        per_row=2,  # one per row when presenting (ui.metrics)
    )
    ui.nonfinite_note("triplet loss", point.loss)
    ui.nonfinite_note("∂L/∂q", point.grad)
with stage.chart:
    play = ui.keyed(figures.play_figure)((*key, index), grid, index)
    ui.plot(play, summary=figures.opening_summary(play))

st.subheader(content.ANSWERS_HEADING, divider="gray")
st.latex(explore.FORMULAS["cosine"])
batch = ui.cached(explore.triplets)(s.batch, seed)
ui.plot(ui.keyed(figures.cosines)(key, batch))
st.caption(content.gap_caption(batch))

with ui.secondary(content.GRADIENT_SECTION, section=True):
    ui.plot(ui.keyed(figures.per_triplet)(key, grid))
    ui.plot(ui.keyed(figures.gradient_rows)(key, grid))
    st.caption(content.GRADIENT_CAPTION)

with ui.secondary(content.SWEEP_SECTION, section=True):
    margins = ui.cached(explore.margin_sweep)(s.batch, seed)
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(ui.keyed(figures.sweep_loss)(key, margins))
    with curve_right:
        ui.plot(ui.keyed(figures.sweep_grad)(key, margins))
    st.caption(content.sweep_caption(margins.all_active_from))
    ui.nonfinite_note("mean loss over the margin sweep", margins.mean_loss)
    ui.nonfinite_note("gradient norm over the margin sweep", margins.grad_norm)

with ui.secondary(content.LAYER_SECTION, section=True):
    st.markdown(content.KERAS3_WAY)
    st.latex(explore.FORMULAS["masked_cross_entropy"])
    st.markdown(content.masked_intro(ui.cached(explore.layer_facts)(seed)))
    layer_values = content.LAYER_CONTROLS.render(columns=2)
    tokens = ui.cached(explore.layer_reports)(
        layer_values.to(explore.LayerSetting), seed
    )
    for which in ("masked", "unmasked"):
        report = getattr(tokens, which)
        st.markdown(content.layer_title(which, report.tokens))
        ui.metrics(
            {
                name: getattr(report, name)
                for name in ("loss", "perplexity", "masked_accuracy")
            },
            helps=content.LAYER_HELP,
        )
    st.caption(content.layer_caption(tokens))
    ui.nonfinite_note("per-token cross-entropy", tokens.token_ce)
    ui.plot(ui.cached(figures.token_losses)(tokens))

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))

ui.use_it(explore.SOURCES, content.snippet(s.margin))

st.markdown(content.train_intro(explore.TRAIN_FACTS))
ui.train_panel(explore.TRAINING, explore.train_runs(s))
