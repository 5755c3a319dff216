"""Training: typed configs, a decoded data cache, one loop with a task, checkpoints.

The config's `task` (default "segan") picks what is trained (segan.train.registry).

    from segan.train import resolve_config, training_loop
    cfg = resolve_config("configs/tiny.yaml", ["run.seed=1"], "runs/tiny")
    training_loop(cfg, "data/tiny", "runs/tiny")

Command line: `segan train ...`, or `torchrun --nproc_per_node N -m segan.train ...` (DDP).
"""

from segan.checkpoint import load_checkpoint, load_exported, read_export_metadata
from segan.config import ConfigError, TrainConfig, apply_overrides, load_config

from .checkpoint import export_safetensors
from .loop import build_segan, resolve_config, training_loop
from .registry import ObjectTask, Task, build_task, get_task, register_task, task_names

__all__ = [
    "ConfigError",
    "ObjectTask",
    "Task",
    "TrainConfig",
    "apply_overrides",
    "build_segan",
    "build_task",
    "export_safetensors",
    "get_task",
    "load_checkpoint",
    "load_config",
    "load_exported",
    "read_export_metadata",
    "register_task",
    "resolve_config",
    "task_names",
    "training_loop",
]
