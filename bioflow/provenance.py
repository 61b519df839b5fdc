"""Which source bioflow runs from: the git commit recorded in run.json and zoo cards.

Standard library only, so that ``setup.py`` can import it while it builds.
"""
import pathlib
import subprocess

SOURCE = pathlib.Path(__file__).resolve().parent.parent


def source_commit(folder=SOURCE):
    """The commit of the git checkout at ``folder`` (``+dirty`` with local edits), or None outside one."""
    run = dict(capture_output=True, text=True, timeout=10, check=True)
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def git_commit():
    """The commit bioflow was installed from, or None when unknown.

    A source checkout (an editable install) asks git; a built install reads ``bioflow/_build.py``,
    which ``setup.py`` writes at build time with :func:`source_commit`.
    """
    if (SOURCE / ".git").exists():
        return source_commit()
    try:
        from bioflow._build import COMMIT
    except ImportError:
        return None
    return COMMIT
