"""Names, versions and paths of zoo entries, checked before they touch a file system.

An entry is ``NAME@VERSION``: NAME is letters, digits, ``.``, ``_`` and ``-`` (no path
separators, no ``..``), VERSION is semantic (``1.0.0``) or the alias ``latest``.
"""
import re

from bioflow.errors import BioflowError
from bioflow.validation import safe_name

LATEST = "latest"
#: Files that share a folder with entry names (the zoo root, a remote's root): never an entry name.
RESERVED = ("catalogue.json", "index.json", "card.json")
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def check_name(name, what="Zoo entry name"):
    """Return ``name`` if it is a safe entry name, else raise naming the rule."""
    safe_name(name, what)
    if name.lower() in RESERVED:
        raise BioflowError(f"{what} {name!r} is not valid: {', '.join(RESERVED)} are the zoo's own files.")
    return name


def check_version(version, what="Version"):
    """Return ``version`` if it is ``MAJOR.MINOR.PATCH``, else raise."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise BioflowError(f"{what} {version!r} is not valid: use a semantic version MAJOR.MINOR.PATCH, "
                           "for example 1.0.0.")
    return version


def version_key(version):
    """Sort key of a semantic version: ``(major, minor, patch)``."""
    return tuple(int(p) for p in check_version(version).split("."))


def next_version(versions):
    """The version after the highest of ``versions`` (a minor bump), or ``1.0.0`` for none."""
    if not versions:
        return "1.0.0"
    major, minor, _ = max(version_key(v) for v in versions)
    return f"{major}.{minor + 1}.0"


def parse_spec(spec):
    """``'NAME[@VERSION]'`` → ``(name, version or 'latest')``, both checked."""
    if not isinstance(spec, str) or not spec:
        raise BioflowError(f"Zoo entry {spec!r} is not valid: use NAME or NAME@VERSION, e.g. quickstart@1.0.0.")
    name, _, version = spec.partition("@")
    check_name(name)
    version = version or LATEST
    if version != LATEST:
        check_version(version, what=f"Version of {spec!r}")
    return name, version


def check_relative_path(path, what="File"):
    """Return ``path`` if it is a plain relative POSIX path inside an entry, else raise."""
    parts = path.split("/") if isinstance(path, str) else [""]
    if (not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or ":" in path
            or any(p in ("", ".", "..") for p in parts) or "\x00" in path):
        raise BioflowError(f"{what} path {path!r} is not allowed: entry files must be relative paths "
                           "without '..', absolute parts, backslashes or drive letters.")
    return path
