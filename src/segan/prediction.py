"""What the predictor returns (`ScenePrediction`, one `ObjectPrediction` per object) and the
checks of what it is given (an RGB image, N visible masks), each failure a ValueError that
names the input and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MASK_THRESHOLD = 0.5  # S_F = probability >= 0.5, as the evaluation (segan.eval.metrics.threshold)


@dataclass
class ObjectPrediction:
    """One object of a `ScenePrediction` (views into its arrays; see there for conventions)."""

    index: int
    visible_mask: np.ndarray
    full_mask: np.ndarray
    invisible_mask: np.ndarray
    full_prob: np.ndarray
    painted: np.ndarray
    box: np.ndarray
    layer: int
    score: float | None
    occluders: list[int]
    occludees: list[int]


@dataclass
class ScenePrediction:
    """The prediction for the N objects of one (H, W) image, in the order of the input masks.

    visible_masks: (N, H, W) bool, S_V (given, or found by the visible segmenter).
    full_masks: (N, H, W) bool, the full (amodal) mask S_F: the predicted probability >= 0.5,
        united with S_V (the visible pixels are part of the object by definition).
    invisible_masks: (N, H, W) bool, S_I = S_F \\ S_V: where the object is hidden.
    full_probs: (N, H, W) float32 in [0, 1], the network's S_F probability in the image frame
        (0 outside the object's box), before the union with S_V.
    painted: (N, H, W, 4) uint8 RGBA in the image frame: RGB the painter's G(M) (the whole
        object's appearance, visible and hidden parts), alpha 255 on S_F and 0 elsewhere.
    boxes: (N, 4) float32 (x1, y1, x2, y2), the box each object was seen through (S_V's box
        grown by ``expand_test`` per side and clipped), continuous pixel coordinates of the
        image: pixel (i, j) covers [j, j + 1) x [i, i + 1).
    scores: (N,) float32 of the visible segmenter, or None when the masks were given.
    occlusion_pairs: sorted (q, p) index pairs, "q occludes p": IoU(S_V of q, S_I of p) > 5%
        (section 5.2's rule, `segan.layering.occlusion_pairs_from_counts`).
    layers: (N,) int64 depth layers from the pairs (`segan.layering.depth_layers`): 0 for an
        object no one occludes (front), else 1 + the deepest of its occluders. The rule's pairs
        can form cycles (q hides part of p and p part of q); a cycle is broken deterministically:
        when only cycles remain, the unplaced object with the fewest unplaced occluders (ties:
        lowest index) is placed next and its pairs from still-unplaced objects are dropped.
    """

    visible_masks: np.ndarray
    full_masks: np.ndarray
    invisible_masks: np.ndarray
    full_probs: np.ndarray
    painted: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None
    occlusion_pairs: list[tuple[int, int]]
    layers: np.ndarray

    def __len__(self) -> int:
        return int(self.visible_masks.shape[0])

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.visible_masks.shape[1]), int(self.visible_masks.shape[2])

    @property
    def objects(self) -> list[ObjectPrediction]:
        return [self.object(k) for k in range(len(self))]

    def object(self, k: int) -> ObjectPrediction:
        return ObjectPrediction(
            index=k, visible_mask=self.visible_masks[k], full_mask=self.full_masks[k],
            invisible_mask=self.invisible_masks[k], full_prob=self.full_probs[k],
            painted=self.painted[k], box=self.boxes[k], layer=int(self.layers[k]),
            score=None if self.scores is None else float(self.scores[k]),
            occluders=[q for q, p in self.occlusion_pairs if p == k],
            occludees=[p for q, p in self.occlusion_pairs if q == k])


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, or a ValueError saying what is wrong."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array, got {image.dtype} "
                         f"{image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: {image.shape}")
    return image


def check_visible_masks(masks: Any, height: int, width: int) -> np.ndarray:
    """N visible masks, each (H, W) bool and non-empty -> (N, H, W) bool, or a ValueError
    naming the mask."""
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        masks = masks[None]
    stack = [np.asarray(m) for m in masks]
    for k, m in enumerate(stack):
        if m.shape != (height, width):
            raise ValueError(f"visible mask {k} is {m.shape}, the image is ({height}, {width})")
        if m.dtype != np.bool_:
            raise ValueError(f"visible mask {k} must be bool, got {m.dtype} (use mask > 0)")
        if not m.any():
            raise ValueError(f"visible mask {k} is empty (no pixel set)")
    if not stack:
        return np.zeros((0, height, width), bool)
    return np.stack(stack)


def empty_prediction(H: int, W: int, scores: np.ndarray | None) -> ScenePrediction:
    """The prediction for an image without objects."""
    z = np.zeros((0, H, W), bool)
    return ScenePrediction(
        visible_masks=z, full_masks=z, invisible_masks=z,
        full_probs=np.zeros((0, H, W), np.float32), painted=np.zeros((0, H, W, 4), np.uint8),
        boxes=np.zeros((0, 4), np.float32),
        scores=None if scores is None else np.zeros(0, np.float32),
        occlusion_pairs=[], layers=np.zeros(0, np.int64))
