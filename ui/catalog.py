"""The app's pages: file, title, icon and what each teaches.

One list for the router (``app.py``), the landing page, the tests and the
benchmarks.
"""

from __future__ import annotations

from pathlib import Path

# Not "pages": Streamlit serves a pages/ directory beside app.py as an old-style
# multipage app until st.navigation has run once in the server, so the first
# visitor of a fresh server would get a page without the shared sidebar.
PAGE_DIR = "views"

PAGES = [
    (
        "views/sharpen.py",
        "Softmax → one-hot",
        ":material/bolt:",
        "Sharpen a softmax by a power or a temperature before an embedding lookup: "
        "why `x**k / sum(x**k)` turns to NaN, how log space fixes it, and why the "
        "gradient vanishes anyway. Straight-through and Gumbel-softmax beside them.",
    ),
    (
        "views/sampled.py",
        "Sampled softmax",
        ":material/casino:",
        "Train a language model over a large vocabulary with "
        "`tf.nn.sampled_softmax_loss`: how biased and noisy the estimate is, and "
        "how much time it saves, as a Keras layer.",
    ),
    (
        "views/sequence.py",
        "Sequence masking and class weights",
        ":material/format_list_numbered:",
        "\"My seq2seq model predicts only the end token\": padding masks, "
        "class weights, padding that is the end token, and the "
        "`sample_weight=mask` trap.",
    ),
    (
        "views/triplet.py",
        "Loss as a layer (triplet)",
        ":material/change_history:",
        "A cosine triplet loss as the output of a model, and a masked "
        "cross-entropy added with `add_loss`, the Keras 3 way.",
    ),
    (
        "views/multilabel.py",
        "Multi-label ranking (BP-MLL)",
        ":material/label:",
        "The BP-MLL ranking loss, vectorised: the same number as the textbook "
        "double loop, hundreds of times faster, and in log space, finite at "
        "logit scales where the textbook product overflows.",
    ),
    (
        "views/check.py",
        "Check your tensors",
        ":material/fact_check:",
        "Upload or paste your own `y_true` and `y_pred`: the loss per sample, its "
        "gradient, every NaN with the inputs behind it, and the closest Keras "
        "built-in beside it. Also `python -m lossviz check` on the command line.",
    ),
    (
        "views/probe.py",
        "Probe your loss",
        ":material/troubleshoot:",
        "Name your own loss (or paste it, on your own machine): a battery of "
        "checks for one value per sample, NaN at extreme logits and on degenerate "
        "rows, a wrong or missing gradient, tf.function, XLA, half precision and "
        "saving, with the input row behind each fail. Also `assert_sane` for "
        "pytest and `python -m lossviz probe`.",
    ),
]
# The pages that are not a loss family: they take the user's own tensors or loss.
TOOL_PAGES = ("check", "probe")


def page_name(path: str) -> str:
    """The page's URL name: its file name without ``.py``."""
    return Path(path).stem


def page_names(include_check: bool = False) -> list[str]:
    """The URL names of the loss family pages (and of the check page if asked).

    The probe page is never among them: it has no family, lessons or sweep of
    settings, and each new setting runs a battery of several seconds."""
    shown = {"check"} if include_check else set()
    return [
        name
        for name in (page_name(path) for path, *_ in PAGES)
        if name not in TOOL_PAGES or name in shown
    ]
