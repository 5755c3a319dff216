"""Baselines, one module each: its task (`segan.train.registry.register_task`, with its config
section), its evaluation method (`segan.eval.methods.register_method`) and, if it is small, its
network. Every module of this package is imported (found by `pkgutil`, in name order) the first
time the task or method registry is looked up, or a config names a section the built-in ones do
not have; so a new baseline is a new module here plus its configs/NAME.yaml, nothing else
(docs/architecture.md, "Adding a baseline")."""

from __future__ import annotations

import importlib
import pkgutil


def module_names() -> list[str]:
    """The baseline modules of this package, in name order (private ``_name`` ones left out)."""
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_"))


for _module in module_names():
    importlib.import_module(_module)
