"""The dataset generator end to end on the `tiny` preset: invariants, determinism, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segan.data import coco
from segan.data.generate import build_renderer, build_scene, generate, render_view_truth
from segan.data.presets import make_config
from segan.data.view_truth import visible_counts
from tree_digest import tree_digest

SMALL = dict(views_per_scene=3, n_scenes=4)  # every split of `tiny`, a few views each


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(out, make_config("tiny", **SMALL), progress=False)
    return out


def test_files_and_format(tiny: Path):
    for split in ("train", "val", "test"):
        ds = coco.load_annotations(tiny / "annotations" / f"{split}.json", check=True)
        assert len(ds.images) == (6 if split == "train" else 3)
    assert not list(tiny.rglob("*.tmp-*"))
    img = json.loads((tiny / "annotations" / "train.json").read_text())["images"][0]
    with Image.open(tiny / "images" / img["file_name"]) as im:
        assert im.size == (160, 160) and im.mode == "RGB"
    with Image.open(tiny / "depth" / img["depth_file"]) as im:
        depth = np.asarray(im)
    assert depth.dtype in (np.uint16, np.int32) and depth.max() > 500  # millimetres


def test_annotation_invariants(tiny: Path):
    """S_V ⊆ S_F, alpha of the appearance = S_F, occluders really cover the occludee's S_I."""
    n_objects = n_occluded = 0
    for split in ("train", "val", "test"):
        data = json.loads((tiny / "annotations" / f"{split}.json").read_text())
        by_id = {a["id"]: a for a in data["annotations"]}
        images = {i["id"]: i for i in data["images"]}
        for ann in data["annotations"]:
            img = images[ann["image_id"]]
            h, w = img["height"], img["width"]
            full = coco.decode_mask(ann["segmentation"], h, w)
            vis = coco.decode_mask(ann["visible_mask"], h, w)
            assert not (vis & ~full).any()
            assert vis.sum() >= 10
            with Image.open(tiny / "appearance" / ann["appearance_file"]) as im:
                rgba = np.asarray(im)
            assert rgba.shape == (h, w, 4)
            np.testing.assert_array_equal(rgba[..., 3] > 0, full)
            n_objects += 1
            n_occluded += ann["occlude_rate"] > 0.1
        for img in data["images"]:
            h, w = img["height"], img["width"]
            for q, p in img["occlusion"]:
                occluder, occludee = by_id[q], by_id[p]
                assert occluder["image_id"] == occludee["image_id"] == img["id"]
                q_full = coco.decode_mask(occluder["segmentation"], h, w)
                p_inv = coco.decode_mask(occludee["invisible_mask"], h, w)
                assert (q_full & p_inv).any(), f"pair {q}->{p} does not cover S_I"
    assert n_objects > 20
    assert n_occluded > 0


def test_visible_masks_partition_the_id_pass():
    """Union of the annotated S_V equals the id pass's pixels of annotated objects, and each
    S_V is exactly its id's pixels; unannotated objects have fewer than 10 pixels."""
    cfg = make_config("tiny", views_per_scene=2)
    scene = build_scene(cfg, 1)
    with build_renderer(cfg, scene) as renderer:
        truth = render_view_truth(cfg, scene, renderer, 1, 0)
    annotated = {o.instance_id for o in truth.objects}
    union = np.zeros_like(truth.ids, bool)
    for obj in truth.objects:
        np.testing.assert_array_equal(obj.visible_mask, truth.ids == obj.instance_id)
        assert not (union & obj.visible_mask).any()
        union |= obj.visible_mask
    np.testing.assert_array_equal(union, np.isin(truth.ids, list(annotated)))
    for inst, count in visible_counts(truth.ids, scene).items():
        assert (inst in annotated) == (count >= 10)
    assert truth.repaired_pixels == 0


def test_deterministic_across_runs_and_workers(tiny: Path, tmp_path: Path):
    cfg = make_config("tiny", **SMALL)
    generate(tmp_path / "again", cfg, workers=2, chunk=2, progress=False)
    assert tree_digest(tmp_path / "again") == tree_digest(tiny)
    other = make_config("tiny", seed=1, **SMALL)
    generate(tmp_path / "seed1", other, progress=False)
    a = (tiny / "images" / "s000_living_room" / "00000.png").read_bytes()
    b = (tmp_path / "seed1" / "images" / "s000_living_room" / "00000.png").read_bytes()
    assert a != b


def test_resume_after_kill(tiny: Path, tmp_path: Path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "segan.cli", "generate", str(out), "--preset", "tiny",
           "--views", "3", "--scenes", "4", "--chunk", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "parts").rglob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "parts").rglob("*.json")))
    assert 2 <= done < 12, "kill should land mid-run"
    assert not (out / "annotations").exists()
    subprocess.run(cmd, check=True)
    assert tree_digest(out) == tree_digest(tiny)


def test_resume_refuses_another_config(tiny: Path, tmp_path: Path):
    out = tmp_path / "d"
    cfg = make_config("tiny", views_per_scene=1, n_scenes=1)
    generate(out, cfg, progress=False)
    with pytest.raises(ValueError, match="different config"):
        generate(out, replace(cfg, seed=5), progress=False)


def test_train_and_test_share_no_texture_or_instance(tiny: Path):
    textures: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    shapes: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for path in (tiny / "scenes").glob("*.json"):
        rec = json.loads(path.read_text())
        for obj in rec["objects"]:
            if obj["annotated"]:
                textures[rec["split"]].update(obj["textures"])
                shapes[rec["split"]].add(obj["geometry"])
    assert textures["train"] and textures["test"]
    assert not textures["train"] & textures["test"]
    assert not (textures["train"] | textures["val"]) & textures["test"]
    assert not (shapes["train"] | shapes["val"]) & shapes["test"]


@pytest.mark.mitsuba
def test_pyrender_and_mitsuba_agree_on_masks():
    """One scene description, two renderers: the same S_V and S_F on a generated scene, up
    to a pixel whose centre lies on a triangle edge."""
    pytest.importorskip("mitsuba")
    from segan.data.view_truth import choose_view, view_rng
    from segan.render.base import make_renderer

    cfg = make_config("tiny")
    scene = build_scene(cfg, 0)
    with make_renderer("pyrender", scene) as pr, make_renderer("mitsuba", scene, spp=1) as mi:
        for v in range(2):
            view, passes, _ = choose_view(cfg, scene, pr, view_rng(cfg.seed, 0, v))
            ids = passes.ids
            ids_mi = mi.render(view, rgb=False, depth=False).ids
            assert (ids != ids_mi).sum() <= 3
            for inst in visible_counts(ids, scene):
                full_pr = pr.render(view, only=[inst], rgb=False, depth=False).ids == inst
                full_mi = mi.render(view, only=[inst], rgb=False, depth=False).ids == inst
                assert full_pr.any()
                assert (full_pr != full_mi).sum() <= 2, f"object {inst} view {v}"
