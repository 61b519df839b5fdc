"""The local zoo: a folder of immutable ``<name>/<version>/`` entries and its catalogue.

    <root>/
        catalogue.json            every entry on disk, rebuilt under the lock at each change
        .lock                     the file lock that serialises publishers
        .staging/                 entries being assembled (same file system, so a rename commits)
        <name>/<version>/         model.keras  operative_config.gin  card.json  history.csv  results/

The folders are the truth: an entry exists when ``<name>/<version>/card.json`` does, and only a
rename makes it appear. The catalogue is derived from them, so it never lists an entry that is
not there.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import stat
import tempfile
import time
import warnings

import filelock

from bioflow.errors import BioflowError, choices
from bioflow.io import PathLike, atomic_write, current_umask
from bioflow.zoo import checks, naming

CATALOGUE = "catalogue.json"
CARD = "card.json"
FORMAT = "bioflow-zoo/1"
ENV_ROOT = "BIOFLOW_ZOO"


def default_root() -> pathlib.Path:
    """``$BIOFLOW_ZOO``, else ``./zoo`` when it holds a catalogue (a checkout), else the user cache."""
    if os.environ.get(ENV_ROOT):
        return pathlib.Path(os.environ[ENV_ROOT]).expanduser()
    local = pathlib.Path("zoo")
    if (local / CATALOGUE).is_file():
        return local
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "bioflow" / "zoo"


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Zoo:
    """A local zoo rooted at ``root`` (default :func:`default_root`)."""

    def __init__(self, root=None):
        self.root = pathlib.Path(root).expanduser() if root is not None else default_root()

    # -- reading ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Entry names with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        """Published versions of ``name``, oldest first."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for p in folder.iterdir():
            try:
                naming.check_version(p.name)
            except BioflowError:
                continue
            if (p / CARD).is_file():
                found.append(p.name)
        return sorted(found, key=naming.version_key)

    def resolve(self, spec: str) -> tuple[str, str]:
        """``(name, version)`` of an existing entry for ``'NAME[@VERSION]'`` (``latest`` = highest)."""
        name, version = naming.parse_spec(spec)
        versions = self.versions(name)
        if not versions:
            known = self.names()
            raise BioflowError(f"No entry {name!r} in the zoo at {self.root}; "
                               + (f"entries are {choices(known)}." if known else "the zoo is empty.")
                               + " Pull it with `bioflow zoo pull` or publish a run with `bioflow zoo publish`.")
        if version == naming.LATEST:
            return name, versions[-1]
        if version not in versions:
            raise BioflowError(f"{name!r} has no version {version!r} in {self.root}; versions are "
                               f"{choices(versions)}.")
        return name, version

    def path(self, name: str, version: str) -> pathlib.Path:
        return self.root / naming.check_name(name) / naming.check_version(version)

    def card(self, spec: str) -> dict:
        """The checked ``card.json`` of an entry, as a dict (a clear error when it is corrupt)."""
        name, version = self.resolve(spec)
        return checks.read_card(self.path(name, version) / CARD, name, version)

    def entries(self, on_problem=None):
        """Every readable card, sorted by name then version.

        An unreadable or invalid card is skipped, and ``on_problem(message)`` (default: a warning)
        hears why, so one bad entry does not hide the others.
        """
        cards = []
        for name in self.names():
            for version in self.versions(name):
                try:
                    cards.append(self.card(f"{name}@{version}"))
                except BioflowError as err:
                    (on_problem or _warn)(f"skipping {name}@{version}: {err}")
        return cards

    def verify(self, spec: str) -> list[str]:
        """Re-hash every file of an entry and check what it holds. Returns the problems (none when intact).

        Files are examined with ``lstat``: a symbolic link (or any file that is not a regular file) is
        a problem and is never followed.
        """
        name, version = self.resolve(spec)
        folder = self.path(name, version)
        try:
            card = self.card(f"{name}@{version}")
        except BioflowError as err:
            return [str(err)]
        problems = []
        recorded = self.catalogue().get("entries", {}).get(name, {}).get("versions", {}).get(version, {})
        card_hash = recorded.get("card", {}).get("sha256")
        if card_hash and sha256_file(folder / CARD) != card_hash:
            problems.append(f"{CARD}: sha256 differs from the catalogue's")
        declared = card["files"]
        for rel, meta in sorted(declared.items()):
            path = folder / rel
            kind = file_kind(path)
            if kind == "missing":
                problems.append(f"{rel}: missing")
            elif kind != "regular file":
                problems.append(f"{rel}: a {kind}, not a regular file")
            elif path.lstat().st_size != meta["size"]:
                problems.append(f"{rel}: {path.lstat().st_size} bytes, the card says {meta['size']}")
            elif sha256_file(path) != meta["sha256"]:
                problems.append(f"{rel}: sha256 differs from the card's")
        for path in walk(folder):
            rel = path.relative_to(folder).as_posix()
            kind = file_kind(path)
            if kind == "directory" or rel == CARD or rel in declared:
                continue
            problems.append(f"{rel}: not listed in the card" if kind == "regular file"
                            else f"{rel}: a {kind}, not listed in the card")
        if not problems:
            problems += checks.entry_problems(folder, f"{name}@{version}")
        return problems

    # -- writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self):
        """An exclusive lock on the zoo (``filelock`` on ``<root>/.lock``); waits for other holders."""
        self.root.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self.root / ".lock")):
            yield

    @contextlib.contextmanager
    def staging(self, prefix):
        """A temporary folder on the zoo's file system, removed on exit unless it was committed.

        Its name carries this host and PID, so that the next staging removes the folders of
        processes that died (``kill -9`` during a pull or publish); a live process's folder, or
        another host's younger than :data:`STALE_SECONDS`, is kept.
        """
        base = self.root / ".staging"
        base.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(base)
        folder = pathlib.Path(tempfile.mkdtemp(dir=base, prefix=f"{prefix}{_HOST}.{os.getpid()}."))
        try:
            yield folder
        finally:
            if folder.exists():
                _make_writable(folder)
                shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staged, name, version=None):
        """Move a staged entry into place as ``name@version`` and refresh the catalogue.

        ``version=None`` takes the next free version under the lock (and writes it into the staged
        card), so concurrent publishers never collide. An existing version is refused: versions
        are immutable. The files become read-only.
        """
        with self.lock():
            if version is None:
                version = naming.next_version(self.versions(name))
                card = json.loads((staged / CARD).read_text())
                atomic_write(staged / CARD, json.dumps(dict(card, version=version), indent=2) + "\n")
            target = self.path(name, version)
            if target.exists():
                raise self.taken(name, version)
            target.parent.mkdir(parents=True, exist_ok=True)
            _publish_modes(staged)
            os.rename(staged, target)
            self._write_catalogue(new=(name, version))
        return target

    def taken(self, name, version):
        """The error for publishing a version that exists."""
        return BioflowError(f"{name}@{version} is already in the zoo at {self.root}, and versions are immutable. "
                            f"Publish a new version (next free: {naming.next_version(self.versions(name))}).")

    def catalogue(self):
        """The recorded ``catalogue.json`` (``{}`` when there is none or it is unreadable)."""
        path = self.root / CATALOGUE
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except json.JSONDecodeError:
            return {}

    def _write_catalogue(self, new):
        """Rebuild ``catalogue.json`` from the entry folders (call with the lock held).

        ``new`` is the ``(name, version)`` just committed: its card is hashed afresh.
        """
        old = self.catalogue().get("entries", {})
        old.get(new[0], {}).get("versions", {}).pop(new[1], None)
        atomic_write(self.root / CATALOGUE, json.dumps(catalogue_of(self, old), indent=2) + "\n")


