"""The words and controls of "Check your tensors".

Its fixed controls (the loss, the precision) are declared here with their
options written out, since this module imports ``ui`` only (the tests check
them against ``lossviz.registry.names()`` and ``lossviz.check.DTYPES``). The
controls of a loss's parameters come from that loss's registry ``ParamSpec``
entries when the page renders: ``param_controls``.
"""

import ui

LOSSES = (
    "bpmll_loss",
    "masked_sparse_categorical_crossentropy",
    "cosine_triplet_loss",
    "embedding_target_loss",
    "full_softmax_loss",
    "sampled_softmax_loss",
    "special_token_mae",
)
DTYPES = ("float32", "float64")

CONTROLS = ui.Controls(
    "check",
    [
        ui.Choice(
            "loss",
            "Loss",
            "bpmll_loss",
            options=LOSSES,
            widget="selectbox",
            help="The lossviz loss to put your tensors through.",
        ),
        ui.Choice(
            "dtype",
            "Precision",
            "float32",
            options=DTYPES,
            widget="selectbox",
            help="float32 is what Keras trains in by default; float64 shows "
            "whether a NaN is a precision problem.",
        ),
    ],
)
LESSONS = ()

JS_SAFE = 2**53 - 1  # number inputs hold JavaScript numbers


def param_control(spec):
    """The control of one loss parameter, completed and checked by its
    registry ``ParamSpec``: a toggle, a select box of choices, a select
    slider over a grid, a slider over a float range, else a number input
    (integers, within what a browser's number holds)."""
    label = spec.name.replace("_", " ").capitalize()
    given = {"default": spec.default, "help": spec.describe(), "param": True}
    if spec.type is bool:
        control = ui.Toggle(spec.name, label, **given)
    elif spec.type is str:
        control = ui.Choice(spec.name, label, widget="selectbox", **given)
    elif spec.ui_options:
        control = ui.Choice(spec.name, label, **given)
    elif spec.type is float and spec.ui_range:
        control = ui.Slider(spec.name, label, **given)
    else:
        low, high = spec.ui_range[:2] if spec.ui_range else (spec.low, spec.high)
        control = ui.Number(
            spec.name,
            label,
            low=None if low is None else max(low, -JS_SAFE),
            high=None if high is None else min(high, JS_SAFE),
            step=1 if spec.type is int else None,
            **given,
        )
    return control.from_spec(spec)


def param_controls(loss: str, specs) -> ui.Controls:
    """The controls of ``loss``'s parameters (its ``ParamSpec`` entries),
    keyed ``check_<loss>_<parameter>`` in the URL: each loss keeps its own."""
    return ui.Controls(f"check_{loss}", [param_control(spec) for spec in specs])


INTRO = """
Your custom loss gives NaN, or numbers you do not believe? Bring the tensors:
`y_true`, `y_pred` and whatever else the loss takes, as **.npy**, **.npz** or
**.csv** files (up to {mb} MB each; `.npy`/`.npz` are read without unpickling)
or pasted as numbers (rows on lines, or a nested list like `[[0, 1], [1, 0]]`).
The page puts them through the lossviz loss **and** the closest Keras built-in,
per sample, with the gradient with respect to `y_pred`, and points at every NaN
or Inf together with the input rows that produced it.

What to try:
- **Load the example with NaN/Inf.** For BP-MLL one sample has its positive
  labels at -50 and negatives at +50: `e^100` overflows float32 to +Inf, and
  its gradient with it. Switch the precision to **float64** and it is finite.
- **Paste your own batch** from a failing training step: `np.save("y_pred.npy",
  model(x))` and upload the file.
- **Move the main parameter** (the margin, the sharpening power) and watch the
  sweep: the loss and the gradient norm on *your* data over the whole range.
"""

