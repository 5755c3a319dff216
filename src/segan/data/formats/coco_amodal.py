"""COCO-style amodal files: COCOA-cls, D2SA (D2S amodal) and UOAIS-Sim.

COCO instance JSON whose annotations carry, besides ``segmentation`` (the amodal mask S_F,
polygons or RLE):

- ``visible_mask`` (S_V, RLE);
- ``invisible_mask`` (S_I; COCOA-cls, D2SA) or ``occluded_mask`` (UOAIS);
- ``occlude_rate`` (COCOA-cls) or ``occluded_rate`` (D2SA, UOAIS).

One JSON file per split (``COCO_amodal_train2014_with_classes.json``,
``D2S_amodal_training_rot0.json``, ``coco_anns_uoais_sim_train.json``, ...); the split's name
comes from the file's name (train/val/test) unless given. Images are looked for in the usual
folders next to the file (``images/``, ``train2014/``, ...) unless given.
"""

from __future__ import annotations

from pathlib import Path

from . import _cocolike
from .base import SourceSplit, SplitSpec

NAME = "coco-amodal"
ALIASES = ("cocoa-cls", "d2sa", "uoais")
TITLE = "COCO-style amodal JSON (COCOA-cls, D2SA, UOAIS)"
HAS_APPEARANCE = False
HAS_OCCLUSION = False
LOST = (
    "no appearance images: the painter has no target, so training updates the segmentor "
    "only and painting metrics are not applicable",
    "no occlusion pairs: the depth-layering table (Table 5) has no ground truth",
    "no depth (UOAIS's depth_file_name is not carried: its unit is not ours)",
    "iscrowd annotations are skipped",
)


def discover(src: Path, splits: dict[str, Path] | None = None,
             images: dict[str, Path] | None = None) -> list[SplitSpec]:
    return _cocolike.discover(src, splits, images)


def read(src: Path, spec: SplitSpec) -> SourceSplit:
    return _cocolike.read_split(src, spec)
