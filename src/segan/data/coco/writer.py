"""Writing segan-coco: annotation and image records from masks, and split files written
atomically after the same validation the reader applies."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segan.data.atomic import write_bytes_atomic

from .masks import encode_mask, mask_bbox
from .spec import FORMAT_NAME, FORMAT_VERSION, MIN_VISIBLE_PIXELS
from .validator import Validator


def make_annotation(
    ann_id: int,
    image_id: int,
    category_id: int,
    full_mask: np.ndarray,
    visible_mask: np.ndarray,
    appearance_file: str | None = None,
    *,
    instance_id: int | None = None,
    min_visible: int = MIN_VISIBLE_PIXELS,
) -> dict:
    """One annotation record from the object's masks.

    full_mask:    (H, W) bool, S_F, the whole object as if nothing hid it.
    visible_mask: (H, W) bool, S_V, must lie inside S_F and have >= ``min_visible`` pixels
                  (the writer's side of the "fewer than 10 visible pixels" invariant).
    instance_id:  optional scene-level object id, written as the extra field ``instance_id``
                  (lets statistics count distinct objects per scene).

    Raises ``ValueError`` when the shapes differ, S_V is not inside S_F, or S_V is too small.
    """
    full = np.asarray(full_mask) != 0
    vis = np.asarray(visible_mask) != 0
    if full.ndim != 2 or full.shape != vis.shape:
        raise ValueError(
            f"annotation {ann_id}: full mask {full.shape} and visible mask {vis.shape} must be "
            "(H, W) of the same size"
        )
    outside = int(np.count_nonzero(vis & ~full))
    if outside:
        raise ValueError(f"annotation {ann_id}: {outside} visible pixels lie outside the full mask")
    n_vis = int(np.count_nonzero(vis))
    if n_vis < min_visible:
        raise ValueError(
            f"annotation {ann_id}: {n_vis} visible pixels; objects with fewer than "
            f"{min_visible} are not annotated"
        )
    invisible = full & ~vis
    area = int(np.count_nonzero(full))
    ann: dict[str, Any] = {
        "id": int(ann_id),
        "image_id": int(image_id),
        "category_id": int(category_id),
        "iscrowd": 0,
        "segmentation": encode_mask(full),
        "bbox": mask_bbox(full),
        "area": area,
        "visible_mask": encode_mask(vis),
        "visible_bbox": mask_bbox(vis),
        "invisible_mask": encode_mask(invisible),
        "occlude_rate": round(float(np.count_nonzero(invisible)) / area, 6) if area else 0.0,
    }
    if appearance_file is not None:
        ann["appearance_file"] = str(appearance_file)
    if instance_id is not None:
        ann["instance_id"] = int(instance_id)
    return ann


def make_image(
    image_id: int,
    file_name: str,
    width: int,
    height: int,
    scene_id: str | None = None,
    depth_file: str | None = None,
    occlusion: Iterable[Sequence[int]] | None = None,
) -> dict:
    """One image record. ``occlusion``: pairs ``(occluder_ann_id, occludee_ann_id)``."""
    img: dict[str, Any] = {
        "id": int(image_id),
        "file_name": str(file_name),
        "width": int(width),
        "height": int(height),
    }
    if scene_id is not None:
        img["scene_id"] = str(scene_id)
    if depth_file is not None:
        img["depth_file"] = str(depth_file)
    if occlusion is not None:
        pairs = [[int(a), int(b)] for a, b in occlusion]
        for a, b in pairs:
            if a == b:
                raise ValueError(f"image {image_id}: occlusion pair [{a}, {b}] is one object")
        img["occlusion"] = pairs
    return img


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON so that ``path`` is either the old file or the whole new one.

    The JSON goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is fsynced, then renamed over ``path``; on any failure the temporary file is
    removed and ``path`` is left untouched. numpy scalars/arrays are converted; NaN is refused.
    """
    data = json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False)
    write_bytes_atomic(path, data.encode("utf-8"))
    return Path(path)


def write_annotations(
    path: str | os.PathLike,
    images: Sequence[dict],
    annotations: Sequence[dict],
    categories: Sequence[dict],
    info: dict | None = None,
    check: bool = True,
) -> Path:
    """Write one split file atomically. With ``check`` it is first validated exactly as
    ``load_annotations`` would (raising ``DatasetFormatError``, nothing written)."""
    data = encode_annotations(str(path), images, annotations, categories, info, check)
    write_bytes_atomic(path, data)
    return Path(path)


def encode_annotations(
    name: str,
    images: Sequence[dict],
    annotations: Sequence[dict],
    categories: Sequence[dict],
    info: dict | None = None,
    check: bool = True,
) -> bytes:
    """The bytes ``write_annotations`` writes (for stores other than a local folder);
    ``name`` is the file named in validation errors."""
    info = dict(info or {})
    info.setdefault("description", "segan amodal dataset")
    info.setdefault("format", FORMAT_NAME)
    info.setdefault("format_version", FORMAT_VERSION)
    obj = {
        "info": info,
        "licenses": [],
        "images": list(images),
        "annotations": list(annotations),
        "categories": list(categories),
    }
    if check:
        Validator(name, obj, check=True).run()
    return json.dumps(obj, separators=(",", ":"), default=_json_default,
                      allow_nan=False).encode("utf-8")
