"""Training task of the multi-label family: BP-MLL against binary cross-entropy.

One task, ``"multilabel"``, with two variants that differ only in the loss:

- ``"bpmll"``: ``lossviz.BPMLL()``, the ranking loss of Zhang & Zhou (2006);
- ``"bce"``: ``keras.losses.BinaryCrossentropy(from_logits=True)``, every label
  on its own.

The data: each sample has latent label indicators ``y`` (every label positive
with probability ``label_density``, and at least one positive per sample, as
in real multi-label corpora) and features ``x = y @ W + noise * e`` with a
random ``W [num_labels, num_features]`` and standard normal ``e``. The model is
a small MLP emitting one logit per label (no sigmoid: BP-MLL takes raw scores).

After every epoch a callback scores a held-out set and logs, with
scikit-learn's own functions:

- ``ranking_loss``: ``sklearn.metrics.label_ranking_loss`` of the logits, the
  share of (positive, negative) label pairs ranked the wrong way round (ties
  count as wrong), averaged over samples; a sample with no positive or no
  negative label counts as 0. This is the quantity BP-MLL is a smooth bound of.
- ``hamming_loss``: ``sklearn.metrics.hamming_loss`` of the labels predicted
  by the threshold rule ``logit > 0`` (probability above 0.5 for
  cross-entropy), the share of wrong label decisions.

The threshold rule is the same for both variants and is a convention for
BP-MLL: its loss is unchanged by adding a constant to a sample's logits (it
only ranks), so nothing in training ties its scores to 0. Zhang & Zhou learn a
threshold per sample by linear regression on the outputs; here the rule is
fixed, so that the Hamming loss shows what a user who thresholds BP-MLL's
outputs at 0 gets. The run's summary adds the Hamming loss at the best single
threshold on the held-out set, for comparison; its rows show the first
held-out samples.

Everything is generated from the run's seed (``core.rng``), nothing is
downloaded, and every size is capped.

References:
  M.-L. Zhang and Z.-H. Zhou, "Multilabel Neural Networks with Applications to
  Functional Genomics and Text Categorization", IEEE TKDE 18(10), 2006.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.metrics import hamming_loss, label_ranking_loss

from lossviz import multilabel
from lossviz._common import check_number
from lossviz._tf import tf
from lossviz.training import core

VARIANTS = ("bpmll", "bce")
PARAMS = {
    # name: (default, low, high, integer)
    "num_train": (400, 64, 4096, True),
    "num_labels": (12, 2, 32, True),
    "num_features": (16, 2, 64, True),
    "label_density": (0.25, 0.05, 0.95, False),
    "noise": (1.0, 0.0, 5.0, False),
    "hidden_units": (32, 4, 128, True),
}
THRESHOLD = 0.0  # a label is predicted positive when its logit is above this
NUM_HELDOUT = 200
BATCH_SIZE = 32
NUM_EXAMPLES = 6


def check_params(params: dict) -> dict:
    """The variant's parameters with defaults filled in.

    Raises:
      ValueError: naming an unknown parameter or one out of its range (see
        ``PARAMS``).
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
    return checked


def multilabel_dataset(
    seed: int,
    *,
    num_train: int = 400,
    num_heldout: int = NUM_HELDOUT,
    num_labels: int = 12,
    num_features: int = 16,
    label_density: float = 0.25,
    noise: float = 1.0,
) -> dict:
    """Training and held-out samples of the synthetic multi-label task.

    Labels: each of ``num_labels`` is positive with probability
    ``label_density``; a sample drawn without any positive gets one label
    chosen uniformly. Features: ``x = y @ W + noise * e``, ``W`` and ``e``
    standard normal, ``W`` shared by both sets. Training and held-out samples
    come from separate generators seeded by ``seed``, so changing
    ``num_train`` does not change the held-out set.

    Returns:
      A dict of numpy arrays: ``x`` float32 ``[num_train, num_features]``,
      ``y`` int32 0/1 ``[num_train, num_labels]``, ``x_heldout``,
      ``y_heldout`` (the same for ``num_heldout`` samples) and ``mixing``
      float32 ``[num_labels, num_features]`` (``W``).
    """
    mixing = core.rng(seed, salt=1).normal(size=(num_labels, num_features))

    def draw(rng, num):
        y = rng.random((num, num_labels)) < label_density
        fallback = rng.integers(num_labels, size=num)
        empty = ~y.any(axis=1)
        y[empty, fallback[empty]] = True
        x = y @ mixing + noise * rng.normal(size=(num, num_features))
        return x.astype(np.float32), y.astype(np.int32)

    x, y = draw(core.rng(seed, salt=2), num_train)
    x_heldout, y_heldout = draw(core.rng(seed, salt=3), num_heldout)
    return {
        "x": x,
        "y": y,
        "x_heldout": x_heldout,
        "y_heldout": y_heldout,
        "mixing": mixing.astype(np.float32),
    }


