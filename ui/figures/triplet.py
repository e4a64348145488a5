"""Figures of the "Loss as a layer (triplet)" page, from
``lossviz.explore.triplet``'s dataclasses. None computes a loss.

Only the Play chart (``play_figure``) changes with the margin; every other
figure here is the same at every margin, so a margin move redraws one chart.
"""

from __future__ import annotations

import math

import numpy as np

from ui.figures import charts, sweep
from ui.figures.play import frames as play_frames
from ui.figures.play import nearest, per_grid, play
from ui.figures.play import summary as opening_summary
from ui.layout import format_value

SHOWN_GRADIENT_ROWS = 12
GAP_BIN = 0.1  # the gap histogram's bin width (cosine gaps lie in [-2, 2])
ACTIVE_COLOR, INACTIVE_COLOR, MARGIN_COLOR = charts.color(0), "#A0A0A0", charts.color(5)
GAP_TITLE = "gap cos(q, a⁺) − cos(q, a⁻)"

__all__ = [
    "cosines",
    "gradient_rows",
    "nearest",
    "opening_summary",
    "per_triplet",
    "play_figure",
    "summary",
    "sweep_grad",
    "sweep_loss",
    "token_losses",
]


def triplet_names(hard) -> list[str]:
    """Each triplet's index, with "hard" for a hard one: "0", "1 hard", ..."""
    return [f"{i} hard" if is_hard else str(i) for i, is_hard in enumerate(hard)]


def cosines(batch):
    """How near each answer is to its question: two overlaid histograms."""
    return charts.histogram(
        {
            "cos(q, a⁺) right answer": batch.cos_positive,
            "cos(q, a⁻) wrong answer": batch.cos_negative,
        },
        title="Cosine of the question with each answer",
        x_title="cosine",
        nbins=30,
    )


# ------------------------------------------------------------ the Play chart


def summary(grid, i: int) -> str:
    """Frame ``i``'s sentence: the margin, the active triplets, the loss."""
    count, total = int(grid.active_count[i]), grid.loss.shape[1]
    return (
        f"m = {grid.values[i]:g}: {count} of {total} triplets active "
        f"({grid.active_share[i]:.0%}), mean loss "
        f"{format_value(grid.mean_loss[i], 3)}, ‖∂L/∂q‖ "
        f"{format_value(grid.grad_norm[i], 3)}"
    )


def _gap_edges(gap) -> np.ndarray:
    low = math.floor(min(float(np.min(gap)), 0.0) / GAP_BIN)
    high = math.ceil(float(np.max(gap)) / GAP_BIN + 1e-9)
    return np.arange(low, high + 1) * GAP_BIN


def _frame(grid, i: int, edges, hist_top: float, loss_top: float, names=None):
    """Frame ``i``'s six traces. Plotly merges a frame's traces onto the
    drawn ones, so only the opening frame (``names`` given) carries what
    stays: positions, names, colours, hover; the others only what moves
    (the bars' counts, the line's x, the losses; NaN hides a point)."""
    margin, active = float(grid.values[i]), grid.active[i]
    counts = {
        flag: np.histogram(grid.gap[active == flag], bins=edges)[0]
        for flag in (True, False)
    }
    losses = {flag: np.where(active == flag, grid.loss[i], np.nan) for flag in counts}
    moving = [
        {"type": "bar", "y": counts[True]},
        {"type": "bar", "y": counts[False]},
        {"type": "scatter", "x": [margin, margin]},
        {"type": "scatter", "y": losses[True]},
        {"type": "scatter", "y": losses[False]},
        {"type": "scatter", "x": [margin, margin]},
    ]
    return moving if names is None else [
        {**k, **m} for k, m in zip(_styles(grid, edges, hist_top, loss_top, names),
                                   moving, strict=True)
    ]  # fmt: skip


def _styles(grid, edges, hist_top: float, loss_top: float, names):
    """What every frame's six traces share: positions, names, colours, hover."""
    active_name, inactive_name = "active: gap < m", "inactive: loss 0, gradient 0"
    bars = {"x": (edges[:-1] + edges[1:]) / 2, "width": GAP_BIN * 0.92}
    points = {
        "mode": "markers",
        "x": grid.gap,
        "text": names,
        "yaxis": "y2",
        "showlegend": False,
        "hovertemplate": "triplet %{text}: gap %{x:.3f}, loss %{y:.3f}<extra></extra>",
    }
    line = {
        "mode": "lines",
        "name": "margin m",
        "legendgroup": "margin",
        "line": {"color": MARGIN_COLOR, "dash": "dash", "width": 2},
        "hoverinfo": "skip",
    }
    kept = [
        {**bars, "name": active_name, "marker": {"color": ACTIVE_COLOR}},
        {**bars, "name": inactive_name, "marker": {"color": INACTIVE_COLOR}},
        {**line, "y": [0, hist_top], "yaxis": "y"},
        {**points, "name": active_name, "marker": {"color": ACTIVE_COLOR, "size": 7}},
        {
            **points,
            "name": inactive_name,
            "marker": {"color": INACTIVE_COLOR, "size": 7},
        },
        {**line, "y": [0, loss_top], "yaxis": "y2", "showlegend": False},
    ]
    for trace in kept[:2]:
        trace["legendgroup"] = trace["name"]
        trace["hovertemplate"] = (
            "gap %{x:.2f}: %{y} triplets<extra>" + trace["name"] + "</extra>"
        )
    for trace in kept[3:5]:
        trace["legendgroup"] = trace["name"]
    return kept


