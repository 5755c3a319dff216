"""De-occlusion scored against the generator's exact re-renders (docs/dataset.md,
"De-occlusion ground truth").

Per removal record of an image (objects R removed, everything else kept):

- the hole: the union of the removed objects' visible masks S_V (where the image changes;
  the re-render also differs on a one-pixel MSAA ring around it, which is not scored);
- image errors inside the hole, edited image against the re-render, RGB in [0, 1]
  (as `segan.eval.metrics.painting_errors` for an object): ``l1/hole`` (mean |difference|),
  ``mse/hole``, ``psnr/hole_db`` (10 log10(1 / MSE), capped at ``PSNR_CAP_DB``),
  ``ssim/hole_bbox`` (on the hole's bounding box: needs scikit-image);
- ``l1/hole_background``: the mean |difference| over the hole's background pixels only, those
  that no remaining annotated object owns in the truth (the room, unannotated objects): where
  step 2's fill is the whole answer (NaN for a record without such pixels; averaged over the
  records that have them);
- masks of the revealed objects, over the remaining objects with revealed pixels in the truth
  or in the prediction (the part of the new visible mask S_V' outside S_V):
  ``revealed_iou`` = IoU(predicted S_V' \\ S_V, true S_V' \\ S_V), and ``new_visible_iou`` =
  IoU(predicted S_V', true S_V').

`DeocclusionMeter` averages the image errors over records and the IoUs over objects.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segan.eval.metrics import iou, painting_errors

IMAGE_KEYS = ("l1/hole", "mse/hole", "psnr/hole_db", "ssim/hole_bbox", "l1/hole_background")


def hole_errors(edited: np.ndarray, target: np.ndarray, hole: np.ndarray, ssim: bool = True
                ) -> dict[str, float]:
    """Errors of an edited image inside the hole, as `segan.eval.metrics.painting_errors`
    computes them for an object. edited, target: (H, W, 3) uint8 RGB (the method's output and
    the exact re-render); hole: (H, W) bool, non-empty. ssim=False: ``ssim/hole_bbox`` NaN
    (SSIM needs scikit-image)."""
    edited, target, hole = np.asarray(edited), np.asarray(target), np.asarray(hole)
    for name, x in (("edited", edited), ("target", target)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"{name} must be (H, W, 3) uint8 RGB, got {x.dtype} {x.shape}")
    if hole.dtype != np.bool_ or hole.shape != edited.shape[:2] or edited.shape != target.shape:
        raise ValueError(f"need edited, target (H, W, 3) and hole (H, W) bool of one size, got "
                         f"{edited.shape}, {target.shape}, {hole.dtype} {hole.shape}")
    if not hole.any():
        raise ValueError("hole is empty: nothing was removed")
    e = painting_errors(edited / 255.0, target / 255.0, hole, ssim=ssim)
    return {"l1/hole": e["l1/masked_mean"], "mse/hole": e["l2/masked_mse"],
            "psnr/hole_db": e["psnr/masked_db"], "ssim/hole_bbox": e["ssim/bbox_crop"]}


def revealed_ious(predicted: np.ndarray, target: np.ndarray, visible: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """IoUs of the remaining objects' new visible masks.

    predicted, target, visible: (M, H, W) bool stacks in one object order: predicted S_V',
    true S_V', and S_V before the removal. Returns (revealed_iou, new_visible_iou), each (K,)
    float64 over the K objects with revealed pixels (S_V' \\ S_V) in the truth or the
    prediction, in their order.
    """
    predicted, target, visible = (np.asarray(x, bool) for x in (predicted, target, visible))
    if not (predicted.shape == target.shape == visible.shape) or predicted.ndim != 3:
        raise ValueError(f"need three (M, H, W) stacks of one shape, got {predicted.shape}, "
                         f"{target.shape}, {visible.shape}")
    gained_p, gained_t = predicted & ~visible, target & ~visible
    keep = (gained_p | gained_t).any(axis=(1, 2))
    if not keep.any():
        return np.zeros(0), np.zeros(0)
    return (np.atleast_1d(iou(gained_p[keep], gained_t[keep])),
            np.atleast_1d(iou(predicted[keep], target[keep])))


class DeocclusionMeter:
    """Averages over removal records (image errors) and over revealed objects (IoUs)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.revealed: list[float] = []
        self.new_visible: list[float] = []

    def add(self, edited: np.ndarray, target: np.ndarray, hole: np.ndarray,
            predicted_visible: np.ndarray, target_visible: np.ndarray, visible: np.ndarray,
            ssim: bool = True, background: np.ndarray | None = None) -> dict[str, float]:
        """One record. background: (H, W) bool, the hole's pixels that no remaining object
        owns in the truth (``l1/hole_background``; None: not scored)."""
        row = hole_errors(edited, target, hole, ssim=ssim)
        row["l1/hole_background"] = math.nan
        if background is not None and background.any():
            diff = np.abs(edited[background].astype(np.float64) - target[background]) / 255.0
            row["l1/hole_background"] = float(diff.mean())
        rev, new = revealed_ious(predicted_visible, target_visible, visible)
        self.rows.append(row)
        self.revealed += rev.tolist()
        self.new_visible += new.tolist()
        return {**row, "revealed_iou": float(rev.mean()) if rev.size else math.nan}

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for k in IMAGE_KEYS:
            vals = np.array([r[k] for r in self.rows], np.float64)
            vals = vals[~np.isnan(vals)]
            out[k] = float(vals.mean()) if vals.size else math.nan
        out["revealed_iou"] = float(np.mean(self.revealed)) if self.revealed else math.nan
        out["new_visible_iou"] = (float(np.mean(self.new_visible)) if self.new_visible
                                  else math.nan)
        out["records"] = float(len(self.rows))
        out["revealed_objects"] = float(len(self.revealed))
        return out


# ----------------------------------------------------------------------------- the evaluation

# method -> what it is (the table's rows; docs/dataset.md, "Scoring de-occlusion")
METHODS = {
    "segan": "SeGAN's paintings of the hidden objects in predicted depth order, over the fill",
    "segan_unordered": "the same, drawn in index order (no layering)",
    "segan_true_masks": "the true revealed masks with SeGAN's paintings (painting error alone)",
    "inpaint": "the whole hole by diffusion inpainting (segan.deocclude.fill_hole), no objects",
    "inpaint_telea": "the whole hole by OpenCV's Telea inpainting, no objects",
    "inpaint_ns": "the whole hole by OpenCV's Navier-Stokes inpainting, no objects",
    "completer": "the whole hole by the background completer (--completer), no objects",
}
OPENCV = ("inpaint_telea", "inpaint_ns")


def default_methods(completer: bool) -> list[str]:
    """The methods scored when none are named: every method that can run here (the OpenCV
    ones where OpenCV is installed, ``completer`` when a completer run is given)."""
    import importlib.util

    out = ["segan", "segan_unordered", "segan_true_masks", "inpaint"]
    if importlib.util.find_spec("cv2") is not None:
        out += list(OPENCV)
    return out + (["completer"] if completer else [])


def evaluate_deocclusion(data: str | os.PathLike, checkpoint: str | os.PathLike, *,
                         split: str = "test", methods: Sequence[str] | None = None,
                         device: str | None = "cpu", limit: int | None = None,
                         ssim: bool = True, completer: str | os.PathLike | None = None,
                         progress: Callable[[int, int], None] | None = None
                         ) -> dict[str, Any]:
    """Score de-occlusion methods (`METHODS`; default `default_methods`) on every removal
    record of ``split`` (at most ``limit`` images that have records). Each image goes through
    SeGAN once, with the true visible masks of its annotations as input (as `segan evaluate`);
    each record's removed annotations are then removed by each method. The SeGAN methods fill
    the rest of the hole (step 2) with the background completer run ``completer`` when given,
    else with diffusion inpainting (``fill`` in the result).

    Returns {"split", "images", "records", "seconds", "fill", "methods": {name:
    meter.compute()}}.
    """
    from segan.data.coco import load_annotations
    from segan.deocclude import (
        CompleterFill,
        deocclude,
        deocclude_true_masks,
        fill_hole,
        opencv_fill,
    )
    from segan.inference import SeganPredictor

    methods = list(methods) if methods else default_methods(completer is not None)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown de-occlusion methods {unknown}: choose from "
                         f"{', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"a de-occlusion method is named twice: {methods}")
    if "completer" in methods and completer is None:
        raise ValueError("method completer needs a background completer run: --completer RUN")
    inpainters: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "inpaint": fill_hole}
    for m in OPENCV:
        if m in methods:
            inpainters[m] = opencv_fill(m.removeprefix("inpaint_"))
    path = Path(data) / "annotations" / f"{split}.json"
    ds = load_annotations(path)
    image_ids = [i for i in ds.image_ids if ds.deocclusion(i)]
    if not image_ids:
        raise ValueError(f"{path}: no image has de-occlusion ground truth (generate with "
                         "`segan generate --deocclusion SHARE`)")
    if limit is not None:
        image_ids = image_ids[:limit]
    fill = fill_hole
    if completer is not None:
        fill = CompleterFill.from_checkpoint(completer, device=device)
        inpainters["completer"] = fill
    predictor = SeganPredictor.from_checkpoint(checkpoint, device=device)
    meters = {m: DeocclusionMeter() for m in methods}
    start = time.perf_counter()
    n_records = 0
    for step, iid in enumerate(image_ids):
        anns = ds.annotations[iid]
        index = {a["id"]: k for k, a in enumerate(anns)}
        _, visible, _ = ds.image_masks(iid)
        image = ds.load_image(iid)
        scene = predictor.predict(image, visible)
        for k, rec in enumerate(ds.deocclusion(iid)):
            n_records += 1
            target = ds.load_deoccluded(iid, k)
            remove = [index[a] for a in rec["removed"]]
            truth_masks = ds.revealed_masks(iid, k)
            keep = [j for j, a in enumerate(anns) if a["id"] in truth_masks]
            target_visible = np.stack([truth_masks[anns[j]["id"]] for j in keep])
            hole = visible[remove].any(0)
            room = hole & ~target_visible.any(0)  # the hole's pixels no object owns in truth
            background = fill(image, hole)  # step 2, once per record for the SeGAN methods

            def fixed(_image: np.ndarray, _hole: np.ndarray,
                      background: np.ndarray = background) -> np.ndarray:
                return background.copy()

            for m in methods:
                if m in inpainters:
                    result = deocclude(image, scene, remove, objects=False,
                                       fill=fixed if inpainters[m] is fill else inpainters[m])
                elif m == "segan_true_masks":
                    revealed = np.zeros_like(visible)
                    for j in keep:
                        revealed[j] = truth_masks[anns[j]["id"]] & ~visible[j]
                    result = deocclude_true_masks(image, scene, remove, revealed, fill=fixed)
                else:
                    result = deocclude(image, scene, remove, ordered=m == "segan", fill=fixed)
                meters[m].add(result.image, target, result.hole, result.visible_masks[keep],
                              target_visible, visible[keep], ssim=ssim, background=room)
        if progress is not None:
            progress(step + 1, len(image_ids))
    return {"split": split, "images": len(image_ids), "records": n_records,
            "seconds": round(time.perf_counter() - start, 2),
            "fill": "diffusion" if completer is None else str(completer),
            "methods": {m: meter.compute() for m, meter in meters.items()}}


def format_table(result: dict[str, Any]) -> str:
    """The result of `evaluate_deocclusion` as a Markdown table."""
    head = ("| method | L1 hole | PSNR hole (dB) | SSIM hole box | L1 hole background | "
            "revealed IoU | new visible IoU |\n|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for m, s in result["methods"].items():
        rows.append(f"| {m} | {s['l1/hole']:.4f} | {s['psnr/hole_db']:.2f} | "
                    f"{s['ssim/hole_bbox']:.3f} | {s.get('l1/hole_background', math.nan):.4f} | "
                    f"{s['revealed_iou']:.3f} | {s['new_visible_iou']:.3f} |")
    return "\n".join([f"{result['split']}: {result['records']} removals in "
                      f"{result['images']} images; the SeGAN methods' background: "
                      f"{result.get('fill', 'diffusion')}", head, *rows])
