"""How much of the hidden parts lies under another annotated object's visible pixels: the premise
of SeGAN's occluder gate (`model.occluder_gate`, docs/training.md).

    python scripts/hidden_under_others.py DATA [DATA ...] [--split test]

For each dataset, over every object of the split: the hidden pixels S_I = S_F - S_V, and how many
of them lie in U - S_V (U: the union of the image's visible masks). The rest are hidden by
something without a mask (the room, an unannotated object). Prints one line per dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def hidden_under_others(full: np.ndarray, visible: np.ndarray) -> tuple[int, int]:
    """(hidden pixels, hidden pixels under another object's visible ones) of one image's
    objects: full, visible (N, H, W) bool."""
    hidden = full & ~visible  # own S_V excluded, so the union below is the other objects'
    return int(hidden.sum()), int((hidden & visible.any(axis=0)[None]).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    from segan.data.coco import load_annotations

    for data in args.data:
        ds = load_annotations(data / "annotations" / f"{args.split}.json", root=data)
        total = under = 0
        for iid in ds.image_ids:
            full, visible = ds.image_masks(iid)[:2]
            t, u = hidden_under_others(np.asarray(full, bool), np.asarray(visible, bool))
            total, under = total + t, under + u
        share = under / total if total else float("nan")
        print(f"{data} ({args.split}): {under} of {total} hidden pixels under another object's "
              f"visible pixels ({100 * share:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
