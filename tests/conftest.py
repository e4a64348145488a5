"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lossviz._tf import tf  # noqa: E402


def pytest_configure(config):
    # As in .streamlit/config.toml, which AppTest does not read: no full
    # garbage collection after every script run (0.6 s with TensorFlow loaded).
    from streamlit import config as streamlit_config

    streamlit_config.set_option("runner.postScriptGC", False)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    tf.random.set_seed(0)
    yield
