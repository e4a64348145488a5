"""Figures of the "Loss as a layer (triplet)" page, from
``lossviz.explore.triplet``'s dataclasses. None computes a loss."""

from __future__ import annotations

from ui.figures import charts, sweep

SHOWN_GRADIENT_ROWS = 12


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


def gaps(batch, margin: float):
    """The gap of every triplet, with the margin line: left of it is active."""
    return charts.histogram(
        {"cos(q, a⁺) − cos(q, a⁻)": batch.gap},
        title="Gap: triplets left of the margin line are active",
        x_title="cosine gap",
        vlines={f"margin {margin:g}": margin},
        nbins=30,
    )


def per_triplet(point, hard):
    """Loss and gradient norm of each triplet, side by side."""
    return charts.bars(
        triplet_names(hard),
        {"loss": point.loss, "‖∂L/∂q‖": point.row_grad_norms},
        title="Loss and gradient norm per triplet",
        x_title="triplet",
        y_title="value",
    )


def gradient_rows(point, hard):
    """``dL/dq`` of the first triplets, each row named active or inactive."""
    rows = slice(0, SHOWN_GRADIENT_ROWS)
    names = triplet_names(hard)
    return charts.heatmap(
        point.grad[rows],
        x_labels=[f"d{j}" for j in range(point.grad.shape[1])],
        y_labels=[
            f"{name} ({'active' if active else 'inactive'})"
            for name, active in zip(names[rows], point.active[rows], strict=True)
        ],
        title=f"∂L/∂q for the first {SHOWN_GRADIENT_ROWS} triplets",
        x_title="embedding dimension",
        y_title="triplet",
    )


def _over_margins(margins, series: dict, margin: float, *, title: str, y_title: str):
    return sweep(
        margins.margins,
        series,
        title=title,
        x_title="margin m",
        y_title=y_title,
        marker=margin,
        marker_label=f"m = {margin:g}",
        nonfinite_from=margins.nonfinite_from,
    )


def sweep_loss(margins, margin: float):
    """Batch-mean loss and active share over the margin grid."""
    series = {
        "mean loss": margins.mean_loss,
        "share of active triplets": margins.active_share,
    }
    return _over_margins(
        margins,
        series,
        margin,
        title="Batch-mean loss and active share",
        y_title="loss / share",
    )


def sweep_grad(margins, margin: float):
    """The batch's gradient norm over the margin grid."""
    return _over_margins(
        margins,
        {"‖∂L/∂q‖": margins.grad_norm},
        margin,
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
