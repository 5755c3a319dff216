"""What the commands share: argument types with range checks, the one-line usage error, and
the checks that an output path may be written before any work starts."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path


def _int(value: str, least: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= {least}, got {value!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {n}")
    return n


def positive_int(value: str) -> int:
    return _int(value, 1)


def seed_int(value: str) -> int:
    return _int(value, 0)


def count_int(value: str) -> int:
    return _int(value, 0)


def unit_share(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not 0.0 <= x <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return x


class Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``segan CMD: error: argument --opt: ...`` (exit 2), like the
    command's own errors; ``--help`` prints the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def check_out_folder(path: str | os.PathLike, option: str) -> None:
    """An output folder the command may write: refused before any work when it is a file, or
    its nearest existing ancestor is a file or not writable."""
    p = Path(path)
    if "://" in str(path):  # an fsspec URL (generate): its filesystem says
        return
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {p}: exists and is not a folder")
    check_writable(p, option, p)


def check_out_file(path: str | os.PathLike, option: str, example: str = "out") -> None:
    """An output file: not a folder, in a folder the command may write."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {p}: is a folder; give a file path (e.g. {p / example})")
    check_writable(p.parent, option, target=p)


def check_writable(folder: Path, option: str, target: Path) -> None:
    """The nearest existing ancestor of `folder` (itself if it exists) is a folder this
    process may write into."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{option} {target}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {target}: no permission to write in {probe}")


def add_data_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """--data-format, shared by the commands that read a dataset of any supported format."""
    parser.add_argument("--data-format", default="auto", choices=choices,
                        help="DATA's format (default: detected; others are converted into the "
                        "cache folder, docs/formats.md)")

