"""Writes that never leave a half-written file under its final name (temp name, then rename),
and the content hash that keys what is derived from such files (caches, conversions)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

TMP_MARK = ".tmp-"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir(data_dir: str | os.PathLike) -> Path:
    """Where what is derived from the dataset `data_dir` lives unless a cache folder is given:
    ``$SEGAN_CACHE_DIR`` (else ``$XDG_CACHE_HOME/segan``, else ``~/.cache/segan``), then a
    folder per dataset (its name and a hash of its absolute path). Never inside the dataset,
    which may be read-only or someone else's."""
    base = os.environ.get("SEGAN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "segan")
    data = Path(data_dir).resolve()
    tag = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    return Path(base) / f"{data.name or 'data'}-{tag}"


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the rename is atomic; a killed writer leaves only "<name>.tmp-*".
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a dataset is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def png_bytes(array: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode a uint8 (H, W), (H, W, 3) or (H, W, 4) array, or a uint16 (H, W) array, as PNG.

    Pillow's encoder is deterministic for a fixed level, so equal arrays give equal bytes.
    Level 1: a tenth larger than level 6 and four times faster, and encoding is a large
    share of generation time.
    """
    if array.dtype == np.uint16:
        if array.ndim != 2:
            raise ValueError(f"16-bit PNGs must be single-channel, got shape {array.shape}")
        image = Image.fromarray(array)  # mode "I;16"
    elif array.dtype == np.uint8:
        image = Image.fromarray(array)
    else:
        raise ValueError(f"png_bytes takes uint8 or uint16 arrays, got {array.dtype}")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    write_bytes_atomic(path, png_bytes(array))


def remove_stale_temporaries(root: str | os.PathLike) -> int:
    """Delete temp files a killed run left behind; returns how many were removed."""
    removed = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if TMP_MARK in name:
                os.remove(os.path.join(dirpath, name))
                removed += 1
    return removed
