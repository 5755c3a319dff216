"""LPIPS v0.1 (Zhang et al. 2018) on an AlexNet trunk, from torchvision's AlexNet weights and
the ``lpips`` package's linear layers (or a whole ``lpips.LPIPS`` state dict)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from segan.eval.metric_weights import (
    WeightsError,
    check_state_dict,
    file_identity,
    load_checked,
    load_state_dict_file,
)

# LPIPS v0.1 ScalingLayer constants (lpips/lpips.py): x -> (x - shift) / scale on [-1, 1] input.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_CHANNELS = (64, 192, 384, 256, 256)  # AlexNet relu1..relu5
# AlexNet `features` indices ending each of the 5 LPIPS slices (after relu1..relu5).
_ALEX_SLICE_ENDS = (2, 5, 8, 10, 12)
_ALEX_CONVS = (0, 3, 6, 8, 10)
LPIPS_MIN_SIDE = 32  # AlexNet's pools need at least 31 px; smaller crops are resized up


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_LIN_FILE = "alex.pth (lpips package, weights/v0.1)"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


class AlexNetLPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk (`lpips.LPIPS(net="alex")` in eval mode).

    forward(x0, x1): two (N, 3, H, W) float RGB batches in [0, 1] -> (N,) distances (0 for equal
    images, symmetric). Crops smaller than `LPIPS_MIN_SIDE` are resized up (bilinear) first.
    """

    def __init__(self) -> None:
        super().__init__()
        features = torchvision.models.alexnet(weights=None).features
        # features[:12]: conv/ReLU up to relu5 (the final max-pool is not used)
        self.features = nn.Sequential(*list(features.children())[:12])
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # each slice's output is kept, so no in-place ReLU
        self.lins = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, c, 1, 1), requires_grad=False) for c in LPIPS_CHANNELS])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def relu_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 5 ReLU outputs for [0, 1] input (scaled to [-1, 1], then ScalingLayer)."""
        if min(x.shape[-2:]) < LPIPS_MIN_SIDE:
            h, w = x.shape[-2:]
            k = LPIPS_MIN_SIDE / min(h, w)
            x = F.interpolate(x, size=(math.ceil(h * k), math.ceil(w * k)), mode="bilinear",
                              align_corners=False)
        h = ((2 * x - 1) - self.shift) / self.scale
        outs, start = [], 0
        for end in _ALEX_SLICE_ENDS:
            for i in range(start, end):
                h = self.features[i](h)
            outs.append(h)
            start = end
        return outs

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(f"need two (N, 3, H, W) batches of one shape, got "
                             f"{tuple(x0.shape)}, {tuple(x1.shape)}")
        n = x0.shape[0]
        f = self.relu_features(torch.cat([x0, x1]).float())
        dist = x0.new_zeros(n, dtype=torch.float32)
        for feat, w in zip(f, self.lins, strict=True):
            # unit-normalise each position's channel vector (lpips.normalize_tensor, eps 1e-10)
            feat = feat / (feat.square().sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (feat[:n] - feat[n:]).square()
            dist = dist + (diff * w).sum(1).mean((1, 2))  # 1x1 conv by lin_l, spatial mean
        return dist


def _alexnet_expected(net: AlexNetLPIPS) -> dict[str, torch.Size]:
    return {f"features.{i}.{p}": net.features[i].state_dict()[p].shape
            for i in _ALEX_CONVS for p in ("weight", "bias")}


def _lpips_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"--lpips-weights folder {p} holds no weights file "
                                        f"({', '.join(_WEIGHT_SUFFIXES)}): expected {ALEXNET_FILE}"
                                        f" and {LPIPS_LIN_FILE}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"--lpips-weights {p} does not exist")
    return files


def load_lpips(paths: str | os.PathLike | Sequence[str | os.PathLike],
               device: str | torch.device = "cpu") -> tuple[AlexNetLPIPS, dict[str, Any]]:
    """The LPIPS network from local files, and their identity {"files": [...], "label"}.

    paths: files and/or folders (module docstring): each file is recognised by its keys as the
    AlexNet state dict (``features.*``), the linear layers (``lin*.model.1.weight``) or a whole
    LPIPS state dict; both parts must be found exactly once. Raises WeightsError naming the
    file and what was expected.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    net = AlexNetLPIPS()
    alex_expected = _alexnet_expected(net)
    lin_expected = {f"lin{i}.model.1.weight": torch.Size((1, c, 1, 1))
                    for i, c in enumerate(LPIPS_CHANNELS)}
    trunk: tuple[Path, dict[str, torch.Tensor]] | None = None
    lins: tuple[Path, dict[str, torch.Tensor]] | None = None
    identity: list[dict[str, Any]] = []
    for path in _lpips_files(paths):
        sd = load_state_dict_file(path)
        parts: list[str] = []
        if any(k.startswith("net.slice") for k in sd):  # a whole lpips.LPIPS state dict
            alex = {f"features.{k.split('.')[2]}.{k.split('.')[3]}": v for k, v in sd.items()
                    if k.startswith("net.slice")}
            check_state_dict(alex, alex_expected, path,
                              "an LPIPS AlexNet state dict (net.slice{k}.{i}.weight/bias)")
            parts.append("alexnet")
            trunk = _set_once(trunk, (path, alex), "the AlexNet weights")
        elif any(k.startswith("features.") for k in sd):
            check_state_dict(sd, alex_expected, path,
                              f"torchvision's AlexNet ImageNet state dict ({ALEXNET_FILE})",
                              ignore=("classifier.",))
            parts.append("alexnet")
            trunk = _set_once(trunk, (path, sd), "the AlexNet weights")
        if any(k.startswith("lin") for k in sd):
            lin = {k: v for k, v in sd.items() if k.startswith("lin")}
            check_state_dict(lin, lin_expected, path,
                              f"the LPIPS v0.1 AlexNet linear layers ({LPIPS_LIN_FILE}: "
                              "lin0..lin4.model.1.weight of shape (1, C, 1, 1), C = "
                              f"{', '.join(map(str, LPIPS_CHANNELS))})")
            parts.append("lpips-linear")
            lins = _set_once(lins, (path, lin), "the LPIPS linear layers")
        if not parts:
            raise WeightsError(
                f"{path} is neither torchvision's AlexNet state dict ({ALEXNET_FILE}: features.*) "
                f"nor the LPIPS linear layers ({LPIPS_LIN_FILE}: lin0..lin4.model.1.weight); its "
                f"keys start {', '.join(list(sd)[:4])}")
        identity.append(file_identity(path, "+".join(parts)))
    if trunk is None or lins is None:
        lacking = ([f"torchvision's AlexNet state dict ({ALEXNET_FILE})"] if trunk is None
                   else []) + ([f"the LPIPS linear layers ({LPIPS_LIN_FILE})"] if lins is None
                               else [])
        raise WeightsError(f"--lpips-weights {', '.join(map(str, paths))}: no "
                           f"{' and no '.join(lacking)} among "
                           f"{', '.join(i['path'] for i in identity)}")
    load_checked(net.features, {k.removeprefix("features."): v for k, v in trunk[1].items()
                                 if k in alex_expected})
    for i, w in enumerate(net.lins):
        w.data.copy_(lins[1][f"lin{i}.model.1.weight"].float())
    return net.to(device), {"files": identity, "label": "LPIPS (AlexNet, v0.1)"}


def _set_once(current: Any, new: Any, what: str) -> Any:
    if current is not None:
        raise WeightsError(f"{what} are given twice: {current[0]} and {new[0]}")
    return new
