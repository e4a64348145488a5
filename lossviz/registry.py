"""Every loss the explorer can check, by name: what it takes and what it is like.

An entry says which function computes the loss, which Keras class wraps it,
which arrays it takes (``y_true``, ``y_pred`` and extras such as
``embedding``, ``positive``, ``negative``) with their shapes and kinds, which
parameters it has (type, default, allowed range: the same ranges the function
enforces with ``ValueError``), its formula, and the closest Keras built-in, so
that ``lossviz.check`` can put the user's own tensors through both.

``y_pred`` is always the array the gradient is taken with respect to: the
model output that feeds the loss (logits, probabilities, an anchor embedding,
or the hidden state before a softmax projection).

Arrows point one way: this module sits above the family modules and below
``lossviz.check``; it never imports streamlit.

Public names: ``InputSpec``, ``ParamSpec``, ``KerasBuiltin``, ``LossEntry``,
``LOSSES``, ``get``, ``names``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

# TensorFlow first, through the quiet import: keras would import it noisily.
from lossviz._tf import tf

# isort: split
import keras
import numpy as np

from lossviz import multilabel, sampled, sequence, sharpen, triplet
from lossviz._common import check_choice, check_number

KINDS = ("float", "int", "binary")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class InputSpec:
    """One array a loss takes.

    Attributes:
      name: the name users give it (``y_true``, ``y_pred``, ``positive``, ...).
      argument: the keyword of the loss function it is passed as.
      shapes: accepted shapes, each a tuple of axis names. Axis names shared
        between inputs must have the same size; ``"*batch"`` stands for one or
        more leading axes; a digit is a fixed size.
      kind: ``"float"`` (real values), ``"int"`` (integer ids; floats holding
        whole numbers are accepted) or ``"binary"`` (0/1 only).
      description: one line for humans.
      per_sample: whether its leading axes are the samples of the loss (so a
        non-finite loss value can point at its rows); False for shared arrays
        such as an embedding matrix.
      required: whether the loss needs it.
    """

    name: str
    argument: str
    shapes: tuple[tuple[str, ...], ...]
    kind: str
    description: str
    per_sample: bool = True
    required: bool = True

    def shape_text(self) -> str:
        """The accepted shapes, e.g. ``[batch, labels]`` or ``[*batch] or [...]``."""
        return " or ".join("[" + ", ".join(dims) + "]" for dims in self.shapes)


@dataclass(frozen=True)
class ParamSpec:
    """One scalar parameter of a loss, with the range the loss enforces.

    Attributes:
      name: keyword of the loss function.
      type: ``int``, ``float``, ``bool`` or ``str``.
      default: the value used when none is given.
      description: one line for humans.
      low, high, low_open, high_open: the allowed range (``None``: unbounded),
        as ``lossviz._common.check_number`` takes it.
      choices: the allowed values of a ``str`` parameter.
      depends_on_data: a bound that only the data fixes (e.g. "at most
        num_classes - 1"); the loss function checks it.
      ui_range: ``(low, high, step)`` for a control (a slider for floats, a
        number input for integers) where the allowed range is open or huge.
      ui_options: a list of values for a select-slider (e.g. a log grid).
    """

    name: str
    type: type
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    depends_on_data: str = ""
    ui_range: tuple | None = None
    ui_options: tuple = ()

    def validate(self, value):
        """Returns ``value`` as this parameter's type; ``ValueError`` names it."""
        if self.type is bool:
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise ValueError(f"`{self.name}` must be true or false, got {value!r}.")
        if self.type is str:
            return check_choice(self.name, value, self.choices)
        if isinstance(value, np.generic):
            value = value.item()
        check_number(
            self.name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            integer=self.type is int,
        )
        return int(value) if self.type is int else float(value)

    def parse(self, text: str):
        """Parses a command-line value by this parameter's type (never ``eval``)."""
        text = text.strip()
        if self.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"`{self.name}` must be true or false, got {text!r}.")
        if self.type is str:
            return self.validate(text)
        try:
            value = int(text) if self.type is int else float(text)
        except ValueError:
            raise ValueError(
                f"`{self.name}` must be {self.range_text()}, got {text!r}."
            ) from None
        return self.validate(value)

    def range_text(self) -> str:
        """The allowed values in words, as the ``ValueError`` states them."""
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = "an integer" if self.type is int else "a number"
        if self.low is not None and self.high is not None:
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open else "]"
            text = f"{kind} in {lo}{_number(self.low)}, {_number(self.high)}{hi}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {_number(self.low)}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {_number(self.high)}"
        else:
            text = kind
        return f"{text}, {self.depends_on_data}" if self.depends_on_data else text

    def describe(self) -> str:
        """``name (type, default d): description; range``, for ``--help``."""
        return (
            f"{self.name} ({self.type.__name__}, default {self.default!r}): "
            f"{self.description}; {self.range_text()}"
        )


