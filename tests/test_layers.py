"""The package's direction of use: models -> transforms -> inference -> eval -> cli.

The predictor is the core: importing it (or what it is built from) loads no module of the
training loop (`segan.train`) or of the evaluation (`segan.eval`); evaluation builds on it.
Each import runs in a fresh interpreter, so modules other tests loaded do not count.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _segan_modules(module: str, then: str = "") -> list[str]:
    code = (f"import json, sys, {module}; {then + '; ' if then else ''}"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'segan')))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["segan.inference", "segan.transforms", "segan.checkpoint",
                                    "segan.device",
                                    "segan.layering", "segan.config"])
def test_the_predictor_side_imports_no_training_or_evaluation(module):
    loaded = _segan_modules(module)
    assert module in loaded
    above = [m for m in loaded if m.startswith(("segan.train", "segan.eval", "segan.cli"))]
    assert not above, f"import {module} loads {above}"


def test_evaluation_builds_on_the_predictor():
    """The evaluation's SeGAN method (segan.eval.builtin_methods) runs the predictor's forward."""
    loaded = _segan_modules("segan.eval.evaluate", "segan.eval.methods.get_method('segan')")
    assert {"segan.inference", "segan.eval.builtin_methods"} <= set(loaded)


def test_reading_a_config_loads_no_training_module():
    """A checkpoint's config is read by the predictor: validating it must not import the
    training package (the task name is checked where a task is built)."""
    loaded = _segan_modules("segan.config", "segan.config.TrainConfig.from_dict("
                            "segan.config.TrainConfig().to_dict())")
    assert not [m for m in loaded if m.startswith(("segan.train", "segan.eval"))], loaded
