"""Import TensorFlow once, without its start-up noise on stderr.

TensorFlow's C++ start-up lines ("Could not find cuda drivers", the oneDNN
notice, the CPU-feature notice) are written to file descriptor 2 before
absl logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence them.
We capture fd 2 while the import runs and write back every line that is not
one of those known notices, so real errors still reach the user.
Set ``LOSSVIZ_TF_VERBOSE=1`` to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub\.cc|port\.cc:\d+\] oneDNN"
    r"|cpu_feature_guard\.cc|To enable the following instructions|"
    r"computation_placer\.cc|cuda_platform\.cc|cuda_executor\.cc"
    r"|cuda_(dnn|fft|blas)\.cc|Unable to register cu"
)


def _import_quietly():
    if "tensorflow" in sys.modules or os.environ.get("LOSSVIZ_TF_VERBOSE") == "1":
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded consoles)
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            # Device discovery prints its own CUDA notices on a machine
            # without a GPU: do it now, while they are captured.
            tensorflow.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if line and not _NOISE.search(line)]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
    return tensorflow


tf = _import_quietly()
