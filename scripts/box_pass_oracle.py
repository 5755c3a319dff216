"""Which objects the later box passes help, and how much a per-object choice could gain.

Runs a SeGAN model on one split twice, as `segan evaluate` does (ground-truth S_V, S_F in the
image frame after the occluder gate, thresholded at 0.5): with one box pass and with its
config's ``data.box_passes``. Prints, by the share of each object's S_F that is hidden (the
evaluation's occlusion bins), how many objects ran again and their mean change of full IoU;
then the mean full IoU with one pass, with all passes, with the better of the two per object
(the oracle: the ceiling of any rule that picks one of them per object), with a rule that knows
the true hidden share (the later passes only for objects at least 40% hidden), and with a rule
that sees only the prediction: the later passes kept only where the mean S_F probability over
their predicted hidden pixels is at least t. Last, by the same bins, the model with one pass on
the box a perfect amodal-box predictor would give (S_V's box united with the ground-truth S_F's,
grown by ``expand_test``): what better boxes alone could gain.

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
from segan.eval.metrics import (
    OCCLUSION_BINS,
    occlusion_bin_index,
    segmentation_scores,
    threshold,
)
from segan.models.crops import box_union, expand_boxes_per_side
from segan.prediction import MASK_THRESHOLD
from segan.transforms import mask_boxes_in_frame

CONFIDENCES = (0.7, 0.75, 0.8, 0.85, 0.9)
TRUE_HIDDEN_RULE = 0.4


def hidden_confidence(probs: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Per object mean probability over its predicted hidden pixels (S_F >= 0.5 outside S_V;
    0 where there are none): (N, H, W) float, (N, H, W) bool -> (N,)."""
    hidden = (probs >= MASK_THRESHOLD) & ~visible
    return (probs * hidden).sum((1, 2)) / np.maximum(hidden.sum((1, 2)), 1)


def object_rows(first: np.ndarray, last: np.ndarray, gt: np.ndarray, visible: np.ndarray
                ) -> np.ndarray:
    """Per object of one image, as the evaluation scores it: S_F probabilities with one pass
    and with all, ground-truth S_F and S_V, (N, H, W) each -> (N, 4): occlusion rate |S_I| /
    |S_F|, full IoU with one pass, full IoU with all passes, `hidden_confidence` of all."""
    one, every = (segmentation_scores(threshold(p), gt, visible) for p in (first, last))
    return np.stack([np.atleast_1d(one["occlusion_rate"]),
                     np.atleast_1d(one["full_iou/standard"]),
                     np.atleast_1d(every["full_iou/standard"]),
                     hidden_confidence(last, visible)], axis=1)


def amodal_boxes(visible_box: torch.Tensor, full: np.ndarray, batch_column: torch.Tensor,
                 size: int, expand: float) -> torch.Tensor:
    """The boxes of a perfect amodal-box predictor: (N, 4) x1, y1, x2, y2 S_V boxes in the
    S x S frame (S = size), (N, H, W) bool non-empty ground-truth S_F in the original frame and
    (N, 1) the inputs' batch column -> (N, 5) S_V's box u S_F's box, grown by expand per side
    and clipped to the frame."""
    fbox = mask_boxes_in_frame(torch.from_numpy(np.asarray(full, bool)), size)
    xyxy = expand_boxes_per_side(box_union(visible_box, fbox), expand, size)
    return torch.cat([batch_column.to(xyxy.dtype), xyxy], dim=1)


def main(argv: list[str] | None = None) -> int:
    args = segan_split_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    method, cfg, ds, ids = segan_on_split(args)
    one = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, box_passes=1))
    rows = []  # per image: `object_rows`
    with torch.inference_mode():
        for iid in tqdm(ids, desc="box passes", unit="img"):
            inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
            gt = np.asarray(inputs.full, dtype=bool)
            visible = np.asarray(inputs.visible, dtype=bool)
            method.cfg = one
            first = method(inputs).full_probs.float().numpy()
            method.cfg = cfg
            last = method(inputs).full_probs.float().numpy()
            boxed = dataclasses.replace(inputs, boxes=amodal_boxes(
                inputs.visible_box, gt, inputs.boxes[:, :1], cfg.data.image_size,
                cfg.data.expand_test))
            method.cfg = one
            amodal = method(boxed).full_probs.float().numpy()
            on_amodal = segmentation_scores(threshold(amodal), gt, visible)["full_iou/standard"]
            rows.append(np.concatenate([object_rows(first, last, gt, visible),
                                        np.atleast_1d(on_amodal)[:, None]], axis=1))
    method.cfg = cfg
    r = np.concatenate(rows) if rows else np.zeros((0, 5))
    hidden, first, last, conf, on_amodal = r.T
    again = np.abs(last - first) > 1e-9
    print(f"\n{len(ids)} images, {len(r)} objects, {int(again.sum())} changed by passes 2-"
          f"{cfg.data.box_passes}\n")
    print("| hidden share | objects changed | mean change of their full IoU |\n|---|---|---|")
    bins = occlusion_bin_index(hidden)  # the evaluation's bins (segmentation_by_occlusion)
    for b, (name, _, _) in enumerate(OCCLUSION_BINS):
        m = again & (bins == b)
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
    names = [name for name, _, _ in OCCLUSION_BINS]
    print("\n| boxes | full IoU % | " + " | ".join(names) + " |\n|" + "---|" * (len(names) + 2))
    for name, iou in {"S_V's box, 1 pass": first,
                      f"S_V's box, {cfg.data.box_passes} passes": last,
                      "the true amodal box, 1 pass": on_amodal}.items():
        by_bin = [f"{100 * iou[bins == b].mean():.2f}" if (bins == b).any() else "–"
                  for b in range(len(names))]
        print(f"| {name} | {100 * iou.mean():.2f} | " + " | ".join(by_bin) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
