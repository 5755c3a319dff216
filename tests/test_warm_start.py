"""Warm start (`model.init_from`): a fresh run of a task starts from saved weights of the same
task and architecture (a run folder, its export, a checkpoint .pt or a bundle), with fresh
optimisers, lr schedule and step; the run records where it started; a wrong path, task or
architecture is refused naming it; `--resume` continues the checkpoint without loading them
again. Every task goes through it: tests/test_registry.py's per-task test."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_DETECTOR_OVERRIDES, TINY_RUN_OVERRIDES
from segan.bundle import BundleError, export_bundle, load_bundle_segmenter
from segan.checkpoint import load_checkpoint, read_export_metadata
from segan.data.atomic import file_sha256
from segan.models import SeGAN
from segan.train import ConfigError, build_task, load_config, resolve_config, training_loop
from segan.train.checkpoint import latest_checkpoint, save_checkpoint
from segan.train.loop import read_init_from, warm_start
from segan.weights_io import load_safetensors

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
# 1 + 1 steps (stage 2 trains the discriminator too), a checkpoint after each
TWO_STEPS = [*TINY_RUN_OVERRIDES, "schedule.stage1_steps=1", "schedule.stage2_steps=1",
             "run.checkpoint_every=1", "run.log_every=1"]
DETECTOR = [*TINY_DETECTOR_OVERRIDES, "model.backbone_weights=none", "run.device=cpu",
            "data.num_workers=0", "run.log_every=1", "run.tensorboard=false",
            "run.grid_every=0"]


def _warm(cfg) -> tuple[torch.nn.Module, dict, dict[str, torch.Tensor]]:
    """The run's fresh network (seeded), the warm start applied: (net, record, the fresh
    network's tensors before it)."""
    task = build_task(cfg)
    saved = read_init_from(cfg)
    torch.manual_seed(0)
    net = task.build_network("none")
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    return net, warm_start(net, task, saved), fresh


@pytest.fixture(scope="module")
def bundles(tiny_run, tiny_visible_run, tmp_path_factory) -> dict[str, Path]:
    """Bundles of conftest's tiny SeGAN run: without and with its tiny visible segmenter."""
    root = tmp_path_factory.mktemp("warm_bundles")
    plain = export_bundle(tiny_run, root / "plain").parent
    with_seg = export_bundle(tiny_run, root / "with_seg", visible_segmenter=tiny_visible_run)
    return {"plain": plain, "with_seg": with_seg.parent}


# ------------------------------------------------------------------------------- SeGAN


def test_warm_start_from_a_run_folder_loads_its_export(tiny_run):
    """A run folder means its model.safetensors: every exported tensor lands in the network;
    the discriminator, not exported, keeps its fresh initialisation."""
    cfg = load_config(TINY, [f"model.init_from={tiny_run}"])
    net, record, fresh = _warm(cfg)
    exported = load_safetensors(tiny_run / "model.safetensors")
    state = net.state_dict()
    assert exported and all(torch.equal(state[k], v) for k, v in exported.items())
    assert any(not torch.equal(fresh[k], v) for k, v in exported.items())  # it did change
    disc = [k for k in state if k.startswith("discriminator.")]
    assert disc and not any(k in exported for k in disc)
    assert all(torch.equal(state[k], fresh[k]) for k in disc)
    export = tiny_run / "model.safetensors"
    assert record == {"weights": "init_from", "init_from": str(tiny_run), "path": str(export),
                      "format": "safetensors", "step": 6, "sha256": file_sha256(export),
                      "backbone_init": {"weights": "none"}}


def test_warm_start_from_a_checkpoint_loads_every_network(tiny_run):
    ckpt_path = latest_checkpoint(tiny_run)
    net, record, _ = _warm(load_config(TINY, [f"model.init_from={ckpt_path}"]))
    saved = load_checkpoint(ckpt_path)["model"]
    state = net.state_dict()
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k], v) for k, v in saved.items())  # the discriminator too
    assert record["format"] == "checkpoint" and record["step"] == 6
    assert record["path"] == str(ckpt_path) and record["init_from"] == str(ckpt_path)


