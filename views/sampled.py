"""Sampled softmax: how biased and noisy the estimate is, and what it saves.

A thin view: controls, then numbers and charts from ``lossviz.sampled`` and
``lossviz.analysis``. No loss is computed here.
"""

import numpy as np
import streamlit as st

import ui

# lossviz first: it imports TensorFlow quietly.
from lossviz import analysis, sampled
from lossviz._tf import tf
from lossviz.training import sampled as task

PAGE = "sampled_softmax"
BATCH, DIM = 32, 64
SHOWN_SAMPLES = 8  # rows of the gradient heatmaps
NUM_DRAWS = 100  # seeds behind the histogram
SWEEP_DRAWS = 30  # seeds per point of the bias/spread sweep
SAMPLED_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
VOCAB_CHOICES = [100, 1_000, 10_000, 50_000]
TIMING_REPEATS = 7
TRAIN_TASK = task.TASK.name
TRAIN_LEARNING_RATE = 1e-2
TRAIN_DIM = task.COMMON_PARAMS["embed_dim"][0]
TRAIN_PAIRS = task.COMMON_PARAMS["pairs_per_epoch"][0]

INTRO = f"""
A language model's last layer scores every word of the vocabulary: with `C` words
the softmax needs `[batch, C]` logits and a `[C, D]` gradient at every step.
**Sampled softmax** (Jean et al. 2015) scores the true word and one shared sample
`S` of words drawn from a log-uniform (Zipfian) proposal, and subtracts the log of
each word's expected count `Q` from its logit. Here: a batch of {BATCH} hidden
states of size {DIM} and an output layer whose biases are the log-frequencies of
a Zipfian vocabulary (word 0 the most frequent).

What to try:
- **Move the number of sampled classes.** The sampled loss is an
  **underestimate**: the true word's logit is raised by `−log Q(y)`, so its
  distribution over seeds sits left of the full loss. Bias and spread both
  shrink as `S` grows; the bias shrinks slowly, so compare training curves of
  a sampled loss only with each other, and evaluate with the full loss (the
  Keras layer below does so in `model.evaluate`).
- **Turn off "labels follow the Zipf law".** Uniform labels are mostly rare
  words, which the sampler almost never proposes: their `Q(y)` is tiny and the
  bias several times larger. The log-uniform sampler assumes a vocabulary
  sorted by frequency.
- **Accidental hits**: a frequent true word is often in the sample too. Without
  removing it, it counts twice; look at the gradient heatmaps for a sample
  whose label is a small id.
- **Cost**: the sampled forward and backward pass reads `{BATCH} + S` rows of
  the `[C, {DIM}]` matrix, the full one all `C`. Try 50,000 words.
"""


TRAIN_INTRO = f"""
**Train it.** A next-word model on a synthetic language of `C` words (the
vocabulary above), ids sorted by frequency as the sampler assumes: each word has
{len(task.SUCCESSOR_WEIGHTS)} favourite successors, taken {task.FOLLOW:.0%} of the
time, otherwise the next word is a Zipfian draw. `Embedding(C, {TRAIN_DIM})` →
`Dense({TRAIN_DIM}, tanh)` → the output layer: `SampledSoftmax(C, S)` with the `S`
chosen above, trained with `lossviz.LazyAdam` or with Keras' `Adam`, and the exact
softmax (`full_softmax_loss`) with `Adam`. All start from the same weights; every
epoch reads {TRAIN_PAIRS:,} new word pairs in batches of {task.BATCH_SIZE}, then
each run's **held-out perplexity** is measured with the full softmax.

- The **training loss** of a sampled run is the sampled estimate, biased low:
  compare runs on the held-out perplexity instead.
- **Seconds per epoch** (training steps only; the first step, which builds the
  graph, is left out). The full softmax forms `[{task.BATCH_SIZE}, C]` logits and a
  dense `[C, {TRAIN_DIM}]` gradient at every step, the sampled one
  `[{task.BATCH_SIZE}, 1 + S]` logits and `{task.BATCH_SIZE} + S` rows. Keras'
  `Adam` turns those rows into a dense gradient and updates all `C` rows of the
  weights and of both moments: **the optimizer eats much of the speed-up**.
  `LazyAdam` updates the rows a step touched. Try 50,000 words.
- **Held-out perplexity** falls from about `C` in every run; which one is lowest
  after a few epochs depends on the learning rate and the seed. At the default
  rate the `LazyAdam` run lags the `Adam` one: it moves a row only on the steps
  that touch it, where `Adam`'s momentum keeps moving the row on the steps
  after, so rare words travel further.
"""


