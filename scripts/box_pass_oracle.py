"""Which objects the later box passes help, and how much a per-object choice could gain.

Runs a SeGAN model on one split twice, as `segan evaluate` does (ground-truth S_V, S_F in the
image frame after the occluder gate, thresholded at 0.5): with one box pass and with its
config's ``data.box_passes``. Prints, by the share of each object's S_F that is hidden, how many
objects ran again and their mean change of full IoU; then the mean full IoU with one pass, with
all passes, with the better of the two per object (the oracle: the ceiling of any rule that
picks one of them per object), with a rule that knows the true hidden share (the later passes
only for objects at least 40% hidden), and with a rule that sees only the prediction: the
later passes kept only where the mean S_F probability over their predicted hidden pixels is
at least t.

    python scripts/box_pass_oracle.py --checkpoint src/segan/weights --data /tmp/ood_cpu \
        --split test --sample 100
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from segan.eval.builtin_methods import segan_on_split, segan_split_parser
from segan.eval.inputs import prepare_image
from segan.prediction import MASK_THRESHOLD

HIDDEN_BINS = ((0.0, 1e-9, "0%"), (1e-9, 0.25, "0-25%"), (0.25, 0.5, "25-50%"),
               (0.5, 1.01, "> 50%"))
CONFIDENCES = (0.7, 0.75, 0.8, 0.85, 0.9)
TRUE_HIDDEN_RULE = 0.4


def full_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per object IoU of (N, H, W) bool masks (1 where both are empty)."""
    inter, union = (pred & gt).sum((1, 2)), (pred | gt).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def hidden_confidence(probs: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Per object mean probability over its predicted hidden pixels (S_F >= 0.5 outside S_V;
    0 where there are none): (N, H, W) float, (N, H, W) bool -> (N,)."""
    hidden = (probs >= MASK_THRESHOLD) & ~visible
    return (probs * hidden).sum((1, 2)) / np.maximum(hidden.sum((1, 2)), 1)


def main(argv: list[str] | None = None) -> int:
    args = segan_split_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    method, cfg, ds, ids = segan_on_split(args)
    one = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, box_passes=1))
    rows = []  # per object: true hidden share, IoU one pass, IoU all passes, confidence
    with torch.inference_mode():
        for iid in tqdm(ids, desc="box passes", unit="img"):
            inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
            gt = np.asarray(inputs.full, dtype=bool)
            visible = np.asarray(inputs.visible, dtype=bool)
            method.cfg = one
            first = method(inputs).full_probs.float().numpy()
            method.cfg = cfg
            last = method(inputs).full_probs.float().numpy()
            hidden = 1 - visible.sum((1, 2)) / np.maximum(gt.sum((1, 2)), 1)
            rows += zip(hidden, full_iou(first >= MASK_THRESHOLD, gt),
                        full_iou(last >= MASK_THRESHOLD, gt), hidden_confidence(last, visible),
                        strict=True)
    r = np.array(rows, dtype=np.float64).reshape(-1, 4)
    hidden, first, last, conf = r.T
    again = np.abs(last - first) > 1e-9
    print(f"\n{len(ids)} images, {len(r)} objects, {int(again.sum())} changed by passes 2-"
          f"{cfg.data.box_passes}\n")
    print("| hidden share | objects changed | mean change of their full IoU |\n|---|---|---|")
    for lo, hi, name in HIDDEN_BINS:
        m = again & (hidden >= lo) & (hidden < hi)
        change = f"{100 * (last[m] - first[m]).mean():+.2f}" if m.any() else "–"
        print(f"| {name} | {int(m.sum())} | {change} |")
    choices = {"1 pass": first, f"{cfg.data.box_passes} passes": last,
               "oracle (the better per object)": np.maximum(first, last),
               f"later passes if truly >= {TRUE_HIDDEN_RULE:.0%} hidden":
                   np.where(hidden >= TRUE_HIDDEN_RULE, last, first)}
    for t in CONFIDENCES:
        choices[f"later passes if their hidden confidence >= {t}"] = np.where(conf >= t, last,
                                                                               first)
    print("\n| choice | full IoU % (mean over objects) |\n|---|---|")
    for name, iou in choices.items():
        print(f"| {name} | {100 * iou.mean():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
