"""Tiny models, synthetic data and a bounded train loop for each loss family.

``train(task, variant, ...)`` runs one; ``TASKS`` lists them. Every run is
seeded, generated (never downloaded), reports after each epoch, and uses every
GPU TensorFlow sees, else the CPU.
"""

# Each family module registers its task in TASKS when imported.
from lossviz.training import (  # noqa: E402, F401
    multilabel,
    sampled,
    sequence,
    sharpen,
    triplet,
)
from lossviz.training.core import (
    MAX_EPOCHS,
    MAX_SECONDS,
    TASKS,
    RunContext,
    RunResult,
    Task,
    default_strategy,
    register_task,
    train,
)

__all__ = [
    "MAX_EPOCHS",
    "MAX_SECONDS",
    "TASKS",
    "RunContext",
    "RunResult",
    "Task",
    "default_strategy",
    "register_task",
    "train",
]
