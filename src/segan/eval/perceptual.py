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
  2048-d pool3 output; the distance is `segan.eval.metrics.fid_from_features`.

What is compared (`PerceptualMeter`): each scored object's painted crop and its appearance
target, both composited on **black** with the ground-truth S_F of the crop as alpha: the target is
already RGB premultiplied by alpha (that is, on black: `segan.train.cache.render_image`), the
painted crop is multiplied by the alpha. Black is the painter's own training background (its L1
target is that premultiplied image). LPIPS is averaged over objects; FID compares the set of
painted composites with the set of target composites.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import inception as tv_inception

from segan.weights_io import load_safetensors, load_torch

from .metrics import fid_from_features

COMPOSITE = ("each painted crop times its ground-truth S_F (alpha) and the target "
             "(premultiplied by it), both on black")
NOT_COMPUTED = "not computed: needs weights (--fid-weights / --lpips-weights)"
NOT_COMPUTED_LPIPS = "not computed: needs weights (--lpips-weights)"
NOT_COMPUTED_FID = "not computed: needs weights (--fid-weights)"
# Metric keys added to a method's painting results.
LPIPS_KEY = "lpips/alex_v0.1"
FID_KEY = "fid/pool3"
FID_COUNT_KEY = "fid/count"

# LPIPS v0.1 ScalingLayer constants (lpips/lpips.py): x -> (x - shift) / scale on [-1, 1] input.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_CHANNELS = (64, 192, 384, 256, 256)  # AlexNet relu1..relu5
# AlexNet `features` indices ending each of the 5 LPIPS slices (after relu1..relu5).
_ALEX_SLICE_ENDS = (2, 5, 8, 10, 12)
_ALEX_CONVS = (0, 3, 6, 8, 10)
LPIPS_MIN_SIDE = 32  # AlexNet's pools need at least 31 px; smaller crops are resized up
FID_SIZE = 299
FID_DIMS = 2048

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
TORCHVISION_INCEPTION_FILE = "inception_v3_google-*.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_LIN_FILE = "alex.pth (lpips package, weights/v0.1)"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


class WeightsError(ValueError):
    """A weights file that is not what the metric needs (names the file and what is wrong)."""


# ----------------------------------------------------------------------------- loading


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict (name -> tensor) from a .pth/.pt (torch.load, weights_only) or .safetensors
    file, on the CPU. Raises FileNotFoundError / WeightsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":

            sd: Any = load_safetensors(path)
        else:
            sd = load_torch(path)
    except Exception as e:  # a truncated or foreign file: say which
        raise WeightsError(f"{path}: cannot be read as a PyTorch state dict: {e}") from e
    if not isinstance(sd, dict) or not sd or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise WeightsError(f"{path}: expected a state dict (a dict of parameter name -> tensor), "
                           f"got {type(sd).__name__}")
    return sd


def _check_state_dict(sd: dict[str, torch.Tensor], expected: dict[str, torch.Size],
                      path: Path, what: str, ignore: Sequence[str] = ()) -> None:
    """Raise WeightsError naming `path` and `what` when `sd` lacks a key of `expected`, has a
    wrong shape, or has keys that neither `expected` nor the prefixes `ignore` explain.
    BatchNorm's ``num_batches_tracked`` may be absent (files saved by old PyTorch lack it)."""
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    shapes = [f"{k}: {tuple(sd[k].shape)} instead of {tuple(s)}" for k, s in expected.items()
              if k in sd and sd[k].shape != s]
    unexpected = [k for k in sd if k not in expected and not k.startswith(tuple(ignore))]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_some(missing)})")
    if shapes:
        problems.append(f"wrong shapes ({_some(shapes, '; ')})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_some(unexpected)})")
    if problems:
        raise WeightsError(f"{path} is not {what}: {'; '.join(problems)}")


def _some(items: Sequence[str], sep: str = ", ", n: int = 5) -> str:
    return sep.join(items[:n]) + (f"{sep}..." if len(items) > n else "")


