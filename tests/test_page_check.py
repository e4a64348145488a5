"""The "Check your tensors" page: uploads, pasted text, controls, errors."""

import io
import json
import pathlib
import sys

import numpy as np
import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

import ui
from lossviz import check, registry
from ui.layout import format_value
from views.content import check as content

PAGE = pathlib.Path(__file__).parents[1] / "views" / "check.py"


def _npy(array, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def _uploader(at, name):
    return next(u for u in at.file_uploader if u.label == f"Upload {name}")


def _markers(at, title):
    """The x of each dashed marker on the chart titled ``title``."""
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec)["layout"]
        if layout["title"]["text"] == title:
            return [shape["x0"] for shape in layout.get("shapes", ())]
    raise AssertionError(f"no chart titled {title!r}")


def test_the_fixed_controls_offer_every_loss_and_precision():
    assert content.CONTROLS["loss"].options == tuple(registry.names())
    assert content.CONTROLS["dtype"].options == check.DTYPES
    assert content.CONTROLS.key("loss") == "check_loss"
    assert content.LESSONS == ()


@pytest.mark.parametrize("name", registry.names())
def test_each_parameter_control_is_its_registry_spec(name):
    controls = content.param_controls(name, registry.get(name).params)
    for spec in registry.get(name).params:
        control = controls[spec.name]
        assert controls.key(spec.name) == f"check_{name}_{spec.name}"
        assert control.default == spec.default and not control.param
        assert spec.describe() == control.help
        if spec.type is bool:
            assert isinstance(control, ui.Toggle)
        elif spec.type is str or spec.ui_options:
            assert isinstance(control, ui.Choice)
            assert control.options == (spec.ui_options or spec.choices)
        elif spec.type is float:
            assert type(control) is ui.Slider
            assert (control.low, control.high, control.step) == spec.ui_range
        else:  # a number input, within what a browser's number holds
            assert isinstance(control, ui.Number) and control.step == 1
            ends = spec.ui_range[:2] if spec.ui_range else (spec.low, spec.high)
            for end, bound in zip(ends, (control.low, control.high), strict=True):
                assert bound == (None if end is None else max(-content.JS_SAFE,
                                 min(end, content.JS_SAFE)))  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _no_full_gc_after_each_run():
    """Streamlit runs gc.collect(2) after every script run (runner.postScriptGC);
    with TensorFlow loaded that takes about 0.5 s per run, most of a test's time."""
    saved = config.get_option("runner.postScriptGC")
    config.set_option("runner.postScriptGC", False)
    yield
    config.set_option("runner.postScriptGC", saved)


@pytest.fixture(scope="module")
def started():
    """One warmed-up page: the first run imports TensorFlow and traces."""
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    return at


def _fresh():
    return AppTest.from_file(str(PAGE), default_timeout=60).run()


def test_page_opens_on_an_example_with_every_part(started):
    at = started
    assert at.title[0].value == "Check your tensors"
    assert not at.error
    expected = check.run_check("bpmll_loss", check.example_arrays("bpmll_loss"))
    assert _metric(at, "Mean loss (lossviz)") == format_value(expected.mean)
    assert _metric(at, "Gradient norm") == format_value(expected.grad_norm)
    assert _metric(at, "Keras built-in") == format_value(expected.keras.overall)
    assert _metric(at, "Non-finite values") == "0"
    assert any("Every input, loss value" in s.value for s in at.success)
    labels = [b.label for b in at.get("download_button")]
    assert "bpmll_loss_example.npz" in labels and "y_pred.npy" in labels
    assert at.expander and any(e.label == "Use it in your model" for e in at.expander)


def _extremes(at, name, spec):
    """The control of ``spec`` and its smallest and largest values."""
    key = f"check_{name}_{spec.name}"
    if spec.type is bool:
        return at.toggle(key=key), False, True
    if spec.type is str:
        return at.selectbox(key=key), spec.choices[0], spec.choices[-1]
    if spec.ui_options:
        return at.select_slider(key=key), spec.ui_options[0], spec.ui_options[-1]
    widget = at.slider(key=key) if spec.type is float else at.number_input(key=key)
    return widget, widget.min, widget.max


def test_every_control_at_min_default_and_max_runs():
    at = _fresh()
    at.selectbox(key="check_dtype").set_value("float64").run()
    assert not at.exception
    for name in registry.names():
        at.selectbox(key="check_loss").set_value(name).run()  # defaults
        assert not at.exception, name
        assert not at.error, (name, [e.value for e in at.error])
        specs = registry.get(name).params
        if not specs:
            continue
        for end in (1, 2):  # every control of the loss at its min, then its max
            for spec in specs:
                widget, *extremes = _extremes(at, name, spec)
                if extremes[end - 1] is not None:  # a number input may be open
                    widget.set_value(extremes[end - 1])
            at.run()
            assert not at.exception, (name, end)
            assert len(at.error) <= 1  # a value the data rejects: one message
        for spec in specs:
            _extremes(at, name, spec)[0].set_value(spec.default)


def test_moving_the_margin_changes_the_loss_shown():
    at = _fresh()
    at.selectbox(key="check_loss").set_value("cosine_triplet_loss").run()
    arrays = check.example_arrays("cosine_triplet_loss")
    before = _metric(at, "Mean loss (lossviz)")
    assert before == format_value(check.run_check("cosine_triplet_loss", arrays).mean)
    modules = set(sys.modules)
    assert _markers(at, "Mean loss on your data as margin moves") == [0.1]
    at.slider(key="check_cosine_triplet_loss_margin").set_value(1.0).run()
    after = _metric(at, "Mean loss (lossviz)")
    expected = check.run_check("cosine_triplet_loss", arrays, {"margin": 1.0})
    assert after == format_value(expected.mean) and after != before
    assert set(sys.modules) == modules  # a slider move imports nothing new
    assert _markers(at, "Mean loss on your data as margin moves") == [1.0]
    assert _markers(at, "Gradient norm w.r.t. y_pred") == [1.0]


