"""Validation of one parsed split: every invariant of FORMAT.md (strict), or only what reading
needs (lenient); other datasets' field names and polygons normalised to canonical RLE.

Here the records (categories, images, annotations: structure, types, paths, names); the
mask-level invariants are `segan.data.coco.mask_checks.MaskChecks`, the validator's base.
"""

from __future__ import annotations

from typing import Any

from .mask_checks import MaskChecks
from .masks import to_rle
from .paths import PATH_FIELDS, path_problem
from .spec import (
    ANNOTATION_ALIASES,
    MASK_FIELDS,
    DatasetFormatError,
    is_int,
    is_number,
)


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(is_number(x) for x in v)


class Validator(MaskChecks):
    """Checks and normalises one parsed split. Fills ``images``, ``anns_by_image``,
    ``categories``; ``run`` raises one ``DatasetFormatError`` with every problem found."""

    def __init__(self, file: str, obj: Any, check: bool):
        self.file = file
        self.obj = obj
        self.check = check
        self.errors: list[str] = []
        self.images: dict[int, dict] = {}
        self.anns_by_image: dict[int, list[dict]] = {}
        self.categories: dict[int, dict] = {}
        self.bad_images: set[int] = set()  # reported already: their annotations are skipped
        self.anns: list[dict] = []  # normalised, structurally sound annotations
        self.src_names: list[dict[str, str]] = []  # per ann: canonical -> name in the file
        self.from_poly: list[bool] = []

    # --- reporting ---

    def err(self, record: str, fld: str | None, problem: str) -> None:
        where = f"{self.file}: {record}" if record else self.file
        if fld is not None:
            where += f": field '{fld}'"
        self.errors.append(f"{where}: {problem}")

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DatasetFormatError(self.errors)

    @staticmethod
    def ann_label(ann: dict, idx: int) -> str:
        aid, iid = ann.get("id"), ann.get("image_id")
        label = f"annotation {aid}" if is_int(aid) else f"annotations[{idx}]"
        if is_int(iid):
            label += f" (image {iid})"
        return label

    # --- driver ---

    def run(self) -> None:
        obj = self.obj
        if not isinstance(obj, dict):
            self.err("", None, f"top level must be a JSON object, got {type(obj).__name__}")
            self.raise_if_errors()
        for key in ("images", "annotations", "categories"):
            if key not in obj:
                self.err("", key, "missing (a COCO file needs images, annotations, categories)")
            elif not isinstance(obj[key], list):
                self.err("", key, f"must be a list, got {type(obj[key]).__name__}")
        self.raise_if_errors()
        self.check_categories(obj["categories"])
        self.check_images(obj["images"])
        self.check_annotations(obj["annotations"])
        self.raise_if_errors()  # pixel checks below need sound structure
        self.check_pixels()
        self.check_occlusion()
        self.check_deocclusion()
        self.raise_if_errors()

    # --- records ---

    def check_categories(self, cats: list) -> None:
        for i, c in enumerate(cats):
            if not isinstance(c, dict) or not is_int(c.get("id")):
                self.err(f"categories[{i}]", "id", "missing or not an int")
                continue
            if c["id"] in self.categories:
                self.err(f"category {c['id']}", "id", "duplicate category id")
            if self.check and not isinstance(c.get("name"), str):
                self.err(f"category {c['id']}", "name", "missing or not a str")
            self.categories[c["id"]] = c

    def check_images(self, images: list) -> None:
        for i, img in enumerate(images):
            if not isinstance(img, dict):
                self.err(f"images[{i}]", None, f"must be an object, got {type(img).__name__}")
                continue
            iid = img.get("id")
            if not is_int(iid):
                self.err(f"images[{i}]", "id", "missing or not an int")
                continue
            rec = f"image {iid}"
            if iid in self.images:
                self.err(rec, "id", "duplicate image id")
                continue
            ok = True
            if not isinstance(img.get("file_name"), str):
                self.err(rec, "file_name", "missing or not a str")
                ok = False
            for k in ("file_name", "depth_file", "background_file"):
                if isinstance(img.get(k), str) and path_problem(img[k], PATH_FIELDS[k]):
                    self.err(rec, k, path_problem(img[k], PATH_FIELDS[k]) or "")
                    ok = False
            if "background_file" in img and not isinstance(img["background_file"], str):
                self.err(rec, "background_file", "must be a str, got "
                         f"{type(img['background_file']).__name__}")
                ok = False
            ok &= self.check_deocclusion_record(img, rec)
            for k in ("width", "height"):
                if not is_int(img.get(k)) or img[k] <= 0:
                    self.err(rec, k, f"missing or not a positive int (got {img.get(k)!r})")
                    ok = False
            if self.check:
                for k in ("scene_id", "depth_file"):
                    if k in img and not isinstance(img[k], str):
                        self.err(rec, k, f"must be a str, got {type(img[k]).__name__}")
                occ = img.get("occlusion")
                if occ is not None and not (
                    isinstance(occ, list)
                    and all(
                        isinstance(p, list) and len(p) == 2 and all(is_int(x) for x in p)
                        for p in occ
                    )
                ):
                    self.err(rec, "occlusion", "must be a list of [occluder_id, occludee_id] ints")
            if ok:
                self.images[iid] = img
                self.anns_by_image[iid] = []
            else:
                self.bad_images.add(iid)

    def check_deocclusion_record(self, img: dict, rec: str) -> bool:
        """The structure of an image's ``deocclusion`` list (docs/dataset.md); masks and
        references are checked in `check_deocclusion`."""
        entries = img.get("deocclusion")
        if entries is None:
            return True
        if not isinstance(entries, list):
            self.err(rec, "deocclusion", f"must be a list, got {type(entries).__name__}")
            return False
        ok = True
        for k, e in enumerate(entries):
            fld = f"deocclusion[{k}]"
            if not isinstance(e, dict):
                self.err(rec, fld, f"must be an object, got {type(e).__name__}")
                ok = False
                continue
            removed = e.get("removed")
            if not (isinstance(removed, list) and removed and all(is_int(x) for x in removed)):
                self.err(rec, f"{fld}.removed", "must be a non-empty list of annotation ids")
                ok = False
            elif len(set(removed)) != len(removed):
                self.err(rec, f"{fld}.removed", f"names an annotation twice: {removed}")
                ok = False
            name = e.get("image_file")
            problem = ("missing or not a str" if not isinstance(name, str)
                       else path_problem(name, PATH_FIELDS["image_file"]))
            if problem:
                self.err(rec, f"{fld}.image_file", problem)
                ok = False
            revealed = e.get("revealed")
            if not (isinstance(revealed, list) and all(
                    isinstance(r, dict) and is_int(r.get("id")) and "visible_mask" in r
                    for r in revealed)):
                self.err(rec, f"{fld}.revealed",
                         'must be a list of {"id": annotation id, "visible_mask": RLE}')
                ok = False
        return ok

    def check_annotations(self, anns: list) -> None:
        seen: set[int] = set()
        for i, raw in enumerate(anns):
            if not isinstance(raw, dict):
                self.err(f"annotations[{i}]", None, f"must be an object, got {type(raw).__name__}")
                continue
            ann, names = self.normalise(raw)
            rec = self.ann_label(ann, i)
            ok = True
            for k in ("id", "image_id", "category_id"):
                if not is_int(ann.get(k)):
                    self.err(rec, k, "missing or not an int")
                    ok = False
            if not ok:
                continue
            if ann["id"] in seen:
                self.err(rec, "id", "duplicate annotation id")
                continue
            seen.add(ann["id"])
            img = self.images.get(ann["image_id"])
            if ann["image_id"] in self.bad_images:
                continue
            if img is None:
                self.err(rec, "image_id", f"no image has id {ann['image_id']}")
                continue
            if self.check and ann["category_id"] not in self.categories:
                self.err(rec, "category_id", f"no category has id {ann['category_id']}")
            if not self.check_fields(ann, names, rec):
                continue
            h, w = img["height"], img["width"]
            poly = False
            for k in MASK_FIELDS:
                seg = ann.get(k)
                if seg is None:
                    if k != "invisible_mask":
                        self.err(rec, names[k], "missing")
                        ok = False
                    continue
                poly |= isinstance(seg, list)
                try:
                    ann[k] = to_rle(seg, h, w)
                except (ValueError, TypeError) as e:
                    self.err(rec, names[k], str(e))
                    ok = False
            if ok:
                self.anns.append(ann)
                self.src_names.append(names)
                self.from_poly.append(poly)
                self.anns_by_image[ann["image_id"]].append(ann)

    def normalise(self, raw: dict) -> tuple[dict, dict[str, str]]:
        """Copy of ``raw`` under canonical names, and canonical -> name used in the file."""
        ann = dict(raw)
        names = {k: k for k in (*MASK_FIELDS, *ANNOTATION_ALIASES)}
        for canon, aliases in ANNOTATION_ALIASES.items():
            for a in aliases:
                if a in ann:
                    v = ann.pop(a)
                    if canon not in ann:
                        ann[canon] = v
                        names[canon] = a
        return ann, names

    def check_fields(self, ann: dict, names: dict[str, str], rec: str) -> bool:
        """Types of the scalar fields; with check=False missing derivable ones are allowed."""
        ok = True
        if "iscrowd" not in ann:
            if self.check:
                self.err(rec, "iscrowd", "missing")
            ann["iscrowd"] = 0
        elif self.check and ann["iscrowd"] != 0:
            self.err(
                rec,
                "iscrowd",
                f"must be 0 (amodal annotations are single objects), got {ann['iscrowd']!r}",
            )
        for k, test, what in (
            ("bbox", _is_box, "a list of 4 numbers [x, y, w, h]"),
            ("visible_bbox", _is_box, "a list of 4 numbers [x, y, w, h]"),
            ("area", is_number, "a number"),
            ("occlude_rate", is_number, "a number"),
        ):
            if k not in ann:
                if self.check:
                    self.err(rec, names[k], "missing")
                    ok = False
            elif not test(ann[k]):
                self.err(rec, names[k], f"must be {what}, got {ann[k]!r}")
                ok = False
        if ok and is_number(ann.get("occlude_rate")) and not 0 <= ann["occlude_rate"] <= 1:
            self.err(rec, names["occlude_rate"], f"must lie in [0, 1], got {ann['occlude_rate']}")
        app = ann.get("appearance_file")
        if self.check and "appearance_file" in ann and not isinstance(app, str):
            self.err(rec, "appearance_file", "must be a str")
        elif isinstance(app, str) and path_problem(app, "appearance"):
            self.err(rec, "appearance_file", path_problem(app, "appearance") or "")
            ok = False
        return ok
