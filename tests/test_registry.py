"""The task registry of the training loop and the method registry of the evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from segan.cli import main
from segan.eval.config import EvaluationConfig, parse_method_spec
from segan.eval.evaluate import evaluate
from segan.eval.methods import get_method, load_run, method_names
from segan.train import (
    ConfigError,
    ObjectTask,
    TrainConfig,
    build_task,
    get_task,
    load_checkpoint,
    load_config,
    register_task,
    resolve_config,
    task_names,
    training_loop,
)
from segan.train.checkpoint import latest_checkpoint
from segan.train.loop import read_init_from, warm_start
from segan.train.registry import NamedOptimizers

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
SHORT = ["schedule.stage1_steps=2", "schedule.stage2_steps=2", "run.checkpoint_every=2",
         "run.log_every=1", "run.grid_every=0", "run.tensorboard=false"]


class MaskNet(nn.Module):
    """S_V crop -> S_F logits, one 3x3 convolution (a stand-in for a real task's network)."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.hparams = {"width": width}
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, 1, 1))

    def forward(self, visible: torch.Tensor) -> torch.Tensor:
        return self.net(visible)


@dataclass
class ToyMaskConfig:
    width: int = 4


@register_task("toy_mask", section=ToyMaskConfig)
class ToyMaskTask(ObjectTask):
    """A second object-level task: the loop must train, checkpoint and resume it unchanged."""

    needs_appearance = False
    compile_modules = ("net",)

    def build_network(self, backbone_weights: str) -> MaskNet:
        return MaskNet(self.cfg.toy_mask.width)

    def network_from_hparams(self, hparams):
        return MaskNet(**hparams)

    def make_optimizers(self, net):
        return NamedOptimizers(mask=torch.optim.Adam(net.parameters(), lr=1e-2))

    def train_step(self, step, model, net, batch, opt, runtime, scaler):
        logits = model(batch.visible_gt)
        loss = F.binary_cross_entropy_with_logits(logits, batch.full_gt)
        opt["mask"].zero_grad(set_to_none=True)
        loss.backward()
        opt["mask"].step()
        return {"bce": loss.detach()}, {"logits": logits.detach()}


def test_config_task_defaults_to_segan_and_rejects_unknown_names(tmp_path):
    assert "segan" in task_names() and "toy_mask" in task_names()
    d = load_config(TINY).to_dict()
    assert d["task"] == "segan"
    del d["task"]  # a checkpoint written before the field existed
    assert TrainConfig.from_dict(d).task == "segan"
    # the training entry checks the name (TrainConfig itself does not: reading a checkpoint's
    # config must not load the training package, tests/test_layers.py)
    assert load_config(TINY, ["task=nope"]).task == "nope"
    with pytest.raises(ConfigError, match=r"override 'task=nope': task: 'nope' is not a "
                       r"registered task \(known: .*segan"):
        resolve_config(TINY, ["task=nope"], tmp_path / "run")
    with pytest.raises(ConfigError, match=r"task: 'nope' is not a registered task"):
        build_task(load_config(TINY, ["task=nope"]))


def test_a_task_brings_its_config_section(tmp_path):
    """register_task(name, section=...): the config's `name:` key, typed and checked; a config
    of the task carries it (defaults included) and round-trips; other configs do not."""
    cfg = resolve_config(TINY, ["task=toy_mask"], tmp_path / "run")
    assert cfg.toy_mask == ToyMaskConfig() and cfg.to_dict()["toy_mask"] == {"width": 4}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert "toy_mask" not in load_config(TINY).to_dict()
    assert load_config(TINY, ["task=toy_mask", "toy_mask.width=2"]).toy_mask.width == 2
    with pytest.raises(ConfigError, match=r"toy_mask\.width: expected an integer"):
        load_config(TINY, ["toy_mask.width=wide"])
    with pytest.raises(ConfigError, match=r"unknown key 'toy_mask\.depth'"):
        load_config(TINY, ["toy_mask.depth=2"])
    with pytest.raises(ConfigError, match=r"unknown key 'tyo_mask'"):
        load_config(TINY, ["tyo_mask.width=2"])


def test_every_built_in_task_has_its_config():
    """scripts/train_baselines.sh trains each registered task from configs/TASK.yaml."""
    for name in task_names():
        if not get_task(name).__module__.startswith("segan."):
            continue  # registered by a test
        path = ROOT / "configs" / f"{name}.yaml"
        assert path.is_file(), f"task {name!r} has no configs/{name}.yaml"
        assert load_config(path).task == name, path


def test_unsorted_names_follow_the_built_in_modules_not_the_import_order():
    from segan.named_registry import NamedRegistry

    reg: NamedRegistry[int] = NamedRegistry(("first", "second"), lambda n, k: KeyError(n))
    reg._loaded = True  # no built-in modules to import here
    for name, module in (("z", "second"), ("x", "elsewhere"), ("b", "first"), ("a", "first")):
        reg.add(name, 0, lambda old: None, module)
    assert reg.names(sort=False) == ["b", "a", "z", "x"]
    assert reg.names() == ["a", "b", "x", "z"]


