"""What the "Multi-label ranking (BP-MLL)" page says and offers: its controls,
its lessons and its words."""

import ui

# Every control is drawn at the top of the page, above the first number:
# predict-then-reveal compares the controls drawn so far, so a control drawn
# further down would keep the numbers above it hidden.
CONTROLS = ui.Controls("multilabel", [
    ui.Slider(
        "logit_scale", "Logit scale", 3.0, low=0.5, high=60.0, step=0.5,
        help="Logits are drawn uniformly in [-scale, scale]: the worst-ranked pair "
        "is up to twice the scale the wrong way round.",
    ),
    ui.Slider(
        "label_density", "Label density", 0.4, low=0.0, high=1.0, step=0.05,
        help="Probability that a label is positive. Samples 0 and 1 are always "
        "all-negative and all-positive.",
    ),
    ui.Choice(
        "num_labels", "Number of labels", 6,
        options=(2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256),
        help="Labels per sample (L). The example has 8 samples.",
    ),
    ui.Toggle(
        "bce_grad", "Show the cross-entropy gradient too", False,
        help="Binary cross-entropy on the same logits pushes every label on its "
        "own, including those of the samples BP-MLL ignores (drawn below the "
        "BP-MLL gradient).",
    ),
    ui.Choice(
        "timing_batch", "Batch size for timing", 8, options=(8, 32, 128),
        help="The timing table (under “Three forms, one number”) is measured on a "
        "seeded batch of this size with the current number of labels.",
    ),
])  # fmt: skip
COLUMNS = [("logit_scale",), ("label_density",), ("num_labels",),
           ("bce_grad", "timing_batch")]  # fmt: skip

LESSONS = (
    ui.Lesson(
        "No positive label: 0/0",
        {"label_density": 0.1, "num_labels": 4},
        "Rows with no positive (or no negative) label have no pairs: the "
        "textbook 1/(|Y||Ȳ|) is 0/0. lossviz gives those rows 0 with a zero "
        "gradient, as the paper intends.",
        check="no_pairs",
    ),
    ui.Lesson(
        "Logit scale 46.5: overflow",
        {"logit_scale": 46.5, "num_labels": 256, "label_density": 0.4},
        "The factorised product overflows to +Inf in float32 while the "
        "log-space form, its value and its gradient, stays finite. A few steps "
        "further the loss itself passes the float32 maximum: no float32 form "
        "can hold it (see the sweep).",
        check="overflow",
    ),
)

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

METRIC_HELP = {
    "BP-MLL (batch mean)": "Mean of the per-sample losses, as "
    "`model.compile(loss=BPMLL())` reports it (samples without pairs count as 0).",
    "Cross-entropy (mean)": "`keras.losses.binary_crossentropy(..., "
    "from_logits=True)` on the same logits.",
    "Factorised (mean)": "The same loss as the product of two sums: equal in exact "
    "arithmetic, but it overflows first.",
    "Samples without pairs": "No positive or no negative label: BP-MLL gives 0 and "
    "a zero gradient.",
}


def without_pairs(count: int, total: int) -> str:
    return (
        f"{count} of {total} samples have no positive or no negative label. "
        "BP-MLL averages over (positive, negative) pairs and there are none, so "
        "their loss is 0 and so is their gradient: the rows of the heatmap below "
        "are blank. Binary cross-entropy still trains them."
    )


GRADIENT_CAPTION = (
    "A positive label gets a negative gradient (gradient descent raises its "
    "score), a negative label a positive one. Each row's gradients sum to 0: "
    "BP-MLL only ranks, so shifting a whole row changes nothing."
)

FORMS_TEXT = (
    "The Python **loop** reads like the paper, the **pairwise** form builds every "
    "(k, l) difference at once, the **log space** form (`bpmll_loss`) uses the "
    "factorisation through two masked log-sum-exps. The naive **factorised** "
    "product is the fourth column: the same number until it overflows."
)

FORM_NOTES = {  # form: (how it computes, memory)
    "loop": ("Python loop over samples", "O(L²) per step"),
    "pairwise": ("[B, L, L] pair tensor", "O(B·L²)"),
    "log space": ("masked log-sum-exps", "O(B·L)"),
    "factorised": ("product of two sums", "O(B·L)"),
}


def remeasure_help(repeats: int) -> str:
    return f"Time every form again (median of {repeats} calls after a warm-up)."


def timing_caption(timings) -> str:
    """``timings``: the explore layer's ``Timings``."""
    batch, labels = timings.setting.timing_batch, timings.setting.num_labels
    return (
        f"Measured live on this server, eagerly, on a {batch} × {labels} batch "
        f"(median of {timings.repeats} calls; other work on the server adds noise); "
        "cached until you press Re-measure. Relative differences up to a few 1e-6 "
        "are float32 rounding: the log-space form rounds the exponent, so its "
        "error grows with log E."
    )


def _overflow(scale, last: float) -> str:
    if scale is None:
        return f"stays finite up to a scale of {last:g}"
    return f"overflows from a scale of {scale:g}"


def sweep_caption(factorised_overflow, loss_overflow, last: float) -> str:
    return (
        "Same labels and the same draw of logits at every scale; only the scale "
        "changes. The two BP-MLL curves coincide until the factorised product "
        "overflows; the log-space curve goes on until the loss itself passes the "
        "float32 maximum. Crosses on the axis mark values that are not finite. "
        f"Here the factorised product {_overflow(factorised_overflow, last)} "
        f"(shaded), the log-space loss {_overflow(loss_overflow, last)}."
    )


def snippet(num_labels: int) -> str:
    return f"""import keras
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
keras.saving.load_model("model.keras")  # no custom_objects needed"""


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
  scores to 0; the paper learns a threshold for each sample. The summary below
  the table gives the best single threshold on the held-out set for comparison.
"""
