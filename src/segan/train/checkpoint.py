"""Checkpoints (resume exactly) and exported inference weights (safetensors).

A checkpoint is a versioned dict, loadable with `torch.load(weights_only=True)`:

    version          CHECKPOINT_VERSION
    config           the resolved TrainConfig as a dict (rebuilds the run; its `task` names the
                     task, segan.train.registry; "segan" where a config has none)
    model_hparams    the task network's hparams (SeGAN.hparams for SeGAN; rebuilds it)
    backbone_init    how the segmentor's backbone was initialised (weights, path, sha256)
    model            the task network's state dict (SeGAN: segmentor, generator, discriminator)
    optimizers       {name: state dict} per optimiser (SeGAN: segmentor, generator, discriminator)
    scaler           GradScaler state (fp16 only; empty otherwise)
    step             optimisation steps done
    rng              one entry per rank: python, numpy, torch CPU and CUDA generator states
    data             {"epoch", "index"}: the next batch of the data order (segan.train.data)
    world_size       processes of the run that wrote it

Files are RUN/checkpoints/ckpt-<step>.pt, written under a temporary name, fsynced and renamed,
so a name that looks whole is whole; temporaries of a killed run are ignored and cleaned up.

RUN/model.safetensors holds the inference networks (SeGAN: segmentor and generator; the
discriminator is training-only; other tasks: see their `export_exclude`) with metadata
{"format", "version", "hparams", "config", "step", "backbone_init"} as JSON strings, so
`segan.checkpoint` reads them (and checkpoints): `load_segan`, `load_exported` (SeGAN) or
`segan.eval.methods.load_run` (any task) needs nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.checkpoint import EXPORT_FORMAT, EXPORT_VERSION
from segan.data.atomic import TMP_MARK, write_bytes_atomic

_CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"ckpt-{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """torch.save to a temporary sibling, fsync, atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Keep the newest `keep` checkpoints; also remove temporaries a killed writer left."""
    for _, p in list_checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)
    folder = checkpoint_dir(run_dir)
    if folder.is_dir():
        for p in folder.iterdir():
            if TMP_MARK in p.name:
                p.unlink(missing_ok=True)


# --- random generator states (plain types, so weights_only loading accepts them) ---


def rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


# --- exported inference weights ---


def export_safetensors(net: nn.Module, path: str | os.PathLike, config: dict[str, Any],
                       step: int, backbone_init: dict[str, Any] | None = None,
                       exclude: Sequence[str] = ("discriminator",)) -> Path:
    """A task's inference weights and their config in the metadata (atomic write): every
    tensor of `net`'s state dict but those of the training-only submodules `exclude` (SeGAN:
    segmentor + generator, the discriminator left out). `net.hparams` rebuilds `net`."""
    from safetensors.torch import save

    skip = tuple(f"{name}." for name in exclude)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()
               if not k.startswith(skip)}
    metadata = {
        "format": EXPORT_FORMAT, "version": str(EXPORT_VERSION),
        "hparams": json.dumps(net.hparams), "config": json.dumps(config), "step": str(step),
        "backbone_init": json.dumps(backbone_init or {}),
    }
    write_bytes_atomic(path, save(tensors, metadata=metadata))
    return Path(path)


