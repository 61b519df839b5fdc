"""Gin configuration: finding config files, parsing them with bindings, operative config.

A ``--gin`` value is either a path (``gin/vgg16_rib_rc.gin``) or a name (``vgg16_rib_rc``,
``evans2022/gabor_vgg16``) looked up on the search path:

1. the current directory;
2. the directories in ``$BIOFLOW_GIN_PATH`` (``os.pathsep``-separated);
3. bioflow's own ``gin/`` tree, the package ``bioflow.configs`` (a copy in a wheel, the
   checkout's folder in an editable install), found with ``importlib.resources``.

``include`` statements resolve against the same search path first (so shipped files include each
other by their path under ``gin/``, e.g. ``include 'filterbank/gabor.gin'``), then against the
folder of each ``--gin`` file and its parent.
"""
import importlib.resources
import logging
import os
import pathlib
import re
import sys
import tokenize

import gin

from bioflow import safe_gin, settings
from bioflow.errors import BioflowError  # noqa: F401 (re-exported for callers)


def packaged_gin_dir():
    """bioflow's gin/ tree, the package ``bioflow.configs``, found with ``importlib.resources``.

    ``bioflow/configs`` links to the checkout's ``gin/``, so an editable install reads the checkout's
    files and a wheel its copy of them.
    """
    try:
        root = importlib.resources.files("bioflow.configs")
    except ModuleNotFoundError:
        return None
    if isinstance(root, pathlib.Path):
        return root if root.is_dir() else None
    # A package without __init__.py gives a MultiplexedPath; its entries are real paths in one folder.
    entries = list(root.iterdir())
    return pathlib.Path(entries[0]).parent if entries else None


def gin_search_path():
    """Directories searched for ``--gin`` names and ``include`` statements, in order."""
    dirs = [pathlib.Path.cwd()]
    dirs += [pathlib.Path(p) for p in os.environ.get("BIOFLOW_GIN_PATH", "").split(os.pathsep) if p]
    packaged = packaged_gin_dir()
    if packaged is not None:
        dirs.append(packaged)
    return dirs


def resolve_gin_file(name):
    """Resolve a ``--gin`` path or name to an existing file, or raise listing where it looked."""
    candidates = [name] if name.endswith(".gin") else [name + ".gin", name]
    path = pathlib.Path(name).expanduser()
    if path.is_absolute():
        if path.is_file():
            return path
        raise BioflowError(f"Gin file {name!r} does not exist.")
    searched = []
    for directory in gin_search_path():
        for candidate in candidates:
            p = directory / candidate
            if p.is_file():
                return p.resolve()
        searched.append(str(directory))
    raise BioflowError(f"Gin file {name!r} not found. Looked in: {', '.join(searched)}. "
                       "Pass a path, or a name such as 'vgg16_rib_rc'; `bioflow configs` lists the shipped files.")


def list_gin_files():
    """Names of the shipped gin files (relative to the gin root, without '.gin')."""
    root = packaged_gin_dir()
    if root is None:
        return []
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.gin"))


def include_prefixes(files):
    """Where ``include`` statements look, in order: the search path, then each file's folder and its parent."""
    prefixes = [str(d) for d in gin_search_path()]
    for f in files:
        prefixes += [str(f.parent), str(f.parent.parent)]
    return list(dict.fromkeys(prefixes))


def _set_include_path(files):
    gin.config._LOCATION_PREFIXES[:] = include_prefixes(files)  # gin has no public way to reset its search path


class _QuietGinProbes(logging.Filter):
    """Drops gin's 'Path not found' errors, logged for every search-path miss."""

    def filter(self, record):
        return not str(record.msg).startswith(("Path not found", "system_path_file_exists"))


def _unclosed(files, bindings):
    """Where gin's tokenizer hit the end inside a bracket or string: ``'file F, line N'``."""
    sources = [(f"file {f}", pathlib.Path(f).read_text()) for f in files]
    sources += [(f"binding {b!r}", b) for b in bindings]
    for where, text in sources:
        line = safe_gin.unclosed_bracket_line(text)
        if line is not None:
            return f"{where}, line {line}"
    return "an included file"


def _note_renamed(where, keys):
    names = ", ".join(f"{k} → {settings.RENAMED[k]}" for k in dict.fromkeys(keys))
    print(f"Note: {where} uses keys renamed in bioflow 0.3, read under their new names: {names}.", file=sys.stderr)


def register():
    """Register every bioflow configurable with gin (importing TensorFlow, quietly, the first time)."""
    import bioflow.configurables  # noqa: F401


