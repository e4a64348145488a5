"""The words and controls of "Probe your loss".

The options are written out here, since this module imports ``ui`` only:
the tasks and outputs of ``lossviz.probe``, its checks, and the shipped
losses it can probe with the task and outputs each fits (the tests check them
against ``lossviz.probe`` and ``lossviz.registry``). The page builds each
shipped loss from its registry entry.
"""

import ui

SOURCES = {
    "shipped": "A lossviz loss",
    "module": "A module path",
    "pasted": "Pasted code",
}
TASKS = {
    "categorical": "categorical: one-hot y_true [batch, classes]",
    "sparse": "sparse: class ids y_true [batch]",
    "multilabel": "multilabel: multi-hot y_true [batch, labels]",
    "regression": "regression: real y_true [batch, dim]",
}
OUTPUTS = {"logits": "logits", "probabilities": "probabilities"}


def _shipped(registry: str, build: str, task: str, outputs: str) -> dict:
    return {"registry": registry, "build": build, "task": task, "outputs": outputs}


MASKED_CE = "masked_sparse_categorical_crossentropy"
# The registry's losses that fit a probe task, as (y_true, y_pred) losses:
# its `registry` entry, `build` (the function, the Keras class built with no
# arguments, the function with the registry's default parameters, or the
# class built from the registry example's extra arrays, probed on that
# example's y_true and y_pred), and the task and outputs it fits. The
# triplet and softmax losses take other arguments than (y_true, y_pred).
SHIPPED = {
    "bpmll_loss": _shipped("bpmll_loss", "function", "multilabel", "logits"),
    "BPMLL": _shipped("bpmll_loss", "class", "multilabel", "logits"),
    MASKED_CE: _shipped(MASKED_CE, "function", "sparse", "logits"),
    "MaskedSparseCategoricalCrossentropy": _shipped(
        MASKED_CE, "class", "sparse", "logits"
    ),
    "special_token_mae": _shipped(
        "special_token_mae", "defaults", "categorical", "probabilities"
    ),
    "EmbeddingTargetLoss": _shipped(
        "embedding_target_loss", "example", "regression", "probabilities"
    ),
}
BUILDS = {
    "function": "the function, called as loss(y_true, y_pred)",
    "class": "the Keras class, built with no arguments (serialization is checked)",
    "defaults": "the function with its default parameters",
    "example": "the Keras class built on the registry example's embedding, probed "
    "on that example's y_true (target embeddings) and y_pred (probabilities)",
}
NOTES = {
    MASKED_CE: "A sequence loss ([batch, time] "
    "labels): given [batch] labels it reads the batch as one sequence and returns "
    "one number, which `call` reports.",
    "special_token_mae": "A per-token loss ([batch, time, classes]) whose maths "
    "holds for [batch, classes] rows too.",
}


def shipped_label(key: str) -> str:
    spec = SHIPPED[key]
    return f"{key} ({spec['task']}, {spec['outputs']})"


CONTROLS = ui.Controls(
    "probe",
    [
        ui.Choice(
            "source",
            "What to probe",
            "shipped",
            options=tuple(SOURCES),
            widget="radio",
            horizontal=True,
            format_func=SOURCES.get,
            help="A loss lossviz ships; a loss in a module the server can import "
            "(package.module:NAME); or code you paste, when the server allows it.",
        ),
        ui.Choice(
            "loss",
            "Loss",
            "bpmll_loss",
            options=tuple(SHIPPED),
            widget="selectbox",
            format_func=shipped_label,
            help="Every lossviz loss that is a (y_true, y_pred) loss of a task, as "
            "a function and as its Keras class, with the task and outputs it fits.",
        ),
        ui.Choice(
            "task",
            "Task",
            "categorical",
            options=tuple(TASKS),
            widget="selectbox",
            format_func=TASKS.get,
            help="What y_true holds. The probe generates a seeded batch of that "
            "kind, and extreme and degenerate rows of it.",
        ),
        ui.Choice(
            "outputs",
            "y_pred holds",
            "logits",
            options=tuple(OUTPUTS),
            widget="radio",
            horizontal=True,
            format_func=OUTPUTS.get,
            help="Raw scores (logits) or probabilities in [0, 1]; for regression, "
            "probabilities means targets and predictions in [0, 1].",
        ),
    ],
)
LESSONS = ()