# --------------------------------------------------------------------------
# Numbers: all from lossviz, cached per setting.


@ui.cache_resource(show_spinner=False)
def example(vocab, zipf, seed):
    """The output layer and batch; shared, never modified."""
    return sampled.example_problem(vocab, DIM, BATCH, seed=seed, zipf_labels=zipf)


def arguments(vocab, zipf, seed):
    data = example(vocab, zipf, seed)
    return data["weights"], data["biases"], data["labels"], data["inputs"]


@ui.cache_data(show_spinner=False)
def current(vocab, num_sampled, hits, zipf, seed):
    """Per-sample losses, full and sampled, and the full loss' input gradient."""
    weights, biases, labels, inputs = arguments(vocab, zipf, seed)
    full, full_grad = analysis.value_and_grad(
        lambda x: sampled.full_softmax_loss(weights, biases, labels, x), inputs
    )
    estimate = sampled.sampled_softmax_loss(
        weights, biases, labels, inputs, num_sampled,
        remove_accidental_hits=hits, seed=seed,
    )  # fmt: skip
    return {"full": full, "full_grad": full_grad, "sampled": estimate.numpy()}


@ui.cache_data(show_spinner=False)
def logit_gradients(vocab, num_sampled, hits, zipf, seed):
    """The first samples' gradients with respect to their logits, full and sampled.

    Returns the classes shown (the 10 most frequent and the labels) and the
    two ``[samples, classes]`` gradients there.
    """
    weights, biases, labels, inputs = arguments(vocab, zipf, seed)
    labels, inputs = labels[:SHOWN_SAMPLES], inputs[:SHOWN_SAMPLES]
    classes = sorted(set(range(min(vocab, 10))) | set(labels.tolist()))
    full = sampled.logit_gradients(weights, biases, labels, inputs)
    estimate = sampled.logit_gradients(
        weights, biases, labels, inputs, num_sampled,
        remove_accidental_hits=hits, seed=seed,
    )  # fmt: skip
    return classes, full.numpy()[:, classes], estimate.numpy()[:, classes]


@ui.cache_data(show_spinner="Drawing the sampled loss under many seeds…")
def draws(vocab, num_sampled, hits, zipf, seed, num_draws=NUM_DRAWS):
    """Batch-mean sampled loss under ``num_draws`` seeds, and the full loss."""
    args = arguments(vocab, zipf, seed)
    losses = sampled.sampled_softmax_loss_draws(
        *args, num_sampled, num_draws, seed=seed, remove_accidental_hits=hits
    )
    return np.mean(losses, axis=1), float(np.mean(sampled.full_softmax_loss(*args)))


def sweep_points(vocab):
    return [s for s in SAMPLED_CHOICES if s <= vocab]


@ui.cache_data(show_spinner="Sweeping the number of sampled classes…")
def count_sweep(vocab, hits, zipf, seed):
    """Bias, spread, loss and gradient norm for every sample size."""
    weights, biases, labels, inputs = arguments(vocab, zipf, seed)
    points = sweep_points(vocab)
    means, spreads = [], []
    for num_sampled in points:
        batch_means, full = draws(vocab, num_sampled, hits, zipf, seed, SWEEP_DRAWS)
        means.append(np.mean(batch_means) - full)
        spreads.append(np.std(batch_means))
    curves = analysis.sweep(
        lambda x, s: sampled.sampled_softmax_loss(
            weights, biases, labels, x, int(s),
            remove_accidental_hits=hits, seed=seed,
        ),
        inputs,
        points,
    )  # fmt: skip
    return {**curves, "bias": np.asarray(means), "spread": np.asarray(spreads)}


@ui.cache_resource(show_spinner=False)
def step_function(vocab, zipf, seed, kind):
    """A compiled forward+backward pass over variables, one per setting."""
    data = example(vocab, zipf, seed)
    return sampled.forward_backward_function(data["weights"], data["biases"], kind=kind)


@ui.cache_data(show_spinner="Timing one forward and backward pass…")
def timings(vocab, num_sampled, hits, zipf, seed, nonce):
    """Median seconds of a forward+backward pass; ``nonce`` forces a re-measure."""
    del nonce
    data = example(vocab, zipf, seed)
    labels, inputs = tf.constant(data["labels"]), tf.constant(data["inputs"])
    seconds = {}
    for kind in ("full", "sampled"):
        step = step_function(vocab, zipf, seed, kind)
        seconds[kind] = analysis.median_time(
            lambda step=step: step(labels, inputs, num_sampled, seed, hits),
            repeats=TIMING_REPEATS,
            warmup=2,
        )
    return seconds


