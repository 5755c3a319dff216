"""scripts/quality_run.sh end to end on the CPU (SMOKE=1: a few small scenes, one step a stage)."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from segan.bundle import export_bundle
from segan.checkpoint import load_checkpoint
from segan.train.checkpoint import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run_quality_smoke(out: Path, **env: str) -> subprocess.CompletedProcess:
    """scripts/quality_run.sh OUT with SMOKE=1 and `env` (ARMS, ...); asserts it succeeded."""
    env = dict(os.environ, SMOKE="1", SEGAN=f"{sys.executable} -m segan.cli", **env,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "quality_run.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_quality_run_trains_every_arm_and_reports_every_test_set(tmp_path):
    out = tmp_path / "q"
    proc = run_quality_smoke(
        out, ARMS="compact prev compact_plusfam compact_large compact_iou compact_boxhead",
        BASELINES="pix2pix context_encoder ibbe nearest_neighbour", PYTHON=sys.executable)
    baselines = {"pix2pix", "context_encoder", "ibbe", "nearest_neighbour"}
    for test_set in ("diverse", "dyce", "ood"):
        results = json.loads((out / "eval" / test_set / "results.json").read_text())
        assert set(results["methods"]) == {"segan@compact", "segan@prev", "segan@compact_plusfam",
                                           "segan@compact_large", "segan@compact_iou",
                                           "segan@compact_boxhead",
                                           "visible_as_full", "oracle", *baselines}
        # the arms are the recipes, scored on the same images
        assert results["methods"]["oracle"]["segmentation"]["full_iou/standard/mean_all"] == 1.0
        # the paper's baselines beside them, the nearest neighbour's index diverse's training
        # split (ood has none)
        for name in baselines - {"nearest_neighbour"}:
            assert results["methods"][name]["checkpoint"]["path"] == str(
                out / "runs" / name / "model.safetensors")
        assert any(f"split 'train' of {out / 'diverse'}" in n
                   for n in results["methods"]["nearest_neighbour"]["notes"])
    # one index for the three test sets: the first evaluation's, read again by the others
    assert len(list((out / "cache" / "train").glob("*/nn_index/*.npy"))) == 1
    # each trained baseline: its config of Tables 1-2, its step budget from configs/tables
    for name in baselines - {"nearest_neighbour"}:
        config = yaml.safe_load((out / "runs" / name / "config.yaml").read_text())
        assert config["task"] == name
        assert f"train baseline {name} (" in proc.stdout
    # IBBE's segmentor on the paper arm's ImageNet trunk (random in the smoke: no download)
    ibbe = yaml.safe_load((out / "runs" / "ibbe" / "config.yaml").read_text())
    assert ibbe["model"]["backbone"] == "efficientnet_lite0"
    assert ibbe["data"]["image_mean"] == [0.5, 0.5, 0.5]
    # the data A/B's arm trained on diverse_plus, whose categories hold the thin families
    plus = json.loads((out / "diverse_plus" / "annotations" / "train.json").read_text())
    assert "stick_animal" in {c["name"] for c in plus["categories"]}
    assert "segan_compact.yaml on diverse_plus;" in proc.stdout
    # the data-quantity A/B's arm trained on its own set, diverse_large
    assert "segan_compact.yaml on diverse_large;" in proc.stdout
    large = json.loads((out / "diverse_large" / "generation.json").read_text())
    assert large["preset"] == "diverse_large"
    config = yaml.safe_load((out / "runs" / "compact" / "config.yaml").read_text())
    assert config["model"]["segmentor"] == "crop_unet" and config["model"]["segmentor_context"]
    assert config["model"]["occluder_gate"] == "one_way"
    # the recipe's amodal boxes (patches around S_V u S_F's box) and three test passes
    assert config["data"]["amodal_box_share"] == 0.5 and config["data"]["box_passes"] == 3
    # the soft-IoU arm: the compact recipe with loss.lambda_iou, its run logging the term
    config = yaml.safe_load((out / "runs" / "compact_iou" / "config.yaml").read_text())
    assert config["loss"]["lambda_iou"] == 1.0
    stats = (out / "runs" / "compact_iou" / "stats.jsonl").read_text()
    assert '"loss/iou"' in stats
    # the amodal-box head's arm: trained with its box term, evaluated with its box passes
    config = yaml.safe_load((out / "runs" / "compact_boxhead" / "config.yaml").read_text())
    assert config["model"]["amodal_box_head"] is True
    assert '"loss/box"' in (out / "runs" / "compact_boxhead" / "stats.jsonl").read_text()
    assert config["data"]["box_passes"] == 3
    table = (out / "quality.md").read_text()
    assert "| method | metric | diverse | dyce | ood |" in table
    assert "| segan@compact | full IoU (standard, mean) |" in table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_quality_run_of_the_large_data_arm_then_a_student_of_it(tmp_path):
    """ARMS=compact_large (and compact_large_iou, the same data with the soft-IoU term, and
    recommended, configs/segan_recommended.yaml: that for twice the steps, from its base file):
    diverse_large alone is generated and its test split, diverse's test scenes, is the own
    test set (a link, no second generation of those scenes). Then
    ARMS=compact_distill with that run and its segmentor-only bundle as TEACHERS."""
    out = tmp_path / "q"
    proc = run_quality_smoke(out, SKIP_DYCE="1",
                             ARMS="compact_large compact_large_iou recommended")
    assert "generate diverse_large" in proc.stdout and "generate diverse " not in proc.stdout
    assert (out / "diverse").is_symlink() and (out / "diverse").resolve() == out / "diverse_large"
    for test_set in ("diverse", "ood"):
        results = json.loads((out / "eval" / test_set / "results.json").read_text())
        assert {"segan@compact_large", "segan@compact_large_iou"} <= set(results["methods"])
    for arm, lambda_iou in (("compact_large", 0.0), ("compact_large_iou", 1.0)):
        config = yaml.safe_load((out / "runs" / arm / "config.yaml").read_text())
        assert config["loss"]["lambda_iou"] == lambda_iou
    # the three arms train on the same data with the same crop settings: one decoded cache
    assert len([p for p in (out / "cache" / "train").glob("train-*") if p.is_dir()]) == 1
    # the recommended arm: the schedule's decays at its end; the smoke's steps (one a stage) kept
    assert "segan_recommended.yaml on diverse_large;" in proc.stdout
    config = yaml.safe_load((out / "runs" / "recommended" / "config.yaml").read_text())
    assert config["loss"]["lambda_iou"] == 1.0
    assert config["optim"]["segmentor_lr_decay_every"] == 6000
    assert config["optim"]["painter_lr_decay_every"] == 7000
    assert (config["schedule"]["stage1_steps"], config["schedule"]["stage2_steps"]) == (1, 1)

    teacher = out / "runs" / "compact_large"
    export_bundle(teacher, tmp_path / "seg_only", segmentor_only=True)
    student = tmp_path / "q2"
    run_quality_smoke(student, SKIP_DYCE="1", ARMS="compact_distill",
                      TEACHERS=f"{teacher},{tmp_path / 'seg_only'}")
    config = yaml.safe_load((student / "runs" / "compact_distill" / "config.yaml").read_text())
    assert config["loss"]["distill_from"] == [str(teacher), str(tmp_path / "seg_only")]
    assert config["loss"]["lambda_distill"] == 2.0
    assert '"loss/distill"' in (student / "runs" / "compact_distill" / "stats.jsonl").read_text()
    # the checkpoint names the teachers' weights (path, format, step, sha256)
    ckpt = load_checkpoint(latest_checkpoint(student / "runs" / "compact_distill"))
    assert [t["format"] for t in ckpt["distill_from"]] == ["safetensors", "bundle"]
    assert all(len(t["sha256"]) == 64 for t in ckpt["distill_from"])
    with pytest.raises(AssertionError, match="TEACHERS"):
        run_quality_smoke(tmp_path / "q3", SKIP_DYCE="1", ARMS="compact_distill")
    # the fine-tune: a warm start from the first teacher, its segmentor alone, G kept
    ft = tmp_path / "q4"
    run_quality_smoke(ft, SKIP_DYCE="1", ARMS="compact_distill_ft", FT_STEPS="2",
                      TEACHERS=f"{teacher},{tmp_path / 'seg_only'}")
    config = yaml.safe_load((ft / "runs" / "compact_distill_ft" / "config.yaml").read_text())
    assert config["model"]["init_from"] == str(teacher)
    assert config["optim"]["freeze_painter"] is True
    assert (config["schedule"]["stage1_steps"], config["schedule"]["stage2_steps"]) == (2, 0)
    assert '"painter_trained": false' in (ft / "logs" / "train_compact_distill_ft.log").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_device_visible_trains_evaluates_and_brings_back_fp16_weights(tmp_path):
    """benchmarks/device_visible.sh (the bundle's visible segmenter alone on the GPU) with
    SMOKE=1: tiny sets, two CPU steps; its recall lines, scripts/segmenter_pr.py's table at
    PR_SIZES, and the fp16 run that `segan export-bundle --visible-segmenter` takes."""
    from segan.inference import load_visible_segmenter

    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, SMOKE="1", PY=sys.executable, OUT=str(out), Q=str(tmp_path / "v"),
               PR_SIZES="64",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_visible.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("- detection:") == 2  # diverse and ood
    for name in ("diverse", "ood"):
        table = json.loads((out / f"pr_{name}_64.json").read_text())
        assert [r["threshold"] for r in table["rows"]][:2] == [0.05, 0.1]
        assert all(r["test_size"] == 64 for r in table["rows"])
    assert proc.stdout.count("| 64 | 0.5 | 0.5 |") == 2  # the shipped threshold's row, per set
    seg = load_visible_segmenter(out / "visible", "cpu")
    assert seg.mask_target == "visible" and seg.identity["step"] == 2
    assert all(v.dtype == torch.float16 for v in load_file(out / "visible" / "model.safetensors")
               .values() if v.is_floating_point())


def _results(path: Path, full: dict[str, float]) -> None:
    path.mkdir(parents=True)
    path.joinpath("results.json").write_text(json.dumps({"methods": {
        m: {"segmentation": {"full_iou/standard/mean_all": v}} for m, v in full.items()}}))


def test_pick_arm_chooses_by_the_out_of_domain_margin(tmp_path):
    """benchmarks/pick_arm.py (device_quality.sh's choice of the arm to bundle): the mean
    margin over visible_as_full on the out-of-domain sets decides; in-domain sets and
    predicted-S_V runs do not count."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from pick_arm import main, ood_margins, pick
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ev = tmp_path / "eval"
    floor = "visible_as_full"
    _results(ev / "diverse", {floor: 0.70, "segan@a": 0.99, "segan@b": 0.71})  # in-domain
    _results(ev / "ood", {floor: 0.80, "segan@a": 0.84, "segan@b": 0.86})  # b +2 points
    _results(ev / "mitsuba", {floor: 0.80, "segan@a": 0.86, "segan@b": 0.85})  # a +1
    _results(ev / "ood_pred", {floor: 0.3, "segan@a": 0.9, "segan@b": 0.3})  # predicted S_V
    margins = ood_margins(ev, ["a", "b"])
    assert margins["a"] == pytest.approx(0.05) and margins["b"] == pytest.approx(0.055)
    assert pick(margins) == "b"
    assert pick({"a": 0.01, "b": float("nan")}) == "a" and pick({"a": 0.01, "b": 0.01}) == "a"
    assert pick(ood_margins(ev, ["a", "c"])) == "a"  # c has no scores
    assert main([str(ev), "a", "b"]) == 0


def test_first_steps_rates_skip_each_stages_first_interval():
    """benchmarks/first_steps.py (the autotuner's cost in a run's first steps): a stage's rate
    leaves out its first logged interval, which is reported apart in seconds."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from first_steps import rate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    records = [{"step": 50, "stage": 1, "time_s": 60.0},   # the first step's 55 s inside
               {"step": 100, "stage": 1, "time_s": 65.0},  # 10 steps/s from here on
               {"step": 150, "stage": 1, "time_s": 70.0},
               {"step": 200, "stage": 2, "time_s": 90.0},  # D's first step: 20 s
               {"step": 250, "stage": 2, "time_s": 100.0}]  # 5 steps/s
    assert rate(records, 1, skip_first=True) == (pytest.approx(10.0), pytest.approx(60.0))
    assert rate(records, 2, skip_first=True) == (pytest.approx(5.0), pytest.approx(20.0))
    assert rate(records, 1, skip_first=False)[0] == pytest.approx(150 / 70)
    assert all(math.isnan(v) for v in rate(records, 3, skip_first=True))
