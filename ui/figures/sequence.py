"""Figures of the "Sequence masking and class weights" page, from
``lossviz.explore.sequence``'s dataclasses. None computes a loss."""

from __future__ import annotations

from ui.figures import charts, sweep

# The four losses of the page, as its charts and its "Gradient of" control
# name them (keys of ``lossviz.explore.sequence.LOSSES``).
LOSS_LABELS = {
    "ours": "per-sequence mean (ours)",
    "token": "Keras token mean",
    "trap": "sample_weight=mask",
    "unmasked": "unmasked",
}


def row_names(point) -> list[str]:
    """``seq i (len n)`` for each sequence of the batch."""
    return [f"seq {i} (len {int(n)})" for i, n in enumerate(point.lengths)]


def gradient_steps(point, loss: str):
    """The norm of the gradient at each step of each sequence, for one loss."""
    return charts.heatmap(
        point.step_grad_norms[loss],
        x_labels=[str(t) for t in range(point.y_true.shape[1])],
        y_labels=row_names(point),
        title=f"‖∂ loss / ∂ logits‖ at each step, {LOSS_LABELS[loss]}",
        x_title="step",
        y_title="sequence",
        diverging=False,
    )


def token_table(point) -> dict:
    """The targets as text for ``st.dataframe``, one column per step:
    S = start, E = end, · = padding."""
    names = {point.start_id: "S", point.end_id: "E", point.pad_id: "·"}
    table = {"sequence": row_names(point)}
    for step, column in enumerate(point.y_true.T.tolist()):
        table[str(step)] = [names.get(v, str(v)) for v in column]
    return table


def per_sequence(point):
    """Each sequence's loss with the mask and (where there is one) without."""
    names = {"masked": "masked (ours)", "unmasked": "unmasked"}
    return charts.bars(
        row_names(point),
        {names[key]: values for key, values in point.per_sequence.items()},
        title="Per-sequence loss, masked and unmasked",
        x_title="sequence",
        y_title="cross-entropy",
    )


def _sweep_chart(curves, marker: float, series: dict, title: str, y_title: str):
    return sweep(
        curves.grid,
        {LOSS_LABELS[key]: series[key] for key in curves.losses},
        title=title,
        x_title=curves.over,
        y_title=y_title,
        marker=marker,
        marker_label="current",
    )


def sweep_loss(curves, marker: float):
    """Every batch loss over the swept parameter, the current value marked."""
    return _sweep_chart(curves, marker, curves.values, "Batch loss", "loss")


def sweep_grad(curves, marker: float):
    """Every loss's gradient norm over the swept parameter."""
    return _sweep_chart(
        curves,
        marker,
        curves.grad_norms,
        "Gradient norm ‖∂ loss / ∂ logits‖",
        "gradient norm",
    )
