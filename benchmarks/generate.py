"""Dataset generation speed: views per second and seconds per full sample, per renderer.

A full sample is one view with all of its ground truth: the scene render, the id pass, and one
re-render per annotated object (its full mask, appearance and depth), written to disk.

    python benchmarks/generate.py [--renderers pyrender mitsuba] [--views 8] [--workers 1 2]
                                  [--ray]

Prints a table and appends it to docs/benchmarks.md with the machine, command and date. The
`dyce` estimate extrapolates the measured rate to 11 scenes x 500 views. With --ray every
worker count is measured twice on the same scenes and views: with local processes and on a
local Ray instance of that many CPUs (started before the clock starts; its start-up time is
its own column), so the two executors compare on one machine.
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

from benchdoc import append_section
from segan.data.generate import build_renderer, build_scene, generate, render_view_truth
from segan.data.presets import PRESETS, make_config


def stage_times(renderer_name: str, n_views: int) -> dict[str, float]:
    """Per-stage costs on one dyce scene at 500x500, single process."""
    cfg = make_config("dyce", renderer=renderer_name, n_scenes=1, views_per_scene=n_views)
    t0 = time.perf_counter()
    scene = build_scene(cfg, 0)
    t_scene = time.perf_counter() - t0
    renderer = build_renderer(cfg, scene)
    truth = render_view_truth(cfg, scene, renderer, 0, 0)  # warm-up: contexts, uploads
    view = truth.view
    reps = max(2, n_views // 2)
    t0 = time.perf_counter()
    for _ in range(reps):
        renderer.render(view, rgb=False, depth=False)
    t_ids = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        renderer.render(view, ids=False)
    t_rgb = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    n_obj = attempts = 0
    for v in range(1, n_views + 1):
        truth = render_view_truth(cfg, scene, renderer, 0, v)
        n_obj += len(truth.objects)
        attempts += truth.attempts
    t_view = (time.perf_counter() - t0) / n_views
    renderer.close()
    return {"scene_gen_s": t_scene, "id_pass_s": t_ids, "rgb_depth_s": t_rgb,
            "view_truth_s": t_view, "objects_per_view": n_obj / n_views,
            "attempts_per_view": attempts / n_views}


def end_to_end(renderer_name: str, n_views: int, workers: int,
               use_ray: bool = False) -> dict[str, float]:
    """generate() on the first `workers` dyce scenes, files written, resumption off; with
    `use_ray` on a local Ray instance of `workers` CPUs started beforehand."""
    n_scenes = min(max(1, workers), len(PRESETS["dyce"].scenes))
    cfg = make_config("dyce", renderer=renderer_name, n_scenes=n_scenes, views_per_scene=n_views)
    tmp = Path(tempfile.mkdtemp(prefix="segan-bench-"))
    ray_start = 0.0
    if use_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
        ray_start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        generate(tmp / "data", cfg, workers=workers, chunk=max(1, n_views // 4), progress=False,
                 ray_address="local" if use_ray else None)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if use_ray:
            ray.shutdown()
    views = n_scenes * n_views
    return {"views": views, "seconds": seconds, "views_per_s": views / seconds,
            "ray_start_s": ray_start}


def executor_table(rows: list) -> str:
    """Processes vs Ray, one row per renderer, workers and executor."""
    dyce_views = len(PRESETS["dyce"].scenes) * PRESETS["dyce"].views_per_scene
    lines = ["| renderer | workers | executor | views | seconds | views/s | "
             "s per full sample | Ray start | dyce (5,500 views) estimate |", "|" + "---|" * 9]
    for name, w, executor, e2e in rows:
        start = f"{e2e['ray_start_s']:.1f} s" if executor == "ray" else "-"
        lines.append(
            f"| {name} | {w} | {executor} | {e2e['views']} | {e2e['seconds']:.1f} | "
            f"{e2e['views_per_s']:.2f} | {w / e2e['views_per_s']:.2f} | {start} | "
            f"{dyce_views / e2e['views_per_s'] / 60:.0f} min |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--renderers", nargs="+", default=["pyrender", "mitsuba"])
    ap.add_argument("--views", type=int, default=8, help="views per measurement")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-append", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--ray", action="store_true",
                    help="compare local processes with a local Ray instance per worker count")
    args = ap.parse_args()
    if args.ray:
        # Before ray is imported: a local instance then binds to loopback, not the host's
        # network address (the benchmark's cluster is this machine alone).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        return main_ray(args)

    dyce = PRESETS["dyce"]
    dyce_views = len(dyce.scenes) * dyce.views_per_scene
    rows = []
    for name in args.renderers:
        st = stage_times(name, args.views)
        for w in args.workers:
            e2e = end_to_end(name, args.views, w)
            rows.append((name, w, st, e2e))
            print(f"{name} workers={w}: {e2e['views_per_s']:.2f} views/s", file=sys.stderr)

    header = ("| renderer | workers | views/s | s per full sample | objects/view | id pass | "
              "RGB+depth | scene build | dyce (5,500 views) estimate |")
    lines = [header, "|" + "---|" * 9]
    for name, w, st, e2e in rows:
        est_min = dyce_views / e2e["views_per_s"] / 60
        lines.append(
            f"| {name} | {w} | {e2e['views_per_s']:.2f} | {w / e2e['views_per_s']:.2f} | "
            f"{st['objects_per_view']:.1f} | {st['id_pass_s'] * 1e3:.0f} ms | "
            f"{st['rgb_depth_s'] * 1e3:.0f} ms | {st['scene_gen_s']:.2f} s | {est_min:.0f} min |"
        )
    table = "\n".join(lines)
    print(table)

    if not args.no_append:
        machine = f"{platform.machine()}, {os.cpu_count()} cores"
        append_section("Dataset generation", machine,
                       "500x500 images, dyce scenes (60 objects); 's per full sample' = seconds "
                       "of one worker per view with all its ground truth written "
                       "(= workers / views per s).", table)
    return 0


def main_ray(args: argparse.Namespace) -> int:
    rows = []
    for name in args.renderers:
        for w in args.workers:
            for executor in ("processes", "ray"):
                e2e = end_to_end(name, args.views, w, use_ray=executor == "ray")
                rows.append((name, w, executor, e2e))
                print(f"{name} workers={w} {executor}: {e2e['views_per_s']:.2f} views/s",
                      file=sys.stderr)
    table = executor_table(rows)
    print(table)
    if not args.no_append:
        import ray

        machine = f"{platform.machine()}, {os.cpu_count()} cores"
        append_section(f"Dataset generation, local processes vs Ray {ray.__version__}", machine,
                       f"500x500 images, dyce scenes (60 objects), {args.views} views per "
                       "scene on min(workers, 11) scenes, tasks of views/4 views; 'seconds' "
                       "is generate() from plan to assembled annotations (worker start-up "
                       "included, Ray's own start not: its column).", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
