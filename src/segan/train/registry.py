"""Training tasks: what the one training loop trains, chosen by the config's `task` field.

The loop (`segan.train.loop`) owns the runtime and DDP, exact resume, logging, checkpointing
and the progress bar. A task owns everything that differs between models:

    networks       build_network(backbone_weights) -> one nn.Module holding every network of
                   the task (its state dict is the checkpoint's "model"), with a `hparams` dict
                   that rebuilds it (network_from_hparams); prepare_model (device, DDP);
                   backbone_record (how a pretrained part was initialised)
    optimisers     make_optimizers(net) -> an object with state_dict / load_state_dict;
                   set_learning_rates(opt, step) -> {name: lr} for the logs; stage(step)
    data           open_data(data_dir, cache_dir, runtime, progress) (once; e.g. the decoded
                   cache), make_loader(data, runtime, epoch, index) (an endless iterator of raw
                   batches from position (epoch, index) of the data order), prepare_batch(raw,
                   runtime), data_position(batch) (where the NEXT batch starts: saved for an
                   exact resume), batch_size(batch) (samples, for the throughput log),
                   run_info() (facts found in the data, kept in the checkpoint and summary)
    a step         train_step(step, model, net, batch, opt, runtime, scaler) ->
                   (detached losses for the logs, outputs for the grid)
    logs           make_grid(outputs, batch) -> (H, W, 3) uint8 or None
    export         export(net, path, config, step, backbone_init): the inference weights
                   (safetensors, `segan.train.checkpoint.export_safetensors`)

`ObjectTask` implements the data part for object-level tasks (SeGAN and the object baselines):
the decoded cache, `ObjectBatchSampler` and `prepare_batch` of `segan.train.data`. An
image-level task subclasses `Task` and brings its own dataset and sampler; its batches only
need what `data_position` and `batch_size` read.

Registering a task, with its own config section (a dataclass, the config's ``mytask:`` key,
read as `cfg.mytask`; `segan.config.register_section`):

    @dataclass
    class MyTaskConfig:
        width: int = 32

    @register_task("mytask", section=MyTaskConfig)
    class MyTask(ObjectTask): ...

in a module of the package `segan.baselines` (imported on the first lookup, module by module:
`get_task("mytask")` and a config with `task: mytask` find it with no edit elsewhere), or of
`BUILTIN_TASK_MODULES`.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.config import ConfigError, TrainConfig, register_section
from segan.named_registry import NamedRegistry

from . import distributed
from .cache import AmodalCache, open_cache
from .checkpoint import export_safetensors
from .data import Batch, ObjectBatches, ObjectBatchSampler, make_loader, prepare_batch
from .runtime import Runtime

# modules whose import registers the built-in tasks (imported on first lookup)
BUILTIN_TASK_MODULES: tuple[str, ...] = ("segan.train.tasks", "segan.baselines",
                                         "segan.train.image_tasks",
                                         "segan.train.completer_task")

_TASKS: NamedRegistry[type[Task]] = NamedRegistry(
    BUILTIN_TASK_MODULES,
    lambda name, known: ConfigError(f"task: {name!r} is not a registered task (known: {known})"))


def register_task(name: str, section: type | None = None
                  ) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: make a `Task` subclass available as config `task: name`; `section`, a
    dataclass, is its config section ``name:`` (`Task.config_section`)."""

    def deco(cls: type[Task]) -> type[Task]:
        _TASKS.add(name, cls, lambda old: None if old is cls else (
            f"task {name!r} is registered twice ({old.__qualname__} and {cls.__qualname__})"),
            cls.__module__)
        cls.name = name
        if section is not None:
            register_section(name)(section)
            cls.config_section = name
        return cls

    return deco


def task_names(sort: bool = True) -> list[str]:
    """Registered tasks, sorted or (sort=False) in the built-in modules' order."""
    return _TASKS.names(sort)


def get_task(name: str) -> type[Task]:
    return _TASKS.get(name)


def build_task(cfg: TrainConfig) -> Task:
    """The task object the config names (its config section added to `cfg` if missing)."""
    return get_task(cfg.task)(cfg)


def rebuild_network(cfg: TrainConfig, hparams: dict[str, Any], path: Path
                    ) -> tuple[nn.Module, tuple[str, ...]]:
    """`segan.checkpoint.Rebuild` by the config's task: its network from the saved hparams
    (random weights) and its training-only networks (`Task.export_exclude`)."""
    task = get_task(cfg.task)(cfg)
    return task.network_from_hparams(hparams), task.export_exclude


