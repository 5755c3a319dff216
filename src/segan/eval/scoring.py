"""Scoring one method's outputs, image by image: Tables 1, 2 and 5 (Sec. 5.2).

- Segmentation (Table 1): the predicted S_F in the original frame, thresholded at 0.5, against
  the dataset's masks at the original resolution (`segmentation_scores`, every convention).
- Painting (Table 2): the painted crop G(M) in [0, 1] against the appearance target cropped
  from the same box at the painter's size c, over the ground-truth S_F pixels of that crop
  (S_F crop >= 0.5); FID / LPIPS of the same objects where weights are given.
- Depth layering (Table 5): per image, `occlusion_graph` of the given S_V and the predicted
  S_F, against two ground truths: "GT: any overlap", the dataset's occlusion pairs (FORMAT.md),
  and "GT: 5% rule", the paper's rule on the ground-truth masks (`ground_truth_pairs_5pct`).
- Misses (``--visible predicted``): an object without a matched S_V scores 0 on every IoU, is
  not painted, and its occlusion pairs count as wrong; `run_method` runs a method on the
  detected objects only and scatters its output back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .baselines import ImageInputs, MethodOutput
from .figures import BestWorst, figure_row
from .metrics import (
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    SegmentationMeter,
    occlusion_graph,
    segmentation_scores,
    threshold,
)
from .painting_metrics import PaintingMeter
from .perceptual import PerceptualMeter


class MethodScores:
    """The three meters of one method, and its figure rows."""

    def __init__(self, paints: bool, figure_objects: int, image_mean: Sequence[float],
                 image_std: Sequence[float], perceptual: PerceptualMeter | None = None,
                 best_worst: int = 0):
        self.paints = paints
        self.perceptual = perceptual  # FID / LPIPS of the painted objects, with weights
        self.segments = False  # set by the first prediction with a full mask
        self.image_mean, self.image_std = tuple(image_mean), tuple(image_std)
        self.segmentation = SegmentationMeter()
        self.painting = PaintingMeter()
        self.layering = LayeringMeter()  # ground truth: the dataset's pairs (any overlap)
        self.layering_gt5 = LayeringMeter()  # ground truth: the 5% rule on the gt masks
        self.painting_skipped = 0  # objects without appearance or without S_F in the crop
        self.without_appearance = 0  # of which: no appearance image (the dataset has none)
        # set when the dataset has no occlusion pairs (its format has none): Table 5 n/a
        self.layering_note: str | None = None
        self.missed = 0  # objects without a predicted S_V (--visible predicted)
        self.layers = False  # whether the method gave occlusion pairs (Table 5 applies)
        self._pending: list = []  # images whose objects were all missed (see add)
        self._seen = False  # whether any output was scored
        # (masks, occlusion pairs) the method gives, for when it never ran (every object of
        # every image missed): from the runner's `segments` / `layers` attributes
        self.kind_hint = (True, True)
        self.figure_objects = figure_objects
        self.figure_occluded: list[np.ndarray] = []
        self.figure_other: list[np.ndarray] = []
        self.best_worst = BestWorst(best_worst)

    def add(self, inputs: ImageInputs, pred: MethodOutput | None,
            gt_pairs: Sequence[tuple[int, int]], detected: np.ndarray | None = None,
            gt_pairs_5pct: Sequence[tuple[int, int]] | None = None) -> None:
        """Score one image. detected: (N,) bool, the objects that got a (predicted) S_V; the
        others are misses: every IoU 0, no painting, no occlusion pair (None: all detected).
        A method without full masks is scored on Table 5 only if it gives occlusion pairs
        (depth_net), else on painting only. gt_pairs: the dataset's occlusion pairs (ann ids);
        gt_pairs_5pct: the 5%-rule pairs of the ground-truth masks (`gt_pairs_5pct`; computed
        here when None)."""
        ids = inputs.ann_ids
        if gt_pairs_5pct is None:
            gt_pairs_5pct = ground_truth_pairs_5pct(inputs)
        missed = (np.zeros(inputs.num_objects, bool) if detected is None
                  else ~np.asarray(detected, bool))
        self.missed += int(missed.sum())
        if pred is None:  # every object missed (`run_method`): scored once the kind is known
            empty = np.zeros_like(inputs.full)
            seg = segmentation_scores(empty, inputs.full, inputs.visible)
            for conv in SEGMENTATION_CONVENTIONS:
                seg[conv] = np.zeros_like(seg[conv])
            self._pending.append((seg, inputs.categories, list(gt_pairs), list(gt_pairs_5pct)))
            return
        self._seen = True
        pred_full = None
        if pred.full_probs is not None:
            self.segments = True
            pred_full = threshold(pred.full_probs.cpu().numpy(), 0.5)  # (N, H, W) bool
            seg = segmentation_scores(pred_full, inputs.full, inputs.visible)
            if missed.any():
                for conv in SEGMENTATION_CONVENTIONS:  # a miss scores 0 (docs/results.md)
                    seg[conv] = np.where(missed, 0.0, seg[conv])
            self.segmentation.add_scores(seg, inputs.categories)
            self._rank(inputs, pred, seg, missed)

        # Table 5: predicted occlusion pairs, as annotation ids
        pairs = pred.occlusion_pairs
        if pairs is None and pred_full is not None:
            pairs = occlusion_graph(inputs.input_visible, pred_full)
        if pairs is not None:
            self.layers = True
            pred_ids = [(ids[q], ids[p]) for q, p in pairs]
            self.layering.add(pred_ids, gt_pairs)
            self.layering_gt5.add(pred_ids, gt_pairs_5pct)

        painted = pred.painted.float().cpu().numpy() if pred.painted is not None else None
        target = inputs.target.float().cpu().numpy()
        mask = threshold(inputs.full_crop[:, 0].float().cpu().numpy(), 0.5)
        if painted is not None:
            scored = []
            for k in range(inputs.num_objects):
                if missed[k]:
                    continue
                if not (inputs.has_appearance[k] and mask[k].any()):
                    self.painting_skipped += 1
                    self.without_appearance += not inputs.has_appearance[k]
                    continue
                self.painting.add(painted[k].transpose(1, 2, 0), target[k].transpose(1, 2, 0),
                                  mask[k])
                scored.append(k)
            if self.perceptual is not None and scored:  # the same objects, on the device
                self.perceptual.add(pred.painted[scored], inputs.target[scored],
                                    inputs.full_crop[scored])
        if pred.box_full is not None or pred.painted is not None:  # something to show
            self._figure_rows(inputs.subset(~missed) if missed.any() else inputs,
                              _subset_output(pred, ~missed) if missed.any() else pred)

    def _rank(self, inputs: ImageInputs, pred: MethodOutput, seg: dict[str, Any],
              missed: np.ndarray) -> None:
        """Offer the image's occluded, detected objects to `best_worst`."""
        if self.best_worst.k <= 0:
            return
        c = inputs.target.shape[-1]
        for k in np.flatnonzero(np.atleast_1d(seg["occluded"]) & ~missed):
            full_iou = float(np.atleast_1d(seg["full_iou/standard"])[k])
            info = {"image_id": int(inputs.image_id), "ann_id": int(inputs.ann_ids[k]),
                    "full_iou": full_iou,
                    "invisible_iou/justamodal": float(
                        np.atleast_1d(seg["invisible_iou/justamodal"])[k]),
                    "occlusion_rate": float(np.atleast_1d(seg["occlusion_rate"])[k])}
            self.best_worst.add(full_iou, info, lambda k=k: figure_row(
                inputs, pred, k, c, self.image_mean, self.image_std))

    def _figure_rows(self, inputs: ImageInputs, pred: MethodOutput) -> None:
        n = self.figure_objects
        if len(self.figure_occluded) >= n:
            return
        occluded = (inputs.full & ~inputs.visible).any(axis=(1, 2))
        c = inputs.target.shape[-1]
        for k in range(inputs.num_objects):
            if len(self.figure_occluded) >= n:
                break
            if not occluded[k] and len(self.figure_other) >= n:
                continue
            row = figure_row(inputs, pred, k, c, self.image_mean, self.image_std)
            (self.figure_occluded if occluded[k] else self.figure_other).append(row)

    def figure(self) -> np.ndarray | None:
        rows = (self.figure_occluded + self.figure_other)[:self.figure_objects]
        return np.concatenate(rows, axis=0) if rows else None

    def compute(self) -> dict[str, Any]:
        if self._pending and not self._seen:  # no output at all: the method's declared kind
            self.segments, self.layers = self.kind_hint
        for seg, categories, gt_pairs, gt_pairs_5pct in self._pending:  # all missed: 0
            if self.segments:
                self.segmentation.add_scores(seg, categories)
            if self.layers:
                self.layering.add([], gt_pairs)
                self.layering_gt5.add([], gt_pairs_5pct)
        self._pending = []
        painting: dict[str, Any] | None = None
        note = None if self.paints else "not applicable: the method does not paint"
        if self.paints and not len(self.painting) and self.without_appearance:
            note = ("not applicable: no object of the split has an appearance image (its "
                    "format has none), so there is no painting target")
        elif self.paints:
            painting = {**self.painting.compute(), "count/skipped": float(self.painting_skipped)}
            if self.perceptual is not None:
                painting.update(self.perceptual.compute())
        if painting is not None and self.missed:
            painting["count/missed"] = float(self.missed)
        layering = (self.layering.compute() if self.layers and self.layering_note is None
                    else None)
        return {
            "segmentation": self.segmentation.compute() if self.segments else None,
            "segmentation_by_occlusion": (self.segmentation.compute_by_occlusion()
                                          if self.segments else None),
            "segmentation_by_category": (self.segmentation.compute_by_category()
                                         if self.segments else None),
            "segmentation_note": None if self.segments else
            "not applicable: the method predicts no full mask",
            "painting": painting,
            "painting_note": note,
            "layering": layering,
            "layering_note": self.layering_note,
            # needs only the masks, so it applies also where the dataset has no pairs
            "layering_gt_5pct": self.layering_gt5.compute() if self.layers else None,
            "missed_objects": self.missed,
        }


