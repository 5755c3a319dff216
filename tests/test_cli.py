"""The command line's argument checks and the presets."""

from __future__ import annotations

import pytest

from segan.cli import build_parser, main
from segan.data.atomic import remove_stale_temporaries, write_bytes_atomic
from segan.data.presets import PRESETS, GenerateConfig, make_config


def test_dyce_preset_matches_the_paper():
    cfg = PRESETS["dyce"]
    kinds = [s.kind for s in cfg.scenes]
    assert len(cfg.scenes) == 11
    assert kinds.count("living_room") == 5 and kinds.count("kitchen") == 6
    test = [s for s in cfg.scenes if s.split == "test"]
    assert sorted(s.kind for s in test) == ["kitchen", "kitchen", "living_room", "living_room"]
    assert (cfg.views_per_scene, cfg.width, cfg.height, cfg.n_objects) == (500, 500, 500, 60)


def test_config_round_trip_and_overrides():
    cfg = make_config("dyce", seed=3, views_per_scene=7, n_scenes=2, size=64)
    assert GenerateConfig.from_dict(cfg.to_dict()) == cfg
    assert (cfg.seed, cfg.views_per_scene, len(cfg.scenes), cfg.width) == (3, 7, 2, 64)
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ValueError, match="--scenes"):
        make_config("tiny", n_scenes=99)


def test_parser_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "x", "--workers", "0"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "x", "--renderer", "blender"])


def test_cli_reports_errors_cleanly(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "o"), "--preset", "tiny", "--scenes", "9"]) == 2
    assert "--scenes must be" in capsys.readouterr().err


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "f.bin"
    write_bytes_atomic(target, b"abc")
    assert target.read_bytes() == b"abc"
    (tmp_path / "a" / "g.png.tmp-123").write_bytes(b"half")
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["f.bin"]
