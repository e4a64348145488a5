"""The public API contract (../shared/SPEC.md): every name, with its parameters.

Pages, tests and users' models import these names; renaming a parameter or
dropping a default breaks them, so the contract's signatures are written out
here and checked against the package.
"""

import inspect

import keras
import pytest

import lossviz
from lossviz import multilabel, sampled, sequence, sharpen, triplet

# name -> the parameters SPEC.md gives, in order, with their defaults
# (inspect.Parameter.empty for none); more parameters may follow.
CONTRACT = {
    sharpen.power_sharpen: [("probs",), ("power",), ("iterations", 1)],
    sharpen.naive_power_sharpen: [("probs",), ("power",), ("iterations", 1)],
    sharpen.temperature_softmax: [("logits",), ("temperature",)],
    sharpen.soft_embedding_lookup: [("weights",), ("embedding",)],
    sharpen.embedding_target_loss: [
        ("target",),
        ("probs",),
        ("embedding",),
        ("power", 1.0),
        ("iterations", 1),
        ("distance", "cosine"),
    ],
    sharpen.straight_through_one_hot: [("probs",)],
    sharpen.gumbel_softmax: [
        ("logits",),
        ("temperature",),
        ("hard", False),
        ("seed", None),
    ],
    sampled.full_softmax_loss: [("weights",), ("biases",), ("labels",), ("inputs",)],
    sampled.sampled_softmax_loss: [
        ("weights",),
        ("biases",),
        ("labels",),
        ("inputs",),
        ("num_sampled",),
        ("remove_accidental_hits", True),
        ("sampled_values", None),
        ("seed", None),
    ],
    sampled.SampledSoftmax: [("num_classes",), ("num_sampled",)],
    sampled.SampledSoftmax.call: [
        ("self",),
        ("inputs",),
        ("labels", None),
        ("training", None),
    ],
    sequence.masked_sparse_categorical_crossentropy: [
        ("y_true",),
        ("logits",),
        ("pad_id", 0),
        ("class_weights", None),
    ],
    sequence.end_token_class_weights: [
        ("y_true",),
        ("num_classes",),
        ("end_id",),
        ("pad_id", None),
    ],
    sequence.perplexity: [("y_true",), ("logits",), ("pad_id", 0)],
    sequence.masked_accuracy: [("y_true",), ("logits",), ("pad_id", 0)],
    sequence.special_token_mae: [
        ("y_true",),
        ("y_pred",),
        ("start_id",),
        ("end_id",),
    ],
    triplet.cosine_triplet_loss: [
        ("anchor",),
        ("positive",),
        ("negative",),
        ("margin", 0.1),
    ],
    multilabel.bpmll_loss: [("y_true",), ("logits",)],
    multilabel.bpmll_loss_pairwise: [("y_true",), ("logits",)],
    multilabel.bpmll_loss_loop: [("y_true",), ("logits",)],
    lossviz.EmbeddingTargetLoss: [
        ("embedding",),
        ("power", 1.0),
        ("iterations", 1),
        ("distance", "cosine"),
    ],
    lossviz.MaskedSparseCategoricalCrossentropy: [
        ("pad_id", 0),
        ("class_weights", None),
    ],
    lossviz.BPMLL: [],
}


@pytest.mark.parametrize("function", CONTRACT, ids=lambda f: f.__name__)
def test_signature_keeps_the_contract(function):
    parameters = list(inspect.signature(function).parameters.values())
    expected = CONTRACT[function]
    assert len(parameters) >= len(expected)
    for parameter, (name, *default) in zip(parameters, expected, strict=False):
        assert parameter.name == name
        wanted = default[0] if default else inspect.Parameter.empty
        assert parameter.default == wanted, name


@pytest.mark.parametrize(
    "name", ["EmbeddingTargetLoss", "MaskedSparseCategoricalCrossentropy", "BPMLL"]
)
def test_loss_classes_are_keras_losses_at_the_package_root(name):
    cls = getattr(lossviz, name)
    assert issubclass(cls, keras.losses.Loss)
    assert keras.saving.get_registered_object(f"lossviz>{name}") is cls
