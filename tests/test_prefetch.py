"""segan.train.prefetch: batches prepared one step ahead are the batches, in order."""

from dataclasses import dataclass

import pytest
import torch

from segan.train.prefetch import DevicePrefetcher, _tensors


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


def test_every_tensor_of_a_nested_batch_is_found():
    """record_stream must reach every tensor, also those of detection batches (lists of
    per-image dicts)."""
    a, b, c, d = (torch.zeros(i + 1) for i in range(4))
    batch = Prepared(x=a, y=b, index=3)
    assert [t.numel() for t in _tensors(batch)] == [1, 2]
    nested = {"images": [a, b], "targets": [{"boxes": c, "n": 2}, {"masks": d}], "epoch": 1}
    assert [t.numel() for t in _tensors(nested)] == [1, 2, 3, 4]


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_prefetcher_with_nested_detection_like_batches():
    dev = torch.device("cuda")
    raws = raw_batches(5, pin=True)

    def prepare(raw):
        x = raw.to(dev, non_blocking=True)
        return {"images": [x * 3, x + 1], "targets": [{"boxes": x[:4] - 1}]}

    w = torch.randn(2048, 2048, device=dev)
    got = []
    for b in DevicePrefetcher(iter(raws), prepare, dev):
        for _ in range(20):
            w = torch.tanh(w @ w)
        got.append([t.cpu() for t in (b["images"][0], b["images"][1], b["targets"][0]["boxes"])])
        del b
    assert len(got) == 5
    for g, raw in zip(got, raws, strict=True):
        torch.testing.assert_close(g[0], raw * 3)
        torch.testing.assert_close(g[1], raw + 1)
        torch.testing.assert_close(g[2], raw[:4] - 1)
