"""Arrows point one way: views -> ui -> lossviz.explore -> the loss modules.

Read from the source (ast), so a test fails on the import itself, wherever in
a module it stands.
"""

import ast
import io
import pathlib
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILIES = ("sharpen", "sampled", "sequence", "triplet", "multilabel")


def imports(path: pathlib.Path) -> set[str]:
    """Every module a file imports, as written (``a.b.c``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from a import b` reads a.b (a module or a name in a)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def reaches(names: set[str], forbidden: tuple[str, ...]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)}


def files(folder: str) -> list[pathlib.Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


LOSSVIZ = files("lossviz")
UI = files("ui")
VIEWS = files("views")
PAGES = sorted((ROOT / "views").glob("*.py"))


@pytest.mark.parametrize("path", LOSSVIZ, ids=ids(LOSSVIZ))
def test_the_backend_never_imports_streamlit_plotly_or_the_app(path):
    assert not reaches(imports(path), ("streamlit", "plotly", "ui", "views", "app"))


@pytest.mark.parametrize("family", [*FAMILIES, "optimizers", "_common", "_tf"])
def test_a_loss_module_imports_nothing_above_it(family):
    above = ("lossviz.explore", "lossviz.training", "lossviz.registry",
             "lossviz.check", "lossviz.probe", "lossviz.analysis")  # fmt: skip
    assert not reaches(imports(ROOT / "lossviz" / f"{family}.py"), above)


EXPLORE = files("lossviz/explore")


@pytest.mark.parametrize("path", EXPLORE, ids=ids(EXPLORE))
def test_the_explore_layer_sits_below_check_and_probe(path):
    assert not reaches(imports(path), ("lossviz.check", "lossviz.probe"))


@pytest.mark.parametrize("module", ["registry", "training"])
def test_registry_and_training_never_reach_up_to_explore(module):
    path = ROOT / "lossviz" / module
    paths = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    for p in paths:
        assert not reaches(imports(p), ("lossviz.explore", "lossviz.check")), p


@pytest.mark.parametrize("path", UI + VIEWS, ids=ids(UI + VIEWS))
def test_pages_and_ui_never_import_tensorflow_or_keras(path):
    forbidden = ("tensorflow", "keras", "lossviz._tf", "lossviz.training",
                 "lossviz.analysis")  # fmt: skip
    assert not reaches(imports(path), forbidden)


@pytest.mark.parametrize("path", UI, ids=ids(UI))
def test_ui_reaches_lossviz_only_through_explore(path):
    reached = reaches(imports(path), ("lossviz",))
    assert all(n.startswith("lossviz.explore") for n in reached), reached


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_a_page_reads_only_ui_its_content_and_explore(path):
    allowed = ("ui", "streamlit", "views.content", "lossviz.explore", "lossviz.check",
               "lossviz.registry", "lossviz.probe", "__future__")  # fmt: skip
    names = {n for n in imports(path) if not reaches({n}, allowed)}
    # Plain containers of the numbers the page lays out (numpy indexing) are
    # fine; a loss module is not.
    assert names <= {"numpy"}, names


def code_lines(path: pathlib.Path) -> int:
    """Lines of code: no blank lines, comments or docstrings."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings |= set(range(value.lineno, value.end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                          tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue  # fmt: skip
        lines |= set(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


@pytest.mark.parametrize("path", PAGES, ids=ids(PAGES))
def test_a_page_is_short(path):
    # About 150 lines of code; its words live in views/content/.
    assert code_lines(path) <= 160, code_lines(path)
