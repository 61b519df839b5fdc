"""bioflow: declarative, gin-configured TensorFlow/Keras framework for bio-inspired CNNs."""
import pathlib
import re
import subprocess

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).parent
#: The one version source is bioflow/__init__.py.
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "bioflow" / "__init__.py").read_text(), re.M).group(1)


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
    """Records the git commit of the source in ``bioflow/_build.py``, for zoo cards."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "bioflow" / "_build.py"
        target.write_text(f"COMMIT = {git_commit()!r}\n")


setup(
    name="bioflow",
    version=VERSION,
    description="Gin-configured TensorFlow/Keras framework for biologically inspired CNNs",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["bioflow", "bioflow.*"]) + ["bioflow.configs"],
    # The top-level gin/ tree ships inside the package as bioflow.configs.
    package_dir={"bioflow.configs": "gin"},
    package_data={"bioflow.configs": ["*.gin", "**/*.gin"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "keras-cv>=0.9",
        "gin-config>=0.5",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets imports it without declaring it
        "pandas>=2.0",
        "altair>=5.0",
        "vl-convert-python>=1.0",  # Altair charts to PNG, offline (learning curves, reports)
        "tensorboard",  # TensorFlow no longer installs it; needed for train.tensorboard logs
        "click>=8.0",
        "filelock>=3.12",  # the run-directory and zoo locks, on every platform
        "numpy>=2.0",  # np.trapezoid
        "scipy",  # Student-t intervals over trials (scipy.stats.t)
        "h5py",
    ],
    # pillow: the brightness reference of the augmentation test; playwright: drives Debian's chromium in the report tests.
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.2", "pillow", "playwright>=1.40"]},
    entry_points={"console_scripts": ["bioflow = bioflow.cli:main"]},
    cmdclass={"build_py": BuildPyWithCommit},
)
