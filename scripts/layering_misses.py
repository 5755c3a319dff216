"""Why a model's depth layering (Table 5, "GT: 5% rule") misses the pairs it misses: each
ground-truth pair (q, p), "q occludes p", by how clearly the ground truth passes the 5% rule
(IoU(S_V_q, ground-truth S_I_p)), whether the prediction lacks the pair or also holds the
reverse, and how often the predicted S_I_p does not reach under q at all; then layering
accuracy and pair precision with S_I thresholded lower than the masks' 0.5.

    python scripts/layering_misses.py --checkpoint src/segan/weights --data /tmp/div_cpu \
        --split test --sample 100

Ground-truth S_V (the model's input), the evaluation's forward (`segan evaluate`'s `segan`
method: S_F in the image frame, after the occluder gate) and its rules
(`segan.eval.metrics.occlusion_overlaps`, the 5% rule, `layering_accuracy`); the 0.5 row is the
evaluation's "layering (GT: 5% rule)" on the same images. Pair precision: the share of
predicted pairs that are ground-truth pairs (the accuracy itself does not count extra pairs).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from segan.eval.builtin_methods import segan_on_split, segan_split_parser
from segan.eval.inputs import prepare_image
from segan.eval.metrics import LayeringMeter, occlusion_overlaps
from segan.layering import LAYERING_THRESHOLD, pairs_from_iou

# buckets of the ground truth's own IoU(S_V_q, S_I_p): how far above the 5% rule a pair is
GT_IOU_EDGES = (LAYERING_THRESHOLD, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
S_I_THRESHOLDS = (0.5, 0.4, 0.3, 0.2)


def main(argv: list[str] | None = None) -> int:
    args = segan_split_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    method, cfg, ds, ids = segan_on_split(args)
    meters = {t: LayeringMeter() for t in S_I_THRESHOLDS}
    predicted = dict.fromkeys(S_I_THRESHOLDS, 0)
    true = dict.fromkeys(S_I_THRESHOLDS, 0)
    rows = []  # per ground-truth pair: gt IoU, found, reversed, predicted S_I under q empty
    with torch.inference_mode():
        for iid in tqdm(ids, desc="layering", unit="img"):
            inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
            probs = method(inputs).full_probs.float().numpy()
            ids_ = inputs.ann_ids
            # the ground truth's pairs as `ground_truth_pairs_5pct` makes them, with their IoU
            gt_iou, _ = occlusion_overlaps(inputs.visible, inputs.full)
            gt = {(ids_[q], ids_[p]) for q, p in pairs_from_iou(gt_iou)}
            for t in S_I_THRESHOLDS:
                iou, inter = occlusion_overlaps(inputs.input_visible, probs >= t)
                pairs = {(ids_[q], ids_[p]) for q, p in pairs_from_iou(iou)}
                meters[t].add(pairs, gt)
                predicted[t] += len(pairs)
                true[t] += len(pairs & gt)
                if t == 0.5:  # the masks' threshold: the evaluation's pairs
                    found, pred_inter = pairs, inter
            index = {a: k for k, a in enumerate(ids_)}
            for q, p in gt:
                rows.append((gt_iou[index[q], index[p]], (q, p) in found and (
                    (p, q) not in found or (p, q) in gt), (p, q) in found and (p, q) not in gt,
                    pred_inter[index[q], index[p]] == 0))
    r = np.array(rows, dtype=np.float64).reshape(-1, 4)
    print(f"\n{len(ids)} images, {len(r)} ground-truth pairs (5% rule)\n")
    print("| ground truth's IoU(S_V_q, S_I_p) | pairs | found % | missed, the reverse (p, q) "
          "predicted | missed, predicted S_I_p not under q at all |\n|---|---|---|---|---|")
    for lo, hi in zip(GT_IOU_EDGES[:-1], GT_IOU_EDGES[1:], strict=True):
        m = (r[:, 0] > lo) & (r[:, 0] <= hi)
        missed = m & (r[:, 1] == 0)
        share = 100 * r[m, 1].mean() if m.any() else 0.0
        reverse, nothing = (int((missed & (r[:, c] == 1)).sum()) for c in (2, 3))
        print(f"| {lo:.3f}-{hi:.3f} | {int(m.sum())} | {share:.1f} | {reverse} | {nothing} |")
    print("\n| S_I threshold | layering (GT: 5% rule) % | predicted pairs | pair precision % |\n"
          "|---|---|---|---|")
    for t in S_I_THRESHOLDS:
        acc = meters[t].compute()["layering_accuracy/mean_images"]
        print(f"| {t} | {100 * acc:.2f} | {predicted[t]} | "
              f"{100 * true[t] / max(predicted[t], 1):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