@dataclass(frozen=True)
class KerasBuiltin:
    """The closest Keras built-in loss, set up to give per-sample values.

    Attributes:
      label: ``params -> str``, the built-in as one would write it.
      make: ``(params, reduction) -> keras.losses.Loss``.
      arguments: ``(y_pred, inputs, params) -> (y_true, y_pred)`` for the
        built-in (e.g. logits from a projection, or the positive embedding as
        its ``y_true``).
      to_per_sample: ``(values, inputs, params) -> values`` when the
        built-in's ``reduction=None`` output has more axes than our per-sample
        loss (e.g. per token); ``None`` when the shapes already agree.
      note: how its numbers differ from ours, in one or two sentences.
    """

    label: Callable[[Mapping], str]
    make: Callable[[Mapping, str | None], keras.losses.Loss]
    arguments: Callable[[tf.Tensor, Mapping, Mapping], tuple]
    note: str
    to_per_sample: Callable | None = None

    def per_sample(self, y_pred, inputs: Mapping, params: Mapping) -> tf.Tensor:
        """The built-in's per-sample values (``reduction=None``)."""
        values = self.make(params, None)(*self.arguments(y_pred, inputs, params))
        if self.to_per_sample is not None:
            values = self.to_per_sample(values, inputs, params)
        return values

    def overall(self, y_pred, inputs: Mapping, params: Mapping) -> tf.Tensor:
        """The built-in's scalar with its default reduction (as ``fit`` reports)."""
        loss = self.make(params, "sum_over_batch_size")
        return loss(*self.arguments(y_pred, inputs, params))


@dataclass(frozen=True)
class LossEntry:
    """A loss the explorer can check; see the module docstring."""

    name: str
    function: Callable
    module: ModuleType
    formula: str
    description: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    output: str
    keras_class: type | None
    keras_builtin: KerasBuiltin | None
    compile_snippet: str
    example: Callable[[int], dict]
    sweep_param: str | None = None
    validate: Callable[[Mapping, Mapping], None] | None = None
    trouble: Callable[[dict], dict] | None = field(default=None, repr=False)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def defaults(self) -> dict:
        return {spec.name: spec.default for spec in self.params}

    def call(self, y_pred, inputs: Mapping, params: Mapping) -> tf.Tensor:
        """The loss per sample for ``y_pred`` and the other ``inputs``."""
        kwargs = {
            spec.argument: (y_pred if spec.name == "y_pred" else inputs[spec.name])
            for spec in self.inputs
            if spec.name == "y_pred" or inputs.get(spec.name) is not None
        }
        return self.function(**kwargs, **params)

    def summary(self) -> str:
        """Several lines for ``--help``: inputs and parameters."""
        lines = [f"{self.name}: {self.description}"]
        for spec in self.inputs:
            optional = "" if spec.required else ", optional"
            argument = "" if spec.argument == spec.name else f" = {spec.argument}"
            lines.append(
                f"    {spec.name}{argument} {spec.shape_text()} ({spec.kind}"
                f"{optional}): {spec.description}"
            )
        for spec in self.params:
            lines.append(f"    --param {spec.describe()}")
        return "\n".join(lines)


