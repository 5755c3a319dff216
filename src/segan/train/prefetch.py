"""Prepare the next batch on the device while the current step runs.

A task's `prepare_batch` (host-to-device copies, pasting patches, section 5.1's crops) is GPU
work on the training stream unless something moves it: then every step waits for its own
batch's preparation. `DevicePrefetcher` runs it one batch ahead on a side CUDA stream, so the
copies and the memory-bound crop kernels overlap the previous step's convolutions. The batches
and their order are the same as without it (preparation draws no random numbers on the
device); on the CPU it is a plain `prepare(next(raw))`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch


def _tensors(batch: Any) -> list[torch.Tensor]:
    """Every tensor in a batch: dataclass fields, dict values, list and tuple items, nested
    (detection batches hold lists of per-image dicts)."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        items = [getattr(batch, f.name) for f in dataclasses.fields(batch)]
    elif isinstance(batch, dict):
        items = list(batch.values())
    elif isinstance(batch, list | tuple):
        items = list(batch)
    else:
        return []
    return [t for item in items for t in _tensors(item)]


class DevicePrefetcher:
    """Iterator of prepared batches: `prepare(raw)` for each raw batch of `raw_batches`."""

    def __init__(self, raw_batches: Iterator[Any], prepare: Callable[[Any], Any],
                 device: torch.device):
        self.raw_batches, self.prepare = raw_batches, prepare
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.pending: Any = None
        self.exhausted = False

    def __iter__(self) -> DevicePrefetcher:
        return self

    def _launch(self) -> None:
        try:
            raw = next(self.raw_batches)
        except StopIteration:
            self.exhausted = True
            return
        with torch.cuda.stream(self.stream):
            self.pending = self.prepare(raw)

    def __next__(self) -> Any:
        if self.stream is None:
            return self.prepare(next(self.raw_batches))
        if self.pending is None and not self.exhausted:
            self._launch()
        if self.pending is None:
            raise StopIteration
        batch, self.pending = self.pending, None
        current = torch.cuda.current_stream(self.stream.device)
        current.wait_stream(self.stream)
        for t in _tensors(batch):  # made on the side stream, used and freed on this one
            t.record_stream(current)
        self._launch()  # the next batch's preparation overlaps the caller's step
        return batch
