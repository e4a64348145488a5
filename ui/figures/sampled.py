"""Figures of the "Sampled softmax" page, from ``lossviz.explore.sampled``'s
dataclasses. None computes a loss."""

from __future__ import annotations

import numpy as np

from ui.figures import charts, sweep

S_AXIS = "sampled classes S"


def histogram(point):
    """The batch-mean sampled loss under many seeds, the full loss and the
    mean of the draws marked."""
    return charts.histogram(
        {f"sampled, S = {point.setting.num_sampled}": point.draw_means},
        title=f"Batch-mean sampled loss under {len(point.draw_means)} seeds",
        x_title="loss (batch mean)",
        y_title="seeds",
        vlines={"full loss": point.full_mean, "mean of the draws": point.draws_mean},
    )


def gradients(point):
    """The first samples' gradients with respect to their logits: the full
    loss's and the sampled loss's, as two heatmaps over the same classes."""
    names = [f"{i}: label {int(y)}" for i, y in enumerate(point.labels)]
    rows = point.full_logit_grad.shape[0]
    return tuple(
        charts.heatmap(
            grad,
            x_labels=[f"c{c}" for c in point.classes],
            y_labels=names[:rows],
            title=title,
            x_title="class (0 = most frequent)",
            y_title="sample",
        )
        for grad, title in (
            (point.full_logit_grad, "∂ full loss / ∂ logits"),
            (
                point.sampled_logit_grad,
                f"∂ sampled loss / ∂ logits (S = {point.setting.num_sampled})",
            ),
        )
    )


def sweeps(grid, num_sampled: int):
    """Over the grid of ``S``: the size of the bias and the spread (log-log),
    the loss and the gradient norm beside the full loss's, ``S`` marked."""
    marked = {"marker": num_sampled, "marker_label": f"S = {num_sampled}"}
    points = grid.num_sampled
    error = sweep(
        points,
        {"|bias|": grid.abs_bias, "spread (std)": grid.spread},
        title=f"Bias and spread over {grid.draws} seeds",
        x_title=S_AXIS,
        y_title="loss units",
        log_x=True,
        log_y=True,
        **marked,
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
            **marked,
        )
        for sampled, full, title, y_title in (
            (grid.mean_loss, grid.full_loss, "Loss as S grows", "loss (batch mean)"),
            (grid.grad_norm, grid.full_grad_norm, "Gradient norm as S grows",
             "‖∂L/∂inputs‖"),
        )
    )  # fmt: skip
    return error, loss, grad
