"""Painting metrics of SeGAN (paper Table 2), as pure NumPy functions: the errors of one
painted object against its appearance ground truth over its S_F pixels (L1, MSE, PSNR, SSIM),
their mean over objects, and the Frechet distance of FID (its Inception features are
`segan.eval.perceptual`'s). The masks' metrics (IoU conventions, Table 1; depth layering,
Table 5) are `segan.eval.metrics`.

Images are float RGB in [0, 1], (H, W, 3); masks are boolean (H, W).
"""

from __future__ import annotations

import math

import numpy as np

PSNR_CAP_DB: float = 100.0  # PSNR reported for a perfect (MSE = 0) painting instead of inf


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
