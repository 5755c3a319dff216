"""Evaluation metrics of SeGAN (paper Sec. 5.2), as pure NumPy functions.

Notation follows the paper: S_V is the visible (modal) mask, S_I the invisible (occluded) part
and S_F = S_V u S_I the full (amodal) mask of one object instance. Masks are boolean arrays of
shape (H, W), or stacks (N, H, W) where noted; images are float RGB in [0, 1], (H, W, 3).

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

from segan.layering import LAYERING_THRESHOLD, occlusion_pairs_from_counts

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

PSNR_CAP_DB: float = 100.0  # PSNR reported for a perfect (MSE = 0) painting instead of inf


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


# ----------------------------------------------------------------------------- painting


def _object_box(mask: np.ndarray, min_size: int = 7) -> tuple[slice, slice]:
    """Bounding box of a (H, W) mask, grown (centred, clipped to the image) to >= min_size px."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = []
    for lo, hi, size in ((rows[0], rows[-1] + 1, mask.shape[0]),
                         (cols[0], cols[-1] + 1, mask.shape[1])):
        want = min(min_size, size)
        if hi - lo < want:
            lo = max(0, lo - (want - (hi - lo)) // 2)
            hi = lo + want
            if hi > size:
                lo, hi = size - want, size
        box.append(slice(int(lo), int(hi)))
    return box[0], box[1]


def painting_errors(painted: np.ndarray, target: np.ndarray, mask: np.ndarray,
                    ssim: bool = True) -> dict[str, float]:
    """Painting errors of one object (Table 2).

    painted, target: float RGB (H, W, 3) in [0, 1]: the painted full object and its appearance
    ground truth. mask: bool (H, W), the object's pixels (ground-truth S_F); must be non-empty.

    Returns:
    - ``l1/masked_mean``: mean |painted - target| over masked pixels and the 3 channels;
    - ``l2/masked_mse``: mean squared error over the same values (the paper's L2 is read as MSE:
      its L2 numbers, e.g. 0.008 beside L1 0.026, are about the square of an L1-sized error);
    - ``psnr/masked_db``: 10 log10(1 / MSE) for data range 1, capped at ``PSNR_CAP_DB`` when
      MSE == 0;
    - ``ssim/bbox_crop``: ``skimage.metrics.structural_similarity`` (channel_axis=-1,
      data_range=1, default 7x7 window) on the object's bounding-box crop, grown to at least 7x7
      within the image; NaN if the image is smaller than 3 px on a side. The crop includes
      background pixels inside the box. ssim=False: NaN (SSIM needs scikit-image).
    """
    painted = np.asarray(painted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be bool, got {mask.dtype}")
    if painted.shape != target.shape or painted.ndim != 3 or painted.shape[-1] != 3:
        raise ValueError(f"painted and target must be (H, W, 3), got {painted.shape}, "
                         f"{target.shape}")
    if mask.shape != painted.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {painted.shape[:2]}")
    if not mask.any():
        raise ValueError("mask is empty: painting errors need an object with pixels")
    for name, img in (("painted", painted), ("target", target)):
        if img.min() < -1e-3 or img.max() > 1 + 1e-3:
            raise ValueError(f"{name} must be RGB in [0, 1], got range "
                             f"[{img.min():.3g}, {img.max():.3g}]")

    diff = painted[mask] - target[mask]  # (n_pixels, 3)
    l1 = float(np.abs(diff).mean())
    mse = float(np.square(diff).mean())
    psnr = PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mse))
    return {
        "l1/masked_mean": l1,
        "l2/masked_mse": mse,
        "psnr/masked_db": psnr,
        "ssim/bbox_crop": _ssim_bbox(painted, target, mask) if ssim else math.nan,
    }


def _ssim_bbox(painted: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    from skimage.metrics import structural_similarity  # scikit-image: the "textures" extra

    rs, cs = _object_box(mask)
    a, b = painted[rs, cs], target[rs, cs]
    side = min(a.shape[:2])
    if side < 3:
        return math.nan
    win = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, win_size=win, channel_axis=-1, data_range=1.0))