def train_runs(num_sampled, vocab):
    """The train panel's runs: label -> (variant, parameters)."""
    size = f"C={vocab:,}"
    return {
        f"sampled S={num_sampled} + LazyAdam ({size})": (
            "sampled",
            {"num_sampled": num_sampled, "optimizer": "lazy_adam", "vocab_size": vocab},
        ),
        f"sampled S={num_sampled} + Adam ({size})": (
            "sampled",
            {"num_sampled": num_sampled, "optimizer": "adam", "vocab_size": vocab},
        ),
        f"full softmax + Adam ({size})": ("full", {"vocab_size": vocab}),
    }


def describe_run(run):
    """The last run's extras: its perplexity against the floor, a few guesses."""
    examples = run.get("examples") or []
    if not examples:
        return
    summary, rows = examples[0], examples[1:]
    st.markdown(
        f"**{run['label']}**: held-out perplexity "
        f"**{ui.format_value(summary['val_perplexity_after'], 4)}** after training. "
        f"An untrained model is near uniform (about {summary['vocab_size']:,}); "
        "the generator's own probabilities give "
        f"{ui.format_value(summary['best_perplexity'], 3)}, the floor no model "
        "can beat. Its guesses for the first held-out words (word names are "
        "made up; short names are frequent words):"
    )
    table = [
        {
            "previous word": row["previous"],
            "next word": row["next"],
            "top guesses": ", ".join(
                f"{word} ({p:.0%})"
                for word, p in zip(
                    row["predicted"], row["predicted_probability"], strict=True
                )
            ),
            "P(next), model": ui.format_value(row["model_probability"], 3),
            "P(next), true": ui.format_value(row["true_probability"], 3),
            "favourite successors": ", ".join(row["favourites"]),
        }
        for row in rows
    ]
    st.dataframe(table, hide_index=True, width="stretch")


def remeasure():
    st.session_state["sampled_timing_nonce"] = (
        st.session_state.get("sampled_timing_nonce", 0) + 1
    )


# --------------------------------------------------------------------------
# Figures.


def sample_names(labels):
    return [f"{i}: label {int(y)}" for i, y in enumerate(labels[:SHOWN_SAMPLES])]


def histogram_figure(vocab, num_sampled, hits, zipf, seed):
    batch_means, full = draws(vocab, num_sampled, hits, zipf, seed)
    return ui.charts.histogram(
        {f"sampled, S = {num_sampled}": batch_means},
        title=f"Batch-mean sampled loss under {NUM_DRAWS} seeds",
        x_title="loss (batch mean)",
        y_title="seeds",
        vlines={
            "full loss": full,
            "mean of the draws": float(np.mean(batch_means)),
        },
    )


def gradient_figures(vocab, num_sampled, hits, zipf, seed):
    classes, full, estimate = logit_gradients(vocab, num_sampled, hits, zipf, seed)
    labels = example(vocab, zipf, seed)["labels"]
    return tuple(
        ui.charts.heatmap(
            grad,
            x_labels=[f"c{c}" for c in classes],
            y_labels=sample_names(labels),
            title=title,
            x_title="class (0 = most frequent)",
            y_title="sample",
        )
        for grad, title in (
            (full, "∂ full loss / ∂ logits"),
            (estimate, f"∂ sampled loss / ∂ logits (S = {num_sampled})"),
        )
    )


def sweep_figures(vocab, hits, zipf, seed, num_sampled):
    sweep = count_sweep(vocab, hits, zipf, seed)
    now = current(vocab, num_sampled, hits, zipf, seed)
    points = sweep_points(vocab)
    full_loss = np.full(len(points), np.mean(now["full"]))
    full_norm = np.full(len(points), np.linalg.norm(now["full_grad"]))
    error = ui.charts.line(
        points,
        {"|bias|": np.abs(sweep["bias"]), "spread (std)": sweep["spread"]},
        title=f"Bias and spread over {SWEEP_DRAWS} seeds",
        x_title="sampled classes S",
        y_title="loss units",
        marker_x=num_sampled,
        marker_label=f"S = {num_sampled}",
        log_x=True,
        log_y=True,
    )
    loss = ui.charts.line(
        points,
        {"sampled (this seed)": sweep["mean_loss"], "full": full_loss},
        title="Loss as S grows",
        x_title="sampled classes S",
        y_title="loss (batch mean)",
        marker_x=num_sampled,
        marker_label=f"S = {num_sampled}",
        log_x=True,
    )
    grad = ui.charts.line(
        points,
        {"sampled (this seed)": sweep["grad_norm"], "full": full_norm},
        title="Gradient norm as S grows",
        x_title="sampled classes S",
        y_title="‖∂L/∂inputs‖",
        marker_x=num_sampled,
        marker_label=f"S = {num_sampled}",
        log_x=True,
    )
    return error, loss, grad


