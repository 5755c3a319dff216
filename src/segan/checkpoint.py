"""Reading what training saved, and rebuilding the network from it (no training code needed).

Three kinds of file hold a model (`segan.train.checkpoint` writes the first two, `segan.bundle`
the third):

- a training checkpoint RUN/checkpoints/ckpt-<step>.pt: a versioned dict with the run's config,
  the network's hparams and its state dict (`load_checkpoint`);
- an export RUN/model.safetensors: the inference networks, with the config, hparams and step as
  JSON metadata (`read_export_metadata`); a run folder means this file;
- a bundle (a manifest .json and its safetensors shards).

`read_weights(checkpoint)` reads the first two (a run folder means its model.safetensors,
`resolve_weights_path`: the one rule for every task), `read_task_weights(path, task)` any of
the three (a bundle: `segan.bundle.read_bundle_weights`), as `SavedWeights`, whose `load_into`
is the one check that saved tensors fit a network. `load_network(checkpoint, device,
rebuild)` reads any of the three and rebuilds the network with `rebuild(config, hparams,
path)`; `load_segan` is that for SeGAN (the predictor's loader) and
`segan.eval.methods.load_run` for any training task (`segan.train.registry.rebuild_network`);
the detector's `segan.models.visible_segmenter.load_maskrcnn` reads with `read_weights` too,
and a warm start (`model.init_from`, `segan.train.loop.warm_start`) with `read_task_weights`.
Every loader returns the weights' identity {"path", "format", "step", "sha256"} for reports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    SavedWeights(Path(path), "safetensors", meta["step"], meta["config"], meta["hparams"],
                 load_safetensors(path)).load_into(net, SEGAN_TRAINING_ONLY,
                                                   "the architecture in its metadata")
    return net.to(device).eval(), meta


def resolve_weights_path(checkpoint: str | os.PathLike) -> Path:
    """A run folder -> its model.safetensors; a file -> itself (it must exist). The one rule
    for a run folder, every task's (SeGAN's, `load_run`'s, the detector's)."""
    path = Path(checkpoint)
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            ckpts = sorted((path / "checkpoints").glob("ckpt-*.pt"))
            newest = f" (its newest: {ckpts[-1]})" if ckpts else ""
            raise FileNotFoundError(f"{path} is a folder without model.safetensors: pass a run "
                                    f"folder, its model.safetensors or a checkpoint .pt{newest}")
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}")
    return path


@dataclass
class SavedWeights:
    """A network as a run saved it (`read_weights`, `read_task_weights`): its file,
    "safetensors" (an export), "checkpoint" (a training .pt) or "bundle" (its manifest), the
    step, the run's config and the network's hparams as saved (plain dicts), the state dict
    (an export's or bundle's lacks the training-only networks) and the run's record of its
    backbone initialisation ({} where none was saved)."""

    path: Path
    format: str
    step: int
    config: dict[str, Any]
    hparams: dict[str, Any]
    state: dict[str, torch.Tensor]
    backbone_init: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """{"path", "format", "step", "sha256"}: which weights a report used."""
        return {"path": str(self.path), "format": self.format, "step": self.step,
                "sha256": file_sha256(self.path)}

    def load_into(self, net: nn.Module, training_only: Sequence[str] = (),
                  what: str = "the architecture in its metadata") -> None:
        """The saved state into `net` (copies: fp16 tensors of a bundle become fp32; `what`
        the network is, for errors). An export or a bundle may lack the `training_only`
        submodules (they keep `net`'s weights); a checkpoint .pt holds every tensor. A
        missing or unexpected key or a tensor of another shape is a ValueError that names the
        file (and the first keys)."""
        skip = tuple(f"{n}." for n in training_only) if self.format != "checkpoint" else ()
        own = net.state_dict()
        reshaped = [f"{k} {tuple(v.shape)}, the network's {tuple(own[k].shape)}"
                    for k, v in self.state.items() if k in own and v.shape != own[k].shape]
        if reshaped:
            raise ValueError(f"{self.path}: weights do not fit {what}: tensors of another "
                             f"shape: {'; '.join(reshaped[:3])}")
        missing, unexpected = net.load_state_dict(self.state, strict=False)
        bad = [k for k in missing if not (skip and k.startswith(skip))] + list(unexpected)
        if bad:
            raise ValueError(f"{self.path}: weights do not match {what}: {bad[:5]}")


def read_weights(checkpoint: str | os.PathLike) -> SavedWeights:
    """What a run saved of its network, from a run folder (its model.safetensors:
    `resolve_weights_path`), an exported .safetensors or a training checkpoint .pt (version
    checked; a run with ``run.ema_decay`` gives its weight average, as its export). Bundles:
    `segan.bundle`."""
    path = resolve_weights_path(checkpoint)
    if path.suffix == ".safetensors":
        meta = read_export_metadata(path)
        return SavedWeights(path, "safetensors", int(meta["step"]), meta["config"],
                            meta["hparams"], load_safetensors(path), meta["backbone_init"])
    state = load_checkpoint(path)
    if not isinstance(state.get("model"), dict):
        raise ValueError(f"{path}: a checkpoint without the network's state dict ('model')")
    model = state["model"]
    if state.get("ema"):  # run.ema_decay: the averaged weights, as the run exported them
        model = {**model, **state["ema"]["avg"]}
    return SavedWeights(path, "checkpoint", int(state.get("step", 0)), state.get("config") or {},
                        state.get("model_hparams") or {}, model,
                        state.get("backbone_init") or {})


def _names_bundle(path: Path) -> bool:
    """Whether `path` means a bundle: its manifest .json, or a folder holding one and no
    model.safetensors (a run folder means its export)."""
    from segan.bundle import is_bundle

    return (path.suffix == ".json" or (path.is_dir() and not (path / "model.safetensors")
                                       .exists())) and is_bundle(path)


def read_task_weights(path: str | os.PathLike, task: str) -> SavedWeights:
    """The saved network of training task `task`, from a run folder, an export or a checkpoint
    .pt (`read_weights`) or a bundle (its manifest or folder; `segan.bundle.read_bundle_weights`:
    its SeGAN for task "segan", its visible segmenter for another). A ValueError naming the
    file when the weights are another task's."""
    from segan.bundle import read_bundle_weights

    p = Path(path)
    saved = (read_bundle_weights(p, visible_segmenter=task != "segan") if _names_bundle(p)
             else read_weights(p))
    saved_task = saved.config.get("task", "segan")  # configs without `task` are SeGAN's
    if saved.config and saved_task != task:
        raise ValueError(f"{saved.path}: weights of task {saved_task!r}, not of task {task!r}")
    return saved


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
    from segan.bundle import load_bundle

    if _names_bundle(Path(checkpoint)):
        return load_bundle(checkpoint, device, rebuild)
    saved = read_weights(checkpoint)
    cfg = TrainConfig.from_dict(saved.config)
    net, training_only = rebuild(cfg, saved.hparams, saved.path)
    saved.load_into(net, training_only, what=f"the {cfg.task!r} architecture in its metadata")
    identity = saved.identity()
    del saved
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


def load_segmentor(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
                   ) -> tuple[SeGAN, dict[str, Any]]:
    """A SeGAN in eval mode whose segmentor is the saved one, for `SeGAN.segment` only (a
    distillation teacher, ``loss.distill_from``), and the identity of the weights. checkpoint:
    as `load_segan`'s, or a segmentor-only bundle (`segan export-bundle --segmentor-only`); the
    painter is the saved one where there is one, else left at its initialisation."""
    saved = read_task_weights(checkpoint, "segan")
    net = _segan_from_hparams(saved.hparams, saved.path)
    saved.load_into(net, (*SEGAN_TRAINING_ONLY, "generator"),
                    what="a SeGAN segmentor of the architecture in its metadata")
    return net.to(device).eval(), saved.identity()
