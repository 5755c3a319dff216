"""Loss curves of a run, from its stats.jsonl (what `segan plot-losses RUN` draws)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_stats(path: str | os.PathLike) -> list[dict]:
    """The records of a stats.jsonl file, in order; a malformed line is an error naming it."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {n} is not JSON ({e})") from e
    return rows


def plot_losses(stats_path: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """One panel per loss (segmentation Eq. 3, L1 and cGAN Eq. 4-5, discriminator), against
    the step, with the stage-2 start marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_stats(stats_path)
    names = sorted({k for r in rows for k in r if k.startswith("loss/") and k != "loss/total"})
    if not names:
        raise ValueError(f"{stats_path}: no loss/* fields to plot")
    fig = Figure(figsize=(3.2 * len(names), 2.8), dpi=110)
    FigureCanvasAgg(fig)
    stage2 = next((r["step"] for r in rows if r.get("stage") == 2), None)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        pts = [(r["step"], r[name]) for r in rows if name in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        if stage2 is not None:
            ax.axvline(stage2, color="grey", ls="--", lw=0.8)
        ax.set_title(name.removeprefix("loss/"), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