# Plotly figures take milliseconds each to build, far more than the cached
# numbers behind them: built once per setting and shared (Streamlit only reads
# a figure to serialise it). One cached function keeps the per-run cost of
# Streamlit's cache bookkeeping low.
@ui.cache_resource(max_entries=256, show_spinner=False)
def figures(vocab, num_sampled, hits, zipf, seed):
    error, loss, grad = sweep_figures(vocab, hits, zipf, seed, num_sampled)
    full_grad, sampled_grad = gradient_figures(vocab, num_sampled, hits, zipf, seed)
    return {
        "histogram": histogram_figure(vocab, num_sampled, hits, zipf, seed),
        "error": error,
        "loss": loss,
        "grad": grad,
        "full_grad": full_grad,
        "sampled_grad": sampled_grad,
    }


# --------------------------------------------------------------------------
# The page.

ui.header("Sampled softmax", sampled.FORMULA, INTRO)

left, right = st.columns(2)
with left:
    chosen = ui.select_slider(
        "Sampled classes S",
        key="ss_sampled",
        value=64,
        options=SAMPLED_CHOICES,
        help="num_sampled: how many classes the log-uniform sampler draws, "
        "without replacement, for the whole batch (at most the vocabulary size).",
    )
    vocab = ui.select_slider(
        "Vocabulary size C",
        key="ss_vocab",
        value=10_000,
        options=VOCAB_CHOICES,
        format_func=lambda v: f"{v:,}",
        help="num_classes: rows of the output matrix [C, 64].",
    )
with right:
    hits = ui.toggle(
        "Remove accidental hits",
        key="ss_hits",
        value=True,
        help="remove_accidental_hits: leave a sampled class that equals the "
        "label out of that sample's sum (TensorFlow's default).",
    )
    zipf = ui.toggle(
        "Labels follow the Zipf law",
        key="ss_zipf",
        value=True,
        help="On: labels are drawn from the sampler's own log-uniform "
        "distribution, like words of a text. Off: uniformly over the vocabulary.",
    )
ui.reset_button(PAGE)

num_sampled = min(chosen, vocab)
if num_sampled < chosen:
    st.caption(f"S is capped at the vocabulary size: S = {num_sampled}.")
seed = ui.seed()
now = current(vocab, num_sampled, hits, zipf, seed)
batch_means, full_mean = draws(vocab, num_sampled, hits, zipf, seed)
setting = (vocab, num_sampled, hits, zipf, seed)
figs = figures(*setting)
bias = float(np.mean(batch_means)) - full_mean

metrics = st.columns(4)
with metrics[0]:
    ui.metric(
        "Full loss (batch mean)",
        np.mean(now["full"]),
        help="`full_softmax_loss`: the exact cross-entropy over all C classes.",
    )
with metrics[1]:
    ui.metric(
        "Sampled loss (batch mean)",
        np.mean(now["sampled"]),
        help=f"`sampled_softmax_loss` with S = {num_sampled} and the app's seed "
        f"{seed}.",
    )
with metrics[2]:
    ui.metric(
        "Bias",
        bias,
        help=f"Mean of the sampled loss over {NUM_DRAWS} seeds minus the full "
        "loss (batch means). Negative: the estimate is too low.",
    )
with metrics[3]:
    ui.metric(
        "Spread",
        np.std(batch_means),
        help=f"Standard deviation of the batch-mean sampled loss over {NUM_DRAWS} "
        "seeds.",
    )
ui.nonfinite_note("full loss per sample", now["full"])
ui.nonfinite_note("sampled loss per sample", now["sampled"])

st.subheader("The estimate under many seeds", divider="gray")
ui.plot(figs["histogram"])
ui.nonfinite_note("sampled loss over seeds", batch_means)
st.caption(
    "Each seed draws a new set of candidates. The whole histogram lies on one "
    "side of the full loss when the bias is larger than the spread: averaging "
    "more steps does not remove it."
)

