"""Where a model's hidden parts S_I fall short, by how much of each object is hidden: per
occlusion bin (the share of the true S_F that is hidden), pooled over the bin's objects, the
predicted S_I's precision and recall against the true S_I, the median ratio of their areas, the
share of the true S_I that the occluder gate allows (under another object's given S_V) and the
share inside S_V's box grown by r per side (the segmentor's crop at `expand_test` r).

    python scripts/hidden_by_occlusion.py --checkpoint src/segan/weights --data /tmp/ood_cpu \
        --split test --sample 100

Ground-truth S_V (the model's input) and the evaluation's forward (`segan evaluate`'s `segan`
method: S_F in the image frame, after the occluder gate, >= 0.5). Objects nothing hides are
left out. The box is grown in the image frame; the model grows it in its S x S frame, which
rounds differently by under a pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from segan.eval.builtin_methods import segan_on_split, segan_split_parser
from segan.eval.inputs import prepare_image
from segan.mask_ops import grown_box_mask
from segan.prediction import MASK_THRESHOLD

BINS = ((0.0, 0.25), (0.25, 0.5), (0.5, 1.0))  # hidden share of S_F: (from, to]
BOX_RATIOS = (0.2, 0.4, 0.6)


def hidden_counts(pred_full: np.ndarray, full: np.ndarray, visible: np.ndarray,
                  given_visible: np.ndarray, box_ratios: tuple[float, ...] = BOX_RATIOS
                  ) -> list[dict[str, float]]:
    """One record per hidden object of one image: its hidden share of S_F, the pixel counts of
    true / predicted S_I, their intersection, the true S_I under the other objects' given S_V,
    and inside each grown box. pred_full, full, visible, given_visible: (N, H, W) bool (the
    predicted S_I is pred_full minus the given S_V)."""
    others = given_visible.any(0)[None] & ~given_visible
    records = []
    for k in range(len(full)):
        true_si = full[k] & ~visible[k]
        n_true, n_full = int(true_si.sum()), int(full[k].sum())
        if n_true == 0:
            continue
        pred_si = pred_full[k] & ~given_visible[k]
        rec = {"hidden": n_true / n_full, "true": n_true, "pred": int(pred_si.sum()),
               "hit": int((true_si & pred_si).sum()),
               "gate": int((true_si & others[k]).sum())}
        for r in box_ratios:
            rec[f"box{r}"] = int((true_si & grown_box_mask(given_visible[k], r)).sum())
        records.append(rec)
    return records


def table(records: list[dict[str, float]], box_ratios: tuple[float, ...] = BOX_RATIOS) -> str:
    """The markdown table of `hidden_counts`' records, a row per bin of `BINS`."""
    boxes = " / ".join(f"{r:g}" for r in box_ratios)
    lines = ["| hidden share of S_F | objects | S_I precision % | S_I recall % | median predicted"
             f" / true S_I area | true S_I the gate allows % | true S_I inside the {boxes} box % |",
             "|---|---|---|---|---|---|---|"]
    for lo, hi in BINS:
        rows = [r for r in records if lo < r["hidden"] <= hi]
        true = sum(r["true"] for r in rows)
        pred = sum(r["pred"] for r in rows)
        hit = sum(r["hit"] for r in rows)
        ratio = float(np.median([r["pred"] / r["true"] for r in rows])) if rows else float("nan")
        inside = " / ".join(f"{100 * sum(r[f'box{b}'] for r in rows) / max(true, 1):.1f}"
                            for b in box_ratios)
        lines.append(f"| {lo:.0%}-{hi:.0%} | {len(rows)} | {100 * hit / max(pred, 1):.1f} | "
                     f"{100 * hit / max(true, 1):.1f} | {ratio:.2f} | "
                     f"{100 * sum(r['gate'] for r in rows) / max(true, 1):.1f} | {inside} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = segan_split_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    method, cfg, ds, ids = segan_on_split(args)
    records: list[dict[str, float]] = []
    with torch.inference_mode():
        for iid in tqdm(ids, desc="hidden parts", unit="img"):
            inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
            pred = method(inputs).full_probs.float().numpy() >= MASK_THRESHOLD
            records += hidden_counts(pred, inputs.full >= MASK_THRESHOLD,
                                     inputs.visible >= MASK_THRESHOLD, inputs.input_visible)
    print(f"{args.data}, split {args.split}: {len(records)} hidden objects in {len(ids)} images")
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
