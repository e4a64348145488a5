"""Check your own tensors: load them safely, put them through a loss, find NaNs.

A practitioner whose loss misbehaves brings ``y_true`` and ``y_pred`` (and any
extra arrays the loss takes) as files or text; ``run_check`` gives the
per-sample loss, its mean, the gradient with respect to ``y_pred``, every
non-finite value with its location and the input rows that produced it, and
the same data through the closest Keras built-in, side by side.

Loading is safe by construction:

- ``.npy`` / ``.npz`` are read with ``allow_pickle=False``, always: an object
  array is refused with a clear message, a user's file is never unpickled;
- ``.csv`` and pasted text are parsed as numbers (pasted JSON with
  ``json.loads``), never evaluated;
- a file larger than ``MAX_BYTES`` (50 MB) is refused, and so is an ``.npz``
  that would decompress to more than that.

Every problem with the input raises one exception type, ``CheckError`` (a
``ValueError``), whose message says what is wrong and what is expected.

Public names: ``MAX_BYTES``, ``MAX_UPLOAD_MB``, ``CheckError``, ``load_bytes``,
``load_path``, ``load_npz``, ``parse_text``, ``format_text``, ``prepare_inputs``,
``resolve_params``, ``run_check``, ``CheckReport``, ``Finding``,
``KerasComparison``, ``sweep_check``, ``example_arrays``, ``example_files``,
``format_report``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lossviz import analysis, registry
from lossviz._tf import tf

MAX_UPLOAD_MB = 50
MAX_BYTES = MAX_UPLOAD_MB * 1024 * 1024
DTYPES = ("float32", "float64")
MAX_FINDINGS = 20
MAX_ROW_VALUES = 32

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_TEXT_SPLIT = re.compile(r"\s*[,;]\s*|\s+")


class CheckError(ValueError):
    """The input cannot be checked; the message says why and what is expected."""


# --- loading -----------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _limit() -> str:
    return f"the limit is {MAX_BYTES / 2**20:g} MB"


def _check_size(size: int, source: str) -> None:
    if size > MAX_BYTES:
        raise CheckError(f"{source} is {_megabytes(size)}; {_limit()}.")
    if size == 0:
        raise CheckError(f"{source} is empty; expected an array of numbers.")


def _source(name: str, filename: str | None) -> str:
    return f"{name} ({filename})" if filename else name


def _pickle_refused(source: str) -> CheckError:
    return CheckError(
        f"{source} holds Python objects (a pickled or object array); lossviz "
        "never unpickles a file it is given. Save plain numbers instead, e.g. "
        "np.save(path, np.asarray(x, dtype=np.float32))."
    )


def _load_npy(data: bytes, source: str) -> np.ndarray:
    if not data.startswith(_NPY_MAGIC):
        if data[:1] == b"\x80":  # the opcode that starts a pickle
            raise _pickle_refused(source)
        raise CheckError(
            f"{source} is not a .npy file (it has no NumPy header); save it with "
            "np.save, or give a text file the .csv suffix."
        )
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            raise _pickle_refused(source) from None
        raise CheckError(f"{source} is not a readable .npy file ({error}).") from None
    except (OSError, EOFError) as error:
        raise CheckError(f"{source} is not a readable .npy file ({error}).") from None
    if not isinstance(array, np.ndarray):  # an .npz under another name
        array.close()
        raise CheckError(f"{source} is an .npz archive; give it the .npz suffix.")
    return array


def load_npz(
    data: bytes, names, *, filename: str = "archive.npz", optional=()
) -> dict[str, np.ndarray]:
    """Reads the arrays ``names`` (and any of ``optional``) from ``.npz`` bytes.

    Args:
      data: the file's bytes.
      names: arrays that must be present.
      filename: shown in messages.
      optional: arrays taken when present.

    Returns:
      ``{name: array}``.

    Raises:
      CheckError: too large (also once decompressed), not an archive, an
        object array (never unpickled), or a required array missing (the
        message lists what the archive holds).
    """
    _check_size(len(data), filename)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise CheckError(
            f"{filename} is not an .npz archive (not a zip file)."
        ) from None
    if unpacked > MAX_BYTES:
        raise CheckError(f"{filename} unpacks to {_megabytes(unpacked)}; {_limit()}.")
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        held = list(archive.files)
        missing = [name for name in names if name not in held]
        if missing:
            holds = ", ".join(held) if held else "no arrays"
            raise CheckError(
                f"{filename} has no array named {', '.join(missing)}; it holds: "
                f"{holds}. Save with np.savez(path, "
                + ", ".join(f"{n}={n}" for n in names)
                + ")."
            )
        arrays = {}
        for name in [*names, *(n for n in optional if n in held)]:
            try:
                arrays[name] = archive[name]
            except (ValueError, OSError, EOFError) as error:
                if "pickle" in str(error):
                    raise _pickle_refused(f"{filename}[{name!r}]") from None
                raise CheckError(
                    f"{filename}[{name!r}] is unreadable ({error})."
                ) from None
    return arrays


def _tokens(line: str) -> list[str]:
    line = line.strip()
    if line.endswith(","):
        line = line[:-1]
    return _TEXT_SPLIT.split(line)


def _number(token: str, source: str, line: int, column: int) -> float:
    if token == "":
        raise CheckError(
            f"{source}: line {line}, column {column} is empty; expected a number."
        )
    try:
        if "_" in token:  # float() would read "1_000" as 1000
            raise ValueError
        return float(token)
    except ValueError:
        raise CheckError(
            f"{source}: line {line}, column {column}: {token[:40]!r} is not a number."
        ) from None


def _rows(lines: list[tuple[int, str]], source: str, what: str) -> np.ndarray:
    """Numeric rows of equal length from ``(line number, text)`` pairs."""
    rows, first = [], None
    for number, text in lines:
        row = [
            _number(token, source, number, column)
            for column, token in enumerate(_tokens(text), start=1)
        ]
        if first is None:
            first = (number, len(row))
        elif len(row) != first[1]:
            raise CheckError(
                f"{source}: {what} on line {number} has {len(row)} values but "
                f"the first {what} (line {first[0]}) has {first[1]}; every "
                f"{what} needs the same number of values."
            )
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CheckError(
            f"{source} is not UTF-8 text; expected .npy, .npz, .csv or numbers as text."
        ) from None


def _is_header(text: str) -> bool:
    for token in _tokens(text):
        try:
            float(token)
            return False
        except ValueError:
            pass
    return True


def _load_csv(data: bytes, source: str) -> np.ndarray:
    text = _decode(data, source)
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if lines and _is_header(lines[0][1]):
        lines = lines[1:]  # a header row of column names
    if not lines:
        raise CheckError(f"{source} holds no numbers; expected rows of numbers.")
    return _rows(lines, source, "row")


def _json_shape(value, path: str, source: str) -> tuple[int, ...]:
    if isinstance(value, bool) or value is None or isinstance(value, (str, dict)):
        shown = json.dumps(value)[:40]
        raise CheckError(f"{source}: item {path or '(top)'} is {shown}, not a number.")
    if isinstance(value, (int, float)):
        return ()
    if not value:
        return (0,)
    shapes = [_json_shape(item, f"{path}[{i}]", source) for i, item in enumerate(value)]
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise CheckError(
                f"{source}: item {path}[{i}] has shape {list(shape)} but "
                f"{path}[0] has {list(shapes[0])}; nested lists must be "
                "rectangular."
            )
    return (len(value), *shapes[0])


def _parse_json(text: str, source: str) -> np.ndarray:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckError(
            f"{source}: not a valid nested list at line {error.lineno}, column "
            f"{error.colno} ({error.msg})."
        ) from None
    _json_shape(value, "", source)
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise CheckError(f"{source}: a number is too large for float64.") from None


def parse_text(text: str, name: str = "array") -> np.ndarray:
    """Parses pasted numbers: JSON-style nested lists, or rows of numbers.

    ``[[1, 2], [3, 4]]`` is read with ``json.loads`` (``NaN`` and ``Infinity``
    allowed). Otherwise numbers are separated by commas, semicolons or spaces,
    one row per line: one line gives a vector, several lines a matrix, and
    blocks of lines separated by a blank line a 3-D array.

    Args:
      text: the pasted text.
      name: what the array is, for messages.

    Returns:
      A float64 array.

    Raises:
      CheckError: empty, too long, not a number (naming line and column),
        rows of different lengths, or blocks of different shapes.
    """
    _check_size(len(text.encode("utf-8")), name)
    stripped = text.strip()
    if not stripped:
        raise CheckError(f"{name} is empty; expected numbers.")
    if stripped.startswith("["):
        return _parse_json(text, name)
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            blocks[-1].append((number, line))
        elif blocks[-1]:
            blocks.append([])
    blocks = [block for block in blocks if block]
    if len(blocks) == 1:
        array = _rows(blocks[0], name, "row")
        return array[0] if len(blocks[0]) == 1 else array
    matrices = [_rows(block, name, "row") for block in blocks]
    for block, matrix in zip(blocks[1:], matrices[1:], strict=True):
        if matrix.shape != matrices[0].shape:
            raise CheckError(
                f"{name}: the block starting on line {block[0][0]} is "
                f"{list(matrix.shape)} but the first block is "
                f"{list(matrices[0].shape)}; blank lines separate blocks of the "
                "same shape."
            )
    return np.stack(matrices)


def format_text(array, digits: int = 6) -> str:
    """An array as text that ``parse_text`` reads back (rows, blank-line blocks).

    Vectors are one line, matrices one row per line, 3-D arrays blocks of rows
    separated by a blank line; other ranks, and a single row or block (which
    would read back with an axis fewer), are written as a nested list.
    Integer arrays are written exactly, floats with ``digits`` significant
    digits (``nan``, ``inf`` as such).
    """
    array = np.asarray(array)

    def number(value) -> str:
        if array.dtype.kind in "biu":
            return str(int(value))
        return f"{float(value):.{digits}g}"

    def row(values) -> str:
        return ", ".join(number(v) for v in values)

    if array.ndim == 0:
        return number(array)
    if array.ndim == 1 and array.size:
        return row(array)
    # One row, or one block, would read back with an axis fewer: use a list.
    if array.ndim == 2 and array.shape[0] > 1 and array.size:
        return "\n".join(row(r) for r in array)
    if array.ndim == 3 and array.shape[0] > 1 and array.size:
        return "\n\n".join("\n".join(row(r) for r in block) for block in array)
    return json.dumps(
        array.tolist() if array.dtype.kind in "biu" else array.astype(float).tolist()
    )


def _kind(filename: str, data: bytes) -> str:
    if data.startswith(_NPY_MAGIC):
        return "npy"
    if data.startswith(_ZIP_MAGIC):
        return "npz"
    ext = os.path.splitext(filename)[1].lower()
    if ext in (".npy", ".npz"):
        return ext[1:]
    return "csv" if ext in (".csv", ".tsv") else "text"


def load_bytes(data: bytes, filename: str, name: str = "array") -> np.ndarray:
    """Loads one array from a file's bytes: ``.npy``, ``.npz``, ``.csv`` or text.

    The format is told by the content (the ``.npy`` and zip signatures) and then
    the suffix. From an ``.npz``, the array called ``name`` is taken, or the
    only array it holds.

    Args:
      data: the file's bytes.
      filename: its name, for the format and for messages.
      name: the input it is for (``y_true``, ``y_pred``, ...).

    Returns:
      The array (its own dtype for ``.npy``/``.npz``, float64 from text).

    Raises:
      CheckError: see the module docstring.
    """
    source = _source(name, filename)
    _check_size(len(data), source)
    kind = _kind(filename, data)
    if kind == "npy":
        return _load_npy(data, source)
    if kind == "npz":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                held = list(archive.files)
        except (ValueError, OSError, zipfile.BadZipFile):
            raise CheckError(f"{source} is not a readable .npz archive.") from None
        key = name if name in held or len(held) != 1 else held[0]
        return load_npz(data, [key], filename=filename)[key]
    if kind == "csv":
        return _load_csv(data, source)
    text = _decode(data, source)
    return parse_text(text, source)


def load_path(path, name: str = "array") -> np.ndarray:
    """Loads one array from a file on disk; see ``load_bytes``.

    The size is checked before the file is read.
    """
    path = os.fspath(path)
    source = _source(name, path)
    if not os.path.exists(path):
        raise CheckError(f"{source}: no such file.")
    if not os.path.isfile(path):
        raise CheckError(f"{source} is not a file.")
    _check_size(os.path.getsize(path), source)
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return load_bytes(data, os.path.basename(path), name)


# --- preparing inputs and parameters --------------------------------------------


def _dims(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _match(dims, shape, bound):
    """Binds the axis names ``dims`` to ``shape``; returns (bindings, conflict)."""
    star = bool(dims) and dims[0] == "*batch"
    fixed = dims[1:] if star else dims
    if star:
        if len(shape) < len(fixed) + 1:
            return None, None
        cut = len(shape) - len(fixed)
        pairs = [("*batch", tuple(shape[:cut])), *zip(fixed, shape[cut:], strict=True)]
    else:
        if len(shape) != len(dims):
            return None, None
        pairs = list(zip(dims, (int(s) for s in shape), strict=True))
    new = {}
    for symbol, size in pairs:
        if symbol.isdigit():
            if size != int(symbol):
                return None, (symbol, None)
        elif symbol in bound:
            if bound[symbol][0] != size:
                return None, (symbol, bound[symbol])
        elif symbol in new and new[symbol] != size:
            return None, (symbol, None)
        else:
            new[symbol] = size
    return new, None


def _check_shapes(entry: registry.LossEntry, arrays: Mapping) -> None:
    bound: dict[str, tuple] = {}
    for spec in entry.inputs:
        if spec.name not in arrays:
            continue
        shape = arrays[spec.name].shape
        conflicts = []
        for dims in spec.shapes:
            new, conflict = _match(dims, shape, bound)
            if new is not None:
                for symbol, size in new.items():
                    bound[symbol] = (size, spec.name, shape)
                break
            if conflict is not None:
                conflicts.append(conflict)
        else:
            expected = f"{spec.name} must be {spec.shape_text()}"
            informative = [c for c in conflicts if c[1] is not None]
            if informative:
                symbol, (size, other, other_shape) = informative[0]
                size_text = _dims(size) if isinstance(size, tuple) else str(int(size))
                raise CheckError(
                    f"{expected} like {other} {_dims(other_shape)} "
                    f"({symbol} = {size_text}), got {_dims(shape)}."
                )
            # "*batch" stands for one or more axes.
            ranks = " or ".join(
                (f"{len(d)}+" if d[0] == "*batch" else str(len(d))) for d in spec.shapes
            )
            got = f"{len(shape)} axis" if len(shape) == 1 else f"{len(shape)} axes"
            raise CheckError(f"{expected} ({ranks} axes), got {_dims(shape)} ({got}).")


def _first(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.argwhere(mask)[0]]


def _coerce(spec: registry.InputSpec, array, dtype: str) -> np.ndarray:
    array = np.asarray(array)
    name = spec.name
    if array.dtype.kind == "c":
        raise CheckError(f"{name} holds complex numbers; expected real numbers.")
    if array.dtype.kind not in "biuf":
        raise CheckError(
            f"{name} has dtype {array.dtype} ({_dtype_words(array.dtype)}); "
            f"expected numbers ({spec.kind})."
        )
    if array.size == 0:
        raise CheckError(
            f"{name} is empty (shape {_dims(array.shape)}); the check needs at "
            "least one value."
        )
    if spec.kind == "int":
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                raise CheckError(
                    f"{name} holds {array[tuple(_first(~finite))]} at "
                    f"{_first(~finite)}; expected integer ids."
                )
            whole = array == np.round(array)
            if not whole.all():
                where = _first(~whole)
                raise CheckError(
                    f"{name} holds {array[tuple(where)]} at {where}; expected "
                    "integer ids."
                )
        if array.size and np.abs(array).max() > 2**31 - 1:
            raise CheckError(f"{name} holds ids beyond the int32 range.")
        return array.astype(np.int32)
    if spec.kind == "binary":
        binary = (array == 0) | (array == 1)
        if not binary.all():
            where = _first(~binary)
            raise CheckError(
                f"{name} must hold only 0 and 1 (multi-hot labels), got "
                f"{array[tuple(where)]} at {where}."
            )
    with np.errstate(over="ignore"):
        return array.astype(dtype)


def _dtype_words(dtype: np.dtype) -> str:
    return {
        "U": "text",
        "S": "bytes",
        "O": "Python objects",
        "M": "dates",
        "m": "time spans",
        "V": "records",
    }.get(dtype.kind, "not numbers")


def _entry(loss_name: str) -> registry.LossEntry:
    try:
        return registry.get(loss_name)
    except KeyError as error:
        raise CheckError(str(error.args[0])) from None


def resolve_params(loss_name: str, params: Mapping | None = None) -> dict:
    """The loss's parameters: defaults filled in, each validated.

    Strings are parsed by the parameter's type (as the command line gives
    them), never evaluated.

    Raises:
      CheckError: an unknown parameter (listing the known ones) or a value
        outside its range (naming the parameter and the range).
    """
    entry = _entry(loss_name)
    params = dict(params or {})
    known = [spec.name for spec in entry.params]
    unknown = [name for name in params if name not in known]
    if unknown:
        takes = ", ".join(known) if known else "no parameters"
        raise CheckError(
            f"{loss_name} has no parameter {', '.join(map(repr, unknown))}; it "
            f"takes: {takes}."
        )
    resolved = {}
    for spec in entry.params:
        value = params.get(spec.name, spec.default)
        try:
            if isinstance(value, str) and spec.type is not str:
                resolved[spec.name] = spec.parse(value)
            else:
                resolved[spec.name] = spec.validate(value)
        except ValueError as error:
            raise CheckError(str(error)) from None
    return resolved


def prepare_inputs(
    loss_name: str, arrays: Mapping, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """Checks names, kinds and shapes of ``arrays`` for the loss; casts them.

    Float inputs are cast to ``dtype``; integer ids to int32; 0/1 labels are
    checked and cast to ``dtype``. NaN and Inf in float inputs are kept (the
    check reports them), not refused.

    Raises:
      CheckError: a missing or unknown input, a wrong dtype, an empty array,
        or a shape that does not fit the others (naming the expected
        relation, e.g. ``y_pred must be [batch, labels] like y_true [8, 5]
        (labels = 5), got [8, 4]``).
    """
    entry = _entry(loss_name)
    if dtype not in DTYPES:
        raise CheckError(f"`dtype` must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    given = {name: value for name, value in arrays.items() if value is not None}
    unknown = [name for name in given if name not in entry.input_names]
    if unknown:
        raise CheckError(
            f"{loss_name} takes no input {', '.join(map(repr, unknown))}; its "
            f"inputs: {', '.join(entry.input_names)}."
        )
    missing = [s.name for s in entry.inputs if s.required and s.name not in given]
    if missing:
        raise CheckError(
            f"{loss_name} needs {', '.join(missing)}: "
            + "; ".join(
                f"{s.name} {s.shape_text()} ({s.description})"
                for s in entry.inputs
                if s.name in missing
            )
            + "."
        )
    prepared = {
        spec.name: _coerce(spec, given[spec.name], dtype)
        for spec in entry.inputs
        if spec.name in given
    }
    _check_shapes(entry, prepared)
    return prepared


# --- the check ---------------------------------------------------------------------


def _label(value) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _row(array: np.ndarray):
    """A JSON-friendly row of input values (long rows are cut, ending in "…")."""
    flat = np.ravel(array)
    shown = [_jsonable(v) for v in flat[:MAX_ROW_VALUES].tolist()]
    if flat.size > MAX_ROW_VALUES:
        shown.append("…")
    return shown if np.ndim(array) else shown[0]


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return _label(value)
    return value


@dataclass(frozen=True)
class Finding:
    """One non-finite value: where it is and the input rows behind it.

    Attributes:
      array: ``"loss"``, ``"gradient"``, ``"keras loss"`` or ``"input <name>"``.
      index: its position in that array.
      value: ``"NaN"``, ``"+Inf"`` or ``"-Inf"``.
      sample: the loss sample it belongs to (``None`` for shared inputs).
      inputs: ``{input name: values of that sample}``.
    """

    array: str
    index: tuple
    value: str
    sample: tuple | None
    inputs: dict

    def to_dict(self) -> dict:
        return {
            "array": self.array,
            "index": list(self.index),
            "value": self.value,
            "sample": None if self.sample is None else list(self.sample),
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class KerasComparison:
    """The same data through the closest Keras built-in.

    Attributes:
      label: the built-in as one would write it.
      note: how its numbers differ from ours.
      values: per-sample values (``None`` if it failed).
      overall: its scalar with its own default reduction, as ``fit`` reports.
      grad: gradient of the sum of ``values`` with respect to ``y_pred``.
      error: why it failed, or ``None``.
    """

    label: str
    note: str
    values: np.ndarray | None = None
    overall: float = math.nan
    grad: np.ndarray | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckReport:
    """What ``run_check`` found; ``to_dict()`` is JSON-friendly."""

    loss: str
    params: dict
    dtype: str
    shapes: dict
    values: np.ndarray
    grad: np.ndarray
    input_nonfinite: dict
    loss_nonfinite: dict
    grad_nonfinite: dict
    findings: list
    keras: KerasComparison | None = None
    output: str = ""
    notes: list = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean of the per-sample losses (NaN/Inf when any is): what ``fit`` sees."""
        with np.errstate(invalid="ignore", over="ignore"):
            return float(np.mean(self.values, dtype=np.float64))

    @property
    def grad_norm(self) -> float:
        with np.errstate(invalid="ignore", over="ignore"):
            return float(np.sqrt(np.sum(np.square(self.grad, dtype=np.float64))))

    @property
    def nonfinite_count(self) -> int:
        """How many input, loss and gradient entries are NaN or ±Inf."""
        counts = [s["count"] for s in self.input_nonfinite.values()]
        return sum(counts) + self.loss_nonfinite["count"] + self.grad_nonfinite["count"]

    @property
    def all_finite(self) -> bool:
        """True when every input, loss value and gradient entry is finite."""
        return self.nonfinite_count == 0

    def to_dict(self, max_values: int = 10_000) -> dict:
        """A JSON-friendly summary (``json.dumps(..., allow_nan=False)`` works).

        Non-finite numbers appear as the strings ``"NaN"``, ``"+Inf"``,
        ``"-Inf"``. Arrays with more than ``max_values`` entries are given by
        their shape and first values only.
        """

        def array(a):
            if a is None:
                return None
            a = np.asarray(a, dtype=np.float64)
            if a.size > max_values:
                return {
                    "shape": list(a.shape),
                    "truncated": True,
                    "first": [_jsonable(v) for v in a.ravel()[:100].tolist()],
                }
            return _nested(a)

        keras = None
        if self.keras is not None:
            keras = {
                "label": self.keras.label,
                "note": self.keras.note,
                "values": array(self.keras.values),
                "overall": _jsonable(float(self.keras.overall)),
                "grad": array(self.keras.grad),
                "error": self.keras.error,
            }
        return {
            "loss": self.loss,
            "params": self.params,
            "dtype": self.dtype,
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "output": self.output,
            "all_finite": self.all_finite,
            "mean": _jsonable(self.mean),
            "values": array(self.values),
            "grad_norm": _jsonable(self.grad_norm),
            "grad": array(self.grad),
            "nonfinite": {
                "inputs": self.input_nonfinite,
                "loss": self.loss_nonfinite,
                "gradient": self.grad_nonfinite,
                "findings": [finding.to_dict() for finding in self.findings],
            },
            "keras": keras,
            "notes": list(self.notes),
        }


