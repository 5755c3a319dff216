"""SeGAN training speed: samples/s end to end and model-only, peak memory and MFU.

    # on the GPU machine (data generated there: nothing that size travels)
    python benchmarks/train_gpu.py --generate --scenes 6 --views 60
    python benchmarks/train_gpu.py --data DIR [--batch-sizes 1 32 tuned] [--precisions fp32 bf16]
    # anywhere, to check the script: CPU, tiny sizes
    python benchmarks/train_gpu.py --smoke

A sample is one object (segmentor + painter + discriminator on it); a step is a stage-2 step
(section 5.1's end-to-end stage: D step, then segmentor + G step), the heavier of the two.
For each precision and batch size (objects per step, `data.batch_objects`):
- model-only: one prepared batch on the device, stepped repeatedly;
- end to end: the real pipeline (DataLoader workers over the decoded cache, `prepare_batch`
  on the device, the step), so data loading is included;
- prepared on the fly: one raw batch, pinned once, through `prepare_batch` anew for every
  step as in the training loop, but without the DataLoader: between it and end to end lies
  the loader's cost, between it and model-only the preparation's;
- peak memory (torch.cuda.max_memory_allocated) of the model-only run;
- FLOPs per step from torch.utils.flop_counter (forward + backward of every network) and MFU =
  achieved FLOP/s / the bf16 dense matmul rate measured in the same run (also for fp32 rows).
"tuned" doubles the batch from --tune-start while it fits and model-only samples/s still grows
by more than 3%, and reports the best. Prints a table and appends it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchdoc import append_section, machine_name
from segan.device import resolve_device
from segan.train import build_segan, load_config
from segan.train.cache import open_cache
from segan.train.data import ObjectBatches, ObjectBatchSampler, make_loader, prepare_batch
from segan.train.prefetch import DevicePrefetcher
from segan.train.runtime import compile_submodules, make_runtime
from segan.train.tasks import SeGANTask, make_optimizers

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, n: int, reps: int) -> float:
    """Dense bf16 matmul FLOP/s on this device (the MFU denominator)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def generate_data(out: Path, preset: str, scenes: int | None, views: int, workers: int) -> Path:
    cmd = [sys.executable, "-m", "segan.cli", "generate", str(out), "--preset", preset,
           "--views", str(views), "--workers", str(workers), "--quiet"]
    if scenes:
        cmd += ["--scenes", str(scenes)]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, data: Path, cache_dir: Path):
        self.args, self.data, self.cache_dir = args, data, cache_dir

    def config(self, precision: str, batch: int):
        a = self.args
        per_image = min(a.per_image, batch)
        over = [f"data.batch_objects={batch}", f"data.objects_per_image={per_image}",
                f"data.fixed_images={str(a.fixed_images and batch % per_image == 0).lower()}",
                f"run.precision={precision}", "model.backbone_weights=none",
                f"data.num_workers={a.workers}", f"run.compile={str(a.compile).lower()}",
                f"run.device={'cpu' if a.smoke else 'auto'}"]
        if a.fusion:
            over.append(f"model.mask_fusion={a.fusion}")
        return load_config(a.config, over + a.overrides)

    def run(self, precision: str, batch: int, steps: int, warmup: int, e2e: bool = True
            ) -> dict:
        cfg = self.config(precision, batch)
        # compiled code of earlier measurements counts against dynamo's recompile limit
        # (the same forward functions, new modules): past it, modules silently run eagerly
        torch._dynamo.reset()
        task = SeGANTask(cfg)
        rt = make_runtime(cfg.run, static_shapes=task.static_shapes or self.args.cudnn_benchmark)
        dev = rt.device
        d = cfg.data
        cache = open_cache(self.data, d.train_split, d.image_size, d.expand_max, self.cache_dir,
                           workers=d.cache_workers)
        torch.manual_seed(0)
        net = build_segan(cfg, "none")
        compile_later, rt.compile = rt.compile, False  # FLOPs are counted on eager modules
        model = rt.prepare(net)
        net.train()
        opt = make_optimizers(net, cfg.optim)
        scaler = rt.grad_scaler()
        step = cfg.schedule.stage1_steps  # a stage-2 step
        sampler = ObjectBatchSampler(cache.obj_start, d.batch_objects, d.objects_per_image, 0,
                                     fixed_images=d.fixed_images)
        dataset = ObjectBatches(cache, d, seed=0, with_union=cfg.model.segmentor_context)

        def prep(raw):
            return prepare_batch(raw, dev, d, cfg.model.mask_size, cfg.model.crop_size,
                                 rt.channels_last)

        batch0 = prep(dataset[next(iter(sampler))])
        fusion = (cfg.model.mask_fusion if cfg.model.segmentor == "roi_fc"
                  else cfg.model.segmentor)
        out: dict = {"precision": rt.precision, "batch": batch, "fusion": fusion}
        # FLOPs of one step, on the eager modules (FlopCounterMode does not see compiled code;
        # counting through modules compiled first gave no compiled speed-up in the timed runs)
        with FlopCounterMode(display=False) as counter:
            task.train_step(step, net, net, batch0, opt, rt, scaler)
        out["flops_per_step"] = counter.get_total_flops()
        if compile_later:  # as Runtime.prepare does it, after counting
            compile_submodules(net, task.compile_modules)
        # model-only
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        for _ in range(warmup):
            task.train_step(step, model, net, batch0, opt, rt, scaler)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            task.train_step(step, model, net, batch0, opt, rt, scaler)
        sync(dev)
        sec = (time.perf_counter() - t0) / steps
        out["model_ms_per_step"] = sec * 1e3
        out["model_samples_s"] = batch0.num_objects / sec
        out["flops_s"] = out["flops_per_step"] / sec
        out["peak_gb"] = (torch.cuda.max_memory_allocated(dev) / 1e9 if dev.type == "cuda"
                          else float("nan"))
        def timed(batches) -> float:  # samples/s of steps fed by an iterator of batches
            for _ in range(warmup):
                task.train_step(step, model, net, next(batches), opt, rt, scaler)
            sync(dev)
            t0, objects = time.perf_counter(), 0
            for _ in range(steps):
                b = next(batches)
                objects += b.num_objects
                task.train_step(step, model, net, b, opt, rt, scaler)
            sync(dev)
            return objects / (time.perf_counter() - t0)

        def feed(raw_batches):  # as the training loop prepares them
            return (DevicePrefetcher(raw_batches, prep, dev) if not self.args.no_prefetch
                    else (prep(raw) for raw in raw_batches))

        out["e2e_samples_s"] = out["prep_samples_s"] = float("nan")
        if e2e:
            # prepared on the fly: one raw batch, pinned once (as the loader's pin thread
            # does), prepared anew for every step: the preparation's cost without the loader
            raw0 = dataset[next(iter(sampler))]
            if dev.type == "cuda":
                raw0 = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v
                        for k, v in raw0.items()}
            out["prep_samples_s"] = timed(feed(itertools.repeat(raw0)))
            # end to end (DataLoader + prepare on the device + step)
            loader = make_loader(dataset, sampler, d.num_workers, d.prefetch_factor,
                                 pin_memory=dev.type == "cuda")
            it = iter(loader)
            out["e2e_samples_s"] = timed(feed(it))
            del it, loader, raw0
        net = model = opt = batch0 = None  # freed before the next measurement
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return out

    def tune(self, precision: str) -> int | None:
        """The batch with the best model-only samples/s, doubling from --tune-start."""
        a = self.args
        best, best_rate, batch = None, 0.0, a.tune_start
        while batch <= a.tune_max:
            try:
                # full warm-up: compiled modules and cuDNN's autotuner settle in its first steps
                r = self.run(precision, batch, steps=a.tune_steps, warmup=a.warmup, e2e=False)
            except torch.OutOfMemoryError:
                print(f"tune {precision}: batch {batch} out of memory", file=sys.stderr)
                gc.collect()
                torch.cuda.empty_cache()
                break
            rate = r["model_samples_s"]
            print(f"tune {precision}: batch {batch}: {rate:.1f} samples/s", file=sys.stderr)
            if rate <= best_rate * 1.03:
                break
            best, best_rate, batch = batch, rate, batch * 2
        return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="a generated dataset folder")
    ap.add_argument("--generate", action="store_true",
                    help="generate one first: segan generate --preset dyce --scenes N --views M")
    ap.add_argument("--data-out", type=Path, default=None, help="where --generate writes")
    ap.add_argument("--scenes", type=int, default=6, help="--generate: dyce scenes (6 = train)")
    ap.add_argument("--views", type=int, default=60, help="--generate: views per scene")
    ap.add_argument("--gen-workers", type=int, default=16, help="--generate: processes")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "segan.yaml")
    ap.add_argument("--fusion", choices=["input", "roi"], default=None,
                    help="override model.mask_fusion")
    ap.add_argument("--batch-sizes", nargs="+", default=["1", "32", "tuned"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                    choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers")
    ap.add_argument("--compile", action="store_true", help="run.compile=true")
    ap.add_argument("--per-image", type=int, default=4,
                    help="data.objects_per_image (at most the batch)")
    ap.add_argument("--fixed-images", action="store_true",
                    help="data.fixed_images=true (the same image count in every roi batch)")
    ap.add_argument("--no-prefetch", action="store_true",
                    help="end to end: prepare each batch on the training stream, not one step "
                         "ahead on a side stream (segan.train.prefetch)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="cuDNN autotuning on whatever the fusion (roi's backbone batch varies "
                         "end to end: each new image count is tuned again)")
    ap.add_argument("--tune-start", type=int, default=64)
    ap.add_argument("--tune-max", type=int, default=512)
    ap.add_argument("--tune-steps", type=int, default=6)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true",
                    help="CPU check: configs/tiny.yaml, the tiny preset, small batches and steps")
    ap.add_argument("--no-append", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = ap.parse_args()
    if args.smoke:
        args.config = ROOT / "configs" / "tiny.yaml"
        args.batch_sizes = ["1", "4", "tuned"]
        args.steps, args.warmup, args.workers = 2, 1, 0
        args.tune_start, args.tune_max, args.tune_steps = 8, 16, 2

    tmp = Path(tempfile.mkdtemp(prefix="segan-trainbench-"))
    try:
        return bench_all(args, ap, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_all(args: argparse.Namespace, ap: argparse.ArgumentParser, tmp: Path) -> int:
    data = args.data
    if data is None:
        if not (args.generate or args.smoke):
            ap.error("pass --data DIR, or --generate to make a dataset here")
        out = args.data_out or tmp / "data"
        if args.smoke:
            data = generate_data(out, "tiny", None, 4, 1)
        else:
            data = generate_data(out, "dyce", args.scenes, args.views, args.gen_workers)
    cache_dir = args.cache_dir or tmp / "cache"
    bench = Bench(args, data, cache_dir)

    device = resolve_device("cpu" if args.smoke else "auto")
    peak = matmul_rate(device, 8192 if device.type == "cuda" else 1024,
                       50 if device.type == "cuda" else 3)
    print(f"bf16 matmul: {peak / 1e12:.1f} TFLOP/s", file=sys.stderr)

    rows = []
    for precision in args.precisions:
        for bs in args.batch_sizes:
            if bs == "tuned":
                batch = bench.tune(precision)
                if batch is None:
                    continue
                label = f"{batch} (tuned)"
            else:
                batch, label = int(bs), bs
            try:
                r = bench.run(precision, batch, args.steps, args.warmup)
            except torch.OutOfMemoryError:
                print(f"{precision} batch {batch}: out of memory", file=sys.stderr)
                gc.collect()
                torch.cuda.empty_cache()
                continue
            r["label"] = label
            rows.append(r)
            print(f"{precision} batch {label}: e2e {r['e2e_samples_s']:.1f}, model "
                  f"{r['model_samples_s']:.1f} samples/s", file=sys.stderr)

    lines = ["| precision | fusion / segmentor | batch (objects) | end to end samples/s "
             "| prepared on the fly samples/s | model-only samples/s | ms/step | peak GB "
             "| GFLOP/sample | TFLOP/s | MFU (bf16 peak) |",
             "|" + "---|" * 11]
    for r in rows:
        gflop = r["flops_per_step"] / r["batch"] / 1e9
        peak_gb = "-" if r["peak_gb"] != r["peak_gb"] else f"{r['peak_gb']:.1f}"  # NaN on CPU
        lines.append(
            f"| {r['precision']} | {r['fusion']} | {r['label']} | {r['e2e_samples_s']:.1f} | "
            f"{r['prep_samples_s']:.1f} | {r['model_samples_s']:.1f} | "
            f"{r['model_ms_per_step']:.1f} | {peak_gb} | {gflop:.1f} | "
            f"{r['flops_s'] / 1e12:.3g} | {100 * r['flops_s'] / peak:.1f}% |")
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        machine = machine_name(device)
        config = args.config.resolve()
        config_name = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
        append_section(
            f"SeGAN training speed{' (smoke, CPU)' if args.smoke else ''}", machine,
            f"Config `{config_name}`; stage-2 steps; a sample is one object; MFU against a "
            f"bf16 matmul rate of {peak / 1e12:.1f} TFLOP/s measured in the same run; "
            f"{args.workers} DataLoader workers.", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
