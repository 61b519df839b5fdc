"""Loading TensorFlow without its C++ start-up log.

``import tensorflow`` and its first device query write absl log lines straight to file descriptor
2 (``oneDNN custom operations are on``, ``Could not find cuda drivers``, ``E0000 … failed call to
cuInit``), which ``TF_CPP_MIN_LOG_LEVEL`` does not reach. :func:`load` holds descriptor 2 in a
temporary file while that happens. Afterwards it writes back every other line (a Python warning,
say), and everything when ``BIOFLOW_VERBOSE=1`` (``bioflow --verbose``) or when the import fails.
"""
import contextlib
import os
import re
import sys
import tempfile

#: Lines of TensorFlow's C++ start-up log: absl's ``I0000 00:00:…`` records and its preamble.
_CPP_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::)")
VERBOSE_ENV = "BIOFLOW_VERBOSE"
_loaded = False


def verbose():
    """True when ``$BIOFLOW_VERBOSE`` asks for TensorFlow's start-up log."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def _held_stderr():
    """Send descriptor 2 to a temporary file; yield a list that receives its text afterwards."""
    held = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            held.append(capture.read().decode("utf-8", "replace"))


def _replay(text, everything):
    lines = text.splitlines(keepends=True)
    shown = "".join(line for line in lines if everything or not _CPP_LOG.match(line))
    if shown:
        sys.stderr.write(shown)
        sys.stderr.flush()


@contextlib.contextmanager
def quietly():
    """Hold TensorFlow's C++ log back while the block runs (a graph's first run logs, as its import
    does: oneDNN's note on int32 kernels, say); every other line written to descriptor 2 comes back."""
    failed, held = True, []
    try:
        with _held_stderr() as held:
            yield
            failed = False
    finally:
        if held:  # the text comes back even when the block raised (then all of it)
            _replay(held[0], everything=failed or verbose())


def load():
    """Import TensorFlow (and query its devices once) with the C++ start-up log held back.

    Safe to call many times; once TensorFlow is imported, later calls do nothing. The device query
    (``list_physical_devices``) does not initialise the runtime, so thread counts and logical
    devices can still be set afterwards.
    """
    global _loaded
    if _loaded:
        return
    with quietly():
        import tensorflow as tf

        tf.config.list_physical_devices()
    _loaded = True
