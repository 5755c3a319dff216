"""Evaluation of SeGAN: metrics as pure functions (see ``segan.eval.metrics``)."""

from segan.eval.metrics import (
    LAYERING_THRESHOLD,
    PSNR_CAP_DB,
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    PaintingMeter,
    SegmentationMeter,
    depth_layers,
    fid_from_features,
    frechet_distance,
    iou,
    layering_accuracy,
    occlusion_graph,
    painting_errors,
    segmentation_scores,
    threshold,
)

__all__ = [
    "LAYERING_THRESHOLD",
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
    "occlusion_graph",
    "painting_errors",
    "segmentation_scores",
    "threshold",
]
