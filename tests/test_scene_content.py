"""Generic object families, the office / tabletop / storage / workshop kinds, the train /
held-out content groups and the diverse / ood presets."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segan.data.generate import generate
from segan.data.presets import PRESETS, SPLITS, GenerateConfig, SceneSpec, interleaved, make_config
from segan.scene import generate_scene
from segan.scene.categories import (
    ALL_CATEGORIES,
    BASE_CATEGORIES,
    CATEGORIES,
    CONTENT,
    EXTRA_TRAIN_FAMILIES,
    HELDOUT_FAMILIES,
    HELDOUT_KINDS,
    TRAIN_FAMILIES,
    TRAIN_KINDS,
    coco_categories,
)
from segan.scene.objects import BUILDERS, SMALL_GENERIC, build
from segan.scene.objects.generic import GENERIC_BUILDERS
from segan.scene.objects.generic_thin import THIN_BUILDERS
from segan.scene.textures import MaterialKit
from test_scene import _part_boxes, assert_no_interpenetration

EPS = 2e-3
NEW_KINDS = [(k, "train") for k in TRAIN_KINDS if k not in ("living_room", "kitchen")] + [
    (k, "heldout") for k in HELDOUT_KINDS]


def _model(name: str, seed: int):
    rng = np.random.default_rng(seed)
    kit = MaterialKit(rng, use_photos=False)
    return build(name, rng, kit, max_height=0.3) if name in SMALL_GENERIC else build(name, rng,
                                                                                      kit)


@pytest.mark.parametrize("name", sorted({**GENERIC_BUILDERS, **THIN_BUILDERS}))
def test_generic_builders_deterministic_and_well_formed(name):
    a, b, c = _model(name, 3), _model(name, 3), _model(name, 4)
    assert a.category == name
    va = np.concatenate([p.vertices for p in a.parts])
    assert np.array_equal(va, np.concatenate([p.vertices for p in b.parts]))
    assert not np.array_equal(a.size, c.size)
    assert np.isfinite(va).all() and abs(a.bounds()[0, 2]) < 1e-5  # resting on z = 0
    for p in a.parts:
        assert len(p.faces) and p.faces.max() < len(p.vertices)
    if name in SMALL_GENERIC:
        assert a.size[2] <= 0.3 + 1e-5


def test_groups_are_disjoint_and_complete():
    assert len(set(ALL_CATEGORIES)) == len(ALL_CATEGORIES)
    assert ALL_CATEGORIES[:32] == CATEGORIES  # classic ids unchanged
    assert set(TRAIN_FAMILIES) | set(HELDOUT_FAMILIES) == set(GENERIC_BUILDERS)
    assert set(ALL_CATEGORIES) - {"counter", "stove"} <= set(BUILDERS)
    train_cats, train_kinds = CONTENT["train"]
    held_cats, held_kinds = CONTENT["heldout"]
    assert not set(train_cats) & set(held_cats)
    assert not set(train_kinds) & set(held_kinds)
    assert set(CONTENT["classic"][0]) <= set(train_cats)
    assert [c["name"] for c in coco_categories()] == list(CATEGORIES)
    assert [c["name"] for c in coco_categories("heldout")] == list(BASE_CATEGORIES)
    # the extra families: after every earlier id, training only, all small
    assert ALL_CATEGORIES[:len(BASE_CATEGORIES)] == BASE_CATEGORIES
    assert set(EXTRA_TRAIN_FAMILIES) == set(THIN_BUILDERS) <= SMALL_GENERIC
    plus_cats, plus_kinds = CONTENT["train_plus"]
    assert set(plus_cats) == set(train_cats) | set(EXTRA_TRAIN_FAMILIES)
    assert not set(plus_cats) & set(held_cats) and plus_kinds == train_kinds
    assert [c["name"] for c in coco_categories("train_plus")] == list(ALL_CATEGORIES)
    assert [c["name"] for c in coco_categories("train")] == list(BASE_CATEGORIES)


@pytest.fixture(scope="module")
def new_scenes():
    return [generate_scene(f"{k}-{s}", k, np.random.default_rng(s), n_objects=35, content=c)
            for k, c in NEW_KINDS for s in (0, 1)]


def test_new_kinds_deterministic():
    for kind, content in NEW_KINDS:
        a, b, c = (generate_scene("x", kind, np.random.default_rng(s), n_objects=20,
                                  content=content) for s in (5, 5, 6))
        recs = [[(o.category, o.pose.tobytes(), o.parts[0].vertices.tobytes(),
                  o.parts[0].material.name) for o in s.objects] for s in (a, b, c)]
        assert recs[0] == recs[1] and recs[0] != recs[2]


def test_new_kinds_fill_respect_content_and_do_not_interpenetrate(new_scenes):
    for s, (_kind, content) in zip(new_scenes, [nk for nk in NEW_KINDS for _ in (0, 1)],
                                  strict=True):
        ann = [o for o in s.objects if o.annotated]
        assert len(ann) >= 25, (s.scene_id, len(ann))
        assert {o.category for o in ann} <= set(CONTENT[content][0]), s.scene_id
        if content == "train":  # generic families are mixed in
            assert {o.category for o in ann} & set(TRAIN_FAMILIES), s.scene_id
        assert_no_interpenetration(s)
        # on the floor, a window sill or the wall, or on their support's top part or in a crate
        sills = np.concatenate([_part_boxes(o)[:, 1, 2] for o in s.objects
                                if o.category == "window"])
        for o in ann:
            if o.support_id is None:
                z = o.world_aabb()[0, 2]
                assert abs(z) < EPS or np.abs(sills - z).min() < EPS or \
                    o.category == "picture_frame", (s.scene_id, o.category)
                continue
            sup = s.object(o.support_id)
            z = o.world_aabb()[0, 2]
            assert np.abs(_part_boxes(sup)[:, 1, 2] - z).min() < EPS or (
                sup.category == "crate" and z > sup.world_aabb()[0, 2]), (o.category, sup.category)


def test_train_plus_mixes_in_the_thin_families():
    """diverse_plus's rooms: the thin families among the others, none held out, no overlaps,
    on diverse's scene list."""
    found = set()
    for kind in TRAIN_KINDS:
        for seed in (0, 1):
            s = generate_scene("x", kind, np.random.default_rng(seed), n_objects=35,
                               content="train_plus")
            cats = {o.category for o in s.objects if o.annotated}
            assert cats <= set(CONTENT["train_plus"][0]), (kind, seed)
            found |= cats & set(EXTRA_TRAIN_FAMILIES)
            assert_no_interpenetration(s)
    assert len(found) >= 3, found
    assert PRESETS["diverse_plus"].scenes == PRESETS["diverse"].scenes


