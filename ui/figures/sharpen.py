"""The "Softmax → one-hot" page's figures, from ``lossviz.explore.sharpen``'s
``Point`` (one setting) and ``Sweep`` (over the power grid)."""

from __future__ import annotations

import plotly.graph_objects as go

from ui.figures import charts, sweep
from ui.layout import format_value


def _tokens(point) -> list[str]:
    return [str(v) for v in range(point.probs.shape[-1])]


def distributions(point, sample: int) -> tuple[go.Figure, go.Figure]:
    """Two bar charts of sample ``sample``: softmax p beside its sharpened
    forms (log space and naive), and the temperature softmax beside the
    straight-through one-hot and the Gumbel-softmax sample."""
    tokens = _tokens(point)
    before_after = charts.bars(
        tokens,
        {
            "softmax p": point.probs[sample],
            "power_sharpen (log space)": point.stable[sample],
            "naive x**k / Σ x**k": point.naive[sample],
        },
        title=f"Sample {point.sample_names[sample]}: p and sharpened p",
        x_title="token",
        y_title="probability",
    )
    hard = "hard " if point.setting.hard else ""
    one_hot = charts.bars(
        tokens,
        {
            f"softmax at T = {format_value(point.temperature, 3)}": point.tempered[
                sample
            ],
            "straight-through one-hot": point.straight_through[sample],
            f"{hard}Gumbel-softmax sample": point.gumbel[sample],
        },
        title="The same temperature, straight-through and Gumbel-softmax",
        x_title="token",
        y_title="probability",
    )
    return before_after, one_hot


def gradient(point) -> go.Figure:
    """The gradient of the summed loss with respect to the logits, a heatmap
    with a row per sample."""
    return charts.heatmap(
        point.grad,
        x_labels=_tokens(point),
        y_labels=point.sample_names,
        title="∂ loss / ∂ logits",
        x_title="token",
        y_title="sample",
    )


def power_sweep(result, power: float) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The loss, the gradient norm and the top sharpened probability over the
    sweep's powers, with ``power`` marked (and the naive form's NaN range
    shaded on the last)."""
    common = {
        "x_title": "power k",
        "marker": power,
        "marker_label": f"k = {power:g}",
        "log_x": True,
    }
    loss = sweep(
        result.powers,
        {"loss, batch mean": result.mean_loss},
        title="Loss as the power grows",
        y_title="loss",
        **common,
    )
    grad = sweep(
        result.powers,
        {"‖∂L/∂logits‖": result.grad_norm},
        title="The gradient vanishes as the power grows",
        y_title="gradient norm",
        log_y=True,
        **common,
    )
    nan_from = result.first_nan
    top = sweep(
        result.powers,
        {"log space": result.stable_top, "naive (float32)": result.naive_top},
        title="Top sharpened probability, batch mean: naive and log space",
        y_title="top probability",
        nonfinite_from=nan_from,
        nonfinite_label=f"naive NaN from k ≈ {nan_from:.3g}" if nan_from else "",
        # inside the plot: the legend takes the row above this one
        label_y=0.35,
        **common,
    )
    return loss, grad, top
