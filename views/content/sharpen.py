"""The words of the "Softmax → one-hot" page: its controls, lessons, intro,
captions, help texts and the snippet to copy."""

import ui

NUM_SAMPLES = 4  # lossviz.explore.sharpen.NUM_SAMPLES (a test keeps them equal)

CONTROLS = ui.Controls(
    "sharpen",
    [
        ui.Choice(
            "power",
            "Power k",
            2.0,
            param=True,
            help="The exponent of p**k / Σ p**k, on a log scale from 0.1 to 10⁴.",
        ),
        ui.Slider(
            "iterations",
            "Iterations",
            1,
            param=True,
            help="How many times the sharpening is applied (k each time).",
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
# One column each, as the page lays them out.
COLUMNS = (("power", "iterations"), ("distance", "logit_scale"), ("sample", "hard"))

LESSONS = (
    ui.Lesson(
        "Power 200: naive NaN",
        {"power": 200.0},
        "In float32 the literal `x**k / sum(x**k)` underflows to 0/0 and the "
        "naive bars and curve turn to NaN (counted in the metric, marked on "
        "the chart). `power_sharpen` computes `softmax(k log p)` and stays "
        "finite: same maths, different order of operations.",
    ),
    ui.Lesson(
        "Power 50: vanished gradient",
        {"power": 50.0},
        "The loss is finite, but the gradient norm has collapsed: the "
        "sharpened output is already one-hot, so moving the logits changes "
        "nothing. Samples whose argmax is wrong stay wrong. Compare power 2.",
    ),
    ui.Lesson(
        "Power 2: still learning",
        {"power": 2.0},
        "A mild power sharpens the distribution and keeps a useful "
        "gradient: the fix is a small power (or a temperature near 1), or "
        "straight-through for a hard forward pass.",
    ),
)

TITLE = "Softmax → one-hot"

INTRO = """
A model predicts probabilities `p` over a vocabulary of 8 tokens; the loss compares
the **expected embedding** `sharpen_k(p) · E` with a target embedding. Raising `p`
to a power `k` and renormalising pushes it toward the one-hot of the argmax, so
the loss sees (almost) one token. Sharpening softmax probabilities by `k` is a
softmax at temperature `1/k`.

What to try:
- **Raise the power past ~100.** The literal `x**k / Σ x**k` underflows to 0/0 and
  returns NaN in float32; `power_sharpen` computes `softmax(k · log p)` and stays
  finite, equal to the temperature softmax.
- **Watch the gradient norm** as the power grows: the sharpened output saturates
  to one-hot and the gradient with respect to the logits **vanishes**. Samples 0
  and 1 have their target at the argmax (the loss falls to 0), samples 2 and 3
  do not: sharpening locks in their mistake, and no gradient is left to fix it.
- **Iterations** apply the power again: `k` twice is `k²` once.
- **Straight-through** and **Gumbel-softmax** give a one-hot forward value and
  keep a soft gradient.
"""

TRAIN_INTRO = """
**Train it.** A tiny model (16 features → `Dense` → softmax over 16 words) learns
which word goes with which input, seeing only the target word's **embedding**: it
is trained with `EmbeddingTargetLoss`, the loss above, three ways: *softmax*
(power 1), *sharpened* at the power (iterations, distance) chosen above, and
*straight-through* (`straight_through=True`: the loss sees the embedding of the
argmax word exactly, the gradient passes as if it were soft). After every epoch
the word accuracy is measured on held-out inputs (chance is 1/16).
**Set the power to 50 or 200 and train**: the sharpened run's output is one-hot
from the start, its gradient has vanished, and its accuracy barely leaves
chance while the other two climb. The runs are drawn over each other.
"""

LOSS, GRAD_NORM = "Loss (batch mean)", "‖∂L/∂logits‖"
TEMPERATURE, NAIVE_BAD = "Temperature 1/kⁿ", "Naive: NaN/Inf count"

DISTRIBUTIONS = "The distribution before and after sharpening"
GRADIENT = "Gradient with respect to the logits"
SWEEP = "Across the power range"

GRADIENT_CAPTION = (
    "Each row sums to 0 (a softmax is shift-invariant). At a large power every "
    "cell fades to 0: the one-hot output no longer moves when the logits do."
)


def metric_helps(num_samples: int, num_entries: int) -> dict:
    """The metrics' help texts, for a batch of ``num_samples`` samples whose
    naive form has ``num_entries`` entries."""
    return {
        LOSS: f"Mean of `embedding_target_loss` over the {num_samples} samples, as "
        "`model.compile(loss=EmbeddingTargetLoss(...))` reports it.",
        GRAD_NORM: "Gradient norm: the L2 norm of the gradient of the summed loss "
        "with respect to the logits. It vanishes as the power grows.",
        TEMPERATURE: "The equivalent temperature: power_sharpen(softmax(z), k) "
        "applied n times equals temperature_softmax(z, 1/kⁿ).",
        NAIVE_BAD: "Entries of x**k / Σ x**k (float32) that are NaN or Inf, out of "
        f"{num_entries}.",
    }


def gap_caption(gap: float) -> str:
    return (
        "Largest difference between power_sharpen(softmax(z), k) and the "
        f"temperature softmax at 1/kⁿ over the batch: {ui.format_value(gap, 3)} "
        "(float32 rounding of log p, amplified by the power). A missing naive bar "
        "is a NaN."
    )


def sweep_caption(sweep) -> str:
    """What the sweep covers, and from which power the gradient is exactly 0
    (``sweep``: the explore layer's ``Sweep``)."""
    powers = sweep.powers
    text = (
        f"{len(powers)} powers from {powers[0]:g} to {powers[-1]:g} with "
        f"{sweep.setting.iterations} iteration(s); same logits at every power. "
        "Crosses on the axis mark values that are not finite."
    )
    if sweep.first_zero_grad is not None:
        text += (
            f" From k ≈ {sweep.first_zero_grad:.3g} the gradient is exactly 0 in "
            "float32 (not drawn on the log axis): the sharpened output is an exact "
            "one-hot."
        )
    return text


def snippet(setting) -> str:
    """The "Use it in your model" code at ``setting``."""
    power, iterations, distance = setting.power, setting.iterations, setting.distance
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
