"""Device, precision, torch.compile and DDP: everything about where and how the math runs.

The networks and the task never move tensors or pick dtypes themselves; they get a `Runtime`.
- device: "auto" = this rank's GPU when CUDA is present, else the CPU (`segan.device`).
- precision: "auto" = bf16 autocast on CUDA, fp32 on the CPU (`segan.device`); "fp16" adds a
  GradScaler. Losses are computed in fp32 whatever the autocast dtype (segan.losses).
- channels_last and TF32 on CUDA; `compile` compiles the segmentor, the generator and the
  discriminator in place (state-dict keys unchanged).
- DDP: the composed SeGAN forward (segmentor + generator) is wrapped in DistributedDataParallel
  with the discriminator's parameters ignored; the discriminator, which runs several times a
  step (real, fake, and for G's loss with frozen weights), is synchronised by hand:
  rank 0's buffers before its forward and one gradient all-reduce after its backward.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from segan.config import RunConfig
from segan.device import autocast, autocast_dtype, precision_name, resolve_device

from . import distributed
from .distributed import DistInfo


@dataclass
class Runtime:
    device: torch.device
    dist: DistInfo
    amp_dtype: torch.dtype | None  # autocast dtype, None = fp32
    channels_last: bool
    compile: bool

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def precision(self) -> str:
        return precision_name(self.amp_dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Enabled only for fp16 (bf16 keeps fp32's exponent range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def seed(self, seed: int) -> None:
        """Seed every generator this process uses (python, numpy, torch CPU and CUDA)."""
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def prepare(self, net: nn.Module,
                compile_modules: Sequence[str] = ("segmentor", "generator", "discriminator"),
                ddp_ignore: Sequence[str] = ("discriminator",)) -> nn.Module:
        """Move `net` to the device, apply memory format and compile its submodules
        `compile_modules`; return what computes its forward (`net` itself, or the DDP wrapper,
        which leaves the submodules `ddp_ignore` to the task). Defaults: SeGAN's."""
        net.to(self.device)
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if self.compile:
            compile_submodules(net, compile_modules)
        if not self.dist.distributed:
            return net
        ignore = []
        for name in ddp_ignore:
            sub = getattr(net, name)
            ignore += [f"{name}.{n}" for n, _ in sub.named_parameters()]
            ignore += [f"{name}.{n}" for n, _ in sub.named_buffers()]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(net, ignore)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)


def compile_submodules(net: nn.Module, names: Sequence[str]) -> None:
    """torch.compile each named submodule of `net` in place (state-dict keys unchanged)."""
    for name in names:
        getattr(net, name).compile()


def cudnn_benchmark_on(cfg: RunConfig, static_shapes: bool) -> bool:
    """Whether cuDNN's autotuner runs: `run.cudnn_benchmark`, whose "auto" follows the task's
    static_shapes (`make_runtime`)."""
    return static_shapes if cfg.cudnn_benchmark == "auto" else cfg.cudnn_benchmark == "always"


def make_runtime(cfg: RunConfig, static_shapes: bool = True) -> Runtime:
    """Resolve device and precision, join torchrun's process group, set backend flags.

    static_shapes: whether every step's tensors have the same shapes. cuDNN's autotuner
    re-tunes for each new shape, so it is only on when they do ("roi" fusion runs the backbone
    on a varying number of images per batch: with the autotuner on, end-to-end throughput fell
    to a tenth of the model-only rate on an H100); `run.cudnn_benchmark` may force it either
    way (`cudnn_benchmark_on`)."""
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"run.device must be auto, cpu or cuda, got {cfg.device!r}")
    device_type = resolve_device(cfg.device, "run.device").type
    info = distributed.init_distributed(device_type)
    device = torch.device("cuda", info.local_rank) if device_type == "cuda" else torch.device("cpu")
    amp_dtype = autocast_dtype(device, cfg.precision)
    if device_type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = cudnn_benchmark_on(cfg, static_shapes)
    elif cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    return Runtime(device=device, dist=info, amp_dtype=amp_dtype,
                   channels_last=cfg.channels_last and device_type == "cuda",
                   compile=cfg.compile)
