"""Figures of the "Sampled softmax" page, from ``lossviz.explore.sampled``'s
dataclasses. None computes a loss.

The Play chart (``play_figure``) holds every ``S`` of the page's grid as a
frame; the other figures do not depend on ``S``, so a move of the page's
slider redraws the Play chart alone.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import get_colorscale

from ui.figures import charts, sweep
from ui.figures.play import frames as play_frames
from ui.figures.play import per_grid, play, summary
from ui.layout import format_value

__all__ = ["full_gradient", "play_figure", "summary", "sweeps"]

S_AXIS = "sampled classes S"
BINS = 100  # of the histogram, over the range of every frame
PLAY_TITLE = "The estimate under {draws} seeds, and the sampled gradient"
# Spelled out: a Play frame's trace is validated by plotly.py, which reads
# "RdBu" as ColorBrewer's (red low), where plotly.js reads it blue low; the
# opening data and every frame must agree, and so must the full gradient.
GRADIENT_SCALE = get_colorscale("RdBu_r")  # blue for negative, red positive
FULL_GRADIENT_TITLE = "∂ full loss / ∂ logits"
SAMPLED_GRADIENT_TITLE = "∂ sampled loss / ∂ logits"


def _number(value, digits: int = 3) -> str:
    return format_value(value, digits)


def frame_summary(grid, i: int) -> str:
    """The sentence of frame ``i``: ``S``, the mean of the draws, how far it
    lies from the full loss, the spread (``grid``: an explore ``Grid``)."""
    bias, classes = float(grid.bias[i]), grid.setting.num_classes
    side = "below" if bias < 0 else "above"
    return (
        f"S = {int(grid.values[i]):,} of {classes:,}: mean "
        f"{_number(grid.draws_mean[i])}, {_number(abs(bias))} {side} the full "
        f"loss {_number(grid.full_mean)}; spread {_number(grid.spread[i])}"
    )


def _range(values, low_floor: float = 0.0) -> tuple[float, float]:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return low_floor, low_floor + 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = 0.04 * (high - low) if high > low else 0.5
    return low - pad, high + pad


def _gradient_scale(grid) -> float:
    """One colour scale for every frame and the full gradient's heatmap."""
    grads = np.concatenate(
        [np.ravel(grid.sampled_logit_grad), np.ravel(grid.reference.full_logit_grad)]
    )
    grads = np.abs(grads[np.isfinite(grads)])
    return float(grads.max()) if len(grads) and grads.max() > 0 else 1.0


def _heatmap_labels(reference) -> tuple[list[str], list[str]]:
    rows = reference.full_logit_grad.shape[0]
    names = [f"{i}: {int(y)}" for i, y in enumerate(reference.labels[:rows])]
    return [f"c{c}" for c in reference.classes], names


def _heatmap_trace(z, x_labels, y_labels, scale: float) -> dict:
    """A heatmap trace of the Play chart's right panel, as ``charts.heatmap``
    draws one (a plain dict: a frame is built in a millisecond)."""
    z = np.asarray(z, dtype=float)
    cells = [[float(v) if np.isfinite(v) else None for v in row] for row in z]
    text = [[format_value(v, 3) for v in row] for row in z]
    return {
        "type": "heatmap", "z": cells, "x": x_labels, "y": y_labels,
        "text": text, "hovertemplate": "%{y}, %{x}: %{text}<extra></extra>",
        "colorscale": GRADIENT_SCALE, "zmid": 0.0, "zmin": -scale,
        "zmax": scale, "xaxis": "x2", "yaxis": "y2", "showlegend": False,
        "colorbar": {"x": 0.92, "xanchor": "left", "thickness": 12, "len": 0.85},
    }  # fmt: skip


def play_figure(grid, active: int, height: int = 430):
    """The Play chart over the grid of ``S``, opening on ``active``: see
    ``_play_parts``, whose frames every opening shares."""
    grid_frames, layout = _play_parts(grid)
    return play(
        grid_frames, active=active, label="S", layout=layout,
        fmt=lambda v: f"{v:,.0f}", height=height,
    )  # fmt: skip


