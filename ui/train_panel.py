"""The "Train" panel every page shares: live curves, stop, overlaid runs.

It is an ``st.fragment``, so pressing Train reruns the panel, not the page.
Runs are kept in ``st.session_state`` (one browser session, never shared) so
a second run is drawn over the first. At most ``MAX_CONCURRENT_RUNS`` runs
train at once on one server; the others wait with a visible message.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from ui.figures import charts
from ui.layout import format_value, plot
from ui.summary import summarize

MAX_CONCURRENT_RUNS = 2
MAX_KEPT_RUNS = 8


@st.cache_resource
def _training_slots() -> threading.BoundedSemaphore:
    """Shared by every session of this server process."""
    return threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)


def _acquire_slot(status) -> threading.BoundedSemaphore:
    slots = _training_slots()
    if slots.acquire(blocking=False):
        return slots
    started = time.monotonic()
    while not slots.acquire(timeout=0.5):
        status.info(
            f"{MAX_CONCURRENT_RUNS} runs are training on this server; yours starts "
            f"when one finishes (waiting {time.monotonic() - started:.0f} s).",
            icon=":material/hourglass_top:",
        )
    status.empty()
    return slots


def _draw_curves(runs: list[dict], metrics: dict[str, str], area) -> None:
    """One chart per metric, every run overlaid. Figures are kept per state of
    the runs, so a page rerun with nothing new redraws without rebuilding, and
    the charts keep their identity (no remount in the browser)."""
    state = tuple((run["number"], run["label"], len(run["epochs"])) for run in runs)
    memo = st.session_state.setdefault("_train_curve_figures", {})
    with area.container():
        columns = st.columns(len(metrics))
        for column, (metric, title) in zip(columns, metrics.items(), strict=True):
            key = (metric, title, state)
            if key not in memo:
                memo[key] = _curve_figure(runs, metric, title)
            figure, summary = memo[key]
            if figure is None:
                continue
            with column:
                plot(
                    figure,
                    summary=summary,
                    key=f"train_curve_{metric}_{abs(hash(state))}",
                )
    # Keep the figures of the current state only.
    for key in [k for k in memo if k[2] != state]:
        del memo[key]


def _curve_figure(runs, metric, title):
    series = {
        f"#{run['number']} {run['label']}": run["history"][metric]
        for run in runs
        if run["history"].get(metric)
    }
    if not series:
        return None, ""
    epochs = {f"#{run['number']} {run['label']}": run["epochs"] for run in runs}
    figure = charts.line(
        {name: epochs[name] for name in series},
        series,
        title=title,
        x_title="epoch",
        y_title=metric,
        height=300,
    )
    return figure, summarize(figure)


def train_panel(spec, runs, *, max_epochs: int = 30) -> None:
    """Draws the training panel of one page.

    Args:
      spec: the page's ``lossviz.explore.TrainSpec`` (task, charted metrics,
        default epochs and learning rate).
      runs: the ``lossviz.explore.RunSpec`` items the user picks from.
      max_epochs: the cap of the epochs control.
    """
    by_label = {run.label: (run.variant, dict(run.params)) for run in runs}
    _panel(
        spec.task, by_label, dict(spec.metrics), spec.epochs, max_epochs,
        spec.learning_rate,
    )  # fmt: skip


@st.fragment
def _panel(task, runs, metrics, epochs, max_epochs, learning_rate):
    from lossviz import explore  # the page has imported TensorFlow already

    state_key = f"train_runs_{task}"
    history = st.session_state.setdefault(state_key, [])
    st.subheader("Train it", divider="gray")
    left, middle, right = st.columns([2, 1, 1])
    choice_key = f"train_choice_{task}"
    _carry_choice(choice_key, f"_train_labels_{task}", list(runs))
    chosen = left.multiselect("Runs", list(runs), default=list(runs), key=choice_key)
    n_epochs = middle.number_input(
        "Epochs", 1, max_epochs, epochs, key=f"train_epochs_{task}"
    )
    lr = right.select_slider(
        "Learning rate",
        options=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0],
        value=learning_rate,
        key=f"train_lr_{task}",
        format_func=lambda v: f"{v:g}",
    )
    buttons = st.columns([1, 1, 1, 3])
    start = buttons[0].button(
        "Train", type="primary", key=f"train_go_{task}", icon=":material/play_arrow:"
    )
    buttons[1].button(
        "Stop",
        key=f"train_stop_{task}",
        icon=":material/stop:",
        help="Stops the run after the current epoch; its curve is kept.",
    )
    if buttons[2].button("Clear", key=f"train_clear_{task}", icon=":material/delete:"):
        history.clear()
    status = st.empty()
    progress = st.empty()
    curves = st.empty()
    if history:
        _draw_curves(history, metrics, curves)
    if not start:
        if history:
            _summary(history)
        return
    seed = int(st.session_state.get("seed", 0))
    slot = _acquire_slot(status)
    try:
        for i, label in enumerate(chosen):
            variant, params = runs[label]
            number = (history[-1]["number"] + 1) if history else 1
            run = {"number": number, "label": label, "epochs": [], "history": {}}
            history.append(run)
            del history[:-MAX_KEPT_RUNS]
            bar = progress.progress(0.0, text=f"Training {label}…")

            def on_epoch(result, run=run, bar=bar, label=label, i=i):
                run.update(result.to_dict())
                done = len(result.epochs) / n_epochs
                bar.progress(
                    min(done, 1.0),
                    text=f"{label} ({i + 1} of {len(chosen)}): epoch "
                    f"{result.epochs[-1]} of {n_epochs} on {result.device}",
                )
                _draw_curves(history, metrics, curves)

            result = explore.train(
                task,
                variant,
                epochs=int(n_epochs),
                learning_rate=float(lr),
                seed=seed,
                on_epoch=on_epoch,
                **params,
            )
            run.update(result.to_dict())
    finally:
        slot.release()
    progress.empty()  # the curves are drawn already, after the last epoch
    _summary(history)


def _carry_choice(choice_key: str, labels_key: str, labels: list[str]) -> None:
    """Keeps the picked runs picked when their labels change with a control
    (e.g. "sharpened (k = 5)" becomes "sharpened (k = 50)"): a multiselect
    drops a picked value that is no longer among its options."""
    previous = st.session_state.get(labels_key)
    st.session_state[labels_key] = labels
    chosen = st.session_state.get(choice_key)
    if not previous or chosen is None or previous == labels:
        return
    if len(previous) == len(labels):
        renamed = dict(zip(previous, labels, strict=True))
        st.session_state[choice_key] = [renamed.get(c, c) for c in chosen]
    st.session_state[choice_key] = [
        c for c in st.session_state[choice_key] if c in labels
    ]


def _cell(value):
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return format_value(value, 3)
    return value


def _summary(history) -> None:
    rows = []
    for run in history:
        seconds = run.get("epoch_seconds") or [float("nan")]
        last = {k: format_value(v[-1]) for k, v in run["history"].items() if v}
        rows.append(
            {
                "run": f"#{run['number']} {run['label']}",
                "device": run.get("device", ""),
                "epochs": len(run["epochs"]),
                "s / epoch": format_value(sorted(seconds)[len(seconds) // 2], 3),
                **last,
                "note": run.get("stopped") or "",
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")
    last_run = history[-1]
    if last_run.get("summary"):
        st.markdown(
            f"**#{last_run['number']} {last_run['label']}**: "
            + "; ".join(
                f"{name} **{_cell(value)}**"
                for name, value in last_run["summary"].items()
            )
        )
    if last_run.get("rows"):
        st.dataframe(
            [{k: _cell(v) for k, v in row.items()} for row in last_run["rows"]],
            hide_index=True,
            width="stretch",
        )
