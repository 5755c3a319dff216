"""The table runs of scripts/reproduce_tables.sh, one YAML each in configs/tables/
(`segan.train.table_runs`): every run's config takes its overrides, the step budgets are the
script's, and a wrong file names its problem."""

from pathlib import Path

import pytest

from segan.config import ConfigError, load_config
from segan.train.registry import task_names
from segan.train.table_runs import load_table_run, load_table_runs, main, step_expression

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "configs" / "tables"


def test_every_table_run_loads_with_its_overrides():
    runs = load_table_runs(TABLES)
    names = [r.name for r in runs]
    assert names == ["segan", "context_encoder", "depth_net", "ibbe", "maskrcnn_full", "pix2pix",
                     "visible_maskrcnn"]  # the task registry's order
    assert set(names) <= set(task_names())
    for run in runs:
        for smoke in (False, True):
            cfg = load_config(run.config, run.train_overrides(run.budget(2, len(runs), 5), smoke))
            assert cfg.task == run.name, run.name


def test_step_budgets_and_overrides():
    """The numbers of the script's former hard-coded jobs: S = max(1, int(rate x min(1, GPUs /
    runs) x minutes)); SeGAN's stages S // 3 and S - S // 3, its decay S * 3 // 4 + 1."""
    runs = {r.name: r for r in load_table_runs(TABLES)}
    segan = runs["segan"]
    S = segan.budget(2, 7, 5)
    assert S == int(520 * 2 / 7 * 5) == 742
    assert segan.train_overrides(S) == [
        "schedule.stage1_steps=247", "schedule.stage2_steps=495",
        "optim.segmentor_lr_decay_every=557", "data.num_workers=4", "run.log_every=20"]
    assert runs["ibbe"].train_overrides(runs["ibbe"].budget(8, 7, 30)) == [
        "schedule.stage1_steps=36000", "data.batch_objects=128", "optim.segmentor=adam",
        "optim.segmentor_lr=2e-4", "optim.segmentor_lr_decay_every=100000",
        "data.num_workers=4", "run.log_every=20"]
    assert runs["depth_net"].budget(1, 7, 0) == 1  # at least one step (the smoke check)
    assert runs["depth_net"].train_overrides(1, smoke=True)[-1] == "run.device=cpu"


def test_step_expressions():
    assert step_expression("S - S // 3", 10) == 7
    assert step_expression("S * 3 // 4 + 1", 742) == 557
    for bad in ("S / 3", "__import__('os')", "S ** 2", "T", "1.5 * S", "S -"):
        with pytest.raises(ValueError, match="integer expression of S"):
            step_expression(bad, 10)


def test_a_wrong_file_names_its_problem(tmp_path):
    tables = tmp_path / "configs" / "tables"
    tables.mkdir(parents=True)
    (tmp_path / "configs" / "mine.yaml").write_text("task: pix2pix\n")
    f = tables / "mine.yaml"
    for text, problem in (
            ("config: mine.yaml\nrate: 10\nsteps: {schedule.stage2_steps: S}\nrat: 1\n",
             "unknown key"),
            ("config: nope.yaml\nrate: 10\nsteps: {schedule.stage2_steps: S}\n", "config: no file"),
            ("config: mine.yaml\nrate: 0\nsteps: {schedule.stage2_steps: S}\n", "rate: must be"),
            ("config: mine.yaml\nrate: 10\nsteps: {schedule.stage2_steps: S / 2}\n",
             "steps.schedule.stage2_steps"),
            ("config: mine.yaml\nrate: 10\nsteps: {schedule.stage2_steps: S}\n"
             "overrides: [data.batch_objects]\n", "overrides: expected a list of KEY=VALUE"),
            ("config: mine.yaml\nsteps: {schedule.stage2_steps: S}\n", "rate: missing")):
        f.write_text(text)
        with pytest.raises(ConfigError, match=problem):
            load_table_run(f)
    # a key the training config does not know fails before any training, naming the key
    f.write_text("config: mine.yaml\nrate: 10\nsteps: {schedule.stage2_step: S}\n")
    assert load_table_run(f).config == tmp_path / "configs" / "mine.yaml"
    assert main([str(tables), "--gpus", "1", "--minutes", "1"]) == 2


