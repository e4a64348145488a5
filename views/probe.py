"""Probe your loss: lossviz.probe's battery of checks on a loss you name.

A thin view over ``lossviz.probe``: it reads which loss to probe (a shipped
one, a module path, or pasted code when the server allows it), calls
``probe.probe`` and, for a loss that fails a check, ``probe.scale_sweep``,
and draws what they return. No loss is computed here, and no code text is
run here: pasted code goes to ``probe.load_source``, which refuses unless the
server was started with ``LOSSVIZ_ALLOW_PASTED_CODE=1``.
"""

import streamlit as st

# lossviz first: it imports TensorFlow quietly.
import lossviz.probe as probe
import lossviz.registry as registry
import ui
from ui.figures import probe as figures
from views.content import probe as content


def shipped_loss(key, seed):
    """``(loss, arrays)``: the shipped loss ``key`` as the probe takes it, and
    the typical inputs to probe it on (none: the probe's own)."""
    build = content.SHIPPED[key]["build"]
    entry = registry.get(content.SHIPPED[key]["registry"])
    if build == "class":
        return entry.keras_class, {}
    if build == "defaults":  # keyword-only parameters: the registry's defaults

        def loss(y_true, y_pred):
            return entry.function(y_true, y_pred, **entry.defaults)

        loss.__qualname__ = f"{entry.name} (default parameters)"
        return loss, {}
    if build == "example":  # a class that takes arrays: the registry example's
        example = entry.example(seed)
        arrays = {name: example.pop(name) for name in ("y_true", "y_pred")}
        return entry.keras_class(**example), arrays
    return entry.function, {}


@ui.cached(max_entries=64, spinner="Probing: a few seconds…")
def run(source, target, name, task, outputs, seed):
    """The report and, when a check fails, the scale sweep; cached per loss
    (shipped key, module path, or pasted text and name), task, outputs and
    seed."""
    arrays = {}
    if source == "shipped":
        loss, arrays = shipped_loss(target, seed)
    elif source == "module":
        loss = probe.load_target(target)
    else:
        loss = probe.load_source(target, name)
    report = probe.probe(loss, task, outputs=outputs, seed=seed, **arrays)
    curves = None
    if report.failures:
        curves = probe.scale_sweep(loss, task, outputs, probe.SWEEP_SCALES, seed)
    return report, curves


def read_module():
    """The module path from its box, or None (with a note why)."""
    target = st.text_input(key="probe_target", **content.MODULE).strip()
    if not target:
        st.info(content.MODULE_EMPTY, icon=":material/info:")
        return None
    source = target.rpartition(":")[0]
    if source.endswith(".py") or "/" in source or "\\" in source:
        st.error(content.NOT_A_FILE.format(target=target), icon=":material/error:")
        return None
    return target


def read_code():
    """``(code, name)`` from the code box when the server allows pasted code,
    else ``(None, None)`` with a note on how to allow it locally (no box)."""
    if not probe.pasted_code_allowed():
        st.info(content.pasted_off(probe.PASTED_CODE_ENV), icon=":material/lock:")
        return None, None
    st.warning(content.pasted_on(probe.PASTED_CODE_ENV), icon=":material/warning:")
    code = st.text_area(key="probe_code", value=content.CODE_EXAMPLE, **content.CODE)
    name = st.text_input(key="probe_name", value="my_loss", **content.NAME).strip()
    return (code, name) if code.strip() and name else (None, None)


ui.header("Probe your loss", None, content.INTRO)
source = content.part("source").render().source
seed = ui.seed()
target, name = None, None
if source == "shipped":
    target = content.part("loss").render().loss
    task = content.SHIPPED[target]["task"]
    outputs = content.SHIPPED[target]["outputs"]
    entry = registry.get(content.SHIPPED[target]["registry"])
    builds = content.BUILDS[content.SHIPPED[target]["build"]]
    st.caption(content.shipped_caption(target, entry, builds))
else:
    left, right = st.columns([2, 1])
    with right:
        chosen = content.part("task", "outputs").render()
    task, outputs = chosen.task, chosen.outputs
    with left:
        if source == "module":
            target = read_module()
        else:
            target, name = read_code()
ui.reset_button("probe")

report = curves = None
if target is not None:
    try:
        report, curves = run(source, target, name, task, outputs, seed)
    except probe.ProbeError as error:
        st.error(str(error), icon=":material/error:")
    except Exception as error:  # the page keeps working whatever the loss does
        st.error(f"The probe failed: {type(error).__name__}: {error}")

if report is not None:
    fails, warns = len(report.failures), len(report.warnings)
    ui.metrics(
        {
            "Pass": len(report.checks) - fails - warns,
            "Warn": warns,
            "Fail": fails,
            "Seconds": report.seconds,
        },
        helps=content.METRIC_HELPS,
    )
    verdict = st.error if fails else st.warning if warns else st.success
    verdict(report.verdict)
    st.table(figures.checks_table(report), hide_index=True)
    st.caption(content.inputs_caption(report, seed))
    with st.expander("What each check asks"):
        st.markdown("\n".join(f"- `{k}`: {v}" for k, v in content.CHECKS.items()))

if curves is not None:
    st.subheader(content.SWEEP_TITLE)
    if curves.ran.any():
        for column, figure in zip(
            st.columns(2), figures.scale_charts(curves), strict=True
        ):
            with column:
                ui.plot(figure)
        st.caption(content.sweep_caption(curves, outputs))
    else:
        st.caption(content.no_sweep(curves.error))

shown = name if source == "pasted" else target
ui.use_it([probe.assert_sane], content.snippet(shown or "", task, outputs))
