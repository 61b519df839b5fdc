"""Remote zoos: ``export`` writes one, ``pull`` downloads verified entries from one.

A remote zoo is static files that any HTTP server, bucket or folder can host::

    <remote>/index.json                  the catalogue: per entry and version, card sha256 and size
    <remote>/<name>/<version>/card.json  per file: sha256 and size
    <remote>/<name>/<version>/<file>     model.keras, operative_config.gin, history.csv, results/…

``pull`` trusts nothing it has not checked: names and paths are validated, every download is
capped at the size the index or card declares, bounded in time and verified by sha256, the entry
must pass :mod:`bioflow.zoo.checks` (card types, a config without code, a model without Lambda
layers), and it is assembled in the local zoo's staging folder, so it appears (by a rename) only
when whole.
"""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Sequence

import gin
import tensorflow as tf

from bioflow import schema
from bioflow.errors import BioflowError, choices
from bioflow.io import PathLike, atomic_write
from bioflow.zoo import checks, naming
from bioflow.zoo.local import CARD, Zoo, catalogue_of, file_kind, sha256_file, walk

INDEX = "index.json"
ENV_REMOTE = "BIOFLOW_ZOO_REMOTE"
MAX_INDEX_BYTES = 16 << 20
SCHEMES = ("http", "https", "gs", "file")
#: Defaults of ``pull``: the slowest transfer accepted (bytes/s), the time every file gets on top
#: of its size at that rate (s), and the deadline of a whole pull (s).
MIN_RATE, GRACE, TOTAL_TIMEOUT = 100_000, 60.0, 3 * 3600.0
_CHUNK = 1 << 20
_SOCKET_TIMEOUT = 60.0


# -- export ------------------------------------------------------------------------------------

def export(dest: PathLike, specs: Sequence[str] = (), root: PathLike | None = None) -> pathlib.Path:
    """Write the entries ``specs`` (default: all) of the local zoo and an ``index.json`` to ``dest``.

    ``dest`` is a folder or any ``tf.io.gfile`` URL (``gs://…``). Files are written before the
    index, so a reader never sees an index naming files that are not there yet.
    Returns the index.
    """
    zoo = Zoo(root)
    if "://" not in str(dest) or str(dest).startswith("file://"):
        _check_apart(pathlib.Path(str(dest).removeprefix("file://")), zoo.root)
    chosen = sorted({zoo.resolve(s) for s in specs}) if specs else [(n, v) for n in zoo.names()
                                                                   for v in zoo.versions(n)]
    if not chosen:
        raise BioflowError(f"The zoo at {zoo.root} is empty: nothing to export.")
    problems = {f"{n}@{v}": zoo.verify(f"{n}@{v}") for n, v in chosen}
    bad = {k: p for k, p in problems.items() if p}
    if bad:
        raise BioflowError("Refusing to export entries that fail verification: "
                           + "; ".join(f"{k}: {', '.join(p)}" for k, p in bad.items()))
    full = catalogue_of(zoo, zoo.catalogue().get("entries"))
    index = {"format": full["format"], "entries": {}}
    for name, version in chosen:
        entry = index["entries"].setdefault(name, {"versions": {}})
        entry["versions"][version] = full["entries"][name]["versions"][version]
        entry["latest"] = max(entry["versions"], key=naming.version_key)
        folder = zoo.path(name, version)
        for path in walk(folder):
            if file_kind(path) == "regular file":  # verify() above refused anything else
                target = _join(dest, name, version, path.relative_to(folder).as_posix())
                tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
                tf.io.gfile.copy(str(path), target, overwrite=True)
    _write(_join(dest, INDEX), json.dumps(index, indent=2) + "\n")
    return index


def _check_apart(dest, root):
    """Refuse an export folder that is the zoo, lies inside it or holds it: copying would overwrite its files."""
    dest, root = dest.expanduser().resolve(), root.expanduser().resolve()
    if dest == root or root in dest.parents or dest in root.parents:
        where = "is" if dest == root else "lies inside" if root in dest.parents else "contains"
        raise BioflowError(f"Cannot export to {dest}: it {where} the zoo at {root}, whose files the export would "
                           "overwrite. Export to a folder outside the zoo.")