def _load_checked(module: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """Load an already checked state dict; absent num_batches_tracked keep their value."""
    own = module.state_dict()
    own.update({k: v.to(own[k].dtype) for k, v in sd.items() if k in own})
    module.load_state_dict(own, strict=True)


def _file_identity(path: Path, kind: str) -> dict[str, Any]:
    from segan.data.atomic import file_sha256

    return {"path": str(path), "kind": kind, "sha256": file_sha256(path)}


# ----------------------------------------------------------------------------- LPIPS


class AlexNetLPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk (`lpips.LPIPS(net="alex")` in eval mode).

    forward(x0, x1): two (N, 3, H, W) float RGB batches in [0, 1] -> (N,) distances (0 for equal
    images, symmetric). Crops smaller than `LPIPS_MIN_SIDE` are resized up (bilinear) first.
    """

    def __init__(self) -> None:
        super().__init__()
        features = torchvision.models.alexnet(weights=None).features
        # features[:12]: conv/ReLU up to relu5 (the final max-pool is not used)
        self.features = nn.Sequential(*list(features.children())[:12])
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # each slice's output is kept, so no in-place ReLU
        self.lins = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, c, 1, 1), requires_grad=False) for c in LPIPS_CHANNELS])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def relu_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 5 ReLU outputs for [0, 1] input (scaled to [-1, 1], then ScalingLayer)."""
        if min(x.shape[-2:]) < LPIPS_MIN_SIDE:
            h, w = x.shape[-2:]
            k = LPIPS_MIN_SIDE / min(h, w)
            x = F.interpolate(x, size=(math.ceil(h * k), math.ceil(w * k)), mode="bilinear",
                              align_corners=False)
        h = ((2 * x - 1) - self.shift) / self.scale
        outs, start = [], 0
        for end in _ALEX_SLICE_ENDS:
            for i in range(start, end):
                h = self.features[i](h)
            outs.append(h)
            start = end
        return outs

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(f"need two (N, 3, H, W) batches of one shape, got "
                             f"{tuple(x0.shape)}, {tuple(x1.shape)}")
        n = x0.shape[0]
        f = self.relu_features(torch.cat([x0, x1]).float())
        dist = x0.new_zeros(n, dtype=torch.float32)
        for feat, w in zip(f, self.lins, strict=True):
            # unit-normalise each position's channel vector (lpips.normalize_tensor, eps 1e-10)
            feat = feat / (feat.square().sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (feat[:n] - feat[n:]).square()
            dist = dist + (diff * w).sum(1).mean((1, 2))  # 1x1 conv by lin_l, spatial mean
        return dist


def _alexnet_expected(net: AlexNetLPIPS) -> dict[str, torch.Size]:
    return {f"features.{i}.{p}": net.features[i].state_dict()[p].shape
            for i in _ALEX_CONVS for p in ("weight", "bias")}


def _lpips_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"--lpips-weights folder {p} holds no weights file "
                                        f"({', '.join(_WEIGHT_SUFFIXES)}): expected {ALEXNET_FILE}"
                                        f" and {LPIPS_LIN_FILE}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"--lpips-weights {p} does not exist")
    return files


def load_lpips(paths: str | os.PathLike | Sequence[str | os.PathLike],
               device: str | torch.device = "cpu") -> tuple[AlexNetLPIPS, dict[str, Any]]:
    """The LPIPS network from local files, and their identity {"files": [...], "label"}.

    paths: files and/or folders (module docstring): each file is recognised by its keys as the
    AlexNet state dict (``features.*``), the linear layers (``lin*.model.1.weight``) or a whole
    LPIPS state dict; both parts must be found exactly once. Raises WeightsError naming the
    file and what was expected.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    net = AlexNetLPIPS()
    alex_expected = _alexnet_expected(net)
    lin_expected = {f"lin{i}.model.1.weight": torch.Size((1, c, 1, 1))
                    for i, c in enumerate(LPIPS_CHANNELS)}
    trunk: tuple[Path, dict[str, torch.Tensor]] | None = None
    lins: tuple[Path, dict[str, torch.Tensor]] | None = None
    identity: list[dict[str, Any]] = []
    for path in _lpips_files(paths):
        sd = load_state_dict_file(path)
        parts: list[str] = []
        if any(k.startswith("net.slice") for k in sd):  # a whole lpips.LPIPS state dict
            alex = {f"features.{k.split('.')[2]}.{k.split('.')[3]}": v for k, v in sd.items()
                    if k.startswith("net.slice")}
            _check_state_dict(alex, alex_expected, path,
                              "an LPIPS AlexNet state dict (net.slice{k}.{i}.weight/bias)")
            parts.append("alexnet")
            trunk = _set_once(trunk, (path, alex), "the AlexNet weights")
        elif any(k.startswith("features.") for k in sd):
            _check_state_dict(sd, alex_expected, path,
                              f"torchvision's AlexNet ImageNet state dict ({ALEXNET_FILE})",
                              ignore=("classifier.",))
            parts.append("alexnet")
            trunk = _set_once(trunk, (path, sd), "the AlexNet weights")
        if any(k.startswith("lin") for k in sd):
            lin = {k: v for k, v in sd.items() if k.startswith("lin")}
            _check_state_dict(lin, lin_expected, path,
                              f"the LPIPS v0.1 AlexNet linear layers ({LPIPS_LIN_FILE}: "
                              "lin0..lin4.model.1.weight of shape (1, C, 1, 1), C = "
                              f"{', '.join(map(str, LPIPS_CHANNELS))})")
            parts.append("lpips-linear")
            lins = _set_once(lins, (path, lin), "the LPIPS linear layers")
        if not parts:
            raise WeightsError(
                f"{path} is neither torchvision's AlexNet state dict ({ALEXNET_FILE}: features.*) "
                f"nor the LPIPS linear layers ({LPIPS_LIN_FILE}: lin0..lin4.model.1.weight); its "
                f"keys start {', '.join(list(sd)[:4])}")
        identity.append(_file_identity(path, "+".join(parts)))
    if trunk is None or lins is None:
        lacking = ([f"torchvision's AlexNet state dict ({ALEXNET_FILE})"] if trunk is None
                   else []) + ([f"the LPIPS linear layers ({LPIPS_LIN_FILE})"] if lins is None
                               else [])
        raise WeightsError(f"--lpips-weights {', '.join(map(str, paths))}: no "
                           f"{' and no '.join(lacking)} among "
                           f"{', '.join(i['path'] for i in identity)}")
    _load_checked(net.features, {k.removeprefix("features."): v for k, v in trunk[1].items()
                                 if k in alex_expected})
    for i, w in enumerate(net.lins):
        w.data.copy_(lins[1][f"lin{i}.model.1.weight"].float())
    return net.to(device), {"files": identity, "label": "LPIPS (AlexNet, v0.1)"}


def _set_once(current: Any, new: Any, what: str) -> Any:
    if current is not None:
        raise WeightsError(f"{what} are given twice: {current[0]} and {new[0]}")
    return new


# ----------------------------------------------------------------------------- FID Inception
# pytorch-fid's port of the TensorFlow FID graph differs from torchvision's Inception-v3 in its
# pooling branches: TF's average pool leaves padded zeros out of the average (Mixed_5b-d,
# Mixed_6b-e, Mixed_7b), and the last block (Mixed_7c) max-pools instead.


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv_inception.InceptionA):
    """Mixed_5b-d of the TF FID Inception: TF-style average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionC(tv_inception.InceptionC):
    """Mixed_6b-e of the TF FID Inception: TF-style average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = conv(b7d)
        return [self.branch1x1(x), b7, b7d, self.branch_pool(_tf_avg_pool(x))]


class FIDInceptionE(tv_inception.InceptionE):
    """Mixed_7b (pool "avg": TF-style average pool) and Mixed_7c (pool "max") of the TF FID
    Inception."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be avg or max, got {pool!r}")
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        pooled = (_tf_avg_pool(x) if self.pool == "avg"
                  else F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
        return [self.branch1x1(x), b3, b3d, self.branch_pool(pooled)]


_INCEPTION_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c")
FID_VARIANTS = {
    "pytorch-fid": "FID (TF FID Inception of pytorch-fid, pool3)",
    "torchvision": "FID (torchvision Inception; not comparable with published FIDs)",
}


class InceptionPool3(nn.Module):
    """Inception-v3 up to the 2048-d pool3 features, as FID uses it.

    variant "pytorch-fid": the TF FID network (patched blocks above); "torchvision": torchvision's
    Inception-v3 unchanged. forward(x): (N, 3, H, W) float RGB in [0, 1] -> (N, 2048) float32:
    resized to 299 x 299 (bilinear, align_corners=False), scaled to [-1, 1], global average pool.
    """

    def __init__(self, variant: str) -> None:
        super().__init__()
        if variant not in FID_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(FID_VARIANTS)}, got {variant!r}")
        self.variant = variant
        net = tv_inception.Inception3(num_classes=1008 if variant == "pytorch-fid" else 1000,
                                      aux_logits=False, init_weights=False)
        if variant == "pytorch-fid":
            net.Mixed_5b = FIDInceptionA(192, pool_features=32)
            net.Mixed_5c = FIDInceptionA(256, pool_features=64)
            net.Mixed_5d = FIDInceptionA(288, pool_features=64)
            net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
            net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
            net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
            net.Mixed_7b = FIDInceptionE(1280, pool="avg")
            net.Mixed_7c = FIDInceptionE(2048, pool="max")
        for name in _INCEPTION_BLOCKS:
            self.add_module(name, getattr(net, name))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(FID_SIZE, FID_SIZE), mode="bilinear",
                          align_corners=False)
        x = 2 * x - 1
        for name in _INCEPTION_BLOCKS:
            x = getattr(self, name)(x)
        return x.mean((2, 3))  # adaptive average pool to 1 x 1


