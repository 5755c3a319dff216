"""Evaluation of SeGAN: metrics as pure functions (``segan.eval.metrics``: masks and depth
layering; ``segan.eval.painting_metrics``: paintings and FID's distance; the depth layers of
Sec. 5.2 are the predictor's, ``segan.layering``)."""

from segan.eval.metrics import (
    OCCLUSION_BINS,
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    SegmentationMeter,
    iou,
    layering_accuracy,
    occlusion_bin_index,
    occlusion_graph,
    segmentation_scores,
    threshold,
)
from segan.eval.painting_metrics import (
    PSNR_CAP_DB,
    PaintingMeter,
    fid_from_features,
    frechet_distance,
    painting_errors,
)
from segan.layering import LAYERING_THRESHOLD, depth_layers  # the predictor's, Sec. 5.2

__all__ = [
    "LAYERING_THRESHOLD",
    "OCCLUSION_BINS",
    "PSNR_CAP_DB",
    "SEGMENTATION_CONVENTIONS",
    "LayeringMeter",
    "PaintingMeter",
    "SegmentationMeter",
    "depth_layers",
    "fid_from_features",
    "frechet_distance",
    "iou",
    "layering_accuracy",
    "occlusion_bin_index",
    "occlusion_graph",
    "painting_errors",
    "segmentation_scores",
    "threshold",
]
