"""Per-view cost of view and image randomisation (segan.data.randomize) on the `dyce` preset.

    python benchmarks/randomize_cost.py [--views 12] [--scenes 0 3] [--repeats 2]

For each scene (built once, its renderer warmed up) renders the same views with and without
DIVERSE_RANDOMIZATION, alternating (the machine's load drifts), and prints ms per view, objects
and attempts per view and pixels per view; then the photometric pipeline alone on 500 x 500.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from segan.data.generate import build_renderer, build_scene, render_view_truth
from segan.data.presets import make_config
from segan.data.randomize import (
    DIVERSE_RANDOMIZATION,
    degrade_image,
    image_rng,
    sample_image_params,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=12)
    ap.add_argument("--scenes", type=int, nargs="+", default=[0, 3])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    plain = make_config("dyce")
    configs = {"off": plain, "randomize": replace(plain, randomize=DIVERSE_RANDOMIZATION)}
    for s in args.scenes:
        scene = build_scene(plain, s)
        renderer = build_renderer(plain, scene)
        render_view_truth(plain, scene, renderer, s, 10_000)  # context, shaders, uploads
        times: dict[str, list[float]] = {k: [] for k in configs}
        for _ in range(args.repeats):
            for name, cfg in configs.items():
                start, objects, attempts, pixels = time.perf_counter(), 0, 0, 0
                for v in range(args.views):
                    t = render_view_truth(cfg, scene, renderer, s, v)
                    objects, attempts = objects + len(t.objects), attempts + t.attempts
                    pixels += t.rgb.shape[0] * t.rgb.shape[1]
                times[name].append((time.perf_counter() - start) / args.views)
                n = args.views
                print(f"scene {s} {name:9s} {times[name][-1] * 1000:6.0f} ms/view  objects "
                      f"{objects / n:5.1f}  attempts {attempts / n:4.2f}  "
                      f"Mpx {pixels / n / 1e6:.3f}")
        off, on = np.mean(times["off"]), np.mean(times["randomize"])
        print(f"scene {s}: randomisation {100 * (on / off - 1):+.0f}% per view")
        renderer.close()
    rng = image_rng(0, 0, 0)
    params = replace(sample_image_params(DIVERSE_RANDOMIZATION, rng, 500, 500), width=500,
                     height=500, blur_sigma=1.5, motion_length=9.0, vignette=0.3, jpeg_quality=50)
    image = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    start = time.perf_counter()
    for _ in range(10):
        degrade_image(image, params, rng)
    print(f"degrade_image 500x500, every option on: "
          f"{(time.perf_counter() - start) / 10 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
