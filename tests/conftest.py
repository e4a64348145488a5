"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from lossviz._tf import tf  # noqa: E402

# CI runs the property tests on a fixed sequence of examples (.ci/run sets
# HYPOTHESIS_PROFILE=ci), so a red run can be repeated; runs elsewhere keep
# exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    # As in .streamlit/config.toml, which AppTest does not read: no full
    # garbage collection after every script run (0.6 s with TensorFlow loaded).
    from streamlit import config as streamlit_config

    streamlit_config.set_option("runner.postScriptGC", False)
    # As the router does before any page runs (app.py), so a page run alone
    # keeps TensorFlow's compiled kernels between its runs, as in the server.
    from ui import streamlit_internals

    streamlit_internals.keep_compiled_kernels()


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    tf.random.set_seed(0)
    yield


_PATCHED = itertools.count()


class Calls(list):
    """The noted arguments of each call; ``results`` what each returned."""

    def __init__(self):
        super().__init__()
        self.results = []


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(module, name) -> (calls, original)``: replaces
    ``module.name`` with a wrapper that still calls it and notes each call's
    argument (its first, or the whole tuple). A page that caches the call
    (``ui.cached``) shows a slider move as no new entry."""

    def patch(module, name):
        calls, original = Calls(), getattr(module, name)

        def counted(*args, **kwargs):
            calls.append(args[0] if len(args) == 1 and not kwargs else (args, kwargs))
            calls.results.append(original(*args, **kwargs))
            return calls.results[-1]

        # Streamlit keys a cached function by its module, name and source:
        # a name of its own, so no other test's cached results are found.
        counted.__module__ = module.__name__
        counted.__qualname__ = f"counted_{name}_{next(_PATCHED)}"
        monkeypatch.setattr(module, name, counted)
        return calls, original

    return patch
