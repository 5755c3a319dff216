"""What every benchmark shares: its command line and its section in docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = ("# Benchmarks\n\nEvery table here was measured by the command above it, on the "
          "machine it names.\n")


def command_line() -> str:
    """How this benchmark was started, as a reader would type it."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return " ".join(["python", str(name), *sys.argv[1:]])


def append_section(title: str, machine: str, notes: str, table: str) -> Path:
    """Append a dated section (machine, command, notes, table) to docs/benchmarks.md."""
    DOC.parent.mkdir(exist_ok=True)
    if not DOC.exists():
        DOC.write_text(HEADER)
    with DOC.open("a") as f:
        f.write(f"\n## {title}, {dt.date.today().isoformat()}\n\nMachine: {machine}. "
                f"Command: `{command_line()}`. {notes}\n\n{table}\n")
    return DOC


def machine_name(device) -> str:
    """The machine a measurement ran on, for its section: the GPU, or the CPU's cores."""
    import os
    import platform

    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {os.cpu_count()} CPU cores"
    return f"{platform.machine()}, {os.cpu_count()} cores (CPU)"
