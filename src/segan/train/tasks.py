"""What one training step of SeGAN does: the losses of each stage and who steps when.

Section 5.1: "to help the network to converge, we first train the segmentation network and the
generator network jointly and then train the whole network end to end."

Stage 1 (segmentor + generator, no discriminator): Eq. 6 without the adversarial term,
    L = L_segm + λ_L* · λ_L1 · L1(G),
one backward; the painter's L1 reaches the segmentor through O (Eq. 1) unless
`schedule.stage1_detach_full_mask`. D is neither run nor stepped.

Stage 2 (end to end, pix2pix's order): after one forward of segmentor and G,
  1. D step, Eq. 4 on D's side: -log D(M, y) - log(1 - D(M, G(M))), with G(M) detached;
  2. segmentor + G step, Eq. 6: L_full = λ_L* (L_cGAN + λ_L1 L1) + L_segm, with D frozen and
     D's score of the painted crop taken after D's update. D's condition M is detached: the
     segmentor learns from the painter only through G's input, not by moving D's condition.

The painter's target y is the full object's appearance over the crop (segan.train.data). With
`loss.painter_target_outside = "masked"`, pixels outside S_F are taken from y on both sides
(the L1 and D's fake are y there), so only the object's own pixels are judged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.checkpoint import SEGAN_TRAINING_ONLY, load_segmentor
from segan.config import OptimConfig, TrainConfig
from segan.losses import (
    LossWeights,
    amodal_box_loss,
    discriminator_loss,
    distillation_loss,
    full_loss,
    generator_gan_loss,
    segmentation_loss,
    soft_iou_loss,
)
from segan.models import SeGAN, SegmentorEnsemble
from segan.models.crops import box_union

from . import distributed
from .cache import AmodalCache
from .data import Batch
from .logs import make_grid
from .registry import ObjectTask, register_task
from .runtime import Runtime


def build_segan(cfg: TrainConfig, backbone_weights: str) -> SeGAN:
    """SeGAN of `cfg`: the architecture of cfg.model (`SeGAN.from_config`), R and B following
    the image transform (data.image_mean, data.image_std). backbone_weights: the segmentor's
    initialisation ("none": random; the task passes cfg.model.backbone_weights resolved)."""
    return SeGAN.from_config(cfg.model, cfg.data.image_mean, cfg.data.image_std,
                             backbone_weights=backbone_weights)


@dataclass
class Optimizers:
    segmentor: torch.optim.Optimizer
    generator: torch.optim.Optimizer
    discriminator: torch.optim.Optimizer

    def as_dict(self) -> dict[str, torch.optim.Optimizer]:
        return {"segmentor": self.segmentor, "generator": self.generator,
                "discriminator": self.discriminator}

    def state_dict(self) -> dict:
        return {k: o.state_dict() for k, o in self.as_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        for k, o in self.as_dict().items():
            o.load_state_dict(state[k])


def segmentor_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig
                        ) -> torch.optim.Optimizer:
    """The segmentor's optimiser as `cfg` names it: SGD with momentum or Adam (fused)."""
    params = list(params)
    if cfg.segmentor == "sgd":
        return torch.optim.SGD(params, lr=cfg.segmentor_lr, momentum=cfg.segmentor_momentum,
                               weight_decay=cfg.segmentor_weight_decay, fused=True)
    return torch.optim.Adam(params, lr=cfg.segmentor_lr, betas=cfg.segmentor_betas,
                            weight_decay=cfg.segmentor_weight_decay, fused=True)


def make_optimizers(net: SeGAN, cfg: OptimConfig) -> Optimizers:
    """One optimiser per network (fused implementations: one kernel over all tensors). Create
    after the networks are on their device."""
    seg = segmentor_optimizer(net.segmentor.parameters(), cfg)
    gen = torch.optim.Adam(net.generator.parameters(), lr=cfg.painter_lr, betas=cfg.painter_betas,
                           fused=True)
    disc = torch.optim.Adam(net.discriminator.parameters(), lr=cfg.discriminator_lr,
                            betas=cfg.discriminator_betas, fused=True)
    return Optimizers(seg, gen, disc)


