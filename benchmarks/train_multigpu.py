"""SeGAN training on 1, 2, 4... GPUs of one host through torchrun (DDP, NCCL): throughput,
scaling efficiency against 1 GPU measured in the same run, and whether the loss curves agree.

    # on a several-GPU machine (data generated there: nothing that size travels)
    python benchmarks/train_multigpu.py --generate /tmp/dyce --views 120 --gen-workers 48 \
        --gpus 1 2 4 --global-batch 256 --stage1 60 --stage2 140 --out /tmp/multigpu
    # anywhere, to check the script: 2 CPU processes (gloo), tiny data and config
    python benchmarks/train_multigpu.py --smoke --out /tmp/multigpu_smoke

Strong scaling: the global batch (objects per optimiser step, summed over ranks) is fixed, so
every process count runs the same optimisation (same learning rates, same number of steps) and
the loss curves should agree up to sampling noise; each rank gets global_batch / n objects.
Each run is the real `torchrun -m segan.train` path (decoded cache, DataLoader workers, DDP).
Throughput per stage is the median of the logged samples/s (all ranks' objects over wall time)
after the first two log intervals of the stage (cudnn autotuning, loader warm-up). Loss
agreement: the mean of each loss over the last quarter of the run, n GPUs against 1 GPU.
Writes OUT/runs/<n>gpu/, OUT/multigpu.json, OUT/multigpu_losses.png, prints a table and
appends it to docs/benchmarks.md (unless --no-doc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchdoc import append_section

ROOT = Path(__file__).resolve().parents[1]
LOSSES = ("segm", "l1", "gan", "d")


def read_stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line]


def stage_throughput(records: list[dict], stage: int, skip: int = 2) -> float | None:
    rates = [r["samples_per_s"] for r in records if r.get("stage") == stage][skip:]
    return statistics.median(rates) if rates else None


def tail_means(records: list[dict], frac: float = 0.25) -> dict[str, float]:
    tail = records[int(len(records) * (1 - frac)):]
    out = {}
    for name in LOSSES:
        vals = [r[f"loss/{name}"] for r in tail if f"loss/{name}" in r]
        if vals:
            out[name] = sum(vals) / len(vals)
    return out


def train(n: int, args: argparse.Namespace, data: Path, run: Path, cache: Path) -> float:
    per_rank = args.global_batch // n
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={n}", "-m", "segan.train", "--config", str(args.config),
           "--data", str(data), "--out", str(run), "--cache-dir", str(cache), "--quiet",
           "--backbone-weights", "none",
           f"data.batch_objects={per_rank}", f"schedule.stage1_steps={args.stage1}",
           f"schedule.stage2_steps={args.stage2}", f"run.log_every={args.log_every}",
           "run.grid_every=0", f"run.checkpoint_every={args.stage1 + args.stage2}",
           *args.overrides]
    if args.workers_per_rank is not None:
        cmd.append(f"data.num_workers={args.workers_per_rank}")
    env = dict(os.environ)
    # NVLink multicast stays off (the device machine's rule; it is also its default)
    env.update(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
               NVSHMEM_DISABLE_NVLS="1", OMP_NUM_THREADS="4")
    print(f"[{n} process(es)] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def plot(results: dict[int, list[dict]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LOSSES), figsize=(4 * len(LOSSES), 3.2))
    for ax, name in zip(axes, LOSSES, strict=True):
        for n, records in sorted(results.items()):
            pts = [(r["step"], r[f"loss/{name}"]) for r in records if f"loss/{name}" in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=f"{n} GPU" + ("s" if n > 1 else ""),
                        lw=1.2)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="a generated dataset (or use --generate)")
    p.add_argument("--generate", type=Path, help="generate a dyce-preset dataset here first")
    p.add_argument("--views", type=int, default=120, help="views per scene for --generate")
    p.add_argument("--gen-workers", type=int, default=os.cpu_count())
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "segan.yaml")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    p.add_argument("--global-batch", type=int, default=256)
    p.add_argument("--stage1", type=int, default=60)
    p.add_argument("--stage2", type=int, default=140)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--workers-per-rank", type=int, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--smoke", action="store_true", help="CPU, gloo, tiny data and config")
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args()

    if args.smoke:
        args.generate = args.generate or args.out / "tiny"
        args.config = ROOT / "configs" / "tiny.yaml"
        args.gpus, args.global_batch, args.stage1, args.stage2 = [1, 2], 8, 10, 10
        args.log_every, args.no_doc = 2, True
        args.overrides = ["data.objects_per_image=2", *args.overrides]
    data = args.data or args.generate
    if data is None:
        p.error("give --data or --generate")
    if args.generate:
        preset = "tiny" if args.smoke else "dyce"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "segan.cli", "generate", str(args.generate),
                        "--preset", preset, "--workers", str(args.gen_workers), "--quiet",
                        *(["--views", str(args.views)] if not args.smoke else [])],
                       check=True, cwd=ROOT)
        print(f"generated {args.generate} in {time.perf_counter() - t0:.0f} s", flush=True)
    for n in args.gpus:
        if args.global_batch % n:
            p.error(f"--global-batch {args.global_batch} is not divisible by {n} processes")

    cache = args.out / "cache"
    results: dict[int, list[dict]] = {}
    walls: dict[int, float] = {}
    for n in args.gpus:
        run = args.out / "runs" / f"{n}gpu"
        walls[n] = train(n, args, data, run, cache)
        results[n] = read_stats(run)

    ref = min(args.gpus)
    r1, r2 = stage_throughput(results[ref], 1), stage_throughput(results[ref], 2)
    ref_tails = tail_means(results[ref])
    rows, summary = [], {}
    for n in args.gpus:
        recs = results[n]
        s1, s2 = stage_throughput(recs, 1), stage_throughput(recs, 2)
        eff = (s2 / (n / ref * r2)) if s2 and r2 else None
        tails = tail_means(recs)
        rel = {k: tails[k] / ref_tails[k] - 1 for k in tails if ref_tails.get(k)}
        summary[n] = dict(stage1_samples_per_s=s1, stage2_samples_per_s=s2,
                          stage1_speedup=(s1 / r1) if s1 and r1 else None,
                          stage2_efficiency=eff, wall_s=walls[n], tail_losses=tails,
                          tail_vs_ref=rel, per_rank_batch=args.global_batch // n)
        rows.append(f"| {n} | {args.global_batch // n} | {s1:,.0f} | {s2:,.0f} | "
                    f"{s2 / r2:.2f}x | {eff:.0%} | "
                    + " | ".join(f"{tails.get(k, float('nan')):.3g} ({rel.get(k, 0):+.1%})"
                                 for k in LOSSES) + f" | {walls[n]:.0f} |")
    header = ("| GPUs | objects / GPU / step | stage 1 samples/s | stage 2 samples/s | "
              "stage 2 speed-up | scaling efficiency | "
              + " | ".join(f"{k} (last quarter, vs {ref})" for k in LOSSES)
              + " | wall s |\n|" + "---|" * (7 + len(LOSSES)))
    table = header + "\n" + "\n".join(rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "multigpu.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "results": summary}, indent=2))
    plot(results, args.out / "multigpu_losses.png")
    if not args.no_doc:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
        machine = (f"{torch.cuda.device_count()} x {gpu}, {os.cpu_count()} CPU cores, "
                   f"{platform.python_version()}, torch {torch.__version__}")
        notes = (f"Strong scaling: {args.global_batch} objects per step in all, split over the "
                 f"GPUs; {args.stage1} stage-1 + {args.stage2} stage-2 steps of "
                 f"`{args.config.relative_to(ROOT)}` (random backbone init) on data "
                 f"`{data}`; NCCL, NVLink multicast off. Samples/s: median over logged "
                 "intervals after each stage's first two; efficiency = stage-2 samples/s over "
                 f"n/{ref} x the {ref}-GPU run's.")
        append_section("SeGAN training on several GPUs (torchrun)", machine, notes, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