def test_the_url_sets_the_loss_its_parameters_and_the_precision():
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["check_loss"] = "embedding_target_loss"
    at.query_params["check_dtype"] = "float64"
    at.query_params["check_embedding_target_loss_power"] = "50"  # as shown
    at.query_params["check_embedding_target_loss_distance"] = "mse"
    at.run()
    assert not at.exception and not at.error
    assert at.select_slider(key="check_embedding_target_loss_power").value == 50.0
    params = {"power": 50.0, "distance": "mse"}
    arrays = check.example_arrays("embedding_target_loss")
    expected = check.run_check("embedding_target_loss", arrays, params, dtype="float64")
    assert _metric(at, "Mean loss (lossviz)") == format_value(expected.mean)
    assert _markers(at, "Mean loss on your data as power moves") == [50.0]
    (snippet,) = [c.value for c in at.code if "report = run_check(" in c.value]
    assert "power=50.0" in snippet and "--param distance=mse" in snippet


def test_a_loss_without_a_parameter_to_sweep_says_so():
    at = _fresh()
    assert any("bpmll_loss has no continuous parameter" in c.value for c in at.caption)
    assert not any("Sweeping" in s.value for s in at.subheader)


def test_reset_puts_every_control_back():
    at = _fresh()
    at.selectbox(key="check_loss").set_value("embedding_target_loss").run()
    at.select_slider(key="check_embedding_target_loss_power").set_value(50.0)
    at.selectbox(key="check_dtype").set_value("float64").run()
    assert at.select_slider(key="check_embedding_target_loss_power").value == 50.0
    at.button(key="reset_check").click().run()
    assert at.selectbox(key="check_loss").value == "bpmll_loss"
    assert at.selectbox(key="check_dtype").value == "float32"
    at.selectbox(key="check_loss").set_value("embedding_target_loss").run()
    assert at.select_slider(key="check_embedding_target_loss_power").value == 1.0


def test_uploaded_files_are_checked():
    at = _fresh()
    rng = np.random.default_rng(7)
    y_true = (rng.random((4, 3)) < 0.5).astype(np.float32)
    y_true[0] = [1, 0, 0]
    logits = rng.normal(size=(4, 3)).astype(np.float32)
    _uploader(at, "y_true").set_value(("t.npy", _npy(y_true), "application/x-npy"))
    csv = "\n".join(",".join(f"{v:.9g}" for v in row) for row in logits).encode()
    _uploader(at, "y_pred").set_value(("p.csv", csv, "text/csv"))
    at.run()
    assert not at.exception and not at.error
    expected = check.run_check("bpmll_loss", {"y_true": y_true, "y_pred": logits})
    assert _metric(at, "Mean loss (lossviz)") == format_value(expected.mean)
    assert any("Using the uploaded file **p.csv**" in c.value for c in at.caption)


def test_pasted_text_is_checked():
    at = _fresh()
    at.text_area(key="text_y_true").input("1 0 0\n0 1 1").run()
    at.text_area(key="text_y_pred").input("[[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]]").run()
    assert not at.exception and not at.error
    expected = check.run_check(
        "bpmll_loss",
        {
            "y_true": [[1, 0, 0], [0, 1, 1]],
            "y_pred": [[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]],
        },
    )
    assert _metric(at, "Mean loss (lossviz)") == format_value(expected.mean)


BAD_INPUTS = [
    (
        "bad.npy",
        _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "never unpickles",
    ),
    ("bad.csv", b"1,2,3\n4,5\n", "row on line 2 has 2 values"),
    ("empty.npy", b"", "is empty"),
    ("text", "1, 2, x", "line 1, column 3: 'x' is not a number"),
    ("text", "[[1, 2], [3, 4]]", "y_pred must be [batch, labels] like y_true"),
]


def test_bad_input_shows_one_error_and_the_page_keeps_working():
    at = _fresh()
    for where, given, message in BAD_INPUTS:
        if where == "text":
            at.text_area(key="text_y_pred").input(given)
        else:
            _uploader(at, "y_pred").set_value((where, given, "text/plain"))
        at.run()
        assert not at.exception, where
        assert len(at.error) == 1 and message in at.error[0].value, where
        assert not at.metric
        if where != "text":
            _uploader(at, "y_pred").clear()
    at.button(key="check_example").click().run()
    assert not at.exception and not at.error
    assert _metric(at, "Non-finite values") == "0"


def test_an_example_with_trouble_shows_where_it_breaks():
    at = _fresh()
    at.button(key="check_trouble").click().run()
    assert not at.exception
    assert _metric(at, "Mean loss (lossviz)") == "+Inf ⚠"
    assert any("per-sample loss" in w.value for w in at.warning)
    assert any("loss" in str(df.value) for df in at.dataframe)
    at.selectbox(key="check_dtype").set_value("float64").run()
    assert _metric(at, "Non-finite values") == "0"


def test_the_page_runs_inside_a_router():
    script = f"""
import streamlit as st
page = st.Page({str(PAGE)!r}, title="Check your tensors", default=True)
st.navigation([page]).run()
"""
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Check your tensors"
    assert _metric(at, "Non-finite values") == "0"
