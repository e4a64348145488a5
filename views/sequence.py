"""Sequence masking and class weights: padding masks, end-token weights, the traps.

A thin view: controls, then numbers and charts from ``lossviz.sequence`` and
``lossviz.analysis``. Keras' own losses are called beside ours for comparison.
No loss is computed here.
"""

import numpy as np
import streamlit as st

import ui

# lossviz first: it imports TensorFlow quietly, keras would import it noisily.
from lossviz import analysis, sequence
from lossviz.training import sequence as sequence_training

# isort: split
import keras

PAGE = "sequence_masking"
NUM_SEQUENCES, MAX_LEN, NUM_CLASSES = 6, 10, 8
START_ID, END_ID = 1, 2
PAD_IDS = {
    0: "0 (its own class)",
    7: "7 (the last class)",
    -1: "-1 (not a class)",
}
RATIO_SWEEP = np.linspace(0.0, 1.0, 21)  # every step of the padding slider
MAX_HAND_WEIGHT = 5.0
BY_HAND, FROM_DATA = "by hand", "from data"
LOSSES = {
    "ours": "per-sequence mean (ours)",
    "token": "Keras token mean",
    "trap": "sample_weight=mask",
    "unmasked": "unmasked",
}

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


@ui.cache_data(show_spinner=False)
def example(mask_ratio, pad_id, end_bias, seed):
    return sequence.example_batch(
        NUM_SEQUENCES,
        MAX_LEN,
        NUM_CLASSES,
        mask_ratio=mask_ratio,
        pad_id=pad_id,
        start_id=START_ID,
        end_id=END_ID,
        end_bias=end_bias,
        seed=seed,
    )


def class_weights_for(y_true, pad_id, mode, hand_weight):
    if mode == FROM_DATA:
        return sequence.end_token_class_weights(
            y_true, NUM_CLASSES, end_id=END_ID, pad_id=pad_id
        )
    return sequence.single_class_weights(NUM_CLASSES, END_ID, hand_weight)


def shown_losses(pad_id):
    """The losses drawn. A pad id outside the classes leaves nothing to predict
    under padding, so there is no unmasked loss then."""
    return [key for key in LOSSES if not (key == "unmasked" and pad_id < 0)]


def loss_functions(y_true, pad_id, weights):
    """Each loss as ``fn(logits)`` -> the batch loss a compiled model reports.

    Per-sequence losses are averaged over the sequence axis as Keras' default
    ``"sum_over_batch_size"`` reduction does, so every gradient drawn is the
    gradient of the number Keras trains on. ``y_true [..., B, T]`` gives ``[...]``.
    """
    functions = {
        "ours": lambda z: keras.ops.mean(
            sequence.masked_sparse_categorical_crossentropy(
                y_true, z, pad_id=pad_id, class_weights=weights
            ),
            axis=-1,
        ),
        "token": lambda z: sequence.token_mean_crossentropy(
            y_true, z, pad_id=pad_id, class_weights=weights
        ),
        "trap": lambda z: sequence.mask_as_sample_weight_crossentropy(
            y_true, z, pad_id=pad_id, class_weights=weights
        ),
        "unmasked": lambda z: keras.ops.mean(
            sequence.masked_sparse_categorical_crossentropy(
                y_true, z, pad_id=None, class_weights=weights
            ),
            axis=-1,
        ),
    }
    return {key: functions[key] for key in shown_losses(pad_id)}


