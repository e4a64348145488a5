"""ui.controls: one declaration of a page's controls, checked and resolved."""

import dataclasses
import sys
import types

import pytest

import ui
from lossviz.registry import ParamSpec
from ui import controls as controls_module


@pytest.fixture
def fake_family(monkeypatch):
    """A ``lossviz.explore.fakefam`` whose PARAMS the declarations resolve."""
    module = types.ModuleType("lossviz.explore.fakefam")
    module.PARAMS = {
        "power": ParamSpec("power", float, 1.0, "the power", low=0.0,
                           low_open=True, high=100.0, ui_options=(0.5, 1.0, 10.0)),
        "steps": ParamSpec("steps", int, 1, "how many", low=1, ui_range=(1, 10, 1)),
        "kind": ParamSpec("kind", str, "a", "which", choices=("a", "b")),
    }  # fmt: skip
    monkeypatch.setitem(sys.modules, "lossviz.explore.fakefam", module)
    controls_module._resolve.cache_clear()
    yield module
    controls_module._resolve.cache_clear()


def test_a_param_control_takes_what_it_leaves_out_from_the_param_spec(fake_family):
    declared = ui.Controls("fakefam", [
        ui.Choice("power", "Power", 10.0, param=True),
        ui.Slider("steps", "Steps", param=True),
        ui.Choice("kind", "Kind", param=True, widget="selectbox"),
        ui.Slider("scale", "Scale", 2.0, low=0.5, high=8.0, step=0.5),
    ])  # fmt: skip
    resolved = declared.resolved()
    assert resolved["power"].options == (0.5, 1.0, 10.0)
    assert resolved["power"].default == 10.0
    assert resolved["power"].help == "the power"
    steps = resolved["steps"]
    assert (steps.low, steps.high, steps.step, steps.default) == (1, 10, 1, 1)
    assert resolved["kind"].options == ("a", "b")
    assert resolved["scale"] == declared["scale"]
    assert declared.defaults() == ui.Values(power=10.0, steps=1, kind="a", scale=2.0)


def test_a_param_control_outside_the_param_range_is_refused(fake_family):
    declared = ui.Controls("fakefam", [ui.Choice("power", "Power", 1.0, param=True,
                                                 options=(0.0, 1.0))])  # fmt: skip
    with pytest.raises(ValueError, match="power"):
        declared.resolved()
    too_far = ui.Controls("fakefam", [ui.Slider("steps", "S", 1, param=True, high=0)])
    with pytest.raises(ValueError, match="steps"):
        too_far.resolved()


def test_a_default_outside_its_own_range_is_refused_at_declaration():
    with pytest.raises(ValueError, match="`x` must be in \\[0, 1\\]"):
        ui.Slider("x", "x", 2.0, low=0.0, high=1.0)
    with pytest.raises(ValueError, match="`m` must be one of a, b"):
        ui.Choice("m", "m", "c", options=("a", "b"))
    with pytest.raises(ValueError, match="duplicate"):
        ui.Controls("p", [ui.Toggle("t", "t"), ui.Toggle("t", "t")])


def test_lesson_settings_are_checked_and_keyed_by_slug():
    declared = ui.Controls("page", [ui.Slider("x", "x", 2.0, low=0.0, high=5.0)])
    assert declared.key("x") == "page_x"
    assert declared.settings({"x": 4.0}) == {"page_x": 4.0}
    assert declared.keyed({"x": 9.0}) == {"page_x": 9.0}  # links: unchecked
    with pytest.raises(ValueError, match="`x` must be in"):
        declared.settings({"x": 9.0})
    with pytest.raises(KeyError, match="no control 'y'"):
        declared.settings({"y": 1.0})


def test_values_are_frozen_hashable_and_build_a_settings_object():
    @dataclasses.dataclass(frozen=True)
    class Setting:
        power: float
        steps: int = 1

    values = ui.Values(power=2.0, steps=3, sample=1)
    assert values.power == 2.0 and values["steps"] == 3
    assert hash(values) == hash(ui.Values(sample=1, steps=3, power=2.0))
    assert values != ui.Values(power=2.0, steps=4, sample=1)
    assert values.to(Setting) == Setting(2.0, 3)
    assert values.to(Setting, steps=5) == Setting(2.0, 5)
    assert values.without("sample") == ui.Values(power=2.0, steps=3)
    assert (values | {"steps": 4}).steps == 4 and values.steps == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.power = 1.0
