"""One generic registry for models, datasets, metrics, feature extractors and suites.

Modelled on lm-evaluation-harness ``lm_eval/api/registry.py`` (typed entries, lazy
``module:attr`` loading, a helpful error for unknown names) and torch-fidelity's
``registry.py`` (names are lowercase ``[a-z0-9_]+`` and unique).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the closest valid names."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


@dataclass
class Entry(Generic[T]):
    """One registered object, loaded on first use when given as ``"module:attr"``."""

    name: str
    target: T | str  # the object itself, or "package.module:attr" to import lazily
    meta: dict[str, Any] = field(default_factory=dict)  # free-form metadata (task kind, higher_is_better, ...)

    def load(self) -> T:
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.target = obj
        return self.target  # type: ignore[return-value]


class Registry(Generic[T]):
    """A named collection of entries of one kind.

    Args:
        kind: What the registry holds ("model", "dataset", ...), used in error messages.
        entry_point_group: Python entry-point group through which installed packages add entries
            (``[project.entry-points."ganbench.models"] my_gan = "my_pkg.module:MyGenerator"``). The group is
            read on the first lookup and each target imported on first use; a built-in name wins over a
            package's entry of the same name.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None, base: str | None = None,
                 builtins: str | None = None):
        self.kind = kind
        # the module whose import registers the built-in entries: imported on the first lookup, so a lookup never
        # depends on which ganbench module the caller happened to import first
        self.builtins = builtins
        self.base = base  # "module:Class" every registered object must be an instance of (checked on registration)
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self.entry_point_group = entry_point_group
        self._plugins: dict[str, Entry[T]] | None = None  # entries of installed packages, read once

    def _load_builtins(self) -> None:
        if self.builtins is not None:
            module, self.builtins = self.builtins, None  # once; its own registrations do not come back here
            importlib.import_module(module)

    def _plugin_entries(self) -> dict[str, Entry[T]]:
        if self._plugins is None:
            self._plugins = {}
            if self.entry_point_group:
                from importlib.metadata import entry_points

                for ep in entry_points(group=self.entry_point_group):
                    dist = ep.dist.name if ep.dist is not None else "unknown distribution"
                    if not _NAME.match(ep.name) or ep.name in self._plugins:
                        logging.getLogger(__name__).warning(
                            "ignoring %s entry point %r of %s: names must be unique and lowercase [a-z0-9_]+",
                            self.entry_point_group, ep.name, dist)
                        continue
                    target = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
                    self._plugins[ep.name] = Entry(ep.name, target, {"family": f"entry point of {dist}",
                                                                     "entry_point": target})
        return self._plugins

    def register(
        self, name: str, target: T | str | None = None, *, aliases: tuple[str, ...] = (), **meta: Any
    ) -> Callable[[T], T] | T:
        """Register ``target`` under ``name``; without ``target`` returns a decorator.

        Raises:
            ValueError: If the name is not lowercase ``[a-z0-9_]+`` or is already taken.
        """

        def add(obj: T | str) -> T | str:
            if self.base is not None and not isinstance(obj, str):
                base = Entry(self.base, self.base).load()
                if not isinstance(obj, base):
                    raise TypeError(f"{self.kind} {name!r} must be a {base.__name__}, got {type(obj).__name__}")
            for n in (name, *aliases):
                if not _NAME.match(n):
                    raise ValueError(f"{self.kind} name {n!r} must be lowercase [a-z0-9_]+")
                if n in self._entries or n in self._aliases:
                    raise ValueError(f"{self.kind} {n!r} is already registered")
            self._entries[name] = Entry(name, obj, dict(meta))
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        if target is None:
            return add  # type: ignore[return-value]
        return add(target)  # type: ignore[return-value]

    def unregister(self, name: str) -> Entry[T]:
        """Remove a built-in entry and its aliases (a plugin unloaded, a test's own entries); returns the entry.

        Raises:
            UnknownNameError: If ``name`` is not registered here.
        """
        if name not in self._entries:
            raise UnknownNameError(self._unknown_message(name))
        for alias in [a for a, target in self._aliases.items() if target == name]:
            del self._aliases[alias]
        return self._entries.pop(name)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` (or an alias of it)."""
        self._load_builtins()
        key = self._aliases.get(name, name)
        if key not in self._entries:
            if key in self._plugin_entries():
                return self._plugin_entries()[key]
            raise UnknownNameError(self._unknown_message(name))
        return self._entries[key]

    def get(self, name: str) -> T:
        """The registered object, imported on first use."""
        return self.entry(name).load()

    def meta(self, name: str) -> dict[str, Any]:
        return self.entry(name).meta

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style pattern."""
        self._load_builtins()
        names = set(self._entries) | set(self._plugin_entries())
        return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))

    def names_in_order(self) -> list[str]:
        """Built-in names in the order they were registered (then installed packages' names, sorted)."""
        self._load_builtins()
        return list(self._entries) + sorted(set(self._plugin_entries()) - set(self._entries))

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return isinstance(name, str) and (name in self._entries or name in self._aliases
                                          or name in self._plugin_entries())

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def _unknown_message(self, name: str) -> str:
        valid = self.list()
        close = difflib.get_close_matches(name, valid + list(self._aliases), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(valid) or '(none)'}"


MODELS: Registry[Any] = Registry("model", entry_point_group="ganbench.models", base="ganbench.zoo.base:ModelEntry",
                                 builtins="ganbench.zoo")
DATASETS: Registry[Any] = Registry("dataset", builtins="ganbench.data")
METRICS: Registry[Any] = Registry("metric", base="ganbench.metrics.base:MetricSpec", builtins="ganbench.metrics")
EXTRACTORS: Registry[Any] = Registry("extractor", base="ganbench.features:ExtractorSpec", builtins="ganbench.features")
SUITES: Registry[Any] = Registry("suite", builtins="ganbench.runner.suite")
TASKS: Registry[Any] = Registry("task", base="ganbench.tasks.base:Task", builtins="ganbench.tasks")
PROTOCOLS: Registry[Any] = Registry("protocol", base="ganbench.protocols:NamedProtocol", builtins="ganbench.protocols")
