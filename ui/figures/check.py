"""The check page's figures and tables, from a ``lossviz.check.CheckReport``
and ``lossviz.check.sweep_check``'s curves.

Large inputs are cut for drawing (``MAX_ROWS`` samples, ``MAX_COLUMNS``
gradient entries a sample, ``TABLE_ROWS`` table rows), and each figure says
so; the numbers themselves are the report's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ui.figures import charts, sweep
from ui.layout import format_value

MAX_ROWS = 40  # samples drawn in the per-sample charts and the gradient heatmap
MAX_COLUMNS = 60  # gradient entries per sample in the heatmap
TABLE_ROWS = 200  # per-sample values listed in the table


def sample_labels(shape) -> list[str]:
    """``"i,j"`` for every index of an array of ``shape``."""
    return [",".join(map(str, index)) for index in np.ndindex(*shape)]


def _keras_values(report):
    keras = report.keras
    return None if keras is None or keras.values is None else keras.values


def per_sample(report) -> go.Figure:
    """Bars of the per-sample loss beside the Keras built-in's, or a heatmap
    when the loss has more than one axis (per token)."""
    values = np.asarray(report.values)
    keras_values = _keras_values(report)
    if values.ndim <= 1:
        series = {"lossviz": values[:MAX_ROWS]}
        if keras_values is not None:
            series[report.keras.label.split("(")[0]] = np.ravel(keras_values)[:MAX_ROWS]
        return charts.bars(
            sample_labels(values.shape)[:MAX_ROWS],
            series,
            title="Per-sample loss, lossviz and the Keras built-in",
            x_title="sample",
            y_title="loss",
        )
    rows = values.reshape(-1, values.shape[-1])[:MAX_ROWS]
    return charts.heatmap(
        rows,
        x_labels=range(values.shape[-1]),
        y_labels=sample_labels(values.shape[:-1])[: len(rows)],
        title=f"Per-sample loss {report.output}",
        x_title="last axis",
        y_title="sample",
        diverging=False,
    )


def gradient(grad, title: str) -> go.Figure:
    """The gradient with respect to ``y_pred``, one row a sample (cut to
    ``MAX_ROWS`` x ``MAX_COLUMNS``, as the title then says)."""
    grad = np.asarray(grad)
    rows = grad.reshape(-1, grad.shape[-1]) if grad.ndim > 1 else grad[None, :]
    shown = rows[:MAX_ROWS, :MAX_COLUMNS]
    labels = sample_labels(grad.shape[:-1])[: len(shown)] if grad.ndim > 1 else ["all"]
    if shown.shape != rows.shape:
        title += (
            f" (first {shown.shape[0]} × {shown.shape[1]} of {rows.shape[0]} × "
            f"{rows.shape[1]})"
        )
    return charts.heatmap(
        shown,
        x_labels=range(shown.shape[1]),
        y_labels=labels,
        title=title,
        x_title="y_pred last axis",
        y_title="sample",
    )


def sweeps(curves: dict, spec, current) -> tuple[go.Figure, go.Figure]:
    """Mean loss and gradient norm over the range of the parameter ``spec``
    (a registry ``ParamSpec``), the current value marked; a log axis for a
    parameter offered on a log grid."""
    name, log_x = spec.name, bool(spec.ui_options)
    loss = sweep(
        curves["param"],
        {"mean loss": curves["mean_loss"]},
        title=f"Mean loss on your data as {name} moves",
        x_title=name,
        y_title="mean loss",
        marker=current,
        log_x=log_x,
    )
    grad = sweep(
        curves["param"],
        {"gradient norm": curves["grad_norm"]},
        title="Gradient norm w.r.t. y_pred",
        x_title=name,
        y_title="‖∂L/∂y_pred‖",
        marker=current,
        log_x=log_x,
    )
    return loss, grad


@dataclass(frozen=True)
class Charts:
    """Every chart of one check; ``None`` where there is nothing to draw."""

    per_sample: go.Figure
    grad: go.Figure
    keras_grad: go.Figure | None = None
    sweep: tuple[go.Figure, go.Figure] | None = None


def check_charts(report, curves: dict | None = None, entry=None) -> Charts:
    """The charts of a report, and of the sweep of the main parameter of
    ``entry`` (the loss's registry entry) when ``curves`` are given."""
    keras = report.keras
    spec = entry.param(entry.sweep_param) if curves else None
    return Charts(
        per_sample=per_sample(report),
        grad=gradient(report.grad, "lossviz: ∂ sum(loss) / ∂ y_pred"),
        keras_grad=None
        if keras is None or keras.grad is None
        else gradient(keras.grad, "Keras built-in: ∂ sum(loss) / ∂ y_pred"),
        sweep=None if not curves else sweeps(curves, spec, report.params[spec.name]),
    )


def sample_table(report) -> dict:
    """The first ``TABLE_ROWS`` per-sample values, with the Keras built-in's
    where it gives one value a sample too."""
    values = np.asarray(report.values)
    keras_values = _keras_values(report)
    table = {
        "sample": [str(list(i)) for i in np.ndindex(*values.shape)][:TABLE_ROWS],
        "lossviz": [format_value(v, 6) for v in values.ravel()[:TABLE_ROWS]],
    }
    if keras_values is not None and np.size(keras_values) == values.size:
        table["Keras built-in"] = [
            format_value(v, 6) for v in np.ravel(keras_values)[:TABLE_ROWS]
        ]
    return table


def findings_table(findings) -> dict:
    """Every listed non-finite value, where it is and the inputs behind it."""
    return {
        "where": [f.array for f in findings],
        "index": [str(list(f.index)) for f in findings],
        "value": [f.value for f in findings],
        "sample": ["" if f.sample is None else str(list(f.sample)) for f in findings],
        "inputs of that sample": [
            "; ".join(f"{k} = {v}" for k, v in f.inputs.items()) for f in findings
        ],
    }
