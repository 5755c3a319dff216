"""Where the math runs and in which precision: the package's one choice of both.

Training (`segan.train.runtime`), the predictor (`segan.inference`), the visible segmenter,
the evaluation and the benchmarks all ask here, so "auto" means the same everywhere:

- device: "auto" (or None) = CUDA when a device is present, else the CPU; "cpu", "cuda",
  "cuda:N" or a `torch.device` as given. CUDA asked for without CUDA -> ValueError.
- precision: "auto" = bf16 autocast on CUDA, fp32 on the CPU; "fp32", "bf16" or "fp16"
  as given. The autocast dtype is None for fp32. Losses are computed in fp32 whatever the
  autocast dtype (`segan.losses`); fp16 needs a GradScaler (`segan.train.runtime`).

Imports only torch: every layer of the package may use it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

# precision name -> autocast dtype (None: no autocast, fp32)
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device | None = None, option: str = "device"
                   ) -> torch.device:
    """The device to run on. device: None or "auto" (CUDA when available, else the CPU),
    "cpu", "cuda", "cuda:N" or a torch.device. option: the setting's name in messages
    (e.g. "run.device", "--device"). CUDA asked for without CUDA -> ValueError."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{option} must be auto, cpu or cuda, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{option} cuda was asked for but no CUDA device is available")
    return dev


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`: "auto" = bf16 on CUDA, None (fp32)
    elsewhere; "fp32" -> None, "bf16", "fp16" as named."""
    if precision == "auto":
        precision = "bf16" if torch.device(device).type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    return PRECISIONS[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """An autocast dtype's name as configs and reports write it: fp32 (None), bf16, fp16."""
    return {v: k for k, v in PRECISIONS.items()}[dtype]


def autocast(device: torch.device | str, dtype: torch.dtype | None,
             **options: Any) -> contextlib.AbstractContextManager:
    """torch.autocast on `device`'s type in `dtype`; a no-op context for None (fp32).
    options: passed to torch.autocast (e.g. cache_enabled=False for CUDA graphs)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype, **options)
