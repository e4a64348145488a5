"""Controls declared as data, bound to the URL query string, with a reset.

A page declares its controls once, as a ``Controls`` of ``Slider``,
``Choice``, ``Toggle`` and ``Number`` entries (name, label, default, range or
options, format, help). The page renders that declaration, its lessons set
values by control name, the URL binds each control under ``<slug>_<name>``,
"Back to defaults" reads the defaults from it, and the tests read it too.

A control that is a loss parameter says so (``param=True``) and takes its
range, options, default and help from the registry's ``ParamSpec``, as
``lossviz.explore.<slug>.PARAMS[name]`` exposes it, wherever the declaration
leaves them out (and is checked against it where it gives them), so the
family page and the check page offer the same values. That lookup imports
TensorFlow, so it happens when the page renders (``Controls.resolved``), not
when the declaration is imported: the landing page reads the declarations
and lessons without waiting for TensorFlow.

``Controls.render()`` returns a ``Values``: a frozen, hashable mapping with
attribute access, which ``Values.to(Setting)`` turns into the explore layer's
frozen settings object. Caches key on that object, never on positional
floats.

The declaration itself never touches Streamlit: only ``render`` and the
reset button do, so content modules, the landing page and tests can import
it freely.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

CONTROLS = "_lossviz_controls"


def url_key(slug: str, name: str) -> str:
    """A control's widget key and URL query parameter: ``<slug>_<name>``."""
    return f"{slug}_{name}"


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Control:
    """One control: ``name`` is the settings field it fills; ``param`` says
    it is a loss parameter whose ``ParamSpec`` fills what is left out."""

    name: str
    label: str
    default: Any = None
    help: str = ""
    param: bool = False
    # Greyed out while this returns True for the values drawn before it
    # (e.g. a hand-set weight while "from data" is chosen).
    disabled_when: Callable[[Mapping], bool] | None = None

    def check(self, value) -> Any:
        """``value`` if this control can take it, else ``ValueError``."""
        return value

    def url(self, value) -> str:
        """``value`` as the URL holds it (what a lesson link writes)."""
        return _fmt(value)

    def draw(self, key: str, disabled: bool = False):  # pragma: no cover
        raise NotImplementedError

    def from_spec(self, spec) -> Control:
        """This control completed (and checked) by a registry ``ParamSpec``."""
        filled = dataclasses.replace(
            self,
            default=spec.default if self.default is None else self.default,
            help=self.help or spec.description,
            param=False,
            **self._fill(spec),
        )
        for value in filled.bounds():
            spec.validate(value)
        filled.check(filled.default)
        return filled

    def _fill(self, spec) -> dict:
        """The fields the spec fills in (those the declaration left out)."""
        return {}

    def bounds(self) -> tuple:
        """The values at the ends of the range (every option for a choice)."""
        return (self.default,)


def _range_of(spec) -> tuple:
    if spec.ui_range:
        return tuple(spec.ui_range)
    return (spec.low, spec.high, None)


@dataclass(frozen=True)
class Slider(Control):
    """A numeric slider over ``[low, high]`` in steps of ``step``."""

    low: float | None = None
    high: float | None = None
    step: float | None = None
    format: str | None = None

    def __post_init__(self):
        if not self.param:
            self.check(self.default)

    def check(self, value):
        if not self.low <= value <= self.high:
            raise ValueError(
                f"`{self.name}` must be in [{_fmt(self.low)}, {_fmt(self.high)}], "
                f"got {value!r}."
            )
        return value

    def _fill(self, spec):
        low, high, step = _range_of(spec)
        return {
            "low": low if self.low is None else self.low,
            "high": high if self.high is None else self.high,
            "step": step if self.step is None else self.step,
        }

    def bounds(self):
        return (self.low, self.high)

    def draw(self, key: str, disabled: bool = False):
        return self._draw_with(st.slider, key, disabled)

    def _draw_with(self, widget, key: str, disabled: bool):
        return widget(
            self.label,
            min_value=self.low,
            max_value=self.high,
            value=self.default,
            step=self.step,
            format=self.format,
            key=key,
            bind="query-params",
            help=self.help or None,
            disabled=disabled,
        )