@ui.cache_data(show_spinner=False)
def evaluate(mask_ratio, pad_id, end_bias, mode, hand_weight, seed):
    y_true, logits = example(mask_ratio, pad_id, end_bias, seed)
    weights = class_weights_for(y_true, pad_id, mode, hand_weight)
    values, grads = {}, {}
    for key, fn in loss_functions(y_true, pad_id, weights).items():
        values[key], grads[key] = analysis.value_and_grad(fn, logits)
    per_sequence = {
        "masked (ours)": sequence.masked_sparse_categorical_crossentropy(
            y_true, logits, pad_id=pad_id, class_weights=weights
        )
    }
    if "unmasked" in values:
        per_sequence["unmasked"] = sequence.masked_sparse_categorical_crossentropy(
            y_true, logits, pad_id=None, class_weights=weights
        )
    one_hot = keras.ops.one_hot(y_true, NUM_CLASSES)  # a -1 pad is all zeros
    probs = keras.ops.softmax(logits)
    return {
        "weights": weights,
        "values": {key: float(value) for key, value in values.items()},
        "grads": grads,
        "per_sequence": {key: np.asarray(v) for key, v in per_sequence.items()},
        "perplexity": float(sequence.perplexity(y_true, logits, pad_id=pad_id)),
        "accuracy": float(sequence.masked_accuracy(y_true, logits, pad_id=pad_id)),
        "special_mae": np.asarray(
            sequence.special_token_mae(one_hot, probs, start_id=START_ID, end_id=END_ID)
        ),
        "plain_mae": np.asarray(keras.losses.mean_absolute_error(one_hot, probs)),
    }


@ui.cache_data(show_spinner="Sweeping the padding share…")
def ratio_sweep(pad_id, end_bias, mode, hand_weight, seed):
    """Every loss at every padding share, each loss called once: the batches
    are stacked as ``[ratios, sequences, steps]``, with one row of class
    weights per batch."""
    ys, zs = zip(
        *(example(float(r), pad_id, end_bias, seed) for r in RATIO_SWEEP),
        strict=True,
    )
    weights = np.stack([class_weights_for(y, pad_id, mode, hand_weight) for y in ys])
    return stacked_curves(np.stack(ys), np.stack(zs), pad_id, weights)


@ui.cache_data(show_spinner="Sweeping the end-token weight…")
def weight_sweep(mask_ratio, pad_id, end_bias, seed, max_weight):
    """Every loss at every end-token weight, on copies of the current batch."""
    y_true, logits = example(mask_ratio, pad_id, end_bias, seed)
    params = np.linspace(0.0, max_weight, 26)
    weights = np.stack(
        [sequence.single_class_weights(NUM_CLASSES, END_ID, w) for w in params]
    )
    ys = np.repeat(y_true[None], len(params), axis=0)
    zs = np.repeat(logits[None], len(params), axis=0)
    return params, stacked_curves(ys, zs, pad_id, weights)


def stacked_curves(ys, zs, pad_id, weights):
    """Batch loss and gradient norm of each of the stacked batches, per loss."""
    num_batches = len(ys)
    curves = {}
    for key, fn in loss_functions(ys, pad_id, weights).items():
        values, grad = analysis.value_and_grad(fn, zs)
        curves[key] = values
        squares = np.square(grad, dtype=np.float64).reshape(num_batches, -1)
        curves[f"{key}_grad"] = np.sqrt(squares.sum(axis=1))
    return curves


def token_table(y_true, pad_id, row_names):
    """The targets as text, one column per step: S = start, E = end, · = pad."""
    names = {START_ID: "S", END_ID: "E", pad_id: "·"}
    table = {"sequence": row_names}
    for step in range(y_true.shape[1]):
        table[str(step)] = [names.get(int(v), str(int(v))) for v in y_true[:, step]]
    return table


ui.header("Sequence masking and class weights", sequence.FORMULA, INTRO)

left, middle, right = st.columns(3)
with left:
    mask_ratio = ui.slider(
        "Padding share",
        key="seq_mask_ratio",
        value=0.3,
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        help="Share of the 6 × 10 target steps that are padding. Rows are padded "
        "from the end, at different speeds, so their lengths differ.",
    )
    pad_id = ui.selectbox(
        "Pad id",
        key="seq_pad_id",
        value=0,
        options=list(PAD_IDS),
        format_func=PAD_IDS.get,
        help="The label used for padding, given to the loss as `pad_id`. "
        "-1 is a sentinel outside the 8 classes (as Keras' `ignore_class=-1`).",
    )
