"""Networks of the object-level baselines of the paper's Tables 1-2 (section 5.2).

All take the inputs SeGAN takes (images, S_V in the image frame, the expanded boxes) and work in
the same box frame, so one evaluation scores them like SeGAN.

- `Pix2Pix` [22]: SeGAN's painter (pix2pix U-Net + PatchGAN) without a segmentor. Input: only
  the visible pixels of the box (the crop with everything outside S_V blanked to 0, the
  normalised images' mean colour), plus S_V as a channel (`mask_channel`) so a black visible
  pixel differs from a blanked one. Output: the full object, RGB and (`predict_alpha`) its
  alpha = S_F over the box, in [-1, 1]; the alpha gives its Table 1 mask.
- `ContextEncoder` (Pathak et al. 2016) [37]: the same blanked crop (RGB only: the region to
  fill is everything outside S_V), an encoder-decoder through a 1 x 1 bottleneck (their released
  code's `nBottleneck` convolution in place of the paper's channel-wise FC), no skips; an
  unconditional global discriminator.
- `IBBE` (Li & Malik 2016, "Amodal instance segmentation") [27]: SeGAN's segmentor backbone
  (ResNet-18 over RGB + S_V), an amodal box regressed from the visible box in `iterations`
  steps (each step pools ROI features over the current box grown by `context` and predicts
  its corrections, as IBBE grows its box iteratively), then a heatmap head (the segmentor's
  FC to m x m) over the completed box.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn

from .crops import expand_boxes_per_side
from .discriminator import PatchDiscriminator
from .painter import UNetGenerator, init_pix2pix_weights
from .segan import crop_boxes, crop_object_masks
from .segmentor import Backbone, MaskFusion, Segmentor


def blanked_input(image_crops: torch.Tensor, visible_crops: torch.Tensor,
                  mask_channel: bool) -> torch.Tensor:
    """The visible pixels only: I ⊙ V (0 elsewhere), with V appended if `mask_channel`."""
    x = image_crops * visible_crops.to(image_crops.dtype)
    return torch.cat([x, visible_crops.to(x.dtype)], dim=1) if mask_channel else x


class Pix2Pix(nn.Module):
    """pix2pix on the visible pixels (module docstring): generator + PatchGAN discriminator.

    forward() returns generator_input (K, 3 or 4, c, c), painted (K, 3, c, c) in [-1, 1],
    alpha (K, 1, c, c) in [0, 1] when predict_alpha, output (the generator's raw (K, 3 or 4,
    c, c) output, what D judges), image_crop, visible_crop.
    """

    def __init__(self, crop_size: int = 256, num_downs: int = 8, ngf: int = 64,
                 dropout: float = 0.5, ndf: int = 64, n_disc_layers: int = 3,
                 mask_channel: bool = True, predict_alpha: bool = True):
        super().__init__()
        self.hparams = dict(crop_size=crop_size, num_downs=num_downs, ngf=ngf, dropout=dropout,
                            ndf=ndf, n_disc_layers=n_disc_layers, mask_channel=mask_channel,
                            predict_alpha=predict_alpha)
        self.crop_size = crop_size
        self.mask_channel, self.predict_alpha = mask_channel, predict_alpha
        in_ch, out_ch = 3 + int(mask_channel), 3 + int(predict_alpha)
        self.generator = UNetGenerator(in_ch, out_ch, num_downs, ngf, dropout)
        self.discriminator = PatchDiscriminator(in_ch, out_ch, ndf, n_disc_layers)

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        c = self.crop_size
        image_crops = crop_boxes(images, boxes, c)
        visible_crops = crop_object_masks(visible_masks, boxes, c)
        x = blanked_input(image_crops, visible_crops, self.mask_channel)
        y = self.generator(x)
        out = dict(generator_input=x, output=y, painted=y[:, :3], image_crop=image_crops,
                   visible_crop=visible_crops)
        if self.predict_alpha:
            out["alpha"] = (y[:, 3:4] + 1) / 2
        return out


def _down_convs(in_channels: int, nf: int, levels: int) -> tuple[list[nn.Module], int]:
    """`levels` 4x4 stride-2 convolutions (widths nf * min(2^i, 8); BatchNorm after the first,
    LeakyReLU(0.2) after each), shared by Context Encoder's encoder and its adversary; returns
    the layers and the last width."""
    layers: list[nn.Module] = []
    width = in_channels
    for i in range(levels):
        w = nf * min(2 ** i, 8)
        layers.append(nn.Conv2d(width, w, 4, 2, 1, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.LeakyReLU(0.2))
        width = w
    return layers, width


class ContextEncoderGenerator(nn.Module):
    """Pathak et al.'s encoder-decoder: 4x4 stride-2 convolutions from c x c down to 4 x 4
    (widths nef * min(2^i, 8), BatchNorm + LeakyReLU(0.2) after the first), a 4 x 4 valid
    convolution to a `bottleneck`-channel 1 x 1 code, then transposed convolutions back up
    (ngf * min(2^i, 8), BatchNorm + ReLU), Tanh output. No skip connections."""

    def __init__(self, crop_size: int = 128, in_channels: int = 3, out_channels: int = 3,
                 nef: int = 64, ngf: int = 64, bottleneck: int = 4000):
        super().__init__()
        levels = int(math.log2(crop_size)) - 2  # c -> 4 in `levels` halvings
        if 2 ** (levels + 2) != crop_size or levels < 1:
            raise ValueError(f"crop_size must be a power of two >= 8, got {crop_size}")
        enc, width = _down_convs(in_channels, nef, levels)
        enc += [nn.Conv2d(width, bottleneck, 4, 1, 0, bias=False), nn.BatchNorm2d(bottleneck),
                nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        widths = [ngf * min(2 ** i, 8) for i in range(levels)][::-1]
        dec += [nn.ConvTranspose2d(bottleneck, widths[0], 4, 1, 0, bias=False),
                nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for i in range(levels - 1):
            dec += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(widths[i + 1]), nn.ReLU()]
        dec += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)
        init_pix2pix_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class GlobalDiscriminator(nn.Module):
    """Context Encoder's adversary: one real/fake logit per image (N, 1), from 4x4 stride-2
    convolutions down to 4 x 4 and a 4 x 4 valid convolution."""

    def __init__(self, crop_size: int = 128, in_channels: int = 3, ndf: int = 64):
        super().__init__()
        levels = int(math.log2(crop_size)) - 2
        layers, width = _down_convs(in_channels, ndf, levels)
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        init_pix2pix_weights(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).flatten(1)


class ContextEncoder(nn.Module):
    """Context Encoder (module docstring): generator + global discriminator over the box crop.
    forward() returns generator_input (K, 3, c, c), painted (K, 3, c, c) in [-1, 1],
    image_crop, visible_crop."""

    def __init__(self, crop_size: int = 256, nef: int = 64, ngf: int = 64, ndf: int = 64,
                 bottleneck: int = 4000):
        super().__init__()
        self.hparams = dict(crop_size=crop_size, nef=nef, ngf=ngf, ndf=ndf,
                            bottleneck=bottleneck)
        self.crop_size = crop_size
        self.generator = ContextEncoderGenerator(crop_size, 3, 3, nef, ngf, bottleneck)
        self.discriminator = GlobalDiscriminator(crop_size, 3, ndf)

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        c = self.crop_size
        image_crops = crop_boxes(images, boxes, c)
        visible_crops = crop_object_masks(visible_masks, boxes, c)
        x = blanked_input(image_crops, visible_crops, mask_channel=False)
        return dict(generator_input=x, painted=self.generator(x), image_crop=image_crops,
                    visible_crop=visible_crops)


def encode_box_deltas(boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each side's offset from `boxes` to `target` (both (K, 4) x1, y1, x2, y2) in units of
    the box's width (x) or height (y): the regression target of IBBE's box head."""
    w = (boxes[:, 2] - boxes[:, 0]).clamp_min(1e-3)
    h = (boxes[:, 3] - boxes[:, 1]).clamp_min(1e-3)
    return (target - boxes) / torch.stack([w, h, w, h], dim=1)


