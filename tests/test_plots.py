"""Loss-curve plotting from a run's stats.jsonl."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from segan.cli import main
from segan.train.plots import read_stats


def test_plot_losses_writes_a_panel_per_loss(tmp_path):
    rows = [{"step": s, "stage": 1 if s < 20 else 2, "loss/segm": 3.0 - 0.1 * s,
             "loss/l1": 0.5 / (s + 1), "loss/total": 1.0} for s in range(1, 40)]
    (tmp_path / "stats.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["plot-losses", str(tmp_path)]) == 0
    with Image.open(tmp_path / "losses.png") as im:
        assert im.width > 2 * im.height  # two panels side by side


def test_read_stats_names_the_bad_line(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 1}\n{"step": 2\n')
    with pytest.raises(ValueError, match="line 2"):
        read_stats(path)
