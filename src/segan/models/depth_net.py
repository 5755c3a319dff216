"""The single-image depth network of the depth-layering baseline (paper Table 5, method [10]).

The paper compares its occlusion reasoning with a network that "infers depth map from a single
image" (its reference [10], Eigen et al.'s multi-scale depth network), then orders each pair of
objects by the mean predicted depth inside their visible masks (`segan.baselines.depth_net`).
This is that baseline's network, built small: a ResNet-18 encoder (the paper's backbone family;
random init, or torchvision's ImageNet file from the torch hub cache) and a U-Net decoder
(upsample, concatenate the encoder's skip, two 3x3 conv + BatchNorm + ReLU) back to the input
resolution. It predicts log depth (log metres) per pixel.

Its loss is Eigen et al.'s scale-invariant log error (`segan.losses.scale_invariant_log_loss`),
the loss of the family the paper cites; ``depth.loss: l1_log`` trains with the L1 of log depth
instead.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet18

from segan.weights_io import load_torch


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True))


class DepthNet(nn.Module):
    """RGB (B, 3, H, W), normalised -> log depth (B, 1, H, W) in log metres.

    H and W must be multiples of 32 (ResNet-18's stride). decoder_width: channels of the
    deepest decoder stage (halved at each finer stage, at least 16). init_log_depth: the
    output bias, so training starts near a plausible depth (log 3 m by default).
    """

    def __init__(self, decoder_width: int = 256, init_log_depth: float = 1.1,
                 backbone_weights: str = "none"):
        super().__init__()
        self.hparams: dict[str, Any] = {"decoder_width": decoder_width,
                                        "init_log_depth": float(init_log_depth)}
        trunk = resnet18(weights=None)
        if backbone_weights != "none":
            from .segmentor import imagenet_cache_path

            path = imagenet_cache_path() if backbone_weights == "imagenet" else backbone_weights
            if not os.path.isfile(path):
                raise FileNotFoundError(f"backbone_weights={backbone_weights!r}: no file at "
                                        f"{path} (nothing is downloaded; use 'none')")
            state = load_torch(path)
            state = {k.removeprefix("backbone."): v for k, v in state.items()}
            missing, unexpected = trunk.load_state_dict(
                {k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
            bad = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
            if bad:
                raise ValueError(f"backbone_weights={backbone_weights!r}: not a torchvision "
                                 f"ResNet-18 state dict (mismatched keys: {bad[:5]})")
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu)  # /2, 64
        self.pool = trunk.maxpool
        self.layer1, self.layer2 = trunk.layer1, trunk.layer2  # /4 64, /8 128
        self.layer3, self.layer4 = trunk.layer3, trunk.layer4  # /16 256, /32 512
        skips = (256, 128, 64, 64)  # layer3, layer2, layer1, stem
        widths = [max(16, decoder_width >> i) for i in range(5)]
        cin = 512
        self.up = nn.ModuleList()
        for skip, w in zip(skips, widths[:4], strict=True):
            self.up.append(_block(cin + skip, w))
            cin = w
        self.final = _block(cin, widths[4])  # at full resolution, after the last upsampling
        self.head = nn.Conv2d(widths[4], 1, 3, padding=1)
        nn.init.normal_(self.head.weight, std=1e-3)  # small, not 0: gradients reach the trunk
        nn.init.constant_(self.head.bias, init_log_depth)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        H, W = images.shape[-2:]
        if H % 32 or W % 32:
            raise ValueError(f"DepthNet needs H and W divisible by 32, got {H}x{W}")
        s0 = self.stem(images)
        s1 = self.layer1(self.pool(s0))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        x = self.layer4(s3)
        for block, skip in zip(self.up, (s3, s2, s1, s0), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        return self.head(self.final(x))
