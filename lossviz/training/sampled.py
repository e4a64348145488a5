"""The sampled-softmax family's training task: a tiny next-word model.

A synthetic language over ``vocab_size`` words, ids sorted by frequency (word
0 the most frequent), as the log-uniform sampler assumes: every word has
``len(SUCCESSOR_WEIGHTS)`` favourite successors; the next word is one of them
with probability ``FOLLOW`` (weighted by ``SUCCESSOR_WEIGHTS``), otherwise a
fresh draw from the log-uniform (Zipfian) distribution, which is also where
the successors come from. So there is a bigram structure to learn, and the
generator's own conditional probabilities give the best perplexity any model
can reach on held-out text.

The model reads the previous word: ``Embedding(vocab_size, embed_dim)`` →
``Dense(embed_dim, tanh)`` → an output layer over the vocabulary. Variants:

- ``"sampled"``: ``lossviz.SampledSoftmax(vocab_size, num_sampled)``, which
  adds the sampled loss while training, with ``lossviz.LazyAdam`` (the
  default, ``optimizer="lazy_adam"``, which keeps the sparse
  ``IndexedSlices`` gradients of both word matrices sparse) or Keras' ``Adam``
  (``optimizer="adam"``, which turns them dense and updates every row);
- ``"full"``: the same model whose output layer adds
  ``lossviz.full_softmax_loss``, the exact cross-entropy, trained with Adam.

Both output layers hold the same ``[vocab_size, embed_dim]`` kernel and bias,
so with one seed every run starts from the same weights. Every epoch reads
``pairs_per_epoch`` new word pairs, as a language model reads a large corpus
once, so the held-out perplexity measures learning, not memorising. After
every epoch
a callback logs ``val_perplexity``, ``exp`` of the mean exact cross-entropy
(``lossviz.full_softmax_loss``) on held-out text, and ``seconds``, the time
of the epoch's training steps (see ``EpochMetrics``). The run's ``summary``
holds its held-out perplexity after training beside the uniform guess and the
generator's floor, its ``rows`` the model's guesses for the first held-out
words. Everything is generated
from the run's seed (``core.rng``), nothing is downloaded, and every size is
capped.

Parameters (``lossviz.training.train(..., **params)``), integers with their
defaults and ranges in ``COMMON_PARAMS`` and ``SAMPLED_PARAMS``:
``vocab_size`` (10,000), ``embed_dim`` (16), ``pairs_per_epoch`` (2,048); for
``"sampled"`` also ``num_sampled`` (64, at most ``vocab_size``) and
``optimizer`` (``"lazy_adam"`` or ``"adam"``).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from lossviz import sampled
from lossviz._common import check_choice, check_number
from lossviz._tf import tf
from lossviz.optimizers import LazyAdam
from lossviz.training import core

FOLLOW = 0.75
SUCCESSOR_WEIGHTS = (0.5, 0.25, 0.15, 0.1)
BATCH_SIZE = 256
VAL_PAIRS = 256
# Rows of held-out text per full-softmax chunk: at most ~2M logits at a time.
MAX_VAL_LOGITS = 2**21
NUM_EXAMPLES = 6
TOP_K = 3
OPTIMIZERS = ("lazy_adam", "adam")

# name: (default, low, high); all integers. num_sampled is also capped at
# vocab_size.
COMMON_PARAMS = {
    "vocab_size": (10_000, 100, 50_000),
    "embed_dim": (16, 4, 128),
    # At least two steps: the first step of a run is not timed.
    "pairs_per_epoch": (2_048, 2 * BATCH_SIZE, 16_384),
}
SAMPLED_PARAMS = {"num_sampled": (64, 1, 50_000), **COMMON_PARAMS}

# Pronounceable word names: frequent words are short.
_SYLLABLES = "ka lo mi ne ru ta vi so pe du ga ri no be hu sa fe zo li ma".split()


def word(word_id: int) -> str:
    """A pronounceable name for a word id: 0 is "ka", 1 "lo", 20 "kaka", 21 "kalo"."""
    word_id = int(word_id)
    base = len(_SYLLABLES)
    name = _SYLLABLES[word_id % base]
    word_id //= base
    while word_id:
        word_id -= 1
        name = _SYLLABLES[word_id % base] + name
        word_id //= base
    return name


def _check_params(variant: str, params: dict) -> dict:
    """The variant's parameters with defaults filled in; ValueError names a bad one."""
    spec = SAMPLED_PARAMS if variant == "sampled" else COMMON_PARAMS
    known = (*spec, "optimizer") if variant == "sampled" else tuple(spec)
    for name in params:
        if name not in known:
            names = ", ".join(f"`{n}`" for n in known)
            raise ValueError(
                f"Unknown parameter `{name}`; the {variant!r} variant takes {names}."
            )
    checked = {}
    for name, (default, low, high) in spec.items():
        value = params.get(name, default)
        check_number(name, value, low=low, high=high, integer=True)
        checked[name] = int(value)
    if variant == "sampled":
        vocab_size = checked["vocab_size"]
        check_number(
            "num_sampled", checked["num_sampled"], low=1, high=vocab_size, integer=True
        )
        checked["optimizer"] = check_choice(
            "optimizer", params.get("optimizer", "lazy_adam"), OPTIMIZERS
        )
    return checked


