"""The words of the "Sequence masking and class weights" page: its controls,
lessons, intro, captions, help texts and the snippet to copy.

A sentence that states a number or an outcome is a function of what
``lossviz.explore.sequence`` computed (``intro(facts)``, ``all_padding(point)``,
``train_intro(data)``), never typed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

import ui
from ui.controls import Control
from ui.figures.sequence import LOSS_LABELS

# The batch's sizes and special ids, as lossviz.explore.sequence has them
# (NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, START_ID, END_ID; a test keeps them
# equal): the help texts below name them.
NUM_SEQUENCES, MAX_LEN, NUM_CLASSES, START_ID, END_ID = 6, 10, 8, 1, 2

PAD_IDS = {
    0: "0, a class of its own",
    7: "7, the last class",
    -1: "-1, not a class",
    END_ID: f"{END_ID}, the end token's own id (padding repeats </s>)",
}
MASKED, UNMASKED = "masked", "unmasked"
BY_HAND, END_FROM_DATA, ALL_FROM_DATA = (
    "by hand",
    "end token from data",
    "every class from data",
)
PADDING, END_WEIGHT = "padding share", "end-token weight"
ONES = ",".join(["1"] * NUM_CLASSES)
# The class table's rows: ids, with the start and end tokens named.
CLASS_NAMES = tuple(
    {START_ID: f"{START_ID} <s>", END_ID: f"{END_ID} </s>"}.get(c, str(c))
    for c in range(NUM_CLASSES)
)


def _weights_of(text: str) -> list[float] | None:
    """The weights of the URL's text, or None if it is not ``NUM_CLASSES``
    comma-separated numbers >= 0 (the explore layer checks them again)."""
    try:
        weights = [float(part) for part in str(text).split(",")]
    except ValueError:
        return None
    ok = len(weights) == NUM_CLASSES and all(
        math.isfinite(w) and w >= 0 for w in weights
    )
    return weights if ok else None


def _text_of(weights) -> str:
    return ",".join(f"{float(w):.4g}" for w in weights)


def _table_edited(key: str, table_key: str, weights: list[float]) -> None:
    """Writes the table's edits into the text the URL keeps (a callback: it
    runs before the rerun, so the text widget takes the new value)."""
    edited = list(weights)
    for row, change in st.session_state[table_key].get("edited_rows", {}).items():
        value = change.get("weight")
        if value is not None and math.isfinite(float(value)):
            edited[int(row)] = max(float(value), 0.0)
    st.session_state[key] = _text_of(edited)


@dataclass(frozen=True)
class ClassWeights(Control):
    """One weight per class: an editable table, kept in the URL as
    comma-separated text (the text field under the table is the URL's form;
    either can be edited). Its value is that text."""

    def check(self, value):
        if _weights_of(value) is None:
            raise ValueError(
                f"`{self.name}` must be {NUM_CLASSES} comma-separated numbers >= 0, "
                f"got {value!r}."
            )
        return value

    def draw(self, key: str, disabled: bool = False):
        st.markdown(f"**{self.label}**", help=self.help or None)
        table = st.container()
        text = st.text_input(
            "As text (kept in the URL)",
            value=self.default,
            key=key,
            bind="query-params",
            disabled=disabled,
            help="The same weights, comma-separated, in class order.",
        )
        weights = _weights_of(text)
        if weights is None:
            st.error(
                f"Class weights must be {NUM_CLASSES} comma-separated numbers "
                f">= 0; using all ones.",
                icon=":material/error:",
            )
            text, weights = self.default, _weights_of(self.default)
        table_key = f"{key}_table_{text}"
        with table:
            st.data_editor(
                {"class": list(CLASS_NAMES), "weight": weights},
                key=table_key,
                disabled=True if disabled else ["class"],
                hide_index=True,
                width="stretch",
                column_config={
                    "weight": st.column_config.NumberColumn(
                        min_value=0.0, step=0.05, format="%g"
                    )
                },
                on_change=_table_edited,
                args=(key, table_key, weights),
            )
        return text


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
            help=f"Share of the {NUM_SEQUENCES} × {MAX_LEN} target steps that are "
            "padding. Rows are padded from the end, at different speeds, so their "
            "lengths differ.",
        ),
        ui.Choice(
            "pad_id",
            "Pad id",
            0,
            param=True,
            options=tuple(PAD_IDS),
            widget="selectbox",
            # No format_func: a bound selectbox keeps its formatted option in
            # the URL, and lesson links write the plain id.
            help="The label used for padding, given to the loss as `pad_id`: "
            + "; ".join(PAD_IDS.values())
            + f". -1 is a sentinel outside the {NUM_CLASSES} classes (as Keras' "
            f"`ignore_class=-1`); {END_ID} pads the rows by repeating the end "
            "token, a common mistake.",
        ),
        ui.Choice(
            "mask",
            "Mask",
            MASKED,
            options=(MASKED, UNMASKED),
            widget="radio",
            horizontal=True,
            disabled_when=lambda drawn: drawn.get("pad_id", 0) < 0,
            help="Masked: the loss gets `pad_id` and leaves padded steps out. "
            "Unmasked: `pad_id=None`, every step counts, padding included (plain "
            "`SparseCategoricalCrossentropy`). A pad id of -1 is not a class: "
            "always masked.",
        ),
        ui.Choice(
            "weight_mode",
            "Class weights",
            BY_HAND,
            options=(BY_HAND, END_FROM_DATA, ALL_FROM_DATA),
            widget="radio",
            help="By hand: the table below. End token from data: "
            f"`end_token_class_weights(y, {NUM_CLASSES}, end_id={END_ID})` over "
            "the steps the loss counts, every other class 1. Every class from "
            "data: inverse frequency, w_c = N / (K · n_c) over the steps the loss "
            "counts (N steps, K classes among them, n_c of class c; 1 for a class "
            "that never occurs).",
        ),
        ClassWeights(
            "hand_weights",
            "Class weights by hand",
            ONES,
            disabled_when=lambda drawn: drawn.get("weight_mode") != BY_HAND,
            help=f"`class_weights`, one per class; `class_weights[{END_ID}]` is the "
            "end token's. Read only with the weights set by hand; 'Copy into the "
            "table' below the weights in use fills it from the data.",
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
# Beside the Play chart, the main control (the Play chart draws both masks,
# so the mask stays with the pad id, whose -1 greys it out); the others below
# the stage, one column each.
LEAD = ("mask_ratio",)
COLUMNS = (
    ("pad_id", "mask", "end_bias"),
    ("weight_mode", "hand_weights"),
    ("sweep",),
)

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
            help="The batch loss whose gradient with respect to the logits is drawn.",
        )
    ],
)

LESSONS = (
    ui.Lesson(
        "No mask: the model stops early",
        {
            "mask": UNMASKED,
            "pad_id": 0,
            "mask_ratio": 0.6,
            "weight_mode": BY_HAND,
            "hand_weights": ONES,
        },
        "With the mask off, padded steps count as tokens to predict: on this "
        "batch they take part of the loss's gradient (none with the mask on). "
        "Trained on the copy task (the Train panel's first two runs, 5 epochs), "
        "the unmasked model answers `</s>` or `<pad>` on at least 20 points more "
        "of the content steps than the masked one: its output stops too early.",
        check="no_mask",
    ),
    ui.Lesson(
        "Padding is the end token",
        {
            "pad_id": END_ID,
            "mask": MASKED,
            "weight_mode": BY_HAND,
            "hand_weights": ONES,
        },
        "The targets are padded by repeating the end token, so the pad id is the "
        "end id: the mask removes every end token, the real ones too, and the "
        "loss counts none of them. Trained on the copy task padded this way, the "
        "model ends at most 5 % of the held-out sequences with `</s>`; the fix "
        "(its own pad id) at least 90 %.",
        check="pad_is_end",
    ),
    ui.Lesson(
        "Mask + end weight: fixed",
        {"mask": MASKED, "pad_id": 0, "mask_ratio": 0.6, "weight_mode": END_FROM_DATA},
        "With a pad id of its own, the mask removes the padding only: padded "
        "steps get no gradient and every real end token counts. No class is "
        "counted more often than the end token, so its weight from the data is "
        "below 1. Trained this way, the model ends at least 90 % of the held-out "
        "sequences with `</s>` and gets at least 30 points more of the real steps "
        "right than the same run unmasked.",
        check="fixed",
    ),
)


def _moves(low: float, high: float) -> str:
    """ "falls from a to b" or "rises from a to b"."""
    return f"{'falls' if high < low else 'rises'} from {low:.3g} to {high:.3g}"


def intro(facts) -> str:
    """What to try, with the numbers of ``lossviz.explore.sequence.IntroFacts``
    (the padding sweep at the defaults)."""
    low, high = (f"{share:.0%}" for share in (facts.low_share, facts.high_share))
    lower = facts.trap[1] < min(facts.ours[1], facts.token[1])
    trap_note = "(lower than both means)" if lower else "(not lower than both)"
    return f"""
