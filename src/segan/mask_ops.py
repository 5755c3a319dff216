"""Operations on instance masks of one image, (N, H, W) bool arrays: their IoU matrix
(`mask_iou_matrix`, the evaluation's matching and the segmenter's duplicate merging share it)
greedy duplicate suppression by mask IoU (`suppress_duplicates`: the visible segmenter run
at several image sizes, `segan.models.visible_segmenter.VisibleSegmenter.set_test_sizes`), and
the image-frame mask of an object's grown box (`grown_box_mask`: what a crop of S_V's box grown
by r can reach; scripts/box_growth_ceiling.py, scripts/hidden_by_occlusion.py)."""

from __future__ import annotations

import numpy as np

# mask IoU of duplicate suppression is taken on masks subsampled to at most this many pixels
# a side: its (N, H*W) float matrix stays small for any image size
SUPPRESS_MAX_SIDE = 512


def mask_iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(P, G) float64 IoU of every predicted mask with every ground-truth mask (0 where both
    are empty). pred: (P, H, W) bool, gt: (G, H, W) bool."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.dtype != np.bool_ or gt.dtype != np.bool_:
        raise TypeError(f"masks must be bool, got {pred.dtype} and {gt.dtype}")
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"need (P, H, W) and (G, H, W) masks of one size, got {pred.shape} and "
                         f"{gt.shape}")
    hw = int(np.prod(pred.shape[1:]))
    p = pred.reshape(len(pred), hw).astype(np.float32)
    g = gt.reshape(len(gt), hw).astype(np.float32)
    inter = (p @ g.T).astype(np.float64)  # exact: counts < 2**24 for images up to 4096^2
    union = p.sum(1)[:, None] + g.sum(1)[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def suppress_duplicates(masks: np.ndarray, scores: np.ndarray, max_iou: float) -> np.ndarray:
    """Indices of the masks kept, highest score first: greedily by decreasing score (ties by
    index), a mask is dropped when its IoU with a kept one exceeds `max_iou`. IoU is measured
    on the masks subsampled to at most SUPPRESS_MAX_SIDE pixels a side (every k-th row and
    column); a mask that vanishes there has IoU 0 with every other one and is kept."""
    masks, scores = np.asarray(masks), np.asarray(scores)
    if masks.ndim != 3 or len(masks) != len(scores):
        raise ValueError(f"need (N, H, W) masks and (N,) scores, got {masks.shape} and "
                         f"{scores.shape}")
    if not 0.0 <= max_iou <= 1.0:
        raise ValueError(f"max_iou must be in [0, 1], got {max_iou}")
    order = np.argsort(-scores, kind="stable")  # ties by index
    k = max(1, -(-max(masks.shape[1:]) // SUPPRESS_MAX_SIDE))  # ceil(side / max side)
    small = masks[:, ::k, ::k]
    iou = mask_iou_matrix(small, small)
    kept: list[int] = []
    dropped = np.zeros(len(masks), bool)
    for i in order:
        if dropped[i]:
            continue
        kept.append(int(i))
        dropped |= iou[i] > max_iou
    return np.array(kept, np.int64)


def grown_box_mask(visible: np.ndarray, ratio: float) -> np.ndarray:
    """(H, W) bool: the box of the (H, W) mask `visible` grown by `ratio` of its width / height
    on each side, clipped to the image (the image-frame counterpart of
    `segan.models.crops.expand_boxes_per_side`; empty for an empty mask)."""
    # here, not at the top: the segmenter and the matching import this module without COCO I/O
    from segan.data.coco.masks import mask_bbox

    H, W = visible.shape
    x, y, w, h = mask_bbox(visible)
    x1, y1 = max(0, int(x - ratio * w)), max(0, int(y - ratio * h))
    x2 = min(W, int(np.ceil(x + w + ratio * w)))
    y2 = min(H, int(np.ceil(y + h + ratio * h)))
    box = np.zeros((H, W), bool)
    box[y1:y2, x1:x2] = True
    return box
