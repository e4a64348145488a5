"""Figure builders: ``charts`` holds the primitives (line, bars, heatmap,
histogram), ``sweep`` the one chart of a loss over a parameter range,
``play`` a page's main chart with frames over its main control, and one
module per family (``ui.figures.sharpen`` ...) that family's figures.

Each builder takes the explore layer's numpy dataclasses and returns a plotly
figure; none computes a loss.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui.figures import charts
from ui.figures.play import play


def sweep(
    x,
    series: dict,
    *,
    title: str,
    x_title: str,
    y_title: str,
    marker: float | None = None,
    marker_label: str | None = None,
    nonfinite_from: float | None = None,
    nonfinite_label: str = "non-finite",
    nonfinite_toward: str = "high",
    reverse_x: bool = False,
    label_y: float = 1.0,
    log_x: bool = False,
    log_y: bool = False,
    height: int | None = 320,
) -> go.Figure:
    """Lines of ``series`` over a parameter grid ``x``, with the current value
    marked (a dashed line labelled ``marker_label``) and the range from
    ``nonfinite_from`` to the grid's high end (``nonfinite_toward="high"``)
    or low end (``"low"``, e.g. a temperature) shaded and labelled.
    ``reverse_x`` draws the axis from high to low.

    On a log axis Plotly puts shapes in data units but annotations in log10
    units (plotly.py#2580), so labels get ``log10`` and shapes do not.
    ``label_y`` below 1 puts the marker's label inside the plot (where a
    legend above would cover it).
    """
    fig = charts.line(
        x, series, title=title, x_title=x_title, y_title=y_title,
        log_x=log_x, log_y=log_y, height=height,
    )  # fmt: skip
    layout = fig.layout.to_plotly_json()
    shapes = list(layout.get("shapes", ()))
    notes = list(layout.get("annotations", ()))

    def at(v: float) -> float:
        return float(np.log10(v)) if log_x and v > 0 else float(v)

    if nonfinite_toward not in ("high", "low"):
        raise ValueError(
            f"nonfinite_toward must be 'high' or 'low', got {nonfinite_toward!r}"
        )
    if nonfinite_from is not None:
        grid = np.asarray(x, dtype=float)
        end = float(np.nanmax(grid) if nonfinite_toward == "high" else np.nanmin(grid))
        # the label reads into the shaded range, whichever way the axis runs
        into = "left" if (nonfinite_toward == "high") != reverse_x else "right"
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": float(nonfinite_from),
                "x1": end,
                "y0": 0,
                "y1": 1,
                "fillcolor": charts.NONFINITE_COLOR,
                "opacity": 0.12,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": at(nonfinite_from),
                "xref": "x",
                "y": 0.6,
                "yref": "paper",
                "text": f" {nonfinite_label} ",
                "showarrow": False,
                "xanchor": into,
            }
        )
    if marker is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": float(marker),
                "x1": float(marker),
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dash", "width": 1.5},
            }
        )
        notes.append(
            {
                "x": at(marker),
                "xref": "x",
                "y": label_y,
                "yref": "paper",
                "text": f" {marker_label if marker_label else f'{marker:g}'}",
                "showarrow": False,
                "xanchor": "center" if label_y >= 1 else "left",
                "yanchor": "bottom" if label_y >= 1 else "middle",
            }
        )
    layout["shapes"], layout["annotations"] = shapes, notes
    if reverse_x:
        layout["xaxis"] = {**layout.get("xaxis", {}), "autorange": "reversed"}
    # The traces are reused as they are (to_plotly_json would turn their
    # arrays into base64 dicts).
    return go.Figure({"data": fig.data, "layout": layout}, _validate=False)


__all__ = ["charts", "play", "sweep"]
