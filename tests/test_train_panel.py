"""The shared Train panel, driven by AppTest on a task defined in the script."""

from streamlit.testing.v1 import AppTest

PAGE = """
import keras
import numpy as np
import ui
from lossviz.explore import RunSpec, TrainSpec
from lossviz.training import core

def regression(ctx):
    data = core.rng(ctx.seed)
    x = data.normal(size=(128, 2)).astype("float32")
    y = x @ np.array([[1.0], [-1.0]], "float32")
    with ctx.strategy.scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(ctx.learning_rate), loss="mse")
    model.fit(x, y, epochs=ctx.epochs, batch_size=32, verbose=0,
              callbacks=ctx.callbacks)
    ctx.result.summary["weights learned"] = 2
    ctx.result.rows.extend([{"input": "a", "right?": True, "error": 0.125},
                            {"input": "b", "right?": False, "error": 1.5}])

core.register_task(core.Task("panel_demo", "demo", ("a", "b"), regression))
spec = TrainSpec("panel_demo", {"loss": "Training loss"}, epochs=2, learning_rate=0.1)
ui.train_panel(spec, [RunSpec("slow", "a"), RunSpec("fast", "b")])
"""


def test_train_draws_curves_and_overlays_a_second_run():
    at = AppTest.from_string(PAGE, default_timeout=120).run()
    assert not at.exception
    assert not at.get("plotly_chart")
    at.button(key="train_go_panel_demo").click().run()
    assert not at.exception
    runs = at.session_state["train_runs_panel_demo"]
    assert [r["label"] for r in runs] == ["slow", "fast"]
    assert all(len(r["history"]["loss"]) == 2 for r in runs)
    assert at.get("plotly_chart")
    table = at.dataframe[0].value
    assert list(table["run"]) == ["#1 slow", "#2 fast"]
    # The last run's typed summary and example rows, drawn as they are.
    assert any("#2 fast**: weights learned **2**" in m.value for m in at.markdown)
    rows = at.dataframe[1].value
    assert list(rows["right?"]) == ["✓", "✗"]
    assert list(rows["error"]) == ["0.125", "1.5"]
    at.multiselect(key="train_choice_panel_demo").set_value(["fast"])
    at.button(key="train_go_panel_demo").click().run()
    runs = at.session_state["train_runs_panel_demo"]
    assert [r["number"] for r in runs] == [1, 2, 3]
    at.button(key="train_clear_panel_demo").click().run()
    assert at.session_state["train_runs_panel_demo"] == []


def test_picked_runs_stay_picked_when_their_labels_follow_a_control():
    runs = '[RunSpec("slow", "a"), RunSpec("fast", "b")]'
    page = PAGE.replace(runs, runs.replace('"fast"', 'f"fast k={k}"')).replace(
        "ui.train_panel(",
        'import streamlit as st\nk = st.slider("k", 1, 9, 2, key="k")\nui.train_panel(',
    )
    assert page != PAGE
    at = AppTest.from_string(page, default_timeout=120).run()
    assert at.multiselect(key="train_choice_panel_demo").value == ["slow", "fast k=2"]
    at.multiselect(key="train_choice_panel_demo").set_value(["fast k=2"]).run()
    at.slider(key="k").set_value(5).run()
    assert not at.exception
    assert at.multiselect(key="train_choice_panel_demo").value == ["fast k=5"]
