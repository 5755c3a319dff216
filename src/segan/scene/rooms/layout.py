"""The layout: what has been placed so far, and placing a model on the floor, against a wall
or on a surface, each candidate checked against the parts already placed, the room and the
space kept clear in front of doors and windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segan.scene.objects import Model, Surface
from segan.scene.rooms.geometry import (
    EPS,
    Gen,
    overlaps,
    pose_at,
    wall_frame,
    wall_length,
    world_boxes,
)
from segan.scene.types import Room


@dataclass
class Opening:
    kind: str  # "window" or "door"
    wall: int
    t0: float
    t1: float
    z0: float
    z1: float


@dataclass
class Placed:
    category: str
    model: Model
    pose: np.ndarray
    boxes: np.ndarray
    support: int | None
    annotated: bool = True


@dataclass
class Layout:
    room: Room
    limit: int  # annotated objects wanted
    items: list[Placed] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    keepout: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (box, owner index)
    # generic families mixed into every top and shelf's SMALL_ON choices ("train" content)
    extra_small: dict[str, float] = field(default_factory=dict)
    allowed: frozenset[str] | None = None  # categories this scene may hold (None: any)
    _boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 3)))
    _owner: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    @property
    def count(self) -> int:
        return sum(p.annotated for p in self.items)

    def full(self) -> bool:
        return self.count >= self.limit

    def fits(self, boxes: np.ndarray, support: int | None = None, contained: bool = False
             ) -> bool:
        r = self.room
        lo, hi = boxes[:, 0].min(0), boxes[:, 1].max(0)
        if np.any(lo < -EPS) or np.any(hi > np.array([r.width, r.depth, r.height]) + EPS):
            return False
        if len(self._owner):
            hit = overlaps(boxes, self._boxes).any(0)
            if contained and support is not None:
                hit &= self._owner != support
            if hit.any():
                return False
        for kb, owner in self.keepout:
            if owner != support and overlaps(boxes, kb[None]).any():
                return False
        return True

    def add(self, category: str, model: Model, pose: np.ndarray, support: int | None = None,
            annotated: bool = True, contained: bool = False, check: bool = True) -> int | None:
        """Place ``model`` at ``pose`` if it fits; returns its index or None."""
        if annotated and self.full():
            return None
        boxes = world_boxes(model, pose)
        if check and not self.fits(boxes, support, contained):
            return None
        self.items.append(Placed(category, model, pose, boxes, support, annotated))
        self._boxes = np.concatenate([self._boxes, boxes])
        self._owner = np.concatenate([self._owner, np.full(len(boxes), len(self.items) - 1)])
        return len(self.items) - 1

    def opening_clear(self, wall: int, t0: float, t1: float, z1: float, door_only: bool = False
                      ) -> bool:
        """Whether something against ``wall`` spanning [t0, t1] and up to height z1 leaves
        the doors (and, unless door_only, windows above the sill) free."""
        for o in self.openings:
            if o.wall != wall or t1 <= o.t0 - 0.1 or t0 >= o.t1 + 0.1:
                continue
            if o.kind == "door" or (not door_only and z1 > o.z0 - 0.02):
                return False
        return True


def floor_support(layout: Layout, boxes: np.ndarray) -> tuple[float, int | None]:
    """Height of a rug under this footprint (things standing partly on a rug stand on it)."""
    for i, p in enumerate(layout.items):
        if p.category != "rug":
            continue
        rb = p.boxes[0]
        if np.all(np.minimum(boxes[:, 1, :2].max(0), rb[1, :2])
                  - np.maximum(boxes[:, 0, :2].min(0), rb[0, :2]) > 0):
            return float(rb[1, 2]), i
    return 0.0, None


def place_floor(layout: Layout, category: str, model: Model, xy: np.ndarray, yaw: float,
                annotated: bool = True) -> int | None:
    """Stand ``model`` on the floor (or on a rug) at ``xy`` facing ``yaw``."""
    pose = pose_at(xy[0], xy[1], 0.0, yaw)
    z, rug = floor_support(layout, world_boxes(model, pose))
    pose[2, 3] = z
    return layout.add(category, model, pose, support=rug, annotated=annotated)


def place_wall(layout: Layout, category: str, model: Model, wall: int, t: float,
               gap: float = 0.0, z: float = 0.0, annotated: bool = True,
               clear_height: float = 0.0) -> int | None:
    """Back of ``model`` against ``wall`` at ``t`` along it, ``z`` above the floor; it (and
    ``clear_height`` more, for what will stand on it) must stay under any window there."""
    sx, sy, sz = model.size
    if not layout.opening_clear(wall, t - sx / 2, t + sx / 2, z + sz + clear_height,
                                door_only=z > 0):
        return None
    if z > 0 and not _clear_of_windows(layout, wall, t - sx / 2, t + sx / 2, z, z + sz):
        return None
    xy, yaw = wall_frame(layout.room, wall, t, gap + sy / 2)
    if z > 0:
        return layout.add(category, model, pose_at(xy[0], xy[1], z, yaw), annotated=annotated)
    return place_floor(layout, category, model, xy, yaw, annotated)


def _clear_of_windows(layout: Layout, wall: int, t0: float, t1: float, z0: float, z1: float
                      ) -> bool:
    for o in layout.openings:
        if o.wall == wall and t1 > o.t0 - 0.05 and t0 < o.t1 + 0.05 and z1 > o.z0 and z0 < o.z1:
            return False
    return True


def try_wall(layout: Layout, rng: Gen, category: str, model: Model, walls: list[int] | None = None,
             tries: int = 25, gap: float = 0.02, z: float = 0.0, annotated: bool = True
             ) -> int | None:
    """Random spots along random walls until one fits."""
    walls = walls if walls is not None else [0, 1, 2, 3]
    sx = model.size[0]
    for _ in range(tries):
        wall = int(rng.choice(walls))
        length = wall_length(layout.room, wall)
        if length < sx + 0.02:
            continue
        t = rng.uniform(sx / 2 + 0.01, length - sx / 2 - 0.01)
        i = place_wall(layout, category, model, wall, t, gap, z, annotated)
        if i is not None:
            return i
    return None


def world_surface(p: Placed, s: Surface) -> tuple[np.ndarray, np.ndarray]:
    """The surface rectangle's world box (z range = its height) for sorting and weights."""
    c = np.array([[s.lo[0], s.lo[1], s.z], [s.hi[0], s.hi[1], s.z]])
    w = c @ p.pose[:3, :3].T + p.pose[:3, 3]
    return w.min(0), w.max(0)


