"""The loss registry: entries that call their loss, honest ranges, Keras twins."""

import ast
import pathlib

import keras
import numpy as np
import pytest

from lossviz import registry
from lossviz._tf import tf

NAMES = registry.names()
REQUIRED = {
    "bpmll_loss",
    "masked_sparse_categorical_crossentropy",
    "cosine_triplet_loss",
    "embedding_target_loss",
    "full_softmax_loss",
    "sampled_softmax_loss",
    "special_token_mae",
}


def _inputs(entry, seed=0, dtype=np.float64):
    arrays = entry.example(seed)
    out = {}
    for spec in entry.inputs:
        if spec.name in arrays:
            a = np.asarray(arrays[spec.name])
            out[spec.name] = (
                a.astype(np.int32) if spec.kind == "int" else a.astype(dtype)
            )
    return out


def _numpy_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _numpy_cos(u, v):
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    dot = np.sum(u * v, axis=-1)
    return np.where((nu > 0) & (nv > 0), dot / np.where(nu * nv > 0, nu * nv, 1), 0)


def test_registry_covers_the_required_losses_and_names_are_unique():
    assert REQUIRED <= set(NAMES)
    assert len(NAMES) == len(set(NAMES))
    with pytest.raises(KeyError, match="known losses: bpmll_loss"):
        registry.get("no_such_loss")


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete(name):
    entry = registry.get(name)
    assert entry.name == name and callable(entry.function)
    assert entry.formula and "\\" in entry.formula  # LaTeX from the module
    assert entry.description and entry.output.startswith("[")
    assert "y_pred" in entry.input_names
    assert len(set(entry.input_names)) == len(entry.inputs)
    for spec in entry.inputs:
        assert spec.kind in registry.KINDS and spec.shapes and spec.description
    for spec in entry.params:
        assert spec.validate(spec.default) == spec.default
        assert spec.describe().startswith(f"{spec.name} (")
    if entry.sweep_param is not None:
        spec = entry.param(entry.sweep_param)
        assert spec.ui_range or spec.ui_options
    if entry.keras_class is not None:
        registered = keras.saving.get_registered_name(entry.keras_class)
        assert registered == f"lossviz>{entry.keras_class.__name__}"
    example = entry.example(0)
    for spec in entry.inputs:
        assert (spec.name in example) or not spec.required


@pytest.mark.parametrize("name", NAMES)
def test_call_binds_inputs_to_the_function_arguments(name):
    entry = registry.get(name)
    inputs = _inputs(entry)
    params = entry.defaults
    direct = entry.function(
        **{
            spec.argument: inputs[spec.name]
            for spec in entry.inputs
            if spec.name in inputs
        },
        **params,
    )
    via_entry = entry.call(tf.constant(inputs["y_pred"]), inputs, params)
    np.testing.assert_array_equal(np.asarray(via_entry), np.asarray(direct))
    assert np.all(np.isfinite(via_entry))


