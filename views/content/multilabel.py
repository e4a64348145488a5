"""What the "Multi-label ranking (BP-MLL)" page says and offers: its controls,
its lessons and its words. A sentence that states a number or an outcome is
a function of what ``lossviz.explore.multilabel`` computed, passed in by the
page: this module imports no TensorFlow (the landing page reads it)."""

import math

import ui

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
        help="Labels per sample (L) of the example batch.",
    ),
    ui.Toggle(
        "bce_grad", "Show the cross-entropy gradient too", False,
        help="Binary cross-entropy on the same logits pushes every label on its "
        "own, including those of the samples BP-MLL ignores (its gradient norm "
        "per sample drawn beside BP-MLL's in the main chart).",
    ),
    ui.Choice(
        "timing_batch", "Batch size for timing", 8, options=(8, 32, 128),
        help="The timing table (under “Three forms, one number”) is measured on a "
        "seeded batch of this size with the current number of labels.",
    ),
])  # fmt: skip
# The logit scale leads, beside the main chart; the others follow below it.
LEAD = ("logit_scale",)
COLUMNS = [("label_density",), ("num_labels",), ("bce_grad", "timing_batch")]

LESSONS = (
    ui.Lesson(
        "No positive label: 0/0",
        {"label_density": 0.1, "num_labels": 4},
        "Rows with no positive (or no negative) label have no pairs: |Y||Ȳ| = 0, "
        "so the paper's E_i, 1/(|Y||Ȳ|) times an empty sum, is 0/0, and the paper "
        "leaves it undefined. lossviz gives those rows 0 with a gradient of exactly "
        "0: a convention, not the paper's.",
        check="no_pairs",
    ),
    ui.Lesson(
        "Logit scale 46.5: overflow",
        {"logit_scale": 46.5, "num_labels": 256, "label_density": 0.4},
        "The factorised product overflows to +Inf in float32 while the "
        "log-space form, its value and its gradient, stays finite. A few scales "
        "further a sample's loss itself passes the float32 maximum: no float32 "
        "form can hold it (see the sweep).",
        check="overflow",
    ),
)


def _scale(value) -> str:
    return "no scale of the sweep" if value is None else f"a scale of {value:g}"


def _growth(sweep) -> str:
    """How BP-MLL and cross-entropy grow with the scale, from a ``Sweep``."""
    if sweep.widest_gap is None:
        return "No sample has a pair here, so BP-MLL is 0 at every scale."
    gradient = (
        "" if sweep.grad_growth is None
        else f" (its gradient norm by e^{sweep.grad_growth:.2f})"
    )  # fmt: skip
    bce = (
        "" if sweep.bce_growth is None
        else f", where binary cross-entropy grows linearly, by "
        f"{sweep.bce_growth:.2f} per unit"
    )  # fmt: skip
    if sweep.widest_gap <= 0:
        return (
            "Every pair of this draw is ranked the right way (the largest c_l - c_k "
            f"is {sweep.widest_gap:.2f} × the scale), so BP-MLL falls as the scale "
            f"grows{bce}."
        )
    growth = (
        "" if sweep.loss_growth is None
        else "; at the top of the finite range the batch-mean BP-MLL grows by a "
        f"factor e^{sweep.loss_growth:.2f} per unit of scale{gradient}, rising "
        f"toward e^{sweep.widest_gap:.2f} as the worst pair takes over"
    )  # fmt: skip
    return (
        f"The widest wrong-way gap c_l - c_k of this draw is {sweep.widest_gap:.2f} "
        f"× the scale (at most 2){growth}{bce}."
    )


def _overflows(sweep, float32_max: float, log_float32_max: float) -> str:
    """Where the factorised product, the batch mean and a sample's loss
    first overflow in a ``Sweep``."""
    later = [v for v in (sweep.loss_overflow, sweep.sample_overflow) if v is not None]
    product = sweep.factorised_overflow
    longer = (
        " longer" if product is not None and all(v > product for v in later) else ""
    )
    if sweep.sample_overflow is not None and sweep.loss_overflow == (
        sweep.sample_overflow
    ):
        log_space = (
            "its batch mean and a sample's loss itself overflow from "
            f"{_scale(sweep.loss_overflow)}"
        )
    else:
        log_space = (
            f"its batch mean (a float32 sum, as Keras forms it) overflows from "
            f"{_scale(sweep.loss_overflow)}, a sample's loss itself from "
            f"{_scale(sweep.sample_overflow)}"
        )
    return (
        "the factorised product (Σ e^(-c_k))(Σ e^(c_l)) overflows float32 to +Inf "
        f"from {_scale(product)}, while the log-space form stays finite{longer}: "
        f"{log_space}. The float32 maximum is {float32_max:.3g} = "
        f"e^{log_float32_max:.1f}, so a loss past it needs a pair ranked more than "
        f"{log_float32_max:.1f} logits the wrong way"
    )


def _range(sweep) -> str:
    """The scales to try: from below the first overflow to past the last."""
    first = [v for v in (sweep.factorised_overflow,) if v is not None]
    last = [v for v in (sweep.loss_overflow, sweep.sample_overflow) if v is not None]
    if not first or not last:
        return "then raise the scale"
    low = 5 * math.floor((first[0] - 1.5) / 5)
    high = 5 * math.ceil(max(last) / 5)
    return f"then the scale from {low:g} to {high:g}"


