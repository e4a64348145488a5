"""Sequence masking and class weights: padding masks, class weights, the traps.

A thin view: controls, then numbers and charts from ``lossviz.explore.sequence``.
Every padding share is computed at once (``over_grid``): a move of the padding
slider looks its numbers up and redraws the Play chart only.
"""

import streamlit as st

import ui
from lossviz.explore import sequence as explore
from lossviz.explore.attempts import sequence as attempts
from ui.figures import sequence as figures
from ui.figures.play import summary
from views.content import sequence as content


def copy_weights(text: str) -> None:
    """Puts the weights in use into the hand table, and the mode to by hand."""
    st.session_state[content.CONTROLS.key("hand_weights")] = text
    st.session_state[content.CONTROLS.key("weight_mode")] = content.BY_HAND


def loss_metric(point, key: str, label: str) -> None:
    """A loss's metric, with its difference from ours (n/a where it is not
    computed)."""
    if key not in point.values:
        st.metric(label, "n/a", help=content.NO_UNMASKED_HELP)
    elif key == "ours":
        ui.metric(label, point.values[key], help=content.HELPS[label])
    else:
        delta = point.vs_ours[key]
        ui.metric(label, point.values[key], delta=delta, delta_color="off",
                  help=content.HELPS[label])  # fmt: skip


seed = ui.seed()
stage = ui.header(
    "Sequence masking and class weights",
    explore.FORMULA,
    content.intro(ui.cached(explore.intro_facts)(seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
    stage=True,
)
values = content.CONTROLS.render(
    columns=content.COLUMNS, lead=content.LEAD, into=stage.controls
)
# On a projector the Play chart is its bars alone: no map to choose a loss for.
compact = ui.presenting()
grad_of = "ours"
if not compact:
    drawn = content.GRADIENT.render((), lead=("grad_of",), into=stage.controls)
    grad_of = drawn.grad_of
ui.reset_button("sequence")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(
        explore.check_lesson, spinner="Checking the lesson (a few short training runs)…"
    )(lesson.check, values, seed),
)
s = values.to(explore.Setting)
key = s.for_sweep(explore.PADDING)  # every padding share: one entry
grid = ui.cached(explore.over_grid)(key, seed)
at = grid.index(s.mask_ratio)
point = ui.keyed(grid.point)((key, seed, at), at)
with stage.controls:
    if s.mask != explore.MASKED and s.masked:
        st.caption(content.ALWAYS_MASKED)
    if grad_of not in point.losses:
        st.caption(content.NO_OTHER_GRADIENT)
        grad_of = "ours"

labels = content.loss_metrics(point.masked)
other = next(k for k in labels if k not in ("ours", "token", "trap"))
with stage.metrics:  # two abreast; one a row on a projector (its digits are wide)
    if compact:
        cells = [st.container() for _ in range(4)]
    else:
        cells = [cell for _ in range(2) for cell in st.columns(2)]
    with cells[0]:
        loss_metric(point, "ours", labels["ours"])
    with cells[1]:
        loss_metric(point, other, labels[other])
    with cells[2]:
        label = "Padding's share of the gradient"
        ui.metric(label, point.padding_grad_share["ours"], help=content.HELPS[label])
    with cells[3]:
        label = "Real ends the loss counts"
        ends = f"of {point.end_tokens}"
        ui.metric(label, point.real_ends_counted, delta=ends, delta_color="off",
                  delta_arrow="off", help=content.HELPS[label])  # fmt: skip
with stage.chart:
    args = (grid, at, grad_of, compact)
    play = ui.keyed(figures.play_figure)((key, seed, at, grad_of, compact), *args)
    ui.plot(play, summary=summary(play))

st.subheader(content.MAIN_SECTION, divider="gray")
row = st.columns(4)
for column, name in zip(row[:2], ("token", "trap"), strict=True):
    with column:
        loss_metric(point, name, labels[name])
with row[2]:
    ui.metric("Perplexity", point.perplexity, help=content.HELPS["Perplexity"])
with row[3]:
    ui.metric("Accuracy", point.accuracy, help=content.HELPS["Accuracy"])
row = st.columns(4)
with row[0]:
    ui.metric("Special-token MAE", point.special_mae, delta=point.special_mae_vs_keras,
              delta_color="off", help=content.HELPS["Special-token MAE"])  # fmt: skip
with row[1]:
    ui.metric("End-token weight", point.end_weight,
              help=content.end_weight_help(s.weight_mode))  # fmt: skip
with row[2]:
    label = "</s> share of counted steps"
    ui.metric(label, point.end_share_counted, help=content.HELPS[label])
for name in point.losses:
    label = figures.LOSS_LABELS[name]
    ui.nonfinite_note(label, [point.values[name]])
    ui.nonfinite_note(f"gradient of the {label} loss", point.grads[name])
if point.all_padding:
    st.info(content.all_padding(point), icon=":material/info:")

st.markdown(f"**{content.WEIGHTS_TITLE}**")
st.caption(content.weights_caption(s.weight_mode, point.masked))
if s.weight_mode == content.END_FROM_DATA:
    st.latex(explore.END_WEIGHT_FORMULA)
elif s.weight_mode == content.ALL_FROM_DATA:
    st.latex(explore.BALANCED_FORMULA)
st.dataframe(figures.weights_table(point), hide_index=True)
if s.weight_mode != content.BY_HAND:
    st.button(
        content.COPY_WEIGHTS,
        key="sequence_copy_weights",
        on_click=copy_weights,
        args=(explore.weights_text(point.class_weights),),
        help=content.COPY_HELP,
        icon=":material/content_copy:",
    )
with st.expander(content.CLASS_WEIGHT_TITLE):
    st.markdown(content.CLASS_WEIGHT_NOTE)

with ui.secondary(content.GRADIENT_SECTION, section=True):
    st.caption(content.PLAY_CAPTION)
    ui.plot(ui.keyed(figures.padding_share_chart)((key, seed), grid))
    st.caption(content.GRADIENT_CAPTION)

with ui.secondary(content.PER_SEQUENCE_SECTION, section=True):
    ui.plot(ui.keyed(figures.per_sequence)((key, seed), grid))
    st.caption(content.PER_SEQUENCE_CAPTION)

over = values.sweep
with ui.secondary(content.sweep_section(over), section=True):
    if over == explore.PADDING:
        curves = ui.cached(explore.sweep)(key, over, seed)
        ui.plot(ui.keyed(figures.sweep_loss)((key, seed), curves))
        ui.plot(ui.keyed(figures.sweep_grad)((key, seed), curves))
        every = [curves]
    else:
        sweeps = ui.cached(explore.weight_sweeps)(key, seed)
        opens_at = explore.Setting().mask_ratio
        ui.plot(ui.keyed(figures.weight_sweep_figure)((key, seed), sweeps, opens_at))
        st.caption(content.WEIGHT_SWEEP_CAPTION)
        every = sweeps.sweeps
    for curves in every:
        for name in curves.losses:
            label = figures.LOSS_LABELS[name]
            ui.nonfinite_note(f"{label} over the sweep", curves.values[name])
            ui.nonfinite_note(
                f"gradient norm of the {label} loss over the sweep",
                curves.grad_norms[name],
            )
    st.caption(content.SWEEP_CAPTION)

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))

ui.use_it(explore.SOURCES, content.snippet(s))
st.markdown(content.train_intro(ui.cached(explore.train_data)(seed)))
ui.train_panel(explore.TRAINING, ui.cached(explore.train_runs)(s, seed))
