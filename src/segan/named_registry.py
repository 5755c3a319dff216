"""A name -> entry table filled by decorators in modules that are imported on first lookup:
the training tasks (`segan.train.registry`) and the evaluation methods (`segan.eval.methods`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class NamedRegistry(Generic[T]):
    """Entries by name; `builtin_modules` register theirs when imported, at the first lookup.

    unknown(name, known) builds the exception raised for a name that is not registered.
    """

    def __init__(self, builtin_modules: Sequence[str],
                 unknown: Callable[[str, str], Exception]):
        self.builtin_modules, self.unknown = tuple(builtin_modules), unknown
        self._entries: dict[str, T] = {}
        self._modules: dict[str, str | None] = {}
        self._loaded = False

    def add(self, name: str, entry: T, duplicate: Callable[[T], str | None],
            module: str | None = None) -> None:
        """Register `entry` (defined in `module`); `duplicate(existing)` gives the error message
        when `name` is already taken by something else, or None when it is the same (a module
        re-import)."""
        if name in self._entries:
            problem = duplicate(self._entries[name])
            if problem:
                raise ValueError(problem)
        self._entries[name] = entry
        self._modules[name] = module

    def _load_builtin(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtin_modules:
                importlib.import_module(module)

    def names(self, sort: bool = True) -> list[str]:
        """The registered names, sorted, or (sort=False) in the order of `builtin_modules`, each
        module's in the order it registers them, then those of other modules (whatever order
        the modules were imported in)."""
        self._load_builtin()
        if sort:
            return sorted(self._entries)
        rank = {m: i for i, m in enumerate(self.builtin_modules)}
        seq = {name: i for i, name in enumerate(self._entries)}
        return sorted(self._entries, key=lambda n: (rank.get(self._modules.get(n) or "",
                                                             len(rank)), seq[n]))

    def get(self, name: str) -> T:
        self._load_builtin()
        if name not in self._entries:
            raise self.unknown(name, ", ".join(sorted(self._entries)))
        return self._entries[name]
