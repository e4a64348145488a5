"""A page's main chart, playable: Plotly's own slider and a Play button over
frames computed ahead for every value of the page's main control.

Scrubbing and playing happen in the browser (Plotly's ``animate``), with no
round trip to the server. The figure opens on the frame of the page's
slider (``active``), so moving that slider redraws this one chart and no
other. Each frame carries its own one-line summary as the figure's
subtitle (SVG text that screen readers read), and ``summary(fig)`` gives the
opening frame's for the caption under the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

# While playing, a frame stays this long (a long grid plays faster, so that
# a whole play takes at most about 8 s); a scrub redraws at once.
PLAY_MS = 450
MIN_PLAY_MS = 80
_SCRUB = {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
          "transition": {"duration": 0}}  # fmt: skip


def frame_ms(n: int) -> int:
    """How long a frame stays while playing ``n`` frames."""
    return max(MIN_PLAY_MS, min(PLAY_MS, 8000 // max(n, 1)))


def _play_args(n: int) -> dict:
    return {"frame": {"duration": frame_ms(n), "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}, "mode": "immediate"}  # fmt: skip

_PAUSE = {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
          "transition": {"duration": 0}}  # fmt: skip


def frame_name(i: int) -> str:
    return f"f{i}"


def _title(title: str, summary: str) -> dict:
    return {"text": f"{title}<br><sup>{summary}</sup>", "x": 0, "xanchor": "left"}


def play(
    values: Sequence[float],
    frames: Sequence[Sequence[dict]],
    *,
    active: int,
    label: str,
    title: str,
    summaries: Sequence[str],
    layout: dict | None = None,
    fmt: Callable[[float], str] = "{:g}".format,
    height: int = 430,
) -> go.Figure:
    """A figure whose data is ``frames[active]``, with one Plotly frame per
    grid value ``values[i]`` (traces ``frames[i]``: plain trace dicts, the
    same number and kinds in every frame), a slider labelled ``label = v``
    and Play / Pause buttons. ``summaries[i]`` is frame i's one-line text.
    ``layout``: axes and the rest (fix the axis ranges across frames, or
    Plotly rescales them as it plays)."""
    n = len(values)
    if not (len(frames) == len(summaries) == n) or n == 0:
        raise ValueError(
            f"play: {n} values, {len(frames)} frames and {len(summaries)} "
            "summaries: they must be as many, and at least one"
        )
    if not 0 <= active < n:
        raise ValueError(f"active must lie in [0, {n - 1}], got {active}")
    shapes = {len(f) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"every frame needs the same traces, got counts {shapes}")
    layout = dict(layout or {})
    controls_top = 1.0  # the slider and buttons sit under the plot
    layout.update(
        title=_title(title, summaries[active]),
        height=height,
        # the buttons and the slider sit in the bottom margin, below the x axis
        margin={"l": 10, "r": 10, "t": 70, "b": 125, **layout.pop("margin", {})},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "showactive": False,
                "x": 0,
                "xanchor": "left",
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 62, "r": 10},
                "buttons": [
                    {
                        "label": "▶ Play",
                        "method": "animate",
                        "args": [None, _play_args(n)],
                    },
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [[None], _PAUSE],
                    },
                ],  # fmt: skip
            }
        ],
        sliders=[
            {
                "active": int(active),
                "x": 0.25,
                "len": 0.75,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 50, "b": 0},
                "currentvalue": {"prefix": f"{label} = ", "visible": True,
                                 "xanchor": "right"},  # fmt: skip
                "transition": {"duration": 0},
                "steps": [
                    {
                        "label": fmt(float(v)),
                        "method": "animate",
                        "args": [[frame_name(i)], _SCRUB],
                    }
                    for i, v in enumerate(values)
                ],
            }
        ],
        meta={
            "play": {
                "label": label,
                "values": [float(v) for v in values],
                "summaries": list(summaries),
            }
        },  # fmt: skip
    )
    layout.setdefault("showlegend", True)
    layout.setdefault(
        "legend",
        {"orientation": "h", "x": 1, "xanchor": "right", "y": controls_top,
         "yanchor": "bottom"},
    )  # fmt: skip
    figure_frames = [
        {
            "name": frame_name(i),
            "data": list(frames[i]),
            "layout": {"title": _title(title, summaries[i])},
        }
        for i in range(n)
    ]
    return go.Figure(
        {"data": list(frames[active]), "layout": layout, "frames": figure_frames},
        _validate=False,
    )


def summary(fig: go.Figure) -> str:
    """The opening frame's summary (the caption under the chart)."""
    meta = fig.layout.meta["play"]
    return meta["summaries"][fig.layout.sliders[0].active]


def nearest(values: Sequence[float], value: float) -> int:
    """The index of the grid value nearest ``value`` (on a log scale when the
    grid is positive and spans more than a decade)."""
    grid = np.asarray(values, dtype=float)
    if np.all(grid > 0) and grid.max() / grid.min() > 10 and value > 0:
        return int(np.argmin(np.abs(np.log(grid) - np.log(value))))
    return int(np.argmin(np.abs(grid - value)))
