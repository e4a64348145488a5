"""Figures of the "Sequence masking and class weights" page, from
``lossviz.explore.sequence``'s dataclasses. None computes a loss."""

from __future__ import annotations

import math

import numpy as np

from ui.figures import charts, play, sweep
from ui.figures.play import frames as play_frames
from ui.figures.play import per_grid

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


def per_sequence(grid):
    """Each sequence's loss over the padding share, with the mask (solid) and,
    where there is one, without (dotted); the one the page's loss uses is
    marked "(ours)". Independent of the page's padding share: the Play chart
    shows where the slider sits."""
    ours = "masked" if grid.setting.masked else "unmasked"
    data = []
    for key, dash in (("masked", "solid"), ("unmasked", "dot")):
        if key not in grid.rows:
            continue
        name = f"{key} (ours)" if key == ours else key
        for b in range(grid.rows[key].shape[1]):
            data.append(
                {
                    "type": "scatter",
                    "x": grid.values.tolist(),
                    "y": charts._finite_or_none(grid.rows[key][:, b]),
                    "mode": "lines",
                    "name": f"seq {b}",
                    "legendgroup": f"seq {b}",
                    "showlegend": key == "masked",
                    "line": {"color": charts.color(b), "dash": dash, "width": 2},
                    "hovertemplate": "padding %{x:.0%}: %{y:.4g}<extra>"
                    + f"seq {b}, {name}</extra>",
                }
            )
    return charts._figure(
        data,
        "Each sequence's loss as the padding grows (solid: masked, dotted: unmasked)",
        PADDING_LABEL,
        "cross-entropy",
        340,
        xaxis={"tickformat": ".0%"},
    )


def _sweep_chart(curves, series: dict, title: str, y_title: str):
    return sweep(
        curves.grid,
        {LOSS_LABELS[key]: series[key] for key in curves.losses},
        title=title,
        x_title=curves.over,
        y_title=y_title,
    )


def sweep_loss(curves):
    """Every batch loss over the swept parameter (no marker: the Play chart
    shows where the padding slider sits)."""
    return _sweep_chart(curves, curves.values, "Batch loss", "loss")


def sweep_grad(curves):
    """Every loss's gradient norm over the swept parameter."""
    return _sweep_chart(
        curves,
        curves.grad_norms,
        "Gradient norm ‖∂ loss / ∂ logits‖",
        "gradient norm",
    )


# ------------------------------------------------------------ the Play chart

PADDING_LABEL = "padding share"
REAL_COLOR, PADDING_COLOR = charts.PALETTE[0], charts.PALETTE[1]
_BAR_AXES = ({"x": "x", "y": "y"}, {"x": "x2", "y": "y2"})


def percent(share: float) -> str:
    """A share as the Play chart's texts write it (non-finite named)."""
    if not math.isfinite(share):
        return "NaN" if math.isnan(share) else "Inf"
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


def play_summary(grid, i: int) -> str:
    """Frame ``i``'s sentence: padding's share of ‖∂L/∂z‖², unmasked and
    masked (the per-sequence means)."""
    masked = grid.padding_grad_share[grid.mean_key(True)][i]
    unmasked_key = grid.mean_key(False)
    head = f"padding {percent(grid.values[i])}: "
    if unmasked_key is None:
        return (
            head + "no unmasked loss (the pad id is not a class); masked, the "
            f"padding steps hold {percent(masked)} of ‖∂L/∂z‖²"
        )
    unmasked = grid.padding_grad_share[unmasked_key][i]
    return (
        head + f"unmasked, the padding steps hold {percent(unmasked)} of "
        f"‖∂L/∂z‖²; masked {percent(masked)}"
    )


def token_labels(y_true, lengths, start_id: int, end_id: int, pad_is_end: bool):
    """Each step's target as text: S = start, E = end, · = padding (E where
    the padding is the end token), content tokens by id."""
    names = {start_id: "S", end_id: "E"}
    pad = "E" if pad_is_end else "·"
    return [
        [
            names.get(int(v), str(int(v))) if t < length else pad
            for t, v in enumerate(row)
        ]
        for row, length in zip(y_true, lengths, strict=True)
    ]


