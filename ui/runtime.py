"""How the pages' Streamlit server treats TensorFlow between script runs.

After every script run Streamlit "cleans problem modules": once Keras is
imported it calls ``keras.backend.clear_session()``
(``streamlit/runtime/scriptrunner/script_runner.py``,
``_clean_problem_modules``). In Keras 3 that empties TensorFlow's eager kernel
cache (``context.clear_kernel_cache()``) and runs a full ``gc.collect()``. The
explorer's numbers come from compiled ``tf.function`` graphs that live across
runs, and with the kernel cache emptied each of them rebuilds its kernels at
its first call in the next run: on the sampled-softmax page the sampler took
75-150 ms per call instead of 1.5-7 ms, on every slider move.

The pages keep no Keras state that needs clearing between runs (models are
built inside training runs, which seed themselves; nothing sets a global
dtype policy), so ``keep_compiled_kernels`` swaps that step for one that
does the rest of Streamlit's cleaning (closing matplotlib's figures) and
leaves TensorFlow alone.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

# Streamlit's own, kept for tests and for anyone who wants it back; None if a
# Streamlit release renames it (then there is nothing to swap, and the app
# runs as Streamlit does; tests/test_runtime.py fails to say so).
STREAMLIT_CLEAN = getattr(script_runner, "_clean_problem_modules", None)


def _clean_problem_modules_but_keras() -> None:
    """Streamlit's post-run cleaning without ``keras.backend.clear_session()``."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        try:
            pyplot.close("all")
        except Exception:  # noqa: BLE001, S110 - as Streamlit: never fail a run here
            pass


def keep_compiled_kernels() -> None:
    """Stops Streamlit from clearing Keras' session after every script run.

    Idempotent; affects this server process (every session) from the next
    run's end on.
    """
    if STREAMLIT_CLEAN is None:
        return
    script_runner._clean_problem_modules = _clean_problem_modules_but_keras
