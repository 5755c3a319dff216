"""Reading what training saved, and rebuilding the network from it (no training code needed).

Three kinds of file hold a model (`segan.train.checkpoint` writes the first two, `segan.bundle`
the third):

- a training checkpoint RUN/checkpoints/ckpt-<step>.pt: a versioned dict with the run's config,
  the network's hparams and its state dict (`load_checkpoint`);
- an export RUN/model.safetensors: the inference networks, with the config, hparams and step as
  JSON metadata (`read_export_metadata`); a run folder means this file;
- a bundle (a manifest .json and its safetensors shards).

`load_network(checkpoint, device, rebuild)` reads any of them and rebuilds the network with
`rebuild(config, hparams, path)`; `load_segan` is that for SeGAN (the predictor's loader) and
`segan.eval.methods.load_run` for any training task (`segan.train.registry.rebuild_network`).
Every loader returns the weights' identity {"path", "format", "step", "sha256"} for reports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from segan.config import TrainConfig
from segan.data.atomic import file_sha256
from segan.models import SeGAN
from segan.weights_io import load_safetensors, load_torch, safetensors_metadata

CHECKPOINT_VERSION = 1
EXPORT_FORMAT = "segan-weights"
EXPORT_VERSION = 1
SEGAN_TRAINING_ONLY = ("discriminator",)  # SeGAN's networks left out of exports

# (config, hparams, path of the weights) -> (the network with random weights, the names of its
# training-only submodules, which an export or bundle may lack)
Rebuild = Callable[[TrainConfig, dict[str, Any], Path], tuple[nn.Module, Sequence[str]]]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """A training checkpoint .pt (`segan.train.checkpoint`), its version checked."""
    state = load_torch(path, map_location)
    version = state.get("version") if isinstance(state, dict) else None
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {version!r}, expected {CHECKPOINT_VERSION}")
    return state


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of an exported model.safetensors, its JSON fields decoded."""
    meta = safetensors_metadata(path)
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a {EXPORT_FORMAT} file (metadata format "
                         f"{meta.get('format')!r})")
    out: dict[str, Any] = dict(meta)
    for k in ("hparams", "config", "backbone_init"):
        out[k] = json.loads(meta.get(k, "{}"))
    out["step"] = int(meta.get("step", 0))
    return out


def load_exported(path: str | os.PathLike, device: str | torch.device = "cpu"
                  ) -> tuple[SeGAN, dict[str, Any]]:
    """A SeGAN built from the file alone (hparams from its metadata), in eval mode, with the
    metadata. Its discriminator keeps its initial weights (it is not exported)."""
    meta = read_export_metadata(path)
    task = meta["config"].get("task", "segan")
    if task != "segan":
        raise ValueError(f"{path}: weights of task {task!r}, not SeGAN: load them with "
                         "segan.eval.methods.load_run")
    net = _segan_from_hparams(meta["hparams"], path)
    missing, unexpected = net.load_state_dict(load_safetensors(path), strict=False)
    bad = [k for k in missing if not k.startswith("discriminator.")] + list(unexpected)
    if bad:
        raise ValueError(f"{path}: weights do not match the architecture in its metadata: "
                         f"{bad[:5]}")
    return net.to(device).eval(), meta


def resolve_weights_path(checkpoint: str | os.PathLike) -> Path:
    """A run folder -> its model.safetensors; a file -> itself (it must exist)."""
    path = Path(checkpoint)
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path} is a folder without model.safetensors: pass a run "
                                    "folder, its model.safetensors or a checkpoint .pt")
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}")
    return path


def rebuild_segan(cfg: TrainConfig, hparams: dict[str, Any], path: Path
                  ) -> tuple[SeGAN, Sequence[str]]:
    """`Rebuild` for SeGAN runs (task "segan"); a ValueError for another task's weights."""
    if cfg.task != "segan":
        raise ValueError(f"{path} is a run of task {cfg.task!r}, not SeGAN")
    return _segan_from_hparams(hparams, path), SEGAN_TRAINING_ONLY


def _segan_from_hparams(hparams: dict[str, Any], path: str | os.PathLike) -> SeGAN:
    try:
        return SeGAN.from_hparams(hparams)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def load_network(checkpoint: str | os.PathLike, device: str | torch.device, rebuild: Rebuild
                 ) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """A network from a run folder, its model.safetensors, a checkpoint .pt or a bundle
    (`segan.bundle`: its manifest .json or folder): (the network in eval mode on `device`, the
    run's config, its identity {"path", "format", "step", "sha256"}). `rebuild` makes the
    network from the saved config and hparams; an export may lack only the training-only
    networks `rebuild` names."""
    from segan.bundle import is_bundle, load_bundle

    p = Path(checkpoint)
    if (p.suffix == ".json" or (p.is_dir() and not (p / "model.safetensors").exists())) \
            and is_bundle(p):
        return load_bundle(p, device, rebuild)
    path = resolve_weights_path(checkpoint)
    if path.suffix == ".safetensors":
        meta = read_export_metadata(path)
        cfg = TrainConfig.from_dict(meta["config"])
        net, training_only = rebuild(cfg, meta["hparams"], path)
        missing, unexpected = net.load_state_dict(load_safetensors(path), strict=False)
        skip = tuple(f"{n}." for n in training_only)
        bad = [k for k in missing if not k.startswith(skip)] + list(unexpected)
        if bad:
            raise ValueError(f"{path}: weights do not match the {cfg.task!r} architecture in "
                             f"its metadata: {bad[:5]}")
        step, fmt = int(meta["step"]), "safetensors"
    else:
        state = load_checkpoint(path)
        cfg = TrainConfig.from_dict(state["config"])
        net, _ = rebuild(cfg, state["model_hparams"], path)
        net.load_state_dict(state["model"])
        step, fmt = int(state["step"]), "checkpoint"
        del state
    identity = {"path": str(path), "format": fmt, "step": step, "sha256": file_sha256(path)}
    return net.to(device).eval(), cfg, identity


def load_segan(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[SeGAN, TrainConfig, dict[str, Any]]:
    """A SeGAN in eval mode, its training config and the identity of the weights.

    checkpoint: a training checkpoint (.pt), an exported RUN/model.safetensors, a RUN folder
    (its model.safetensors) or a bundle. Identity: {"path", "format", "step", "sha256"}.
    Other tasks' runs: `segan.eval.methods.load_run`.
    """
    net, cfg, identity = load_network(checkpoint, device, rebuild_segan)
    assert isinstance(net, SeGAN)
    return net, cfg, identity
