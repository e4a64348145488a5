"""The figures and tables of the "Multi-label ranking (BP-MLL)" page, from the
explore layer's ``Grid``, ``Point``, ``Sweep`` and ``Timings``, and the
attempts module's ``FlippedDescent``.

``play_figure`` is the page's main chart, every logit scale of the grid in
its frames; no other figure depends on the scale, so a move of the scale
slider redraws that one chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ui.figures import charts, sweep
from ui.figures.play import frames as play_frames
from ui.figures.play import per_grid, play
from ui.layout import format_value


def _label_names(point) -> list[str]:
    return [str(j) for j in range(point.y_true.shape[1])]


def _heatmap(point, z, title: str, **kwargs):
    return charts.heatmap(
        z,
        x_labels=_label_names(point),
        y_labels=point.sample_names,
        title=title,
        x_title="label",
        y_title="sample",
        **kwargs,
    )


def labels(point):
    """The multi-hot labels (they do not depend on the logit scale)."""
    return _heatmap(point, point.y_true, "Labels (1 = positive)", diverging=False)


_SERIES = {  # legend: (batch-mean field, gradient-norm field) of a Sweep
    "BP-MLL (log space)": ("mean_loss", "grad_norm"),
    "BP-MLL (factorised product)": ("mean_factorised", "factorised_grad_norm"),
    "binary cross-entropy": ("mean_bce", "bce_grad_norm"),
}


def _sweep(result, column: int, title: str, y_title: str):
    return sweep(
        result.scales,
        {name: getattr(result, fields[column]) for name, fields in _SERIES.items()},
        title=title,
        x_title="logit scale",
        y_title=y_title,
        nonfinite_from=result.factorised_overflow,
        nonfinite_label="product overflows",
        label_y=0.9,
        log_y=True,
    )


def sweep_loss(result):
    """The batch-mean losses over the scale sweep, the range where the
    factorised product overflows shaded. No mark of the current scale: the
    Play chart shows where the slider sits, so a move redraws only that."""
    return _sweep(result, 0, "Batch-mean loss", "loss")


def sweep_gradient(result):
    """The gradient norms over the scale sweep, drawn as ``sweep_loss``."""
    return _sweep(result, 1, "Gradient norm ‖∂ loss / ∂ logits‖", "gradient norm")


@dataclass(frozen=True)
class ScaleFigures:
    loss: go.Figure
    gradient: go.Figure


def over_scales(result) -> ScaleFigures:
    """``sweep_loss`` and ``sweep_gradient`` of one sweep."""
    return ScaleFigures(sweep_loss(result), sweep_gradient(result))


# ------------------------------------------------------------ the Play chart

_TOP = 40.0  # log10 of where +Inf is drawn, above the float32 maximum
_AXIS_TOP = 46.0  # room above the +Inf marks for their labels
_LOG_FLOAT32_MAX = float(np.log10(np.finfo(np.float32).max))
# A tick every ten decades (dtick is in decades on a log axis), as powers of 10.
_DECADES = {"dtick": 10, "exponentformat": "power", "showexponent": "all"}


def _bottom(*arrays) -> float:
    """log10 of the bottom of a log axis holding every finite positive value
    of ``arrays`` (and 1), a decade below the smallest."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    kept = values[np.isfinite(values) & (values > 0)]
    low = float(np.log10(kept.min())) if kept.size else 0.0
    return math.floor(min(low, 0.0)) - 1.0


def _bars(values) -> dict:
    """Bars on a log axis: finite positive values, ``None`` (no bar) else
    (their ``x``, the samples, is a style: the same in every frame)."""
    return {
        "type": "bar",
        "y": [float(v) if math.isfinite(v) and v > 0 else None for v in values],
    }


def _marks(names, groups) -> dict:
    """One scatter of markers: for each ``(where, y, text, symbol, color,
    size)`` of ``groups``, a marker at each sample of the mask ``where``, at
    the height ``y`` (a number, or an array over the samples), labelled
    ``text`` (a string, or a list over the samples)."""
    points = []
    for where, y, text, symbol, color, size in groups:
        ys = np.broadcast_to(np.asarray(y, dtype=float), (len(names),))
        texts = text if isinstance(text, list) else [text] * len(names)
        points += [(i, float(ys[i]), texts[i], symbol, color, size)
                   for i in np.flatnonzero(where)]  # fmt: skip
    return {
        "type": "scatter",
        "x": [names[p[0]] for p in points],
        "y": [p[1] for p in points],
        "text": [p[2] for p in points],
        "marker": {
            "symbol": [p[3] for p in points],
            "color": [p[4] for p in points],
            "size": [p[5] for p in points],
        },
    }


def _kinds(values) -> list:
    return ["NaN" if np.isnan(v) else "+Inf" if v > 0 else "-Inf" for v in values]


