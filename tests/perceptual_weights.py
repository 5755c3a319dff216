"""Randomly initialised stand-ins for the FID and LPIPS weight files, written in the real files'
formats (same state-dict keys and shapes), for the tests: no real weights exist here.

Weights are drawn from a seeded generator with He scaling (so activations stay O(1) through the
deep networks in eval mode); unused classifier tensors are zero-stride views, which keeps their
shapes in the file at almost no size.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision
from torchvision.models import inception as tv_inception

LPIPS_CHANNELS = (64, 192, 384, 256, 256)


def _randomise(sd: dict[str, torch.Tensor], seed: int, unused: tuple[str, ...] = ()
               ) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in sd.items():
        if k.startswith(unused):
            out[k] = torch.zeros((), dtype=v.dtype).expand(v.shape)  # shape only
        elif v.ndim == 4 or (v.ndim == 2 and k.endswith("weight")):  # conv / linear weight
            fan_in = math.prod(v.shape[1:])
            out[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif k.endswith("running_var"):
            out[k] = torch.ones_like(v)
        elif k.endswith("running_mean"):
            out[k] = torch.zeros_like(v)
        elif k.endswith("num_batches_tracked"):
            out[k] = v.clone()
        elif k.endswith("bn.weight"):
            out[k] = torch.ones_like(v)
        else:  # biases
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
    return out


def alexnet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's AlexNet state dict (alexnet-owt-7be5be79.pth: features.*, classifier.*)."""
    return _randomise(torchvision.models.alexnet(weights=None).state_dict(), seed,
                      unused=("classifier.",))


def lpips_lin_state_dict(seed: int = 1) -> dict[str, torch.Tensor]:
    """The lpips package's weights/v0.1/alex.pth: lin{i}.model.1.weight, (1, C, 1, 1), >= 0."""
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand((1, c, 1, 1), generator=g)
            for i, c in enumerate(LPIPS_CHANNELS)}


def inception_state_dict(variant: str, seed: int = 2, num_batches_tracked: bool = True
                         ) -> dict[str, torch.Tensor]:
    """pytorch-fid's pt_inception-2015-12-05-6726825d.pth (1008 classes, no AuxLogits) or
    torchvision's inception_v3_google (1000 classes, AuxLogits)."""
    if variant == "pytorch-fid":
        net = tv_inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    else:
        net = tv_inception.Inception3(num_classes=1000, aux_logits=True, init_weights=False)
    sd = _randomise(net.state_dict(), seed, unused=("fc.", "AuxLogits."))
    if not num_batches_tracked:  # as a file saved by an old PyTorch
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    return sd


def write_lpips_files(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """alexnet-owt-7be5be79.pth and alex.pth in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    alex, lin = folder / "alexnet-owt-7be5be79.pth", folder / "alex.pth"
    torch.save(alexnet_state_dict(seed), alex)
    torch.save(lpips_lin_state_dict(seed + 1), lin)
    return alex, lin


def write_inception_file(path: Path, variant: str = "pytorch-fid", seed: int = 2,
                         num_batches_tracked: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(inception_state_dict(variant, seed, num_batches_tracked), path)
    return path