with middle:
    mode = ui.radio(
        "End-token weight",
        key="seq_end_mode",
        value=BY_HAND,
        options=[BY_HAND, FROM_DATA],
        horizontal=True,
        help="From data: `end_token_class_weights(y_true, 8, end_id=2, "
        "pad_id=pad_id)` on this batch, the mean count of the other tokens "
        "over the count of end tokens.",
    )
    hand_weight = ui.slider(
        "End-token weight (by hand)",
        key="seq_end_weight",
        value=1.0,
        min_value=0.0,
        max_value=MAX_HAND_WEIGHT,
        step=0.1,
        disabled=mode == FROM_DATA,
        help="`class_weights[2]`; every other class keeps weight 1.",
    )
with right:
    end_bias = ui.slider(
        "Model's lean toward the end token",
        key="seq_end_bias",
        value=2.5,
        min_value=0.0,
        max_value=8.0,
        step=0.5,
        help="Logit added to the end token at every step. The true token gets "
        "+1.5, on top of unit Gaussian noise.",
    )
    sweep_over = ui.radio(
        "Sweep",
        key="seq_sweep",
        value="padding share",
        options=["padding share", "end-token weight"],
        horizontal=True,
        help="The parameter on the x axis of the curves at the bottom.",
    )
ui.reset_button(PAGE)

seed = ui.seed()
y_true, logits = example(mask_ratio, pad_id, end_bias, seed)
result = evaluate(mask_ratio, pad_id, end_bias, mode, hand_weight, seed)
shown = {key: LOSSES[key] for key in shown_losses(pad_id)}
values = result["values"]
ours = values["ours"]
end_weight = float(result["weights"][END_ID])
lengths = np.sum(y_true != pad_id, axis=1)
row_names = [f"seq {i} (len {n})" for i, n in enumerate(lengths)]

st.subheader("One batch, four ways to average it", divider="gray")
row1 = st.columns(4)
with row1[0]:
    ui.metric(
        "Per-sequence mean",
        ours,
        help="Ours: what `MaskedSparseCategoricalCrossentropy(pad_id, "
        "class_weights)` reports on this batch, the mean over sequences of each "
        "sequence's mean over its non-pad steps.",
    )
with row1[1]:
    ui.metric(
        "Keras token mean",
        values["token"],
        delta=values["token"] - ours,
        delta_color="off",
        help="Every weighted token loss of the batch over the number of non-pad "
        "tokens: Keras' own masked reduction. With all weights 1 it is what "
        "`SparseCategoricalCrossentropy(from_logits=True, ignore_class=pad_id)` "
        "gives (the tests check it against Keras). Delta: against ours.",
    )
with row1[2]:
    ui.metric(
        "sample_weight=mask",
        values["trap"],
        delta=values["trap"] - ours,
        delta_color="off",
        help="The trap: `SparseCategoricalCrossentropy(from_logits=True)(y, "
        "logits, sample_weight=mask)`. Padding is zeroed but still counted in "
        'the denominator (all 6 × 10 steps). `reduction="mean_with_sample_'
        "weight\"` divides by the mask's sum instead. Delta: against ours.",
    )
with row1[3]:
    if "unmasked" in values:
        ui.metric(
            "Unmasked",
            values["unmasked"],
            delta=values["unmasked"] - ours,
            delta_color="off",
            help="The same per-sequence mean with no mask (`pad_id=None`): "
            "padding counts as tokens to predict. Delta: against ours.",
        )
    else:
        st.metric(
            "Unmasked",
            "n/a",
            help="Pad id -1 is not one of the 8 classes: there is nothing to "
            "predict under padding, so only a masked loss exists.",
        )
row2 = st.columns(4)
with row2[0]:
    ui.metric(
        "Perplexity",
        result["perplexity"],
        help="exp(mean cross-entropy over the non-pad tokens), without class "
        "weights. A uniform guess over 8 classes gives 8.",
    )
with row2[1]:
    ui.metric(
        "Masked accuracy",
        result["accuracy"],
        help="Share of non-pad tokens whose argmax is the label.",
    )
