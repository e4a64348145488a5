"""Words and controls of the "Sampled softmax" page.

Imports ``ui`` only: the landing page reads the controls and lessons before
TensorFlow loads. Sentences that state a number take it as an argument, from
``lossviz.explore.sampled``.
"""

from dataclasses import dataclass

import ui

TITLE = "Sampled softmax"

CONTROLS = ui.Controls(
    "sampled",
    [
        ui.Choice(
            "num_sampled",
            "Sampled classes S",
            64,
            param=True,
            # The grid of the page's sweep over S (explore.SAMPLED_CHOICES).
            options=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
            help="num_sampled: how many classes the log-uniform sampler draws, "
            "without replacement, for the whole batch (at most the vocabulary size).",
        ),
        ui.Choice(
            "num_classes",
            "Vocabulary size C",
            10_000,
            options=(100, 1_000, 10_000, 50_000),
            format_func=lambda v: f"{v:,}",
            help="num_classes: rows of the output matrix [C, D].",
        ),
        ui.Toggle(
            "remove_accidental_hits",
            "Remove accidental hits",
            True,
            param=True,
            help="remove_accidental_hits: leave a sampled class that equals the "
            "label out of that sample's sum (TensorFlow's default).",
        ),
        ui.Toggle(
            "zipf_labels",
            "Labels follow the Zipf law",
            True,
            help="On: labels are drawn from the sampler's own log-uniform "
            "distribution, like words of a text. Off: uniformly over the vocabulary.",
        ),
    ],
)

# The main control, beside the Play chart; the others below the stage.
LEAD = ("num_sampled",)
COLUMNS = [("num_classes",), ("remove_accidental_hits", "zipf_labels")]
INTRO_LABEL = "What to try"

LESSONS = (
    ui.Lesson(
        "8 of 10,000: biased low",
        {"num_sampled": 8, "num_classes": 10_000},
        "Every seed's sampled loss lies below the full loss, and the mean over "
        "all seeds is below it by more than their spread: the sampled loss "
        "underestimates the full one, and averaging more steps does not remove "
        "that. Train with it, evaluate with the full softmax.",
        check="biased_low",
    ),
    ui.Lesson(
        "1,024 of 10,000: closer",
        {"num_sampled": 1024, "num_classes": 10_000},
        "More samples: the bias and the spread are both smaller than with 8 "
        "sampled classes. What the extra samples cost per step: see the timing.",
        check="closer",
    ),
    ui.Lesson(
        "The optimizer eats the speed-up",
        {"num_sampled": 64, "num_classes": 50_000},
        "A sampled step gives the output matrix a gradient on a few rows only. "
        "Keras' Adam updates the whole matrix: once every row has moments, one "
        "sampled step changes all C rows, as many as a full-softmax step, and "
        "from a fresh start its momentum keeps moving the rows of earlier steps. "
        "LazyAdam changes only the rows the step touched. Press Train below to "
        "see what each costs per epoch.",
        check="optimizer_rows",
    ),
)


def intro(facts) -> str:
    """``facts``: ``lossviz.explore.sampled.IntroFacts``, at the defaults."""
    at = facts.setting
    below = "below" if facts.bias < 0 else "above"
    return f"""
A language model's last layer scores every word of the vocabulary: with `C` words
the softmax needs `[batch, C]` logits and a `[C, D]` gradient at every step.
**Sampled softmax** (Jean et al. 2015) scores the true word and one shared sample
`S` of words drawn from a log-uniform (Zipfian) proposal, and subtracts the log of
each word's expected count `Q` from its logit. Here: a batch of {facts.batch}
hidden states of size {facts.dim} and an output layer whose biases are the
log-frequencies of a Zipfian vocabulary (word 0 the most frequent).

What to try:
- **Move the number of sampled classes.** The true word's logit is raised by
  `−log Q(y)`: at the defaults (S = {at.num_sampled:,} of {at.num_classes:,}),
  {facts.draws_below} of {facts.num_draws} seeds give a sampled loss below the
  full loss {facts.full_mean:.4g}, and their mean is {abs(facts.bias):.4g}
  {below} it (spread {facts.spread:.4g}). Press Play on the chart to watch
  the histogram of the seeds tighten and move toward the full loss as `S`
  grows, and the sweep below for bias and spread; compare training curves of
  a sampled loss only with each other, and evaluate with the full loss (the
  Keras layer below does so in `model.evaluate`).
- **Turn off "labels follow the Zipf law".** Uniform labels are mostly rare
  words, which the sampler seldom proposes: their `Q(y)` is tiny, and at the
  defaults the bias is {facts.uniform_ratio:.2g} times larger
  ({facts.uniform_bias:.4g} against {facts.zipf_bias:.4g}). The log-uniform
  sampler assumes a vocabulary sorted by frequency.
- **Accidental hits**: a true word can be in the sample too ({facts.hits} of the
  {facts.batch} labels at the defaults and this seed). Without removing it, it
  counts twice; look at the sampled gradient beside the histogram for a
  sample whose label is a small id.
- **Cost**: the sampled forward and backward pass reads at most
  `{facts.batch} + S` rows of the `[C, {facts.dim}]` matrix, the full one all
  `C`. Try 50,000 words.
"""


