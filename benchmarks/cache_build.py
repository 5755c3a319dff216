"""The training cache's decoding cost per image: each object resized over its patch only
(`segan.train.cache.render_patches`, what the cache builds with) against the whole frame of
every object resized, then cut to the patches (`render_image`, the build before it).

    python benchmarks/cache_build.py --data DIR [--split train] [--images 40] \
        [--config configs/segan_recommended.yaml]

Both run in this process on one torch thread (a cache build's pool worker has one) over the
same first --images images of the split, with the config's image size, expand_max and amodal
boxes; the bytes of the two are compared. --build-workers N also times the whole split's
cache build (`build_cache` with N worker processes, into a temporary folder on the same disk
as the system's temp dir). Prints a table and appends it to docs/benchmarks.md with the
machine, command and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchdoc import append_section
from segan.config import load_config
from segan.data import coco
from segan.train.cache import (
    annotation_path,
    build_cache,
    build_index,
    render_image,
    render_patches,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a segan dataset")
    ap.add_argument("--split", default="train")
    ap.add_argument("--images", type=int, default=40, help="first N images of the split")
    ap.add_argument("--config", type=Path,
                    default=Path(__file__).resolve().parents[1] / "configs" /
                    "segan_recommended.yaml")
    ap.add_argument("--build-workers", type=int, default=0,
                    help="also time the whole split's cache build with N processes")
    ap.add_argument("--no-append", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args()

    torch.set_num_threads(1)
    cfg = load_config(args.config).data
    ds = coco.load_annotations(annotation_path(args.data, args.split), check=False,
                               root=args.data)
    index = build_index(ds, cfg.image_size, cfg.expand_max, cfg.amodal_box_share > 0)
    S, starts = cfg.image_size, index["obj_start"]
    ids = list(range(min(args.images, len(index["image_ids"]))))
    n_obj = int(starts[ids[-1] + 1])
    for i in ids[:2]:  # warm-up: imports, the first files' page cache
        render_patches(ds, int(index["image_ids"][i]), S,
                       index["patch_xywh"][starts[i]:starts[i + 1]])

    t0 = time.perf_counter()
    windowed = [render_patches(ds, int(index["image_ids"][i]), S,
                               index["patch_xywh"][starts[i]:starts[i + 1]]) for i in ids]
    t_window = (time.perf_counter() - t0) / len(ids)
    t0 = time.perf_counter()
    whole = [render_image(ds, int(index["image_ids"][i]), S) for i in ids]
    t_whole = (time.perf_counter() - t0) / len(ids)

    differ = total = worst = 0
    for i, (_, _, patches), (_, planes) in zip(ids, windowed, whole, strict=True):
        for k, patch in enumerate(patches):
            x0, y0, w, h = index["patch_xywh"][starts[i] + k]
            ref = planes[k, :, y0:y0 + h, x0:x0 + w].transpose(1, 2, 0).astype(np.int16)
            d = np.abs(patch.astype(np.int16) - ref)
            differ, total = differ + int((d > 0).sum()), total + d.size
            worst = max(worst, int(d.max()))
    rows = [("whole frame per object, then cut (`render_image`, before)", t_whole),
            ("patch per object (`render_patches`, the cache's build)", t_window)]
    lines = ["| decoding | ms per image | ratio to whole frame |", "|---|---|---|"]
    lines += [f"| {name} | {t * 1e3:.0f} | {t / t_whole:.2f} |" for name, t in rows]
    table = "\n".join(lines)
    if args.build_workers:
        tmp = Path(tempfile.mkdtemp(prefix="segan-cachebench-"))
        try:
            t0 = time.perf_counter()
            build_cache(args.data, args.split, S, cfg.expand_max, tmp / "cache",
                        workers=args.build_workers, amodal_boxes=cfg.amodal_box_share > 0)
            build_s = time.perf_counter() - t0
            gb = sum(p.stat().st_size for p in (tmp / "cache").iterdir()) / 1e9
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        n_images = len(index["image_ids"])
        table += (f"\n\nWhole split, `build_cache` with {args.build_workers} processes: "
                  f"{n_images} images, {len(index['ann_ids'])} objects, {gb:.1f} GB in "
                  f"{build_s:.0f} s ({build_s / n_images * 1e3:.0f} ms per image).")
    print(table)
    notes = (f"Data: `{args.data}` split {args.split}, its first {len(ids)} images ({n_obj} "
             f"objects), image_size {S}, expand_max {cfg.expand_max}, amodal boxes "
             f"{cfg.amodal_box_share > 0} (`{args.config.name}`); one torch thread. The patches' "
             f"bytes: {differ} of {total} differ ({differ / max(total, 1):.1e}), by at most "
             f"{worst} grey level.")
    print(notes)
    if not args.no_append:
        append_section("Training cache decoding", f"{platform.machine()}, {os.cpu_count()} cores",
                       notes, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
