"""Baseline ``context_encoder`` (Table 2): its training task and its evaluation method; the
network is `segan.models.ContextEncoder`, the config section ``context_encoder:``
(`segan.config_sections`), the config configs/context_encoder.yaml.

Training, context_encoder (Pathak et al. 2016 [37]): x = the box crop with every pixel that may
belong to the invisible part blanked (everything outside S_V), y = the full object (RGB); an
unconditional D step, then G on λ_rec L2 + λ_adv L_adv (0.999 / 0.001, their Eq. 5).

Evaluation: painting only (no mask: the paper reports it in Table 2 only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.device import autocast
from segan.eval.baseline_methods import to_unit
from segan.eval.baselines import ImageInputs, MethodOutput
from segan.eval.methods import EvalMethod, MethodContext, register_method
from segan.losses import context_encoder_loss
from segan.models import ContextEncoder
from segan.train.baseline_tasks import PainterTask, tile_columns
from segan.train.data import Batch
from segan.train.registry import NamedOptimizers, register_task
from segan.train.runtime import Runtime


@register_task("context_encoder")
class ContextEncoderTask(PainterTask):
    """Context Encoder on the blanked box crop (module docstring)."""

    config_section = "context_encoder"
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


class ContextEncoderMethod:
    def __init__(self, net: nn.Module, amp_dtype: torch.dtype | None):
        self.net, self.amp_dtype = net, amp_dtype

    @torch.no_grad()
    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        with autocast(inputs.images.device, self.amp_dtype):
            out = self.net(inputs.images, inputs.visible_masks, inputs.boxes)
        return MethodOutput(None, None, to_unit(out["painted"]))


@register_method("context_encoder", task="context_encoder")
def build_context_encoder(ctx: MethodContext) -> EvalMethod:
    net, cfg, identity = ctx.load()
    return EvalMethod("context_encoder", ContextEncoderMethod(net, ctx.amp_dtype), cfg,
                      paints=True, checkpoint=identity, hparams=net.hparams)
