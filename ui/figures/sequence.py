"""Figures of the "Sequence masking and class weights" page, from
``lossviz.explore.sequence``'s dataclasses. None computes a loss."""

from __future__ import annotations

from ui.figures import charts, sweep

# The losses of the page, as its charts and its "Gradient of" control name
# them (keys of ``lossviz.explore.sequence.LOSSES``): the three means follow
# the mask; the last two are the per-sequence mean with the other mask.
LOSS_LABELS = {
    "ours": "per-sequence mean (ours)",
    "token": "Keras token mean",
    "trap": "sample_weight=mask",
    "unmasked": "unmasked",
    "masked": "masked",
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
    S = start, E = end, · = padding (E where the padding is the end token)."""
    names = {point.start_id: "S", point.end_id: "E"}
    pad = "E" if point.pad_is_end else "·"
    table = {"sequence": row_names(point)}
    for step in range(point.y_true.shape[1]):
        table[str(step)] = [
            names.get(int(v), str(int(v))) if real else pad
            for v, real in zip(point.y_true[:, step], point.real[:, step], strict=True)
        ]
    return table


def weights_table(point) -> dict:
    """The class weights in use for ``st.dataframe``: each class, its role,
    its count over the steps the loss counts, and its weight."""
    roles = {point.start_id: "start", point.end_id: "end"}
    if point.pad_id >= 0:
        roles[point.pad_id] = "pad = end" if point.pad_is_end else "pad"
    classes = range(len(point.class_weights))
    return {
        "class": [str(c) for c in classes],
        "token": [roles.get(c, "content") for c in classes],
        "count the loss sees": [int(n) for n in point.class_counts],
        "weight": [float(w) for w in point.class_weights],
    }


def per_sequence(point):
    """Each sequence's loss with the mask and (where there is one) without;
    the one the page's loss uses is marked "(ours)"."""
    ours = "masked" if point.masked else "unmasked"
    names = {key: f"{key} (ours)" if key == ours else key for key in point.per_sequence}
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
