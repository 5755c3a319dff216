"""Run logs (rank 0 only): stats.jsonl, TensorBoard scalars and images, image grids.

RUN/stats.jsonl has one JSON object per logged step: {"step", "stage", "epoch", "loss/<name>"
(means over the steps since the previous line, averaged over ranks), "lr/<optimiser>",
"samples_per_s" (objects per second over all ranks), "time_s"}. On resume, lines after the
checkpoint's step are dropped and TensorBoard purges its events after that step, so both read
as one uninterrupted run.

Grids (RUN/grids/step-<step>.png, and TensorBoard "grid"): one row per object, columns as in
the paper's Figures 4-5: the image crop, S_V, Eq. 1's generator input M, the predicted S_F (O),
the ground-truth S_F, the painted object G(M) and its target.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segan.data.atomic import write_bytes_atomic, write_png_atomic

GRID_COLUMNS = ("image", "S_V", "M (Eq. 1)", "predicted S_F", "ground-truth S_F", "painted",
                "target")


def truncate_stats(path: Path, step: int) -> None:
    """Drop the lines of stats.jsonl logged after `step` (a run killed after its checkpoint)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    write_bytes_atomic(path, ("\n".join(keep) + ("\n" if keep else "")).encode())


class RunLogger:
    """Writes nothing unless `enabled` (rank 0)."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool, tensorboard: bool = True,
                 start_step: int = 0):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.writer = None
        if not enabled:
            return
        self.stats_path = self.run_dir / "stats.jsonl"
        truncate_stats(self.stats_path, start_step)
        self._stats = open(self.stats_path, "a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                            purge_step=start_step if start_step else None)
            except ImportError as e:  # pragma: no cover - tensorboard is a dependency
                warnings.warn(f"TensorBoard logging off: {e}", stacklevel=2)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **values}
        self._stats.write(json.dumps(record) + "\n")
        self._stats.flush()
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    self.writer.add_scalar(k, v, step)

    def image(self, step: int, grid: np.ndarray) -> Path | None:
        """Save an (H, W, 3) uint8 grid as RUN/grids/step-<step>.png and to TensorBoard."""
        if not self.enabled:
            return None
        path = self.run_dir / "grids" / f"step-{step:08d}.png"
        write_png_atomic(path, grid)
        if self.writer is not None:
            self.writer.add_image("grid", grid, step, dataformats="HWC")
        return path

    def flush(self) -> None:
        if self.enabled and self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self._stats.close()
        if self.writer is not None:
            self.writer.close()


@torch.no_grad()
def make_grid(out: dict[str, torch.Tensor], full_gt: torch.Tensor, target: torch.Tensor,
              image_mean: tuple[float, ...], image_std: tuple[float, ...], n: int = 8
              ) -> np.ndarray:
    """The first n objects of a step as an (n * c, 7 * c, 3) uint8 grid (module docstring).

    out: SeGAN outputs (image_crop and generator_input normalised like the images, masks in
    [0, 1], painted in [-1, 1]); full_gt (K, 1, m, m); target (K, 3, c, c) in [-1, 1].
    """
    n = min(n, out["painted"].shape[0])
    c = out["painted"].shape[-1]
    mean = torch.tensor(image_mean, device=target.device).view(1, 3, 1, 1)
    std = torch.tensor(image_std, device=target.device).view(1, 3, 1, 1)

    def rgb(x: torch.Tensor) -> torch.Tensor:
        return x[:n].float().expand(-1, 3, -1, -1)

    gt = F.interpolate(full_gt[:n].float(), size=(c, c), mode="bilinear", align_corners=False)
    columns = [
        out["image_crop"][:n].float() * std + mean,
        rgb(out["visible_crop"]),
        out["generator_input"][:n].float() * std + mean,
        rgb(out["full_mask"]),
        rgb(gt),
        (out["painted"][:n].float() + 1) / 2,
        (target[:n].float() + 1) / 2,
    ]
    tiles = torch.stack(columns, dim=1).clamp(0, 1)  # (n, 7, 3, c, c)
    grid = tiles.permute(0, 3, 1, 4, 2).reshape(n * c, len(columns) * c, 3)
    return (grid * 255).round().to(torch.uint8).cpu().numpy()
