"""Where a SeGAN stage-2 training step spends its GPU time: per network, per layer, per kernel.

    # on the GPU machine, after benchmarks/train_gpu.py --generate made a dataset there
    python benchmarks/profile_step.py --data DIR [--batch 512] [KEY=VALUE ...]
    python benchmarks/profile_step.py --smoke        # CPU, tiny config: checks the script

Three tables (printed; appended to docs/benchmarks.md unless --no-append):
1. each network alone, forward + backward on the step's real shapes: ms, GFLOP, TFLOP/s;
2. each layer (Sequential block) of G and D alone, forward + backward: ms, TFLOP/s;
3. the GPU kernels of whole steps (torch.profiler), grouped into kinds (convolution, matmul,
   normalisation, element-wise, optimiser, copies) and the slowest kernels by total time.
All timings: CUDA events around --reps repetitions after warm-up, on one prepared batch, with
the run's precision (autocast), channels_last and cuDNN's autotuner as training uses them.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from benchdoc import append_section, machine_name
from segan.train import build_segan, load_config
from segan.train.cache import open_cache
from segan.train.data import ObjectBatches, ObjectBatchSampler, prepare_batch
from segan.train.runtime import compile_submodules, make_runtime
from segan.train.tasks import SeGANTask, make_optimizers
from train_gpu import generate_data

ROOT = Path(__file__).resolve().parents[1]

KINDS = [  # first match wins; names of cuDNN/CUTLASS/Triton/ATen kernels
    ("optimiser", r"adam|sgd|multi_tensor|foreach"),
    ("normalisation", r"batch_norm|batchnorm|bn_|welford|native_batch"),
    ("convolution", r"conv|cudnn|xmma|implicit|dgrad|wgrad|fprop|nchwtonhwc|nhwctonchw"),
    ("matmul", r"gemm|sm90|cutlass|matmul|addmm|aten::mm$|bmm"),
    ("roi / resampling", r"roi|upsample|grid_sampler|bilinear"),
    ("copies / layout", r"copy|cat|memcpy|memset|fill|transpose"),
    ("reductions", r"reduce|sum|mean"),
    ("element-wise", r"elementwise|vectorized|unrolled|leaky|relu|tanh|sigmoid|threshold|"
                     r"dropout|bernoulli|mul|add|binary|where|clamp"),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, low):
            return kind
    return "other"


class Timer:
    def __init__(self, device: torch.device):
        self.device = device

    def __call__(self, fn: Callable[[], object], reps: int, warmup: int = 3) -> float:
        """Milliseconds per call of fn."""
        for _ in range(warmup):
            fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            torch.cuda.synchronize(self.device)
            return start.elapsed_time(end) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) * 1e3 / reps


def flops_of(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def fwd_bwd(module: nn.Module, inputs: list[torch.Tensor], autocast) -> Callable[[], None]:
    """Forward + backward of module(*inputs) against a fixed random output gradient."""
    grad_out: list[torch.Tensor] = []

    def run() -> None:
        with autocast():
            y = module(*inputs)
        if not grad_out:
            grad_out.append(torch.randn_like(y))
        y.backward(grad_out[0])
        module.zero_grad(set_to_none=True)
        for x in inputs:
            x.grad = None
    return run


def leaf(x: torch.Tensor, grad: bool = True) -> torch.Tensor:
    return x.detach().clone().requires_grad_(grad)


class Probe(nn.Module):
    """Records each block's input while the network runs once (to time blocks alone)."""

    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        super().__init__()
        self.inputs: dict[str, tuple[torch.Tensor, ...]] = {}
        self.handles = [b.register_forward_pre_hook(self._hook(name)) for name, b in blocks]

    def _hook(self, name: str):
        def hook(_m, args):
            self.inputs[name] = tuple(a.detach() for a in args)
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "segan.yaml")
    ap.add_argument("--batch", type=int, default=512, help="objects per step")
    ap.add_argument("--per-image", type=int, default=8, help="data.objects_per_image")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=25, help="slowest kernels listed")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile segmentor, G and D (run.compile) after counting FLOPs")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="segan-profile-"))
    if args.smoke:
        args.config, args.batch, args.per_image, args.reps = ROOT / "configs/tiny.yaml", 8, 4, 2
        args.profile_steps, args.top = 1, 10
        args.data = args.data or generate_data(tmp / "data", "tiny", None, 4, 1)
    if args.data is None:
        ap.error("pass --data DIR (benchmarks/train_gpu.py --generate makes one)")

    over = [f"data.batch_objects={args.batch}", f"data.objects_per_image={args.per_image}",
            "data.fixed_images=true", "model.mask_fusion=roi", "model.backbone_weights=none",
            f"run.device={'cpu' if args.smoke else 'auto'}"]
    cfg = load_config(args.config, over + args.overrides)
    task = SeGANTask(cfg)
    rt = make_runtime(cfg.run, static_shapes=task.static_shapes)
    dev, d = rt.device, cfg.data
    cache = open_cache(args.data, d.train_split, d.image_size, d.expand_max,
                       args.cache_dir or tmp / "cache", workers=d.cache_workers)
    torch.manual_seed(0)
    net = build_segan(cfg, "none")
    model = rt.prepare(net)
    net.train()
    opt = make_optimizers(net, cfg.optim)
    scaler = rt.grad_scaler()
    sampler = ObjectBatchSampler(cache.obj_start, d.batch_objects, d.objects_per_image, 0,
                                 fixed_images=d.fixed_images)
    objects = ObjectBatches(cache, d, seed=0, with_union=cfg.model.segmentor_context)
    batch = prepare_batch(objects[next(iter(sampler))], dev, d, cfg.model.mask_size,
                          cfg.model.crop_size, rt.channels_last)
    timer = Timer(dev)
    step = cfg.schedule.stage1_steps  # a stage-2 step

    def train_step() -> None:
        task.train_step(step, model, net, batch, opt, rt, scaler)

    step_flops = flops_of(train_step)  # eager: FlopCounterMode does not see compiled code
    K = batch.num_objects

    # 1. each network alone
    G, D, S = net.generator, net.discriminator, net.segmentor
    blocks = ([(f"G.down{i}", b) for i, b in enumerate(G.down)]
              + [(f"G.up{i}", b) for i, b in enumerate(G.up)]
              + [(f"D.{i}", m) for i, m in enumerate(D.net)])
    probe = Probe(blocks)
    with torch.no_grad(), rt.autocast():
        out = net(batch.images, batch.visible_masks, batch.boxes,
                  visible_union=batch.visible_union)
        D(out["generator_input"], batch.target.to(out["generator_input"].dtype))
    probe.remove()
    M = out["generator_input"]
    nets = {
        "segmentor (backbone + ROI + fc)": fwd_bwd(
            S, [leaf(batch.images, False), leaf(batch.visible_masks, False), batch.boxes],
            rt.autocast),
        "generator G (U-Net)": fwd_bwd(G, [leaf(M, False)], rt.autocast),
        "discriminator D (one pass)": fwd_bwd(D, [leaf(M, False), leaf(batch.target.to(M.dtype))],
                                              rt.autocast),
    }
    net_flops = {name: flops_of(fn) for name, fn in nets.items()}
    if args.compile:  # after FLOP counting and the probe: both need the eager modules
        compile_submodules(net, task.compile_modules)
    step_ms = timer(train_step, args.reps)
    print(f"step: {step_ms:.1f} ms, {K / step_ms * 1e3:.1f} samples/s", file=sys.stderr)
    rows1 = [(name, timer(fn, args.reps), net_flops[name]) for name, fn in nets.items()]
    rows1.append(("whole stage-2 step (D step, then S + G step)", step_ms, step_flops))
    t1 = ["| network, forward + backward | ms | share of step | GFLOP | TFLOP/s |",
          "|---|---|---|---|---|"]
    for name, ms, fl in rows1:
        t1.append(f"| {name} | {ms:.2f} | {100 * ms / step_ms:.0f}% | {fl / 1e9:.0f} | "
                  f"{fl / ms / 1e9:.0f} |")

    # 2. each block of G and D alone (its recorded input; the input needs a gradient except
    # for the first block of each network, as in training)
    t2 = ["| block | input shape | ms | GFLOP | TFLOP/s |", "|---|---|---|---|---|"]
    for name, block in blocks:
        if name not in probe.inputs:
            continue
        first = name in ("G.down0", "D.0")
        ins = [leaf(x, not first) for x in probe.inputs[name]]
        fn = fwd_bwd(block, ins, rt.autocast)
        ms, fl = timer(fn, args.reps), flops_of(fn)
        shape = "x".join(map(str, ins[0].shape))
        layers = [type(m).__name__ for m in block.modules() if m is not block]
        t2.append(f"| {name}: {' '.join(layers) or type(block).__name__} | {shape} | "
                  f"{ms:.2f} | {fl / 1e9:.1f} | {fl / ms / 1e9:.0f} |")

    # 3. kernels of whole steps
    acts = [torch.profiler.ProfilerActivity.CPU]
    if dev.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(args.profile_steps):
            train_step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    kernels: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for ev in prof.events():
        if dev.type == "cuda" and ev.device_type == torch.autograd.DeviceType.CUDA:
            kernels[ev.name][0] += ev.device_time / 1e3  # ms
            kernels[ev.name][1] += 1
    if dev.type != "cuda":  # CPU: self time of the ATen ops instead
        for ev in prof.key_averages():
            if ev.key.startswith("aten::"):
                kernels[ev.key] = [ev.self_cpu_time_total / 1e3, ev.count]
    total = sum(v[0] for v in kernels.values()) or 1.0
    by_kind: dict[str, float] = defaultdict(float)
    for name, (ms, _) in kernels.items():
        by_kind[kind_of(name)] += ms
    n = args.profile_steps
    t3 = ["| kind of kernel | ms per step | share |", "|---|---|---|"]
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        t3.append(f"| {kind} | {ms / n:.1f} | {100 * ms / total:.1f}% |")
    t3 += ["", "| kernel (slowest by total time) | kind | calls per step | ms per step | share |",
           "|---|---|---|---|---|"]
    for name, (ms, count) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:args.top]:
        short = name if len(name) < 90 else name[:87] + "..."
        short = short.replace("|", "/")
        t3.append(f"| `{short}` | {kind_of(name)} | {count / n:.0f} | {ms / n:.2f} | "
                  f"{100 * ms / total:.1f}% |")

    table = "\n\n".join("\n".join(t) for t in (t1, t2, t3))
    print(table)
    if not args.no_append:
        machine = machine_name(dev)
        append_section(
            f"Where a SeGAN training step spends its time{' (smoke, CPU)' if args.smoke else ''}",
            machine,
            f"{rt.precision}, roi fusion, {'torch.compile, ' if args.compile else ''}"
            f"{K} objects of {batch.images.shape[0]} images per step "
            f"(data.fixed_images), cuDNN autotuner "
            f"{'on' if torch.backends.cudnn.benchmark else 'off'}; "
            f"whole step {step_ms:.1f} ms = {K / step_ms * 1e3:.0f} samples/s model-only, "
            f"{step_flops / step_ms / 1e9:.0f} TFLOP/s.", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