A seq2seq decoder predicts one token per step; the targets are padded to the
longest sequence with a **pad id**. Padded steps must not count, and the **end
token** (one per sequence, so rare in long sequences) often gets a class
weight. The model here "predicts mostly the end token": its logits lean toward
it at every step.

What to try:
- **Raise the padding share** from {low} to {high}. The rows left are short
  ({facts.special_share:.0%} of their tokens are start or end tokens), so our
  per-sequence mean {_moves(*facts.ours)} and Keras' token mean
  {_moves(*facts.token)}; the `sample_weight=mask` loss {_moves(*facts.trap)}
  {trap_note}: Keras' default reduction divides by *every* step, padding
  included. The unmasked loss {_moves(*facts.unmasked)}: padding is easy to
  predict and dilutes it.
- **Compare the two masked means.** Ours averages each sequence, then the batch:
  a short sequence weighs as much as a long one. Keras averages all non-pad
  tokens of the batch. They agree when all sequences have the same length.
- **Switch the mask off**: every step counts, the three means coincide, and the
  padded steps take part of the gradient.
- **Pick pad id {END_ID}, the end token's own**: padding by repeating `</s>`. Masked,
  the loss loses every end token; unmasked, `</s>` fills every padded step.
- **Class weights**: edit the table, or take them from the data (the end token's
  alone, or every class by inverse frequency) and copy them into the table.