def _number(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _formula(module: ModuleType, key: str) -> str:
    return getattr(module, "FORMULAS", {}).get(key) or getattr(module, "FORMULA", "")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _nan_in_y_pred(arrays: dict) -> dict:
    arrays = dict(arrays)
    y_pred = np.array(arrays["y_pred"], dtype=np.float32)
    y_pred.flat[min(y_pred.size - 1, y_pred.shape[-1] + 1)] = np.nan
    arrays["y_pred"] = y_pred
    return arrays


# --- BP-MLL ---------------------------------------------------------------


def _bpmll_example(seed: int) -> dict:
    rng = _rng(seed)
    y_true = (rng.random((6, 5)) < 0.4).astype(np.float32)
    y_true[0] = 0.0  # no positive label: BP-MLL gives 0
    y_true[1, :2], y_true[1, 2:] = 1.0, 0.0
    logits = rng.uniform(-3.0, 3.0, size=(6, 5)).astype(np.float32)
    return {"y_true": y_true, "y_pred": logits}


def _bpmll_trouble(arrays: dict) -> dict:
    # Positives far below negatives: exp(c_l - c_k) = e^100 overflows float32.
    arrays = dict(arrays)
    logits = np.array(arrays["y_pred"], dtype=np.float32)
    y_true = np.asarray(arrays["y_true"])
    logits[2] = np.where(y_true[2] > 0.5, -50.0, 50.0)
    arrays["y_pred"] = logits
    return arrays


_BPMLL = LossEntry(
    name="bpmll_loss",
    function=multilabel.bpmll_loss,
    module=multilabel,
    formula=_formula(multilabel, "bpmll"),
    description="BP-MLL multi-label ranking loss (Zhang & Zhou 2006), log space.",
    inputs=(
        InputSpec(
            "y_true", "y_true", (("batch", "labels"),), "binary", "0/1 multi-hot labels"
        ),
        InputSpec("y_pred", "logits", (("batch", "labels"),), "float", "logits"),
    ),
    params=(),
    output="[batch]",
    keras_class=multilabel.BPMLL,
    keras_builtin=KerasBuiltin(
        label=lambda p: "keras.losses.BinaryCrossentropy(from_logits=True)",
        make=lambda p, r: keras.losses.BinaryCrossentropy(
            from_logits=True, reduction=r
        ),
        arguments=lambda y_pred, inputs, p: (inputs["y_true"], y_pred),
        note=(
            "Binary cross-entropy scores each label on its own (mean over labels); "
            "BP-MLL ranks every positive above every negative. Its values are "
            "not on the same scale: compare where each is large, not the numbers."
        ),
    ),
    compile_snippet='model.compile(optimizer="adam", loss=lossviz.BPMLL())',
    example=_bpmll_example,
    trouble=_bpmll_trouble,
)


# --- masked sparse categorical cross-entropy --------------------------------


def _labels_in_range(labels, num_classes: int, name: str, skip=None) -> None:
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if skip is not None:
        bad &= labels != skip
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        allowed = f"[0, {num_classes - 1}]"
        if skip is not None:
            allowed += f" or pad_id = {skip}"
        raise ValueError(
            f"`{name}` must hold class ids in {allowed} (num_classes = "
            f"{num_classes} from y_pred's last axis), got {labels[where]} at "
            f"{list(where)}."
        )


def _masked_ce_validate(inputs: Mapping, params: Mapping) -> None:
    num_classes = np.shape(inputs["y_pred"])[-1]
    _labels_in_range(inputs["y_true"], num_classes, "y_true", skip=params["pad_id"])


def _masked_ce_example(seed: int) -> dict:
    rng = _rng(seed)
    batch, time, classes = 4, 6, 5
    y_true = rng.integers(1, classes, size=(batch, time)).astype(np.int32)
    lengths = np.array([6, 4, 2, 0])  # the last row is all padding
    y_true[np.arange(time)[None, :] >= lengths[:, None]] = 0
    logits = rng.normal(size=(batch, time, classes)).astype(np.float32)
    return {"y_true": y_true, "y_pred": logits}


def _per_sequence_mean(values, inputs, params):
    # Keras returns 0 at ignored tokens: divide by each row's real-token count.
    mask = tf.cast(
        tf.not_equal(tf.cast(inputs["y_true"], tf.int64), params["pad_id"]),
        values.dtype,
    )
    return tf.math.divide_no_nan(
        tf.reduce_sum(values, axis=-1), tf.reduce_sum(mask, axis=-1)
    )


_MASKED_CE = LossEntry(
    name="masked_sparse_categorical_crossentropy",
    function=sequence.masked_sparse_categorical_crossentropy,
    module=sequence,
    formula=_formula(sequence, "per_sequence_mean"),
    description="Per-sequence mean of the masked, class-weighted cross-entropy.",
    inputs=(
        InputSpec(
            "y_true",
            "y_true",
            (("batch", "time"),),
            "int",
            "token ids, pad_id = padding",
        ),
        InputSpec(
            "y_pred", "logits", (("batch", "time", "classes"),), "float", "logits"
        ),
        InputSpec(
            "class_weights",
            "class_weights",
            (("classes",),),
            "float",
            "one non-negative weight per class",
            per_sample=False,
            required=False,
        ),
    ),
    params=(
        ParamSpec(
            "pad_id",
            int,
            0,
            "the padding label; a negative sentinel (e.g. -1) works too",
            depends_on_data="at most num_classes - 1",
            ui_range=(-100, 1_000_000, 1),
        ),
    ),
    output="[batch]",
    keras_class=sequence.MaskedSparseCategoricalCrossentropy,
    keras_builtin=KerasBuiltin(
        label=lambda p: (
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
            f"ignore_class={p['pad_id']})"
        ),
        make=lambda p, r: keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=p["pad_id"], reduction=r
        ),
        arguments=lambda y_pred, inputs, p: (inputs["y_true"], y_pred),
        to_per_sample=_per_sequence_mean,
        note=(
            "Per sample, Keras' per-token values averaged over each row's real "
            "tokens; Keras has no class weights here. Its overall value is a "
            "token mean over the whole batch, so short sequences weigh less "
            "than in our per-sequence mean."
        ),
    ),
    compile_snippet=(
        'model.compile(optimizer="adam",\n'
        "              loss=lossviz.MaskedSparseCategoricalCrossentropy(pad_id=0))"
    ),
    example=_masked_ce_example,
    validate=_masked_ce_validate,
    trouble=_nan_in_y_pred,
)


