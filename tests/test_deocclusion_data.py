"""De-occlusion ground truth (segan.data.deocclusion): exact re-renders without the removed
objects, their place in the dataset, the reader's checks, determinism and resume."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segan.data import coco
from segan.data.deocclusion import DeocclusionConfig, choose_removals
from segan.data.generate import build_renderer, build_scene, generate, render_view_truth
from segan.data.presets import GenerateConfig, make_config
from tree_digest import tree_digest

DEOCC = dict(views_per_scene=2, deocclusion=1.0)  # as tiny_data, every view chosen


def grow(mask: np.ndarray) -> np.ndarray:
    """Dilation by one pixel (3 x 3: the pixels an MSAA sample of the mask's edge can reach)."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


@pytest.fixture
def deocc_data(tiny_deocc_data: Path) -> Path:
    return tiny_deocc_data


def test_off_by_default_and_config_round_trip():
    for preset in ("tiny", "dyce", "diverse", "ood"):
        cfg = make_config(preset)
        assert cfg.deocclusion is None and "deocclusion" not in cfg.to_dict()
    cfg = make_config("tiny", deocclusion=0.25)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["deocclusion"] == {"share": 0.25, "singles": 2, "fronts": 1, "background": True}
    assert GenerateConfig.from_dict(d) == cfg
    for bad in (dict(share=1.5), dict(share=-0.1), dict(singles=-1), dict(fronts=1.0)):
        with pytest.raises(ValueError, match="deocclusion"):
            DeocclusionConfig(**bad)


def test_choose_removals_known_answer():
    # 1 hides 2; 3 and 4 hide 5; 3 and 4 also hide 6 (the same front set, listed once)
    pairs = [(1, 2), (3, 5), (4, 5), (3, 6), (4, 6)]
    rng = np.random.default_rng(0)
    sets = choose_removals(DeocclusionConfig(singles=5, fronts=5), pairs, rng)
    assert sorted(sets[:3]) == [(1,), (3,), (4,)]  # every occluder once
    assert sets[3:] == [(3, 4)]
    assert choose_removals(DeocclusionConfig(singles=1, fronts=0), pairs, rng)[0] in [
        (1,), (3,), (4,)]
    assert choose_removals(DeocclusionConfig(), [], rng) == []


def test_removed_renders_are_exact():
    """Against the view's own id pass: outside the removed objects (and the one-pixel MSAA
    ring around them) the image is unchanged; no removed object is in a new visible mask;
    revealed pixels show the object as rendered alone; the background is the room shell."""
    cfg = make_config("tiny", **DEOCC)
    scene = build_scene(cfg, 0)
    with build_renderer(cfg, scene) as renderer:
        truth = render_view_truth(cfg, scene, renderer, 0, 1)
        assert truth.deocclusion is not None
        objects = {o.instance_id: o for o in truth.objects}
        assert len(truth.deocclusion.removals) == 3  # 2 singles, 1 front set
        for removal in truth.deocclusion.removals:
            hole = np.isin(truth.ids, removal.removed)
            assert hole.any()
            outside = ~grow(hole)
            np.testing.assert_array_equal(removal.rgb[outside], truth.rgb[outside])
            assert (removal.rgb[hole] != truth.rgb[hole]).any(axis=1).mean() > 0.5
            assert removal.revealed, "removing an occluder reveals something"
            union = np.zeros_like(hole)
            for inst, new_visible in removal.revealed.items():
                obj = objects[inst]
                assert inst not in removal.removed
                gained = new_visible & ~obj.visible_mask
                assert gained.any() and not (new_visible & ~obj.full_mask).any()
                assert not (gained & ~hole).any(), "only the hole can be revealed"
                assert not (gained & union).any(), "two objects revealed on one pixel"
                union |= gained
                # the same shading as the object alone, away from MSAA edges
                inner = gained & ~grow(~new_visible)
                np.testing.assert_array_equal(removal.rgb[inner], obj.appearance[inner][:, :3])
            # an independent id pass without the set: the revealed masks are its pixels
            again = renderer.render(truth.view, only=[o.instance_id for o in scene.objects
                                                      if o.instance_id not in removal.removed])
            assert not np.isin(again.ids, removal.removed).any()
            for inst, new_visible in removal.revealed.items():
                np.testing.assert_array_equal(new_visible, again.ids == inst)
        shell = np.isin(truth.ids, [o.instance_id for o in scene.objects if not o.annotated])
        background = truth.deocclusion.background
        assert background is not None
        inner = shell & ~grow(~shell)
        # equal but for sub-pixel-thin objects that only MSAA samples see
        assert (background[inner] != truth.rgb[inner]).any(axis=1).mean() < 1e-3
        assert (background[~grow(shell)] != truth.rgb[~grow(shell)]).any(axis=1).mean() > 0.5


def test_dataset_fields_and_unchanged_rest(deocc_data: Path, tiny_data: Path):
    """The new fields are read and checked; every other file and field is what the same
    config without de-occlusion writes (tiny_data), byte for byte."""
    a, b = tree_digest(deocc_data), tree_digest(tiny_data)
    for rel, digest in b.items():
        if not rel.startswith(("parts/", "annotations/", "generation.json")):
            assert a[rel] == digest, rel
    extra = sorted(set(a) - set(b))
    assert extra and all(r.startswith("deocclusion/") for r in extra)
    n_records = 0
    for split in ("train", "val", "test"):
        ds = coco.load_annotations(deocc_data / "annotations" / f"{split}.json")
        plain = json.loads((tiny_data / "annotations" / f"{split}.json").read_text())
        raw = json.loads((deocc_data / "annotations" / f"{split}.json").read_text())
        for img in raw["images"]:
            img.pop("deocclusion")
            img.pop("background_file")
        assert raw == plain
        for iid in ds.image_ids:
            assert ds.load_background(iid).shape == ds.load_image(iid).shape
            for k, rec in enumerate(ds.deocclusion(iid)):
                n_records += 1
                image, after = ds.load_image(iid), ds.load_deoccluded(iid, k)
                hole = np.any([ds.visible_mask(r) for r in rec["removed"]], axis=0)
                outside = ~grow(hole)
                np.testing.assert_array_equal(after[outside], image[outside])
                masks = ds.revealed_masks(iid, k)
                assert set(masks) == {a["id"] for a in ds.annotations[iid]} - set(rec["removed"])
                assert {r["id"] for r in rec["revealed"]} <= set(masks)
    assert n_records >= 16


def test_share_picks_views_deterministically(tmp_path: Path):
    cfg = make_config("tiny", views_per_scene=4, n_scenes=1, deocclusion=0.5)
    cfg = replace(cfg, deocclusion=replace(cfg.deocclusion, singles=1, fronts=0,
                                           background=False))
    generate(tmp_path / "a", cfg, progress=False, chunk=1)
    ds = coco.load_annotations(tmp_path / "a" / "annotations" / "train.json")
    chosen = [bool(ds.deocclusion(i)) for i in ds.image_ids]
    assert any(chosen) and not all(chosen)
    assert all(len(ds.deocclusion(i)) <= 1 and "background_file" not in ds.images[i]
               for i in ds.image_ids)
    # a run split another way, resumed after losing a view's record and its files
    generate(tmp_path / "b", cfg, progress=False, workers=1, chunk=3)
    part = next(iter(sorted((tmp_path / "b" / "parts").rglob("*.json"))))
    for f in (tmp_path / "b" / "deocclusion").rglob(part.stem + "_*"):
        f.unlink()
    part.unlink()
    (tmp_path / "b" / "annotations" / "train.json").unlink()
    generate(tmp_path / "b", cfg, progress=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def _broken(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    path = dst / "annotations" / "train.json"
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("case, message", [
    ("removed_elsewhere", "deocclusion[0].removed': annotation .* is not one of image"),
    ("removed_empty", "must be a non-empty list"),
    ("revealed_removed", "is removed, so nothing of it is revealed"),
    ("revealed_beyond_full", "leaves the full mask S_F"),
    ("revealed_loses_visible", "does not contain the visible mask S_V"),
    ("escape", "deocclusion[0].image_file': must be a relative path"),
    ("background_escape", "'background_file': must be a relative path"),
    ("revealed_size", "differs from the image size"),
])
def test_reader_checks(deocc_data: Path, tmp_path: Path, case: str, message: str):
    def edit(obj):
        img, other = obj["images"][0], obj["images"][1]
        rec = img["deocclusion"][0]
        h, w = img["height"], img["width"]
        own = [a for a in obj["annotations"] if a["image_id"] == img["id"]]
        if case == "removed_elsewhere":
            rec["removed"] = [next(a["id"] for a in obj["annotations"]
                                   if a["image_id"] == other["id"])]
        elif case == "removed_empty":
            rec["removed"] = []
        elif case == "revealed_removed":
            rec["revealed"].append({"id": rec["removed"][0],
                                    "visible_mask": own[0]["visible_mask"]})
        elif case == "revealed_beyond_full":
            rec["revealed"][0]["visible_mask"] = coco.encode_mask(np.ones((h, w), bool))
        elif case == "revealed_loses_visible":
            rec["revealed"][0]["visible_mask"] = coco.encode_mask(np.zeros((h, w), bool))
        elif case == "escape":
            rec["image_file"] = "../images/x.png"
        elif case == "background_escape":
            img["background_file"] = "/etc/passwd"
        elif case == "revealed_size":
            rec["revealed"][0]["visible_mask"] = coco.encode_mask(np.ones((4, 4), bool))

    path = _broken(deocc_data, tmp_path / "d", edit)
    with pytest.raises(coco.DatasetFormatError, match=message.replace("[", r"\[")
                       .replace("]", r"\]")):
        coco.load_annotations(path)


def test_convert_keeps_the_deocclusion_renders(tiny_deocc_data: Path, tmp_path: Path):
    """`segan convert` of a segan-coco dataset copies the removed-object renders and the room
    shells with their records (the converted folder reads and checks like the source)."""
    from segan.data.formats import convert

    out = tmp_path / "converted"
    convert(tiny_deocc_data, out, progress=False)
    for split in ("train", "test"):
        src = coco.load_annotations(tiny_deocc_data / "annotations" / f"{split}.json")
        dst = coco.load_annotations(out / "annotations" / f"{split}.json", check=True)
        n = 0
        for iid in src.image_ids:
            assert dst.deocclusion(iid) == src.deocclusion(iid)
            for k in range(len(src.deocclusion(iid))):
                assert dst.deoccluded_path(iid, k).read_bytes() == \
                    src.deoccluded_path(iid, k).read_bytes()
                n += 1
            np.testing.assert_array_equal(dst.load_background(iid), src.load_background(iid))
        assert n > 0
