"""The words of the "Sequence masking and class weights" page: its controls,
lessons, intro, captions, help texts and the snippet to copy."""

import ui
from ui.figures.sequence import LOSS_LABELS

# The batch's sizes and special ids, as lossviz.explore.sequence has them
# (NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, START_ID, END_ID; a test keeps them
# equal): the help texts below name them.
NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, START_ID, END_ID = 6, 10, 8, 1, 2

PAD_IDS = {0: "0 (its own class)", 7: "7 (the last class)", -1: "-1 (not a class)"}
BY_HAND, FROM_DATA = "by hand", "from data"
PADDING, END_WEIGHT = "padding share", "end-token weight"

CONTROLS = ui.Controls(
    "sequence",
    [
        ui.Slider(
            "mask_ratio",
            "Padding share",
            0.3,
            low=0.0,
            high=1.0,
            step=0.05,
            help="Share of the 6 × 10 target steps that are padding. Rows are "
            "padded from the end, at different speeds, so their lengths differ.",
        ),
        ui.Choice(
            "pad_id",
            "Pad id",
            0,
            param=True,
            options=tuple(PAD_IDS),
            widget="selectbox",
            format_func=PAD_IDS.get,
            help="The label used for padding, given to the loss as `pad_id`. -1 "
            "is a sentinel outside the 8 classes (as Keras' `ignore_class=-1`).",
        ),
        ui.Choice(
            "end_mode",
            "End-token weight",
            BY_HAND,
            options=(BY_HAND, FROM_DATA),
            widget="radio",
            horizontal=True,
            help="From data: `end_token_class_weights(y_true, 8, end_id=2, "
            "pad_id=pad_id)` on this batch, the mean count of the other tokens "
            "over the count of end tokens. By hand: the slider below.",
        ),
        ui.Slider(
            "end_weight",
            "End-token weight (by hand)",
            1.0,
            disabled_when=lambda drawn: drawn.get("end_mode") == FROM_DATA,
            low=0.0,
            high=5.0,
            step=0.1,
            help="`class_weights[2]`; every other class keeps weight 1. Read only "
            "with the end-token weight set by hand.",
        ),
        ui.Slider(
            "end_bias",
            "Model's lean toward the end token",
            2.5,
            low=0.0,
            high=8.0,
            step=0.5,
            help="Logit added to the end token at every step. The true token gets "
            "+1.5, on top of unit Gaussian noise.",
        ),
        ui.Choice(
            "sweep",
            "Sweep",
            PADDING,
            options=(PADDING, END_WEIGHT),
            widget="radio",
            horizontal=True,
            help="The parameter on the x axis of the curves at the bottom.",
        ),
    ],
)
# One column each, as the page lays them out.
COLUMNS = (("mask_ratio", "pad_id"), ("end_mode", "end_weight"), ("end_bias", "sweep"))

# Drawn in the gradient section, under the same prefix.
GRADIENT = ui.Controls(
    "sequence",
    [
        ui.Choice(
            "grad_of",
            "Gradient of",
            "ours",
            options=tuple(LOSS_LABELS),
            widget="selectbox",
            format_func=LOSS_LABELS.get,
            help="The batch loss whose gradient with respect to the logits is "
            "drawn.",
        )
    ],
)

LESSONS = (
    ui.Lesson(
        "No mask: end token wins",
        {"mask_ratio": 0.6, "end_mode": BY_HAND, "end_weight": 1.0},
        "Most steps are padding. Without the mask the loss rewards predicting "
        "padding/end everywhere: press Train and look at the unmasked run's "
        "decoded predictions (only the end token).",
    ),
    ui.Lesson(
        "Mask + end weight: fixed",
        {"mask_ratio": 0.6, "end_mode": FROM_DATA},
        "The mask removes padding from the loss and the end-token weight "
        "(computed from the data) stops the frequent end token dominating: "
        "the masked run learns the sequence.",
    ),
)