def place_on(layout: Layout, rng: Gen, category: str, model: Model, support: int, surface: Surface,
             yaw: float | None = None, xy: tuple[float, float] | None = None, tries: int = 8
             ) -> int | None:
    """Rest ``model`` on ``surface`` of item ``support``, at a random spot (or ``xy``, in the
    support's frame) and yaw relative to the support's front."""
    size = model.size
    if size[2] > surface.clearance - 0.01:
        return None
    sup = layout.items[support]
    for _ in range(tries):
        a = rng.uniform(-0.3, 0.3) if yaw is None else yaw
        c, s = abs(np.cos(a)), abs(np.sin(a))
        ex = 0.5 * (c * size[0] + s * size[1])
        ey = 0.5 * (s * size[0] + c * size[1])
        if xy is not None:
            x, y = xy
        else:
            if surface.hi[0] - surface.lo[0] < 2 * ex or surface.hi[1] - surface.lo[1] < 2 * ey:
                return None
            if surface.spots:
                x, y = surface.spots[int(rng.integers(0, len(surface.spots)))]
            elif surface.kind == "seat":  # against the back cushions
                x = rng.uniform(surface.lo[0] + ex, surface.hi[0] - ex)
                y = surface.lo[1] + ey + rng.uniform(0.0, 0.03)
            else:
                x = rng.uniform(surface.lo[0] + ex, surface.hi[0] - ex)
                y = rng.uniform(surface.lo[1] + ey, surface.hi[1] - ey)
        pose = sup.pose @ pose_at(x, y, surface.z, a)
        i = layout.add(category, model, pose, support=support, contained=surface.contains)
        if i is not None or xy is not None:
            return i
    return None


def place_free(layout: Layout, rng: Gen, category: str, model: Model, margin: float = 0.3,
               tries: int = 30, yaw: float | None = None, roomy: bool = False) -> int | None:
    """Somewhere on the open floor, off the rug. ``roomy``: of the spots that fit, take the
    one farthest from other furniture (tables that need chairs around them)."""
    r = layout.room
    half = model.size[:2].max() / 2 + margin
    if r.width < 2 * half or r.depth < 2 * half:
        return None
    floor = np.array([p.boxes[:, :, :2].reshape(-1, 2).mean(0) for p in layout.items
                      if p.annotated and p.boxes[:, 0, 2].min() < 0.05])
    best, best_score = None, -1.0
    for _ in range(tries):
        xy = rng.uniform([half, half], [r.width - half, r.depth - half])
        a = yaw if yaw is not None else float(rng.integers(0, 4)) * np.pi / 2
        pose = pose_at(xy[0], xy[1], 0.0, a)
        boxes = world_boxes(model, pose)
        if floor_support(layout, boxes)[1] is not None or not layout.fits(boxes):
            continue
        if not roomy:
            return layout.add(category, model, pose)
        score = float(np.min(np.linalg.norm(floor - xy, axis=1))) if len(floor) else 1.0
        if score > best_score:
            best, best_score = pose, score
    return None if best is None else layout.add(category, model, best)