def training_batches(x, y, seed: int, batch_size: int = BATCH_SIZE):
    """An endless, seeded, reshuffled stream of ``(x, y)`` batches for ``fit``.

    Each pass over the data is shuffled anew (the same sequence of orders for
    the same ``seed``), and ``fit`` is given ``steps_per_epoch`` = one pass,
    so an epoch is exactly one pass, as with arrays. Unlike arrays, the
    stream's iterator is created once per run, not once per epoch: re-creating
    it costs several times an epoch of this tiny model (on a loaded 2-core
    CPU: about 0.1 s per epoch with arrays, 0.03 s with the stream; 0.3 s
    against 0.05 s under ``OneDeviceStrategy``).

    Returns:
      ``(dataset, steps_per_epoch)``.
    """
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat()
    )
    return dataset, -(-len(x) // batch_size)


def build_model(num_features: int, num_labels: int, hidden_units: int = 32):
    """A small MLP, ``[batch, num_features]`` -> ``[batch, num_labels]`` logits.

    ``Dense(hidden_units, relu)`` then a linear ``Dense(num_labels)``: raw
    scores, as both ``BPMLL`` and ``BinaryCrossentropy(from_logits=True)`` take.
    """
    return keras.Sequential(
        [
            keras.Input((num_features,), name="features"),
            keras.layers.Dense(hidden_units, activation="relu", name="hidden"),
            keras.layers.Dense(num_labels, name="logits"),
        ],
        name="multilabel_mlp",
    )


def make_loss(variant: str) -> keras.losses.Loss:
    """The loss of a variant: ``BPMLL()`` or binary cross-entropy on logits."""
    if variant == "bpmll":
        return multilabel.BPMLL()
    return keras.losses.BinaryCrossentropy(from_logits=True)


def predict_labels(logits, threshold: float = THRESHOLD) -> np.ndarray:
    """0/1 ``[batch, num_labels]``: 1 where the logit is above ``threshold``."""
    return (np.asarray(logits) > threshold).astype(np.int32)


def heldout_metrics(y_true, logits) -> dict:
    """``ranking_loss`` and ``hamming_loss`` of logits, by scikit-learn.

    Args:
      y_true: 0/1 ``[batch, num_labels]``.
      logits: scores ``[batch, num_labels]``.

    Returns:
      ``{"ranking_loss": label_ranking_loss(y_true, logits), "hamming_loss":
      hamming_loss(y_true, logits > THRESHOLD)}`` as Python floats.
    """
    y_true = np.asarray(y_true)
    logits = np.asarray(logits)
    return {
        "ranking_loss": float(label_ranking_loss(y_true, logits)),
        "hamming_loss": float(hamming_loss(y_true, predict_labels(logits))),
    }


def best_threshold(y_true, logits) -> tuple[float, float]:
    """The single threshold with the lowest Hamming loss, and that loss.

    Candidates are the midpoints between consecutive distinct logits (and
    one below the lowest and above the highest; the lowest wins a tie). Used
    as a diagnostic for BP-MLL, whose logits are not tied to 0. The errors of
    every candidate are counted at once from sorted logits (a wrong decision
    is a positive at or below the threshold or a negative above it); the
    loss returned is scikit-learn's ``hamming_loss`` at the chosen threshold.

    Returns:
      ``(threshold, hamming_loss at that threshold)``.
    """
    y_true = np.asarray(y_true)
    logits = np.asarray(logits)
    scores = logits.astype(np.float64).ravel()
    positive = y_true.ravel() > 0
    values = np.unique(scores)
    candidates = np.concatenate(
        [[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]]
    )
    positives_below = np.searchsorted(np.sort(scores[positive]), candidates, "right")
    negatives_below = np.searchsorted(np.sort(scores[~positive]), candidates, "right")
    errors = positives_below + (np.sum(~positive) - negatives_below)
    threshold = float(candidates[int(np.argmin(errors))])
    return threshold, float(hamming_loss(y_true, predict_labels(logits, threshold)))


class HeldOutMetrics(keras.callbacks.Callback):
    """Logs held-out ``ranking_loss`` and ``hamming_loss`` after every epoch.

    The model is called eagerly (no ``predict``: nothing more is traced). The
    values before training are kept in ``before``, the last logits in
    ``logits``.
    """

    def __init__(self, x, y):
        super().__init__()
        self.x = x
        self.y = y
        self.before = None
        self.logits = None

    def _score(self) -> dict:
        self.logits = np.asarray(self.model(self.x, training=False))
        return heldout_metrics(self.y, self.logits)

    def on_train_begin(self, logs=None):
        self.before = self._score()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._score())