INTRO = """
A seq2seq decoder predicts one token per step; the targets are padded to the
longest sequence with a **pad id**. Padded steps must not count, and the **end
token** (one per sequence, so rare) often gets a class weight. The model here
"predicts mostly the end token": its logits lean toward it at every step.

What to try:
- **Raise the padding share.** Our per-sequence mean and Keras' token mean stay
  near the loss of the real tokens; the `sample_weight=mask` loss sinks toward 0
  because Keras' default reduction divides by *every* step, padding included.
  The unmasked loss drops too: padding is easy to predict and dilutes the loss.
- **Compare the two masked means.** Ours averages each sequence, then the batch:
  a short sequence weighs as much as a long one. Keras averages all non-pad
  tokens of the batch. They agree when all sequences have the same length.
- **End-token weight**: raise it and watch the push on the last step of each
  sequence; "from data" balances the end token against the other tokens.
- **Padding at 100 %**: the masked losses are 0 with a zero gradient, not NaN.
"""

MAIN_SECTION = "One batch, four ways to average it"
GRADIENT_SECTION = "Where the gradient pushes"
PER_SEQUENCE_SECTION = "Loss per sequence"


def sweep_section(over: str) -> str:
    return f"Loss and gradient as the {over} changes"


# The first row of metrics: each loss against ours.
LOSS_METRICS = {
    "ours": "Per-sequence mean",
    "token": "Keras token mean",
    "trap": "sample_weight=mask",
    "unmasked": "Unmasked",
}
HELPS = {
    "Per-sequence mean": "Ours: what `MaskedSparseCategoricalCrossentropy(pad_id, "
    "class_weights)` reports on this batch, the mean over sequences of each "
    "sequence's mean over its non-pad steps.",
    "Keras token mean": "Every weighted token loss of the batch over the number "
    "of non-pad tokens: Keras' own masked reduction. With all weights 1 it is "
    "what `SparseCategoricalCrossentropy(from_logits=True, ignore_class=pad_id)` "
    "gives (the tests check it against Keras). Delta: against ours.",
    "sample_weight=mask": "The trap: `SparseCategoricalCrossentropy("
    "from_logits=True)(y, logits, sample_weight=mask)`. Padding is zeroed but "
    "still counted in the denominator (all 6 × 10 steps). "
    '`reduction="mean_with_sample_weight"` divides by the mask\'s sum instead. '
    "Delta: against ours.",
    "Unmasked": "The same per-sequence mean with no mask (`pad_id=None`): "
    "padding counts as tokens to predict. Delta: against ours.",
    "Perplexity": "exp(mean cross-entropy over the non-pad tokens), without "
    "class weights. A uniform guess over 8 classes gives 8.",
    "Masked accuracy": "Share of non-pad tokens whose argmax is the label.",
    "Special-token MAE": "`special_token_mae(one_hot(y), softmax(logits), "
    "start_id=1, end_id=2)` averaged over all steps: the MAE over classes, "
    "forgiven (0) where a start or end token is predicted right. Delta: against "
    "`keras.losses.mean_absolute_error`.",
}
NO_UNMASKED_HELP = (
    "Pad id -1 is not one of the 8 classes: there is nothing to predict under "
    "padding, so only a masked loss exists."
)


def end_weight_help(end_mode: str) -> str:
    where = "computed from this batch" if end_mode == FROM_DATA else "set by hand"
    return f"`class_weights[2]` in use ({where})."


ALL_PADDING = (
    "Every row is padding only: the masked losses are 0 with a zero gradient "
    "(`divide_no_nan` on a count of 0), perplexity is exp(0) = 1 and the "
    "accuracy is 0, none of them NaN."
)

