"""Depth layers from occlusion (paper Sec. 5.2): which object hides which, and the layers that
follow. Pure NumPy, shared by the predictor (`segan.inference`) and the evaluation
(`segan.eval.metrics.occlusion_graph`, Table 5).

Object q occludes object p, pair ``(q, p)``, when IoU(S_V_q, predicted S_I_p) > 5%.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import numpy as np

LAYERING_THRESHOLD: float = 0.05  # Sec. 5.2: "The threshold that we use is 5%."


def occlusion_iou_from_counts(inter: np.ndarray, visible_counts: np.ndarray,
                              invisible_counts: np.ndarray) -> np.ndarray:
    """(N, N) float64 [q, p] = IoU(S_V_q, predicted S_I_p) from pixel counts: inter (N, N)
    [q, p] = |S_V_q n S_I_p|, visible_counts (N,) |S_V|, invisible_counts (N,) |predicted S_I|.
    An empty union counts 0, and so does the diagonal."""
    inter = np.asarray(inter, dtype=np.float64)
    union = (np.asarray(visible_counts, dtype=np.float64)[:, None]
             + np.asarray(invisible_counts, dtype=np.float64)[None, :] - inter)
    iou_qp = np.zeros(np.broadcast(inter, union).shape)
    np.divide(inter, union, out=iou_qp, where=union > 0)
    np.fill_diagonal(iou_qp, 0.0)
    return iou_qp


def pairs_from_iou(iou_qp: np.ndarray, thresh: float = LAYERING_THRESHOLD
                   ) -> set[tuple[int, int]]:
    """The pairs (q, p) whose IoU(S_V_q, predicted S_I_p) is strictly above `thresh`."""
    return {(int(q), int(p)) for q, p in zip(*np.nonzero(iou_qp > thresh), strict=True)}


def occlusion_pairs_from_counts(inter: np.ndarray, visible_counts: np.ndarray,
                                invisible_counts: np.ndarray,
                                thresh: float = LAYERING_THRESHOLD) -> set[tuple[int, int]]:
    """`segan.eval.metrics.occlusion_graph` from pixel counts (the predictor counts on its device;
    `occlusion_iou_from_counts`). The IoU is float64 here whatever computed the counts, so the
    pairs are the same as `occlusion_graph`'s."""
    return pairs_from_iou(occlusion_iou_from_counts(inter, visible_counts, invisible_counts),
                          thresh)


def depth_layers(pairs: Iterable[tuple[int, int]], n: int) -> np.ndarray:
    """Depth layer of each of n objects from occlusion pairs (q, p) = "q occludes p".

    Longest-path layering: an object occluded by nobody is layer 0 (front); otherwise its layer
    is 1 + the largest layer of its occluders. Self-pairs are ignored. Cycles are broken
    deterministically: when every unplaced object still has an unplaced occluder, the one with
    the fewest unplaced occluders (ties: lowest index) among the objects of a source cycle (a
    strongly connected group of unplaced objects that no other unplaced object occludes) is
    placed next, and its pairs from the still-unplaced objects, all inside that cycle, are
    dropped. So a pair outside every cycle is always respected: an object occluded only by a
    cycle's member lies behind it, never placed before it. Returns int64 (n,).
    """
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = np.zeros(n, dtype=np.int64)
    occludes = np.zeros((n, n), dtype=bool)  # [q, p]: q occludes p
    for q, p in {(int(q), int(p)) for q, p in pairs}:
        if not (0 <= q < n and 0 <= p < n):
            raise ValueError(f"pair {(q, p)} out of range for n={n}")
        if q != p:
            succ[q].append(p)
            indeg[p] += 1
            occludes[q, p] = True
    layer = np.zeros(n, dtype=np.int64)
    placed = np.zeros(n, dtype=bool)
    ready = [v for v in range(n) if indeg[v] == 0]
    heapq.heapify(ready)
    for _ in range(n):
        if not ready:  # only cycles remain: break one (see docstring)
            unplaced = _source_cycle_members(occludes, np.flatnonzero(~placed))
            v = int(unplaced[np.argmin(indeg[unplaced])])  # argmin takes the lowest index
            indeg[v] = 0
            heapq.heappush(ready, v)
        v = heapq.heappop(ready)
        placed[v] = True
        for w in succ[v]:
            if placed[w]:  # a dropped cycle edge
                continue
            layer[w] = max(layer[w], layer[v] + 1)
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(ready, w)
    return layer


def _source_cycle_members(occludes: np.ndarray, unplaced: np.ndarray) -> np.ndarray:
    """The objects of `unplaced` (ascending) whose strongly connected group in the occlusion
    graph restricted to `unplaced` is reached from no other unplaced object."""
    reach = occludes[np.ix_(unplaced, unplaced)] | np.eye(len(unplaced), dtype=bool)
    while True:  # transitive closure by squaring: reach[u, v] = u reaches v
        step = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
        if (step == reach).all():
            break
        reach = step
    reached_from_outside = (reach & ~reach.T).any(axis=0)
    return unplaced[~reached_from_outside]
