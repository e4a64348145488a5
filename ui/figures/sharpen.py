"""The "Softmax → one-hot" page's figures, from ``lossviz.explore.sharpen``'s
``Grid`` (every value of the page's main control: the Play chart) and
``Sweep`` (over the power or the temperature range)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui.figures import charts, sweep
from ui.figures.play import frames, per_grid, play, summary
from ui.layout import format_value

_WIDTH = 0.26  # of a bar; three side by side per token
_OFFSETS = {"probs": -0.27, "sharpened": 0.0, "naive": 0.27}


def _tokens(result) -> list[str]:
    return [str(v) for v in range(result.probs.shape[-1])]


def _finite(y) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(y, dtype=float)]


def _names(grid) -> tuple[str, str]:
    """What the loss sees, and the same sharpening the other way."""
    stable, tempered = "power_sharpen", "softmax(z/T)"
    return (tempered, stable) if grid.by == "temperature" else (stable, tempered)


def _short(value: float) -> str:
    """A slider label short enough that Plotly labels every step of the
    grid, not every other one: 0.5, 2k, 5e-4."""
    if value >= 1000:
        return f"{value / 1000:g}k"
    if value < 0.01:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def summaries(grid, sample: int) -> list[str]:
    """Each frame's sentence: the value, sample ``sample``'s top
    probability, the batch's loss and gradient norm, the naive form's NaN
    count (all from ``grid``, a ``lossviz.explore.sharpen.Grid``)."""
    size = grid.naive[0].size
    texts = []
    for i in range(len(grid.values)):
        nans = int(grid.naive_nan[i])
        naive = f"NaN in {nans} of {size} entries" if nans else "finite"
        texts.append(
            f"{grid.describe(i)}: sample {sample}'s top probability "
            f"{format_value(grid.top[i, sample], 3)}, loss "
            f"{format_value(grid.mean_loss[i], 3)}, ‖∂L/∂logits‖ "
            f"{format_value(grid.grad_norm[i], 2)}; naive form {naive}"
        )
    return texts


def _frame(grid, i: int, sample: int, floor: float) -> list[dict]:
    tokens = np.arange(grid.probs.shape[-1], dtype=float)
    seen, other = _names(grid)
    by_t = grid.by == "temperature"
    sharpened = (grid.tempered if by_t else grid.stable)[i, sample]
    other_values = (grid.stable if by_t else grid.tempered)[i, sample]
    naive = grid.naive[i, sample]
    bad = ~np.isfinite(naive)

    def bar(key, name, y, color):
        return {
            "type": "bar",
            "x": (tokens + _OFFSETS[key]).tolist(),
            "y": _finite(y),
            "width": _WIDTH,
            "name": name,
            "marker": {"color": color},
            "hovertemplate": "token %{x:.0f}: %{y:.4g}<extra>" + name + "</extra>",
        }

    norm = float(grid.grad_norm[i])
    return [
        bar("probs", "softmax p", grid.probs[sample], charts.color(0)),
        bar("sharpened", seen, sharpened, charts.color(1)),
        bar("naive", "naive x**k/Σx**k", naive, charts.color(2)),
        {
            # a NaN is no bar: it is marked where the bar would stand
            "type": "scatter",
            "mode": "markers+text",
            "x": (tokens[bad] + _OFFSETS["naive"]).tolist(),
            "y": [0.03] * int(bad.sum()),
            "text": ["NaN" if np.isnan(v) else "Inf" for v in naive[bad]],
            "textposition": "top center",
            "textfont": {"color": charts.NONFINITE_COLOR},
            "marker": {"symbol": "x", "size": 11, "color": charts.NONFINITE_COLOR},
            "name": "naive: NaN",
            "hovertemplate": "token %{x:.0f}: %{text}<extra>naive</extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": tokens.tolist(),
            "y": _finite(other_values),
            "marker": {"symbol": "diamond-open", "size": 10, "color": "#000000"},
            "name": other,
            "hovertemplate": "token %{x:.0f}: %{y:.4g}<extra>" + other + "</extra>",
        },
        {
            "type": "heatmap",
            "z": [_finite(row) for row in grid.grad[i]],
            "x": tokens.tolist(),
            "y": list(range(grid.grad.shape[1])),
            "xaxis": "x2",
            "yaxis": "y2",
            "zmin": -grid.grad_range,
            "zmax": grid.grad_range,
            "colorscale": charts.DIVERGING,
            # inside the figure: a colour bar beyond x = 1 would widen the
            # right margin and shorten the Play slider under the buttons
            "colorbar": {
                "thickness": 10,
                "len": 0.38,
                "x": 0.91,
                "xanchor": "left",
                "y": 1,
                "yanchor": "top",
            },
            "hovertemplate": "sample %{y}, token %{x}: %{z:.3g}<extra></extra>",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": grid.values.tolist(),
            "y": [v if v > 0 else None for v in _finite(grid.grad_norm)],
            "xaxis": "x3",
            "yaxis": "y3",
            "line": {"color": charts.color(3), "width": 2},
            "name": "‖∂L/∂logits‖",
            "showlegend": False,
        },
        {
            # where the slider sits; an exact 0 (not on a log axis) at the floor
            "type": "scatter",
            "mode": "markers",
            "x": [float(grid.values[i])],
            "y": [norm if norm > 0 else floor],
            "text": [format_value(norm, 3)],
            "xaxis": "x3",
            "yaxis": "y3",
            "marker": {"size": 12, "color": charts.color(5)},
            "name": "this frame",
            "hovertemplate": "%{x:g}: %{text}<extra>‖∂L/∂logits‖</extra>",
            "showlegend": False,
        },
    ]


__all__ = ["gumbel_over_grid", "play_figure", "summaries", "summary", "sweep_figures"]


def play_figure(grid, active: int, sample: int) -> go.Figure:
    """The page's main chart, one frame per grid value: sample ``sample``'s
    softmax p, what the loss sees and the naive ``x**k / Σ x**k`` (its NaN
    entries marked), with the same sharpening the other way as diamonds;
    beside them the gradient with respect to the logits (every sample) and
    its norm over the grid, this frame's marked. ``active``: the index of
    the page's slider value (``grid``: ``lossviz.explore.sharpen.Grid``)."""
    by_t = grid.by == "temperature"
    norms = grid.grad_norm[np.isfinite(grid.grad_norm) & (grid.grad_norm > 0)]
    low, high = (float(norms.min()), float(norms.max())) if norms.size else (1, 1)
    floor = low / 10
    v = len(_tokens(grid))
    ends = np.log10([grid.values.min(), grid.values.max()])
    ends = (ends + [-0.15, 0.15])[::-1] if by_t else ends + [-0.15, 0.15]
    right = [0.7, 1.0]
    layout = {
        "xaxis": {
            "domain": [0, 0.6],
            "range": [-0.6, v - 0.4],
            "tickvals": list(range(v)),
        },
        "yaxis": {"range": [0, 1.05], "title": {"text": "probability"}},
        "xaxis2": {"domain": [0.7, 0.9], "anchor": "y2", "tickvals": list(range(v))},
        "yaxis2": {
            "domain": [0.62, 1],
            "anchor": "x2",
            "autorange": "reversed",
            "dtick": 1,
        },
        "xaxis3": {
            "domain": right,
            "anchor": "y3",
            "type": "log",
            "range": ends.tolist(),
        },
        "yaxis3": {
            "domain": [0, 0.26],
            "anchor": "x3",
            "type": "log",
            "range": [np.log10(floor) - 0.3, np.log10(high) + 0.3],
            "exponentformat": "e",
            "dtick": 12,
        },
        "annotations": [
            {
                "text": f"‖∂L/∂logits‖ over {'T' if by_t else 'k'}",
                "x": right[0],
                "y": 0.27,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
            },
        ],
        "legend": {"orientation": "h", "x": 0, "y": 1.01, "yanchor": "bottom"},
        "margin": {"t": 122},
    }
    return play(
        _play_frames(grid, sample, floor),
        active=active,
        label="T" if by_t else "k",
        fmt=_short,
        layout=layout,
        height=460,
    )