# --- cosine triplet ----------------------------------------------------------


def _triplet_example(seed: int) -> dict:
    rng = _rng(seed)
    anchor = rng.normal(size=(6, 4)).astype(np.float32)
    positive = (anchor + rng.normal(size=(6, 4))).astype(np.float32)
    negative = rng.normal(size=(6, 4)).astype(np.float32)
    negative[5] = 0.0  # a zero vector: cosine 0, no NaN
    return {"y_pred": anchor, "positive": positive, "negative": negative}


_TRIPLET = LossEntry(
    name="cosine_triplet_loss",
    function=triplet.cosine_triplet_loss,
    module=triplet,
    formula=_formula(triplet, "cosine_triplet"),
    description="Cosine triplet hinge loss: anchor nearer the positive by a margin.",
    inputs=(
        InputSpec(
            "y_pred", "anchor", (("batch", "dim"),), "float", "anchor embeddings"
        ),
        InputSpec(
            "positive", "positive", (("batch", "dim"),), "float", "positive embeddings"
        ),
        InputSpec(
            "negative", "negative", (("batch", "dim"),), "float", "negative embeddings"
        ),
    ),
    params=(
        ParamSpec(
            "margin",
            float,
            0.1,
            "how much nearer the positive must be (cosines lie in [-1, 1])",
            low=0.0,
            ui_range=(0.0, 2.5, 0.05),
        ),
    ),
    output="[batch]",
    keras_class=triplet.CosineTripletLoss,
    keras_builtin=KerasBuiltin(
        label=lambda p: "keras.losses.CosineSimilarity()(positive, anchor)",
        make=lambda p, r: keras.losses.CosineSimilarity(axis=-1, reduction=r),
        arguments=lambda y_pred, inputs, p: (inputs["positive"], y_pred),
        note=(
            "Keras gives -cos(anchor, positive): the pull toward the positive "
            "alone, with no negative and no margin, so it is never 0."
        ),
    ),
    compile_snippet=(
        "# y_pred stacks [anchor, positive, negative] on axis 1: [batch, 3, dim]\n"
        'model.compile(optimizer="adam", loss=lossviz.CosineTripletLoss(margin=0.1))'
    ),
    example=_triplet_example,
    sweep_param="margin",
    trouble=_nan_in_y_pred,
)


