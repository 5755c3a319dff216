"""Reading the perceptual metrics' weights files (the user's own: none are bundled or
downloaded) and checking a state dict against the network it is for."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segan.weights_io import load_safetensors, load_torch


class WeightsError(ValueError):
    """A weights file that is not what the metric needs (names the file and what is wrong)."""


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict (name -> tensor) from a .pth/.pt (torch.load, weights_only) or .safetensors
    file, on the CPU. Raises FileNotFoundError / WeightsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":

            sd: Any = load_safetensors(path)
        else:
            sd = load_torch(path)
    except Exception as e:  # a truncated or foreign file: say which
        raise WeightsError(f"{path}: cannot be read as a PyTorch state dict: {e}") from e
    if not isinstance(sd, dict) or not sd or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise WeightsError(f"{path}: expected a state dict (a dict of parameter name -> tensor), "
                           f"got {type(sd).__name__}")
    return sd


def check_state_dict(sd: dict[str, torch.Tensor], expected: dict[str, torch.Size],
                      path: Path, what: str, ignore: Sequence[str] = ()) -> None:
    """Raise WeightsError naming `path` and `what` when `sd` lacks a key of `expected`, has a
    wrong shape, or has keys that neither `expected` nor the prefixes `ignore` explain.
    BatchNorm's ``num_batches_tracked`` may be absent (files saved by old PyTorch lack it)."""
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    shapes = [f"{k}: {tuple(sd[k].shape)} instead of {tuple(s)}" for k, s in expected.items()
              if k in sd and sd[k].shape != s]
    unexpected = [k for k in sd if k not in expected and not k.startswith(tuple(ignore))]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_some(missing)})")
    if shapes:
        problems.append(f"wrong shapes ({_some(shapes, '; ')})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_some(unexpected)})")
    if problems:
        raise WeightsError(f"{path} is not {what}: {'; '.join(problems)}")


def _some(items: Sequence[str], sep: str = ", ", n: int = 5) -> str:
    return sep.join(items[:n]) + (f"{sep}..." if len(items) > n else "")


def load_checked(module: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """Load an already checked state dict; absent num_batches_tracked keep their value."""
    own = module.state_dict()
    own.update({k: v.to(own[k].dtype) for k, v in sd.items() if k in own})
    module.load_state_dict(own, strict=True)


def file_identity(path: Path, kind: str) -> dict[str, Any]:
    from segan.data.atomic import file_sha256

    return {"path": str(path), "kind": kind, "sha256": file_sha256(path)}