def test_warm_started_run_trains_from_the_weights_with_fresh_optimisers(
        tiny_run, tiny_data, tiny_cache_dir, tmp_path):
    """Through the loop: step 0, the saved weights (learning rates of 1e-12 keep them), Adam's
    step count from 0, the record in the checkpoint and the export."""
    tiny_lr = ["optim.segmentor_lr=1e-12", "optim.painter_lr=1e-12",
               "optim.discriminator_lr=1e-12"]
    cfg = load_config(TINY, [*TWO_STEPS, *tiny_lr, f"model.init_from={tiny_run}"])
    summary = training_loop(cfg, tiny_data, tmp_path / "b", cache_dir=tiny_cache_dir,
                            progress=False)
    assert summary["start_step"] == 0 and summary["steps"] == 2 and summary["finished"]
    stats = [json.loads(s) for s in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2]
    state = load_checkpoint(latest_checkpoint(tmp_path / "b"))
    assert state["step"] == 2
    assert {int(s["step"]) for s in state["optimizers"]["generator"]["state"].values()} == {2}
    exported = load_safetensors(tiny_run / "model.safetensors")
    params = {k for k, _ in SeGAN.from_hparams(state["model_hparams"]).named_parameters()}
    for k in params & exported.keys():  # buffers (BatchNorm statistics) move in training
        torch.testing.assert_close(state["model"][k], exported[k], rtol=0, atol=1e-6)
    assert state["backbone_init"]["init_from"] == str(tiny_run)
    meta = read_export_metadata(tmp_path / "b" / "model.safetensors")
    assert meta["backbone_init"] == state["backbone_init"]
    assert meta["config"]["model"]["init_from"] == str(tiny_run)


def test_freeze_painter_fine_tunes_the_segmentor_alone(tiny_run, tiny_data, tiny_cache_dir,
                                                      tmp_path):
    """optim.freeze_painter: through the loop, G's weights and BatchNorm statistics stay the
    warm start's while the segmentor moves; the run says its painter was not trained. It needs
    model.init_from (a painter to keep)."""
    cfg = load_config(TINY, [*TWO_STEPS, "optim.freeze_painter=true",
                             f"model.init_from={tiny_run}"])
    summary = training_loop(cfg, tiny_data, tmp_path / "ft", cache_dir=tiny_cache_dir,
                            progress=False)
    assert summary["finished"] and summary["painter_trained"] is False
    before = load_safetensors(tiny_run / "model.safetensors")
    after = load_safetensors(tmp_path / "ft" / "model.safetensors")
    generator = [k for k in before if k.startswith("generator.")]
    assert generator and all(torch.equal(after[k], before[k]) for k in generator)
    moved = [k for k in before if k.startswith("segmentor.") and before[k].is_floating_point()
             and not torch.equal(after[k], before[k])]
    assert moved
    with pytest.raises(ConfigError, match="optim.freeze_painter: needs model.init_from"):
        load_config(TINY, [*TWO_STEPS, "optim.freeze_painter=true"])


def test_resume_of_a_warm_started_run_continues_its_checkpoint(
        tiny_run, tiny_data, tiny_cache_dir, tmp_path):
    """--resume takes the checkpoint and does not read model.init_from again (here it is
    gone): the resumed run equals the same warm start run without a stop."""
    init = tmp_path / "init.safetensors"
    shutil.copy(tiny_run / "model.safetensors", init)
    cfg = load_config(TINY, [*TWO_STEPS, f"model.init_from={init}"])
    whole = tmp_path / "whole"
    training_loop(cfg, tiny_data, whole, cache_dir=tiny_cache_dir, progress=False)
    run = tmp_path / "stopped"
    training_loop(cfg, tiny_data, run, cache_dir=tiny_cache_dir, stop_at=1, progress=False)
    init.unlink()
    resumed = resolve_config(None, [], run, resume=True)
    assert resumed.model.init_from == str(init)
    summary = training_loop(resumed, tiny_data, run, resume=True, cache_dir=tiny_cache_dir,
                            progress=False)
    assert summary["start_step"] == 1 and summary["finished"]
    a, b = (load_checkpoint(latest_checkpoint(r)) for r in (whole, run))
    assert a["step"] == b["step"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert b["backbone_init"] == a["backbone_init"] and b["backbone_init"]["init_from"] == str(init)


# ------------------------------------------------------------------------------- detector


def test_visible_segmenter_warm_starts_from_a_bundle(bundles, tiny_visible_run, tiny_data,
                                                     tmp_path):
    """Task visible_maskrcnn from a bundle: its visible segmenter's fp16 tensors, copied into
    the fp32 network, at other training sizes; then a run of it from step 0."""
    overrides = [*DETECTOR, "detector.train_sizes=[64,96]",
                 f"model.init_from={bundles['with_seg']}"]
    cfg = load_config(ROOT / "configs" / "visible_effnet.yaml", overrides)
    net, record, _ = _warm(cfg)
    shipped = load_bundle_segmenter(bundles["with_seg"]).net.state_dict()
    state = net.state_dict()
    assert state.keys() == shipped.keys()
    assert all(torch.equal(state[k], v) for k, v in shipped.items())
    assert all(p.dtype == torch.float32 for p in net.parameters())
    manifest = bundles["with_seg"] / "segan_compact.json"
    assert record["format"] == "bundle" and record["path"] == str(manifest)
    assert record["step"] == 2 and "backbone_init" not in record  # not recorded for it
    summary = training_loop(cfg, tiny_data, tmp_path / "v", progress=False)
    assert summary["start_step"] == 0 and summary["finished"]
    state = load_checkpoint(latest_checkpoint(tmp_path / "v"))
    assert state["backbone_init"]["init_from"] == str(bundles["with_seg"])


def test_a_bundle_without_a_visible_segmenter_is_refused_for_the_visible_task(bundles):
    cfg = load_config(ROOT / "configs" / "visible_effnet.yaml",
                      [*DETECTOR, f"model.init_from={bundles['plain']}"])
    with pytest.raises(BundleError, match="segan_compact.json: this bundle has no visible "
                                          "segmenter"):
        read_init_from(cfg)
    # the same bundle warm-starts SeGAN: its fp16 tensors, the discriminator kept fresh
    net, record, _ = _warm(load_config(TINY, [f"model.init_from={bundles['plain']}"]))
    assert record["format"] == "bundle" and record["backbone_init"] == {"weights": "none"}
    exported = load_safetensors(bundles["plain"] / "segan_compact-00.safetensors")
    state = net.state_dict()
    assert all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in exported.items())


