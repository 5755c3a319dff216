"""Dataset statistics and the contact sheet on a small hand-built dataset with known numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segan.data import stats as st
from segan.data.coco import load_annotations, make_annotation, make_image, write_annotations
from segan.data.stats import contact_sheet, dataset_stats, format_stats, palette

H, W = 32, 40
CATS = [
    {"id": i, "name": n, "supercategory": "object"}
    for i, n in enumerate(["sofa", "chair", "mug", "book", "lamp"], start=1)
]
SOFA, CHAIR, MUG, BOOK = 1, 2, 3, 4


def rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


# Per image: scene, objects (instance id, category, full mask, occluder full masks), pairs.
# Occlusion rates: A 0.5 (hidden by B), C 0.1 (hidden by D), E 0.8 (hidden by F), others 0.
A, B = rect(0, 10, 0, 10), rect(0, 10, 5, 15)
C, D = rect(20, 30, 0, 10), rect(29, 32, 0, 10)
E, F = rect(0, 10, 0, 10), rect(0, 10, 0, 8)
LAYOUT = {
    "train": [
        (1, "kitchen_0", [(1, SOFA, A, [B]), (2, CHAIR, B, [])], [(2, 1)]),
        (
            2,
            "kitchen_0",
            [
                (1, SOFA, rect(0, 5, 0, 5), []),
                (2, CHAIR, rect(10, 15, 10, 15), []),
                (3, MUG, rect(20, 24, 20, 24), []),
            ],
            [],
        ),
        (3, "living_0", [(1, MUG, C, [D]), (2, BOOK, D, [])], [(2, 1)]),
    ],
    "test": [
        (
            4,
            "kitchen_1",
            [(5, SOFA, E, [F]), (6, CHAIR, F, []), (7, MUG, rect(20, 25, 30, 35), [])],
            [(6, 5)],
        ),
    ],
}


def build(root: Path, instance_ids: bool = True, test_scene: str | None = None) -> Path:
    """Write the dataset of LAYOUT under ``root`` (images, appearance files for the test split
    only) and return ``root``."""
    rng = np.random.default_rng(0)
    for split, rows in LAYOUT.items():
        images, anns = [], []
        for image_id, scene, objects, pairs in rows:
            if split == "test" and test_scene:
                scene = test_scene
            rgb = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            (root / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(root / "images" / f"{image_id}.png")
            for inst, cat, full, occluders in objects:
                vis = full.copy()
                for o in occluders:
                    vis &= ~o
                app = None
                if split == "test":
                    app = f"{image_id}_{inst}.png"
                    rgba = np.dstack([rgb, full.astype(np.uint8) * 255])
                    (root / "appearance").mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rgba, "RGBA").save(root / "appearance" / app)
                anns.append(
                    make_annotation(
                        image_id * 100 + inst,
                        image_id,
                        cat,
                        full,
                        vis,
                        app,
                        instance_id=inst if instance_ids else None,
                    )
                )
            occ = [(image_id * 100 + q, image_id * 100 + p) for q, p in pairs]
            images.append(
                make_image(image_id, f"{image_id}.png", W, H, scene_id=scene, occlusion=occ)
            )
        write_annotations(root / "annotations" / f"{split}.json", images, anns, CATS)
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return build(tmp_path / "data")


def test_rates_of_the_hand_built_dataset(data: Path):
    ds = load_annotations(data / "annotations" / "train.json")
    assert ds.annotation(101)["occlude_rate"] == 0.5
    assert ds.annotation(301)["occlude_rate"] == 0.1
    assert (
        load_annotations(data / "annotations" / "test.json").annotation(405)["occlude_rate"] == 0.8
    )


def test_dataset_stats_known_numbers(data: Path):
    s = dataset_stats(data)
    json.dumps(s)  # JSON-ready, as the CLI writes it
    assert s["num_scenes"] == 3 and s["num_images"] == 4 and s["num_objects"] == 10
    assert s["objects_counted_by"] == "instance_id"
    # kitchen_0 holds instances {1, 2, 3}, living_0 {1, 2}, kitchen_1 {5, 6, 7}
    assert s["objects_per_scene"] == {"mean": pytest.approx(8 / 3, abs=1e-3), "min": 2, "max": 3}
    assert s["visible_objects_per_image"] == {"mean": 2.5, "min": 2, "max": 3}
    hist = s["occlusion_rate_histogram"]
    assert hist["edges"] == pytest.approx([i / 10 for i in range(11)])
    assert hist["counts"] == [7, 1, 0, 0, 0, 1, 0, 0, 1, 0]  # 0 x7, 0.1, 0.5, 0.8
    assert s["num_unoccluded"] == 7
    assert s["fraction_occluded_over_10pct"] == 0.2  # 0.5 and 0.8; 0.1 is not "> 10%"
    assert s["num_occlusion_pairs"] == 3
    assert s["category_counts"] == {"sofa": 3, "chair": 3, "mug": 3, "book": 1, "lamp": 0}
    assert s["scenes_shared_between_splits"] == []

    train, test = s["splits"]["train"], s["splits"]["test"]
    assert list(s["splits"]) == ["train", "test"]
    assert (train["num_scenes"], train["num_images"], train["num_objects"]) == (2, 3, 7)
    assert train["objects_per_scene"] == {"mean": 2.5, "min": 2, "max": 3}
    assert train["num_occlusion_pairs"] == 2
    assert (test["num_scenes"], test["num_images"], test["num_objects"]) == (1, 1, 3)
    assert test["fraction_occluded_over_10pct"] == pytest.approx(1 / 3, abs=1e-4)


def test_stats_without_instance_ids_count_annotations(tmp_path: Path):
    s = dataset_stats(build(tmp_path / "d", instance_ids=False))
    assert s["objects_counted_by"] == "annotation"
    # kitchen_0: 2 + 3 annotations, living_0: 2, kitchen_1: 3
    assert s["objects_per_scene"] == {"mean": pytest.approx(10 / 3, abs=1e-3), "min": 2, "max": 5}


def test_shared_scene_is_reported(tmp_path: Path):
    s = dataset_stats(build(tmp_path / "d", test_scene="kitchen_0"))
    assert s["scenes_shared_between_splits"] == ["kitchen_0"]
    assert s["num_scenes"] == 2
    assert "Warning" in format_stats(s) and "kitchen_0" in format_stats(s)


def test_format_stats(data: Path):
    text = format_stats(dataset_stats(data))
    assert "The number of scenes is 3 (2 for train, 1 for test)" in text
    assert "each scene contains 2.7 annotated objects" in text
    assert "visible objects per image is 2.5" in text
    assert "20.0% of the annotated objects are occluded by more than 10%" in text
    assert "| all | 3 | 4 | 10 |" in text
    assert "| [10%, 20%) | 1 | 10.0% |" in text and "| [90%, 100%] | 0 | 0.0% |" in text
    assert "| sofa | 3 | 30.0% |" in text


def test_missing_annotations_folder(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="annotations"):
        dataset_stats(tmp_path)


def test_contact_sheet_size_and_histogram(data: Path, tmp_path: Path):
    cell = 64
    cell_w = round(cell * W / H)  # 80
    out = contact_sheet(
        data, tmp_path / "sheet.png", n=10, seed=0, cell=cell, hist_png=tmp_path / "hist.png"
    )
    with Image.open(out) as im:
        # all 4 images drawn; appearance files exist (test split): 4 columns
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == (
            st.SHEET_PAD + 4 * (cell_w + st.SHEET_PAD),
            st.SHEET_HEADER + 4 * (st.SHEET_LABEL + cell + st.SHEET_PAD),
        )
    with Image.open(tmp_path / "hist.png") as im:
        assert im.format == "PNG" and im.size[0] > 100

    out = contact_sheet(data, tmp_path / "train.png", n=2, seed=3, split="train", cell=cell)
    with Image.open(out) as im:  # no appearance files in train: 3 columns
        assert im.size == (
            st.SHEET_PAD + 3 * (cell_w + st.SHEET_PAD),
            st.SHEET_HEADER + 2 * (st.SHEET_LABEL + cell + st.SHEET_PAD),
        )
    with pytest.raises(ValueError, match="no split 'val'"):
        contact_sheet(data, tmp_path / "x.png", split="val")


def test_invisible_regions_take_their_owners_colour(data: Path):
    """Row panels: A's visible pixels and A's hidden pixels share A's colour; the rest of the
    invisible panel is the image in dimmed grey."""
    ds = load_annotations(data / "annotations" / "train.json")
    img, visible, invisible, apps = st._row_panels(ds, 1, 4)
    colours = palette(2)  # annotation order: A, B
    assert not np.array_equal(colours[0], colours[1])
    vis_a, hid_a = A & ~B, A & B
    assert (visible[vis_a] == colours[0]).all() and (visible[B] == colours[1]).all()
    assert (visible[~(A | B)] == 0).all()
    assert (invisible[hid_a] == colours[0]).all()
    rest = ~hid_a
    dimmed = img[rest] @ np.array(st.GREY_WEIGHTS) * st.DIM  # grey, dimmed
    assert np.abs(invisible[rest].astype(float) - dimmed[:, None]).max() <= 1
    assert apps == []  # no appearance files in train

    test = load_annotations(data / "annotations" / "test.json")
    _, _, _, apps = st._row_panels(test, 4, 4)
    assert len(apps) == 3
    crop, colour = apps[0]  # most occluded first: E, full 10 x 10, alpha = S_F
    assert crop.shape == (10, 10, 4) and (crop[..., 3] == 255).all()
    assert np.array_equal(colour, palette(3)[0])


def test_palette_distinct():
    p = palette(40)
    assert p.shape == (40, 3) and p.dtype == np.uint8
    assert len({tuple(c) for c in p}) == 40
