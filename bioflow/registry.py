"""Registries: one per kind of component, so that a new component is one decorated class or function.

A :class:`Registry` maps short names (``'gabor'``, ``'vgg16'``) to components. For the kinds that
gin builds (filter banks, bases, recurrences, bottlenecks, data sources) it registers each
component with gin under ``bioflow.<ClassName>`` at the same time, and builds a component by
name through gin, so that gin bindings (``Gabor.ksize = 31``) apply to it::

    @FILTER_BANKS.register("mybank")
    class MyBank(FilterBank):
        ...

Noises, optimisers and strategies are registries too, of values that gin does not build
(:meth:`Registry.add`). Every lookup fails the same way, listing the registered names, so the
messages never go stale: ``Unknown noise 'fog'; valid noises are 'brighten', … or 'uniform'.``
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import gin

from bioflow.errors import BioflowError, choices


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered name (as registered; lookups ignore case): the component and the arguments a
    preset name fixes."""

    name: str
    component: Any
    preset: dict = dataclasses.field(default_factory=dict)


class Registry:
    """Components of one kind by name.

    Args:
        kind: what a component is, for messages (``'filter bank'``).
        plural: the plural for messages (default ``kind + 's'``).
        configurable: register each component with gin (the kinds gin builds), or not (noises,
            optimisers, strategies: values looked up by name).
    """

    def __init__(self, kind: str, plural: str | None = None, configurable: bool = True):
        self.kind = kind
        self.plural = plural or kind + "s"
        self.configurable = configurable
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, *, aliases: tuple[str, ...] = ()) -> Callable:
        """Decorator: register a class or function as ``name`` (default: its lower-case name), and with
        gin when the registry is configurable."""
        def decorate(component):
            self.add(name or component.__name__.lower(), component, aliases=aliases)
            return component
        return decorate

    def add(self, name: str, component: Any, *, aliases: tuple[str, ...] = (), replace: bool = False) -> Any:
        """Register ``component`` as ``name`` (and ``aliases``); returns it. ``replace`` lets a name be
        registered again (a noise redefined in a notebook)."""
        names = [name, *aliases]
        for key in names:
            if replace:
                self._entries.pop(key.lower(), None)
            self._check_free(key)
        if self.configurable:
            gin.register(component, module="bioflow")
        for key in names:
            self._add(Entry(key, component))
        return component

    def preset(self, name: str, target: str, **arguments) -> None:
        """Register ``name`` as ``target`` built with fixed ``arguments`` (``'combined-trim'``)."""
        self._add(Entry(name, self.entry(target).component, dict(arguments)))

    def _check_free(self, name: str) -> None:
        if name.lower() in self._entries:
            raise BioflowError(f"A {self.kind} called {name!r} is already registered.")

    def _add(self, entry: Entry) -> None:
        self._check_free(entry.name)
        self._entries[entry.name.lower()] = entry

    def names(self) -> list[str]:
        """The registered names, as registered, in registration order."""
        return [e.name for e in self._entries.values()]

    def entry(self, name: str, also: tuple[str, ...] = ()) -> Entry:
        """The entry called ``name`` (case-insensitive), or an error listing the registered names (and
        ``also``, names the caller accepts besides)."""
        key = name.lower() if isinstance(name, str) else name
        if not isinstance(key, str) or key not in self._entries:
            raise BioflowError(f"Unknown {self.kind} {name!r}; valid {self.plural} are "
                               f"{choices([*also, *self.names()])}.")
        return self._entries[key]

    def resolve(self, value: Any, what: str, also: tuple[str, ...] = ()) -> Any:
        """``value`` when it is a registered component's object, else the component its name builds
        (:meth:`create`); anything else is an error naming ``what`` and what it may be."""
        if isinstance(value, self.components()):
            return value
        if isinstance(value, str):
            return self.create(value, also=also)
        raise BioflowError(f"{what} must be a registered name ({', '.join([*also, *self.names()])}) or a {self.kind} "
                           f"object ({self.class_names()}), got {value!r}.")

    def get(self, name: str) -> Any:
        """The component registered as ``name``."""
        return self.entry(name).component

    def create(self, name: str, also: tuple[str, ...] = (), **arguments) -> Any:
        """Call the component registered as ``name`` through gin, so that gin bindings apply."""
        entry = self.entry(name, also)
        return gin.get_configurable(entry.component)(**entry.preset, **arguments)

    def by_class_name(self, class_name: str) -> Any:
        """The registered class called ``class_name`` (for deserialising saved configs)."""
        classes = {e.component.__name__: e.component for e in self._entries.values() if isinstance(e.component, type)}
        if class_name not in classes:
            raise BioflowError(f"Unknown {self.kind} class {class_name!r}; valid classes are {choices(classes)}.")
        return classes[class_name]

    def items(self) -> list[tuple[str, Any]]:
        """``(name, component)`` for every registered name, in registration order."""
        return [(e.name, e.component) for e in self._entries.values()]

    def components(self) -> tuple:
        """The registered components, each once, in registration order."""
        return tuple(dict.fromkeys(e.component for e in self._entries.values()))

    def class_names(self) -> str:
        """The registered components' names for a message: ``'A', 'B' or 'C'``."""
        return choices(getattr(c, "__name__", type(c).__name__) for c in self.components())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


#: The registries, filled by the modules that define what they hold.
FILTER_BANKS = Registry("filter bank")
BASES = Registry("base")
RECURRENCES = Registry("recurrence")
BOTTLENECKS = Registry("bottleneck")
DATA_SOURCES = Registry("data source")
NOISES = Registry("noise", configurable=False)  # bioflow.noise: Perturbation records
OPTIMIZERS = Registry("optimizer", configurable=False)  # bioflow.training.optimizers: update rules by name
STRATEGIES = Registry("strategy", "strategies", configurable=False)  # bioflow.training.strategy: builders
#: Every registry, for the tests and docs that go over all of them.
ALL = (FILTER_BANKS, BASES, RECURRENCES, BOTTLENECKS, DATA_SOURCES, NOISES, OPTIMIZERS, STRATEGIES)
