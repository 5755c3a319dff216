"""Evaluation metrics of SeGAN's masks (paper Sec. 5.2), as pure NumPy functions: the IoU
conventions (Table 1) and depth layering (Table 5). The paintings' metrics (Table 2, FID's
distance) are `segan.eval.painting_metrics`.

Notation follows the paper: S_V is the visible (modal) mask, S_I the invisible (occluded) part
and S_F = S_V u S_I the full (amodal) mask of one object instance. Masks are boolean arrays of
shape (H, W), or stacks (N, H, W) where noted.

Every IoU number carries the name of its convention, because published amodal numbers mix
conventions and a trivial predictor can match some of them (docs: PAPER_NOTES, "Measured floors"):

- ``full_iou/standard``: IoU(pred S_F, gt S_F).
- ``visible_iou/modal``: IoU(pred S_F, gt S_V): the whole predicted mask against the visible mask,
  so predicting invisible pixels lowers it. This is the convention consistent with Table 1, where
  SeGAN's visible score (68.05) is below its full score (75.71); the restricted convention below
  (recall of S_V) is usually at least the full IoU and could hardly produce that ordering.
- ``visible_iou/svsi``: prediction and ground truth both restricted to the gt S_V pixels, then
  IoU, i.e. |pred n S_V| / |S_V| (recall of S_V; 0 when S_V is empty). It says whether the model
  keeps (does not erase) the visible mask it was given.
- ``invisible_iou/justamodal``: IoU(pred \\ S_V, S_F \\ S_V), 1 when both are empty (reference
  code ``calcIouJustAmodal``).
- ``invisible_iou/svsi``: prediction and ground truth both restricted to the gt S_I pixels, then
  IoU, i.e. |pred n S_I| / |S_I| (recall of S_I); 0 for an object with no S_I (reference code
  ``calc_SV_SI``). Averaged over all instances this gives the low published 15-23 numbers.

All IoUs are fractions in [0, 1] (multiply by 100 for the paper's tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from segan.layering import LAYERING_THRESHOLD, occlusion_iou_from_counts, pairs_from_iou

# Names of the per-instance IoU conventions, in report order.
SEGMENTATION_CONVENTIONS: tuple[str, ...] = (
    "full_iou/standard",
    "visible_iou/modal",
    "visible_iou/svsi",
    "invisible_iou/justamodal",
    "invisible_iou/svsi",
)
# IoU given to an instance whose intersection and union are both empty, per convention.
_EMPTY_IOU: dict[str, float] = {
    "full_iou/standard": 1.0,
    "visible_iou/modal": 1.0,
    "visible_iou/svsi": 0.0,
    "invisible_iou/justamodal": 1.0,
    "invisible_iou/svsi": 0.0,
}

# Occlusion-rate bins |S_I| / |S_F| of the per-instance breakdown, (label, lo, hi): the first
# holds rate == 0 (unoccluded), each other lo < rate <= hi.
OCCLUSION_BINS: tuple[tuple[str, float, float], ...] = (
    ("0%", 0.0, 0.0),
    ("0-25%", 0.0, 0.25),
    ("25-50%", 0.25, 0.5),
    ("50%+", 0.5, 1.0),
)


# ----------------------------------------------------------------------------- masks and IoU


def threshold(prob: np.ndarray, t: float = 0.5) -> np.ndarray:
    """Binarise a probability mask: ``prob >= t`` (the reference code uses >= 0.5).

    prob: float array of any shape, values in [0, 1]. Returns a bool array of the same shape.
    """
    return np.asarray(prob) >= t


def _as_mask(x: np.ndarray, name: str) -> np.ndarray:
    """Check that a mask is boolean (a probability map must go through ``threshold`` first)."""
    x = np.asarray(x)
    if x.dtype != np.bool_:
        raise TypeError(f"{name} must be a bool mask, got dtype {x.dtype}; use threshold() first")
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must be (H, W) or (N, H, W), got shape {x.shape}")
    return x


def _counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union pixel counts over the last two axes (int64)."""
    inter = np.count_nonzero(a & b, axis=(-2, -1))
    union = np.count_nonzero(a | b, axis=(-2, -1))
    return np.asarray(inter, dtype=np.int64), np.asarray(union, dtype=np.int64)


def _ratio(inter: np.ndarray, union: np.ndarray, empty: float) -> np.ndarray:
    """inter / union, with ``empty`` where union == 0."""
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    out = np.full(np.broadcast(inter, union).shape, float(empty))
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _scalar_or_array(x: np.ndarray) -> Any:
    return x.item() if np.ndim(x) == 0 else x


