"""Matching predicted instance masks to ground-truth objects (evaluation with predicted S_V).

The rule of `segan evaluate --visible predicted` (docs/results.md): every predicted mask with
score >= the segmenter's threshold is a candidate; candidates and ground-truth objects are
matched one to one, greedily by decreasing IoU of the predicted mask with the ground-truth
S_V, a pair counting only when its IoU >= 0.5 (`match_greedy`). A matched object gets the
predicted mask as its S_V input; an unmatched object is a miss; an unmatched prediction is a
false positive.

Greedy matching at this threshold is also the optimal (Hungarian) one: the ground-truth S_V of
one image are disjoint, so a prediction p with IoU(p, S_V_a) > 0.5 covers more than half of
itself with S_V_a and has IoU < 0.5 with every other object. Each prediction is then a
candidate of at most one object (barring exact ties at 0.5), and taking every object's best
free candidate matches every object that has one, with the largest total IoU. Ties are broken
by (prediction index, object index), so the result is deterministic.

Training SeGAN on predicted masks follows the paper (section 5.2): "the segmentation mask that
has the largest intersection over union with the visible region of the groundtruth mask is
selected as the input mask during training" (`best_per_object`, not one to one).

All masks are bool arrays (N, H, W) of one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segan.mask_ops import mask_iou_matrix

__all__ = ["MATCH_IOU", "Matching", "mask_iou_matrix", "match_greedy", "match_masks",
           "best_per_object"]

MATCH_IOU = 0.5


@dataclass
class Matching:
    """pred_of_object: (G,) int, the prediction matched to each object, -1 for a miss;
    iou: (G,) float64, that pair's IoU (0 for a miss); false_positives: indices of the
    predictions matched to no object."""

    pred_of_object: np.ndarray
    iou: np.ndarray
    false_positives: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        """(G,) bool, whether each object has a prediction."""
        return self.pred_of_object >= 0

    @property
    def num_missed(self) -> int:
        return int((self.pred_of_object < 0).sum())


def match_greedy(iou: np.ndarray, min_iou: float = MATCH_IOU) -> Matching:
    """One-to-one matching of P predictions to G objects from their (P, G) IoU matrix.

    Pairs are taken by decreasing IoU (ties: lower prediction index, then lower object index)
    while both members are free and the IoU is >= min_iou and > 0 (a pair that does not
    overlap never matches, whatever min_iou).
    """
    iou = np.asarray(iou, dtype=np.float64)
    if iou.ndim != 2:
        raise ValueError(f"iou must be (P, G), got shape {iou.shape}")
    P, G = iou.shape
    pred_of_object = np.full(G, -1, np.int64)
    pair_iou = np.zeros(G, np.float64)
    used = np.zeros(P, bool)
    ps, gs = np.nonzero((iou >= min_iou) & (iou > 0))
    order = np.lexsort((gs, ps, -iou[ps, gs]))  # by -IoU, then prediction, then object
    for k in order:
        p, g = ps[k], gs[k]
        if used[p] or pred_of_object[g] >= 0:
            continue
        used[p] = True
        pred_of_object[g] = p
        pair_iou[g] = iou[p, g]
    return Matching(pred_of_object, pair_iou, np.flatnonzero(~used))


def match_masks(pred: np.ndarray, gt: np.ndarray, min_iou: float = MATCH_IOU) -> Matching:
    """`match_greedy` on the IoUs of predicted masks (P, H, W) with ground-truth masks
    (G, H, W)."""
    return match_greedy(mask_iou_matrix(pred, gt), min_iou)


def best_per_object(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each object, the prediction with the largest IoU (paper 5.2, training inputs); not
    one to one. Returns (index (G,) int, -1 where no prediction overlaps; iou (G,) float64).
    Ties: the lower prediction index."""
    iou = np.asarray(iou, dtype=np.float64)
    if iou.ndim != 2:
        raise ValueError(f"iou must be (P, G), got shape {iou.shape}")
    G = iou.shape[1]
    if iou.shape[0] == 0:
        return np.full(G, -1, np.int64), np.zeros(G)
    best = iou.argmax(0)
    best_iou = iou[best, np.arange(G)]
    return np.where(best_iou > 0, best, -1).astype(np.int64), best_iou
