"""Training task of the sequence family: copying padded sequences.

One task, ``"sequence"``, with three variants that differ only in the loss:

- ``"unmasked"``: ``MaskedSparseCategoricalCrossentropy(pad_id=None)``, plain
  sparse categorical cross-entropy over every step, padding included (the same
  value as ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``);
- ``"masked"``: ``MaskedSparseCategoricalCrossentropy(pad_id=PAD_ID)``;
- ``"masked_end_weight"``: the same with ``class_weights`` from
  ``end_token_class_weights`` on the training targets.

The data: a source ``[<s>, c_1, …, c_L, </s>, <pad>, …]`` and its target
``[c_1, …, c_L, </s>, <pad>, …]``, with ``L`` from 1 to ``max_len`` and both
padded to ``padded_len`` steps, much longer than most sequences, as when a
corpus is padded to its longest sentence. The model is a tiny encoder–decoder
without attention: the encoder squeezes the source into one summary vector and
the decoder unfolds that summary into ``padded_len`` steps of logits. Where a
sequence ends is therefore not visible to any single output step: the decoder
must read it from the summary. Trained on every step, padding included, it
does best by saying ``<pad>`` (or ``</s>``) wherever it is unsure: the classic
seq2seq failure, an output that stops too early or never starts. Given many
more epochs the unmasked run slowly learns the copy as well; in the few epochs
of a default run it has not, while the masked runs have.

After every epoch a callback predicts a held-out set and logs
``masked_accuracy`` (``lossviz.masked_accuracy``), ``end_share`` and
``pad_share`` (which share of the real target steps the model fills with the
end token or with padding) and ``all_steps_accuracy`` (the accuracy a plain
Keras ``"accuracy"`` metric would report: every step, padding included).
After the last epoch the run's ``summary`` states those shares on the
held-out set beside the targets' own, with the loss's end-token weight
(``run_summary``), and its ``rows`` decode the first held-out sequences
(``decoded_rows``).

Everything is generated from the run's seed (``core.rng``), nothing is
downloaded, and every size is capped.
"""

from __future__ import annotations

import keras
import numpy as np

from lossviz import sequence
from lossviz._common import check_number
from lossviz.training import core

PAD_ID, START_ID, END_ID = 0, 1, 2
FIRST_CONTENT_ID = 3
SPECIAL_TOKENS = {PAD_ID: "<pad>", START_ID: "<s>", END_ID: "</s>"}
CONTENT_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

VARIANTS = ("unmasked", "masked", "masked_end_weight")
PARAMS = {
    # name: (default, low, high, integer)
    "num_train": (512, 64, 4096, True),
    "max_len": (6, 1, 16, True),
    "padded_len": (20, 3, 32, True),
    "num_tokens": (10, 1, len(CONTENT_LETTERS), True),
    "units": (32, 4, 128, True),
}
BATCH_SIZE = 32
EMBED_DIM = 8
DECODER_UNITS = 16
NUM_HELDOUT = 256
NUM_EXAMPLES = 5


def check_params(params: dict) -> dict:
    """The variant's parameters with defaults filled in.

    Raises:
      ValueError: naming an unknown parameter, one out of its range (see
        ``PARAMS``), or ``padded_len`` shorter than ``max_len + 2`` (the start
        and end tokens must fit).
    """
    for name in params:
        if name not in PARAMS:
            known = ", ".join(f"`{n}`" for n in PARAMS)
            raise ValueError(f"Unknown parameter `{name}`; this task takes {known}.")
    checked = {}
    for name, (default, low, high, integer) in PARAMS.items():
        value = check_number(
            name, params.get(name, default), low=low, high=high, integer=integer
        )
        checked[name] = int(value) if integer else float(value)
    if checked["padded_len"] < checked["max_len"] + 2:
        raise ValueError(
            f"`padded_len` must be at least max_len + 2 = {checked['max_len'] + 2} "
            f"(room for <s>, the tokens and </s>), got {checked['padded_len']}."
        )
    return checked


