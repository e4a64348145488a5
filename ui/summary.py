"""One-line text summaries of charts, for screen readers and for notes.

``summarize(fig)`` reads the figure's own data, so the words always describe
what is drawn, e.g. "power loss: falls 63% from 0.82 at 1 to 0.3 at 5;
NaN from 150 (12 of 40 points)".
"""

from __future__ import annotations

import base64

import numpy as np


def _num(v) -> str:
    v = float(v)
    return f"{v:.3g}"


def _values(seq) -> np.ndarray:
    """Trace data as floats: lists (None is a gap), arrays, or the base64
    typed arrays plotly leaves behind once a figure has been serialised."""
    if isinstance(seq, dict) and "bdata" in seq:
        flat = np.frombuffer(base64.b64decode(seq["bdata"]), dtype=seq["dtype"])
        shape = seq.get("shape")
        if shape:
            flat = flat.reshape([int(n) for n in str(shape).split(",")])
        return flat.astype(float)
    if isinstance(seq, np.ndarray):
        return seq.astype(float)
    return np.array(
        [np.nan if v is None else v for v in np.asarray(seq, dtype=object).ravel()],
        dtype=float,
    ).reshape(np.shape(seq))


def describe_series(name: str, x, y, kinds=None) -> str:
    """How one curve moves from its first to its last finite point, and where
    it stops being finite (``kinds``: "NaN"/"+Inf"/"-Inf" of the non-finite
    points, when known)."""
    x = _values(x)
    y = _values(y)
    finite = np.isfinite(y)
    parts = []
    if finite.sum() >= 2:
        first, last = np.flatnonzero(finite)[[0, -1]]
        y0, y1 = y[first], y[last]
        ratio = y1 / y0 if y0 != 0 else np.nan
        if np.isfinite(ratio) and ratio > 10:
            verb, amount = "rises", f" {_num(ratio)}-fold"
        elif y0 != 0 and np.isfinite(ratio):
            change = (y1 - y0) / abs(y0) * 100
            verb = "rises" if change > 0 else "falls"
            amount = f" {abs(change):.0f}%"
        else:
            verb, amount = ("rises" if y1 > y0 else "falls"), ""
        if abs(y1 - y0) <= 1e-12 * max(1.0, abs(y0)):
            parts.append(f"flat at {_num(y0)} from {_num(x[first])} to {_num(x[last])}")
        else:
            parts.append(
                f"{verb}{amount} from {_num(y0)} at {_num(x[first])} "
                f"to {_num(y1)} at {_num(x[last])}"
            )
        peak = int(np.nanargmax(np.where(finite, y, np.nan)))
        if peak not in (first, last):
            parts.append(f"peak {_num(y[peak])} at {_num(x[peak])}")
    elif finite.sum() == 1:
        parts.append(f"one finite point, {_num(y[finite][0])}")
    bad = ~finite
    if bad.any():
        if kinds is not None and len(set(kinds)) == 1:
            label = kinds[0]
        elif kinds is None and np.isnan(y[bad]).all():
            label = "NaN"
        else:
            label = "non-finite"
        parts.append(
            f"{label} from {_num(x[bad][0])} ({int(bad.sum())} of {y.size} points)"
        )
    return f"{name}: " + "; ".join(parts) if parts else f"{name}: no data"


def summarize(fig) -> str:
    """A one-line summary of a figure built by ``ui.charts``."""
    # Non-finite points of a line are drawn as a marker trace whose text names
    # their kind (a line cannot hold NaN or Inf in plotly's JSON).
    kinds = {
        trace.name.split(": non-finite")[0]: list(trace.text)
        for trace in fig.data
        if trace.type == "scatter"
        and trace.mode == "markers"
        and trace.name
        and ": non-finite" in trace.name
        and trace.text is not None
    }
    lines = []
    for trace in fig.data:
        kind = trace.type
        name = trace.name or kind
        if kind == "scatter" and trace.mode == "lines":
            lines.append(
                describe_series(name, trace.x, _values(trace.y), kinds.get(name))
            )
        elif kind == "bar":
            y = _values(trace.y)
            x = list(trace.x)
            if np.isfinite(y).any():
                hi = int(np.nanargmax(y))
                lo = int(np.nanargmin(y))
                lines.append(
                    f"{name}: {len(y)} bars, highest {_num(y[hi])} ({x[hi]}), "
                    f"lowest {_num(y[lo])} ({x[lo]})"
                    + (
                        f", {int((~np.isfinite(y)).sum())} non-finite"
                        if (~np.isfinite(y)).any()
                        else ""
                    )
                )
        elif kind == "histogram":
            v = _values(trace.x)
            if v.size:
                lines.append(
                    f"{name}: {v.size} values, median {_num(np.median(v))}, "
                    f"range {_num(v.min())} to {_num(v.max())}"
                )
        elif kind == "heatmap":
            z = (
                _values(trace.z)
                if isinstance(trace.z, dict)
                else np.array([_values(row) for row in trace.z])
            )
            if np.isfinite(z).any():
                idx = np.unravel_index(np.nanargmax(np.abs(z)), z.shape)
                ys, xs = trace.y, trace.x
                has_labels = ys is not None and xs is not None
                where = f"{ys[idx[0]]}, {xs[idx[1]]}" if has_labels else str(idx)
                nonzero = int((np.nan_to_num(z) != 0).sum())
                lines.append(
                    f"{z.shape[0]}×{z.shape[1]} values, largest magnitude "
                    f"{_num(z[idx])} at ({where}); {nonzero} non-zero"
                )
    return ". ".join(lines)