@register_task("segan")
class SeGANTask(ObjectTask):
    """The two-stage SeGAN recipe (module docstring) for a given `TrainConfig`.

    Data without appearance images (foreign formats, segan.data.formats) gives the painter no
    target y: `open_data` then sets `paints` False, and every step trains the segmentor alone
    on L_segm (Eq. 3); G and D are neither judged nor stepped. A split where only some objects
    have an appearance image is refused. `paints` (constructor) holds until `open_data` runs.
    `optim.freeze_painter` takes the same path on any data: the warm-started G is kept.
    """

    export_exclude = SEGAN_TRAINING_ONLY  # D is training-only
    compile_modules = ("segmentor", "generator", "discriminator")
    ddp_ignore = ("discriminator",)  # run several times a step: synchronised by hand
    needs_appearance = False  # checked in open_data: every object (SeGAN) or none (segmentor)

    @property
    def uses_visible_union(self) -> bool:  # crop_unet's context input, the occluder gate
        return self.cfg.model.segmentor_context or self.cfg.model.occluder_gate != "none"

    def __init__(self, cfg: TrainConfig, paints: bool = True):
        super().__init__(cfg)
        self.paints = paints
        lc = cfg.loss
        self.weights = LossWeights(lambda_bg=lc.lambda_bg, lambda_sv=lc.lambda_sv,
                                   lambda_si=lc.lambda_si, lambda_l1=lc.lambda_l1,
                                   lambda_star=lc.lambda_star)
        self._teachers: SegmentorEnsemble | None = None
        self._teacher_ids: list[dict[str, Any]] = []  # which weights they were (checkpoints)

    def teachers(self, device: torch.device) -> SegmentorEnsemble:
        """loss.distill_from's networks, loaded onto `device` at the first step (a run trains
        on one device); not part of the trained network, its checkpoints or its exports."""
        if self._teachers is None:
            nets = []
            for path in self.cfg.loss.distill_from:
                if not Path(path).exists():
                    raise FileNotFoundError(f"loss.distill_from: no file or folder {path} (give "
                                            "SeGAN run folders, exports or bundles)")
                net, identity = load_segmentor(path, device)
                m = self.cfg.model
                for key, want in (("mask_size", m.mask_size), ("occluder_gate", m.occluder_gate)):
                    if net.hparams.get(key) != want:
                        raise ValueError(f"loss.distill_from: {path} has {key}="
                                         f"{net.hparams.get(key)!r}, this run {key}={want!r}")
                nets.append(net)
                self._teacher_ids.append(identity)
            self._teachers = SegmentorEnsemble(nets).requires_grad_(False)
        return self._teachers

    def open_data(self, data_dir: Path, cache_dir: str | os.PathLike | None, runtime: Runtime,
                  progress: bool) -> AmodalCache:
        cache = super().open_data(data_dir, cache_dir, runtime, progress)
        has = cache.has_appearance
        split = self.cfg.data.train_split
        if has.any() and not has.all():
            raise ValueError(f"{int((~has).sum())} of {cache.num_objects} objects of split "
                             f"{split!r} have no appearance_file (the painter's target): give "
                             "every object one, or none (segmentor-only training)")
        # without appearance images (e.g. KINS, COCOA) the painter has no target: segmentor only
        self.paints = bool(has.all()) and not self.cfg.optim.freeze_painter
        if not has.all() and runtime.is_main:
            warnings.warn(f"split {split!r} has no appearance images: training the segmentor "
                          "only (the painter and discriminator are not trained)", stacklevel=2)
        return cache

    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"painter_trained": self.paints}
        if self._teacher_ids:  # once loaded: each teacher's path, format, step and sha256
            info["distill_from"] = self._teacher_ids
        return info

    @property
    def static_shapes(self) -> bool:
        # "roi" fusion runs the backbone on a varying number of images per batch, unless
        # data.fixed_images fixes that number
        return self.cfg.model.mask_fusion == "input" or self.cfg.data.fixed_images

    def build_network(self, backbone_weights: str) -> SeGAN:
        return build_segan(self.cfg, backbone_weights)

    def network_from_hparams(self, hparams: dict[str, Any]) -> SeGAN:
        return SeGAN.from_hparams(hparams)

    def make_optimizers(self, net: SeGAN) -> Optimizers:
        return make_optimizers(net, self.cfg.optim)

    def make_grid(self, out: dict[str, torch.Tensor], batch: Batch) -> np.ndarray:
        d = self.cfg.data
        return make_grid(out, batch.full_gt, batch.target, d.image_mean, d.image_std,
                         self.cfg.run.grid_objects)

    def stage(self, step: int) -> int:
        """1 for steps [0, stage1_steps), 2 after."""
        return 1 if step < self.cfg.schedule.stage1_steps else 2

    def learning_rates(self, step: int) -> dict[str, float]:
        o = self.cfg.optim
        decay = o.segmentor_lr_decay ** (step // o.segmentor_lr_decay_every)
        paint = (o.painter_lr_decay ** (step // o.painter_lr_decay_every)
                 if o.painter_lr_decay_every else 1.0)
        return {"segmentor": o.segmentor_lr * decay, "generator": o.painter_lr * paint,
                "discriminator": o.discriminator_lr * paint}

    def set_learning_rates(self, opt: Optimizers, step: int) -> dict[str, float]:
        lrs = self.learning_rates(step)
        for name, o in opt.as_dict().items():
            for group in o.param_groups:
                group["lr"] = lrs[name]
        return lrs

    def trained_modules(self, net: SeGAN, stage: int) -> list[nn.Module]:
        """The networks whose parameters a step of `stage` updates."""
        if not self.paints:
            return [net.segmentor]
        mods: list[nn.Module] = [net.segmentor, net.generator]
        return mods + [net.discriminator] if stage == 2 else mods

    def _painted_for_loss(self, painted: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.cfg.loss.painter_target_outside == "masked":  # judge S_F's pixels only
            full = batch.full_crop.to(painted.dtype)
            return full * painted + (1 - full) * batch.target.to(painted.dtype)
        return painted

    def forward_losses(self, model: nn.Module, batch: Batch, runtime: Runtime, stage: int
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Forward of segmentor + G and the losses that do not involve D: (outputs, losses)."""
        detach = stage == 1 and self.cfg.schedule.stage1_detach_full_mask
        with runtime.autocast():
            out = model(batch.images, batch.visible_masks, batch.boxes, detach_full_mask=detach,
                        visible_union=batch.visible_union)
        lc = self.cfg.loss
        l_segm = segmentation_loss(out["mask_logits"], batch.full_gt, batch.visible_gt,
                                   self.weights, kind=lc.segmentation,
                                   binarize_target=lc.binarize_target,
                                   candidate=out.get("candidate"),
                                   gate_loss=lc.gate_loss)  # Eq. 3
        losses = {"segm": l_segm}
        if lc.lambda_iou > 0:  # not in the paper: the per-object IoU the evaluation scores
            losses["iou"] = soft_iou_loss(out["mask_probs"], batch.full_gt)
            losses["segm"] = l_segm + lc.lambda_iou * losses["iou"]
        if lc.lambda_distill > 0:  # not in the paper: the mean o of trained runs as a target
            with torch.no_grad(), runtime.autocast():
                target = self.teachers(batch.images.device).segment(
                    batch.images, batch.visible_masks, batch.boxes, batch.visible_union)
            losses["distill"] = distillation_loss(out["mask_probs"], target["mask_probs"])
            losses["segm"] = losses["segm"] + lc.lambda_distill * losses["distill"]
        if "amodal_deltas" in out:  # not in the paper: the amodal box, for the box passes
            losses["box"] = amodal_box_loss(out["amodal_deltas"], batch.boxes[:, 1:],
                                            box_union(batch.visible_box, batch.full_box))
            losses["segm"] = losses["segm"] + lc.lambda_box * losses["box"]
        painted = self._painted_for_loss(out["painted"], batch)
        l1 = (painted.float() - batch.target.float()).abs().mean()  # L_L1 of Eq. 5
        out["painted_for_loss"] = painted
        losses["l1"] = l1
        return out, losses

    def train_step(self, step: int, model: nn.Module, net: SeGAN, batch: Batch,
                   opt: Optimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One optimisation step; returns (detached losses for logging, network outputs).

        `model` computes the forward of `net` (net itself or its DDP wrapper).
        """
        stage = self.stage(step)
        w, lc = self.weights, self.cfg.loss
        if not self.paints:  # G is not trained: its BatchNorm statistics must not drift either
            net.generator.eval()
        out, losses = self.forward_losses(model, batch, runtime, stage)
        if not self.paints:
            return self._segmentor_step(out, losses, opt, scaler)
        painted = out["painted_for_loss"]

        if stage == 1:
            l_star = w.lambda_l1 * losses["l1"]  # Eq. 5 without L_cGAN
        else:
            D = net.discriminator
            M = out["generator_input"].detach()
            # 1. D step (Eq. 4, D's side), on G's detached output
            distributed.broadcast_buffers(D)
            with runtime.autocast():
                real_logits = D(M, batch.target.to(M.dtype))
                fake_logits = D(M, painted.detach())
            l_d = discriminator_loss(real_logits, fake_logits, lc.d_loss_scale)
            opt.discriminator.zero_grad(set_to_none=True)
            scaler.scale(l_d).backward()
            distributed.average_gradients(D)
            scaler.step(opt.discriminator)
            # 2. segmentor + G step (Eq. 5-6) against the updated, frozen D
            D.requires_grad_(False)
            try:
                with runtime.autocast():
                    fake_for_g = D(M, painted)
            finally:
                D.requires_grad_(True)
            l_gan = generator_gan_loss(fake_for_g, lc.gan_saturating)
            l_star = l_gan + w.lambda_l1 * losses["l1"]  # Eq. 5
            losses.update(d=l_d, gan=l_gan,
                          d_real=torch.sigmoid(real_logits.detach().float()).mean(),
                          d_fake=torch.sigmoid(fake_logits.detach().float()).mean())
        # segmentor + G step on Eq. 6 (stage 2: against the updated, frozen D)
        total = full_loss(l_star, losses["segm"], w)  # Eq. 6
        opt.segmentor.zero_grad(set_to_none=True)
        opt.generator.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt.segmentor)
        scaler.step(opt.generator)
        scaler.update()
        losses["total"] = total
        return {k: v.detach() for k, v in losses.items()}, out

    def _segmentor_step(self, out: dict[str, torch.Tensor], losses: dict[str, torch.Tensor],
                        opt: Optimizers, scaler: torch.amp.GradScaler
                        ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """L_segm alone (no appearance: no painter target). G's output enters with weight 0 so
        that DDP, which wraps segmentor and G together, sees a gradient for every parameter."""
        total = losses["segm"] + 0.0 * out["painted"].float().sum()
        opt.segmentor.zero_grad(set_to_none=True)
        opt.generator.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt.segmentor)
        scaler.update()
        logged = {k: losses[k].detach() for k in ("segm", "iou", "box", "distill")
                  if k in losses}
        logged["total"] = total.detach()
        return logged, out