- **Padding at 100 %**: the masked losses are {facts.all_padding_value:g} with a
  gradient norm of {facts.all_padding_grad:g}, not NaN.
"""


MAIN_SECTION = "One batch, four ways to average it"
GRADIENT_SECTION = "Where the gradient pushes"
PER_SEQUENCE_SECTION = "Loss per sequence"


def sweep_section(over: str) -> str:
    return f"Loss and gradient as the {over} changes"


def loss_metrics(masked: bool) -> dict[str, str]:
    """The first row of metrics, each loss against ours: the three means with
    the mask as set, and the per-sequence mean with the other mask."""
    other = {"unmasked": "Unmasked"} if masked else {"masked": "Masked"}
    return {
        "ours": "Per-sequence mean",
        "token": "Keras token mean",
        "trap": "sample_weight=mask",
        **other,
    }


HELPS = {
    "Per-sequence mean": "Ours: what `MaskedSparseCategoricalCrossentropy(pad_id, "
    "class_weights)` reports on this batch (`pad_id=None` with the mask off), "
    "the mean over sequences of each sequence's mean over the steps it counts.",
    "Keras token mean": "Every weighted token loss of the batch over the number "
    "of counted tokens: Keras' own masked reduction. With all weights 1 it is "
    "what `SparseCategoricalCrossentropy(from_logits=True, ignore_class=pad_id)` "
    "gives (the tests check it against Keras). With the mask off it equals ours: "
    "every sequence has the same number of steps. Delta: against ours.",
    "sample_weight=mask": "The trap: `SparseCategoricalCrossentropy("
    "from_logits=True)(y, logits, sample_weight=mask)`. Padding is zeroed but "
    f"still counted in the denominator (all {NUM_SEQUENCES} × {MAX_LEN} steps). "
    '`reduction="mean_with_sample_weight"` divides by the mask\'s sum instead. '
    "With the mask off the mask is all ones. Delta: against ours.",
    "Unmasked": "The same per-sequence mean with no mask (`pad_id=None`): "
    "padding counts as tokens to predict. Delta: against ours.",
    "Masked": "The same per-sequence mean with the mask (`pad_id`), for "
    "comparison. Delta: against ours.",
    "Perplexity": "exp(mean cross-entropy over the steps the loss counts), "
    f"without class weights. A uniform guess over {NUM_CLASSES} classes gives "
    f"{NUM_CLASSES}.",
    "Accuracy": "Share of the steps the loss counts whose argmax is the label "
    "(`masked_accuracy` with the loss's pad id): with the mask off, padding "
    'counts, as in a plain `"accuracy"` metric.',
    "Special-token MAE": "`special_token_mae(one_hot(y), softmax(logits), "
    f"start_id={START_ID}, end_id={END_ID})` averaged over all steps: the MAE "
    "over classes, forgiven (0) where a start or end token is predicted right. "
    "Delta: against `keras.losses.mean_absolute_error`.",
    "Padding's share of the gradient": "The share of ‖∂L/∂logits‖² of our loss "
    "that lies on the padded steps (after each sequence's end): 0 with a mask "
    "that removes them.",
    "Real ends the loss counts": "How many of the sequences' own end tokens the "
    "loss counts. With the pad id equal to the end id the mask removes them all.",
    "</s> share of counted steps": "The end token's share of every step the loss "
    "counts, padding included when it is counted.",
}
NO_UNMASKED_HELP = (
    f"Pad id -1 is not one of the {NUM_CLASSES} classes: there is nothing to "
    "predict under padding, so only a masked loss exists."
)
ALWAYS_MASKED = (
    "Pad id -1 is not a class: the loss is masked whatever the Mask control says."
)


def end_weight_help(weight_mode: str) -> str:
    where = "set by hand" if weight_mode == BY_HAND else f"{weight_mode}"
    return f"`class_weights[{END_ID}]` in use ({where})."


def all_padding(point) -> str:
    """The note for a batch of padding only, with the numbers of ``point``."""
    if not point.masked:
        return (
            "Every row is padding only and the mask is off: the loss is all "
            f"padding, {point.values['ours']:.3g} per sequence."
        )
    return (
        "Every row is padding only: the masked losses are "
        f"{point.values['ours']:g} with a gradient norm of "
        f"{float(point.step_grad_norms['ours'].max()):g} (`divide_no_nan` on a "
        f"count of 0), perplexity is {point.perplexity:g} and the accuracy "
        f"{point.accuracy:g}, none of them NaN."
    )


WEIGHTS_TITLE = "Class weights in use"


def weights_caption(weight_mode: str, masked: bool) -> str:
    """What the weights in use are, and the formula behind them."""
    over = "the non-pad steps" if masked else "every step, padding included"
    if weight_mode == BY_HAND:
        return "Set by hand in the table above."
    if weight_mode == END_FROM_DATA:
        return (
            f"`end_token_class_weights` over {over} (the counts below): the end "
            "token gets the mean count of the other classes that occur over its "
            "own count, every other class 1; 1 where no end token is counted."
        )
    return (
        f"Inverse frequency over {over} (the counts below), scikit-learn's "
        '"balanced": every class that occurs carries the same weighted count.'
    )


COPY_WEIGHTS = "Copy into the table"
COPY_HELP = (
    "Writes these weights into the hand table and switches to 'by hand', to "
    "edit them from there."
)

CLASS_WEIGHT_TITLE = "Why not `class_weight=` in `model.fit`?"
CLASS_WEIGHT_NOTE = """
Keras 3's `model.fit(..., class_weight={...})` turns the class weights into one
weight **per sample**, looked up at the argmax of the target's last axis. With
integer targets `[batch, time]` that argmax runs over *time*: each *sequence*
gets the weight of the class whose id equals the **position of its largest
token id**. A per-token loss such as `SparseCategoricalCrossentropy` then
fails (its `[batch, time]` losses do not fit `[batch]` weights); a per-sequence
loss runs with the wrong weights. With one-hot targets `[batch, time,
classes]` `fit` fails. "The original attempt" below runs both. Pass the weights
to the loss instead, `MaskedSparseCategoricalCrossentropy(pad_id,
class_weights=w)`, or pass a temporal `sample_weight = mask * w[y]` of shape
`[batch, time]` to `SparseCategoricalCrossentropy(from_logits=True,
reduction="mean_with_sample_weight")`, which divides by the sum of the weights
rather than by every step (with all weights 1 that is the token mean).
"""

NO_OTHER_GRADIENT = "That loss is not computed at these settings: showing ours."
PLAY_CAPTION = (
    "Top: each step's share of ‖∂L/∂logits‖² summed over the batch, on real "
    "steps and on padding steps, for the per-sequence mean without the mask and "
    "with it; below: the gradient's norm at each step of each sequence for the "
    "loss chosen under *Gradient of*, each cell labelled with its target (S = "
    "start, E = end, · = padding; with the pad id equal to the end id, padding "
    "shows as E). ▶ Play or the chart's own slider runs through every padding "
    "share in the browser; the padding slider beside it does the same, with the "
    "numbers."
)
GRADIENT_CAPTION = (
    "With a mask the padded steps get exactly zero gradient. Each step of "
    f"sequence b carries a share 1/({NUM_SEQUENCES} · len_b) of the per-sequence "
    "mean (len_b: the steps of b the loss counts), so short sequences push "
    "harder per step; 1/(counted tokens) of the token mean, the same for every "
    f"step; and 1/({NUM_SEQUENCES} · {MAX_LEN}) of `sample_weight=mask`, smaller "
    "the more padding there is. The class weights scale the push on each step by "
    "the weight of its label."
)
SWEEP_CAPTION = (
    "Same seed at every point. Over the padding share, rows are cut shorter from "
    "their end (the end token moves with the cut) while the noise in the logits "
    "stays the same, and weights from the data are those of each batch; over "
    "the end weight the batch and every other weight stay as they are."
)
WEIGHT_SWEEP_CAPTION = (
    "The padding share of this chart is its own slider's (it opens at the "
    "default share; the padding slider above does not move it): scrub or play "
    "it to see the curves of each batch."
)
PER_SEQUENCE_CAPTION = (
    "Each sequence's loss at every padding share: rows are cut shorter from "
    "their end, and a row cut to nothing has a masked loss of 0."
)


def snippet(setting) -> str:
    """The code to copy, with the page's pad id and class weights (the fix
    where the page shows a mistake: the pad id gets an id of its own, the mask
    stays on)."""
    pad_id = setting.pad_id if setting.pad_id != END_ID else 0
    note = (
        f"  # not {END_ID}: the end token needs an id of its own"
        if setting.pad_id == END_ID
        else ""
    )
    if setting.weight_mode == BY_HAND:
        weights = f"weights = [{', '.join(f'{w:g}' for w in setting.hand_weights)}]"
    elif setting.weight_mode == END_FROM_DATA:
        weights = (
            "weights = end_token_class_weights(\n"
            f"    y_train, {NUM_CLASSES}, end_id={END_ID}, pad_id={pad_id}\n)"
        )
    else:
        weights = (
            "# Inverse frequency over the non-pad tokens: N / (K * n_c), 1 if absent.\n"
            f"counts = np.bincount(y_train[y_train != {pad_id}], "
            f"minlength={NUM_CLASSES})\n"
            "weights = np.where(\n"
            "    counts > 0,\n"
            "    counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)),\n"
            "    1.0,\n"
            ")"
        )
    return f"""import keras