def capped(num_sampled: int) -> str:
    return f"S is capped at the vocabulary size: S = {num_sampled}."


def metric_helps(num_sampled: int, seed: int, num_draws: int) -> dict:
    return {
        "Full loss (batch mean)": "`full_softmax_loss`: the exact cross-entropy "
        "over all C classes.",
        "Sampled loss (batch mean)": f"`sampled_softmax_loss` with S = "
        f"{num_sampled} and the app's seed {seed}.",
        "Bias": f"Mean of the sampled loss over {num_draws} seeds minus the full "
        "loss (batch means). Negative: the estimate is too low.",
        "Spread": f"Standard deviation of the batch-mean sampled loss over "
        f"{num_draws} seeds.",
    }


def draws_caption(point) -> str:
    """``point``: ``lossviz.explore.sampled.Point``."""
    side = "below" if point.bias < 0 else "above"
    text = (
        f"Each seed draws a new set of candidates. Here {point.draws_below} of "
        f"{point.num_draws} batch means lie below the full loss, and their mean "
        f"is {abs(point.bias):.4g} {side} it, with a spread of {point.spread:.4g}"
    )
    if abs(point.bias) > point.spread:
        return (
            f"{text}: a bias larger than the spread, which averaging more steps "
            "does not remove."
        )
    return f"{text}."


SWEEP_SECTION = "As the number of sampled classes grows"


def sweep_caption(grid) -> str:
    """``grid``: ``lossviz.explore.sampled.Sweep``."""
    largest = int(grid.num_sampled[-1])
    every = (
        " (every class is in the sample)" if largest == grid.setting.num_classes else ""
    )
    return (
        f"S from 1 to {largest:,}, same batch at every point; the loss and "
        "gradient curves use the app's seed. The size of the bias goes from "
        f"{grid.abs_bias[0]:.4g} at S = 1 to {grid.abs_bias[-1]:.4g} at "
        f"S = {largest:,}{every}, the spread from {grid.spread[0]:.4g} to "
        f"{grid.spread[-1]:.4g}."
    )


GRADIENT_SECTION = "Gradients"


def gradient_caption(point, frequent: int, samples: int) -> str:
    """``point``: ``lossviz.explore.sampled.Point``."""
    at = point.setting
    kept = "removed" if at.remove_accidental_hits else "kept"
    return (
        f"Columns: the {frequent} most frequent classes and the labels of the "
        f"first {samples} samples; rows: each of those samples and its label "
        "(class 0 is the most frequent). The full gradient is softmax − one-hot over "
        f"all {at.num_classes:,} classes; the sampled one, beside the histogram "
        "above on the same colour scale, is non-zero only on the label and the "
        f"{at.num_sampled:,} sampled classes, and only those rows of the output "
        "matrix receive a gradient (an IndexedSlices). At this seed "
        f"{point.hits} of the {len(point.labels)} labels are in the sample "
        f"(accidental hits, {kept} now). Kept, a label is pushed down by its "
        "sampled copy: its cell is less negative."
    )


COST_SECTION = "Cost of one forward and backward pass"


def cost_helps(repeats: int, batch: int, dim: int) -> dict:
    return {
        "Full (ms)": f"Median of {repeats} compiled passes: logits [{batch}, C], "
        f"dense gradient [C, {dim}].",
        "Sampled (ms)": f"Median of {repeats} compiled passes, sampling "
        f"included: logits [{batch}, 1 + S], sparse gradient over at most "
        f"{batch} + S rows.",
        "Full ÷ sampled": "How many times faster the sampled pass is, measured "
        "now on this server (which others may be using).",
    }


