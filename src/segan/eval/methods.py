"""The evaluated methods, by name: `segan evaluate --method NAME[=CHECKPOINT]`.

Each method is built from its own checkpoint (a run folder, its model.safetensors, or a
training checkpoint .pt of the task it evaluates); `--method pix2pix=runs/pix2pix` gives one,
and a method named without one takes `--checkpoint`. A method gets each test image's objects
as `ImageInputs` (built from ITS config: image size, box expansion, crop size, image
normalisation) and returns a `MethodOutput` (segan.eval.baselines), which one scoring path
turns into Tables 1, 2 and 5.

Registering a method:

    @register_method("mine", task="mytask")      # task: the training task its checkpoint is of
    def build_mine(ctx: MethodContext) -> EvalMethod:
        net, cfg, identity = ctx.load()
        return EvalMethod("mine", run=..., cfg=cfg, paints=True, checkpoint=identity,
                          hparams=net.hparams)

beside its task, in its module of the package `segan.baselines` (found on the first lookup), or
in a module of `BUILTIN_METHOD_MODULES`. A method without `task` needs no checkpoint of
its own (e.g. ``visible_as_full``): it reads `ctx.reference_cfg`, the config of the run's
reference checkpoint (`--checkpoint`, else the first method's). ``in_tables=False`` keeps a
method out of the compared methods that scripts evaluate (`segan list methods`; e.g. the
``oracle`` ceiling).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from segan.checkpoint import load_network
from segan.config import TrainConfig
from segan.named_registry import NamedRegistry
from segan.train.registry import rebuild_network

from .baselines import ImageInputs, MethodOutput

BUILTIN_METHOD_MODULES: tuple[str, ...] = ("segan.eval.builtin_methods", "segan.baselines",
                                           "segan.eval.baseline_methods")


@dataclass
class EvalMethod:
    """A built method: `run(inputs) -> MethodOutput` and what the results record about it.

    cfg: the config its inputs are prepared with; paints: whether it returns painted crops
    (Table 2); checkpoint: identity of its weights ({"path", "format", "step", "sha256"}) or
    None; hparams: its network's; notes: lines for the report (e.g. how its S_F is made).
    """

    name: str
    run: Callable[[ImageInputs], MethodOutput]
    cfg: TrainConfig
    paints: bool
    checkpoint: dict[str, Any] | None = None
    hparams: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class MethodContext:
    """What a method builder gets. `checkpoint`: this method's own (or --checkpoint;
    `own_checkpoint` only the former);
    `reference_cfg`: the evaluation's reference config; `data_dir`/`cache_dir`: the dataset
    and its decoded-cache folder; `index_data_dir`: the dataset whose training split a method
    that reads one uses (nearest neighbour; None: `data_dir`); `amp_dtype`: autocast dtype on
    CUDA (None = fp32)."""

    name: str
    task: str | None
    checkpoint: Path | None
    reference_cfg: TrainConfig
    device: torch.device
    amp_dtype: torch.dtype | None
    data_dir: Path
    cache_dir: Path | None = None
    index_data_dir: Path | None = None
    progress: bool = False
    own_checkpoint: Path | None = None  # the NAME=CHECKPOINT one, if given
    _runs: dict[Path, tuple[nn.Module, TrainConfig, dict[str, Any]]] = field(
        default_factory=dict, repr=False)

    def load(self) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
        """This method's network (eval mode, on the device), its config and its identity; the
        checkpoint must be of the method's task."""
        if self.checkpoint is None:
            raise ValueError(f"method {self.name!r} needs a checkpoint: --method "
                             f"{self.name}=RUN_DIR, or --checkpoint")
        return self.load_checkpoint(self.checkpoint)

    def load_checkpoint(self, checkpoint: str | os.PathLike
                        ) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
        """`load` of another checkpoint (an ensemble's members), through the same cache of
        loaded runs and the same task check."""
        key = Path(checkpoint)
        if key not in self._runs:
            self._runs[key] = load_run(key, self.device)
        net, cfg, identity = self._runs[key]
        if self.task is not None and cfg.task != self.task:
            raise ValueError(f"method {self.name!r} needs a checkpoint of task {self.task!r}, "
                             f"but {identity['path']} is of task {cfg.task!r}")
        return net, cfg, identity


@dataclass(frozen=True)
class MethodEntry:
    name: str
    build: Callable[[MethodContext], EvalMethod]
    task: str | None  # the training task of its checkpoint; None: no checkpoint of its own
    in_tables: bool = True  # one of the compared methods (not a ceiling such as the oracle)


_METHODS: NamedRegistry[MethodEntry] = NamedRegistry(
    BUILTIN_METHOD_MODULES,
    lambda name, known: ValueError(f"unknown method {name!r} (known: {known})"))


def register_method(name: str, task: str | None = None, in_tables: bool = True
                    ) -> Callable[[Callable[[MethodContext], EvalMethod]],
                                  Callable[[MethodContext], EvalMethod]]:
    """Decorator for a builder `(MethodContext) -> EvalMethod` (module docstring)."""

    def deco(fn: Callable[[MethodContext], EvalMethod]) -> Callable[[MethodContext], EvalMethod]:
        _METHODS.add(name, MethodEntry(name, fn, task, in_tables),
                     lambda old: None if old.build is fn
                     else f"evaluation method {name!r} is registered twice", fn.__module__)
        return fn

    return deco


def method_names(sort: bool = True) -> list[str]:
    """Registered methods, sorted or (sort=False) in the built-in modules' order."""
    return _METHODS.names(sort)


def get_method(name: str) -> MethodEntry:
    return _METHODS.get(name)


def ensemble_members(checkpoint: str | os.PathLike) -> list[Path]:
    """The checkpoints of a method's CHECKPOINT value: itself where that path exists, else its
    '+'-joined parts (`segan_ensemble@NAME=RUN_A+RUN_B`)."""
    path = Path(checkpoint)
    return [path] if path.exists() else [Path(p) for p in str(checkpoint).split("+")]


def load_run(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
             ) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """Any task's network from a run folder, its model.safetensors, a checkpoint .pt or a
    bundle (`segan.bundle`: its manifest .json or folder): (the network in eval mode on
    `device`, the run's config, its identity {"path", "format", "step", "sha256"}). The task
    (config `task`) rebuilds the network from the saved hparams; an export may lack only the
    task's training-only networks (`Task.export_exclude`). `segan.checkpoint.load_network`."""
    return load_network(checkpoint, device, rebuild_network)
