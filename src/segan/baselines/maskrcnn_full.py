"""Baseline ``maskrcnn_full`` (Tables 1 and 5; the paper's "Multipath natural + synthetic"): its
training task and its evaluation method; the network is `segan.models.visible_segmenter.
MaskRCNNNet`, the config section ``detector:`` (`segan.config_sections`), the config
configs/maskrcnn_full.yaml.

Training: the class-agnostic Mask R-CNN of the visible-instance segmenter
(`segan.train.image_tasks.MaskRCNNTask`: its data, recipe and grid) with S_F as the mask target
and the amodal boxes.

Evaluation: it predicts full masks with no S_V given; each object gets the prediction that best
matches the S_V it was given (IoU of the predicted full mask with that S_V, one to one, greedy,
any overlap > 0); an object with no overlapping prediction gets an empty mask. It does not
paint.
"""

from __future__ import annotations

import numpy as np
import torch

from segan.eval.baselines import ImageInputs, MethodOutput
from segan.eval.matching import mask_iou_matrix, match_greedy
from segan.eval.methods import EvalMethod, MethodContext, register_method
from segan.models.visible_segmenter import VisibleSegmenter
from segan.train.image_tasks import MaskRCNNTask
from segan.train.registry import register_task
from segan.transforms import boxes_to_image_frame, crop_object_masks


@register_task("maskrcnn_full")
class FullMaskRCNNTask(MaskRCNNTask):
    """Mask R-CNN on S_F and the amodal boxes: the full-mask baseline."""

    mask_target = "full"


class MaskRCNNFull:
    """Full masks from a Mask R-CNN trained on S_F (module docstring). It sees the original
    image (`ImageInputs.image`)."""

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
        full = self.predict(inputs.original_image(), inputs.input_visible)
        device = inputs.visible_masks.device
        full_probs = torch.from_numpy(full).to(device=device, dtype=torch.float32)
        boxes = boxes_to_image_frame(inputs.boxes, self.frame_size, H, W)
        box_full = crop_object_masks(full_probs[:, None], boxes, self.crop_size)
        return MethodOutput(full_probs=full_probs, box_full=box_full, painted=None)


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
