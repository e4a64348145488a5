"""The attempts people make with these losses, re-created and run live.

Each family module (``sharpen``, ``sampled``, ``sequence``, ``triplet``,
``multilabel``) holds small module-level functions written the way the
broken attempts are usually written (the project's own re-creations), and an
``Attempt`` for each: its title, its source (``inspect.getsource`` of the
very function that runs), why it fails, which part of lossviz fixes it, and
a runner that calls the function on a seeded example batch and reports what
really happened as an ``Outcome``. Nothing is hard-coded: an exception is
caught and reported with its own type and message, a NaN is counted, a
ranking is measured. If a newer TensorFlow or Keras stops failing the way an
attempt's ``why`` says, its outcome says so (kind ``"ok"``) and the tests
fail, so the page never states a failure that no longer happens.

Every family module exposes:

- ``ATTEMPTS``: a tuple of ``Attempt``;
- ``example_batch(seed=0)``: the seeded numpy batch the attempts run on;
- ``run_all(seed=0)``: ``((attempt, outcome), ...)`` on that batch, each
  outcome carrying lossviz's result on the same data (``fix_value``,
  ``fix_message``) where there is one, so a page can show them side by side.

The attempts whose function is a ``(y_true, y_pred)`` loss name the
``lossviz.probe`` task and outputs it fits (``Attempt.task``,
``Attempt.outputs``), so the probe's tests can use them as fixtures.

This package never imports streamlit.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FAMILIES = ("sharpen", "sampled", "sequence", "triplet", "multilabel")

#: What an attempt does when run: raises (``error``), returns NaN or Inf
#: (``nan``), has no gradient where training needs one (``no_gradient``),
#: runs and returns a wrong number (``wrong``), runs right at a needless cost
#: (``waste``), or no longer fails as its ``why`` says (``ok``).
KINDS = ("error", "nan", "no_gradient", "wrong", "waste", "ok")


@dataclass(frozen=True)
class Outcome:
    """What running an attempt really did.

    Attributes:
      kind: one of ``KINDS``.
      message: one line: the exception's own message (type first), or a
        sentence stating the computed numbers.
      error_type: the exception's class name, or None if nothing was raised.
      numbers: the named numbers the message states (a NaN count, bytes
        used and needed, a ranking share before and after, ...), as Python
        floats and ints.
      details: ``(where, what happened)`` pairs when the attempt was run more
        than one way (eagerly, in ``tf.function``, in ``model.fit``).
      fix_value: lossviz's result on the same data (a numpy array or a
        float), or None where no value compares.
      fix_message: one line on what lossviz gives on the same data.
    """

    kind: str
    message: str
    error_type: str | None = None
    numbers: dict = field(default_factory=dict, compare=False)
    details: tuple[tuple[str, str], ...] = ()
    fix_value: Any = field(default=None, compare=False)
    fix_message: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}, got {self.kind!r}.")


@dataclass(frozen=True)
class Attempt:
    """A broken attempt: its source, why it fails, what fixes it, how to run it.

    Attributes:
      key: a short identifier, unique in its family (``"argmax_lookup"``).
      title: one line naming the attempt.
      code: the source of ``function``, exactly as it runs.
      why: one line: why it fails.
      fix: one line: which part of lossviz fixes it.
      function: the attempt itself, a module-level function.
      runner: ``runner(function, batch) -> Outcome``; use ``run(batch)``.
      task, outputs: for a ``function(y_true, y_pred)`` that is a loss, the
        ``lossviz.probe`` task (``"categorical"``, ``"sparse"``,
        ``"multilabel"``, ``"regression"``) and outputs (``"logits"`` or
        ``"probabilities"``) it fits; None otherwise.
    """

    key: str
    title: str
    code: str
    why: str
    fix: str
    function: Callable = field(repr=False, compare=False)
    runner: Callable[[Callable, Any], Outcome] = field(repr=False, compare=False)
    task: str | None = None
    outputs: str | None = None

    def run(self, batch) -> Outcome:
        """Runs the attempt on ``batch`` (its family's ``example_batch``)."""
        return self.runner(self.function, batch)


def attempt(function, runner, *, key, title, why, fix, task=None, outputs=None):
    """An ``Attempt`` whose ``code`` is the source of ``function``."""
    code = textwrap.dedent(inspect.getsource(function)).strip() + "\n"
    return Attempt(key, title, code, why, fix, function, runner, task, outputs)


def run_attempts(attempts, batch) -> tuple[tuple[Attempt, Outcome], ...]:
    """Every attempt run on ``batch``, paired with its outcome."""
    return tuple((a, a.run(batch)) for a in attempts)


# --------------------------------------------------------------------------
# Running code and reporting what it raised.


def capture(function, *args, **kwargs):
    """``(result, None)``, or ``(None, exception)`` if ``function`` raised."""
    try:
        return function(*args, **kwargs), None
    except Exception as error:  # any failure is the outcome
        return None, error


_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_TRAILING_NAME = re.compile(r"\s*name:\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KERAS_CALL = "Exception encountered when calling"


def error_line(error: BaseException) -> str:
    """The exception's own message, first line, without TensorFlow's wrapping.

    A ``tf.function`` error starts with "in user code:" and a traceback; the
    line that repeats the exception's class name holds its message. A Keras
    layer's error starts with "Exception encountered when calling ..." and
    holds the original message on its next line (after "Error encountered:"
    when the layer was called on symbolic inputs). Eager op errors start with
    a ``{{function_node ...}}`` tag and end in ``name:``; both are dropped,
    as are terminal colour codes. An empty message says so.
    """
    text = _ANSI.sub("", str(error)).strip()
    name = type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(_KERAS_CALL):
        lines = lines[1:]
    # Keras' "Could not automatically infer the output shape" wraps the error
    # that call() raised while building the model.
    inner = [i for i, line in enumerate(lines) if line.endswith("Error encountered:")]
    if inner and inner[0] + 1 < len(lines):
        lines = lines[inner[0] + 1 :]
    own = [line for line in lines if line.startswith(name + ": ")]
    if own:
        line = own[0][len(name) + 2 :]
    elif lines and lines[0] == "Graph execution error:":
        line = next((s for s in lines[1:] if ":" in s and "node" not in s), lines[0])
    else:
        line = lines[0] if lines else ""
    line = _TRAILING_NAME.sub("", _FUNCTION_NODE.sub("", line)).strip()
    return line or "(raised with an empty message)"


def describe(error: BaseException) -> str:
    """``"TypeName: first line of its message"``."""
    return f"{type(error).__name__}: {error_line(error)}"


def error_outcome(error: BaseException, **kwargs) -> Outcome:
    """An ``error`` outcome whose message is the exception's own."""
    return Outcome(
        kind="error", message=describe(error), error_type=type(error).__name__,
        **kwargs,
    )  # fmt: skip


def unexpected(result, what: str, **kwargs) -> Outcome:
    """The outcome of an attempt that did not fail as its ``why`` says."""
    shown = np.array2string(np.asarray(result), precision=4, threshold=8)
    return Outcome(
        kind="ok", message=f"{what} ran without the failure described: {shown}",
        **kwargs,
    )  # fmt: skip


def fmt(x) -> str:
    """A number as a page shows it: 4 significant digits, thousands apart,
    a non-finite value named ("NaN", "+Inf"), never a bare "nan"."""
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.4g}"


def nan_count(x) -> int:
    """How many entries of ``x`` are NaN or infinite."""
    return int(np.sum(~np.isfinite(np.asarray(x, dtype=np.float64))))


__all__ = [
    "FAMILIES",
    "KINDS",
    "Attempt",
    "Outcome",
    "attempt",
    "capture",
    "describe",
    "error_line",
    "error_outcome",
    "fmt",
    "nan_count",
    "run_attempts",
    "unexpected",
]
