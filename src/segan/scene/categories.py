"""The object categories the generator builds, and which are held out for out-of-domain tests.

COCO category ids are 1-based positions in ``ALL_CATEGORIES``: the 32 household categories of
the classic scenes first (their ids are those of every dataset made before the generic
families existed), then the generic families.

Hold-out: ``content`` (a GenerateConfig field) names one of ``CONTENT``'s groups, which lists
the object categories and room kinds a scene may use:
- "classic": the 32 household categories in living rooms and kitchens (presets dyce, tiny);
- "train": those plus ``TRAIN_FAMILIES``, in ``TRAIN_KINDS`` (preset diverse);
- "heldout": only ``HELDOUT_FAMILIES`` in ``HELDOUT_KINDS`` (preset ood), so a test on it
  shares no object category, no room kind and (test split: the other photo half) no texture
  photograph with anything a "train" or "classic" dataset trains on;
- "train_plus": "train" and the thin, branching and articulated ``EXTRA_TRAIN_FAMILIES``
  (preset diverse_plus), still none of the held-out ones.
"""

CATEGORIES: tuple[str, ...] = (
    "sofa", "armchair", "coffee_table", "dining_table", "chair", "stool", "bookshelf",
    "cabinet", "counter", "fridge", "stove", "microwave", "tv", "tv_stand", "floor_lamp",
    "table_lamp", "potted_plant", "vase", "mug", "bottle", "bowl", "plate", "pot", "pan",
    "kettle", "laptop", "book", "box", "fruit", "cushion", "picture_frame", "rug",
)
# generic families (segan.scene.objects.generic) seen in training
TRAIN_FAMILIES: tuple[str, ...] = (
    "block", "cylinder", "cone", "ball", "ring", "superquadric", "hammer", "screwdriver",
    "spray_bottle", "toy_stack", "tin_can", "stapler", "keyboard", "monitor", "waste_bin",
    "desk", "office_chair",
)
# generic families that only out-of-domain test scenes contain
HELDOUT_FAMILIES: tuple[str, ...] = (
    "capsule", "twisted_prism", "lumpy_blob", "wrench", "toy_figure", "jar", "tape_roll",
    "crate", "rack", "workbench",
)
# thin, branching and articulated training families (segan.scene.objects.generic_thin), in
# the "train_plus" group only; after the held-out ones, so that no earlier id moves
EXTRA_TRAIN_FAMILIES: tuple[str, ...] = ("tripod", "coat_hanger", "branch", "key", "stick_animal")
# the id space of the "train" and "heldout" groups, as it was before the extra families
BASE_CATEGORIES: tuple[str, ...] = CATEGORIES + TRAIN_FAMILIES + HELDOUT_FAMILIES
ALL_CATEGORIES: tuple[str, ...] = BASE_CATEGORIES + EXTRA_TRAIN_FAMILIES

CLASSIC_KINDS: tuple[str, ...] = ("living_room", "kitchen")
TRAIN_KINDS: tuple[str, ...] = CLASSIC_KINDS + ("office", "tabletop")
HELDOUT_KINDS: tuple[str, ...] = ("storage", "workshop")

# content group -> (object categories, room kinds) its scenes may hold
CONTENT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "classic": (CATEGORIES, CLASSIC_KINDS),
    "train": (CATEGORIES + TRAIN_FAMILIES, TRAIN_KINDS),
    "heldout": (HELDOUT_FAMILIES, HELDOUT_KINDS),
    "train_plus": (CATEGORIES + TRAIN_FAMILIES + EXTRA_TRAIN_FAMILIES, TRAIN_KINDS),
}


def check_content(content: str, kind: str | None = None) -> None:
    """Raise a clear error for an unknown content group or a room kind outside it."""
    if content not in CONTENT:
        raise ValueError(f"unknown content {content!r}; choose one of {', '.join(CONTENT)}")
    kinds = CONTENT[content][1]
    if kind is not None and kind not in kinds:
        raise ValueError(f"room kind {kind!r} is not in content {content!r} "
                         f"(its kinds: {', '.join(kinds)})")


def category_id(name: str) -> int:
    """1-based COCO category id of ``name``."""
    try:
        return ALL_CATEGORIES.index(name) + 1
    except ValueError:
        raise KeyError(f"unknown category {name!r}; known: {', '.join(ALL_CATEGORIES)}") from None


def coco_categories(content: str = "classic") -> list[dict]:
    """The category list of a dataset: the 32 classic ones for "classic" content (as before
    the generic families existed), ``BASE_CATEGORIES`` for "train" and "heldout" (as before
    the extra families existed), all of ``ALL_CATEGORIES`` for "train_plus": one id space."""
    check_content(content)
    names = {"classic": CATEGORIES, "train_plus": ALL_CATEGORIES}.get(content, BASE_CATEGORIES)
    return [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(names)]
