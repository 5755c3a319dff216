"""Session-wide fixtures: the tiny dataset and a tiny trained SeGAN run, built once per pytest
session and shared (read-only) by every module that needs them. A test that needs another data
variant (other views or sizes) keeps its own fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from segan.data.generate import generate
from segan.data.presets import make_config
from segan.train import get_task, load_config, training_loop

ROOT = Path(__file__).resolve().parents[1]
# 3 + 3 steps of configs/tiny.yaml, one checkpoint at the end
TINY_RUN_OVERRIDES = ["schedule.stage1_steps=3", "schedule.stage2_steps=3",
                      "run.checkpoint_every=6", "run.log_every=3", "run.grid_every=0",
                      "run.tensorboard=false"]
# configs/tiny.yaml with the compact family's segmentor (configs/segan_compact.yaml: crop_unet
# EfficientNet-Lite0 with context and the one-way occluder gate; random init, no ImageNet
# weights), 3 + 3 steps
COMPACT_TINY_OVERRIDES = [
    "model.segmentor=crop_unet", "model.backbone=efficientnet_lite0",
    "model.segmentor_input_size=64", "model.mask_size=32", "model.segmentor_context=true",
    "model.occluder_gate=one_way",
    "model.backbone_weights=none", "data.image_mean=[0.5,0.5,0.5]",
    "data.image_std=[0.5,0.5,0.5]", *TINY_RUN_OVERRIDES]
# the tiny CPU variant of the detectors (configs/visible_maskrcnn.yaml, visible_effnet.yaml,
# maskrcnn_full.yaml): 64 px, slim FPN and heads, 2 steps
TINY_DETECTOR_OVERRIDES = list(get_task("visible_maskrcnn").smoke_overrides)


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory):
    """The default cache folder (segan.data.atomic.default_cache_dir) of this session: never
    the user's ~/.cache."""
    import os

    old = os.environ.get("SEGAN_CACHE_DIR")
    os.environ["SEGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("user_cache"))
    yield
    if old is None:
        os.environ.pop("SEGAN_CACHE_DIR", None)
    else:
        os.environ["SEGAN_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The `tiny` preset with 2 views per scene (train, val and test splits)."""
    out = tmp_path_factory.mktemp("tiny_data") / "data"
    generate(out, make_config("tiny", views_per_scene=2), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_deocc_data(tmp_path_factory) -> Path:
    """`tiny_data` with de-occlusion ground truth on every view (`--deocclusion 1`): the same
    images and annotations, plus deocclusion/ and the images' new fields."""
    out = tmp_path_factory.mktemp("tiny_deocc_data") / "data"
    generate(out, make_config("tiny", views_per_scene=2, deocclusion=1.0), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cache_dir(tmp_path_factory) -> Path:
    """A training-cache folder for `tiny_data` (entries are keyed by content, so sharing is
    safe)."""
    return tmp_path_factory.mktemp("tiny_cache")


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tiny_cache_dir, tmp_path_factory) -> Path:
    """A SeGAN run folder trained on `tiny_data` for TINY_RUN_OVERRIDES (6 steps)."""
    run = tmp_path_factory.mktemp("tiny_runs") / "tiny"
    training_loop(load_config(ROOT / "configs" / "tiny.yaml", TINY_RUN_OVERRIDES), tiny_data,
                  run, cache_dir=tiny_cache_dir, progress=False)
    return run


@pytest.fixture(scope="session")
def compact_tiny_run(tiny_data, tiny_cache_dir, tmp_path_factory) -> Path:
    """A run of the compact family (COMPACT_TINY_OVERRIDES, 6 steps) on `tiny_data`."""
    run = tmp_path_factory.mktemp("compact_runs") / "compact_tiny"
    training_loop(load_config(ROOT / "configs" / "tiny.yaml", COMPACT_TINY_OVERRIDES),
                  tiny_data, run, cache_dir=tiny_cache_dir, progress=False)
    return run


@pytest.fixture(scope="session")
def tiny_visible_run(tiny_data, tmp_path_factory) -> Path:
    """The visible segmenter of configs/visible_effnet.yaml at TINY_DETECTOR_OVERRIDES size,
    random init (2 steps) on `tiny_data`."""
    run = tmp_path_factory.mktemp("visible_runs") / "visible_tiny"
    training_loop(load_config(ROOT / "configs" / "visible_effnet.yaml",
                              [*TINY_DETECTOR_OVERRIDES, "model.backbone_weights=none",
                               "run.device=cpu", "data.num_workers=0", "run.log_every=1",
                               "run.tensorboard=false", "run.grid_every=0"]),
                  tiny_data, run, progress=False)
    return run
