"""Atomic file and folder writes: nothing is ever half-written.

Every file bioflow writes goes through a temporary file in the same folder and a rename; folders
are built aside and swapped in whole.
"""
import contextlib
import errno
import json
import os
import pathlib
import shutil
import tempfile
from typing import Union

#: A file or folder argument: a string or a path.
PathLike = Union[str, os.PathLike]


def current_umask():
    """The process umask (read without changing it for longer than a call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~current_umask()  # what open() would give; mkstemp alone gives 0600


def _name_full_disk(err, path):
    """An ENOSPC error that names ``path`` when the OS did not name a file."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC and err.filename is None:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return None


def atomic_write(path, data):
    """Write ``data`` (str or bytes) to ``path`` through a temp file, fsync and a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        pathlib.Path(tmp).unlink(missing_ok=True)
        named = _name_full_disk(err, path)
        if named is not None:
            raise named from err
        raise


def write_json(path, obj, sort_keys=True):
    """:func:`atomic_write` of ``obj`` as indented JSON."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` for a library that writes files itself (Keras, Altair);
    it replaces ``path`` when the block ends without an error."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        tmp_path = pathlib.Path(tmp) / path.name
        yield tmp_path
        os.replace(tmp_path, path)


def replace_dir(tmp, final):
    """Move folder ``tmp`` to ``final``, replacing an older ``final`` only once the new one is whole."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
