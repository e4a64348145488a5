"""Training task of the sequence family: copying padded sequences.

One task, ``"sequence"``, with two variants, the mask, and two parameters
that change the data and the loss:

- ``"unmasked"``: ``MaskedSparseCategoricalCrossentropy(pad_id=None)``, plain
  sparse categorical cross-entropy over every step, padding included (the same
  value as ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``);
- ``"masked"``: ``MaskedSparseCategoricalCrossentropy(pad_id=pad)``, where
  ``pad`` is the id the targets are padded with;
- ``pad_as_end=True``: the targets are padded by repeating the end token
  (``pad = END_ID``, the mistake: the mask then removes the real end tokens
  too); by default they are padded with their own ``PAD_ID``;
- ``class_weights``: the loss's weights, one per class (``None``: all ones).
  The explorer computes them from these same targets
  (``lossviz.explore.sequence.train_class_weights``).

The data: a source ``[<s>, c_1, …, c_L, </s>, <pad>, …]`` and its target
``[c_1, …, c_L, </s>, <pad>, …]``, with ``L`` from 1 to ``max_len`` and both
padded to ``padded_len`` steps, much longer than most sequences, as when a
corpus is padded to its longest sentence. The *real* steps of a target are
its tokens up to and including its first ``</s>``, whatever the padding. The
model is a tiny encoder–decoder without attention: the encoder squeezes the
source into one summary vector and the decoder unfolds that summary into
``padded_len`` steps of logits. Where a sequence ends is therefore not
visible to any single output step: the decoder must read it from the
summary. Trained on every step, padding included, it does best by saying
``<pad>`` (or ``</s>``) wherever it is unsure: the classic seq2seq failure, an
output that stops too early or never starts. Given many more epochs the
unmasked run slowly learns the copy as well; in the few epochs of a default
run it has not, while the masked runs have.

After every epoch a callback predicts a held-out set and logs, on its real
steps (``prediction_shares``): ``masked_accuracy``, ``end_share`` and
``pad_share`` (which share of them the model fills with the end token or with
``<pad>``), ``stop_share`` (which share of the *content* steps it answers
``</s>`` or ``<pad>``: where its output would stop too early) and
``end_step_share`` (at which share of the sequences' end it says ``</s>``);
and ``all_steps_accuracy`` (the accuracy a plain Keras ``"accuracy"`` metric
would report: every step, padding included). After the last epoch the run's
``summary`` states those shares on the held-out set beside the targets' own,
with the loss's end-token weight (``run_summary``), and its ``rows`` decode
the first held-out sequences (``decoded_rows``).

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

VARIANTS = ("unmasked", "masked")
PARAMS = {
    # name: (default, low, high, integer)
    "num_train": (512, 64, 4096, True),
    "max_len": (6, 1, 16, True),
    "padded_len": (20, 3, 32, True),
    "num_tokens": (10, 1, len(CONTENT_LETTERS), True),
    "units": (32, 4, 128, True),
}
# Parameters that are not numbers: name -> default.
OPTIONS = {"pad_as_end": False, "class_weights": None}
BATCH_SIZE = 32
EMBED_DIM = 8
DECODER_UNITS = 16
NUM_HELDOUT = 256
NUM_EXAMPLES = 5


def check_params(params: dict) -> dict:
    """The variant's parameters with defaults filled in.

    Raises:
      ValueError: naming an unknown parameter, one out of its range (see
        ``PARAMS``), ``padded_len`` shorter than ``max_len + 2`` (the start
        and end tokens must fit), ``pad_as_end`` that is not a bool, or
        ``class_weights`` that are not ``num_classes(num_tokens)`` finite
        non-negative numbers.
    """
    for name in params:
        if name not in PARAMS and name not in OPTIONS:
            known = ", ".join(f"`{n}`" for n in (*PARAMS, *OPTIONS))
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
    pad_as_end = params.get("pad_as_end", OPTIONS["pad_as_end"])
    if not isinstance(pad_as_end, (bool, np.bool_)):
        raise ValueError(f"`pad_as_end` must be True or False, got {pad_as_end!r}.")
    checked["pad_as_end"] = bool(pad_as_end)
    weights = params.get("class_weights", OPTIONS["class_weights"])
    if weights is not None:
        classes = num_classes(checked["num_tokens"])
        weights = np.asarray(weights, dtype=np.float64)
        if (
            weights.shape != (classes,)
            or not np.all(np.isfinite(weights))
            or np.any(weights < 0)
        ):
            raise ValueError(
                f"`class_weights` must be {classes} finite numbers >= 0, one per "
                f"class (num_tokens + 3), got {weights.tolist()}."
            )
        weights = [float(w) for w in weights]
    checked["class_weights"] = weights
    return checked


def pad_id_of(pad_as_end: bool) -> int:
    """The id the targets are padded with: ``END_ID`` when padding repeats the
    end token, else ``PAD_ID``."""
    return END_ID if pad_as_end else PAD_ID


def copy_dataset(
    rng: np.random.Generator,
    num: int,
    *,
    max_len: int = 6,
    padded_len: int = 20,
    num_tokens: int = 10,
    pad_id: int = PAD_ID,
):
    """Padded sources and targets of the copy task.

    Row ``i`` has ``L_i`` content tokens drawn uniformly from the ids
    ``FIRST_CONTENT_ID .. FIRST_CONTENT_ID + num_tokens - 1``, ``L_i`` uniform in
    ``1 .. max_len``. Source: ``[START_ID, c_1, …, c_L, END_ID, pad_id, …]``;
    target: ``[c_1, …, c_L, END_ID, pad_id, …]``.

    Args:
      rng: the numpy generator to draw from.
      num: number of rows.
      max_len, padded_len, num_tokens: as in ``PARAMS`` (``padded_len >=
        max_len + 2``).
      pad_id: what fills the rows after their end token: ``PAD_ID``, or
        ``END_ID`` to pad by repeating the end token (the same draws either
        way, so both datasets hold the same sequences).

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
    targets = np.where(steps[None, :] < lengths[:, None], content, pad_id)
    targets[rows, lengths] = END_ID
    sources = np.full((num, padded_len), pad_id, np.int64)
    sources[:, 0] = START_ID
    sources[:, 1:] = targets[:, :-1]
    return sources.astype(np.int32), targets.astype(np.int32)


