"""How much of each object any mask over its box can reach, for box growths r.

Every segmentor of segan predicts S_F over S_V's box grown by r of its size per side (clipped to
the image; section 5.1). Pixels of S_F outside that box are out of reach whatever the network,
so the share inside is a ceiling. Prints, for each r: the mean share of S_F inside the box (all
objects, and objects more than 25% hidden) and the mean share of S_I inside (occluded objects).

    python scripts/box_growth_ceiling.py DATA [--split train] [--ratios 0.1 0.2 0.3 0.4 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from segan.data import coco
from segan.mask_ops import grown_box_mask


def shares_inside(full: np.ndarray, visible: np.ndarray, ratio: float) -> tuple[float, float]:
    """(|S_F in box| / |S_F|, |S_I in box| / |S_I| or nan) for one object's (H, W) masks, the
    box being S_V's grown by `ratio` per side, clipped to the image."""
    box = grown_box_mask(visible, ratio)
    hidden = full & ~visible
    return ((full & box).sum() / full.sum(),
            (hidden & box).sum() / hidden.sum() if hidden.any() else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--split", default="train")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    a = ap.parse_args()
    ds = coco.load_annotations(Path(a.data) / "annotations" / f"{a.split}.json",
                                      root=a.data)
    rows = {r: [] for r in a.ratios}
    rates = []
    for iid in ds.image_ids:
        full, visible, _ = ds.image_masks(iid)
        for k, ann in enumerate(ds.annotations[iid]):
            rates.append(ann.get("occlude_rate", 0.0))
            for r in a.ratios:
                rows[r].append(shares_inside(full[k], visible[k], r))
    rates = np.asarray(rates)
    print(f"{len(rates)} objects of {a.data} ({a.split}); {(rates > 0).mean():.1%} occluded")
    print("| growth r | S_F inside, all | S_F inside, >25% hidden | S_I inside, occluded |")
    print("|---|---|---|---|")
    for r in a.ratios:
        f, i = np.asarray(rows[r]).T
        print(f"| {r:g} | {100 * f.mean():.1f}% | {100 * f[rates > 0.25].mean():.1f}% | "
              f"{100 * np.nanmean(i[rates > 0]):.1f}% |")


if __name__ == "__main__":
    main()
