"""The shell: floor, walls, ceiling, windows (with sills and daylight) and a door."""

from __future__ import annotations

import numpy as np

from segan.scene.objects import Model, Surface
from segan.scene.objects.base import Builder, skin
from segan.scene.primitives import box, cylinder, quad
from segan.scene.rooms.geometry import WALL_T, Gen, wall_box, wall_frame, wall_length
from segan.scene.rooms.layout import Layout, Opening
from segan.scene.textures import MaterialKit
from segan.scene.types import Light, Room


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
