"""scripts/box_pass_oracle.py: its per-object measures (known answers) and a run of the
bundled model (three box passes) on a generated dataset."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("box_pass_oracle",
                                              ROOT / "scripts" / "box_pass_oracle.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # type: ignore[union-attr]


def test_object_rows_known_answers():
    """Object 0: one pass predicts columns 0-3, the truth is 2-5 -> IoU 2/6; all passes predict
    0-5 -> IoU 4/6; their predicted hidden pixels (outside S_V = columns 0-1) at 0.6, 0.8, 0.9
    and 0.7 -> confidence 0.75; S_V lies outside the truth's S_F -> occlusion rate 1. Object 1:
    all empty -> IoU 1, confidence 0, rate 0."""
    first = np.zeros((2, 1, 6))
    first[0, 0, :2] = 1.0
    first[0, 0, 2:4] = [0.6, 0.8]
    first[0, 0, 4] = 0.4  # under the threshold: neither predicted nor counted
    last = first.copy()
    last[0, 0, 4:6] = [0.9, 0.7]
    visible = np.zeros((2, 1, 6), bool)
    visible[0, 0, :2] = True
    gt = np.zeros((2, 1, 6), bool)
    gt[0, 0, 2:6] = True
    assert np.allclose(mod.hidden_confidence(first, visible), [0.7, 0.0])
    rows = mod.object_rows(first, last, gt, visible)
    assert np.allclose(rows, [[1.0, 2 / 6, 4 / 6, 0.75], [0.0, 1.0, 1.0, 0.0]])


def test_amodal_boxes_known_answer():
    """A 20 x 10 image in a 10 x 10 frame (x halves): S_V's frame box (1, 2, 2, 4); S_F spans
    columns 2-9 and rows 2-5 of the original -> (1, 2, 5, 6) in the frame; their union
    (1, 2, 5, 6) grown by 0.5 of its 4 x 4 per side -> (0, 0, 7, 8), clipped at 0."""
    full = np.zeros((1, 10, 20), bool)
    full[0, 2:6, 2:10] = True
    boxes = mod.amodal_boxes(torch.tensor([[1.0, 2.0, 2.0, 4.0]]), full,
                             torch.tensor([[3.0]]), 10, 0.5)
    assert torch.allclose(boxes, torch.tensor([[3.0, 0.0, 0.0, 7.0, 8.0]]))


def test_on_a_generated_dataset(tiny_data, capsys):
    assert mod.main(["--checkpoint", str(ROOT / "src" / "segan" / "weights"),
                     "--data", str(tiny_data), "--split", "test", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "changed by passes 2-3" in out
    # after the header and its rule, up to the boxes' table
    choices = out.split("| choice |")[1].split("| boxes |")[0].splitlines()[2:]
    table = {cells[0]: float(cells[1]) for cells in
             (line.strip("| ").split(" | ") for line in choices if line.startswith("| "))}
    oracle = table["oracle (the better per object)"]
    assert oracle >= max(table["1 pass"], table["3 passes"])
    assert len(table) == 4 + len(mod.CONFIDENCES)
    assert all(v <= oracle + 1e-9 for v in table.values())
    boxes = out.split("| boxes |")[1].splitlines()[2:]
    rows = {cells[0]: cells[1:] for cells in
            (line.strip("| ").split(" | ") for line in boxes if line.startswith("| "))}
    assert list(rows) == ["S_V's box, 1 pass", "S_V's box, 3 passes",
                          "the true amodal box, 1 pass"]
    assert float(rows["S_V's box, 1 pass"][0]) == table["1 pass"]
    assert float(rows["S_V's box, 3 passes"][0]) == table["3 passes"]
    assert 0 <= float(rows["the true amodal box, 1 pass"][0]) <= 100
