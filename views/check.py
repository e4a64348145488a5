"""Check your tensors: your own y_true and y_pred through our losses and Keras'.

A thin view over ``lossviz.check``: it reads the uploads, the pasted text and
the controls, calls ``check.run_check`` / ``check.sweep_check`` and draws what
they return. Loading (never unpickling), validation and every number come from
``lossviz``; no loss is computed here.
"""

import numpy as np
import streamlit as st

# lossviz first: it imports TensorFlow quietly.
import lossviz.check as check
import lossviz.registry as registry
import ui
from ui.figures import check as figures
from views.content import check as content

MAX_SWEEP_SIZE = 200_000  # y_pred entries up to which the sweep runs


@ui.cached(max_entries=32)
def example_files(loss, seed):
    trouble = check.example_files(loss, seed, nonfinite=True)[f"{loss}_example.npz"]
    return {**check.example_files(loss, seed), f"{loss}_nonfinite_example.npz": trouble}


# Inputs can be 50 MB: the caches are keyed by where each array came from (an
# upload's id, or the pasted text) instead of hashing the arrays on every rerun.


@ui.cached(max_entries=32)
def load_upload(file_id, filename, name, _data):
    return check.load_bytes(_data, filename, name)


@ui.cached(max_entries=64)
def load_text(text, name):
    return check.parse_text(text, name)


@ui.cached(max_entries=16)
def sweep(loss, sources, params, dtype, _arrays):
    return check.sweep_check(loss, _arrays, params, dtype=dtype)


@ui.cached(max_entries=16)
def run(loss, sources, params, dtype, _arrays):
    """The check and its charts, with the sweep of the loss's main parameter
    for y_pred up to ``MAX_SWEEP_SIZE`` entries (cached without that
    parameter: moving it redraws only the marker)."""
    report = check.run_check(loss, _arrays, params, dtype=dtype)
    name, curves = registry.get(loss).sweep_param, None
    if name is not None and _arrays["y_pred"].size <= MAX_SWEEP_SIZE:
        curves = sweep(loss, sources, params.without(name), dtype, _arrays)
    return report, figures.check_charts(report, curves, registry.get(loss))


def fill_example(loss, seed, nonfinite=False):
    """Puts the example into the text boxes and clears the uploads."""
    arrays = check.example_arrays(loss, seed, nonfinite)
    texts = {name: check.format_text(array) for name, array in arrays.items()}
    for spec in registry.get(loss).inputs:
        st.session_state[f"text_{spec.name}"] = texts.get(spec.name, "")
    st.session_state["check_uploads"] = st.session_state.get("check_uploads", 0) + 1
    st.session_state["check_example_of"] = (loss, seed, nonfinite)


def text_edited():
    st.session_state["check_example_of"] = None


def read_input(spec, version):
    """``(array, source)`` for one input from its upload or its text.

    ``(None, None)`` when it is empty; ``source`` identifies the array.
    """
    st.caption(content.input_caption(spec))
    upload = st.file_uploader(
        f"Upload {spec.name}",
        key=f"upload_{spec.name}_{version}",
        on_change=text_edited,
        max_upload_size=check.MAX_UPLOAD_MB,
        **content.UPLOADER,
    )
    key = f"text_{spec.name}"
    st.text_area(
        f"…or paste {spec.name}", key=key, on_change=text_edited, **content.PASTE
    )
    text = st.session_state.get(key, "")
    if upload is not None:
        st.caption(f"Using the uploaded file **{upload.name}**.")
        source = ("file", upload.file_id, upload.name)
        array = load_upload(*source[1:], spec.name, upload.getvalue())
    elif text.strip():
        source = ("text", text)
        array = load_text(text, spec.name)
    else:
        return None, None
    st.caption(f"Read {spec.name}: shape {list(array.shape)}, {array.dtype}.")
    return array, source


ui.header("Check your tensors", None, content.INTRO.format(mb=check.MAX_UPLOAD_MB))
fixed = content.CONTROLS.render(columns=2)
ui.reset_button("check")  # every control of the page, the loss's too
loss, dtype = fixed.loss, fixed.dtype

