"""Words and controls of the "Loss as a layer (triplet)" page.

Imports ``ui`` only: the landing page reads the controls and lessons before
TensorFlow loads.
"""

import ui

CONTROLS = ui.Controls(
    "triplet",
    [
        ui.Slider(
            "margin",
            "Margin m",
            param=True,
            help="How much nearer (in cosine) the right answer must be than the "
            "wrong one before a triplet stops contributing. Cosines lie in "
            "[-1, 1], so the gap cos(q, a⁺) − cos(q, a⁻) lies in [-2, 2].",
        ),
        ui.Slider(
            "hard_share",
            "Share of hard triplets",
            0.25,
            low=0.0,
            high=1.0,
            step=0.05,
            help="Hard: the wrong answer is drawn nearer the question than the "
            "right one, so most hard triplets are ranked the wrong way round (the "
            "caption under the cosines counts them).",
        ),
        ui.Slider(
            "pad_share",
            "Padding share",
            0.3,
            low=0.0,
            high=1.0,
            step=0.05,
            help="Share of the positions that are padding (id 0).",
        ),
        ui.Slider(
            "logit_scale",
            "Model confidence",
            2.0,
            low=0.0,
            high=6.0,
            step=0.5,
            help="Added to the logit of the right token at every real position.",
        ),
    ],
)
# The page draws them in two places: the triplet controls at the top, the
# token batch's inside the add_loss section.
TRIPLET_CONTROLS = ui.Controls("triplet", CONTROLS.items[:2])
LAYER_CONTROLS = ui.Controls("triplet", CONTROLS.items[2:])

LESSONS = (
    ui.Lesson(
        "Margin 0: nothing to learn once ranked right",
        {"margin": 0.0},
        "At margin 0 a triplet is active only while it is ranked the wrong way "
        "round (gap below 0). Once the right answer is nearer than the wrong "
        "one, its loss is 0 and its gradient exactly 0: nothing pushes the "
        "model to widen that gap.",
        check="only_wrong_order_active",
    ),
    ui.Lesson(
        "Margin 2: every triplet active",
        {"margin": 2.0},
        "The gap cos(q, a⁺) − cos(q, a⁻) lies in [-2, 2], so a margin of 2 is "
        "met only by a perfect triplet (a⁺ along q, a⁻ opposite it). Every gap "
        "here is below 2: every triplet is active, none has a zero gradient, "
        "and the mean loss is m minus the mean gap, growing one for one with m.",
        check="every_triplet_active",
    ),
    ui.Lesson(
        "Margin 0.5 vs 0: training",
        {"margin": 0.5},
        "Trained as the Train panel does by default, a run at margin 0 drives "
        "its training loss to nearly 0, since a triplet ranked right stops "
        "contributing, and ranks held-out answers far worse (recall@1) than a "
        "run at this margin. Press Train at margin 0, then here, to watch both.",
        check="margin_trains",
    ),
)

TITLE = "Loss as a layer (triplet)"


def intro(facts) -> str:
    """What the page shows and what to try, in ``explore.page_facts``' numbers."""
    if facts.all_active_from is None:
        on_slider = f"though not on the slider, which ends at {facts.margin_high:g}"
    else:
        on_slider = (
            f"from m = {facts.all_active_from:g} on the slider, which goes to "
            f"{facts.margin_high:g}"
        )
    return f"""
Some losses do not fit `loss(y_true, y_pred)`. A retrieval model learns from
**triplets**: a question `q`, its right answer `a⁺` and a wrong answer `a⁻`,
three inputs encoded by two towers. The loss asks the right answer to be nearer
the question, in cosine, than the wrong one by at least a **margin** `m`. Below
are {facts.num_triplets} seeded triplets of {facts.dim}-dimensional embeddings:
easy ones, and as many hard ones (the wrong answer drawn nearer the question)
as the share below asks. The last wrong answer is the zero vector, what an
empty answer pools to: its cosine is {ui.format_value(facts.zero_answer_cosine)},
not NaN.

What to try:
- **Margin 0**: only the triplets ranked the wrong way round (gap below 0) are
  active. Every other triplet has a loss of exactly 0 and a gradient of
  exactly 0: the model learns nothing more from it.
- **Raise the margin**, or press **Play** on the chart: the dashed line on
  the gap histogram moves right and more triplets fall left of it, turning
  active; the share of active triplets, the loss and the gradient grow.
  Past the largest gap ({ui.format_value(facts.max_gap, 3)} with the default share of
  {facts.hard_share:g}; the caption under the cosines names it for
  yours) every triplet is active, {on_slider}; from there the mean loss grows
  one for one with `m`.
- **More hard triplets**: more triplets are ranked the wrong way round, and
  the loss at margin 0 grows with their share.
"""