class PaintingMeter:
    """Averages ``painting_errors`` over instances; ``compute()`` keeps the same keys, as means
    over instances (SSIM ignores NaN instances), plus ``count``."""

    def __init__(self) -> None:
        self._rows: list[dict[str, float]] = []

    def add(self, painted: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        """Add one instance; returns its errors."""
        row = painting_errors(painted, target, mask)
        self._rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self._rows)

    def compute(self) -> dict[str, float]:
        keys = ("l1/masked_mean", "l2/masked_mse", "psnr/masked_db", "ssim/bbox_crop")
        out: dict[str, float] = {}
        for k in keys:
            vals = np.array([r[k] for r in self._rows], dtype=np.float64)
            ok = vals[~np.isnan(vals)]
            out[k] = float(ok.mean()) if ok.size else math.nan
        out["count"] = float(len(self._rows))
        return out


# ----------------------------------------------------------------------------- FID


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017):
    d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As pytorch-fid (``calculate_frechet_distance``): the matrix square root by
    ``scipy.linalg.sqrtm``; if it is not finite (a nearly singular product), eps is added to
    both diagonals and it is taken again; a complex result whose diagonal's imaginary parts
    exceed 1e-3 is an error (ValueError), smaller ones are numerical noise and dropped.
    mu: (D,), sigma: (D, D).
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"need means (D,) and covariances (D, D) of one D, got {mu1.shape}, "
                         f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: the square root of sigma1 sigma2 has an "
                             f"imaginary component of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID of two feature sets (n1, D) and (n2, D) (rows = images; n1, n2 >= 2): the Fréchet
    distance of their Gaussians (mean, ``np.cov`` with n - 1, as pytorch-fid).

    With at least D images per set this is `frechet_distance` (scipy's sqrtm, the reference).
    With fewer (the covariances are then singular, and sqrtm of a 2048 x 2048 matrix took 49 s
    on our 2-core machine) the trace term is computed exactly from the centred features:
    with A = X1c / sqrt(n1 - 1), B = X2c / sqrt(n2 - 1), sigma1 sigma2 = A^T (A B^T) B has the
    nonzero eigenvalues of (A B^T)(A B^T)^T, so Tr (sigma1 sigma2)^(1/2) = the sum of the
    singular values of A B^T (an n1 x n2 matrix). Tests check both routes agree.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"need two (n, D) feature arrays of one D, got {f1.shape}, {f2.shape}")
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {len(f1)} and {len(f2)}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    if min(len(f1), len(f2)) >= f1.shape[1]:
        return frechet_distance(mu1, np.cov(f1, rowvar=False), mu2, np.cov(f2, rowvar=False))
    a = (f1 - mu1) / math.sqrt(len(f1) - 1)
    b = (f2 - mu2) / math.sqrt(len(f2) - 1)
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    diff = mu1 - mu2
    # Tr sigma = squared Frobenius norm of the centred, scaled features
    return float(diff @ diff + np.square(a).sum() + np.square(b).sum() - 2 * tr_covmean)


# ----------------------------------------------------------------------------- depth layering


def occlusion_graph(
    visible_masks: np.ndarray, predicted_full_masks: np.ndarray,
    thresh: float = LAYERING_THRESHOLD,
) -> set[tuple[int, int]]:
    """Predicted occlusion pairs of one image (Sec. 5.2, depth layering).

    visible_masks: bool (N, H, W), S_V of the N objects. predicted_full_masks: bool (N, H, W),
    predicted S_F. The predicted S_I of p is pred S_F_p \\ S_V_p. Object q occludes object p
    (pair ``(q, p)``, q != p) when IoU(S_V_q, predicted S_I_p) > thresh (strictly above; an
    empty union counts 0).
    """
    s_v = _as_mask(visible_masks, "visible_masks")
    pred = _as_mask(predicted_full_masks, "predicted_full_masks")
    if s_v.ndim != 3 or s_v.shape != pred.shape:
        raise ValueError(f"need two (N, H, W) stacks of one shape, got {s_v.shape}, {pred.shape}")
    n = s_v.shape[0]
    v = s_v.reshape(n, -1).astype(np.float64)
    s_i = (pred & ~s_v).reshape(n, -1).astype(np.float64)
    inter = v @ s_i.T  # [q, p] = |S_V_q n S_I_p|; exact for counts < 2**53
    return occlusion_pairs_from_counts(inter, v.sum(1), s_i.sum(1), thresh)


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
