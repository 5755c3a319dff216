"""Latency of `SeganPredictor.predict` for all objects of one 500x500 image.

    python benchmarks/predict_latency.py                   # CPU here, or CUDA when present
    python benchmarks/predict_latency.py --device cuda     # on the GPU machine
    python benchmarks/predict_latency.py --data DATA       # a real test image of DATA instead
    python benchmarks/predict_latency.py --config configs/segan_compact.yaml --exact-objects \
        --set model.ngf=16                                 # another architecture, 20 objects
    python benchmarks/predict_latency.py --bundle --onnx --exact-objects --threads 2 \
        --json LATENCY.json                  # the bundled model, PyTorch and onnxruntime

The model is the dyce-size one: configs/segan.yaml (ResNet-18 segmentor with the paper's
"input" fusion, 58x58 masks, U-Net 256 painter) with --backbone-weights none (random weights:
latency does not depend on the values), exported to safetensors and loaded through
`SeganPredictor.from_checkpoint`, so the timed path is the user's. One call = preprocessing,
one forward of every object, pasting back to 500x500, occlusion graph and layers, NumPy out.
With --bundle, the model bundled with the package instead (`SeganPredictor.pretrained()`, the
trained weights of `segan predict` without --checkpoint), or the bundle at --bundle PATH.

The image: by default a synthetic 500x500 one with --objects visible masks (ellipses of random
size and place, later ones drawn over earlier ones, as occluders); with --data, the test image
of DATA with the most objects (its ground-truth S_V). Reports median/p90/min over --repeats
calls after --warmup, plus the network forward alone, and appends a section to
docs/benchmarks.md (--no-doc: print only). Targets (issue 5): under 1 s on the 2-core CPU,
under 5 ms on an H100 (issue 13).

    --breakdown   also the median time of each stage of predict() (`segan.inference.StageTimer`:
                  CUDA events on a GPU, no added synchronisation; wall clock on the CPU)
    --variants    on CUDA: the network forward also with channels_last and replayed as a CUDA
                  graph, each with its largest difference from the plain forward
    --threads N   torch threads on the CPU (default: torch's)
    --set K=V     a config override (as `segan train --set`), e.g. model.ngf=16; repeatable
    --onnx        also the same model exported to ONNX (`segan export --onnx`, a temporary
                  file) and run by onnxruntime (`SeganPredictor.from_onnx`, --threads intra-op
                  threads): its predict() and forward rows, interleaved with PyTorch's (CPU)
    --ensemble B [B ...]  also predict() with o averaged over the model and these SeGANs (run
                  folders or bundles; `segan.models.SegmentorEnsemble`, the model painting), its
                  rows interleaved with the model's: what `--method segan_ensemble` would cost
    --json FILE   also write the measurement as JSON (scripts/model_card.py --latency reads it)
    --exact-objects  the synthetic image has exactly --objects non-empty visible masks (an
                  ellipse hidden entirely by later ones is redrawn); default: --objects drawn,
                  the hidden ones dropped (the numbers before issue 13 were measured so)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchdoc import append_section, command_line
from segan.data.atomic import write_bytes_atomic
from segan.data.coco import mask_bbox
from segan.device import autocast, autocast_dtype, resolve_device
from segan.graphed_forward import capture_graph
from segan.inference import SeganPredictor, StageTimer
from segan.train import build_segan, export_safetensors, load_config
from segan.transforms import model_inputs, resize_image_u8, resize_planes_u8

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "package"  # --bundle without PATH: the package's bundled model


def synthetic_scene(n: int, size: int, seed: int, exact: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A (size, size, 3) uint8 image and up to n non-empty (size, size) bool visible masks
    (exactly n with `exact`: ellipses are added until n of them show)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    ids = np.full((size, size), -1)
    yy, xx = np.mgrid[:size, :size]
    k = 0
    while True:
        cy, cx = rng.uniform(0.1, 0.9, 2) * size
        ry, rx = rng.uniform(0.04, 0.2, 2) * size
        ids[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k  # later ones in front
        k += 1
        masks = ids[None] == np.arange(k)[:, None, None]
        masks = masks[masks.any(axis=(1, 2))]
        if k >= n and (not exact or len(masks) >= n):
            return image, masks


def dataset_scene(data: Path) -> tuple[np.ndarray, np.ndarray, str]:
    from segan.data.coco import load_annotations

    ds = load_annotations(data / "annotations" / "test.json", root=data)
    iid = max(ds.image_ids, key=lambda i: len(ds.annotations[i]))
    return ds.load_image(iid), ds.image_masks(iid)[1], ds.images[iid]["file_name"]


def timed(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - t)
    return out


def network_variants(net: torch.nn.Module, inputs: tuple, dev: torch.device, warmup: int,
                     repeats: int, compile_mode: str | None = None
                     ) -> list[tuple[str, list[float], float]]:
    """The forward with channels_last, replayed from a CUDA graph (plain and channels_last),
    and (compile_mode) torch.compile'd: (name, times, max abs difference from the plain
    forward's mask_probs and painted). A variant that fails is reported as such."""
    def run(x: tuple, module: torch.nn.Module = net) -> dict:
        # no autocast weight cache: a graph must not keep reading casts freed after capture
        with torch.no_grad(), autocast(dev, autocast_dtype(dev), cache_enabled=False):
            out = module(*x)
        return {k: out[k] for k in ("mask_probs", "painted")}

    ref = {k: v.float().clone() for k, v in run(inputs).items()}
    out: list[tuple[str, list[float], float]] = []
    try:
        _graph_variants(net, inputs, dev, warmup, repeats, run, ref, out)
    except Exception as e:  # report what was measured and why the rest was not
        print(f"variants stopped: {type(e).__name__}: {e}")
        out.append((f"failed: {type(e).__name__}: {str(e)[:80]}", [float("nan")], float("nan")))
    net.to(memory_format=torch.contiguous_format)
    if compile_mode:
        try:
            compiled = torch.compile(net, mode=compile_mode)
            t0 = time.perf_counter()
            got = run(inputs, compiled)
            torch.cuda.synchronize()
            print(f"torch.compile ({compile_mode}): first call {time.perf_counter() - t0:.0f} s")
            diff = max((got[k].float() - ref[k]).abs().max().item() for k in ref)
            out.append((f"torch.compile {compile_mode}",
                        timed(lambda: run(inputs, compiled), dev, warmup, repeats), diff))
        except Exception as e:
            print(f"torch.compile failed: {type(e).__name__}: {e}")
            out.append((f"torch.compile failed: {type(e).__name__}", [float("nan")],
                        float("nan")))
    return out


