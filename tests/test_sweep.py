"""Every page under many settings at once: no exception, no NaN shown bare.

Each page's own test moves its controls one at a time; a class moves them all.
Here every control of a page's main area (sliders, select-sliders, selectboxes,
radios, toggles, number inputs; the train panel's own ``train_*`` widgets
aside) is set at once: all at their minimum, all at their maximum, and
``LOSSVIZ_SWEEP_COMBINATIONS`` (default 4) seeded random combinations, each
with a random seed for the example. After every run no exception may show,
and no number may show as a bare "nan"/"inf": ``ui.metric`` names non-finite
values ("NaN ⚠", "+Inf ⚠") and explains them.

Controls that appear only after another control changes (the check page's
parameters follow its loss) are set in a further run. A failure names the
page, the combination and a URL that opens the same state in the app.

Pages and their files come from ``ui.catalog``. This module needs no browser:
``make test`` (CI) runs it with the rest of the suite, in about two minutes.
"""

from __future__ import annotations

import math
import os
import random
import re
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest
from streamlit.proto.NumberInput_pb2 import NumberInput as NumberInputProto
from streamlit.proto.Slider_pb2 import Slider as SliderProto
from streamlit.testing.v1 import AppTest

from ui.catalog import PAGE_DIR, page_names

ROOT = Path(__file__).resolve().parents[1]
PAGES = page_names(include_check=True)
KINDS = ("slider", "select_slider", "selectbox", "radio", "toggle", "number_input")
RANDOM_COMBINATIONS = int(os.environ.get("LOSSVIZ_SWEEP_COMBINATIONS", "4"))
CASES = ["minimum", "maximum", *(f"random-{i}" for i in range(RANDOM_COMBINATIONS))]
# Controls that show up only once others are set get up to this many more runs.
MAX_ROUNDS = 3

# A whole value that is a non-finite number, however spelled.
NONFINITE_VALUE = re.compile(r"^\s*[-+]?(nan|inf|infinity|none)\s*$", re.IGNORECASE)
# Python's and numpy's own spelling inside a sentence ("loss 0.3, grad nan");
# prose writes "NaN" and "Inf", and code spans (`np.inf`) are left out first.
BARE_IN_TEXT = re.compile(r"(?<![\w.\\])[-+]?(nan|inf)(?![\w(])")
CODE_OR_LATEX = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", re.DOTALL)
TEXT_KINDS = ("markdown", "caption", "text", "info", "warning", "error", "success")


def _controls(at: AppTest) -> dict:
    """The page's controls in its main area, by key (or label), train panel aside."""
    found = {}
    for kind in KINDS:
        for widget in getattr(at.main, kind):
            name = widget.key or widget.label
            if not name.startswith("train_"):
                found[name] = widget
    return found


def _option_value(widget, label: str):
    """The option whose formatted label is ``label``.

    AppTest shows options as their labels only; the value is recovered by
    trying the label itself, the number it spells, the keys of a mapping
    used as ``format_func`` (``NAMES.get``) and the current value.
    """
    fmt = widget.format_func
    candidates = [label]
    plain = label.replace(",", "").replace("_", "").strip()
    for cast in (int, float):
        try:
            candidates.append(cast(plain))
        except ValueError:
            pass
    owner = getattr(fmt, "__self__", None)
    if isinstance(owner, dict):
        candidates.extend(owner)
    candidates.append(widget.value)
    for candidate in candidates:
        try:
            if str(fmt(candidate)) == label:
                return candidate
        except Exception:  # noqa: BLE001 - a format_func may reject a candidate
            continue
    raise AssertionError(f"no option of {widget.key!r} is shown as {label!r}")


def _grid_value(low, high, step, case, rng, integer):
    """The minimum, the maximum or a random point of ``low + k * step``."""
    if case == "minimum":
        value = low
    elif case == "maximum":
        value = high
    else:
        steps = int(math.floor((high - low) / step + 1e-9))
        value = min(low + rng.randint(0, steps) * step, high)
    return int(round(value)) if integer else round(float(value), 10)


def _choose(widget, case: str, rng: random.Random):
    """The value ``case`` gives this control; None keeps its current value."""
    kind = widget.type
    if kind == "toggle":
        return {"minimum": False, "maximum": True}.get(case, rng.random() < 0.5)
    if kind in ("select_slider", "selectbox", "radio"):
        options = widget.options
        if not options:
            return None
        label = {"minimum": options[0], "maximum": options[-1]}.get(
            case, rng.choice(options)
        )
        return _option_value(widget, label)
    if kind == "slider":
        if isinstance(widget.value, (list, tuple)):
            return None  # no range sliders on the pages
        integer = widget.proto.data_type == SliderProto.INT
        if widget.proto.data_type not in (SliderProto.INT, SliderProto.FLOAT):
            return None
        return _grid_value(widget.min, widget.max, widget.step or 1, case, rng, integer)
    if kind == "number_input":
        integer = widget.proto.data_type == NumberInputProto.INT
        step = widget.step or 1
        low, high = widget.min, widget.max
        current = widget.value if widget.value is not None else 0
        # An open end: stay within a hundred steps of the default.
        low = current - 100 * step if low is None else low
        high = current + 100 * step if high is None else high
        if (case == "minimum" and widget.min is None) or (
            case == "maximum" and widget.max is None
        ):
            return None
        return _grid_value(low, high, step, case, rng, integer)
    return None