def test_tabletop_is_dense_and_viewed_close(new_scenes):
    from segan.scene import sample_view
    s = next(s for s in new_scenes if s.room.kind == "tabletop")
    tables = [o for o in s.objects if o.category in ("dining_table", "desk")]
    on_table = [o for o in s.objects if o.support_id in {t.instance_id for t in tables}]
    assert len(on_table) >= 15
    rng = np.random.default_rng(0)
    for _ in range(5):
        cam = sample_view(s, rng, 64, 64).camera
        assert 0.95 <= cam.position[2] <= 1.5
        assert np.linalg.norm(np.subtract(cam.position, cam.target)[:2]) < 1.6


def test_content_errors_name_the_field():
    with pytest.raises(ValueError, match="unknown content 'bogus'"):
        generate_scene("x", "office", np.random.default_rng(0), content="bogus")
    with pytest.raises(ValueError, match="room kind 'office' is not in content 'heldout'"):
        generate_scene("x", "office", np.random.default_rng(0), content="heldout")
    with pytest.raises(ValueError, match="room kind 'office' is not in content 'classic'"):
        GenerateConfig("p", (SceneSpec("office", "train"),), 1, 32, 32, 5, 1)
    with pytest.raises(ValueError, match="split"):
        GenerateConfig("p", (SceneSpec("kitchen", "dev"),), 1, 32, 32, 5, 1)


def test_config_field_left_out_at_default_and_round_trips():
    assert "content" not in PRESETS["dyce"].to_dict()
    assert "content" not in PRESETS["tiny"].to_dict()
    d = PRESETS["diverse"].to_dict()
    assert d["content"] == "train"
    assert GenerateConfig.from_dict(json.loads(json.dumps(d))) == PRESETS["diverse"]


def test_diverse_and_ood_share_no_category_kind_or_photo_half():
    div, ood = PRESETS["diverse"], PRESETS["ood"]
    assert {s.split for s in ood.scenes} == {"test"}  # test photo half only
    assert not {s.kind for s in div.scenes} & {s.kind for s in ood.scenes}
    assert not set(CONTENT[div.content][0]) & set(CONTENT[ood.content][0])
    assert Counter(s.split for s in div.scenes) == {"train": 300, "val": 20, "test": 40}


@pytest.mark.parametrize("n", [12, 30, 100])
def test_scene_list_prefixes_mix_kinds_and_splits(n):
    pre = PRESETS["diverse"].scenes[:n]
    assert {(s.kind, s.split) for s in pre} == {(k, sp) for k in TRAIN_KINDS for sp in SPLITS}
    assert {s.kind for s in PRESETS["diverse"].scenes[:4]} == set(TRAIN_KINDS)
    assert {s.kind for s in PRESETS["ood"].scenes[:2]} == set(HELDOUT_KINDS)
    with pytest.raises(ValueError):
        interleaved(TRAIN_KINDS, 10, 2, 4)


def test_diverse_large_is_diverse_then_as_many_training_scenes():
    """The data-quantity A/B's preset: diverse's scene list unchanged as its prefix (scene i is
    seeded by its index, so those scenes, val and test among them, are diverse's), then 300
    training scenes with the kinds taking turns."""
    small, large = PRESETS["diverse"], PRESETS["diverse_large"]
    assert large.scenes[:len(small.scenes)] == small.scenes
    extra = large.scenes[len(small.scenes):]
    assert len(extra) == 300 and {s.split for s in extra} == {"train"}
    assert [s.kind for s in extra[:len(TRAIN_KINDS)]] == list(TRAIN_KINDS)
    assert {k: [s.kind for s in extra].count(k) for k in TRAIN_KINDS} == dict.fromkeys(
        TRAIN_KINDS, 300 // len(TRAIN_KINDS))
    assert replace(large, preset="diverse", scenes=small.scenes) == small


@pytest.mark.parametrize("preset", ["diverse", "ood", "diverse_plus", "diverse_large"])
def test_tiny_generation_of_new_presets(preset, tmp_path: Path):
    cfg = make_config(preset, n_scenes=2, views_per_scene=1, size=64)
    counts = generate(tmp_path / preset, cfg, progress=False)
    assert sum(v for k, v in counts.items() if k.endswith("_objects")) > 0
    groups = CONTENT[cfg.content][0]
    for f in (tmp_path / preset / "annotations").glob("*.json"):
        data = json.loads(f.read_text())
        names = {c["id"]: c["name"] for c in data["categories"]}
        assert list(names.values()) == list(
            ALL_CATEGORIES if cfg.content == "train_plus" else BASE_CATEGORIES)
        assert {names[a["category_id"]] for a in data["annotations"]} <= set(groups)
    saved = json.loads((tmp_path / preset / "generation.json").read_text())
    assert saved["content"] == cfg.content
