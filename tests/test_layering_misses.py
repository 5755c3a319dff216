"""scripts/layering_misses.py: the overlaps it buckets by (`occlusion_overlaps`), a known
answer, and a run."""

import importlib.util
from pathlib import Path

import numpy as np

from segan.eval.metrics import occlusion_overlaps

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "layering_misses.py"
spec = importlib.util.spec_from_file_location("layering_misses", SCRIPT)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # type: ignore[union-attr]


def test_occlusion_overlaps_known_answer():
    """A 1 x 8 row: A is columns 0-5 in full, visible 0-1; B visible on 2-4, in front of A.
    S_I of A = columns 2-5: 3 of its 4 pixels under B's 3, so IoU(S_V_B, S_I_A) = 3/4."""
    full = np.zeros((2, 1, 8), bool)
    visible = np.zeros((2, 1, 8), bool)
    full[0, 0, 0:6] = True
    visible[0, 0, 0:2] = True
    full[1, 0, 2:5] = visible[1, 0, 2:5] = True
    iou, inter = occlusion_overlaps(visible, full)
    assert inter[1, 0] == 3 and inter[0, 1] == 0 and inter[0, 0] == 0
    assert iou[1, 0] == 0.75 and iou[0, 1] == 0.0


def test_on_a_generated_dataset(tiny_run, tiny_data, capsys):
    assert mod.main(["--checkpoint", str(tiny_run), "--data", str(tiny_data),
                     "--split", "test", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "ground-truth pairs (5% rule)" in out
    rows = [line for line in out.splitlines() if line.startswith("| 0.")]
    assert len(rows) == len(mod.GT_IOU_EDGES) - 1 + len(mod.S_I_THRESHOLDS)