def copy_dataset(
    rng: np.random.Generator,
    num: int,
    *,
    max_len: int = 6,
    padded_len: int = 20,
    num_tokens: int = 10,
):
    """Padded sources and targets of the copy task.

    Row ``i`` has ``L_i`` content tokens drawn uniformly from the ids
    ``FIRST_CONTENT_ID .. FIRST_CONTENT_ID + num_tokens - 1``, ``L_i`` uniform in
    ``1 .. max_len``. Source: ``[START_ID, c_1, …, c_L, END_ID, PAD_ID, …]``;
    target: ``[c_1, …, c_L, END_ID, PAD_ID, …]``.

    Args:
      rng: the numpy generator to draw from.
      num: number of rows.
      max_len, padded_len, num_tokens: as in ``PARAMS`` (``padded_len >=
        max_len + 2``).

    Returns:
      ``(sources, targets)``, int32 ``[num, padded_len]`` each.
    """
    lengths = rng.integers(1, max_len + 1, size=num)
    tokens = rng.integers(
        FIRST_CONTENT_ID, FIRST_CONTENT_ID + num_tokens, size=(num, max_len)
    )
    steps = np.arange(padded_len)
    content = np.zeros((num, padded_len), np.int64)
    content[:, :max_len] = tokens
    rows = np.arange(num)
    targets = np.where(steps[None, :] < lengths[:, None], content, PAD_ID)
    targets[rows, lengths] = END_ID
    sources = np.full((num, padded_len), PAD_ID, np.int64)
    sources[:, 0] = START_ID
    sources[:, 1:] = targets[:, :-1]
    return sources.astype(np.int32), targets.astype(np.int32)


def num_classes(num_tokens: int) -> int:
    """Classes of the output layer: the three special ids and the content tokens."""
    return FIRST_CONTENT_ID + int(num_tokens)


def build_model(num_classes: int, padded_len: int, units: int = 32) -> keras.Model:
    """A tiny encoder–decoder without attention, ``[B, T]`` ids -> ``[B, T, C]`` logits.

    Encoder: ``Embedding`` and ``Flatten`` then ``Dense(units, relu)``, one summary
    vector per sequence. Decoder: ``Dense(T * DECODER_UNITS)`` reshaped to one
    vector per step, ``relu``, and a ``Dense(num_classes)`` shared by the steps
    (linear: logits, as ``MaskedSparseCategoricalCrossentropy`` expects).
    """
    source = keras.Input((padded_len,), dtype="int32", name="source")
    hidden = keras.layers.Embedding(num_classes, EMBED_DIM)(source)
    hidden = keras.layers.Flatten()(hidden)
    summary = keras.layers.Dense(units, activation="relu", name="summary")(hidden)
    hidden = keras.layers.Dense(padded_len * DECODER_UNITS)(summary)
    hidden = keras.layers.Reshape((padded_len, DECODER_UNITS))(hidden)
    hidden = keras.layers.Activation("relu")(hidden)
    logits = keras.layers.Dense(num_classes, name="logits")(hidden)
    return keras.Model(source, logits, name="copy_encoder_decoder")


def make_loss(variant: str, targets, num_classes: int):
    """The lossviz loss of a variant (see the module docstring)."""
    if variant == "unmasked":
        return sequence.MaskedSparseCategoricalCrossentropy(pad_id=None)
    if variant == "masked":
        return sequence.MaskedSparseCategoricalCrossentropy(pad_id=PAD_ID)
    weights = sequence.end_token_class_weights(
        targets, num_classes, end_id=END_ID, pad_id=PAD_ID
    )
    return sequence.MaskedSparseCategoricalCrossentropy(
        pad_id=PAD_ID, class_weights=weights
    )


def prediction_shares(targets, predicted) -> dict:
    """What the model puts on the real (non-pad) target steps.

    Args:
      targets: int ``[batch, time]`` with ``PAD_ID`` padding.
      predicted: int ``[batch, time]``, the argmax of the logits.

    Returns:
      ``{"end_share": …, "pad_share": …}``: the share of the predictions for
      real target steps that are the end token, and that are padding. 0.0
      each when there is no real step. A model that has learnt the task puts
      ``</s>`` on exactly the steps where the target has it (the targets' own
      end share) and padding nowhere.
    """
    targets = np.asarray(targets)
    predicted = np.asarray(predicted)
    real = targets != PAD_ID
    count = int(real.sum())
    if count == 0:
        return {"end_share": 0.0, "pad_share": 0.0}
    at_real = predicted[real]
    return {
        "end_share": float(np.sum(at_real == END_ID) / count),
        "pad_share": float(np.sum(at_real == PAD_ID) / count),
    }


class SequenceMetrics(keras.callbacks.Callback):
    """Logs held-out ``masked_accuracy``, ``end_share``, ``pad_share`` and
    ``all_steps_accuracy`` after every epoch.

    The model is called eagerly (no ``predict``: nothing more is traced); the
    last logits are kept in ``logits``.
    """

    def __init__(self, sources, targets):
        super().__init__()
        self.sources = sources
        self.targets = targets
        self.logits = None

    def on_epoch_end(self, epoch, logs=None):
        self.logits = self.model(self.sources, training=False)
        if logs is None:
            return
        logs["masked_accuracy"] = float(
            sequence.masked_accuracy(self.targets, self.logits, pad_id=PAD_ID)
        )
        logs["all_steps_accuracy"] = float(
            sequence.masked_accuracy(self.targets, self.logits, pad_id=None)
        )
        predicted = np.argmax(self.logits, axis=-1)
        logs.update(prediction_shares(self.targets, predicted))


