"""Multi-label ranking (BP-MLL): the ranking loss, its three forms and its range.

A thin view: controls, then numbers and charts from ``lossviz.multilabel`` and
``lossviz.analysis``. Keras' binary cross-entropy is drawn beside it for
comparison. No loss is computed here.
"""

import numpy as np
import streamlit as st

import ui

# lossviz first: it imports TensorFlow quietly, keras would import it noisily.
from lossviz import analysis, multilabel

# isort: split
import keras

PAGE = "multilabel"
NUM_SAMPLES = 8
LABEL_CHOICES = [2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256]
TIMING_BATCHES = [8, 32, 128]
SWEEP_SCALES = np.arange(1.5, 60.1, 1.5)  # 40 points, 1.5 apart
FORMS = {  # name: (function, how it computes, memory)
    "loop": (multilabel.bpmll_loss_loop, "Python loop over samples", "O(L²) per step"),
    "pairwise": (multilabel.bpmll_loss_pairwise, "[B, L, L] pair tensor", "O(B·L²)"),
    "log space": (multilabel.bpmll_loss, "masked log-sum-exps", "O(B·L)"),
    "factorised": (multilabel.bpmll_loss_factorised, "product of two sums", "O(B·L)"),
}

INTRO = """
BP-MLL (Zhang & Zhou 2006) compares every **positive** label `k` of a sample with
every **negative** label `l` and charges `exp(-(c_k - c_l))`: a pair ranked the
wrong way round costs exponentially more. Labels are rows of a multi-hot
`y_true`; the model's raw scores `c` are logits (no sigmoid).

What to try:
- **Raise the logit scale.** The worst pair differs by up to twice the scale, so
  the loss and its gradient grow like `e^(2·scale)`, where binary cross-entropy
  grows linearly.
- **Samples s0 and s1** have no positive and no negative label respectively: no
  pair exists, so BP-MLL is **0 with a zero gradient**. The model learns
  nothing from them, while cross-entropy still pushes their scores.
- **256 labels, then the scale from 40 to 50:** the factorised product
  `(Σ e^(-c_k))(Σ e^(c_l))` overflows float32 to +Inf a few steps before the
  log-space form, which stays finite until the loss itself passes the float32
  maximum (about 3.4e38, a pair ranked about 88 logits the wrong way). Bound the
  outputs (the paper used tanh) or compute in float64.
- **The timing table:** with a few labels the pairwise form is as fast as the
  log-space one; with 256 labels and a batch of 128 its `[B, L, L]` tensor
  costs it, and the Python loop is slowest everywhere.
"""


@ui.cache_data(show_spinner=False)
def example(num_labels, density, scale, seed):
    return multilabel.example_batch(
        NUM_SAMPLES, num_labels, label_density=density, logit_scale=scale, seed=seed
    )


def bce(y_true):
    return lambda logits: keras.losses.binary_crossentropy(
        y_true, logits, from_logits=True
    )


def bpmll(y_true, form=multilabel.bpmll_loss):
    return lambda logits: form(y_true, logits)


@ui.cache_data(show_spinner=False)
def evaluate(num_labels, density, scale, seed):
    y_true, logits = example(num_labels, density, scale, seed)
    loss, grad = analysis.value_and_grad(bpmll(y_true), logits)
    forms = {
        name: loss
        if form is multilabel.bpmll_loss
        else np.asarray(form(y_true, logits))
        for name, (form, _, _) in FORMS.items()
    }
    return {
        "loss": loss,
        "grad": grad,
        "bce": np.asarray(bce(y_true)(logits)),
        "forms": forms,
    }


@ui.cache_data(show_spinner=False)
def bce_gradient(num_labels, density, scale, seed):
    y_true, logits = example(num_labels, density, scale, seed)
    return analysis.value_and_grad(bce(y_true), logits)[1]


@ui.cache_data(show_spinner="Sweeping the logit scale…")
def scale_sweep(num_labels, density, seed):
    """Batch-mean loss and gradient norm of each loss at every sweep scale.

    The examples of all scales are stacked on a leading axis, so each loss runs
    once for the whole sweep (the losses keep leading axes; scales do not mix).
    """
    batches = [
        multilabel.example_batch(
            NUM_SAMPLES, num_labels, label_density=density, logit_scale=scale, seed=seed
        )
        for scale in SWEEP_SCALES
    ]
    y_true = np.stack([labels for labels, _ in batches])
    logits = np.stack([scores for _, scores in batches])
    losses = {
        "loss": bpmll(y_true),
        "naive": bpmll(y_true, multilabel.bpmll_loss_factorised),
        "bce": bce(y_true),
    }
    curves = {}
    for key, fn in losses.items():
        values, grad = analysis.value_and_grad(fn, logits)
        with np.errstate(invalid="ignore", over="ignore"):
            curves[key] = np.mean(values, axis=1)
            squares = np.square(grad.astype(np.float64))
            curves[f"{key}_grad"] = np.sqrt(np.sum(squares, axis=(1, 2)))
    return curves


