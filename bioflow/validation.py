"""Checks of user-given values shared by several modules.

Each check returns the value when it is valid and otherwise raises a :class:`BioflowError` that
names the binding (``what``), the value and what is allowed.
"""
import math
import re

import numpy as np

from bioflow.errors import BioflowError

#: Sane upper bounds of what a binding may ask for (far above any real run; they stop a typo that
#: would allocate terabytes or run for ever).
MAX_BATCH = 1 << 20
MAX_EPOCHS = 100_000
MAX_IMAGES = 10_000_000

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def safe_name(value, what, hint=""):
    """Return ``value`` if it is one safe path component: 1-100 letters, digits, '.', '_' or '-',
    starting with a letter or digit, without '..'. Else raise, naming ``what``."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise BioflowError(f"{what} {value!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', starting "
                           f"with a letter or digit, without '..' or path separators{hint}.")
    return value


def check_positive_int(value, what, minimum=1, alternative="", maximum=None):
    """Return ``value`` if it is an integer (not a bool) >= ``minimum`` (and <= ``maximum``); else
    raise, naming ``what`` (and the ``alternative`` that is also valid, e.g. ``' or None (all images)'``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise BioflowError(f"{what} must be {need}{alternative}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise BioflowError(f"{what} must be at most {maximum:,}{alternative}, got {value!r}: a value this large "
                           "would take more memory or time than any run needs.")
    return int(value)


def check_int(value, what):
    """Return ``value`` if it is an integer (not a bool), e.g. a seed; else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BioflowError(f"{what} must be an integer, got {value!r}.")
    return int(value)


def check_number(value, what, minimum=None, maximum=None, above=None):
    """Return ``value`` as a float if it is a finite number (not a bool) within the bounds
    (``minimum <= value <= maximum``, ``value > above``); else raise."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and \
        math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum) and (
        above is None or value > above)
    if not ok:
        bounds = [f"> {above:g}" if above is not None else None, f">= {minimum:g}" if minimum is not None else None,
                  f"<= {maximum:g}" if maximum is not None else None]
        rule = " and ".join(b for b in bounds if b)
        raise BioflowError(f"{what} must be a finite number{' ' + rule if rule else ''}, got {value!r}.")
    return float(value)


def check_bool(value, what):
    """Return ``value`` if it is True or False; else raise."""
    if not isinstance(value, bool):
        raise BioflowError(f"{what} must be True or False, got {value!r}.")
    return value
