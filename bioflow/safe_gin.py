"""A restricted reader for gin text that came from elsewhere, such as a pulled zoo entry.

Gin config text is code: ``import x`` runs module ``x``, and after
``from __gin__ import dynamic_registration`` a binding can name and call any function. bioflow
therefore never passes an entry's ``operative_config.gin`` to gin at all: an entry is evaluated
with the user's own configuration (docs/zoo.md). The entry's text is still checked, so that it
stays plain, readable gin: this reader uses only gin's tokenizer-level parser
(``gin.config_parser``), whose delegate here resolves nothing, and accepts the text only when
every statement is one of:

* a binding ``[scope/]Configurable.param = value`` of a configurable that bioflow registered;
* a macro definition ``NAME = value``.

Values may be Python literals, references (``@Configurable`` or ``@Configurable()``) to
bioflow's configurables, and macros (``%NAME``) defined in the same text. ``import``,
``from … import``, ``include``, constants and anything bioflow did not register are refused with
the line, and so is text larger than :data:`MAX_TEXT_BYTES` or nested deeper than
:data:`MAX_DEPTH`. :func:`bindings` reads a user's own operative config for comparisons.
"""
import dataclasses
import io
import tokenize

import gin
from gin import config_parser

from bioflow.errors import BioflowError

#: The largest config text the reader takes (an operative config is a few kilobytes).
MAX_TEXT_BYTES = 1 << 20
#: The deepest nesting of brackets it takes (gin's parser recurses once per level).
MAX_DEPTH = 32


class UnsafeConfig(BioflowError):
    """Gin text that the restricted reader refuses."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """``@name`` (``evaluate=False``) or ``@name()`` in parsed text, not yet resolved."""

    name: str
    evaluate: bool

    def __str__(self):
        return f"@{self.name}{'()' if self.evaluate else ''}"


@dataclasses.dataclass(frozen=True)
class Macro:
    """``%name`` in parsed text, not yet resolved."""

    name: str

    def __str__(self):
        return f"%{self.name}"


class _Recorder(config_parser.ParserDelegate):
    """Records references and macros as plain values; resolves, imports and calls nothing."""

    def configurable_reference(self, scoped_configurable_name, evaluate):
        return Reference(scoped_configurable_name, evaluate)

    def macro(self, macro_name):
        return Macro(macro_name)


def line_of(location):
    """The line number of a parser location, or ``'?'``."""
    return getattr(location, "line_num", None) or "?"


def statements(text, source):
    """The statements of gin ``text`` (from ``source``, for messages), parsed without resolving anything.

    Syntax errors, including an unclosed bracket, become a :class:`BioflowError` with the line, and
    so do text over :data:`MAX_TEXT_BYTES` and brackets nested deeper than :data:`MAX_DEPTH`.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_TEXT_BYTES:
        raise UnsafeConfig(f"{source}: refused: it is {size:,} bytes, and a config may have at most "
                           f"{MAX_TEXT_BYTES:,}.")
    deep = _too_deep(text)
    if deep is not None:
        raise UnsafeConfig(f"{source}, line {deep}: refused: brackets nested more than {MAX_DEPTH} deep.")
    try:
        return list(config_parser.ConfigParser(text, _Recorder()))
    except RecursionError:  # a last guard: the depth check above should have refused it
        raise UnsafeConfig(f"{source}: refused: it is nested too deeply to read.") from None
    except SyntaxError as err:
        location = err.args[1] if len(err.args) > 1 else None
        line = location[1] if isinstance(location, tuple) and len(location) > 1 else err.lineno
        raise BioflowError(f"{source}, line {line}: invalid gin syntax: {err.args[0]}") from err
    except tokenize.TokenError as err:
        raise BioflowError(f"{source}, line {unclosed_bracket_line(text)}: unclosed bracket or string (gin: "
                           f"{err.args[0]}).") from err


def _too_deep(text):
    """The line where brackets first nest deeper than :data:`MAX_DEPTH`, or None (read iteratively)."""
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    return token.start[0]
            elif token.type == tokenize.OP and token.string in ")]}":
                depth = max(0, depth - 1)
    except (tokenize.TokenError, SyntaxError):
        return None  # the parser names the syntax error
    return None


