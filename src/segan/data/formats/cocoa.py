"""COCOA, the original release of "Semantic Amodal Segmentation" (Zhu et al., CVPR 2017).

``COCO_amodal_{train,val,test}2014.json`` (and ``BSDS_amodal_*.json``): COCO ``images``, and
``annotations`` holding ONE record per image and annotator:

- ``image_id``, ``id``, ``size`` (number of regions), ``author``, ``url``;
- ``regions``: the image's regions in depth order, each with ``segmentation`` (the amodal
  mask S_F as ONE flat polygon ``[x0, y0, x1, y1, ...]``), ``name`` (free text), ``area``,
  ``isStuff``, ``order``, ``occlude_rate``, and, for occluded regions only, ``visible_mask``
  and ``invisible_mask`` (compressed RLE); an unoccluded region has neither (S_V = S_F);
- ``depth_constraint``: ``"i-j,k-l,..."``, 1-based indices into ``regions``: region i
  occludes region j (they overlap and i is in front).

No category ids: a category is made per distinct region ``name`` (ids 1..K in name order,
the same table for every split). Images with several annotator records keep the first record
(as the COCOA evaluation does); the others are skipped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segan.data.coco import decode_mask, read_json, to_rle
from segan.data.coco.masks import rle_string_problems
from segan.data.coco.spec import is_int
from segan.data.coco.validator import Validator

from . import _cocolike
from .base import (
    Problems,
    SourceImage,
    SourceObject,
    SourceSplit,
    SplitSpec,
    safe_relative,
)

NAME = "cocoa"
ALIASES = ("cocoa-original",)
TITLE = "COCOA original (regions per image, depth_constraint)"
HAS_APPEARANCE = False
HAS_OCCLUSION = True
LOST = (
    "no appearance images: the painter has no target, so training updates the segmentor "
    "only and painting metrics are not applicable",
    "no category ids: categories are made from the free-text region names",
    "no depth",
    "additional annotator records of an image are skipped (the first is kept)",
    "occlusion pairs whose occluder covers none of the occludee's invisible pixels (after "
    "polygon rasterisation) are dropped, as our format requires",
)

_PAIR = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def discover(src: Path, splits: dict[str, Path] | None = None,
             images: dict[str, Path] | None = None) -> list[SplitSpec]:
    return _cocolike.discover(src, splits, images)


def _polygon(seg: Any) -> Any:
    """COCOA stores one polygon as a flat list; COCO (and pycocotools) want a list of them."""
    if isinstance(seg, list) and seg and all(isinstance(v, int | float) for v in seg):
        return [seg]
    return seg


def parse_pairs(text: str, n_regions: int) -> tuple[list[tuple[int, int]], str | None]:
    """``"i-j,k-l"`` (1-based) -> [(i-1, j-1), ...], or a problem description."""
    pairs = []
    for tok in (t for t in text.split(",") if t.strip()):
        m = _PAIR.match(tok)
        if m is None:
            return [], f"{tok.strip()!r} is not a pair 'i-j' of region numbers"
        i, j = int(m.group(1)), int(m.group(2))
        for k in (i, j):
            if not 1 <= k <= n_regions:
                return [], (f"pair '{i}-{j}': region {k} does not exist (the record has "
                            f"{n_regions} regions, numbered from 1)")
        if i == j:
            return [], f"pair '{i}-{j}' has region {i} occluding itself"
        pairs.append((i - 1, j - 1))
    return pairs, None


def read(src: Path, spec: SplitSpec) -> SourceSplit:
    ann_file = spec.files[0]
    obj = read_json(ann_file)
    v = Validator(str(ann_file), obj, check=False)
    if not isinstance(obj, dict):
        v.err("", None, f"top level must be a JSON object, got {type(obj).__name__}")
        v.raise_if_errors()
    for key in ("images", "annotations"):
        if key not in obj:
            v.err("", key, "missing (a COCOA file needs images and annotations)")
        elif not isinstance(obj[key], list):
            v.err("", key, f"must be a list, got {type(obj[key]).__name__}")
    v.raise_if_errors()
    v.check_images(obj["images"])
    v.raise_if_errors()

    # first annotator record per image; every region checked and its masks made RLE
    records: dict[int, dict] = {}
    skipped = 0
    names: set[str] = set()
    rle_strings: list[str] = []
    rle_sizes: list[int] = []
    rle_where: list[tuple[str, str]] = []
    for i, rec in enumerate(obj["annotations"]):
        label = f"annotations[{i}]"
        if not isinstance(rec, dict):
            v.err(label, None, f"must be an object, got {type(rec).__name__}")
            continue
        if is_int(rec.get("id")):
            label = f"annotation {rec['id']}"
        iid = rec.get("image_id")
        if not is_int(iid):
            v.err(label, "image_id", "missing or not an int")
            continue
        label += f" (image {iid})"
        img = v.images.get(iid)
        if img is None:
            v.err(label, "image_id", f"no image has id {iid}")
            continue
        if iid in records:
            skipped += 1
            continue
        regions = rec.get("regions")
        if not isinstance(regions, list):
            v.err(label, "regions", "missing or not a list")
            continue
        dc = rec.get("depth_constraint", "")
        if not isinstance(dc, str):
            v.err(label, "depth_constraint", f"must be a str 'i-j,...', got {dc!r}")
            continue
        pairs, problem = parse_pairs(dc, len(regions))
        if problem:
            v.err(label, "depth_constraint", problem)
            continue
        h, w = img["height"], img["width"]
        ok = True
        parsed = []
        for j, reg in enumerate(regions):
            rlabel = f"{label}: regions[{j}]"
            if not isinstance(reg, dict):
                v.err(rlabel, None, f"must be an object, got {type(reg).__name__}")
                ok = False
                continue
            if not isinstance(reg.get("name"), str):
                v.err(rlabel, "name", "missing or not a str")
                ok = False
            if "segmentation" not in reg:
                v.err(rlabel, "segmentation", "missing")
                ok = False
                continue
            masks = {}
            for k in ("segmentation", "visible_mask", "invisible_mask"):
                if reg.get(k) is None:
                    continue
                try:
                    masks[k] = to_rle(_polygon(reg[k]) if k == "segmentation" else reg[k], h, w)
                except (ValueError, TypeError) as e:
                    v.err(rlabel, k, str(e))
                    ok = False
                    continue
                rle_strings.append(masks[k]["counts"])
                rle_sizes.append(h * w)
                rle_where.append((rlabel, k))
            parsed.append((reg, masks))
        if ok:
            records[iid] = {"regions": parsed, "pairs": pairs, "label": label}
            names.update(reg["name"] for reg, _ in parsed)
    v.raise_if_errors()
    for (rlabel, k), problem in zip(
            rle_where, rle_string_problems(rle_strings, rle_sizes),
            strict=True):
        if problem is not None:
            v.err(rlabel, k, problem)
    v.raise_if_errors()

    # provisional ids by name; the converter renumbers them over all splits (names_only)
    cat_ids = {name: k + 1 for k, name in enumerate(sorted(names))}
    categories = {cid: {"id": cid, "name": name} for name, cid in cat_ids.items()}

    root = _cocolike.source_root(src)
    candidates = ([Path(spec.images_dir)] if spec.images_dir is not None
                  else _cocolike.default_image_dirs(root, ann_file, spec.name))
    images_dir = _cocolike.find_images_dir(v.images, candidates, ann_file, spec.name)

    def images(problems: Problems) -> Iterator[SourceImage]:
        for iid, img in v.images.items():
            h, w = img["height"], img["width"]
            rec = records.get(iid, {"regions": [], "pairs": []})
            objects = []
            for j, (reg, masks) in enumerate(rec["regions"]):
                full = decode_mask(masks["segmentation"], h, w)
                inv = (decode_mask(masks["invisible_mask"], h, w)
                       if "invisible_mask" in masks else None)
                if "visible_mask" in masks:
                    vis = decode_mask(masks["visible_mask"], h, w)
                elif inv is not None:
                    vis = full & ~inv
                else:  # COCOA gives no visible mask for an unoccluded region
                    vis = full.copy()
                extra: dict[str, Any] = {"region_index": j + 1, "region_name": reg["name"]}
                if "isStuff" in reg:
                    extra["is_stuff"] = bool(reg["isStuff"])
                objects.append(SourceObject(
                    label=f"{rec['label']}: regions[{j}]", category_id=cat_ids[reg["name"]],
                    full=full, visible=vis, invisible=inv, extra=extra))
            name = safe_relative(img["file_name"])
            assert name is not None and images_dir is not None
            yield SourceImage(label=f"image {iid}", path=images_dir / name, file_name=name,
                              width=w, height=h, objects=objects, source_id=iid,
                              pairs=list(rec["pairs"]), folder=images_dir)

    return SourceSplit(name=spec.name, files=[ann_file], categories=categories,
                       num_images=len(v.images), images=images, has_occlusion=True,
                       categories_by_name=True, stats={"annotator_records_skipped": skipped})

