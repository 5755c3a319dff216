"""scripts/hidden_by_occlusion.py: its counts on a known answer, its table, and a run."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "hidden_by_occlusion.py"
spec = importlib.util.spec_from_file_location("hidden_by_occlusion", SCRIPT)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # type: ignore[union-attr]


def _row() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1 x 10 row: A is columns 0-7 in full, visible 0-1 (S_I: columns 2-7, 6 of its 8
    pixels); B is columns 2-4, all visible, in front of A. The prediction gives A columns 0-4."""
    full = np.zeros((2, 1, 10), bool)
    visible = np.zeros((2, 1, 10), bool)
    full[0, 0, 0:8] = visible[0, 0, 0:2] = True
    full[1, 0, 2:5] = visible[1, 0, 2:5] = True
    pred = visible.copy()
    pred[0, 0, 0:5] = True
    return pred, full, visible


def test_hidden_counts_known_answer():
    pred, full, visible = _row()
    (rec,) = mod.hidden_counts(pred, full, visible, visible, (0.2, 0.6))  # B hides nothing
    # A's box is columns 0-1: grown by 0.2 x 2 px it reaches column 2 (ceil(2.4) = 3), by
    # 0.6 x 2 columns 2-3 (ceil(3.2) = 4); the true S_I under B's S_V: columns 2-4
    assert rec == {"hidden": 0.75, "true": 6, "pred": 3, "hit": 3, "gate": 3,
                   "box0.2": 1, "box0.6": 2}
    lines = mod.table([rec], (0.2, 0.6)).splitlines()
    assert lines[-1] == "| 50%-100% | 1 | 100.0 | 50.0 | 0.50 | 50.0 | 16.7 / 33.3 |"
    assert lines[2].startswith("| 0%-25% | 0 |")


def test_on_a_generated_dataset(tiny_run, tiny_data, capsys):
    assert mod.main(["--checkpoint", str(tiny_run), "--data", str(tiny_data),
                     "--split", "test", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "hidden objects in 2 images" in out
    assert len([line for line in out.splitlines() if line.startswith("|")]) == 2 + len(mod.BINS)
