"""Evaluation of SeGAN: metrics as pure functions (see ``segan.eval.metrics``; the depth layers
of Sec. 5.2 are the predictor's, ``segan.layering``)."""

from segan.eval.metrics import (
    OCCLUSION_BINS,
    PSNR_CAP_DB,
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    PaintingMeter,
    SegmentationMeter,
    fid_from_features,
    frechet_distance,
    iou,
    layering_accuracy,
    occlusion_bin_index,
    occlusion_graph,
    painting_errors,
    segmentation_scores,
    threshold,
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