def play_figure(grid, active: int, *, height: int = 450):
    """The active share as the margin grows: per margin of the grid, the
    histogram of the gaps with the active triplets (gap < m) coloured apart
    and a dashed line at m, and under it each triplet's loss against its gap
    (``explore.triplet.Grid``). Axes are fixed across the frames."""
    grid_frames, styles, layout = _play_parts(grid)
    return play(
        grid_frames, active=active, label="m", styles=styles, layout=layout,
        height=height,
    )  # fmt: skip


@per_grid
def _play_parts(grid):
    """``play_figure``'s frames (only what moves), the traces' shared styles
    and the layout: the same whichever margin it opens on."""
    edges = _gap_edges(grid.gap)
    hist_top = float(np.histogram(grid.gap, bins=edges)[0].max()) * 1.1
    loss_top = max(float(np.max(grid.loss)), 0.1) * 1.05
    names = triplet_names(grid.hard)
    traces = [
        _frame(grid, i, edges, hist_top, loss_top) for i in range(len(grid.values))
    ]
    x_range = [edges[0] - GAP_BIN / 2, max(edges[-1], float(grid.values[-1])) + 0.05]
    layout = {
        "barmode": "stack",
        "xaxis": {
            "range": x_range,
            "anchor": "y2",
            "title": {"text": GAP_TITLE},
            "zeroline": False,
        },
        "yaxis": {
            "domain": [0.5, 1.0],
            "range": [0, hist_top],
            "title": {"text": "triplets"},
        },
        "yaxis2": {
            "domain": [0.0, 0.32],
            "range": [0, loss_top],
            "anchor": "x",
            "title": {"text": "loss"},
        },
        # Between the two panels, clear of the title's summary line.
        "legend": {"orientation": "h", "x": 0, "y": 0.41, "yanchor": "middle"},
    }
    grid_frames = play_frames(
        grid.values,
        traces,
        title="Which triplets are active: those whose gap lies below m",
        summaries=[summary(grid, i) for i in range(len(grid.values))],
    )
    return grid_frames, _styles(grid, edges, hist_top, loss_top, names), layout


# ------------------------------------------- the same at every margin


def per_triplet(grid):
    """Each triplet's gradient norm while active and its gap: it is active
    once the margin passes the gap, and its gradient does not change with m."""
    return charts.bars(
        triplet_names(grid.hard),
        {"‖∂L/∂q‖ while active": grid.active_grad_norms, "gap": grid.gap},
        title="Gradient norm while active, and the gap m must pass",
        x_title="triplet",
        y_title="value",
    )


def gradient_rows(grid):
    """``dL/dq`` of the first triplets while active, each row named with its
    gap (it is 0 at a margin up to the gap)."""
    rows = slice(0, SHOWN_GRADIENT_ROWS)
    names = triplet_names(grid.hard)
    return charts.heatmap(
        grid.active_grad[rows],
        x_labels=[f"d{j}" for j in range(grid.active_grad.shape[1])],
        y_labels=[
            f"{name} (gap {gap:.2f})"
            for name, gap in zip(names[rows], grid.gap[rows], strict=True)
        ],
        title=f"∂L/∂q for the first {SHOWN_GRADIENT_ROWS} triplets while active",
        x_title="embedding dimension",
        y_title="triplet",
    )


def _over_margins(margins, series: dict, *, title: str, y_title: str):
    return sweep(
        margins.margins,
        series,
        title=title,
        x_title="margin m",
        y_title=y_title,
        nonfinite_from=margins.nonfinite_from,
    )


def sweep_loss(margins):
    """Batch-mean loss and active share over the margin grid."""
    series = {
        "mean loss": margins.mean_loss,
        "share of active triplets": margins.active_share,
    }
    return _over_margins(
        margins,
        series,
        title="Batch-mean loss and active share",
        y_title="loss / share",
    )


def sweep_grad(margins):
    """The batch's gradient norm over the margin grid."""
    return _over_margins(
        margins,
        {"‖∂L/∂q‖": margins.grad_norm},
        title="Gradient norm ‖∂L/∂q‖",
        y_title="gradient norm",
    )


def token_losses(tokens):
    """The per-token cross-entropy of the padded batch (0 on padding)."""
    length = tokens.token_ce.shape[1]
    return charts.heatmap(
        tokens.token_ce,
        x_labels=[f"t{t}" for t in range(length)],
        y_labels=[f"row {b}: {n} tokens" for b, n in enumerate(tokens.tokens_per_row)],
        title="Cross-entropy per token (0 on padding)",
        x_title="position",
        y_title="sequence",
        diverging=False,
    )
