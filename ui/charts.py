"""Plotly chart builders: titled, labelled, colour-blind-safe, theme-following.

Colours come from the Okabe-Ito palette (safe for the common colour-vision
deficiencies, readable on light and dark backgrounds); backgrounds and fonts are
left to Streamlit's theme (``ui.plot`` draws with ``theme="streamlit"``).
Non-finite values are never dropped silently: a line chart marks them with a
cross on the axis and names their count in the legend.
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


def _layout(fig: go.Figure, title, x_title, y_title, height=None) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        height=height,
    )
    return fig


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
    fig = go.Figure()
    finite_all = []
    for i, (name, y) in enumerate(series.items()):
        x = xs[name]
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(y)
        finite_all.append(y[ok & (y > 0 if log_y else True)])
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.where(ok, y, np.nan),
                mode="lines",
                name=name,
                line={"color": color(i), "width": 2.5},
            )
        )
    floor = np.concatenate(finite_all) if finite_all else np.array([])
    floor_y = float(floor.min()) if floor.size else (1.0 if log_y else 0.0)
    for i, (name, y) in enumerate(series.items()):
        x = xs[name]
        y = np.asarray(y, dtype=float)
        bad = ~np.isfinite(y)
        if bad.any():
            kinds = np.where(
                np.isnan(y[bad]), "NaN", np.where(y[bad] > 0, "+Inf", "-Inf")
            )
            fig.add_trace(
                go.Scatter(
                    x=x[bad],
                    y=np.full(int(bad.sum()), floor_y),
                    mode="markers",
                    name=f"{name}: non-finite ({int(bad.sum())} of {y.size})",
                    marker={
                        "symbol": "x",
                        "size": 9,
                        "color": NONFINITE_COLOR if i == 0 else color(i),
                        "line": {"width": 1},
                    },
                    text=kinds,
                    hovertemplate="%{x}: %{text}<extra>" + name + "</extra>",
                )
            )
    if marker_x is not None:
        fig.add_vline(
            x=float(marker_x),
            line_dash="dash",
            line_width=1.5,
            annotation_text=marker_label,
            annotation_position="top",
        )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return _layout(fig, title, x_title, y_title, height)


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
    """A heatmap; diverging data are centred on 0. Non-finite cells show as gaps."""
    z = np.asarray(z, dtype=float)
    shown = np.where(np.isfinite(z), z, np.nan)
    text = np.where(np.isfinite(z), np.char.mod("%.3g", np.nan_to_num(z)), "")
    text = np.where(np.isnan(z), "NaN", text)
    text = np.where(np.isposinf(z), "+Inf", text)
    text = np.where(np.isneginf(z), "-Inf", text)
    kwargs = (
        {"colorscale": DIVERGING, "zmid": 0.0}
        if diverging
        else {"colorscale": SEQUENTIAL}
    )
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=[str(v) for v in x_labels],
            y=[str(v) for v in y_labels],
            text=text,
            hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
            **kwargs,
        )
    )
    fig.update_yaxes(autorange="reversed")
    if height is None:
        height = max(220, 40 + 28 * len(y_labels))
    return _layout(fig, title, x_title, y_title, height)


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
    fig = go.Figure()
    cats = [str(c) for c in categories]
    for i, (name, y) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        fig.add_trace(
            go.Bar(
                x=cats,
                y=np.where(np.isfinite(y), y, np.nan),
                name=name,
                marker_color=color(i),
                customdata=np.where(np.isfinite(y), "", "non-finite"),
                hovertemplate="%{x}: %{y:.4g} %{customdata}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, title, x_title, y_title, height)


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
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        fig.add_trace(
            go.Histogram(
                x=values[np.isfinite(values)],
                name=name,
                nbinsx=nbins,
                opacity=0.65,
                marker_color=color(i),
            )
        )
    fig.update_layout(barmode="overlay")
    for j, (name, x) in enumerate((vlines or {}).items()):
        fig.add_vline(
            x=float(x),
            line_dash="dash",
            line_color=color(len(series) + j),
            annotation_text=name,
            annotation_position="top",
        )
    return _layout(fig, title, x_title, y_title, height)
