"""View and image randomisation (segan.data.randomize): ranges and their errors, the config
round trip, the camera, what each output gets, determinism, and a randomised dataset read by
the training pipeline and the evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.cli import main
from segan.config import DataConfig
from segan.data import coco
from segan.data.generate import build_renderer, build_scene, render_view_truth
from segan.data.presets import GenerateConfig, make_config
from segan.data.randomize import (
    DIVERSE_RANDOMIZATION,
    ViewRandomization,
    colour_transform,
    image_rng,
    sample_image_params,
)
from segan.scene import sample_camera
from segan.scene.types import Camera
from segan.train.cache import open_cache
from segan.train.data import BatchKey, ObjectBatches, prepare_batch
from segan.transforms import resize_image_u8

COLOUR = ViewRandomization(exposure_ev=(-1.0, 1.0), white_balance=(0.7, 1.4), gamma=(0.7, 1.4))
LIGHT_COLOUR = replace(COLOUR, light_gain=(0.5, 2.0))
ALL_IMAGE = replace(LIGHT_COLOUR, blur_prob=1.0, motion_blur_prob=1.0, vignette_prob=1.0,
                    gaussian_noise=(0.01, 0.02), shot_noise=(0.005, 0.01), jpeg_prob=1.0)


@pytest.fixture(scope="module")
def small():
    """One `tiny` kitchen at 64 x 64, its renderer, and the config."""
    cfg = replace(make_config("tiny", n_scenes=2), width=64, height=64, min_visible_objects=2,
                  max_view_attempts=10)
    scene = build_scene(cfg, 1)
    renderer = build_renderer(cfg, scene)
    yield cfg, scene, renderer
    renderer.close()


def _truth(small, randomize, view=0, seed=0):
    cfg, scene, renderer = small
    return render_view_truth(replace(cfg, randomize=randomize, seed=seed), scene, renderer, 1,
                             view)


def _same_geometry(a, b):
    assert a.view.camera == b.view.camera
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert a.occlusion == b.occlusion and len(a.objects) == len(b.objects)
    for oa, ob in zip(a.objects, b.objects, strict=True):
        assert oa.region == ob.region
        np.testing.assert_array_equal(oa.visible, ob.visible)
        np.testing.assert_array_equal(oa.full, ob.full)
        np.testing.assert_array_equal(oa.depth, ob.depth)


# --- ranges, config ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, field", [
    ({"yfov_deg": (90.0, 40.0)}, "yfov_deg"),
    ({"camera_height": (0.0, 1.0)}, "camera_height"),
    ({"aspect": (0.6,)}, "aspect"),
    ({"gamma": ("a", 1.0)}, "gamma"),
    ({"aim_offset": 1.5}, "aim_offset"),
    ({"jpeg_prob": float("nan")}, "jpeg_prob"),
])
def test_bad_ranges_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"ViewRandomization\.{field}:"):
        ViewRandomization(**kwargs)


def test_config_round_trip_and_old_files():
    cfg = replace(make_config("tiny"), randomize=DIVERSE_RANDOMIZATION)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["randomize"]["yfov_deg"] == [40.0, 90.0]
    assert GenerateConfig.from_dict(d) == cfg
    plain = make_config("tiny")
    assert "randomize" not in plain.to_dict()  # unrandomised generation.json keeps its bytes
    assert GenerateConfig.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain
    d["randomize"]["fov"] = [1, 2]
    with pytest.raises(ValueError, match="unknown field.*fov"):
        GenerateConfig.from_dict(d)


def test_size_and_aspect_ranges_are_honoured():
    rng = np.random.default_rng(0)
    draws = [sample_image_params(DIVERSE_RANDOMIZATION, rng, 500, 500) for _ in range(400)]
    widths = np.array([p.width for p in draws])
    aspects = np.array([p.width / p.height for p in draws])
    assert widths.min() >= 320 and widths.max() <= 640
    assert widths.min() < 340 and widths.max() > 620
    assert aspects.min() >= 0.6 - 0.01 and aspects.max() <= 1.8 + 0.01
    assert aspects.min() < 0.65 and aspects.max() > 1.7
    assert {p.jpeg_quality > 0 for p in draws} == {True, False}
    # no aspect range: the config's shape, scaled
    p = sample_image_params(ViewRandomization(size_scale=(0.5, 0.5)), rng, 200, 100)
    assert (p.width, p.height) == (100, 50)
    with pytest.raises(ValueError, match="size_scale/aspect.*under 16 pixels"):
        sample_image_params(ViewRandomization(size_scale=(0.1, 0.1)), rng, 64, 64)


# --- camera ----------------------------------------------------------------------------------


def test_camera_ranges(small):
    _, scene, _ = small
    opts = DIVERSE_RANDOMIZATION.camera_options()
    rng = np.random.default_rng(1)
    cams = [sample_camera(scene, rng, 64, 48, **opts) for _ in range(40)]
    z = np.array([c.position[2] for c in cams])
    assert z.min() >= 0.4 and z.max() <= min(2.4, scene.room.height - 0.2)
    assert z.min() < 1.2 and z.max() > 1.9  # below and above head height
    fov = np.degrees([c.yfov for c in cams])
    assert fov.min() >= 40 and fov.max() <= 90 and fov.max() - fov.min() > 20
    roll = np.degrees([c.roll for c in cams])
    assert np.abs(roll).max() <= 8 and np.abs(roll).min() > 0
    # defaults draw exactly as head-height sampling always did
    a = sample_camera(scene, np.random.default_rng(5), 64, 48)
    b = sample_camera(scene, np.random.default_rng(5), 64, 48,
                      **ViewRandomization().camera_options())
    assert a == b and a.roll == 0.0


def test_roll_turns_the_image_about_its_centre():
    cam = Camera((0.0, 0.0, 1.5), (0.0, 3.0, 1.5), np.radians(60), 100, 100)
    above = np.array([[0.0, 3.0, 1.8]])
    p0, d0 = cam.project(above)
    for roll in (0.2, -0.3):
        rolled = replace(cam, roll=roll)
        np.testing.assert_allclose(rolled.project(np.array([cam.target]))[0], [[50, 50]])
        p, d = rolled.project(above)
        np.testing.assert_allclose(d, d0)
        # the camera turns counter-clockwise, so the scene turns clockwise in the image
        dx, dy = p[0] - 50.0
        assert np.arctan2(dx, -dy) == pytest.approx(roll)
        assert np.hypot(dx, dy) == pytest.approx(50.0 - p0[0, 1])


def test_aim_offset_moves_objects_off_centre(small):
    _, scene, _ = small
    where = []
    for seed in range(20):
        # the same draws up to the offset: the centred camera's aim is the object's point
        centred = sample_camera(scene, np.random.default_rng(seed), 64, 64)
        moved = sample_camera(scene, np.random.default_rng(seed), 64, 64, aim_offset=0.9)
        assert moved.position == centred.position and moved.yfov == centred.yfov
        pixel, depth = moved.project(np.array([centred.target]))
        assert depth[0] > 0
        where.append((pixel[0] - 32.0) / 32.0)  # in half-widths, +x right, +y down
    where = np.abs(np.array(where))
    # at most 0.9 where the camera can turn that far (it cannot pitch past vertical)
    assert np.mean(where.max(1) <= 0.9 + 1e-3) >= 0.8 and where.max() <= 1.1
    assert where.mean() > 0.2


# --- what each output gets -------------------------------------------------------------------


def test_colour_transform_is_shared_by_image_and_appearance(small):
    plain, rand = _truth(small, None), _truth(small, COLOUR)
    _same_geometry(plain, rand)
    params = rand.image_params
    assert params is not None and params.light_gain == 1.0
    assert not np.array_equal(plain.rgb, rand.rgb)
    np.testing.assert_array_equal(rand.rgb, colour_transform(plain.rgb, params))
    for op, orr in zip(plain.objects, rand.objects, strict=True):
        np.testing.assert_array_equal(orr.rgb, colour_transform(op.rgb, params))
        np.testing.assert_array_equal(orr.appearance[..., 3], orr.full_mask * 255)
        assert not orr.appearance[..., :3][~orr.full_mask].any()


def test_image_degradations_leave_masks_and_appearance_alone(small):
    base, degraded = _truth(small, LIGHT_COLOUR), _truth(small, ALL_IMAGE)
    plain = _truth(small, None)
    _same_geometry(plain, degraded)
    _same_geometry(base, degraded)
    p = degraded.image_params
    assert p.blur_sigma > 0 and p.motion_length > 0 and p.vignette > 0 and p.jpeg_quality > 0
    assert not np.array_equal(base.rgb, degraded.rgb)
    assert not np.array_equal(plain.rgb, base.rgb)  # the light gain changed the render
    for ob, od in zip(base.objects, degraded.objects, strict=True):
        np.testing.assert_array_equal(ob.rgb, od.rgb)  # no blur, noise or JPEG on targets


def test_randomised_views_are_deterministic_and_consistent(small):
    a, b = _truth(small, DIVERSE_RANDOMIZATION), _truth(small, DIVERSE_RANDOMIZATION)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    _same_geometry(a, b)
    other = _truth(small, DIVERSE_RANDOMIZATION, seed=1)
    assert other.image_params != a.image_params
    for t in (a, other):
        p, cam = t.image_params, t.view.camera
        assert (cam.width, cam.height) == (p.width, p.height)
        assert t.rgb.shape == (p.height, p.width, 3) and t.ids.shape == t.depth.shape
        assert t.ids.shape == (p.height, p.width)
        for o in t.objects:
            assert o.image_size == (p.height, p.width)
            assert not (o.visible & ~o.full).any()
            np.testing.assert_array_equal(o.visible_mask, t.ids == o.instance_id)
    # the camera stream is apart from the image stream
    assert image_rng(0, 1, 0).random() != image_rng(0, 1, 1).random()


# --- a randomised dataset through the CLI, the training pipeline and the evaluation ---------


@pytest.fixture(scope="module")
def randomised_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("randomised") / "data"
    assert main(["generate", str(out), "--preset", "tiny", "--views", "2", "--size", "96",
                 "--randomize", "--quiet"]) == 0
    return out


def test_cli_randomize_writes_its_ranges_and_sizes(randomised_data):
    saved = json.loads((randomised_data / "generation.json").read_text())
    assert GenerateConfig.from_dict(saved).randomize == DIVERSE_RANDOMIZATION
    ds = coco.load_annotations(randomised_data / "annotations" / "train.json")
    sizes = {(im["width"], im["height"]) for im in ds.images.values()}
    assert len(sizes) == len(ds.images) > 1
    for iid, im in ds.images.items():
        assert im["randomization"]["width"] == im["width"]
        assert ds.load_image(iid).shape == (im["height"], im["width"], 3)


def test_training_pipeline_reads_per_image_sizes(randomised_data, tmp_path):
    cfg = DataConfig(image_size=48)
    cache = open_cache(randomised_data, "train", 48, cfg.expand_max, cache_dir=tmp_path)
    ds = coco.load_annotations(randomised_data / "annotations" / "train.json")
    assert cache.images.shape == (len(ds.images), 48, 48, 3)
    for i, iid in enumerate(cache.image_ids):
        im = ds.images[int(iid)]
        assert tuple(cache.image_hw[i]) == (im["height"], im["width"])
        np.testing.assert_array_equal(cache.images[i],
                                      resize_image_u8(ds.load_image(int(iid)), 48))
    objects = tuple(range(min(6, cache.num_objects)))
    raw = ObjectBatches(cache, cfg, seed=0, train=True)[BatchKey(0, 0, 0, objects)]
    b = prepare_batch(raw, torch.device("cpu"), cfg, mask_size=58, crop_size=64)
    assert b.images.shape[1:] == (3, 48, 48) and b.target.shape == (len(objects), 3, 64, 64)
    assert (b.boxes[:, 1:] >= 0).all() and (b.boxes[:, 1:] <= 48).all()
    assert (b.visible_gt <= b.full_gt + 1e-6).all() and b.full_gt.amax() > 0.5
