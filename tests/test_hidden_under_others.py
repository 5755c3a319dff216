"""scripts/hidden_under_others.py: the occluder gate's premise counted, a known answer."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "hidden_under_others.py"
spec = importlib.util.spec_from_file_location("hidden_under_others", SCRIPT)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # type: ignore[union-attr]


def test_known_answer():
    """A 1 x 6 row: A is columns 0-3 in full, visible 0-1; B visible on 2 (in front of A);
    column 3 of A is hidden by nothing with a mask. 2 hidden pixels, 1 under B."""
    full = np.zeros((2, 1, 6), bool)
    visible = np.zeros((2, 1, 6), bool)
    full[0, 0, 0:4] = True
    visible[0, 0, 0:2] = True
    full[1, 0, 2] = visible[1, 0, 2] = True
    assert mod.hidden_under_others(full, visible) == (2, 1)


def test_on_a_generated_dataset(tiny_data, capsys):
    assert mod.main([str(tiny_data)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tiny_data} (test): ") and line.endswith("%)")
