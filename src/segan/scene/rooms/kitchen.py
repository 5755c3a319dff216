"""The kitchen's template: counter runs along the walls with the fridge and stove among them,
wall cabinets, an island, a dining set."""

from __future__ import annotations

from segan.scene.objects import Model, build, counter, stove
from segan.scene.objects.furniture import cabinet
from segan.scene.objects.kitchen import KitchenStyle, fridge, kitchen_style
from segan.scene.rooms.geometry import Gen, wall_length, yaw_facing
from segan.scene.rooms.layout import Layout, place_floor, place_free, place_wall, try_wall
from segan.scene.rooms.living import dining_set
from segan.scene.textures import MaterialKit


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