def unclosed_bracket_line(text):
    """The line of the bracket or string that ``text`` leaves open (gin's tokenizer fails at the end), or None."""
    opened = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.OP and token.string in "([{":
                opened.append(token.start[0])
            elif token.type == tokenize.OP and token.string in ")]}" and opened:
                opened.pop()
    except tokenize.TokenError as err:
        if "string" in str(err.args[0]) and len(err.args) > 1:
            return err.args[1][0]  # where the unterminated string starts
        return opened[-1] if opened else (err.args[1][0] if len(err.args) > 1 else 1)
    return None


def bioflow_configurable(selector):
    """The complete gin selector of ``selector`` when bioflow's own code registered it, else None.

    Registers every bioflow configurable first (:mod:`bioflow.configurables`), so the answer
    does not depend on which modules happen to be imported.
    """
    import bioflow.configurables  # noqa: F401

    try:
        match = gin.config._REGISTRY.get_match(selector)  # gin's public lookup returns no module
    except (KeyError, ValueError):  # unknown or ambiguous
        return None
    if match is None or match.module != "bioflow":
        return None
    module = getattr(match.wrapped, "__module__", None) or ""
    return match.selector if module.startswith("bioflow.") else None


def _values(value):
    """Every leaf of a parsed value (containers flattened)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _values(k)
            yield from _values(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _values(v)
    else:
        yield value


def check(text, source):
    """Return the binding statements of ``text`` if every statement is allowed, else raise.

    :class:`UnsafeConfig` names ``source``, the line and what was refused.
    """
    parsed = statements(text, source)
    macros = {s.selector if not s.scope else f"{s.scope}/{s.selector}" for s in parsed
              if isinstance(s, config_parser.BindingStatement) and not s.arg_name}

    def refuse(location, why):
        content = (getattr(location, "line_content", "") or "").strip()
        raise UnsafeConfig(f"{source}, line {line_of(location)}: refused {content!r}: {why}.")

    bindings = []
    for s in parsed:
        if isinstance(s, config_parser.ImportStatement):
            refuse(s.location, "it enables dynamic registration, which lets a config call any function"
                   if s.module.startswith("__gin__") else
                   f"it imports {s.module!r}, and a config from outside may not import modules")
        if isinstance(s, config_parser.IncludeStatement):
            refuse(s.location, f"it includes {s.filename!r}, and a config from outside may not read other files")
        if isinstance(s, config_parser.BlockDeclaration):
            if bioflow_configurable(s.selector) is None:
                refuse(s.location, f"{s.selector!r} is not a configurable that bioflow registered")
            continue
        if s.arg_name and bioflow_configurable(s.selector) is None:
            refuse(s.location, f"{s.selector!r} is not a configurable that bioflow registered")
        for leaf in _values(s.value):
            if isinstance(leaf, Reference) and bioflow_configurable(leaf.name.rsplit("/", 1)[-1]) is None:
                refuse(s.location, f"{leaf} is not a configurable that bioflow registered")
            if isinstance(leaf, Macro) and "." in leaf.name:
                refuse(s.location, f"the macro {leaf} names a module")
            if isinstance(leaf, Macro) and leaf.name not in macros:
                refuse(s.location, f"the macro {leaf} is not defined in this config")
        bindings.append(s)
    return bindings


def bindings(text, source):
    """``{'scope/selector.param': value text}`` of every binding in ``text``, for comparing configs.

    Selectors are completed when bioflow registered them, so ``train.lr`` and ``bioflow.train.lr``
    compare equal. Other statements (imports in a user's own config) are ignored.
    """
    out = {}
    for s in statements(text, source):
        if isinstance(s, config_parser.BindingStatement) and s.arg_name:
            selector = bioflow_configurable(s.selector) or s.selector
            key = f"{s.scope + '/' if s.scope else ''}{selector}.{s.arg_name}"
            out[key] = gin_text(s.value)
    return out


def gin_text(value):
    """A parsed value written back as gin text (references and macros as ``@X()`` and ``%M``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{gin_text(k)}: {gin_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(gin_text(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(gin_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (Reference, Macro)):
        return str(value)
    return repr(value)
