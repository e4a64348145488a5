"""lossviz: custom Keras/TensorFlow losses, numerically careful.

Five loss families, each a module with pure functions (per-sample values) and
thin ``keras.losses.Loss`` / layer wrappers:

- ``lossviz.sharpen``: softmax toward one-hot (power, temperature,
  straight-through, Gumbel) and an embedding-target loss;
- ``lossviz.sampled``: sampled softmax for large vocabularies, as a Keras layer;
- ``lossviz.sequence``: seq2seq cross-entropy with padding masks and class weights;
- ``lossviz.triplet``: losses as layers (cosine triplet, masked cross-entropy);
- ``lossviz.multilabel``: the BP-MLL ranking loss, vectorised.

Importing ``lossviz`` registers every Keras class, so a model saved with them
loads with ``keras.saving.load_model`` and no ``custom_objects``.
"""

# First: TensorFlow's start-up notices are filtered only if we import it first.
from lossviz import _tf  # noqa: F401  # isort: skip
from lossviz.multilabel import BPMLL, bpmll_loss, bpmll_loss_loop, bpmll_loss_pairwise
from lossviz.optimizers import LazyAdam
from lossviz.sampled import SampledSoftmax, full_softmax_loss, sampled_softmax_loss
from lossviz.sequence import (
    MaskedSparseCategoricalCrossentropy,
    end_token_class_weights,
    masked_accuracy,
    masked_sparse_categorical_crossentropy,
    perplexity,
    special_token_mae,
)
from lossviz.sharpen import (
    EmbeddingTargetLoss,
    embedding_target_loss,
    gumbel_softmax,
    naive_power_sharpen,
    power_sharpen,
    soft_embedding_lookup,
    straight_through_one_hot,
    temperature_softmax,
)
from lossviz.triplet import (
    CosineTripletLoss,
    CosineTripletLossLayer,
    IdentityLoss,
    MaskedCrossEntropyLayer,
    build_masked_lm_model,
    build_triplet_models,
    cosine_triplet_loss,
)

__version__ = "0.1.0"

__all__ = [
    "BPMLL",
    "CosineTripletLoss",
    "CosineTripletLossLayer",
    "EmbeddingTargetLoss",
    "IdentityLoss",
    "LazyAdam",
    "MaskedCrossEntropyLayer",
    "MaskedSparseCategoricalCrossentropy",
    "SampledSoftmax",
    "bpmll_loss",
    "bpmll_loss_loop",
    "bpmll_loss_pairwise",
    "build_masked_lm_model",
    "build_triplet_models",
    "cosine_triplet_loss",
    "embedding_target_loss",
    "end_token_class_weights",
    "full_softmax_loss",
    "gumbel_softmax",
    "masked_accuracy",
    "masked_sparse_categorical_crossentropy",
    "naive_power_sharpen",
    "perplexity",
    "power_sharpen",
    "sampled_softmax_loss",
    "soft_embedding_lookup",
    "special_token_mae",
    "straight_through_one_hot",
    "temperature_softmax",
]