# --- embedding target --------------------------------------------------------


def _embedding_example(seed: int) -> dict:
    rng = _rng(seed)
    batch, vocab, dim = 5, 6, 4
    embedding = rng.normal(size=(vocab, dim)).astype(np.float32)
    ids = rng.integers(0, vocab, size=batch)
    target = (embedding[ids] + 0.3 * rng.normal(size=(batch, dim))).astype(np.float32)
    probs = _softmax(rng.normal(size=(batch, vocab)) * 2.0).astype(np.float32)
    return {"y_true": target, "y_pred": probs, "embedding": embedding}


def _embedding_keras(p, r):
    if p["distance"] == "mse":
        return keras.losses.MeanSquaredError(reduction=r)
    return keras.losses.CosineSimilarity(axis=-1, reduction=r)


_EMBEDDING = LossEntry(
    name="embedding_target_loss",
    function=sharpen.embedding_target_loss,
    module=sharpen,
    formula=sharpen.FORMULA,
    description="Distance from a target embedding to the sharpened soft lookup.",
    inputs=(
        InputSpec(
            "y_true", "target", (("batch", "dim"),), "float", "target embeddings"
        ),
        InputSpec("y_pred", "probs", (("batch", "vocab"),), "float", "probabilities"),
        InputSpec(
            "embedding",
            "embedding",
            (("vocab", "dim"),),
            "float",
            "the embedding matrix",
            per_sample=False,
        ),
    ),
    params=(
        ParamSpec(
            "power",
            float,
            1.0,
            "sharpening power k (1 only renormalises)",
            low=0.0,
            low_open=True,
            high=sharpen.MAX_POWER,
            # 1-2-5 per decade from 0.1 (below 1 it flattens) up to the
            # largest allowed power; at 200 the naive form is NaN in float32.
            ui_options=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
                        200.0, 500.0, 1e3, 2e3, 5e3, 1e4),  # fmt: skip
        ),
        ParamSpec(
            "iterations",
            int,
            1,
            "how many times to sharpen",
            low=1,
            ui_range=(1, 10, 1),
        ),
        ParamSpec(
            "distance",
            str,
            "cosine",
            "1 - cosine, or mean squared error over the embedding axis",
            choices=tuple(sharpen.DISTANCES),
        ),
        ParamSpec(
            "straight_through",
            bool,
            False,
            "the loss sees the argmax row's embedding; the soft gradient passes",
        ),
    ),
    output="[batch]",
    keras_class=sharpen.EmbeddingTargetLoss,
    keras_builtin=KerasBuiltin(
        label=lambda p: (
            "keras.losses.MeanSquaredError()(target, probs @ embedding)"
            if p["distance"] == "mse"
            else "keras.losses.CosineSimilarity()(target, probs @ embedding)"
        ),
        make=_embedding_keras,
        arguments=lambda y_pred, inputs, p: (
            inputs["y_true"],
            sharpen.soft_embedding_lookup(
                y_pred, tf.cast(inputs["embedding"], y_pred.dtype)
            ),
        ),
        note=(
            "Keras compares the target with the unsharpened expected embedding; "
            "CosineSimilarity gives -cos (ours is 1 - cos, in [0, 2])."
        ),
    ),
    compile_snippet=(
        'model.compile(optimizer="adam",\n'
        "              loss=lossviz.EmbeddingTargetLoss(embedding, power=1.0))"
    ),
    example=_embedding_example,
    sweep_param="power",
    trouble=_nan_in_y_pred,
)


