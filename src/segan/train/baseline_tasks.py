"""Training tasks of the object-level baselines (section 5.2, Tables 1-2): pix2pix,
context_encoder, ibbe. Same data as SeGAN (the decoded cache's object crops, with SeGAN's box
expansion), same loop; networks in segan.models.baselines.

pix2pix (Isola et al. [22], the paper's Table 1-2 baseline): x = the visible pixels of the box
(+ S_V), y = the full object (RGB, and its alpha S_F over the box when `pix2pix.predict_alpha`,
both in [-1, 1]; black / 0 outside S_F). Stage 1 (schedule.stage1_steps, default 0): L1 only.
Stage 2, pix2pix's recipe as SeGAN's painter: a D step on -log D(x, y) - log(1 - D(x, G(x)))
with G(x) detached, then a G step on Eq. 5, L_cGAN + λ_L1 L1 (loss.lambda_l1), D frozen.

context_encoder (Pathak et al. 2016 [37]): x = the box crop with every pixel that may belong to
the invisible part blanked (everything outside S_V), y = the full object (RGB); an
unconditional D step, then G on λ_rec L2 + λ_adv L_adv (0.999 / 0.001, their Eq. 5).

ibbe (Li & Malik 2016 [27]): amodal box from the visible box in `ibbe.iterations` steps, a
heatmap in the completed box. Loss: BCE of the heatmap against S_F cropped to the completed
(detached) box, m x m, + ibbe.box_weight x the smooth-L1 box loss of every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from segan.losses import (
    LossWeights,
    box_regression_loss,
    context_encoder_loss,
    discriminator_loss,
    painter_loss,
)
from segan.models import IBBE, ContextEncoder, Pix2Pix, crop_object_masks

from . import distributed
from .data import Batch
from .registry import NamedOptimizers, ObjectTask, register_task
from .runtime import Runtime
from .tasks import segmentor_optimizer


def tile_columns(columns: list[torch.Tensor], n: int) -> np.ndarray:
    """Columns of (K, 1 or 3, c, c) images in [0, 1] -> the first n rows as an (n c, C c, 3)
    uint8 grid."""
    n = min(n, columns[0].shape[0])
    tiles = torch.stack([col[:n].float().expand(-1, 3, -1, -1) for col in columns], dim=1)
    n, C, _, c, _ = tiles.shape
    grid = tiles.clamp(0, 1).permute(0, 3, 1, 4, 2).reshape(n * c, C * c, 3)
    return (grid * 255).round().to(torch.uint8).cpu().numpy()


def _adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


class _PainterTask(ObjectTask):
    """A generator + discriminator over the box crop, trained like SeGAN's painter."""

    export_exclude = ("discriminator",)
    compile_modules = ("generator", "discriminator")
    ddp_ignore = ("discriminator",)  # run several times a step: synchronised by hand

    def make_optimizers(self, net: nn.Module) -> NamedOptimizers:
        o = self.cfg.optim
        return NamedOptimizers(
            generator=_adam(net.generator.parameters(), o.painter_lr, o.painter_betas),
            discriminator=_adam(net.discriminator.parameters(), o.discriminator_lr,
                                o.discriminator_betas))

    def learning_rates(self, step: int) -> dict[str, float]:
        o = self.cfg.optim
        return {"generator": o.painter_lr, "discriminator": o.discriminator_lr}

    def stage(self, step: int) -> int:
        return 1 if step < self.cfg.schedule.stage1_steps else 2

    def _d_step(self, net: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                cond: torch.Tensor | None, opt: NamedOptimizers, runtime: Runtime,
                scaler: torch.amp.GradScaler) -> dict[str, torch.Tensor]:
        D = net.discriminator
        args = () if cond is None else (cond,)
        distributed.broadcast_buffers(D)
        with runtime.autocast():
            real_logits = D(*args, real)
            fake_logits = D(*args, fake.detach())
        l_d = discriminator_loss(real_logits, fake_logits, self.cfg.loss.d_loss_scale)
        opt["discriminator"].zero_grad(set_to_none=True)
        scaler.scale(l_d).backward()
        distributed.average_gradients(D)
        scaler.step(opt["discriminator"])
        return {"d": l_d, "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach().float()).mean()}

    @staticmethod
    def _frozen_d_logits(net: nn.Module, fake: torch.Tensor, cond: torch.Tensor | None,
                         runtime: Runtime) -> torch.Tensor:
        D = net.discriminator
        D.requires_grad_(False)
        try:
            with runtime.autocast():
                return D(fake) if cond is None else D(cond, fake)
        finally:
            D.requires_grad_(True)

    def _g_step(self, total: torch.Tensor, opt: NamedOptimizers,
                scaler: torch.amp.GradScaler) -> None:
        opt["generator"].zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt["generator"])
        scaler.update()

    def _image_mean_std(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The data config's normalisation as (1, 3, 1, 1) tensors, to un-normalise crops."""
        d = self.cfg.data
        return (torch.tensor(d.image_mean, device=device).view(1, 3, 1, 1),
                torch.tensor(d.image_std, device=device).view(1, 3, 1, 1))


@register_task("pix2pix")
class Pix2PixTask(_PainterTask):
    """pix2pix on the visible pixels (module docstring)."""

    pretrained_backbone = False

    def build_network(self, backbone_weights: str) -> Pix2Pix:
        m, p = self.cfg.model, self.cfg.pix2pix
        return Pix2Pix(m.crop_size, m.num_downs, m.ngf, m.dropout, m.ndf, m.n_disc_layers,
                       p.mask_channel, p.predict_alpha)

    def network_from_hparams(self, hparams: dict[str, Any]) -> Pix2Pix:
        return Pix2Pix(**hparams)

    def target(self, batch: Batch) -> torch.Tensor:
        """y: the full object's RGB (and alpha) over the box, in [-1, 1]."""
        if not self.cfg.pix2pix.predict_alpha:
            return batch.target
        return torch.cat([batch.target, batch.full_crop * 2 - 1], dim=1)

    def train_step(self, step: int, model: nn.Module, net: Pix2Pix, batch: Batch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        lc = self.cfg.loss
        with runtime.autocast():
            out = model(batch.images, batch.visible_masks, batch.boxes)
        y, fake = self.target(batch), out["output"]
        l1 = (fake.float() - y.float()).abs().mean()
        losses: dict[str, torch.Tensor] = {"l1": l1}
        if self.stage(step) == 1:
            total = lc.lambda_l1 * l1
        else:
            x = out["generator_input"].detach()
            losses.update(self._d_step(net, y.to(fake.dtype), fake, x, opt, runtime, scaler))
            fake_logits = self._frozen_d_logits(net, fake, x, runtime)
            total = painter_loss(fake_logits, fake, y, LossWeights(lambda_l1=lc.lambda_l1),
                                 lc.gan_saturating)  # Eq. 5
            losses["gan"] = total.detach() - lc.lambda_l1 * l1.detach()
        self._g_step(total, opt, scaler)
        losses["total"] = total
        return {k: v.detach() for k, v in losses.items()}, out

    def make_grid(self, out: dict[str, torch.Tensor], batch: Batch) -> np.ndarray:
        mean, std = self._image_mean_std(batch.target.device)
        cols = [out["image_crop"] * std + mean, out["visible_crop"],
                out["generator_input"][:, :3] * std + mean]
        if "alpha" in out:
            cols += [out["alpha"], batch.full_crop]
        cols += [(out["painted"] + 1) / 2, (batch.target + 1) / 2]
        return tile_columns([c.detach() for c in cols], self.cfg.run.grid_objects)


@register_task("context_encoder")
class ContextEncoderTask(_PainterTask):
    """Context Encoder on the blanked box crop (module docstring)."""

    pretrained_backbone = False
    smoke_overrides = ("context_encoder.nef=16", "context_encoder.bottleneck=64")

    def build_network(self, backbone_weights: str) -> ContextEncoder:
        m, c = self.cfg.model, self.cfg.context_encoder
        return ContextEncoder(m.crop_size, c.nef, m.ngf, m.ndf, c.bottleneck)

    def network_from_hparams(self, hparams: dict[str, Any]) -> ContextEncoder:
        return ContextEncoder(**hparams)

    def train_step(self, step: int, model: nn.Module, net: ContextEncoder, batch: Batch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        ce = self.cfg.context_encoder
        with runtime.autocast():
            out = model(batch.images, batch.visible_masks, batch.boxes)
        y, fake = batch.target, out["painted"]
        l2 = (fake.float() - y.float()).pow(2).mean()
        losses: dict[str, torch.Tensor] = {"l2": l2}
        if self.stage(step) == 1:
            total = ce.lambda_rec * l2
        else:
            losses.update(self._d_step(net, y.to(fake.dtype), fake, None, opt, runtime, scaler))
            fake_logits = self._frozen_d_logits(net, fake, None, runtime)
            total = context_encoder_loss(fake, y, fake_logits, ce.lambda_rec, ce.lambda_adv)
        self._g_step(total, opt, scaler)
        losses["total"] = total
        return {k: v.detach() for k, v in losses.items()}, out

    def make_grid(self, out: dict[str, torch.Tensor], batch: Batch) -> np.ndarray:
        mean, std = self._image_mean_std(batch.target.device)
        cols = [out["image_crop"] * std + mean, out["generator_input"] * std + mean,
                (out["painted"] + 1) / 2, (batch.target + 1) / 2]
        return tile_columns([c.detach() for c in cols], self.cfg.run.grid_objects)


@register_task("ibbe")
class IBBETask(ObjectTask):
    """IBBE-like amodal box completion + heatmap (module docstring)."""

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
        from segan.models import crop_boxes

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x.float(), size=(c, c), mode="bilinear", align_corners=False)

        cols = [crop_boxes(batch.images, batch.boxes, c) * std + mean,
                crop_object_masks(batch.visible_masks, batch.boxes, c),
                crop_boxes(batch.images, box, c) * std + mean,
                up(torch.sigmoid(out["mask_logits"].detach())), up(out["full_gt"])]
        return tile_columns(cols, self.cfg.run.grid_objects)
