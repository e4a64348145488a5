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
            "wrong one before a triplet stops contributing. Cosines lie in [-1, 1].",
        ),
        ui.Slider(
            "hard_share",
            "Share of hard triplets",
            0.25,
            low=0.0,
            high=1.0,
            step=0.05,
            help="Hard: the wrong answer is nearer the question than the right one.",
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
        "Margin 0: nothing to learn",
        {"margin": 0.0},
        "Once the right answer is nearer than the wrong one, the loss is 0 "
        "and so is its gradient: only the triplets ranked the wrong way round "
        "are active. The model stops improving well-ordered pairs.",
    ),
    ui.Lesson(
        "Margin 2: every triplet active",
        {"margin": 2.0},
        "Cosines lie in [-1, 1], so a margin of 2 can never be met: every "
        "triplet is active and the loss is linear in the margin. Training "
        "never settles.",
    ),
)

TITLE = "Loss as a layer (triplet)"

INTRO = """
Some losses do not fit `loss(y_true, y_pred)`. A retrieval model learns from
**triplets**: a question `q`, its right answer `a⁺` and a wrong answer `a⁻`,
three inputs encoded by two towers. The loss asks the right answer to be nearer
the question, in cosine, than the wrong one by at least a **margin** `m`. Below
are 64 seeded triplets of 8-dimensional embeddings: most easy, some hard (the
wrong answer is the closer one). The last wrong answer is the zero vector, what
an empty answer pools to: its cosine is 0, not NaN.

What to try:
- **Margin 0**: only triplets ranked the wrong way round (the hard ones) are
  active. Every other triplet has a loss of exactly 0 and a gradient of
  exactly 0: the model learns nothing from it.
- **Raise the margin**: the dashed line on the gap histogram moves right and
  more triplets fall left of it; the share of active triplets, the loss and
  the gradient grow. Past the largest gap (named below the histograms) every
  triplet is active and the loss grows linearly with `m`.
- **More hard triplets**: the two cosine distributions overlap and the loss
  stays high even at margin 0.
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


def gap_caption(wrong_order: int, count: int, max_gap: float) -> str:
    """What the gap histogram shows, in the batch's own numbers."""
    return (
        f"{wrong_order} of {count} triplets are ranked the wrong way round "
        "(gap below 0): they are active even at margin 0. The largest gap is "
        f"{ui.format_value(max_gap, 3)}: from any margin above it every triplet "
        "is active."
    )


GRADIENT_CAPTION = (
    "The gradient with respect to the question embedding (the encoder's output). "
    "An inactive triplet's row is exactly 0: `relu` has a zero gradient below its "
    "kink. Gradient descent moves q toward a⁺ and away from a⁻, and only "
    "perpendicular to q (cosine ignores length)."
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

Keras 3 removed `Model.add_loss` on functional models, `Layer.add_metric` and
`metrics_tensors`; `Layer.add_loss` inside `call`, and `keras.metrics` objects
created in a layer's `__init__` and updated in `call`, are what remains (a
model lists the metrics of its layers in `model.metrics`).
"""

MASKED_INTRO = """
A tiny batch of 4 padded target sequences (id 0 is padding) and a model's logits.
The model predicts padding with near certainty, as a model trained without a
mask learns to. The layer reports the loss it adds and its two metrics; beside
them, the same layer with a pad id that never occurs, so every position counts.
**Raise the padding**: the unmasked numbers improve while the model does not.
**Padding 100 %**: the masked loss is 0 with a zero gradient (not NaN) and the
perplexity is 1.
"""

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
training_model, inference_model = lossviz.build_masked_lm_model(vocab_size)
training_model.compile(optimizer="adam")
history = training_model.fit([tokens, targets])
history.history["perplexity"], history.history["masked_accuracy"]"""


TRAIN_INTRO = """
**Train it.** Two tiny models, each trained with the code above. *Triplet*: a
question/answer retrieval toy (questions and answers are bags of words about
two topics each, e.g. "rain tax how" → "umbrella accountant you") trained
through `build_triplet_models` and `IdentityLoss` at the margin chosen above;
after every epoch each held-out question is ranked against every held-out
answer by cosine (recall@1; chance is 1/32), on topic pairs never seen
together in training. *Masked LM*: `build_masked_lm_model` learns to continue
padded counting sequences ("3 5 7 …" on a 12-hour clock); its
`MaskedCrossEntropyLayer` adds the loss and reports perplexity and accuracy
(the first next token of a row cannot be known: the step is not seen yet).
**Train at margin 0, then at 0.5**: at margin 0 the loss on the training
triplets soon reaches 0, their gradient with it, and recall@1 stalls; a larger
margin keeps every triplet pushing. The runs are drawn over each other, and
below them the last run's held-out results.
"""
