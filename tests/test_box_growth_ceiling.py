"""scripts/box_growth_ceiling.py: the share of S_F and S_I inside S_V's grown box, known answers."""

import importlib.util
import math
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "box_growth_ceiling.py"
spec = importlib.util.spec_from_file_location("box_growth_ceiling", SCRIPT)
ceiling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ceiling)


def test_shares_inside_known_answers():
    full = np.zeros((20, 20), bool)
    full[5:10, 2:12] = True  # 5 x 10 = 50 pixels
    visible = full.copy()
    visible[:, 7:] = False  # S_V: columns 2..6 (box x 2, w 5); S_I: columns 7..11 (25 px)
    # r = 0: the box is S_V's: S_F 25/50 inside, S_I none
    assert ceiling.shares_inside(full, visible, 0.0) == (0.5, 0.0)
    # r = 0.4: 2 columns more on each side, the box [0, 9): S_F columns 2..8 (35 px), S_I
    # columns 7 and 8 (10 px)
    f, i = ceiling.shares_inside(full, visible, 0.4)
    assert (f, i) == (35 / 50, 10 / 25)
    # r = 1: columns 0..11 hold everything
    assert ceiling.shares_inside(full, visible, 1.0) == (1.0, 1.0)
    # an unoccluded object has no S_I share
    assert math.isnan(ceiling.shares_inside(full, full, 0.2)[1])
