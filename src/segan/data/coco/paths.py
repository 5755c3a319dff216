"""Paths: every file a dataset names stays inside the dataset (FORMAT.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

# The folder each path field is relative to.
PATH_FIELDS: dict[str, str] = {"file_name": "images", "depth_file": "depth",
                               "appearance_file": "appearance",
                               # de-occlusion ground truth (docs/dataset.md)
                               "image_file": "deocclusion", "background_file": "deocclusion"}


_DRIVE = re.compile(r"[A-Za-z]:")  # C:/x, C:x: absolute (or drive-relative) on Windows


def safe_relative(name: Any) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it is not a str, empty, absolute
    (``/x``, ``C:/x``, ``\\\\host``) or leaves its folder (``..``)."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        return None
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or _DRIVE.match(name):
        return None
    return p.as_posix()


def path_problem(name: Any, folder: str) -> str | None:
    """Why ``name`` is not a usable path inside ``folder``/ (None when it is)."""
    if safe_relative(name) is None:
        return (f"must be a relative path inside {folder}/ (no absolute path, no '..'), "
                f"got {name!r}")
    return None


def contained(base: Path, name: str, also: Sequence[Path] = ()) -> Path | None:
    """``base / name`` when it resolves (symlinks followed) inside ``base`` or one of the
    folders ``also`` (already resolved); None when it leads out."""
    path = base / name
    real = path.resolve()
    for b in (base.resolve(), *also):
        if real == b or real.is_relative_to(b):
            return path
    return None