def real_steps(targets) -> np.ndarray:
    """Bool ``[batch, time]``: each target's steps up to and including its
    first ``END_ID``, the sequence as written before padding (whatever the
    padding; a row without an end token is real throughout)."""
    targets = np.asarray(targets)
    ends = targets == END_ID
    first = np.where(ends.any(axis=-1), np.argmax(ends, axis=-1), targets.shape[-1])
    return np.arange(targets.shape[-1])[None, :] <= first[:, None]


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


def make_loss(variant: str, *, pad_id: int = PAD_ID, class_weights=None):
    """The lossviz loss of a variant: masked with ``pad_id`` or unmasked, with
    ``class_weights`` (see the module docstring)."""
    return sequence.MaskedSparseCategoricalCrossentropy(
        pad_id=pad_id if variant == "masked" else None, class_weights=class_weights
    )


def prediction_shares(targets, predicted) -> dict:
    """What the model puts on the real target steps (``real_steps``).

    Args:
      targets: int ``[batch, time]``, each row ending in ``END_ID`` then padding.
      predicted: int ``[batch, time]``, the argmax of the logits.

    Returns:
      ``{"end_share", "pad_share", "stop_share", "end_step_share"}``: the
      share of the real steps predicted ``</s>``, and ``<pad>``; the share of
      the real *content* steps (before the end) predicted ``</s>`` or
      ``<pad>``, where the output stops too early; and the share of the
      sequences whose end step is predicted ``</s>``. 0.0 each where there is
      no such step. A model that has learnt the task puts ``</s>`` on exactly
      the steps where the target has it (the targets' own end share), padding
      nowhere, stops at no content step and ends every sequence.
    """
    targets = np.asarray(targets)
    predicted = np.asarray(predicted)
    real = real_steps(targets)
    end_steps = real & (targets == END_ID)
    content = real & ~end_steps
    stops = (predicted == END_ID) | (predicted == PAD_ID)

    def share(hits, where):
        count = int(where.sum())
        return float(np.sum(hits & where) / count) if count else 0.0

    return {
        "end_share": share(predicted == END_ID, real),
        "pad_share": share(predicted == PAD_ID, real),
        "stop_share": share(stops, content),
        "end_step_share": share(predicted == END_ID, end_steps),
    }


