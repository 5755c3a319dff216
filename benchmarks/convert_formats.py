"""Conversion speed of the format readers (segan.data.formats) on synthetic data at real sizes.

    python benchmarks/convert_formats.py [--images 40] [--objects 8] [--formats kins cocoa dyce]

Writes, per format, --images images with --objects rectangles each, at that dataset's usual
image size (KINS: KITTI's 1242 x 375 with polygon masks; COCOA: 640 x 480 JPEGs with polygon
amodal and RLE visible masks; DYCE: 500 x 500 PNG masks and appearance files), with the
writers of tests/amodal_fixtures.py, then times `convert` (images copied) and reports images/s.
Prints a table and appends it to docs/benchmarks.md with the machine, command and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchdoc import ROOT, append_section

sys.path.insert(0, str(ROOT / "tests"))
import amodal_fixtures as fx  # noqa: E402
from segan.data.formats import convert  # noqa: E402

SIZES = {"kins": (375, 1242), "cocoa": (480, 640), "dyce": (500, 500)}
WRITERS = {"kins": fx.write_kins, "cocoa": fx.write_cocoa, "dyce": fx.write_dyce}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--objects", type=int, default=8)
    ap.add_argument("--formats", nargs="+", default=list(WRITERS), choices=list(WRITERS))
    args = ap.parse_args()
    rows = []
    for name in args.formats:
        fx.H, fx.W = SIZES[name]  # the fixture writers read the image size from the module
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "src", Path(tmp) / "out"
            data = fx.scenes({"train": args.images}, n=args.objects)
            WRITERS[name](src, data)
            start = time.perf_counter()
            summary = convert(src, dst, fmt=name, progress=False)
            seconds = time.perf_counter() - start
        st = summary["splits"]["train"]
        rows.append((name, f"{fx.W}x{fx.H}", st["images"], st["objects"], seconds,
                     st["images"] / seconds))
        print(f"{name}: {st['images']} images, {st['objects']} objects, {seconds:.2f} s, "
              f"{st['images'] / seconds:.1f} images/s")
    table = ["| format | image size | images | objects | seconds | images/s |",
             "|---|---|---:|---:|---:|---:|"]
    table += [f"| {n} | {s} | {i} | {o} | {t:.2f} | {r:.1f} |" for n, s, i, o, t, r in rows]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    notes = ("One process; synthetic rectangles written in each format's layout by "
             "tests/amodal_fixtures.py; `convert` copies the images, decodes every image and "
             "mask, applies the format's invariants and writes segan-coco.")
    append_section("Format conversion", machine, notes, "\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