@dataclass(frozen=True)
class Number(Slider):
    """A number input over ``[low, high]`` (either end may be open: None)."""

    def __post_init__(self):
        pass

    def check(self, value):
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if not low <= value <= high:
            raise ValueError(
                f"`{self.name}` must be in [{_fmt(low)}, {_fmt(high)}], got {value!r}."
            )
        return value

    def bounds(self):
        return tuple(v for v in (self.low, self.high) if v is not None)

    def draw(self, key: str, disabled: bool = False):
        return self._draw_with(st.number_input, key, disabled)


@dataclass(frozen=True)
class Choice(Control):
    """One of ``options``, drawn as a select slider, a select box or radios."""

    options: tuple = ()
    widget: str = "select_slider"  # or "selectbox", "radio"
    format_func: Callable | None = None
    horizontal: bool = False  # radios in a row

    def __post_init__(self):
        if self.widget not in ("select_slider", "selectbox", "radio"):
            raise ValueError(f"unknown widget {self.widget!r}")
        object.__setattr__(self, "options", tuple(self.options))
        if not self.param:
            self.check(self.default)

    def check(self, value):
        if value not in self.options:
            raise ValueError(
                f"`{self.name}` must be one of {', '.join(map(_fmt, self.options))}, "
                f"got {value!r}."
            )
        return value

    def url(self, value) -> str:
        # Streamlit keeps a choice in the URL as its shown (formatted) label.
        return str((self.format_func or _fmt)(value))

    def _fill(self, spec):
        if self.options:
            return {}
        return {"options": tuple(spec.ui_options or spec.choices)}

    def bounds(self):
        return self.options

    def draw(self, key: str, disabled: bool = False):
        options = list(self.options)
        common = {
            "key": key,
            "bind": "query-params",
            "help": self.help or None,
            "format_func": self.format_func or _fmt,
            "disabled": disabled,
        }
        if self.widget == "select_slider":
            return st.select_slider(
                self.label, options=options, value=self.default, **common
            )
        index = options.index(self.default)
        if self.widget == "selectbox":
            return st.selectbox(self.label, options=options, index=index, **common)
        return st.radio(
            self.label,
            options=options,
            index=index,
            horizontal=self.horizontal,
            **common,
        )


@dataclass(frozen=True)
class Toggle(Control):
    default: bool = False

    def check(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"`{self.name}` must be true or false, got {value!r}.")
        return value

    def url(self, value) -> str:
        return "true" if value else "false"

    def draw(self, key: str, disabled: bool = False):
        return st.toggle(
            self.label,
            value=self.default,
            key=key,
            bind="query-params",
            help=self.help or None,
            disabled=disabled,
        )


class Values(Mapping):
    """Control values by name: frozen, hashable, with attribute access."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping | Iterable = (), **named):
        object.__setattr__(self, "_items", {**dict(items), **named})

    def __getitem__(self, name):
        return self._items[name]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __getattr__(self, name):
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(name)

    def __hash__(self):
        return hash(tuple(sorted((k, repr(v)) for k, v in self._items.items())))

    def __eq__(self, other):
        return isinstance(other, Values) and self._items == other._items

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items.items())
        return f"Values({inner})"

    def __reduce__(self):  # st.cache_data hashes arguments by pickling them
        return (Values, (self._items,))

    def __or__(self, other: Mapping) -> Values:
        """These values with ``other``'s put over them (a lesson's settings)."""
        return Values({**self._items, **dict(other)})

    def without(self, *names: str) -> Values:
        return Values({k: v for k, v in self._items.items() if k not in names})

    def to(self, cls, **overrides):
        """``cls(**fields)`` for the dataclass ``cls``, from the values whose
        names are its fields (and ``overrides``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in self._items.items() if k in names}
        return cls(**{**chosen, **overrides})


