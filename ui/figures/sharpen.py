"""The "Softmax → one-hot" page's figures, from ``lossviz.explore.sharpen``'s
``Point`` (one setting) and ``Sweep`` (over the power or the temperature
grid)."""

from __future__ import annotations

import plotly.graph_objects as go

from ui.figures import charts, sweep
from ui.layout import format_value


def _tokens(point) -> list[str]:
    return [str(v) for v in range(point.probs.shape[-1])]


def distributions(point, sample: int) -> tuple[go.Figure, go.Figure]:
    """Two bar charts of sample ``sample``: softmax p beside what the loss
    sees (``power_sharpen`` by power, the temperature softmax by temperature)
    and the naive form, then the other of those two beside the
    straight-through one-hot and the Gumbel-softmax sample."""
    tokens = _tokens(point)
    stable = (f"power_sharpen at k = {point.power:g} (log space)", point.stable)
    tempered = (
        f"softmax(z / T) at T = {format_value(point.temperature, 3)}",
        point.tempered,
    )
    seen, other = (
        (tempered, stable)
        if point.setting.sharpen_by == "temperature"
        else (stable, tempered)
    )
    before_after = charts.bars(
        tokens,
        {
            "softmax p": point.probs[sample],
            seen[0]: seen[1][sample],
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
            other[0]: other[1][sample],
            "straight-through one-hot": point.straight_through[sample],
            f"{hard}Gumbel-softmax sample": point.gumbel[sample],
        },
        title="The same sharpening the other way, straight-through and Gumbel-softmax",
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


def _by_temperature(result) -> bool:
    return result.by == "temperature"


def sweep_figures(result, value: float) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The loss, the gradient norm and the top sharpened probability over the
    sweep (its powers, or its temperatures on a reversed axis), with the
    driving ``value`` marked (and the naive form's NaN range shaded on the
    last)."""
    by_t = _by_temperature(result)
    name = "T" if by_t else "k"
    grows = "the temperature falls" if by_t else "the power grows"
    common = {
        "x_title": "temperature T" if by_t else "power k",
        "marker": value,
        "marker_label": f"{name} = {value:g}",
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
        # inside the plot: the legend takes the row above this one
        label_y=0.35,
        **common,
    )
    return loss, grad, top
