"""A name -> entry table filled by decorators in modules that are imported on first lookup:
the training tasks (`segan.train.registry`), the evaluation methods (`segan.eval.methods`) and
the config sections (`segan.config`).

A built-in module may be a package that imports its own modules (`segan.baselines`, found by
`pkgutil`): names registered by its modules rank with it in `names(sort=False)`."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class NamedRegistry(Generic[T]):
    """Entries by name; `builtin_modules` register theirs when imported, at the first lookup.

    unknown(name, known) builds the exception raised for a name that is not registered.
    `fallback_modules` are imported only when a name is looked up that the built-in ones do not
    register (e.g. the config sections: the light built-in ones first, `segan.baselines` with
    its torch imports only for a section none of them has).
    """

    def __init__(self, builtin_modules: Sequence[str],
                 unknown: Callable[[str, str], Exception],
                 fallback_modules: Sequence[str] = ()):
        self.builtin_modules, self.unknown = tuple(builtin_modules), unknown
        self.fallback_modules = tuple(fallback_modules)
        self._entries: dict[str, T] = {}
        self._modules: dict[str, str | None] = {}
        self._loaded = self._fallback_loaded = False

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

    def _load_fallback(self) -> None:
        if not self._fallback_loaded:
            self._fallback_loaded = True
            for module in self.fallback_modules:
                importlib.import_module(module)

    def _rank(self, module: str | None) -> int:
        """The index of the built-in module that is `module` or a package holding it."""
        for i, m in enumerate(self.builtin_modules):
            if module is not None and (module == m or module.startswith(m + ".")):
                return i
        return len(self.builtin_modules)

    def names(self, sort: bool = True) -> list[str]:
        """The registered names, sorted, or (sort=False) in the order of `builtin_modules`, each
        module's in the order it registers them, then those of other modules (whatever order
        the modules were imported in)."""
        self._load_builtin()
        if sort:
            return sorted(self._entries)
        seq = {name: i for i, name in enumerate(self._entries)}
        return sorted(self._entries, key=lambda n: (self._rank(self._modules.get(n)), seq[n]))

    def find(self, name: str) -> T | None:
        """The entry of `name`, or None; a miss imports the fallback modules once first."""
        self._load_builtin()
        if name not in self._entries:
            self._load_fallback()
        return self._entries.get(name)

    def get(self, name: str) -> T:
        entry = self.find(name)
        if entry is None:
            raise self.unknown(name, ", ".join(sorted(self._entries)))
        return entry
