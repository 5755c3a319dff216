"""The visible-instance segmenter's recall and precision at IoU 0.5 over its score threshold,
test size and box NMS, and where its misses are (by the object's visible area) and why: one
segmentation per image, test size and NMS at threshold 0, then every threshold from the same
detections. A test size of several sizes (500+1100) merges their detections greedily by score
(`VisibleSegmenter.set_test_sizes`); thresholding after the merge keeps what merging the
detections above the threshold keeps (a mask is only dropped by a higher-scored kept one).

Why an object is missed at the segmenter's own threshold (`miss_reasons`, first that applies):
"taken": a kept mask overlaps it at IoU >= 0.5 but was matched to another object (a merge or
a duplicate pair); "low score": a mask of a lower score has IoU >= 0.5 with it; "mask off": a
detection's box has IoU >= 0.5 with its box, but no mask reaches IoU 0.5; "not found": none.

And where SeGAN's occluder gate lets the found objects' hidden parts lie (`hidden_under_others`):
the share of the matched objects' hidden pixels (ground-truth S_F minus S_V) under another
kept mask, against under another object's ground-truth S_V. A hidden pixel under no given
mask is one the gate (`model.occluder_gate`) never predicts.

    python scripts/segmenter_pr.py --segmenter src/segan/weights --data /tmp/dval --split val \
        --test-size 500 --test-size 800 --sample 60 --json pr.json

Recall and precision are `segan evaluate --visible predicted`'s (`segan.eval.image_methods`:
greedy one-to-one matching at IoU >= 0.5 of the masks kept at that threshold).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segan.data.atomic import write_bytes_atomic
from segan.eval.inputs import add_split_arguments, load_split
from segan.eval.matching import MATCH_IOU, mask_iou_matrix, match_greedy
from segan.inference import load_visible_segmenter
from segan.models.visible_segmenter import DEFAULT_MERGE_IOU

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# visible-area buckets in pixels of the image (share of misses by how little of an object shows)
AREA_EDGES = (0, 100, 400, 1600, 6400, np.inf)


MISS_REASONS = ("taken", "low score", "mask off", "not found")


def _sizes(text: str) -> tuple[int, ...]:
    """"800" -> (800,); "500+1100" -> (500, 1100)."""
    try:
        return tuple(int(v) for v in text.split("+"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PIXELS or PIXELS+PIXELS..., got {text!r}"
                                         ) from None


def area_bucket(area: np.ndarray) -> np.ndarray:
    return np.searchsorted(AREA_EDGES, area, side="right") - 1


def miss_reasons(mask_iou: np.ndarray, box_iou: np.ndarray, kept: np.ndarray,
                 matched: np.ndarray) -> np.ndarray:
    """For each object missed at the threshold, the index in MISS_REASONS of why (see the
    module docstring). mask_iou, box_iou: (P, G) over every detection (any score); kept: (P,)
    bool, score >= the threshold; matched: (G,) bool, the objects matched at it."""
    hit = mask_iou >= MATCH_IOU
    reasons = np.full(mask_iou.shape[1], len(MISS_REASONS) - 1, np.int64)
    reasons[(box_iou >= MATCH_IOU).any(0)] = 2
    reasons[hit[~kept].any(0)] = 1
    reasons[hit[kept].any(0)] = 0
    return reasons[~matched]


def hidden_under_others(hidden: np.ndarray, given: np.ndarray) -> tuple[int, int]:
    """(hidden pixels under another thing's given mask, all hidden pixels) of N objects.
    hidden: (N, H, W) bool, each object's hidden part; given: (M >= N, H, W) bool, the masks
    given to SeGAN: row k < N is object k's own (not counted for it), every row counts for the
    other objects (rows from N on: things that are not scored, e.g. unmatched predictions)."""
    n = len(hidden)
    if n == 0:
        return 0, 0
    counts = given.sum(0, dtype=np.int64)  # how many given masks cover each pixel
    under = 0
    for k in range(n):
        others = counts - given[k] > 0
        under += int((hidden[k] & others).sum())
    return under, int(hidden.sum())


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """(N, 4) x1 y1 x2 y2 boxes around (N, H, W) bool masks (torchvision's rule; empty: 0)."""
    import torch
    from torchvision.ops import masks_to_boxes

    return masks_to_boxes(torch.from_numpy(masks)).numpy() if len(masks) else np.zeros((0, 4))


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import torch
    from torchvision.ops import box_iou

    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return box_iou(torch.from_numpy(a).double(), torch.from_numpy(b).double()).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segmenter", required=True, help="bundle folder or segmenter checkpoint")
    add_split_arguments(ap)
    ap.add_argument("--test-size", type=_sizes, action="append", default=None,
                    help="the segmenter's test size (repeatable; default: its own), or several "
                    "joined by + (e.g. 500+1100: it runs at each and merges the detections, "
                    "VisibleSegmenter.set_test_sizes)")
    ap.add_argument("--merge-iou", type=float, default=None,
                    help="with several sizes, a detection is a duplicate above this mask IoU "
                    f"(default: the segmenter's, else {DEFAULT_MERGE_IOU})")
    ap.add_argument("--threshold", type=float, action="append", default=None,
                    help="score thresholds (repeatable; default "
                    f"{', '.join(map(str, THRESHOLDS))})")
    ap.add_argument("--nms", type=float, action="append", default=None,
                    help="the box head's class-agnostic NMS IoU (repeatable; default: its own, "
                    "torchvision's 0.5)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--json", type=Path, default=None, help="write the table here too")
    args = ap.parse_args(argv)

    seg = load_visible_segmenter(args.segmenter, args.device)
    ds, _, _, ids = load_split(args.data, args.split, args.data_format, sample=args.sample)
    sizes = args.test_size or [seg.test_sizes]
    thresholds = sorted(args.threshold or THRESHOLDS)
    heads = seg.net.detector.roi_heads
    nms_values = args.nms or [heads.nms_thresh]
    rows, by_area = [], []
    for size, nms in itertools.product(sizes, nms_values):
        seg.set_test_sizes(size, seg.merge_iou if args.merge_iou is None else args.merge_iou)
        size = size[0] if len(size) == 1 else "+".join(map(str, size))  # for the table
        heads.nms_thresh = nms
        objects = 0
        matched = np.zeros(len(thresholds), np.int64)
        predictions = np.zeros(len(thresholds), np.int64)
        per_bucket = np.zeros((len(AREA_EDGES) - 1, 2), np.int64)  # objects, matched at default
        default_k = int(np.argmin(np.abs(np.array(thresholds) - seg.score_threshold)))
        why = np.zeros((len(AREA_EDGES) - 1, len(MISS_REASONS)), np.int64)
        hidden_px = np.zeros(3, np.int64)  # under found masks, under ground-truth S_V, all
        for iid in tqdm(ids, desc=f"segment at {size} px, NMS {nms:g}", unit="img"):
            image = ds.load_image(iid)
            _, gt, hidden = ds.image_masks(iid)
            masks, scores = seg.segment(image, 0.0)
            objects += len(gt)
            buckets = area_bucket(gt.reshape(len(gt), -1).sum(1))
            np.add.at(per_bucket[:, 0], buckets, 1)
            iou = mask_iou_matrix(masks, gt)  # every detection: each threshold takes its rows
            for k, t in enumerate(thresholds):
                keep = scores >= t
                m = match_greedy(iou[keep], MATCH_IOU)  # = match_masks(masks[keep], gt)
                matched[k] += int(m.matched.sum())
                predictions[k] += int(keep.sum())
                if k == default_k:
                    np.add.at(per_bucket[:, 1], buckets[m.matched], 1)
                    reasons = miss_reasons(iou, box_iou_matrix(boxes_of(masks), boxes_of(gt)),
                                           keep, m.matched)
                    np.add.at(why, (buckets[~m.matched], reasons), 1)
                    ok = m.matched  # the found objects, each given its matched mask first
                    found = masks[keep]
                    order = np.r_[m.pred_of_object[ok], m.false_positives]
                    under, total = hidden_under_others(hidden[ok], found[order])
                    under_gt, _ = hidden_under_others(hidden[ok], gt[np.r_[np.flatnonzero(ok),
                                                                          np.flatnonzero(~ok)]])
                    hidden_px += (under, under_gt, total)
        for k, t in enumerate(thresholds):
            rows.append({"test_size": size, "nms": nms, "threshold": t, "objects": objects,
                         "recall": matched[k] / max(objects, 1),
                         "precision": matched[k] / max(predictions[k], 1),
                         "predictions": int(predictions[k])})
        print(f"\ntest size {size} px, NMS {nms:g}, {len(ids)} images, {objects} objects; "
              f"recall by visible area at threshold {thresholds[default_k]:g}:")
        for b in range(len(AREA_EDGES) - 1):
            n, hit = per_bucket[b]
            print(f"  {AREA_EDGES[b]:>6g}-{AREA_EDGES[b + 1]:<6g} px: {n:5d} objects, "
                  f"recall {100 * hit / max(n, 1):5.1f}%; missed: "
                  + ", ".join(f"{r} {c}" for r, c in zip(MISS_REASONS, why[b], strict=True)))
            hi = AREA_EDGES[b + 1]
            by_area.append({"test_size": size, "nms": nms, "threshold": thresholds[default_k],
                            "from_px": AREA_EDGES[b], "to_px": None if np.isinf(hi) else hi,
                            "objects": int(n), "matched": int(hit),
                            "missed_by_reason": dict(zip(MISS_REASONS, map(int, why[b]),
                                                         strict=True))})
        print(f"  hidden pixels of the found objects under another found mask: "
              f"{100 * hidden_px[0] / max(hidden_px[2], 1):.1f}% (under another object's "
              f"ground-truth S_V: {100 * hidden_px[1] / max(hidden_px[2], 1):.1f}%; "
              f"{hidden_px[2]} pixels)")
        total = why.sum(0)
        print("  missed, all sizes: " + ", ".join(
            f"{r} {c} ({100 * c / max(total.sum(), 1):.0f}%)"
            for r, c in zip(MISS_REASONS, total, strict=True)))
    print("\n| test size | NMS | threshold | recall % | precision % | predictions |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['test_size']} | {r['nms']:g} | {r['threshold']:g} | {100 * r['recall']:.1f} | "
              f"{100 * r['precision']:.1f} | {r['predictions']} |")
    if args.json is not None:
        doc = {"command": " ".join(sys.argv), "rows": rows, "recall_by_visible_area": by_area}
        write_bytes_atomic(args.json, json.dumps(doc, indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
