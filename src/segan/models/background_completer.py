"""The background completer of scene de-occlusion (issue 17; not in the paper).

When objects are removed from an image, the pixels they covered that no other object takes
belong to the room: walls, floor, furniture that is not annotated. The generator renders the
room shell alone for the de-occlusion views (`segan generate --deocclusion SHARE`,
``images[].background_file``), so that part has an exact target. This network learns it: given
the image with a hole (the removed objects' visible pixels) it predicts the room shell there.

A small U-Net: the image with the hole blanked and the hole mask in (4 channels), ``depth``
stride-2 stages of ``width`` x 2^i channels (at most 8 x width), a bottleneck of dilated
residual convolutions (dilations 2, 4, 8: the receptive field reaches across a hole of a few
tens of pixels at 256 x 256), and a decoder that upsamples and concatenates the encoder's
skips back to the input resolution. Training (task ``background_completer``,
`segan.train.completer_task`) scores the L1 inside the hole only; the prediction outside it is
unused (`composite`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation,
                                   dilation=dilation),
                         nn.GroupNorm(min(8, cout), cout), nn.ELU(inplace=True))


class _DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, dilation=dilation),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x + self.body(x))


class BackgroundCompleter(nn.Module):
    """(image, hole) -> the room shell's RGB.

    image: (B, 3, H, W) float RGB in [0, 1] (values inside the hole are ignored: blanked here);
    hole: (B, 1, H, W) float in {0, 1}, 1 where the background is to be predicted. H and W
    must be multiples of 2^depth. Returns (B, 3, H, W) float RGB in [0, 1] (a sigmoid), over the
    whole image; use `composite` to keep the input outside the hole.
    """

    def __init__(self, width: int = 32, depth: int = 4, dilations: tuple[int, ...] = (2, 4, 8)):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got {width}, {depth}")
        self.hparams: dict[str, Any] = {"width": int(width), "depth": int(depth),
                                        "dilations": [int(d) for d in dilations]}
        self.depth = depth
        widths = [min(width * 2 ** i, 8 * width) for i in range(depth + 1)]
        self.stem = _conv(4, widths[0])
        self.down = nn.ModuleList(_conv(widths[i], widths[i + 1], stride=2)
                                  for i in range(depth))
        self.middle = nn.Sequential(*(_DilatedResidual(widths[-1], d) for d in dilations))
        self.up = nn.ModuleList(_conv(widths[i + 1] + widths[i], widths[i])
                                for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        B, C, H, W = image.shape
        f = 2 ** self.depth
        if C != 3 or hole.shape != (B, 1, H, W):
            raise ValueError(f"need image (B, 3, H, W) and hole (B, 1, H, W), got "
                             f"{tuple(image.shape)} and {tuple(hole.shape)}")
        if H % f or W % f:
            raise ValueError(f"image size {H}x{W} must be a multiple of 2^depth = {f}")
        hole = hole.to(image.dtype)
        x = self.stem(torch.cat([image * (1 - hole), hole], dim=1))
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.middle(x)
        for up, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = up(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.head(x))


def composite(image: torch.Tensor, hole: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """The input outside the hole, the prediction inside: (B, 3, H, W) in [0, 1]."""
    hole = hole.to(image.dtype)
    return image * (1 - hole) + predicted * hole