METRIC_HELP = {
    "Triplet loss, batch mean": "What `compile(loss=IdentityLoss())` minimises: "
    "the mean of the per-triplet losses the model outputs.",
    "Share of active triplets": "Triplets whose loss is above 0. Only they carry "
    "a gradient.",
    "‖∂L/∂q‖ over the batch": "Norm of the gradient of the summed loss with "
    "respect to every question embedding.",
    "Triplets with zero gradient": "Inactive triplets: their gradient is exactly "
    "0, not just small.",
}

ANSWERS_HEADING = "How near are the answers?"
GRADIENT_SECTION = "Only active triplets carry a gradient"
SWEEP_SECTION = "Loss, active share and gradient as the margin grows"
LAYER_SECTION = "A loss added from inside a layer"


def gap_caption(batch) -> str:
    """The gaps of the batch (drawn in the Play chart), in its own numbers
    (``explore.Triplets``)."""
    count, hard = len(batch.gap), int(batch.hard.sum())
    easy_wrong = batch.wrong_order - batch.hard_wrong_order
    return (
        f"{batch.wrong_order} of {count} triplets are ranked the wrong way round "
        f"(gap below 0; {batch.hard_wrong_order} of the {hard} hard ones and "
        f"{easy_wrong} of the {count - hard} easy ones): they are active even at "
        f"margin 0. The largest gap is {ui.format_value(batch.max_gap, 3)}: from "
        "any margin above it every triplet is active."
    )


GRADIENT_CAPTION = (
    "The gradient with respect to the question embedding (the encoder's output), "
    "as each triplet gets it while active: the margin does not change it, it only "
    "switches it on (once m passes the triplet's gap) or off. An inactive "
    "triplet's row is exactly 0: `relu` has a zero gradient below its kink. An "
    "active triplet's descent step, −∂L/∂q, is the part of â⁺ − â⁻ (the answers' "
    "unit vectors; a zero answer counts as 0) perpendicular to q, over ‖q‖: it "
    "turns q toward a⁺ and away from a⁻, and to first order leaves its length "
    "alone (cosine ignores length)."
)


def sweep_caption(all_active_from: float | None) -> str:
    """Where, on the margin grid, every triplet is active."""
    if all_active_from is None:
        return "Within the slider's range some triplet stays inactive."
    return (
        f"From m = {all_active_from:g} on the grid every triplet is active: the "
        "active share stays at 1, the gradient stops changing and the mean loss "
        "grows by as much as the margin."
    )


KERAS3_WAY = """
**The Keras 3 way.** A loss that needs more than `(y_true, y_pred)` is computed
*inside* the model:

1. **The loss is the output.** `CosineTripletLossLayer` outputs the per-sample
   loss; the training model is compiled with `IdentityLoss()`, whose value is
   `y_pred` itself (pass zeros as `y`). Separate question and answer encoder
   models share its weights and are what you use to rank answers.
2. **The loss is added by a layer.** `MaskedCrossEntropyLayer` takes the
   targets as a second *input*, calls `self.add_loss(...)` in `call` and
   updates two metric objects it owns; compile with no `loss` and `fit(x=[tokens,
   targets])` with no `y`. `fit` then reports `loss`, `perplexity` and
   `masked_accuracy`.

The Keras 2 ways fail in Keras 3 (each is run live under *The original attempt*
below): `Model.add_loss` on a functional model and `Layer.add_metric` raise
`NotImplementedError`, `model.metrics_tensors` is gone, and
`model.metrics_names.append(...)` runs but is lost, as the list is rebuilt from
the metric objects on every read. What remains is `Layer.add_loss` inside
`call`, and `keras.metrics` objects created in a layer's `__init__` and updated
in `call` (a model lists the metrics of its layers in `model.metrics`).
"""


