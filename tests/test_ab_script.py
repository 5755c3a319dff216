"""scripts/ab_segan.sh end to end on the CPU (SMOKE=1: tiny preset, a few steps per arm)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ab_segan_trains_and_evaluates_both_arms(tmp_path):
    segan = f"{sys.executable} -m segan.cli"
    env = dict(os.environ, SMOKE="1", SEGAN=segan,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "ab"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "ab_segan.sh"), str(out), "",
                           "model.mask_refine=true"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "== A: (config as is)" in proc.stdout and "== B: model.mask_refine=true" in proc.stdout
    results = {a: json.loads((out / f"eval_{a}" / "results.json").read_text()) for a in "AB"}
    assert results["A"]["model_hparams"]["mask_refine"] is False
    assert results["B"]["model_hparams"]["mask_refine"] is True
    # the same test images for both arms
    assert results["A"]["data"] == results["B"]["data"]