def part(*names: str) -> ui.Controls:
    """Some of the page's controls, under its URL prefix: the page draws the
    loss for a shipped loss, the task and outputs for any other."""
    return ui.Controls(CONTROLS.slug, [CONTROLS[name] for name in names])


# What each check of lossviz.probe.CHECKS asks, in its order.
CHECKS = {
    "call": "Takes the task's inputs and returns float values, one per sample.",
    "finite_typical": "Value and gradient are finite on typical inputs.",
    "finite_extreme": "… on extreme but legal rows (logits at ±1e2 and ±1e4, "
    "probabilities exactly 0 and 1).",
    "finite_degenerate": "… on degenerate rows (no positive label, every label "
    "positive, an all-zero target, equal predictions).",
    "gradient_exists": "The gradient w.r.t. y_pred is not None and not all zero.",
    "gradient_matches_numeric": "Autodiff agrees with central differences in float64.",
    "descent": "The perfect prediction scores lower than random ones, and a small "
    "step against the gradient lowers the loss.",
    "per_sample_independent": "A sample's value does not depend on the other "
    "samples of the batch.",
    "graph_mode": "Runs under tf.function as model.fit traces it (unknown batch "
    "size) and gives the eager values.",
    "xla": "Compiles with jit_compile=True (a warn: Keras falls back without).",
    "dtypes": "Finite in float16 and bfloat16 (a warn).",
    "serialization": "For a Loss class: get_config round trip, and a compiled "
    "model saves to .keras and loads.",
    "speed": "Time per call beside the closest Keras built-in (informational).",
}

INTRO = """
You wrote a loss. Does it return one value per sample, stay finite at extreme
logits and on degenerate rows, have the gradient autodiff claims, go down as
the prediction gets better, and survive `tf.function`, XLA, half precision and
`model.save`? The page runs `lossviz.probe`'s battery of checks on it and shows
each check's status with the smallest input row behind a fail.

What to try:
- **A module path**: `tests.fixtures.probe_losses:bpmll_divide` with the task
  **multilabel**, a BP-MLL that divides by |Y||Ȳ|. Watch which rows break it and
  where, as the logits grow, its loss and gradient stop being numbers.
- `tests.fixtures.probe_losses:naive_power_crossentropy` (categorical,
  probabilities): a sharpened softmax that takes the log of an exact 0.
- **A lossviz loss**, for what passing looks like: BP-MLL, its Keras class, the
  sequence and embedding losses.
- **In your tests**: `lossviz.probe.assert_sane(my_loss, "multilabel")` raises
  with every fail; `python -m lossviz probe my_losses.py:my_loss --task
  multilabel` prints this table.
"""

