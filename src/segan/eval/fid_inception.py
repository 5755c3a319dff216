"""The FID's Inception-v3 pool3 features (2048-d): pytorch-fid's port of the TensorFlow FID
graph, or torchvision's Inception-v3 (labelled, not comparable with published FIDs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

from segan.eval.metric_weights import (
    WeightsError,
    check_state_dict,
    file_identity,
    load_checked,
    load_state_dict_file,
)

FID_SIZE = 299
FID_DIMS = 2048

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
TORCHVISION_INCEPTION_FILE = "inception_v3_google-*.pth"


# pytorch-fid's port of the TensorFlow FID graph differs from torchvision's Inception-v3 in its
# pooling branches: TF's average pool leaves padded zeros out of the average (Mixed_5b-d,
# Mixed_6b-e, Mixed_7b), and the last block (Mixed_7c) max-pools instead.


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv_inception.InceptionA):
    """Mixed_5b-d of the TF FID Inception: TF-style average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionC(tv_inception.InceptionC):
    """Mixed_6b-e of the TF FID Inception: TF-style average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = conv(b7d)
        return [self.branch1x1(x), b7, b7d, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionE(tv_inception.InceptionE):
    """Mixed_7b (pool "avg": TF-style average pool) and Mixed_7c (pool "max") of the TF FID
    Inception."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be avg or max, got {pool!r}")
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        pooled = (_tf_avg_pool(x) if self.pool == "avg"
                  else F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
        return [self.branch1x1(x), b3, b3d, self.branch_pool(pooled)]


_INCEPTION_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c")
FID_VARIANTS = {
    "pytorch-fid": "FID (TF FID Inception of pytorch-fid, pool3)",
    "torchvision": "FID (torchvision Inception; not comparable with published FIDs)",
}


class InceptionPool3(nn.Module):
    """Inception-v3 up to the 2048-d pool3 features, as FID uses it.

    variant "pytorch-fid": the TF FID network (patched blocks above); "torchvision": torchvision's
    Inception-v3 unchanged. forward(x): (N, 3, H, W) float RGB in [0, 1] -> (N, 2048) float32:
    resized to 299 x 299 (bilinear, align_corners=False), scaled to [-1, 1], global average pool.
    """

    def __init__(self, variant: str) -> None:
        super().__init__()
        if variant not in FID_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(FID_VARIANTS)}, got {variant!r}")
        self.variant = variant
        net = tv_inception.Inception3(num_classes=1008 if variant == "pytorch-fid" else 1000,
                                      aux_logits=False, init_weights=False)
        if variant == "pytorch-fid":
            net.Mixed_5b = FIDInceptionA(192, pool_features=32)
            net.Mixed_5c = FIDInceptionA(256, pool_features=64)
            net.Mixed_5d = FIDInceptionA(288, pool_features=64)
            net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
            net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
            net.Mixed_7b = FIDInceptionE(1280, pool="avg")
            net.Mixed_7c = FIDInceptionE(2048, pool="max")
        for name in _INCEPTION_BLOCKS:
            self.add_module(name, getattr(net, name))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(FID_SIZE, FID_SIZE), mode="bilinear",
                          align_corners=False)
        x = 2 * x - 1
        for name in _INCEPTION_BLOCKS:
            x = getattr(self, name)(x)
        return x.mean((2, 3))  # adaptive average pool to 1 x 1


def load_fid_inception(path: str | os.PathLike, device: str | torch.device = "cpu"
                       ) -> tuple[InceptionPool3, dict[str, Any]]:
    """The FID network from a local file, and its identity {"files", "variant", "label"}.

    The variant is told by the classifier: 1008 classes = pytorch-fid's TF FID Inception
    (``pt_inception-2015-12-05-6726825d.pth``), 1000 = torchvision's ``inception_v3_google``
    (its AuxLogits and fc are not used). Raises WeightsError naming the file and what was
    expected.
    """
    path = Path(path)
    sd = load_state_dict_file(path)
    expected_files = (f"pytorch-fid's {PYTORCH_FID_FILE} (fc.weight 1008 x 2048) or "
                      f"torchvision's {TORCHVISION_INCEPTION_FILE} (fc.weight 1000 x 2048)")
    fc = sd.get("fc.weight")
    if fc is None or fc.ndim != 2 or fc.shape[0] not in (1000, 1008):
        got = "no fc.weight" if fc is None else f"fc.weight of shape {tuple(fc.shape)}"
        raise WeightsError(f"{path} is not an Inception-v3 state dict for FID: expected "
                           f"{expected_files}; it has {got} (keys start "
                           f"{', '.join(list(sd)[:4])})")
    variant = "pytorch-fid" if fc.shape[0] == 1008 else "torchvision"
    net = InceptionPool3(variant)
    what = (f"pytorch-fid's TF FID Inception ({PYTORCH_FID_FILE})" if variant == "pytorch-fid"
            else f"torchvision's Inception-v3 ({TORCHVISION_INCEPTION_FILE})")
    check_state_dict(sd, dict((k, v.shape) for k, v in net.state_dict().items()), path, what,
                      ignore=("fc.", "AuxLogits."))
    load_checked(net, {k: v for k, v in sd.items() if not k.startswith(("fc.", "AuxLogits."))})
    return net.to(device), {"files": [file_identity(path, variant)], "variant": variant,
                            "label": FID_VARIANTS[variant]}
