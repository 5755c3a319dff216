"""What a training checkpoint holds, in bytes: per top-level key, per sub-network of the model
state, and per sub-network of each optimiser's state (Adam's two moment buffers per parameter).

    python benchmarks/checkpoint_size.py RUN/checkpoints/ckpt-00000006.pt
    python benchmarks/checkpoint_size.py RUN          # the run's latest checkpoint

Each top-level entry is measured as the size of `torch.save` of that entry alone, less that of
an empty save (the zip container's 1.3 kB), so the rows add up to about the file's size;
sub-network rows count tensor storage only. Sub-networks are the first
two levels of the state dict's key names (segmentor.backbone, segmentor.mask_head, generator,
discriminator ...). An optimiser's per-parameter state is mapped to names through the order of
`net.<optimiser name>.parameters()` of the network rebuilt from the checkpoint's hparams
(SeGAN's optimisers are named after its sub-networks). Prints a Markdown table; nothing is
written.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from segan.checkpoint import load_checkpoint  # noqa: E402
from segan.train.checkpoint import latest_checkpoint  # noqa: E402

MB = 1e6


def saved_bytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


CONTAINER = saved_bytes(None)


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in a nested dict/list (storage only)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def group(name: str) -> str:
    return ".".join(name.split(".")[:2])


def optimizer_groups(name: str, opt_state: dict, net) -> dict[str, int]:
    """Tensor bytes of an optimiser's per-parameter state, by sub-network of `net.<name>`."""
    module = getattr(net, name, None) if net is not None else None
    names = ([f"{name}.{n}" for n, _ in module.named_parameters()] if module is not None
             else [])
    order = [i for g in opt_state["param_groups"] for i in g["params"]]
    out: dict[str, int] = defaultdict(int)
    for pos, idx in enumerate(order):
        key = group(names[pos]) if pos < len(names) else f"{name}.?"
        out[key] += tensor_bytes(opt_state["state"].get(idx, {}))
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a ckpt-*.pt file or a run folder")
    args = ap.parse_args(argv)
    path = args.checkpoint
    if path.is_dir():
        path = latest_checkpoint(path)
        if path is None:
            ap.error(f"{args.checkpoint}: no checkpoint in this run folder")
    ckpt = load_checkpoint(path)
    net = None
    if ckpt.get("config", {}).get("task", "segan") in (None, "segan"):
        from segan.models import SeGAN

        net = SeGAN.from_hparams(ckpt["model_hparams"])

    total = path.stat().st_size
    print(f"{path}: {total:,} bytes ({total / MB:.1f} MB)\n")
    print("| entry | bytes | MB | share |")
    print("|---|---:|---:|---:|")

    def row(label: str, n: int) -> None:
        print(f"| {label} | {n:,} | {n / MB:.1f} | {100 * n / total:.1f}% |")

    for key, value in ckpt.items():
        row(f"`{key}`", saved_bytes(value) - CONTAINER)
        if key == "model":
            by: dict[str, int] = defaultdict(int)
            for name, t in value.items():
                by[group(name)] += tensor_bytes(t)
            for g, n in by.items():
                row(f"&nbsp;&nbsp;{g}", n)
        if key == "optimizers":
            for name, state in value.items():
                for g, n in optimizer_groups(name, state, net).items():
                    row(f"&nbsp;&nbsp;{name} optimiser: {g}", n)
    weights, moments = tensor_bytes(ckpt.get("model", {})), tensor_bytes(ckpt.get("optimizers", {}))
    print(f"\nmodel state {weights / MB:.1f} MB, optimiser states {moments / MB:.1f} MB "
          f"({moments / max(weights, 1):.2f} x the model)")
    if net is not None:
        params = sum(p.numel() for p in net.parameters())
        print(f"parameters: {params:,} ({4 * params / MB:.1f} MB of fp32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
