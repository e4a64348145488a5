"""The words of the "Softmax → one-hot" page: its controls, lessons, intro,
captions, help texts and the snippet to copy.

Every number a sentence states comes from ``lossviz.explore.sharpen`` (a
``Facts``, a ``Point``, a ``Sweep``, the ``TRAIN_FACTS``), passed in: this
module imports no TensorFlow, so the landing page reads the declaration and
the lessons at once.
"""

import ui

NUM_SAMPLES = 4  # lossviz.explore.sharpen.NUM_SAMPLES (a test keeps them equal)
BY_LABELS = {"power": "power k", "temperature": "temperature T"}


def _by_temperature(drawn) -> bool:
    return drawn.get("sharpen_by") == "temperature"


def _by_power(drawn) -> bool:
    return drawn.get("sharpen_by") == "power"


CONTROLS = ui.Controls(
    "sharpen",
    [
        ui.Choice(
            "sharpen_by",
            "Sharpen by",
            "power",
            options=tuple(BY_LABELS),
            widget="radio",
            horizontal=True,
            format_func=BY_LABELS.get,
            help="Which control drives: the power k of power_sharpen(softmax(z), "
            "k), or the temperature T of softmax(z / T). The other is derived "
            "(T = 1/kⁿ) and greyed out.",
        ),
        ui.Choice(
            "power",
            "Power k",
            2.0,
            param=True,
            disabled_when=_by_temperature,
            help="The exponent of p**k / Σ p**k, on a log scale. Greyed out "
            "while sharpening by temperature: the power is then 1/T.",
        ),
        ui.Choice(
            "temperature",
            "Temperature T",
            0.5,
            param=True,
            disabled_when=_by_power,
            help="The temperature of softmax(z / T), on a log scale: the "
            "reciprocals of the power grid. Greyed out while sharpening by "
            "power: the temperature is then 1/kⁿ.",
        ),
        ui.Slider(
            "iterations",
            "Iterations",
            1,
            param=True,
            disabled_when=_by_temperature,
            help="How many times the sharpening is applied (k each time). Greyed "
            "out while sharpening by temperature: softmax(z / T) is one softmax.",
        ),
        ui.Choice(
            "distance",
            "Distance",
            "cosine",
            param=True,
            widget="selectbox",
            help="cosine: 1 − cos(target, predicted) in [0, 2]; mse: mean squared "
            "error over the embedding axis.",
        ),
        ui.Slider(
            "logit_scale",
            "Logit scale",
            2.0,
            low=0.5,
            high=8.0,
            step=0.5,
            help="Logits are N(0, 1) × scale: a larger scale gives a more peaked "
            "softmax.",
        ),
        ui.Choice(
            "sample",
            "Sample to show",
            0,
            options=tuple(range(NUM_SAMPLES)),
            widget="selectbox",
            help="Which sample's distribution the bar charts show.",
        ),
        ui.Toggle(
            "hard",
            "Hard Gumbel sample",
            False,
            help="One-hot forward value with the soft sample's gradient "
            "(straight-through Gumbel-softmax).",
        ),
    ],
)
# Beside the Play chart: "Sharpen by" first, so the controls it greys out
# see its value, then the power and the temperature it chooses between.
LEAD = ("sharpen_by", "power", "temperature")
# One column each, below the chart, as the page lays them out.
COLUMNS = (
    ("iterations", "distance", "logit_scale"),
    ("sample", "hard"),
)

# Each notice says what its check (lossviz.explore.sharpen.check_lesson)
# computes; the page shows the computed numbers under it.
LESSONS = (
    ui.Lesson(
        "Power 200: naive NaN",
        {"sharpen_by": "power", "power": 200.0},
        "In float32 the literal `x**k / sum(x**k)` underflows to 0/0: the naive "
        "form has NaN entries (counted in the metric; a NaN bar is missing from "
        "the chart). `power_sharpen` computes `softmax(k log p)` and stays "
        "finite, and so do the loss and its gradient: same maths, different "
        "order of operations.",
        check="naive_nan",
    ),
    ui.Lesson(
        "Power 50: vanished gradient",
        {"sharpen_by": "power", "power": 50.0},
        "The loss is finite, but the gradient norm has collapsed to a tiny "
        "share of its value with the plain softmax (k = 1), and every sample's "
        "sharpened output is one-hot to within that share: moving the logits "
        "changes almost nothing. Compare power 2.",
        check="vanished",
    ),
    ui.Lesson(
        "Power 2: gradient kept",
        {"sharpen_by": "power", "power": 2.0},
        "A mild power sharpens the distribution (the mean top probability rises "
        "above the softmax's) and its gradient has not vanished, by the same "
        "measure as the power-50 lesson. To sharpen, use a small power (or a "
        "temperature near 1), or straight-through for a one-hot forward value.",
        check="gradient_kept",
    ),
    ui.Lesson(
        "Temperature 0.2 = power 5",
        {"sharpen_by": "temperature", "temperature": 0.2},
        "Sharpened by temperature, the model's output is `softmax(z / T)` and "
        "the power is derived, k = 1/T. The loss and its gradient are those "
        "of `power_sharpen` at k = 1/T, to float32 rounding: a temperature is a "
        "power, applied to the logits instead of to log p.",
        check="temperature_tie",
    ),
)

