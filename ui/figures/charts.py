"""Plotly chart builders: titled, labelled, colour-blind-safe, theme-following.

Colours come from the Okabe-Ito palette (safe for the common colour-vision
deficiencies, readable on light and dark backgrounds); backgrounds and fonts are
left to Streamlit's theme (``ui.plot`` draws with ``theme="streamlit"``).
Non-finite values are never dropped silently: a line chart marks them with a
cross on the axis and names their count in the legend.

Figures are built as plain dicts and wrapped without plotly's validation
(``_validate=False``): validating and ``update_layout``/``add_vline`` calls
cost tens of milliseconds per chart, more than the loss itself, on every
slider move. The dicts use only documented plotly attributes, and the tests
validate them once.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
)
NONFINITE_COLOR = "#D55E00"
DIVERGING = "RdBu"  # ColorBrewer marks RdBu as colour-blind safe
SEQUENTIAL = "Viridis"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _figure(data, title, x_title, y_title, height=None, **layout) -> go.Figure:
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}, **layout.pop("xaxis", {})},
        "yaxis": {"title": {"text": y_title}, **layout.pop("yaxis", {})},
        "margin": {"l": 10, "r": 10, "t": 60, "b": 40},
        # At the bottom of the figure, below the axis title: a legend that
        # wraps must cover neither the title nor the axis.
        "legend": {
            "orientation": "h",
            "yref": "container",
            "yanchor": "bottom",
            "y": 0.0,
            "x": 0,
        },
        **({"height": height} if height else {}),
        **layout,
    }
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _vline(x: float, label: str, line_color: str | None = None, log_x=False):
    line = {"dash": "dash", "width": 1.5}
    if line_color:
        line["color"] = line_color
    shape = {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": line,
    }
    note = {
        # Plotly places annotations on a log axis in log10 units, shapes in
        # data units.
        "x": float(np.log10(x)) if log_x and x > 0 else x,
        "xref": "x",
        "y": 1,
        "yref": "paper",
        "text": label,
        "showarrow": False,
        "yanchor": "bottom",
    }
    return shape, note


def _finite_or_none(y: np.ndarray) -> list:
    """Plotly JSON has no NaN; ``None`` is a gap in a line."""
    return [float(v) if np.isfinite(v) else None for v in y]


def line(
    x,
    series: dict,
    *,
    title: str,
    x_title: str,
    y_title: str,
    marker_x=None,
    marker_label: str = "current",
    log_x: bool = False,
    log_y: bool = False,
    height: int | None = 320,
) -> go.Figure:
    """Lines of ``series`` over ``x``; non-finite points marked, ``marker_x`` drawn.

    ``x`` is shared by every series, or a dict giving each series its own.
    """
    xs = {
        name: np.asarray(x[name] if isinstance(x, dict) else x, dtype=float)
        for name in series
    }
    ys = {name: np.asarray(y, dtype=float) for name, y in series.items()}
    data = [
        {
            "type": "scatter",
            "x": xs[name],
            "y": _finite_or_none(y),
            "mode": "lines",
            "name": name,
            "line": {"color": color(i), "width": 2.5},
        }
        for i, (name, y) in enumerate(ys.items())
    ]
    finite = [y[np.isfinite(y) & ((y > 0) if log_y else True)] for y in ys.values()]
    finite = np.concatenate(finite) if finite else np.array([])
    floor_y = float(finite.min()) if finite.size else (1.0 if log_y else 0.0)
    for i, (name, y) in enumerate(ys.items()):
        bad = ~np.isfinite(y)
        if not bad.any():
            continue
        kinds = np.where(
            np.isnan(y[bad]), "NaN", np.where(y[bad] > 0, "+Inf", "-Inf")
        ).tolist()
        data.append(
            {
                "type": "scatter",
                "x": xs[name][bad],
                "y": [floor_y] * int(bad.sum()),
                "mode": "markers",
                "name": f"{name}: non-finite ({int(bad.sum())} of {y.size})",
                "marker": {
                    "symbol": "x",
                    "size": 9,
                    "color": NONFINITE_COLOR if i == 0 else color(i),
                },
                "text": kinds,
                "hovertemplate": "%{x}: %{text}<extra>" + name + "</extra>",
            }
        )
    layout = {"xaxis": {}, "yaxis": {}}
    if marker_x is not None:
        shape, note = _vline(float(marker_x), marker_label, log_x=log_x)
        layout["shapes"] = [shape]
        layout["annotations"] = [note]
    if log_x:
        layout["xaxis"]["type"] = "log"
    if log_y:
        layout["yaxis"]["type"] = "log"
    return _figure(data, title, x_title, y_title, height, **layout)


def heatmap(
    z,
    *,
    x_labels,
    y_labels,
    title: str,
    x_title: str,
    y_title: str,
    diverging: bool = True,
    height: int | None = None,
) -> go.Figure:
    """A heatmap; diverging data are centred on 0. Non-finite cells show as gaps
    named in the hover text."""
    z = np.asarray(z, dtype=float)
    text = np.where(np.isfinite(z), np.char.mod("%.3g", np.nan_to_num(z)), "")
    text = np.where(np.isnan(z), "NaN", text)
    text = np.where(np.isposinf(z), "+Inf", text)
    text = np.where(np.isneginf(z), "-Inf", text)
    trace = {
        "type": "heatmap",
        "z": [_finite_or_none(row) for row in np.atleast_2d(z)],
        "x": [str(v) for v in x_labels],
        "y": [str(v) for v in y_labels],
        "text": np.atleast_2d(text).tolist(),
        "hovertemplate": "%{y}, %{x}: %{text}<extra></extra>",
        "colorscale": DIVERGING if diverging else SEQUENTIAL,
    }
    if diverging:
        trace["zmid"] = 0.0
    if height is None:
        height = max(220, 60 + 28 * len(y_labels))
    return _figure(
        [trace],
        title,
        x_title,
        y_title,
        height,
        xaxis={"type": "category"},
        yaxis={"autorange": "reversed", "type": "category"},
    )


def bars(
    categories,
    series: dict,
    *,
    title: str,
    x_title: str,
    y_title: str,
    height: int | None = 320,
) -> go.Figure:
    """Grouped bars, one colour per series; non-finite bars named in the hover."""
    cats = [str(c) for c in categories]
    data = []
    for i, (name, y) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        data.append(
            {
                "type": "bar",
                "x": cats,
                "y": _finite_or_none(y),
                "name": name,
                "marker": {"color": color(i)},
                "customdata": np.where(np.isfinite(y), "", "non-finite").tolist(),
                "hovertemplate": "%{x}: %{y:.4g} %{customdata}<extra>"
                + name
                + "</extra>",
            }
        )
    # Categories stay categories even when they look like numbers ("2").
    return _figure(
        data,
        title,
        x_title,
        y_title,
        height,
        barmode="group",
        xaxis={"type": "category"},
    )


def histogram(
    series: dict,
    *,
    title: str,
    x_title: str,
    y_title: str = "count",
    vlines: dict | None = None,
    nbins: int = 40,
    height: int | None = 320,
) -> go.Figure:
    """Overlaid histograms of ``series`` with labelled vertical lines."""
    data = []
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        data.append(
            {
                "type": "histogram",
                "x": values[np.isfinite(values)],
                "name": name,
                "nbinsx": nbins,
                "opacity": 0.65,
                "marker": {"color": color(i)},
            }
        )
    shapes, notes = [], []
    for j, (name, x) in enumerate((vlines or {}).items()):
        shape, note = _vline(float(x), name, color(len(series) + j))
        shapes.append(shape)
        notes.append(note)
    return _figure(
        data,
        title,
        x_title,
        y_title,
        height,
        barmode="overlay",
        shapes=shapes,
        annotations=notes,
    )
