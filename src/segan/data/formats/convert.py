"""Source splits -> a segan-coco dataset folder, the same way for every format.

For each image: the image file is decoded once (a missing, truncated or wrongly sized file is
an error naming the record), then each object goes through our format's invariants
(FORMAT.md), which foreign annotations do not always meet:

- S_F := S_F ∪ S_V. Polygon amodal masks rasterise a little differently from RLE visible
  masks, so a few visible pixels can fall outside the full mask; they are added to it
  (counted: ``full_grown_objects``, ``full_grown_pixels``).
- S_I := S_F \\ S_V. A stored invisible mask that differs is counted (``invisible_differs``).
- objects with fewer than 10 visible pixels are dropped (section 4.2; ``dropped_few_visible``),
  with the occlusion pairs that name them.
- an occlusion pair is kept when the occluder's S_F covers some of the occludee's S_I
  (``pairs_dropped_hide_nothing`` otherwise).

Everything is written into a temporary sibling folder and renamed when complete; every split
file is validated by `segan.data.coco.write_annotations` before it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from tqdm import tqdm

from segan.data.atomic import file_sha256, png_bytes, write_bytes_atomic
from segan.data.coco import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MIN_VISIBLE_PIXELS,
    PATH_FIELDS,
    image_rgb,
    make_annotation,
    make_image,
    path_problem,
    safe_relative,
    write_annotations,
)

from .base import Problems, SourceImage, SourceSplit, SplitSpec, escape_problem, image_problem

CONVERTER_VERSION = 1
CONVERSION_FILE = "conversion.json"
CONVERSION_FORMAT = "segan-conversion"


def conversion_key(fmt: str, specs: Sequence[SplitSpec]) -> str:
    """Hash of what decides a conversion: converter version, format, each split's annotation
    files (their bytes) and image folder. Images and masks referenced by the annotation files
    are assumed unchanged while those files are (as for the training cache)."""
    spec = {"converter": CONVERTER_VERSION, "format": fmt, "splits": {
        s.name: {"files": [file_sha256(f) for f in s.files],
                 "images": None if s.images_dir is None else str(Path(s.images_dir).resolve())}
        for s in specs}}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _write(path: Path, data: bytes) -> None:
    """A file of the temporary output folder: no per-file temp name or fsync needed, the
    folder is renamed into place only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _place(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        os.symlink(src.resolve(), dst)
    else:
        shutil.copyfile(src, dst)


def _outermost(folders: set[Path]) -> list[str]:
    """The folders of `folders` that lie in no other of them, sorted."""
    out: list[Path] = []
    for f in sorted(folders):
        if not any(f.is_relative_to(o) for o in out):
            out.append(f)
    return [str(f) for f in out]


def _appearance_rgba(path: Path, full: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The object's appearance as RGBA with alpha = S_F, or a problem."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            rgb = image_rgb(im)
    except (OSError, SyntaxError, ValueError) as e:
        return None, f"cannot read appearance {path}: {e}"
    if rgb.shape[:2] != full.shape:
        return None, (f"appearance {path} is {rgb.shape[1]}x{rgb.shape[0]} (WxH) but the image is "
                      f"{full.shape[1]}x{full.shape[0]}")
    return np.dstack([rgb, full.astype(np.uint8) * 255]), None


class _SplitWriter:
    """Converts the images of one split into records, files under `out`, and counts."""

    def __init__(self, split: SourceSplit, out: Path, link: bool, category_map: dict[int, int],
                 problems: Problems):
        self.split, self.out, self.link = split, out, link
        self.category_map = category_map
        self.problems = problems
        self.file = split.files[0]
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.next_image_id = 1
        self.next_ann_id = 1
        self.names: set[str] = set()
        self.linked: set[Path] = set()  # folders the output links into (link=True)
        self.stats: dict[str, int] = {
            "images": 0, "objects_in": 0, "objects": 0, "dropped_few_visible": 0,
            "full_grown_objects": 0, "full_grown_pixels": 0, "invisible_differs": 0,
            "with_appearance": 0, "pairs_in": 0, "pairs": 0, "pairs_dropped_object_dropped": 0,
            "pairs_dropped_hide_nothing": 0, "pairs_dropped_duplicate": 0}

    def _name(self, name: str) -> str:
        return name if self.split.keep_names else f"{self.split.name}/{name}"

    def _dest(self, fld: str, name: str, label: str) -> Path | None:
        """Where a file named by `fld` goes in the output: inside its folder, or None (the
        problem reported) for a name that would leave it."""
        folder = PATH_FIELDS[fld]
        problem = path_problem(name, folder)
        if problem:
            self.problems.add(self.file, label, fld, problem)
            return None
        return self.out / folder / (safe_relative(name) or "")

    def _link(self, src: Path, dst: Path) -> None:
        if self.link:
            self.linked.add(src.resolve().parent)
        _place(src, dst, self.link)

    def add(self, img: SourceImage) -> None:
        st = self.stats
        escape = None if img.folder is None else escape_problem(img.folder, img.file_name)
        if escape:
            self.problems.add(self.file, img.label, "file_name", escape)
            return
        file_name = self._name(img.file_name)
        image_dst = self._dest("file_name", file_name, img.label)
        if image_dst is None:
            return
        if not img.verified:
            problem, _ = image_problem(img.path, img.width, img.height)
            if problem:
                self.problems.add(self.file, img.label, "file_name", problem)
                return
        if file_name in self.names:
            self.problems.add(self.file, img.label, "file_name",
                              f"{img.file_name!r} is used by another image of the split")
            return
        self.names.add(file_name)
        image_id = img.source_id if img.source_id is not None else self.next_image_id
        self.next_image_id = max(self.next_image_id, image_id + 1)

        anns: list[dict] = []
        kept: dict[int, int] = {}  # object index -> annotation id
        masks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for k, o in enumerate(img.objects):
            st["objects_in"] += 1
            vis = np.asarray(o.visible, bool)
            outside = int(np.count_nonzero(vis & ~o.full))
            full = o.full | vis
            if outside:
                st["full_grown_objects"] += 1
                st["full_grown_pixels"] += outside
            inv = full & ~vis
            if o.invisible is not None and np.count_nonzero(o.invisible != inv):
                st["invisible_differs"] += 1
            if np.count_nonzero(vis) < MIN_VISIBLE_PIXELS:
                st["dropped_few_visible"] += 1
                continue
            ann_id = o.source_id if o.source_id is not None else self.next_ann_id
            self.next_ann_id = max(self.next_ann_id, ann_id + 1)
            app_name = None
            if o.appearance is not None:
                rgba, problem = _appearance_rgba(o.appearance, full)
                if problem or rgba is None:
                    self.problems.add(self.file, o.label, o.appearance_field,
                                      problem or "unreadable")
                    continue
                app_name = o.appearance_name or f"{self.split.name}/{ann_id}.png"
                app_dst = self._dest("appearance_file", app_name, o.label)
                if app_dst is None:
                    continue
                _write(app_dst, png_bytes(rgba))
                st["with_appearance"] += 1
            ann = make_annotation(ann_id, image_id, self.category_map[o.category_id], full, vis,
                                  app_name)
            for f, v in o.extra.items():
                ann.setdefault(f, v)
            anns.append(ann)
            kept[k] = ann_id
            masks[k] = (full, inv)

        pairs: list[list[int]] = []
        for a, b in img.pairs:
            st["pairs_in"] += 1
            if a not in kept or b not in kept:
                st["pairs_dropped_object_dropped"] += 1
            elif not np.any(masks[a][0] & masks[b][1]):
                st["pairs_dropped_hide_nothing"] += 1
            elif [kept[a], kept[b]] in pairs:
                st["pairs_dropped_duplicate"] += 1
            else:
                pairs.append([kept[a], kept[b]])
        st["pairs"] += len(pairs)

        depth_name = None
        if img.depth is not None:
            depth_name = img.depth_name or self._name(img.depth.name)
            depth_dst = self._dest("depth_file", depth_name, img.label)
            if depth_dst is None:
                return
            self._link(img.depth, depth_dst)
        others: list[tuple[Path, Path]] = []
        for fld, name, src in img.files:
            dst = self._dest(fld, name, img.label)
            if dst is None:
                return
            others.append((dst, src))
        for dst, src in others:
            self._link(src, dst)
        self._link(img.path, image_dst)
        record = make_image(image_id, file_name, img.width, img.height,
                            depth_file=depth_name,
                            occlusion=pairs if self.split.has_occlusion else None)
        for f, v in img.extra.items():
            record.setdefault(f, v)
        self.images.append(record)
        self.annotations.extend(anns)
        st["images"] += 1
        st["objects"] += len(anns)


def _category_maps(splits: Sequence[SourceSplit]) -> tuple[list[dict[int, int]], list[list[dict]]]:
    """Per split: source category id -> output id, and the output category table. Formats
    whose categories are names get one table for all splits (sorted names, ids from 1)."""
    maps, tables = [], []
    names = sorted({c["name"] for s in splits if s.categories_by_name
                    for c in s.categories.values()})
    by_name = {n: i + 1 for i, n in enumerate(names)}
    for s in splits:
        if s.categories_by_name:
            maps.append({cid: by_name[c["name"]] for cid, c in s.categories.items()})
            tables.append([{"id": i, "name": n} for n, i in by_name.items()])
        else:
            maps.append({cid: cid for cid in s.categories})
            tables.append([dict(c) for c in s.categories.values()])
    return maps, tables


def write_converted(module: ModuleType, src: Path, specs: Sequence[SplitSpec], dst: Path, *,
                    link: bool = False, progress: bool = True, key: str | None = None
                    ) -> dict[str, Any]:
    """Read `specs` with `module` (a reader of segan.data.formats) and write the dataset `dst`.

    dst must not exist (or be an empty folder). Returns the summary also written to
    DST/conversion.json. Raises DatasetFormatError listing the problems of a split.
    """
    start = time.perf_counter()
    dst = Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise FileExistsError(f"{dst} exists and is not empty: remove it or choose another "
                              "output folder")
    splits = [module.read(src, spec) for spec in specs]  # every file checked before writing
    maps, tables = _category_maps(splits)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f"{dst.name}.tmp-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    summary: dict[str, Any] = {
        "format": CONVERSION_FORMAT, "version": CONVERTER_VERSION, "source": str(src),
        "source_format": module.NAME, "source_title": module.TITLE, "key": key,
        "link_images": link, "lost": list(module.LOST), "splits": {}}
    linked: set[Path] = set()
    dropped: dict[str, int] = {}
    try:
        for split, cmap, table in zip(splits, maps, tables, strict=True):
            problems = Problems()
            writer = _SplitWriter(split, tmp, link, cmap, problems)
            bar = tqdm(total=split.num_images, desc=f"convert {split.name}", unit="img",
                       disable=not progress, dynamic_ncols=True)
            for img in split.images(problems):
                writer.add(img)
                bar.update(1)
            bar.close()
            problems.raise_if_any()
            linked |= writer.linked
            info = {"description": f"converted from {module.TITLE}", "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION, "source_format": module.NAME,
                    "source_files": [str(f) for f in split.files]}
            write_annotations(tmp / "annotations" / f"{split.name}.json", writer.images,
                              writer.annotations, table, info=info, check=True)
            summary["splits"][split.name] = {
                "files": {str(f): file_sha256(f) for f in split.files},
                **writer.stats, **split.stats, "dropped_fields": dict(split.dropped_fields)}
            for f, n in split.dropped_fields.items():
                dropped[f] = dropped.get(f, 0) + n
        summary["dropped_fields"] = dict(sorted(dropped.items()))
        if link:  # the only folders outside DST its symlinks may lead to (readers check)
            summary["link_roots"] = _outermost(linked)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        write_bytes_atomic(tmp / CONVERSION_FILE, json.dumps(summary, indent=1).encode())
        if dst.exists() and not any(dst.iterdir()):
            dst.rmdir()
        try:
            os.rename(tmp, dst)
        except OSError:  # another process finished the same conversion first: keep theirs
            theirs = read_summary(dst)
            if theirs is None or key is None or theirs.get("key") != key:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def dropped_message(summary: dict[str, Any]) -> str | None:
    """One line naming the source fields a conversion dropped (None when it dropped none)."""
    dropped = summary.get("dropped_fields") or {}
    if not dropped:
        return None
    items = ", ".join(f"{f} ({n} record{'s' if n != 1 else ''})" for f, n in dropped.items())
    return (f"{summary.get('source', '?')} read as {summary.get('source_format', '?')}: "
            f"fields not carried into segan-coco: {items}")


def read_summary(folder: Path) -> dict[str, Any] | None:
    """A converted folder's conversion.json, or None when it is missing or unreadable."""
    try:
        obj = json.loads((Path(folder) / CONVERSION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and obj.get("format") == CONVERSION_FORMAT else None