def _frame(grid, i: int, grad_of: str | None, steps: list[str], rows: list[str]):
    traces = []
    for column, masked in enumerate((False, True)):
        key = grid.mean_key(masked)
        shares = (
            grid.step_shares[key][i] if key is not None else np.zeros((2, len(steps)))
        )
        for part, (name, colour) in enumerate(
            (("real steps", REAL_COLOR), ("padding steps", PADDING_COLOR))
        ):
            traces.append(
                {
                    "type": "bar",
                    "x": steps,
                    "y": shares[part].tolist(),
                    "name": name,
                    "legendgroup": name,
                    "showlegend": column == 0,
                    "marker": {"color": colour},
                    "hovertemplate": "step %{x}: %{y:.1%} of ‖∂L/∂z‖²<extra>"
                    + name
                    + "</extra>",
                    "xaxis": _BAR_AXES[column]["x"],
                    "yaxis": _BAR_AXES[column]["y"],
                }
            )
    if grad_of is None:
        return traces
    norms = grid.step_grad_norms[grad_of][i]
    traces.append(
        {
            "type": "heatmap",
            "z": [charts._finite_or_none(row) for row in norms],
            "x": steps,
            "y": rows,
            "text": token_labels(
                grid.y_true[i],
                grid.lengths[i],
                grid.start_id,
                grid.end_id,
                grid.setting.pad_is_end,
            ),
            "texttemplate": "%{text}",
            "hovertemplate": "%{y}, step %{x} (%{text}): ‖∂L/∂z‖ = "
            "%{z:.3g}<extra></extra>",
            "colorscale": charts.SEQUENTIAL,
            "zmin": 0.0,
            "zmax": _zmax(grid, grad_of),
            "showscale": True,
            "colorbar": {"len": 0.42, "y": 0.0, "yanchor": "bottom", "thickness": 12},
            "xaxis": "x3",
            "yaxis": "y3",
        }
    )
    return traces