TITLE = "Softmax → one-hot"


def _samples(ids) -> str:
    ids = [str(i) for i in ids]
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def intro(facts) -> str:
    """The page's introduction (``facts``: ``lossviz.explore.sharpen.Facts``,
    at the page's defaults and the seed)."""
    naive = (
        f"- **Raise the power to k ≈ {facts.naive_nan_from:.3g} or more.** At "
        "these defaults that is the first power of the sweep where the literal "
        "`x**k / Σ x**k` underflows to 0/0 and returns NaN in float32; "
        "`power_sharpen` computes `softmax(k · log p)` and stays finite, equal "
        "to the temperature softmax."
        if facts.naive_nan_from is not None
        else "- **Raise the power**: `power_sharpen` computes `softmax(k · log p)` "
        "and stays finite, equal to the temperature softmax."
    )
    zero = (
        f", and from k ≈ {facts.zero_grad_from:.3g} the gradient is exactly 0 in "
        "float32: none is left to fix it."
        if facts.zero_grad_from is not None
        else "."
    )
    right, wrong = _samples(facts.right), _samples(facts.wrong)
    return f"""
A model predicts probabilities `p` over a vocabulary of {facts.vocab_size} tokens; the
loss compares the **expected embedding** `sharpen_k(p) · E` with a target embedding.
Raising `p` to a power `k` and renormalising pushes it toward the one-hot of the
argmax, so the loss sees (almost) one token. Sharpening softmax probabilities by `k`,
`n` times, is a softmax at temperature `T = 1/kⁿ`: **Sharpen by** picks which of the
two you set, and the other follows.

What to try:
{naive}
- **Watch the gradient norm** as the power grows: the sharpened output saturates
  to one-hot and the gradient with respect to the logits **vanishes**. Samples
  {right} have their target at the argmax (at k = {facts.max_power:g} their loss is
  at most {ui.format_value(facts.right_loss_at_max_power, 2)}), samples {wrong} do
  not (theirs is at least {ui.format_value(facts.wrong_loss_at_max_power, 2)}):
  sharpening locks in their mistake{zero}
- **Iterations** apply the power again: `k` twice is `k²` once.
- **Sharpen by temperature**: `softmax(z / T)` at `T = 1/k` gives the loss and
  gradient of power `k`; iterations grey out, as a temperature is applied once.
- **Straight-through** and the **hard Gumbel sample** give a one-hot forward value
  and keep a soft gradient.
"""


def train_intro(facts) -> str:
    """The Train panel's introduction (``facts``:
    ``lossviz.explore.sharpen.TRAIN_FACTS``)."""
    return f"""
**Train it.** A tiny model ({facts.num_features} features → `Dense` → softmax over
{facts.vocab_size} words) learns which word goes with which input, seeing only the
target word's **embedding** (dimension {facts.embedding_dim}): it is trained with
`EmbeddingTargetLoss`, the loss above, three ways: *softmax* (power 1), *sharpened*
at the power (iterations, distance) chosen above (sharpened by temperature: at the
power 1/T), and *straight-through* (`straight_through=True`: the loss sees the
embedding of the argmax word exactly, the gradient passes as if it were soft).
After every epoch the word accuracy is measured on {facts.num_heldout} held-out
inputs (chance is 1/{facts.vocab_size}). Set the power to 50 or 200 and train, and
compare the sharpened run's curves with the other two. The runs are drawn over
each other.
"""


LOSS, GRAD_NORM = "Loss (batch mean)", "‖∂L/∂logits‖"
DERIVED = {"power": "Temperature T = 1/kⁿ", "temperature": "Power k = 1/T"}
NAIVE_BAD = "Naive: NaN/Inf count"

GUMBEL = "Straight-through and Gumbel-softmax"
GUMBEL_CAPTION = (
    "Straight-through is the one-hot of the argmax, whatever the power. A "
    "Gumbel-softmax sample adds Gumbel noise to the logits before the softmax at "
    "T, so it may pick another token than the argmax; as T falls it becomes "
    "one-hot. The noise is the same (seeded) at every temperature."
)
SWEEP = {
    "power": "Across the power range",
    "temperature": "Across the temperature range",
}