def _graph_variants(net, inputs, dev, warmup, repeats, run, ref, out) -> None:
    for last in (False, True):
        fmt = torch.channels_last if last else torch.contiguous_format
        net.to(memory_format=fmt)
        x = (inputs[0].contiguous(memory_format=fmt), inputs[1].contiguous(memory_format=fmt),
             inputs[2])
        if last:
            got = run(x)
            out.append(("channels_last", timed(lambda x=x: run(x), dev, warmup, repeats),
                        max((got[k].float() - ref[k]).abs().max().item() for k in ref)))
        # CUDA graph: static inputs, captured once after warm-up on a side stream
        static = tuple(t.clone() for t in x)
        graph, static_out = capture_graph(lambda static=static: run(static), dev, warmup=3)
        graph.replay()
        torch.cuda.synchronize()
        diff = max((static_out[k].float() - ref[k]).abs().max().item() for k in ref)
        out.append(("CUDA graph" + (", channels_last" if last else ""),
                    timed(graph.replay, dev, warmup, repeats), diff))
        del graph


def load_model(args: argparse.Namespace, dev: torch.device, tmp: Path
               ) -> tuple[SeganPredictor, str, dict[str, Any], Path]:
    """(the predictor, the Model line's description, the model's identity for --json, the
    checkpoint or bundle that `export_onnx` takes)."""
    if args.bundle is not None:
        from segan.bundle import package_bundle

        predictor = SeganPredictor.pretrained(
            dev, bundle=None if args.bundle == PACKAGE else args.bundle)
        ident = predictor.identity
        path = Path(ident["path"])
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        what = "the bundled model" if path == package_bundle() else "the bundle"
        return (predictor, f"{what} {shown}, trained, step {ident['step']}, manifest sha256 "
                f"{ident['sha256'][:16]}...",
                {"kind": "bundle", "path": str(shown), "step": ident["step"],
                 "manifest_sha256": ident["sha256"]}, path)
    torch.manual_seed(args.seed)
    cfg = load_config(args.config, [*args.set, "model.backbone_weights=none"])
    net = build_segan(cfg, "none")
    path = export_safetensors(net, tmp / "model.safetensors", cfg.to_dict(), step=0)
    config = args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
    sets = "".join(f" --set {s}" for s in args.set)
    return (SeganPredictor.from_checkpoint(path, device=dev), f"{config}{sets}, random weights",
            {"kind": "config", "config": f"{config}{sets}"}, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "segan.yaml")
    ap.add_argument("--bundle", nargs="?", const=PACKAGE, default=None, metavar="PATH",
                    help="time the package's bundled model (or the bundle at PATH) instead of "
                    "--config with random weights")
    ap.add_argument("--onnx", action="store_true",
                    help="also time the same model exported to ONNX, on onnxruntime (CPU)")
    ap.add_argument("--json", type=Path, default=None, metavar="FILE",
                    help="also write the measurement as JSON")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--data", type=Path, default=None, help="use DATA's test image")
    ap.add_argument("--objects", type=int, default=20,
                    help="synthetic objects (a dyce-preset view has about 20)")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10, help="0: print the FLOPs only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    ap.add_argument("--breakdown", action="store_true", help="time each stage of predict()")
    ap.add_argument("--variants", action="store_true",
                    help="CUDA: also time channels_last and CUDA-graph forwards")
    ap.add_argument("--compile", default=None, metavar="MODE",
                    help="with --variants: also torch.compile(mode=MODE), e.g. default, "
                         "max-autotune (minutes of compilation)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. model.ngf=16 (repeatable)")
    ap.add_argument("--ensemble", type=Path, nargs="+", default=[], metavar="CHECKPOINT",
                    help="also time the model with these SeGANs' o averaged in")
    ap.add_argument("--exact-objects", action="store_true",
                    help="exactly --objects visible objects in the synthetic image")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    dev = resolve_device(args.device, "--device")
    if args.onnx and dev.type != "cpu":
        ap.error("--onnx times onnxruntime on the CPU: add --device cpu")
    if args.bundle is not None and args.set:
        ap.error("--set changes --config's model, not a bundle's")
    with tempfile.TemporaryDirectory() as tmp:
        predictor, model_desc, model_ident, source = load_model(args, dev, Path(tmp))
        onnx_predictor = None
        if args.onnx:
            from segan.onnx_export import export_onnx

            t0 = time.perf_counter()
            onnx_path = export_onnx(None if args.bundle == PACKAGE else source,
                                    Path(tmp) / "model.onnx")
            print(f"exported {onnx_path.stat().st_size / 2**20:.1f} MiB of ONNX in "
                  f"{time.perf_counter() - t0:.0f} s")
            onnx_predictor = SeganPredictor.from_onnx(onnx_path, threads=args.threads)
    cfg = predictor.cfg
    if args.data is not None:
        image, visible, source_desc = dataset_scene(args.data)
    else:
        image, visible = synthetic_scene(args.objects, args.size, args.seed, args.exact_objects)
        source_desc = f"synthetic {args.size}x{args.size}, seed {args.seed}"
    H, W = image.shape[:2]
    n = len(visible)

    # the network alone, on prepared inputs (what the rest of the call costs is the difference)
    S = cfg.data.image_size
    inputs = model_inputs(resize_image_u8(image, S),
                          resize_planes_u8(visible[:, None].astype(np.uint8) * 255, S),
                          [mask_bbox(m) for m in visible], (H, W), cfg, dev)

    def forward(p: SeganPredictor = predictor) -> None:
        with torch.no_grad(), autocast(dev, p.amp_dtype):  # as predict()
            p.net(*inputs)

    # FLOPs of the forward for one object (they scale with the objects: one pass each)
    one = (inputs[0], inputs[1][:1], inputs[2][:1])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        predictor.net(*one)
    gflop = counter.get_total_flops() / 1e9
    by = {k: sum(v.values()) / 1e9 for k, v in counter.get_flop_counts().items()}
    print(f"forward: {gflop:.1f} GFLOP per object (segmentor "
          f"{by.get('SeGAN.segmentor', 0):.1f}, painter {by.get('SeGAN.generator', 0):.1f}); "
          f"{n} objects: {gflop * n:.0f} GFLOP")
    if args.repeats == 0:
        return 0

    # interleaved, so that a change in the machine's load hits every row alike
    stages = StageTimer() if args.breakdown else None
    rows: dict[str, tuple[str, Any, list[float]]] = {
        "predict": (f"predict(), all {n} objects, {H}x{W}",
                    lambda: predictor.predict(image, visible, timer=stages), []),
        "forward": ("network forward only", forward, [])}
    if predictor.graphed is not None:
        # the predictor replays its forward from CUDA graphs; the same call with the plain one
        plain = SeganPredictor(predictor.net, cfg, dev, cuda_graphs=False)
        rows["predict_plain"] = ("predict(), plain forward (cuda_graphs=False)",
                                 lambda: plain.predict(image, visible), [])
        rows["forward_graph"] = ("network forward only, CUDA graph replay (the predictor's)",
                                 lambda: predictor.graphed(*inputs), [])
    if args.ensemble:
        from segan.checkpoint import load_segan
        from segan.models import SegmentorEnsemble

        members = [predictor.net, *(load_segan(b, dev)[0] for b in args.ensemble)]
        ens = SeganPredictor(SegmentorEnsemble(members).eval(), cfg, dev, cuda_graphs=False)
        rows["ensemble_predict"] = (f"predict(), o averaged over {len(members)} SeGANs "
                                    "(SegmentorEnsemble, plain forward)",
                                    lambda: ens.predict(image, visible), [])
    if onnx_predictor is not None:
        rows["onnx_predict"] = (f"onnxruntime: predict(), all {n} objects, {H}x{W}",
                                lambda: onnx_predictor.predict(image, visible), [])
        rows["onnx_forward"] = ("onnxruntime: network forward only",
                                lambda: forward(onnx_predictor), [])
    for _, fn, _ in rows.values():
        timed(fn, dev, args.warmup, 0)
    if stages is not None:
        stages.times.clear()
    for _ in range(args.repeats):
        for _, fn, times in rows.values():
            times += timed(fn, dev, 0, 1)
    variants = network_variants(predictor.net, inputs, dev, args.warmup, args.repeats,
                                args.compile) if args.variants and dev.type == "cuda" else []

    def quantiles(xs: list[float]) -> dict[str, float]:
        q = sorted(xs)
        p90 = q[min(len(q) - 1, int(round(0.9 * (len(q) - 1))))]
        return {"median_ms": round(1000 * statistics.median(xs), 1),
                "p90_ms": round(1000 * p90, 1), "min_ms": round(1000 * min(xs), 1)}

    def ms(xs: list[float]) -> str:
        return " | ".join(f"{v:.1f}" for v in quantiles(xs).values())

    load = None
    if dev.type == "cuda":
        machine = f"{torch.cuda.get_device_name(dev)}, bf16 autocast"
    else:
        load = os.getloadavg()[0]  # the 2-core machine is shared: say how busy it was
        machine = (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads"
                   + (f" and {args.threads or 'default'} onnxruntime intra-op threads"
                      if onnx_predictor is not None else "")
                   + f", fp32, load average {load:.1f} at the end")
    params = sum(p.numel() for n_, p in predictor.net.named_parameters()
                 if not n_.startswith("discriminator."))
    table = "| what | median ms | p90 ms | min ms |\n|---|---|---|---|" + "".join(
        f"\n| {label} | {ms(times)} |" for label, _, times in rows.values())
    if stages is not None:
        table += "".join(f"\n| predict() stage: {k} | {ms([t / 1000 for t in v])} |"
                         for k, v in stages.times.items())
    for name, times, diff in variants:
        table += f"\n| network forward, {name} (max abs diff {diff:.2g}) | {ms(times)} |"
    arch = (f"segmentor {cfg.model.segmentor}"
            + (f" {cfg.model.backbone} at {cfg.model.segmentor_input_size}, mask "
               f"{cfg.model.mask_size}, context {cfg.model.segmentor_context}"
               if cfg.model.segmentor == "crop_unet" else
               f", mask_fusion {cfg.model.mask_fusion}")
            + f", image {S}, painter crop {cfg.model.crop_size}, num_downs "
            f"{cfg.model.num_downs}, ngf {cfg.model.ngf}")
    notes = (f"Model: {model_desc} ({arch}), "
             f"{params / 1e6:.2f} M inference parameters, {gflop:.2f} GFLOP "
             f"per object (segmentor {by.get('SeGAN.segmentor', 0):.2f}, painter "
             f"{by.get('SeGAN.generator', 0):.2f}; torch.utils.flop_counter). Image: "
             f"{source_desc}, {n} objects. {args.warmup} warm-up calls each, {args.repeats} "
             f"timed, the {len(rows)} rows interleaved. "
             + ("onnxruntime rows: the same model exported by `segan export --onnx` (fp32, "
                "CPUExecutionProvider) in `SeganPredictor.from_onnx`. " if onnx_predictor
                else "")
             + ("Stages (--breakdown): each a median over the timed calls, so they need not "
                "add up to the call's median; on CUDA timed by events on the stream, a stage "
                "including the host time before its kernels start. " if stages else "")
             + ("Variants (--variants): timed after the two rows, max abs diff of the mask "
                "probabilities and painted crops against the plain forward. " if variants else "")
             + "Targets: under 1 s on the 2-core CPU, under 5 ms on an H100 (issue 13).")
    print(machine)
    print(notes)
    print(table)
    if args.json is not None:
        record = {"format": "segan-predict-latency", "version": 1,
                  "date": dt.date.today().isoformat(), "command": command_line(),
                  "machine": machine, "device": dev.type,
                  "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                  "torch_threads": torch.get_num_threads(),
                  "onnx_threads": args.threads if onnx_predictor is not None else None,
                  "load_average": None if load is None else round(load, 2),
                  "model": model_ident, "image": source_desc, "size": [H, W], "objects": n,
                  "warmup": args.warmup, "repeats": args.repeats,
                  "rows": {k: quantiles(times) for k, (_, _, times) in rows.items()}}
        write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())
        print(f"wrote {args.json}")
    if not args.no_doc:
        doc = append_section("Predictor latency (benchmarks/predict_latency.py)", machine,
                             notes, table)
        print(f"appended to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
