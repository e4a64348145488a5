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

import base64
import functools
import json
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io
from plotly.io.json import to_json_plotly

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


@dataclass(frozen=True, eq=False)
class Frames:
    """A Play chart's frames over a grid, serialised once (``frames``): the
    part of the figure that is the same whichever frame it opens on."""

    values: tuple
    traces: tuple  # per frame: its trace dicts
    summaries: tuple
    title: str
    json: str


def frames(values, traces, *, title: str, summaries) -> Frames:
    """One frame per grid value ``values[i]``: ``traces[i]`` (plain trace
    dicts, the same number and kinds in every frame) and the one-line text
    ``summaries[i]``. Cache it per grid: every opening frame shares it."""
    n = len(values)
    if not (len(traces) == len(summaries) == n) or n == 0:
        raise ValueError(
            f"play: {n} values, {len(traces)} frames and {len(summaries)} "
            "summaries: they must be as many, and at least one"
        )
    counts = {len(f) for f in traces}
    if len(counts) != 1:
        raise ValueError(f"every frame needs the same traces, got counts {counts}")
    listed = [
        {"name": frame_name(i), "data": list(traces[i]),
         "layout": {"title": _title(title, summaries[i])}}
        for i in range(n)
    ]  # fmt: skip
    return Frames(
        tuple(float(v) for v in values),
        tuple(tuple(f) for f in traces),
        tuple(summaries),
        title,
        to_json_plotly(listed),
    )


def _styled(data: dict, style: dict) -> dict:
    merged = {**style, **data}
    for key in ("marker", "line"):
        if key in style and key in data:
            merged[key] = {**style[key], **data[key]}
    return merged


def play(
    values,
    traces=None,
    *,
    active: int,
    label: str,
    title: str | None = None,
    summaries=None,
    styles: Sequence[dict] | None = None,
    layout: dict | None = None,
    fmt: Callable[[float], str] = "{:g}".format,
    height: int = 430,
) -> go.Figure:
    """A figure that opens on frame ``active`` of ``values`` (a ``Frames``;
    or the grid, its ``traces`` per frame, ``title`` and ``summaries``, as
    ``frames`` takes them), with Plotly's slider labelled ``label = v`` and
    Play / Pause buttons. ``styles``: per trace, what every frame shares
    (colours, names, hover), drawn once and merged into the opening data;
    the frames then carry only what moves. ``layout``: axes and the rest
    (fix the axis ranges across frames, or Plotly rescales them as it
    plays).

    The frames are not plotly objects: the figure holds them serialised
    (``ui.plot`` sends them as they are; ``full(fig)`` rebuilds them), since
    building a plotly object per trace of every frame costs 0.1-0.3 s for a
    grid of a hundred values, on every new opening frame."""
    if not isinstance(values, Frames):
        values = frames(values, traces, title=title, summaries=summaries)
    grid = values
    n = len(grid.values)
    if not 0 <= active < n:
        raise ValueError(f"active must lie in [0, {n - 1}], got {active}")
    data = list(grid.traces[active])
    if styles is not None:
        if len(styles) != len(data):
            raise ValueError(f"{len(styles)} styles for {len(data)} traces")
        data = [_styled(d, style) for d, style in zip(data, styles, strict=True)]
    layout = dict(layout or {})
    controls_top = 1.0  # the slider and buttons sit under the plot
    layout.update(
        title=_title(grid.title, grid.summaries[active]),
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
                ],
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
                        "label": fmt(v),
                        "method": "animate",
                        "args": [[frame_name(i)], _SCRUB],
                    }
                    for i, v in enumerate(grid.values)
                ],
            }
        ],
        meta={
            "play": {
                "label": label,
                "values": list(grid.values),
                "summaries": list(grid.summaries),
            }
        },
    )
    layout.setdefault("showlegend", True)
    layout.setdefault(
        "legend",
        {"orientation": "h", "x": 1, "xanchor": "right", "y": controls_top,
         "yanchor": "bottom"},
    )  # fmt: skip
    fig = go.Figure({"data": data, "layout": layout}, _validate=False)
    fig._lossviz_frames = grid  # plotly lets a figure hold "_" attributes
    return fig


def spec(fig: go.Figure) -> str:
    """The figure's JSON as ``st.plotly_chart`` would send it, with a Play
    chart's frames spliced in."""
    return splice(plotly.io.to_json(fig, validate=False), fig)


def splice(text: str, fig: go.Figure) -> str:
    """``text``, the JSON of ``fig`` as plotly writes it, with the frames of a
    Play chart spliced in (the same text for any other figure). Done when the
    chart is sent, so that a cache of figures keeps each grid's frames once,
    not once per opening frame."""
    grid = getattr(fig, "_lossviz_frames", None)
    if grid is None:
        return text
    if not text.endswith("}"):  # pragma: no cover - plotly writes one object
        raise ValueError("a figure's JSON must be one object")
    return f'{text[:-1]},"frames":{grid.json}}}'


def per_grid(builder):
    """``builder(grid, *args)`` (say, a page's ``Frames`` from its grid),
    remembered per grid object while it lives (a cache holds it) and per
    ``args``: each new opening frame then reuses the frames."""
    memo: dict = {}
    lock = threading.Lock()

    @functools.wraps(builder)
    def wrapper(grid, *args):
        key = (id(grid), args)
        hit = memo.get(key)
        if hit is not None and hit[0]() is grid:
            return hit[1]
        result = builder(grid, *args)
        with lock:
            memo[key] = (weakref.ref(grid, lambda _, key=key: memo.pop(key, None)),
                         result)  # fmt: skip
        return result

    return wrapper


def full(fig: go.Figure) -> go.Figure:
    """The figure with its frames as plotly objects, typed arrays decoded
    (for tests: slow)."""
    return go.Figure(_decoded(json.loads(spec(fig))))


def _decoded(value):
    """Plotly's typed arrays (``{"dtype", "bdata"[, "shape"]}``) as numpy."""
    if isinstance(value, dict):
        if set(value) <= {"dtype", "bdata", "shape"} and "bdata" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"])
            if "shape" in value:
                shape = value["shape"]
                dims = shape if isinstance(shape, list) else str(shape).split(",")
                array = array.reshape([int(d) for d in dims])
            return array
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


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
