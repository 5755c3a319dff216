"""The mask-level invariants of one parsed split (FORMAT.md), checked on RLEs in bulk: areas,
boxes and occlusion rates agree with the masks, S_V within S_F, S_I = S_F \\ S_V, occlusion
pairs that hide something, de-occlusion masks between S_V and S_F.

`MaskChecks` is a part of `segan.data.coco.validator.Validator` (its base class): the
validator's record checks fill ``anns``, ``images`` and ``from_poly`` first, and these checks
report through its ``err``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pycocotools import mask as mask_utils

from .masks import merge_area, rle_areas, rle_string_problems, to_rle
from .spec import (
    AREA_ABS_TOL_POLY,
    AREA_REL_TOL_POLY,
    BBOX_TOL_POLY,
    BBOX_TOL_RLE,
    MASK_FIELDS,
    MIN_VISIBLE_PIXELS,
    RATE_TOL,
    RATE_TOL_POLY,
    SUBSET_REL_TOL_POLY,
)


def _fmt_box(b: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(x):g}" for x in b) + "]"


class MaskChecks:
    """Pixel-level checks of a `Validator` (module docstring)."""

    check: bool  # strict (every invariant) or lenient (fill what is missing, trust the rest)
    images: dict[int, dict]
    anns: list[dict]  # normalised, structurally sound annotations
    src_names: list[dict[str, str]]  # per ann: canonical -> name in the file
    from_poly: list[bool]

    if TYPE_CHECKING:  # the validator's reporting
        def err(self, record: str, fld: str | None, problem: str) -> None: ...

        def raise_if_errors(self) -> None: ...

        @staticmethod
        def ann_label(ann: dict, idx: int) -> str: ...

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