# --- full and sampled softmax -----------------------------------------------


def _softmax_validate(inputs: Mapping, params: Mapping) -> None:
    num_classes = np.shape(inputs["weights"])[0]
    _labels_in_range(inputs["y_true"], num_classes, "y_true")


def _softmax_example(seed: int) -> dict:
    rng = _rng(seed)
    batch, classes, dim = 6, 8, 4
    return {
        "y_true": rng.integers(0, classes, size=batch).astype(np.int32),
        "y_pred": rng.normal(size=(batch, dim)).astype(np.float32),
        "weights": (0.5 * rng.normal(size=(classes, dim))).astype(np.float32),
        "biases": np.zeros(classes, dtype=np.float32),
    }


def _projection_logits(y_pred, inputs, p):
    weights = tf.cast(inputs["weights"], y_pred.dtype)
    biases = tf.cast(inputs["biases"], y_pred.dtype)
    logits = tf.tensordot(y_pred, weights, axes=[[-1], [1]]) + biases
    return inputs["y_true"], logits


def _softmax_builtin() -> KerasBuiltin:
    return KerasBuiltin(
        label=lambda p: (
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
            "(labels, inputs @ weights.T + biases)"
        ),
        make=lambda p, r: keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=r
        ),
        arguments=_projection_logits,
        note=(
            "Keras forms the full [batch, classes] logits and takes the exact "
            "cross-entropy: what the sampled estimate approximates."
        ),
    )


_SOFTMAX_INPUTS = (
    InputSpec(
        "y_pred",
        "inputs",
        (("*batch", "dim"),),
        "float",
        "hidden states fed to the output projection",
    ),
    InputSpec(
        "y_true",
        "labels",
        (("*batch",), ("*batch", "1")),
        "int",
        "target class ids",
    ),
    InputSpec(
        "weights",
        "weights",
        (("classes", "dim"),),
        "float",
        "output projection weights",
        per_sample=False,
    ),
    InputSpec(
        "biases", "biases", (("classes",),), "float", "output biases", per_sample=False
    ),
)

_FULL_SOFTMAX = LossEntry(
    name="full_softmax_loss",
    function=sampled.full_softmax_loss,
    module=sampled,
    formula=_formula(sampled, "full"),
    description="Exact cross-entropy of softmax(inputs @ weights.T + biases).",
    inputs=_SOFTMAX_INPUTS,
    params=(),
    output="[*batch]",
    keras_class=None,
    keras_builtin=_softmax_builtin(),
    compile_snippet=(
        "# The output projection lives in a SampledSoftmax layer; at inference it\n"
        "# returns full-softmax probabilities.\n"
        "outputs = lossviz.SampledSoftmax(num_classes, num_sampled=64)(hidden, labels)"
    ),
    example=_softmax_example,
    validate=_softmax_validate,
    trouble=_nan_in_y_pred,
)

