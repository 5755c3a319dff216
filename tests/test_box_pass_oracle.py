"""scripts/box_pass_oracle.py: its per-object measures (known answers) and a run of the
bundled model (three box passes) on a generated dataset."""

import importlib.util
from pathlib import Path

import numpy as np

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


def test_on_a_generated_dataset(tiny_data, capsys):
    assert mod.main(["--checkpoint", str(ROOT / "src" / "segan" / "weights"),
                     "--data", str(tiny_data), "--split", "test", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "changed by passes 2-3" in out
    choices = out.split("| choice |")[1].splitlines()[2:]  # after the header and its rule
    table = {cells[0]: float(cells[1]) for cells in
             (line.strip("| ").split(" | ") for line in choices if line.startswith("| "))}
    oracle = table["oracle (the better per object)"]
    assert oracle >= max(table["1 pass"], table["3 passes"])
    assert len(table) == 4 + len(mod.CONFIDENCES)
    assert all(v <= oracle + 1e-9 for v in table.values())