with row2[2]:
    ui.metric(
        "Special-token MAE",
        np.mean(result["special_mae"]),
        delta=np.mean(result["special_mae"]) - np.mean(result["plain_mae"]),
        delta_color="off",
        help="`special_token_mae(one_hot(y), softmax(logits), start_id=1, "
        "end_id=2)` averaged over all steps: the MAE over classes, forgiven (0) "
        "where a start or end token is predicted right. Delta: against "
        "`keras.losses.mean_absolute_error`.",
    )
with row2[3]:
    ui.metric(
        "End-token weight",
        end_weight,
        help="`class_weights[2]` in use ("
        + ("computed from this batch" if mode == FROM_DATA else "set by hand")
        + ").",
    )
for key, label in shown.items():
    ui.nonfinite_note(label, [values[key]])
    ui.nonfinite_note(f"gradient of the {label} loss", result["grads"][key])
if not lengths.any():
    st.info(
        "Every row is padding only: the masked losses are 0 with a zero gradient "
        "(`divide_no_nan` on a count of 0), perplexity is exp(0) = 1 and the "
        "accuracy is 0, none of them NaN.",
        icon=":material/info:",
    )
with st.expander("Why not `class_weight=` in `model.fit`?"):
    st.markdown(CLASS_WEIGHT_NOTE)

with ui.secondary("Where the gradient pushes", section=True):
    grad_of = ui.selectbox(
        "Gradient of",
        key="seq_grad_of",
        value="ours",
        options=list(LOSSES),
        format_func=LOSSES.get,
        help="The batch loss whose gradient with respect to the logits is drawn.",
    )
    if grad_of not in shown:
        st.caption("There is no unmasked loss with pad id -1: showing ours.")
        grad_of = "ours"
    ui.plot(
        ui.charts.heatmap(
            np.linalg.norm(result["grads"][grad_of], axis=-1),
            x_labels=[str(t) for t in range(MAX_LEN)],
            y_labels=row_names,
            title=f"‖∂ loss / ∂ logits‖ at each step, {LOSSES[grad_of]}",
            x_title="step",
            y_title="sequence",
            diverging=False,
        )
    )
    st.dataframe(token_table(y_true, pad_id, row_names), hide_index=True)
    st.caption(
        "Targets: S = start, E = end, · = padding. With a mask the padded steps get "
        "exactly zero gradient. Each step of sequence b carries a share "
        "1/(6 · len_b) of the per-sequence mean, so short sequences push harder per "
        "step; 1/(non-pad tokens) of the token mean, the same for every step; and "
        "1/(6 · 10) of `sample_weight=mask`, smaller the more padding there is. The "
        "end weight scales the push on the last step of each sequence."
    )

with ui.secondary("Loss per sequence", section=True):
    ui.plot(
        ui.charts.bars(
            row_names,
            result["per_sequence"],
            title="Per-sequence loss, masked and unmasked",
            x_title="sequence",
            y_title="cross-entropy",
        )
    )

with ui.secondary(f"Loss and gradient as the {sweep_over} changes", section=True):
    if sweep_over == "padding share":
        x_values = RATIO_SWEEP
        curves = ratio_sweep(
            pad_id, end_bias, mode, hand_weight if mode == BY_HAND else None, seed
        )
        current, x_title = mask_ratio, "padding share"
    else:
        max_weight = max(MAX_HAND_WEIGHT, float(np.ceil(end_weight)))
        x_values, curves = weight_sweep(mask_ratio, pad_id, end_bias, seed, max_weight)
        current, x_title = end_weight, "end-token weight"
    ui.plot(
        ui.charts.line(
            x_values,
            {label: curves[key] for key, label in shown.items()},
            title="Batch loss",
            x_title=x_title,
            y_title="loss",
            marker_x=current,
        )
    )
    ui.plot(
        ui.charts.line(
            x_values,
            {label: curves[f"{key}_grad"] for key, label in shown.items()},
            title="Gradient norm ‖∂ loss / ∂ logits‖",
            x_title=x_title,
            y_title="gradient norm",
            marker_x=current,
        )
    )
    for key, label in shown.items():
        ui.nonfinite_note(f"{label} over the sweep", curves[key])
        ui.nonfinite_note(
            f"gradient norm of the {label} loss over the sweep", curves[f"{key}_grad"]
        )
    st.caption(
        "Same seed at every point. Over the padding share, rows are cut shorter from "
        "their end (the end token moves with the cut) while the noise in the logits "
        "stays the same; over the end weight the batch stays as it is. Near 100 % "
        "padding the rows left are mostly start and end tokens, which this model "
        "predicts well, so the masked means fall too; they reach 0 only when no "
        "token is left."
    )

