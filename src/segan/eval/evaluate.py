"""Evaluate SeGAN and baselines on a dataset split: the paper's Tables 1, 2 and 5 (Sec. 5.2).

    from segan.eval.evaluate import evaluate
    results = evaluate("runs/tiny", "data/tiny", "out/eval", methods=("segan", "visible_as_full"))
    evaluate(None, "data/tiny", "out/eval", methods=("segan=runs/tiny", "pix2pix=runs/p2p"))

Methods are looked up by name in `segan.eval.methods` (each built from its own checkpoint).

Per test image, all its annotated objects (each has a ground-truth S_V) go through one forward:

- Inputs exactly as in training at test time (`segan.train.cache.render_image` and
  `segan.train.data.prepare_batch`): the image resized (bilinear, antialiased, uint8) to the
  config's ``data.image_size`` S and normalised; S_V resized the same way (soft); each object's
  box is its S_V box in the S x S frame grown by ``data.expand_test`` (0.2) of its size per
  side, clipped to the image.
- Frames: the segmentor's o (m x m) covers the expanded box of the S x S frame. The box in the
  original H x W frame is the same box scaled by (W / S, H / S); o is pasted there by bilinear
  sampling at the centres of the original pixels (the inverse of the aligned roi_align crop,
  one resampling instead of paste-then-resize), 0 outside the box, then thresholded at 0.5
  and scored against the dataset's masks at the original resolution (Table 1).
- Painting (Table 2): the painted crop G(M) in [-1, 1] -> RGB in [0, 1], against the appearance
  target cropped from the same box at the painter's size c, over the ground-truth S_F pixels
  of that crop (S_F crop >= 0.5).
- Depth layering (Table 5): per image, `occlusion_graph` of the ground-truth S_V and the
  predicted S_F of all its objects, averaged over images, against two ground truths:
  "GT: any overlap", the dataset's occlusion pairs (an occluder hiding at least one pixel,
  FORMAT.md), and "GT: 5% rule", the paper's rule applied to the ground-truth masks
  (`occlusion_graph` of the ground-truth S_V and S_F). Predicted pairs need the 5% rule, so
  only the second has a ceiling of 100% (the ``oracle`` method shows both ceilings).

Outputs in OUT: results.json (every number, the config and the checkpoint's identity),
results.md (`segan.eval.report`), figure_<method>.png (a few objects: image crop, S_V,
predicted S_F, ground-truth S_F, painted, target, as in the paper's Figures 4-5) and, for a
method that predicts S_F, figure_<method>_best_worst.png: the same columns for its best and
worst occluded objects by full IoU (`BestWorst`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from segan.config import TrainConfig
from segan.data import coco
from segan.data.atomic import file_sha256, write_bytes_atomic, write_png_atomic
from segan.data.formats import resolve_dataset
from segan.device import autocast_dtype, precision_name, resolve_device
from segan.inference import run_segan
from segan.models import SeGAN
from segan.train.cache import annotation_path, render_image
from segan.transforms import (
    crop_object_masks,
    model_inputs,
    resize_planes_u8,
    visible_boxes_in_frame,
)

from .baselines import ImageInputs, MethodOutput
from .metrics import (
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    PaintingMeter,
    SegmentationMeter,
    occlusion_graph,
    segmentation_scores,
    threshold,
)
from .perceptual import PerceptualMeter, load_perceptual

RESULTS_FORMAT = "segan-eval"
RESULTS_VERSION = 1
VISIBLE_SOURCES = ("gt", "predicted")
FIGURE_COLUMNS = ("image", "S_V", "predicted S_F", "ground-truth S_F", "painted", "target")
BEST_WORST_BAND = (255, 0, 0)  # the rows' colour between the best and the worst objects
PREDICTED_VISIBLE_MESSAGE = (
    "--visible predicted needs the visible-instance segmenter: pass --visible-segmenter RUN, a "
    "run of `segan train --config configs/visible_maskrcnn.yaml` (predicted S_V, the paper's "
    "second setting of Tables 1-2)")
VISIBLE_PREDICTED_RULE = (
    "predicted masks with score >= the threshold are matched one to one to the ground-truth "
    "objects, greedily by IoU with the ground-truth S_V, a pair needing IoU >= 0.5; a matched "
    "object gets the predicted mask as its S_V input; an unmatched object is a miss (every "
    "IoU 0, no painting, occlusion pairs involving it wrong); unmatched predictions are false "
    "positives")


# ----------------------------------------------------------------------------- inputs and SeGAN


def prepare_image(ds: coco.AmodalDataset, image_id: int, cfg: TrainConfig,
                  device: torch.device, given_visible: np.ndarray | None = None,
                  image: np.ndarray | None = None,
                  masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                  ) -> ImageInputs:
    """One image's objects as the model sees them at test time (see `ImageInputs`).

    given_visible: (N, H, W) bool, the S_V to give the methods instead of the ground truth
    (``--visible predicted``): the S_V plane and the boxes are made from it, resized like the
    ground truth. An empty mask gives an empty box (such objects are not run: misses).
    image, masks: `ds.load_image(image_id)` and `ds.image_masks(image_id)` when the caller has
    decoded them already (decoded here otherwise)."""
    S, c = cfg.data.image_size, cfg.model.crop_size
    anns = ds.annotations[image_id]
    H, W = ds.images[image_id]["height"], ds.images[image_id]["width"]
    image = ds.load_image(image_id) if image is None else image
    masks = ds.image_masks(image_id) if masks is None else masks
    full, visible, _ = masks
    image_u8, planes = render_image(ds, image_id, S, image, masks)  # (S,S,3), (N,5,S,S) uint8
    if given_visible is not None:
        if given_visible.shape != visible.shape:
            raise ValueError(f"image {image_id}: given S_V has shape {given_visible.shape}, "
                             f"the image's masks {visible.shape}")
        planes[:, 0] = resize_planes_u8(given_visible[:, None].astype(np.uint8) * np.uint8(255),
                                        S)[:, 0]
        vboxes = [coco.mask_bbox(m) for m in given_visible]
    else:
        vboxes = [ann.get("visible_bbox") or coco.mask_bbox(visible[k])
                  for k, ann in enumerate(anns)]
    images, visible_masks, boxes = model_inputs(image_u8, planes[:, 0:1], vboxes, (H, W), cfg,
                                                device)
    planes_t = torch.from_numpy(planes[:, 1:5]).to(device).float() / 255  # S_F, RGB * a
    painter = crop_object_masks(planes_t, boxes, c)
    return ImageInputs(
        image_id=image_id, ann_ids=[int(a["id"]) for a in anns], orig_hw=(H, W),
        full=full, visible=visible, images=images,
        visible_masks=visible_masks, boxes=boxes,
        target=painter[:, 1:4].clamp(0, 1), full_crop=painter[:, 0:1],
        has_appearance=np.array([a.get("appearance_file") is not None for a in anns], bool),
        given_visible=given_visible, image=image,
        visible_box=visible_boxes_in_frame(vboxes, (H, W), S, device),
    )


class SeGANMethod:
    """SeGAN with the given (ground-truth) S_V: segmentor -> Eq. 1 -> painter, one forward per
    image, no gradients, bf16 autocast on CUDA: the predictor's forward (`segan.inference.
    run_segan`) on the inputs `prepare_image` made."""

    name = "segan"
    paints = True

    def __init__(self, net: SeGAN, cfg: TrainConfig, amp_dtype: torch.dtype | None = None):
        self.net, self.cfg, self.amp_dtype = net, cfg, amp_dtype

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        out = run_segan(self.net, self.cfg.data.image_size, inputs.images,
                        inputs.visible_masks, inputs.boxes, inputs.orig_hw, self.amp_dtype,
                        torch.from_numpy(inputs.input_visible))
        return MethodOutput(full_probs=out.full_probs, box_full=out.box_full,
                            painted=out.painted)




# ----------------------------------------------------------------------------- scoring


class BestWorst:
    """The k best and the k worst occluded objects of a method by full IoU (standard), with
    their figure rows (`_figure_row`, drawn only for an object that enters). Ties keep the
    earlier object (evaluation order), so the pick is deterministic. Any higher-is-better
    score works: the de-occlusion figure ranks removals by -L1 (`segan.eval.deocclusion`)."""

    def __init__(self, k: int):
        self.k = k
        self._seq = itertools.count()
        # min-heaps whose top is the first to leave: best keyed (iou, -seq), worst (-iou, -seq)
        self._best: list[tuple[float, int, dict, np.ndarray]] = []
        self._worst: list[tuple[float, int, dict, np.ndarray]] = []

    def add(self, full_iou: float, info: dict[str, Any], draw) -> None:
        """One object: its full IoU, what the results record of it, and `draw() -> row`."""
        if self.k <= 0:
            return
        seq = -next(self._seq)
        row = None
        for heap, key in ((self._best, full_iou), (self._worst, -full_iou)):
            if len(heap) < self.k or (key, seq) > heap[0][:2]:
                row = draw() if row is None else row
                item = (key, seq, info, row)
                (heapq.heappush if len(heap) < self.k else heapq.heapreplace)(heap, item)

    def picks(self) -> tuple[list[dict], list[dict]]:
        """(best first, worst first): each {"image_id", "ann_id", "full_iou", ...}."""
        return ([i for *_, i, _ in sorted(self._best, reverse=True)],
                [i for *_, i, _ in sorted(self._worst, reverse=True)])

    def figure(self) -> np.ndarray | None:
        """The best rows (best first), a band, the worst rows (worst first); None if empty."""
        if not self._best:
            return None
        best = [r for *_, r in sorted(self._best, reverse=True)]
        worst = [r for *_, r in sorted(self._worst, reverse=True)]
        band = np.zeros((max(2, best[0].shape[0] // 16), *best[0].shape[1:]), np.uint8)
        band[:] = BEST_WORST_BAND
        return np.concatenate([*best, band, *worst], axis=0)


class MethodScores:
    """The three meters of one method, and its figure rows."""

    def __init__(self, paints: bool, figure_objects: int, image_mean: Sequence[float],
                 image_std: Sequence[float], perceptual: PerceptualMeter | None = None,
                 best_worst: int = 0):
        self.paints = paints
        self.perceptual = perceptual  # FID / LPIPS of the painted objects, with weights
        self.segments = False  # set by the first prediction with a full mask
        self.image_mean, self.image_std = tuple(image_mean), tuple(image_std)
        self.segmentation = SegmentationMeter()
        self.painting = PaintingMeter()
        self.layering = LayeringMeter()  # ground truth: the dataset's pairs (any overlap)
        self.layering_gt5 = LayeringMeter()  # ground truth: the 5% rule on the gt masks
        self.painting_skipped = 0  # objects without appearance or without S_F in the crop
        self.without_appearance = 0  # of which: no appearance image (the dataset has none)
        # set when the dataset has no occlusion pairs (its format has none): Table 5 n/a
        self.layering_note: str | None = None
        self.missed = 0  # objects without a predicted S_V (--visible predicted)
        self.layers = False  # whether the method gave occlusion pairs (Table 5 applies)
        self._pending: list = []  # images whose objects were all missed (see add)
        self._seen = False  # whether any output was scored
        # (masks, occlusion pairs) the method gives, for when it never ran (every object of
        # every image missed): from the runner's `segments` / `layers` attributes
        self.kind_hint = (True, True)
        self.figure_objects = figure_objects
        self.figure_occluded: list[np.ndarray] = []
        self.figure_other: list[np.ndarray] = []
        self.best_worst = BestWorst(best_worst)

    def add(self, inputs: ImageInputs, pred: MethodOutput | None,
            gt_pairs: Sequence[tuple[int, int]], detected: np.ndarray | None = None,
            gt_pairs_5pct: Sequence[tuple[int, int]] | None = None) -> None:
        """Score one image. detected: (N,) bool, the objects that got a (predicted) S_V; the
        others are misses: every IoU 0, no painting, no occlusion pair (None: all detected).
        A method without full masks is scored on Table 5 only if it gives occlusion pairs
        (depth_net), else on painting only. gt_pairs: the dataset's occlusion pairs (ann ids);
        gt_pairs_5pct: the 5%-rule pairs of the ground-truth masks (`gt_pairs_5pct`; computed
        here when None)."""
        ids = inputs.ann_ids
        if gt_pairs_5pct is None:
            gt_pairs_5pct = ground_truth_pairs_5pct(inputs)
        missed = (np.zeros(inputs.num_objects, bool) if detected is None
                  else ~np.asarray(detected, bool))
        self.missed += int(missed.sum())
        if pred is None:  # every object missed (`run_method`): scored once the kind is known
            empty = np.zeros_like(inputs.full)
            seg = segmentation_scores(empty, inputs.full, inputs.visible)
            for conv in SEGMENTATION_CONVENTIONS:
                seg[conv] = np.zeros_like(seg[conv])
            self._pending.append((seg, list(gt_pairs), list(gt_pairs_5pct)))
            return
        self._seen = True
        pred_full = None
        if pred.full_probs is not None:
            self.segments = True
            pred_full = threshold(pred.full_probs.cpu().numpy(), 0.5)  # (N, H, W) bool
            seg = segmentation_scores(pred_full, inputs.full, inputs.visible)
            if missed.any():
                for conv in SEGMENTATION_CONVENTIONS:  # a miss scores 0 (docs/results.md)
                    seg[conv] = np.where(missed, 0.0, seg[conv])
            self.segmentation.add_scores(seg)
            self._rank(inputs, pred, seg, missed)

        # Table 5: predicted occlusion pairs, as annotation ids
        pairs = pred.occlusion_pairs
        if pairs is None and pred_full is not None:
            pairs = occlusion_graph(inputs.input_visible, pred_full)
        if pairs is not None:
            self.layers = True
            pred_ids = [(ids[q], ids[p]) for q, p in pairs]
            self.layering.add(pred_ids, gt_pairs)
            self.layering_gt5.add(pred_ids, gt_pairs_5pct)

        painted = pred.painted.float().cpu().numpy() if pred.painted is not None else None
        target = inputs.target.float().cpu().numpy()
        mask = threshold(inputs.full_crop[:, 0].float().cpu().numpy(), 0.5)
        if painted is not None:
            scored = []
            for k in range(inputs.num_objects):
                if missed[k]:
                    continue
                if not (inputs.has_appearance[k] and mask[k].any()):
                    self.painting_skipped += 1
                    self.without_appearance += not inputs.has_appearance[k]
                    continue
                self.painting.add(painted[k].transpose(1, 2, 0), target[k].transpose(1, 2, 0),
                                  mask[k])
                scored.append(k)
            if self.perceptual is not None and scored:  # the same objects, on the device
                self.perceptual.add(pred.painted[scored], inputs.target[scored],
                                    inputs.full_crop[scored])
        if pred.box_full is not None or pred.painted is not None:  # something to show
            self._figure_rows(inputs.subset(~missed) if missed.any() else inputs,
                              _subset_output(pred, ~missed) if missed.any() else pred)

    def _rank(self, inputs: ImageInputs, pred: MethodOutput, seg: dict[str, Any],
              missed: np.ndarray) -> None:
        """Offer the image's occluded, detected objects to `best_worst`."""
        if self.best_worst.k <= 0:
            return
        c = inputs.target.shape[-1]
        for k in np.flatnonzero(np.atleast_1d(seg["occluded"]) & ~missed):
            full_iou = float(np.atleast_1d(seg["full_iou/standard"])[k])
            info = {"image_id": int(inputs.image_id), "ann_id": int(inputs.ann_ids[k]),
                    "full_iou": full_iou,
                    "invisible_iou/justamodal": float(
                        np.atleast_1d(seg["invisible_iou/justamodal"])[k]),
                    "occlusion_rate": float(np.atleast_1d(seg["occlusion_rate"])[k])}
            self.best_worst.add(full_iou, info, lambda k=k: _figure_row(
                inputs, pred, k, c, self.image_mean, self.image_std))

    def _figure_rows(self, inputs: ImageInputs, pred: MethodOutput) -> None:
        n = self.figure_objects
        if len(self.figure_occluded) >= n:
            return
        occluded = (inputs.full & ~inputs.visible).any(axis=(1, 2))
        c = inputs.target.shape[-1]
        for k in range(inputs.num_objects):
            if len(self.figure_occluded) >= n:
                break
            if not occluded[k] and len(self.figure_other) >= n:
                continue
            row = _figure_row(inputs, pred, k, c, self.image_mean, self.image_std)
            (self.figure_occluded if occluded[k] else self.figure_other).append(row)

    def figure(self) -> np.ndarray | None:
        rows = (self.figure_occluded + self.figure_other)[:self.figure_objects]
        return np.concatenate(rows, axis=0) if rows else None

    def compute(self) -> dict[str, Any]:
        if self._pending and not self._seen:  # no output at all: the method's declared kind
            self.segments, self.layers = self.kind_hint
        for seg, gt_pairs, gt_pairs_5pct in self._pending:  # all missed: 0 where it applies
            if self.segments:
                self.segmentation.add_scores(seg)
            if self.layers:
                self.layering.add([], gt_pairs)
                self.layering_gt5.add([], gt_pairs_5pct)
        self._pending = []
        painting: dict[str, Any] | None = None
        note = None if self.paints else "not applicable: the method does not paint"
        if self.paints and not len(self.painting) and self.without_appearance:
            note = ("not applicable: no object of the split has an appearance image (its "
                    "format has none), so there is no painting target")
        elif self.paints:
            painting = {**self.painting.compute(), "count/skipped": float(self.painting_skipped)}
            if self.perceptual is not None:
                painting.update(self.perceptual.compute())
        if painting is not None and self.missed:
            painting["count/missed"] = float(self.missed)
        layering = (self.layering.compute() if self.layers and self.layering_note is None
                    else None)
        return {
            "segmentation": self.segmentation.compute() if self.segments else None,
            "segmentation_by_occlusion": (self.segmentation.compute_by_occlusion()
                                          if self.segments else None),
            "segmentation_note": None if self.segments else
            "not applicable: the method predicts no full mask",
            "painting": painting,
            "painting_note": note,
            "layering": layering,
            "layering_note": self.layering_note,
            # needs only the masks, so it applies also where the dataset has no pairs
            "layering_gt_5pct": self.layering_gt5.compute() if self.layers else None,
            "missed_objects": self.missed,
        }


def ground_truth_pairs_5pct(inputs: ImageInputs) -> list[tuple[int, int]]:
    """The paper's 5% rule (`occlusion_graph`) on the ground-truth S_V and S_F of one image:
    (occluder, occludee) annotation ids, the ground truth of "layering (GT: 5% rule)". The
    same rule as a prediction's pairs, so the ground-truth S_F as prediction scores 100%."""
    ids = inputs.ann_ids
    return sorted((ids[q], ids[p]) for q, p in occlusion_graph(inputs.visible, inputs.full))


def _subset_output(pred: MethodOutput, keep: np.ndarray) -> MethodOutput:
    """The output of the objects `keep` ((N,) bool) only."""
    idx = np.flatnonzero(keep)
    new = {int(i): j for j, i in enumerate(idx)}
    t = torch.as_tensor(idx, dtype=torch.long)

    def sub(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x[t.to(x.device)]

    pairs = None if pred.occlusion_pairs is None else {
        (new[q], new[p]) for q, p in pred.occlusion_pairs if q in new and p in new}
    return MethodOutput(full_probs=sub(pred.full_probs), box_full=sub(pred.box_full),
                        painted=sub(pred.painted), occlusion_pairs=pairs)


def _scatter_output(pred: MethodOutput, keep: np.ndarray, inputs: ImageInputs) -> MethodOutput:
    """A method's output for the objects `keep` ((N,) bool) -> all N objects of `inputs`, the
    others (misses) empty: no mask, a blank painting, no occlusion pair."""
    idx = np.flatnonzero(keep)
    N = inputs.num_objects
    dev = inputs.boxes.device
    t = torch.as_tensor(idx, dtype=torch.long, device=dev)

    def scatter(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        out = x.new_zeros((N, *x.shape[1:]))
        out[t.to(x.device)] = x
        return out

    pairs = None if pred.occlusion_pairs is None else {
        (int(idx[q]), int(idx[p])) for q, p in pred.occlusion_pairs}
    return MethodOutput(full_probs=scatter(pred.full_probs), box_full=scatter(pred.box_full),
                        painted=scatter(pred.painted), occlusion_pairs=pairs)


def run_method(run: Any, inputs: ImageInputs, detected: np.ndarray | None
               ) -> MethodOutput | None:
    """`run` on the detected objects of `inputs` (all when detected is None), scattered back to
    all objects. With no detected object the method is not run: None (`MethodScores.add`
    scores every object of the image as a miss)."""
    if detected is None or detected.all():
        return run(inputs)
    if detected.any():
        return _scatter_output(run(inputs.subset(detected)), detected, inputs)
    return None


def _figure_row(inputs: ImageInputs, pred: MethodOutput, k: int, c: int,
                image_mean: Sequence[float], image_std: Sequence[float]) -> np.ndarray:
    """One object's (c, 6 c, 3) uint8 row: FIGURE_COLUMNS, all over the object's box."""
    box = inputs.boxes[k:k + 1]  # batch index 0: crop_object_masks reads row 0 of the image
    dev = inputs.images.device
    mean = torch.tensor(image_mean, device=dev).view(3, 1, 1)
    std = torch.tensor(image_std, device=dev).view(3, 1, 1)
    image = crop_object_masks(inputs.images, box, c)[0] * std + mean
    vis = crop_object_masks(inputs.visible_masks[k:k + 1], box, c)[0]
    grey = torch.full((3, c, c), 0.5, device=dev)
    tiles = [
        image,
        vis.expand(3, -1, -1),
        pred.box_full[k].float().expand(3, -1, -1) if pred.box_full is not None else grey,
        inputs.full_crop[k].float().expand(3, -1, -1),
        pred.painted[k].float() if pred.painted is not None else grey,
        inputs.target[k].float(),
    ]
    row = torch.cat([t.clamp(0, 1) for t in tiles], dim=2)  # (3, c, 6 c)
    return (row.permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()


# ----------------------------------------------------------------------------- the command


def _resolve_device(device: str) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    return resolve_device(device, "--device")


def _finite_or_none(obj: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _input_key(cfg: TrainConfig) -> tuple:
    """What `prepare_image` reads from a config: methods with equal keys share their inputs."""
    d = cfg.data
    return (d.image_size, d.expand_test, cfg.model.crop_size, tuple(d.image_mean),
            tuple(d.image_std))


def evaluate(
    checkpoint: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str = "test",
    visible: str = "gt",
    methods: Sequence[str] = ("segan",),
    limit: int | None = None,
    sample: int | None = None,
    device: str = "auto",
    figure_objects: int = 8,
    progress: bool = True,
    command: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    visible_segmenter: str | os.PathLike | None = None,
    visible_score_threshold: float | None = None,
    data_format: str = "auto",
    fid_weights: str | os.PathLike | None = None,
    lpips_weights: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    best_worst: int = 4,
    save_crops: int = 0,
) -> dict[str, Any]:
    """Evaluate `methods` on DATA's `split` and write OUT/results.{json,md} and figures.

    methods: names of `segan.eval.methods` ("segan", "visible_as_full", ...), each optionally
    "NAME=CHECKPOINT" (its own run folder, model.safetensors or .pt). checkpoint: the
    reference checkpoint (see `segan.eval.methods.load_run`), used by every method named
    without its own; None: the first method's. Each method's inputs follow its own config
    (image size, box expansion, crop size); the results' "config" is the reference's.
    visible: "gt" (the ground-truth S_V is given) or "predicted": S_V from the
    visible-instance segmenter `visible_segmenter` (a run of configs/visible_maskrcnn.yaml),
    its masks with score >= `visible_score_threshold` (default: the run's) matched to the
    objects by `segan.eval.matching` (IoU with the ground-truth S_V >= 0.5, one to one); an
    unmatched object is a miss (every IoU 0, no painting, its occlusion pairs wrong).
    limit: the first N images of the split only. sample: N images spread evenly over the split
    (every scene represented; deterministic), instead of `limit`. cache_dir: the decoded
    training cache of methods that read the training split, and another format's converted
    copy (default: the user cache, segan.data.atomic.default_cache_dir). data_format: DATA's
    format ("auto": detected); another than
    segan-coco is converted once (segan.data.formats.resolve_dataset). A split without
    appearance images (or without occlusion pairs, which its format lacks) gets "not
    applicable" painting (or layering) results for every method, with a note saying why.
    fid_weights, lpips_weights: local weights for FID and LPIPS of the painted objects
    (`segan.eval.perceptual`); without them those rows say "not computed".
    best_worst: k, for figure_<method>_best_worst.png of each method that predicts S_F: its k
    best and k worst occluded objects by full IoU (0: none).
    save_crops: N > 0 writes OUT/crops/: the painted crops of the first N occluded objects
    with an appearance target, for every painting method, with their inputs and targets
    (`segan.eval.crops`; the material of `segan study`).
    Returns the results dict written to results.json.
    """
    from .methods import MethodContext, get_method, load_run, parse_method_spec
    from .report import PAPER_NUMBERS, write_report

    if visible not in VISIBLE_SOURCES:
        raise ValueError(f"--visible must be one of {', '.join(VISIBLE_SOURCES)}, got {visible!r}")
    if visible == "predicted" and visible_segmenter is None:
        raise ValueError(PREDICTED_VISIBLE_MESSAGE)
    if visible == "gt" and visible_segmenter is not None:
        raise ValueError("--visible-segmenter is only used with --visible predicted")
    # label -> (registered method name, checkpoint); NAME@LABEL scores one method several
    # times in one run (e.g. segan@plus=RUN_A segan@prev=RUN_B), under its label
    specs: dict[str, tuple[str, Path | None]] = {}
    for spec in methods:
        label, path = parse_method_spec(spec)
        name = label.partition("@")[0]
        get_method(name)  # unknown names fail here, before any loading
        if label in specs and specs[label][1] != path:
            raise ValueError(f"method {label!r} is given twice with different checkpoints")
        specs[label] = (name, path)
    if not specs:
        raise ValueError("no method to evaluate")
    if save_crops < 0:
        raise ValueError(f"--save-crops must be >= 0, got {save_crops}")
    if best_worst < 0:
        raise ValueError(f"--best-worst must be >= 0, got {best_worst}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    if sample is not None and (sample < 1 or limit is not None):
        raise ValueError(f"--sample must be >= 1 and not given with --limit, got {sample}")
    reference = Path(checkpoint) if checkpoint is not None else next(
        (p for _, p in specs.values() if p is not None), None)
    if reference is None:
        raise ValueError("no checkpoint: pass --checkpoint, or NAME=CHECKPOINT for a method")
    for label, (name, path) in specs.items():
        if path is None and checkpoint is None and get_method(name).task is not None:
            raise ValueError(f"method {label!r} needs a checkpoint: --method {label}=RUN_DIR, "
                             "or --checkpoint")

    start = time.perf_counter()
    dev = _resolve_device(device)
    perceptual = load_perceptual(fid_weights, lpips_weights, dev)  # a wrong file fails here
    ref_net, cfg, identity = load_run(reference, dev)
    amp_dtype = autocast_dtype(dev)
    data_source = str(Path(data_dir))
    data_dir = resolve_dataset(data_dir, data_format, cache_dir, progress=progress)
    ann_file = annotation_path(data_dir, split)
    if not ann_file.is_file():
        splits = sorted(p.stem for p in (Path(data_dir) / "annotations").glob("*.json"))
        raise FileNotFoundError(f"no annotation file {ann_file} (splits: {', '.join(splits)})")
    ds = coco.load_annotations(ann_file, root=data_dir)
    image_ids = [i for i in ds.image_ids if ds.annotations[i]]
    if not image_ids:
        raise ValueError(f"{ann_file}: split {split!r} has no annotated object ({len(ds)} "
                         "images): nothing to evaluate")
    if limit is not None:
        image_ids = image_ids[:limit]
    if sample is not None and sample < len(image_ids):
        picks = np.linspace(0, len(image_ids) - 1, sample).round().astype(int)
        image_ids = [image_ids[i] for i in picks]
    missing = ds.missing_files(image_ids)  # before any model runs: not skipped in silence
    if missing:
        raise coco.DatasetFormatError(missing)

    runs = {reference: (ref_net, cfg, identity)}
    built = {}
    for label, (name, path) in specs.items():
        entry = get_method(name)
        ctx = MethodContext(name=label, task=entry.task, checkpoint=path or reference,
                            own_checkpoint=path,
                            reference_cfg=cfg, device=dev, amp_dtype=amp_dtype,
                            data_dir=Path(data_dir),
                            cache_dir=Path(cache_dir) if cache_dir is not None else None,
                            progress=progress, _runs=runs)
        built[label] = entry.build(ctx)
    scores = {m: MethodScores(b.paints, figure_objects, b.cfg.data.image_mean,
                              b.cfg.data.image_std,
                              perceptual.meter() if b.paints and perceptual.any else None,
                              best_worst)
              for m, b in built.items()}
    for m, b in built.items():
        segments = getattr(b.run, "segments", True)
        scores[m].kind_hint = (segments, getattr(b.run, "layers", segments))
    source = detections = None
    if visible == "predicted":
        from segan.models.visible_segmenter import VisibleSegmenter

        from .image_methods import DetectionMeter, PredictedVisible

        source = PredictedVisible(VisibleSegmenter.from_checkpoint(visible_segmenter, dev),
                                  visible_score_threshold)
        detections = DetectionMeter()

    if not any("occlusion" in img for img in ds.images.values()):  # e.g. KINS, D2SA, DYCE
        for sc in scores.values():
            sc.layering_note = ("not applicable: the dataset has no occlusion pairs (its "
                                "format has none)")
    num_objects = 0
    crops = None
    if save_crops:
        from .crops import CROPS_FOLDER, CropWriter

        first = next(iter(built.values())).cfg.data
        crops = CropWriter(Path(out_dir) / CROPS_FOLDER, save_crops,
                           [m for m, b in built.items() if b.paints], first.image_mean,
                           first.image_std)
    # Scoring (CPU: masks at full resolution, SSIM) runs in one worker thread per method, so
    # the methods' scores are computed side by side and overlap the next image's forward
    # passes; each meter still sees the images in order, so the results do not change.
    scorers = {m: ThreadPoolExecutor(1, thread_name_prefix=f"score-{m}") for m in built}
    pending: deque[Future] = deque()
    try:
        for iid in tqdm(image_ids, desc=f"evaluate {split}", unit="img", disable=not progress,
                        dynamic_ncols=True):
            prepared: dict[tuple, ImageInputs] = {}
            gt_pairs = ds.occlusion_pairs(iid)
            gt_pairs_5pct = None  # from the first prepared inputs: the same for every method
            image, masks = ds.load_image(iid), ds.image_masks(iid)  # decoded once per image
            given = detected = None
            if source is not None:
                given, match, n_pred = source(image, masks[1])
                detections.add(match, n_pred)
                detected = match.matched
            for m, b in built.items():
                key = _input_key(b.cfg)
                if key not in prepared:
                    prepared[key] = prepare_image(ds, iid, b.cfg, dev, given, image, masks)
                inputs = prepared[key]
                if gt_pairs_5pct is None:
                    gt_pairs_5pct = ground_truth_pairs_5pct(inputs)
                pred = run_method(b.run, inputs, detected)
                if crops is not None:
                    crops.add(m, inputs, pred, detected)
                pending.append(scorers[m].submit(scores[m].add, inputs, pred, gt_pairs,
                                                 detected, gt_pairs_5pct))
            num_objects += inputs.num_objects
            while len(pending) > 4 * len(built):  # bound the images held in memory
                pending.popleft().result()
        while pending:
            pending.popleft().result()  # re-raises a scoring error
    finally:
        for pool in scorers.values():
            pool.shutdown(wait=True, cancel_futures=True)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    for m in built:
        grid = scores[m].figure()
        if grid is not None:
            path = out / f"figure_{m}.png"
            write_png_atomic(path, grid)
            figures[m] = path.name
    best_worst_figures = {}
    for m in built:
        grid = scores[m].best_worst.figure()
        if grid is not None:
            path = out / f"figure_{m}_best_worst.png"
            write_png_atomic(path, grid)
            best, worst = scores[m].best_worst.picks()
            best_worst_figures[m] = {"file": path.name, "best": best, "worst": worst}
    method_results = {}
    for m, b in built.items():
        method_results[m] = scores[m].compute()
        method_results[m].update(checkpoint=b.checkpoint, notes=list(b.notes))
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "command": command,
        "data": {"path": str(data_dir), "source": data_source, "split": split,
                 "annotations": str(ann_file),
                 "annotations_sha256": file_sha256(ann_file)},
        "visible": visible,
        "visible_segmenter": None if source is None else {
            **{k: v for k, v in source.segmenter.identity.items() if k != "config"},
            "score_threshold": source.score_threshold, "match_iou": source.min_iou,
            "rule": VISIBLE_PREDICTED_RULE},
        "detection": None if detections is None else detections.compute(),
        "checkpoint": identity,
        "config": cfg.to_dict(),
        "model_hparams": ref_net.hparams,
        "device": str(dev),
        "precision": precision_name(amp_dtype),
        "limit": limit,
        "sample": sample,
        "num_images": len(image_ids),
        "num_objects": num_objects,
        "mask_threshold": 0.5,
        "methods": method_results,
        "perceptual": perceptual.describe(),
        "figures": figures,
        "figure_columns": list(FIGURE_COLUMNS),
        "figures_best_worst": best_worst_figures,
        "crops": None if crops is None else crops.finish(),
        "paper": PAPER_NUMBERS,
        "seconds": round(time.perf_counter() - start, 2),
    }
    results = _finite_or_none(results)
    write_bytes_atomic(out / "results.json", json.dumps(results, indent=1).encode())
    write_report(results, out / "results.md")
    return results
