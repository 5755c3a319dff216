"""Task ``background_completer``: the background completer of scene de-occlusion (issue 17),
`segan.models.background_completer.BackgroundCompleter`, through the one training loop.

Data: the images of the split that have a room-shell render (``images[].background_file``,
written by `segan generate --deocclusion SHARE`) and at least one annotated object, in the
deterministic, resumable order of `segan.train.image_data.ImageBatchSampler`; each image gets
a hole from its objects' visible masks (`segan.train.image_data.CompleterBatches`).
Loss: the mean L1 between the prediction and the room shell over the hole's pixels (RGB in
[0, 1]); the pixels outside the hole are the input's at inference (`composite`), so they are
not scored. Adam (0.5, 0.999) at ``completer.lr``, x0.1 at each ``completer.lr_decay_at``.

    segan train --config configs/background_completer.yaml --data DATA --out RUN
    segan deocclude IMAGE --masks M --remove K --checkpoint SEGAN_RUN --completer RUN --out DIR
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from segan.data import coco
from segan.models.background_completer import BackgroundCompleter, composite

from .image_data import CompleterBatches
from .image_tasks import ImageTask, lr_at, to_u8
from .registry import NamedOptimizers, register_task
from .runtime import Runtime


@dataclass
class CompleterBatch:
    """images, backgrounds (B, 3, S, S) float RGB in [0, 1]; holes (B, 1, S, S) float {0, 1}."""

    images: torch.Tensor
    backgrounds: torch.Tensor
    holes: torch.Tensor
    epoch: int = 0
    index: int = 0

    @property
    def num_images(self) -> int:
        return self.images.shape[0]


def hole_l1(predicted: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Mean |predicted - target| over the hole's pixels and the 3 channels; 0 for no hole.
    predicted, target (B, 3, H, W); hole (B, 1, H, W) in {0, 1}."""
    hole = hole.to(predicted.dtype)
    return ((predicted - target).abs() * hole).sum() / (3 * hole.sum()).clamp(min=1)


@register_task("background_completer")
class BackgroundCompleterTask(ImageTask):
    """The room-shell completer (module docstring)."""

    config_section = "completer"
    smoke_overrides = ("completer.image_size=64", "completer.width=8", "completer.depth=3",
                       "completer.batch_images=2", "completer.steps=2")
    steps_keys = ("completer.steps",)

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.batch_images = cfg.completer.batch_images

    @property
    def total_steps(self) -> int:
        return self.cfg.completer.steps

    def build_network(self, backbone_weights: str) -> nn.Module:
        if backbone_weights != "none":
            raise ValueError("model.backbone_weights: the background completer has no "
                             f"pretrained part (got {backbone_weights!r}; use none)")
        c = self.cfg.completer
        return BackgroundCompleter(width=c.width, depth=c.depth, dilations=tuple(c.dilations))

    def network_from_hparams(self, hparams: dict[str, Any]) -> nn.Module:
        return BackgroundCompleter(**{**hparams, "dilations": tuple(hparams["dilations"])})

    def backbone_record(self, weights: str) -> dict[str, Any]:
        return {"weights": "none"}

    def prepare_model(self, net: nn.Module, runtime: Runtime) -> nn.Module:
        return runtime.prepare(net, compile_modules=(), ddp_ignore=())

    def make_optimizers(self, net: nn.Module) -> NamedOptimizers:
        adam = torch.optim.Adam(net.parameters(), lr=self.cfg.completer.lr, betas=(0.5, 0.999))
        return NamedOptimizers(completer=adam)

    def learning_rates(self, step: int) -> dict[str, float]:
        c = self.cfg.completer
        return {"completer": lr_at(step, c.lr, c.steps, tuple(c.lr_decay_at))}

    def usable_images(self, ds: coco.AmodalDataset) -> list[int]:
        ids = [i for i in ds.image_ids
               if ds.images[i].get("background_file") is not None and ds.annotations[i]]
        if not ids:
            raise ValueError(f"{ds.path}: no image has a background_file (the room shell alone) "
                             "and annotated objects: generate with `segan generate "
                             "--deocclusion SHARE` (docs/dataset.md)")
        return ids

    def dataset(self, ds: coco.AmodalDataset, image_ids: list[int]) -> CompleterBatches:
        c = self.cfg.completer
        return CompleterBatches(ds, image_ids, c.image_size, self.cfg.run.seed, c.hole_objects,
                                c.hole_dilate, self.cfg.data.hflip)

    def prepare_batch(self, raw: dict, runtime: Runtime) -> CompleterBatch:
        dev, nb = runtime.device, runtime.device.type == "cuda"

        def rgb(x: torch.Tensor) -> torch.Tensor:
            return x.to(dev, non_blocking=nb).permute(0, 3, 1, 2).float().div_(255).contiguous()

        holes = raw["holes"].to(dev, non_blocking=nb)[:, None].float()
        return CompleterBatch(rgb(raw["images"]), rgb(raw["backgrounds"]), holes,
                              int(raw["epoch"]), int(raw["index"]))

    def train_step(self, step: int, model: nn.Module, net: nn.Module, batch: CompleterBatch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        with runtime.autocast():
            predicted = model(batch.images, batch.holes)
        loss = hole_l1(predicted.float(), batch.backgrounds, batch.holes)
        o = opt["completer"]
        o.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(o)
        scaler.update()
        with torch.no_grad():  # the baseline to beat: the input itself (objects) in the hole
            as_is = hole_l1(batch.images, batch.backgrounds, batch.holes)
        return {"hole_l1": loss.detach(), "input_l1": as_is}, {"predicted": predicted.detach()}

    @torch.no_grad()
    def make_grid(self, out: dict[str, torch.Tensor], batch: CompleterBatch) -> np.ndarray | None:
        """Up to 4 images: input with the hole blanked | completed | room shell."""
        rows = []
        for k in range(min(4, batch.num_images)):
            image, hole = batch.images[k:k + 1], batch.holes[k:k + 1]
            done = composite(image, hole, out["predicted"][k:k + 1].float())
            tiles = [image * (1 - hole), done, batch.backgrounds[k:k + 1]]
            rows.append(to_u8(torch.cat(tiles, dim=3)[0].permute(1, 2, 0)))
        return np.concatenate(rows, axis=0) if rows else None
