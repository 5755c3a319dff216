"""scripts/subset_dataset.py: a split cut to `segan evaluate --sample N`'s images, with only the
files they name (a test set small enough to carry to the GPU machine)."""

import json
import subprocess
import sys
from pathlib import Path

from segan.cli import main as segan

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "subset_dataset.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300)


def scores(out: Path) -> tuple[dict, int, int]:
    r = json.loads((out / "results.json").read_text())
    return ({m: {k: v for k, v in d.items() if k not in ("seconds", "checkpoint")}
             for m, d in r["methods"].items()}, r["num_images"], r["num_objects"])


def test_the_subset_scores_as_the_sample_of_the_whole(tiny_data, tiny_run, tiny_cache_dir,
                                                      tmp_path):
    """The training split's 4 images cut to 2 (the tiny test split has only 2)."""
    sub = tmp_path / "sub"
    whole = json.loads((tiny_data / "annotations" / "train.json").read_text())
    assert len(whole["images"]) > 2
    proc = run(str(tiny_data), str(sub), "--split", "train", "--sample", "2")
    assert proc.returncode == 0, proc.stderr
    assert "2 images" in proc.stdout
    ann = json.loads((sub / "annotations" / "train.json").read_text())
    assert len(ann["images"]) == 2 and {a["image_id"] for a in ann["annotations"]} == {
        im["id"] for im in ann["images"]}
    assert ann["categories"] == whole["categories"]
    # only the picked images' files: one image each, and their objects' appearance files
    assert len(list((sub / "images").rglob("*.png"))) == 2
    assert len(list((sub / "appearance").rglob("*.png"))) == len(ann["annotations"])
    assert not (sub / "annotations" / "test.json").exists()
    evals = {}
    for name, data, extra in (("whole", tiny_data, ["--sample", "2"]), ("sub", sub, [])):
        evals[name] = tmp_path / f"ev_{name}"
        assert segan(["evaluate", "--checkpoint", str(tiny_run), "--data", str(data),
                      "--split", "train", "--out", str(evals[name]), "--method", "segan",
                      "--method", "visible_as_full", "--device", "cpu", "--quiet",
                      "--best-worst", "0", "--cache-dir", str(tiny_cache_dir), *extra]) == 0
    assert scores(evals["sub"]) == scores(evals["whole"])
    assert scores(evals["sub"])[1:] == (2, len(ann["annotations"]))
    # an existing folder is refused, and nothing in it changes
    proc = run(str(tiny_data), str(sub), "--sample", "2")
    assert proc.returncode == 2 and "exists" in proc.stderr


def test_a_path_leading_out_of_the_dataset_is_refused(tiny_data, tmp_path):
    bad = tmp_path / "bad"
    for folder in ("annotations", "images"):
        (bad / folder).mkdir(parents=True)
    ann = json.loads((tiny_data / "annotations" / "test.json").read_text())
    ann["images"][0]["file_name"] = "../../secret.png"
    (bad / "annotations" / "test.json").write_text(json.dumps(ann))
    proc = run(str(bad), str(tmp_path / "out"), "--sample", str(len(ann["images"])))
    assert proc.returncode == 2
    assert "file_name" in proc.stderr and "../../secret.png" in proc.stderr
    assert not (tmp_path / "out").exists()