def _nested(a: np.ndarray):
    if a.ndim == 0:
        return _jsonable(float(a))
    return (
        [_nested(item) for item in a]
        if a.ndim > 1
        else [_jsonable(v) for v in a.tolist()]
    )


def _summary(array) -> dict:
    summary = analysis.nonfinite_summary(array, max_where=MAX_FINDINGS)
    summary["where"] = [list(index) for index in summary["where"]]
    return summary


def _findings(
    entry: registry.LossEntry,
    label: str,
    array: np.ndarray,
    inputs: Mapping,
    sample_rank: int | None,
) -> list[Finding]:
    """Non-finite entries of ``array`` with the per-sample input rows behind them."""
    found = []
    bad = ~np.isfinite(np.asarray(array, dtype=np.float64))
    for index in np.argwhere(bad)[:MAX_FINDINGS]:
        index = tuple(int(i) for i in index)
        sample = None if sample_rank is None else index[:sample_rank]
        rows = {}
        if sample is not None:
            for spec in entry.inputs:
                values = inputs.get(spec.name)
                if values is None or not spec.per_sample:
                    continue
                try:
                    rows[spec.name] = _row(np.asarray(values)[sample])
                except IndexError:
                    continue
        found.append(
            Finding(label, index, _label(np.asarray(array)[index]), sample, rows)
        )
    return found


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _loss_fn(entry: registry.LossEntry, inputs: Mapping, params: Mapping):
    return lambda y_pred: entry.call(y_pred, inputs, params)