def token_names(ids) -> list[str]:
    """Token ids as text: ``<pad>``, ``<s>``, ``</s>`` and letters for content."""
    return [
        SPECIAL_TOKENS.get(int(i)) or CONTENT_LETTERS[int(i) - FIRST_CONTENT_ID]
        for i in ids
    ]


def greedy_output(predicted) -> list[int]:
    """A row of predicted ids cut before its first ``</s>`` or ``<pad>``: what a
    user of the model reads as its output."""
    output = []
    for token in predicted:
        if int(token) in (END_ID, PAD_ID):
            break
        output.append(int(token))
    return output


def decoded_rows(sources, targets, logits, count=NUM_EXAMPLES) -> list[dict]:
    """The first ``count`` held-out rows as the Train panel's table rows.

    Each row, by column: ``input`` (the source up to ``</s>``), ``target`` (up
    to ``</s>``), ``predicted, step by step`` (the argmax at each of the
    target's real steps, one for one), ``output`` (the greedy output, cut at
    the first ``</s>`` or ``<pad>``; ``(empty)`` if nothing is left), ``steps
    right`` (``"right / real steps"``) and ``copied`` (the output is the
    target's content, a bool). Tokens are written as ``token_names`` and
    joined by spaces.
    """
    predicted = np.argmax(np.asarray(logits), axis=-1)
    rows = []
    for source, target, guess in zip(
        sources[:count], targets[:count], predicted[:count], strict=True
    ):
        length = int(np.sum(target != PAD_ID))
        output = greedy_output(guess)
        right = int(np.sum(guess[:length] == target[:length]))
        rows.append(
            {
                "input": " ".join(token_names(source[: length + 1])),
                "target": " ".join(token_names(target[:length])),
                "predicted, step by step": " ".join(token_names(guess[:length])),
                "output": " ".join(token_names(output)) or "(empty)",
                "steps right": f"{right} / {length}",
                "copied": output == [int(t) for t in target[: length - 1]],
            }
        )
    return rows


def run_summary(loss, targets, held_targets, logits) -> dict:
    """The finished run's headline figures on the held-out sequences, by the
    label the Train panel shows: accuracy on the real steps, the share of
    them predicted ``</s>`` (against the targets' own share) and ``<pad>``,
    the end-token weight of the loss, and how much of the training targets
    is padding."""
    held_real = held_targets != PAD_ID
    shares = prediction_shares(held_targets, np.argmax(np.asarray(logits), axis=-1))
    weights = loss.class_weights or [1.0] * int(np.shape(logits)[-1])
    return {
        "held-out accuracy on real steps": float(
            sequence.masked_accuracy(held_targets, logits, pad_id=PAD_ID)
        ),
        "real steps predicted `</s>`": shares["end_share"],
        "real target steps that are `</s>`": float(
            np.mean(held_targets[held_real] == END_ID)
        ),
        "real steps predicted `<pad>`": shares["pad_share"],
        "end-token weight": float(weights[END_ID]),
        "training target steps that are `<pad>`": float(np.mean(targets == PAD_ID)),
        "held-out sequences": len(held_targets),
    }


def _run(ctx: core.RunContext) -> None:
    """Trains one variant on the copy task (see the module docstring)."""
    params = check_params(ctx.params)
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    sources, targets = copy_dataset(core.rng(ctx.seed, 1), params["num_train"], **sizes)
    held_sources, held_targets = copy_dataset(
        core.rng(ctx.seed, 2), NUM_HELDOUT, **sizes
    )
    classes = num_classes(params["num_tokens"])
    loss = make_loss(ctx.variant, targets, classes)
    with ctx.strategy.scope():
        model = build_model(classes, params["padded_len"], params["units"])
        model.compile(
            optimizer=keras.optimizers.Adam(ctx.learning_rate),
            loss=loss,
            jit_compile=False,
        )
    metrics = SequenceMetrics(held_sources, held_targets)
    model.fit(
        sources,
        targets,
        batch_size=BATCH_SIZE,
        epochs=ctx.epochs,
        callbacks=[metrics, *ctx.callbacks],
        verbose=0,
    )
    logits = metrics.logits if metrics.logits is not None else model(held_sources)
    ctx.result.summary.update(run_summary(loss, targets, held_targets, logits))
    ctx.result.rows.extend(decoded_rows(held_sources, held_targets, logits))


TASK = core.register_task(
    core.Task(
        name="sequence",
        title="Copying padded sequences: unmasked, masked, masked with an end weight",
        variants=VARIANTS,
        run=_run,
        metrics=(
            "loss",
            "masked_accuracy",
            "end_share",
            "pad_share",
            "all_steps_accuracy",
        ),
    )
)
