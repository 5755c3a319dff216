"""De-occlusion ground truth: a view rendered again with some of its objects removed.

For a share of the views (``DeocclusionConfig.share``, drawn per view), the generator picks
removal sets among the view's occluders (objects that hide part of another annotated object)
and renders the same view (camera, lights, image size, photometry) once per set, with those
objects taken out of the scene and everything else kept (room shell, unannotated objects,
the light fixtures of a removed lamp). What a set reveals is then known exactly:

- its image: the view without the set (``Removal.rgb``); outside the removed objects' pixels
  it equals the original image (pyrender: bit for bit, no randomisation; the photometric
  degradation of ``segan.data.randomize`` is applied with the same noise draws as the
  original image, so it matches there too up to blur and JPEG blocks that straddle the hole;
  Mitsuba: up to the change in indirect light and shadows, which is part of the truth);
- the new visible mask S_V' of every remaining annotated object whose visible mask grew
  (``Removal.revealed``): S_V ⊆ S_V' ⊆ S_F.

and, once per chosen view, the room shell alone (``DeocclusionTruth.background``), for
background completion. Kinds of removal sets (``singles`` and ``fronts`` per view):

- a single occluder q (sorted draw among the occluders);
- the front set of an occluded object p: every object that occludes p (only p with at least
  two occluders, so a front set is never a single).

Randomness: a third stream per view, SeedSequence([seed, scene, view, 2]); its first draw
decides whether the view is chosen, so the chosen views depend only on (seed, share), and the
view's camera, image and masks do not depend on this config at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from segan.render.base import Renderer
from segan.scene.types import Scene, View


@dataclass(frozen=True)
class DeocclusionConfig:
    """Which views get de-occlusion ground truth, and how much (saved in generation.json as
    ``deocclusion``; absent when off)."""

    share: float = 0.5  # probability that a view is chosen (one draw per view)
    singles: int = 2  # single-occluder removals per chosen view (fewer if fewer occluders)
    fronts: int = 1  # front-set removals per chosen view (all occluders of one object)
    background: bool = True  # also the room shell alone, once per chosen view

    def __post_init__(self) -> None:
        if not (isinstance(self.share, int | float) and 0.0 <= float(self.share) <= 1.0):
            raise ValueError(f"deocclusion.share must be in [0, 1], got {self.share!r}")
        for name in ("singles", "fronts"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"deocclusion.{name} must be an int >= 0, got {v!r}")
        if not isinstance(self.background, bool):
            raise ValueError(f"deocclusion.background must be true or false, got "
                             f"{self.background!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeocclusionConfig:
        unknown = set(d) - {"share", "singles", "fronts", "background"}
        if unknown:
            raise ValueError(f"deocclusion: unknown fields {sorted(unknown)}")
        return cls(**d)


def removal_rng(seed: int, scene_index: int, view_index: int) -> np.random.Generator:
    """The view's de-occlusion stream, independent of its camera and photometry streams."""
    return np.random.default_rng(np.random.SeedSequence([seed, scene_index, view_index, 2]))


@dataclass
class Removal:
    """One removal set of one view.

    removed: instance ids taken out (sorted).
    rgb: (H, W, 3) uint8, the view rendered without them (same photometry as the image).
    revealed: instance id -> (H, W) bool new visible mask S_V' of each remaining annotated
        object whose visible mask grew (S_V ⊊ S_V' ⊆ S_F); objects not listed keep S_V.
    """

    removed: tuple[int, ...]
    rgb: np.ndarray
    revealed: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class DeocclusionTruth:
    removals: list[Removal]
    background: np.ndarray | None  # (H, W, 3) uint8, the room shell alone; None: not asked


def choose_removals(cfg: DeocclusionConfig, occlusion: Sequence[tuple[int, int]],
                    rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Removal sets (sorted instance-id tuples, distinct) from the view's (occluder,
    occludee) pairs: ``cfg.singles`` single occluders, then ``cfg.fronts`` front sets."""
    occluders = sorted({q for q, _ in occlusion})
    n = min(cfg.singles, len(occluders))
    picked = rng.choice(len(occluders), size=n, replace=False) if n else []
    sets: list[tuple[int, ...]] = [(occluders[int(i)],) for i in picked]
    fronts_of: dict[int, set[int]] = {}
    for q, p in occlusion:
        fronts_of.setdefault(p, set()).add(q)
    # distinct: two objects can have the same occluders
    candidates = sorted({tuple(sorted(f)) for f in fronts_of.values() if len(f) >= 2})
    n = min(cfg.fronts, len(candidates))
    picked = rng.choice(len(candidates), size=n, replace=False) if n else []
    sets += [candidates[int(i)] for i in picked]
    return sets


def render_deocclusion(
    cfg: DeocclusionConfig,
    scene: Scene,
    renderer: Renderer,
    view: View,
    objects: Sequence[Any],
    occlusion: Sequence[tuple[int, int]],
    rng: np.random.Generator,
    finish: Callable[[np.ndarray], np.ndarray],
) -> DeocclusionTruth | None:
    """The view's de-occlusion truth, or None when the view is not chosen (or has nothing to
    remove and no background is asked for).

    objects: the view's annotated objects (``segan.data.view_truth.ObjectTruth``: instance_id,
    visible_mask, full_mask). finish: the image's photometric pipeline (identity without
    randomisation), applied to every RGB rendered here.
    """
    if rng.random() >= cfg.share:
        return None
    sets = choose_removals(cfg, occlusion, rng)
    if not sets and not cfg.background:
        return None
    all_ids = [o.instance_id for o in scene.objects]
    removals = []
    for removed in sets:
        gone = set(removed)
        res = renderer.render(view, only=[i for i in all_ids if i not in gone], depth=False)
        assert res.rgb is not None and res.ids is not None
        revealed = {}
        for obj in objects:
            if obj.instance_id in gone:
                continue
            visible = obj.visible_mask
            # A pixel of S_V stays the object's when others go (their fragments only leave the
            # depth test); S_V' ⊆ S_F is enforced as S_V ⊆ S_F is (edge pixels can flip).
            new = ((res.ids == obj.instance_id) & obj.full_mask) | visible
            if (new != visible).any():
                revealed[obj.instance_id] = new
        removals.append(Removal(tuple(removed), finish(res.rgb), revealed))
    background = None
    if cfg.background:
        shell = [o.instance_id for o in scene.objects if not o.annotated]
        res = renderer.render(view, only=shell, depth=False, ids=False)
        assert res.rgb is not None
        background = finish(res.rgb)
    return DeocclusionTruth(removals, background)