# ------------------------------------------------------------------ the data


def zipf_probabilities(vocab_size: int) -> np.ndarray:
    """``[vocab_size]`` log-uniform probabilities, the sampler's own (float64)."""
    ids = np.arange(vocab_size)
    return np.asarray(sampled.log_uniform_probability(ids, vocab_size))


def language(seed: int, vocab_size: int) -> np.ndarray:
    """The language of a seed: ``[vocab_size, K]`` favourite successors per word.

    ``K = len(SUCCESSOR_WEIGHTS)``; each successor is drawn from the
    log-uniform distribution, so frequent words follow most words.
    """
    rng = core.rng(seed, salt=10)
    size = (vocab_size, len(SUCCESSOR_WEIGHTS))
    return rng.choice(vocab_size, size=size, p=zipf_probabilities(vocab_size))


def corpus(rng: np.random.Generator, successors: np.ndarray, length: int):
    """A text of ``length`` words from the bigram generator.

    The first word is a log-uniform draw; then each word is, with probability
    ``FOLLOW``, a favourite successor of the word before it (chosen with
    ``SUCCESSOR_WEIGHTS``), else a fresh log-uniform draw.

    Returns:
      int32 ``[length]`` word ids.
    """
    vocab_size = len(successors)
    probabilities = zipf_probabilities(vocab_size)
    fresh = rng.choice(vocab_size, size=length, p=probabilities)
    follow = rng.random(length) < FOLLOW
    slot = rng.choice(len(SUCCESSOR_WEIGHTS), size=length, p=SUCCESSOR_WEIGHTS)
    table = successors.tolist()
    words = fresh.tolist()
    for t in range(1, length):
        if follow[t]:
            words[t] = table[words[t - 1]][slot[t]]
    return np.asarray(words, np.int32)


def next_word_probability(successors: np.ndarray, previous, following) -> np.ndarray:
    """The generator's ``P(following | previous)``, elementwise (float64)."""
    previous = np.asarray(previous)
    following = np.asarray(following)
    fresh = zipf_probabilities(len(successors))[following]
    picked = successors[previous] == following[..., None]
    return FOLLOW * (picked @ np.asarray(SUCCESSOR_WEIGHTS)) + (1 - FOLLOW) * fresh