def _keras_comparison(entry, inputs, params) -> KerasComparison | None:
    builtin = entry.keras_builtin
    if builtin is None:
        return None
    label = builtin.label(params)
    try:
        values, grad = analysis.value_and_grad(
            lambda y_pred: builtin.per_sample(y_pred, inputs, params),
            inputs["y_pred"],
        )
        overall = float(builtin.overall(tf.constant(inputs["y_pred"]), inputs, params))
    except Exception as error:  # the built-in failing is a finding, not a crash
        return KerasComparison(label, builtin.note, error=_first_line(error))
    return KerasComparison(label, builtin.note, values, overall, grad)


def run_check(
    loss_name: str,
    arrays: Mapping,
    params: Mapping | None = None,
    *,
    dtype: str = "float32",
) -> CheckReport:
    """Puts the user's tensors through a loss and the closest Keras built-in.

    Args:
      loss_name: a name from ``lossviz.registry.names()``.
      arrays: ``{input name: array-like}``, e.g. ``{"y_true": ..., "y_pred":
        ...}`` plus the extras the loss takes (``registry.get(name).inputs``).
      params: the loss's parameters; defaults fill the rest. Strings are parsed
        by type.
      dtype: ``"float32"`` (as Keras trains by default) or ``"float64"``.

    Returns:
      A ``CheckReport``: per-sample loss and its mean, the gradient with
      respect to ``y_pred`` (``lossviz.analysis.value_and_grad``), every
      non-finite input, loss or gradient value with its location and the input
      rows behind it, and the Keras built-in's numbers side by side.

    Raises:
      CheckError: bad inputs or parameters (see ``prepare_inputs`` and
        ``resolve_params``), or the loss itself rejecting them (its message).
    """
    entry = _entry(loss_name)
    params = resolve_params(loss_name, params)
    inputs = prepare_inputs(loss_name, arrays, dtype)
    if entry.validate is not None:
        try:
            entry.validate(inputs, params)
        except ValueError as error:
            raise CheckError(str(error)) from None
    try:
        with np.errstate(all="ignore"):
            values, grad = analysis.value_and_grad(
                _loss_fn(entry, inputs, params), inputs["y_pred"]
            )
    except (ValueError, TypeError, tf.errors.OpError) as error:
        raise CheckError(
            f"{loss_name} rejected these inputs: {_first_line(error)}"
        ) from None
    sample_rank = np.ndim(values)
    findings = []
    input_nonfinite = {}
    for spec in entry.inputs:
        if spec.name not in inputs:
            continue
        input_nonfinite[spec.name] = _summary(inputs[spec.name])
        rank = sample_rank if spec.per_sample else None
        findings += _findings(
            entry, f"input {spec.name}", inputs[spec.name], inputs, rank
        )
    findings += _findings(entry, "loss", values, inputs, sample_rank)
    findings += _findings(entry, "gradient", grad, inputs, sample_rank)
    keras = _keras_comparison(entry, inputs, params)
    if keras is not None and keras.values is not None:
        findings += _findings(entry, "keras loss", keras.values, inputs, sample_rank)
    notes = []
    if dtype == "float32" and any(
        np.asarray(arrays[s.name]).dtype == np.float64
        for s in entry.inputs
        if s.kind == "float" and arrays.get(s.name) is not None
    ):
        notes.append(
            "float64 inputs were cast to float32, as Keras trains by default; "
            "check in float64 to see the loss in double precision."
        )
    return CheckReport(
        loss=loss_name,
        params=params,
        dtype=dtype,
        shapes={name: tuple(a.shape) for name, a in inputs.items()},
        values=values,
        grad=grad,
        input_nonfinite=input_nonfinite,
        loss_nonfinite=_summary(values),
        grad_nonfinite=_summary(grad),
        findings=findings,
        keras=keras,
        output=entry.output,
        notes=notes,
    )