def remeasure_help(repeats: int) -> str:
    return f"Time both passes again (median of {repeats}, after a warm-up)."


@dataclass(frozen=True)
class SnippetTemplate:
    """The sizes the "Use it in your model" snippet fills in besides the
    page's controls (a test builds the same model from them)."""

    embed_dim: int = 128
    units: int = 256
    learning_rate: float = 1e-3
    epochs: int = 5


SNIPPET = SnippetTemplate()


def snippet(
    num_classes: int,
    num_sampled: int,
    remove_accidental_hits: bool,
    template: SnippetTemplate = SNIPPET,
) -> str:
    t = template
    return f"""import keras
import lossviz

inputs = keras.Input((None,), dtype="int32")    # token ids [batch, time]
labels = keras.Input((None,), dtype="int32")    # next tokens [batch, time]
hidden = keras.layers.Embedding({num_classes}, {t.embed_dim}, mask_zero=True)(inputs)
hidden = keras.layers.LSTM({t.units}, return_sequences=True)(hidden)
# Training: adds the sampled loss; otherwise: full-softmax probabilities
# [batch, time, {num_classes}], and the exact loss for model.evaluate.
probs = lossviz.SampledSoftmax(
    num_classes={num_classes}, num_sampled={num_sampled},
    remove_accidental_hits={remove_accidental_hits},
)(hidden, labels)
model = keras.Model([inputs, labels], probs)
# LazyAdam updates only the rows of the output matrix (and of the embedding)
# that a step touched; Keras' Adam would rewrite all {num_classes:,} of each.
# loss=None: the layer adds its own loss.
model.compile(optimizer=lossviz.LazyAdam(learning_rate={t.learning_rate:g}), loss=None)
model.fit([x, y], epochs={t.epochs})  # x, y: int ids [batch, time]
model.evaluate([x, y])  # the full cross-entropy
model.save("model.keras")
keras.saving.load_model("model.keras")      # no custom_objects needed"""


def train_intro(facts) -> str:
    """``facts``: ``lossviz.explore.sampled.TRAIN_FACTS``."""
    return f"""
**Train it.** A next-word model on a synthetic language of `C` words (the
vocabulary above), ids sorted by frequency as the sampler assumes: each word has
{facts.successors} favourite successors, taken {facts.follow:.0%} of the
time, otherwise the next word is a Zipfian draw. `Embedding(C, {facts.embed_dim})` →
`Dense({facts.embed_dim}, tanh)` → the output layer: `SampledSoftmax(C, S)` with the
`S` chosen above, trained with `lossviz.LazyAdam` or with Keras' `Adam`, and the
exact softmax (`full_softmax_loss`) with `Adam`. All start from the same weights;
every epoch reads {facts.pairs_per_epoch:,} new word pairs in batches of
{facts.batch_size}, then each run's **held-out perplexity** is measured with the
full softmax.

- The **training loss** of a sampled run is the sampled estimate, which
  underestimates the full loss (see above): compare runs on the held-out
  perplexity instead.
- **Seconds per epoch** (training steps only; the first step, which builds the
  graph, is left out). The full softmax forms `[{facts.batch_size}, C]` logits and a
  dense `[C, {facts.embed_dim}]` gradient at every step, the sampled one
  `[{facts.batch_size}, 1 + S]` logits and a gradient on at most
  `{facts.batch_size} + S` rows. Keras' `Adam` rewrites the whole matrix and both
  its moments at every step, `LazyAdam` only the rows the step touched (the
  lesson "The optimizer eats the speed-up" counts the rows each one changes):
  compare their seconds per epoch. Try 50,000 words.
- **Held-out perplexity**: a uniform guess scores `C`. Which run is lowest
  after a few epochs depends on the learning rate and the seed. Where the
  `LazyAdam` run lags the `Adam` one, that is its laziness: it moves a row only
  on the steps that touch it, where `Adam`'s momentum keeps moving the rows of
  earlier steps (the same lesson counts those rows too).
"""


SWEEPING = "Sweeping the number of sampled classes…"
TIMING = "Timing the full and the sampled pass…"