import numpy as np
import lossviz
from lossviz.sequence import end_token_class_weights

# y_train: int targets [batch, time], padded with {pad_id}{note}; the decoder
# ends with a linear Dense({NUM_CLASSES}) (logits, no softmax).
{weights}
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
    relation = "most frequent" if data.end_most_frequent else "not the most frequent"
    return f"""
**Train it.** A tiny encoder–decoder without attention learns to copy sequences
of 1 to {data.max_len} tokens, padded to {data.padded_len} steps
({data.padding_share:.0%} of the target steps are padding; the padding share
above does not change it). The decoder sees only the encoder's summary, so it
must work out where each sequence ends. The runs follow the controls: **your
setting** (the mask, the pad id: {END_ID} pads the targets with `</s>`, any other
the task's own `<pad>`; the class weights, computed on the task's
{data.num_classes} classes, or by hand the end token's weight from the table),
**the same with the other mask**, and **the fix** (masked, its own pad id, the
end token's weight from the data), each once.

What to watch: *Content steps answered `</s>` or `<pad>`*, where the output
would stop too early, and *Sequence ends answered `</s>`*, where it stops at
all. The accuracy over *every* step (`all_steps_accuracy` in the table, what a
plain `"accuracy"` metric reports) counts padding too. Here the end token is
the {relation} real token (one per sequence against {data.num_tokens} content
tokens), so its balanced weight is {data.end_weight:.2f}.
"""
