"""Packaging and docs: pyproject lists every package, one version source, gin files through
importlib.resources, and the docs build with ``mkdocs build --strict``."""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import setuptools

import bioflow
from bioflow import config
from helpers import GIN_DIR

ROOT = pathlib.Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_lists_every_package_and_reads_the_one_version():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(str(ROOT), include=["bioflow", "bioflow.*"]))
    assert listed == found | {"bioflow.configs"}
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bioflow.__version__"}
    assert "version" not in (ROOT / "setup.py").read_text().split("setup(")[-1]  # setup.py only stamps the commit
    assert re.fullmatch(r"\d+\.\d+\.\d+", bioflow.__version__)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"test", "docs"} <= set(extras) and any(d.startswith("mkdocs-material") for d in extras["test"])


def test_gin_files_are_found_with_importlib_resources():
    root = config.packaged_gin_dir()
    assert root is not None and root.resolve() == GIN_DIR.resolve()
    shipped = sorted(str(p.relative_to(GIN_DIR).with_suffix("")) for p in GIN_DIR.rglob("*.gin"))
    assert config.list_gin_files() == shipped and "vgg16_rib_rc" in shipped


def test_the_docs_build_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: install the test extra, pip install '.[test]'")
    result = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "components" / "index.html").is_file()
    html = (tmp_path / "site" / "components" / "index.html").read_text()
    assert "Adding a filter bank" in html and "Checkerboard" in html


def test_readme_links_resolve_and_the_readme_stays_short():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?:docs/)[^)#]+)", readme)
    assert targets and all((ROOT / t).is_file() for t in targets), targets
    assert len(readme) < 10_000
