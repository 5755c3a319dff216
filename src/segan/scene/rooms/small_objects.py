"""Small objects on the surfaces the models expose (tables, counters, shelves, seats, burners,
window sills, bowls), shelves and book stacks, pictures on the walls: what fills a room up to
its number of annotated objects."""

from __future__ import annotations

import numpy as np

from segan.scene.objects import SMALL_GENERIC, Model, Surface, build
from segan.scene.rooms.geometry import Gen
from segan.scene.rooms.layout import Layout, Placed, place_on, try_wall, world_surface
from segan.scene.textures import MaterialKit

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


def fill_small(layout: Layout, rng: Gen, kit: MaterialKit,
               support_categories: tuple[str, ...] | None = None, patience: int = 20) -> None:
    """Drop small objects until the scene is full or ``patience`` tries in a row fail."""
    misses = 0
    while not layout.full() and misses < patience:
        ok = drop_small(layout, rng, kit, support_categories=support_categories) is not None
        misses = 0 if ok else misses + 1