def dataset(seed: int, vocab_size: int, num_pairs: int) -> dict:
    """Training and held-out next-word pairs of one language.

    ``num_pairs`` is rounded down to a multiple of ``BATCH_SIZE`` (every step
    then has the same shape and the train step is traced once).

    Returns:
      A dict: ``successors`` ``[vocab_size, K]``; int32 ``x``, ``y``
      ``[num_pairs]`` (a word and the word after it); ``x_val``, ``y_val``
      ``[VAL_PAIRS]`` from a separate text; ``best_perplexity``, the
      generator's own perplexity on the held-out pairs.
    """
    successors = language(seed, vocab_size)
    num_pairs -= num_pairs % BATCH_SIZE
    text = corpus(core.rng(seed, salt=11), successors, num_pairs + 1)
    held_out = corpus(core.rng(seed, salt=12), successors, VAL_PAIRS + 1)
    x_val, y_val = held_out[:-1], held_out[1:]
    true = next_word_probability(successors, x_val, y_val)
    return {
        "successors": successors,
        "x": text[:-1],
        "y": text[1:],
        "x_val": x_val,
        "y_val": y_val,
        "best_perplexity": float(np.exp(-np.mean(np.log(true)))),
    }


# ----------------------------------------------------------------- the model


class _FullSoftmax(keras.layers.Layer):
    """The exact counterpart of ``SampledSoftmax``: same weights, full loss.

    Adds the mean ``lossviz.full_softmax_loss`` with ``add_loss`` and returns
    the per-sample losses. Its kernel gradient is a dense ``[C, D]`` matrix.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_classes, input_shape[-1]),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.num_classes,), initializer="zeros"
        )

    def call(self, inputs, labels=None):
        losses = sampled.full_softmax_loss(self.kernel, self.bias, labels, inputs)
        self.add_loss(tf.reduce_mean(losses))
        return losses

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])


def build_model(variant: str, params: dict, seed: int):
    """The training model and the encoder of the previous word.

    Returns:
      ``(model, encoder, output_layer)``: ``model`` takes ``[previous, next]``
      ids ``[batch]`` each and adds its own loss; ``encoder`` maps previous
      ids ``[batch]`` to hidden states ``[batch, embed_dim]``; the output
      layer holds ``kernel [vocab_size, embed_dim]`` and ``bias``.
    """
    vocab_size, dim = params["vocab_size"], params["embed_dim"]
    previous = keras.Input((), dtype="int32", name="previous")
    following = keras.Input((), dtype="int32", name="next")
    hidden = keras.layers.Embedding(vocab_size, dim, name="words")(previous)
    hidden = keras.layers.Dense(dim, activation="tanh", name="context")(hidden)
    if variant == "sampled":
        output = sampled.SampledSoftmax(
            vocab_size, params["num_sampled"], seed=seed, name="output"
        )
    else:
        output = _FullSoftmax(vocab_size, name="output")
    losses = output(hidden, following)
    return (
        keras.Model([previous, following], losses),
        keras.Model(previous, hidden),
        output,
    )


def full_perplexity(encoder, output_layer, previous, following) -> float:
    """``exp`` of the mean exact cross-entropy, by ``lossviz.full_softmax_loss``.

    Computed eagerly in chunks of at most ``MAX_VAL_LOGITS`` logits.
    """
    hidden = encoder(previous, training=False)
    rows = max(1, MAX_VAL_LOGITS // output_layer.num_classes)
    total = 0.0
    for start in range(0, len(following), rows):
        losses = sampled.full_softmax_loss(
            output_layer.kernel,
            output_layer.bias,
            following[start : start + rows],
            hidden[start : start + rows],
        )
        total += float(tf.reduce_sum(losses))
    return float(np.exp(total / len(following)))


class EpochMetrics(keras.callbacks.Callback):
    """Logs ``seconds`` and ``val_perplexity`` after every epoch.

    ``seconds`` is the wall time of the epoch's training steps, the held-out
    evaluation left out. The run's first step also traces and compiles the
    train step: it is left out, and the first epoch's time is scaled from its
    other steps to a whole epoch (kept in ``first_step_seconds``).
    """

    def __init__(self, encoder, output_layer, previous, following):
        super().__init__()
        self.encoder = encoder
        self.output_layer = output_layer
        self.previous = previous
        self.following = following
        self.first_step_seconds = None
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.first_step_seconds is None:
            now = time.perf_counter()
            self.first_step_seconds = now - self.started
            self.started = now

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        if epoch == 0 and self.steps > 1:
            seconds *= self.steps / (self.steps - 1)
        if logs is not None:
            logs["seconds"] = seconds
            logs["val_perplexity"] = full_perplexity(
                self.encoder, self.output_layer, self.previous, self.following
            )


def _report(data, encoder, output_layer, metrics: EpochMetrics, history, result):
    """The run's summary (perplexity after training, beside the uniform guess
    and the generator's floor) and its guesses for the first held-out words."""
    successors = data["successors"]
    result.summary.update(
        {
            "held-out perplexity after training": history["val_perplexity"][-1],
            "uniform guess (the vocabulary size)": len(successors),
            "the generator's own, a floor no model beats": data["best_perplexity"],
            "first step, building the graph (s)": metrics.first_step_seconds,
        }
    )
    previous = data["x_val"][:NUM_EXAMPLES]
    following = data["y_val"][:NUM_EXAMPLES]
    hidden = encoder(previous, training=False)
    logits = tf.matmul(hidden, output_layer.kernel, transpose_b=True)
    probs = tf.nn.softmax(logits + output_layer.bias).numpy()
    true = next_word_probability(successors, previous, following)
    for i, (before, after) in enumerate(zip(previous, following, strict=True)):
        top = np.argsort(-probs[i])[:TOP_K]
        result.rows.append(
            {
                "previous word": word(before),
                "next word": word(after),
                "top guesses": ", ".join(f"{word(t)} ({probs[i, t]:.0%})" for t in top),
                "P(next), model": float(probs[i, after]),
                "P(next), true": float(true[i]),
                "favourite successors": ", ".join(word(s) for s in successors[before]),
            }
        )


