"""Our own format, segan-coco v1 (FORMAT.md), read by `segan.data.coco.load_annotations`.

Training and evaluation read it directly; "converting" it checks every invariant and copies it
(images, appearance, depth, occlusion pairs, de-occlusion renders, extra fields) with nothing
lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from segan.data.coco import load_annotations

from .base import Problems, SourceImage, SourceObject, SourceSplit, SplitSpec

NAME = "segan-coco"
ALIASES = ("ours", "segan")
TITLE = "segan-coco v1 (ours)"
HAS_APPEARANCE = True
HAS_OCCLUSION = True
LOST: tuple[str, ...] = ()

_IMAGE_KEYS = {"id", "file_name", "width", "height", "occlusion", "depth_file", "scene_id"}
_ANN_KEYS = {"id", "image_id", "category_id", "iscrowd", "segmentation", "bbox", "area",
             "visible_mask", "visible_bbox", "invisible_mask", "occlude_rate", "appearance_file"}


def discover(src: Path, splits: dict[str, Path] | None = None,
             images: dict[str, Path] | None = None) -> list[SplitSpec]:
    if images:
        raise ValueError("--images does not apply to segan-coco: images are DATA/images/")
    if splits:
        specs = [SplitSpec(name, [Path(p)]) for name, p in splits.items()]
    else:
        files = sorted((src / "annotations").glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{src}: no annotations/*.json")
        specs = [SplitSpec(f.stem, [f]) for f in files]
    for s in specs:
        if not s.files[0].is_file():
            raise FileNotFoundError(f"split {s.name!r}: no annotation file {s.files[0]}")
    return specs


def read(src: Path, spec: SplitSpec) -> SourceSplit:
    ds = load_annotations(spec.files[0], check=True, root=src)

    def images(problems: Problems) -> Iterator[SourceImage]:
        for iid, img in ds.images.items():
            anns = ds.annotations[iid]
            full, vis, _ = ds.image_masks(iid)
            index = {a["id"]: k for k, a in enumerate(anns)}
            objects = [SourceObject(
                label=f"annotation {a['id']}", category_id=a["category_id"], full=full[k],
                visible=vis[k], source_id=a["id"], appearance=ds.appearance_path(a),
                appearance_name=a.get("appearance_file"),
                extra={f: v for f, v in a.items() if f not in _ANN_KEYS})
                for k, a in enumerate(anns)]
            extra = {f: v for f, v in img.items() if f not in _IMAGE_KEYS}
            if "scene_id" in img:
                extra["scene_id"] = img["scene_id"]
            # de-occlusion ground truth (docs/dataset.md): its renders travel with the records
            files = [("image_file", rec["image_file"], ds.deoccluded_path(iid, k))
                     for k, rec in enumerate(ds.deocclusion(iid))]
            if ds.background_path(iid) is not None:
                files.append(("background_file", img["background_file"],
                              ds.background_path(iid)))
            yield SourceImage(
                label=f"image {iid}", path=ds.image_path(iid), file_name=img["file_name"],
                width=img["width"], height=img["height"], objects=objects, source_id=iid,
                pairs=[(index[a], index[b]) for a, b in ds.occlusion_pairs(iid)],
                depth=ds.depth_path(iid), depth_name=img.get("depth_file"), extra=extra,
                files=files)

    has_app = any(a.get("appearance_file") is not None for a in ds.iter_annotations())
    return SourceSplit(name=spec.name, files=[spec.files[0]], categories=dict(ds.categories),
                       num_images=len(ds), images=images, has_appearance=has_app,
                       has_occlusion=True, keep_names=True)