# The family modules test their losses in graph mode; here only the binding.
@pytest.mark.parametrize("name", ["cosine_triplet_loss", "special_token_mae"])
def test_call_works_inside_tf_function(name):
    entry = registry.get(name)
    inputs = _inputs(entry, dtype=np.float32)
    params = entry.defaults

    @tf.function
    def graph(y_pred):
        return entry.call(y_pred, inputs, params)

    eager = entry.call(tf.constant(inputs["y_pred"]), inputs, params)
    np.testing.assert_allclose(
        graph(tf.constant(inputs["y_pred"])), eager, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "name",
    [n for n in NAMES if n != "special_token_mae"],  # |.| has kinks at y = p
)
def test_gradient_through_the_entry_matches_numerical_float64(name):
    entry = registry.get(name)
    inputs = _inputs(entry, seed=3)
    params = entry.defaults
    y_pred = tf.constant(inputs["y_pred"])
    # A small step: probabilities near 0 must not be pushed below 0.
    theoretical, numerical = tf.test.compute_gradient(
        lambda t: entry.call(t, inputs, params), [y_pred], delta=1e-6
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


# --- parameters: the registry's ranges are the function's ranges ----------------


def _out_of_range(spec):
    values = []
    if spec.low is not None:
        values.append(spec.low if spec.low_open else spec.low - 1)
    if spec.high is not None:
        values.append(spec.high + 1 if not spec.high_open else spec.high)
    if spec.type is int:
        values.append(spec.default + 0.5)
    return values


PARAM_CASES = [
    (name, spec.name)
    for name in NAMES
    for spec in registry.get(name).params
    if spec.type in (int, float)
]


@pytest.mark.parametrize("name,param", PARAM_CASES)
def test_out_of_range_values_rejected_by_registry_and_function_alike(name, param):
    entry = registry.get(name)
    spec = entry.param(param)
    inputs = _inputs(entry, dtype=np.float32)
    bad_values = _out_of_range(spec)
    assert bad_values, "every numeric parameter has a checkable bound"
    for bad in bad_values:
        with pytest.raises(ValueError, match=param):
            spec.validate(bad)
        with pytest.raises(ValueError, match=param):
            entry.call(
                tf.constant(inputs["y_pred"]), inputs, {**entry.defaults, param: bad}
            )


def test_data_dependent_bounds_are_enforced_by_the_function():
    entry = registry.get("masked_sparse_categorical_crossentropy")
    inputs = _inputs(entry, dtype=np.float32)
    num_classes = inputs["y_pred"].shape[-1]
    spec = entry.param("pad_id")
    assert spec.validate(num_classes) == num_classes  # only the data bounds it
    assert "num_classes - 1" in spec.range_text()
    with pytest.raises(ValueError, match="pad_id"):
        entry.call(tf.constant(inputs["y_pred"]), inputs, {"pad_id": num_classes})


def test_string_and_bool_parameters():
    distance = registry.get("embedding_target_loss").param("distance")
    assert distance.validate("mse") == "mse"
    with pytest.raises(ValueError, match="distance"):
        distance.validate("l1")
    hits = registry.get("sampled_softmax_loss").param("remove_accidental_hits")
    assert hits.validate(np.bool_(False)) is False
    with pytest.raises(ValueError, match="remove_accidental_hits"):
        hits.validate(1)


@pytest.mark.parametrize(
    "name,param,text,expected",
    [
        ("cosine_triplet_loss", "margin", "0.25", 0.25),
        ("embedding_target_loss", "iterations", "3", 3),
        ("embedding_target_loss", "distance", "mse", "mse"),
        ("sampled_softmax_loss", "remove_accidental_hits", "false", False),
        ("sampled_softmax_loss", "remove_accidental_hits", "Yes", True),
        ("masked_sparse_categorical_crossentropy", "pad_id", "-1", -1),
    ],
)
def test_parse_reads_values_by_type(name, param, text, expected):
    value = registry.get(name).param(param).parse(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "name,param,text",
    [
        ("cosine_triplet_loss", "margin", "-0.1"),
        ("cosine_triplet_loss", "margin", "__import__('os')"),
        ("embedding_target_loss", "iterations", "1.5"),
        ("embedding_target_loss", "power", "0"),
        ("embedding_target_loss", "distance", "cos"),
        ("sampled_softmax_loss", "remove_accidental_hits", "maybe"),
    ],
)
def test_parse_rejects_naming_the_parameter(name, param, text):
    with pytest.raises(ValueError, match=param):
        registry.get(name).param(param).parse(text)


def test_range_text_matches_the_bounds():
    assert registry.get("cosine_triplet_loss").param("margin").range_text() == (
        "a number >= 0"
    )
    power = registry.get("embedding_target_loss").param("power")
    assert power.range_text() == "a number in (0, 10000]"


# --- the closest Keras built-ins, against independent numpy values ----------------


def _keras(name, **params):
    entry = registry.get(name)
    inputs = _inputs(entry, seed=1)
    params = {**entry.defaults, **params}
    y_pred = tf.constant(inputs["y_pred"])
    values = np.asarray(entry.keras_builtin.per_sample(y_pred, inputs, params))
    overall = float(entry.keras_builtin.overall(y_pred, inputs, params))
    label = entry.keras_builtin.label(params)
    return inputs, values, overall, label


def test_bpmll_builtin_is_binary_crossentropy_from_logits():
    inputs, values, overall, label = _keras("bpmll_loss")
    y, z = inputs["y_true"], inputs["y_pred"]
    p = 1 / (1 + np.exp(-z))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    np.testing.assert_allclose(overall, expected.mean(), rtol=1e-6)
    assert "BinaryCrossentropy(from_logits=True)" in label


def test_masked_ce_builtin_per_sequence_and_token_mean():
    inputs, values, overall, label = _keras(
        "masked_sparse_categorical_crossentropy", pad_id=0
    )
    y, z = inputs["y_true"], inputs["y_pred"]
    logp = np.log(_numpy_softmax(z))
    ce = -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
    mask = y != 0
    per_row = [ce[b][mask[b]].mean() if mask[b].any() else 0.0 for b in range(len(y))]
    np.testing.assert_allclose(values, per_row, rtol=1e-6)
    # Keras' own reduction is a token mean over the whole batch.
    np.testing.assert_allclose(overall, ce[mask].mean(), rtol=1e-6)
    assert "ignore_class=0" in label


def test_triplet_builtin_is_minus_cosine_with_the_positive():
    inputs, values, overall, _ = _keras("cosine_triplet_loss")
    expected = -_numpy_cos(inputs["y_pred"], inputs["positive"])
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("distance", ["cosine", "mse"])
def test_embedding_builtin_compares_with_the_soft_lookup(distance):
    inputs, values, _, label = _keras("embedding_target_loss", distance=distance)
    predicted = inputs["y_pred"] @ inputs["embedding"]
    target = inputs["y_true"]
    if distance == "cosine":
        expected = -_numpy_cos(target, predicted)
        assert "CosineSimilarity" in label
    else:
        expected = np.mean((target - predicted) ** 2, axis=-1)
        assert "MeanSquaredError" in label
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["full_softmax_loss", "sampled_softmax_loss"])
def test_softmax_builtin_is_the_exact_cross_entropy(name):
    inputs, values, _, _ = _keras(name)
    logits = inputs["y_pred"] @ inputs["weights"].T + inputs["biases"]
    logp = np.log(_numpy_softmax(logits))
    expected = -logp[np.arange(len(logits)), inputs["y_true"]]
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_special_mae_builtin_is_plain_mae():
    inputs, values, _, _ = _keras("special_token_mae")
    expected = np.mean(np.abs(inputs["y_true"] - inputs["y_pred"]), axis=-1)
    np.testing.assert_allclose(values, expected, rtol=1e-6)


# --- layering -------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["registry.py", "check.py", "__main__.py"])
def test_backend_never_imports_streamlit_or_the_ui(module):
    path = pathlib.Path(__file__).parents[1] / "lossviz" / module
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"streamlit", "ui", "views", "pages", "plotly"}
