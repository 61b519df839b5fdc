"""Only what pyproject.toml cannot say: the git commit of the source, stamped into the build.

Everything else (metadata, dependencies, extras, packages, the version from
``bioflow/_version.py``) is in pyproject.toml.
"""
import pathlib
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bioflow.provenance import source_commit  # noqa: E402  (standard library only; import bioflow is light)


class BuildPyWithCommit(build_py):
    """Records the git commit of the source in ``bioflow/_build.py``, for run.json and zoo cards."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "bioflow" / "_build.py"
        target.write_text(f"COMMIT = {source_commit(HERE)!r}\n")


setup(cmdclass={"build_py": BuildPyWithCommit})