def _label_list(row) -> str:
    """``"0, 3, 7"``: the labels set in a 0/1 row, or ``"none"``."""
    return ", ".join(str(int(i)) for i in np.flatnonzero(row)) or "none"


def run_summary(y_true, logits, before: dict) -> dict:
    """The held-out figures of a finished run, by readable label.

    The ranking and Hamming losses before and after training, the mean number
    of true and of predicted labels per sample, the best single threshold with
    its Hamming loss, and the Hamming loss of predicting no label at all.
    """
    y_true = np.asarray(y_true)
    logits = np.asarray(logits)
    after = heldout_metrics(y_true, logits)
    threshold, hamming_at_best = best_threshold(y_true, logits)
    return {
        "held-out samples": len(y_true),
        "ranking loss before training": before["ranking_loss"],
        "ranking loss after training": after["ranking_loss"],
        "Hamming loss (logit > 0) before training": before["hamming_loss"],
        "Hamming loss (logit > 0) after training": after["hamming_loss"],
        "true labels per sample": float(y_true.sum(axis=1).mean()),
        "labels predicted per sample": float(predict_labels(logits).sum(axis=1).mean()),
        "best single threshold": threshold,
        "Hamming loss at the best threshold": hamming_at_best,
        "Hamming loss predicting no label": float(
            hamming_loss(y_true, np.zeros_like(y_true))
        ),
    }


def run_rows(y_true, logits) -> list[dict]:
    """The first ``NUM_EXAMPLES`` held-out samples: their true labels, the
    labels predicted by ``logit > THRESHOLD``, their top-ranked labels (as many
    as they have true labels) and their own ranking loss."""
    y_true = np.asarray(y_true)
    logits = np.asarray(logits)
    predicted = predict_labels(logits)
    rows = []
    for i in range(min(NUM_EXAMPLES, len(y_true))):
        count = int(y_true[i].sum())
        ranked = np.zeros_like(y_true[i])
        ranked[np.argsort(-logits[i], kind="stable")[:count]] = 1
        rows.append(
            {
                "true labels": _label_list(y_true[i]),
                "predicted (logit > 0)": _label_list(predicted[i]),
                "ranked first": _label_list(ranked),
                "ranking loss": float(
                    label_ranking_loss(y_true[i : i + 1], logits[i : i + 1])
                ),
            }
        )
    return rows


def _run(ctx: core.RunContext) -> None:
    """Trains one variant on the synthetic multi-label task (see the module doc)."""
    params = check_params(ctx.params)
    data = multilabel_dataset(
        ctx.seed,
        num_train=params["num_train"],
        num_labels=params["num_labels"],
        num_features=params["num_features"],
        label_density=params["label_density"],
        noise=params["noise"],
    )
    batches, steps = training_batches(data["x"], data["y"].astype(np.float32), ctx.seed)
    with ctx.strategy.scope():
        model = build_model(
            params["num_features"], params["num_labels"], params["hidden_units"]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(ctx.learning_rate),
            loss=make_loss(ctx.variant),
            jit_compile=False,
        )
    metrics = HeldOutMetrics(data["x_heldout"], data["y_heldout"])
    model.fit(
        batches,
        steps_per_epoch=steps,
        shuffle=False,  # the stream shuffles each pass itself
        epochs=ctx.epochs,
        callbacks=[metrics, *ctx.callbacks],
        verbose=0,
    )
    ctx.result.summary.update(
        run_summary(data["y_heldout"], metrics.logits, metrics.before)
    )
    ctx.result.rows.extend(run_rows(data["y_heldout"], metrics.logits))


TASK = core.register_task(
    core.Task(
        name="multilabel",
        title="Multi-label ranking: BP-MLL against binary cross-entropy",
        variants=VARIANTS,
        run=_run,
        metrics=("loss", "ranking_loss", "hamming_loss"),
    )
)