@per_grid
def _play_frames(grid, sample: int, floor: float):
    """The frames of ``play_figure``: the same whichever value it opens on."""
    return frames(
        grid.values,
        [_frame(grid, i, sample, floor) for i in range(len(grid.values))],
        title=f"Sample {grid.sample_names[sample]}: p per token, sharpened; ∂L/∂logits",
        summaries=summaries(grid, sample),
    )


def gumbel_over_grid(grid, sample: int, hard: bool) -> go.Figure:
    """Sample ``sample``'s straight-through one-hot and its Gumbel-softmax
    sample (hard or soft) at every temperature of the grid, a row each."""
    gumbel = grid.hard_gumbel if hard else grid.gumbel
    rows = [grid.straight_through[sample], *gumbel[:, sample]]
    by_t = grid.by == "temperature"
    label = "T" if by_t else "k"
    kind = "hard " if hard else ""
    where = "each temperature T" if by_t else "T = 1/kⁿ for each power k"
    return charts.heatmap(
        np.array(rows),
        x_labels=_tokens(grid),
        y_labels=["straight-through"] + [f"{label} = {v:g}" for v in grid.values],
        title=f"Sample {sample}: straight-through one-hot, and a {kind}"
        f"Gumbel-softmax sample at {where} of the grid",
        x_title="token",
        y_title="",
        diverging=False,
        height=440,
    )


def _by_temperature(result) -> bool:
    return result.by == "temperature"


def sweep_figures(result) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The loss, the gradient norm and the top sharpened probability over the
    sweep (its powers, or its temperatures on a reversed axis), the naive
    form's NaN range shaded on the last. No marker of the page's value: the
    Play chart shows it, so these stay the same as the slider moves."""
    by_t = _by_temperature(result)
    name = "T" if by_t else "k"
    grows = "the temperature falls" if by_t else "the power grows"
    common = {
        "x_title": "temperature T" if by_t else "power k",
        "log_x": True,
        # a temperature sweep runs from 10 down to 1e-4, so that the
        # distribution sharpens to the right, as with a power
        "reverse_x": by_t,
    }
    loss = sweep(
        result.values,
        {"loss, batch mean": result.mean_loss},
        title=f"Loss as {grows}",
        y_title="loss",
        **common,
    )
    grad = sweep(
        result.values,
        {"‖∂L/∂logits‖": result.grad_norm},
        title=f"The gradient vanishes as {grows}",
        y_title="gradient norm",
        log_y=True,
        **common,
    )
    nan_from = result.first_nan
    label = f"naive NaN from {name} ≈ {nan_from:.3g}" if nan_from else ""
    seen = "softmax(z / T)" if by_t else "log space"
    top = sweep(
        result.values,
        {seen: result.sharpened_top, "naive (float32)": result.naive_top},
        title=f"Top sharpened probability, batch mean: naive and {seen}",
        y_title="top probability",
        nonfinite_from=nan_from,
        nonfinite_label=label,
        nonfinite_toward="low" if by_t else "high",
        **common,
    )
    return loss, grad, top