CLASS_WEIGHT_TITLE = "Why not `class_weight=` in `model.fit`?"
CLASS_WEIGHT_NOTE = """
Keras 3's `model.fit(..., class_weight={...})` turns the class weights into one
weight **per sample**. With integer targets `[batch, time]` it reads the last
axis as one-hot scores and takes its argmax, so every *sequence* gets the weight
of the class whose id equals the **position of its largest token id**. There is
no error; the weighting is simply not what was asked for. Pass the weights to
the loss instead, `MaskedSparseCategoricalCrossentropy(pad_id, class_weights=w)`,
or pass a temporal `sample_weight = mask * w[y]` of shape `[batch, time]` to
`SparseCategoricalCrossentropy(from_logits=True,
reduction="mean_with_sample_weight")`, which divides by the sum of the weights
rather than by every step (with all weights 1 that is the token mean).
"""

NO_UNMASKED_GRADIENT = "There is no unmasked loss with pad id -1: showing ours."
GRADIENT_CAPTION = (
    "Targets: S = start, E = end, · = padding. With a mask the padded steps get "
    "exactly zero gradient. Each step of sequence b carries a share "
    "1/(6 · len_b) of the per-sequence mean, so short sequences push harder per "
    "step; 1/(non-pad tokens) of the token mean, the same for every step; and "
    "1/(6 · 10) of `sample_weight=mask`, smaller the more padding there is. The "
    "end weight scales the push on the last step of each sequence."
)
SWEEP_CAPTION = (
    "Same seed at every point. Over the padding share, rows are cut shorter from "
    "their end (the end token moves with the cut) while the noise in the logits "
    "stays the same; over the end weight the batch stays as it is. Near 100 % "
    "padding the rows left are mostly start and end tokens, which this model "
    "predicts well, so the masked means fall too; they reach 0 only when no "
    "token is left."
)


def snippet(pad_id: int) -> str:
    """The code to copy, with the page's pad id."""
    return f"""import keras
import lossviz
from lossviz.sequence import end_token_class_weights

# y_train: int targets [batch, time], padded with {pad_id}; the decoder ends with
# a linear Dense({NUM_CLASSES}) (logits, no softmax).
weights = end_token_class_weights(
    y_train, {NUM_CLASSES}, end_id={END_ID}, pad_id={pad_id}
)  # or your own vector, one weight per class
model.compile(
    optimizer="adam",
    loss=lossviz.MaskedSparseCategoricalCrossentropy(
        pad_id={pad_id}, class_weights=weights
    ),
)
model.fit(x_train, y_train)  # no class_weight=: it misreads [batch, time] targets
model.save("model.keras")
keras.saving.load_model("model.keras")  # no custom_objects needed"""


def train_intro(data) -> str:
    """What the Train panel runs, with the numbers of its data
    (``lossviz.explore.sequence.TrainData``: its tests check that the end
    token is the most frequent real token and its weight below 1)."""
    return f"""
**Train it.** A tiny encoder–decoder without attention learns to copy sequences
of 1 to {data.max_len} tokens, padded to {data.padded_len} steps
({data.padding_share:.0%} of the target steps are `<pad>`). The decoder sees
only the encoder's summary, so it must work out where each sequence ends. The
three runs differ only in the loss: **unmasked** is
`MaskedSparseCategoricalCrossentropy(pad_id=None)`, plain cross-entropy over
every step (the value of Keras' `SparseCategoricalCrossentropy(from_logits=True)`);
**masked** sets `pad_id=0`; **masked + end weight** adds
`class_weights=end_token_class_weights(y_train, num_classes, end_id=2, pad_id=0)`.

What to notice: the unmasked run fills real steps with `</s>` and `<pad>` and
copies few tokens, although its accuracy over *every* step (`all_steps_accuracy`
in the table, what a plain `"accuracy"` metric reports) looks high, and its loss
looks lowest: padding is easy. Given many more epochs it catches up slowly. The
masked runs copy. Here the end token is the most frequent real token (one per
sequence against {data.num_tokens} content tokens), so its balanced weight is
{data.end_weight:.2f}, *below* 1: it curbs the masked model's early habit of
answering `</s>` everywhere.
"""