def intro(default, many_labels, float32_max: float, log_float32_max: float) -> str:
    """What to try. ``default``: the explore layer's ``Sweep`` at the page's
    default density and label count, ``many_labels`` at the most labels; the
    float32 maximum and its log."""
    return f"""
BP-MLL (Zhang & Zhou 2006) compares every **positive** label `k` of a sample with
every **negative** label `l` and charges `exp(-(c_k - c_l))`: a pair ranked the
wrong way round by a gap `c_l - c_k` costs `e^(c_l - c_k)`. Labels are rows of a
multi-hot `y_true`; the model's raw scores `c` are logits (no sigmoid).

What to try:
- **Raise the logit scale.** Logits are drawn in `[-scale, scale]`, so every gap
  grows with the scale. {_growth(default)} (That is the default example,
  {default.setting.num_labels} labels at density
  {default.setting.label_density:g}; the sweep's caption gives yours.)
- **Samples s0 and s1** have no positive and no negative label respectively: no
  pair exists, `|Y||Ȳ| = 0`, and the paper's `E_i` is 0/0 there, undefined.
  lossviz gives them **0 with a zero gradient**, a convention: the model learns
  nothing from them.
- **{many_labels.setting.num_labels} labels, {_range(many_labels)}:**
  {_overflows(many_labels, float32_max, log_float32_max)}. Bound the outputs
  (the paper used tanh) or compute in float64.
- **The timing table:** change the number of labels and the batch size. The
  pairwise form builds a `[B, L, L]` tensor, the log-space form works in
  `O(B·L)`, and the loop takes one step per sample.
"""


METRIC_HELP = {
    "BP-MLL (batch mean)": "Mean of the per-sample losses, as "
    "`model.compile(loss=BPMLL())` reports it (samples without pairs count as 0).",
    "Cross-entropy (mean)": "`keras.losses.binary_crossentropy(..., "
    "from_logits=True)` on the same logits.",
    "Factorised (mean)": "The same loss as the product of two sums divided by "
    "|Y||Ȳ|: equal in exact arithmetic, but the product is |Y||Ȳ| times the "
    "loss, so it overflows no later than the loss and usually first.",
    "Samples without pairs": "No positive or no negative label: the paper leaves "
    "BP-MLL undefined there (0/0); lossviz gives 0 and a zero gradient.",
}


def without_pairs(point) -> str:
    """The note under the loss chart; ``point``: the explore layer's ``Point``."""
    count, total = point.num_without_pairs, len(point.loss)
    zero = (
        "lossviz gives them 0 by convention, with a gradient of exactly 0 (marked "
        "0 in the chart above)"
        if point.without_pairs_zero
        else "lossviz should give them 0 with a zero gradient, and here it does not"
    )
    moved = point.bce_moves_without_pairs
    bce = (
        "each of them" if moved == count else f"{moved} of them"
    ) + " a non-zero gradient"
    return (
        f"{count} of {total} samples have no positive or no negative label. "
        "BP-MLL averages over (positive, negative) pairs and they have none: the "
        f"paper's E_i is 0/0 there, undefined. {zero}. Binary cross-entropy still "
        f"gives {bce}."
    )


def gradient_caption(point) -> str:
    """The caption beside the labels, from a ``Point``."""
    if point.sign_share is None:
        return "No sample has a (positive, negative) pair here: the gradient is 0."
    if point.sign_share == 1:
        share = "every label in a sample with pairs does"
    else:
        share = f"{point.sign_share:.1%} of the labels in samples with pairs do, " + (
            "the others get exactly 0 (their terms underflow) or NaN"
            if point.wrong_sign_count == 0
            else f"{point.wrong_sign_count} the opposite sign"
        )
    sums = (
        "here a gradient is not finite, so neither is its row's sum"
        if not math.isfinite(point.row_sum_gap)
        else f"here to within {point.row_sum_gap:.1g} of the row's absolute sum "
        "(float32 rounding)"
    )
    return (
        "BP-MLL's gradient ranks these labels: a positive label gets a negative "
        "gradient (gradient descent raises its score), a negative label a positive "
        f"one: at this scale {share}. Each row's gradients "
        f"sum to 0 in exact arithmetic, {sums}. BP-MLL only ranks, so shifting a "
        "whole row changes nothing. The main chart plays each sample's gradient "
        "norm as the scale grows."
    )


FORMS_TEXT = (
    "The Python **loop** reads like the paper, the **pairwise** form builds every "
    "(k, l) difference at once, the **log space** form (`bpmll_loss`) uses the "
    "factorisation through two masked log-sum-exps. The naive **factorised** "
    "product is the fourth column: the same number in exact arithmetic, "
    "|Y||Ȳ| times too large before its division, so it overflows first."
)

