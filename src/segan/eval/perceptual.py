"""FID and LPIPS of painted objects (Table 2), computed only with weights the user has.

No weights are bundled and none are downloaded: the user points to local files.

- LPIPS (Zhang et al. 2018, v0.1, AlexNet trunk): `--lpips-weights` takes torchvision's AlexNet
  ImageNet state dict (``alexnet-owt-7be5be79.pth``: keys ``features.{0,3,6,8,10}.{weight,bias}``,
  the classifier is not used) and the ``lpips`` package's linear layers (``weights/v0.1/alex.pth``:
  ``lin{0..4}.model.1.weight`` of shape (1, C, 1, 1)), as two files or a folder holding them;
  a whole ``lpips.LPIPS`` state dict (``net.slice{k}.{i}.*`` + ``lin*``) is accepted too.
  d(x0, x1) = sum_l mean_{h,w} sum_c w_l,c (f0_l,hwc - f1_l,hwc)^2, where f_l are the 5 ReLU
  outputs of AlexNet, each divided by its channel norm (+1e-10), on inputs scaled to [-1, 1] and
  then by the package's ScalingLayer ((x - shift) / scale).
- FID (Heusel et al. 2017): `--fid-weights` is either pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth`` (the TensorFlow FID Inception: torchvision's
  Inception-v3 with 1008 classes and three block differences, `FIDInceptionA` etc. below) or
  torchvision's ``inception_v3_google`` state dict; the latter's number is labelled
  "FID (torchvision Inception)" because it is not comparable with published FIDs. Inputs are
  resized to 299 x 299 (bilinear, align_corners=False) and scaled to [-1, 1]; features are the
  2048-d pool3 output; the distance is `segan.eval.painting_metrics.fid_from_features`.

What is compared (`PerceptualMeter`): each scored object's painted crop and its appearance
target, both composited on **black** with the ground-truth S_F of the crop as alpha: the target is
already RGB premultiplied by alpha (that is, on black: `segan.train.cache.render_image`), the
painted crop is multiplied by the alpha. Black is the painter's own training background (its L1
target is that premultiplied image). LPIPS is averaged over objects; FID compares the set of
painted composites with the set of target composites.

The networks and their weights: :mod:`segan.eval.lpips_net`, :mod:`segan.eval.fid_inception`,
:mod:`segan.eval.metric_weights` (reading and checking a weights file).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from segan.eval.fid_inception import FID_DIMS, InceptionPool3, load_fid_inception
from segan.eval.lpips_net import AlexNetLPIPS, load_lpips
from segan.eval.painting_metrics import fid_from_features

COMPOSITE = ("each painted crop times its ground-truth S_F (alpha) and the target "
             "(premultiplied by it), both on black")
NOT_COMPUTED = "not computed: needs weights (--fid-weights / --lpips-weights)"
NOT_COMPUTED_LPIPS = "not computed: needs weights (--lpips-weights)"
NOT_COMPUTED_FID = "not computed: needs weights (--fid-weights)"
# Metric keys added to a method's painting results.
LPIPS_KEY = "lpips/alex_v0.1"
FID_KEY = "fid/pool3"
FID_COUNT_KEY = "fid/count"


@dataclass
class PerceptualNetworks:
    """The networks loaded for one evaluation (either may be None: its metric is skipped), shared
    by every method's `PerceptualMeter`."""

    lpips: AlexNetLPIPS | None = None
    lpips_identity: dict[str, Any] | None = None
    fid: InceptionPool3 | None = None
    fid_identity: dict[str, Any] | None = None
    device: torch.device = torch.device("cpu")
    batch_size: int = 64

    @property
    def any(self) -> bool:
        return self.lpips is not None or self.fid is not None

    def meter(self) -> PerceptualMeter:
        return PerceptualMeter(self)

    def describe(self) -> dict[str, Any]:
        """results.json's "perceptual" entry: the weights used, and what was not computed."""
        note = (NOT_COMPUTED if not self.any else NOT_COMPUTED_LPIPS if self.lpips is None
                else NOT_COMPUTED_FID if self.fid is None else None)
        return {"lpips": self.lpips_identity, "fid": self.fid_identity,
                "composite": COMPOSITE,
                "note": note}


def load_perceptual(fid_weights: str | os.PathLike | None = None,
                    lpips_weights: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                    device: str | torch.device = "cpu", batch_size: int = 64
                    ) -> PerceptualNetworks:
    """Load what the user has: `load_fid_inception(fid_weights)`, `load_lpips(lpips_weights)`
    (None: that metric is not computed)."""
    nets = PerceptualNetworks(device=torch.device(device), batch_size=batch_size)
    if lpips_weights is not None:
        nets.lpips, nets.lpips_identity = load_lpips(lpips_weights, device)
    if fid_weights is not None:
        nets.fid, nets.fid_identity = load_fid_inception(fid_weights, device)
    return nets


