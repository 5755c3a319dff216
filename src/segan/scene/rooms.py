"""Rooms: the shell (floor, walls, ceiling, windows, door) and furnishing them.

Furniture is placed by room templates (sofa against a wall, coffee table in front of it, rug
under that, TV across the room; kitchen counters in runs along the walls with the fridge and
stove among them...), then small objects are dropped on the surfaces the models expose
(tables, counters, shelves, seats, burners, window sills, bowls) until the scene holds
``n_objects`` annotated objects. Every candidate is checked against the world boxes of the
parts already placed (touching is allowed, 1 mm of overlap is not), against the room and
against the space kept clear in front of doors and windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segan.scene.categories import CONTENT, TRAIN_FAMILIES, check_content
from segan.scene.objects import SMALL_GENERIC, Model, Surface, build, chair_design, counter, stove
from segan.scene.objects.base import Builder, skin
from segan.scene.objects.furniture import cabinet, chair
from segan.scene.objects.kitchen import KitchenStyle, fridge, kitchen_style
from segan.scene.primitives import box, cylinder, quad, rotation
from segan.scene.textures import MaterialKit
from segan.scene.types import Light, Room, RoomKind, Scene, SceneObject

Gen = np.random.Generator
EPS = 1e-3  # allowed overlap between boxes, metres
WALL_T = 0.12  # wall thickness


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def pose_at(x: float, y: float, z: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    m = rotation("z", yaw)
    m[:3, 3] = (x, y, z)
    return m


def yaw_facing(direction: np.ndarray) -> float:
    """Yaw that turns an object's front (+y) towards the world (x, y) ``direction``."""
    return float(np.arctan2(-direction[0], direction[1]))


def wall_length(room: Room, wall: int) -> float:
    return room.width if wall % 2 == 0 else room.depth


def wall_frame(room: Room, wall: int, t: float, n: float) -> tuple[np.ndarray, float]:
    """Point at distance ``t`` along wall ``wall`` (its world x or y) and ``n`` into the room,
    and the yaw that faces away from that wall. Walls: 0 y=0, 1 x=width, 2 y=depth, 3 x=0."""
    w, d = room.width, room.depth
    return {
        0: (np.array([t, n]), 0.0),
        1: (np.array([w - n, t]), np.pi / 2),
        2: (np.array([t, d - n]), np.pi),
        3: (np.array([n, t]), -np.pi / 2),
    }[wall]


def wall_box(room: Room, wall: int, t0: float, t1: float, z0: float, z1: float, n0: float,
             n1: float) -> tuple[np.ndarray, np.ndarray]:
    """World box spanning [t0, t1] along the wall, [z0, z1] up and [n0, n1] into the room
    (negative n is inside the wall)."""
    w, d = room.width, room.depth
    if wall == 0:
        return np.array([t0, n0, z0]), np.array([t1, n1, z1])
    if wall == 2:
        return np.array([t0, d - n1, z0]), np.array([t1, d - n0, z1])
    if wall == 3:
        return np.array([n0, t0, z0]), np.array([n1, t1, z1])
    return np.array([w - n1, t0, z0]), np.array([w - n0, t1, z1])


def world_boxes(model: Model, pose: np.ndarray) -> np.ndarray:
    """(P, 2, 3) world boxes of the parts (exact for yaws that are multiples of 90 degrees,
    conservative otherwise)."""
    local = model.part_boxes()
    idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners = np.stack([local[:, idx[:, a], a] for a in range(3)], axis=-1)  # (P, 8, 3)
    w = corners @ pose[:3, :3].T + pose[:3, 3]
    return np.stack([w.min(1), w.max(1)], axis=1)


