"""segan.device: the package's one choice of device and autocast precision."""

import contextlib
import re
from pathlib import Path

import pytest
import torch

from segan.device import PRECISIONS, autocast, autocast_dtype, precision_name, resolve_device

SRC = Path(__file__).resolve().parents[1] / "src" / "segan"


def test_auto_is_cuda_when_present_else_the_cpu():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == want
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"run\.device cuda was asked for but no CUDA"):
        resolve_device("cuda", "run.device")


def test_an_unknown_device_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"--device must be auto, cpu or cuda, got 'gpu0'"):
        resolve_device("gpu0", "--device")


def test_precision_auto_is_bf16_on_cuda_and_fp32_on_the_cpu():
    assert autocast_dtype("cpu") is None
    assert autocast_dtype(torch.device("cuda", 1)) is torch.bfloat16
    assert autocast_dtype("cpu", "bf16") is torch.bfloat16
    assert autocast_dtype("cuda", "fp16") is torch.float16
    assert autocast_dtype("cuda", "fp32") is None
    with pytest.raises(ValueError, match="precision must be"):
        autocast_dtype("cpu", "int8")
    for name, dtype in PRECISIONS.items():
        assert precision_name(dtype) == name


def test_autocast_is_a_no_op_for_fp32():
    assert isinstance(autocast("cpu", None), contextlib.nullcontext)
    with autocast("cpu", torch.bfloat16):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.bfloat16


def test_no_other_module_chooses_the_device_or_the_precision():
    """CUDA's availability and the bf16 default are read in segan/device.py only."""
    pattern = re.compile(r"torch\.cuda\.is_available\(\)|torch\.bfloat16")
    others = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                    if p.name != "device.py" and pattern.search(p.read_text()))
    assert not others, f"device/precision chosen outside segan.device: {others}"
