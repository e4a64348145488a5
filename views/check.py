"""Check your tensors: your own y_true and y_pred through our losses and Keras'.

A thin view over ``lossviz.check``: it reads the uploads, the pasted text and
the controls, calls ``check.run_check`` / ``check.sweep_check`` and draws what
they return. Loading (never unpickling), validation and every number come from
``lossviz``; no loss is computed here.
"""

import numpy as np
import streamlit as st

import ui

# lossviz first: it imports TensorFlow quietly.
from lossviz import check, registry

PAGE = "check"
FILE_TYPES = ["npy", "npz", "csv", "txt", "json"]
MAX_ROWS = 40  # samples drawn in the per-sample charts and the gradient heatmap
MAX_COLUMNS = 60  # gradient entries per sample in the heatmap
JS_SAFE = 2**53 - 1  # number inputs hold JavaScript numbers
MAX_SWEEP_SIZE = 200_000  # y_pred entries up to which the sweep runs

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
""".format(mb=check.MAX_UPLOAD_MB)


@ui.cache_data(show_spinner=False)
def example_texts(loss, seed, nonfinite):
    arrays = check.example_arrays(loss, seed, nonfinite)
    return {name: check.format_text(array) for name, array in arrays.items()}


@ui.cache_data(show_spinner=False)
def example_files(loss, seed):
    files = check.example_files(loss, seed)
    trouble = check.example_files(loss, seed, nonfinite=True)
    files[f"{loss}_nonfinite_example.npz"] = trouble[f"{loss}_example.npz"]
    return files


# Inputs can be 50 MB: the caches are keyed by where each array came from (an
# upload's id, or the pasted text) instead of hashing the arrays on every rerun.


@ui.cache_data(show_spinner=False, max_entries=32)
def load_upload(file_id, filename, name, _data):
    return check.load_bytes(_data, filename, name)


@ui.cache_data(show_spinner=False, max_entries=64)
def load_text(text, name):
    return check.parse_text(text, name)


@ui.cache_data(show_spinner="Checking…", max_entries=16)
def run(loss, sources, params, dtype, _arrays):
    return check.run_check(loss, _arrays, dict(params), dtype=dtype)


@ui.cache_data(show_spinner="Sweeping the parameter…", max_entries=16)
def sweep(loss, sources, params, dtype, _arrays):
    return check.sweep_check(loss, _arrays, dict(params), dtype=dtype)


def fill_example(loss, seed, nonfinite=False):
    """Puts the example into the text boxes and clears the uploads."""
    texts = example_texts(loss, seed, nonfinite)
    for spec in registry.get(loss).inputs:
        st.session_state[f"text_{spec.name}"] = texts.get(spec.name, "")
    st.session_state["check_uploads"] = st.session_state.get("check_uploads", 0) + 1
    st.session_state["check_example_of"] = (loss, seed, nonfinite)


def text_edited():
    st.session_state["check_example_of"] = None


def param_control(loss, spec):
    key = f"check_{loss}_{spec.name}"
    label = spec.name.replace("_", " ").capitalize()
    help_text = spec.describe()
    if spec.type is bool:
        return ui.toggle(label, key=key, value=spec.default, help=help_text)
    if spec.type is str:
        return ui.selectbox(
            label, key=key, value=spec.default, options=spec.choices, help=help_text
        )
    if spec.ui_options:
        return ui.select_slider(
            label, key=key, value=spec.default, options=spec.ui_options, help=help_text
        )
    if spec.type is float and spec.ui_range:
        low, high, step = spec.ui_range
        return ui.slider(
            label,
            key=key,
            value=spec.default,
            min_value=low,
            max_value=high,
            step=step,
            help=help_text,
        )
    low, high = spec.ui_range[:2] if spec.ui_range else (spec.low, spec.high)
    return ui.number_input(
        label,
        key=key,
        value=spec.default,
        min_value=None if low is None else max(int(low), -JS_SAFE),
        max_value=None if high is None else min(int(high), JS_SAFE),
        step=1,
        help=help_text,
    )


def read_input(spec, version):
    """``(array, source)`` for one input from its upload or its text.

    ``(None, None)`` when it is empty; ``source`` identifies the array.
    """
    upload = st.file_uploader(
        f"Upload {spec.name}",
        type=FILE_TYPES,
        key=f"upload_{spec.name}_{version}",
        on_change=text_edited,
        max_upload_size=check.MAX_UPLOAD_MB,
        help=".npy, .npz (the array named like this input, or its only array), "
        ".csv or text.",
    )
    st.text_area(
        f"…or paste {spec.name}",
        key=f"text_{spec.name}",
        on_change=text_edited,
        height=130,
        placeholder="0.1, 0.9, 0.0\n0.7, 0.2, 0.1",
        help="Numbers separated by commas or spaces, one row per line (a blank "
        "line starts the next block of a 3-D array), or a nested list.",
    )
    if upload is not None:
        st.caption(f"Using the uploaded file **{upload.name}**.")
        source = ("file", upload.file_id, upload.name)
        return load_upload(*source[1:], spec.name, upload.getvalue()), source
    text = st.session_state.get(f"text_{spec.name}", "")
    if not text.strip():
        return None, None
    return load_text(text, spec.name), ("text", text)


def sample_labels(shape):
    return [",".join(map(str, index)) for index in np.ndindex(*shape)]


def per_sample_figure(report, entry):
    values = np.asarray(report.values)
    keras = report.keras
    if values.ndim <= 1:
        series = {"lossviz": values[:MAX_ROWS]}
        if keras is not None and keras.values is not None:
            name = entry.keras_builtin.label(report.params).split("(")[0]
            series[name] = np.ravel(keras.values)[:MAX_ROWS]
        return ui.charts.bars(
            sample_labels(values.shape)[:MAX_ROWS],
            series,
            title="Per-sample loss, lossviz and the Keras built-in",
            x_title="sample",
            y_title="loss",
        )
    rows = values.reshape(-1, values.shape[-1])[:MAX_ROWS]
    return ui.charts.heatmap(
        rows,
        x_labels=range(values.shape[-1]),
        y_labels=sample_labels(values.shape[:-1])[: len(rows)],
        title=f"Per-sample loss {report.output}",
        x_title="last axis",
        y_title="sample",
        diverging=False,
    )


def gradient_figure(grad, title):
    grad = np.asarray(grad)
    rows = grad.reshape(-1, grad.shape[-1]) if grad.ndim > 1 else grad[None, :]
    shown = rows[:MAX_ROWS, :MAX_COLUMNS]
    labels = sample_labels(grad.shape[:-1])[: len(shown)] if grad.ndim > 1 else ["all"]
    if shown.shape != rows.shape:
        title += (
            f" (first {shown.shape[0]} × {shown.shape[1]} of {rows.shape[0]} × "
            f"{rows.shape[1]})"
        )
    return ui.charts.heatmap(
        shown,
        x_labels=range(shown.shape[1]),
        y_labels=labels,
        title=title,
        x_title="y_pred last axis",
        y_title="sample",
    )


def sweep_figures(entry, curves, current):
    name = entry.sweep_param
    log_x = bool(entry.param(name).ui_options)
    loss = ui.charts.line(
        curves["param"],
        {"mean loss": curves["mean_loss"]},
        title=f"Mean loss on your data as {name} moves",
        x_title=name,
        y_title="mean loss",
        marker_x=current,
        log_x=log_x,
    )
    grad = ui.charts.line(
        curves["param"],
        {"gradient norm": curves["grad_norm"]},
        title="Gradient norm w.r.t. y_pred",
        x_title=name,
        y_title="‖∂L/∂y_pred‖",
        marker_x=current,
        log_x=log_x,
    )
    return loss, grad


@ui.cache_resource(show_spinner=False, max_entries=16)
def figures(loss, sources, params, dtype, _arrays):
    """The charts of one check, built once per check."""
    entry = registry.get(loss)
    report = run(loss, sources, params, dtype, _arrays)
    drawn = {
        "per_sample": per_sample_figure(report, entry),
        "grad": gradient_figure(report.grad, "lossviz: ∂ sum(loss) / ∂ y_pred"),
        "keras_grad": None,
        "sweep": None,
    }
    if report.keras is not None and report.keras.grad is not None:
        drawn["keras_grad"] = gradient_figure(
            report.keras.grad, "Keras built-in: ∂ sum(loss) / ∂ y_pred"
        )
    if entry.sweep_param is not None and _arrays["y_pred"].size <= MAX_SWEEP_SIZE:
        fixed = tuple((k, v) for k, v in params if k != entry.sweep_param)
        curves = sweep(loss, sources, fixed, dtype, _arrays)
        drawn["sweep"] = sweep_figures(entry, curves, dict(params)[entry.sweep_param])
    return drawn


def per_sample_table(report):
    values = np.asarray(report.values)
    keras = report.keras
    table = {
        "sample": [str(list(i)) for i in np.ndindex(*values.shape)][:200],
        "lossviz": [ui.format_value(v, 6) for v in values.ravel()[:200]],
    }
    if keras is not None and keras.values is not None:
        if np.size(keras.values) == values.size:
            table["Keras built-in"] = [
                ui.format_value(v, 6) for v in np.ravel(keras.values)[:200]
            ]
    st.dataframe(table, hide_index=True, height=240)
    if values.size > 200:
        st.caption(f"The first 200 of {values.size} values.")


def findings_table(report):
    if not report.findings:
        st.success(
            "Every input, loss value and gradient entry is finite.",
            icon=":material/check_circle:",
        )
        return
    st.dataframe(
        {
            "where": [f.array for f in report.findings],
            "index": [str(list(f.index)) for f in report.findings],
            "value": [f.value for f in report.findings],
            "sample": [
                "" if f.sample is None else str(list(f.sample)) for f in report.findings
            ],
            "inputs of that sample": [
                "; ".join(f"{k} = {v}" for k, v in f.inputs.items())
                for f in report.findings
            ],
        },
        hide_index=True,
    )
    st.caption(
        f"At most {check.MAX_FINDINGS} locations per array are listed; the "
        "counts above are complete."
    )


def snippet(entry, params):
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    flags = {"y_pred": "--y-pred y_pred.npy", "y_true": "--y-true y_true.npy"}
    cli = " ".join(
        [f"python -m lossviz check {entry.name}"]
        + [
            flags.get(s.name, f"--input {s.name}={s.name}.npy")
            for s in entry.inputs
            if s.required
        ]
        + [f"--param {k}={v}" for k, v in params.items()]
    )
    arrays = ", ".join(f'"{s.name}": {s.name}' for s in entry.inputs if s.required)
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


ui.header("Check your tensors", None, INTRO)

left, middle, right = st.columns([2, 1, 1])
with left:
    loss = ui.selectbox(
        "Loss",
        key="check_loss",
        value="bpmll_loss",
        options=registry.names(),
        help="The lossviz loss to put your tensors through.",
    )
with middle:
    dtype = ui.selectbox(
        "Precision",
        key="check_dtype",
        value="float32",
        options=check.DTYPES,
        help="float32 is what Keras trains in by default; float64 shows whether a "
        "NaN is a precision problem.",
    )
with right:
    ui.reset_button(PAGE)

entry = registry.get(loss)
st.latex(entry.formula)
st.caption(entry.description)

seed = ui.seed()
if "check_example_of" not in st.session_state:
    fill_example(loss, seed)  # first visit: start from an example
example_of = st.session_state["check_example_of"]
if example_of is not None and example_of[:2] != (loss, seed):
    # The inputs hold an untouched example: follow the loss and the seed.
    fill_example(loss, seed, example_of[2])

params = {}
if entry.params:
    columns = st.columns(len(entry.params))
    for column, spec in zip(columns, entry.params, strict=True):
        with column:
            params[spec.name] = param_control(loss, spec)

st.subheader("Your tensors")
buttons = st.columns([1, 1, 2])
buttons[0].button(
    "Load an example",
    key="check_example",
    on_click=fill_example,
    args=(loss, seed, False),
    icon=":material/science:",
    help="Fill every input with a small example for this loss.",
)
buttons[1].button(
    "Example with NaN/Inf",
    key="check_trouble",
    on_click=fill_example,
    args=(loss, seed, True),
    icon=":material/warning:",
    help="The same example with inputs that give NaN or Inf.",
)
with buttons[2].expander("Example files to download"):
    for filename, data in example_files(loss, seed).items():
        st.download_button(
            filename,
            data=data,
            file_name=filename,
            mime="text/csv"
            if filename.endswith(".csv")
            else "application/octet-stream",
            key=f"download_{filename}",
            icon=":material/download:",
        )

version = st.session_state.get("check_uploads", 0)
arrays, sources, problem = {}, {}, None
tabs = st.tabs([f"{s.name} {s.shape_text()}" for s in entry.inputs])
for tab, spec in zip(tabs, entry.inputs, strict=True):
    with tab:
        optional = "" if spec.required else " Optional."
        st.caption(f"{spec.description} ({spec.kind}).{optional}")
        try:
            array, source = read_input(spec, version)
        except check.CheckError as error:
            problem = problem or str(error)
            continue
        if array is not None:
            arrays[spec.name] = array
            sources[spec.name] = source
            st.caption(f"Read {spec.name}: shape {list(array.shape)}, {array.dtype}.")

missing = [s.name for s in entry.inputs if s.required and s.name not in arrays]
report = None
if problem:
    st.error(problem, icon=":material/error:")
elif missing:
    st.info(
        f"Give {', '.join(missing)} (upload a file or paste numbers), or press "
        "**Load an example**.",
        icon=":material/info:",
    )
else:
    try:
        key = (loss, tuple(sources.items()), tuple(params.items()), dtype)
        report = run(*key, arrays)
    except check.CheckError as error:
        st.error(str(error), icon=":material/error:")
    except Exception as error:  # the page keeps working whatever the input
        st.error(f"The check failed: {type(error).__name__}: {error}")

if report is not None:
    st.subheader("What the loss says")
    nonfinite = sum(s["count"] for s in report.input_nonfinite.values()) + (
        report.loss_nonfinite["count"] + report.grad_nonfinite["count"]
    )
    cols = st.columns(4)
    with cols[0]:
        ui.metric(
            "Mean loss (lossviz)",
            report.mean,
            help=f"Mean of the per-sample losses {report.output}, in {dtype}.",
        )
    with cols[1]:
        keras = report.keras
        ui.metric(
            "Keras built-in",
            np.nan if keras is None or keras.error else keras.overall,
            help=(
                "No Keras built-in is close to this loss."
                if keras is None
                else f"{keras.label}, with its default reduction (what fit "
                f"reports). {keras.note}"
                + (f"\n\nIt failed: {keras.error}" if keras.error else "")
            ),
        )
    with cols[2]:
        ui.metric(
            "Gradient norm",
            report.grad_norm,
            help="‖∂ sum(loss) / ∂ y_pred‖ over the whole batch.",
        )
    with cols[3]:
        ui.metric(
            "Non-finite values",
            nonfinite,
            help="NaN or ±Inf in the inputs, the per-sample loss and the gradient.",
        )
    for name, summary in report.input_nonfinite.items():
        if summary["count"]:
            ui.nonfinite_note(f"input {name}", arrays[name])
    ui.nonfinite_note("per-sample loss", report.values)
    ui.nonfinite_note("gradient w.r.t. y_pred", report.grad)
    for note in report.notes:
        st.caption(note)

    drawn = figures(*key, arrays)
    left, right = st.columns([3, 2])
    with left:
        ui.plot(drawn["per_sample"])
    with right:
        per_sample_table(report)

    st.subheader("Gradient with respect to y_pred")
    left, right = st.columns(2)
    with left:
        ui.plot(drawn["grad"])
    with right:
        if drawn["keras_grad"] is not None:
            ui.plot(drawn["keras_grad"])
        elif report.keras is not None:
            st.warning(f"The Keras built-in failed: {report.keras.error}")

    st.subheader("Every NaN and Inf, with the inputs behind it")
    findings_table(report)

    if drawn["sweep"] is not None:
        st.subheader(f"Sweeping {entry.sweep_param} on your data")
        left, right = st.columns(2)
        with left:
            ui.plot(drawn["sweep"][0])
        with right:
            ui.plot(drawn["sweep"][1])
    elif entry.sweep_param is not None:
        st.caption(
            f"The {entry.sweep_param} sweep runs for y_pred up to "
            f"{MAX_SWEEP_SIZE:,} values; yours has {arrays['y_pred'].size:,}."
        )
    else:
        st.caption(f"{loss} has no continuous parameter to sweep.")

ui.use_it([entry.function, check.run_check], snippet(entry, params))