def test_the_scripts_lines(capsys):
    assert main([str(TABLES), "--gpus", "2", "--minutes", "5", "--config",
                 "segan=/elsewhere/segan_plus.yaml"]) == 2  # no such file: refused
    capsys.readouterr()
    assert main([str(TABLES), "--gpus", "2", "--minutes", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    name, config, overrides = lines[5].split("|")
    assert (name, config) == ("pix2pix", str(ROOT / "configs" / "pix2pix.yaml"))
    assert overrides == ("schedule.stage2_steps=928 data.batch_objects=128 data.num_workers=4 "
                         "run.log_every=20")


def test_what_the_scripts_evaluate_with(capsys):
    """The scripts' former special cases, now fields of the runs: the predicted S_V from the
    visible Mask R-CNN's, the cache from SeGAN's config. No run claims a method: nearest
    neighbour takes the paper's ImageNet features, not a trained run's backbone."""
    for show, out in (("methods", []),
                      ("visible_segmenter", ["visible_maskrcnn"]),
                      ("cache", [str(ROOT / "configs" / "segan_scratch.yaml")])):
        assert main([str(TABLES), "--show", show]) == 0
        assert capsys.readouterr().out.splitlines() == out
    assert main([str(TABLES), "--show", "cache", "--config", "segan=/elsewhere/s.yaml"]) == 0
    assert capsys.readouterr().out.strip() == "/elsewhere/s.yaml"  # SEGAN_CONFIG


def test_roles_and_methods_are_checked(tmp_path, capsys):
    tables = tmp_path / "configs" / "tables"
    tables.mkdir(parents=True)
    (tmp_path / "configs" / "mine.yaml").write_text("task: pix2pix\n")
    run = "config: mine.yaml\nrate: 10\nsteps: {schedule.stage2_steps: S}\n"
    (tables / "a.yaml").write_text(run + "visible_segmenter: yes please\n")
    with pytest.raises(ConfigError, match="visible_segmenter: expected true or false"):
        load_table_runs(tables)
    (tables / "a.yaml").write_text(run + "methods: nearest_neighbour\n")
    with pytest.raises(ConfigError, match="methods: expected a list"):
        load_table_runs(tables)
    (tables / "a.yaml").write_text(run + "visible_segmenter: true\nmethods: [m]\n")
    (tables / "b.yaml").write_text(run + "visible_segmenter: true\n")
    with pytest.raises(ConfigError, match="visible_segmenter: true on 2 runs"):
        load_table_runs(tables)
    (tables / "b.yaml").write_text(run + "methods: [m]\n")
    with pytest.raises(ConfigError, match="'m' is in the methods of both a and b"):
        load_table_runs(tables)
    (tables / "b.yaml").write_text(run)
    assert [r.name for r in load_table_runs(tables) if r.visible_segmenter] == ["a"]
    assert main([str(tables), "--show", "cache"]) == 2  # no run marked
    assert "no table run has cache: true" in capsys.readouterr().err


def test_some_runs_beside_others(capsys):
    """--only prints the named runs' lines; --runs N sizes their budgets for N runs sharing
    the GPUs (the baselines beside scripts/quality_run.sh's arms); an unknown name is refused."""
    assert main([str(TABLES), "--gpus", "1", "--minutes", "8", "--only", "pix2pix", "--only",
                 "ibbe", "--runs", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[0] for line in lines] == ["ibbe", "pix2pix"]
    assert lines[1].split("|")[2].startswith(f"schedule.stage2_steps={int(650 / 4 * 8)} ")
    assert main([str(TABLES), "--gpus", "1", "--minutes", "8", "--only", "pix2pix"]) == 0
    assert capsys.readouterr().out.split("|")[2].startswith(
        f"schedule.stage2_steps={650 * 8} ")  # alone: the whole GPU
    assert main([str(TABLES), "--gpus", "1", "--minutes", "8", "--only", "pix2pixx"]) == 2
    assert "--only: no table run named pix2pixx" in capsys.readouterr().err
