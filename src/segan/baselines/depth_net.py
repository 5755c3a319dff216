"""Baseline ``depth_net`` (Table 5's single-image depth baseline [10]): its training task and its
evaluation method; the network is `segan.models.depth_net.DepthNet`, the config section
``depth:`` (`segan.config_sections`), the config configs/depth_net.yaml.

Training: the depth network on the scene depth of whole images (`segan.train.image_data.
DepthBatches`, the image-level data plumbing of `segan.train.image_tasks.ImageTask`;
`data.image_mean` / `data.image_std` normalise its input), with Adam on `depth.loss` (the
scale-invariant log loss, or L1 of the log depth).

Evaluation: the network's depth map, upsampled to the image; each object's depth is the mean
predicted depth inside its given S_V, and of every two objects the nearer one is predicted to
occlude the other. It predicts no masks and does not paint: it is scored on depth layering only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from segan.data import coco
from segan.eval.baselines import ImageInputs, MethodOutput
from segan.eval.methods import EvalMethod, MethodContext, register_method
from segan.losses import l1_log_loss, scale_invariant_log_loss
from segan.models.depth_net import DepthNet
from segan.train.image_data import DepthBatches
from segan.train.image_tasks import ImageTask, lr_at, to_u8
from segan.train.registry import NamedOptimizers, register_task
from segan.train.runtime import Runtime
from segan.transforms import resize_planes


@dataclass
class DepthBatch:
    """images (B, 3, S, S) normalised; depth (B, 1, S, S) metres, 0 = no surface."""

    images: torch.Tensor
    depth: torch.Tensor
    epoch: int = 0
    index: int = 0

    @property
    def num_images(self) -> int:
        return self.images.shape[0]


@register_task("depth_net")
class DepthNetTask(ImageTask):
    """The single-image depth network (Table 5's baseline) on the scene depth."""

    config_section = "depth"
    smoke_overrides = ("depth.image_size=64", "depth.decoder_width=32", "depth.batch_images=2",
                       "depth.steps=2")

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.batch_images = cfg.depth.batch_images

    steps_keys = ("depth.steps",)

    @property
    def total_steps(self) -> int:
        return self.cfg.depth.steps

    def build_network(self, backbone_weights: str) -> nn.Module:
        return DepthNet(decoder_width=self.cfg.depth.decoder_width,
                        backbone_weights=backbone_weights)

    def network_from_hparams(self, hparams: dict[str, Any]) -> nn.Module:
        return DepthNet(**hparams)

    def prepare_model(self, net: nn.Module, runtime: Runtime) -> nn.Module:
        return runtime.prepare(net, compile_modules=(), ddp_ignore=())

    def make_optimizers(self, net: nn.Module) -> NamedOptimizers:
        c = self.cfg.depth
        return NamedOptimizers(depth=torch.optim.Adam(net.parameters(), lr=c.lr,
                                                      weight_decay=c.weight_decay))

    def learning_rates(self, step: int) -> dict[str, float]:
        c = self.cfg.depth
        return {"depth": lr_at(step, c.lr, c.steps, tuple(c.lr_decay_at))}

    def usable_images(self, ds: coco.AmodalDataset) -> list[int]:
        missing = [i for i in ds.image_ids if ds.images[i].get("depth_file") is None]
        if missing:
            raise ValueError(f"{ds.path}: {len(missing)} images have no depth_file (first: image "
                             f"{missing[0]}): the depth network trains on the scene depth")
        return list(ds.image_ids)

    def dataset(self, ds: coco.AmodalDataset, image_ids: list[int]) -> DepthBatches:
        return DepthBatches(ds, image_ids, self.cfg.depth.image_size, self.cfg.run.seed,
                            self.cfg.data.hflip)

    def prepare_batch(self, raw: dict, runtime: Runtime) -> DepthBatch:
        dev, nb, d = runtime.device, runtime.device.type == "cuda", self.cfg.data
        images = raw["images"].to(dev, non_blocking=nb).permute(0, 3, 1, 2).float() / 255
        mean = torch.tensor(d.image_mean, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(d.image_std, device=dev).view(1, 3, 1, 1)
        images = ((images - mean) / std).contiguous(
            memory_format=torch.channels_last if runtime.channels_last else torch.contiguous_format)
        depth = raw["depth"].to(dev, non_blocking=nb)[:, None].float()
        return DepthBatch(images, depth, int(raw["epoch"]), int(raw["index"]))

    def train_step(self, step: int, model: nn.Module, net: nn.Module, batch: DepthBatch,
                   opt: NamedOptimizers, runtime: Runtime, scaler: torch.amp.GradScaler
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        c = self.cfg.depth
        with runtime.autocast():
            log_depth = model(batch.images)
        if c.loss == "silog":
            loss = scale_invariant_log_loss(log_depth, batch.depth, c.silog_lambda)
        else:
            loss = l1_log_loss(log_depth, batch.depth)
        o = opt["depth"]
        o.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(o)
        scaler.update()
        with torch.no_grad():  # a readable number beside the loss: mean |log error|
            l1 = l1_log_loss(log_depth.detach(), batch.depth)
        return {"depth": loss.detach(), "l1_log": l1}, {"log_depth": log_depth.detach()}

    @torch.no_grad()
    def make_grid(self, out: dict[str, torch.Tensor], batch: DepthBatch) -> np.ndarray | None:
        """Up to 4 images: image | ground-truth depth | predicted depth (grey, near = bright,
        one scale per row)."""
        d = self.cfg.data
        mean = torch.tensor(d.image_mean, device=batch.images.device).view(3, 1, 1)
        std = torch.tensor(d.image_std, device=batch.images.device).view(3, 1, 1)
        rows = []
        for k in range(min(4, batch.num_images)):
            image = batch.images[k].float() * std + mean
            gt = batch.depth[k, 0]
            pred = torch.exp(out["log_depth"][k, 0].float())
            valid = gt > 0
            lo = float(gt[valid].min()) if valid.any() else 0.0
            hi = float(gt[valid].max()) if valid.any() else 1.0

            def grey(x: torch.Tensor, lo: float = lo, hi: float = hi) -> torch.Tensor:
                return (1 - (x - lo) / max(hi - lo, 1e-6)).clamp(0, 1).expand(3, -1, -1)

            tiles = [image, torch.where(valid, grey(gt), torch.zeros_like(gt)), grey(pred)]
            rows.append(to_u8(torch.cat(tiles, dim=2).permute(1, 2, 0)))
        return np.concatenate(rows, axis=0) if rows else None


def depth_pairs(object_depth: np.ndarray) -> set[tuple[int, int]]:
    """Occlusion pairs from per-object depths: (q, p) for every two objects with
    depth[q] < depth[p] (the nearer occludes; equal or NaN depths give no pair)."""
    d = np.asarray(object_depth, np.float64)
    q, p = np.nonzero(d[:, None] < d[None, :])
    return {(int(a), int(b)) for a, b in zip(q, p, strict=True)}


def mean_depth_in_masks(depth: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) mean of depth (H, W) over each mask (N, H, W) bool; NaN for an empty mask."""
    n = masks.reshape(len(masks), -1)
    counts = n.sum(1)
    sums = n.astype(np.float64) @ depth.reshape(-1).astype(np.float64)
    out = np.full(len(masks), np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


class DepthNetMethod:
    """The evaluation method (module docstring): a `DepthNet` and the input transform of its
    training config (image_size S, image_mean, image_std)."""

    name = "depth_net"
    paints = False
    segments = False  # no masks (Table 1 n/a) ...
    layers = True  # ... but occlusion pairs (Table 5)

    def __init__(self, net: torch.nn.Module, image_size: int, image_mean: Sequence[float],
                 image_std: Sequence[float]):
        self.net, self.S = net.eval(), image_size
        self.mean, self.std = tuple(image_mean), tuple(image_std)

    @torch.no_grad()
    def depth_map(self, image: np.ndarray) -> np.ndarray:
        """The predicted depth (metres) of an (H, W, 3) uint8 image at its own resolution."""
        dev = next(self.net.parameters()).device
        H, W = image.shape[:2]
        planes = image.transpose(2, 0, 1).astype(np.float32)
        if (H, W) != (self.S, self.S):  # as the training data (image_data.resized_image)
            planes = np.clip(np.rint(resize_planes(planes, self.S)), 0, 255)
        x = torch.from_numpy(np.ascontiguousarray(planes)).to(dev)[None] / 255
        x = (x - x.new_tensor(self.mean).view(1, 3, 1, 1)) / x.new_tensor(self.std).view(1, 3, 1, 1)
        log_depth = F.interpolate(self.net(x).float(), size=(H, W), mode="bilinear",
                                  align_corners=False)
        return torch.exp(log_depth)[0, 0].cpu().numpy()

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        depth = self.depth_map(inputs.original_image())
        pairs = depth_pairs(mean_depth_in_masks(depth, inputs.input_visible))
        return MethodOutput(full_probs=None, box_full=None, painted=None, occlusion_pairs=pairs)


@register_method("depth_net", task="depth_net")
def build_depth_net(ctx: MethodContext) -> EvalMethod:
    """Single-image depth (Table 5's baseline): depth layering only."""
    net, cfg, identity = ctx.load()
    method = DepthNetMethod(net, cfg.depth.image_size, cfg.data.image_mean, cfg.data.image_std)
    return EvalMethod("depth_net", method, ctx.reference_cfg, paints=False, checkpoint=identity,
                      hparams=net.hparams, notes=[
                          "depth layering only: each object's depth is the mean predicted depth "
                          "inside its given S_V; of two objects the nearer occludes"])