@dataclass(frozen=True)
class Controls:
    """A page's controls: ``slug`` prefixes their URL keys."""

    slug: str
    items: tuple[Control, ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(self.items))
        names = [c.name for c in self.items]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.slug}: duplicate control names {names}")

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, name: str) -> Control:
        for control in self.items:
            if control.name == name:
                return control
        raise KeyError(f"{self.slug} has no control {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.items)

    def key(self, name: str) -> str:
        """The control's widget key and URL query parameter."""
        self[name]
        return url_key(self.slug, name)

    def resolved(self) -> Controls:
        """Every ``param=True`` control completed from
        ``lossviz.explore.<slug>.PARAMS`` (imports TensorFlow)."""
        return _resolve(self)

    def defaults(self) -> Values:
        return Values({c.name: c.default for c in self.resolved()})

    def keyed(self, values: Mapping) -> dict[str, Any]:
        """``{key: value}`` for control values given by name, unchecked."""
        return {self.key(n): v for n, v in values.items()}

    def url_settings(self, values: Mapping) -> dict[str, str]:
        """``{key: text}``: control values given by name as the URL holds
        them (the landing page's lesson links, before TensorFlow loads)."""
        return {self.key(n): self[n].url(v) for n, v in values.items()}

    def settings(self, values: Mapping) -> dict[str, Any]:
        """``{key: value}`` for control values given by name, each checked
        against its control (a lesson's settings, a test's)."""
        controls = self.resolved()
        return {controls.key(n): controls[n].check(v) for n, v in values.items()}

    def render(
        self,
        columns: int | Sequence[Sequence[str]] = 1,
        *,
        lead: Sequence[str] = (),
        into=None,
    ) -> Values:
        """Draws every control and returns their values.

        ``columns``: a number of columns to fill in order, or a list of
        groups of names, one column each (names not listed are drawn after).
        ``lead``: names drawn first, one under the other, in the container
        ``into`` (a stage's controls column); the others follow, in columns.
        """
        self = self.resolved()
        start_page(self)
        lead = tuple(lead)
        names = tuple(n for n in self.names if n not in lead)
        if not names:
            groups = []
        elif isinstance(columns, int):
            per = math.ceil(len(names) / max(columns, 1))
            groups = [names[i : i + per] for i in range(0, len(names), per)]
        else:
            groups = [tuple(n for n in g if n not in lead) for g in columns]
            groups = [g for g in groups if g]
            listed = {n for g in groups for n in g}
            rest = tuple(n for n in names if n not in listed)
            if rest:
                groups.append(rest)
        values = {}
        if len(groups) > 1:
            slots = st.columns(len(groups))
        else:
            slots = [st.container()] if groups else []
        if lead:
            slots = [into if into is not None else st.container(), *slots]
            groups = [lead, *groups]
        for slot, group in zip(slots, groups, strict=True):
            with slot:
                for name in group:
                    control = self[name]
                    disabled = bool(
                        control.disabled_when and control.disabled_when(values)
                    )
                    values[name] = control.draw(self.key(name), disabled)
        return Values({n: values[n] for n in self.names})


@functools.cache
def _resolve(controls: Controls) -> Controls:
    if not any(c.param for c in controls):
        return controls
    params = importlib.import_module(f"lossviz.explore.{controls.slug}").PARAMS
    return Controls(
        controls.slug,
        tuple(c.from_spec(params[c.name]) if c.param else c for c in controls),
    )


def start_page(controls: Controls | None = None) -> None:
    """Remembers the page's controls for "Back to defaults"."""
    remembered = st.session_state.setdefault(CONTROLS, {})
    if controls is None:
        remembered.clear()
        return
    for control in controls:
        remembered[controls.key(control.name)] = control.default


def _reset() -> None:
    for key, value in st.session_state.get(CONTROLS, {}).items():
        st.session_state[key] = value


def reset_button(page_key: str, label: str = "Back to defaults") -> bool:
    """A button that puts every control created on this page back to its default."""
    return st.button(
        label,
        key=f"reset_{page_key}",
        on_click=_reset,
        help="Put every control on this page back to its default value.",
        icon=":material/restart_alt:",
    )


def seed() -> int:
    """The shared random seed from the app's sidebar (0 when a page runs alone)."""
    return int(st.session_state.get("seed", 0))
