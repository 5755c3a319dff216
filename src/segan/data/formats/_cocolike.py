"""Shared by the readers of COCO-style amodal files (COCOA-cls, D2SA, UOAIS, KINS): finding the
splits and their images, and reading one file through `segan.data.coco`'s validator.

The validator already knows every field name these datasets use (``occluded_rate``,
``occluded_mask``, KINS ``inmodal_seg``/``inmodal_bbox``, KINS2020 ``a_segm``/``i_segm``/...)
and every mask encoding (polygons, compressed and uncompressed RLE), and names file, record and
field on anything malformed. It runs here in its lenient mode (check=False: structure, ids,
references and mask sizes only), since foreign files do not meet our format's stricter
invariants; the converter then enforces those on the decoded masks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from segan.data import coco
from segan.data.coco import DatasetFormatError, read_json
from segan.data.coco.spec import is_int
from segan.data.coco.validator import Validator

from .base import (
    Problems,
    SourceImage,
    SourceObject,
    SourceSplit,
    SplitSpec,
    first_existing,
    guess_split_name,
    safe_relative,
)

ImageDirs = Callable[[Path, str], list[Path]]

# How each dataset names a field, for "missing" messages in the dataset's own words.
_STYLES: dict[str, dict[str, str]] = {
    "a_segm": {"segmentation": "a_segm", "visible_mask": "i_segm", "bbox": "a_bbox",
               "visible_bbox": "i_bbox", "area": "a_area"},  # KINS2020
    "inmodal_seg": {"visible_mask": "inmodal_seg", "visible_bbox": "inmodal_bbox"},  # KINS
    "occluded_rate": {"occlude_rate": "occluded_rate", "invisible_mask": "occluded_mask"},
}


class _Reader(Validator):
    """The format's validator, naming missing fields as the file's dataset does."""

    preferred: dict[str, str] = {}

    def normalise(self, raw: dict) -> tuple[dict, dict[str, str]]:
        ann, names = super().normalise(raw)
        for canon, name in self.preferred.items():
            if canon not in ann:
                names[canon] = name
        return ann, names


_MASK_NAMES = ("segmentation", "visible_mask", "invisible_mask", *(
    a for k in coco.MASK_FIELDS for a in coco.ANNOTATION_ALIASES.get(k, ())))


def _empty_masks_to_rle(obj: dict) -> int:
    """An empty polygon list (``"inmodal_seg": []``, an object with no visible pixel) is an
    empty mask, not a malformed one: made an empty RLE here (pycocotools cannot rasterise it).
    Returns how many were."""
    sizes = {}
    for img in obj["images"]:
        if isinstance(img, dict) and all(is_int(img.get(k))
                                         for k in ("id", "height", "width")):
            sizes[img["id"]] = (img["height"], img["width"])
    n = 0
    for a in obj["annotations"]:
        if not isinstance(a, dict) or a.get("image_id") not in sizes:
            continue
        for k in _MASK_NAMES:
            if isinstance(a.get(k), list) and not a[k]:
                a[k] = coco.encode_mask(np.zeros(sizes[a["image_id"]], bool))
                n += 1
    return n


def _style(anns: object) -> dict[str, str]:
    """The naming style of a file, from the keys of its first annotations."""
    keys: set[str] = set()
    for a in anns[:20] if isinstance(anns, list) else []:
        if isinstance(a, dict):
            keys.update(a)
    for key, names in _STYLES.items():
        if key in keys:
            return names
    return {}


def json_files(src: Path) -> list[Path]:
    """The annotation files of a source: the file itself, or the JSON files of the folder and of
    its ``annotations/`` folder."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"no such file or folder: {src}")
    files = sorted(src.glob("*.json")) + sorted((src / "annotations").glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{src}: no JSON annotation file in it or in {src}/annotations")
    return files


def discover(src: Path, splits: dict[str, Path] | None, images: dict[str, Path] | None
             ) -> list[SplitSpec]:
    """Splits of a COCO-style source: the given ``name -> file`` map, or one split per JSON file
    named by `guess_split_name`. `images`: ``split -> folder`` (key ``"*"``: every split)."""
    images = images or {}
    if splits:
        named = {name: Path(p) for name, p in splits.items()}
    else:
        named = {}
        for f in json_files(src):
            name = guess_split_name(f.stem)
            if name in named:
                raise ValueError(f"{named[name]} and {f} both look like split {name!r}: name the "
                                 "splits with --split NAME=FILE")
            named[name] = f
    for name, f in named.items():
        if not f.is_file():
            raise FileNotFoundError(f"split {name!r}: no annotation file {f}")
    return [SplitSpec(name, [f], images.get(name) or images.get("*")) for name, f in named.items()]


def default_image_dirs(root: Path, ann_file: Path, split: str) -> list[Path]:
    """Where the images of a split usually are, relative to the source folder and the file."""
    d = ann_file.parent
    return [root / "images" / split, root / split, root / f"{split}2014", root / f"{split}2017",
            root / "images", root, d, d / "images", d.parent / "images", d.parent]


def source_root(src: Path) -> Path:
    if src.is_dir():
        return src
    return src.parent.parent if src.parent.name == "annotations" else src.parent


def find_images_dir(images: dict, candidates: list[Path], ann_file: Path,
                    split: str) -> Path | None:
    """The image folder of a split (None when it has no images), found from its first image:
    one folder per split, since KINS' train and test images share names."""
    if not images:
        return None
    first = next(iter(images.values()))
    images_dir = first_existing(candidates, safe_relative(first["file_name"]) or "")
    if images_dir is None:
        tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise DatasetFormatError(
            f"{ann_file}: image {first['id']}: field 'file_name': {first['file_name']!r} is "
            f"in none of: {tried}; pass the image folder with --images {split}=DIR")
    return images_dir


def read_split(src: Path, spec: SplitSpec, extra_dirs: ImageDirs | None = None,
               carry: tuple[str, ...] = ()) -> SourceSplit:
    """Parse and check one COCO-style file; `carry`: annotation fields copied into ours."""
    ann_file = spec.files[0]
    obj = read_json(ann_file)
    v = _Reader(str(ann_file), obj, check=False)
    if not isinstance(obj, dict):
        v.err("", None, f"top level must be a JSON object, got {type(obj).__name__}")
        v.raise_if_errors()
    for key in ("images", "annotations", "categories"):
        if key not in obj:
            v.err("", key, "missing (a COCO file needs images, annotations, categories)")
        elif not isinstance(obj[key], list):
            v.err("", key, f"must be a list, got {type(obj[key]).__name__}")
    v.raise_if_errors()
    empty = _empty_masks_to_rle(obj)
    v.preferred = _style(obj["annotations"])
    v.check_categories(obj["categories"])
    v.check_images(obj["images"])
    v.check_annotations(obj["annotations"])
    for i, a in enumerate(v.anns):
        if a["category_id"] not in v.categories:
            v.err(v.ann_label(a, i), "category_id", f"no category has id {a['category_id']}")
    v.raise_if_errors()
    v.check_rle_counts()  # before any RLE string reaches pycocotools' C decoder
    v.raise_if_errors()

    categories = {}
    for cid, c in v.categories.items():
        c = dict(c)
        if not isinstance(c.get("name"), str):
            c["name"] = f"category {cid}"
        categories[cid] = c

    root = source_root(src)
    if spec.images_dir is not None:
        candidates = [Path(spec.images_dir)]
    else:
        candidates = (extra_dirs(root, spec.name) if extra_dirs else []) + default_image_dirs(
            root, ann_file, spec.name)
    images_dir = find_images_dir(v.images, candidates, ann_file, spec.name)

    stats = {"crowd_skipped": 0, "empty_polygon_masks": empty}

    def images(problems: Problems) -> Iterator[SourceImage]:
        for iid, img in v.images.items():
            h, w = img["height"], img["width"]
            anns = v.anns_by_image[iid]
            crowd = [a for a in anns if a.get("iscrowd", 0) != 0]
            stats["crowd_skipped"] += len(crowd)
            anns = [a for a in anns if a.get("iscrowd", 0) == 0]
            full = _decode([a["segmentation"] for a in anns], h, w)
            vis = _decode([a["visible_mask"] for a in anns], h, w)
            objects = []
            for k, a in enumerate(anns):
                inv = a.get("invisible_mask")
                objects.append(SourceObject(
                    label=f"annotation {a['id']}", category_id=a["category_id"], full=full[k],
                    visible=vis[k],
                    invisible=None if inv is None else _decode([inv], h, w)[0],
                    source_id=a["id"], extra={f: a[f] for f in carry if f in a}))
            name = safe_relative(img["file_name"])
            assert name is not None and images_dir is not None
            yield SourceImage(label=f"image {iid}", path=images_dir / name, file_name=name,
                              width=w, height=h, objects=objects, source_id=iid,
                              folder=images_dir)

    return SourceSplit(name=spec.name, files=[ann_file], categories=categories,
                       num_images=len(v.images), images=images, stats=stats,
                       dropped_fields=dropped_fields(obj, carry))


# What `read_split` reads (everything else of a record is dropped, and said so).
_READ_IMAGE_FIELDS = frozenset(("id", "file_name", "width", "height"))
_READ_ANNOTATION_FIELDS = frozenset(
    ("id", "image_id", "category_id", "iscrowd", "segmentation", "bbox", "area",
     "visible_mask", "visible_bbox", "invisible_mask", "occlude_rate",
     *(a for names in coco.ANNOTATION_ALIASES.values() for a in names)))


def dropped_fields(obj: dict, carry: tuple[str, ...] = ()) -> dict[str, int]:
    """``"images[].NAME"`` / ``"annotations[].NAME"`` -> how many records have a field that
    `read_split` does not read (nor carry), sorted by name."""
    counts: dict[str, int] = {}
    for key, read in (("images", _READ_IMAGE_FIELDS),
                      ("annotations", _READ_ANNOTATION_FIELDS | set(carry))):
        for r in obj.get(key, ()):
            if isinstance(r, dict):
                for f in r.keys() - read:
                    name = f"{key}[].{f}"
                    counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _decode(rles: list[dict], h: int, w: int) -> list[np.ndarray]:
    """Masks as (H, W) bool views in pycocotools' column-major order: RLE encoding wants that
    order, so the converter's re-encoding copies nothing (a third of its time otherwise)."""
    if not rles:
        return []
    m = mask_utils.decode(rles).view(bool)  # (H, W, N) uint8 0/1, Fortran order
    return [m[:, :, k] for k in range(m.shape[2])]


# Fields only our format has (FORMAT.md): a file that follows it without ``info.format`` is
# still ours, and read as another format it would lose them.
OURS_IMAGE_FIELDS = ("occlusion", "depth_file", "scene_id")
OURS_ANNOTATION_FIELDS = ("appearance_file",)


def ours_by_fields(obj: dict) -> bool:
    """Whether a parsed COCO-style file has a field of segan-coco that no other format has."""
    for key, fields in (("images", OURS_IMAGE_FIELDS), ("annotations", OURS_ANNOTATION_FIELDS)):
        records = obj.get(key)
        if isinstance(records, list) and any(
                isinstance(r, dict) and any(f in r for f in fields) for r in records):
            return True
    return False


def sniff(obj: object) -> str | None:
    """Which COCO-style amodal format a parsed JSON file is, from its first annotation."""
    if not isinstance(obj, dict):
        return None
    info = obj.get("info")
    if isinstance(info, dict) and info.get("format") == coco.FORMAT_NAME:
        return "segan-coco"
    anns = obj.get("annotations")
    if not isinstance(anns, list):
        return None
    if ours_by_fields(obj):
        return "segan-coco"
    first = next((a for a in anns if isinstance(a, dict)), None)
    if first is None:
        return None
    if "regions" in first:
        return "cocoa"
    if {"inmodal_seg", "a_segm", "i_segm"} & first.keys():
        return "kins"
    if {"visible_mask", "occluded_mask"} & first.keys():
        return "coco-amodal"
    return None
