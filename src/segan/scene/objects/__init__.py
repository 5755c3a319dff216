"""Parametric models of the object categories: ``build(category, rng, kit, **options)``.

Every call draws new dimensions, proportions, part counts and materials from ``rng``, so no
two instances are alike. Models are returned in their own frame (see :mod:`.base`).
"""

from __future__ import annotations

from collections.abc import Callable

from segan.scene.objects.base import Model, Surface
from segan.scene.objects.decor import (
    cushion,
    floor_lamp,
    picture_frame,
    potted_plant,
    table_lamp,
    tv,
)
from segan.scene.objects.furniture import (
    armchair,
    bookshelf,
    cabinet,
    chair,
    chair_design,
    coffee_table,
    dining_table,
    rug,
    sofa,
    stool,
    tv_stand,
)
from segan.scene.objects.generic import GENERIC_BUILDERS
from segan.scene.objects.generic import SMALL_GENERIC as _SMALL_GENERIC
from segan.scene.objects.generic_thin import THIN_BUILDERS
from segan.scene.objects.kitchen import (
    KitchenStyle,
    counter,
    fridge,
    kettle,
    kitchen_style,
    microwave,
    pan,
    pot,
    stove,
)
from segan.scene.objects.small import book, bottle, bowl, fruit, laptop, mug, plate, vase
from segan.scene.objects.small import storage_box as box
from segan.scene.textures import MaterialKit

BUILDERS: dict[str, Callable[..., Model]] = {
    "sofa": sofa, "armchair": armchair, "coffee_table": coffee_table,
    "dining_table": dining_table, "chair": chair, "stool": stool, "bookshelf": bookshelf,
    "cabinet": cabinet, "fridge": fridge, "microwave": microwave, "tv": tv,
    "tv_stand": tv_stand, "floor_lamp": floor_lamp, "table_lamp": table_lamp,
    "potted_plant": potted_plant, "vase": vase, "mug": mug, "bottle": bottle, "bowl": bowl,
    "plate": plate, "pot": pot, "pan": pan, "kettle": kettle, "laptop": laptop, "book": book,
    "box": box, "fruit": fruit, "cushion": cushion, "picture_frame": picture_frame, "rug": rug,
    **GENERIC_BUILDERS,
    **THIN_BUILDERS,
}
# generic families built as small objects (with max_height): every thin one is
SMALL_GENERIC = _SMALL_GENERIC | frozenset(THIN_BUILDERS)
# counter and stove need a KitchenStyle (the units of one kitchen match): see kitchen_style


def build(category: str, rng, kit: MaterialKit, **options) -> Model:
    """A new random instance of ``category``; ``options`` are the builder's keywords."""
    if category == "counter":
        style = options.pop("style", None) or kitchen_style(rng, kit)
        return counter(rng, kit, style, options.pop("width", rng.uniform(0.4, 1.0)), **options)
    if category == "stove":
        style = options.pop("style", None) or kitchen_style(rng, kit)
        return stove(rng, kit, style, **options)
    return BUILDERS[category](rng, kit, **options)


__all__ = [
    "BUILDERS", "SMALL_GENERIC", "KitchenStyle", "Model", "Surface", "build", "chair_design",
    "counter",
    "kitchen_style", "stove",
]