FORM_NOTES = {  # form: (how it computes, memory)
    "loop": ("Python loop over samples", "O(L²) per step"),
    "pairwise": ("[B, L, L] pair tensor", "O(B·L²)"),
    "log space": ("masked log-sum-exps", "O(B·L)"),
    "factorised": ("product of two sums", "O(B·L)"),
}


def remeasure_help(repeats: int) -> str:
    return f"Time every form again (median of {repeats} calls after a warm-up)."


def timing_caption(timings, point) -> str:
    """``timings``: the explore layer's ``Timings``; ``point``: its ``Point``
    (the relative gaps in the last column)."""
    batch, labels = timings.setting.timing_batch, timings.setting.num_labels
    if not math.isfinite(point.form_gaps["loop"]):
        gaps = (
            "The loop, the reference of the last column, is not finite on the "
            "example at this scale, so no gap to it is."
        )
    elif point.largest_finite_gap == 0:
        gaps = "Every form gives exactly the loop's numbers on the example above."
    else:
        logs = (
            "" if point.largest_log_loss is None
            else f", here |log E| up to {point.largest_log_loss:.3g}"
        )  # fmt: skip
        gaps = (
            "The last column is each form's largest relative gap to the loop on the "
            f"example above: finite gaps are at most {point.largest_finite_gap:.2g}, "
            "float32 rounding. The log-space form rounds the exponent log E"
            f"{logs}, so its gap grows with |log E|."
        )
    return (
        f"Measured live on this server, eagerly, on a {batch} × {labels} batch "
        f"(median of {timings.repeats} calls; other work on the server adds noise); "
        f"cached until you press Re-measure. Here the fastest form is "
        f"“{timings.fastest}”, the slowest “{timings.slowest}” "
        f"({timings.relative[timings.slowest]:.3g} × the log-space form's time). "
        + gaps
    )


def _overflow(scale, last: float) -> str:
    if scale is None:
        return f"stays finite up to a scale of {last:g}"
    return f"overflows from a scale of {scale:g}"


def sweep_caption(sweep) -> str:
    """The caption under the sweep charts, from a ``Sweep``."""
    last = sweep.scales[-1]
    return (
        "Same labels and the same draw of logits at every scale; only the scale "
        "changes. The two BP-MLL curves coincide where both are finite (relative "
        f"gap at most {sweep.curves_gap:.1g}); the log-space curve is finite until "
        "its batch mean, a float32 sum, passes the float32 maximum. Crosses on the "
        "axis mark values that are not finite. Here the factorised product "
        f"{_overflow(sweep.factorised_overflow, last)}"
        f"{'' if sweep.factorised_overflow is None else ' (shaded)'}, the "
        f"log-space batch mean {_overflow(sweep.loss_overflow, last)}, a sample's "
        f"loss itself {_overflow(sweep.sample_overflow, last)}. " + _growth(sweep)
    )


def descent_caption(descent) -> str:
    """Under the chart of the flipped sign; ``descent``: the attempts module's
    ``FlippedDescent``."""
    flipped, fix = descent.flipped, descent.fix
    return (
        f"Plain SGD on the logits of the attempts' batch, {descent.steps} steps at "
        f"a learning rate of {descent.learning_rate:g}, from the same start. The "
        f"flipped loss falls {flipped.loss[0]:.3g} → {flipped.loss[-1]:.3g} while "
        f"the pairs ranked right fall {flipped.ranking[0]:.0%} → "
        f"{flipped.ranking[-1]:.0%}; lossviz.bpmll_loss falls {fix.loss[0]:.3g} → "
        f"{fix.loss[-1]:.3g} and its pairs ranked right rise to "
        f"{fix.ranking[-1]:.0%}."
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


def train_intro(facts) -> str:
    """``facts``: the explore layer's ``TrainFacts``."""
    return f"""
**Train it.** A small MLP (one hidden layer of {facts.hidden_units} units,
{facts.num_labels} logits) learns a synthetic multi-label task: each label is
positive with probability {facts.label_density:g} (a sample drawn without any
gets one), so a sample has {facts.labels_per_sample:.2f} of {facts.num_labels} labels
on average, and its {facts.num_features} features are a random linear map of its
labels plus noise. One run trains with `lossviz.BPMLL()`, the other with
`keras.losses.BinaryCrossentropy(from_logits=True)`, from the same initial
weights. After every epoch {facts.num_heldout} held-out samples are scored with
scikit-learn's `label_ranking_loss` (the share of positive/negative pairs ranked
the wrong way round, what BP-MLL bounds) and `hamming_loss` (the share of wrong
label decisions, a label being predicted when its logit is above
{facts.threshold:g}).

What to compare:
- **The held-out ranking loss of the two runs.** BP-MLL minimises a bound on it,
  cross-entropy does not; yet Nam et al. (*Large-scale Multi-label Text
  Classification: Revisiting Neural Networks*, 2014) showed on text that
  cross-entropy can replace BP-MLL's pairwise loss.
- **BP-MLL's Hamming loss at {facts.threshold:g}.** Adding a constant to a
  sample's logits leaves BP-MLL unchanged (it only ranks), so nothing ties its
  scores to {facts.threshold:g}; the paper learns a threshold for each sample. The
  summary below the table gives the best single threshold on the held-out set
  for comparison.
"""
