"""The router: its landing page, its lesson links and where its pages live."""

from pathlib import Path
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from ui.catalog import PAGE_DIR, PAGES, page_name
from views.content import (
    check,
    multilabel,
    probe,
    sampled,
    sequence,
    sharpen,
    triplet,
)

CONTENT = {m.__name__.rsplit(".", 1)[1]: m for m in
           (sharpen, sampled, sequence, triplet, multilabel, check, probe)}  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]


def test_no_pages_directory_beside_the_app():
    # Streamlit serves a `pages/` directory beside the main script as an old
    # multipage app until st.navigation has run once in the server: the first
    # visitor of a fresh server would get a page without the shared sidebar.
    assert PAGE_DIR != "pages"
    assert not (ROOT / "pages").exists()
    for path, *_ in PAGES:
        assert path.startswith(f"{PAGE_DIR}/")
        assert (ROOT / path).is_file(), path


def test_landing_page_links_every_page_and_lesson():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "lossviz"
    links = at.get("page_link")
    targets = [link.proto.page for link in links]
    for path, *_ in PAGES:
        expected = 1 + len(CONTENT[page_name(path)].LESSONS)
        assert targets.count(page_name(path)) == expected, path
    # A lesson link carries the lesson's settings in the URL, so one click on
    # the landing page opens the page in the lesson's state.
    for name, words in CONTENT.items():
        for lesson in words.LESSONS:
            (link,) = [x for x in links if x.proto.label == lesson.title]
            query = parse_qs(link.proto.query_string)
            assert link.proto.page == name
            assert query["lesson"] == [lesson.title]
            for control, value in lesson.settings.items():
                key = words.CONTROLS.key(control)
                (shown,) = query[key]
                # as Streamlit keeps the control in the URL (a choice by its
                # shown label)
                assert shown == words.CONTROLS[control].url(value), (
                    lesson.title,
                    key,
                )


@pytest.mark.parametrize("path, title", [(p, t) for p, t, *_ in PAGES])
def test_every_page_runs_inside_the_app(path, title):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    assert not at.exception, at.exception
    at.switch_page(path).run()
    assert not at.exception, at.exception
    assert at.title[0].value == title
    assert at.number_input(key="seed").value == 0  # the shared sidebar
    if page_name(path) != "check":
        assert len(at.metric) >= 4
        assert all("nan" not in m.value.lower() for m in at.metric)


@pytest.mark.parametrize("path, title", [(p, t) for p, t, *_ in PAGES])
def test_every_page_runs_inside_a_bare_router(path, title):
    router = f"""
import streamlit as st
st.navigation([st.Page({str(ROOT / path)!r}, title={title!r}, default=True)]).run()
"""
    at = AppTest.from_string(router, default_timeout=180).run()
    assert not at.exception, at.exception
    assert at.title[0].value == title


def test_every_page_has_a_content_module_the_landing_page_reads_without_tensorflow():
    import subprocess
    import sys

    # A fresh interpreter: importing every content module (what the landing
    # page does) must not import TensorFlow.
    code = (
        "import sys\n"
        "from views.content import check, multilabel, probe, sampled, sequence, "
        "sharpen, triplet\n"
        "assert 'tensorflow' not in sys.modules, 'content imports TensorFlow'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert set(CONTENT) == {page_name(path) for path, *_ in PAGES}


def test_every_page_is_compiled_before_the_backend_loads(monkeypatch):
    # Compiling a page while another thread imports TensorFlow can fail on
    # CPython 3.11 (python/cpython#106905), so the router compiles every page,
    # under the very path Streamlit later asks for, before it starts the
    # background import.
    import threading

    import streamlit as st
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    events = []
    get_bytecode, start = ScriptCache.get_bytecode, threading.Thread.start

    def noting_compile(cache, script_path):
        events.append(("compile", str(Path(script_path).resolve())))
        return get_bytecode(cache, script_path)

    def noting_start(thread):
        events.append(("thread", thread.name))
        return start(thread)

    monkeypatch.setattr(ScriptCache, "get_bytecode", noting_compile)
    monkeypatch.setattr(threading.Thread, "start", noting_start)
    st.cache_resource.clear()  # as on a fresh server
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    warm_up = events.index(("thread", "lossviz-warm-up"))
    compiled = {path for kind, path in events[:warm_up] if kind == "compile"}
    assert {str((ROOT / path).resolve()) for path, *_ in PAGES} <= compiled
    for path, *_ in PAGES:  # the path Streamlit compiles when the page opens
        del events[:]
        at.switch_page(path).run()
        assert not at.exception, at.exception
        assert [p for kind, p in events if kind == "compile"][0] in compiled
