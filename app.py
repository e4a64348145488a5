"""lossviz explorer: the router, the landing page and the shared sidebar.

`streamlit run app.py`. No maths here: the pages call lossviz.
"""

import gc
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

import streamlit as st

from ui import classroom
from ui.catalog import PAGES, page_name
from ui.lesson_plans import LESSONS


@st.cache_resource
def _compile_pages() -> None:
    """Compiles every page into Streamlit's script cache, once per server,
    before anything imports TensorFlow.

    Importing TensorFlow compiles ~18,000 string annotations (typing's
    ForwardRef), and CPython 3.11's compiler is not safe from two threads at
    once: a page compiled for one session while another thread imports
    TensorFlow can fail with "SystemError: AST constructor recursion depth
    mismatch" (python/cpython#106905). It happened on a fresh server when a
    loss page was opened during the background import. Compiled here, a page
    is only ever read from the cache.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:  # bare mode: no server, no cache
        return
    here = Path(__file__).resolve().parent
    for path, *_ in PAGES:
        ctx.pages_manager.get_page_script_byte_code(str(here / path))


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
            lessons = LESSONS.get(page_name(path), [])
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
                                    k: classroom.url_value(v)
                                    for k, v in lesson.settings.items()
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
pages = [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PAGES]
_compile_pages()
_warm_up_backend()
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
navigation.run()
