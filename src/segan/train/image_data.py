"""Image-level training data: whole images with all their objects (the detector) or their
scene depth (the depth network), for the image-level tasks (`segan.train.image_tasks`,
`segan.baselines.maskrcnn_full`, `segan.baselines.depth_net`).

Order and randomness are pure functions of (seed, epoch, batch), as for the object batches of
`segan.train.data`: epoch e visits the split's images in the permutation drawn from
(seed, e); a batch is `batch_images` consecutive images of it; under DDP rank r takes global
batches r, r + W, r + 2W, ... of an epoch cut to a multiple of W batches; flips are drawn from
(seed, epoch, global batch index). So the data does not depend on the number of DataLoader
workers, and a resumed run continues from (epoch, index) exactly.

The CPU side (`DetectionBatches`, `DepthBatches`, run in DataLoader workers) decodes the PNGs
and RLEs of the segan-coco files; the device side is in the tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from segan.data import coco


@dataclass(frozen=True)
class ImageBatchKey:
    """`index` counts this rank's batches of the epoch; `global_index` the batch among all
    ranks' (it seeds the batch's draws); `images` are positions in the split's image list."""

    epoch: int
    index: int
    global_index: int
    images: tuple[int, ...]


def epoch_image_order(num_images: int, seed: int, epoch: int) -> np.ndarray:
    """The split's image positions in epoch `epoch`'s order."""
    return np.random.default_rng([seed, epoch, 2]).permutation(num_images)


class ImageBatchSampler:
    """The endless sequence of this rank's `ImageBatchKey`s, from (epoch, index) on. The last
    partial batch of an epoch is dropped."""

    def __init__(self, num_images: int, batch_images: int, seed: int, rank: int = 0,
                 world_size: int = 1, epoch: int = 0, index: int = 0):
        self.num_images, self.B, self.seed = num_images, batch_images, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.index = epoch, index
        self.batches_per_epoch = (num_images // batch_images) // world_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"the split has {num_images} images with objects: fewer than "
                             f"batch_images ({batch_images}) x processes ({world_size})")

    def __iter__(self) -> Iterator[ImageBatchKey]:
        epoch, j = self.epoch, self.index
        while True:
            order = epoch_image_order(self.num_images, self.seed, epoch)
            while j < self.batches_per_epoch:
                g = j * self.world_size + self.rank
                images = order[g * self.B:(g + 1) * self.B]
                yield ImageBatchKey(epoch, j, g, tuple(int(i) for i in images))
                j += 1
            epoch, j = epoch + 1, 0


def _flips(seed: int, key: ImageBatchKey, hflip: bool) -> np.ndarray:
    if not hflip:
        return np.zeros(len(key.images), bool)
    return np.random.default_rng([seed, key.epoch, key.global_index, 3]).random(
        len(key.images)) < 0.5


def xywh_to_xyxy(box: list[float]) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]


class DetectionBatches(torch.utils.data.Dataset):
    """ImageBatchKey -> a list of per-image dicts (CPU tensors) for Mask R-CNN:

    image (H, W, 3) uint8; boxes (n, 4) float32 x1, y1, x2, y2 in pixels (pixel j spans
    [j, j + 1)); masks (n, H, W) uint8 in {0, 1}; ann_ids (n,) int64. mask_target "visible":
    S_V and its box (Multipath's role, predicted S_V); "full": S_F and the amodal box (the
    full-mask baseline). Flipped images (``hflip``) have their masks and boxes flipped too.
    """

    def __init__(self, ds: coco.AmodalDataset, image_ids: list[int], mask_target: str,
                 seed: int, hflip: bool = False):
        if mask_target not in ("visible", "full"):
            raise ValueError(f"mask_target must be 'visible' or 'full', got {mask_target!r}")
        self.ds, self.image_ids, self.mask_target = ds, image_ids, mask_target
        self.seed, self.hflip = seed, hflip

    def __len__(self) -> int:
        return len(self.image_ids)

    def sample(self, position: int, flip: bool = False) -> dict[str, torch.Tensor]:
        ds, iid = self.ds, self.image_ids[position]
        image = ds.load_image(iid)
        anns = ds.annotations[iid]
        full, visible, _ = ds.image_masks(iid)
        masks = visible if self.mask_target == "visible" else full
        field = "visible_bbox" if self.mask_target == "visible" else "bbox"
        boxes = np.array([xywh_to_xyxy(a.get(field) or coco.mask_bbox(m))
                          for a, m in zip(anns, masks, strict=True)], np.float32).reshape(-1, 4)
        if flip:
            W = image.shape[1]
            image = image[:, ::-1]
            masks = masks[:, :, ::-1]
            boxes = np.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], 1)
        return {
            "image": torch.from_numpy(np.require(image, requirements=["C", "W"])),
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
            "masks": torch.from_numpy(masks.astype(np.uint8, order="C")),
            "ann_ids": torch.tensor([int(a["id"]) for a in anns], dtype=torch.int64),
        }

    def __getitem__(self, key: ImageBatchKey) -> dict:
        flips = _flips(self.seed, key, self.hflip)
        return {"images": [self.sample(p, bool(f)) for p, f in zip(key.images, flips,
                                                                   strict=True)],
                "epoch": key.epoch, "index": key.index}


