"""KINS (KITTI INStance amodal) and its 2020 update.

COCO-style JSON with KINS' own field names:

- KINS (``instances_train.json``, ``instances_val.json``): ``segmentation`` (amodal polygons),
  ``inmodal_seg`` (visible polygons), ``bbox``/``inmodal_bbox``, ``area``;
- KINS2020 (``update_train_2020.json``, ``update_test_2020.json``): ``a_segm``/``i_segm``,
  ``a_bbox``/``i_bbox``, ``a_area``/``i_area``.

Both carry ``oco_id`` (the object's occlusion cluster) and ``ico_id`` (its order inside the
cluster); they are kept as extra annotation fields but not turned into occlusion pairs: the
release does not document which end of the order is in front. Images are KITTI's
``training/image_2`` (train) and ``testing/image_2`` (the val/test file); the two folders reuse
file names, so each split's images go under its own folder in the converted dataset.
"""

from __future__ import annotations

from pathlib import Path

from . import _cocolike
from .base import SourceSplit, SplitSpec

NAME = "kins"
ALIASES = ("kins2020",)
TITLE = "KINS and KINS2020"
HAS_APPEARANCE = False
HAS_OCCLUSION = False
LOST = (
    "no appearance images: the painter has no target, so training updates the segmentor "
    "only and painting metrics are not applicable",
    "no occlusion pairs (oco_id/ico_id are kept as extra fields, not converted)",
    "no depth",
    "iscrowd annotations are skipped",
)
CARRY = ("oco_id", "ico_id")


def _kitti_dirs(root: Path, split: str) -> list[Path]:
    sub = "training" if split == "train" else "testing"
    return [root / sub / "image_2", root / "data_object_image_2" / sub / "image_2"]


def discover(src: Path, splits: dict[str, Path] | None = None,
             images: dict[str, Path] | None = None) -> list[SplitSpec]:
    return _cocolike.discover(src, splits, images)


def read(src: Path, spec: SplitSpec) -> SourceSplit:
    return _cocolike.read_split(src, spec, extra_dirs=_kitti_dirs, carry=CARRY)