def real_accuracy(targets, predicted) -> float:
    """Share of the real steps (``real_steps``) predicted right; 0.0 if none."""
    targets = np.asarray(targets)
    real = real_steps(targets)
    count = int(real.sum())
    right = np.asarray(predicted) == targets
    return float(np.sum(right & real) / count) if count else 0.0


class SequenceMetrics(keras.callbacks.Callback):
    """Logs held-out ``masked_accuracy`` (on the real steps), the shares of
    ``prediction_shares`` and ``all_steps_accuracy`` after every epoch.

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
        predicted = np.argmax(self.logits, axis=-1)
        logs["masked_accuracy"] = real_accuracy(self.targets, predicted)
        logs["all_steps_accuracy"] = float(np.mean(predicted == self.targets))
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
    lengths = real_steps(targets).sum(axis=-1)
    rows = []
    for source, target, guess, length in zip(
        sources[:count], targets[:count], predicted[:count], lengths[:count],
        strict=True,
    ):  # fmt: skip
        length = int(length)
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
    the share of content steps answered ``</s>`` or ``<pad>`` and of the
    sequences' ends answered ``</s>``, the loss's pad id (None: unmasked) and
    end-token weight, and how much of the training targets is padding (not
    a real step)."""
    held_real = real_steps(held_targets)
    predicted = np.argmax(np.asarray(logits), axis=-1)
    shares = prediction_shares(held_targets, predicted)
    weights = loss.class_weights or [1.0] * int(np.shape(logits)[-1])
    return {
        "held-out accuracy on real steps": real_accuracy(held_targets, predicted),
        "real steps predicted `</s>`": shares["end_share"],
        "real target steps that are `</s>`": float(
            np.mean(held_targets[held_real] == END_ID)
        ),
        "real steps predicted `<pad>`": shares["pad_share"],
        "content steps predicted `</s>` or `<pad>`": shares["stop_share"],
        "sequence ends predicted `</s>`": shares["end_step_share"],
        "loss's pad id": "none (unmasked)" if loss.pad_id is None else loss.pad_id,
        "end-token weight": float(weights[END_ID]),
        "training target steps that are padding": float(np.mean(~real_steps(targets))),
        "held-out sequences": len(held_targets),
    }


def _run(ctx: core.RunContext) -> None:
    """Trains one variant on the copy task (see the module docstring)."""
    params = check_params(ctx.params)
    sizes = {k: params[k] for k in ("max_len", "padded_len", "num_tokens")}
    pad_id = pad_id_of(params["pad_as_end"])
    sources, targets = copy_dataset(
        core.rng(ctx.seed, 1), params["num_train"], pad_id=pad_id, **sizes
    )
    held_sources, held_targets = copy_dataset(
        core.rng(ctx.seed, 2), NUM_HELDOUT, pad_id=pad_id, **sizes
    )
    classes = num_classes(params["num_tokens"])
    loss = make_loss(ctx.variant, pad_id=pad_id, class_weights=params["class_weights"])
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
        title="Copying padded sequences: masked or not, padded with <pad> or </s>",
        variants=VARIANTS,
        run=_run,
        metrics=(
            "loss",
            "masked_accuracy",
            "end_share",
            "pad_share",
            "stop_share",
            "end_step_share",
            "all_steps_accuracy",
        ),
    )
)
