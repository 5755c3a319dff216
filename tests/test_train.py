"""Training end to end on the generated `tiny` dataset (CPU): the tiny config learns, loss terms
reach the parameters of their stage, checkpoints and exported weights round-trip, resuming
equals an uninterrupted run, and two DDP processes under torchrun log from rank 0 only."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.bundle import BundleError, export_bundle
from segan.checkpoint import (
    CHECKPOINT_VERSION,
    load_checkpoint,
    load_segan,
    load_segmentor,
    read_weights,
)
from segan.data.generate import generate
from segan.data.presets import make_config
from segan.losses import (
    amodal_box_loss,
    discriminator_loss,
    distillation_loss,
    generator_gan_loss,
    segmentation_loss,
    soft_iou_loss,
)
from segan.models import SeGAN
from segan.models.crops import box_union
from segan.train import (
    TrainConfig,
    build_segan,
    load_config,
    load_exported,
    resolve_config,
    training_loop,
)
from segan.train.cache import open_cache
from segan.train.checkpoint import (
    export_safetensors,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from segan.train.data import ObjectBatches, ObjectBatchSampler, prepare_batch
from segan.train.runtime import make_runtime
from segan.train.tasks import SeGANTask, make_optimizers
from segan.train.weight_average import WeightAverage

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
SHORT = ["schedule.stage1_steps=3", "schedule.stage2_steps=3", "run.checkpoint_every=3",
         "run.log_every=1", "run.grid_every=0", "run.tensorboard=false", "data.hflip=true"]


def tiny_cfg(*overrides: str) -> TrainConfig:
    return load_config(TINY, list(overrides))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(out, make_config("tiny"), progress=False)  # 4 scenes x 4 views, ~5 s
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def batch(tiny, cache_dir):
    cfg = tiny_cfg()
    d = cfg.data
    cache = open_cache(tiny, "train", d.image_size, d.expand_max, cache_dir)
    key = next(iter(ObjectBatchSampler(cache.obj_start, d.batch_objects, d.objects_per_image, 0)))
    raw = ObjectBatches(cache, d, seed=0)[key]
    return prepare_batch(raw, torch.device("cpu"), d, cfg.model.mask_size, cfg.model.crop_size)


@pytest.fixture(scope="module")
def tiny_run(tiny, cache_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    start = time.perf_counter()
    summary = training_loop(tiny_cfg(), tiny, run, cache_dir=cache_dir, progress=False)
    return run, summary, time.perf_counter() - start


def read_stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def without_grad(named_grads) -> list[str]:
    return [n for n, g in named_grads if g is None or not bool(g.abs().sum() > 0)]


# ------------------------------------------------------------------------------- learning


def test_tiny_config_learns_in_under_two_minutes(tiny_run):
    run, summary, seconds = tiny_run
    stats = read_stats(run)
    cfg = tiny_cfg()
    assert summary["finished"] and summary["steps"] == cfg.total_steps
    assert [s["step"] for s in stats] == list(range(cfg.run.log_every, cfg.total_steps + 1,
                                                    cfg.run.log_every))
    n = max(1, len(stats) // 5)
    for name in ("loss/segm", "loss/l1"):
        values = [s[name] for s in stats]
        assert np.isfinite(values).all()
        first, last = np.mean(values[:n]), np.mean(values[-n:])
        assert last < 0.8 * first, (name, first, last)
    assert {s["stage"] for s in stats} == {1, 2}
    assert all(np.isfinite(s["loss/d"]) for s in stats if s["stage"] == 2)
    assert seconds < 120, f"tiny training took {seconds:.0f} s"
    # run folder: resolved config, grids, TensorBoard, checkpoint, exported weights
    assert load_config(run / "config.yaml") == cfg
    assert sorted(p.name for p in (run / "grids").iterdir()) == [
        "step-00000001.png", "step-00000100.png", "step-00000200.png"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert [s for s, _ in list_checkpoints(run)] == [cfg.total_steps]
    assert (run / "model.safetensors").is_file()
    # issue 14: tiny runs stay tiny (ResNet-18 made them 202 MB and 67 MB)
    assert latest_checkpoint(run).stat().st_size < 80e6
    assert (run / "model.safetensors").stat().st_size < 30e6


def test_exported_weights_load_from_the_file_alone(tiny_run, batch):
    run, _, _ = tiny_run
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt["backbone_init"] == {"weights": "none"}
    net, meta = load_exported(run / "model.safetensors")
    assert meta["step"] == ckpt["step"] and meta["config"] == ckpt["config"]
    reference = SeGAN.from_hparams(ckpt["model_hparams"])
    reference.load_state_dict(ckpt["model"])
    reference.eval()
    with torch.no_grad():
        a = net(batch.images, batch.visible_masks, batch.boxes)
        b = reference(batch.images, batch.visible_masks, batch.boxes)
    for k in ("mask_logits", "full_mask", "generator_input", "painted"):
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------- losses and gradients


def _setup(cfg: TrainConfig):
    torch.manual_seed(0)
    net = build_segan(cfg, "none")
    rt = make_runtime(cfg.run)
    return net, rt, make_optimizers(net, cfg.optim), SeGANTask(cfg), rt.grad_scaler()


def test_stage1_terms_reach_segmentor_and_generator_and_leave_d_alone(batch):
    cfg = tiny_cfg()
    net, rt, opt, task, scaler = _setup(cfg)
    out, losses = task.forward_losses(net, batch, rt, stage=1)
    assert set(losses) == {"segm", "l1"} and all(torch.isfinite(v) for v in losses.values())
    seg, gen = list(net.segmentor.named_parameters()), list(net.generator.named_parameters())
    g = torch.autograd.grad(losses["segm"], [p for _, p in seg], retain_graph=True,
                            allow_unused=True)
    assert without_grad(zip([n for n, _ in seg], g, strict=True)) == []
    g = torch.autograd.grad(losses["l1"], [p for _, p in gen] + [net.segmentor.mask_head.weight],
                            retain_graph=True, allow_unused=True)
    assert without_grad(zip([n for n, _ in gen] + ["mask_head (through O)"], g,
                            strict=True)) == []

    d_before = copy.deepcopy(net.discriminator.state_dict())
    seg_before = copy.deepcopy(net.segmentor.state_dict())
    logs, _ = task.train_step(0, net, net, batch, opt, rt, scaler)
    assert set(logs) == {"segm", "l1", "total"} and all(torch.isfinite(v) for v in logs.values())
    assert all(p.grad is None for p in net.discriminator.parameters())
    for k, v in net.discriminator.state_dict().items():
        assert torch.equal(v, d_before[k]), k  # D untouched: weights and BN statistics
    assert without_grad(net.segmentor.named_parameters()) == []
    assert without_grad((n, p.grad) for n, p in net.generator.named_parameters()) == []
    assert not torch.equal(net.segmentor.mask_head.weight, seg_before["mask_head.weight"])


def test_stage2_terms_reach_all_three_networks(batch):
    cfg = tiny_cfg()
    net, rt, opt, task, scaler = _setup(cfg)
    step = cfg.schedule.stage1_steps
    assert task.stage(step) == 2
    out, losses = task.forward_losses(net, batch, rt, stage=2)
    M = out["generator_input"].detach()
    D = net.discriminator
    l_d = discriminator_loss(D(M, batch.target), D(M, out["painted"].detach()))
    g = torch.autograd.grad(l_d, list(D.parameters()), allow_unused=True)
    assert without_grad(zip([n for n, _ in D.named_parameters()], g, strict=True)) == []
    l_gan = generator_gan_loss(D(M, out["painted"]))
    gen = list(net.generator.named_parameters())
    g = torch.autograd.grad(l_gan, [p for _, p in gen] + [net.segmentor.mask_head.weight],
                            allow_unused=True)
    assert without_grad(zip([n for n, _ in gen] + ["mask_head (through M)"], g,
                            strict=True)) == []
    net.zero_grad(set_to_none=True)

    before = {k: v.clone() for k, v in net.state_dict().items()}
    logs, _ = task.train_step(step, net, net, batch, opt, rt, scaler)
    assert set(logs) == {"segm", "l1", "d", "gan", "d_real", "d_fake", "total"}
    assert all(torch.isfinite(v) for v in logs.values())
    for module in task.trained_modules(net, 2):
        assert without_grad((n, p.grad) for n, p in module.named_parameters()) == []
    for prefix in ("segmentor.", "generator.", "discriminator."):
        changed = [k for k, v in net.state_dict().items()
                   if k.startswith(prefix) and v.is_floating_point()
                   and not torch.equal(v, before[k])]
        assert changed, prefix


def _check_extra_segm_term(cfg, batch, name, term, lam, module) -> torch.Tensor:
    """forward_losses' L_segm = Eq. 3 + lam x term(out, batch), the term logged as `name`;
    the term alone reaches every parameter of module(net); a training step logs it. Returns
    the term."""
    net, rt, opt, task, scaler = _setup(cfg)
    out, losses = task.forward_losses(net, batch, rt, stage=1)
    assert set(losses) == {"segm", name, "l1"}
    expected = term(out, batch)
    assert torch.allclose(losses[name], expected) and losses[name].item() > 0
    eq3 = segmentation_loss(out["mask_logits"], batch.full_gt, batch.visible_gt, task.weights,
                            candidate=out.get("candidate"), gate_loss=cfg.loss.gate_loss)
    assert torch.allclose(losses["segm"], eq3 + lam * expected)
    params = list(module(net).named_parameters())
    g = torch.autograd.grad(losses[name], [p for _, p in params], allow_unused=True)
    assert without_grad(zip([n for n, _ in params], g, strict=True)) == []
    logs, _ = task.train_step(0, net, net, batch, opt, rt, scaler)
    assert {"segm", name, "l1", "total"} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    return losses[name]


def test_lambda_iou_adds_the_soft_iou_term_and_reaches_the_segmentor(batch):
    """loss.lambda_iou: L_segm = Eq. 3 + lambda_iou (1 - soft IoU of the gated o and S_F),
    logged as "iou"; the term alone reaches every segmentor parameter through the gate."""
    iou = _check_extra_segm_term(
        tiny_cfg("loss.lambda_iou=2.0"), batch, "iou",
        lambda out, b: soft_iou_loss(out["mask_probs"], b.full_gt), 2.0,
        lambda net: net.segmentor)
    assert iou.item() < 1
    with pytest.raises(ValueError, match="lambda_iou"):
        tiny_cfg("loss.lambda_iou=-1")


def test_lambda_distill_pulls_o_toward_the_teachers_mean(batch, tiny_run, tmp_path):
    """loss.lambda_distill: L_segm + lambda x BCE of the gated o against the mean o of
    loss.distill_from's networks (here a trained run and its segmentor-only bundle: the same
    segmentor, so the mean is its o), logged as "distill"; the term reaches the segmentor."""
    run = tiny_run[0]
    only = tmp_path / "teacher"
    export_bundle(run, only, dtype=torch.float32, segmentor_only=True)
    manifest = json.loads((only / "segan_compact.json").read_text())
    assert manifest["parts"] == ["segmentor"]
    assert manifest["parameters"] == sum(
        p.numel() for p in load_segan(run)[0].segmentor.parameters())
    with pytest.raises(BundleError, match="only the SeGAN's segmentor"):
        load_segan(only)
    teacher = load_segan(run)[0]
    cfg = tiny_cfg(f"loss.distill_from=[{run},{only}]", "loss.lambda_distill=2.0")
    with torch.no_grad():
        target = teacher.segment(batch.images, batch.visible_masks, batch.boxes,
                                 batch.visible_union)["mask_probs"]
        assert torch.equal(load_segmentor(only)[0].segment(
            batch.images, batch.visible_masks, batch.boxes, batch.visible_union)["mask_probs"],
            target)
    distill = _check_extra_segm_term(
        cfg, batch, "distill", lambda out, b: distillation_loss(out["mask_probs"], target), 2.0,
        lambda net: net.segmentor)
    assert distill.item() > 0
    with pytest.raises(ValueError, match="loss.distill_from"):
        tiny_cfg("loss.lambda_distill=1")  # no teachers
    with pytest.raises(FileNotFoundError, match="loss.distill_from: no file"):
        _check_extra_segm_term(tiny_cfg(f"loss.distill_from=[{tmp_path / 'nope'}]",
                                        "loss.lambda_distill=1"), batch, "distill",
                               lambda out, b: 0, 1.0, lambda net: net.segmentor)


def test_distillation_loss_known_answers():
    half, ones = torch.full((2, 1, 4, 4), 0.5), torch.ones(2, 1, 4, 4)
    assert distillation_loss(half, ones).item() == pytest.approx(np.log(2))
    assert distillation_loss(ones, ones).item() == pytest.approx(0, abs=1e-5)
    # a gated target a rounding outside [0, 1] (CUDA's BCE asserts on it) counts as 0 or 1
    assert distillation_loss(half, ones + 1e-6).item() == distillation_loss(half, ones).item()
    assert (distillation_loss(half, -1e-6 * ones).item()
            == distillation_loss(half, 0 * ones).item())
    # BCE against a soft target: minimal where o equals it
    soft = torch.full((1, 1, 2, 2), 0.3)
    at = distillation_loss(soft, soft).item()
    assert at == pytest.approx(-(0.3 * np.log(0.3) + 0.7 * np.log(0.7)), rel=1e-5)
    assert distillation_loss(torch.full_like(soft, 0.4), soft).item() > at


def test_amodal_box_head_trains_on_the_amodal_boxes(batch):
    """model.amodal_box_head: L_segm + lambda_box x smooth-L1 of its deltas against the boxes'
    offsets to S_V's box u S_F's box, logged as "box"; the term reaches the head."""
    cfg = tiny_cfg("model.segmentor=crop_unet", "model.segmentor_input_size=64",
                   "model.amodal_box_head=true", "loss.lambda_box=2.0")
    _check_extra_segm_term(
        cfg, batch, "box",
        lambda out, b: amodal_box_loss(out["amodal_deltas"], b.boxes[:, 1:],
                                       box_union(b.visible_box, b.full_box)), 2.0,
        lambda net: net.segmentor.box_head)
    with pytest.raises(ValueError, match="amodal_box_head"):
        tiny_cfg("model.amodal_box_head=true")  # the paper's segmentor has no box head


# ------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_gives_identical_outputs(batch, tmp_path):
    cfg = tiny_cfg()
    net, rt, opt, task, scaler = _setup(cfg)
    task.train_step(cfg.schedule.stage1_steps, net, net, batch, opt, rt, scaler)
    path = save_checkpoint(tmp_path / "checkpoints" / "ckpt-00000001.pt", {
        "version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "model_hparams": net.hparams,
        "model": net.state_dict(), "optimizers": opt.state_dict(), "step": 1})
    state = load_checkpoint(path)
    assert TrainConfig.from_dict(state["config"]) == cfg
    fresh = SeGAN.from_hparams(state["model_hparams"])
    fresh.load_state_dict(state["model"])
    fresh_opt = make_optimizers(fresh, cfg.optim)
    fresh_opt.load_state_dict(state["optimizers"])
    export_safetensors(net, tmp_path / "model.safetensors", cfg.to_dict(), 1)
    exported, meta = load_exported(tmp_path / "model.safetensors")
    assert TrainConfig.from_dict(meta["config"]) == cfg
    net.eval()
    fresh.eval()
    with torch.no_grad():
        a = net(batch.images, batch.visible_masks, batch.boxes)
        b = fresh(batch.images, batch.visible_masks, batch.boxes)
        c = exported(batch.images, batch.visible_masks, batch.boxes)
        d_a = net.discriminator(a["generator_input"], a["painted"])
        d_b = fresh.discriminator(b["generator_input"], b["painted"])
    for k in ("mask_logits", "full_mask", "painted"):
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
    assert torch.equal(d_a, d_b)


def test_a_failed_checkpoint_write_leaves_nothing_that_looks_whole(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        save_checkpoint(tmp_path / "checkpoints" / "ckpt-00000005.pt",
                        {"version": CHECKPOINT_VERSION, "x": torch.zeros(1000), "y": Unpicklable()})
    assert list((tmp_path / "checkpoints").iterdir()) == []
    (tmp_path / "checkpoints" / "ckpt-00000007.pt.tmp-abc").write_bytes(b"half")
    assert list_checkpoints(tmp_path) == [] and latest_checkpoint(tmp_path) is None


def test_resume_equals_an_uninterrupted_run(tiny, cache_dir, tmp_path):
    """6 steps (3 of stage 1, 3 of stage 2, flips and dropout on) in one go, vs 3 steps, a stop,
    and a resume for 3 more, with DataLoader workers: bitwise equal weights, optimiser states,
    random generator states, data position and logged losses."""
    training_loop(tiny_cfg(*SHORT), tiny, tmp_path / "a", cache_dir=cache_dir, progress=False)
    first = training_loop(tiny_cfg(*SHORT, "data.num_workers=2"), tiny, tmp_path / "b",
                          cache_dir=cache_dir, stop_at=3, progress=False)
    assert first["steps"] == 3 and not first["finished"]
    with pytest.raises(ValueError, match="already has checkpoints"):
        training_loop(tiny_cfg(*SHORT), tiny, tmp_path / "b", cache_dir=cache_dir,
                      progress=False)
    cfg = resolve_config(None, [], tmp_path / "b", resume=True)
    assert cfg.data.num_workers == 2 and cfg.total_steps == 6
    second = training_loop(cfg, tiny, tmp_path / "b", resume=True, cache_dir=cache_dir,
                           progress=False)
    assert second["start_step"] == 3 and second["finished"]

    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "ckpt-00000006.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "ckpt-00000006.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in ("segmentor", "generator", "discriminator"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k]))
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    assert a["data"] == b["data"]
    losses = [{k: v for k, v in s.items() if k.startswith("loss/")} for s in
              read_stats(tmp_path / "a")]
    assert losses == [{k: v for k, v in s.items() if k.startswith("loss/")}
                      for s in read_stats(tmp_path / "b")]
    with pytest.raises(ValueError, match="differs from the run"):
        resolve_config(TINY, [], tmp_path / "b", resume=True)


def test_ddp_two_processes_through_torchrun(tiny, cache_dir, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "segan.train", "--config", str(TINY), "--data", str(tiny), "--out",
           str(run), "--cache-dir", str(cache_dir), "--quiet", "schedule.stage1_steps=2",
           "schedule.stage2_steps=2", "run.log_every=1", "run.checkpoint_every=2",
           "run.grid_every=2", "run.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    summaries = [line for line in r.stdout.splitlines() if line.startswith('{"start_step"')]
    assert len(summaries) == 1  # rank 0 prints
    assert [s["step"] for s in read_stats(run)] == [1, 2, 3, 4]  # one line per step
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (run / "grids").iterdir()) == [
        "step-00000001.png", "step-00000002.png", "step-00000004.png"]
    assert [s for s, _ in list_checkpoints(run)] == [2, 4]
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # seed + rank
    assert (run / "model.safetensors").is_file()
    assert read_stats(run)[-1]["samples_per_s"] > 0
    # resumable with another number of processes: the 2-process run goes on in 1 process from
    # its last checkpoint (same epoch and share of it; dropout streams restart, with a warning)
    cfg = resolve_config(None, ["schedule.stage2_steps=4", "run.threads=1"], run, resume=True)
    with pytest.warns(UserWarning, match="resuming a run of 2 processes with 1"):
        summary = training_loop(cfg, tiny, run, resume=True, cache_dir=cache_dir,
                                progress=False)
    assert summary["start_step"] == 4 and summary["steps"] == 6 and summary["finished"]
    assert [s["step"] for s in read_stats(run)] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(latest_checkpoint(run))["world_size"] == 1


def test_time_limit_stops_with_a_checkpoint_at_a_logging_step(tiny, cache_dir, tmp_path):
    cfg = tiny_cfg("run.log_every=2", "run.grid_every=0", "run.threads=1")
    summary = training_loop(cfg, tiny, tmp_path / "run", cache_dir=cache_dir, progress=False,
                            time_limit_s=0.0)
    assert summary["steps"] == 2 and not summary["finished"]
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2]
    assert [s["step"] for s in read_stats(tmp_path / "run")] == [2]


def test_weight_average_warms_up_swaps_and_round_trips():
    """WeightAverage (run.ema_decay): avg <- d avg + (1 - d) w, d = min(decay, (1+n)/(10+n));
    swapped_in gives the average and restores the live weights; its state round-trips."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightAverage(net, 0.5)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.update()  # n = 0: d = min(0.5, 1/10) = 0.1
    torch.testing.assert_close(ema.avg[ema.names.index("0.weight")], 0.1 * w0 + 0.9 * (w0 + 1))
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.update()  # n = 1: d = min(0.5, 2/11)
    d = 2 / 11
    expect = d * (0.1 * w0 + 0.9 * (w0 + 1)) + (1 - d) * (w0 + 2)
    torch.testing.assert_close(ema.avg[ema.names.index("0.weight")], expect)
    live = net[0].weight.detach().clone()
    with ema.swapped_in() as averaged:
        torch.testing.assert_close(averaged[0].weight.detach(), expect)
    assert torch.equal(net[0].weight.detach(), live)
    again = WeightAverage(net, 0.5)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 2
    assert all(torch.equal(a, b) for a, b in zip(again.avg, ema.avg, strict=True))
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(net, 1.0)


