"""Sequence masking and class weights: padding masks, class weights, the traps.

A thin view: controls, then numbers and charts from ``lossviz.explore.sequence``.
"""

import streamlit as st

import ui
from lossviz.explore import sequence as explore
from lossviz.explore.attempts import sequence as attempts
from ui.figures import sequence as figures
from views.content import sequence as content


def copy_weights(text: str) -> None:
    """Puts the weights in use into the hand table, and the mode to by hand."""
    st.session_state[content.CONTROLS.key("hand_weights")] = text
    st.session_state[content.CONTROLS.key("weight_mode")] = content.BY_HAND


seed = ui.seed()
ui.header(
    "Sequence masking and class weights",
    explore.FORMULA,
    content.intro(ui.cached(explore.intro_facts)(seed)),
    controls=content.CONTROLS,
    lessons=content.LESSONS,
)
values = content.CONTROLS.render(columns=content.COLUMNS)
ui.reset_button("sequence")
ui.lesson_note(
    content.CONTROLS,
    content.LESSONS,
    lambda lesson: ui.cached(
        explore.check_lesson, spinner="Checking the lesson (a few short training runs)…"
    )(lesson.check, values, seed),
)
s = values.to(explore.Setting)
if s.mask != explore.MASKED and s.masked:
    st.caption(content.ALWAYS_MASKED)
point = ui.cached(explore.at_setting)(s, seed)

st.subheader(content.MAIN_SECTION, divider="gray")
for column, (key, label) in zip(
    st.columns(4), content.loss_metrics(point.masked).items(), strict=True
):
    with column:
        if key not in point.values:
            st.metric(label, "n/a", help=content.NO_UNMASKED_HELP)
        elif key == "ours":
            ui.metric(label, point.values[key], help=content.HELPS[label])
        else:
            ui.metric(
                label,
                point.values[key],
                delta=point.vs_ours[key],
                delta_color="off",
                help=content.HELPS[label],
            )
row = st.columns(4)
with row[0]:
    ui.metric("Perplexity", point.perplexity, help=content.HELPS["Perplexity"])
with row[1]:
    ui.metric("Accuracy", point.accuracy, help=content.HELPS["Accuracy"])
with row[2]:
    ui.metric(
        "Special-token MAE",
        point.special_mae,
        delta=point.special_mae_vs_keras,
        delta_color="off",
        help=content.HELPS["Special-token MAE"],
    )
with row[3]:
    ui.metric(
        "End-token weight",
        point.end_weight,
        help=content.end_weight_help(s.weight_mode),
    )
row = st.columns(4)
with row[0]:
    label = "Padding's share of the gradient"
    ui.metric(label, point.padding_grad_share["ours"], help=content.HELPS[label])
with row[1]:
    label = "Real ends the loss counts"
    ui.metric(
        label,
        point.real_ends_counted,
        delta=f"of {point.end_tokens}",
        delta_color="off",
        delta_arrow="off",
        help=content.HELPS[label],
    )
with row[2]:
    label = "</s> share of counted steps"
    ui.metric(label, point.end_share_counted, help=content.HELPS[label])
for key in point.losses:
    label = figures.LOSS_LABELS[key]
    ui.nonfinite_note(label, [point.values[key]])
    ui.nonfinite_note(f"gradient of the {label} loss", point.grads[key])
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
    grad_of = content.GRADIENT.render().grad_of
    if grad_of not in point.losses:
        st.caption(content.NO_OTHER_GRADIENT)
        grad_of = "ours"
    ui.plot(ui.cached(figures.gradient_steps)(point, grad_of))
    st.dataframe(figures.token_table(point), hide_index=True)
    st.caption(content.GRADIENT_CAPTION)

with ui.secondary(content.PER_SEQUENCE_SECTION, section=True):
    ui.plot(ui.cached(figures.per_sequence)(point))

over = values.sweep
with ui.secondary(content.sweep_section(over), section=True):
    curves = ui.cached(explore.sweep)(s.for_sweep(over), over, seed)
    marker = point.mask_ratio if over == explore.PADDING else point.end_weight
    ui.plot(ui.cached(figures.sweep_loss)(curves, marker))
    ui.plot(ui.cached(figures.sweep_grad)(curves, marker))
    for key in curves.losses:
        label = figures.LOSS_LABELS[key]
        ui.nonfinite_note(f"{label} over the sweep", curves.values[key])
        ui.nonfinite_note(
            f"gradient norm of the {label} loss over the sweep", curves.grad_norms[key]
        )
    st.caption(content.SWEEP_CAPTION)

ui.attempts(ui.cached(attempts.run_all, spinner="Running the original attempts…")(seed))

ui.use_it(explore.SOURCES, content.snippet(s))
st.markdown(content.train_intro(ui.cached(explore.train_data)(seed)))
ui.train_panel(explore.TRAINING, ui.cached(explore.train_runs)(s, seed))