def overlaps(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> np.ndarray:
    """(Pa, Pb) whether boxes a[i] and b[j] overlap by more than eps along every axis."""
    lo = np.maximum(a[:, None, 0], b[None, :, 0])
    hi = np.minimum(a[:, None, 1], b[None, :, 1])
    return np.all(hi - lo > eps, axis=-1)


# ---------------------------------------------------------------------------------------------
# Layout: what has been placed so far


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


# ---------------------------------------------------------------------------------------------
# The shell


def _sample_openings(room: Room, rng: Gen) -> list[Opening]:
    """One door and one to three windows, apart from each other and from the corners."""
    out: list[Opening] = []
    dw = rng.uniform(0.8, 0.95)
    wall = int(rng.integers(0, 4))
    length = wall_length(room, wall)
    t = rng.uniform(0.25 + dw / 2, length - 0.25 - dw / 2)
    out.append(Opening("door", wall, t - dw / 2, t + dw / 2, 0.0, rng.uniform(2.0, 2.1)))
    n_win = int(rng.integers(1, 4))
    kitchen = room.kind == "kitchen"
    for _ in range(20):
        if len(out) > n_win:
            break
        wall = int(rng.integers(0, 4))
        length = wall_length(room, wall)
        ww = rng.uniform(0.8, min(1.8, length - 1.0))
        t = rng.uniform(0.4 + ww / 2, length - 0.4 - ww / 2)
        t0, t1 = t - ww / 2, t + ww / 2
        if any(o.wall == wall and t1 > o.t0 - 0.4 and t0 < o.t1 + 0.4 for o in out):
            continue
        z0 = rng.uniform(1.0, 1.15) if kitchen else rng.uniform(0.75, 1.0)
        z1 = min(room.height - 0.25, z0 + rng.uniform(1.0, 1.5))
        out.append(Opening("window", wall, t0, t1, z0, z1))
    return out


def _wall_object(room: Room, wall: int, openings: list[Opening], sk) -> list:
    """Wall slab pieces around the openings, as boxes in world coordinates."""
    length = wall_length(room, wall)
    # walls 0 and 2 run past the corners so the shell is closed
    lo_t, hi_t = (-WALL_T, length + WALL_T) if wall % 2 == 0 else (0.0, length)
    h = room.height
    pieces = []
    cursor = lo_t
    for o in sorted((o for o in openings if o.wall == wall), key=lambda o: o.t0):
        if o.t0 > cursor:
            pieces.append((cursor, o.t0, 0.0, h))
        if o.z0 > 0:
            pieces.append((o.t0, o.t1, 0.0, o.z0))
        pieces.append((o.t0, o.t1, o.z1, h))
        cursor = o.t1
    pieces.append((cursor, hi_t, 0.0, h))
    geoms = [box(*wall_box(room, wall, a, b, z0, z1, -WALL_T, 0.0)) for a, b, z0, z1 in pieces]
    return [g.mesh(sk) for g in geoms]


_FACING = {0: "+y", 1: "-x", 2: "-y", 3: "+x"}


def _window(room: Room, o: Opening, kit: MaterialKit, rng: Gen) -> Builder:
    b = Builder("window")
    frame = skin(kit.painted((0.95, 0.95, 0.94)) if rng.random() < 0.7 else kit.wood(size=64), 3.0)
    fw, mid = 0.05, -WALL_T / 2
    w = o.wall

    def wb(t0: float, t1: float, z0: float, z1: float, n0: float, n1: float):
        return box(*wall_box(room, w, t0, t1, z0, z1, n0, n1))

    # The frame sits 1 mm inside the opening: faces coplanar with the wall's would z-fight,
    # and the id pass would flip pixels between "window" and "wall" from render to render.
    e = 0.001
    t0, t1, z0, z1 = o.t0 + e, o.t1 - e, o.z0 + e, o.z1 - e
    b.add([wb(t0, t1, z0, z0 + fw, mid - 0.03, mid + 0.03),
           wb(t0, t1, z1 - fw, z1, mid - 0.03, mid + 0.03),
           wb(t0, t0 + fw, z0, z1, mid - 0.03, mid + 0.03),
           wb(t1 - fw, t1, z0, z1, mid - 0.03, mid + 0.03)], frame)
    n_panes = 2 if o.t1 - o.t0 > 1.1 else 1
    if n_panes == 2:
        c = 0.5 * (o.t0 + o.t1)
        b.add(wb(c - fw / 2, c + fw / 2, o.z0, o.z1, mid - 0.025, mid + 0.025), frame)
    lo, hi = wall_box(room, w, o.t0, o.t1, o.z0, o.z1, mid - 0.002, mid)
    b.add(quad(lo, hi, _FACING[w]), skin(kit.sky(), 1.0))
    sill_d = rng.uniform(0.06, 0.16)
    b.add(wb(o.t0 - 0.05, o.t1 + 0.05, o.z0 - 0.03, o.z0 + e, mid + 0.03 + e, sill_d), frame)
    return b


def _door(room: Room, o: Opening, kit: MaterialKit, rng: Gen) -> Builder:
    b = Builder("door")
    w = o.wall
    panel = skin(kit.wood() if rng.random() < 0.5 else kit.painted(light=rng.random() < 0.6), 1.5)
    trim = skin(kit.painted((0.95, 0.95, 0.93)), 3.0)

    def wb(t0: float, t1: float, z0: float, z1: float, n0: float, n1: float):
        return box(*wall_box(room, w, t0, t1, z0, z1, n0, n1))

    b.add(wb(o.t0, o.t1, 0.0, o.z1, -0.06, -0.02), panel)
    zs = np.linspace(0.15, o.z1 - 0.15, int(rng.integers(1, 4)) + 1)
    for z0, z1 in zip(zs[:-1], zs[1:], strict=True):  # raised panels
        b.add(wb(o.t0 + 0.12, o.t1 - 0.12, z0 + 0.05, z1 - 0.05, -0.02, -0.01), panel)
    aw = 0.07
    b.add([wb(o.t0 - aw, o.t0, 0.0, o.z1 + aw, 0.0, 0.015),
           wb(o.t1, o.t1 + aw, 0.0, o.z1 + aw, 0.0, 0.015),
           wb(o.t0, o.t1, o.z1, o.z1 + aw, 0.0, 0.015)], trim)
    side = o.t1 - 0.08 if rng.random() < 0.5 else o.t0 + 0.08
    b.add(wb(side - 0.012, side + 0.012, 0.98, 1.04, -0.01, 0.05), skin(kit.metal(), 4.0))
    return b


def build_shell(room: Room, rng: Gen, kit: MaterialKit, layout: Layout) -> list[Light]:
    """Add floor, ceiling, walls, windows and the door to ``layout``; return the ceiling
    and window lights."""
    w, d, h = room.width, room.depth, room.height
    layout.openings = _sample_openings(room, rng)
    fl = kit.floor(room.kind)
    plank = 1.0 / (0.18 * 6)
    floor = Builder("floor")
    floor.parts.append(box((-WALL_T, -WALL_T, -0.05), (w + WALL_T, d + WALL_T, 0.0)).mesh(
        skin(fl, plank if fl.name.startswith("wood") else 1.0)))
    ceiling = Builder("ceiling")
    ceiling_sk = skin(kit.painted((0.96, 0.96, 0.95), roughness=0.95), 1.0)
    ceiling.parts.append(box((-WALL_T, -WALL_T, h), (w + WALL_T, d + WALL_T, h + 0.05)).mesh(
        ceiling_sk))
    lights = []
    nx = 1 if w < 5.5 else 2
    ny = 1 if d < 5.5 else 2
    if room.kind == "kitchen" and nx * ny == 1:
        nx = 2
    fixture = skin(kit.painted((1.0, 1.0, 0.97), roughness=0.3), 4.0)
    for i in range(nx):
        for j in range(ny):
            x, y = w * (i + 0.5) / nx, d * (j + 0.5) / ny
            rad = rng.uniform(0.12, 0.25)
            fh = rng.uniform(0.03, 0.08)
            ceiling.parts.append(cylinder(rad, fh, 16, z0=h - fh).translated((x, y, 0)).mesh(
                fixture))
            watts = rng.uniform(80, 150) / (nx * ny) ** 0.5
            lights.append(Light("point", (1.0, 0.93, 0.82), float(watts), (x, y, h - fh - 0.1)))
    wall_sk = skin(kit.wall(), 1.0)
    accent = int(rng.integers(0, 4)) if rng.random() < 0.35 else -1
    accent_sk = skin(kit.accent_wall(), 1.0) if accent >= 0 else wall_sk
    for k in range(4):
        wb = Builder("wall")
        wb.parts = _wall_object(room, k, layout.openings, accent_sk if k == accent else wall_sk)
        layout.add("wall", Model("wall", wb.parts), np.eye(4), annotated=False, check=False)
    layout.add("floor", Model("floor", floor.parts), np.eye(4), annotated=False, check=False)
    layout.add("ceiling", Model("ceiling", ceiling.parts), np.eye(4), annotated=False,
               check=False)
    for o in layout.openings:
        b = _window(room, o, kit, rng) if o.kind == "window" else _door(room, o, kit, rng)
        m = Model(b.category, b.parts)
        i = layout.add(o.kind, m, np.eye(4), annotated=False, check=False)
        reach = 0.9 if o.kind == "door" else 0.2
        z0 = 0.0 if o.kind == "door" else o.z0
        kb = np.stack(wall_box(room, o.wall, o.t0 - 0.05, o.t1 + 0.05, z0, o.z1, 0.0, reach))
        layout.keepout.append((kb, i))
        if o.kind == "window":
            sill = m.part_boxes()[-1]
            lo, hi = sill
            layout.items[i].model.surfaces.append(_sill_surface(room, o, lo, hi))
            lights.append(_window_light(room, o, rng))
    return lights


def _sill_surface(room: Room, o: Opening, lo: np.ndarray, hi: np.ndarray) -> Surface:
    """Window sills hold plants and vases (the window object has an identity pose)."""
    pad = 0.02
    top = float(hi[2])
    lo = np.maximum(lo[:2], 0.0) + pad  # only the part that is inside the room
    hi = np.minimum(hi[:2], (room.width, room.depth)) - pad
    return Surface(lo, hi, top, o.z1 - o.z0 - 0.05, "sill")


def _window_light(room: Room, o: Opening, rng: Gen) -> Light:
    """Daylight through the window: a wide spot just inside the pane, aimed in and down
    (inside the room, so a renderer with shadows is not blocked by the pane)."""
    tc, zc = 0.5 * (o.t0 + o.t1), 0.5 * (o.z0 + o.z1)
    xy, _ = wall_frame(room, o.wall, tc, 0.1)
    inward, _ = wall_frame(room, o.wall, tc, 1.0)
    n = np.append(inward - xy, 0.0)
    n[:2] /= np.linalg.norm(n[:2])
    n[2] = -rng.uniform(0.3, 0.8)
    n /= np.linalg.norm(n)
    area = (o.t1 - o.t0) * (o.z1 - o.z0)
    return Light("spot", (1.0, 0.98, 0.95), float(rng.uniform(150, 300) * area), (
        float(xy[0]), float(xy[1]), float(zc)), tuple(float(v) for v in n), 1.1)


# ---------------------------------------------------------------------------------------------
# Small objects on surfaces

# what goes where: (support category, surface kind) -> {category: weight}
SMALL_ON: dict[tuple[str, str], dict[str, float]] = {
    ("coffee_table", "top"): {"book": 2, "mug": 2, "bowl": 1.5, "vase": 1.5, "laptop": 1,
                              "plate": 0.5, "box": 1, "potted_plant": 1, "bottle": 0.5},
    ("coffee_table", "shelf"): {"book": 3, "box": 2, "bowl": 0.5},
    ("dining_table", "top"): {"plate": 3, "bowl": 2, "mug": 2, "bottle": 2, "vase": 1.5,
                              "fruit": 1, "laptop": 0.5, "book": 0.5, "potted_plant": 0.5},
    ("tv_stand", "top"): {"vase": 1, "box": 1, "book": 1, "potted_plant": 1,
                          "picture_frame": 1},
    ("tv_stand", "shelf"): {"book": 2, "box": 2},
    ("cabinet", "top"): {"vase": 1.5, "picture_frame": 1.5, "book": 1, "box": 1,
                         "potted_plant": 1, "bowl": 0.5, "bottle": 0.5},
    ("bookshelf", "shelf"): {"vase": 1, "box": 1.2, "picture_frame": 1, "potted_plant": 0.7,
                             "bowl": 0.3, "book": 1},
    ("counter", "top"): {"bottle": 3, "bowl": 2, "plate": 1, "mug": 2, "box": 1.5, "fruit": 1,
                         "potted_plant": 0.7, "vase": 0.5, "book": 0.5, "pot": 0.5, "pan": 0.3},
    ("stove", "burner"): {"pot": 2, "pan": 2, "kettle": 0.5},
    ("sofa", "seat"): {"cushion": 1, "book": 0.15, "laptop": 0.15},
    ("armchair", "seat"): {"cushion": 1, "book": 0.2},
    ("window", "sill"): {"potted_plant": 2, "vase": 1, "bottle": 0.3, "picture_frame": 0.3},
    ("bowl", "inside"): {"fruit": 1},
    ("book", "top"): {"book": 1, "mug": 0.2},
    ("box", "top"): {"book": 0.3, "box": 0.3},
    ("fridge", "top"): {"box": 1, "bottle": 0.5, "bowl": 0.3},
    # office and tabletop scenes ("train" content)
    ("desk", "top"): {"book": 1.5, "mug": 1.5, "laptop": 0.7, "stapler": 1, "bottle": 1,
                      "box": 1, "potted_plant": 0.5, "tin_can": 1, "spray_bottle": 0.5,
                      "keyboard": 0.3, "picture_frame": 0.5, "table_lamp": 0.3},
    # storage and workshop scenes ("heldout" content: held-out families only)
    ("rack", "shelf"): {"crate": 2, "jar": 1.5, "tape_roll": 1, "lumpy_blob": 0.7,
                        "capsule": 0.7, "twisted_prism": 0.7, "toy_figure": 0.7, "wrench": 0.5},
    ("workbench", "top"): {"wrench": 2, "tape_roll": 1.5, "jar": 1.5, "capsule": 1,
                           "lumpy_blob": 1, "twisted_prism": 1, "toy_figure": 1, "crate": 0.5},
    ("workbench", "shelf"): {"crate": 2, "jar": 1, "tape_roll": 1},
    ("crate", "inside"): {"lumpy_blob": 1.5, "capsule": 1.5, "jar": 1, "tape_roll": 1,
                          "wrench": 1, "toy_figure": 1, "twisted_prism": 1},
    ("floor", "floor"): {"crate": 3, "lumpy_blob": 1, "toy_figure": 0.5, "jar": 0.5,
                         "twisted_prism": 0.5},
}
# how strongly each support attracts objects (per square metre of surface)
SUPPORT_WEIGHT = {"coffee_table": 12, "dining_table": 8, "counter": 10, "stove": 6,
                  "bookshelf": 4, "cabinet": 8, "tv_stand": 8, "window": 10, "sofa": 2,
                  "armchair": 2, "bowl": 30, "book": 10, "box": 4, "fridge": 4,
                  "desk": 14, "rack": 8, "workbench": 14, "crate": 25, "floor": 0.4}


def small_model(category: str, rng: Gen, kit: MaterialKit, clearance: float, surface_kind: str
                ) -> Model:
    """A random instance sized for the surface it is meant for."""
    cap = clearance - 0.02
    if category == "book":
        return build("book", rng, kit, max_height=min(cap, 0.3),
                     lying=surface_kind != "shelf" or rng.random() < 0.3)
    if category == "potted_plant":
        return build("potted_plant", rng, kit, large=False, max_height=min(cap, 0.45))
    if category == "picture_frame":
        return build("picture_frame", rng, kit, standing=True, max_size=min(cap * 0.9, 0.3))
    if category in ("vase", "bottle"):
        return build(category, rng, kit, max_height=cap)
    if category == "box":
        return build("box", rng, kit, max_height=min(cap, 0.3))
    if category == "table_lamp":
        return build("table_lamp", rng, kit, max_height=cap)
    if category in SMALL_GENERIC:
        return build(category, rng, kit, max_height=min(cap, 0.35))
    return build(category, rng, kit)


def small_options(layout: Layout, support: Placed, surface: Surface) -> dict[str, float]:
    """What may go on ``surface`` of ``support`` in this scene: SMALL_ON's choices, plus the
    scene's generic families on tops and shelves, less what its content group excludes."""
    options = SMALL_ON[(support.category, surface.kind)]
    if layout.extra_small and surface.kind in ("top", "shelf"):
        options = {**options, **layout.extra_small}
    if layout.allowed is not None:
        options = {c: w for c, w in options.items() if c in layout.allowed}
    return options


def surfaces_of(layout: Layout) -> list[tuple[int, Surface, float]]:
    """Every surface that accepts small objects, with its attraction weight."""
    out = []
    for i, p in enumerate(layout.items):
        for s in p.model.surfaces:
            if (p.category, s.kind) not in SMALL_ON:
                continue
            if layout.allowed is not None and not small_options(layout, p, s):
                continue
            area = float(np.prod(s.hi - s.lo))
            out.append((i, s, SUPPORT_WEIGHT.get(p.category, 1.0) * max(area, 0.02)))
    return out


def drop_small(layout: Layout, rng: Gen, kit: MaterialKit, category: str | None = None,
               support_categories: tuple[str, ...] | None = None, tries: int = 6) -> int | None:
    """Put one small object (of ``category``, or one suited to the surface) somewhere."""
    if layout.full():
        return None
    cands = surfaces_of(layout)
    if support_categories is not None:
        cands = [c for c in cands if layout.items[c[0]].category in support_categories]
    if category is not None:
        cands = [c for c in cands if category in small_options(layout, layout.items[c[0]], c[1])]
    if not cands:
        return None
    w = np.array([c[2] for c in cands])
    for _ in range(tries):
        i, s, _ = cands[int(rng.choice(len(cands), p=w / w.sum()))]
        options = small_options(layout, layout.items[i], s)
        cat = category or _weighted(rng, options)
        model = small_model(cat, rng, kit, s.clearance, s.kind)
        yaw = None
        if cat in ("picture_frame", "laptop", "cushion", "table_lamp") or (
                cat == "book" and s.kind == "shelf"):
            yaw = float(rng.uniform(-0.25, 0.25))
        elif cat not in ("book",):
            yaw = float(rng.uniform(-np.pi, np.pi))
        j = place_on(layout, rng, cat, model, i, s, yaw=yaw, tries=4)
        if j is not None:
            return j
    return None


def _weighted(rng: Gen, options: dict[str, float]) -> str:
    names = list(options)
    w = np.array([options[n] for n in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def fill_shelf(layout: Layout, rng: Gen, kit: MaterialKit, support: int, surface: Surface,
               max_books: int) -> int:
    """A row of books standing on a shelf, spines out, from a random start; returns count."""
    placed = 0
    x = surface.lo[0] + rng.uniform(0.0, 0.4) * (surface.hi[0] - surface.lo[0])
    end = surface.hi[0] - rng.uniform(0.0, 0.3) * (surface.hi[0] - surface.lo[0])
    depth = surface.hi[1] - surface.lo[1]
    while placed < max_books and not layout.full():
        m = build("book", rng, kit, max_height=surface.clearance - 0.015, max_depth=depth - 0.01)
        th = m.size[0]
        if x + th > end:
            break
        y = surface.hi[1] - m.size[1] / 2 - rng.uniform(0.0, 0.02)
        i = place_on(layout, rng, "book", m, support, surface, yaw=0.0,
                     xy=(x + th / 2, y))
        x += th + rng.uniform(0.001, 0.004)
        if i is None:
            continue
        placed += 1
    return placed


def stack_books(layout: Layout, rng: Gen, kit: MaterialKit, support: int, surface: Surface,
                n: int) -> int:
    """A pile of books lying on a table or shelf, each resting on the one below."""
    m = small_model("book", rng, kit, surface.clearance, "top")
    i = place_on(layout, rng, "book", m, support, surface, yaw=float(rng.uniform(-0.3, 0.3)))
    count = int(i is not None)
    while i is not None and count < n and not layout.full():
        s = layout.items[i].model.surfaces[0]
        top = surface.clearance - (layout.items[i].boxes[:, 1, 2].max() - world_surface(
            layout.items[support], surface)[0][2])
        sub = Surface(s.lo, s.hi, s.z, top, "top")
        m = build("book", rng, kit, max_height=0.3, lying=True)
        size = m.size
        if size[0] > (s.hi[0] - s.lo[0]) + 0.06 or size[1] > (s.hi[1] - s.lo[1]) + 0.06:
            break
        # books on a pile overhang a little: place by centre, not by containment
        j = place_on(layout, rng, "book", m, i, sub, yaw=float(rng.uniform(-0.15, 0.15)),
                     xy=(rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01)))
        if j is None:
            break
        i, count = j, count + 1
    return count


# ---------------------------------------------------------------------------------------------
# Room templates


def _near_wall_of(layout: Layout, idx: int) -> tuple[int, float]:
    """The wall an item stands against and its position along it."""
    p = layout.items[idx]
    x, y = p.pose[0, 3], p.pose[1, 3]
    r = layout.room
    dists = [y, r.width - x, r.depth - y, x]
    wall = int(np.argmin(dists))
    return wall, (x if wall % 2 == 0 else y)


def furnish_living(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    room = layout.room
    # sofa against the wall with the most room
    walls = sorted(range(4), key=lambda k: -wall_length(room, k) + rng.uniform(0, 1.5))
    sofa_i = None
    for _ in range(3):
        sofa_m = build("sofa", rng, kit)
        for wall in walls:
            length = wall_length(room, wall)
            if length < sofa_m.size[0] + 0.6:
                continue
            for _ in range(6):
                t = length / 2 + rng.uniform(-0.25, 0.25) * (length - sofa_m.size[0])
                sofa_i = place_wall(layout, "sofa", sofa_m, wall, t, gap=rng.uniform(0.02, 0.15))
                if sofa_i is not None:
                    break
            if sofa_i is not None:
                break
        if sofa_i is not None:
            break
    if sofa_i is not None:
        _sofa_group(layout, rng, kit, sofa_i)
    else:
        try_wall(layout, rng, "armchair", build("armchair", rng, kit))
    extras = ["bookshelf", "cabinet", "floor_lamp", "bookshelf", "potted_plant", "cabinet"]
    for cat in extras[: int(rng.integers(3, len(extras) + 1))]:
        if layout.full():
            return
        if cat == "floor_lamp" and sofa_i is not None:
            _lamp_by(layout, rng, kit, sofa_i)
            continue
        m = build(cat, rng, kit, large=True) if cat == "potted_plant" else build(cat, rng, kit)
        try_wall(layout, rng, cat, m, gap=rng.uniform(0.01, 0.08))
    if room.width * room.depth > 22 and rng.random() < 0.6 and not layout.full():
        dining_set(layout, rng, kit)
    if rng.random() < 0.4:
        try_wall(layout, rng, "stool", build("stool", rng, kit, bar=False), gap=0.05)


def _sofa_group(layout: Layout, rng: Gen, kit: MaterialKit, sofa_i: int) -> None:
    """Rug and coffee table in front of the sofa, TV across, armchairs at the sides."""
    sofa = layout.items[sofa_i]
    wall, t = _near_wall_of(layout, sofa_i)
    sd = sofa.model.size[1]
    yaw = float(np.arctan2(sofa.pose[1, 0], sofa.pose[0, 0]))
    u = sofa.pose[:2, 0]  # along the wall
    n = sofa.pose[:2, 1]  # into the room
    front = sofa.pose[:2, 3] + n * sd / 2
    room = layout.room
    wall_point, _ = wall_frame(room, wall, t, 0.0)
    room_left = (room.depth if wall % 2 == 0 else room.width) - float((front - wall_point) @ n)
    gap = rng.uniform(0.35, 0.5)
    ct = build("coffee_table", rng, kit)
    ct_d, ct_w = ct.size[1], ct.size[0]
    if rng.random() < 0.85:
        rw = min(ct_w + rng.uniform(0.8, 1.6), sofa.model.size[0] + 0.4)
        rd = min(ct_d + 2 * gap + rng.uniform(0.3, 0.9), room_left - 1.0)
        if rd > ct_d + 0.3:
            rugm = build("rug", rng, kit, width=rw, depth=rd)
            c = front + n * (rng.uniform(0.03, 0.15) + rd / 2)
            place_floor(layout, "rug", rugm, c, yaw)
    c = front + n * (gap + ct_d / 2)
    ct_i = place_floor(layout, "coffee_table", ct, c, yaw)
    # TV on its stand against the opposite wall, facing the sofa
    opp = (wall + 2) % 4
    ts = build("tv_stand", rng, kit)
    ts_i = None
    for dt in (0.0, 0.3, -0.3, 0.6, -0.6, 0.9, -0.9):  # the TV must not stand in a window
        ts_i = place_wall(layout, "tv_stand", ts, opp, t + dt, gap=rng.uniform(0.02, 0.1),
                          clear_height=0.9)
        if ts_i is not None:
            break
    for _ in range(25 if ts_i is None else 0):
        wall = int(rng.integers(0, 4))
        length = wall_length(room, wall)
        if length > ts.size[0] + 0.1:
            ts_i = place_wall(layout, "tv_stand", ts, wall,
                              rng.uniform(ts.size[0] / 2, length - ts.size[0] / 2), gap=0.05,
                              clear_height=0.9)
            if ts_i is not None:
                break
    if ts_i is not None:
        top = [s for s in layout.items[ts_i].model.surfaces if s.kind == "top"][0]
        tvm = build("tv", rng, kit, max_width=min(1.5, top.hi[0] - top.lo[0]))
        place_on(layout, rng, "tv", tvm, ts_i, top, yaw=0.0, xy=(
            rng.uniform(-0.05, 0.05) * (top.hi[0] - top.lo[0]), min(0.0, top.hi[1] - tvm.size[1] / 2
                                                                 - 0.01)))
    if ct_i is None:
        return
    ctp = layout.items[ct_i].pose[:2, 3]
    for side in rng.permutation([-1, 1])[: int(rng.integers(0, 3))]:
        ac = build("armchair", rng, kit)
        for _ in range(4):
            off = ct_w / 2 + rng.uniform(0.3, 0.6) + ac.size[1] / 2
            p = ctp + side * off * u + n * rng.uniform(-0.2, 0.2)
            if place_floor(layout, "armchair", ac, p, yaw_facing(-side * u)) is not None:
                break


def _lamp_by(layout: Layout, rng: Gen, kit: MaterialKit, near: int) -> None:
    """Floor lamp beside one end of the sofa."""
    lamp = build("floor_lamp", rng, kit)
    p = layout.items[near]
    u, n = p.pose[:2, 0], p.pose[:2, 1]
    back = p.pose[:2, 3] - n * p.model.size[1] / 2
    for side in rng.permutation([-1, 1]):
        for _ in range(3):
            off = p.model.size[0] / 2 + lamp.size[0] / 2 + rng.uniform(0.03, 0.25)
            c = back + side * off * u + n * (lamp.size[1] / 2 + rng.uniform(0.05, 0.25))
            if place_floor(layout, "floor_lamp", lamp, c, rng.uniform(-np.pi, np.pi)) is not None:
                return
    try_wall(layout, rng, "floor_lamp", lamp, gap=0.1)


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


def dining_set(layout: Layout, rng: Gen, kit: MaterialKit) -> int | None:
    """Dining table in the open with matching chairs pushed in around it."""
    table = build("dining_table", rng, kit)
    ti = place_free(layout, rng, "dining_table", table, margin=0.75, roomy=True)
    if ti is None:
        return None
    design = chair_design(rng, kit)
    tp = layout.items[ti].pose
    w, d = table.size[0], table.size[1]
    round_top = abs(w - d) < 1e-3
    seats = []  # (local x, local y, facing direction in table frame)
    if round_top:
        rad = w / 2
        for k in range(4):
            a = k * np.pi / 2
            dirn = np.array([np.cos(a), np.sin(a)])
            seats.append((dirn * rad, -dirn))
    else:
        per_side = max(1, int((w - 0.2) / 0.6))
        xs = (np.arange(per_side) - (per_side - 1) / 2) * min(0.6, (w - 0.2) / per_side)
        for s in (-1, 1):
            for x in xs:
                seats.append((np.array([x, s * d / 2]), np.array([0.0, -s])))
        if rng.random() < 0.5 and d > 0.75:
            for s in (-1, 1):
                seats.append((np.array([s * w / 2, 0.0]), np.array([-s, 0.0])))
    n_chairs = len(seats) if rng.random() < 0.6 else max(2, len(seats) - 1)
    for k in rng.permutation(len(seats))[:n_chairs]:
        edge, facing = seats[k]
        ch = chair(rng, kit, design)
        for tuck in (rng.uniform(0.05, 0.15), 0.0, -0.08):
            local = edge - facing * (ch.size[1] / 2 - tuck)
            world = tp[:2, :2] @ local + tp[:2, 3]
            dirn = tp[:2, :2] @ facing
            if place_floor(layout, "chair", ch, world, yaw_facing(dirn)) is not None:
                break
    return ti


def furnish_kitchen(layout: Layout, rng: Gen, kit: MaterialKit) -> KitchenStyle:
    room = layout.room
    style = kitchen_style(rng, kit)
    first = int(rng.integers(0, 4))
    shape = str(rng.choice(["L", "L", "U", "I", "II"]))
    walls = {"L": [first, (first + 1) % 4], "U": [first, (first + 1) % 4, (first + 3) % 4],
             "I": [first], "II": [first, (first + 2) % 4]}[shape]
    need = ["fridge", "stove", "sink"]
    for k, wall in enumerate(walls):
        todo = need if k == len(walls) - 1 else need[: int(rng.integers(0, len(need) + 1))]
        placed = _run(layout, rng, kit, style, wall, todo)
        need = [u for u in need if u not in placed]
    for wall in rng.permutation(4):  # a unit that found no room on the runs: any free wall
        if not need:
            break
        need = [u for u in need if u not in _run(layout, rng, kit, style, int(wall), need)]
    # island with stools, or a table with chairs
    if room.width * room.depth > 20 and rng.random() < 0.3:
        _island(layout, rng, kit, style)
    elif rng.random() < 0.85:
        dining_set(layout, rng, kit)
    for cat in ("cabinet", "bookshelf", "potted_plant")[: int(rng.integers(0, 4))]:
        if layout.full():
            break
        m = build(cat, rng, kit, large=True) if cat == "potted_plant" else build(cat, rng, kit)
        try_wall(layout, rng, cat, m, gap=0.02)
    return style


def _run(layout: Layout, rng: Gen, kit: MaterialKit, style: KitchenStyle, wall: int,
         need: list[str]) -> list[str]:
    """Fill one wall with base units from a random end; the units in ``need`` (fridge,
    stove, sink) are mixed in. Returns the ones placed."""
    length = wall_length(layout.room, wall)
    units: list[str] = list(need)
    rng.shuffle(units)
    if "fridge" in units:  # the fridge stands at an end of the run
        units.remove("fridge")
        units.insert(0 if rng.random() < 0.5 else len(units), "fridge")
    forward = rng.random() < 0.5
    cursor = 0.0
    done: list[str] = []
    model, kind = None, "counter"
    while cursor < length - 0.3 and not layout.full():
        if model is None:  # a unit that did not fit is retried further along
            todo = [u for u in units if u not in done]
            kind = todo[0] if todo and (rng.random() < 0.45 or todo[0] == "fridge") else "counter"
            model = _unit(rng, kit, style, kind, length - cursor - 0.01)
            if model is None:
                break
        sx = model.size[0]
        if cursor + sx > length:
            if kind != "counter":
                break
            model = None
            continue
        t = cursor + sx / 2 if forward else length - cursor - sx / 2
        category = kind if kind in ("fridge", "stove") else "counter"
        if place_wall(layout, category, model, wall, t, gap=0.0) is None:
            cursor += 0.05
            continue
        if kind != "counter":
            done.append(kind)
        cursor += sx
        if kind in ("counter", "sink"):
            _wall_cabinet(layout, rng, kit, style, wall, t, sx)
        model = None
    return done


def _unit(rng: Gen, kit: MaterialKit, style: KitchenStyle, kind: str, room_left: float
          ) -> Model | None:
    if kind == "fridge":
        return fridge(rng, kit, style)
    if kind == "stove":
        return stove(rng, kit, style)
    width = float(rng.choice([0.45, 0.6, 0.6, 0.8, 0.9, 1.0, 1.2]))
    if kind == "sink":
        width = max(width, 0.8)
    width = min(width, room_left)
    if width < 0.3:
        return None
    return counter(rng, kit, style, width, sink=kind == "sink")


def _wall_cabinet(layout: Layout, rng: Gen, kit: MaterialKit, style: KitchenStyle, wall: int,
                  t: float, width: float) -> None:
    if rng.random() > 0.6:
        return
    z = rng.uniform(1.42, 1.52)
    h = min(rng.uniform(0.6, 0.75), layout.room.height - z - 0.05)
    m = cabinet(rng, kit, "wall", width=width, depth=rng.uniform(0.3, 0.35), height=h,
                body=style.body, fronts=style.front, handles=style.handle)
    place_wall(layout, "cabinet", m, wall, t, gap=0.0, z=z)


def _island(layout: Layout, rng: Gen, kit: MaterialKit, style: KitchenStyle) -> None:
    width = float(rng.uniform(1.0, 1.8))
    m = counter(rng, kit, style, width)
    i = place_free(layout, rng, "counter", m, margin=0.9)
    if i is None:
        return
    p = layout.items[i].pose
    back = -p[:2, 1]
    for k in range(int(rng.integers(1, 4))):
        s = build("stool", rng, kit, bar=True)
        x = (k - 1) * 0.5
        c = p[:2, 3] + p[:2, 0] * x + back * (m.size[1] / 2 + s.size[1] / 2 + rng.uniform(0.0,
                                                                                       0.1))
        place_floor(layout, "stool", s, c, yaw_facing(-back))


def decorate_walls(layout: Layout, rng: Gen, kit: MaterialKit, n: int) -> None:
    """Pictures hung on the walls at eye level, clear of openings and tall furniture."""
    for _ in range(n):
        if layout.full():
            return
        m = build("picture_frame", rng, kit, max_size=min(1.0, layout.room.height - 1.9))
        z = rng.uniform(1.45, 1.75) - m.size[2] / 2
        try_wall(layout, rng, "picture_frame", m, gap=0.0, z=max(z, 1.0), tries=15)


def furnish_small(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    """The essential small objects first, then rows of books, then anything anywhere."""
    kind = layout.room.kind
    if kind == "living_room":
        for cat, sup, n in (("cushion", ("sofa",), int(rng.integers(2, 5))),
                            ("cushion", ("armchair",), int(rng.integers(0, 3)))):
            for _ in range(n):
                drop_small(layout, rng, kit, cat, sup)
        _lamp_on(layout, rng, kit)
    else:
        _on_counter(layout, rng, kit, "microwave")
        _on_counter(layout, rng, kit, "kettle")
        for _ in range(int(rng.integers(1, 4))):
            drop_small(layout, rng, kit, str(rng.choice(["pot", "pan"])), ("stove",))
        for _ in range(int(rng.integers(0, 3))):
            bi = drop_small(layout, rng, kit, "bowl", ("counter", "dining_table"))
            if bi is not None:
                for _ in range(int(rng.integers(1, 4))):
                    drop_small(layout, rng, kit, "fruit", ("bowl",))
    decorate_walls(layout, rng, kit, int(rng.integers(1, 4)))
    # books: rows on shelves, piles on tables
    budget = max(0, int((layout.limit - layout.count) * rng.uniform(0.2, 0.4)))
    shelves = [(i, s) for i, p in enumerate(layout.items) for s in p.model.surfaces
               if s.kind == "shelf" and p.category in ("bookshelf", "tv_stand", "coffee_table")]
    for k in rng.permutation(len(shelves)):
        if budget <= 0:
            break
        i, s = shelves[k]
        if rng.random() < 0.75:
            budget -= fill_shelf(layout, rng, kit, i, s, min(budget, int(rng.integers(3, 14))))
    tables = [(i, s) for i, p in enumerate(layout.items) for s in p.model.surfaces
              if p.category in ("coffee_table", "cabinet", "dining_table") and s.kind == "top"]
    for i, s in tables:
        if rng.random() < 0.4:
            stack_books(layout, rng, kit, i, s, int(rng.integers(1, 4)))
    misses = 0
    while not layout.full() and misses < 40:
        misses = misses + 1 if drop_small(layout, rng, kit) is None else 0


def _lamp_on(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    cands = [(i, s) for i, p in enumerate(layout.items) for s in p.model.surfaces
             if p.category in ("cabinet", "tv_stand") and s.kind == "top"]
    for k in rng.permutation(len(cands))[:2]:
        i, s = cands[k]
        m = small_model("table_lamp", rng, kit, s.clearance, "top")
        if place_on(layout, rng, "table_lamp", m, i, s, yaw=0.0) is not None:
            return


def _on_counter(layout: Layout, rng: Gen, kit: MaterialKit, category: str) -> None:
    cands = [(i, s) for i, p in enumerate(layout.items) for s in p.model.surfaces
             if p.category == "counter" and s.kind == "top"]
    for k in rng.permutation(len(cands)):
        i, s = cands[k]
        m = build(category, rng, kit)
        # appliances stand square to the counter front, pushed towards the wall
        y = s.lo[1] + m.size[1] / 2 + rng.uniform(0.0, 0.05)
        if s.hi[0] - s.lo[0] < m.size[0] or y + m.size[1] / 2 > s.hi[1]:
            continue
        x = rng.uniform(s.lo[0] + m.size[0] / 2, s.hi[0] - m.size[0] / 2)
        if place_on(layout, rng, category, m, i, s, yaw=0.0, xy=(x, y)) is not None:
            return


# ---------------------------------------------------------------------------------------------
# Office, tabletop ("train" content), storage and workshop ("heldout" content)


def fill_small(layout: Layout, rng: Gen, kit: MaterialKit,
               support_categories: tuple[str, ...] | None = None, patience: int = 20) -> None:
    """Drop small objects until the scene is full or ``patience`` tries in a row fail."""
    misses = 0
    while not layout.full() and misses < patience:
        ok = drop_small(layout, rng, kit, support_categories=support_categories) is not None
        misses = 0 if ok else misses + 1


def _chair_at(layout: Layout, rng: Gen, kit: MaterialKit, table: int) -> None:
    """An office chair in front of a desk, facing it, pushed in a little or pulled out."""
    p = layout.items[table]
    n = p.pose[:2, 1]
    ch = build("office_chair", rng, kit)
    for pull in (rng.uniform(0.0, 0.3), 0.0, 0.4):
        c = p.pose[:2, 3] + n * (p.model.size[1] / 2 + ch.size[1] / 2 + pull - 0.15) \
            + p.pose[:2, 0] * rng.uniform(-0.2, 0.2)
        if place_floor(layout, "office_chair", ch, c, yaw_facing(-n) + rng.uniform(-0.4, 0.4)
                       ) is not None:
            return


def _desk_setup(layout: Layout, rng: Gen, kit: MaterialKit, desk_i: int) -> None:
    """A monitor at the back of the desk facing its front, a keyboard before it."""
    top = layout.items[desk_i].model.surfaces[0]
    mon = small_model("monitor", rng, kit, top.clearance, "top")
    x = rng.uniform(top.lo[0] + mon.size[0] / 2, max(top.lo[0] + mon.size[0] / 2,
                                                      top.hi[0] - mon.size[0] / 2))
    if place_on(layout, rng, "monitor", mon, desk_i, top, yaw=0.0,
                xy=(x, top.lo[1] + mon.size[1] / 2 + 0.02)) is None:
        return
    kb = small_model("keyboard", rng, kit, top.clearance, "top")
    place_on(layout, rng, "keyboard", kb, desk_i, top, yaw=float(rng.uniform(-0.15, 0.15)),
             xy=(x + rng.uniform(-0.05, 0.05), top.lo[1] + mon.size[1] + 0.05 + kb.size[1] / 2))


def furnish_office(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    """Desks against the walls with chairs, monitors and clutter; shelves, cabinets, bins."""
    for _ in range(int(rng.integers(1, 4))):
        i = try_wall(layout, rng, "desk", build("desk", rng, kit), gap=0.02)
        if i is None:
            continue
        if rng.random() < 0.7:
            _desk_setup(layout, rng, kit, i)
        _chair_at(layout, rng, kit, i)
    for cat in ("bookshelf", "cabinet", "bookshelf", "potted_plant")[: int(rng.integers(1, 5))]:
        m = build(cat, rng, kit, large=True) if cat == "potted_plant" else build(cat, rng, kit)
        try_wall(layout, rng, cat, m, gap=0.02)
    for _ in range(int(rng.integers(1, 3))):
        try_wall(layout, rng, "waste_bin", build("waste_bin", rng, kit), gap=0.05)
    decorate_walls(layout, rng, kit, int(rng.integers(0, 3)))
    fill_small(layout, rng, kit, ("desk",), patience=8)
    fill_small(layout, rng, kit)


def furnish_tabletop(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    """One table (a dining table in the open or a desk at a wall) densely cluttered with
    small objects that hide each other; a little furniture around it."""
    table = None
    first = int(rng.random() < 0.55)
    for k in range(4):  # a table that does not fit this small room: the other sort, or anew
        if (first + k) % 2:
            table = dining_set(layout, rng, kit)
        else:
            table = try_wall(layout, rng, "desk", build("desk", rng, kit), gap=0.02)
            if table is not None:
                _chair_at(layout, rng, kit, table)
        if table is not None:
            break
    for cat in ("bookshelf", "cabinet")[: int(rng.integers(0, 3))]:
        try_wall(layout, rng, cat, build(cat, rng, kit), gap=0.02)
    if table is not None:
        # most of the budget on the one table: dense, mutually occluding clutter
        keep = layout.limit
        layout.limit = min(keep, layout.count + int(rng.integers(18, 35)))
        fill_small(layout, rng, kit, (layout.items[table].category,), patience=15)
        layout.limit = keep
    fill_small(layout, rng, kit)


def furnish_storage(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    """Shelving racks along the walls filled with crates and things, crates on the floor."""
    for _ in range(int(rng.integers(2, 6))):
        try_wall(layout, rng, "rack", build("rack", rng, kit), gap=0.02)
    for _ in range(int(rng.integers(1, 5))):
        m = build("crate", rng, kit)
        if rng.random() < 0.5:
            try_wall(layout, rng, "crate", m, gap=0.02)
        else:
            place_free(layout, rng, "crate", m, margin=0.2, yaw=float(rng.uniform(-np.pi, np.pi)))
    fill_small(layout, rng, kit)


def furnish_workshop(layout: Layout, rng: Gen, kit: MaterialKit) -> None:
    """Workbenches cluttered with tools and parts, a rack, and things lying on the floor."""
    for _ in range(int(rng.integers(1, 3))):
        try_wall(layout, rng, "workbench", build("workbench", rng, kit), gap=0.02)
    if rng.random() < 0.7:
        try_wall(layout, rng, "rack", build("rack", rng, kit), gap=0.02)
    r = layout.room
    floor = next(p for p in layout.items if p.category == "floor")
    floor.model.surfaces.append(Surface(np.array([0.3, 0.3]), np.array([r.width - 0.3,
                                        r.depth - 0.3]), 0.0, r.height - 0.1, "floor"))
    fill_small(layout, rng, kit, ("workbench",), patience=10)
    fill_small(layout, rng, kit)


FURNISH = {"office": furnish_office, "tabletop": furnish_tabletop, "storage": furnish_storage,
           "workshop": furnish_workshop}
ROOM_SIZE = {"kitchen": (4.0, 6.5), "living_room": (4.5, 7.0), "office": (3.5, 6.0),
             "tabletop": (3.0, 4.5), "storage": (3.0, 5.5), "workshop": (3.5, 6.0)}


# ---------------------------------------------------------------------------------------------
# Entry point


def sample_room(kind: RoomKind, rng: Gen) -> Room:
    lo, hi = ROOM_SIZE[kind]
    return Room(kind, float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)),
                float(rng.uniform(2.6, 3.0)))


def generate_scene(
    scene_id: str, kind: RoomKind, rng: Gen, *, n_objects: int = 60, photo_pool: str = "train",
    seed: tuple[int, ...] = (), content: str = "classic",
) -> Scene:
    """A furnished room of ``kind`` with about ``n_objects`` annotated objects.

    Everything is drawn from ``rng``: the same generator state gives the same scene, array for
    array. ``photo_pool`` ("train" or "test") picks which half of each photograph textures
    may come from (see :mod:`segan.scene.textures`). ``content`` is a group of
    :data:`segan.scene.categories.CONTENT`: the room kinds and object categories allowed
    ("classic" builds exactly what it always has; "train" mixes the training generic
    families into every room; "heldout" uses held-out families only). Annotated objects get
    instance ids 1..N in placement order; the shell (floor, walls, ceiling, windows, door)
    follows.
    """
    if kind not in ROOM_SIZE:
        raise ValueError(f"unknown room kind {kind!r}; known: {', '.join(ROOM_SIZE)}")
    check_content(content, kind)
    kit = MaterialKit(rng, photo_pool)
    room = sample_room(kind, rng)
    layout = Layout(room, n_objects)
    if content != "classic":
        layout.allowed = frozenset(CONTENT[content][0])
    if content == "train":  # every small training family, as likely as a few classic ones
        layout.extra_small = {c: 0.6 for c in TRAIN_FAMILIES if c in SMALL_GENERIC}
    lights = build_shell(room, rng, kit, layout)
    if kind == "living_room":
        furnish_living(layout, rng, kit)
        furnish_small(layout, rng, kit)
    elif kind == "kitchen":
        furnish_kitchen(layout, rng, kit)
        furnish_small(layout, rng, kit)
    else:
        FURNISH[kind](layout, rng, kit)
    _check_allowed(layout, content)
    return _to_scene(scene_id, seed, room, layout, lights)


def _check_allowed(layout: Layout, content: str) -> None:
    """The hold-out guarantee: no annotated object outside the content group's categories."""
    if layout.allowed is None:
        return
    bad = sorted({p.category for p in layout.items if p.annotated} - layout.allowed)
    if bad:
        raise AssertionError(f"content {content!r} scene holds excluded categories {bad}")


def _to_scene(scene_id: str, seed: tuple[int, ...], room: Room, layout: Layout,
              lights: list[Light]) -> Scene:
    order = [i for i, p in enumerate(layout.items) if p.annotated] + [
        i for i, p in enumerate(layout.items) if not p.annotated]
    ids = {i: k + 1 for k, i in enumerate(order)}
    objects = []
    for i in order:
        p = layout.items[i]
        sup = ids[p.support] if p.support is not None and layout.items[p.support].annotated \
            else None
        objects.append(SceneObject(ids[i], p.category, list(p.model.parts), p.pose.copy(),
                                   annotated=p.annotated, support_id=sup))
        for pos, watts in p.model.bulbs:
            w = p.pose[:3, :3] @ pos + p.pose[:3, 3]
            lights.append(Light("point", (1.0, 0.85, 0.65), watts, tuple(float(v) for v in w)))
    return Scene(scene_id, tuple(seed), room, objects, lights)