@ui.cache_data(show_spinner="Timing the forms…")
def timings(num_labels, batch_size, nonce):
    """Median seconds per call of each form; ``nonce`` forces a re-measure."""
    del nonce
    y_true, logits = multilabel.example_batch(batch_size, num_labels, seed=0)
    return {
        name: analysis.median_time(lambda form=form: form(y_true, logits), repeats=5)
        for name, (form, _, _) in FORMS.items()
    }


@ui.cache_resource(show_spinner=False)
def labels_figure(num_labels, density, seed):
    """The label heatmap; labels do not depend on the logit scale."""
    y_true, _ = example(num_labels, density, 1.0, seed)
    return ui.charts.heatmap(
        y_true,
        x_labels=[str(j) for j in range(num_labels)],
        y_labels=sample_names(y_true),
        title="Labels (1 = positive)",
        x_title="label",
        y_title="sample",
        diverging=False,
    )


def remeasure():
    st.session_state["multilabel_timing_nonce"] = (
        st.session_state.get("multilabel_timing_nonce", 0) + 1
    )


def relative_gap(values, reference):
    """Largest |values - reference| / max(|reference|, 1), for the forms table."""
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(values - reference) / np.maximum(np.abs(reference), 1.0)
    return np.max(gap) if gap.size else 0.0


def sample_names(y_true):
    names = []
    for i, row in enumerate(y_true):
        if not row.any():
            names.append(f"s{i} no positive")
        elif row.all():
            names.append(f"s{i} all positive")
        else:
            names.append(f"s{i}")
    return names


ui.header("Multi-label ranking (BP-MLL)", multilabel.FORMULA, INTRO)

left, middle, right = st.columns(3)
with left:
    scale = ui.slider(
        "Logit scale",
        key="ml_scale",
        value=3.0,
        min_value=0.5,
        max_value=60.0,
        step=0.5,
        help="Logits are drawn uniformly in [-scale, scale]: the worst-ranked pair "
        "is up to twice the scale the wrong way round.",
    )
with middle:
    density = ui.slider(
        "Label density",
        key="ml_density",
        value=0.4,
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        help="Probability that a label is positive. Samples 0 and 1 are always "
        "all-negative and all-positive.",
    )
with right:
    num_labels = ui.select_slider(
        "Number of labels",
        key="ml_labels",
        value=6,
        options=LABEL_CHOICES,
        help="Labels per sample (L). The example has 8 samples.",
    )
ui.reset_button(PAGE)

seed = ui.seed()
y_true, logits = example(num_labels, density, scale, seed)
result = evaluate(num_labels, density, scale, seed)
names = sample_names(y_true)
degenerate = sum(name.endswith("positive") for name in names)

metrics = st.columns(4)
with metrics[0]:
    ui.metric(
        "BP-MLL (batch mean)",
        np.mean(result["loss"]),
        help="Mean of the per-sample losses, as `model.compile(loss=BPMLL())` "
        "reports it (samples without pairs count as 0).",
    )
with metrics[1]:
    ui.metric(
        "Cross-entropy (mean)",
        np.mean(result["bce"]),
        help="`keras.losses.binary_crossentropy(..., from_logits=True)` on the "
        "same logits.",
    )
with metrics[2]:
    ui.metric(
        "Factorised (mean)",
        np.mean(result["forms"]["factorised"]),
        help="The same loss as the product of two sums: equal in exact arithmetic, "
        "but it overflows first.",
    )
with metrics[3]:
    ui.metric(
        "Samples without pairs",
        degenerate,
        help="No positive or no negative label: BP-MLL gives 0 and a zero gradient.",
    )
ui.nonfinite_note("BP-MLL per sample", result["loss"])
ui.nonfinite_note("gradient of BP-MLL", result["grad"])
ui.nonfinite_note("factorised product", result["forms"]["factorised"])

st.subheader("Loss per sample", divider="gray")
ui.plot(
    ui.charts.bars(
        names,
        {"BP-MLL": result["loss"], "binary cross-entropy": result["bce"]},
        title="Loss per sample",
        x_title="sample",
        y_title="loss",
    )
)
if degenerate:
    st.info(
        f"{degenerate} of {NUM_SAMPLES} samples have no positive or no negative "
        "label. BP-MLL averages over (positive, negative) pairs and there are none, "
        "so their loss is 0 and so is their gradient: the rows of the heatmap "
        "below are blank. Binary cross-entropy still trains them.",
        icon=":material/info:",
    )

