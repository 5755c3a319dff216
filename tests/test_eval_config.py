"""The typed evaluation config (`segan.eval.config.EvaluationConfig`): defaults, validation that
names the field, the dict and command-line forms, and the CLI that only parses into it."""

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from segan.cli import build_parser, main
from segan.config import ConfigError
from segan.eval.config import EvaluationConfig, evaluation_defaults, parse_method_spec


def _cfg(**kw) -> EvaluationConfig:
    return EvaluationConfig(**{"data": Path("data"), "out": Path("out"), **kw})


def test_defaults_and_normalisation():
    cfg = EvaluationConfig(data="data", out="out", methods=["segan", "visible_as_full"],
                           lpips_weights="w")
    assert cfg.data == Path("data") and cfg.out == Path("out") and cfg.checkpoint is None
    assert cfg.methods == ("segan", "visible_as_full") and cfg.lpips_weights == (Path("w"),)
    assert (cfg.split, cfg.visible, cfg.device, cfg.data_format) == ("test", "gt", "auto", "auto")
    assert (cfg.best_worst, cfg.save_crops, cfg.figure_objects) == (4, 0, 8)
    assert _cfg(methods="segan").methods == ("segan",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.limit = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        EvaluationConfig(data="data")  # out is required


@pytest.mark.parametrize("kw, field", [
    (dict(visible="both"), "visible"),
    (dict(visible="predicted"), "visible_segmenter"),
    (dict(visible_segmenter="runs/v"), "visible_segmenter"),
    (dict(visible="predicted", visible_segmenter="v", visible_score_threshold=float("nan")),
     "visible_score_threshold"),
    (dict(device="tpu"), "device"),
    (dict(limit=0), "limit"),
    (dict(sample=0), "sample"),
    (dict(sample=2, limit=2), "sample"),
    (dict(best_worst=-1), "best_worst"),
    (dict(save_crops=-1), "save_crops"),
    (dict(figure_objects=1.5), "figure_objects"),
    (dict(split=""), "split"),
    (dict(out=None), "out"),
    (dict(methods=()), "methods"),
    (dict(methods=("segan=a", "segan=b")), "methods"),
])
def test_a_wrong_value_names_its_field(kw, field):
    with pytest.raises(ConfigError, match=rf"^{field} \(--{field.replace('_', '-')}\): "):
        _cfg(**kw)


def test_predicted_needs_the_segmenter_and_replace_validates():
    with pytest.raises(ConfigError, match="visible-instance segmenter"):
        _cfg(visible="predicted")
    cfg = _cfg(visible="predicted", visible_segmenter="runs/v")
    assert cfg.replace(limit=2).limit == 2
    with pytest.raises(ConfigError, match="limit"):
        cfg.replace(limit=0)
    with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
        _cfg(methods=("pix2pix=",))


def test_method_specs():
    cfg = _cfg(methods=("segan@plus=runs/a", "visible_as_full", "segan=runs/b",
                        "visible_as_full"))
    assert cfg.method_specs() == {"segan@plus": ("segan", Path("runs/a")),
                                  "visible_as_full": ("visible_as_full", None),
                                  "segan": ("segan", Path("runs/b"))}
    assert parse_method_spec(" pix2pix = runs/p ") == ("pix2pix", Path("runs/p"))


def test_dict_round_trip_is_json():
    cfg = EvaluationConfig(checkpoint="runs/s", data="d", out="o", methods=("segan", "oracle"),
                           visible="predicted", visible_segmenter="runs/v",
                           visible_score_threshold=0.3, sample=5, fid_weights="f.pth",
                           lpips_weights=("a.pth", "b.pth"), best_worst=0, save_crops=2,
                           cache_dir="c")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["methods"] == ["segan", "oracle"] and d["lpips_weights"] == ["a.pth", "b.pth"]
    assert EvaluationConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="unknown evaluation config key.*imgae_size"):
        EvaluationConfig.from_dict({**d, "imgae_size": 3})


def test_command_line_parses_back_to_the_same_config():
    """The recorded command, given to `segan evaluate`'s parser, gives the same config (less
    what the command does not record: cache_dir, figure_objects)."""
    cfg = EvaluationConfig(checkpoint="runs/s", data="d", out="o",
                           methods=("segan", "pix2pix=runs/p"), visible="predicted",
                           visible_segmenter="runs/v", visible_score_threshold=0.25, limit=3,
                           device="cpu", fid_weights="f.pth", lpips_weights=("a", "b"),
                           best_worst=1, save_crops=2)
    argv = shlex.split(cfg.command_line())
    assert argv[:2] == ["segan", "evaluate"]
    args = build_parser().parse_args(argv[1:])
    names = [f.name for f in dataclasses.fields(cfg) if f.metadata["option"]]
    assert EvaluationConfig(**{n: getattr(args, n if n != "methods" else "method")
                               for n in names}) == cfg
    # defaults stay off the line, except the options it always shows
    plain = shlex.split(_cfg().command_line())
    assert plain == ["segan", "evaluate", "--data", "data", "--split", "test", "--visible", "gt",
                     "--out", "out", "--method", "segan", "--device", "auto", "--data-format",
                     "auto", "--best-worst", "4"]


def test_the_cli_defaults_are_the_configs():
    args = build_parser().parse_args(["evaluate", "--data", "d", "--out", "o"])
    for name, default in evaluation_defaults(
            ["split", "visible", "visible_segmenter", "visible_score_threshold", "limit",
             "sample", "device", "data_format", "fid_weights", "lpips_weights", "best_worst",
             "save_crops", "cache_dir", "checkpoint"]).items():
        assert getattr(args, name) == default, name


def test_the_cli_refuses_before_loading(tmp_path, capsys):
    rc = main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
               "--visible-segmenter", str(tmp_path)])
    assert rc == 2
    assert "visible_segmenter (--visible-segmenter): is only used with --visible predicted" in (
        capsys.readouterr().err)
    assert not (tmp_path / "o").exists()