def _style(name: str, color: str | None, axis: int, names, legend=True) -> dict:
    """What a trace looks like: the same in every frame, so given in the
    opening one only (a frame's trace is merged into the drawn one). A
    bar's ``color`` and its ``names`` (the samples); None for markers (each
    frame gives theirs)."""
    style = {
        "name": name,
        "legendgroup": name,
        "showlegend": legend,
        "xaxis": "x2" if axis == 2 else "x",
        "yaxis": "y2" if axis == 2 else "y",
    }
    if color is not None:  # bars
        style["x"] = names
        style["marker"] = {"color": color}
        style["hovertemplate"] = "%{x}: %{y:.4g}<extra>" + name + "</extra>"
        return style
    return {
        **style,
        "mode": "markers+text",
        "textposition": "top center",
        "cliponaxis": False,
        "hovertemplate": "%{x}: %{y:.4g} %{text}<extra>" + name + "</extra>",
    }


def _styles(names, bce_grad: bool) -> list:
    marks = "— factorised product, × not finite, ○ 0"
    styles = [
        _style("BP-MLL (log space)", charts.color(0), 1, names),
        _style("cross-entropy", charts.color(2), 1, names),
        _style(marks, None, 1, names),
        _style("BP-MLL (log space)", charts.color(0), 2, names, legend=False),
        _style(marks, None, 2, names, legend=False),
    ]
    if bce_grad:
        styles.insert(
            4, _style("cross-entropy", charts.color(2), 2, names, legend=False)
        )
    return styles


def _frame(grid, names, i, low_loss, low_grad, bce_grad: bool) -> list:
    """The data of grid value ``i`` (in the order of ``_styles``): the loss
    row (axis 1) and the gradient-norm row (axis 2)."""
    loss, factorised = grid.loss[i], grid.factorised[i]
    grad = grid.grad_norm[i]
    pairs = ~grid.without_pairs
    zero_loss = np.isfinite(loss) & (loss == 0)
    bottom_loss, bottom_grad = 10 ** (low_loss + 0.3), 10 ** (low_grad + 0.3)
    bad, product, zero = charts.NONFINITE_COLOR, charts.color(1), charts.color(3)
    loss_marks = _marks(names, [
        (np.isfinite(factorised) & (factorised > 0), factorised, "", "line-ew-open",
         product, 22),
        (~np.isfinite(factorised), 10**_TOP, _kinds(factorised), "x",
         bad, 11),
        (~np.isfinite(loss), 10 ** (_TOP - 3), _kinds(loss),
         "x-open", charts.color(0), 11),
        (zero_loss & ~pairs, bottom_loss, "0 (no pairs)", "circle-open", zero, 11),
        (zero_loss & pairs, bottom_loss, "0 (underflow)", "diamond-open", zero, 11),
    ])  # fmt: skip
    grad_marks = _marks(names, [
        (np.isfinite(grad) & (grad == 0), bottom_grad, "0", "circle-open", zero, 11),
        (~np.isfinite(grad), 10**_TOP, _kinds(grad), "x", bad, 11),
    ])  # fmt: skip
    frame = [
        _bars(loss),
        _bars(grid.bce[i]),
        loss_marks,
        _bars(grad),
        grad_marks,
    ]
    if bce_grad:
        frame.insert(4, _bars(grid.bce_grad_norm[i]))
    return frame


def play_summary(grid, i: int) -> str:
    """Grid value ``i`` in one line: how many samples' log-space loss is
    finite (and the largest), and in how many the factorised product is not."""
    total = grid.loss.shape[1]
    finite = int(grid.finite_count[i])
    largest = (
        f" (largest {format_value(grid.largest_loss[i], digits=3)})" if finite else ""
    )
    inf, nan = int(grid.factorised_inf[i]), int(grid.factorised_nan[i])
    if inf or nan:
        product = "the factorised product is " + ", ".join(
            f"{kind} in {count}" for kind, count in (("+Inf", inf), ("NaN", nan))
            if count
        )  # fmt: skip
    else:
        product = "the factorised product is finite in every sample"
    return (
        f"scale {grid.values[i]:g}: log-space loss finite for {finite} of {total} "
        f"samples{largest}; {product}"
    )


