"""Training batches: a deterministic object order, cheap CPU reads, section 5.1 on the device.

A batch is K = `batch_objects` objects (fixed K, so shapes stay static) and the images they come
from. The order of an epoch puts up to `objects_per_image` objects of one image next to each
other (the image's objects are shuffled and split into near-equal chunks; the chunks are
shuffled), so a batch holds about K / objects_per_image images: each image is read and sent
once, and with "roi" fusion its backbone pass is shared by its objects. Every object is seen
once per epoch; the last partial batch of an epoch is dropped (other objects each epoch).
With `fixed_images`, every chunk holds exactly `objects_per_image` objects (an image's objects
are topped up with redraws of its own objects) and each chunk is one image row of the batch:
every batch has K / objects_per_image images, so all shapes are fixed (cuDNN autotuning).

Randomness is a pure function of (seed, epoch, batch): the order from (seed, epoch), the box
expansion ratios and flips of a batch from (seed, epoch, global batch index). So the data a
run sees does not depend on the number of DataLoader workers, and resuming needs only
(epoch, batch index). Under DDP, rank r takes global batches r, r + W, r + 2W, ... of an
epoch cut to a multiple of W batches.

CPU side (`ObjectBatches`, in DataLoader workers): slices of the cache's memory maps: the B
images (B, S, S, 3) uint8 and the K objects' patches, concatenated (P, 5) uint8, with their
placement, S_V boxes and the batch's random draws. Device side (`prepare_batch`): patches pasted
into per-object S x S canvases (one scatter), flips, the random 10-30% box expansion (clipped
to the image), then every crop in batched roi_align calls: S_V and S_F at 58 x 58 from the
expanded box (the ground truth of Eq. 3), S_F and the appearance at the painter's crop size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from segan.config import DataConfig
from segan.transforms import (
    amodal_base_boxes,
    crop_object_masks,
    expand_boxes_per_side,
    normalize_images,
)

from .cache import PATCH_CHANNELS, AmodalCache


@dataclass(frozen=True)
class BatchKey:
    """What a DataLoader worker turns into a batch. `index` counts this rank's batches of the
    epoch; `global_index` the batch among all ranks' (it seeds the batch's random draws)."""

    epoch: int
    index: int
    global_index: int
    objects: tuple[int, ...]
    # 0: the batch's images are the distinct images of `objects`; n > 0 (fixed_images): the
    # objects come in runs of n of one image, and each run gets its own image row
    per_image: int = 0


def epoch_chunks(obj_start: np.ndarray, objects_per_image: int, seed: int, epoch: int,
                 fixed: bool = False) -> list[np.ndarray]:
    """The epoch's chunks, in order: each holds up to `objects_per_image` objects of one image
    (an image's objects shuffled and split into near-equal parts). `fixed`: exactly
    `objects_per_image` each: the image's shuffled objects, then as many redraws of them
    (without replacement while they last) as fill its last chunk."""
    n = objects_per_image
    rng = np.random.default_rng([seed, epoch])
    chunks: list[np.ndarray] = []
    for i in range(len(obj_start) - 1):
        a, b = int(obj_start[i]), int(obj_start[i + 1])
        if b > a:
            perm = a + rng.permutation(b - a)
            count = math.ceil((b - a) / n)
            if fixed:
                extra = count * n - (b - a)
                if extra:
                    perm = np.concatenate([perm, rng.choice(perm, extra, replace=extra > b - a)])
                chunks.extend(perm.reshape(count, n))
            else:
                chunks.extend(np.array_split(perm, count))
    return [chunks[k].astype(np.int64) for k in rng.permutation(len(chunks))]


def epoch_order(obj_start: np.ndarray, objects_per_image: int, seed: int, epoch: int,
                fixed: bool = False) -> np.ndarray:
    """All object indices in the epoch's order: its chunks one after the other."""
    chunks = epoch_chunks(obj_start, objects_per_image, seed, epoch, fixed)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int64)


def chunks_per_epoch(obj_start: np.ndarray, objects_per_image: int) -> int:
    counts = np.diff(np.asarray(obj_start, np.int64))
    return int(np.ceil(counts[counts > 0] / objects_per_image).sum())