def _zmax(grid, grad_of: str) -> float:
    norms = np.asarray(grid.step_grad_norms[grad_of], dtype=float)
    finite = norms[np.isfinite(norms)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def play_figure(grid, active: int, grad_of: str = "ours", compact: bool = False):
    """The page's main chart, opening on ``active``: see ``_play_parts``,
    whose frames every opening shares."""
    grid_frames, layout = _play_parts(grid, grad_of, compact)
    return play(
        grid_frames, active=active, label=PADDING_LABEL, layout=layout,
        fmt="{:.0%}".format, height=370 if compact else 540,
    )  # fmt: skip


@per_grid
def _play_parts(grid, grad_of: str, compact: bool):
    """The page's main chart, one frame per padding share of ``grid``
    (opening on ``active``): top, the share of ‖∂L/∂z‖² (summed over the
    batch) at each step, real steps and padding steps apart, for the
    unmasked per-sequence mean and the masked one; below, the gradient's
    norm at each step of each sequence for the loss ``grad_of`` (one of
    ``grid.losses``), each cell labelled with its target token. ``compact``
    (a projector's first screen): the bars alone, lower."""
    if grad_of not in grid.losses:
        raise ValueError(f"grad_of must be one of {grid.losses}, got {grad_of!r}")
    # Where the bars sit (bottom, top) and the map's top, as paper shares.
    low, high, map_top = (0.0, 0.9, None) if compact else (0.56, 0.95, 0.4)
    steps = [str(t) for t in range(grid.y_true.shape[2])]
    rows = [f"seq {b}" for b in range(grid.y_true.shape[1])]
    shown = None if compact else grad_of
    traces = [_frame(grid, i, shown, steps, rows) for i in range(len(grid.values))]
    means = [key for key in (grid.mean_key(False), grid.mean_key(True)) if key]
    top = max(float(np.max(np.sum(grid.step_shares[key], axis=1))) for key in means)
    pad_id = grid.setting.pad_id
    ours = {grid.setting.masked: " (ours)", not grid.setting.masked: ""}
    titles = (
        f"Unmasked (pad_id=None){ours[False]}"
        if grid.mean_key(False) is not None
        else "Unmasked: none (pad id -1 is not a class)",
        f"Masked (pad_id={pad_id}){ours[True]}",
        f"‖∂ loss / ∂ logits‖ at each step, {LOSS_LABELS[grad_of]}",
    )
    share_axis = {
        "range": [0, max(top, 1e-9) * 1.05],
        "tickformat": ".0%",
        "fixedrange": True,
    }
    step_axis = {"type": "category", "fixedrange": True}
    places = zip(titles, (0, 0.53, 0), (high, high, map_top), strict=True)
    layout = {
        "barmode": "stack",
        "xaxis": {**step_axis, "domain": [0, 0.47], "anchor": "y"},
        "yaxis": {**share_axis, "domain": [low, high], "anchor": "x",
                  "title": {"text": "share of ‖∂L/∂z‖²"}},
        "xaxis2": {**step_axis, "domain": [0.53, 1.0], "anchor": "y2"},
        "yaxis2": {**share_axis, "domain": [low, high], "anchor": "x2",
                   "matches": "y", "showticklabels": False},
        "annotations": [
            {"text": text, "xref": "paper", "yref": "paper", "x": x, "y": y,
             "xanchor": "left", "yanchor": "bottom", "showarrow": False,
             "font": {"size": 13}}
            for text, x, y in places
            if y is not None
        ],
        # Inside the masked plot's top right, over its last steps (padding).
        "legend": {"orientation": "v", "x": 1, "xanchor": "right", "y": 1,
                   "yanchor": "top", "bgcolor": "rgba(0,0,0,0)"},
        "margin": {"t": 80},
    }  # fmt: skip
    if not compact:
        layout["xaxis3"] = {"type": "category", "domain": [0, 1.0], "anchor": "y3",
                            "fixedrange": True, "showticklabels": False}  # fmt: skip
        layout["yaxis3"] = {"type": "category", "domain": [0, map_top], "anchor": "x3",
                            "autorange": "reversed", "fixedrange": True}  # fmt: skip
    grid_frames = play_frames(
        grid.values,
        traces,
        title="Where the gradient goes as the padding grows",
        summaries=[play_summary(grid, i) for i in range(len(grid.values))],
    )
    return grid_frames, layout


def padding_share_chart(grid):
    """Padding's share of each loss's ‖∂L/∂z‖² over the padding share (no
    marker: the Play chart shows where the slider sits)."""
    return sweep(
        grid.values,
        {LOSS_LABELS[key]: grid.padding_grad_share[key] for key in grid.losses},
        title="Padding's share of ‖∂L/∂z‖² as the padding grows",
        x_title=PADDING_LABEL,
        y_title="share on padding steps",
    )


def weight_sweep_figure(sweeps, opens_at: float):
    """The end-token weight sweep at every padding share, playable by its own
    slider (which the page's padding slider does not move, so a move of that
    redraws nothing here): every loss (left) and its gradient norm (right)
    over the end weight, opening at the padding share ``opens_at``."""
    losses = sweeps.sweeps[0].losses
    ends = [float(curves.grid[-1]) for curves in sweeps.sweeps]

    def top(field: str) -> float:
        finite = [
            float(np.max(v[np.isfinite(v)]))
            for curves in sweeps.sweeps
            for v in (np.asarray(getattr(curves, field)[k]) for k in losses)
            if np.isfinite(v).any()
        ]
        return max([*finite, 1e-9]) * 1.05

    frames = []
    for curves in sweeps.sweeps:
        traces = []
        for column, field in enumerate(("values", "grad_norms")):
            for n, key in enumerate(losses):
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": curves.grid.tolist(),
                        "y": charts._finite_or_none(getattr(curves, field)[key]),
                        "name": LOSS_LABELS[key],
                        "legendgroup": key,
                        "showlegend": column == 0,
                        "line": {"color": charts.color(n), "width": 2.5},
                        "xaxis": "x" if column == 0 else "x2",
                        "yaxis": "y" if column == 0 else "y2",
                    }
                )
        frames.append(traces)
    summaries = [
        f"padding {percent(share)}: ours is {curves.values['ours'][0]:.3g} at end "
        f"weight 0 and {curves.values['ours'][-1]:.3g} at {curves.grid[-1]:g}"
        for share, curves in zip(sweeps.shares, sweeps.sweeps, strict=True)
    ]
    x_axis = {"range": [0, max(ends)], "title": {"text": "end-token weight"}}
    layout = {
        "xaxis": {**x_axis, "domain": [0, 0.46], "anchor": "y"},
        "yaxis": {"range": [0, top("values")], "anchor": "x",
                  "title": {"text": "batch loss"}},
        "xaxis2": {**x_axis, "domain": [0.56, 1.0], "anchor": "y2"},
        "yaxis2": {"range": [0, top("grad_norms")], "anchor": "x2",
                   "title": {"text": "‖∂ loss / ∂ logits‖"}},
    }  # fmt: skip
    return play(
        sweeps.shares,
        frames,
        active=int(np.argmin(np.abs(sweeps.shares - float(opens_at)))),
        label=PADDING_LABEL,
        title="Batch loss and gradient norm over the end-token weight",
        summaries=summaries,
        layout=layout,
        fmt="{:.0%}".format,
        height=420,
    )
