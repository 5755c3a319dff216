"""The painter's narrow convolutions (3-6 input or 1-3 output channels) and ways to run them.

    python benchmarks/narrow_convs.py [--batch 512] [--compile]     # on the GPU machine
    python benchmarks/narrow_convs.py --smoke                       # CPU, checks the script

benchmarks/profile_step.py found four layers of a stage-2 step running at 7-24 TFLOP/s where
the others reach 200-700: G's first convolution (3 -> 64) and last transposed convolution
(128 -> 3), D's first convolution (6 -> 64, three passes a step) and D's scoring convolution
(512 -> 1). Each variant here computes the same function (zero-padded channels, or the
transposed convolution rewritten as a 3x3 convolution and a pixel shuffle); the script checks
outputs and gradients against the plain layer in fp32, then times forward + backward at the
training shapes (bf16 autocast, channels_last, cuDNN autotuner on). --compile also times G and
D compiled whole (torch.compile, default mode) against eager.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchdoc import append_section, machine_name
from segan.device import autocast as device_autocast
from segan.device import autocast_dtype, resolve_device
from segan.models.discriminator import PatchDiscriminator
from segan.models.painter import SubpixelConvTranspose2d, UNetGenerator


def pad_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1])) if channels > x.shape[1] else x


def variants() -> dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], bool,
                                  dict[str, Callable]]]:
    """layer -> (make the plain layer, input shape per sample, input needs grad, variants);
    a variant maps (layer, x) -> the same output as layer(x)."""

    def conv_in_pad(c):
        return lambda m, x: F.conv2d(pad_channels(x, c), pad_channels(m.weight, c), m.bias,
                                     m.stride, m.padding)

    def conv_out_pad(c):
        def f(m, x):
            w = F.pad(m.weight, (0, 0, 0, 0, 0, 0, 0, c - m.weight.shape[0]))
            b = None if m.bias is None else F.pad(m.bias, (0, c - m.bias.shape[0]))
            return F.conv2d(x, w, b, m.stride, m.padding)[:, :m.weight.shape[0]]
        return f

    def convt_out_pad(c):
        def f(m, x):
            w = F.pad(m.weight, (0, 0, 0, 0, 0, c - m.weight.shape[1]))
            b = F.pad(m.bias, (0, c - m.bias.shape[0]))
            return F.conv_transpose2d(x, w, b, 2, 1)[:, :m.weight.shape[1]]
        return f

    def convt_subpixel(pad_to=0):
        def f(m, x):
            cout = m.weight.shape[1]
            k = SubpixelConvTranspose2d.subpixel_weight(m)  # the model's rearrangement
            b = m.bias.repeat_interleave(4)
            if pad_to:
                k = F.pad(k, (0, 0, 0, 0, 0, 0, 0, pad_to - 4 * cout))
                b = F.pad(b, (0, pad_to - 4 * cout))
            y = F.conv2d(x, k, b, 1, 1)
            if pad_to:
                y = y[:, :4 * cout]
            return F.pixel_shuffle(y, 2)
        return f

    return {
        "G.down0 conv 3->64, 256->128": (
            lambda: nn.Conv2d(3, 64, 4, 2, 1, bias=False), (3, 256, 256), True,
            {"input padded to 4 channels": conv_in_pad(4),
             "input padded to 8 channels": conv_in_pad(8)}),
        "G.up0 transposed conv 128->3, 128->256": (
            lambda: nn.ConvTranspose2d(128, 3, 4, 2, 1), (128, 128, 128), True,
            {"output padded to 8 channels": convt_out_pad(8),
             "output padded to 16 channels": convt_out_pad(16),
             "3x3 conv to 12 channels + pixel shuffle": convt_subpixel(),
             "3x3 conv to 16 channels + pixel shuffle": convt_subpixel(16)}),
        "D.0 conv 6->64, 256->128": (
            lambda: nn.Conv2d(6, 64, 4, 2, 1), (6, 256, 256), True,
            {"input padded to 8 channels": conv_in_pad(8)}),
        "D.11 conv 512->1, 31->30": (
            lambda: nn.Conv2d(512, 1, 4, 1, 1), (512, 31, 31), True,
            {"output padded to 8 channels": conv_out_pad(8),
             "output padded to 16 channels": conv_out_pad(16)}),
    }


def check(make, shape, fn) -> float:
    """Largest |difference| of output, input grad and weight grad against the plain layer."""
    torch.manual_seed(0)
    m = make().double()
    x = torch.randn(2, *shape, dtype=torch.float64, requires_grad=True)
    y0 = m(x)
    g = torch.randn_like(y0)
    gx0, gw0 = torch.autograd.grad(y0, (x, m.weight), g)
    y1 = fn(m, x)
    gx1, gw1 = torch.autograd.grad(y1, (x, m.weight), g)
    return max(float((a - b).abs().max()) for a, b in ((y0, y1), (gx0, gx1), (gw0, gw1)))


def timed(fn: Callable[[], None], device: torch.device, reps: int) -> float:
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) * 1e3 / reps


def fwd_bwd(run: Callable[[torch.Tensor], torch.Tensor], params, x: torch.Tensor, autocast
            ) -> Callable[[], None]:
    grad: list[torch.Tensor] = []

    def f() -> None:
        with autocast():
            y = run(x)
        if not grad:
            grad.append(torch.randn_like(y))
        y.backward(grad[0])
        for p in params:
            p.grad = None
        x.grad = None
    return f


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    dev = resolve_device("cpu" if args.smoke else "auto")
    cuda = dev.type == "cuda"
    amp_dtype = autocast_dtype(dev)  # bf16 on CUDA, fp32 on the CPU: as training
    if args.smoke:
        args.batch, args.reps = 2, 1
    if cuda:
        torch.backends.cudnn.benchmark = True

    def autocast():
        return device_autocast(dev, amp_dtype)

    fmt = torch.channels_last if cuda else torch.contiguous_format
    rows = []
    for layer, (make, shape, needs_grad, alts) in variants().items():
        m = make().to(dev).to(memory_format=fmt)
        x = torch.randn(args.batch, *shape, device=dev).to(memory_format=fmt)
        x.requires_grad_(needs_grad)
        base = timed(fwd_bwd(m, list(m.parameters()), x, autocast), dev, args.reps)
        rows.append((layer, "plain layer", 0.0, base, 1.0))
        for name, fn in alts.items():
            err = check(make, shape, fn)
            ms = timed(fwd_bwd(lambda t, fn=fn, m=m: fn(m, t), list(m.parameters()), x,
                               autocast), dev, args.reps)
            rows.append((layer, name, err, ms, base / ms))
            print(f"{layer} / {name}: {ms:.2f} ms ({base / ms:.2f}x), err {err:.1e}",
                  file=sys.stderr)
    if args.compile:
        for label, make, inputs in [
            ("G (U-Net) whole", lambda: UNetGenerator(), [(3, 256, 256)]),
            ("D (PatchGAN) whole", lambda: PatchDiscriminator(), [(3, 256, 256), (3, 256, 256)]),
        ]:
            net = make().to(dev).to(memory_format=fmt).train()
            xs = [torch.randn(args.batch, *s, device=dev).to(memory_format=fmt)
                  .requires_grad_(True) for s in inputs]

            def run(_x, net=net, xs=xs):
                return net(*xs)
            base = timed(fwd_bwd(run, list(net.parameters()), xs[0], autocast), dev, args.reps)
            rows.append((label, "eager", 0.0, base, 1.0))
            t0 = time.perf_counter()
            compiled = torch.compile(net)

            def run_c(_x, compiled=compiled, xs=xs):
                return compiled(*xs)
            f = fwd_bwd(run_c, list(net.parameters()), xs[0], autocast)
            f()
            compile_s = time.perf_counter() - t0
            ms = timed(f, dev, args.reps)
            rows.append((label, f"torch.compile (compiled in {compile_s:.0f} s)", 0.0, ms,
                         base / ms))
            print(f"{label}: eager {base:.1f} ms, compiled {ms:.1f} ms", file=sys.stderr)

    lines = ["| layer | variant | max abs error (fp64) | ms fwd+bwd | speed-up |",
             "|---|---|---|---|---|"]
    for layer, name, err, ms, sp in rows:
        lines.append(f"| {layer} | {name} | {err:.1e} | {ms:.2f} | {sp:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if not args.no_append and cuda:
        append_section("Narrow convolutions of the painter", machine_name(dev),
                       f"Batch {args.batch}, bf16 autocast, channels_last, cuDNN autotuner on; "
                       "forward + backward (input gradient included); errors: fp64 outputs and "
                       "gradients against the plain layer.", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