def apply_box_deltas(boxes: torch.Tensor, deltas: torch.Tensor, size: int) -> torch.Tensor:
    """The inverse of `encode_box_deltas`, clipped to the size x size image, at least 1 pixel
    wide and high."""
    w = (boxes[:, 2] - boxes[:, 0]).clamp_min(1e-3)
    h = (boxes[:, 3] - boxes[:, 1]).clamp_min(1e-3)
    out = boxes + deltas * torch.stack([w, h, w, h], dim=1)
    x1, y1 = out[:, 0].clamp(0, size - 1), out[:, 1].clamp(0, size - 1)
    x2 = torch.maximum(out[:, 2].clamp(max=size), x1 + 1)
    y2 = torch.maximum(out[:, 3].clamp(max=size), y1 + 1)
    return torch.stack([x1, y1, x2, y2], dim=1)


class IBBE(nn.Module):
    """Amodal box completion + a heatmap in the completed box (module docstring).

    forward(images, visible_masks, visible_box, image_index) with visible_box (K, 4) the S_V
    boxes (x1, y1, x2, y2, image pixels) and image_index (K,) each object's image row. Returns
    boxes: [b_0 = visible box, b_1, ..., b_T] (each b_t detached before the next step, so each
    step learns its own correction), deltas: [d_1..d_T] (K, 4) predicted from b_{t-1},
    amodal_box: b_T, mask_logits (K, 1, m, m) over b_T.
    """

    def __init__(self, mask_size: int = 58, roi_size: int = 6,
                 roi_op: Literal["align", "pool"] = "align", mask_fusion: MaskFusion = "input",
                 roi_mask_channel: Literal["union", "zero"] = "union", iterations: int = 3,
                 context: float = 0.2, hidden: int = 256, backbone_weights: str = "none",
                 backbone: Backbone = "resnet18"):
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.hparams = dict(mask_size=mask_size, roi_size=roi_size, roi_op=roi_op,
                            mask_fusion=mask_fusion, roi_mask_channel=roi_mask_channel,
                            iterations=iterations, context=context, hidden=hidden,
                            backbone=backbone)
        self.iterations, self.context, self.mask_size = iterations, context, mask_size
        self.segmentor = Segmentor(mask_size, roi_size, roi_op, mask_fusion, roi_mask_channel,
                                   backbone_weights, backbone=backbone)
        features = self.segmentor.mask_head.in_features
        self.box_head = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                      nn.Linear(hidden, 4))
        # start near "amodal box = visible box" (small, not zero: the hidden layer needs a
        # gradient from the first step)
        nn.init.normal_(self.box_head[2].weight, 0.0, 1e-3)
        nn.init.zeros_(self.box_head[2].bias)

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor,
                visible_box: torch.Tensor, image_index: torch.Tensor
                ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        S = images.shape[-1]
        seg = self.segmentor
        rois = torch.cat([image_index[:, None].to(visible_box.dtype), visible_box], dim=1)
        maps, rows = seg.feature_maps(images, visible_masks, rois)
        box = visible_box
        boxes, deltas = [box], []
        for _ in range(self.iterations):
            context = expand_boxes_per_side(box, self.context, S)
            pooled = seg.pool(maps, rows, visible_masks, context)
            d = self.box_head(pooled.flatten(1)).float()
            deltas.append(d)
            box = apply_box_deltas(box.detach(), d.detach(), S)
            boxes.append(box)
        pooled = seg.pool(maps, rows, visible_masks, box)
        logits = seg.mask_head(pooled.flatten(1)).view(-1, 1, self.mask_size, self.mask_size)
        return dict(boxes=boxes, deltas=deltas, amodal_box=box, mask_logits=logits)
