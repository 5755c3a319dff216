"""The networks' box geometry: boxes grown per side (section 5.1) and boxes of images and
masks resampled to a fixed size (torchvision roi_align), shared by the segmentor (S_V on its ROI
and mask grids), SeGAN (the painter's crops), IBBE (its context box), the data pipeline and the
baselines. Box conventions: `segan.models.segan`'s module docstring. Callers outside
`segan.models` reach these through `segan.transforms`."""

import torch
from torchvision.ops import roi_align


def expand_boxes(
    boxes: torch.Tensor, ratio: float | torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Grow each (batch_index, x1, y1, x2, y2) box by `ratio` of its width/height on each side and
    clip it to the image (section 5.1: "we ignore the portions that lie outside the image").

    `ratio` is a float or a (K,) tensor (e.g. uniform in [0.1, 0.3] in training, 0.2 at test).
    """
    ratio = torch.as_tensor(ratio, dtype=boxes.dtype, device=boxes.device)
    x1, y1, x2, y2 = boxes[:, 1:].unbind(1)
    dx, dy = ratio * (x2 - x1), ratio * (y2 - y1)
    return torch.stack([
        boxes[:, 0],
        (x1 - dx).clamp(0, width), (y1 - dy).clamp(0, height),
        (x2 + dx).clamp(0, width), (y2 + dy).clamp(0, height),
    ], dim=1)


def expand_boxes_per_side(boxes: torch.Tensor, ratios: float | torch.Tensor, size: int
                          ) -> torch.Tensor:
    """(K, 4) x1, y1, x2, y2 grown by ratios (K, 4) of the box's width/height on the left, top,
    right and bottom (a float: the same on every side), clipped to the S x S image (section
    5.1: "we ignore the portions that lie outside the image"). Equal ratios give
    `expand_boxes`. Training's random growth, the test-time inputs' ``expand_test`` and IBBE's
    context box."""
    x1, y1, x2, y2 = boxes.unbind(1)
    w, h = x2 - x1, y2 - y1
    r = torch.as_tensor(ratios, dtype=boxes.dtype, device=boxes.device).expand(len(boxes), 4)
    return torch.stack([(x1 - r[:, 0] * w).clamp(0, size), (y1 - r[:, 1] * h).clamp(0, size),
                        (x2 + r[:, 2] * w).clamp(0, size), (y2 + r[:, 3] * h).clamp(0, size)],
                       dim=1)



def box_union(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(K, 4) x1, y1, x2, y2: the smallest boxes holding both a and b (K, 4). Of S_V's and
    S_F's boxes: the amodal box (S_F's alone when S_V lies inside it, as ground truth has it)."""
    return torch.cat([torch.minimum(a[:, :2], b[:, :2]), torch.maximum(a[:, 2:], b[:, 2:])],
                     dim=1)


def amodal_base_boxes(visible_box: torch.Tensor, full_box: torch.Tensor, pull: torch.Tensor
                      ) -> torch.Tensor:
    """(K, 4) x1, y1, x2, y2: S_V's box with each side moved toward the amodal box (the union of
    S_V's and S_F's boxes) by pull (K, 4) in [0, 1] of the gap (left, top, right, bottom; 0 =
    S_V's box, 1 = the amodal box). Training's crops for the second test pass
    (``data.amodal_box_share``); grown by `expand_boxes_per_side` after."""
    amodal = box_union(visible_box, full_box)
    return visible_box + pull.to(visible_box.dtype) * (amodal - visible_box)


def mask_extent_boxes(probs: torch.Tensor, boxes: torch.Tensor, threshold: float = 0.5,
                      min_edge_cells: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each box-frame mask lies in the frame: probs (K, 1, m, m) over boxes (K, 5)
    (_, x1, y1, x2, y2) -> ((K, 4) x1, y1, x2, y2 of the grid cells >= threshold, (K, 4) bool:
    whether at least min_edge_cells of those cells lie on the box's left, top, right, bottom
    edge). An empty mask gives its box and no edge reached. The second test pass's box
    (`segan.inference.run_segan`)."""
    K, m = probs.shape[0], probs.shape[-1]
    on = probs[:, 0] >= threshold  # (K, m, m)
    cols, rows = on.any(1), on.any(2)  # (K, m): which columns / rows hold a cell
    idx = torch.arange(m, device=probs.device)
    big = torch.full_like(idx, m)
    lo_x = torch.where(cols, idx, big).amin(1)
    hi_x = torch.where(cols, idx, -1).amax(1) + 1
    lo_y = torch.where(rows, idx, big).amin(1)
    hi_y = torch.where(rows, idx, -1).amax(1) + 1
    empty = ~cols.any(1)
    cells = torch.stack([lo_x, lo_y, hi_x, hi_y], dim=1).to(boxes.dtype)
    cells = torch.where(empty[:, None], boxes.new_tensor([0.0, 0.0, m, m]).expand(K, 4), cells)
    x1, y1, x2, y2 = boxes[:, 1:].unbind(1)
    w, h = (x2 - x1) / m, (y2 - y1) / m
    extent = torch.stack([x1 + cells[:, 0] * w, y1 + cells[:, 1] * h,
                          x1 + cells[:, 2] * w, y1 + cells[:, 3] * h], dim=1)
    on_edge = torch.stack([on[:, :, 0].sum(1), on[:, 0, :].sum(1), on[:, :, -1].sum(1),
                           on[:, -1, :].sum(1)], dim=1)
    edges = on_edge >= max(1, min_edge_cells)
    return extent, edges


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample each box of `images` to size x size in one batched op: (B,C,H,W) -> (K,C,S,S).

    Bilinear (roi_align, aligned) with a box average when shrinking (adaptive sampling), so a
    mask crop is the soft mask the paper's bilinear resizing gives. Row k reads image
    boxes[k, 0]. Outside the image reads 0 (boxes are expected to be clipped to it).
    """
    out = roi_align(images.float(), boxes.float(), size, spatial_scale=1.0, sampling_ratio=-1,
                    aligned=True)
    return out.to(images.dtype)


def recrop(planes: torch.Tensor, from_boxes: torch.Tensor, to_boxes: torch.Tensor
           ) -> torch.Tensor:
    """Box-frame planes (K, C, s, s) over from_boxes -> the same planes over to_boxes (both
    (K, 4) x1, y1, x2, y2 of one frame; to inside from), resampled as `crop_boxes` does.
    The evaluation's painted crops of a second pass, over the boxes it scores."""
    s = planes.shape[-1]
    scale_x = s / (from_boxes[:, 2] - from_boxes[:, 0]).clamp_min(1e-6)
    scale_y = s / (from_boxes[:, 3] - from_boxes[:, 1]).clamp_min(1e-6)
    rel = torch.stack([(to_boxes[:, 0] - from_boxes[:, 0]) * scale_x,
                       (to_boxes[:, 1] - from_boxes[:, 1]) * scale_y,
                       (to_boxes[:, 2] - from_boxes[:, 0]) * scale_x,
                       (to_boxes[:, 3] - from_boxes[:, 1]) * scale_y], dim=1)
    return crop_own_boxes(planes, rel, s)


def crop_object_masks(masks: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Per-object masks (K,C,H,W) in image frame -> (K,C,S,S) over each object's own box.

    Mask k is cropped with box k (its batch index is ignored): used for the 58x58 ground truth
    of S_F and S_V, and for S_V at 256x256 for the painter.
    """
    return crop_own_boxes(masks, boxes[:, 1:], size)


def crop_own_boxes(masks: torch.Tensor, xyxy: torch.Tensor, size: int) -> torch.Tensor:
    """crop_object_masks with plain (K, 4) boxes x1, y1, x2, y2: mask k over box k."""
    index = torch.arange(xyxy.shape[0], device=xyxy.device, dtype=xyxy.dtype)
    return crop_boxes(masks, torch.cat([index[:, None], xyxy], dim=1), size)


def union_per_image(masks: torch.Tensor, batch_index: torch.Tensor, num_images: int
                    ) -> torch.Tensor:
    """U: per image, the pixelwise max of its objects' masks. masks (K, 1, H, W) in image frame,
    batch_index (K,) long (object k's image) -> (num_images, 1, H, W); an image without
    objects gets zeros."""
    K, _, H, W = masks.shape
    out = masks.new_zeros(num_images, H * W)
    if K:
        out.scatter_reduce_(0, batch_index[:, None].expand(K, H * W), masks.flatten(1), "amax")
    return out.view(num_images, 1, H, W)