def entry_holding(path: PathLike) -> pathlib.Path | None:
    """The zoo entry folder (``<name>/<version>/`` holding a ``card.json``) that ``path`` is in, or None."""
    path = pathlib.Path(path).expanduser().absolute()
    for folder in [path, *path.parents]:
        if (folder / CARD).is_file():
            try:
                naming.check_version(folder.name)
            except BioflowError:
                continue
            return folder
    return None


def refuse_inside_entry(path: PathLike, what: str) -> None:
    """Refuse to write ``path`` (``what``, e.g. ``'report --out'``) inside a zoo entry: versions are immutable."""
    entry = entry_holding(path)
    if entry is not None:
        raise BioflowError(f"{what} {path} is inside the zoo entry {entry}, and a published version never changes "
                           "(`zoo verify` would fail). Write it somewhere else.")


def catalogue_of(zoo, previous=None):
    """The index of ``zoo`` (the local catalogue and a remote's ``index.json`` share it).

    ``previous`` supplies card hashes already recorded, so a card edited in place after
    publishing keeps its original hash and ``verify`` catches the edit.
    """
    previous = previous or {}
    entries = {}
    for name in zoo.names():
        versions = {}
        for version in zoo.versions(name):
            folder = zoo.path(name, version)
            try:
                card = zoo.card(f"{name}@{version}")
            except BioflowError:
                continue  # listed by `zoo list` as skipped; `zoo verify` names the problem
            known = previous.get(name, {}).get("versions", {}).get(version, {}).get("card")
            card_meta = known or dict(sha256=sha256_file(folder / CARD), size=(folder / CARD).stat().st_size)
            metrics = card.get("metrics") or {}
            versions[version] = dict(created=card.get("created"), model=card.get("run", {}).get("model"),
                                     clean_accuracy=metrics.get("clean_accuracy"), card=card_meta,
                                     size=card_meta["size"] + sum(f["size"] for f in card.get("files", {}).values()))
        if versions:
            entries[name] = dict(latest=max(versions, key=naming.version_key), versions=versions)
    return {"format": FORMAT, "entries": entries}


_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
#: A staging folder of another host is removed once it is this old (its PID cannot be checked here).
STALE_SECONDS = 24 * 3600


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_staging(base):
    """Remove the staging folders in ``base`` whose process is dead (same host) or that are older than a day."""
    for folder in base.iterdir():
        match = re.fullmatch(r".*-(\w+)\.(\d+)\.\w+", folder.name)
        if not folder.is_dir() or folder.is_symlink() or match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        try:
            old = time.time() - folder.stat().st_mtime > STALE_SECONDS
        except OSError:
            continue
        if (host == _HOST and not _alive(pid)) or (host != _HOST and old):
            _make_writable(folder)
            shutil.rmtree(folder, ignore_errors=True)


def _warn(message):
    warnings.warn(message, stacklevel=3)


def file_kind(path):
    """What ``path`` is, without following a symbolic link: 'regular file', 'directory', 'symbolic
    link', 'FIFO', 'socket', 'device' or 'missing'."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    for test, kind in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "device"


def walk(folder):
    """Every path below ``folder``, sorted, without descending into symbolic links."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        out += [pathlib.Path(dirpath) / n for n in dirnames + filenames]
    return sorted(out)


def _publish_modes(folder):
    """Entry folders 0755 and files 0444, less what the umask removes: readable on a shared zoo."""
    mask = current_umask()
    os.chmod(folder, 0o755 & ~mask)
    for path in walk(folder):
        if not path.is_symlink():
            os.chmod(path, (0o755 if path.is_dir() else 0o444) & ~mask)


def _make_writable(folder):
    for path in [folder, *folder.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
