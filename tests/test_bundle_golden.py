"""The bundled model (src/segan/weights) on the CPU against its golden outputs: two real images
of `segan generate --preset diverse` with their visible masks, and what the bundle predicted
for them (tests/data/bundle_golden/, written by scripts/bundle_golden.py). Tolerances
(scripts/bundle_golden.py, with what was measured): per object S_F IoU >= 0.99 with the stored
S_F, S_F probabilities within 1e-3, painted RGB within 0.05 uint8 levels on average and 2 at
most where both S_F, the same occlusion pairs and depth layers.

The README's picture of `segan predict` with the bundled model is checked the same way: it must
be what the README's command draws now.

A new bundle has new outputs: then every test here fails with one line that names the command
regenerating them and the picture (`python scripts/bundle_golden.py`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from segan.cli import main as segan_main
from segan.data.coco import decode_mask
from segan.inference import SeganPredictor

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bundle_golden",
                                              ROOT / "scripts" / "bundle_golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)  # type: ignore[union-attr]
NAMES = [r["file_name"] for r in json.loads(
    (golden.GOLDEN / "inputs.json").read_text(encoding="utf-8"))["images"]]


@pytest.fixture(scope="module")
def expected() -> dict:
    exp = golden.read_expected()
    stale = golden.stale_message(exp, golden.bundle_identity())
    if stale:
        pytest.fail(stale, pytrace=False)
    return exp


@pytest.fixture(scope="module")
def predictions(expected) -> dict:
    return dict(golden.predict_all(SeganPredictor.pretrained("cpu")))


def _stored(expected: dict, name: str) -> dict:
    return next(w for w in expected["images"] if w["file_name"] == name)


def test_golden_inputs_are_real_and_small():
    """Two generated views with several objects each; inputs and outputs a few hundred KB."""
    assert len(NAMES) == 2
    for name, image, visible in golden.load_inputs():
        assert image.dtype == np.uint8 and len(visible) >= 10, name
    total = sum(p.stat().st_size for p in golden.GOLDEN.rglob("*") if p.is_file())
    assert total < 400_000


@pytest.mark.parametrize("name", NAMES)
def test_bundle_predicts_its_golden_outputs(name, expected, predictions):
    diff = golden.compare(predictions[name], _stored(expected, name))
    assert not golden.failures(diff), golden.failures(diff)


def test_tolerances_catch_a_changed_prediction(expected, predictions):
    name = NAMES[0]
    want = _stored(expected, name)

    def fails(change) -> list[str]:
        scene = predictions[name]
        changed = type(scene)(**{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                 for k, v in vars(scene).items()})
        change(changed)
        return golden.failures(golden.compare(changed, want))

    k = int(np.argmax(predictions[name].full_masks.sum((1, 2))))  # the largest object

    def paint(s):
        s.painted[k, ..., :3] = np.clip(s.painted[k, ..., :3].astype(int) + 3, 0, 255)

    def grow(s):  # one more row and column of pixels
        s.full_masks[k, 1:] |= s.full_masks[k, :-1]
        s.full_masks[k, :, 1:] |= s.full_masks[k, :, :-1]

    def prob(s):
        s.full_probs[k] *= 0.99

    def pairs(s):
        s.occlusion_pairs = s.occlusion_pairs[1:]

    for change, what in ((paint, "painted RGB"), (grow, "S_F IoU"), (prob, "probabilities"),
                         (pairs, "occlusion pairs")):
        assert any(what in line for line in fails(change)), what


def test_segan_predict_without_checkpoint_gives_the_golden_masks(expected, tmp_path):
    """The user's command on a golden image and its masks file: the bundled model's S_F."""
    name = NAMES[1]
    out = tmp_path / "pred"
    assert segan_main(["predict", str(golden.GOLDEN / name), "--masks",
                       str(golden.GOLDEN / "inputs.json"), "--out", str(out), "--device", "cpu",
                       "--quiet"]) == 0
    pred = json.loads((out / "predictions.json").read_text())
    want = _stored(expected, name)
    got = [a["segmentation"] for a in pred["annotations"]]
    assert len(got) == want["objects"]
    for g, w in zip(got, want["full_masks"], strict=True):
        a, b = decode_mask(g, *w["size"]), decode_mask(w, *w["size"])
        assert (a & b).sum() / (a | b).sum() >= golden.FULL_IOU_MIN


def test_outputs_of_another_bundle_fail_in_one_line_naming_the_command(tmp_path, capsys):
    copy = shutil.copytree(golden.GOLDEN, tmp_path / "golden")
    exp = json.loads((copy / "expected.json").read_text())
    # as after a new bundle was installed: other shard and manifest sha256s
    exp["bundle"]["files"][0]["sha256"] = exp["bundle"]["manifest_sha256"] = "0" * 64
    (copy / "expected.json").write_text(json.dumps(exp))
    msg = golden.stale_message(exp, golden.bundle_identity())
    assert msg and "\n" not in msg and "`python scripts/bundle_golden.py`" in msg
    assert "manifest sha256 0000000000000000..." in msg
    exp["bundle"]["manifest_sha256"] = golden.bundle_identity()["manifest_sha256"]
    assert "other weight files" in golden.stale_message(exp, golden.bundle_identity())
    assert golden.main(["--check", "--golden", str(copy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "regenerate the golden outputs" in err[0]


def test_readme_picture_is_what_the_readme_command_draws(expected):
    """README.md shows `segan predict` with the bundled model on docs/images/predict_kitchen.png:
    its picture is the overlay.png that this command writes now (scripts/bundle_golden.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (".venv/bin/segan predict docs/images/predict_kitchen.png \\\n"
            "    --masks docs/images/predict_kitchen_masks.json --out out/predict") in readme
    assert "](docs/images/predict_kitchen_overlay.png)" in readme
    assert golden.README_PICTURE.stat().st_size < 300_000
    assert golden.picture_diff() <= golden.PICTURE_TOL


def test_regenerated_outputs_belong_to_the_new_bundle(compact_tiny_run, tmp_path):
    """What `python scripts/bundle_golden.py` does after a new bundle of the same family (here
    a tiny run's, into a copy of the golden folder): the stored outputs then name that bundle and
    its predictions match them."""
    bundle = tmp_path / "bundle"
    assert segan_main(["export-bundle", str(compact_tiny_run), "--out", str(bundle)]) == 0
    installed = golden.bundle_identity(bundle / "segan_compact.json")
    copy = shutil.copytree(golden.GOLDEN, tmp_path / "golden")
    assert golden.stale_message(golden.read_expected(copy), installed)
    predictor = SeganPredictor.pretrained("cpu", bundle=bundle)
    golden.write_expected(predictor, copy)
    exp = golden.read_expected(copy)
    assert golden.stale_message(exp, installed) is None
    assert exp["bundle"]["manifest_sha256"] != golden.read_expected()["bundle"]["manifest_sha256"]
    for name, scene in golden.predict_all(predictor, copy):
        assert not golden.failures(golden.compare(scene, _stored(exp, name), copy)), name
