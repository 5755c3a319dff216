"""DYCE as released with the paper's reference code (ehsanik/SeGAN, ``DYCE.tar.gz``).

Layout (PAPER_NOTES.md):

    DYCE/
      Images/<imid>               RGB renders
      modal/<modal_png>           S_V of one object (nonzero = inside)
      amodal/<amodal_png>         S_F of the same object
      FullObj/<fullobj_png>       the object rendered alone (its appearance)
      annotations/{train,val,test}.txt

One list line per object: ``imid modal_png amodal_png x1 y1 x2 y2 tag fullobj_png``, the box
``x1 y1 x2 y2`` on a 1000 x 1000 scale of the image, ``tag`` the object's category name (it
may contain spaces, e.g. ``chair_tolix (2)``: every field between the box and the last one is
the tag). The ``*_multipath.txt`` lists (S_V predicted by Multipath) and ``*_real.txt`` (the
natural-image subset, another layout) are not read.

Categories are made from the tags (ids 1..K in tag order, one table for every split); the
reference code's merging of tags into 39 classes is not applied. The appearance becomes our
RGBA appearance with alpha = S_F.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from segan.data.coco import DatasetFormatError

from .base import (
    Problems,
    SourceImage,
    SourceObject,
    SourceSplit,
    SplitSpec,
    escape_problem,
    image_problem,
    image_size_problem,
    read_mask_png,
    safe_relative,
)

NAME = "dyce"
ALIASES = ("dyce-release",)
TITLE = "DYCE, the paper's release (Images/, modal/, amodal/, FullObj/, list files)"
HAS_APPEARANCE = True
HAS_OCCLUSION = False
LOST = (
    "no occlusion pairs: the depth-layering table (Table 5) has no ground truth",
    "no depth, no scene ids, no camera",
    "objects whose S_V has fewer than 10 pixels are dropped, as our format requires",
    "the 1000-scale box of each line is kept as the extra field dyce_box_1000 (ours are "
    "recomputed from the masks)",
)
FIELDS = ("imid", "modal_png", "amodal_png", "x1", "y1", "x2", "y2", "tag", "fullobj_png")
FOLDERS = {"imid": "Images", "modal_png": "modal", "amodal_png": "amodal",
           "fullobj_png": "FullObj"}
DEFAULT_SPLITS = ("train", "val", "test")


def dataset_root(src: Path) -> Path:
    if src.is_file():
        return src.parent.parent if src.parent.name == "annotations" else src.parent
    return src


def looks_like(src: Path) -> bool:
    """A DYCE release folder (or one of its list files)."""
    root = dataset_root(src)
    if src.is_file() and src.suffix != ".txt":
        return False
    return (root / "Images").is_dir() and (root / "amodal").is_dir() and (
        root / "modal").is_dir()


def discover(src: Path, splits: dict[str, Path] | None = None,
             images: dict[str, Path] | None = None) -> list[SplitSpec]:
    root = dataset_root(src)
    images = images or {}
    if splits:
        named = {name: Path(p) for name, p in splits.items()}
    elif src.is_file():
        named = {src.stem: src}
    else:
        named = {s: root / "annotations" / f"{s}.txt" for s in DEFAULT_SPLITS
                 if (root / "annotations" / f"{s}.txt").is_file()}
        if not named:
            raise FileNotFoundError(f"{root}: no list file annotations/{{train,val,test}}.txt")
    for name, f in named.items():
        if not f.is_file():
            raise FileNotFoundError(f"split {name!r}: no list file {f}")
    return [SplitSpec(name, [f], images.get(name) or images.get("*"))
            for name, f in named.items()]


def _parse(list_file: Path) -> tuple[dict[str, list[tuple[int, dict]]], list[str]]:
    """Lines grouped by image (file order), each (line number, fields); and problems."""
    problems: list[str] = []
    try:
        text = list_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{list_file}: not a text list file (not UTF-8: {e.reason})"
                                 ) from None
    by_image: dict[str, list[tuple[int, dict]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        tok = line.split()
        where = f"{list_file}: line {n}"
        if len(tok) < len(FIELDS):
            problems.append(f"{where}: has {len(tok)} fields, expected {len(FIELDS)}: "
                            f"{' '.join(FIELDS)} (truncated?)")
            continue
        rec = dict(zip(FIELDS[:7], tok[:7], strict=True))
        rec["tag"] = " ".join(tok[7:-1])
        rec["fullobj_png"] = tok[-1]
        ok = True
        for k in FOLDERS:
            if safe_relative(rec[k]) is None:
                problems.append(f"{where}: field '{k}': must be a relative path inside "
                                f"{FOLDERS[k]}/, got {rec[k]!r}")
                ok = False
        box = []
        for k in ("x1", "y1", "x2", "y2"):
            try:
                x = float(rec[k])
            except ValueError:
                x = math.nan
            if not (math.isfinite(x) and 0 <= x <= 1000):
                problems.append(f"{where}: field '{k}': must be a number in [0, 1000] (boxes "
                                f"are on a 1000 scale), got {rec[k]!r}")
                ok = False
            box.append(x)
        if ok and (box[2] < box[0] or box[3] < box[1]):
            problems.append(f"{where}: field 'x2': box {box} has x2 < x1 or y2 < y1")
            ok = False
        key = (rec["imid"], rec["amodal_png"])
        if key in seen:
            problems.append(f"{where}: field 'amodal_png': {rec['amodal_png']!r} of image "
                            f"{rec['imid']!r} is listed already on line {seen[key]}")
            ok = False
        if ok:
            seen[key] = n
            rec["box"] = box
            by_image.setdefault(rec["imid"], []).append((n, rec))
    return by_image, problems


def read(src: Path, spec: SplitSpec) -> SourceSplit:
    root = dataset_root(src)
    list_file = spec.files[0]
    by_image, problems = _parse(list_file)
    if problems:
        raise DatasetFormatError(problems)
    tags = sorted({rec["tag"] for lines in by_image.values() for _, rec in lines})
    cat_ids = {t: k + 1 for k, t in enumerate(tags)}
    categories = {cid: {"id": cid, "name": t} for t, cid in cat_ids.items()}
    images_dir = Path(spec.images_dir) if spec.images_dir is not None else root / "Images"

    def images(problems: Problems) -> Iterator[SourceImage]:
        for imid, lines in by_image.items():
            n0 = lines[0][0]
            path = images_dir / imid
            problem, size = image_problem(path)
            problem = escape_problem(images_dir, imid) or problem
            if problem or size is None:
                problems.add(list_file, f"line {n0}", "imid", problem or "unreadable")
                continue
            W, H = size
            objects = []
            ok = True
            for n, rec in lines:
                masks = {}
                for k in ("modal_png", "amodal_png"):
                    p = root / FOLDERS[k] / rec[k]
                    escape = escape_problem(root / FOLDERS[k], rec[k])
                    if escape:
                        problems.add(list_file, f"line {n}", k, escape)
                        ok = False
                        continue
                    try:
                        m = read_mask_png(p)
                    except FileNotFoundError:
                        problems.add(list_file, f"line {n}", k, f"file not found: {p}")
                        ok = False
                        continue
                    except (OSError, SyntaxError, ValueError) as e:
                        problems.add(list_file, f"line {n}", k, f"cannot read mask {p}: {e}")
                        ok = False
                        continue
                    if m.shape != (H, W):
                        problems.add(list_file, f"line {n}", k,
                                     f"mask {p} is {m.shape[1]}x{m.shape[0]} (WxH) but the "
                                     f"image {path} is {W}x{H}")
                        ok = False
                        continue
                    masks[k] = m
                app = root / FOLDERS["fullobj_png"] / rec["fullobj_png"]
                problem = (escape_problem(root / FOLDERS["fullobj_png"], rec["fullobj_png"])
                           or image_size_problem(app, W, H))  # decoded by the converter
                if problem:
                    problems.add(list_file, f"line {n}", "fullobj_png", problem)
                    ok = False
                if not ok or len(masks) < 2:
                    continue
                objects.append(SourceObject(
                    label=f"line {n}", category_id=cat_ids[rec["tag"]], full=masks["amodal_png"],
                    visible=masks["modal_png"], appearance=app, appearance_field="fullobj_png",
                    extra={"dyce_box_1000": rec["box"], "dyce_modal": rec["modal_png"]}))
            if ok:
                yield SourceImage(label=f"line {n0} (image {imid})", path=path, file_name=imid,
                                  width=W, height=H, objects=objects, verified=True)

    return SourceSplit(name=spec.name, files=[list_file], categories=categories,
                       num_images=len(by_image), images=images, has_appearance=True,
                       categories_by_name=True)