entry = registry.get(loss)
st.latex(entry.formula)
st.caption(entry.description)

seed = ui.seed()
# On the first visit, and while the inputs hold an untouched example, the
# inputs follow the loss and the seed.
shown = st.session_state.get("check_example_of", (None, None, False))
if shown is not None and shown[:2] != (loss, seed):
    fill_example(loss, seed, shown[2])

controls = content.param_controls(loss, entry.params)
params = controls.render(columns=len(entry.params)) if entry.params else ui.Values()

st.subheader("Your tensors")
buttons = st.columns([1, 1, 2])
for column, bad in zip(buttons[:2], (False, True), strict=True):
    args = (loss, seed, bad)
    column.button(on_click=fill_example, args=args, **content.EXAMPLES[bad])
with buttons[2].expander("Example files to download"):
    for name, data in example_files(loss, seed).items():
        st.download_button(name, data, name, **content.download(name))

version = st.session_state.get("check_uploads", 0)
arrays, sources, problem = {}, {}, None
tabs = st.tabs([f"{s.name} {s.shape_text()}" for s in entry.inputs])
for tab, spec in zip(tabs, entry.inputs, strict=True):
    with tab:
        try:
            arrays[spec.name], sources[spec.name] = read_input(spec, version)
        except check.CheckError as error:
            problem = problem or str(error)

missing = [s.name for s in entry.inputs if s.required and arrays.get(s.name) is None]
report = None
if problem:
    st.error(problem, icon=":material/error:")
elif missing:
    st.info(content.missing_inputs(missing), icon=":material/info:")
else:
    key = (loss, tuple(sources.items()), params, dtype)
    try:
        with st.spinner("Checking…"):
            report, drawn = run(*key, arrays)
    except check.CheckError as error:
        st.error(str(error), icon=":material/error:")
    except Exception as error:  # the page keeps working whatever the input
        st.error(f"The check failed: {type(error).__name__}: {error}")

if report is not None:
    st.subheader("What the loss says")
    keras = report.keras
    headline = {
        "Mean loss (lossviz)": report.mean,
        "Keras built-in": np.nan if keras is None else keras.overall,
        "Gradient norm": report.grad_norm,
        "Non-finite values": report.nonfinite_count,
    }
    ui.metrics(headline, helps=content.metric_helps(report))
    for name in [n for n, s in report.input_nonfinite.items() if s["count"]]:
        ui.nonfinite_note(f"input {name}", arrays[name])
    ui.nonfinite_note("per-sample loss", report.values)
    ui.nonfinite_note("gradient w.r.t. y_pred", report.grad)
    for note in report.notes:
        st.caption(note)

    left, right = st.columns([3, 2])
    with left:
        ui.plot(drawn.per_sample)
    with right:
        st.dataframe(figures.sample_table(report), hide_index=True, height=240)
        if (size := report.values.size) > figures.TABLE_ROWS:
            st.caption(content.TABLE_CAPTION.format(figures.TABLE_ROWS, size))

    st.subheader("Gradient with respect to y_pred")
    left, right = st.columns(2)
    with left:
        ui.plot(drawn.grad)
    with right:
        if drawn.keras_grad is not None:
            ui.plot(drawn.keras_grad)
        elif keras is not None:
            st.warning(f"The Keras built-in failed: {keras.error}")

    st.subheader("Every NaN and Inf, with the inputs behind it")
    if report.findings:
        st.dataframe(figures.findings_table(report.findings), hide_index=True)
        st.caption(content.FINDINGS_CAPTION.format(max_findings=check.MAX_FINDINGS))
    else:
        st.success(content.ALL_FINITE, icon=":material/check_circle:")

    if drawn.sweep is not None:
        st.subheader(f"Sweeping {entry.sweep_param} on your data")
        for column, figure in zip(st.columns(2), drawn.sweep, strict=True):
            with column:
                ui.plot(figure)
    else:
        st.caption(content.sweep_caption(entry, arrays["y_pred"].size, MAX_SWEEP_SIZE))

ui.use_it([entry.function, check.run_check], content.snippet(entry, params))
