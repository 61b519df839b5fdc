"""Checks of user-given values shared by several modules."""
import re

import numpy as np

from bioflow.errors import BioflowError

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def safe_name(value, what, hint=""):
    """Return ``value`` if it is one safe path component: 1-100 letters, digits, '.', '_' or '-',
    starting with a letter or digit, without '..'. Else raise, naming ``what``."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise BioflowError(f"{what} {value!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', starting "
                           f"with a letter or digit, without '..' or path separators{hint}.")
    return value


def check_positive_int(value, what, minimum=1, alternative=""):
    """Return ``value`` if it is an integer (not a bool) >= ``minimum``; else raise, naming ``what``
    (and the ``alternative`` that is also valid, e.g. ``' or None (all images)'``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise BioflowError(f"{what} must be {need}{alternative}, got {value!r}.")
    return int(value)