def _join(base, *parts):
    return "/".join([str(base).rstrip("/")] + [urllib.parse.quote(p) if _is_http(base) else p for p in parts])


def _write(url, text):
    if "://" in url and not url.startswith("file://"):
        with tf.io.gfile.GFile(url, "w") as f:
            f.write(text)
    else:
        atomic_write(url.removeprefix("file://"), text)


# -- fetching --------------------------------------------------------------------------------

def _is_http(url):
    return str(url).startswith(("http://", "https://"))


def check_remote(url):
    """Return ``url`` if its scheme is supported (http, https, gs, file or a plain path)."""
    scheme = urllib.parse.urlparse(str(url)).scheme
    if "://" in str(url) and scheme not in SCHEMES:
        raise BioflowError(f"Remote zoo {url!r} has an unsupported scheme {scheme!r}; valid schemes are "
                           f"{choices(SCHEMES)}, or a folder path.")
    return str(url)


def redirect_allowed(old_url, new_url):
    """A redirect keeps its scheme, or upgrades ``http`` to ``https`` on the same host; nothing else."""
    old, new = urllib.parse.urlparse(old_url), urllib.parse.urlparse(new_url)
    return new.scheme == old.scheme or (old.scheme, new.scheme) == ("http", "https") and old.hostname == new.hostname


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows only the redirects :func:`redirect_allowed` accepts (no downgrade, no ``file:``)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not redirect_allowed(req.full_url, newurl):
            old, new = urllib.parse.urlparse(req.full_url).scheme, urllib.parse.urlparse(newurl).scheme
            raise BioflowError(f"Refusing a redirect from {req.full_url} to {newurl}: it changes the scheme "
                               f"from {old!r} to {new!r} (only http to https on the same host is followed).")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirects)


def fetch(url, max_bytes, out=None, on_bytes=None, deadline=None, why_deadline=""):
    """Download ``url`` (at most ``max_bytes``) into the file object ``out``, or return the bytes.

    Raises when the response is larger than ``max_bytes``, when the transfer fails, or when it is
    still running at ``deadline`` (a ``time.monotonic()`` value; ``why_deadline`` says which limit
    that is). With ``out``, returns the number of bytes received, so the caller can tell a
    response that was cut short.
    """
    chunks = []
    sink = out.write if out is not None else chunks.append
    received = 0
    start = time.monotonic()

    def check_time():
        if deadline is not None and time.monotonic() > deadline:
            raise BioflowError(f"{url} is too slow: {received:,} bytes in {time.monotonic() - start:.0f} s, past "
                               f"{why_deadline or 'the deadline'}. Nothing was installed.")

    try:
        if _is_http(url):
            timeout = _SOCKET_TIMEOUT if deadline is None else max(0.1, min(_SOCKET_TIMEOUT, deadline - start))
            stream = _OPENER.open(urllib.request.Request(url, headers={"User-Agent": "bioflow"}), timeout=timeout)
            length = stream.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                stream.close()
                raise BioflowError(f"{url} is {int(length)} bytes, more than the {max_bytes} the zoo declares.")
        else:
            path = url.removeprefix("file://")
            if not tf.io.gfile.exists(path):
                raise BioflowError(f"{url} does not exist.")
            stream = tf.io.gfile.GFile(path, "rb")
        read = getattr(stream, "read1", stream.read)  # read1: one socket read, so a trickle cannot stall it
        with stream:
            check_time()
            while block := read(min(_CHUNK, max_bytes + 1 - received)):
                received += len(block)
                if received > max_bytes:
                    raise BioflowError(f"{url} is larger than the {max_bytes} bytes the zoo declares.")
                sink(block)
                if on_bytes is not None:
                    on_bytes(len(block))
                check_time()
    except (urllib.error.URLError, http.client.HTTPException, OSError, tf.errors.OpError, ValueError) as err:
        if isinstance(err, BioflowError):
            raise
        if isinstance(err, TimeoutError) or "timed out" in str(err):
            check_time()
        raise BioflowError(f"Download of {url} failed: {err}") from err
    return b"".join(chunks) if out is None else received


