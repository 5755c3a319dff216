"""`segan predict-visible DATA --segmenter RUN --out DATA2`: predicted S_V for a whole dataset.

The paper trains SeGAN "w/ predicted S_V" on the masks of its instance segmenter (section 5.2):
"The segmentation mask that has the largest intersection over union with the visible region of
the groundtruth mask is selected as the input mask during training." This writes a copy of
DATA with those masks beside the ground truth:

    DATA2/annotations/<split>.json   DATA's split file, every annotation with three more fields:
        predicted_visible_mask    compressed RLE of the selected prediction, or null when no
                                  prediction (score >= threshold) overlaps the object's S_V
        predicted_visible_iou     its IoU with the ground-truth S_V (0 when null)
        predicted_visible_score   its detection score (null when null)
      and info.predicted_visible = {segmenter path/step/sha256, score_threshold, rule}
    DATA2/images, appearance, depth, scenes -> symbolic links to DATA's folders

The ground-truth fields are unchanged, so DATA2 is a valid segan-coco dataset (the extra
fields are ignored by readers that do not know them). This selection is the paper's training
rule (best per object, not one to one); evaluation with predicted S_V uses the one-to-one
matching of `segan.eval.matching` instead (`segan evaluate --visible predicted`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from segan.data import coco

from .matching import best_per_object, mask_iou_matrix

LINKED_FOLDERS = ("images", "appearance", "depth", "scenes")
TRAINING_RULE = ("each annotation's predicted_visible_mask is the prediction (score >= "
                 "score_threshold) with the largest IoU with its ground-truth S_V (paper 5.2); "
                 "null when none overlaps")


def predict_visible(data_dir: str | os.PathLike, segmenter: str | os.PathLike,
                    out_dir: str | os.PathLike, splits: list[str] | None = None,
                    score_threshold: float | None = None, device: str | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Write DATA2 (module docstring); returns {split: counts} and the seconds taken.

    splits: default every DATA/annotations/*.json. score_threshold: default the run's.
    """
    from segan.inference import load_visible_segmenter

    data, out = Path(data_dir), Path(out_dir)
    if out.resolve() == data.resolve():
        raise ValueError(f"--out {out} is the dataset itself: choose another folder (the "
                         "ground-truth annotations are never rewritten)")
    ann_dir = data / "annotations"
    if splits is None:
        splits = sorted(p.stem for p in ann_dir.glob("*.json"))
    if not splits:
        raise FileNotFoundError(f"no annotation files in {ann_dir}")
    for split in splits:
        if not (ann_dir / f"{split}.json").is_file():
            raise FileNotFoundError(f"no annotation file {ann_dir / f'{split}.json'}")
    start = time.perf_counter()
    seg = load_visible_segmenter(segmenter, device)
    if seg.mask_target != "visible":
        raise ValueError(f"{seg.identity['path']}: a detector of {seg.mask_target} masks; "
                         "predict-visible needs a run of configs/visible_maskrcnn.yaml")
    thr = seg.score_threshold if score_threshold is None else float(score_threshold)

    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for name in LINKED_FOLDERS:
        src, dst = (data / name).resolve(), out / name
        if src.is_dir() and not dst.exists():
            dst.symlink_to(src, target_is_directory=True)

    summary: dict[str, Any] = {}
    for split in splits:
        ds = coco.load_annotations(ann_dir / f"{split}.json", root=data)
        counts = {"images": 0, "objects": 0, "with_prediction": 0, "iou_sum": 0.0}
        for iid in tqdm(ds.image_ids, desc=f"predict-visible {split}", unit="img",
                        disable=not progress, dynamic_ncols=True):
            anns = ds.annotations[iid]
            counts["images"] += 1
            if not anns:
                continue
            masks, scores = seg.segment(ds.load_image(iid), thr)
            _, visible, _ = ds.image_masks(iid)
            best, best_iou = best_per_object(mask_iou_matrix(masks, visible))
            for k, ann in enumerate(anns):
                j = int(best[k])
                ann["predicted_visible_mask"] = (coco.encode_mask(masks[j]) if j >= 0
                                                 else None)
                ann["predicted_visible_iou"] = round(float(best_iou[k]) if j >= 0 else 0.0, 6)
                ann["predicted_visible_score"] = (round(float(scores[j]), 6) if j >= 0
                                                  else None)
                counts["objects"] += 1
                counts["with_prediction"] += int(j >= 0)
                counts["iou_sum"] += float(best_iou[k]) if j >= 0 else 0.0
        info = dict(ds.info)
        info["predicted_visible"] = {
            "segmenter": {k: v for k, v in seg.identity.items() if k != "config"},
            "score_threshold": thr, "rule": TRAINING_RULE}
        coco.write_annotations(out / "annotations" / f"{split}.json",
                                      list(ds.images.values()), list(ds.iter_annotations()),
                                      list(ds.categories.values()), info, check=False)
        n = max(counts["objects"], 1)
        summary[split] = {"images": counts["images"], "objects": counts["objects"],
                          "with_prediction": counts["with_prediction"],
                          "mean_iou": round(counts["iou_sum"] / n, 4)}
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def predicted_visible_masks(ds: coco.AmodalDataset, image_id: int) -> np.ndarray:
    """(N, H, W) bool: each annotation's `predicted_visible_mask` (empty where null). Raises
    a clear error for a dataset that `segan predict-visible` did not write."""
    img = ds.images[image_id]
    out = np.zeros((len(ds.annotations[image_id]), img["height"], img["width"]), bool)
    for k, ann in enumerate(ds.annotations[image_id]):
        if "predicted_visible_mask" not in ann:
            raise ValueError(f"{ds.path}: annotation {ann['id']} has no predicted_visible_mask: "
                             "make the dataset with `segan predict-visible`")
        if ann["predicted_visible_mask"] is not None:
            out[k] = coco.decode_mask(ann["predicted_visible_mask"], img["height"],
                                             img["width"])
    return out
