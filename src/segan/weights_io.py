"""Reading weight files without running their code, and with one clear error when they are not
what they claim: a truncated, foreign or malicious ``.pt``/``.pth`` or ``.safetensors`` raises
`WeightsFileError` (a ValueError) naming the file and the fault, never torch's or safetensors'
internal message (torch's suggests ``weights_only=False``, which would run the file's code).
"""

from __future__ import annotations

import os
import pickle
import warnings
from typing import Any


class WeightsFileError(ValueError):
    """A weights file that cannot be read safely: the message names the file and the fault."""


def _fault(path: str | os.PathLike, kind: str, e: BaseException) -> WeightsFileError:
    if isinstance(e, pickle.UnpicklingError):
        why = "it holds Python objects or code, not only tensors (refused: it is never run)"
    elif isinstance(e, FileNotFoundError):
        why = "no such file"
    elif isinstance(e, IsADirectoryError):
        why = "is a folder"
    elif isinstance(e, PermissionError):
        why = "permission denied"
    else:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        why = f"truncated or not a {kind} file ({first[:160]})"
    return WeightsFileError(f"{path}: cannot read {kind} weights: {why}")


def load_torch(path: str | os.PathLike, map_location: Any = "cpu", **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True)``; any failure -> `WeightsFileError`."""
    import torch

    try:
        with warnings.catch_warnings():
            # torch's note on a foreign pickle protocol: the load then fails or succeeds on
            # its own, and a failure becomes one clear line below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True, **kwargs)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError,
            AttributeError, KeyError, IndexError, TypeError, *_safetensor_errors()) as e:
        raise _fault(path, "PyTorch", e) from None


def _safetensor_errors() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    return (SafetensorError, OSError, ValueError, RuntimeError, TypeError, OverflowError)


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
    """``safetensors.torch.load_file``; any failure -> `WeightsFileError`."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except _safetensor_errors() as e:
        raise _fault(path, "safetensors", e) from None


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file ({} when none); any failure -> `WeightsFileError`."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except _safetensor_errors() as e:
        raise _fault(path, "safetensors", e) from None
