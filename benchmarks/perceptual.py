"""Speed of the FID and LPIPS meter (segan.eval.perceptual) on one device.

No real weights exist here, so the networks get randomly initialised weight files in the real
files' formats (tests/perceptual_weights.py): the speed is the same, the values are meaningless.
It times `PerceptualMeter` on N painted objects of crop size C (LPIPS on the crops, Inception-v3
at 299 x 299 on painted and target composites) and the Fréchet distance of the two feature sets.

    python benchmarks/perceptual.py --device cuda --objects 2000 --crop 256 [--append]

--append adds the table to docs/benchmarks.md (benchdoc).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from perceptual_weights import write_inception_file, write_lpips_files  # noqa: E402
from segan.device import resolve_device  # noqa: E402
from segan.eval.perceptual import FID_KEY, LPIPS_KEY, load_perceptual  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    ap.add_argument("--objects", type=int, default=512, help="painted objects N")
    ap.add_argument("--crop", type=int, default=256, help="the painter's crop size C")
    ap.add_argument("--per-image", type=int, default=20, help="objects added per call "
                    "(as one image's objects in `segan evaluate`)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--append", action="store_true", help="append to docs/benchmarks.md")
    args = ap.parse_args()
    device = resolve_device(args.device, "--device")
    g = torch.Generator().manual_seed(0)
    n, c = args.objects, args.crop
    painted = torch.rand((args.per_image, 3, c, c), generator=g).to(device)
    alpha = (torch.rand((args.per_image, 1, c, c), generator=g) > 0.3).float().to(device)
    target = torch.rand((args.per_image, 3, c, c), generator=g).to(device) * alpha

    with tempfile.TemporaryDirectory() as tmp:
        fid = write_inception_file(Path(tmp) / "pt_inception-2015-12-05-6726825d.pth")
        write_lpips_files(Path(tmp) / "lpips")
        t0 = time.perf_counter()
        nets = load_perceptual(fid, Path(tmp) / "lpips", device, batch_size=args.batch_size)
        load_s = time.perf_counter() - t0

    meter = nets.meter()  # warm-up (cuDNN autotuning, oneDNN primitives)
    meter.add(painted, target, alpha)
    meter.compute()
    meter = nets.meter()
    _sync(device)
    t0 = time.perf_counter()
    added = 0
    while added < n:
        k = min(args.per_image, n - added)
        meter.add(painted[:k], target[:k], alpha[:k])
        added += k
    meter._flush()  # the networks' part of compute()
    _sync(device)
    nets_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = meter.compute()  # now only the Fréchet distance
    frechet_s = time.perf_counter() - t0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    table = "\n".join([
        "| objects | crop | device | load weights (s) | LPIPS + Inception (s) | objects/s | "
        "Fréchet distance (s) |",
        "|---|---|---|---|---|---|---|",
        f"| {n} | {c} | {name} | {load_s:.2f} | {nets_s:.2f} | {n / nets_s:.0f} | "
        f"{frechet_s:.2f} |",
    ])
    print(table)
    print(f"(values with random weights: LPIPS {result[LPIPS_KEY]:.4f}, FID {result[FID_KEY]:.3f})")
    if args.append:
        from benchdoc import append_section

        append_section("FID and LPIPS meter", name,
                       f"torch {torch.__version__}; random weights in the real files' formats; "
                       f"batch {args.batch_size}, {args.per_image} objects per call.", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
