"""The object categories the generator builds. COCO category ids are 1-based positions here."""

CATEGORIES: tuple[str, ...] = (
    "sofa", "armchair", "coffee_table", "dining_table", "chair", "stool", "bookshelf",
    "cabinet", "counter", "fridge", "stove", "microwave", "tv", "tv_stand", "floor_lamp",
    "table_lamp", "potted_plant", "vase", "mug", "bottle", "bowl", "plate", "pot", "pan",
    "kettle", "laptop", "book", "box", "fruit", "cushion", "picture_frame", "rug",
)


def category_id(name: str) -> int:
    """1-based COCO category id of ``name``."""
    try:
        return CATEGORIES.index(name) + 1
    except ValueError:
        raise KeyError(f"unknown category {name!r}; known: {', '.join(CATEGORIES)}") from None


def coco_categories() -> list[dict]:
    return [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(CATEGORIES)]
