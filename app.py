"""lossviz explorer: the router, the landing page and the shared sidebar.

`streamlit run app.py`. No maths here: the pages call lossviz.
"""

import gc
import importlib
import os
import threading
from pathlib import Path

# oneDNN's kernel-registry lookups make the first op of every small eager call
# about 10x slower (160-185 ms vs 25-40 ms for a value and gradient on an 8x6
# batch), and the explorer lives on small eager calls; large matrix products
# (a full softmax over 200,000 words) are about 3x faster with it, so the
# library leaves TensorFlow's default alone and only the explorer turns it
# off. Set TF_ENABLE_ONEDNN_OPTS=1 to keep it here too.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# On a GPU, TensorFlow takes all of its memory at the first op by default:
# grow as needed instead, so two training runs and the pages share one card.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

import streamlit as st

from ui import classroom, streamlit_internals
from ui.catalog import PAGES, page_name

HERE = Path(__file__).resolve().parent


def content(path: str):
    """A page's content module (its controls, lessons and words), or None.
    These import no TensorFlow, so the landing page draws at once."""
    try:
        return importlib.import_module(f"views.content.{page_name(path)}")
    except ModuleNotFoundError:
        return None


@st.cache_resource
def _warm_up_backend() -> threading.Thread:
    """Imports TensorFlow and lossviz in the background, once per server.

    The landing page draws at once; the first loss page then finds the import
    done (or waits only for what is left of it).
    """

    def load():
        import lossviz  # noqa: F401

        for path, *_ in PAGES:
            try:
                importlib.import_module(f"lossviz.explore.{page_name(path)}")
            except ModuleNotFoundError:  # the check page has no explore module
                pass

        # TensorFlow leaves ~400k long-lived objects: keep them out of every
        # later garbage collection, which otherwise costs ~0.4 s on a rerun.
        gc.freeze()

    thread = threading.Thread(target=load, name="lossviz-warm-up", daemon=True)
    thread.start()
    return thread


def home() -> None:
    st.title("lossviz")
    st.markdown(
        "An explorer for custom Keras losses. Each page starts from a question "
        "people ask about a loss they wrote, shows the formula, and lets you move "
        "the parameter that matters while the loss, its gradient and a small "
        "training run respond. Every number comes from the `lossviz` package, "
        "the same code you can import into your own model."
    )
    for page, (path, title, _, blurb) in zip(pages, PAGES, strict=True):
        with st.container(border=True):
            st.page_link(page, label=f"**{title}**", icon=page.icon)
            st.markdown(blurb)
            words = CONTENT[path]
            lessons = getattr(words, "LESSONS", ())
            if lessons:
                columns = st.columns(len(lessons) + 1)
                columns[0].caption("Lessons:")
                for column, lesson in zip(columns[1:], lessons, strict=True):
                    with column:
                        st.page_link(
                            page,
                            label=lesson.title,
                            icon=":material/school:",
                            query_params=classroom.lesson_links(
                                words.CONTROLS, lesson
                            ),
                        )


st.set_page_config(
    page_title="lossviz",
    page_icon="📉",
    layout="wide",
    # Presenter mode starts with the sidebar folded away.
    initial_sidebar_state="collapsed" if classroom.presenting_url() else "auto",
)
pages = [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES]
streamlit_internals.install(HERE / path for path, *_ in PAGES)
# Imported (so compiled) before TensorFlow's background import, for the same
# reason as the pages.
CONTENT = {path: content(path) for path, *_ in PAGES}
warm_up = _warm_up_backend()
navigation = st.navigation(
    [st.Page(home, title="Overview", icon=":material/home:", default=True), *pages]
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
if navigation.title != "Overview":
    # A loss page imports TensorFlow too: let the background import finish
    # first. Two threads importing it at once can deadlock (Python's import
    # locks, "_DeadlockError"), as a fresh server's first page did.
    warm_up.join()
navigation.run()
