"""What each explorer page computes, one module per loss family.

``lossviz.explore.<family>`` (``sharpen``, ``sampled``, ``sequence``,
``triplet``, ``multilabel``) holds everything a page shows that is a number:
the example batches, the compiled graphs (cached with ``functools``), the
value and gradient at a setting, the sweeps over a parameter grid, the
timings, the train-run definitions and every derived figure a sentence on
screen states (a temperature, a norm, "the first power where the naive form
is NaN", an active share). Each returns frozen dataclasses of plain numpy
values, keyed on a frozen settings dataclass (never on positional floats), so
a page lays them out and a test checks them against numpy without a browser.

Conventions, the same in every family module:
- ``Setting``: a frozen dataclass of the page's controls that the numbers
  depend on, validated on construction (``ValueError`` names the field and
  its range).
- ``PARAMS``: the registry ``ParamSpec`` of each control that is a loss
  parameter, so the page's range is the loss's range.
- ``FORMULA``: the LaTeX the page renders.
- ``TRAINING`` (a ``TrainSpec``) and ``train_runs(setting)`` (``RunSpec``\\ s):
  what the page's Train panel runs.
- ``check_lesson(name, values, seed) -> Claim``: the outcome each lesson
  states (``Lesson.check`` names it), computed from the control values by
  name; the page shows it beside the lesson's note and a test asserts it.
- One way to compute a gradient norm: ``grad_norm`` below.

This package never imports streamlit.
"""

from lossviz.explore._base import (
    Claim,
    RunSpec,
    TrainSpec,
    first_where,
    grad_norm,
    grad_norms,
    train,
)

__all__ = [
    "Claim",
    "RunSpec",
    "TrainSpec",
    "first_where",
    "grad_norm",
    "grad_norms",
    "train",
]