def _url_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _where(name: str, case: str, seed: int, settings: dict) -> str:
    query = urlencode({"seed": seed, **{k: _url_value(v) for k, v in settings.items()}})
    return f"page {name}, case {case}: /{name}?{query}"


def _shown_nonfinite(at: AppTest) -> list[str]:
    """Every place a non-finite number is shown as a plain value."""
    found = []
    for metric in at.metric:
        for part, text in (("value", metric.value), ("delta", metric.delta)):
            if text and NONFINITE_VALUE.match(str(text)):
                found.append(f"metric {metric.label!r} {part} is {text!r}")
    for kind in TEXT_KINDS:
        for element in getattr(at, kind):
            text = str(element.value)
            if NONFINITE_VALUE.match(text):
                found.append(f"{kind} is {text!r}")
                continue
            prose = CODE_OR_LATEX.sub("", text)
            match = BARE_IN_TEXT.search(prose)
            if match:
                start = max(match.start() - 60, 0)
                found.append(f"{kind} shows {prose[start : match.end() + 20]!r}")
    for kind in ("dataframe", "table"):
        for element in getattr(at, kind):
            frame = element.value
            if not isinstance(frame, pd.DataFrame):
                continue
            for column in frame.columns:
                for row, cell in frame[column].items():
                    if _bare_cell(cell):
                        found.append(f"{kind} cell [{row!r}, {column!r}] is {cell!r}")
    return found


def _bare_cell(cell) -> bool:
    if isinstance(cell, str):
        return bool(NONFINITE_VALUE.match(cell))
    if isinstance(cell, bool):
        return False
    try:
        return not math.isfinite(float(cell))
    except (TypeError, ValueError):
        return False


def test_the_checks_see_a_bare_nan_and_accept_a_named_one():
    """The scan finds each way a page could show NaN plainly, and only those."""
    at = AppTest.from_string(
        """
import pandas as pd
import streamlit as st
import ui

ui.metric("named", float("nan"))
ui.metric("fine", 0.25, delta=-0.5)
st.metric("bare", float("nan"))
st.metric("bare delta", 1.0, delta=float("inf"))
st.markdown(f"loss is {float('nan')}, `np.inf` is code, NaN is a word, $inf$")
st.caption("inf")
st.dataframe(pd.DataFrame({"loss": [0.5, float("nan")], "note": ["ok", "nan"]}))
""",
        default_timeout=30,
    ).run()
    assert not at.exception
    shown = _shown_nonfinite(at)
    expected = [
        "metric 'bare' value is 'nan'",
        "metric 'bare delta' delta is 'inf'",
        "markdown shows 'loss is nan, ",
        "caption is 'inf'",
        "dataframe cell [1, 'loss'] is nan",
        "dataframe cell [1, 'note'] is 'nan'",
    ]
    assert len(shown) == len(expected), shown
    for found, start in zip(shown, expected, strict=True):
        assert found.startswith(start), (found, start)


def _assert_clean(at: AppTest, where: str) -> None:
    if at.exception:
        first = at.exception[0]
        trace = "\n".join(first.stack_trace[-12:])
        pytest.fail(f"{where}\nexception: {first.message}\n{trace}", pytrace=False)
    shown = _shown_nonfinite(at)
    assert not shown, f"{where}\n" + "\n".join(shown)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", PAGES)
def test_every_control_at_once(name, case):
    rng = random.Random(f"{name}/{case}")
    seed = 0 if case in ("minimum", "maximum") else rng.randrange(1000)
    at = AppTest.from_file(str(ROOT / PAGE_DIR / f"{name}.py"), default_timeout=120)
    at.session_state["seed"] = seed  # what the app's sidebar would hold
    at.run()
    _assert_clean(at, _where(name, "defaults", seed, {}))

    settings: dict = {}
    for _ in range(MAX_ROUNDS):
        # A disabled control cannot be moved (it may be enabled by the others).
        fresh = {
            k: w
            for k, w in _controls(at).items()
            if k not in settings and not w.disabled
        }
        if not fresh:
            break
        for key, widget in fresh.items():
            value = _choose(widget, case, random.Random(f"{name}/{case}/{key}"))
            if value is None:
                settings[key] = widget.value
                continue
            widget.set_value(value)
            settings[key] = value
        at.run()
        _assert_clean(at, _where(name, case, seed, settings))
    assert settings, f"{name} has no controls to set"
    controls = {k: w for k, w in _controls(at).items() if not w.disabled}
    assert set(controls) <= set(settings), (
        f"{name}: controls keep appearing after {MAX_ROUNDS} runs"
    )
    # The combination was really applied, not silently put back to defaults.
    for key, widget in controls.items():
        assert _shown(widget, widget.value) == _shown(widget, settings[key]), (
            _where(name, case, seed, settings),
            key,
            widget.value,
        )


def _shown(widget, value):
    """A control's value as its label, so values compare whatever their type."""
    if widget.type in ("select_slider", "selectbox", "radio"):
        return str(widget.format_func(value))
    if isinstance(value, float) and not isinstance(value, bool):
        return round(value, 9)
    return value
