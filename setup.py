"""Only what pyproject.toml cannot say: the git commit of the source, stamped into the build.

Everything else (metadata, dependencies, extras, packages, the version from
``bioflow/__init__.py``) is in pyproject.toml.
"""
import pathlib
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).parent


def git_commit():
    """The source tree's commit (``+dirty`` with local edits), or None outside a git checkout."""
    try:
        run = dict(cwd=HERE, capture_output=True, text=True, timeout=10, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


class BuildPyWithCommit(build_py):
    """Records the git commit of the source in ``bioflow/_build.py``, for run.json and zoo cards."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "bioflow" / "_build.py"
        target.write_text(f"COMMIT = {git_commit()!r}\n")


setup(cmdclass={"build_py": BuildPyWithCommit})