def ground_truth_pairs_5pct(inputs: ImageInputs) -> list[tuple[int, int]]:
    """The paper's 5% rule (`occlusion_graph`) on the ground-truth S_V and S_F of one image:
    (occluder, occludee) annotation ids, the ground truth of "layering (GT: 5% rule)". The
    same rule as a prediction's pairs, so the ground-truth S_F as prediction scores 100%."""
    ids = inputs.ann_ids
    return sorted((ids[q], ids[p]) for q, p in occlusion_graph(inputs.visible, inputs.full))


def _subset_output(pred: MethodOutput, keep: np.ndarray) -> MethodOutput:
    """The output of the objects `keep` ((N,) bool) only."""
    idx = np.flatnonzero(keep)
    new = {int(i): j for j, i in enumerate(idx)}
    t = torch.as_tensor(idx, dtype=torch.long)

    def sub(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x[t.to(x.device)]

    pairs = None if pred.occlusion_pairs is None else {
        (new[q], new[p]) for q, p in pred.occlusion_pairs if q in new and p in new}
    return MethodOutput(full_probs=sub(pred.full_probs), box_full=sub(pred.box_full),
                        painted=sub(pred.painted), occlusion_pairs=pairs)


def _scatter_output(pred: MethodOutput, keep: np.ndarray, inputs: ImageInputs) -> MethodOutput:
    """A method's output for the objects `keep` ((N,) bool) -> all N objects of `inputs`, the
    others (misses) empty: no mask, a blank painting, no occlusion pair."""
    idx = np.flatnonzero(keep)
    N = inputs.num_objects
    dev = inputs.boxes.device
    t = torch.as_tensor(idx, dtype=torch.long, device=dev)

    def scatter(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        out = x.new_zeros((N, *x.shape[1:]))
        out[t.to(x.device)] = x
        return out

    pairs = None if pred.occlusion_pairs is None else {
        (int(idx[q]), int(idx[p])) for q, p in pred.occlusion_pairs}
    return MethodOutput(full_probs=scatter(pred.full_probs), box_full=scatter(pred.box_full),
                        painted=scatter(pred.painted), occlusion_pairs=pairs)


def run_method(run: Any, inputs: ImageInputs, detected: np.ndarray | None
               ) -> MethodOutput | None:
    """`run` on the detected objects of `inputs` (all when detected is None), scattered back to
    all objects. With no detected object the method is not run: None (`MethodScores.add`
    scores every object of the image as a miss)."""
    if detected is None or detected.all():
        return run(inputs)
    if detected.any():
        return _scatter_output(run(inputs.subset(detected)), detected, inputs)
    return None

