"""Office and tabletop (the "train" content), storage and workshop (the "heldout" content):
the templates of the room kinds beyond the paper's living rooms and kitchens."""

from __future__ import annotations

import numpy as np

from segan.scene.objects import Surface, build
from segan.scene.rooms.geometry import Gen, yaw_facing
from segan.scene.rooms.layout import Layout, place_floor, place_free, place_on, try_wall
from segan.scene.rooms.living import dining_set
from segan.scene.rooms.small_objects import decorate_walls, fill_small, small_model
from segan.scene.textures import MaterialKit


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
