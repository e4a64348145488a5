"""Checking user tensors: safe loaders, clear errors, the check and the CLI."""

import dataclasses
import io
import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossviz import check, registry
from lossviz.__main__ import main
from lossviz._tf import tf
from lossviz.check import CheckError

ROOT = pathlib.Path(__file__).parents[1]


def _npy(array, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _touch(path):
    pathlib.Path(path).write_text("unpickled!")
    return 0


class _Payload:
    """Unpickling this object would create a file: proof that nothing is unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (self.marker,))


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(check, "MAX_BYTES", 100)
    return 100


# --- numpy files ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_npy_round_trip(tmp_path, dtype):
    array = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    path = tmp_path / "a.npy"
    np.save(path, array)
    loaded = check.load_path(path, "y_pred")
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)
    np.testing.assert_array_equal(check.load_bytes(_npy(array), "a.npy"), array)


def test_pickled_object_npy_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "y_pred.npy"
    np.save(path, np.array([_Payload(str(marker)), 1], dtype=object), allow_pickle=True)
    with pytest.raises(CheckError, match="never unpickles"):
        check.load_path(path, "y_pred")
    assert not marker.exists()


def test_a_plain_pickle_named_npy_is_refused(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "y_true.npy"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckError, match="never unpickles"):
        check.load_path(path, "y_true")
    assert not marker.exists()


def test_npz_without_the_expected_arrays_lists_what_it_holds():
    data = _npz(logits=np.zeros((2, 3)), labels=np.ones((2, 3)))
    with pytest.raises(
        CheckError, match=r"no array named y_true.*holds: logits, labels"
    ):
        check.load_npz(data, ["y_true", "y_pred"], filename="batch.npz")
    with pytest.raises(CheckError, match="holds: logits, labels"):
        check.load_bytes(data, "batch.npz", "y_true")


def test_npz_gives_the_named_array_or_its_only_array():
    both = _npz(y_true=np.ones((2, 2)), y_pred=np.zeros((2, 2)))
    np.testing.assert_array_equal(check.load_bytes(both, "b.npz", "y_true"), 1.0)
    np.testing.assert_array_equal(check.load_bytes(both, "b.npz", "y_pred"), 0.0)
    single = _npz(whatever=np.full(3, 7.0))
    np.testing.assert_array_equal(check.load_bytes(single, "s.npz", "y_pred"), 7.0)
    loaded = check.load_npz(both, ["y_pred"], optional=["y_true", "weights"])
    assert sorted(loaded) == ["y_pred", "y_true"]


def test_npz_object_array_is_refused(tmp_path):
    marker = tmp_path / "marker.txt"
    data = _npz(y_pred=np.array([_Payload(str(marker))], dtype=object))
    with pytest.raises(CheckError, match="never unpickles"):
        check.load_bytes(data, "x.npz", "y_pred")
    assert not marker.exists()


def test_npz_that_unpacks_beyond_the_limit_is_refused(monkeypatch):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_pred=np.zeros(200_000))
    data = buffer.getvalue()
    monkeypatch.setattr(check, "MAX_BYTES", 50_000)
    assert len(data) < 50_000
    with pytest.raises(CheckError, match="unpacks to 1.5 MB; the limit is"):
        check.load_bytes(data, "bomb.npz", "y_pred")


def test_npy_suffix_on_an_npz_and_garbage_bytes():
    data = _npz(y_pred=np.ones(3))
    np.testing.assert_array_equal(
        check.load_bytes(data, "mislabelled.npy", "y_pred"), 1
    )
    with pytest.raises(CheckError, match="not a readable .npy"):
        check.load_bytes(b"\x93NUMPY garbage", "broken.npy", "y_pred")
    with pytest.raises(
        CheckError, match="not a .npy file .* give a text file the .csv"
    ):
        check.load_bytes(b"1,2\n3,4\n", "table.npy", "y_pred")


# --- CSV ------------------------------------------------------------------------------


def test_csv_reads_numbers_with_a_header_and_comments(tmp_path):
    path = tmp_path / "y.csv"
    path.write_text("# exported\na,b,c\n1, 2, 3\n4,5,6e-1\nnan,inf,-7\n")
    loaded = check.load_path(path, "y_pred")
    np.testing.assert_array_equal(
        loaded, [[1, 2, 3], [4, 5, 0.6], [np.nan, np.inf, -7]]
    )


def test_csv_with_ragged_rows_names_the_row(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(
        CheckError,
        match=r"y_true \(.*ragged.csv\): row on line 3 has 2 values but the "
        r"first row \(line 1\) has 3",
    ):
        check.load_path(path, "y_true")


@pytest.mark.parametrize(
    "text,message",
    [
        ("1,2\n3,abc\n", r"line 2, column 2: 'abc' is not a number"),
        ("1,,2\n", r"line 1, column 2 is empty; expected a number"),
        ("1,2\n3,1_000\n", r"line 2, column 2: '1_000' is not a number"),
        ("a,b\n", r"holds no numbers"),
    ],
)
def test_csv_that_is_not_numbers_names_line_and_column(text, message):
    with pytest.raises(CheckError, match=message):
        check.load_bytes(text.encode(), "bad.csv", "y_pred")


def test_empty_and_non_utf8_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CheckError, match=r"empty.csv\) is empty"):
        check.load_path(empty, "y_true")
    with pytest.raises(CheckError, match="is empty"):
        check.load_bytes(b"", "y.npy", "y_pred")
    with pytest.raises(CheckError, match="not UTF-8"):
        check.load_bytes(b"\xff\xfe\x00\x81", "y.csv", "y_pred")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckError, match="no such file"):
        check.load_path(tmp_path / "nope.npy", "y_pred")
    with pytest.raises(CheckError, match="is not a file"):
        check.load_path(tmp_path, "y_pred")


# --- size limit -----------------------------------------------------------------------


def test_the_limit_is_50_mb_and_matches_the_upload_setting():
    assert check.MAX_BYTES == 50 * 2**20 == check.MAX_UPLOAD_MB * 2**20
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert f"maxUploadSize = {check.MAX_UPLOAD_MB}" in config


def test_oversize_inputs_are_refused_before_reading(tmp_path, small_limit, monkeypatch):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros(64))
    with pytest.raises(CheckError, match=r"big.npy\) is 0.0 MB; the limit is"):
        check.load_path(path, "y_pred")
    with pytest.raises(CheckError, match="the limit is"):
        check.load_bytes(_npy(np.zeros(64)), "big.npy", "y_pred")
    with pytest.raises(CheckError, match="the limit is"):
        check.parse_text("1, " * 60, "y_pred")

    def refuse(*args, **kwargs):
        raise AssertionError("a file over the limit must not be opened")

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(CheckError, match="the limit is"):
        check.load_path(path, "y_pred")


# --- pasted text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1, 2, 3", [1, 2, 3]),
        ("1 2 3\n", [1, 2, 3]),
        ("1,2,\n3,4,\n", [[1, 2], [3, 4]]),
        ("1; 2\n3; 4", [[1, 2], [3, 4]]),
        ("1 2\n3 4\n\n5 6\n7 8\n", [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]),
        ("[[1, 2], [3, 4]]", [[1, 2], [3, 4]]),
        ("[[[0.5]], [[1e-3]]]", [[[0.5]], [[1e-3]]]),
    ],
)
def test_parse_text_shapes(text, expected):
    np.testing.assert_array_equal(check.parse_text(text, "y_pred"), expected)


def test_parse_text_keeps_nan_and_inf():
    for text in ("[NaN, Infinity, -Infinity]", "nan, inf, -inf"):
        parsed = check.parse_text(text, "y_pred")
        assert np.isnan(parsed[0]) and parsed[1] == np.inf and parsed[2] == -np.inf


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "y_pred is empty"),
        ("  \n ", "y_pred is empty"),
        ("1, 2\n3, x\n", r"line 2, column 2: 'x' is not a number"),
        ("1 2 3\n4 5\n", r"row on line 2 has 2 values but the first row"),
        ("1 2\n\n1 2 3\n", r"block starting on line 3 is \[1, 3\] but the first"),
        ("1 2\n\n1 2\n3 4\n", r"block starting on line 3 is \[2, 2\]"),
        ("[[1, 2],\n [3, 4]", r"not a valid nested list at line 2, column 8"),
        ("[[1, 2], [3]]", r"item \[1\] has shape \[1\] but \[0\] has \[2\]"),
        ('[[1, "a"]]', r'item \[0\]\[1\] is "a", not a number'),
        ("[1, null]", r"item \[1\] is null, not a number"),
        ("[1, true]", r"item \[1\] is true, not a number"),
        ("__import__('os').system('true')", r"line 1, column 1: .* is not a number"),
    ],
)
def test_parse_text_errors_name_the_problem(text, message):
    with pytest.raises(CheckError, match=message):
        check.parse_text(text, "y_pred")


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_format_text_and_parse_text_round_trip(array):
    parsed = check.parse_text(check.format_text(array, digits=17), "x")
    np.testing.assert_array_equal(parsed, array)


# --- shapes, dtypes, names ------------------------------------------------------------


def test_shape_mismatch_names_the_expected_relation():
    arrays = {"y_true": np.zeros((8, 5)), "y_pred": np.zeros((8, 4))}
    with pytest.raises(CheckError) as raised:
        check.prepare_inputs("bpmll_loss", arrays)
    assert str(raised.value) == (
        "y_pred must be [batch, labels] like y_true [8, 5] (labels = 5), got [8, 4]."
    )


@pytest.mark.parametrize(
    "name,arrays,message",
    [
        (
            "bpmll_loss",
            {"y_true": np.zeros((8, 5)), "y_pred": np.zeros(8)},
            r"y_pred must be \[batch, labels\] \(2 axes\), got \[8\] \(1 axis\)",
        ),
        (
            "cosine_triplet_loss",
            {
                "y_pred": np.ones((6, 4)),
                "positive": np.ones((5, 4)),
                "negative": np.ones((6, 4)),
            },
            r"positive must be \[batch, dim\] like y_pred \[6, 4\] \(batch = 6\), "
            r"got \[5, 4\]",
        ),
        (
            "full_softmax_loss",
            {
                "y_pred": np.ones((6, 4)),
                "y_true": np.ones((6, 2)),
                "weights": np.ones((8, 4)),
                "biases": np.ones(8),
            },
            r"y_true must be \[\*batch\] or \[\*batch, 1\] like y_pred \[6, 4\] "
            r"\(\*batch = \[6\]\), got \[6, 2\]",
        ),
        (
            "full_softmax_loss",
            {
                "y_pred": np.ones((6, 4)),
                "y_true": np.ones(6),
                "weights": np.ones((8, 3)),
                "biases": np.ones(8),
            },
            r"weights must be \[classes, dim\] like y_pred \[6, 4\] \(dim = 4\)",
        ),
        (
            "embedding_target_loss",
            {
                "y_true": np.ones((5, 4)),
                "y_pred": np.ones((5, 6)),
                "embedding": np.ones((7, 4)),
            },
            r"embedding must be \[vocab, dim\] like y_pred \[5, 6\] \(vocab = 6\)",
        ),
    ],
)
def test_shape_errors(name, arrays, message):
    with pytest.raises(CheckError, match=message):
        check.prepare_inputs(name, arrays)


@pytest.mark.parametrize(
    "y_true,message",
    [
        (np.array([["a", "b"]]), r"dtype <U1 \(text\); expected numbers"),
        (np.array([[1 + 2j, 0]]), "complex numbers"),
        (np.array([[{}, 1]], dtype=object), r"Python objects"),
        (np.array([[0, 2]]), r"only 0 and 1 .* got 2 at \[0, 1\]"),
        (np.array([[0, np.nan]]), r"only 0 and 1 .* got nan at \[0, 1\]"),
        (np.zeros((0, 2)), r"y_true is empty \(shape \[0, 2\]\)"),
    ],
)
def test_dtype_and_value_errors(y_true, message):
    arrays = {"y_true": y_true, "y_pred": np.zeros(np.shape(y_true))}
    with pytest.raises(CheckError, match=message):
        check.prepare_inputs("bpmll_loss", arrays)


@pytest.mark.parametrize(
    "labels,message",
    [
        ([[1.5, 0]], r"holds 1.5 at \[0, 0\]; expected integer ids"),
        ([[1, np.nan]], r"holds nan at \[0, 1\]; expected integer ids"),
    ],
)
def test_integer_ids_must_be_whole(labels, message):
    arrays = {"y_true": np.array(labels), "y_pred": np.zeros((1, 2, 3))}
    with pytest.raises(CheckError, match=message):
        check.prepare_inputs("masked_sparse_categorical_crossentropy", arrays)


def test_whole_floats_are_accepted_as_ids():
    arrays = {"y_true": np.array([[1.0, 0.0]]), "y_pred": np.zeros((1, 2, 3))}
    prepared = check.prepare_inputs("masked_sparse_categorical_crossentropy", arrays)
    assert prepared["y_true"].dtype == np.int32


def test_missing_unknown_inputs_and_bad_dtype():
    with pytest.raises(CheckError, match=r"bpmll_loss needs y_true: y_true \[batch"):
        check.prepare_inputs("bpmll_loss", {"y_pred": np.zeros((2, 2))})
    with pytest.raises(CheckError, match="takes no input 'y_true'; its inputs: y_pred"):
        check.run_check(
            "cosine_triplet_loss",
            {"y_true": 1, "y_pred": 1, "positive": 1, "negative": 1},
        )
    with pytest.raises(CheckError, match="`dtype` must be one of float32, float64"):
        check.prepare_inputs("bpmll_loss", {}, dtype="float16")
    with pytest.raises(CheckError, match="unknown loss 'nope'; known losses"):
        check.run_check("nope", {})


def test_parameters_are_resolved_and_checked():
    assert check.resolve_params("cosine_triplet_loss") == {"margin": 0.1}
    assert check.resolve_params("cosine_triplet_loss", {"margin": "0.3"}) == {
        "margin": 0.3
    }
    with pytest.raises(CheckError, match=r"no parameter 'alpha'; it takes: margin"):
        check.resolve_params("cosine_triplet_loss", {"alpha": 1})
    with pytest.raises(CheckError, match="it takes: no parameters"):
        check.resolve_params("bpmll_loss", {"margin": 1})
    with pytest.raises(CheckError, match=r"`margin` must be a number in \[0"):
        check.resolve_params("cosine_triplet_loss", {"margin": -1})


@pytest.mark.parametrize(
    "name,params,change,message",
    [
        ("masked_sparse_categorical_crossentropy", {"pad_id": 5}, None, "pad_id"),
        ("sampled_softmax_loss", {"num_sampled": 100}, None, "num_sampled"),
        ("special_token_mae", {"start_id": 7}, None, "start_id"),
        (
            "full_softmax_loss",
            {},
            ("y_true", 0, 8),
            r"y_true` must hold class ids in \[0, 7\] .* got 8 at \[0\]",
        ),
        (
            "masked_sparse_categorical_crossentropy",
            {},
            ("y_true", (0, 0), 9),
            r"class ids in \[0, 4\] or pad_id = 0 .* got 9 at \[0, 0\]",
        ),
    ],
)
def test_the_loss_rejecting_inputs_is_a_check_error(name, params, change, message):
    arrays = check.example_arrays(name)
    if change is not None:
        key, index, value = change
        arrays[key] = np.array(arrays[key])
        arrays[key][index] = value
    with pytest.raises(CheckError, match=message):
        check.run_check(name, arrays, params)


# --- the check on good inputs ---------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", registry.names())
def test_good_inputs_give_what_lossviz_gives_directly(name, dtype):
    entry = registry.get(name)
    arrays = check.example_arrays(name, seed=2)
    report = check.run_check(name, arrays, dtype=dtype)
    # The same call, made by hand.
    kwargs = {}
    for spec in entry.inputs:
        if spec.name not in arrays:
            continue  # an optional input the example leaves out
        value = np.asarray(arrays[spec.name])
        kwargs[spec.argument] = (
            value.astype(np.int32) if spec.kind == "int" else value.astype(dtype)
        )
    y_pred = tf.constant(kwargs[entry.input("y_pred").argument])
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        kwargs[entry.input("y_pred").argument] = y_pred
        direct = entry.function(**kwargs, **entry.defaults)
        total = tf.reduce_sum(direct)
    grad = tape.gradient(total, y_pred)
    assert report.values.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(report.values, np.asarray(direct))
    np.testing.assert_array_equal(report.grad, np.asarray(grad))
    assert report.all_finite and not report.findings
    assert report.mean == pytest.approx(float(np.mean(np.asarray(direct, np.float64))))
    keras = report.keras
    assert keras is not None and keras.error is None
    assert keras.values.shape == report.values.shape
    assert np.all(np.isfinite(keras.grad)) and np.isfinite(keras.overall)
    json.dumps(report.to_dict(), allow_nan=False)


def _bpmll_numpy(y, c):
    out = []
    for row_y, row_c in zip(y, c, strict=True):
        pos, neg = row_c[row_y == 1], row_c[row_y == 0]
        if not len(pos) or not len(neg):
            out.append(0.0)
            continue
        out.append(
            sum(np.exp(-(k - j)) for k in pos for j in neg) / (len(pos) * len(neg))
        )
    return np.array(out)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _cos(u, v):
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    safe = np.where(nu * nv > 0, nu * nv, 1.0)
    return np.where(nu * nv > 0, np.sum(u * v, axis=-1) / safe, 0.0)


def test_independent_numpy_references_float64():
    a = check.example_arrays("bpmll_loss", seed=4)
    report = check.run_check("bpmll_loss", a, dtype="float64")
    np.testing.assert_allclose(
        report.values,
        _bpmll_numpy(a["y_true"], a["y_pred"].astype(np.float64)),
        rtol=1e-12,
    )

    a = check.example_arrays("cosine_triplet_loss", seed=4)
    report = check.run_check("cosine_triplet_loss", a, {"margin": 0.5}, dtype="float64")
    anchor, pos, neg = (
        a[k].astype(np.float64) for k in ("y_pred", "positive", "negative")
    )
    expected = np.maximum(0.0, 0.5 + _cos(anchor, neg) - _cos(anchor, pos))
    np.testing.assert_allclose(report.values, expected, rtol=1e-12, atol=1e-15)

    a = check.example_arrays("masked_sparse_categorical_crossentropy", seed=4)
    report = check.run_check(
        "masked_sparse_categorical_crossentropy", a, {"pad_id": 0}, dtype="float64"
    )
    y, z = a["y_true"], a["y_pred"].astype(np.float64)
    ce = -np.log(np.take_along_axis(_softmax(z), y[..., None], -1))[..., 0]
    mask = y != 0
    expected = [ce[b][mask[b]].mean() if mask[b].any() else 0.0 for b in range(len(y))]
    np.testing.assert_allclose(report.values, expected, rtol=1e-12)

    a = check.example_arrays("full_softmax_loss", seed=4)
    report = check.run_check("full_softmax_loss", a, dtype="float64")
    logits = a["y_pred"].astype(np.float64) @ a["weights"].T + a["biases"]
    expected = -np.log(_softmax(logits)[np.arange(len(logits)), a["y_true"]])
    np.testing.assert_allclose(report.values, expected, rtol=1e-6)  # float32 weights

    a = check.example_arrays("special_token_mae", seed=4)
    report = check.run_check("special_token_mae", a, dtype="float64")
    yt, yp = a["y_true"], a["y_pred"].astype(np.float64)
    mae = np.abs(yt - yp).mean(-1)
    forgiven = (yt.argmax(-1) == yp.argmax(-1)) & np.isin(yt.argmax(-1), [1, 2])
    np.testing.assert_allclose(report.values, np.where(forgiven, 0.0, mae), rtol=1e-12)


def test_gradient_matches_a_numerical_gradient_float64():
    a = check.example_arrays("bpmll_loss", seed=5)
    report = check.run_check("bpmll_loss", a, dtype="float64")
    y_true = a["y_true"].astype(np.float64)
    _, numerical = tf.test.compute_gradient(
        lambda t: tf.reduce_sum(_bpmll_tf(y_true, t)),
        [tf.constant(a["y_pred"], tf.float64)],
        delta=1e-6,
    )
    np.testing.assert_allclose(
        report.grad.ravel(), numerical[0].ravel(), rtol=1e-5, atol=1e-6
    )


def _bpmll_tf(y_true, logits):
    # The textbook pairwise form, written independently of lossviz.
    pairs = y_true[:, :, None] * (1 - y_true[:, None, :])
    diff = logits[:, :, None] - logits[:, None, :]
    total = tf.reduce_sum(pairs * tf.exp(-diff), axis=[1, 2])
    count = tf.reduce_sum(pairs, axis=[1, 2])
    return tf.math.divide_no_nan(total, count)


# --- non-finite values ----------------------------------------------------------------


def test_nan_in_the_input_is_reported_with_its_rows():
    a = check.example_arrays("bpmll_loss", seed=0)
    y_pred = a["y_pred"].copy()
    y_pred[3, 2] = np.nan
    report = check.run_check("bpmll_loss", {**a, "y_pred": y_pred})
    assert not report.all_finite
    assert report.input_nonfinite["y_pred"]["where"] == [[3, 2]]
    assert report.input_nonfinite["y_pred"]["nan"] == 1
    first = report.findings[0]
    assert (first.array, first.index, first.value, first.sample) == (
        "input y_pred",
        (3, 2),
        "NaN",
        (3,),
    )
    assert first.inputs["y_pred"][2] == "NaN"
    assert first.inputs["y_true"] == a["y_true"][3].tolist()
    loss_findings = [f for f in report.findings if f.array == "loss"]
    assert [f.index for f in loss_findings] == [(3,)]
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert '"NaN"' in text
    assert json.loads(text)["mean"] == "NaN"


def test_the_nonfinite_count_adds_inputs_loss_and_gradient():
    a = check.example_arrays("bpmll_loss", seed=0)
    y_pred = a["y_pred"].copy()
    y_pred[3, 2] = np.nan
    y_pred[5, 1] = np.inf  # a negative label scored +Inf: e^Inf
    report = check.run_check("bpmll_loss", {**a, "y_pred": y_pred})
    in_loss = int(np.sum(~np.isfinite(report.values)))
    in_grad = int(np.sum(~np.isfinite(report.grad)))
    assert in_loss == 2 and in_grad >= 2  # samples 3 and 5, and their gradients
    assert report.nonfinite_count == 2 + in_loss + in_grad
    assert not report.all_finite
    clean = check.run_check("bpmll_loss", a)
    assert clean.nonfinite_count == 0 and clean.all_finite


def test_overflow_in_float32_is_found_and_float64_is_finite():
    a = check.example_arrays("bpmll_loss", seed=0, nonfinite=True)
    report32 = check.run_check("bpmll_loss", a)
    assert report32.loss_nonfinite["where"] == [[2]]
    assert report32.loss_nonfinite["posinf"] == 1
    assert not report32.input_nonfinite["y_pred"]["count"]
    finding = next(f for f in report32.findings if f.array == "loss")
    np.testing.assert_array_equal(finding.inputs["y_pred"], a["y_pred"][2])
    assert report32.grad_nonfinite["count"] > 0
    assert "NOT FINITE" in check.format_report(report32)
    report64 = check.run_check("bpmll_loss", a, dtype="float64")
    assert report64.all_finite and report64.values[2] > 1e40
    assert "Every input, loss value and gradient entry is finite." in (
        check.format_report(report64)
    )


def test_a_failing_keras_builtin_is_reported_not_fatal(monkeypatch):
    entry = registry.get("bpmll_loss")

    def broken(params, reduction):
        raise RuntimeError("no kernel\nsecond line")

    builtin = dataclasses.replace(entry.keras_builtin, make=broken)
    monkeypatch.setitem(
        registry.LOSSES, "bpmll_loss", dataclasses.replace(entry, keras_builtin=builtin)
    )
    report = check.run_check("bpmll_loss", check.example_arrays("bpmll_loss"))
    assert report.keras.error == "no kernel" and report.keras.values is None
    assert report.all_finite
    assert "failed (no kernel)" in check.format_report(report)


def test_to_dict_truncates_large_arrays():
    a = check.example_arrays("bpmll_loss")
    summary = check.run_check("bpmll_loss", a).to_dict(max_values=10)
    assert summary["grad"]["truncated"] and summary["grad"]["shape"] == [6, 5]
    assert len(summary["values"]) == 6


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda b: st.integers(1, 6).flatmap(
            lambda n: st.tuples(
                hnp.arrays(np.int8, (b, n), elements=st.integers(0, 1)),
                hnp.arrays(
                    np.float32,
                    (b, n),
                    elements=st.floats(-40, 40, width=32),
                ),
            )
        )
    )
)
def test_bpmll_check_is_finite_in_its_documented_range(arrays):
    y_true, logits = arrays
    report = check.run_check("bpmll_loss", {"y_true": y_true, "y_pred": logits})
    assert report.all_finite


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.just(3), st.just(3)),
        elements=st.floats(-1e3, 1e3, width=32) | st.just(0.0),
    ),
    st.floats(0, 3),
)
def test_triplet_check_is_finite_for_any_finite_embeddings(stacked, margin):
    arrays = {
        "y_pred": stacked[:, 0],
        "positive": stacked[:, 1],
        "negative": stacked[:, 2],
    }
    report = check.run_check("cosine_triplet_loss", arrays, {"margin": margin})
    assert report.all_finite


# --- sweeps and examples --------------------------------------------------------------


def test_sweep_on_user_data_agrees_with_the_check():
    a = check.example_arrays("cosine_triplet_loss", seed=1)
    curves = check.sweep_check("cosine_triplet_loss", a, values=[0.0, 0.4, 1.0])
    for margin, mean in zip(curves["param"], curves["mean_loss"], strict=True):
        report = check.run_check("cosine_triplet_loss", a, {"margin": margin})
        assert mean == pytest.approx(report.mean, rel=1e-6)
    assert check.sweep_check("bpmll_loss", check.example_arrays("bpmll_loss")) == {}
    default = check.sweep_check(
        "embedding_target_loss", check.example_arrays("embedding_target_loss")
    )
    assert len(default["param"]) == len(
        registry.get("embedding_target_loss").param("power").ui_options
    )
    with pytest.raises(ValueError, match="margin"):
        check.sweep_check("cosine_triplet_loss", a, values=[-1.0])


@pytest.mark.parametrize("name", registry.names())
def test_example_files_load_back_to_the_example(name):
    arrays = check.example_arrays(name, seed=3)
    files = check.example_files(name, seed=3)
    archive = check.load_npz(files[f"{name}_example.npz"], list(arrays))
    for input_name, array in arrays.items():
        np.testing.assert_array_equal(
            check.load_bytes(files[f"{input_name}.npy"], "x.npy", input_name), array
        )
        np.testing.assert_array_equal(archive[input_name], array)
        if f"{input_name}.csv" in files:
            loaded = check.load_bytes(files[f"{input_name}.csv"], "x.csv", input_name)
            np.testing.assert_allclose(
                loaded.reshape(np.shape(array)), array, rtol=1e-7
            )
        text = check.format_text(array)
        np.testing.assert_allclose(check.parse_text(text), array, rtol=1e-5)
    check.run_check(name, arrays)


# --- the command line -----------------------------------------------------------------


def _save(tmp_path, arrays):
    paths = {}
    for name, array in arrays.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    return paths


def test_cli_help_lists_losses_and_parameters(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["check", "--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    for name in registry.names():
        assert name in out
    assert "--param margin (float, default 0.1): " in out
    assert "cosines lie in [-1, 1]); a number >= 0" in out
    assert "over the embedding axis; one of 'cosine', 'mse'" in out
    assert "y_pred = logits [batch, labels] (float): logits" in out


def test_cli_in_process_prints_the_report(tmp_path, capsys):
    a = check.example_arrays("cosine_triplet_loss")
    paths = _save(tmp_path, a)
    status = main(
        [
            "check",
            "cosine_triplet_loss",
            "--y-pred",
            str(paths["y_pred"]),
            "--input",
            f"positive={paths['positive']}",
            "--input",
            f"negative={paths['negative']}",
            "--param",
            "margin=0.7",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    report = check.run_check("cosine_triplet_loss", a, {"margin": 0.7})
    assert f"mean {report.mean:.6g}" in out
    assert "parameters: margin=0.7" in out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--param", "margin=-1"], r"`margin` must be a number in \[0(\.0)?, inf\]"),
        (["--param", "margin=abc"], r"`margin` must be a number >= 0, got 'abc'"),
        (["--param", "alpha=1"], r"no parameter 'alpha'; it takes: margin"),
        (["--y-true", "{y_pred}"], r"takes no input 'y_true'"),
        (["--input", "embedding={y_pred}"], r"takes no input 'embedding'"),
        (
            ["--input", "positive={missing}"],
            r"positive \(.*missing.npy\): no such file",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_one_message(tmp_path, capsys, extra, message):
    a = check.example_arrays("cosine_triplet_loss")
    paths = _save(tmp_path, a)
    fill = {"y_pred": paths["y_pred"], "missing": tmp_path / "missing.npy"}
    argv = [
        "check",
        "cosine_triplet_loss",
        "--y-pred",
        str(paths["y_pred"]),
        "--input",
        f"negative={paths['negative']}",
    ]
    if "positive=" not in " ".join(extra):
        argv += ["--input", f"positive={paths['positive']}"]
    argv += [part.format(**fill) for part in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "no_such_loss", "--y-pred", "x.npy"],
        ["check", "bpmll_loss"],
        ["check", "bpmll_loss", "--y-pred", "x.npy", "--param", "novalue"],
        ["check", "bpmll_loss", "--y-pred", "x.npy", "--dtype", "float16"],
    ],
)
def test_cli_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_cli_missing_y_true_exits_2(tmp_path, capsys):
    paths = _save(tmp_path, check.example_arrays("bpmll_loss"))
    assert main(["check", "bpmll_loss", "--y-pred", str(paths["y_pred"])]) == 2
    assert "bpmll_loss needs y_true" in capsys.readouterr().err


@pytest.fixture(scope="module", autouse=True)
def cli_runs(tmp_path_factory):
    """Three ``python -m lossviz check`` processes, started when this module's
    first test starts: each spends seconds importing TensorFlow, which then
    overlaps with the in-process tests instead of adding to them."""
    root = tmp_path_factory.mktemp("cli")
    clean = check.example_arrays("bpmll_loss", seed=0)
    trouble = check.example_arrays("bpmll_loss", seed=0, nonfinite=True)
    (root / "good").mkdir()
    (root / "bad").mkdir()
    ok_paths = _save(root / "good", clean)
    bad_paths = _save(root / "bad", trouble)
    pickled = root / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    def start(*args):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen(
            [sys.executable, "-m", "lossviz", "check", "bpmll_loss", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
            env=env,
        )

    runs = {
        "finite": start(
            "--y-true", ok_paths["y_true"], "--y-pred", ok_paths["y_pred"], "--json"
        ),
        "nonfinite": start(
            "--y-true", bad_paths["y_true"], "--y-pred", bad_paths["y_pred"]
        ),
        "bad": start("--y-true", pickled, "--y-pred", ok_paths["y_pred"]),
    }
    yield runs, clean
    for proc in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_subprocess_exit_codes_and_json(cli_runs):
    runs, clean = cli_runs
    results = {
        key: (proc.communicate(timeout=240), proc.returncode)
        for key, proc in runs.items()
    }

    (out, err), code = results["finite"]
    assert code == 0, err
    summary = json.loads(out)
    expected = check.run_check("bpmll_loss", clean)
    np.testing.assert_allclose(summary["values"], expected.values, rtol=1e-6)
    np.testing.assert_allclose(summary["grad"], expected.grad, rtol=1e-6)
    assert summary["all_finite"] is True and summary["loss"] == "bpmll_loss"
    assert summary["keras"]["label"].startswith("keras.losses.BinaryCrossentropy")

    (out, err), code = results["nonfinite"]
    assert code == 1, err
    assert "NOT FINITE" in out and "loss [2] = +Inf" in out

    (out, err), code = results["bad"]
    assert code == 2
    assert "never unpickles" in err and "Traceback" not in err
    assert out == ""