class DepthBatches(torch.utils.data.Dataset):
    """ImageBatchKey -> {"images" (B, S, S, 3) uint8, "depth" (B, S, S) float32 metres (0 = no
    surface), "epoch", "index"}: each image resized to S x S (bilinear, antialiased, as the
    training cache), its depth PNG by nearest neighbour (no depth is invented across an edge)."""

    def __init__(self, ds: coco.AmodalDataset, image_ids: list[int], image_size: int,
                 seed: int, hflip: bool = False):
        self.ds, self.image_ids, self.S = ds, image_ids, image_size
        self.seed, self.hflip = seed, hflip

    def __len__(self) -> int:
        return len(self.image_ids)

    def sample(self, position: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
        iid = self.image_ids[position]
        image, depth = resized_image(self.ds, iid, self.S), resized_depth(self.ds, iid, self.S)
        if flip:
            image, depth = image[:, ::-1], depth[:, ::-1]
        cw = ["C", "W"]  # contiguous and writable (torch.from_numpy)
        return np.require(image, requirements=cw), np.require(depth, requirements=cw)

    def __getitem__(self, key: ImageBatchKey) -> dict:
        flips = _flips(self.seed, key, self.hflip)
        pairs = [self.sample(p, bool(f)) for p, f in zip(key.images, flips, strict=True)]
        return {"images": torch.from_numpy(np.stack([p[0] for p in pairs])),
                "depth": torch.from_numpy(np.stack([p[1] for p in pairs])),
                "epoch": key.epoch, "index": key.index}


def resized_image(ds: coco.AmodalDataset, image_id: int, size: int) -> np.ndarray:
    """The image as (S, S, 3) uint8, resized as the training cache resizes (bilinear, antialias)."""
    from segan.transforms import resize_planes

    image = ds.load_image(image_id)
    if image.shape[:2] == (size, size):
        return image
    planes = resize_planes(image.transpose(2, 0, 1).astype(np.float32), size)
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def resized_depth(ds: coco.AmodalDataset, image_id: int, size: int) -> np.ndarray:
    """The image's depth in metres as (S, S) float32 by nearest neighbour (pixel centres)."""
    depth = ds.load_depth(image_id)
    if depth is None:
        raise ValueError(f"{ds.path}: image {image_id} ({ds.images[image_id]['file_name']}) has "
                         "no depth_file: the depth network trains on the scene depth")
    H, W = depth.shape
    rows = np.minimum(((np.arange(size) + 0.5) * H / size).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * W / size).astype(np.int64), W - 1)
    return depth[rows[:, None], cols[None, :]]


class CompleterBatches(torch.utils.data.Dataset):
    """ImageBatchKey -> {"images" (B, S, S, 3) uint8, "backgrounds" (B, S, S, 3) uint8 (the
    room shell alone: ``images[].background_file``), "holes" (B, S, S) bool, "epoch",
    "index"}, for the background completer (`segan.train.completer_task`).

    Each image's hole is the union of the visible masks S_V of k of its annotated objects, k
    drawn in [1, min(hole_objects, N)] and the objects without replacement, from one stream
    per (seed, epoch, global batch index), image after image; resized by
    `segan.transforms.resize_hole` (grown by `hole_dilate`: the re-render differs on the
    objects' anti-aliased edge ring too). Images
    and room shells are resized like the training cache (bilinear, antialiased)."""

    def __init__(self, ds: coco.AmodalDataset, image_ids: list[int], image_size: int,
                 seed: int, hole_objects: int, hole_dilate: int = 1, hflip: bool = False):
        self.ds, self.image_ids, self.S = ds, image_ids, image_size
        self.seed, self.hole_objects, self.hole_dilate = seed, hole_objects, hole_dilate
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.image_ids)

    def sample(self, position: int, rng: np.random.Generator, flip: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from segan.transforms import resize_hole, resize_image_u8

        ds, iid = self.ds, self.image_ids[position]
        background = ds.load_background(iid)
        if background is None:
            raise ValueError(f"{ds.path}: image {iid} ({ds.images[iid]['file_name']}) has no "
                             "background_file: the background completer trains on the room "
                             "shell renders (segan generate --deocclusion SHARE)")
        visible = ds.image_masks(iid)[1]
        n = len(visible)
        k = int(rng.integers(1, min(self.hole_objects, n) + 1))
        chosen = rng.choice(n, size=k, replace=False)
        hole = resize_hole(visible[chosen].any(0), self.S, self.hole_dilate)
        image = resize_image_u8(ds.load_image(iid), self.S)
        background = resize_image_u8(background, self.S)
        if flip:
            image, background, hole = image[:, ::-1], background[:, ::-1], hole[:, ::-1]
        cw = ["C", "W"]
        return (np.require(image, requirements=cw), np.require(background, requirements=cw),
                np.require(hole, requirements=cw))

    def __getitem__(self, key: ImageBatchKey) -> dict:
        flips = _flips(self.seed, key, self.hflip)
        rng = np.random.default_rng([self.seed, key.epoch, key.global_index, 4])
        triples = [self.sample(p, rng, bool(f)) for p, f in zip(key.images, flips, strict=True)]
        return {"images": torch.from_numpy(np.stack([t[0] for t in triples])),
                "backgrounds": torch.from_numpy(np.stack([t[1] for t in triples])),
                "holes": torch.from_numpy(np.stack([t[2] for t in triples])),
                "epoch": key.epoch, "index": key.index}