def sweep_check(
    loss_name: str,
    arrays: Mapping,
    params: Mapping | None = None,
    *,
    dtype: str = "float32",
    values=None,
) -> dict[str, np.ndarray]:
    """Mean loss and gradient norm on the user's data as the main parameter moves.

    Args:
      loss_name, arrays, params, dtype: as for ``run_check``.
      values: the parameter values; default: the parameter's slider range.

    Returns:
      ``lossviz.analysis.sweep``'s ``{"param", "mean_loss", "grad_norm"}``, or
      ``{}`` when the loss has no parameter to sweep.
    """
    entry = _entry(loss_name)
    if entry.sweep_param is None:
        return {}
    params = resolve_params(loss_name, params)
    inputs = prepare_inputs(loss_name, arrays, dtype)
    spec = entry.param(entry.sweep_param)
    if values is None:
        if spec.ui_options:
            values = spec.ui_options
        else:
            low, high, _ = spec.ui_range
            values = np.linspace(low, high, 41)
    values = [spec.validate(v) for v in values]

    def fn(y_pred, value):
        return entry.call(y_pred, inputs, {**params, spec.name: value})

    return analysis.sweep(fn, inputs["y_pred"], values)


# --- examples --------------------------------------------------------------------


def example_arrays(loss_name: str, seed: int = 0, nonfinite: bool = False) -> dict:
    """A small seeded set of inputs for the loss, ready for ``run_check``.

    ``nonfinite=True`` gives the same example with trouble in it: inputs that
    overflow the loss in float32 (BP-MLL) or a NaN in ``y_pred``.
    """
    entry = _entry(loss_name)
    arrays = entry.example(seed)
    if nonfinite and entry.trouble is not None:
        arrays = entry.trouble(arrays)
    return arrays