def iou(a: np.ndarray, b: np.ndarray, empty: float = 1.0) -> float | np.ndarray:
    """Intersection over union of bool masks (H, W) -> float, or stacks (N, H, W) -> (N,) float64.

    ``empty`` is returned where both masks are empty (union 0).
    """
    a, b = _as_mask(a, "a"), _as_mask(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return _scalar_or_array(_ratio(*_counts(a, b), empty=empty))


def segmentation_scores(
    pred_full: np.ndarray, gt_full: np.ndarray, gt_visible: np.ndarray
) -> dict[str, Any]:
    """Per-instance segmentation scores of a predicted full mask (Table 1).

    pred_full: predicted S_F, bool (H, W) or (N, H, W) (threshold probabilities first).
    gt_full, gt_visible: ground-truth S_F and S_V, bool, same shape. S_I = S_F \\ S_V.

    Returns, for each name ``c`` in ``SEGMENTATION_CONVENTIONS`` (see module docstring):
    ``c`` -> IoU, ``c + "/inter"`` and ``c + "/union"`` -> pixel counts (int, for pooled IoU);
    ``"occluded"`` -> whether S_I is non-empty; and ``"occlusion_rate"`` -> |S_I| / |S_F| (0
    for an empty S_F). Values are scalars for (H, W) inputs and (N,) arrays for stacks.
    """
    pred = _as_mask(pred_full, "pred_full")
    s_f = _as_mask(gt_full, "gt_full")
    s_v = _as_mask(gt_visible, "gt_visible")
    if not pred.shape == s_f.shape == s_v.shape:
        raise ValueError(f"shapes differ: {pred.shape}, {s_f.shape}, {s_v.shape}")
    s_i = s_f & ~s_v

    counts = {
        "full_iou/standard": _counts(pred, s_f),
        "visible_iou/modal": _counts(pred, s_v),
        # Restricted to gt S_V: (pred n S_V) vs S_V, so union = |S_V|.
        "visible_iou/svsi": _counts(pred & s_v, s_v),
        # calcIouJustAmodal: (pred \ S_V) vs (S_F \ S_V).
        "invisible_iou/justamodal": _counts(pred & ~s_v, s_i),
        # calc_SV_SI: (pred n S_I) vs S_I, so union = |S_I|.
        "invisible_iou/svsi": _counts(pred & s_i, s_i),
    }
    out: dict[str, Any] = {}
    for name, (inter, union) in counts.items():
        out[name] = _scalar_or_array(_ratio(inter, union, _EMPTY_IOU[name]))
        out[name + "/inter"] = _scalar_or_array(inter)
        out[name + "/union"] = _scalar_or_array(union)
    out["occluded"] = _scalar_or_array(np.any(s_i, axis=(-2, -1)))
    out["occlusion_rate"] = _scalar_or_array(_ratio(np.count_nonzero(s_i, axis=(-2, -1)),
                                                    np.count_nonzero(s_f, axis=(-2, -1)), 0.0))
    return out


def occlusion_bin_index(rates: np.ndarray) -> np.ndarray:
    """The `OCCLUSION_BINS` index of each occlusion rate |S_I| / |S_F| (float array in
    [0, 1]) -> int64 array of the same shape."""
    rates = np.asarray(rates, dtype=np.float64)
    if rates.size and (rates.min() < 0 or rates.max() > 1):
        raise ValueError(f"occlusion rates must be in [0, 1], got [{rates.min()}, {rates.max()}]")
    # bins after the first are (lo, hi]: searchsorted(side="left") on the upper edges
    upper = np.array([hi for _, _, hi in OCCLUSION_BINS])
    return np.searchsorted(upper, rates, side="left").astype(np.int64)


class SegmentationMeter:
    """Accumulates per-instance segmentation scores and reports every convention.

    Use ``add(pred_full, gt_full, gt_visible)`` with bool (H, W) or (N, H, W) masks. An instance
    is *occluded* when its ground-truth S_I is non-empty. ``compute()`` returns, for each
    convention ``c`` in ``SEGMENTATION_CONVENTIONS``:

    - ``c/mean_all``: mean of per-instance IoU over all instances (the paper's Table 1 averaging);
    - ``c/pooled_all``: sum of intersections / sum of unions over all instances (the PCNet and
      MP3D-Amodal convention);
    - ``c/mean_occluded`` and ``c/pooled_occluded``: the same over occluded instances only;

    plus ``count/all`` and ``count/occluded``. Means are NaN with no instances; a pooled value
    whose unions sum to 0 takes the convention's empty value (1 or 0, as per instance).
    """

    def __init__(self) -> None:
        self._iou: dict[str, list[np.ndarray]] = {c: [] for c in SEGMENTATION_CONVENTIONS}
        self._inter: dict[str, list[np.ndarray]] = {c: [] for c in SEGMENTATION_CONVENTIONS}
        self._union: dict[str, list[np.ndarray]] = {c: [] for c in SEGMENTATION_CONVENTIONS}
        self._occluded: list[np.ndarray] = []
        self._rate: list[np.ndarray] = []
        self._category: list[str] = []

    def add(self, pred_full: np.ndarray, gt_full: np.ndarray, gt_visible: np.ndarray) -> None:
        """Add one instance (H, W) or a stack of instances (N, H, W); see segmentation_scores."""
        self.add_scores(segmentation_scores(pred_full, gt_full, gt_visible))

    def add_scores(self, scores: Mapping[str, Any], categories: Sequence[str] | None = None
                   ) -> None:
        """Add the output of ``segmentation_scores`` (scalar or stacked); categories: the
        instances' category names (`compute_by_category`; None: "unknown")."""
        n = len(np.atleast_1d(scores["occluded"]))
        if categories is not None and len(categories) != n:
            raise ValueError(f"{len(categories)} category names for {n} instances")
        self._category.extend(["unknown"] * n if categories is None else categories)
        for c in SEGMENTATION_CONVENTIONS:
            self._iou[c].append(np.atleast_1d(np.asarray(scores[c], dtype=np.float64)))
            self._inter[c].append(np.atleast_1d(np.asarray(scores[c + "/inter"], np.int64)))
            self._union[c].append(np.atleast_1d(np.asarray(scores[c + "/union"], np.int64)))
        self._occluded.append(np.atleast_1d(np.asarray(scores["occluded"], dtype=bool)))
        self._rate.append(np.atleast_1d(np.asarray(scores["occlusion_rate"], np.float64)))

    def __len__(self) -> int:
        return int(sum(len(o) for o in self._occluded))

    def compute(self) -> dict[str, float]:
        """Return the report dict described in the class docstring (IoUs as fractions)."""
        occ = np.concatenate(self._occluded) if self._occluded else np.zeros(0, bool)
        out: dict[str, float] = {}
        for c in SEGMENTATION_CONVENTIONS:
            ious = np.concatenate(self._iou[c]) if self._iou[c] else np.zeros(0)
            inter = np.concatenate(self._inter[c]) if self._inter[c] else np.zeros(0, np.int64)
            union = np.concatenate(self._union[c]) if self._union[c] else np.zeros(0, np.int64)
            for subset, sel in (("all", np.ones_like(occ)), ("occluded", occ)):
                n = int(sel.sum())
                out[f"{c}/mean_{subset}"] = float(ious[sel].mean()) if n else math.nan
                out[f"{c}/pooled_{subset}"] = (
                    float(_ratio(inter[sel].sum(), union[sel].sum(), _EMPTY_IOU[c])) if n
                    else math.nan
                )
        out["count/all"] = float(len(occ))
        out["count/occluded"] = float(occ.sum())
        return out

    def compute_by_occlusion(self) -> dict[str, dict[str, float]]:
        """Per-instance means by occlusion rate |S_I| / |S_F| (`OCCLUSION_BINS`): bin label ->
        {``c/mean`` for each convention c (NaN for an empty bin), ``count``}. Says where a
        model's quality goes as objects hide more of themselves."""
        rate = np.concatenate(self._rate) if self._rate else np.zeros(0)
        which = occlusion_bin_index(rate)
        ious = {c: np.concatenate(v) if v else np.zeros(0) for c, v in self._iou.items()}
        out: dict[str, dict[str, float]] = {}
        for b, (label, _, _) in enumerate(OCCLUSION_BINS):
            sel = which == b
            n = int(sel.sum())
            row = {f"{c}/mean": float(ious[c][sel].mean()) if n else math.nan
                   for c in SEGMENTATION_CONVENTIONS}
            row["count"] = float(n)
            out[label] = row
        return out

    def compute_by_category(self) -> dict[str, dict[str, float]]:
        """Per-category means, most instances first: name -> {``c/mean`` over the category's
        instances and ``c/mean_occluded`` over its occluded ones, for each convention c (NaN
        when there are none), ``count``, ``count/occluded``}. Says which kinds of object a
        model completes and which it does not (e.g. thin tools against boxes)."""
        names = np.array(self._category, dtype=object)
        occ = np.concatenate(self._occluded) if self._occluded else np.zeros(0, bool)
        ious = {c: np.concatenate(v) if v else np.zeros(0) for c, v in self._iou.items()}
        out: dict[str, dict[str, float]] = {}
        found, counts = np.unique(names, return_counts=True) if len(names) else ([], [])
        for name in [n for _, n in sorted(zip(-np.asarray(counts), found, strict=True))]:
            sel = names == name
            row: dict[str, float] = {}
            for c in SEGMENTATION_CONVENTIONS:
                row[f"{c}/mean"] = float(ious[c][sel].mean())
                row[f"{c}/mean_occluded"] = (float(ious[c][sel & occ].mean())
                                             if (sel & occ).any() else math.nan)
            row["count"] = float(sel.sum())
            row["count/occluded"] = float((sel & occ).sum())
            out[str(name)] = row
        return out


# ----------------------------------------------------------------------------- depth layering


def occlusion_overlaps(visible_masks: np.ndarray, predicted_full_masks: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(iou, inter), (N, N) float64 each: [q, p] = IoU(S_V_q, predicted S_I_p) (0 for an empty
    union and on the diagonal) and |S_V_q n S_I_p|, the predicted S_I of p being pred S_F_p \\
    S_V_p. visible_masks: bool (N, H, W), S_V of the N objects; predicted_full_masks: bool
    (N, H, W), predicted S_F."""
    s_v = _as_mask(visible_masks, "visible_masks")
    pred = _as_mask(predicted_full_masks, "predicted_full_masks")
    if s_v.ndim != 3 or s_v.shape != pred.shape:
        raise ValueError(f"need two (N, H, W) stacks of one shape, got {s_v.shape}, {pred.shape}")
    n = s_v.shape[0]
    v = s_v.reshape(n, -1).astype(np.float64)
    s_i = (pred & ~s_v).reshape(n, -1).astype(np.float64)
    inter = v @ s_i.T  # [q, p] = |S_V_q n S_I_p|; exact for counts < 2**53
    return occlusion_iou_from_counts(inter, v.sum(1), s_i.sum(1)), inter


def occlusion_graph(
    visible_masks: np.ndarray, predicted_full_masks: np.ndarray,
    thresh: float = LAYERING_THRESHOLD,
) -> set[tuple[int, int]]:
    """Predicted occlusion pairs of one image (Sec. 5.2, depth layering).

    visible_masks: bool (N, H, W), S_V of the N objects. predicted_full_masks: bool (N, H, W),
    predicted S_F. The predicted S_I of p is pred S_F_p \\ S_V_p. Object q occludes object p
    (pair ``(q, p)``, q != p) when IoU(S_V_q, predicted S_I_p) > thresh (strictly above; an
    empty union counts 0; `occlusion_overlaps`).
    """
    return pairs_from_iou(occlusion_overlaps(visible_masks, predicted_full_masks)[0], thresh)


def layering_accuracy(
    pred_pairs: Iterable[tuple[int, int]], gt_pairs: Iterable[tuple[int, int]]
) -> float | None:
    """Depth-layering accuracy of one image: correct predictions / ground-truth occlusion pairs.

    A ground-truth pair (q, p) (q occludes p) is correct when the prediction contains (q, p)
    and not the reverse (p, q); if the ground truth itself has both directions (mutual
    occlusion), containing (q, p) suffices. A missed pair counts wrong; predicted pairs absent
    from the ground truth are not counted. Returns None for an image without ground-truth pairs
    (skipped in the average).
    """
    pred = {(int(q), int(p)) for q, p in pred_pairs}
    gt = {(int(q), int(p)) for q, p in gt_pairs if q != p}
    if not gt:
        return None
    correct = sum(
        (q, p) in pred and ((p, q) not in pred or (p, q) in gt) for q, p in gt
    )
    return correct / len(gt)


class LayeringMeter:
    """Averages ``layering_accuracy`` over images (Table 5); images without gt pairs are
    skipped. ``compute()`` -> {"layering_accuracy/mean_images", "count/images",
    "count/skipped_images"}."""

    def __init__(self) -> None:
        self._acc: list[float] = []
        self._skipped = 0

    def add(
        self, pred_pairs: Iterable[tuple[int, int]], gt_pairs: Iterable[tuple[int, int]]
    ) -> float | None:
        """Add one image; returns its accuracy (None if skipped)."""
        acc = layering_accuracy(pred_pairs, gt_pairs)
        if acc is None:
            self._skipped += 1
        else:
            self._acc.append(acc)
        return acc

    def compute(self) -> dict[str, float]:
        return {
            "layering_accuracy/mean_images": float(np.mean(self._acc)) if self._acc else math.nan,
            "count/images": float(len(self._acc)),
            "count/skipped_images": float(self._skipped),
        }
