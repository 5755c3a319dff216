"""Rooms: the shell (floor, walls, ceiling, windows, door) and furnishing them.

Furniture is placed by room templates (sofa against a wall, coffee table in front of it, rug
under that, TV across the room; kitchen counters in runs along the walls with the fridge and
stove among them...), then small objects are dropped on the surfaces the models expose
(tables, counters, shelves, seats, burners, window sills, bowls) until the scene holds
``n_objects`` annotated objects. Every candidate is checked against the world boxes of the
parts already placed (touching is allowed, 1 mm of overlap is not), against the room and
against the space kept clear in front of doors and windows.

The modules: ``geometry`` (poses, wall frames, boxes), ``layout`` (what has been placed;
placing on the floor, a wall or a surface), ``shell``, ``small_objects``, the templates of
``living`` (and the dining set), ``kitchen`` and ``work_rooms`` (office, tabletop, storage,
workshop); this one samples a room and furnishes it.
"""

from __future__ import annotations

from segan.scene.categories import CONTENT, check_content
from segan.scene.objects import SMALL_GENERIC
from segan.scene.rooms.geometry import Gen, overlaps
from segan.scene.rooms.kitchen import furnish_kitchen
from segan.scene.rooms.layout import Layout
from segan.scene.rooms.living import furnish_living
from segan.scene.rooms.shell import build_shell
from segan.scene.rooms.small_objects import furnish_small
from segan.scene.rooms.work_rooms import FURNISH
from segan.scene.textures import MaterialKit
from segan.scene.types import Light, Room, RoomKind, Scene, SceneObject

__all__ = ["ROOM_SIZE", "Layout", "generate_scene", "overlaps", "sample_room"]

ROOM_SIZE = {"kitchen": (4.0, 6.5), "living_room": (4.5, 7.0), "office": (3.5, 6.0),
             "tabletop": (3.0, 4.5), "storage": (3.0, 5.5), "workshop": (3.5, 6.0)}


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
    if content in ("train", "train_plus"):  # every small training family, as likely as a few
        # classic ones
        layout.extra_small = {c: 0.6 for c in CONTENT[content][0] if c in SMALL_GENERIC}
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