# ------------------------------------------------------------------------------- refusals


def test_another_architecture_is_refused_naming_the_file(tiny_run, bundles, tmp_path):
    export = re.escape(str(tiny_run / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"^{export}: weights do not fit the 'segan' network "
                       r".*generator\.down\.0\.0\.weight \(16, 3, 4, 4\), the network's "
                       r"\(8, 3, 4, 4\)"):
        _warm(load_config(TINY, ["model.ngf=8", f"model.init_from={tiny_run}"]))
    # a checkpoint holds every network: a key it lacks, or one the network lacks, is named
    state = load_checkpoint(latest_checkpoint(tiny_run))
    first = next(iter(state["model"]))
    state["model"]["extra.weight"] = state["model"].pop(first)
    ckpt = save_checkpoint(tmp_path / "ckpt-00000006.pt", state)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(ckpt))}: weights do not match the "
                       rf"'segan' network .*\['{re.escape(first)}', 'extra\.weight'\]"):
        _warm(load_config(TINY, [f"model.init_from={ckpt}"]))
    manifest = re.escape(str(bundles["with_seg"] / "segan_compact.json"))
    with pytest.raises(ValueError, match=rf"^{manifest}: weights do not fit the "
                       r"'visible_maskrcnn' network .*tensors of another shape"):
        _warm(load_config(ROOT / "configs" / "visible_effnet.yaml",
                          [*DETECTOR, "detector.fpn_channels=16",
                           f"model.init_from={bundles['with_seg']}"]))


def test_another_task_is_refused(tiny_run, tiny_visible_run):
    with pytest.raises(ValueError, match=rf"{re.escape(str(tiny_visible_run))}.*weights of "
                       "task 'visible_maskrcnn', not of task 'segan'"):
        read_init_from(load_config(TINY, [f"model.init_from={tiny_visible_run}"]))
    with pytest.raises(ValueError, match="weights of task 'segan', not of task 'pix2pix'"):
        read_init_from(load_config(TINY, ["task=pix2pix", f"model.init_from={tiny_run}"]))


def test_a_missing_path_names_the_key_before_the_data_is_read(tmp_path):
    missing = tmp_path / "no_run"
    cfg = load_config(TINY, [f"model.init_from={missing}"])
    with pytest.raises(ConfigError, match=rf"^model\.init_from: no file or folder "
                       rf"{re.escape(str(missing))}"):
        read_init_from(cfg)
    # the loop fails on it first (not on the missing data), and writes no checkpoint
    with pytest.raises(ConfigError, match=r"model\.init_from"):
        training_loop(cfg, tmp_path / "no_data", tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert read_init_from(load_config(TINY)) is None  # "none": a plain fresh start
