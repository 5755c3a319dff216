"""Validation of one parsed split: every invariant of FORMAT.md (strict), or only what reading
needs (lenient); other datasets' field names and polygons normalised to canonical RLE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .masks import merge_area, rle_areas, rle_string_problems, to_rle
from .paths import PATH_FIELDS, path_problem
from .spec import (
    ANNOTATION_ALIASES,
    AREA_ABS_TOL_POLY,
    AREA_REL_TOL_POLY,
    BBOX_TOL_POLY,
    BBOX_TOL_RLE,
    MASK_FIELDS,
    MIN_VISIBLE_PIXELS,
    RATE_TOL,
    RATE_TOL_POLY,
    SUBSET_REL_TOL_POLY,
    DatasetFormatError,
    is_int,
    is_number,
)


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(is_number(x) for x in v)


def _fmt_box(b: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(x):g}" for x in b) + "]"


class Validator:
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

    def check_deocclusion(self) -> None:
        """De-occlusion records name annotations of their image; a revealed object is not a
        removed one and is listed once; its new visible mask S_V' has the image's size and
        S_V ⊆ S_V' ⊆ S_F (removing objects only uncovers more of an object, never beyond its
        full mask)."""
        by_id = {a["id"]: (i, a) for i, a in enumerate(self.anns)}
        masks: list[tuple[str, str, int, dict, dict]] = []  # to check against S_V and S_F
        for iid, img in self.images.items():
            entries = img.get("deocclusion")
            if not entries:
                continue
            rec = f"image {iid}"
            h, w = img["height"], img["width"]
            for k, e in enumerate(entries):
                fld = f"deocclusion[{k}]"
                for x in e["removed"]:
                    hit = by_id.get(x)
                    if hit is None or hit[1]["image_id"] != iid:
                        self.err(rec, f"{fld}.removed", f"annotation {x} is not one of image "
                                 f"{iid}'s")
                seen: set[int] = set()
                for r in e["revealed"]:
                    x = r["id"]
                    hit = by_id.get(x)
                    if hit is None or hit[1]["image_id"] != iid:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is not one of image "
                                 f"{iid}'s")
                        continue
                    if x in e["removed"]:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is removed, so "
                                 "nothing of it is revealed")
                        continue
                    if x in seen:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is listed twice")
                        continue
                    seen.add(x)
                    try:
                        r["visible_mask"] = to_rle(r["visible_mask"], h, w)
                    except (ValueError, TypeError) as err:
                        self.err(rec, f"{fld}.revealed", f"annotation {x}: {err}")
                        continue
                    if self.check and not self.from_poly[hit[0]]:
                        masks.append((rec, fld, x, r["visible_mask"], hit[1]))
        if not masks:
            return
        # never hand malformed runs to the C decoder (as check_pixels)
        problems = rle_string_problems([m[3]["counts"] for m in masks],
                                        [m[3]["size"][0] * m[3]["size"][1] for m in masks])
        for (rec, fld, x, new, ann), problem in zip(masks, problems, strict=True):
            if problem is not None:
                self.err(rec, f"{fld}.revealed", f"annotation {x}: {problem}")
                continue
            vis, full = ann["visible_mask"], ann["segmentation"]
            if merge_area([new, vis], True) != merge_area([vis], False):
                self.err(rec, f"{fld}.revealed", f"annotation {x}: the new visible mask does "
                         "not contain the visible mask S_V")
            if merge_area([new, full], True) != merge_area([new], False):
                self.err(rec, f"{fld}.revealed", f"annotation {x}: the new visible mask leaves "
                         "the full mask S_F")

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

    # --- pixels ---

    def check_pixels(self) -> None:
        """Mask-level invariants, on RLEs in bulk (no full-size decode)."""
        anns = self.anns
        if not anns:
            return
        F = [a["segmentation"] for a in anns]
        V = [a["visible_mask"] for a in anns]
        if self.check:
            self.check_rle_counts()
            self.raise_if_errors()  # never hand malformed runs to the C decoder
        aF = rle_areas(F)
        aV = rle_areas(V)
        bF = mask_utils.toBbox(F)
        bV = mask_utils.toBbox(V)
        # |S_V ∩ S_F| needs one merge per annotation (pycocotools has no pairwise batch op).
        aVF = np.array([merge_area([v, f], True) for v, f in zip(V, F, strict=True)], np.int64)
        rate = np.where(aF > 0, (aF - aVF) / np.maximum(aF, 1), 0.0)

        if not self.check:  # fill what is missing, trust the rest
            for i, a in enumerate(anns):
                a.setdefault("area", int(aF[i]))
                a.setdefault("bbox", [float(x) for x in bF[i]])
                a.setdefault("visible_bbox", [float(x) for x in bV[i]])
                a.setdefault("occlude_rate", round(float(rate[i]), 6))
            return

        poly = np.array(self.from_poly)
        area = np.array([a["area"] for a in anns], np.float64)
        box = np.array([a["bbox"] for a in anns], np.float64)
        vbox = np.array([a["visible_bbox"] for a in anns], np.float64)
        occ = np.array([a["occlude_rate"] for a in anns], np.float64)
        area_tol = np.where(poly, np.maximum(AREA_ABS_TOL_POLY, AREA_REL_TOL_POLY * aF), 0.5)
        box_tol = np.where(poly, BBOX_TOL_POLY, BBOX_TOL_RLE)
        rate_tol = np.where(poly, RATE_TOL_POLY, RATE_TOL)
        outside = aV - aVF
        out_tol = np.where(poly, SUBSET_REL_TOL_POLY * aV, 0)

        bad_area = np.abs(area - aF) > area_tol
        bad_box = np.abs(box - bF).max(1) > box_tol
        bad_vbox = np.abs(vbox - bV).max(1) > box_tol
        bad_rate = np.abs(occ - rate) > rate_tol
        bad_out = outside > out_tol
        small = aV < MIN_VISIBLE_PIXELS
        for i in np.flatnonzero(bad_area | bad_box | bad_vbox | bad_rate | bad_out | small):
            a, n = anns[i], self.src_names[i]
            rec = self.ann_label(a, i)
            if bad_out[i]:
                self.err(
                    rec,
                    n["visible_mask"],
                    f"{outside[i]} pixels lie outside the full mask '{n['segmentation']}'",
                )
            if small[i]:
                self.err(
                    rec,
                    n["visible_mask"],
                    f"only {aV[i]} visible pixels; objects with "
                    f"fewer than {MIN_VISIBLE_PIXELS} visible pixels are not annotated",
                )
            if bad_area[i]:
                self.err(
                    rec,
                    n["area"],
                    f"is {a['area']:g} but the full mask '{n['segmentation']}' has {aF[i]} pixels",
                )
            if bad_box[i]:
                self.err(
                    rec,
                    n["bbox"],
                    f"is {_fmt_box(a['bbox'])} but the full mask's box is {_fmt_box(bF[i])}",
                )
            if bad_vbox[i]:
                self.err(
                    rec,
                    n["visible_bbox"],
                    f"is {_fmt_box(a['visible_bbox'])} but the "
                    f"visible mask's box is {_fmt_box(bV[i])}",
                )
            if bad_rate[i]:
                self.err(
                    rec,
                    n["occlude_rate"],
                    f"is {a['occlude_rate']:.6g} but the masks give "
                    f"|S_F \\ S_V| / |S_F| = {rate[i]:.6g}",
                )

        # S_I = S_F \ S_V where S_I is stored: |S_I Δ (S_F \ S_V)| = |I| + |D| - 2|I ∩ D|,
        # with |D| = |F| - |V ∩ F| and |I ∩ D| = |I ∩ F| - |I ∩ V ∩ F|.
        for i, a in enumerate(anns):
            inv = a.get("invisible_mask")
            if inv is None:
                continue
            aI = int(mask_utils.area(inv))
            aIF = merge_area([inv, F[i]], True)
            aIVF = merge_area([inv, V[i], F[i]], True)
            sym = aI + (aF[i] - aVF[i]) - 2 * (aIF - aIVF)
            tol = SUBSET_REL_TOL_POLY * aF[i] if poly[i] else 0
            if sym > tol:
                n = self.src_names[i]
                self.err(
                    self.ann_label(a, i),
                    n["invisible_mask"],
                    f"differs from the full mask minus the visible mask "
                    f"('{n['segmentation']}' \\ '{n['visible_mask']}') in {sym} pixels",
                )

    def check_rle_counts(self) -> None:
        strs: list[str] = []
        sizes: list[int] = []
        where: list[tuple[int, str]] = []
        for i, a in enumerate(self.anns):
            for k in MASK_FIELDS:
                rle = a.get(k)
                if rle is not None:
                    strs.append(rle["counts"])
                    sizes.append(rle["size"][0] * rle["size"][1])
                    where.append((i, k))
        for (i, k), problem in zip(where, rle_string_problems(strs, sizes), strict=True):
            if problem is not None:
                self.err(self.ann_label(self.anns[i], i), self.src_names[i][k], problem)

    def check_occlusion(self) -> None:
        """Pairs name two different annotations of this image; the occluder's full mask must
        cover some of the occludee's invisible region (else it hides nothing of it)."""
        if not self.check:
            return
        by_id = {a["id"]: (i, a) for i, a in enumerate(self.anns)}
        for iid, img in self.images.items():
            occ = img.get("occlusion")
            if not isinstance(occ, list):
                continue
            rec = f"image {iid}"
            for pair in occ:
                if not (isinstance(pair, list) and len(pair) == 2):
                    continue  # reported by check_images
                a_id, b_id = pair
                if a_id == b_id:
                    self.err(
                        rec,
                        "occlusion",
                        f"pair [{a_id}, {b_id}] has annotation {a_id} occluding itself",
                    )
                    continue
                ends = []
                for x in (a_id, b_id):
                    hit = by_id.get(x)
                    if hit is None:
                        self.err(
                            rec, "occlusion", f"pair [{a_id}, {b_id}]: no annotation has id {x}"
                        )
                    elif hit[1]["image_id"] != iid:
                        self.err(
                            rec,
                            "occlusion",
                            f"pair [{a_id}, {b_id}]: annotation {x} "
                            f"belongs to image {hit[1]['image_id']}, not to image {iid}",
                        )
                    else:
                        ends.append(hit)
                if len(ends) != 2 or self.from_poly[ends[0][0]] or self.from_poly[ends[1][0]]:
                    continue
                fa, b = ends[0][1]["segmentation"], ends[1][1]
                # |S_F(a) ∩ S_I(b)| = |F_a ∩ F_b| - |F_a ∩ F_b ∩ V_b|
                hidden = merge_area([fa, b["segmentation"]], True) - merge_area(
                    [fa, b["segmentation"], b["visible_mask"]], True
                )
                if hidden <= 0:
                    self.err(
                        rec,
                        "occlusion",
                        f"pair [{a_id}, {b_id}]: the full mask of "
                        f"annotation {a_id} covers none of the invisible region of "
                        f"annotation {b_id}, so it hides nothing of it",
                    )
