"""Baseline ``ibbe`` (Table 1): its training task and its evaluation method; the network is
`segan.models.IBBE`, the config section ``ibbe:`` (`segan.config_sections`), the config
configs/ibbe.yaml.

Training, ibbe (Li & Malik 2016 [27]): amodal box from the visible box in `ibbe.iterations`
steps, a heatmap in the completed box. Loss: BCE of the heatmap against S_F cropped to the
completed (detached) box, m x m, + ibbe.box_weight x the smooth-L1 box loss of every step.

Evaluation: full mask = the heatmap over its completed amodal box; does not paint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from segan.config import TrainConfig
from segan.device import autocast
from segan.eval.baselines import ImageInputs, MethodOutput
from segan.eval.methods import EvalMethod, MethodContext, register_method
from segan.losses import box_regression_loss
from segan.models import IBBE, crop_boxes, crop_object_masks
from segan.train.baseline_tasks import tile_columns
from segan.train.data import Batch
from segan.train.registry import NamedOptimizers, ObjectTask, register_task
from segan.train.runtime import Runtime
from segan.train.tasks import segmentor_optimizer
from segan.transforms import paste_to_image


@register_task("ibbe")
class IBBETask(ObjectTask):
    """IBBE-like amodal box completion + heatmap (module docstring)."""

    config_section = "ibbe"
    needs_appearance = False
    compile_modules = ("segmentor", "box_head")
    # the ResNet-18 trunk (as configs/ibbe.yaml), not configs/tiny.yaml's EfficientNet-Lite0:
    # after a smoke run's few steps the latter's BatchNorm running statistics (momentum
    # 0.01, TF's) are still the init's, and in eval mode its pooled features are the same
    # for every object (tests/test_baselines.py's nearest-neighbour test tells them apart)
    smoke_overrides = ("ibbe.hidden=32", "model.backbone=resnet18")

    @property
    def static_shapes(self) -> bool:
        return self.cfg.model.mask_fusion == "input" or self.cfg.data.fixed_images

    def build_network(self, backbone_weights: str) -> IBBE:
        m, b = self.cfg.model, self.cfg.ibbe
        return IBBE(m.mask_size, m.roi_size, m.roi_op, m.mask_fusion, m.roi_mask_channel,
                    b.iterations, b.context, b.hidden, backbone_weights=backbone_weights,
                    backbone=m.backbone)

    def network_from_hparams(self, hparams: dict[str, Any]) -> IBBE:
        return IBBE(**hparams)

    def make_optimizers(self, net: IBBE) -> NamedOptimizers:
        return NamedOptimizers(ibbe=segmentor_optimizer(net.parameters(), self.cfg.optim))

    def learning_rates(self, step: int) -> dict[str, float]:
        o = self.cfg.optim
        return {"ibbe": o.segmentor_lr * o.segmentor_lr_decay ** (step //
                                                                  o.segmentor_lr_decay_every)}

    def losses(self, out: dict[str, Any], batch: Batch) -> dict[str, torch.Tensor]:
        """{"mask", "box"}: the heatmap's BCE over the completed box and the box loss."""
        m = self.cfg.model.mask_size
        box = torch.cat([batch.boxes[:, :1], out["amodal_box"].to(batch.boxes.dtype)], dim=1)
        full_gt = crop_object_masks(batch.full_masks, box, m)  # S_F over the completed box
        l_mask = F.binary_cross_entropy_with_logits(out["mask_logits"].float(), full_gt.float())
        l_box = box_regression_loss(out["deltas"], out["boxes"], batch.full_box,
                                    self.cfg.ibbe.box_beta)
        return {"mask": l_mask, "box": l_box, "full_gt": full_gt}

    def train_step(self, step: int, model: nn.Module, net: IBBE, batch: Batch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        with runtime.autocast():
            out = model(batch.images, batch.visible_masks, batch.visible_box, batch.boxes[:, 0])
        losses = self.losses(out, batch)
        out["full_gt"] = losses.pop("full_gt")
        total = losses["mask"] + self.cfg.ibbe.box_weight * losses["box"]
        opt["ibbe"].zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt["ibbe"])
        scaler.update()
        losses["total"] = total
        with torch.no_grad():  # how far the completed box is from the amodal one
            a, g = out["amodal_box"], batch.full_box
            inter = ((torch.minimum(a[:, 2:], g[:, 2:]) - torch.maximum(a[:, :2], g[:, :2]))
                     .clamp_min(0).prod(1))
            union = (a[:, 2:] - a[:, :2]).prod(1) + (g[:, 2:] - g[:, :2]).prod(1) - inter
            losses["box_iou"] = (inter / union.clamp_min(1e-6)).mean()
        return {k: v.detach() for k, v in losses.items()}, out

    def make_grid(self, out: dict[str, Any], batch: Batch) -> np.ndarray:
        c = self.cfg.model.crop_size
        d = self.cfg.data
        mean = torch.tensor(d.image_mean, device=batch.images.device).view(1, 3, 1, 1)
        std = torch.tensor(d.image_std, device=batch.images.device).view(1, 3, 1, 1)
        box = torch.cat([batch.boxes[:, :1], out["amodal_box"].to(batch.boxes.dtype)], dim=1)
        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x.float(), size=(c, c), mode="bilinear", align_corners=False)

        cols = [crop_boxes(batch.images, batch.boxes, c) * std + mean,
                crop_object_masks(batch.visible_masks, batch.boxes, c),
                crop_boxes(batch.images, box, c) * std + mean,
                up(torch.sigmoid(out["mask_logits"].detach())), up(out["full_gt"])]
        return tile_columns(cols, self.cfg.run.grid_objects)


class IBBEMethod:
    def __init__(self, net: nn.Module, cfg: TrainConfig, amp_dtype: torch.dtype | None):
        self.net, self.cfg, self.amp_dtype = net, cfg, amp_dtype

    @torch.no_grad()
    def __call__(self, inputs: ImageInputs) -> MethodOutput:

        S, c = self.cfg.data.image_size, self.cfg.model.crop_size
        index = torch.zeros(inputs.num_objects, device=inputs.images.device)
        with autocast(inputs.images.device, self.amp_dtype):
            out = self.net(inputs.images, inputs.visible_masks, inputs.visible_box, index)
        heat = torch.sigmoid(out["mask_logits"].float())
        amodal = torch.cat([index[:, None], out["amodal_box"].float()], dim=1)
        H, W = inputs.orig_hw
        full = paste_to_image(heat, amodal, S, H, W)
        frame = paste_to_image(heat, amodal, S, S, S)[:, None]  # the S x S frame
        return MethodOutput(full, crop_object_masks(frame, inputs.boxes, c), None)


@register_method("ibbe", task="ibbe")
def build_ibbe(ctx: MethodContext) -> EvalMethod:
    net, cfg, identity = ctx.load()
    return EvalMethod("ibbe", IBBEMethod(net, cfg, ctx.amp_dtype), cfg, paints=False,
                      checkpoint=identity, hparams=net.hparams,
                      notes=[f"amodal box in {cfg.ibbe.iterations} steps, then a heatmap"])
