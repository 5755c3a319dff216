"""Which arm of a quality run to ship: the one with the largest mean full-IoU margin over
visible_as_full on the out-of-domain test sets (issue 12: recipes are chosen out of domain).

    python benchmarks/pick_arm.py OUT/eval compact compact_plusfam    # prints the arm

EVAL holds one folder per test set (`scripts/quality_run.sh`'s OUT/eval/<set>/results.json);
the in-domain ones (``diverse``, ``dyce`` and their ``_pred`` runs) are left out, and so are
evaluations with predicted S_V. Ties and arms without scores keep the first arm named.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

IN_DOMAIN = ("diverse", "dyce")
KEY = "full_iou/standard/mean_all"


def ood_margins(eval_dir: Path, arms: list[str]) -> dict[str, float]:
    """Each arm's mean over the out-of-domain sets of (its full IoU - visible_as_full's); NaN
    for an arm missing from every set."""
    sums = dict.fromkeys(arms, 0.0)
    counts = dict.fromkeys(arms, 0)
    for path in sorted(eval_dir.glob("*/results.json")):
        name = path.parent.name
        if name.removesuffix("_pred") in IN_DOMAIN or name.endswith("_pred"):
            continue
        methods = json.loads(path.read_text())["methods"]
        floor = (methods.get("visible_as_full") or {}).get("segmentation") or {}
        if KEY not in floor:
            continue
        for arm in arms:
            seg = (methods.get(f"segan@{arm}") or {}).get("segmentation") or {}
            if KEY in seg:
                sums[arm] += seg[KEY] - floor[KEY]
                counts[arm] += 1
    return {a: sums[a] / counts[a] if counts[a] else math.nan for a in arms}


def pick(margins: dict[str, float]) -> str:
    arms = list(margins)
    best = arms[0]
    for arm in arms[1:]:
        if not math.isnan(margins[arm]) and (math.isnan(margins[best])
                                             or margins[arm] > margins[best]):
            best = arm
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("arms", nargs="+")
    args = ap.parse_args(argv)
    margins = ood_margins(args.eval_dir, args.arms)
    for arm, m in margins.items():
        print(f"{arm}: out-of-domain full IoU margin {100 * m:+.2f}", file=sys.stderr)
    print(pick(margins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