class PerceptualMeter:
    """LPIPS and FID of one method's painted objects (module docstring: what is compared).

    add(painted, target, alpha): (n, 3, c, c) painted RGB in [0, 1], (n, 3, c, c) the target
    (RGB premultiplied by alpha), (n, 1, c, c) the ground-truth S_F of the crop in [0, 1]; any
    device. Objects are batched (`batch_size`) through the networks on their device.
    compute() -> {LPIPS_KEY: mean over objects, FID_KEY: FID of painted vs target sets,
    FID_COUNT_KEY: objects}; a metric without network is absent, FID with < 2 objects is NaN.
    """

    def __init__(self, nets: PerceptualNetworks) -> None:
        self.nets = nets
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._n_pending = 0
        self._lpips: list[np.ndarray] = []
        self._feats: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._lock = threading.Lock()  # add() may come from a scoring thread

    def add(self, painted: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor) -> None:
        if not self.nets.any or painted.shape[0] == 0:
            return
        if not (painted.shape == target.shape and painted.ndim == 4 and painted.shape[1] == 3
                and alpha.shape == (painted.shape[0], 1, *painted.shape[2:])):
            raise ValueError(f"need painted, target (n, 3, c, c) and alpha (n, 1, c, c), got "
                             f"{tuple(painted.shape)}, {tuple(target.shape)}, "
                             f"{tuple(alpha.shape)}")
        alpha = alpha.float().clamp(0, 1)
        painted = painted.float().clamp(0, 1) * alpha  # on black, as the premultiplied target
        with self._lock:
            self._pending.append((painted, target.float().clamp(0, 1)))
            self._n_pending += painted.shape[0]
            if self._n_pending >= self.nets.batch_size:
                self._flush()

    @torch.inference_mode()
    def _flush(self) -> None:
        if not self._pending:
            return
        painted = torch.cat([p for p, _ in self._pending]).to(self.nets.device)
        target = torch.cat([t for _, t in self._pending]).to(self.nets.device)
        self._pending, self._n_pending = [], 0
        if self.nets.lpips is not None:
            self._lpips.append(self.nets.lpips(painted, target).cpu().double().numpy())
        if self.nets.fid is not None:
            both = self.nets.fid(torch.cat([painted, target]))
            n = painted.shape[0]
            self._feats[0].append(both[:n].cpu().numpy())  # float32: 8 KiB an object
            self._feats[1].append(both[n:].cpu().numpy())

    def compute(self) -> dict[str, float]:
        with self._lock:
            self._flush()
        out: dict[str, float] = {}
        if self.nets.lpips is not None:
            d = np.concatenate(self._lpips) if self._lpips else np.zeros(0)
            out[LPIPS_KEY] = float(d.mean()) if d.size else math.nan
        if self.nets.fid is not None:
            painted = np.concatenate(self._feats[0]) if self._feats[0] else np.zeros((0, FID_DIMS))
            target = np.concatenate(self._feats[1]) if self._feats[1] else np.zeros((0, FID_DIMS))
            out[FID_KEY] = fid_from_features(painted, target) if len(painted) >= 2 else math.nan
            out[FID_COUNT_KEY] = float(len(painted))
        return out


def report_rows(results: dict[str, Any], methods: Sequence[str], na: str = "n/a"
                ) -> list[list[str]]:
    """Table 2's LPIPS and FID rows of results.md (label, one cell per method, paper "–"):
    the value, "n/a" for a method that does not paint, or the "not computed" text."""
    info = results.get("perceptual") or {}
    fid_label = (info.get("fid") or {}).get("label", "FID (Inception, pool3)")
    rows = []
    for key, label, missing, have, digits in (
            (LPIPS_KEY, "LPIPS (AlexNet, v0.1)", NOT_COMPUTED_LPIPS,
             info.get("lpips") is not None, 4),
            (FID_KEY, fid_label, NOT_COMPUTED_FID, info.get("fid") is not None, 2)):
        cells = [label]
        for m in methods:
            p = results["methods"][m].get("painting")
            v = None if p is None else p.get(key)
            cells.append(na if p is None else missing if not have else
                         "–" if v is None or (isinstance(v, float) and math.isnan(v))
                         else f"{v:.{digits}f}")
        rows.append([*cells, "–"])
    return rows


def report_notes(results: dict[str, Any]) -> list[str]:
    """Lines under Table 2 of results.md: what FID and LPIPS compared, with which weights."""
    info = results.get("perceptual") or {}
    used = [(name, info[name]) for name in ("fid", "lpips") if info.get(name)]
    if not used:
        return []
    files = "; ".join(f"{name.upper()}: " + ", ".join(
        f"`{f['path']}` (sha256 {f['sha256'][:12]})" for f in ident["files"])
        for name, ident in used)
    return ["", f"- FID and LPIPS: {COMPOSITE}; FID compares the set of painted objects with "
            f"the set of targets (FID with few objects is biased upwards: compare equal "
            f"counts only). Weights: {files}"]
