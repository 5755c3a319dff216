"""SeGAN's forward replayed from a CUDA graph: the predictor's network on a GPU.

The compact model's forward on one image's objects is a few hundred small kernels, so on a GPU
its time is the host's time to launch them (18.8 ms for 20 objects on an H100, for about 1 ms
of arithmetic: docs/benchmarks.md). A CUDA graph records the launches once and replays them
as one. Shapes are part of a graph, so there is one per input shape (the number of objects N;
the frame is fixed by the model), the most recent `max_graphs` kept. A replay runs the same
kernels on the same shapes as the plain forward, so it gives the same numbers (the benchmark's
`--variants` measured a max abs difference of 0).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from segan.device import autocast

# what `segan.inference.run_segan` reads of the network's output
OUTPUT_KEYS = ("mask_probs", "full_mask", "painted")


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    outputs: dict[str, torch.Tensor]


class GraphedForward:
    """`net(images, visible_masks, boxes)` under `amp_dtype` autocast, captured as a CUDA graph
    on the first call with each input shape and replayed after that. Returns fresh tensors
    (the graph's own outputs are overwritten by its next replay). If a capture fails, the
    reason is kept in `failed`, a warning says so once, and every call runs the plain forward.
    The network must stay on its device and in eval mode; its weights may change in place.
    One caller at a time: a graph's inputs and outputs are shared (a predictor per thread)."""

    def __init__(self, net: torch.nn.Module, amp_dtype: torch.dtype | None,
                 max_graphs: int = 4):
        self.net, self.amp_dtype, self.max_graphs = net, amp_dtype, max_graphs
        self.graphs: OrderedDict[tuple, _Captured] = OrderedDict()
        self.failed: str | None = None

    def __call__(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        inputs = (images, visible_masks, boxes)
        if self.failed is None:
            key = tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)
            captured = self.graphs.get(key)
            if captured is None:
                captured = self._capture(inputs)
                if captured is not None:
                    self.graphs[key] = captured
                    while len(self.graphs) > self.max_graphs:
                        self.graphs.popitem(last=False)
            else:
                self.graphs.move_to_end(key)
            if captured is not None:
                for static, given in zip(captured.inputs, inputs, strict=True):
                    static.copy_(given)
                captured.graph.replay()
                return {k: v.clone() for k, v in captured.outputs.items()}
        return self._run(inputs)

    @torch.no_grad()
    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> _Captured | None:
        static = tuple(t.clone() for t in inputs)
        try:
            graph, outputs = capture_graph(lambda: self._run(static), static[0].device)
        except RuntimeError as e:
            self.failed = f"{type(e).__name__}: {e}"
            warnings.warn(f"CUDA graph capture failed, the plain forward runs instead: "
                          f"{self.failed}", stacklevel=3)
            return None
        return _Captured(graph, static, outputs)

    def _run(self, inputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        # no autocast weight cache: a graph must not read casts that are freed after capture
        with autocast(inputs[0].device, self.amp_dtype, cache_enabled=False):
            out = self.net(*inputs)
        return {k: out[k] for k in (*OUTPUT_KEYS, "amodal_deltas") if k in out}


def capture_graph(fn: Callable[[], Any], device: torch.device, warmup: int = 2
                  ) -> tuple[torch.cuda.CUDAGraph, Any]:
    """`fn()` (which reads only static tensors) captured as a CUDA graph after `warmup` calls on
    a side stream (cuDNN's and the allocator's first-call work stays out of the graph, as
    torch.cuda.graph's documentation asks): the graph and fn's outputs, which each replay
    overwrites. Raises RuntimeError when fn cannot be captured (e.g. it synchronises)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph, outputs