def test_segan_list_prints_the_registries_in_registration_order(capsys):
    assert main(["list", "tasks"]) == 0
    tasks = capsys.readouterr().out.split()
    assert tasks == task_names(sort=False) and sorted(tasks) == task_names()
    built_in = [t for t in tasks if get_task(t).__module__.startswith("segan.")]
    # SeGAN first, then segan.baselines' modules in name order, then the other image-level tasks
    assert built_in[:6] == ["segan", "context_encoder", "depth_net", "ibbe", "maskrcnn_full",
                            "pix2pix"]
    assert main(["list", "tasks", "--pretrained-backbone"]) == 0
    backbone = capsys.readouterr().out.split()
    assert "segan" in backbone and "ibbe" in backbone
    assert "pix2pix" not in backbone and "context_encoder" not in backbone
    assert main(["list", "methods"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["segan", "segan"]  # first: the evaluation's reference run
    assert ["visible_as_full", "-"] in rows and ["ibbe", "ibbe"] in rows
    assert "oracle" not in [r[0] for r in rows]  # a ceiling, not a compared method
    assert main(["list", "methods", "--all"]) == 0
    assert "oracle -" in capsys.readouterr().out


def test_another_task_trains_checkpoints_and_resumes_exactly(tiny_data, tiny_cache_dir, tmp_path):
    cfg = load_config(TINY, ["task=toy_mask", *SHORT])
    a = training_loop(cfg, tiny_data, tmp_path / "a", cache_dir=tmp_path / "cache",
                      progress=False)
    assert a["finished"] and a["steps"] == 4 and "loss/bce" in a["last"]
    # where the time before training went: the data (with the phases of the decoded cache
    # that this run built), the networks, the first step
    startup = a["startup"]
    built = {"cache_annotations_s", "cache_decode_s", "cache_fsync_s"}
    assert set(startup) == {"data_s", "network_s", "first_step_s", "first_batch_wait_s", *built}
    assert all(v >= 0 for v in startup.values())
    assert sum(startup[k] for k in built) <= startup["data_s"] + 0.05  # rounded to 0.01 each
    assert startup["first_batch_wait_s"] <= startup["first_step_s"] <= a["seconds"]
    meta = json.loads(next((tmp_path / "cache").glob("*/meta.json")).read_text())
    assert meta["bytes"] == sum(f.stat().st_size for f in (tmp_path / "cache").glob("*/*.u8"))
    # a run that finds the cache built has no build phases
    stopped = training_loop(cfg, tiny_data, tmp_path / "b", cache_dir=tmp_path / "cache",
                            stop_at=2, progress=False)
    assert not built & set(stopped["startup"])
    resumed = resolve_config(None, [], tmp_path / "b", resume=True)
    assert resumed.task == "toy_mask"
    b = training_loop(resumed, tiny_data, tmp_path / "b", resume=True, cache_dir=tiny_cache_dir,
                      progress=False)
    assert b["start_step"] == 2 and b["finished"]
    sa, sb = (load_checkpoint(latest_checkpoint(tmp_path / r)) for r in "ab")
    assert sa["model_hparams"] == {"width": 4} and set(sa["optimizers"]) == {"mask"}
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert sa["data"] == sb["data"]
    # the export rebuilds the network from the file alone, through the task
    net, run_cfg, identity = load_run(tmp_path / "a")
    assert isinstance(net, MaskNet) and run_cfg.task == "toy_mask"
    assert identity["format"] == "safetensors" and identity["step"] == 4
    assert torch.equal(net.net[0].weight, sa["model"]["net.0.weight"])


def test_method_specs_and_names():
    assert parse_method_spec("segan") == ("segan", None)
    assert parse_method_spec("pix2pix=runs/p2p") == ("pix2pix", Path("runs/p2p"))
    with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
        parse_method_spec("pix2pix=")
    assert parse_method_spec("segan@plus=runs/a") == ("segan@plus", Path("runs/a"))
    with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
        parse_method_spec("segan@=runs/a")
    assert {"segan", "visible_as_full"} <= set(method_names())
    assert get_method("segan").task == "segan" and get_method("visible_as_full").task is None
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")


def test_per_method_checkpoints(tiny_data, tiny_cache_dir, tmp_path):
    run = tmp_path / "segan"
    training_loop(load_config(TINY, SHORT), tiny_data, run, cache_dir=tiny_cache_dir,
                  progress=False)
    toy = tmp_path / "toy"
    training_loop(load_config(TINY, ["task=toy_mask", *SHORT]), tiny_data, toy,
                  cache_dir=tiny_cache_dir, progress=False)
    a = evaluate(EvaluationConfig(checkpoint=run, data=tiny_data, out=tmp_path / "a",
                                  methods=["segan", "visible_as_full"], limit=2,
                                  device="cpu"), progress=False)
    b = evaluate(EvaluationConfig(data=tiny_data, out=tmp_path / "b",
                                  methods=[f"segan={run}", "visible_as_full"], limit=2,
                                  device="cpu"), progress=False)
    for m in ("segan", "visible_as_full"):
        assert a["methods"][m]["segmentation"] == b["methods"][m]["segmentation"]
    assert b["methods"]["segan"]["checkpoint"]["path"] == str(run / "model.safetensors")
    assert b["methods"]["visible_as_full"]["checkpoint"] is None
    with pytest.raises(ValueError, match="needs a checkpoint of task 'segan'.* task 'toy_mask'"):
        evaluate(EvaluationConfig(data=tiny_data, out=tmp_path / "c", methods=[f"segan={toy}"],
                                  device="cpu"), progress=False)
    with pytest.raises(ValueError, match="'segan' needs a checkpoint"):
        evaluate(EvaluationConfig(data=tiny_data, out=tmp_path / "d",
                                  methods=["segan", f"visible_as_full={run}"],
                                  device="cpu"), progress=False)
    rc = main(["evaluate", "--data", str(tiny_data), "--out", str(tmp_path / "e"), "--method",
               f"segan={run}", "--limit", "1", "--device", "cpu", "--quiet"])
    assert rc == 0
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert "--checkpoint" not in results["command"] and f"segan={run}" in results["command"]


# ----------------------------------------------------------------------------- every task
# each built-in task (SeGAN, segan.baselines' modules, the image-level ones), timm-style: built
# from configs/tiny.yaml + its `smoke_overrides`, one CPU step in its last stage (every network
# trains), a gradient on every parameter, export, load through the evaluation's `load_run`
BUILT_IN_TASKS = [name for name in task_names(sort=False)
                  if get_task(name).__module__.startswith("segan.")]
DATA_FIXTURE = {"background_completer": "tiny_deocc_data"}  # room shells to fill


@pytest.mark.parametrize("name", BUILT_IN_TASKS)
def test_every_task_builds_steps_exports_and_loads(name, request, tiny_cache_dir, tmp_path):
    from segan.data.formats import resolve_dataset
    from segan.train.runtime import make_runtime

    data_dir = request.getfixturevalue(DATA_FIXTURE.get(name, "tiny_data"))
    overrides = [f"task={name}", *get_task(name).smoke_overrides, "data.batch_objects=4",
                 "run.device=cpu"]
    cfg = load_config(TINY, overrides)
    task = build_task(cfg)
    assert task.config_section is None or task.config_section in cfg.to_dict()
    rt = make_runtime(cfg.run, static_shapes=task.static_shapes)
    data = task.open_data(resolve_dataset(data_dir, "auto", tiny_cache_dir), tiny_cache_dir,
                          rt, False)
    rt.seed(0)
    net = task.build_network("none")
    model = task.prepare_model(net, rt)
    net.train()
    opt, scaler = task.make_optimizers(net), rt.grad_scaler()
    batch = task.prepare_batch(next(iter(task.make_loader(data, rt, 0, 0))), rt)
    step = task.total_steps - 1  # the last stage: e.g. SeGAN's discriminator trains
    task.set_learning_rates(opt, step)
    losses, _ = task.train_step(step, model, net, batch, opt, rt, scaler)
    assert losses and all(bool(torch.isfinite(v).all()) for v in losses.values()), losses
    # every trainable parameter is reached by a loss (a gradient, possibly zero at this step:
    # e.g. the tiny detector's coarsest FPN level, where no sampled anchor lies)
    no_grad = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == [], f"{name}: parameters without a gradient: {no_grad[:8]}"
    assert sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None) > 0

    path = task.export(net, tmp_path / "model.safetensors", cfg.to_dict(), 1,
                       task.backbone_record("none"))
    loaded, loaded_cfg, identity = load_run(path)
    assert loaded_cfg == cfg and identity["step"] == 1
    assert type(loaded) is type(net)
    assert json.loads(json.dumps(loaded.hparams)) == json.loads(json.dumps(net.hparams))
    # the export leaves the training-only networks out (load_run rebuilds them at random)
    training_only = tuple(f"{p}." for p in task.export_exclude)
    kept = {k: v for k, v in net.state_dict().items() if not k.startswith(training_only)}
    state = loaded.state_dict()
    assert all(k.startswith(training_only) for k in state.keys() - kept.keys())
    assert all(torch.equal(v, state[k]) for k, v in kept.items())
    # a warm start of the task from that export (model.init_from): every exported tensor; the
    # training-only networks keep their fresh initialisation
    warm_cfg = load_config(TINY, [*overrides, f"model.init_from={path}"])
    warm_task = build_task(warm_cfg)
    rt.seed(1)
    warm = warm_task.build_network("none")
    fresh = {k: v.clone() for k, v in warm.state_dict().items()}
    record = warm_start(warm, warm_task, read_init_from(warm_cfg))
    state = warm.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in kept.items())
    assert all(torch.equal(state[k], fresh[k]) for k in state.keys() - kept.keys())
    assert record["path"] == str(path) and record["step"] == 1
