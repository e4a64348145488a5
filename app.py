"""lossviz explorer: the router, the landing page and the shared sidebar.

`streamlit run app.py`. No maths here: the pages call lossviz.
"""

import gc
import threading

import streamlit as st

from ui import classroom
from ui.lessons import LESSONS

PAGES = [
    (
        "pages/sharpening.py",
        "Softmax → one-hot",
        ":material/bolt:",
        "Sharpen a softmax by a power or a temperature before an embedding lookup: "
        "why `x**k / sum(x**k)` turns to NaN, how log space fixes it, and why the "
        "gradient vanishes anyway. Straight-through and Gumbel-softmax beside them.",
    ),
    (
        "pages/sampled_softmax.py",
        "Sampled softmax",
        ":material/casino:",
        "Train a language model over a large vocabulary with "
        "`tf.nn.sampled_softmax_loss`: how biased and noisy the estimate is, and "
        "how much time it saves, as a Keras layer.",
    ),
    (
        "pages/sequence_masking.py",
        "Sequence masking and class weights",
        ":material/format_list_numbered:",
        "The seq2seq model that predicts only the end token: padding masks, "
        "end-token weights, and the `sample_weight=mask` trap.",
    ),
    (
        "pages/triplet.py",
        "Loss as a layer (triplet)",
        ":material/change_history:",
        "A cosine triplet loss as the output of a model, and a masked "
        "cross-entropy added with `add_loss`, the Keras 3 way.",
    ),
    (
        "pages/multilabel.py",
        "Multi-label ranking (BP-MLL)",
        ":material/label:",
        "The BP-MLL ranking loss, vectorised: the same number as the textbook "
        "double loop, thousands of times faster, and finite where the naive "
        "form overflows.",
    ),
    (
        "pages/check.py",
        "Check your tensors",
        ":material/fact_check:",
        "Upload or paste your own `y_true` and `y_pred`: the loss per sample, its "
        "gradient, every NaN with the inputs behind it, and the closest Keras "
        "built-in beside it. Also `python -m lossviz check` on the command line.",
    ),
]


@st.cache_resource
def _warm_up_backend() -> threading.Thread:
    """Imports TensorFlow and lossviz in the background, once per server.

    The landing page draws at once; the first loss page then finds the import
    done (or waits only for what is left of it).
    """

    def load():
        import lossviz  # noqa: F401

        # TensorFlow leaves ~400k long-lived objects: keep them out of every
        # later garbage collection, which otherwise costs ~0.4 s on a rerun.
        gc.freeze()

    thread = threading.Thread(target=load, name="lossviz-warm-up", daemon=True)
    thread.start()
    return thread


def _url_value(value) -> str:
    """A control's value as its URL parameter (floats as the pages print them)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def home() -> None:
    st.title("lossviz")
    st.markdown(
        "An explorer for custom Keras losses. Each page starts from a question "
        "people ask about a loss they wrote, shows the formula, and lets you move "
        "the parameter that matters while the loss, its gradient and a small "
        "training run respond. Every number comes from the `lossviz` package, "
        "the same code you can import into your own model."
    )
    for page, (path, title, _, blurb) in zip(loss_pages, PAGES, strict=True):
        with st.container(border=True):
            st.page_link(page, label=f"**{title}**", icon=page.icon)
            st.markdown(blurb)
            lessons = LESSONS.get(path.removeprefix("pages/").removesuffix(".py"), [])
            if lessons:
                columns = st.columns(len(lessons) + 1)
                columns[0].caption("Lessons:")
                for column, lesson in zip(columns[1:], lessons, strict=True):
                    with column:
                        st.page_link(
                            page,
                            label=lesson.title,
                            icon=":material/school:",
                            query_params={
                                **{
                                    k: _url_value(v) for k, v in lesson.settings.items()
                                },
                                "lesson": lesson.title,
                            },
                        )


st.set_page_config(
    page_title="lossviz",
    page_icon="📉",
    layout="wide",
    # Presenter mode starts with the sidebar folded away.
    initial_sidebar_state="collapsed" if classroom.presenting_url() else "auto",
)
loss_pages = [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES]
_warm_up_backend()
navigation = st.navigation(
    [st.Page(home, title="Overview", icon=":material/home:", default=True), *loss_pages]
)
with st.sidebar:
    st.number_input(
        "Random seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="seed",
        bind="query-params",
        help="Seeds every example on every page: change it to see another draw.",
    )
    classroom.sidebar_switches()
navigation.run()
