"""What the object-level baselines' tasks share (their modules: `segan.baselines`): the
generator + discriminator recipe of the painting baselines (`PainterTask`: pix2pix and the
Context Encoder, trained like SeGAN's painter) and the log grid's tiling (`tile_columns`).
Same data as SeGAN (the decoded cache's object crops, with SeGAN's box expansion), same loop.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from segan.losses import (
    discriminator_loss,
)

from . import distributed
from .registry import NamedOptimizers, ObjectTask
from .runtime import Runtime


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


class PainterTask(ObjectTask):
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