class ObjectBatchSampler:
    """The endless sequence of this rank's `BatchKey`s, from (epoch, index) on."""

    def __init__(self, obj_start: np.ndarray, batch_objects: int, objects_per_image: int,
                 seed: int, rank: int = 0, world_size: int = 1, epoch: int = 0, index: int = 0,
                 fixed_images: bool = False):
        self.obj_start = np.asarray(obj_start)
        self.K, self.n, self.seed = batch_objects, objects_per_image, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.index = epoch, index
        self.fixed = fixed_images
        if fixed_images and batch_objects % objects_per_image:
            raise ValueError(f"fixed_images needs batch_objects ({batch_objects}) divisible by "
                             f"objects_per_image ({objects_per_image})")
        # with fixed_images an epoch holds n objects per chunk, redraws included
        num_objects = (chunks_per_epoch(self.obj_start, self.n) * self.n if fixed_images
                       else int(self.obj_start[-1]))
        self.batches_per_epoch = (num_objects // self.K) // world_size  # per rank
        if self.batches_per_epoch < 1:
            raise ValueError(f"the split has {num_objects} objects: fewer than batch_objects "
                             f"({self.K}) x processes ({world_size})")

    def __iter__(self) -> Iterator[BatchKey]:
        epoch, j = self.epoch, self.index
        per_image = self.n if self.fixed else 0
        while True:
            order = epoch_order(self.obj_start, self.n, self.seed, epoch, self.fixed)
            while j < self.batches_per_epoch:
                g = j * self.world_size + self.rank
                objects = order[g * self.K:(g + 1) * self.K]
                yield BatchKey(epoch, j, g, tuple(int(o) for o in objects), per_image)
                j += 1
            epoch, j = epoch + 1, 0


def read_rows(mm: np.ndarray, rows: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """mm[rows], reading the memory map in ascending row order: `order` is the argsort of
    `rows` (None: rows are sorted already, one fancy-index copy)."""
    if order is None:
        return mm[rows]
    out = np.empty((len(rows), *mm.shape[1:]), mm.dtype)
    out[order] = mm[rows[order]]
    return out


class ObjectBatches(torch.utils.data.Dataset):
    """BatchKey -> the batch's raw bytes and draws (a dict of CPU tensors). Keys:

    images (B, S, S, 3) uint8; visible_union (B, S, S) uint8 (U of each image, every annotated
    object's S_V; only with `with_union`); patches (P, 5) uint8 (object k's (h, w, 5) patch,
    row-major, after those of objects < k); patch_xywh (K, 4) int64 (placement in the S x S frame);
    obj_image (K,) int64 (row of `images`); visible_box (K, 4) float32 (x1, y1, x2, y2 of S_V);
    ratios (K, 4) float32 (expansion of the left, top, right, bottom side); pull (K, 4)
    float32 (how far each side of the box starts toward the amodal box: `amodal_base_boxes`,
    0 = S_V's box); flip (B,) bool;
    full_box (K, 4) float32 (of S_F); ann_ids, has_appearance (K,); epoch, index (ints).
    """

    def __init__(self, cache: AmodalCache, cfg: DataConfig, seed: int, train: bool = True,
                 with_union: bool = False):
        self.cache, self.cfg, self.seed, self.train = cache, cfg, seed, train
        # U is read only for the models that take it (crop_unet's context): a third more bytes
        # per image row otherwise read and sent for nothing
        self.with_union = with_union

    def __len__(self) -> int:  # keys are BatchKeys, not integers; a nominal length
        return self.cache.num_objects

    def __getitem__(self, key: BatchKey) -> dict[str, torch.Tensor | int]:
        c, cfg = self.cache, self.cfg
        objects = np.asarray(key.objects, np.int64)
        K = len(objects)
        images_of = c.obj_image[objects]
        if key.per_image:  # one image row per run of per_image objects (fixed_images)
            n = key.per_image
            runs = images_of.reshape(-1, n) if K % n == 0 else None
            if runs is None or (runs != runs[:, :1]).any():
                raise ValueError(f"batch {key.index} of epoch {key.epoch}: objects do not come "
                                 f"in runs of {n} of one image (fixed_images)")
            unique, obj_image = runs[:, 0], np.arange(K) // n
            order = np.argsort(unique, kind="stable")
        else:
            unique, obj_image = np.unique(images_of, return_inverse=True)
            order = None  # already sorted
        images = read_rows(c.images, unique, order)
        extra = {}
        if self.with_union:
            extra["visible_union"] = torch.from_numpy(np.ascontiguousarray(
                read_rows(c.visible_union, unique, order)))
        xywh = c.patch_xywh[objects].astype(np.int64)
        sizes = xywh[:, 2] * xywh[:, 3] * PATCH_CHANNELS
        patches = np.empty(int(sizes.sum()), np.uint8)
        pos = 0
        mm = c.patches
        for j, n in zip(c.patch_offset[objects], sizes, strict=True):
            patches[pos:pos + n] = mm[int(j):int(j) + int(n)]
            pos += int(n)
        rng = np.random.default_rng([self.seed, key.epoch, key.global_index, 1])
        if self.train:
            shape = (K, 4) if cfg.expand_sides == "independent" else (K, 1)
            ratios = rng.uniform(cfg.expand_min, cfg.expand_max, shape).astype(np.float32)
            ratios = np.broadcast_to(ratios, (K, 4)).copy()
            flip = rng.random(len(unique)) < 0.5 if cfg.hflip else np.zeros(len(unique), bool)
            pull = np.zeros((K, 4), np.float32)
            if cfg.amodal_box_share > 0:  # drawn last: the other draws stay those of share 0
                chosen = rng.random(K) < cfg.amodal_box_share
                pull[chosen] = rng.uniform(0, 1, (int(chosen.sum()), 4))
        else:
            ratios = np.full((K, 4), cfg.expand_test, np.float32)
            flip = np.zeros(len(unique), bool)
            pull = np.zeros((K, 4), np.float32)
        return {
            "images": torch.from_numpy(np.ascontiguousarray(images)),
            "patches": torch.from_numpy(patches).view(-1, PATCH_CHANNELS),
            "patch_xywh": torch.from_numpy(xywh),
            "obj_image": torch.from_numpy(obj_image.astype(np.int64)),
            "visible_box": torch.from_numpy(c.visible_box[objects]),
            "full_box": torch.from_numpy(c.full_box[objects]),
            "ratios": torch.from_numpy(ratios),
            "pull": torch.from_numpy(pull),
            "flip": torch.from_numpy(flip),
            "ann_ids": torch.from_numpy(c.ann_ids[objects]),
            "has_appearance": torch.from_numpy(c.has_appearance[objects]),
            "epoch": key.epoch,
            "index": key.index,
            **extra,
        }


def make_loader(dataset: ObjectBatches, sampler: ObjectBatchSampler, num_workers: int,
                prefetch_factor: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    """One DataLoader for the whole run (the sampler never ends): each item is a whole batch.

    It gets its own generator: by default an iterator draws its workers' base seed from the
    global torch generator, which would shift the dropout stream of a resumed run."""
    kwargs: dict = {}
    if num_workers > 0:
        kwargs = dict(persistent_workers=True, prefetch_factor=prefetch_factor)
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=sampler,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(sampler.seed),
                                       **kwargs)


# --- device side ---


@dataclass
class Batch:
    """One training batch on the device (section 5.1), K objects of B images.

    images (B, 3, S, S): normalised (x - mean) / std; visible_masks (K, 1, S, S): S_V in [0, 1]
    over the whole frame; boxes (K, 5): (image row, x1, y1, x2, y2), the expanded boxes;
    visible_gt, full_gt (K, 1, m, m): S_V and S_F over each box (soft, in [0, 1]); target
    (K, 3, c, c): the full object's appearance over the box in [-1, 1] (black = -1 outside S_F);
    full_crop (K, 1, c, c): S_F over the box at the painter's size. For the baselines:
    full_masks (K, 1, S, S): S_F over the whole frame; visible_box, full_box (K, 4): x1, y1,
    x2, y2 of S_V and of S_F (the amodal box) in the S x S frame, before any expansion.
    visible_union (B, 1, S, S): U, the union of every annotated object's S_V in each image
    (not only the batch's objects), in [0, 1]; None when the raw batch has none.
    """

    images: torch.Tensor
    visible_masks: torch.Tensor
    boxes: torch.Tensor
    visible_gt: torch.Tensor
    full_gt: torch.Tensor
    target: torch.Tensor
    full_crop: torch.Tensor
    has_appearance: torch.Tensor
    epoch: int = 0
    index: int = 0
    full_masks: torch.Tensor | None = None
    visible_box: torch.Tensor | None = None
    full_box: torch.Tensor | None = None
    visible_union: torch.Tensor | None = None

    @property
    def num_objects(self) -> int:
        return self.boxes.shape[0]


def paste_patches(patches: torch.Tensor, xywh: torch.Tensor, size: int) -> torch.Tensor:
    """Per-object canvases (K, S, S, C) uint8, zero outside each object's patch, in one scatter.

    patches (P, C): the K patches, each (h, w, C) row-major, one after the other; xywh (K, 4)
    long: each patch's (x0, y0, w, h) in the S x S frame.
    """
    K, C = xywh.shape[0], patches.shape[1]
    canvas = patches.new_zeros(K * size * size, C)
    if K == 0 or patches.shape[0] == 0:
        return canvas.view(K, size, size, C)
    x0, y0, w, h = xywh.unbind(1)
    counts = w * h
    obj = torch.repeat_interleave(torch.arange(K, device=xywh.device), counts,
                                  output_size=patches.shape[0])
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(patches.shape[0], device=xywh.device) - start[obj]
    row, col = local // w[obj], local % w[obj]
    canvas[obj * size * size + (y0[obj] + row) * size + (x0[obj] + col)] = patches
    return canvas.view(K, size, size, C)


@torch.no_grad()
def prepare_batch(raw: dict, device: torch.device, cfg: DataConfig, mask_size: int,
                  crop_size: int, channels_last: bool = False) -> Batch:
    """A worker's raw batch -> `Batch` on `device` (module docstring)."""
    nb = device.type == "cuda"
    images = raw["images"].to(device, non_blocking=nb)  # (B, S, S, 3) uint8
    union = raw.get("visible_union")  # (B, S, S) uint8, or None
    if union is not None:
        union = union.to(device, non_blocking=nb)
    S = images.shape[1]
    canvas = paste_patches(raw["patches"].to(device, non_blocking=nb),
                           raw["patch_xywh"].to(device, non_blocking=nb), S)  # (K, S, S, 5)
    obj_image = raw["obj_image"].to(device, non_blocking=nb)
    vbox = raw["visible_box"].to(device, non_blocking=nb)
    fbox = raw["full_box"].to(device, non_blocking=nb)
    if bool(raw["flip"].any()):  # decided on the CPU tensor: no device sync
        flip = raw["flip"].to(device, non_blocking=nb)
        images = torch.where(flip[:, None, None, None], images.flip(2), images)
        if union is not None:
            union = torch.where(flip[:, None, None], union.flip(2), union)
        obj_flip = flip[obj_image]
        canvas = torch.where(obj_flip[:, None, None, None], canvas.flip(2), canvas)
        flipped = torch.stack([S - vbox[:, 2], vbox[:, 1], S - vbox[:, 0], vbox[:, 3]], dim=1)
        vbox = torch.where(obj_flip[:, None], flipped, vbox)
        flipped = torch.stack([S - fbox[:, 2], fbox[:, 1], S - fbox[:, 0], fbox[:, 3]], dim=1)
        fbox = torch.where(obj_flip[:, None], flipped, fbox)

    images = normalize_images(images, cfg.image_mean, cfg.image_std)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    else:
        images = images.contiguous()
    planes = canvas.permute(0, 3, 1, 2).float() / 255  # (K, 5, S, S): S_V, S_F, RGB * a

    ratios = raw["ratios"].to(device, non_blocking=nb)
    base = vbox
    if bool(raw["pull"].any()):  # decided on the CPU tensor, as the flips
        base = amodal_base_boxes(vbox, fbox, raw["pull"].to(device, non_blocking=nb))
    xyxy = expand_boxes_per_side(base, ratios, S)
    boxes = torch.cat([obj_image[:, None].to(xyxy.dtype), xyxy], dim=1)
    gt = crop_object_masks(planes[:, 0:2], boxes, mask_size)  # 58 x 58 from the expanded box
    painter = crop_object_masks(planes[:, 1:5], boxes, crop_size)
    return Batch(
        images=images,
        visible_masks=planes[:, 0:1].contiguous(),
        boxes=boxes,
        visible_gt=gt[:, 0:1],
        full_gt=gt[:, 1:2],
        target=painter[:, 1:4] * 2 - 1,
        full_crop=painter[:, 0:1],
        has_appearance=raw["has_appearance"].to(device, non_blocking=nb),
        epoch=int(raw["epoch"]),
        index=int(raw["index"]),
        full_masks=planes[:, 1:2],
        visible_box=vbox,
        full_box=fbox,
        visible_union=None if union is None else (union.float() / 255)[:, None].contiguous(),
    )
