"""Methods the evaluation runs beside SeGAN, and the contract every evaluated method meets.

A method gets one image's objects as `ImageInputs` (the model's inputs exactly as at test time,
plus the ground truth at the original resolution) and returns a `MethodOutput`: its full-mask
probabilities in the ORIGINAL image frame, and, if it paints, the painted crops in the box
frame. `segan.eval.scoring` scores every method's output with the same code, so the tables
compare like with like.

Baselines:
- ``visible_as_full``: predicted S_F := the given S_V (nothing is hallucinated). Its full IoU is
  |S_V| / |S_F| per object and its invisible IoU (svsi) is exactly 0: the floor a method must
  beat. It does not paint (painting numbers are not applicable).
- ``oracle``: predicted S_F := the ground-truth S_F and painted := the ground-truth appearance
  target, scored by the same path and rules as every method: each metric's ceiling (full and
  invisible IoU 100, painting errors 0, depth layering 100 under the 5%-rule ground truth; the
  layering against the dataset's any-overlap pairs is below 100 where a pair overlaps by less
  than the 5% rule needs). A score below its ceiling is a bug in the scoring path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segan.models import crop_object_masks


@dataclass
class ImageInputs:
    """One image's N objects, as every method sees them at test time.

    image_id: the dataset's image id; ann_ids: (N,) annotation ids, in annotation order.
    orig_hw: (H, W), the original image size.
    full, visible: (N, H, W) bool numpy, ground-truth S_F and S_V at the original resolution.
    images: (1, 3, S, S) float, the image resized to the config's image_size and normalised
        (x - mean) / std, as in training.
    visible_masks: (N, 1, S, S) float in [0, 1], S_V resized (soft) in the S x S frame.
    boxes: (N, 5) float (0, x1, y1, x2, y2): S_V's box expanded by ``expand_test`` and clipped,
        in continuous pixel coordinates of the S x S frame (``segan.models`` conventions).
    target: (N, 3, c, c) float in [0, 1], the full object's appearance over each box at the
        painter's crop size c (black outside S_F); full_crop: (N, 1, c, c) S_F over the box.
    has_appearance: (N,) bool numpy, whether the object has an appearance file.
    given_visible: (N, H, W) bool numpy, the S_V the methods are given at the original
        resolution: the ground truth with ``--visible gt``, the matched predicted mask with
        ``--visible predicted`` (None = `visible`). `visible_masks` and `boxes` are made from
        it. A method takes S_V from these, never from `visible` (scoring only).
    image: (H, W, 3) uint8, the original image (for methods that see the whole image).
    visible_box: (N, 4) float x1, y1, x2, y2 of S_V in the S x S frame, before expansion.
    categories: (N,) the objects' category names (the report's Table 1 by category), or None.
    context_visible: (M, H, W) bool numpy, visible masks of M more things in the image that are
        not scored (``--visible predicted``: the segmenter's unmatched predictions), or None;
        context_masks (M, 1, S, S) and context_boxes (M, 5) made from them like `visible_masks`
        and `boxes`. A method that looks at the other objects' S_V (SeGAN's occluder context
        and gate) sees them too, as `segan predict` does with every mask the segmenter finds.
    """

    image_id: int
    ann_ids: list[int]
    orig_hw: tuple[int, int]
    full: np.ndarray
    visible: np.ndarray
    images: torch.Tensor
    visible_masks: torch.Tensor
    boxes: torch.Tensor
    target: torch.Tensor
    full_crop: torch.Tensor
    has_appearance: np.ndarray
    given_visible: np.ndarray | None = None
    image: np.ndarray | None = None
    visible_box: torch.Tensor | None = None
    categories: list[str] | None = None
    context_visible: np.ndarray | None = None
    context_masks: torch.Tensor | None = None
    context_boxes: torch.Tensor | None = None

    @property
    def num_objects(self) -> int:
        return len(self.ann_ids)

    def original_image(self) -> np.ndarray:
        """`image`, for a method that sees the whole image; an error if it was not loaded."""
        if self.image is None:
            raise ValueError(f"image {self.image_id}: this method needs the original image "
                             "(ImageInputs.image)")
        return self.image

    @property
    def input_visible(self) -> np.ndarray:
        """The S_V given to the methods, (N, H, W) bool (`given_visible`, else `visible`)."""
        return self.visible if self.given_visible is None else self.given_visible

    def subset(self, keep: np.ndarray) -> ImageInputs:
        """The same image with only the objects `keep` ((N,) bool or indices)."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == np.bool_ else np.asarray(keep)
        t = torch.as_tensor(idx, dtype=torch.long, device=self.boxes.device)
        return ImageInputs(
            image_id=self.image_id, ann_ids=[self.ann_ids[i] for i in idx],
            orig_hw=self.orig_hw, full=self.full[idx], visible=self.visible[idx],
            images=self.images, visible_masks=self.visible_masks[t], boxes=self.boxes[t],
            target=self.target[t], full_crop=self.full_crop[t],
            has_appearance=self.has_appearance[idx],
            given_visible=None if self.given_visible is None else self.given_visible[idx],
            image=self.image,
            visible_box=None if self.visible_box is None else self.visible_box[t],
            categories=None if self.categories is None else [self.categories[i] for i in idx],
            context_visible=self.context_visible, context_masks=self.context_masks,
            context_boxes=self.context_boxes)  # the image's other things stay


@dataclass
class MethodOutput:
    """What a method predicts for one image's N objects.

    full_probs: (N, H, W) float in [0, 1], the predicted S_F in the original image frame
        (thresholded at 0.5 for scoring), or None for a method that predicts no mask: a
        painting-only method (no Table 1 or 5 numbers), or one that orders objects itself
        (`occlusion_pairs`, Table 5 only).
    box_full: (N, 1, c, c) float in [0, 1], the predicted S_F over each box at the painter's
        crop size (for the figure), or None.
    painted: (N, 3, c, c) float RGB in [0, 1] over each box, or None for a method that does
        not paint.
    occlusion_pairs: predicted (q, p) = "object q occludes object p" as indices of the N
        objects, for a method that orders objects itself (Table 5); None: derived from
        `full_probs` by the paper's 5% rule.
    """

    full_probs: torch.Tensor | None
    box_full: torch.Tensor | None
    painted: torch.Tensor | None = None
    occlusion_pairs: set[tuple[int, int]] | None = None


class VisibleAsFull:
    """Baseline: the predicted full mask is the given visible mask, S_F := S_V.

    The prediction in the original frame is the given S_V itself (no resampling), so with the
    ground-truth S_V its scores are exact known answers: full IoU = |S_V| / |S_F|, invisible
    IoU (svsi) = 0.
    """

    name = "visible_as_full"
    paints = False

    def __init__(self, crop_size: int):
        self.crop_size = crop_size

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        device = inputs.visible_masks.device
        full_probs = torch.from_numpy(inputs.input_visible).to(device=device,
                                                               dtype=torch.float32)
        box_full = crop_object_masks(inputs.visible_masks, inputs.boxes, self.crop_size)
        return MethodOutput(full_probs=full_probs, box_full=box_full, painted=None)


class Oracle:
    """Ceiling: the ground-truth S_F as the prediction (in the original frame, no resampling)
    and the ground-truth appearance crop as the painting (module docstring)."""

    name = "oracle"
    paints = True

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        device = inputs.visible_masks.device
        full_probs = torch.from_numpy(inputs.full).to(device=device, dtype=torch.float32)
        return MethodOutput(full_probs=full_probs, box_full=inputs.full_crop.float(),
                            painted=inputs.target.float())
