"""The visible-instance segmenter's recall and precision at IoU 0.5 over its score threshold,
test size and box NMS, and where its misses are (by the object's visible area): one
segmentation per image, test size and NMS at threshold 0, then every threshold from the same
detections.

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
from segan.eval.inputs import load_split
from segan.eval.matching import MATCH_IOU, match_masks
from segan.inference import load_visible_segmenter

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# visible-area buckets in pixels of the image (share of misses by how little of an object shows)
AREA_EDGES = (0, 100, 400, 1600, 6400, np.inf)


def area_bucket(area: np.ndarray) -> np.ndarray:
    return np.searchsorted(AREA_EDGES, area, side="right") - 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segmenter", required=True, help="bundle folder or segmenter checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-format", default="auto")
    ap.add_argument("--sample", type=int, default=None, help="N images spread over the split")
    ap.add_argument("--test-size", type=int, action="append", default=None,
                    help="the segmenter's test size (repeatable; default: its own)")
    ap.add_argument("--threshold", type=float, action="append", default=None,
                    help="score thresholds (repeatable; default "
                    f"{', '.join(map(str, THRESHOLDS))})")
    ap.add_argument("--nms", type=float, action="append", default=None,
                    help="the box head's class-agnostic NMS IoU (repeatable; default: its own, "
                    "torchvision's 0.5)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="write the table here too")
    args = ap.parse_args(argv)

    seg = load_visible_segmenter(args.segmenter, args.device)
    ds, _, _, ids = load_split(args.data, args.split, args.data_format, sample=args.sample)
    sizes = args.test_size or [seg.test_size]
    thresholds = sorted(args.threshold or THRESHOLDS)
    heads = seg.net.detector.roi_heads
    nms_values = args.nms or [heads.nms_thresh]
    rows, by_area = [], []
    for size, nms in itertools.product(sizes, nms_values):
        seg.set_test_size(size)
        heads.nms_thresh = nms
        objects = 0
        matched = np.zeros(len(thresholds), np.int64)
        predictions = np.zeros(len(thresholds), np.int64)
        per_bucket = np.zeros((len(AREA_EDGES) - 1, 2), np.int64)  # objects, matched at default
        default_k = int(np.argmin(np.abs(np.array(thresholds) - seg.score_threshold)))
        for iid in tqdm(ids, desc=f"segment at {size} px, NMS {nms:g}", unit="img"):
            image = ds.load_image(iid)
            gt = ds.image_masks(iid)[1]
            masks, scores = seg.segment(image, 0.0)
            objects += len(gt)
            buckets = area_bucket(gt.reshape(len(gt), -1).sum(1))
            np.add.at(per_bucket[:, 0], buckets, 1)
            for k, t in enumerate(thresholds):
                keep = scores >= t
                m = match_masks(masks[keep], gt, MATCH_IOU)
                matched[k] += int(m.matched.sum())
                predictions[k] += int(keep.sum())
                if k == default_k:
                    np.add.at(per_bucket[:, 1], buckets[m.matched], 1)
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
                  f"recall {100 * hit / max(n, 1):5.1f}%")
            hi = AREA_EDGES[b + 1]
            by_area.append({"test_size": size, "nms": nms, "threshold": thresholds[default_k],
                            "from_px": AREA_EDGES[b], "to_px": None if np.isinf(hi) else hi,
                            "objects": int(n), "matched": int(hit)})
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