ui.use_it(
    [
        sequence.masked_sparse_categorical_crossentropy,
        sequence.MaskedSparseCategoricalCrossentropy,
        sequence.end_token_class_weights,
    ],
    f"""import keras
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
keras.saving.load_model("model.keras")  # no custom_objects needed""",
)

TRAIN_INTRO = """
**Train it.** A tiny encoder–decoder without attention learns to copy sequences
of 1 to {max_len} tokens, padded to {padded_len} steps (about three quarters of
the target steps are `<pad>`). The decoder sees only the encoder's summary, so
it must work out where each sequence ends. The three runs differ only in the
loss: **unmasked** is `MaskedSparseCategoricalCrossentropy(pad_id=None)`, plain
cross-entropy over every step (the value of Keras'
`SparseCategoricalCrossentropy(from_logits=True)`); **masked** sets `pad_id=0`;
**masked + end weight** adds `class_weights=end_token_class_weights(y_train,
num_classes, end_id=2, pad_id=0)`.

What to notice: the unmasked run fills real steps with `</s>` and `<pad>` and
copies few tokens, although its accuracy over *every* step (`all_steps_accuracy`
in the table, what a plain `"accuracy"` metric reports) looks high, and its loss
looks lowest: padding is easy. Given many more epochs it catches up slowly. The
masked runs copy. Here the end token is the most frequent real token (one per
sequence against {num_tokens} content tokens), so its balanced weight is
*below* 1: it curbs the masked model's early habit of answering `</s>`
everywhere.
"""


def describe_run(run):
    """The finished run's decoded predictions on held-out sequences."""
    examples = run.get("examples") or []
    summaries = [e for e in examples if e["kind"] == "summary"]
    rows = [e for e in examples if e["kind"] == "copy"]
    if not summaries or not rows:
        return
    summary, history = summaries[0], run["history"]
    epochs = len(run["epochs"])
    st.markdown(
        f"**{run['label']}** after {epochs} epoch{'s' * (epochs != 1)}, on held-out "
        f"sequences: accuracy on real steps "
        f"**{ui.format_value(history['masked_accuracy'][-1], 3)}**; `</s>` on "
        f"{ui.format_value(history['end_share'][-1], 2)} of the real steps (the "
        f"targets have it on {ui.format_value(summary['target_end_share'], 2)}) "
        f"and `<pad>` on {ui.format_value(history['pad_share'][-1], 2)}. End-token "
        f"weight {ui.format_value(summary['end_weight'], 3)}. The first held-out "
        "rows, the prediction at each real step, and the output a user reads "
        "(cut at the first `</s>` or `<pad>`):"
    )
    table = [
        {
            "input": " ".join(row["input"]),
            "target": " ".join(row["target"]),
            "predicted, step by step": " ".join(row["predicted"]),
            "output": " ".join(row["output"]) or "(empty)",
            "steps right": f"{row['correct']} / {row['length']}",
        }
        for row in rows
    ]
    st.dataframe(table, hide_index=True, width="stretch")


st.markdown(
    TRAIN_INTRO.format(
        **{name: spec[0] for name, spec in sequence_training.PARAMS.items()}
    )
)
ui.train_panel(
    "sequence",
    {
        "unmasked": ("unmasked", {}),
        "masked": ("masked", {}),
        "masked + end weight": ("masked_end_weight", {}),
    },
    metrics={
        "loss": "Training loss",
        "masked_accuracy": "Held-out accuracy on real steps",
        "end_share": "Real steps predicted </s>",
        "pad_share": "Real steps predicted <pad>",
    },
    epochs=5,
    max_epochs=30,
    learning_rate=1e-2,
    describe=describe_run,
)