def backbone_record(weights: str, backbone: str = "resnet18") -> dict[str, Any]:
    """Which initialisation a backbone got (saved in checkpoints and exports); `backbone` is
    the segmentor's trunk (`segan.models.segmentor.BACKBONES`), whose "imagenet" file it finds."""
    from segan.models.segmentor import backbone_weights_path

    if weights == "none":
        return {"weights": "none"}
    path = backbone_weights_path(weights, backbone)
    record: dict[str, Any] = {"weights": weights, "path": str(path)}
    if backbone != "resnet18":
        record["backbone"] = backbone
    if os.path.isfile(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        record["sha256"] = h.hexdigest()
    return record


class NamedOptimizers(dict):
    """{name: optimiser} with the state_dict / load_state_dict the checkpoints use."""

    def as_dict(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self)

    def state_dict(self) -> dict:
        return {k: o.state_dict() for k, o in self.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, o in self.items():
            o.load_state_dict(state[k])


class Task(abc.ABC):
    """What one run trains (module docstring). Subclasses are registered with `register_task`.

    Class attributes: `name` (set by the decorator); `export_exclude`, the state-dict prefixes
    of training-only networks left out of the inference export (e.g. a discriminator);
    `compile_modules` (names of submodules `run.compile` compiles) and `ddp_ignore` (submodules
    DDP leaves alone because the task synchronises them by hand) for `prepare_model`;
    `pretrained_backbone`, whether ``model.backbone_weights`` (``segan train
    --backbone-weights``) initialises a part of its network; `smoke_overrides`, settings over
    configs/tiny.yaml that make its networks small enough for a CPU smoke run in seconds (the
    tests run every registered task with them); `config_section`, the name of its own config
    section (`cfg.section(name)`; set by ``register_task(name, section=...)``), or None. Its
    config is configs/NAME.yaml (`segan list tasks`; tests/test_registry.py checks that every
    task has one).
    """

    name: str = ""
    export_exclude: tuple[str, ...] = ()
    compile_modules: tuple[str, ...] = ()
    ddp_ignore: tuple[str, ...] = ()
    pretrained_backbone: bool = True
    smoke_overrides: tuple[str, ...] = ()
    config_section: str | None = None

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        if self.config_section is not None:
            cfg.section(self.config_section)  # its defaults, if the config has none

    # ------------------------------------------------------------------ networks
    @property
    def static_shapes(self) -> bool:
        """Whether every step's tensors have the same shapes (cuDNN autotuner on CUDA)."""
        return True

    # the config keys whose sum is total_steps (named when a run would train none)
    steps_keys: tuple[str, ...] = ("schedule.stage1_steps", "schedule.stage2_steps")

    @property
    def total_steps(self) -> int:
        return self.cfg.total_steps

    @abc.abstractmethod
    def build_network(self, backbone_weights: str) -> nn.Module:
        """Every network of the task in one module with a `hparams` dict; `backbone_weights`
        initialises a pretrained part ("none" on resume and on a warm start: the checkpoint or
        `model.init_from` overwrites it)."""

    @abc.abstractmethod
    def network_from_hparams(self, hparams: dict[str, Any]) -> nn.Module:
        """The module `build_network` made, rebuilt from its saved `hparams` (random init)."""

    def backbone_record(self, weights: str) -> dict[str, Any]:
        return backbone_record(weights)

    def prepare_model(self, net: nn.Module, runtime: Runtime) -> nn.Module:
        """Move `net` to the device; return what computes its forward (net or DDP wrapper)."""
        return runtime.prepare(net, self.compile_modules, self.ddp_ignore)

    @abc.abstractmethod
    def make_optimizers(self, net: nn.Module) -> Any:
        """Optimisers over `net`'s parameters (after it is on its device)."""

    def learning_rates(self, step: int) -> dict[str, float]:
        """{optimiser name: learning rate} at `step`; {} keeps the optimisers' own."""
        return {}

    def set_learning_rates(self, opt: Any, step: int) -> dict[str, float]:
        lrs = self.learning_rates(step)
        for name, o in opt.as_dict().items():
            if name in lrs:
                for group in o.param_groups:
                    group["lr"] = lrs[name]
        return lrs

    def stage(self, step: int) -> int:
        return 1

    # ------------------------------------------------------------------ data
    @abc.abstractmethod
    def open_data(self, data_dir: Path, cache_dir: str | os.PathLike | None, runtime: Runtime,
                  progress: bool) -> Any:
        """Whatever the loader reads (opened once per run, on every rank)."""

    @abc.abstractmethod
    def make_loader(self, data: Any, runtime: Runtime, epoch: int, index: int) -> Iterable:
        """Endless raw batches of this rank, from batch `index` of epoch `epoch` on."""

    @abc.abstractmethod
    def prepare_batch(self, raw: Any, runtime: Runtime) -> Any:
        """A raw batch -> the batch `train_step` takes, on the runtime's device."""

    def data_position(self, batch: Any) -> dict[str, int]:
        """Where the batch after `batch` starts: {"epoch", "index"} (saved for resume)."""
        return {"epoch": batch.epoch, "index": batch.index + 1}

    def batch_size(self, batch: Any) -> int:
        """Samples in the batch (objects or images), for samples_per_s."""
        return batch.num_objects

    def run_info(self) -> dict[str, Any]:
        """What the task learned from its data in `open_data` that the checkpoint and the run's
        summary record (e.g. SeGAN on data without appearance: {"painter_trained": False})."""
        return {}

    # ------------------------------------------------------------------ step, logs, export
    @abc.abstractmethod
    def train_step(self, step: int, model: nn.Module, net: nn.Module, batch: Any, opt: Any,
                   runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One optimisation step: (detached losses for logging, outputs for the grid)."""

    def make_grid(self, out: dict[str, torch.Tensor], batch: Any) -> np.ndarray | None:
        """An (H, W, 3) uint8 picture of the step for RUN/grids, or None."""
        return None

    def export(self, net: nn.Module, path: Path, config: dict[str, Any], step: int,
               backbone_init: dict[str, Any]) -> Path:
        """Inference weights (training-only networks left out) with their config."""
        return export_safetensors(net, path, config, step, backbone_init,
                                  exclude=self.export_exclude)


class ObjectTask(Task):
    """An object-level task: batches of K object crops from the decoded cache (segan.train.data).

    `needs_appearance`: the task trains on the full objects' appearance (a painter), so every
    object of the split must have one. `uses_visible_union`: its network takes each image's
    union of S_V (`Batch.visible_union`), so batches carry it.
    """

    needs_appearance: bool = True
    uses_visible_union: bool = False

    def backbone_record(self, weights: str) -> dict[str, Any]:
        return backbone_record(weights, self.cfg.model.backbone)  # the segmentor's trunk

    def open_data(self, data_dir: Path, cache_dir: str | os.PathLike | None, runtime: Runtime,
                  progress: bool) -> AmodalCache:
        # local rank 0 of each node builds the decoded cache once (a shared file system gets
        # one copy: a second finished build is discarded), the other ranks wait for it
        d = self.cfg.data
        cache_args = (data_dir, d.train_split, d.image_size, d.expand_max, cache_dir)
        builder = runtime.dist.local_rank == 0
        if builder:
            cache = open_cache(*cache_args, workers=d.cache_workers,
                               progress=progress and runtime.is_main,
                               visible_input=d.visible_input,
                               amodal_boxes=d.amodal_box_share > 0)
        distributed.barrier()
        if not builder:
            cache = open_cache(*cache_args, build=False, visible_input=d.visible_input,
                               amodal_boxes=d.amodal_box_share > 0)
        if self.needs_appearance and not cache.has_appearance.all():
            raise ValueError(f"{int((~cache.has_appearance).sum())} objects of split "
                             f"{d.train_split!r} have no appearance_file: the painter's target")
        return cache

    def make_loader(self, data: AmodalCache, runtime: Runtime, epoch: int, index: int
                    ) -> torch.utils.data.DataLoader:
        d, seed = self.cfg.data, self.cfg.run.seed
        sampler = ObjectBatchSampler(data.obj_start, d.batch_objects, d.objects_per_image, seed,
                                     runtime.dist.rank, runtime.dist.world_size, epoch, index,
                                     fixed_images=d.fixed_images)
        return make_loader(ObjectBatches(data, d, seed, train=True,
                                         with_union=self.uses_visible_union),
                           sampler, d.num_workers, d.prefetch_factor,
                           pin_memory=runtime.device.type == "cuda")

    def prepare_batch(self, raw: dict, runtime: Runtime) -> Batch:
        m = self.cfg.model
        return prepare_batch(raw, runtime.device, self.cfg.data, m.mask_size, m.crop_size,
                             runtime.channels_last)
