"""The probe page's table and charts, from a ``lossviz.probe.ProbeReport`` and
a ``lossviz.probe.ScaleSweep``.

A status is shown as a word with a symbol on a coloured cell (pass green,
warn amber, fail red), so it reads without the colour too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from ui.figures import sweep

# status -> (what the cell says, background, text): dark text on light tints,
# readable on the light and the dark theme alike.
STATUS = {
    "pass": ("✔ pass", "#d5f0dc", "#0d4f1f"),
    "warn": ("▲ warn", "#fde8b6", "#5c3b00"),
    "fail": ("✖ fail", "#fbd4ce", "#7f1a0c"),
}
_CELL = {text: f"background-color: {bg}; color: {fg}; font-weight: 600"
         for text, bg, fg in STATUS.values()}  # fmt: skip


def status_text(status: str) -> str:
    """The words a status cell shows, e.g. ``"✖ fail"``."""
    return STATUS[status][0]


def checks_table(report) -> Styler:
    """One row per check, in the probe's order: its name, its status (word and
    colour) and its sentence, with the smallest input row behind a fail."""
    frame = pd.DataFrame(
        {
            "check": [c.name for c in report.checks],
            "status": [status_text(c.status) for c in report.checks],
            "detail": [c.detail for c in report.checks],
        }
    )
    return frame.style.map(lambda text: _CELL.get(text, ""), subset=["status"])


def _log_y(values) -> bool:
    """A log axis for curves that are positive and span orders of magnitude."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return bool(finite.size and finite.min() > 0 and finite.max() > 100 * finite.min())


def scale_charts(curves) -> tuple[go.Figure, go.Figure]:
    """Mean loss and gradient norm over the logit scales of a ``ScaleSweep``,
    the typical batch (s = 1) marked and the range where the values stay
    NaN/Inf shaded."""
    charts = []
    for name, values, start, y_title in (
        ("Mean loss", curves.mean_loss, curves.loss_nonfinite_from, "mean loss"),
        ("Gradient norm", curves.grad_norm, curves.grad_nonfinite_from,
         "‖∂ sum(loss) / ∂ y_pred‖"),
    ):  # fmt: skip
        charts.append(
            sweep(
                curves.scales,
                {name.lower(): values},
                title=f"{name} as the logits grow",
                x_title="logit scale s",
                y_title=y_title,
                marker=1.0,
                marker_label="the checks' batch",
                nonfinite_from=start,
                nonfinite_label="NaN/Inf from here",
                log_x=True,
                log_y=_log_y(values),
            )
        )
    return charts[0], charts[1]