def parse(gin_files=(), bindings=(), finalize=False):
    """Clear gin, then parse ``gin_files`` (paths or names) and ``bindings`` in order.

    Only the user's own configuration is parsed here; text from elsewhere (a zoo entry's
    ``operative_config.gin``) is never passed to gin. Errors from gin (unknown configurable,
    parameter or reference, syntax) are re-raised as :class:`BioflowError`, keeping gin's message
    with its file and line.
    """
    files = [resolve_gin_file(f) for f in gin_files]  # a missing file is named before TensorFlow loads
    register()
    gin.clear_config()
    _set_include_path(files)
    quiet = _QuietGinProbes()
    logging.getLogger().addFilter(quiet)
    try:
        for f in files:  # as gin.parse_config_files_and_bindings does, with renamed keys read under their new names
            text, renamed = settings.upgrade(f.read_text(encoding="utf-8"))
            if renamed:
                _note_renamed(str(f), renamed)
                gin.parse_config(text)
            else:
                gin.parse_config_file(str(f))
        text, renamed = settings.upgrade("\n".join(bindings))
        if renamed:
            _note_renamed("--gin-param", renamed)
        gin.parse_config(text)
        if finalize:
            gin.finalize()
    except tokenize.TokenError as err:
        raise BioflowError(f"Invalid gin configuration: unclosed bracket or string in {_unclosed(files, bindings)} "
                           f"(gin: {err.args[0]}).") from err
    except RecursionError:
        raise BioflowError("Invalid gin configuration: a value is nested too deeply to read (in "
                           f"{', '.join(map(str, files)) or 'the --gin-param bindings'}).") from None
    except (ValueError, KeyError, SyntaxError, IOError, TypeError) as err:
        msg = str(err).strip()
        if isinstance(err, KeyError):
            msg = msg.strip("'\"")
        old = re.search(r"'(?:bioflow\.)?(\w+)' doesn't have a parameter named '(\w+)'", msg)
        key = f"{old.group(1)}.{old.group(2)}" if old else None
        if key in settings.RENAMED:  # in an included file, which is not upgraded
            msg += f" ({key} is {settings.RENAMED[key]} since bioflow 0.3)"
        raise BioflowError(f"Invalid gin configuration: {msg}") from err
    finally:
        logging.getLogger().removeFilter(quiet)
    check_no_cycles()
    return files


def _references(value):
    """Every evaluated reference (``@X()``, ``%M``) in a bound value, containers included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, gin.config.ConfigurableReference):
            if item._evaluate:  # gin has no public accessor; @X (not called) cannot recurse
                yield item._scoped_selector
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)


def check_no_cycles():
    """Refuse bindings whose evaluated references or macros lead back to themselves.

    ``DataPipeline.source = @DataPipeline()``, or ``A = %B`` with ``B = %A``, would make gin recurse
    until Python's stack runs out; the error names the chain instead.
    """
    def node(scoped):
        scope, _, name = scoped.rpartition("/")
        if name == "gin.macro":
            return f"%{scope}"
        match = gin.config._REGISTRY.get_match(name)
        return f"{scope + '/' if scope else ''}{match.selector if match else name}"

    edges = {}
    for (scope, selector), params in gin.config._CONFIG.items():
        source = f"%{scope}" if selector == "gin.macro" else f"{scope + '/' if scope else ''}{selector}"
        for param, value in params.items():
            for ref in _references(value):
                edges.setdefault(source, []).append((param, node(ref)))

    def short(name):
        return name.replace("bioflow.", "")

    state = {}  # node -> 1 while on the path, 2 when done
    for start in list(edges):
        if state.get(start):
            continue
        path, stack = [], [(start, iter(edges.get(start, ())))]
        state[start] = 1
        while stack:
            name, children = stack[-1]
            for param, child in children:
                if state.get(child) == 1:
                    chain = [*path, (name, param)]
                    first = next(i for i, (n, _) in enumerate(chain) if n == child)
                    loop = " → ".join(f"{short(n)}.{p}" if not n.startswith("%") else short(n)
                                      for n, p in chain[first:]) + f" → {short(child)}"
                    raise BioflowError(f"Invalid gin configuration: the bindings refer back to themselves ({loop}), "
                                       "so resolving them would never end. Bind one of them to a value instead.")
                if not state.get(child):
                    state[child] = 1
                    path.append((name, param))
                    stack.append((child, iter(edges.get(child, ()))))
                    break
            else:
                state[name] = 2
                stack.pop()
                if path:
                    path.pop()


def operative_config():
    """Gin's operative config (the bindings actually used so far) as a string."""
    return gin.operative_config_str()
