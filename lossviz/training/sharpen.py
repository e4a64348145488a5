"""Training task of the sharpening family: emit the word of a target embedding.

A tiny model reads a feature vector and outputs probabilities over a small
vocabulary (``Dense`` + softmax). It is trained with
``lossviz.EmbeddingTargetLoss``, the loss users import, against the embedding
of the right word: the loss compares the target embedding with the
(sharpened) expected embedding ``sharpen_k(p) @ E``, so the model only learns
which word to emit through the embedding table. Three variants of the task
``"sharpen"``:

- ``"softmax"``: power 1, the plain expected embedding.
- ``"sharpened"``: ``power`` (and ``iterations``) as chosen; a large power
  makes the output one-hot and its gradient vanish, so training stalls.
- ``"straight-through"``: ``straight_through=True``, the loss sees the
  embedding of the argmax word exactly and passes the soft gradient.

The data are synthetic and seeded (``core.rng``): a random embedding table
``E [vocab, dim]`` and a random prototype per word in feature space; each
input is its word's prototype plus Gaussian noise, its target the word's
embedding row. After every epoch a callback logs ``val_loss`` and
``val_word_accuracy`` (the share of held-out inputs whose argmax is their word).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from lossviz import sharpen
from lossviz._common import check_choice, check_number
from lossviz._tf import tf
from lossviz.training import core

WORDS = (
    "apple", "river", "stone", "cloud", "tiger", "piano", "candle", "forest",
    "mirror", "rocket", "garden", "violin", "desert", "castle", "pepper", "island",
    "ladder", "window", "comet", "harbor", "feather", "lantern", "meadow", "pencil",
    "quartz", "saddle", "thunder", "umbrella", "valley", "walnut", "yogurt", "zebra",
)  # fmt: skip

# name: (default, check_number keywords)
COMMON_PARAMS = {
    "vocab_size": (16, {"low": 2, "high": len(WORDS), "integer": True}),
    "embedding_dim": (8, {"low": 2, "high": 64, "integer": True}),
    "num_features": (16, {"low": 2, "high": 64, "integer": True}),
    "num_train": (512, {"low": 64, "high": 4096, "integer": True}),
    "num_heldout": (256, {"low": 16, "high": 1024, "integer": True}),
    "noise": (1.0, {"low": 0.0, "high": 3.0}),
}
POWER_PARAMS = {
    "power": (50.0, {"low": 0.0, "high": sharpen.MAX_POWER, "low_open": True}),
    # The page's range (the registry's ``ui_range`` of ``iterations``).
    "iterations": (1, {"low": 1, "high": 10, "integer": True}),
}
VARIANT_PARAMS = {
    "softmax": COMMON_PARAMS,
    "sharpened": {**POWER_PARAMS, **COMMON_PARAMS},
    "straight-through": COMMON_PARAMS,
}
BATCH_SIZE = 64
NUM_EXAMPLES = 6


def check_params(variant: str, params: dict) -> dict:
    """The variant's parameters with defaults filled in.

    Every variant takes the sizes in ``COMMON_PARAMS`` and ``distance``
    (``"cosine"`` or ``"mse"``); ``"sharpened"`` also takes ``power`` and
    ``iterations``. ``"softmax"`` is power 1 and ``"straight-through"``
    power 1 through the straight-through one-hot.

    Raises:
      ValueError: naming an unknown or out-of-range parameter.
    """
    check_choice("variant", variant, tuple(VARIANT_PARAMS))
    spec = VARIANT_PARAMS[variant]
    for name in params:
        if name not in spec and name != "distance":
            known = ", ".join(f"`{n}`" for n in (*spec, "distance"))
            raise ValueError(
                f"Unknown parameter `{name}` for the {variant!r} variant; it "
                f"takes {known}."
            )
    checked = {
        "distance": check_choice(
            "distance", params.get("distance", "cosine"), sharpen.DISTANCES
        )
    }
    for name, (default, limits) in spec.items():
        value = check_number(name, params.get(name, default), **limits)
        checked[name] = int(value) if limits.get("integer") else float(value)
    return checked


def word_dataset(
    seed: int,
    vocab_size: int = 16,
    embedding_dim: int = 8,
    num_features: int = 16,
    num_train: int = 512,
    num_heldout: int = 256,
    noise: float = 1.0,
) -> dict:
    """Seeded synthetic data: which word goes with which feature vector.

    ``E [vocab_size, embedding_dim]`` and the word prototypes
    ``[vocab_size, num_features]`` are standard normal; each input is the
    prototype of a uniformly drawn word plus ``noise * N(0, 1)``, its target
    the embedding row of that word. Held-out inputs are drawn the same way
    from a separate stream of the seed.

    Returns:
      A dict of float32 arrays ``embedding``, ``x_train [num_train,
      num_features]``, ``target_train [num_train, embedding_dim]``,
      ``x_heldout``, ``target_heldout``, and int64 ``word_train``,
      ``word_heldout``.
    """
    tables = core.rng(seed, salt=1)
    embedding = tables.normal(size=(vocab_size, embedding_dim))
    prototypes = tables.normal(size=(vocab_size, num_features))
    data = {"embedding": embedding.astype(np.float32)}
    for split, size, salt in (("train", num_train, 2), ("heldout", num_heldout, 3)):
        draw = core.rng(seed, salt=salt)
        words = draw.integers(vocab_size, size=size)
        x = prototypes[words] + noise * draw.normal(size=(size, num_features))
        data[f"x_{split}"] = x.astype(np.float32)
        data[f"target_{split}"] = embedding[words].astype(np.float32)
        data[f"word_{split}"] = words.astype(np.int64)
    return data


def word_accuracy(probs, words) -> float:
    """Share of rows whose argmax is their word: ``mean(argmax p == word)``."""
    return float(np.mean(np.argmax(np.asarray(probs), axis=-1) == np.asarray(words)))


class HeldOutWords(keras.callbacks.Callback):
    """Logs ``val_loss`` and ``val_word_accuracy`` on held-out inputs.

    The model is called eagerly (nothing is traced) and the loss is the
    compiled ``EmbeddingTargetLoss`` object itself. The values before
    training are kept in ``before``, the last probabilities in ``probs``.
    """

    def __init__(self, loss, x, targets, words):
        super().__init__()
        self.loss = loss
        self.x = x
        self.targets = targets
        self.words = words
        self.before = None
        self.probs = None

    def evaluate(self) -> dict:
        self.probs = np.asarray(self.model(self.x, training=False))
        return {
            "val_loss": float(self.loss(self.targets, self.probs)),
            "val_word_accuracy": word_accuracy(self.probs, self.words),
        }

    def on_train_begin(self, logs=None):
        self.before = self.evaluate()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.evaluate())


def _run(ctx: core.RunContext) -> None:
    """Fits one variant (see the module doc); records the held-out accuracy
    before and after (``summary``) and a few decoded words (``rows``)."""
    params = check_params(ctx.variant, ctx.params)
    data = word_dataset(
        ctx.seed,
        **{name: params[name] for name in COMMON_PARAMS},
    )
    loss = sharpen.EmbeddingTargetLoss(
        data["embedding"],
        power=params.get("power", 1.0),
        iterations=params.get("iterations", 1),
        distance=params["distance"],
        straight_through=ctx.variant == "straight-through",
    )
    steps = math.ceil(params["num_train"] / BATCH_SIZE)
    # A repeated dataset with `steps_per_epoch` keeps one iterator for the
    # whole run; given arrays, Keras builds a new iterator every epoch, which
    # took about six times as long as this model's whole epoch.
    train = (
        tf.data.Dataset.from_tensor_slices((data["x_train"], data["target_train"]))
        .shuffle(params["num_train"], seed=ctx.seed, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
        .repeat()
    )
    with ctx.strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((params["num_features"],)),
                keras.layers.Dense(
                    params["vocab_size"], activation="softmax", name="word_probs"
                ),
            ]
        )
        # One step per call: `steps_per_execution=8` saved little per epoch
        # and its loop took longer to trace (the first curve point came
        # later), and over several replicas Keras 3 fails with it ("You must
        # feed a value for placeholder tensor", keras-team/keras#19246).
        model.compile(
            optimizer=keras.optimizers.Adam(ctx.learning_rate),
            loss=loss,
            jit_compile=False,
        )
    heldout = HeldOutWords(
        loss, data["x_heldout"], data["target_heldout"], data["word_heldout"]
    )
    model.fit(
        train,
        epochs=ctx.epochs,
        steps_per_epoch=steps,
        shuffle=False,  # the dataset shuffles, seeded
        callbacks=[heldout, *ctx.callbacks],
        verbose=0,
    )
    ctx.result.summary.update(_summary(data, heldout, params["vocab_size"]))
    ctx.result.rows.extend(_rows(data, heldout))


def _summary(data: dict, heldout: HeldOutWords, vocab_size: int) -> dict:
    """The held-out figures before and after training, by readable label."""
    return {
        "held-out word accuracy before training": heldout.before["val_word_accuracy"],
        "held-out word accuracy after training": word_accuracy(
            heldout.probs, data["word_heldout"]
        ),
        "held-out loss before training": heldout.before["val_loss"],
        "held-out inputs": int(len(data["word_heldout"])),
        "chance": 1.0 / vocab_size,
    }


def _rows(data: dict, heldout: HeldOutWords) -> list[dict]:
    """The first held-out inputs, decoded: target word, emitted word, ..."""
    probs = heldout.probs  # after the last epoch
    words = data["word_heldout"]
    predicted = np.argmax(probs, axis=-1)
    similarity = 1.0 - np.asarray(
        sharpen.cosine_distance(data["target_heldout"], data["embedding"][predicted])
    )
    return [
        {
            "target word": WORDS[int(words[i])],
            "emitted word": WORDS[int(predicted[i])],
            "right?": bool(predicted[i] == words[i]),
            "p(emitted)": float(probs[i, predicted[i]]),
            "p(target)": float(probs[i, words[i]]),
            "cos(emitted, target)": float(similarity[i]),
        }
        for i in range(min(NUM_EXAMPLES, len(words)))
    ]


TASK = core.register_task(
    core.Task(
        name="sharpen",
        title="Softmax → one-hot: emit the word of a target embedding",
        variants=tuple(VARIANT_PARAMS),
        run=_run,
        metrics=("loss", "val_loss", "val_word_accuracy"),
    )
)