def load_fid_inception(path: str | os.PathLike, device: str | torch.device = "cpu"
                       ) -> tuple[InceptionPool3, dict[str, Any]]:
    """The FID network from a local file, and its identity {"files", "variant", "label"}.

    The variant is told by the classifier: 1008 classes = pytorch-fid's TF FID Inception
    (``pt_inception-2015-12-05-6726825d.pth``), 1000 = torchvision's ``inception_v3_google``
    (its AuxLogits and fc are not used). Raises WeightsError naming the file and what was
    expected.
    """
    path = Path(path)
    sd = load_state_dict_file(path)
    expected_files = (f"pytorch-fid's {PYTORCH_FID_FILE} (fc.weight 1008 x 2048) or "
                      f"torchvision's {TORCHVISION_INCEPTION_FILE} (fc.weight 1000 x 2048)")
    fc = sd.get("fc.weight")
    if fc is None or fc.ndim != 2 or fc.shape[0] not in (1000, 1008):
        got = "no fc.weight" if fc is None else f"fc.weight of shape {tuple(fc.shape)}"
        raise WeightsError(f"{path} is not an Inception-v3 state dict for FID: expected "
                           f"{expected_files}; it has {got} (keys start "
                           f"{', '.join(list(sd)[:4])})")
    variant = "pytorch-fid" if fc.shape[0] == 1008 else "torchvision"
    net = InceptionPool3(variant)
    what = (f"pytorch-fid's TF FID Inception ({PYTORCH_FID_FILE})" if variant == "pytorch-fid"
            else f"torchvision's Inception-v3 ({TORCHVISION_INCEPTION_FILE})")
    _check_state_dict(sd, dict((k, v.shape) for k, v in net.state_dict().items()), path, what,
                      ignore=("fc.", "AuxLogits."))
    _load_checked(net, {k: v for k, v in sd.items() if not k.startswith(("fc.", "AuxLogits."))})
    return net.to(device), {"files": [_file_identity(path, variant)], "variant": variant,
                            "label": FID_VARIANTS[variant]}


# ----------------------------------------------------------------------------- the meter


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


# ----------------------------------------------------------------------------- report rows


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