def play_figure(
    grid, active: int, bce_grad: bool = False, height: int = 560
) -> go.Figure:
    """Per-sample loss as the logit scale grows: one frame per value of the
    grid (``explore.Grid``), opening on ``active``. Top, each sample's
    BP-MLL (log space) and binary cross-entropy, the factorised product
    marked on them and its +Inf/NaN samples crossed at the top; samples at
    0 marked at the bottom (no pairs: a convention; else an underflow), each
    mark labelled.
    Below, each sample's gradient norm ‖∂E/∂c‖ (and cross-entropy's with
    ``bce_grad``). Both axes are logarithmic and fixed across frames, up to
    past the float32 maximum (dotted).

    Only the opening frame carries the traces' styles: Plotly merges a
    frame's traces into the drawn ones, and plotly.py builds an object for
    every attribute of every frame (a styled frame costs several times a
    bare one to build and to send); the marks of a row are one trace."""
    grid_frames, styles, layout = _play_parts(grid, bce_grad)
    return play(
        grid_frames, active=active, label="logit scale", styles=styles,
        layout=layout, height=height,
    )  # fmt: skip


@per_grid
def _play_parts(grid, bce_grad: bool):
    """``play_figure``'s frames, styles and layout: the same whichever scale
    it opens on."""
    names = [f"s{j}" for j in range(grid.loss.shape[1])]
    low_loss = _bottom(grid.loss, grid.bce, grid.factorised)
    low_grad = _bottom(grid.grad_norm, *([grid.bce_grad_norm] if bce_grad else []))
    traces = [
        _frame(grid, names, i, low_loss, low_grad, bce_grad)
        for i in range(len(grid.values))
    ]
    summaries = [play_summary(grid, i) for i in range(len(grid.values))]
    float32_max = {
        "type": "line", "xref": "paper", "x0": 0, "x1": 1,
        "y0": 10**_LOG_FLOAT32_MAX, "y1": 10**_LOG_FLOAT32_MAX,
        "line": {"dash": "dot", "width": 1, "color": charts.NONFINITE_COLOR},
        "label": {"text": "float32 max", "textposition": "start",
                  "font": {"size": 10, "color": charts.NONFINITE_COLOR}},
    }  # fmt: skip
    layout = {
        "barmode": "group",
        "xaxis": {"type": "category", "anchor": "y", "showticklabels": False},
        "xaxis2": {"type": "category", "anchor": "y2", "matches": "x",
                   "title": {"text": "sample"}},
        "yaxis": {"type": "log", "range": [low_loss, _AXIS_TOP],
                  "domain": [0.5, 1.0], "title": {"text": "loss"}, **_DECADES},
        "yaxis2": {"type": "log", "range": [low_grad, _AXIS_TOP],
                   "domain": [0.0, 0.4], "title": {"text": "‖∂ loss/∂c‖"},
                   **_DECADES},
        "shapes": [{**float32_max, "yref": "y"}, {**float32_max, "yref": "y2"}],
        "margin": {"t": 120, "b": 90},
    }  # fmt: skip
    grid_frames = play_frames(
        grid.values,
        traces,
        title="Loss per sample (top) and its gradient norm (bottom)",
        summaries=summaries,
    )
    return grid_frames, _styles(names, bce_grad), layout


def forms_table(point) -> dict:
    """Each form's loss per sample, to 7 digits, for ``st.dataframe``."""
    table = {"sample": list(point.sample_names)}
    for name, values in point.forms.items():
        table[name] = [format_value(v, digits=7) for v in values]
    return table


def timing_table(point, timings, notes: dict) -> dict:
    """One row per form: ``notes[form]`` (how it computes, memory), its median
    time, that time as a multiple of the log-space form's and its largest
    relative gap to the loop, for ``st.dataframe``."""
    forms = list(timings.milliseconds)
    return {
        "form": forms,
        "how": [notes[name][0] for name in forms],
        "memory": [notes[name][1] for name in forms],
        "median time (ms)": [f"{timings.milliseconds[name]:.3g}" for name in forms],
        "× log space": [f"{timings.relative[name]:.3g}" for name in forms],
        "relative gap to loop": [
            format_value(point.form_gaps[name], digits=3) for name in forms
        ],
    }


@dataclass(frozen=True)
class DescentFigures:
    loss: go.Figure
    ranking: go.Figure


def flipped_descent(descent) -> DescentFigures:
    """The batch-mean loss and the share of (positive, negative) pairs ranked
    right over the SGD steps, for the flipped loop and for lossviz."""
    steps = list(range(len(descent.fix.loss)))
    runs = {
        "exp(c_k − c_l): the flipped sign": descent.flipped,
        "lossviz.bpmll_loss": descent.fix,
    }
    panels = {  # field of a Descent: (title, y title)
        "loss": ("Both losses fall…", "batch-mean loss"),
        "ranking": ("…while the ranking goes opposite ways", "pairs ranked right"),
    }
    figures = {
        field: charts.line(
            steps,
            {name: getattr(run, field) for name, run in runs.items()},
            title=title,
            x_title="SGD step",
            y_title=y_title,
        )
        for field, (title, y_title) in panels.items()
    }
    shares = {"range": [-0.02, 1.02], "tickformat": ".0%"}
    figures["ranking"].update_layout(yaxis=shares)
    return DescentFigures(**figures)
