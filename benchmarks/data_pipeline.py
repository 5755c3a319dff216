"""Training data pipeline speed on the CPU: cache build, DataLoader batches/s, device-side prep.

    python benchmarks/data_pipeline.py [--data DIR | --size 500 --views 8] [--workers 0 1 2]
        [--batch-objects 32] [--objects-per-image 4] [--batches 60]

Without --data it generates the `tiny` preset at --size pixels (default 500, the paper's
image size) with --views views per scene into a temporary folder. Measures:
- the decoded cache's build time (segan.train.cache), per image;
- DataLoader throughput with N worker processes (reading the cache, building whole batches),
  in batches/s, objects/s and MB/s of raw bytes handed to the training process;
- `prepare_batch` on the CPU (patch pasting, expansion, roi_align crops) per batch: on a GPU
  this runs on the device.
Prints a table and appends it to docs/benchmarks.md with the machine, command and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchdoc import append_section
from segan.config import DataConfig
from segan.train.cache import open_cache
from segan.train.data import ObjectBatches, ObjectBatchSampler, make_loader, prepare_batch


def raw_bytes(raw: dict) -> int:
    return sum(v.numel() * v.element_size() for v in raw.values() if torch.is_tensor(v))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="dataset (default: generate)")
    ap.add_argument("--size", type=int, default=500, help="generated image size")
    ap.add_argument("--views", type=int, default=8, help="generated views per scene")
    ap.add_argument("--split", default="train", help="which split to read (--data)")
    ap.add_argument("--image-size", type=int, default=500, help="data.image_size")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-objects", type=int, default=32)
    ap.add_argument("--objects-per-image", type=int, default=4)
    ap.add_argument("--batches", type=int, default=60, help="batches per measurement")
    ap.add_argument("--cache-workers", type=int, default=2)
    ap.add_argument("--no-append", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="segan-databench-"))
    try:
        data = args.data
        if data is None:
            data = tmp / "data"
            subprocess.run([sys.executable, "-m", "segan.cli", "generate", str(data),
                            "--preset", "tiny", "--size", str(args.size), "--views",
                            str(args.views), "--workers", str(os.cpu_count() or 1), "--quiet"],
                           check=True)
        cfg = DataConfig(image_size=args.image_size, batch_objects=args.batch_objects,
                         objects_per_image=args.objects_per_image, train_split=args.split)
        t0 = time.perf_counter()
        cache = open_cache(data, cfg.train_split, cfg.image_size, cfg.expand_max, tmp / "cache",
                           workers=args.cache_workers)
        build_s = time.perf_counter() - t0
        n_img, n_obj = cache.num_images, cache.num_objects
        cache_gb = sum(p.stat().st_size for p in cache.path.iterdir()) / 1e9
        print(f"cache: {n_img} images, {n_obj} objects, {build_s:.1f} s "
              f"({build_s / n_img * 1e3:.0f} ms/image)", file=sys.stderr)

        rows = []
        for workers in args.workers:
            sampler = ObjectBatchSampler(cache.obj_start, cfg.batch_objects,
                                         cfg.objects_per_image, seed=0,
                                         fixed_images=cfg.fixed_images)
            loader = make_loader(ObjectBatches(cache, cfg, seed=0), sampler, workers,
                                 prefetch_factor=4, pin_memory=False)
            it = iter(loader)
            for _ in range(3):  # warm-up: worker start, page cache
                next(it)
            t0 = time.perf_counter()
            objects = images = nbytes = 0
            for _ in range(args.batches):
                raw = next(it)
                objects += len(raw["obj_image"])
                images += len(raw["images"])
                nbytes += raw_bytes(raw)
            seconds = time.perf_counter() - t0
            del it
            rows.append(dict(workers=workers, batches_s=args.batches / seconds,
                             objects_s=objects / seconds, images_per_batch=images / args.batches,
                             mb_s=nbytes / seconds / 1e6))
            print(f"workers={workers}: {objects / seconds:.0f} objects/s", file=sys.stderr)

        # the device-side step, here on the CPU
        raws = [ObjectBatches(cache, cfg, seed=0)[k] for k, _ in zip(
            ObjectBatchSampler(cache.obj_start, cfg.batch_objects, cfg.objects_per_image, 0,
                               fixed_images=cfg.fixed_images),
            range(10), strict=False)]
        prepare_batch(raws[0], torch.device("cpu"), cfg, 58, 256)
        t0 = time.perf_counter()
        for raw in raws:
            prepare_batch(raw, torch.device("cpu"), cfg, 58, 256)
        prep_ms = (time.perf_counter() - t0) / len(raws) * 1e3
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = ["| DataLoader workers | batches/s | objects/s | images/batch | MB/s to trainer | "
             "prepare_batch on CPU (ms/batch) |", "|" + "---|" * 6]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['batches_s']:.1f} | {r['objects_s']:.0f} | "
                     f"{r['images_per_batch']:.1f} | {r['mb_s']:.0f} | {prep_ms:.0f} |")
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        machine = f"{platform.machine()}, {os.cpu_count()} cores"
        source = (f"`{args.data}` split {args.split}" if args.data else
                  f"tiny preset at {args.size}px, {args.views} views per scene")
        append_section(
            "Training data pipeline", machine,
            f"Data: {source} ({n_img} images, {n_obj} objects), image_size {cfg.image_size}, "
            f"batch {cfg.batch_objects} objects, objects_per_image {cfg.objects_per_image}, "
            f"mask 58, crop 256. Cache build: {build_s:.1f} s, {cache_gb:.2f} GB "
            f"({build_s / n_img * 1e3:.0f} ms/image with {args.cache_workers} processes). "
            "prepare_batch (paste, expansion, crops) runs on the device in training; here it "
            "is timed on the CPU.", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