def _loads(raw, where, what):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # RecursionError: deeply nested JSON
        raise BioflowError(f"{where} is not {what} (invalid JSON: {type(err).__name__}: {str(err)[:120]}).") from None


#: What ``index.json`` must be: each entry's versions (at least one), each with its card's hash and size.
INDEX_SCHEMA = {"type": "object", "required": ["entries"], "properties": {
    "format": {"type": "string"},
    "entries": {"type": "object", "additionalProperties": {
        "type": "object", "required": ["versions"], "properties": {
            "latest": {"type": "string"},
            "versions": {"type": "object", "minProperties": 1, "additionalProperties": {
                "type": "object", "required": ["card"], "properties": {"card": checks.FILE_SCHEMA}}}}}}}}


def read_index(remote, deadlines=None):
    """The ``index.json`` of a remote zoo, with every name and version checked."""
    where = _join(remote, INDEX)
    deadline, why = (deadlines or _Deadlines(MIN_RATE, GRACE, TOTAL_TIMEOUT)).for_file(MAX_INDEX_BYTES)
    index = _loads(fetch(where, MAX_INDEX_BYTES, deadline=deadline, why_deadline=why), where, "a bioflow zoo index")
    found = schema.problems(index, INDEX_SCHEMA, "the index")
    if found:
        raise BioflowError(f"{where} is not a bioflow zoo index: {'; '.join(found[:5])}.")
    try:
        for name, entry in index["entries"].items():
            naming.check_name(name, what="Index entry name")
            for version in entry["versions"]:
                naming.check_version(version, what=f"Index version of {name!r}")
    except BioflowError as err:
        raise BioflowError(f"{where}: {err}") from err
    return index


def _same_card(zoo, name, version, card_meta):
    """Whether the local ``name@version`` has the card the remote declares (same sha256)."""
    card = zoo.path(name, version) / CARD
    return card.is_file() and sha256_file(card) == card_meta["sha256"]


def default_remote(remote=None):
    """``remote`` (gin's ``pull.remote`` arrives here), else ``$BIOFLOW_ZOO_REMOTE``; checked."""
    remote = remote or os.environ.get(ENV_REMOTE)
    if not remote:
        raise BioflowError("No remote zoo given: pass --remote URL, bind pull.remote in gin, or set "
                           f"${ENV_REMOTE}.")
    return check_remote(remote)


