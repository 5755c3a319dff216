"""Tensor transforms between an image and the model's inputs and outputs, shared by training
(`segan.train.data`), the predictor (`segan.inference`) and the evaluation (`segan.eval`).

Frames (`segan.models.segan`'s conventions): an image of (H, W) pixels is resized to the model's
S x S frame; boxes are (x1, y1, x2, y2) (or (K, 5) with a leading batch index) in continuous
pixel coordinates, pixel (i, j) covering [j, j + 1) x [i, i + 1). Each object is seen through
its S_V box grown per side (section 5.1) and clipped to the frame; crops resample a box to a
fixed size (`crop_boxes`, `crop_object_masks`, from `segan.models.crops`) and pasting is their
inverse (`paste_planes`): a box map back to the (H, W) frame.

- resizing: `resize_image_u8`, `resize_planes_u8` (NumPy) and `resize_planes_u8_t` (torch, on
  the tensor's device): bilinear, antialiased, rounded to uint8; `resize_window` computes one
  window of such a resize from the source pixels it reads (the training cache's patches);
- boxes: `expand_boxes`, `expand_boxes_per_side` (from `segan.models.crops`: the networks
  grow boxes too); `coco_box_in_frame`, `visible_boxes_in_frame` (COCO boxes of the original
  frame -> the S x S frame), `mask_boxes_in_frame` (masks -> their boxes there),
  `boxes_to_image_frame` (the S x S frame -> the original one);
- the model's test-time inputs: `normalize_images`, `model_inputs`, `model_inputs_t`;
- back to the image: `paste_planes`, `paste_to_image`.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from segan.models.crops import (
    amodal_base_boxes,
    crop_boxes,
    crop_object_masks,
    expand_boxes,
    expand_boxes_per_side,
    mask_extent_boxes,
)

if TYPE_CHECKING:
    from segan.config import TrainConfig

__all__ = [
    "amodal_base_boxes",
    "boxes_to_image_frame",
    "coco_box_in_frame",
    "crop_boxes",
    "crop_object_masks",
    "expand_boxes",
    "expand_boxes_per_side",
    "mask_boxes_in_frame",
    "mask_extent_boxes",
    "model_inputs",
    "model_inputs_t",
    "normalize_images",
    "one_cpu_thread",
    "paste_planes",
    "paste_to_image",
    "resize_image_u8",
    "resize_planes",
    "resize_planes_u8",
    "resize_planes_u8_t",
    "resize_taps",
    "resize_weights",
    "resize_window",
    "window_weights",
    "WindowTaps",
    "visible_boxes_in_frame",
]


@contextlib.contextmanager
def one_cpu_thread(enabled: bool = True):
    """Torch CPU ops of this thread with one intra-op thread (restored after). For many small
    ops (the by-box pastes, the predictor's pre- and post-processing): on a machine whose cores
    are busy, each op's wait for the second thread costs far more than the thread gives
    (docs/benchmarks.md, predictor latency)."""
    n = torch.get_num_threads()
    if not enabled or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# ----------------------------------------------------------------------------- resizing


def resize_planes(planes: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) float32 -> (C, size, size) float32, bilinear with antialiasing (as PIL does);
    a no-op when the size is already right."""
    if planes.shape[1:] == (size, size):
        return planes
    x = torch.from_numpy(np.ascontiguousarray(planes))[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].numpy()


@functools.lru_cache(maxsize=64)
def resize_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel of `resize_planes` along one axis, n_in -> n_out pixels: per output pixel o
    its first source pixel first[o] (n_out,) int64 and the (n_out, K) float32 weights of
    source pixels first[o] .. first[o] + K - 1 (zero past the row's last; each row sums to 1).
    Bilinear with antialiasing: a triangle filter as wide as the scale when shrinking, plain
    bilinear when enlarging, cut at the borders and renormalised: torch's `interpolate(...,
    antialias=True)` (and PIL's), so these taps give `resize_planes` on any window of the
    output (`resize_window`)."""
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(n_out) + 0.5)
    # C++ casts (truncation toward zero), as torch computes each row's first and last source
    first = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centers + support + 0.5).astype(np.int64), n_in)
    src = first[:, None] + np.arange(int((last - first).max()))[None]
    w = np.clip(1.0 - np.abs((src - centers[:, None] + 0.5) * inv), 0.0, None)
    w[src >= last[:, None]] = 0.0
    return first, (w / w.sum(1, keepdims=True)).astype(np.float32)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """`resize_taps` as a dense (n_out, n_in) float32 matrix: row o weighs the source pixels
    output pixel o averages (a resize along that axis is this matrix times the planes)."""
    first, w = resize_taps(n_in, n_out)
    dense = np.zeros((n_out, n_in), np.float32)
    cols = np.minimum(first[:, None] + np.arange(w.shape[1])[None], n_in - 1)
    np.add.at(dense, (np.arange(n_out)[:, None], cols), w)
    return dense


class WindowTaps(NamedTuple):
    """Output pixels [start, start + length) of a resize along one axis (`window_weights`)."""

    index: torch.Tensor   # (length, K) int64: source pixels, relative to span.start
    weight: torch.Tensor  # (length, K) float32
    span: slice           # the source pixels they read


def window_weights(n_in: int, size: int, start: int, length: int) -> WindowTaps:
    """Output pixels [start, start + length) of a resize n_in -> size along one axis: the
    source pixels each reads and their weights (`resize_taps`), and the span of the source
    that the window reads."""
    first, w = resize_taps(n_in, size)
    first, w = first[start:start + length], w[start:start + length]
    reach = first + (w > 0).sum(1)  # past each row's last source pixel
    span = slice(int(first.min()), int(reach.max())) if length else slice(0, 0)
    index = np.minimum(first[:, None] + np.arange(w.shape[1])[None], span.stop - 1) - span.start
    return WindowTaps(torch.from_numpy(index), torch.from_numpy(np.ascontiguousarray(w)), span)


def resize_window(source: np.ndarray, ty: WindowTaps, tx: WindowTaps) -> np.ndarray:
    """A window of `resize_planes` from the source pixels it reads: (C, ky, kx) source (the
    spans of `window_weights`) -> (C, h, w) float32, rows then columns. Equal to the same
    window of the whole frame's resize up to float rounding (under 0.01 of a grey level on
    0..255 planes, so after rounding a value that close to a half may land one level off), at
    the cost of the window's taps instead of the whole frame. Torch ops, so a process's
    `torch.set_num_threads` bounds them (a cache-building worker runs one thread)."""
    rows = _taps_along_dim1(torch.from_numpy(np.ascontiguousarray(source, np.float32)), ty)
    cols = _taps_along_dim1(rows.transpose(1, 2).contiguous(), tx)  # (C, w, h)
    return cols.transpose(1, 2).numpy()


def _taps_along_dim1(x: torch.Tensor, taps: WindowTaps) -> torch.Tensor:
    """(C, k, m) -> (C, n, m): each output row the weighted sum of its K source rows, one tap
    at a time (whole-row copies and a fused multiply-add: far faster than one gather)."""
    out = x.index_select(1, taps.index[:, 0]) * taps.weight[:, 0, None]
    for t in range(1, taps.index.shape[1]):
        out.addcmul_(x.index_select(1, taps.index[:, t]), taps.weight[:, t, None])
    return out


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """(H, W) bool grown by `pixels` (8-neighbourhood, one ring per step)."""
    for _ in range(pixels):
        p = np.pad(mask, 1)
        h, w = mask.shape
        mask = np.zeros_like(mask)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                mask |= p[dy:dy + h, dx:dx + w]
    return mask


def resize_hole(hole: np.ndarray, size: int, grow: int = 0) -> np.ndarray:
    """(H, W) bool -> (S, S) bool: every S-pixel that the hole touches (the bilinear,
    antialiased resize of the mask above 1%), grown by `grow` pixels (`dilate`). The background
    completer's hole in its frame, in training and at inference alike."""
    if hole.shape == (size, size):
        out = hole.copy()
    else:
        out = resize_planes(hole[None].astype(np.float32), size)[0] > 0.01
    return dilate(out, grow)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def resize_image_u8(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (S, S, 3) uint8: bilinear, antialiased, rounded (the images of
    training, evaluation and the predictor all go through here)."""
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(
        _to_u8(resize_planes(image.transpose(2, 0, 1).astype(np.float32), size)).transpose(1, 2, 0))


def resize_planes_u8(planes: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) uint8 planes (masks as 0/255, colours) -> (N, C, S, S) uint8, resized like
    the image (so a binary mask becomes the soft mask the paper's bilinear resizing gives)."""
    n, c, H, W = planes.shape
    if (H, W) == (size, size) or n == 0:
        return planes if n else np.zeros((0, c, size, size), np.uint8)
    return _to_u8(resize_planes(planes.reshape(-1, H, W).astype(np.float32), size)
                  ).reshape(n, c, size, size)


def resize_planes_u8_t(planes: torch.Tensor, size: int) -> torch.Tensor:
    """`resize_planes_u8` on a tensor, on its device: (N, C, H, W) uint8 (or bool: 0/255) ->
    (N, C, S, S) uint8. On the CPU the same operations give the same bytes; on a GPU the
    antialiased interpolation's float sums may round differently, which moves a value that
    lands within about 1e-4 of a half-integer by one grey level."""
    n, c, H, W = planes.shape
    x = planes.to(torch.uint8) * 255 if planes.dtype == torch.bool else planes
    if (H, W) == (size, size) or n == 0:
        return x if n else x.new_zeros(0, c, size, size)

    y = F.interpolate(x.reshape(1, n * c, H, W).float(), size=(size, size), mode="bilinear",
                      align_corners=False, antialias=True)
    return y.round_().clamp_(0, 255).to(torch.uint8).reshape(n, c, size, size)


# ----------------------------------------------------------------------------- boxes


def coco_box_in_frame(box: Sequence[float], orig_hw: tuple[int, int], size: int
                      ) -> tuple[float, float, float, float]:
    """A COCO box [x, y, w, h] of the original (H, W) frame -> (x1, y1, x2, y2) in the S x S
    frame (S = size), in Python floats (the decoded cache's boxes, `visible_boxes_in_frame`)."""
    H, W = orig_hw
    sx, sy = size / W, size / H
    x, y, w, h = box
    return (x * sx, y * sy, (x + w) * sx, (y + h) * sy)


def visible_boxes_in_frame(visible_boxes: Sequence, orig_hw: tuple[int, int], size: int,
                           device: torch.device) -> torch.Tensor:
    """N COCO boxes [x, y, w, h] of S_V in the original (H, W) frame -> (N, 4) float32
    (x1, y1, x2, y2) in the S x S frame (S = size)."""
    vboxes = [coco_box_in_frame(b, orig_hw, size) for b in visible_boxes]
    return torch.tensor(vboxes, dtype=torch.float32, device=device).reshape(-1, 4)


def mask_boxes_in_frame(masks: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) bool non-empty masks -> (N, 4) float32 (x1, y1, x2, y2) of their boxes in the
    S x S frame (S = size), on the masks' device: the same numbers as
    `visible_boxes_in_frame` of their `mask_bbox` (products in float64,
    then rounded to float32)."""
    n, H, W = masks.shape
    rows = masks.any(2).to(torch.uint8)  # (N, H)
    cols = masks.any(1).to(torch.uint8)  # (N, W)
    y0, y1 = rows.argmax(1), H - rows.flip(1).argmax(1)  # first row, last row + 1
    x0, x1 = cols.argmax(1), W - cols.flip(1).argmax(1)
    scale = torch.tensor([size / W, size / H, size / W, size / H], dtype=torch.float64,
                         device=masks.device)
    return (torch.stack([x0, y0, x1, y1], 1).double() * scale).float()


def boxes_to_image_frame(boxes: torch.Tensor, frame_size: int, height: int, width: int
                         ) -> torch.Tensor:
    """(N, 5) boxes (batch index, x1, y1, x2, y2) of the S x S frame (S = frame_size) -> the
    same boxes in the original H x W frame: x scaled by W / S, y by H / S (float)."""
    sx, sy = width / frame_size, height / frame_size
    x1, y1, x2, y2 = boxes[:, 1] * sx, boxes[:, 2] * sy, boxes[:, 3] * sx, boxes[:, 4] * sy
    return torch.stack([boxes[:, 0].to(x1.dtype), x1, y1, x2, y2], dim=1)


# ----------------------------------------------------------------------------- the model's inputs


def normalize_images(images_u8: torch.Tensor, mean: Sequence[float], std: Sequence[float]
                     ) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float32 (x / 255 - mean) / std, on the images'
    device (training's batches and the test-time inputs alike; the caller makes it contiguous
    in the memory format it wants)."""
    device = images_u8.device
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (images_u8.permute(0, 3, 1, 2).float() / 255 - mean_t) / std_t


def model_inputs(image_u8: np.ndarray, visible_u8: np.ndarray, visible_boxes: Sequence,
                 orig_hw: tuple[int, int], cfg: TrainConfig, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's test-time inputs for one image's N objects (evaluation and the predictor).

    image_u8: (S, S, 3) uint8, the image resized (`resize_image_u8`);
    visible_u8: (N, 1, S, S) uint8, S_V resized the same way (`resize_planes_u8`), 0..255;
    visible_boxes: N COCO boxes [x, y, w, h] of S_V in the ORIGINAL (H, W) = orig_hw frame.
    Returns images (1, 3, S, S) normalised, visible_masks (N, 1, S, S) float in [0, 1] and
    boxes (N, 5) (0, x1, y1, x2, y2): S_V's box in the S x S frame grown by ``expand_test``
    per side and clipped (`ImageInputs` documents each).
    """
    vbox = visible_boxes_in_frame(visible_boxes, orig_hw, cfg.data.image_size, device)
    return model_inputs_t(torch.from_numpy(image_u8).to(device),
                          torch.from_numpy(visible_u8).to(device), vbox, cfg)


def model_inputs_t(image_u8: torch.Tensor, visible_u8: torch.Tensor, visible_box: torch.Tensor,
                   cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`model_inputs` on tensors already on the model's device (the predictor's path: no host
    work). image_u8: (S, S, 3) uint8; visible_u8: (N, 1, S, S) uint8 (or bool: 0/1 is 0/255);
    visible_box: (N, 4) float32 (x1, y1, x2, y2) of S_V in the S x S frame."""
    d = cfg.data
    S = d.image_size
    ratios = torch.full_like(visible_box, d.expand_test)
    xyxy = expand_boxes_per_side(visible_box, ratios, S)
    boxes = torch.cat([torch.zeros_like(xyxy[:, :1]), xyxy], dim=1)

    images = normalize_images(image_u8[None], d.image_mean, d.image_std).contiguous()
    # a 0/1 mask is exactly 0/255 / 255
    visible_masks = (visible_u8.float() if visible_u8.dtype == torch.bool
                     else visible_u8.float() / 255)
    return images, visible_masks.contiguous(), boxes


# ----------------------------------------------------------------------------- pasting back


def paste_to_image(box_probs: torch.Tensor, boxes: torch.Tensor, frame_size: int,
                   height: int, width: int, by_box: bool | None = None) -> torch.Tensor:
    """Box-frame probability maps -> the original image frame.

    box_probs: (N, 1, m, m) in [0, 1], each covering its box; boxes: (N, 5) (_, x1, y1, x2, y2)
    in continuous pixel coordinates of the S x S frame (S = frame_size). The box in the H x W
    frame is the same box scaled by (W / S, H / S). Each original pixel centre inside its box
    samples the map bilinearly (align_corners=False: the map's pixel i covers [i, i+1) / m of
    the box, as in the aligned roi_align crop); pixels outside the box get 0.
    Returns (N, H, W) float. by_box: see `paste_planes`.
    """
    return paste_planes(box_probs, boxes, frame_size, height, width, by_box=by_box)[:, 0]


def _paste_grid(x1: torch.Tensor, y1: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor,
                xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grid_sample grid (N, h, w, 2) and inside mask (N, h, w) for pixel centres xs (N, w),
    ys (N, h) of boxes (N,) x1, y1, x2, y2 in the original frame. Element-wise in each pixel,
    so a window of pixels gets exactly the values the whole frame gets there."""
    u = (xs - x1[:, None]) / (x2 - x1).clamp_min(1e-6)[:, None]  # (N, w) in [0, 1] inside
    v = (ys - y1[:, None]) / (y2 - y1).clamp_min(1e-6)[:, None]  # (N, h)
    grid = torch.stack(torch.broadcast_tensors(u[:, None, :] * 2 - 1, v[:, :, None] * 2 - 1),
                       dim=-1)  # (N, h, w, 2) as (x, y)
    inside = ((u >= 0) & (u <= 1))[:, None, :] & ((v >= 0) & (v <= 1))[:, :, None]
    return grid, inside


def paste_planes(box_maps: torch.Tensor, boxes: torch.Tensor, frame_size: int, height: int,
                 width: int, by_box: bool | None = None, to_u8: bool = False,
                 out: torch.Tensor | None = None, out_is_zero: bool = False) -> torch.Tensor:
    """`paste_to_image` for C-channel maps (N, C, m, m) -> (N, C, H, W), one grid_sample for
    all channels (the same value per channel as C one-channel pastes).

    by_box: sample only each box's window of pixels, one grid_sample per object, instead of the
    whole frame for every object in one batched call (the same values: the sampling is
    per pixel). None: by box on the CPU, where the whole frame is N times the work; on a GPU the
    single batched call is cheaper than N launches and needs no box coordinates on the host.
    to_u8: return round(255 * clamp(x, 0, 1)) as uint8 (the painted RGB). out: write into this
    (N, C, H, W) tensor (may be a strided view, e.g. of an RGBA buffer) instead of a new one;
    pixels outside the boxes are set to 0 (out_is_zero: `out` holds zeros already, e.g. a new
    torch.zeros, so only the boxes are written)."""
    n, c = box_maps.shape[:2]
    dev = box_maps.device
    if n == 0:
        return (torch.zeros(0, c, height, width, dtype=torch.uint8 if to_u8 else torch.float32,
                            device=dev) if out is None else out)
    maps = box_maps.float()
    _, x1, y1, x2, y2 = boxes_to_image_frame(boxes, frame_size, height, width).unbind(1)

    def finish(x: torch.Tensor) -> torch.Tensor:
        return (x.clamp(0, 1) * 255).round().to(torch.uint8) if to_u8 else x

    if by_box is None:
        by_box = dev.type == "cpu"
    if not by_box:
        xs = torch.arange(width, device=dev, dtype=torch.float32) + 0.5
        ys = torch.arange(height, device=dev, dtype=torch.float32) + 0.5
        grid, inside = _paste_grid(x1, y1, x2, y2, xs.expand(n, -1), ys.expand(n, -1))
        s = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
        pasted = finish(s * inside[:, None])
        return pasted if out is None else out.copy_(pasted)
    # Windows: pixel j is inside when j + 0.5 lies in [x1, x2]; one pixel of slack each side
    # (the exact test is `inside`, computed as on the whole frame).
    if out is None:
        out = torch.zeros(n, c, height, width, dtype=torch.uint8 if to_u8 else torch.float32,
                          device=dev)
    elif not out_is_zero:
        out.zero_()
    box = torch.stack([x1, y1, x2, y2], 1).tolist()
    with one_cpu_thread(dev.type == "cpu"):
        _paste_windows(maps, box, x1, y1, x2, y2, height, width, out, finish)
    return out


def _paste_windows(maps: torch.Tensor, box: list, x1: torch.Tensor, y1: torch.Tensor,
                   x2: torch.Tensor, y2: torch.Tensor, height: int, width: int,
                   out: torch.Tensor, finish) -> None:
    """`paste_planes`' box windows, one object at a time."""
    dev = maps.device
    for k, (bx1, by1, bx2, by2) in enumerate(box):
        if not all(map(math.isfinite, (bx1, by1, bx2, by2))):
            continue  # no pixel is inside a box with a NaN/inf side: all 0
        j0, j1 = max(0, math.floor(bx1) - 1), min(width, math.ceil(bx2) + 1)
        i0, i1 = max(0, math.floor(by1) - 1), min(height, math.ceil(by2) + 1)
        if j1 <= j0 or i1 <= i0:
            continue
        xs = torch.arange(j0, j1, device=dev, dtype=torch.float32)[None] + 0.5
        ys = torch.arange(i0, i1, device=dev, dtype=torch.float32)[None] + 0.5
        grid, inside = _paste_grid(x1[k:k + 1], y1[k:k + 1], x2[k:k + 1], y2[k:k + 1], xs, ys)
        s = F.grid_sample(maps[k:k + 1], grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
        out[k, :, i0:i1, j0:j1] = finish(s * inside[:, None])[0]
