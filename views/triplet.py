"""Loss as a layer (triplet): a cosine triplet loss that is the model's output,
and a masked cross-entropy added from inside a layer with ``add_loss``.

A thin view: controls, then numbers and charts from ``lossviz.triplet`` and
``lossviz.analysis``. No loss is computed here.
"""

import numpy as np
import streamlit as st

import ui
from lossviz import analysis, triplet

PAGE = "triplet"
NUM_TRIPLETS, DIM = 64, 8
MARGIN_STEP = 0.05
MARGINS = np.round(np.arange(0.0, 2.0 + MARGIN_STEP / 2, MARGIN_STEP), 2)
SHOWN_GRADIENT_ROWS = 12
BATCH_SIZE, LENGTH, NUM_CLASSES = 4, 8, 6
TRIPLET_RUN = "triplet, margin "

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
  the gradient grow. Past `m = 2 + max gap` every triplet is active and the
  loss is linear in `m`.
- **More hard triplets**: the two cosine distributions overlap and the loss
  stays high even at margin 0.
"""

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


TRAIN_INTRO = """
**Train it.** Two tiny models, each trained with the code above. *Triplet*: a
question/answer retrieval toy (questions and answers are bags of words about
two topics each, e.g. "rain tax how" → "umbrella accountant you") trained
through `build_triplet_models` and `IdentityLoss` at the margin chosen above;
after every epoch each held-out question is ranked against every held-out
answer by cosine (recall@1; chance is 1/32), on topic pairs never seen
together in training. *Masked LM*: `build_masked_lm_model` learns to continue
padded counting sequences ("3 5 7 …" on a 12-hour clock); its
`MaskedCrossEntropyLayer` adds the loss and reports perplexity and accuracy.
**Train at margin 0, then at 0.5**: at margin 0 the loss on the training
triplets soon reaches 0, their gradient with it, and recall@1 stalls; a larger
margin keeps every triplet pushing. The runs are drawn over each other.
"""


@ui.cache_data(show_spinner=False)
def example(hard_share, seed):
    return triplet.example_triplets(NUM_TRIPLETS, DIM, hard_share=hard_share, seed=seed)


@ui.cache_data(show_spinner=False)
def cosines(hard_share, seed):
    anchor, positive, negative, _ = example(hard_share, seed)
    return {
        "positive": np.asarray(triplet.cosine_similarity(anchor, positive)),
        "negative": np.asarray(triplet.cosine_similarity(anchor, negative)),
        "gap": np.asarray(triplet.cosine_gap(anchor, positive, negative)),
    }


def loss_at(margin, positive, negative):
    """The loss as a function of the question embedding, for one margin."""
    return lambda anchor: triplet.cosine_triplet_loss(
        anchor, positive, negative, margin=margin
    )


@ui.cache_data(show_spinner="Sweeping the margin…")
def margin_grid(hard_share, seed):
    """Per-triplet loss and ∂L/∂q at every margin the slider offers."""
    anchor, positive, negative, _ = example(hard_share, seed)
    losses, grads = [], []
    for margin in MARGINS:
        values, grad = analysis.value_and_grad(
            loss_at(float(margin), positive, negative), anchor
        )
        losses.append(values)
        grads.append(grad)
    losses, grads = np.stack(losses), np.stack(grads)
    return {
        "loss": losses,
        "grad": grads,
        "mean_loss": losses.mean(axis=1),
        "active_share": (losses > 0).mean(axis=1),
        "grad_norm": np.linalg.norm(grads.reshape(len(MARGINS), -1), axis=1),
    }


@ui.cache_data(show_spinner=False)
def off_grid(hard_share, seed, margin):
    anchor, positive, negative, _ = example(hard_share, seed)
    return analysis.value_and_grad(loss_at(margin, positive, negative), anchor)


def at_margin(hard_share, seed, margin):
    """(per-triplet loss, ∂L/∂q) at ``margin``: from the grid when it is on it."""
    index = int(np.argmin(np.abs(MARGINS - margin)))
    if np.isclose(MARGINS[index], margin):
        grid = margin_grid(hard_share, seed)
        return grid["loss"][index], grid["grad"][index]
    return off_grid(hard_share, seed, margin)


@ui.cache_data(show_spinner=False)
def masked_example(pad_share, logit_scale, seed):
    y_true, logits = triplet.example_token_batch(
        BATCH_SIZE,
        LENGTH,
        NUM_CLASSES,
        pad_share=pad_share,
        logit_scale=logit_scale,
        seed=seed,
    )
    return {
        "y_true": y_true,
        "masked": triplet.masked_cross_entropy_report(y_true, logits, pad_id=0),
        "unmasked": triplet.masked_cross_entropy_report(y_true, logits, pad_id=-1),
        "token_ce": np.asarray(
            triplet.masked_token_cross_entropy(y_true, logits, pad_id=0)
        ),
    }


def triplet_names(hard):
    return [f"{i} hard" if is_hard else str(i) for i, is_hard in enumerate(hard)]


# Figures are cached as shared objects: st.plotly_chart only reads them (it
# serialises a copy), and building a plotly figure costs far more than the
# numbers behind it.
@ui.cache_resource(show_spinner=False, max_entries=64)
def cosine_figure(hard_share, seed):
    cos = cosines(hard_share, seed)
    return ui.charts.histogram(
        {
            "cos(q, a⁺) right answer": cos["positive"],
            "cos(q, a⁻) wrong answer": cos["negative"],
        },
        title="Cosine of the question with each answer",
        x_title="cosine",
        nbins=30,
    )


@ui.cache_resource(show_spinner=False, max_entries=256)
def gap_figure(hard_share, seed, margin):
    return ui.charts.histogram(
        {"cos(q, a⁺) − cos(q, a⁻)": cosines(hard_share, seed)["gap"]},
        title="Gap: triplets left of the margin line are active",
        x_title="cosine gap",
        vlines={f"margin {margin:g}": margin},
        nbins=30,
    )


@ui.cache_resource(show_spinner=False, max_entries=256)
def gradient_figures(hard_share, seed, margin):
    loss, grad = at_margin(hard_share, seed, margin)
    names = triplet_names(example(hard_share, seed)[3])
    active = loss > 0
    bars = ui.charts.bars(
        names,
        {"loss": loss, "‖∂L/∂q‖": np.linalg.norm(grad, axis=1)},
        title="Loss and gradient norm per triplet",
        x_title="triplet",
        y_title="value",
    )
    rows = slice(0, SHOWN_GRADIENT_ROWS)
    heatmap = ui.charts.heatmap(
        grad[rows],
        x_labels=[f"d{j}" for j in range(DIM)],
        y_labels=[
            f"{name} ({'active' if is_active else 'inactive'})"
            for name, is_active in zip(names[rows], active[rows], strict=True)
        ],
        title=f"∂L/∂q for the first {SHOWN_GRADIENT_ROWS} triplets",
        x_title="embedding dimension",
        y_title="triplet",
    )
    return bars, heatmap


@ui.cache_resource(show_spinner=False, max_entries=256)
def sweep_figures(hard_share, seed, margin):
    grid = margin_grid(hard_share, seed)
    loss_and_share = ui.charts.line(
        MARGINS,
        {
            "mean loss": grid["mean_loss"],
            "share of active triplets": grid["active_share"],
        },
        title="Batch-mean loss and active share",
        x_title="margin m",
        y_title="loss / share",
        marker_x=margin,
    )
    grad_norm = ui.charts.line(
        MARGINS,
        {"‖∂L/∂q‖": grid["grad_norm"]},
        title="Gradient norm ‖∂L/∂q‖",
        x_title="margin m",
        y_title="gradient norm",
        marker_x=margin,
    )
    return loss_and_share, grad_norm


@ui.cache_resource(show_spinner=False, max_entries=128)
def token_figure(pad_share, logit_scale, seed):
    masked = masked_example(pad_share, logit_scale, seed)
    return ui.charts.heatmap(
        masked["token_ce"],
        x_labels=[f"t{t}" for t in range(LENGTH)],
        y_labels=[
            f"row {b}: {int((masked['y_true'][b] != 0).sum())} tokens"
            for b in range(BATCH_SIZE)
        ],
        title="Cross-entropy per token (0 on padding)",
        x_title="position",
        y_title="sequence",
        diverging=False,
    )


ui.header("Loss as a layer (triplet)", triplet.FORMULA, INTRO)
st.latex(triplet.FORMULAS["cosine"])

left, right = st.columns(2)
with left:
    margin = ui.slider(
        "Margin m",
        key="triplet_margin",
        value=0.1,
        min_value=0.0,
        max_value=2.0,
        step=MARGIN_STEP,
        help="How much nearer (in cosine) the right answer must be than the wrong "
        "one before a triplet stops contributing. Cosines lie in [-1, 1].",
    )
with right:
    hard_share = ui.slider(
        "Share of hard triplets",
        key="triplet_hard",
        value=0.25,
        min_value=0.0,
        max_value=1.0,
        step=0.05,
        help="Hard: the wrong answer is nearer the question than the right one.",
    )
ui.reset_button(PAGE)

seed = ui.seed()
loss, grad = at_margin(hard_share, seed, margin)
grid = margin_grid(hard_share, seed)

metrics = st.columns(4)
with metrics[0]:
    ui.metric(
        "Triplet loss, batch mean",
        loss.mean(),
        help="What `compile(loss=IdentityLoss())` minimises: the mean of the "
        "per-triplet losses the model outputs.",
    )
with metrics[1]:
    ui.metric(
        "Share of active triplets",
        (loss > 0).mean(),
        help="Triplets whose loss is above 0. Only they carry a gradient.",
    )
with metrics[2]:
    ui.metric(
        "‖∂L/∂q‖ over the batch",
        np.linalg.norm(grad),
        help="Norm of the gradient of the summed loss with respect to every "
        "question embedding.",
    )
with metrics[3]:
    ui.metric(
        "Triplets with zero gradient",
        int((np.abs(grad).max(axis=1) == 0).sum()),
        help="Inactive triplets: their gradient is exactly 0, not just small.",
    )
ui.nonfinite_note("triplet loss", loss)
ui.nonfinite_note("∂L/∂q", grad)

st.subheader("How near are the answers?", divider="gray")
hist_left, hist_right = st.columns(2)
with hist_left:
    ui.plot(cosine_figure(hard_share, seed))
with hist_right:
    ui.plot(gap_figure(hard_share, seed, margin))

with ui.secondary("Only active triplets carry a gradient", section=True):
    bars, heatmap = gradient_figures(hard_share, seed, margin)
    ui.plot(bars)
    ui.plot(heatmap)
    st.caption(
        "The gradient with respect to the question embedding (the encoder's output). "
        "An inactive triplet's row is exactly 0: `relu` has a zero gradient below its "
        "kink. Gradient descent moves q toward a⁺ and away from a⁻, and only "
        "perpendicular to q (cosine ignores length)."
    )

with ui.secondary("Loss, active share and gradient as the margin grows", section=True):
    loss_and_share, grad_norm = sweep_figures(hard_share, seed, margin)
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(loss_and_share)
    with curve_right:
        ui.plot(grad_norm)
    ui.nonfinite_note("mean loss over the margin sweep", grid["mean_loss"])
    ui.nonfinite_note("gradient norm over the margin sweep", grid["grad_norm"])

with ui.secondary("A loss added from inside a layer", section=True):
    st.markdown(KERAS3_WAY)
    st.latex(triplet.FORMULAS["masked_cross_entropy"])
    st.markdown(MASKED_INTRO)
    pad_left, pad_right = st.columns(2)
    with pad_left:
        pad_share = ui.slider(
            "Padding share",
            key="triplet_pad",
            value=0.3,
            min_value=0.0,
            max_value=1.0,
            step=0.05,
            help="Share of the positions that are padding (id 0).",
        )
    with pad_right:
        logit_scale = ui.slider(
            "Model confidence",
            key="triplet_confidence",
            value=2.0,
            min_value=0.0,
            max_value=6.0,
            step=0.5,
            help="Added to the logit of the right token at every real position.",
        )
    masked = masked_example(pad_share, logit_scale, seed)
    for title, key in (
        ("MaskedCrossEntropyLayer (pad_id=0)", "masked"),
        ("Same layer, no mask (pad_id=-1)", "unmasked"),
    ):
        report = masked[key]
        st.markdown(f"**{title}**: {int(report['tokens'])} tokens count")
        columns = st.columns(3)
        with columns[0]:
            ui.metric(
                "loss",
                report["loss"],
                help="The value the layer passes to `self.add_loss`: the cross-entropy "
                "averaged over the tokens that count.",
            )
        with columns[1]:
            ui.metric(
                "perplexity",
                report["perplexity"],
                help="exp of the token-mean cross-entropy, from the layer's own "
                "metric.",
            )
        with columns[2]:
            ui.metric(
                "masked_accuracy",
                report["masked_accuracy"],
                help="Share of counted tokens whose argmax is the target.",
            )
    ui.nonfinite_note("per-token cross-entropy", masked["token_ce"])
    ui.plot(token_figure(pad_share, logit_scale, seed))

ui.use_it(
    [
        triplet.cosine_triplet_loss,
        triplet.CosineTripletLossLayer,
        triplet.IdentityLoss,
        triplet.build_triplet_models,
        triplet.MaskedCrossEntropyLayer,
    ],
    f"""import numpy as np
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
history.history["perplexity"], history.history["masked_accuracy"]""",
)


def describe_run(run):
    """The finished run's extras: held-out rankings or decoded next tokens."""
    examples = run.get("examples") or []
    if not examples:
        return
    if examples[0]["kind"] == "summary":
        summary, rows = examples[0], examples[1:]
        st.markdown(
            f"**{run['label']}**: held-out recall@1 "
            f"{ui.format_value(summary['recall_at_1_before'], 3)} before training, "
            f"**{ui.format_value(summary['recall_at_1_after'], 3)}** after "
            f"({summary['num_answers']} answers, chance "
            f"{ui.format_value(summary['chance'], 3)}). The first held-out "
            "questions and the answer ranked first:"
        )
        columns = {
            "question": "question",
            "topics": "topics",
            "top_answer": "ranked first",
            "right_answer": "right answer",
            "cosine_top": "cos first",
            "cosine_right": "cos right",
        }
    else:
        rows = examples
        st.markdown(
            f"**{run['label']}**: next-token predictions on new sequences. The "
            "first target of a row cannot be known (the step is not seen yet)."
        )
        columns = {
            "tokens": "input",
            "targets": "next tokens",
            "predicted": "predicted",
            "accuracy": "accuracy",
        }
    table = [
        {
            **{title: row[key] for key, title in columns.items()},
            **({"right?": "✓" if row["correct"] else "✗"} if "correct" in row else {}),
        }
        for row in rows
    ]
    st.dataframe(table, hide_index=True, width="stretch")


st.markdown(TRAIN_INTRO)
triplet_run = f"{TRIPLET_RUN}{margin:g}"
# The triplet run trains last, so the extras shown below the table (which are
# the last run's) are its held-out rankings.
ui.train_panel(
    "triplet",
    {
        "masked LM (add_loss)": ("masked_lm", {}),
        triplet_run: ("triplet", {"margin": round(margin, 2)}),
    },
    metrics={
        "loss": "Training loss",
        "recall_at_1": "Held-out recall@1",
        "perplexity": "Perplexity (masked tokens)",
        "masked_accuracy": "Masked accuracy",
    },
    describe=describe_run,
)
