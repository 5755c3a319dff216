"""What segan-coco v1 is (FORMAT.md): its name and version, the amodal fields and the other
datasets' names for them, the tolerances of its checks, and the error every reader raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT_NAME = "segan-coco"
FORMAT_VERSION = 1

# Paper, section 4.2: "by visible we mean having at least 10 visible pixels".
MIN_VISIBLE_PIXELS = 10

# Checks on masks given as RLE are exact (up to float rounding); masks given as polygons are
# rasterised here, so their stored area/bbox/rate (usually computed from the polygon) and the
# visible-inside-full relation only hold up to rasterisation error.
RATE_TOL = 1e-3
BBOX_TOL_RLE = 1.0  # px; allows the w = x1 - x0 vs x1 - x0 + 1 conventions of other tools
BBOX_TOL_POLY = 2.0  # px
AREA_REL_TOL_POLY = 0.1
AREA_ABS_TOL_POLY = 10.0  # px
RATE_TOL_POLY = 0.05
SUBSET_REL_TOL_POLY = 0.05  # share of |S_V| (or |S_F|) that may disagree after rasterisation

# Other datasets' names -> canonical name. The canonical name wins where both are present.
ANNOTATION_ALIASES: dict[str, tuple[str, ...]] = {
    "segmentation": ("a_segm",),  # KINS2020 amodal
    "visible_mask": ("inmodal_seg", "i_segm"),  # KINS, KINS2020 inmodal
    "visible_bbox": ("inmodal_bbox", "i_bbox"),  # KINS, KINS2020
    "invisible_mask": ("occluded_mask",),  # UOAIS
    "bbox": ("a_bbox",),  # KINS2020
    "area": ("a_area",),  # KINS2020
    "occlude_rate": ("occluded_rate",),  # D2SA, UOAIS
}

MASK_FIELDS = ("segmentation", "visible_mask", "invisible_mask")


class DatasetFormatError(ValueError):
    """A dataset file breaks the format. The message names the file, the record and the field.

    ``errors`` holds every problem found (one line each); the message shows the first ones.
    """

    def __init__(self, errors: Sequence[str] | str, max_shown: int = 20):
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        shown = self.errors[:max_shown]
        msg = "\n".join(shown)
        if len(self.errors) > max_shown:
            msg += f"\n... and {len(self.errors) - max_shown} more problems"
        super().__init__(msg)


def is_int(v: Any) -> bool:
    """An int, not a bool (JSON ids, sizes, counts)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int or a finite float (NaN and infinities are no coordinate, area or rate)."""
    return isinstance(v, int) and not isinstance(v, bool) or (
        isinstance(v, float) and np.isfinite(v))