with ui.secondary("Gradient with respect to the logits", section=True):
    label_names = [str(j) for j in range(num_labels)]
    grad_left, grad_right = st.columns([1, 2])
    with grad_left:
        ui.plot(labels_figure(num_labels, density, seed))
    with grad_right:
        ui.plot(
            ui.charts.heatmap(
                result["grad"],
                x_labels=label_names,
                y_labels=names,
                title="∂ BP-MLL / ∂ logits (positives pushed up, negatives down)",
                x_title="label",
                y_title="sample",
            )
        )
    st.caption(
        "A positive label gets a negative gradient (gradient descent raises its "
        "score), a negative label a positive one. Each row's gradients sum to 0: "
        "BP-MLL only ranks, so shifting a whole row changes nothing."
    )
    show_bce_grad = ui.toggle(
        "Show the cross-entropy gradient too",
        key="ml_bce_grad",
        value=False,
        help="Binary cross-entropy on the same logits pushes every label on its own, "
        "including those of the samples BP-MLL ignores.",
    )
    if show_bce_grad:
        ui.plot(
            ui.charts.heatmap(
                bce_gradient(num_labels, density, scale, seed),
                x_labels=label_names,
                y_labels=names,
                title="∂ binary cross-entropy / ∂ logits",
                x_title="label",
                y_title="sample",
            )
        )

with ui.secondary("Three forms, one number", section=True):
    st.markdown(
        "The Python **loop** reads like the paper, the **pairwise** form builds every "
        "(k, l) difference at once, the **log space** form (`bpmll_loss`) uses the "
        "factorisation through two masked log-sum-exps. The naive **factorised** "
        "product is the fourth column: the same number until it overflows."
    )
    st.latex(multilabel.FORMULAS["log_space"])
    table = {"sample": names}
    for name, values in result["forms"].items():
        table[name] = [ui.format_value(v, digits=7) for v in values]
    st.dataframe(table, hide_index=True)

    timing_left, timing_right = st.columns([2, 1], vertical_alignment="bottom")
    with timing_left:
        timing_batch = ui.select_slider(
            "Batch size for timing",
            key="ml_timing_batch",
            value=8,
            options=TIMING_BATCHES,
            help="Times are measured on a seeded batch of this size with the current "
            "number of labels.",
        )
    with timing_right:
        st.button(
            "Re-measure",
            key="ml_remeasure",
            on_click=remeasure,
            icon=":material/timer:",
            help="Time every form again (median of 5 calls after a warm-up).",
        )
    seconds = timings(
        num_labels, timing_batch, st.session_state.get("multilabel_timing_nonce", 0)
    )
    fastest = seconds["log space"]
    reference = result["forms"]["loop"]
    st.dataframe(
        {
            "form": list(FORMS),
            "how": [how for _, how, _ in FORMS.values()],
            "memory": [memory for _, _, memory in FORMS.values()],
            "median time (ms)": [f"{seconds[name] * 1e3:.3g}" for name in FORMS],
            "× log space": [f"{seconds[name] / fastest:.3g}" for name in FORMS],
            "relative gap to loop": [
                ui.format_value(relative_gap(values, reference), digits=3)
                for values in result["forms"].values()
            ],
        },
        hide_index=True,
    )
    st.caption(
        f"Measured live on this server, eagerly, on a {timing_batch} × {num_labels} "
        "batch (median of 5 calls; other work on the server adds noise); cached "
        "until you press Re-measure. Relative differences up to a few 1e-6 are "
        "float32 rounding: the log-space form rounds the exponent, so its error "
        "grows with log E."
    )

with ui.secondary("Loss and gradient as the logit scale grows", section=True):
    sweep = scale_sweep(num_labels, density, seed)
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(
            ui.charts.line(
                SWEEP_SCALES,
                {
                    "BP-MLL (log space)": sweep["loss"],
                    "BP-MLL (factorised product)": sweep["naive"],
                    "binary cross-entropy": sweep["bce"],
                },
                title="Batch-mean loss",
                x_title="logit scale",
                y_title="loss",
                marker_x=scale,
                log_y=True,
            )
        )
    with curve_right:
        ui.plot(
            ui.charts.line(
                SWEEP_SCALES,
                {
                    "BP-MLL (log space)": sweep["loss_grad"],
                    "BP-MLL (factorised product)": sweep["naive_grad"],
                    "binary cross-entropy": sweep["bce_grad"],
                },
                title="Gradient norm ‖∂ loss / ∂ logits‖",
                x_title="logit scale",
                y_title="gradient norm",
                marker_x=scale,
                log_y=True,
            )
        )
    ui.nonfinite_note("BP-MLL over the sweep", sweep["loss"])
    ui.nonfinite_note("factorised product over the sweep", sweep["naive"])
    st.caption(
        "Same labels and the same draw of logits at every scale; only the scale "
        "changes. The two BP-MLL curves coincide until the factorised product "
        "overflows; the log-space curve goes on until the loss itself passes the "
        "float32 maximum. Crosses on the axis mark values that are not finite."
    )

