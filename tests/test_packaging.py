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
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bioflow._version.__version__"}
    assert "version" not in (ROOT / "setup.py").read_text().split("setup(")[-1]  # setup.py only stamps the commit
    assert re.fullmatch(r"\d+\.\d+\.\d+", bioflow.__version__)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"test", "docs"} <= set(extras) and any(d.startswith("mkdocs-material") for d in extras["test"])


def test_gin_files_are_found_with_importlib_resources():
    root = config.packaged_gin_dir()  # the checkout's gin/ (editable install) or the wheel's copy of it
    assert root is not None and root.name == "configs" and root.parent.name == "bioflow"
    shipped = sorted(str(p.relative_to(GIN_DIR).with_suffix("")) for p in GIN_DIR.rglob("*.gin"))
    assert config.list_gin_files() == shipped and "vgg16_rib_rc" in shipped
    for name in shipped:
        assert (root / f"{name}.gin").read_text() == (GIN_DIR / f"{name}.gin").read_text(), name


def test_an_installed_wheel_ships_the_checkouts_gin_files(tmp_path):
    """In an editable install bioflow/configs is the checkout's gin/ (a link), so the test above reads
    one folder twice. Here pip builds and installs a copy of the checkout, as a user's install does,
    and the installed files are compared with gin/."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs", "site", ".pytest_cache"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(tmp_path / "installed"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = tmp_path / "installed" / "bioflow" / "configs"
    assert not installed.is_symlink() and installed.is_dir()
    names = sorted(str(p.relative_to(installed)) for p in installed.rglob("*.gin"))
    assert names == sorted(str(p.relative_to(GIN_DIR)) for p in GIN_DIR.rglob("*.gin")) and len(names) > 40
    for name in names:
        assert (installed / name).read_bytes() == (GIN_DIR / name).read_bytes(), name


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


LAZY = "bioflow.configurables"


def _imports(path, module):
    """The bioflow modules that ``module`` (at ``path``) imports, anywhere in its body."""
    import ast

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    # bioflow.configurables imports every registering module; the functions that need them all
    # registered (config.register, safe_gin's lookup) import it when they run, on purpose.
    deferred = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in ast.walk(f) if isinstance(n, ast.Import) and [a.name for a in n.names] == [LAZY]}
    out = set()
    for node in ast.walk(tree):
        if id(node) in deferred:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                out.add(sub if (ROOT / (sub.replace(".", "/") + ".py")).is_file()
                        or (ROOT / sub.replace(".", "/") / "__init__.py").is_file() else base)
    return {m for m in out if m == "bioflow" or m.startswith("bioflow.")}


def test_no_module_imports_one_that_imports_it_back():
    modules = {}
    for path in (ROOT / "bioflow").rglob("*.py"):
        if "configs" in path.parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = _imports(path, name)
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    cycles = []

    def visit(node, stack):
        for dep in graph[node]:
            if dep in stack:
                cycle = stack[stack.index(dep):] + [dep]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cycle, cycle[1:])):
                    cycles.append(" -> ".join(cycle))
            elif dep not in done:
                visit(dep, stack + [dep])
        done.add(node)

    done = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles
    assert "bioflow.config" not in graph["bioflow.runner"]
