"""Baseline ``pix2pix`` (Tables 1-2): its training task and its evaluation method; the network
is `segan.models.Pix2Pix`, the config section ``pix2pix:`` (`segan.config_sections`), the config
configs/pix2pix.yaml.

Training, pix2pix (Isola et al. [22], the paper's Table 1-2 baseline): x = the visible pixels of
the box (+ S_V), y = the full object (RGB, and its alpha S_F over the box when
`pix2pix.predict_alpha`, both in [-1, 1]; black / 0 outside S_F). Stage 1
(schedule.stage1_steps, default 0): L1 only. Stage 2, pix2pix's recipe as SeGAN's painter: a D
step on -log D(x, y) - log(1 - D(x, G(x))) with G(x) detached, then a G step on Eq. 5, L_cGAN +
λ_L1 L1 (loss.lambda_l1), D frozen.

Evaluation: painted = its RGB output; full mask (Table 1) = its alpha output, S_F over the box
(`pix2pix.predict_alpha`; without it the method is painting only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.config import TrainConfig
from segan.device import autocast
from segan.eval.baseline_methods import to_unit
from segan.eval.baselines import ImageInputs, MethodOutput
from segan.eval.methods import EvalMethod, MethodContext, register_method
from segan.losses import LossWeights, painter_loss
from segan.models import Pix2Pix
from segan.train.baseline_tasks import PainterTask, tile_columns
from segan.train.data import Batch
from segan.train.registry import NamedOptimizers, register_task
from segan.train.runtime import Runtime
from segan.transforms import paste_to_image


@register_task("pix2pix")
class Pix2PixTask(PainterTask):
    """pix2pix on the visible pixels (module docstring)."""

    config_section = "pix2pix"
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


class Pix2PixMethod:
    def __init__(self, net: nn.Module, cfg: TrainConfig, amp_dtype: torch.dtype | None):
        self.net, self.cfg, self.amp_dtype = net, cfg, amp_dtype

    @torch.no_grad()
    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        with autocast(inputs.images.device, self.amp_dtype):
            out = self.net(inputs.images, inputs.visible_masks, inputs.boxes)
        alpha = out.get("alpha")
        if alpha is None:
            return MethodOutput(None, None, to_unit(out["painted"]))

        H, W = inputs.orig_hw
        alpha = alpha.float().clamp(0, 1)
        full = paste_to_image(alpha, inputs.boxes, self.cfg.data.image_size, H, W)
        return MethodOutput(full, alpha, to_unit(out["painted"]))


@register_method("pix2pix", task="pix2pix")
def build_pix2pix(ctx: MethodContext) -> EvalMethod:
    net, cfg, identity = ctx.load()
    notes = (["full mask = the painted alpha (S_F over the box, thresholded at 0.5)"]
             if cfg.pix2pix.predict_alpha else [])
    return EvalMethod("pix2pix", Pix2PixMethod(net, cfg, ctx.amp_dtype), cfg, paints=True,
                      checkpoint=identity, hparams=net.hparams, notes=notes)