class _Deadlines:
    """Per-file deadlines (``grace`` + size / ``min_rate``) within one total deadline for a pull."""

    def __init__(self, min_rate, grace, total):
        for key, value in (("min_rate", min_rate), ("grace", grace), ("timeout", total)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise BioflowError(f"pull.{key} must be a positive number, got {value!r}.")
        self.min_rate, self.grace = float(min_rate), float(grace)
        self.total, self.end = float(total), time.monotonic() + float(total)

    def for_file(self, size):
        """``(deadline, description)`` of a download of ``size`` bytes."""
        own = self.grace + size / self.min_rate
        if time.monotonic() + own < self.end:
            return time.monotonic() + own, (f"its deadline of {own:.0f} s ({size:,} bytes at the minimum rate of "
                                             f"{self.min_rate:,.0f} bytes/s, pull.min_rate, plus {self.grace:.0f} s)")
        return self.end, f"the pull's total deadline of {self.total:.0f} s (pull.timeout)"


def _verified_download(url, meta, target, on_bytes, deadlines):
    size, digest = int(meta["size"]), str(meta["sha256"])
    deadline, why = deadlines.for_file(size)
    with open(target, "wb") as f:
        received = fetch(url, size, out=f, on_bytes=on_bytes, deadline=deadline, why_deadline=why)
    if received != size:
        raise BioflowError(f"{url} was cut short: {received} of {size} bytes.")
    if sha256_file(target) != digest:
        raise BioflowError(f"{url} failed verification: its sha256 differs from the one the zoo declares. "
                           "Nothing was installed.")


@gin.configurable(module="bioflow", denylist=["spec", "root", "on_bytes", "on_start"])
def pull(spec, remote=None, root=None, on_bytes=None, on_start=None, min_rate=MIN_RATE, grace=GRACE,
         timeout=TOTAL_TIMEOUT):
    """Download ``NAME[@VERSION]`` from a remote zoo into the local zoo, verified; returns its folder.

    Args:
        spec: the entry, ``NAME`` (latest) or ``NAME@VERSION``.
        remote: the remote zoo (http(s) URL, gs:// URL or folder); default ``$BIOFLOW_ZOO_REMOTE``.
        root: the local zoo (default :func:`bioflow.zoo.local.default_root`).
        on_bytes: called with each chunk's size (a progress bar).
        on_start: called once with ``(label, total bytes)`` before the download.
        min_rate, grace: each file must arrive within ``grace + size / min_rate`` seconds.
        timeout: the deadline of the whole pull, in seconds.

    The entry is installed only when every file matches its sha256 and the entry passes
    :mod:`bioflow.zoo.checks`; nothing it holds is executed.
    """
    deadlines = _Deadlines(min_rate, grace, timeout)
    remote = default_remote(remote)
    zoo = Zoo(root)
    name, version = naming.parse_spec(spec)
    index = read_index(remote, deadlines)
    if name not in index["entries"]:
        raise BioflowError(f"The remote zoo {remote} has no entry {name!r}; it has "
                           f"{choices(index['entries']) if index['entries'] else 'none'}.")
    versions = index["entries"][name]["versions"]
    if version == naming.LATEST:
        version = max(versions, key=naming.version_key)
    if version not in versions:
        raise BioflowError(f"The remote zoo {remote} has no {name}@{version}; versions are {choices(versions)}.")
    card_meta = versions[version]["card"]
    if version in zoo.versions(name):
        if _same_card(zoo, name, version, card_meta):
            print(f"{name}@{version} is already in the zoo at {zoo.root}, with the same sha256.")
            return zoo.path(name, version)
        raise BioflowError(f"{name}@{version} is already in the zoo at {zoo.root} with different contents; "
                           "versions are immutable. Use another local zoo (--zoo) to pull this one.")
    base = _join(remote, name, version)
    with zoo.staging(f"pull-{name}-") as folder:
        _verified_download(_join(base, CARD), card_meta, folder / CARD, None, deadlines)
        card = _loads((folder / CARD).read_bytes(), _join(base, CARD), "a valid card")
        problems = checks.card_problems(card, name, version)
        if problems:
            raise BioflowError(f"{_join(base, CARD)} is not a valid card: {'; '.join(problems[:5])}. "
                               "Nothing was installed.")
        files = card["files"]
        for rel in files:
            naming.check_relative_path(rel, what=f"{name}@{version}: file")
            if rel == CARD:
                raise BioflowError(f"{name}@{version}: the card lists itself.")
        total = sum(m["size"] for m in files.values())
        if on_start is not None:
            on_start(f"{name}@{version}", total)
        for rel, meta in sorted(files.items()):
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _verified_download(_join(base, *rel.split("/")), meta, target, on_bytes, deadlines)
        problems = checks.entry_problems(folder, f"{name}@{version}")
        if problems:
            reasons = "; ".join(p.rstrip(".") for p in problems)
            raise BioflowError(f"Refusing {name}@{version} from {remote}: {reasons}. Its files match their sha256, "
                               "but bioflow never runs code from an entry. Nothing was installed.")
        try:
            path = zoo.commit(folder, name, version)
        except BioflowError:
            if not _same_card(zoo, name, version, card_meta):
                raise
            print(f"{name}@{version} was installed in the zoo at {zoo.root} meanwhile (another pull), with the "
                  "same sha256: nothing more to do.")
            return zoo.path(name, version)
    print(f"Pulled {name}@{version} from {remote} into {path} ({total:,} bytes, every sha256 verified).")
    return path
