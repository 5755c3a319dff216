"""segan.train.prefetch: batches prepared one step ahead are the batches, in order."""

from dataclasses import dataclass

import pytest
import torch

from segan.train.prefetch import DevicePrefetcher


@dataclass
class Prepared:
    x: torch.Tensor
    y: torch.Tensor
    index: int


def prepare_on(device: torch.device):
    def prepare(raw: torch.Tensor) -> Prepared:
        x = raw.to(device, non_blocking=True)
        return Prepared(x=x * 2 + 1, y=x.sum(), index=int(raw[0]))
    return prepare


def raw_batches(n: int, pin: bool = False) -> list[torch.Tensor]:
    out = [torch.arange(i, i + 1000, dtype=torch.float32) for i in range(n)]
    return [t.pin_memory() for t in out] if pin else out


def test_cpu_prefetcher_is_plain_prepare():
    raws = raw_batches(4)
    got = list(DevicePrefetcher(iter(raws), prepare_on(torch.device("cpu")),
                                torch.device("cpu")))
    assert [b.index for b in got] == [0, 1, 2, 3]
    for b, raw in zip(got, raws, strict=True):
        torch.testing.assert_close(b.x, raw * 2 + 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_prefetcher_gives_the_same_batches_while_steps_run():
    dev = torch.device("cuda")
    raws = raw_batches(6, pin=True)
    expected = [prepare_on(dev)(r) for r in raws]
    w = torch.randn(2048, 2048, device=dev)
    got = []
    for b in DevicePrefetcher(iter(raws), prepare_on(dev), dev):
        for _ in range(20):  # a "step" on the default stream while the next batch is prepared
            w = torch.tanh(w @ w)
        got.append((b.x + 0).cpu())
        del b  # freed on the default stream: record_stream keeps the side stream's memory safe
    assert len(got) == 6
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e.x.cpu())