def _batches(previous, following) -> tf.data.Dataset:
    """Batches of ``([previous, next],)``: the model's two inputs, no target.

    The layer adds the loss, so there is no ``y``. The text is already random,
    so no shuffling.
    """
    options = tf.data.Options()
    # Autotuning off and an endless dataset (``repeat``; ``steps_per_epoch``
    # ends the epochs): with autotuning on, or with the iterator Keras makes
    # anew after the last epoch of a finite dataset, ``fit`` waited for
    # tf.data's background work before returning, 0.4 to 4 s on 2 cores.
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_tensor_slices(((previous, following),))
    dataset = dataset.batch(BATCH_SIZE, drop_remainder=True)
    return dataset.repeat().with_options(options)


def _run(ctx: core.RunContext) -> None:
    """Runs the ``"sampled"`` or ``"full"`` variant (see the module doc)."""
    params = _check_params(ctx.variant, ctx.params)
    steps = params["pairs_per_epoch"] // BATCH_SIZE
    data = dataset(ctx.seed, params["vocab_size"], ctx.epochs * steps * BATCH_SIZE)
    with ctx.strategy.scope():
        model, encoder, output_layer = build_model(ctx.variant, params, ctx.seed)
        if params.get("optimizer", "adam") == "lazy_adam":
            optimizer = LazyAdam(ctx.learning_rate)
        else:
            optimizer = keras.optimizers.Adam(ctx.learning_rate)
        model.compile(optimizer=optimizer, loss=None, jit_compile=False)
    metrics = EpochMetrics(encoder, output_layer, data["x_val"], data["y_val"])
    history = model.fit(
        _batches(data["x"], data["y"]),
        epochs=ctx.epochs,
        steps_per_epoch=steps,
        shuffle=False,  # the text is random already; a Dataset is not shuffled
        callbacks=[metrics, *ctx.callbacks],
        verbose=0,
    )
    _report(data, encoder, output_layer, metrics, history.history, ctx.result)


TASK = core.register_task(
    core.Task(
        name="sampled",
        title="Sampled softmax: a next-word model on a Zipfian language",
        variants=("sampled", "full"),
        run=_run,
        metrics=("loss", "val_perplexity", "seconds"),
    )
)
