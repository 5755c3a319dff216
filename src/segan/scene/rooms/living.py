"""The living room's template (sofa against a wall, coffee table in front of it, rug under
that, TV across the room, lamps) and the dining set (also the kitchen's and the tabletop's)."""

from __future__ import annotations

import numpy as np

from segan.scene.objects import build, chair_design
from segan.scene.objects.furniture import chair
from segan.scene.rooms.geometry import Gen, wall_frame, wall_length, yaw_facing
from segan.scene.rooms.layout import Layout, place_floor, place_free, place_on, place_wall, try_wall
from segan.scene.textures import MaterialKit


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
