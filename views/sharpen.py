"""Softmax → one-hot: power sharpening in log space, and what it costs.

A thin view: controls, then numbers and charts from ``lossviz.sharpen`` and
``lossviz.analysis``. No loss is computed here.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import ui

# lossviz first: it imports TensorFlow quietly.
from lossviz import analysis, sharpen
from lossviz._tf import tf

PAGE = "sharpening"
NUM_SAMPLES, VOCAB_SIZE, EMBEDDING_DIM = 4, 8, 5
POWERS = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
          1e3, 2e3, 5e3, 1e4]  # fmt: skip
SWEEP_POWERS = np.geomspace(0.1, sharpen.MAX_POWER, 41)  # 8 per decade
TOKENS = [str(v) for v in range(VOCAB_SIZE)]
TRAIN_TASK = "sharpen"

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


@ui.cache_data(show_spinner=False)
def example(logit_scale, seed):
    return sharpen.example_batch(
        NUM_SAMPLES, VOCAB_SIZE, EMBEDDING_DIM, logit_scale=logit_scale, seed=seed
    )


@ui.cache_resource(show_spinner=False)
def loss_function(iterations, distance):
    """``fn(logits, power, target, embedding)``: the loss of ``softmax(logits)``.

    One graph per (iterations, distance), shared by every session; the power
    and the data are tensors, so moving a slider never retraces it. No
    autograph: lossviz has no tensor-dependent Python control flow, and
    converting its functions took about 3 s of the page's first run.
    """

    @tf.function(autograph=False)
    def fn(logits, power, target, embedding):
        probs = sharpen.temperature_softmax(logits, 1.0)
        return sharpen.embedding_target_loss(
            target, probs, embedding, power, iterations, distance
        )

    return fn


@ui.cache_resource(show_spinner=False)
def distribution_function(iterations, hard):
    """``fn(logits, power, seed)``: every sharpened form of ``softmax(logits)``."""

    @tf.function(autograph=False)
    def fn(logits, power, seed):
        probs = sharpen.temperature_softmax(logits, 1.0)
        temperature = 1.0 / power**iterations
        return {
            "probs": probs,
            "stable": sharpen.power_sharpen(probs, power, iterations),
            "naive": sharpen.naive_power_sharpen(probs, power, iterations),
            "temperature": sharpen.temperature_softmax(logits, temperature),
            "straight_through": sharpen.straight_through_one_hot(probs),
            "gumbel": sharpen.gumbel_softmax(logits, temperature, hard=hard, seed=seed),
        }

    return fn


def as_tensors(logit_scale, seed):
    logits, embedding, target, _ = example(logit_scale, seed)
    return tf.constant(logits), tf.constant(target), tf.constant(embedding)


@ui.cache_data(show_spinner=False)
def loss_and_grad(logit_scale, power, iterations, distance, seed):
    logits, target, embedding = as_tensors(logit_scale, seed)
    fn = loss_function(iterations, distance)
    power = tf.constant(power, tf.float32)
    return analysis.value_and_grad(lambda x: fn(x, power, target, embedding), logits)


@ui.cache_data(show_spinner=False)
def distributions(logit_scale, power, iterations, hard, seed):
    logits = as_tensors(logit_scale, seed)[0]
    fn = distribution_function(iterations, hard)
    out = fn(logits, tf.constant(power, tf.float32), tf.constant(seed, tf.int64))
    return {name: value.numpy() for name, value in out.items()}


@ui.cache_data(show_spinner="Sweeping the power…")
def power_sweep(logit_scale, iterations, distance, seed):
    logits, target, embedding = as_tensors(logit_scale, seed)
    fn = loss_function(iterations, distance)
    curves = analysis.sweep(
        lambda x, p: fn(x, tf.constant(p, tf.float32), target, embedding),
        logits,
        SWEEP_POWERS,
    )
    forms = distribution_function(iterations, False)
    seed_tensor = tf.constant(seed, tf.int64)
    stable, naive = [], []
    for power in SWEEP_POWERS:
        form = forms(logits, tf.constant(power, tf.float32), seed_tensor)
        stable.append(form["stable"].numpy())
        naive.append(form["naive"].numpy())
    stable, naive = np.stack(stable), np.stack(naive)
    broken = ~np.isfinite(naive).all(axis=(1, 2))
    return {
        **curves,
        # the sharpened probability of each sample's top token, batch mean
        "stable_top": stable.max(-1).mean(-1),
        "naive_top": np.where(broken, np.nan, naive.max(-1).mean(-1)),
        "first_nan": float(SWEEP_POWERS[broken.argmax()]) if broken.any() else None,
    }


# Plotly figures take tens of milliseconds to build, far more than the cached
# numbers behind them: each is built once per setting and shared (Streamlit
# only reads a figure to serialise it).
@ui.cache_resource(max_entries=256, show_spinner=False)
def distribution_figures(logit_scale, power, iterations, hard, seed, sample):
    dist = distributions(logit_scale, power, iterations, hard, seed)
    logits, _, _, target_ids = example(logit_scale, seed)
    name = sample_names(logits, target_ids)[sample]
    temperature = 1.0 / power**iterations
    before_after = ui.charts.bars(
        TOKENS,
        {
            "softmax p": dist["probs"][sample],
            "power_sharpen (log space)": dist["stable"][sample],
            "naive x**k / Σ x**k": dist["naive"][sample],
        },
        title=f"Sample {name}: p and sharpened p",
        x_title="token",
        y_title="probability",
    )
    one_hot = ui.charts.bars(
        TOKENS,
        {
            f"softmax at T = {ui.format_value(temperature, 3)}": dist["temperature"][
                sample
            ],
            "straight-through one-hot": dist["straight_through"][sample],
            ("hard " if hard else "") + "Gumbel-softmax sample": dist["gumbel"][sample],
        },
        title="The same temperature, straight-through and Gumbel-softmax",
        x_title="token",
        y_title="probability",
    )
    return before_after, one_hot


@ui.cache_resource(max_entries=256, show_spinner=False)
def gradient_figure(logit_scale, power, iterations, distance, seed):
    logits, _, _, target_ids = example(logit_scale, seed)
    _, grad = loss_and_grad(logit_scale, power, iterations, distance, seed)
    return ui.charts.heatmap(
        grad,
        x_labels=TOKENS,
        y_labels=sample_names(logits, target_ids),
        title="∂ loss / ∂ logits",
        x_title="token",
        y_title="sample",
    )


def mark_powers(fig, power, first_nan=None, label_y=1.0):
    """``fig`` with the current power marked and the naive form's NaN range shaded.

    On a log axis Plotly puts shapes in data units but annotations in log10
    units (plotly.py#2580), so the labels get ``log10`` and the shapes do not.
    The layout is extended as a dict, the way ``ui.charts`` builds it; the
    traces are reused as they are (``to_plotly_json`` would turn their arrays
    into base64 dicts).
    """
    layout = fig.layout.to_plotly_json()
    shapes = list(layout.get("shapes", ()))
    notes = list(layout.get("annotations", ()))
    if first_nan is not None:
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": first_nan,
                "x1": sharpen.MAX_POWER,
                "y0": 0,
                "y1": 1,
                "fillcolor": ui.charts.NONFINITE_COLOR,
                "opacity": 0.12,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": np.log10(first_nan),
                "xref": "x",
                "y": 0.6,
                "yref": "paper",
                "text": f" naive NaN from k ≈ {first_nan:.3g}",
                "showarrow": False,
                "xanchor": "left",
            }
        )
    shapes.append(
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": power,
            "x1": power,
            "y0": 0,
            "y1": 1,
            "line": {"dash": "dash", "width": 1.5},
        }
    )
    notes.append(
        {
            "x": np.log10(power),
            "xref": "x",
            "y": label_y,
            "yref": "paper",
            "text": f" k = {power:g}",
            "showarrow": False,
            "xanchor": "center" if label_y >= 1 else "left",
            "yanchor": "bottom" if label_y >= 1 else "middle",
        }
    )
    layout["shapes"], layout["annotations"] = shapes, notes
    return go.Figure({"data": fig.data, "layout": layout}, _validate=False)


@ui.cache_resource(max_entries=256, show_spinner=False)
def sweep_figures(logit_scale, iterations, distance, seed, power):
    sweep = power_sweep(logit_scale, iterations, distance, seed)
    loss = ui.charts.line(
        SWEEP_POWERS,
        {"loss, batch mean": sweep["mean_loss"]},
        title="Loss as the power grows",
        x_title="power k",
        y_title="loss",
        log_x=True,
    )
    grad = ui.charts.line(
        SWEEP_POWERS,
        {"‖∂L/∂logits‖": sweep["grad_norm"]},
        title="The gradient vanishes as the power grows",
        x_title="power k",
        y_title="gradient norm",
        log_x=True,
        log_y=True,
    )
    top = ui.charts.line(
        SWEEP_POWERS,
        {
            "log space": sweep["stable_top"],
            "naive (float32)": sweep["naive_top"],
        },
        title="Top sharpened probability, batch mean: naive and log space",
        x_title="power k",
        y_title="top probability",
        log_x=True,
    )
    return (
        mark_powers(loss, power),
        mark_powers(grad, power),
        # inside the plot: the legend takes the row above this one
        mark_powers(top, power, sweep["first_nan"], label_y=0.35),
    )


def train_runs(power, iterations, distance):
    """The train panel's runs: label -> (variant, params).

    The labels follow the controls, so a run drawn earlier keeps the settings
    it was trained with in its name (the panel keeps a picked run picked).
    """
    how = "" if distance == "cosine" else f", {distance}"
    times = "" if iterations == 1 else f" × {iterations}"
    return {
        f"softmax (k = 1{how})": ("softmax", {"distance": distance}),
        f"sharpened (k = {power:g}{times}{how})": (
            "sharpened",
            {"power": power, "iterations": iterations, "distance": distance},
        ),
        f"straight-through (k = 1{how})": (
            "straight-through",
            {"distance": distance},
        ),
    }


def describe_run(run):
    """The last run's extras: held-out accuracy and a few decoded words."""
    examples = run.get("examples") or []
    if not examples:
        return
    summary, rows = examples[0], examples[1:]
    st.markdown(
        f"**{run['label']}**: held-out word accuracy "
        f"{ui.format_value(summary['val_word_accuracy_before'], 3)} before training, "
        f"**{ui.format_value(summary['val_word_accuracy_after'], 3)}** after "
        f"({summary['num_heldout']} inputs, chance "
        f"{ui.format_value(summary['chance'], 3)}). The first held-out inputs:"
    )
    st.dataframe(
        [
            {
                "target word": row["target"],
                "emitted word": row["predicted"],
                "right?": "✓" if row["correct"] else "✗",
                "p(emitted)": ui.format_value(row["p_predicted"], 3),
                "p(target)": ui.format_value(row["p_target"], 3),
                "cos(emitted, target)": ui.format_value(row["cosine_to_target"], 3),
            }
            for row in rows
        ],
        hide_index=True,
        width="stretch",
    )


def sample_names(logits, target_ids):
    right = logits.argmax(-1) == target_ids
    return [
        f"{i}: target {t} ({'= argmax' if ok else 'not argmax'})"
        for i, (t, ok) in enumerate(zip(target_ids, right, strict=True))
    ]


ui.header("Softmax → one-hot", sharpen.FORMULA, INTRO)

left, middle, right = st.columns(3)
with left:
    power = ui.select_slider(
        "Power k",
        key="sh_power",
        value=2.0,
        options=POWERS,
        format_func=lambda v: f"{v:g}",
        help="The exponent of p**k / Σ p**k, on a log scale from 0.1 to 10⁴.",
    )
    iterations = ui.slider(
        "Iterations",
        key="sh_iterations",
        value=1,
        min_value=1,
        max_value=4,
        step=1,
        help="How many times the sharpening is applied (k each time).",
    )
with middle:
    distance = ui.selectbox(
        "Distance",
        key="sh_distance",
        value="cosine",
        options=list(sharpen.DISTANCES),
        help="cosine: 1 − cos(target, predicted) in [0, 2]; mse: mean squared "
        "error over the embedding axis.",
    )
    logit_scale = ui.slider(
        "Logit scale",
        key="sh_scale",
        value=2.0,
        min_value=0.5,
        max_value=8.0,
        step=0.5,
        help="Logits are N(0, 1) × scale: a larger scale gives a more peaked softmax.",
    )
with right:
    sample = ui.selectbox(
        "Sample to show",
        key="sh_sample",
        value=0,
        options=list(range(NUM_SAMPLES)),
        help="Which sample's distribution the bar charts show.",
    )
    hard = ui.toggle(
        "Hard Gumbel sample",
        key="sh_hard",
        value=False,
        help="One-hot forward value with the soft sample's gradient "
        "(straight-through Gumbel-softmax).",
    )
ui.reset_button(PAGE)

seed = ui.seed()
logits, embedding, target, target_ids = example(logit_scale, seed)
loss, grad = loss_and_grad(logit_scale, power, iterations, distance, seed)
dist = distributions(logit_scale, power, iterations, hard, seed)
temperature = 1.0 / power**iterations
naive_bad = int((~np.isfinite(dist["naive"])).sum())

metrics = st.columns(4)
with metrics[0]:
    ui.metric(
        "Loss (batch mean)",
        np.mean(loss),
        help=f"Mean of `embedding_target_loss` over the {NUM_SAMPLES} samples, as "
        "`model.compile(loss=EmbeddingTargetLoss(...))` reports it.",
    )
with metrics[1]:
    ui.metric(
        "‖∂L/∂logits‖",
        np.linalg.norm(grad.astype(np.float64)),
        help="Gradient norm: the L2 norm of the gradient of the summed loss with "
        "respect to the logits. It vanishes as the power grows.",
    )
with metrics[2]:
    ui.metric(
        "Temperature 1/kⁿ",
        temperature,
        help="The equivalent temperature: power_sharpen(softmax(z), k) applied n "
        "times equals temperature_softmax(z, 1/kⁿ).",
    )
with metrics[3]:
    ui.metric(
        "Naive: NaN/Inf count",
        naive_bad,
        help="Entries of x**k / Σ x**k (float32) that are NaN or Inf, out of "
        f"{dist['naive'].size}.",
    )
ui.nonfinite_note("loss per sample", loss)
ui.nonfinite_note("gradient of the loss", grad)
ui.nonfinite_note("naive x**k / Σ x**k", dist["naive"])

with ui.secondary("The distribution before and after sharpening", section=True):
    before_after, one_hot = distribution_figures(
        logit_scale, power, iterations, hard, seed, sample
    )
    ui.plot(before_after)
    ui.plot(one_hot)
    gap = np.max(np.abs(dist["stable"] - dist["temperature"]))
    st.caption(
        f"Largest difference between power_sharpen(softmax(z), k) and the temperature "
        f"softmax at 1/kⁿ over the batch: {ui.format_value(gap, 3)} (float32 rounding "
        "of log p, amplified by the power). A missing naive bar is a NaN."
    )

with ui.secondary("Gradient with respect to the logits", section=True):
    ui.plot(gradient_figure(logit_scale, power, iterations, distance, seed))
    st.caption(
        "Each row sums to 0 (a softmax is shift-invariant). At a large power every "
        "cell fades to 0: the one-hot output no longer moves when the logits do."
    )

st.subheader("Across the power range", divider="gray")
sweep = power_sweep(logit_scale, iterations, distance, seed)
loss_fig, grad_fig, top_fig = sweep_figures(
    logit_scale, iterations, distance, seed, power
)
curve_left, curve_right = st.columns(2)
with curve_left:
    ui.plot(loss_fig)
with curve_right:
    ui.plot(grad_fig)
ui.plot(top_fig)
ui.nonfinite_note("loss over the sweep", sweep["mean_loss"])
ui.nonfinite_note("naive form over the sweep", sweep["naive_top"])
vanished = SWEEP_POWERS[sweep["grad_norm"] == 0]
st.caption(
    f"{len(SWEEP_POWERS)} powers from 0.1 to 10⁴ with {iterations} iteration(s); "
    "same logits at every power. Crosses on the axis mark values that are not "
    "finite."
    + (
        f" From k ≈ {vanished[0]:.3g} the gradient is exactly 0 in float32 (not "
        "drawn on the log axis): the sharpened output is an exact one-hot."
        if vanished.size
        else ""
    )
)

ui.use_it(
    [sharpen.power_sharpen, sharpen.embedding_target_loss, sharpen.EmbeddingTargetLoss],
    f"""import keras
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
keras.saving.load_model("model.keras")  # no custom_objects needed""",
)

st.markdown(TRAIN_INTRO)
ui.train_panel(
    TRAIN_TASK,
    train_runs(power, iterations, distance),
    metrics={
        "val_loss": "Held-out loss",
        "val_word_accuracy": "Held-out word accuracy",
    },
    epochs=10,
    describe=describe_run,
)
