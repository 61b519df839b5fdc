"""Where each binding of a configuration comes from.

gin resolves ``--gin`` files, their ``include`` statements and ``--gin-param`` bindings into one
configuration, but keeps no record of which file bound what. :func:`trace` reads the same files
in gin's order with gin's own parser (nothing is resolved or called) and returns every binding
with its file, line and include depth; :meth:`Trace.resolved` groups them by key (the last is in
force, as in gin), and :func:`python_default` gives the value the code uses when nothing binds it.
``bioflow config`` prints the result, and the tests use it to keep the shipped tree free of
overridden bindings.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import pathlib

import gin
from gin import config_parser

from bioflow import config, safe_gin
from bioflow.errors import BioflowError

#: ``python_default``'s answer for a parameter without a default (or a configurable it cannot find).
NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class Binding:
    """One binding statement: ``key = text`` at ``source:line``, ``depth`` includes below a ``--gin`` file."""

    key: str  # 'scope/selector.param' without bioflow's module prefix, or '%MACRO'
    value: object  # the parsed value; references and macros as safe_gin.Reference / Macro
    text: str  # the value as gin text
    source: str
    line: int
    depth: int

    @property
    def where(self):
        return f"{self.source}:{self.line}"


def _short(path):
    """A shipped file by its name under gin/, another by its path (relative to the cwd when inside it)."""
    path = pathlib.Path(path).resolve()
    root = config.packaged_gin_dir()
    for base in ([root.resolve()] if root is not None else []) + [pathlib.Path.cwd()]:
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def _include_target(name, prefixes, including):
    """The file an ``include`` names, found as gin finds it (the prefixes, in order)."""
    candidates = [name] if os.path.isabs(name) else [os.path.join(p, name) for p in prefixes]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return pathlib.Path(candidate)
    raise BioflowError(f"{including}: the included file {name!r} was not found (looked in {', '.join(prefixes)}).")


def _key(statement):
    scope = f"{statement.scope}/" if statement.scope else ""
    if not statement.arg_name:
        return f"%{scope}{statement.selector}"
    selector = safe_gin.bioflow_configurable(statement.selector) or statement.selector
    return f"{scope}{selector.removeprefix('bioflow.')}.{statement.arg_name}"


@dataclasses.dataclass
class Trace:
    """A configuration as read: its bindings in gin's order, and every file with its include depth."""

    bindings: list
    files: list  # (name, depth): 0 for a --gin file, 1 for a file it includes, ...

    def resolved(self):
        """``{key: [its bindings, first to last]}`` in order of first appearance; the last is in force."""
        keyed = {}
        for b in self.bindings:
            keyed.setdefault(b.key, []).append(b)
        return keyed

    def depth(self):
        """The deepest include level (0: only the named files)."""
        return max((depth for _, depth in self.files), default=0)


def trace(gin_files=(), bindings=()):
    """Every binding of ``gin_files`` (paths or names) then ``bindings``, in the order gin applies them.

    Returns a :class:`Trace`. Includes are followed depth first, as gin follows them. Raises :class:`BioflowError` for a
    missing file, an include that leads back to itself, or invalid syntax (naming the file and line).
    """
    files = [config.resolve_gin_file(f) for f in gin_files]
    config.register()
    prefixes = config.include_prefixes(files)
    out, read_files = [], []

    def read(path, depth, chain):
        path = pathlib.Path(path).resolve()
        if path in chain:
            loop = " → ".join(_short(p) for p in (*chain, path))
            raise BioflowError(f"The gin includes lead back to themselves: {loop}.")
        source = _short(path)
        read_files.append((source, depth))
        for statement in safe_gin.statements(path.read_text(encoding="utf-8"), source):
            if isinstance(statement, config_parser.IncludeStatement):
                read(_include_target(statement.filename, prefixes, source), depth + 1, (*chain, path))
            elif isinstance(statement, config_parser.BindingStatement):
                out.append(Binding(_key(statement), statement.value, safe_gin.gin_text(statement.value), source,
                                   safe_gin.line_of(statement.location), depth))

    for f in files:
        read(f, 0, ())
    for i, text in enumerate(bindings, start=1):
        for statement in safe_gin.statements(text, f"--gin-param {text!r}"):
            if isinstance(statement, config_parser.IncludeStatement):  # gin reads includes in bindings too
                read(_include_target(statement.filename, prefixes, "--gin-param"), 1, ())
            elif isinstance(statement, config_parser.BindingStatement):
                out.append(Binding(_key(statement), statement.value, safe_gin.gin_text(statement.value),
                                   "--gin-param", i, 0))
    return Trace(out, read_files)


def python_default(key):
    """The Python default of ``key`` ('Fit.epochs', 'scope/Gabor.ksize'), or :data:`NO_DEFAULT`."""
    if key.startswith("%"):
        return NO_DEFAULT
    selector, _, param = key.rpartition("/")[2].rpartition(".")
    try:
        match = gin.config._REGISTRY.get_match(selector)  # gin has no public lookup of the function itself
    except (KeyError, ValueError):
        return NO_DEFAULT
    if match is None:
        return NO_DEFAULT
    target = match.wrapped
    try:
        parameter = inspect.signature(target.__init__ if inspect.isclass(target) else target).parameters.get(param)
    except (TypeError, ValueError):
        return NO_DEFAULT
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return NO_DEFAULT
    return parameter.default


def _plain(value):
    """Lists and tuples compared alike: gin writes ``[8.0]`` where the code says ``(8.0,)``."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def same_value(a, b):
    """True when two values (parsed gin or Python) are the same setting (``True`` is not ``1``)."""
    if isinstance(a, (safe_gin.Reference, safe_gin.Macro)) or isinstance(b, (safe_gin.Reference, safe_gin.Macro)):
        return str(a) == str(b)
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return bool(a == b)
    except Exception:  # an exotic default whose comparison fails is simply not the same
        return False


def is_default(binding):
    """True when ``binding`` restates the Python default of its key."""
    default = python_default(binding.key)
    return default is not NO_DEFAULT and same_value(binding.value, default)
