"""De-occlusion scored against the generator's exact re-renders (docs/dataset.md,
"De-occlusion ground truth").

Per removal record of an image (objects R removed, everything else kept):

- the hole: the union of the removed objects' visible masks S_V (where the image changes;
  the re-render also differs on a one-pixel MSAA ring around it, which is not scored);
- image errors inside the hole, edited image against the re-render, RGB in [0, 1]
  (as `segan.eval.painting_metrics.painting_errors` for an object): ``l1/hole`` (mean |difference|),
  ``mse/hole``, ``psnr/hole_db`` (10 log10(1 / MSE), capped at ``PSNR_CAP_DB``),
  ``ssim/hole_bbox`` (on the hole's bounding box: needs scikit-image);
- ``l1/hole_background``: the mean |difference| over the hole's background pixels only, those
  that no remaining annotated object owns in the truth (the room, unannotated objects): where
  step 2's fill is the whole answer (NaN for a record without such pixels; averaged over the
  records that have them); ``l1/hole_objects``: the same over the rest of the hole, the
  pixels that remaining objects own in the truth (where the revealed objects are the answer);
- masks of the revealed objects, over the remaining objects with revealed pixels in the truth
  or in the prediction (the part of the new visible mask S_V' outside S_V):
  ``revealed_iou`` = IoU(predicted S_V' \\ S_V, true S_V' \\ S_V), and ``new_visible_iou`` =
  IoU(predicted S_V', true S_V').

`DeocclusionMeter` averages the image errors over records and the IoUs over objects;
`figure_row` draws one record for figure_deocclusion_best_worst.png (`segan`'s best and worst
records by hole L1, picked by the amodal evaluation's `BestWorst`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segan.eval.metrics import iou
from segan.eval.painting_metrics import painting_errors

IMAGE_KEYS = ("l1/hole", "mse/hole", "psnr/hole_db", "ssim/hole_bbox", "l1/hole_background",
              "l1/hole_objects")


def hole_errors(edited: np.ndarray, target: np.ndarray, hole: np.ndarray, ssim: bool = True
                ) -> dict[str, float]:
    """Errors of an edited image inside the hole, as `segan.eval.painting_metrics.painting_errors`
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
        owns in the truth (``l1/hole_background``, and the rest of the hole
        ``l1/hole_objects``; None: neither scored)."""
        row = hole_errors(edited, target, hole, ssim=ssim)
        row["l1/hole_background"] = row["l1/hole_objects"] = math.nan
        if background is not None:
            for key, part in (("l1/hole_background", background & hole),
                              ("l1/hole_objects", hole & ~background)):
                if part.any():
                    diff = np.abs(edited[part].astype(np.float64) - target[part]) / 255.0
                    row[key] = float(diff.mean())
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


# ----------------------------------------------------------------------------- the figure

FIGURE_TILE = 128  # each tile's side in figure_deocclusion_best_worst.png
HOLE_OUTLINE = (235, 40, 200)  # the removed objects' outline (steps_picture's hole tint)
# the columns after the input and the re-render: SeGAN, then its true-masks ablation and
# the first classical inpainting that was scored (Telea preferred: the best of them so far)
FIGURE_METHODS = ("segan", "segan_true_masks")
FIGURE_INPAINTERS = ("inpaint_telea", "inpaint_ns", "inpaint")


def figure_columns(methods: Sequence[str]) -> list[str]:
    """The edits a row of the figure shows, in order, of the scored ``methods``."""
    inpaint = [m for m in FIGURE_INPAINTERS if m in methods][:1]
    return [m for m in FIGURE_METHODS if m in methods] + inpaint


def figure_row(image: np.ndarray, target: np.ndarray, edits: Sequence[np.ndarray],
               hole: np.ndarray, tile: int = FIGURE_TILE) -> np.ndarray:
    """One removal as a (tile, tile * (2 + len(edits)), 3) uint8 row: the input with the hole
    outlined (just outside it, so the removed object stays visible), the re-render, then each
    edit. Every tile shows the same square around the hole, 1.5 x its box's longer side plus
    16 px of context (the padding beyond the image grey), resized to ``tile``. image, target,
    edits: (H, W, 3) uint8 RGB; hole: (H, W) bool, non-empty."""
    from segan.transforms import dilate, resize_hole, resize_image_u8

    ys, xs = np.nonzero(hole)
    if ys.size == 0:
        raise ValueError("hole is empty: nothing was removed")
    side = int(1.5 * max(ys.max() - ys.min(), xs.max() - xs.min()) + 16)
    y0 = (int(ys.min() + ys.max()) - side) // 2 + side  # + side: in the padded frame
    x0 = (int(xs.min() + xs.max()) - side) // 2 + side

    def crop(x: np.ndarray, fill: int) -> np.ndarray:
        pad = ((side, side), (side, side)) + ((0, 0),) * (x.ndim - 2)
        return np.pad(x, pad, constant_values=fill)[y0:y0 + side, x0:x0 + side]

    m = resize_hole(crop(hole, 0), tile)
    shown = resize_image_u8(crop(image, 128), tile)
    shown[dilate(m, 2) & ~m] = HOLE_OUTLINE
    tiles = [shown] + [resize_image_u8(crop(x, 128), tile) for x in (target, *edits)]
    return np.concatenate(tiles, axis=1)


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
                         progress: Callable[[int, int], None] | None = None,
                         figure: str | os.PathLike | None = None, best_worst: int = 4
                         ) -> dict[str, Any]:
    """Score de-occlusion methods (`METHODS`; default `default_methods`) on every removal
    record of ``split`` (at most ``limit`` images that have records). Each image goes through
    SeGAN once, with the true visible masks of its annotations as input (as `segan evaluate`);
    each record's removed annotations are then removed by each method. The SeGAN methods fill
    the rest of the hole (step 2) with the background completer run ``completer`` when given,
    else with diffusion inpainting (``fill`` in the result).

    figure: where to write the PNG of ``segan``'s ``best_worst`` best and worst records by
    hole L1 (best first, a red band, worst first; one `figure_row` each, its columns those of
    `figure_columns`); None, ``best_worst`` 0 or ``segan`` not scored: no figure.

    Returns {"split", "images", "records", "seconds", "fill", "methods": {name:
    meter.compute()}, "figure": {"file", "columns", "best", "worst"} or None}, each pick
    {"image_id", "file_name", "record", "removed", "l1/hole"}.
    """
    from segan.data.coco import load_annotations
    from segan.deocclude import (
        CompleterFill,
        deocclude,
        deocclude_true_masks,
        fill_hole,
        opencv_fill,
    )
    from segan.eval.figures import BestWorst
    from segan.inference import SeganPredictor

    methods = list(methods) if methods else default_methods(completer is not None)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown de-occlusion methods {unknown}: choose from "
                         f"{', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"a de-occlusion method is named twice: {methods}")
    if best_worst < 0:
        raise ValueError(f"best_worst must be >= 0, got {best_worst}")
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
    drawn = figure_columns(methods) if figure is not None and "segan" in methods else []
    picks = BestWorst(best_worst if drawn else 0)  # keyed by -L1: higher is better
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

            edits: dict[str, np.ndarray] = {}
            l1 = math.nan
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
                row = meters[m].add(result.image, target, result.hole,
                                    result.visible_masks[keep], target_visible, visible[keep],
                                    ssim=ssim, background=room)
                if m in drawn:
                    edits[m] = result.image
                if m == "segan":
                    l1 = row["l1/hole"]
            if drawn:
                info = {"image_id": iid, "file_name": ds.images[iid]["file_name"],
                        "record": k, "removed": list(rec["removed"]), "l1/hole": l1}
                picks.add(-l1, info, lambda image=image, target=target, hole=hole, edits=edits:
                          figure_row(image, target, [edits[m] for m in drawn], hole))
        if progress is not None:
            progress(step + 1, len(image_ids))
    figure_info = None
    grid = picks.figure()
    if figure is not None and grid is not None:
        from segan.data.atomic import write_png_atomic

        write_png_atomic(figure, grid)
        best, worst = picks.picks()
        figure_info = {"file": Path(figure).name, "columns": ["input", "re-render", *drawn],
                       "best": best, "worst": worst}
    return {"split": split, "images": len(image_ids), "records": n_records,
            "seconds": round(time.perf_counter() - start, 2),
            "fill": "diffusion" if completer is None else str(completer),
            "methods": {m: meter.compute() for m, meter in meters.items()},
            "figure": figure_info}


def format_table(result: dict[str, Any]) -> str:
    """The result of `evaluate_deocclusion` as a Markdown table."""
    head = ("| method | L1 hole | PSNR hole (dB) | SSIM hole box | L1 hole background | "
            "L1 hole objects | revealed IoU | new visible IoU |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for m, s in result["methods"].items():
        rows.append(f"| {m} | {s['l1/hole']:.4f} | {s['psnr/hole_db']:.2f} | "
                    f"{s['ssim/hole_bbox']:.3f} | {s.get('l1/hole_background', math.nan):.4f} | "
                    f"{s.get('l1/hole_objects', math.nan):.4f} | "
                    f"{s['revealed_iou']:.3f} | {s['new_visible_iou']:.3f} |")
    lines = [f"{result['split']}: {result['records']} removals in {result['images']} images; "
             f"the SeGAN methods' background: {result.get('fill', 'diffusion')}", head, *rows]
    fig = result.get("figure")
    if fig:
        lines += ["", f"{fig['file']}: segan's {len(fig['best'])} best (top) and "
                  f"{len(fig['worst'])} worst removals by hole L1; columns: "
                  f"{', '.join(fig['columns'])}"]
    return "\n".join(lines)