def test_ema_run_exports_the_average_and_resumes_it(tiny, cache_dir, tmp_path):
    """run.ema_decay: the export (and a .pt read for inference) holds the weight average, not
    the last step's weights; a stopped and resumed run continues the same average."""
    ema = [*SHORT, "run.ema_decay=0.5"]
    training_loop(tiny_cfg(*ema), tiny, tmp_path / "a", cache_dir=cache_dir, progress=False)
    training_loop(tiny_cfg(*ema), tiny, tmp_path / "b", cache_dir=cache_dir, stop_at=3,
                  progress=False)
    cfg = resolve_config(None, [], tmp_path / "b", resume=True)
    training_loop(cfg, tiny, tmp_path / "b", resume=True, cache_dir=cache_dir, progress=False)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "ckpt-00000006.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "ckpt-00000006.pt")
    assert a["ema"]["updates"] == b["ema"]["updates"] == 6
    for k, v in a["ema"]["avg"].items():
        assert torch.equal(v, b["ema"]["avg"][k]), k
    exported, _ = load_exported(tmp_path / "a" / "model.safetensors")
    state = exported.state_dict()
    differs = 0
    for k, v in a["ema"]["avg"].items():
        if k.startswith("discriminator."):
            continue  # training-only: not exported
        assert torch.equal(state[k], v), k
        differs += not torch.equal(v, a["model"][k])
    assert differs > 0  # the average is not the last step's weights
    from_pt = read_weights(tmp_path / "a" / "checkpoints" / "ckpt-00000006.pt").state
    assert all(torch.equal(from_pt[k], v) for k, v in a["ema"]["avg"].items())
    # resuming a run without an average under a config that asks for one names the field
    training_loop(tiny_cfg(*SHORT), tiny, tmp_path / "c", cache_dir=cache_dir, stop_at=3,
                  progress=False)
    ckpt = tmp_path / "c" / "checkpoints" / "ckpt-00000003.pt"
    state = load_checkpoint(ckpt)
    state["config"]["run"]["ema_decay"] = 0.5
    save_checkpoint(ckpt, state)
    (tmp_path / "c" / "config.yaml").write_text(
        TrainConfig.from_dict(state["config"]).to_yaml())
    cfg = resolve_config(None, [], tmp_path / "c", resume=True)
    with pytest.raises(ValueError, match=r"ckpt-00000003\.pt: field 'ema'"):
        training_loop(cfg, tiny, tmp_path / "c", resume=True, cache_dir=cache_dir,
                      progress=False)