# The two example buttons: without and with NaN/Inf.
EXAMPLES = {
    False: {
        "label": "Load an example",
        "key": "check_example",
        "icon": ":material/science:",
        "help": "Fill every input with a small example for this loss.",
    },
    True: {
        "label": "Example with NaN/Inf",
        "key": "check_trouble",
        "icon": ":material/warning:",
        "help": "The same example with inputs that give NaN or Inf.",
    },
}
UPLOADER = {
    "type": ["npy", "npz", "csv", "txt", "json"],
    "help": ".npy, .npz (the array named like this input, or its only array), "
    ".csv or text.",
}
PASTE = {
    "height": 130,
    "placeholder": "0.1, 0.9, 0.0\n0.7, 0.2, 0.1",
    "help": "Numbers separated by commas or spaces, one row per line (a blank "
    "line starts the next block of a 3-D array), or a nested list.",
}
TABLE_CAPTION = "The first {} of {} values."
ALL_FINITE = "Every input, loss value and gradient entry is finite."
FINDINGS_CAPTION = (
    "At most {max_findings} locations per array are listed; the counts above "
    "are complete."
)


def download(filename: str) -> dict:
    """The rest of the download button of an example file."""
    csv = filename.endswith(".csv")
    return {
        "mime": "text/csv" if csv else "application/octet-stream",
        "key": f"download_{filename}",
        "icon": ":material/download:",
    }


def input_caption(spec) -> str:
    """What an input holds (a registry ``InputSpec``)."""
    optional = "" if spec.required else " Optional."
    return f"{spec.description} ({spec.kind}).{optional}"


def missing_inputs(names) -> str:
    return (
        f"Give {', '.join(names)} (upload a file or paste numbers), or press "
        "**Load an example**."
    )


def metric_helps(report) -> dict:
    """The help of each metric, for this report (its output, precision and
    Keras built-in)."""
    keras = report.keras
    if keras is None:
        keras_help = "No Keras built-in is close to this loss."
    else:
        keras_help = (
            f"{keras.label}, with its default reduction (what fit reports). "
            f"{keras.note}" + (f"\n\nIt failed: {keras.error}" if keras.error else "")
        )
    return {
        "Mean loss (lossviz)": f"Mean of the per-sample losses {report.output}, "
        f"in {report.dtype}.",
        "Keras built-in": keras_help,
        "Gradient norm": "‖∂ sum(loss) / ∂ y_pred‖ over the whole batch.",
        "Non-finite values": "NaN or ±Inf in the inputs, the per-sample loss and "
        "the gradient.",
    }


def sweep_caption(entry, size: int, max_size: int) -> str:
    """Why there is no sweep: none to make, or ``y_pred`` too large for it."""
    if entry.sweep_param is None:
        return f"{entry.name} has no continuous parameter to sweep."
    return (
        f"The {entry.sweep_param} sweep runs for y_pred up to {max_size:,} "
        f"values; yours has {size:,}."
    )


def snippet(entry, params) -> str:
    """The loss compiled into a model, and the check from Python and the
    command line, with these parameters."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    flags = {"y_pred": "--y-pred y_pred.npy", "y_true": "--y-true y_true.npy"}
    required = [s.name for s in entry.inputs if s.required]
    cli = " ".join(
        [f"python -m lossviz check {entry.name}"]
        + [flags.get(name, f"--input {name}={name}.npy") for name in required]
        + [f"--param {k}={v}" for k, v in params.items()]
    )
    arrays = ", ".join(f'"{name}": {name}' for name in required)
    return (
        "import lossviz\n"
        "from lossviz.check import run_check\n\n"
        f"{entry.compile_snippet}\n\n"
        "# Check a batch that misbehaves, from Python ...\n"
        f'report = run_check("{entry.name}", {{{arrays}}}, dict({args}))\n'
        "print(report.mean, report.all_finite, report.findings[:3])\n"
        "# ... or from the command line (exit status 1 when a value is NaN/Inf):\n"
        f"# {cli}"
    )