def masked_intro(facts) -> str:
    """The token batch of the add_loss section (``explore.layer_facts``)."""
    padding_only = facts.all_padding
    return f"""
A tiny batch of {facts.batch_size} padded target sequences of {facts.length}
positions over {facts.num_classes} ids (id {facts.pad_id} is padding) and a
model's logits, which predict padding with near certainty at every padded
position (the caption below gives the smallest probability). The layer reports
the loss it adds and its two metrics; beside them, the same layer with a pad id
that never occurs, so every position counts. **Raise the padding**: the unmasked
loss falls and its accuracy rises, since padding is easy; the masked numbers
count the real tokens only. **Padding 100 %**: the masked loss is
{ui.format_value(padding_only.loss)}, its gradient has norm
{ui.format_value(padding_only.grad_norm)} (not NaN), and the perplexity is
{ui.format_value(padding_only.perplexity)}.
"""


def layer_caption(tokens) -> str:
    """What the padding does to the two layers' numbers (``explore.TokenBatch``)."""
    masked, unmasked = tokens.masked, tokens.unmasked
    if not tokens.padded:
        return (
            "No position is padding: both layers count the same "
            f"{masked.tokens} tokens."
        )
    if not masked.tokens:
        return (
            f"Every position is padding: the masked layer adds a loss of "
            f"{ui.format_value(masked.loss)} with a gradient of norm "
            f"{ui.format_value(masked.grad_norm)} and reports a perplexity of "
            f"{ui.format_value(masked.perplexity)}; unmasked, the loss over the "
            f"{unmasked.tokens} padding positions is {ui.format_value(unmasked.loss)}."
        )
    return (
        f"At the {tokens.padded} padded positions the logits give padding a "
        f"probability of at least {ui.format_value(tokens.pad_probability, 3)}: "
        f"counted, they take the loss from {ui.format_value(masked.loss)} (real "
        f"tokens only) to {ui.format_value(unmasked.loss)} and the accuracy from "
        f"{ui.format_value(masked.masked_accuracy, 3)} to "
        f"{ui.format_value(unmasked.masked_accuracy, 3)}."
    )


LAYER_TITLES = {
    "masked": "MaskedCrossEntropyLayer (pad_id=0)",
    "unmasked": "Same layer, no mask (pad_id=-1)",
}


def layer_title(which: str, tokens: int) -> str:
    return f"**{LAYER_TITLES[which]}**: {tokens} tokens count"


LAYER_HELP = {
    "loss": "The value the layer passes to `self.add_loss`: the cross-entropy "
    "averaged over the tokens that count.",
    "perplexity": "exp of the token-mean cross-entropy, from the layer's own metric.",
    "masked_accuracy": "Share of counted tokens whose argmax is the target.",
}


def snippet(margin: float) -> str:
    """The "Use it in your model" code, at the page's margin."""
    return f"""import numpy as np
import keras
import lossviz

# 1. The loss is the output: train on the loss, rank with the encoders.
model, question_encoder, answer_encoder = lossviz.build_triplet_models(
    vocab_size, embed_dim=64, max_len=max_len, margin={margin:g})
model.compile(optimizer="adam", loss=lossviz.IdentityLoss())
model.fit([questions, right_answers, wrong_answers], np.zeros(len(questions)))
q = question_encoder.predict(questions)   # rank answers by
a = answer_encoder.predict(answers)       # cosine(q, a)
model.save("triplet.keras")  # encoders: model.get_layer("question_encoder")

# 2. The loss is added by a layer: targets are an input, no y in fit.
training_model, inference_model = lossviz.build_masked_lm_model(
    vocab_size, max_len=max_len)
training_model.compile(optimizer="adam")
history = training_model.fit([tokens, targets])
history.history["perplexity"], history.history["masked_accuracy"]"""


def train_intro(facts) -> str:
    """What the Train panel runs (``explore.TRAIN_FACTS``)."""
    return f"""
**Train it.** Two tiny models, each trained with the code above. *Triplet*: a
question/answer retrieval toy (questions and answers are bags of words about
{facts.topics_per_pair} topics each, e.g. "{facts.example_question}" →
"{facts.example_answer}") trained through `build_triplet_models` and
`IdentityLoss` at the margin chosen above; after every epoch each of the
{facts.heldout_answers} held-out questions is ranked against every held-out
answer by cosine (recall@1; chance is 1/{facts.heldout_answers}), on topic
pairs never seen together in training. *Masked LM*: `build_masked_lm_model`
learns to continue padded counting sequences ("{facts.example_sequence} …" on
a {facts.clock}-hour clock); its `MaskedCrossEntropyLayer` adds the loss and
reports perplexity and accuracy (the first next token of a row cannot be
known: the step is not seen yet). **Train at margin 0, then at 0.5**: the
lesson *{LESSONS[2].title}* above runs both and states what happens. The runs
are drawn over each other, and below them the last run's held-out results.
"""