_SAMPLED_SOFTMAX = LossEntry(
    name="sampled_softmax_loss",
    function=sampled.sampled_softmax_loss,
    module=sampled,
    formula=_formula(sampled, "sampled"),
    description=(
        "Sampled-softmax estimate of the cross-entropy, as "
        "tf.nn.sampled_softmax_loss computes it."
    ),
    inputs=_SOFTMAX_INPUTS,
    params=(
        ParamSpec(
            "num_sampled",
            int,
            4,
            "negative classes sampled per batch",
            low=1,
            depends_on_data="at most num_classes (rows of weights)",
        ),
        ParamSpec(
            "remove_accidental_hits",
            bool,
            True,
            "drop sampled classes that equal the true label",
        ),
        ParamSpec(
            "seed",
            int,
            0,
            "sampler seed: the same seed, the same sample",
            low=-(2**63),
            high=2**63 - 1,
        ),
    ),
    output="[*batch]",
    keras_class=getattr(sampled, "SampledSoftmax", None),
    keras_builtin=_softmax_builtin(),
    compile_snippet=_FULL_SOFTMAX.compile_snippet,
    example=_softmax_example,
    validate=_softmax_validate,
    trouble=_nan_in_y_pred,
)


# --- special-token MAE ---------------------------------------------------------


def _special_mae_example(seed: int) -> dict:
    rng = _rng(seed)
    batch, time, classes = 3, 5, 5
    tokens = rng.integers(3, classes, size=(batch, time))
    tokens[:, 0], tokens[:, -1] = 1, 2  # start and end tokens
    y_true = np.eye(classes, dtype=np.float32)[tokens]
    y_pred = _softmax(3.0 * y_true + rng.normal(size=y_true.shape)).astype(np.float32)
    return {"y_true": y_true, "y_pred": y_pred}


_SPECIAL_MAE = LossEntry(
    name="special_token_mae",
    function=sequence.special_token_mae,
    module=sequence,
    formula=_formula(sequence, "special_token_mae"),
    description="Per-token MAE that forgives correctly predicted start/end tokens.",
    inputs=(
        InputSpec(
            "y_true",
            "y_true",
            (("batch", "time", "classes"),),
            "float",
            "one-hot targets",
        ),
        InputSpec(
            "y_pred",
            "y_pred",
            (("batch", "time", "classes"),),
            "float",
            "predicted probabilities",
        ),
    ),
    params=(
        ParamSpec(
            "start_id",
            int,
            1,
            "the start token's class",
            low=0,
            depends_on_data="at most num_classes - 1",
            ui_range=(0, 1_000_000, 1),
        ),
        ParamSpec(
            "end_id",
            int,
            2,
            "the end token's class",
            low=0,
            depends_on_data="at most num_classes - 1",
            ui_range=(0, 1_000_000, 1),
        ),
    ),
    output="[batch, time]",
    keras_class=None,
    keras_builtin=KerasBuiltin(
        label=lambda p: "keras.losses.MeanAbsoluteError()",
        make=lambda p, r: keras.losses.MeanAbsoluteError(reduction=r),
        arguments=lambda y_pred, inputs, p: (inputs["y_true"], y_pred),
        note="Keras' MAE does not forgive the start and end tokens.",
    ),
    compile_snippet=(
        "def loss(y_true, y_pred):\n"
        "    return lossviz.special_token_mae(y_true, y_pred, start_id=1, end_id=2)\n"
        "\n"
        'model.compile(optimizer="adam", loss=loss)'
    ),
    example=_special_mae_example,
    trouble=_nan_in_y_pred,
)


LOSSES: dict[str, LossEntry] = {
    entry.name: entry
    for entry in (
        _BPMLL,
        _MASKED_CE,
        _TRIPLET,
        _EMBEDDING,
        _FULL_SOFTMAX,
        _SAMPLED_SOFTMAX,
        _SPECIAL_MAE,
    )
}


def names() -> list[str]:
    """The registered loss names, in registry order."""
    return list(LOSSES)


def get(name: str) -> LossEntry:
    """The entry for ``name``; ``KeyError`` lists the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(
            f"unknown loss {name!r}; known losses: {', '.join(LOSSES)}"
        ) from None
