"""The evaluation's figures, as in the paper's Figures 4-5: one row per object over its box.

figure_<method>.png: the first objects of the split (occluded ones first), FIGURE_COLUMNS left
to right; figure_<method>_best_worst.png, for a method that predicts S_F: its k best and k
worst occluded objects by full IoU (`BestWorst`), a red band between them. Rows are
(c, 6 c, 3) uint8 with c the method's crop size; every tile in [0, 1] -> round(255 x).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from segan.data.atomic import write_png_atomic
from segan.transforms import crop_object_masks

from .baselines import ImageInputs, MethodOutput

if TYPE_CHECKING:
    from .scoring import MethodScores

FIGURE_COLUMNS = ("image", "S_V", "predicted S_F", "ground-truth S_F", "painted", "target")
BEST_WORST_BAND = (255, 0, 0)  # the rows' colour between the best and the worst objects


class BestWorst:
    """The k best and the k worst occluded objects of a method by full IoU (standard), with
    their figure rows (`figure_row`, drawn only for an object that enters). Ties keep the
    earlier object (evaluation order), so the pick is deterministic. Any higher-is-better
    score works: the de-occlusion figure ranks removals by -L1 (`segan.eval.deocclusion`)."""

    def __init__(self, k: int):
        self.k = k
        self._seq = itertools.count()
        # min-heaps whose top is the first to leave: best keyed (iou, -seq), worst (-iou, -seq)
        self._best: list[tuple[float, int, dict, np.ndarray]] = []
        self._worst: list[tuple[float, int, dict, np.ndarray]] = []

    def add(self, full_iou: float, info: dict[str, Any], draw) -> None:
        """One object: its full IoU, what the results record of it, and `draw() -> row`."""
        if self.k <= 0:
            return
        seq = -next(self._seq)
        row = None
        for heap, key in ((self._best, full_iou), (self._worst, -full_iou)):
            if len(heap) < self.k or (key, seq) > heap[0][:2]:
                row = draw() if row is None else row
                item = (key, seq, info, row)
                (heapq.heappush if len(heap) < self.k else heapq.heapreplace)(heap, item)

    def picks(self) -> tuple[list[dict], list[dict]]:
        """(best first, worst first): each {"image_id", "ann_id", "full_iou", ...}."""
        return ([i for *_, i, _ in sorted(self._best, reverse=True)],
                [i for *_, i, _ in sorted(self._worst, reverse=True)])

    def figure(self) -> np.ndarray | None:
        """The best rows (best first), a band, the worst rows (worst first); None if empty."""
        if not self._best:
            return None
        best = [r for *_, r in sorted(self._best, reverse=True)]
        worst = [r for *_, r in sorted(self._worst, reverse=True)]
        band = np.zeros((max(2, best[0].shape[0] // 16), *best[0].shape[1:]), np.uint8)
        band[:] = BEST_WORST_BAND
        return np.concatenate([*best, band, *worst], axis=0)



def figure_row(inputs: ImageInputs, pred: MethodOutput, k: int, c: int,
                image_mean: Sequence[float], image_std: Sequence[float]) -> np.ndarray:
    """One object's (c, 6 c, 3) uint8 row: FIGURE_COLUMNS, all over the object's box."""
    box = inputs.boxes[k:k + 1]  # batch index 0: crop_object_masks reads row 0 of the image
    dev = inputs.images.device
    mean = torch.tensor(image_mean, device=dev).view(3, 1, 1)
    std = torch.tensor(image_std, device=dev).view(3, 1, 1)
    image = crop_object_masks(inputs.images, box, c)[0] * std + mean
    vis = crop_object_masks(inputs.visible_masks[k:k + 1], box, c)[0]
    grey = torch.full((3, c, c), 0.5, device=dev)
    tiles = [
        image,
        vis.expand(3, -1, -1),
        pred.box_full[k].float().expand(3, -1, -1) if pred.box_full is not None else grey,
        inputs.full_crop[k].float().expand(3, -1, -1),
        pred.painted[k].float() if pred.painted is not None else grey,
        inputs.target[k].float(),
    ]
    row = torch.cat([t.clamp(0, 1) for t in tiles], dim=2)  # (3, c, 6 c)
    return (row.permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()



def write_figures(out: Path, scores: Mapping[str, MethodScores]
                  ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """OUT/figure_<method>.png and OUT/figure_<method>_best_worst.png of every method that has
    rows: ({method: file name}, {method: {"file", "best", "worst"}}) for results.json."""
    figures = {}
    for m, sc in scores.items():
        grid = sc.figure()
        if grid is not None:
            path = out / f"figure_{m}.png"
            write_png_atomic(path, grid)
            figures[m] = path.name
    best_worst_figures = {}
    for m, sc in scores.items():
        grid = sc.best_worst.figure()
        if grid is not None:
            path = out / f"figure_{m}_best_worst.png"
            write_png_atomic(path, grid)
            best, worst = sc.best_worst.picks()
            best_worst_figures[m] = {"file": path.name, "best": best, "worst": worst}
    return figures, best_worst_figures
