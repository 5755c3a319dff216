"""Image-level pieces of the evaluation: predicted S_V, and the two image-level baselines.

- `PredictedVisible`: the visible-instance segmenter's masks of an image, matched to its
  ground-truth objects by `segan.eval.matching.match_masks` (IoU with the ground-truth S_V
  >= 0.5, one to one, greedy). A matched object gets the predicted mask as its S_V input; an
  unmatched object is a miss (scored 0, `segan.eval.scoring`); unmatched predictions are
  counted as false positives (`DetectionMeter`).
- `MaskRCNNFull` (method ``maskrcnn_full``, the paper's "Multipath natural + synthetic"): a
  Mask R-CNN trained with S_F as its mask target predicts full masks with no S_V given; each
  object gets the prediction that best matches the S_V it was given (IoU of the predicted full
  mask with that S_V, one to one, greedy, any overlap > 0); an object with no overlapping
  prediction gets an empty mask. It does not paint.
- `DepthNetMethod` (method ``depth_net``, Table 5's single-image depth baseline [10]): the
  depth network's map, upsampled to the image; each object's depth is the mean predicted depth
  inside its given S_V, and of every two objects the nearer one is predicted to occlude the
  other. It predicts no masks and does not paint: it is scored on depth layering only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from segan.models.visible_segmenter import VisibleSegmenter
from segan.transforms import boxes_to_image_frame, crop_object_masks

from .baselines import ImageInputs, MethodOutput
from .matching import MATCH_IOU, Matching, mask_iou_matrix, match_greedy, match_masks
from .methods import EvalMethod, MethodContext, register_method


class PredictedVisible:
    """S_V from the visible-instance segmenter (`VisibleSegmenter`, mask_target "visible").

    __call__(image, gt_visible) -> (given (N, H, W) bool: the matched prediction per object,
    empty for a miss; the `Matching`; the number of predictions above the score threshold).
    """

    def __init__(self, segmenter: VisibleSegmenter, score_threshold: float | None = None,
                 min_iou: float = MATCH_IOU):
        if segmenter.mask_target != "visible":
            raise ValueError(f"{segmenter.identity.get('path')}: this detector was trained on "
                             f"{segmenter.mask_target} masks; --visible-segmenter needs a run of "
                             "configs/visible_maskrcnn.yaml (mask_target: visible)")
        self.segmenter = segmenter
        self.score_threshold = (segmenter.score_threshold if score_threshold is None
                                else float(score_threshold))
        self.min_iou = min_iou

    def __call__(self, image: np.ndarray, gt_visible: np.ndarray
                 ) -> tuple[np.ndarray, Matching, int]:
        masks, _ = self.segmenter.segment(image, self.score_threshold)
        match = match_masks(masks, gt_visible, self.min_iou)
        given = np.zeros_like(gt_visible)
        ok = match.matched
        given[ok] = masks[match.pred_of_object[ok]]
        return given, match, len(masks)


class DetectionMeter:
    """Counts of the predicted-S_V matching over a split: objects, matched, missed, false
    positives, predictions, and the mean IoU of the matched pairs."""

    def __init__(self) -> None:
        self.objects = self.matched = self.false_positives = self.predictions = 0
        self.iou_sum = 0.0

    def add(self, match: Matching, predictions: int) -> None:
        self.objects += len(match.pred_of_object)
        self.matched += int(match.matched.sum())
        self.false_positives += len(match.false_positives)
        self.predictions += predictions
        self.iou_sum += float(match.iou[match.matched].sum())

    def compute(self) -> dict[str, float]:
        return {
            "count/objects": float(self.objects),
            "count/matched": float(self.matched),
            "count/missed": float(self.objects - self.matched),
            "count/false_positives": float(self.false_positives),
            "count/predictions": float(self.predictions),
            "recall": self.matched / self.objects if self.objects else math.nan,
            "precision": self.matched / self.predictions if self.predictions else math.nan,
            "matched_iou/mean": self.iou_sum / self.matched if self.matched else math.nan,
        }


class MaskRCNNFull:
    """Baseline ``maskrcnn_full``: full masks from a Mask R-CNN trained on S_F (module
    docstring). It sees the original image (`ImageInputs.image`)."""

    name = "maskrcnn_full"
    paints = False

    def __init__(self, segmenter: VisibleSegmenter, frame_size: int, crop_size: int,
                 score_threshold: float | None = None):
        if segmenter.mask_target != "full":
            raise ValueError(f"{segmenter.identity.get('path')}: maskrcnn_full needs a detector "
                             "trained on full masks (configs/maskrcnn_full.yaml), this one was "
                             f"trained on {segmenter.mask_target} masks")
        self.segmenter = segmenter
        self.frame_size, self.crop_size = frame_size, crop_size
        self.score_threshold = score_threshold

    def predict(self, image: np.ndarray, given_visible: np.ndarray) -> np.ndarray:
        """(N, H, W) bool full masks for the N objects whose S_V are given."""
        masks, _ = self.segmenter.segment(image, self.score_threshold)
        match = match_greedy(mask_iou_matrix(masks, given_visible), min_iou=0.0)
        full = np.zeros_like(given_visible)
        ok = match.matched
        full[ok] = masks[match.pred_of_object[ok]]
        return full

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        H, W = inputs.orig_hw
        full = self.predict(_image_of(inputs), inputs.input_visible)
        device = inputs.visible_masks.device
        full_probs = torch.from_numpy(full).to(device=device, dtype=torch.float32)
        boxes = boxes_to_image_frame(inputs.boxes, self.frame_size, H, W)
        box_full = crop_object_masks(full_probs[:, None], boxes, self.crop_size)
        return MethodOutput(full_probs=full_probs, box_full=box_full, painted=None)


def _image_of(inputs: ImageInputs) -> np.ndarray:
    if inputs.image is None:
        raise ValueError(f"image {inputs.image_id}: this method needs the original image "
                         "(ImageInputs.image)")
    return inputs.image


def depth_pairs(object_depth: np.ndarray) -> set[tuple[int, int]]:
    """Occlusion pairs from per-object depths: (q, p) for every two objects with
    depth[q] < depth[p] (the nearer occludes; equal or NaN depths give no pair)."""
    d = np.asarray(object_depth, np.float64)
    q, p = np.nonzero(d[:, None] < d[None, :])
    return {(int(a), int(b)) for a, b in zip(q, p, strict=True)}


def mean_depth_in_masks(depth: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) mean of depth (H, W) over each mask (N, H, W) bool; NaN for an empty mask."""
    n = masks.reshape(len(masks), -1)
    counts = n.sum(1)
    sums = n.astype(np.float64) @ depth.reshape(-1).astype(np.float64)
    out = np.full(len(masks), np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


class DepthNetMethod:
    """Baseline ``depth_net`` (module docstring): a `DepthNet` and the input transform of its
    training config (image_size S, image_mean, image_std)."""

    name = "depth_net"
    paints = False
    segments = False  # no masks (Table 1 n/a) ...
    layers = True  # ... but occlusion pairs (Table 5)

    def __init__(self, net: torch.nn.Module, image_size: int, image_mean: Sequence[float],
                 image_std: Sequence[float]):
        self.net, self.S = net.eval(), image_size
        self.mean, self.std = tuple(image_mean), tuple(image_std)

    @torch.no_grad()
    def depth_map(self, image: np.ndarray) -> np.ndarray:
        """The predicted depth (metres) of an (H, W, 3) uint8 image at its own resolution."""
        from segan.transforms import resize_planes

        dev = next(self.net.parameters()).device
        H, W = image.shape[:2]
        planes = image.transpose(2, 0, 1).astype(np.float32)
        if (H, W) != (self.S, self.S):  # as the training data (image_data.resized_image)
            planes = np.clip(np.rint(resize_planes(planes, self.S)), 0, 255)
        x = torch.from_numpy(np.ascontiguousarray(planes)).to(dev)[None] / 255
        x = (x - x.new_tensor(self.mean).view(1, 3, 1, 1)) / x.new_tensor(self.std).view(1, 3, 1, 1)
        log_depth = F.interpolate(self.net(x).float(), size=(H, W), mode="bilinear",
                                  align_corners=False)
        return torch.exp(log_depth)[0, 0].cpu().numpy()

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        depth = self.depth_map(_image_of(inputs))
        pairs = depth_pairs(mean_depth_in_masks(depth, inputs.input_visible))
        return MethodOutput(full_probs=None, box_full=None, painted=None, occlusion_pairs=pairs)


# ----------------------------------------------------------------------------- registry


@register_method("maskrcnn_full", task="maskrcnn_full")
def build_maskrcnn_full(ctx: MethodContext) -> EvalMethod:
    """Full masks straight from a Mask R-CNN trained on S_F; inputs (figure boxes) as the
    reference config makes them."""
    net, cfg, identity = ctx.load()
    seg = VisibleSegmenter(net, {**identity, "config": cfg.to_dict()})
    ref = ctx.reference_cfg
    method = MaskRCNNFull(seg, ref.data.image_size, ref.model.crop_size)
    return EvalMethod("maskrcnn_full", method, ref, paints=False, checkpoint=identity,
                      hparams=net.hparams, notes=[
                          "full masks from a Mask R-CNN trained on S_F with amodal boxes; each "
                          "object gets the prediction (score >= "
                          f"{seg.score_threshold:g}) with the largest IoU with its given S_V, "
                          "one to one, greedy, any overlap; none: an empty mask"])


@register_method("depth_net", task="depth_net")
def build_depth_net(ctx: MethodContext) -> EvalMethod:
    """Single-image depth (Table 5's baseline): depth layering only."""
    net, cfg, identity = ctx.load()
    method = DepthNetMethod(net, cfg.depth.image_size, cfg.data.image_mean, cfg.data.image_std)
    return EvalMethod("depth_net", method, ctx.reference_cfg, paints=False, checkpoint=identity,
                      hparams=net.hparams, notes=[
                          "depth layering only: each object's depth is the mean predicted depth "
                          "inside its given S_V; of two objects the nearer occludes"])
