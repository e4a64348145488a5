"""The lessons of every page: a failure to show, then its fix.

Each lesson sets a page's controls (their keys are the URL's query
parameters), so the landing page links straight to it and the page's lesson
buttons set it in one click. Keep keys and values in step with the controls
of the pages: ``tests/test_lessons.py`` checks every lesson on its page.
"""

from __future__ import annotations

from ui.classroom import Lesson

LESSONS: dict[str, list[Lesson]] = {
    "sharpening": [
        Lesson(
            "Power 200: naive NaN",
            {"sh_power": 200.0},
            "In float32 the literal `x**k / sum(x**k)` underflows to 0/0 and the "
            "naive bars and curve turn to NaN (counted in the metric, marked on "
            "the chart). `power_sharpen` computes `softmax(k log p)` and stays "
            "finite: same maths, different order of operations.",
        ),
        Lesson(
            "Power 50: vanished gradient",
            {"sh_power": 50.0},
            "The loss is finite, but the gradient norm has collapsed: the "
            "sharpened output is already one-hot, so moving the logits changes "
            "nothing. Samples whose argmax is wrong stay wrong. Compare power 2.",
        ),
        Lesson(
            "Power 2: still learning",
            {"sh_power": 2.0},
            "A mild power sharpens the distribution and keeps a useful "
            "gradient: the fix is a small power (or a temperature near 1), or "
            "straight-through for a hard forward pass.",
        ),
    ],
    "sampled_softmax": [
        Lesson(
            "8 of 10,000: biased low",
            {"ss_sampled": 8, "ss_vocab": 10_000},
            "Eight sampled classes make the loss very cheap, but the histogram "
            "sits far left of the full loss: the sampled loss underestimates it. "
            "Train with it, evaluate with the full softmax.",
        ),
        Lesson(
            "1,024 of 10,000: closer",
            {"ss_sampled": 1024, "ss_vocab": 10_000},
            "More samples: the bias and the spread shrink, at a higher cost per "
            "step (see the timing).",
        ),
        Lesson(
            "The optimizer eats the speed-up",
            {"ss_sampled": 64, "ss_vocab": 50_000},
            "Press Train below: with Keras' Adam the sparse gradient of the "
            "output matrix is made dense and every row is updated, so sampled "
            "training is barely faster than full. LazyAdam updates only the "
            "sampled rows and keeps the speed-up.",
        ),
    ],
    "sequence_masking": [
        Lesson(
            "No mask: end token wins",
            {"seq_mask_ratio": 0.6, "seq_end_mode": "by hand", "seq_end_weight": 1.0},
            "Most steps are padding. Without the mask the loss rewards predicting "
            "padding/end everywhere: press Train and look at the unmasked run's "
            "decoded predictions (only the end token).",
        ),
        Lesson(
            "Mask + end weight: fixed",
            {"seq_mask_ratio": 0.6, "seq_end_mode": "from data"},
            "The mask removes padding from the loss and the end-token weight "
            "(computed from the data) stops the frequent end token dominating: "
            "the masked run learns the sequence.",
        ),
    ],
    "triplet": [
        Lesson(
            "Margin 0: nothing to learn",
            {"triplet_margin": 0.0},
            "Once the right answer is nearer than the wrong one, the loss is 0 "
            "and so is its gradient: only the triplets ranked the wrong way round "
            "are active. The model stops improving well-ordered pairs.",
        ),
        Lesson(
            "Margin 2: every triplet active",
            {"triplet_margin": 2.0},
            "Cosines lie in [-1, 1], so a margin of 2 can never be met: every "
            "triplet is active and the loss is linear in the margin. Training "
            "never settles.",
        ),
    ],
    "multilabel": [
        Lesson(
            "No positive label: 0/0",
            {"ml_density": 0.1, "ml_labels": 4},
            "Rows with no positive (or no negative) label have no pairs: the "
            "textbook 1/(|Y||Ȳ|) is 0/0. lossviz gives those rows 0 with a zero "
            "gradient, as the paper intends.",
        ),
        Lesson(
            "Logit scale 60: overflow",
            {"ml_scale": 60.0, "ml_labels": 256},
            "The factorised product overflows to +Inf in float32; the log-space "
            "form gives the same number where both are finite and stays finite "
            "here.",
        ),
    ],
}