MODULE = {
    "label": "Module path (package.module:NAME)",
    "placeholder": "tests.fixtures.probe_losses:bpmll_divide",
    "help": "A loss in a module the server can import: a function (y_true, y_pred) "
    "-> values, a keras.losses.Loss instance, or a Loss class. The module is "
    "imported (its top-level code runs). For a file, use the command line: "
    "python -m lossviz probe path/to/file.py:NAME.",
}
MODULE_EMPTY = (
    "Give a module path, e.g. `tests.fixtures.probe_losses:bpmll_divide` (task "
    "multilabel) or `keras.losses:Huber` (task regression)."
)
NOT_A_FILE = (
    "The page imports modules by name (package.module:NAME), not files by path: "
    "for a file, run `python -m lossviz probe {target} --task ...`."
)
CODE = {
    "label": "Your loss, as Python code",
    "height": 220,
    "help": "A module's worth of code: imports, helpers and the loss itself. It "
    "runs in the server's own process when the text changes.",
}
CODE_EXAMPLE = '''import tensorflow as tf


def my_loss(y_true, y_pred):
    """Cross-entropy on probabilities, without a clip: try outputs = probabilities."""
    return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''
NAME = {
    "label": "Name of the loss in the code",
    "help": "The function, Loss instance or Loss class the code defines.",
}


def pasted_off(env: str) -> str:
    """Why there is no code box, and how to get one on your own machine."""
    return (
        "Pasted code is off on this server: it would run in the server's own "
        "process, with its rights. To probe code you type, run the app on your own "
        f"machine with `{env}=1 streamlit run app.py`. Here, put the loss in a "
        "module the server can import and give its path, or run `python -m "
        "lossviz probe path/to/file.py:NAME --task ...` on your machine."
    )


def pasted_on(env: str) -> str:
    return (
        "**This code runs in the server's own process**, with its rights (files, "
        f"network, memory): the server was started with `{env}=1`, for use on your "
        "own machine only."
    )


def shipped_caption(key: str, entry, builds: str) -> str:
    """How the shipped loss ``key`` is probed (``entry``: its registry entry)."""
    spec = SHIPPED[key]
    params = ", ".join(f"{k}={v!r}" for k, v in entry.defaults.items())
    how = f"{builds}: {params}" if spec["build"] == "defaults" else builds
    note = f" {NOTES[spec['registry']]}" if spec["registry"] in NOTES else ""
    return (
        f"{entry.description} Task {spec['task']}, y_pred {spec['outputs']}; "
        f"probed as {how}.{note}"
    )


def inputs_caption(report, seed: int) -> str:
    shapes = f"y_true {list(report.y_true_shape)}, y_pred {list(report.y_pred_shape)}"
    return (
        f"{report.loss}: {report.task}, {report.outputs}, on {shapes} (seed {seed}); "
        f"the battery took {report.seconds:.2g} s. The detail of a fail names the "
        "smallest input row that shows it."
    )


METRIC_HELPS = {
    "Pass": "Checks that pass (a check that does not apply passes and says so).",
    "Warn": "Checks that warn: not wrong, but worth knowing (a scalar loss, no "
    "XLA, half precision).",
    "Fail": "Checks that fail: assert_sane raises, the command line exits 1.",
    "Seconds": "How long the battery took on this server.",
}
SWEEP_TITLE = "The loss and its gradient as the logits grow"


def sweep_caption(sweep, outputs: str) -> str:
    """What the scale charts show and, from the sweep, where they break."""
    made = (
        "s × the typical logits"
        if outputs == "logits"
        else "the softmax (sigmoid for multilabel and regression) of s × the "
        "typical logits, in float32"
    )
    found = []
    for what, start in (
        ("mean loss", sweep.loss_nonfinite_from),
        ("gradient norm", sweep.grad_nonfinite_from),
    ):
        if start is not None:
            found.append(f"the {what} is NaN or Inf from s = {start:.3g} on")
    tail = "; ".join(found) + "." if found else "both stay finite over the grid."
    return (
        f"y_pred = {made}; s = 1 is the batch the checks used. Over s from "
        f"{sweep.scales[0]:g} to {sweep.scales[-1]:g}, {tail}"
    )


def no_sweep(error: str) -> str:
    return f"No curve to draw: the loss {error} at every scale."


def snippet(target: str, task: str, outputs: str) -> str:
    """The probe in a test and on the command line, for this loss."""
    name = target.rpartition(":")[2] or "my_loss"
    kwargs = "" if outputs == "logits" else f', outputs="{outputs}"'
    flag = "" if outputs == "logits" else f" --outputs {outputs}"
    return (
        "from lossviz.probe import assert_sane\n\n\n"
        f"def test_{name.lower()}_is_sane():\n"
        f'    assert_sane({name}, "{task}"{kwargs})  # raises listing every fail\n\n\n'
        "# and from the command line (exit 1 when a check fails):\n"
        f"# python -m lossviz probe path/to/file.py:{name} --task {task}{flag}"
    )
