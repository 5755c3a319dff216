"""Speed of the image-level models: the class-agnostic Mask R-CNN (ResNet-18-FPN vs ResNet-50-FPN)
and the depth network, training steps and inference, model-only on synthetic inputs.

    # on the GPU machine: DYCE's size (500 x 500, 20 objects an image), bf16 autocast
    python benchmarks/image_models.py --device cuda --size 500 --batch 8 --steps 20
    # here (CPU): a small size, to compare the two backbones
    python benchmarks/image_models.py --device cpu --size 160 --batch 2 --steps 3
    # the EfficientNet-Lite0 detector of configs/visible_effnet.yaml beside ResNet-18
    python benchmarks/image_models.py --device cuda --backbones resnet18 efficientnet_lite0

Inputs: `--batch` random images with `--objects` rectangles each (boxes and masks), the
architecture of configs/visible_maskrcnn.yaml (min_size = max_size = --size) and of
configs/depth_net.yaml (its own 256 px input, batch 16 on CUDA, --batch on CPU). A training
step is forward + backward + SGD (Mask R-CNN) or Adam (depth); inference is one image without
gradients. The first `--warmup` steps are not timed. Prints a table and appends it to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from benchdoc import append_section
from segan.device import autocast, autocast_dtype, precision_name, resolve_device
from segan.losses import scale_invariant_log_loss
from segan.models.depth_net import DepthNet
from segan.models.visible_segmenter import BACKBONES, MaskRCNNNet


def synthetic(batch: int, size: int, objects: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, size, size, generator=g).to(device))
        xy = torch.rand(objects, 2, generator=g) * size * 0.8
        wh = (torch.rand(objects, 2, generator=g) * 0.25 + 0.05) * size
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], 1).floor()
        masks = torch.zeros(objects, size, size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        targets.append({"boxes": boxes.to(device), "labels": torch.ones(objects, dtype=torch.int64,
                                                                        device=device),
                        "masks": masks.to(device)})
    return images, targets


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--backbones", nargs="+", choices=BACKBONES, default=["resnet18", "resnet50"],
                    help="Mask R-CNN trunks to time (segan.models.visible_segmenter.BACKBONES)")
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args()
    dev = resolve_device(args.device, "--device")
    amp_dtype = autocast_dtype(dev)  # bf16 on CUDA, fp32 on the CPU: as training
    amp = autocast(dev, amp_dtype)
    rows = []
    images, targets = synthetic(args.batch, args.size, args.objects, dev)
    for backbone in args.backbones:
        torch.manual_seed(0)
        net = MaskRCNNNet(backbone=backbone, min_size=args.size, max_size=args.size).to(dev)
        params = sum(p.numel() for p in net.parameters()) / 1e6
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

        def step(net=net, opt=opt) -> None:
            net.train()
            with amp:
                loss = sum(net(images, targets).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def infer(net=net) -> None:
            net.eval()
            with torch.no_grad(), amp:
                net(images[:1])

        t_step = timed(step, args.steps, args.warmup, dev)
        t_inf = timed(infer, args.steps, args.warmup, dev)
        rows.append((f"Mask R-CNN {backbone}-FPN", f"{params:.1f}", f"{args.size}",
                     f"{args.batch}", f"{t_step * 1000:.0f}", f"{args.batch / t_step:.2f}",
                     f"{t_inf * 1000:.0f}"))
        del net, opt
    S, B = 256, (16 if dev.type == "cuda" else args.batch)
    torch.manual_seed(0)
    depth = DepthNet().to(dev)
    x = torch.randn(B, 3, S, S, device=dev)
    y = torch.rand(B, 1, S, S, device=dev) * 5 + 0.5
    opt = torch.optim.Adam(depth.parameters(), lr=1e-4)

    def dstep() -> None:
        depth.train()
        with amp:
            out = depth(x)
        loss = scale_invariant_log_loss(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def dinfer() -> None:
        depth.eval()
        with torch.no_grad(), amp:
            depth(x[:1])

    t_step, t_inf = timed(dstep, args.steps, args.warmup, dev), timed(dinfer, args.steps,
                                                                       args.warmup, dev)
    params = sum(p.numel() for p in depth.parameters()) / 1e6
    rows.append(("depth network (ResNet-18 U-Net)", f"{params:.1f}", f"{S}", f"{B}",
                 f"{t_step * 1000:.0f}", f"{B / t_step:.2f}", f"{t_inf * 1000:.0f}"))

    head = ("| model | parameters (M) | image px | images/step | ms/step | images/s (train) "
            "| ms/image (inference) |\n|---|---|---|---|---|---|---|")
    table = "\n".join([head, *("| " + " | ".join(r) + " |" for r in rows)])
    print(table)
    if not args.no_doc:
        machine = (torch.cuda.get_device_name(dev) if dev.type == "cuda" else
                   f"{platform.processor() or platform.machine()} CPU, "
                   f"{torch.get_num_threads()} threads")
        notes = (f"Model-only on synthetic inputs ({args.objects} rectangles an image), "
                 f"{precision_name(amp_dtype)}{' autocast' if amp_dtype else ''}; "
                 f"{args.warmup} untimed warm-up steps, mean of {args.steps}.")
        append_section("Image-level models (Mask R-CNN, depth network)", machine, notes, table)


if __name__ == "__main__":
    main()