ui.use_it(
    [multilabel.bpmll_loss, multilabel.BPMLL],
    f"""import keras
import lossviz

model = keras.Sequential([
    keras.Input((num_features,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense({num_labels}),  # raw scores: BP-MLL takes logits
])
model.compile(optimizer="adam", loss=lossviz.BPMLL())
model.fit(x, y_multi_hot)  # y_multi_hot: 0/1, shape [batch, {num_labels}]
scores = model.predict(x)  # rank labels by score; choose a threshold on
                           # validation data (BP-MLL only ranks)
model.save("model.keras")
keras.saving.load_model("model.keras")  # no custom_objects needed""",
)

TRAIN_INTRO = """
**Train it.** A small MLP (one hidden layer of 32 units, 12 logits) learns a
synthetic multi-label task: every sample has about 3 of 12 labels, and its 16
features are a random linear map of its labels plus noise. One run trains with
`lossviz.BPMLL()`, the other with
`keras.losses.BinaryCrossentropy(from_logits=True)`, from the same initial
weights. After every epoch 200 held-out samples are scored with
scikit-learn's `label_ranking_loss` (the share of positive/negative pairs ranked
the wrong way round, what BP-MLL bounds) and `hamming_loss` (the share of wrong
label decisions, a label being predicted when its logit is above 0).

What to notice:
- **Both lower the ranking loss**, and cross-entropy ranks at least as well
  here: BP-MLL's pairwise loss is not needed to learn a ranking (Nam et al.,
  *Large-scale Multi-label Text Classification: Revisiting Neural Networks*,
  2014, came to the same conclusion on text).
- **BP-MLL's Hamming loss at 0 is worse than its ranking.** Adding a constant to a
  sample's logits leaves BP-MLL unchanged (it only ranks), so nothing ties its
  scores to 0; the paper learns a threshold for each sample. The extras below
  the table give the best single threshold on the held-out set for comparison.
"""


def describe_run(run):
    """The finished run's extras: held-out summary and the first samples."""
    examples = run.get("examples") or []
    if not examples:
        return
    summary, rows = examples[0], examples[1:]
    before, after = summary["before"], summary["after"]
    st.markdown(
        f"**{run['label']}** on {summary['num_heldout']} held-out samples: ranking "
        f"loss {ui.format_value(before['ranking_loss'], 3)} before training, "
        f"**{ui.format_value(after['ranking_loss'], 3)}** after. Hamming loss "
        f"**{ui.format_value(after['hamming_loss'], 3)}** at logit > 0 "
        f"({ui.format_value(summary['predicted_per_sample'], 3)} labels predicted "
        f"per sample, {ui.format_value(summary['true_per_sample'], 3)} true); the "
        f"best single threshold ({ui.format_value(summary['best_threshold'], 3)}) "
        f"would give {ui.format_value(summary['hamming_best_threshold'], 3)}, and "
        "predicting no label at all "
        f"{ui.format_value(summary['hamming_no_label'], 3)}. The first held-out "
        "samples:"
    )

    def labels(ids):
        return ", ".join(str(i) for i in ids) or "none"

    st.dataframe(
        [
            {
                "true labels": labels(row["true"]),
                "predicted (logit > 0)": labels(row["predicted"]),
                "ranked first": labels(row["top_ranked"]),
                "ranking loss": ui.format_value(row["ranking_loss"], 3),
            }
            for row in rows
        ],
        hide_index=True,
        width="stretch",
    )


st.markdown(TRAIN_INTRO)
# BP-MLL trains last, so the extras shown below the table (which are the last
# run's) are those of the loss this page is about.
ui.train_panel(
    "multilabel",
    {
        "binary cross-entropy": ("bce", {}),
        "BP-MLL": ("bpmll", {}),
    },
    metrics={
        "loss": "Training loss",
        "ranking_loss": "Held-out ranking loss",
        "hamming_loss": "Held-out Hamming loss (logit > 0)",
    },
    epochs=10,
    describe=describe_run,
)
