"""Words and controls of the "Sampled softmax" page.

Imports ``ui`` only: the landing page reads the controls and lessons before
TensorFlow loads. Sentences that state a number take it as an argument, from
``lossviz.explore.sampled``.
"""

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

LESSONS = (
    ui.Lesson(
        "8 of 10,000: biased low",
        {"num_sampled": 8, "num_classes": 10_000},
        "Eight sampled classes make the loss very cheap, but the histogram "
        "sits far left of the full loss: the sampled loss underestimates it. "
        "Train with it, evaluate with the full softmax.",
    ),
    ui.Lesson(
        "1,024 of 10,000: closer",
        {"num_sampled": 1024, "num_classes": 10_000},
        "More samples: the bias and the spread shrink, at a higher cost per "
        "step (see the timing).",
    ),
    ui.Lesson(
        "The optimizer eats the speed-up",
        {"num_sampled": 64, "num_classes": 50_000},
        "Press Train below: with Keras' Adam the sparse gradient of the "
        "output matrix is made dense and every row is updated, so sampled "
        "training is barely faster than full. LazyAdam updates only the "
        "sampled rows and keeps the speed-up.",
    ),
)


def intro(batch: int, dim: int) -> str:
    return f"""
A language model's last layer scores every word of the vocabulary: with `C` words
the softmax needs `[batch, C]` logits and a `[C, D]` gradient at every step.
**Sampled softmax** (Jean et al. 2015) scores the true word and one shared sample
`S` of words drawn from a log-uniform (Zipfian) proposal, and subtracts the log of
each word's expected count `Q` from its logit. Here: a batch of {batch} hidden
states of size {dim} and an output layer whose biases are the log-frequencies of
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
- **Cost**: the sampled forward and backward pass reads `{batch} + S` rows of
  the `[C, {dim}]` matrix, the full one all `C`. Try 50,000 words.
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


DRAWS_SECTION = "The estimate under many seeds"
DRAWS_CAPTION = (
    "Each seed draws a new set of candidates. The whole histogram lies on one "
    "side of the full loss when the bias is larger than the spread: averaging "
    "more steps does not remove it."
)

SWEEP_SECTION = "As the number of sampled classes grows"


def sweep_caption(largest: int) -> str:
    return (
        f"S from 1 to {largest:,}, same batch at every point; the loss and "
        "gradient curves use the app's seed. With S = C every class is in the "
        "sample and the estimate nears the full loss (the expected counts "
        "approach 1)."
    )


GRADIENT_SECTION = "Gradients"


def gradient_caption(
    frequent: int, samples: int, num_classes: int, num_sampled: int
) -> str:
    return (
        f"Columns: the {frequent} most frequent classes and the labels of the "
        f"first {samples} samples. The full gradient is softmax − one-hot over "
        f"all {num_classes:,} classes; the sampled one is non-zero only on the "
        f"label and the {num_sampled} sampled classes, and only those rows of "
        "the output matrix receive a gradient (an IndexedSlices). With "
        "accidental hits kept, a frequent label is pushed down by its sampled "
        "copy: its cell is less negative."
    )


COST_SECTION = "Cost of one forward and backward pass"


def cost_helps(repeats: int, batch: int, dim: int) -> dict:
    return {
        "Full (ms)": f"Median of {repeats} compiled passes: logits [{batch}, C], "
        f"dense gradient [C, {dim}].",
        "Sampled (ms)": f"Median of {repeats} compiled passes, sampling "
        f"included: logits [{batch}, 1 + S], sparse gradient over {batch} + S rows.",
        "Full ÷ sampled": "How many times faster the sampled pass is, measured "
        "now on this server (which others may be using).",
    }


def remeasure_help(repeats: int) -> str:
    return f"Time both passes again (median of {repeats}, after a warm-up)."


def snippet(num_classes: int, num_sampled: int, remove_accidental_hits: bool) -> str:
    return f"""import keras
import lossviz

inputs = keras.Input((None,), dtype="int32")    # token ids [batch, time]
labels = keras.Input((None,), dtype="int32")    # next tokens [batch, time]
hidden = keras.layers.Embedding({num_classes}, 128, mask_zero=True)(inputs)
hidden = keras.layers.LSTM(256, return_sequences=True)(hidden)
# Training: adds the sampled loss; otherwise: full-softmax probabilities
# [batch, time, {num_classes}], and the exact loss for model.evaluate.
probs = lossviz.SampledSoftmax(
    num_classes={num_classes}, num_sampled={num_sampled},
    remove_accidental_hits={remove_accidental_hits},
)(hidden, labels)
model = keras.Model([inputs, labels], probs)
model.compile(optimizer="adam", loss=None)  # the layer adds its own loss
model.fit([x, y], epochs=5)                  # no separate target
model.evaluate([x, y])                       # full cross-entropy
model.save("model.keras")
keras.saving.load_model("model.keras")       # no custom_objects needed"""


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

- The **training loss** of a sampled run is the sampled estimate, biased low:
  compare runs on the held-out perplexity instead.
- **Seconds per epoch** (training steps only; the first step, which builds the
  graph, is left out). The full softmax forms `[{facts.batch_size}, C]` logits and a
  dense `[C, {facts.embed_dim}]` gradient at every step, the sampled one
  `[{facts.batch_size}, 1 + S]` logits and `{facts.batch_size} + S` rows. Keras'
  `Adam` turns those rows into a dense gradient and updates all `C` rows of the
  weights and of both moments: **the optimizer eats much of the speed-up**.
  `LazyAdam` updates the rows a step touched. Try 50,000 words.
- **Held-out perplexity** falls from about `C` in every run; which one is lowest
  after a few epochs depends on the learning rate and the seed. At the default
  rate the `LazyAdam` run lags the `Adam` one: it moves a row only on the steps
  that touch it, where `Adam`'s momentum keeps moving the row on the steps
  after, so rare words travel further.
"""

SWEEPING = "Sweeping the number of sampled classes…"
TIMING = "Timing the full and the sampled pass…"
