"""The train loop every family shares: bounded, seeded, reporting each epoch.

A *task* is a function that builds a tiny Keras model and a synthetic dataset
for one loss family and fits it with the callbacks it is given. ``train`` runs
one task with one *variant* (e.g. "masked" vs "unmasked"), reports progress
after every epoch, stops on request or at a time cap, and returns the history
as plain data together with the device it ran on.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import keras
import numpy as np

from lossviz._common import check_choice, check_number
from lossviz._tf import tf

MAX_EPOCHS = 50
MAX_SECONDS = 120.0


@dataclasses.dataclass
class RunResult:
    """One training run, as plain data (JSON-friendly lists and numbers).

    ``summary`` holds the run's headline figures after training, by a label a
    person reads ("held-out word accuracy after": 0.81); ``rows`` a few
    example predictions, each a dict of column label -> number, text or bool.
    The Train panel draws both as they are.
    """

    task: str
    variant: str
    params: dict
    device: str
    epochs: list = dataclasses.field(default_factory=list)
    history: dict = dataclasses.field(default_factory=dict)
    epoch_seconds: list = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)
    rows: list = dataclasses.field(default_factory=list)
    stopped: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RunContext:
    """What a task function receives."""

    variant: str
    epochs: int
    learning_rate: float
    seed: int
    params: dict
    strategy: tf.distribute.Strategy
    callbacks: list
    result: RunResult


@dataclasses.dataclass(frozen=True)
class Task:
    """A family's training task: its variants and the function that runs one."""

    name: str
    title: str
    variants: tuple
    run: Callable[[RunContext], None]
    metrics: tuple = ("loss",)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


@functools.cache
def default_strategy() -> tuple[tf.distribute.Strategy, str]:
    """Every GPU TensorFlow sees (mirrored when several), else the CPU.

    Several logical CPU devices (``tf.config.set_logical_device_configuration``)
    are mirrored too, which is how the multi-device path is tested without a GPU.
    One strategy serves every run of the process: a new ``MirroredStrategy``
    per run makes the second model's collective ops clash with the first's
    ("Shape mismatch in the collective instance").
    """
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        names = [d.name for d in gpus]
        return tf.distribute.MirroredStrategy(names), f"{len(gpus)} GPUs (mirrored)"
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        names = [d.name for d in cpus]
        return (
            tf.distribute.MirroredStrategy(names),
            f"{len(cpus)} CPU devices (mirrored)",
        )
    # One device: TensorFlow's default strategy places the work on the GPU
    # when there is one, and skips the distributed input pipeline that
    # OneDeviceStrategy builds (about a third of a tiny model's first epoch).
    return tf.distribute.get_strategy(), "GPU" if gpus else "CPU"


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """"CPU", "GPU", "2 GPUs (mirrored)", ... for a strategy's devices."""
    devices = strategy.extended.worker_devices
    kinds = {"GPU" if "GPU" in d.upper() else "CPU" for d in devices}
    kind = kinds.pop() if len(kinds) == 1 else "devices"
    if len(devices) == 1:
        return kind
    noun = {"GPU": "GPUs", "CPU": "CPU devices"}.get(kind, kind)
    return f"{len(devices)} {noun} (mirrored)"


class _Progress(keras.callbacks.Callback):
    """Records each epoch into the result, reports it, and stops when asked."""

    def __init__(self, result, on_epoch, should_stop, max_seconds):
        super().__init__()
        self.result = result
        self.on_epoch = on_epoch
        self.should_stop = should_stop
        self.max_seconds = max_seconds
        self.started = time.perf_counter()
        self.epoch_started = self.started

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.result.epochs.append(epoch + 1)
        self.result.epoch_seconds.append(now - self.epoch_started)
        for name, value in (logs or {}).items():
            self.result.history.setdefault(name, []).append(float(value))
        if self.on_epoch is not None:
            self.on_epoch(self.result)
        if self.should_stop is not None and self.should_stop():
            self.result.stopped = "stopped by the user"
            self.model.stop_training = True
        elif now - self.started > self.max_seconds:
            self.result.stopped = f"stopped at the {self.max_seconds:g} s time cap"
            self.model.stop_training = True


def train(
    task: str,
    variant: str,
    *,
    epochs: int = 5,
    learning_rate: float = 1e-2,
    seed: int = 0,
    on_epoch: Callable[[RunResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float = 30.0,
    strategy: tf.distribute.Strategy | None = None,
    **params,
) -> RunResult:
    """Trains one variant of a family's task and returns its history.

    Args:
      task: a name in ``TASKS`` (see ``lossviz.training.TASKS``).
      variant: one of that task's ``variants``.
      epochs: 1 to ``MAX_EPOCHS``.
      learning_rate: in (0, 1].
      seed: seeds the data, the weights and any sampling, so a run repeats.
      on_epoch: called with the (growing) result after every epoch.
      should_stop: polled after every epoch; True stops the run.
      max_seconds: the run stops after the epoch that passes this, at most
        ``MAX_SECONDS``.
      strategy: a ``tf.distribute`` strategy; by default every GPU, else the CPU.
      **params: the task's own parameters (sizes, the power, the margin, ...).

    Returns:
      A ``RunResult`` with per-epoch history and the device it ran on.
    """
    check_choice("task", task, tuple(TASKS))
    spec = TASKS[task]
    check_choice("variant", variant, spec.variants)
    epochs = int(check_number("epochs", epochs, low=1, high=MAX_EPOCHS, integer=True))
    check_number("learning_rate", learning_rate, low=0, high=1, low_open=True)
    seed = int(check_number("seed", seed, low=0, high=2**31 - 1, integer=True))
    check_number("max_seconds", max_seconds, low=0, high=MAX_SECONDS, low_open=True)
    if strategy is None:
        strategy, device = default_strategy()
    else:
        device = describe_strategy(strategy)
    result = RunResult(task=task, variant=variant, params=dict(params), device=device)
    keras.utils.set_random_seed(seed)
    context = RunContext(
        variant=variant,
        epochs=epochs,
        learning_rate=float(learning_rate),
        seed=seed,
        params=dict(params),
        strategy=strategy,
        callbacks=[_Progress(result, on_epoch, should_stop, float(max_seconds))],
        result=result,
    )
    spec.run(context)
    return result


def rng(seed: int, salt: int = 0) -> np.random.Generator:
    """A numpy generator for a task's synthetic data, independent of Keras' seed."""
    return np.random.default_rng([seed, salt])
