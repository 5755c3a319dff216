"""Boxes of images and masks resampled to a fixed size (torchvision roi_align), shared by the
segmentor (S_V on its ROI and mask grids), SeGAN (the painter's crops), the data pipeline and
the baselines. Box conventions: `segan.models.segan`'s module docstring."""

import torch
from torchvision.ops import roi_align


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample each box of `images` to size x size in one batched op: (B,C,H,W) -> (K,C,S,S).

    Bilinear (roi_align, aligned) with a box average when shrinking (adaptive sampling), so a
    mask crop is the soft mask the paper's bilinear resizing gives. Row k reads image
    boxes[k, 0]. Outside the image reads 0 (boxes are expected to be clipped to it).
    """
    out = roi_align(images.float(), boxes.float(), size, spatial_scale=1.0, sampling_ratio=-1,
                    aligned=True)
    return out.to(images.dtype)


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