with ui.secondary("As the number of sampled classes grows", section=True):
    sweep = count_sweep(vocab, hits, zipf, seed)
    ui.plot(figs["error"])
    curve_left, curve_right = st.columns(2)
    with curve_left:
        ui.plot(figs["loss"])
    with curve_right:
        ui.plot(figs["grad"])
    ui.nonfinite_note("loss over the sweep", sweep["mean_loss"])
    ui.nonfinite_note("gradient norm over the sweep", sweep["grad_norm"])
    st.caption(
        f"S from 1 to {sweep_points(vocab)[-1]:,}, same batch at every point; the loss "
        "and gradient curves use the app's seed. With S = C every class is in the "
        "sample and the estimate nears the full loss (the expected counts approach 1)."
    )

with ui.secondary("Gradients", section=True):
    grad_left, grad_right = st.columns(2)
    with grad_left:
        ui.plot(figs["full_grad"])
    with grad_right:
        ui.plot(figs["sampled_grad"])
    ui.nonfinite_note("sampled gradient", logit_gradients(*setting)[2])
    st.caption(
        f"Columns: the 10 most frequent classes and the labels of the first "
        f"{SHOWN_SAMPLES} samples. The full gradient is softmax − one-hot over all "
        f"{vocab:,} classes; the sampled one is non-zero only on the label and the "
        f"{num_sampled} sampled classes, and only those rows of the output matrix "
        "receive a gradient (an IndexedSlices). With accidental hits kept, a "
        "frequent label is pushed down by its sampled copy: its cell is less negative."
    )

with ui.secondary("Cost of one forward and backward pass", section=True):
    seconds = timings(
        vocab,
        num_sampled,
        hits,
        zipf,
        seed,
        st.session_state.get("sampled_timing_nonce", 0),
    )
    cost = st.columns([1, 1, 1, 1])
    with cost[0]:
        ui.metric(
            "Full (ms)",
            seconds["full"] * 1e3,
            help=f"Median of {TIMING_REPEATS} compiled passes: logits [{BATCH}, C], "
            "dense gradient [C, 64].",
        )
    with cost[1]:
        ui.metric(
            "Sampled (ms)",
            seconds["sampled"] * 1e3,
            help=f"Median of {TIMING_REPEATS} compiled passes, sampling included: "
            f"logits [{BATCH}, 1 + S], sparse gradient over {BATCH} + S rows.",
        )
    with cost[2]:
        ui.metric(
            "Full ÷ sampled",
            seconds["full"] / seconds["sampled"],
            help="How many times faster the sampled pass is, measured now on this "
            "server (which others may be using).",
        )
    with cost[3]:
        st.button(
            "Measure again",
            key="ss_remeasure",
            on_click=remeasure,
            icon=":material/timer:",
            help=f"Time both passes again (median of {TIMING_REPEATS}, after a "
            "warm-up).",
        )

ui.use_it(
    [sampled.SampledSoftmax, sampled.sampled_softmax_loss],
    f"""import keras
import lossviz

inputs = keras.Input((None,), dtype="int32")    # token ids [batch, time]
labels = keras.Input((None,), dtype="int32")    # next tokens [batch, time]
hidden = keras.layers.Embedding({vocab}, 128, mask_zero=True)(inputs)
hidden = keras.layers.LSTM(256, return_sequences=True)(hidden)
# Training: adds the sampled loss; otherwise: full-softmax probabilities
# [batch, time, {vocab}], and the exact loss for model.evaluate.
probs = lossviz.SampledSoftmax(
    num_classes={vocab}, num_sampled={num_sampled}, remove_accidental_hits={hits}
)(hidden, labels)
model = keras.Model([inputs, labels], probs)
model.compile(optimizer="adam", loss=None)  # the layer adds its own loss
model.fit([x, y], epochs=5)                  # no separate target
model.evaluate([x, y])                       # full cross-entropy
model.save("model.keras")
keras.saving.load_model("model.keras")       # no custom_objects needed""",
)

st.markdown(TRAIN_INTRO)
runs = train_runs(num_sampled, vocab)
ui.train_panel(
    TRAIN_TASK,
    runs,
    metrics={
        "loss": "Training loss (what each run minimises)",
        "val_perplexity": "Held-out perplexity (full softmax)",
        "seconds": "Seconds per epoch (training steps)",
    },
    learning_rate=TRAIN_LEARNING_RATE,
    describe=describe_run,
)
