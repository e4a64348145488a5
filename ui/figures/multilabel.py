"""The figures and tables of the "Multi-label ranking (BP-MLL)" page, from the
explore layer's ``Point``, ``Sweep`` and ``Timings``, and the attempts
module's ``FlippedDescent``.

``at_point`` and ``over_scales`` build a setting's figures together, so the
page caches them with one call each: hashing a ``Point`` for the cache key
costs about as much as building one of its figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from ui.figures import charts, sweep
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


def loss_per_sample(point):
    """BP-MLL and binary cross-entropy of each sample, side by side."""
    return charts.bars(
        point.sample_names,
        {"BP-MLL": point.loss, "binary cross-entropy": point.bce},
        title="Loss per sample",
        x_title="sample",
        y_title="loss",
    )


def labels(point):
    """The multi-hot labels (they do not depend on the logit scale)."""
    return _heatmap(point, point.y_true, "Labels (1 = positive)", diverging=False)


def gradient(point):
    return _heatmap(
        point, point.grad, "∂ BP-MLL / ∂ logits (positives pushed up, negatives down)"
    )


def bce_gradient(point):
    return _heatmap(point, point.bce_grad, "∂ binary cross-entropy / ∂ logits")


@dataclass(frozen=True)
class PointFigures:
    loss_per_sample: go.Figure
    labels: go.Figure
    gradient: go.Figure
    forms_table: dict


def at_point(point) -> PointFigures:
    """Every figure of ``point`` the page always shows (``bce_gradient`` is
    drawn on request)."""
    return PointFigures(
        loss_per_sample(point), labels(point), gradient(point), forms_table(point)
    )


_SERIES = {  # legend: (batch-mean field, gradient-norm field) of a Sweep
    "BP-MLL (log space)": ("mean_loss", "grad_norm"),
    "BP-MLL (factorised product)": ("mean_factorised", "factorised_grad_norm"),
    "binary cross-entropy": ("mean_bce", "bce_grad_norm"),
}


def _sweep(result, scale: float, column: int, title: str, y_title: str):
    return sweep(
        result.scales,
        {name: getattr(result, fields[column]) for name, fields in _SERIES.items()},
        title=title,
        x_title="logit scale",
        y_title=y_title,
        marker=scale,
        nonfinite_from=result.factorised_overflow,
        nonfinite_label="product overflows",
        label_y=0.9,
        log_y=True,
    )


def sweep_loss(result, scale: float):
    """The batch-mean losses over the scale sweep, the current scale marked
    and the range where the factorised product overflows shaded."""
    return _sweep(result, scale, 0, "Batch-mean loss", "loss")


def sweep_gradient(result, scale: float):
    """The gradient norms over the scale sweep, marked as ``sweep_loss``."""
    return _sweep(
        result, scale, 1, "Gradient norm ‖∂ loss / ∂ logits‖", "gradient norm"
    )


@dataclass(frozen=True)
class ScaleFigures:
    loss: go.Figure
    gradient: go.Figure


def over_scales(result, scale: float) -> ScaleFigures:
    """``sweep_loss`` and ``sweep_gradient`` of one sweep at one scale."""
    return ScaleFigures(sweep_loss(result, scale), sweep_gradient(result, scale))


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
