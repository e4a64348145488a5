"""What every family module of ``lossviz.explore`` shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def grad_norm(grad) -> float:
    """The L2 norm of a gradient, summed in float64 (a float32 sum of squares
    underflows for the tiny gradients a saturated loss has). NaN if any entry
    is NaN, +Inf if any is infinite."""
    g = np.asarray(grad, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(np.square(g))))


def grad_norms(grads, axis) -> np.ndarray:
    """``grad_norm`` over ``axis`` (an int or a tuple), e.g. per grid point."""
    g = np.asarray(grads, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(np.sum(np.square(g), axis=axis))


def first_where(grid, condition) -> float | None:
    """The first value of ``grid`` where ``condition`` holds, or None."""
    condition = np.asarray(condition, dtype=bool)
    if not condition.any():
        return None
    return float(np.asarray(grid)[int(condition.argmax())])


@dataclass(frozen=True)
class Claim:
    """An outcome a page states, computed: whether it holds, and the
    sentence that says it with its numbers ("naive form NaN in 32 of 32
    entries; log space finite")."""

    holds: bool
    statement: str


@dataclass(frozen=True)
class RunSpec:
    """One run the Train panel offers: its label (which follows the
    controls, so an earlier run keeps the settings it was trained with in its
    name), the task's variant and its parameters."""

    label: str
    variant: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSpec:
    """A page's Train panel: the ``lossviz.training`` task, the history keys
    to chart (key -> chart title), and the defaults of its controls."""

    task: str
    metrics: dict
    epochs: int = 5
    learning_rate: float = 1e-2


def train(task: str, variant: str, **kwargs):
    """Runs one training run (``lossviz.training.train``): the Train panel's
    way in, so that the app reaches lossviz only through this package."""
    from lossviz.training import train as run

    return run(task, variant, **kwargs)
