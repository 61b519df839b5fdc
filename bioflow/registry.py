"""Registries: one per kind of component, so that a new component is one decorated class or function.

A :class:`Registry` maps short names (``'gabor'``, ``'vgg16'``) to components, registers each
component with gin under ``bioflow.<ClassName>`` at the same time, and builds a component by
name through gin, so that gin bindings (``Gabor.ksize = 31``) apply to it::

    @FILTER_BANKS.register("mybank")
    class MyBank(FilterBank):
        ...

Error messages list the registered names, so they never go stale.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import gin

from bioflow.errors import BioflowError, choices


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered name: the component and the arguments a preset name fixes."""

    name: str
    component: Any
    preset: dict = dataclasses.field(default_factory=dict)


class Registry:
    """Components of one kind (filter banks, bases, recurrences, bottlenecks, data sources) by name.

    Args:
        kind: what a component is, for messages (``'filter bank'``).
        plural: the plural for messages (default ``kind + 's'``).
    """

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, *, aliases: tuple[str, ...] = ()) -> Callable:
        """Decorator: register a class or function as ``name`` (default: its lower-case name) and with gin."""
        def decorate(component):
            keys = [(name or component.__name__).lower(), *(a.lower() for a in aliases)]
            for key in keys:
                self._check_free(key)
            gin.register(component, module="bioflow")
            for key in keys:
                self._add(Entry(key, component))
            return component
        return decorate

    def preset(self, name: str, target: str, **arguments) -> None:
        """Register ``name`` as ``target`` built with fixed ``arguments`` (``'combined-trim'``)."""
        self._add(Entry(name.lower(), self.entry(target).component, dict(arguments)))

    def _check_free(self, name: str) -> None:
        if name in self._entries:
            raise BioflowError(f"A {self.kind} called {name!r} is already registered.")

    def _add(self, entry: Entry) -> None:
        self._check_free(entry.name)
        self._entries[entry.name] = entry

    def entry(self, name: str) -> Entry:
        """The entry called ``name`` (case-insensitive), or an error listing the registered names."""
        key = name.lower() if isinstance(name, str) else name
        if key not in self._entries:
            raise BioflowError(f"Unknown {self.kind} {name!r}; valid {self.plural} are {choices(self._entries)}.")
        return self._entries[key]

    def get(self, name: str) -> Any:
        """The component registered as ``name``."""
        return self.entry(name).component

    def create(self, name: str, **arguments) -> Any:
        """Call the component registered as ``name`` through gin, so that gin bindings apply."""
        entry = self.entry(name)
        return gin.get_configurable(entry.component)(**entry.preset, **arguments)

    def by_class_name(self, class_name: str) -> Any:
        """The registered class called ``class_name`` (for deserialising saved configs)."""
        classes = {e.component.__name__: e.component for e in self._entries.values() if isinstance(e.component, type)}
        if class_name not in classes:
            raise BioflowError(f"Unknown {self.kind} class {class_name!r}; valid classes are {choices(classes)}.")
        return classes[class_name]

    def components(self) -> tuple:
        """The registered components, each once, in registration order."""
        return tuple(dict.fromkeys(e.component for e in self._entries.values()))

    def class_names(self) -> str:
        """The registered components' names for a message: ``'A', 'B' or 'C'``."""
        return choices(c.__name__ for c in self.components())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


#: The component registries, filled by the modules that define the components.
FILTER_BANKS = Registry("filter bank")
BASES = Registry("base")
RECURRENCES = Registry("recurrence")
BOTTLENECKS = Registry("bottleneck")
DATA_SOURCES = Registry("data source")