@per_grid
def _play_parts(grid):
    """The Play chart over the grid of ``S``: per frame, the histogram of
    the batch-mean sampled loss under the grid's seeds (fixed bins and axes
    over every frame, so it visibly tightens), a line at the full loss and
    one at the mean of the draws; beside it the first samples' gradients
    with respect to their logits at that ``S``, on one colour scale."""
    low, high = _range(np.append(np.ravel(grid.draw_means), grid.full_mean))
    edges = np.linspace(low, high, BINS + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    counts = [np.histogram(m[np.isfinite(m)], bins=edges)[0] for m in grid.draw_means]
    top = 1.08 * max(int(c.max()) for c in counts) if counts else 1.0
    scale = _gradient_scale(grid)
    classes, names = _heatmap_labels(grid.reference)
    draws = grid.draw_means.shape[1]

    def vline(x, name, color, dash):
        x = float(x) if np.isfinite(x) else None
        return {
            "type": "scatter", "x": [x, x], "y": [0, top], "mode": "lines",
            "name": name, "line": {"color": color, "dash": dash, "width": 2},
            "hovertemplate": f"{name}: %{{x:.4g}}<extra></extra>",
        }  # fmt: skip

    traces = []
    for i, count in enumerate(counts):
        heat = _heatmap_trace(grid.sampled_logit_grad[i], classes, names, scale)
        traces.append(
            [
                {
                    "type": "bar",
                    "x": centres.tolist(),
                    "y": count.tolist(),
                    "width": width,
                    "name": "seeds per bin",
                    "marker": {"color": charts.color(0)},
                    "hovertemplate": "loss ≈ %{x:.4g}: %{y} seeds<extra></extra>",
                },  # fmt: skip
                vline(grid.full_mean, "full loss", charts.color(5), "dash"),
                vline(grid.draws_mean[i], "mean of the draws", charts.color(2), "dot"),
                heat,
            ]
        )
    layout = {
        "xaxis": {"domain": [0, 0.48], "range": [low, high],
                  "title": {"text": f"batch-mean sampled loss ({draws} seeds)"}},
        "yaxis": {"range": [0, top], "title": {"text": "seeds"}},
        # The class labels name the columns, with no axis title; the heatmap
        # stands higher than the histogram, so that its slanted labels stay
        # clear of the Play slider's value. Its colour bar stays inside the
        # figure (beyond x = 1 it widens the margin and moves the slider).
        "xaxis2": {"domain": [0.66, 0.9], "type": "category", "anchor": "y2"},
        "yaxis2": {"domain": [0.16, 1], "type": "category", "anchor": "x2",
                   "autorange": "reversed", "title": {"text": "sample: label"}},
        "annotations": [{
            "text": SAMPLED_GRADIENT_TITLE, "x": 0.78, "xref": "paper",
            "y": 1.0, "yref": "paper", "yanchor": "bottom", "showarrow": False,
        }],
        # Inside the histogram's top left, clear of the titles and the heatmap.
        "legend": {"orientation": "v", "x": 0.01, "xanchor": "left", "y": 0.99,
                   "yanchor": "top", "bgcolor": "rgba(255,255,255,0.7)"},
        "bargap": 0,
    }  # fmt: skip
    grid_frames = play_frames(
        grid.values,
        traces,
        title=PLAY_TITLE.format(draws=draws),
        summaries=[frame_summary(grid, i) for i in range(len(grid.values))],
    )
    return grid_frames, layout


def full_gradient(grid):
    """The first samples' full-loss gradients with respect to their logits,
    on the Play chart's colour scale (the same at every ``S``)."""
    reference = grid.reference
    classes, names = _heatmap_labels(reference)
    fig = charts.heatmap(
        reference.full_logit_grad,
        x_labels=classes,
        y_labels=names,
        title=FULL_GRADIENT_TITLE,
        x_title="class (0 = most frequent)",
        y_title="sample: label",
    )
    scale = _gradient_scale(grid)
    fig.update_traces(zmin=-scale, zmax=scale, colorscale=GRADIENT_SCALE)
    return fig


def sweeps(grid):
    """Over the grid of ``S`` (``grid``: an explore ``Sweep``): the size of
    the bias and the spread (log-log), the loss and the gradient norm beside
    the full loss's. No marker: the Play chart shows where ``S`` is."""
    points = grid.num_sampled
    error = sweep(
        points,
        {"|bias|": grid.abs_bias, "spread (std)": grid.spread},
        title=f"Bias and spread over {grid.draws} seeds",
        x_title=S_AXIS,
        y_title="loss units",
        log_x=True,
        log_y=True,
    )
    # The full loss does not depend on S: a flat line beside each curve.
    loss, grad = (
        sweep(
            points,
            {"sampled (this seed)": sampled, "full": np.full(len(points), full)},
            title=title,
            x_title=S_AXIS,
            y_title=y_title,
            log_x=True,
        )
        for sampled, full, title, y_title in (
            (grid.mean_loss, grid.full_loss, "Loss as S grows", "loss (batch mean)"),
            (grid.grad_norm, grid.full_grad_norm, "Gradient norm as S grows",
             "‖∂L/∂inputs‖"),
        )
    )  # fmt: skip
    return error, loss, grad