def _csv_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    fmt = "%d" if array.dtype.kind in "iu" else "%.9g"
    np.savetxt(buffer, np.atleast_1d(array), fmt=fmt, delimiter=",")
    return buffer.getvalue()


def example_files(loss_name: str, seed: int = 0, nonfinite: bool = False) -> dict:
    """The example as files to download: ``{filename: bytes}``.

    One ``.npy`` per input, a ``.csv`` for each input of at most two axes, and
    one ``.npz`` holding them all, written with numpy into memory.
    """
    arrays = example_arrays(loss_name, seed, nonfinite)
    files = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        files[f"{name}.npy"] = buffer.getvalue()
    for name, array in arrays.items():
        if np.ndim(array) <= 2:
            files[f"{name}.csv"] = _csv_bytes(np.asarray(array))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files[f"{loss_name}_example.npz"] = buffer.getvalue()
    return files


# --- text report ---------------------------------------------------------------


def _fmt(value) -> str:
    value = float(value)
    return f"{value:.6g}" if math.isfinite(value) else _label(value)


def format_report(report: CheckReport, max_rows: int = 20) -> str:
    """The report as text for a terminal: summary, side by side, findings."""
    shapes = ", ".join(f"{n} {_dims(s)}" for n, s in report.shapes.items())
    params = ", ".join(f"{k}={v!r}" for k, v in report.params.items()) or "none"
    lines = [
        f"{report.loss} on {shapes} ({report.dtype}); parameters: {params}",
        f"per-sample loss {report.output} {_dims(np.shape(report.values))}, "
        f"mean {_fmt(report.mean)}",
        f"gradient w.r.t. y_pred {_dims(np.shape(report.grad))}: norm "
        f"{_fmt(report.grad_norm)}",
    ]
    keras = report.keras
    if keras is not None:
        if keras.error:
            lines.append(f"Keras {keras.label}: failed ({keras.error})")
        else:
            lines.append(
                f"Keras {keras.label}: overall {_fmt(keras.overall)} (its own "
                "reduction)"
            )
        lines.append(f"  {keras.note}")
    flat = np.ravel(report.values)
    keras_flat = (
        np.ravel(keras.values)
        if keras is not None
        and keras.values is not None
        and np.size(keras.values) == flat.size
        else None
    )
    index = list(np.ndindex(*np.shape(report.values)))
    header = f"{'sample':>12}  {'lossviz':>12}" + (
        f"  {'keras':>12}" if keras_flat is not None else ""
    )
    lines += ["", header]
    for i in range(min(flat.size, max_rows)):
        row = f"{str(list(index[i])):>12}  {_fmt(flat[i]):>12}"
        if keras_flat is not None:
            row += f"  {_fmt(keras_flat[i]):>12}"
        lines.append(row)
    if flat.size > max_rows:
        lines.append(f"{'…':>12}  ({flat.size - max_rows} more)")
    lines.append("")
    if report.all_finite:
        lines.append("Every input, loss value and gradient entry is finite.")
    else:
        counts = [
            f"input {name}: {s['count']}"
            for name, s in report.input_nonfinite.items()
            if s["count"]
        ]
        counts += [
            f"{label}: {s['count']}"
            for label, s in (
                ("loss", report.loss_nonfinite),
                ("gradient", report.grad_nonfinite),
            )
            if s["count"]
        ]
        lines.append("NOT FINITE: " + "; ".join(counts))
    for finding in report.findings:
        rows = "; ".join(f"{k}={v}" for k, v in finding.inputs.items())
        lines.append(
            f"  {finding.array} {list(finding.index)} = {finding.value}"
            + (f"  <- {rows}" if rows else "")
        )
    lines += report.notes
    return "\n".join(lines)
