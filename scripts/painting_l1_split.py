"""Where a model's painting L1 (Table 2) comes from: the ground-truth S_F pixels of each object's
crop split into S_V pixels, hidden pixels that the predicted S_F covers, and hidden pixels that
it misses; and the floor of copying the image itself over S_V, the same way.

    python scripts/painting_l1_split.py --checkpoint src/segan/weights --data /tmp/dval \
        --split val --sample 16

Pixels are those of the evaluation (`segan.eval.inputs.prepare_image`: the painter's c x c crop
of each box, in the S x S frame), pooled over the crops, so each object weighs by its crop, not
by its size in the image; the "all" row is `segan evaluate`'s L1 on the same images.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from segan.eval.builtin_methods import segan_on_split, segan_split_parser
from segan.eval.inputs import prepare_image
from segan.models.crops import crop_object_masks

PARTS = ("S_V", "S_I covered by predicted S_F", "S_I missed by predicted S_F", "all of S_F")


def main(argv: list[str] | None = None) -> int:
    args = segan_split_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    method, cfg, ds, ids = segan_on_split(args)
    mean = torch.tensor(cfg.data.image_mean)[:, None, None]
    std = torch.tensor(cfg.data.image_std)[:, None, None]
    err_sum = dict.fromkeys(PARTS, 0.0)
    count = dict.fromkeys(PARTS, 0)
    copy_sum, copy_count = 0.0, 0
    for iid in tqdm(ids, desc="paint", unit="img"):
        inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
        out = method(inputs)
        c = inputs.target.shape[-1]
        boxes = inputs.boxes
        n = len(inputs.ann_ids)
        visible = crop_object_masks(inputs.visible_masks, boxes, c) >= 0.5
        full = inputs.full_crop >= 0.5
        predicted = out.box_full >= 0.5
        scored = torch.from_numpy(inputs.has_appearance)[:, None, None, None]
        error = (out.painted - inputs.target).abs().mean(1, keepdim=True)
        for part, sel in zip(PARTS, (full & visible, full & ~visible & predicted,
                                     full & ~visible & ~predicted, full), strict=True):
            sel = sel & scored
            err_sum[part] += float(error[sel].sum())
            count[part] += int(sel.sum())
        # the image the network sees (S x S, de-normalised), cropped like the target
        image = (inputs.images[0] * std + mean).clamp(0, 1)[None].expand(n, -1, -1, -1)
        copied = (crop_object_masks(image.contiguous(), boxes, c) - inputs.target).abs().mean(
            1, keepdim=True)
        sel = full & visible & scored
        copy_sum += float(copied[sel].sum())
        copy_count += int(sel.sum())
    total_err, total = err_sum[PARTS[-1]], count[PARTS[-1]]
    print(f"\n{len(ids)} images\n\n| pixels | share of S_F pixels | mean L1 | share of the L1 |\n"
          "|---|---|---|---|")
    for part in PARTS:
        print(f"| {part} | {100 * count[part] / max(total, 1):.1f}% | "
              f"{err_sum[part] / max(count[part], 1):.3f} | "
              f"{100 * err_sum[part] / max(total_err, 1e-12):.1f}% |")
    print(f"| the image copied over S_V (floor of copying) | – | "
          f"{copy_sum / max(copy_count, 1):.3f} | – |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
