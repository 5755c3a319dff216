"""Predicted S_V for the evaluation (`--visible predicted`): the visible-instance segmenter's
masks of an image, matched to its ground-truth objects.

- `PredictedVisible`: matched by `segan.eval.matching.match_masks` (IoU with the ground-truth S_V
  >= 0.5, one to one, greedy). A matched object gets the predicted mask as its S_V input; an
  unmatched object is a miss (scored 0, `segan.eval.scoring`); unmatched predictions are
  counted as false positives (`DetectionMeter`), and given to the methods as context: visible
  pixels of other things in the image (`ImageInputs.context_visible`), as `segan predict` gives
  SeGAN every mask the segmenter finds.

The image-level baselines are modules of `segan.baselines`: ``maskrcnn_full``
(`segan.baselines.maskrcnn_full`) and ``depth_net`` (`segan.baselines.depth_net`).
"""

from __future__ import annotations

import math

import numpy as np

from segan.models.visible_segmenter import VisibleSegmenter

from .matching import MATCH_IOU, Matching, match_masks


class PredictedVisible:
    """S_V from the visible-instance segmenter (`VisibleSegmenter`, mask_target "visible").

    __call__(image, gt_visible) -> (given (N, H, W) bool: the matched prediction per object,
    empty for a miss; the `Matching`; the number of predictions above the score threshold;
    context (M, H, W) bool: the unmatched predictions).
    """

    def __init__(self, segmenter: VisibleSegmenter, score_threshold: float | None = None,
                 min_iou: float = MATCH_IOU):
        if segmenter.mask_target != "visible":
            raise ValueError(f"{segmenter.identity.get('path')}: this detector was trained on "
                             f"{segmenter.mask_target} masks; --visible-segmenter needs a run of "
                             "configs/visible_maskrcnn.yaml (mask_target: visible)")
        self.segmenter = segmenter
        self.score_threshold = (segmenter.score_threshold if score_threshold is None
                                else float(score_threshold))
        self.min_iou = min_iou

    def __call__(self, image: np.ndarray, gt_visible: np.ndarray
                 ) -> tuple[np.ndarray, Matching, int, np.ndarray]:
        masks, _ = self.segmenter.segment(image, self.score_threshold)
        match = match_masks(masks, gt_visible, self.min_iou)
        given = np.zeros_like(gt_visible)
        ok = match.matched
        given[ok] = masks[match.pred_of_object[ok]]
        return given, match, len(masks), masks[match.false_positives]


class DetectionMeter:
    """Counts of the predicted-S_V matching over a split: objects, matched, missed, false
    positives, predictions, and the mean IoU of the matched pairs."""

    def __init__(self) -> None:
        self.objects = self.matched = self.false_positives = self.predictions = 0
        self.iou_sum = 0.0

    def add(self, match: Matching, predictions: int) -> None:
        self.objects += len(match.pred_of_object)
        self.matched += int(match.matched.sum())
        self.false_positives += len(match.false_positives)
        self.predictions += predictions
        self.iou_sum += float(match.iou[match.matched].sum())

    def compute(self) -> dict[str, float]:
        return {
            "count/objects": float(self.objects),
            "count/matched": float(self.matched),
            "count/missed": float(self.objects - self.matched),
            "count/false_positives": float(self.false_positives),
            "count/predictions": float(self.predictions),
            "recall": self.matched / self.objects if self.objects else math.nan,
            "precision": self.matched / self.predictions if self.predictions else math.nan,
            "matched_iou/mean": self.iou_sum / self.matched if self.matched else math.nan,
        }
