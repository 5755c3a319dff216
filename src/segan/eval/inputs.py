"""The evaluation's inputs: the split's images, and each image's objects as a method sees them.

- `load_split`: the dataset (another format converted once), the split's annotated images,
  `limit` / `sample` applied, every file checked before any model runs.
- `prepare_image`: inputs exactly as in training at test time (`segan.train.cache.
  render_image` and `segan.train.data.prepare_batch`): the image resized (bilinear,
  antialiased, uint8) to the config's ``data.image_size`` S and normalised; S_V resized the
  same way (soft); each object's box is its S_V box in the S x S frame grown by
  ``data.expand_test`` (0.2) of its size per side, clipped to the image (`ImageInputs`, the
  contract every method reads).
- Frames: the segmentor's o (m x m) covers the expanded box of the S x S frame; the box in the
  original H x W frame is the same box scaled by (W / S, H / S), where o is pasted back
  (`segan.transforms.paste_to_image`) and scored at the original resolution.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from segan.config import TrainConfig
from segan.data import coco
from segan.data.formats import resolve_dataset
from segan.train.cache import annotation_path, render_image
from segan.transforms import (
    crop_object_masks,
    model_inputs,
    resize_planes_u8,
    visible_boxes_in_frame,
)

from .baselines import ImageInputs


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --split, --data-format and --sample, as `load_split` takes them: the options of
    the analysis scripts (scripts/) that read one split the way the evaluation does."""
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-format", default="auto")
    parser.add_argument("--sample", type=int, default=None,
                        help="N images spread over the split")


def load_split(data_dir: str | os.PathLike, split: str, data_format: str = "auto",
               cache_dir: str | os.PathLike | None = None, limit: int | None = None,
               sample: int | None = None, progress: bool = False
               ) -> tuple[coco.AmodalDataset, Path, Path, list[int]]:
    """(the split's dataset, the segan-coco folder it was read from, its annotation file, the
    ids of the images to evaluate). Images without objects are left out; limit: the first N;
    sample: N spread evenly over the split (every scene represented; deterministic). Raises
    FileNotFoundError for a missing split, ValueError for a split without objects and
    `coco.DatasetFormatError` naming the missing image or mask files."""
    data_dir = resolve_dataset(data_dir, data_format, cache_dir, progress=progress)
    ann_file = annotation_path(data_dir, split)
    if not ann_file.is_file():
        splits = sorted(p.stem for p in (Path(data_dir) / "annotations").glob("*.json"))
        raise FileNotFoundError(f"no annotation file {ann_file} (splits: {', '.join(splits)})")
    ds = coco.load_annotations(ann_file, root=data_dir)
    image_ids = [i for i in ds.image_ids if ds.annotations[i]]
    if not image_ids:
        raise ValueError(f"{ann_file}: split {split!r} has no annotated object ({len(ds)} "
                         "images): nothing to evaluate")
    if limit is not None:
        image_ids = image_ids[:limit]
    if sample is not None and sample < len(image_ids):
        picks = np.linspace(0, len(image_ids) - 1, sample).round().astype(int)
        image_ids = [image_ids[i] for i in picks]
    missing = ds.missing_files(image_ids)  # before any model runs: not skipped in silence
    if missing:
        raise coco.DatasetFormatError(missing)
    return ds, Path(data_dir), ann_file, image_ids


def input_key(cfg: TrainConfig) -> tuple:
    """What `prepare_image` reads from a config: methods with equal keys share their inputs."""
    d = cfg.data
    return (d.image_size, d.expand_test, cfg.model.crop_size, tuple(d.image_mean),
            tuple(d.image_std))


def prepare_image(ds: coco.AmodalDataset, image_id: int, cfg: TrainConfig,
                  device: torch.device, given_visible: np.ndarray | None = None,
                  image: np.ndarray | None = None,
                  masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  context_visible: np.ndarray | None = None) -> ImageInputs:
    """One image's objects as the model sees them at test time (see `ImageInputs`).

    given_visible: (N, H, W) bool, the S_V to give the methods instead of the ground truth
    (``--visible predicted``): the S_V plane and the boxes are made from it, resized like the
    ground truth. An empty mask gives an empty box (such objects are not run: misses).
    image, masks: `ds.load_image(image_id)` and `ds.image_masks(image_id)` when the caller has
    decoded them already (decoded here otherwise).
    context_visible: (M, H, W) bool, visible masks of things that are not scored (the
    segmenter's unmatched predictions), made into `ImageInputs.context_*` like S_V."""
    S, c = cfg.data.image_size, cfg.model.crop_size
    anns = ds.annotations[image_id]
    H, W = ds.images[image_id]["height"], ds.images[image_id]["width"]
    image = ds.load_image(image_id) if image is None else image
    masks = ds.image_masks(image_id) if masks is None else masks
    full, visible, _ = masks
    image_u8, planes = render_image(ds, image_id, S, image, masks)  # (S,S,3), (N,5,S,S) uint8
    if given_visible is not None:
        if given_visible.shape != visible.shape:
            raise ValueError(f"image {image_id}: given S_V has shape {given_visible.shape}, "
                             f"the image's masks {visible.shape}")
        planes[:, 0] = resize_planes_u8(given_visible[:, None].astype(np.uint8) * np.uint8(255),
                                        S)[:, 0]
        vboxes = [coco.mask_bbox(m) for m in given_visible]
    else:
        vboxes = [ann.get("visible_bbox") or coco.mask_bbox(visible[k])
                  for k, ann in enumerate(anns)]
    n = len(anns)
    visible_u8 = planes[:, 0:1]
    if context_visible is not None and len(context_visible):
        if context_visible.shape[1:] != visible.shape[1:]:
            raise ValueError(f"image {image_id}: context masks have shape "
                             f"{context_visible.shape}, the image's masks {visible.shape}")
        visible_u8 = np.concatenate([visible_u8, resize_planes_u8(
            context_visible[:, None].astype(np.uint8) * np.uint8(255), S)])
        vboxes = list(vboxes) + [coco.mask_bbox(m) for m in context_visible]
    else:
        context_visible = None
    images, visible_masks, boxes = model_inputs(image_u8, visible_u8, vboxes, (H, W), cfg,
                                                device)
    context_masks, context_boxes = visible_masks[n:], boxes[n:]
    visible_masks, boxes = visible_masks[:n], boxes[:n]
    planes_t = torch.from_numpy(planes[:, 1:5]).to(device).float() / 255  # S_F, RGB * a
    painter = crop_object_masks(planes_t, boxes, c)
    return ImageInputs(
        image_id=image_id, ann_ids=[int(a["id"]) for a in anns], orig_hw=(H, W),
        full=full, visible=visible, images=images,
        visible_masks=visible_masks, boxes=boxes,
        target=painter[:, 1:4].clamp(0, 1), full_crop=painter[:, 0:1],
        has_appearance=np.array([a.get("appearance_file") is not None for a in anns], bool),
        given_visible=given_visible, image=image,
        visible_box=visible_boxes_in_frame(vboxes[:n], (H, W), S, device),
        categories=[ds.category_name(a.get("category_id")) for a in anns],
        context_visible=context_visible,
        context_masks=None if context_visible is None else context_masks,
        context_boxes=None if context_visible is None else context_boxes,
    )