def derived_caption(setting) -> str:
    """Under the controls: which control drives and what follows from it
    (``setting``: the explore layer's ``Setting``)."""
    if setting.sharpen_by == "temperature":
        return (
            f"Sharpening by temperature T = {setting.temperature:g}: the power is "
            f"k = 1/T = {setting.power:g}, applied once (the greyed controls are "
            "not used)."
        )
    return (
        f"Sharpening by power k = {setting.power:g}, {setting.iterations} "
        f"time(s): the temperature is T = 1/kⁿ = "
        f"{ui.format_value(setting.temperature, 3)} (the greyed control is not used)."
    )


def metric_helps(point) -> dict:
    """The metrics' help texts at ``point`` (the explore layer's ``Point``)."""
    by = point.setting.sharpen_by
    sharpened = (
        "softmax(z / T)" if by == "temperature" else "power_sharpen(softmax(z), k)"
    )
    return {
        LOSS: f"Mean of `embedding_target_loss` of {sharpened} over the "
        f"{point.loss.size} samples, as `model.compile(loss=EmbeddingTargetLoss(...))` "
        "reports it.",
        GRAD_NORM: "Gradient norm: the L2 norm of the gradient of the summed loss "
        "with respect to the logits. It vanishes as the power grows (the "
        "temperature falls).",
        DERIVED[by]: "power_sharpen(softmax(z), k) applied n times equals "
        "temperature_softmax(z, 1/kⁿ): the control that is not driving is derived.",
        NAIVE_BAD: f"Entries of x**k / Σ x**k (float32, at k = {point.power:g}) "
        f"that are NaN or Inf, out of {point.naive.size}.",
    }


def gap_caption(gap: float) -> str:
    return (
        "Largest difference between power_sharpen(softmax(z), k) and the "
        f"temperature softmax at 1/kⁿ over the batch: {ui.format_value(gap, 3)} "
        "(float32 rounding of log p, amplified by the power; the diamonds on the "
        "chart). The gradient's rows each sum to 0 (a softmax is shift-invariant); "
        "as the power grows (the temperature falls) every cell fades to 0."
    )


def sweep_caption(sweep) -> str:
    """What the sweep covers, and from which point on the gradient is exactly 0
    (``sweep``: the explore layer's ``Sweep``)."""
    values = sweep.values
    if sweep.by == "temperature":
        text = (
            f"{len(values)} temperatures from {values[0]:g} down to {values[-1]:g}, "
            "one softmax(z / T) each; same logits at every temperature. The naive "
            "form is x**k / Σ x**k at k = 1/T."
        )
        where = "T ≈ {:.3g} down"
    else:
        text = (
            f"{len(values)} powers from {values[0]:g} to {values[-1]:g} with "
            f"{sweep.setting.iterations} iteration(s); same logits at every power."
        )
        where = "k ≈ {:.3g}"
    text += " Crosses on the axis mark values that are not finite."
    if sweep.first_zero_grad is not None:
        text += (
            f" From {where.format(sweep.first_zero_grad)} the gradient is exactly 0 "
            "in float32 (not drawn on the log axis): the sharpened output is an "
            "exact one-hot."
        )
    return text


def snippet(setting) -> str:
    """The "Use it in your model" code at ``setting``."""
    distance = setting.distance
    if setting.sharpen_by == "temperature":
        return f"""import keras
import lossviz

# embedding: your [vocab_size, embedding_dim] table, e.g. pretrained word vectors
temperature = {setting.temperature:g}
model = keras.Sequential([
    keras.Input((num_features,)),
    keras.layers.Dense(vocab_size),                 # logits z
    keras.layers.Rescaling(1 / temperature),        # z / T
    keras.layers.Softmax(),                         # softmax(z / T)
])
model.compile(
    optimizer="adam",
    # power 1: the output is already sharpened (the same as power={setting.power:g}
    # on a plain softmax output)
    loss=lossviz.EmbeddingTargetLoss(embedding, power=1, distance="{distance}"),
)
model.fit(x, target_embeddings)  # target_embeddings: [batch, embedding_dim]
model.save("model.keras")
keras.saving.load_model("model.keras")  # no custom_objects needed"""
    power, iterations = setting.power, setting.iterations
    return f"""import keras
import lossviz

# embedding: your [vocab_size, embedding_dim] table, e.g. pretrained word vectors
model = keras.Sequential([
    keras.Input((num_features,)),
    keras.layers.Dense(vocab_size, activation="softmax"),
])
model.compile(
    optimizer="adam",
    loss=lossviz.EmbeddingTargetLoss(
        embedding, power={power:g}, iterations={iterations}, distance="{distance}"
    ),
)
model.fit(x, target_embeddings)  # target_embeddings: [batch, embedding_dim]
model.save("model.keras")
keras.saving.load_model("model.keras")  # no custom_objects needed"""
