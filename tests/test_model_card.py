"""scripts/model_card.py: the bundled model's card from real evaluations of a tiny bundle (its
numbers are results.json's) and from a real measurement of benchmarks/predict_latency.py
(`--bundle --onnx --json`: the onnxruntime row), the refusal of another model's scores or
timings, and the shipped card against the shipped bundle (a bundle never ships without its card,
the card is its JSON rendered, and its onnxruntime row timed that bundle); the card's
Reproducibility section (the recipe trained again) read again from the rerun's kept
results.json files and within the stated tolerance."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from segan.bundle import package_bundle, verify_bundle
from segan.cli import main as segan_main
from segan.data.atomic import file_sha256

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "model_card.py"
spec = importlib.util.spec_from_file_location("model_card", SCRIPT)
model_card = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_card)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def bundle(compact_tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card_bundle") / "weights"
    assert segan_main(["export-bundle", str(compact_tiny_run), "--out", str(out)]) == 0
    return out / "segan_compact.json"


@pytest.fixture(scope="module")
def latency(bundle, tmp_path_factory) -> Path:
    """benchmarks/predict_latency.py on the tiny bundle, PyTorch and onnxruntime (small and
    few calls: only the record's form matters here)."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime not installed (the onnx extra)")
    sys.path.insert(0, str(ROOT / "benchmarks"))  # predict_latency imports its neighbours
    try:
        bench_spec = importlib.util.spec_from_file_location(
            "predict_latency", ROOT / "benchmarks" / "predict_latency.py")
        bench = importlib.util.module_from_spec(bench_spec)
        bench_spec.loader.exec_module(bench)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path_factory.mktemp("latency") / "latency.json"
    assert bench.main(["--bundle", str(bundle), "--onnx", "--objects", "3", "--size", "96",
                       "--warmup", "0", "--repeats", "2", "--threads", "1", "--no-doc",
                       "--json", str(out), "--ensemble", str(bundle)]) == 0
    # --ensemble: the model with its own o averaged in again, a row of its own
    rows = json.loads(out.read_text())["rows"]
    assert rows["ensemble_predict"]["median_ms"] > 0 and "predict" in rows
    return out


def _evaluate(data: Path, label_run: str, out: Path) -> Path:
    assert segan_main(["evaluate", "--data", str(data), "--out", str(out), "--method", label_run,
                       "--method", "visible_as_full", "--device", "cpu", "--quiet",
                       "--limit", "2"]) == 0
    return out


def _card_without_latency(bundle: Path, run: Path, data: Path, tmp_path: Path
                          ) -> tuple[Path, Path, list[str], dict]:
    """A card of one evaluation ('own': `run` as segan@compact) and no timing: its markdown and
    results paths, the arguments naming them and the bundle, and the results as written."""
    own = _evaluate(data, f"segan@compact={run}", tmp_path / "own")
    out, res = tmp_path / "card.md", tmp_path / "card.json"
    args = ["--bundle", str(bundle), "--out", str(out), "--results", str(res)]
    assert model_card.main([*args, "--eval", f"own={own}", "--command", "x",
                            "--latency-repeats", "0"]) == 0
    return out, res, args, json.loads(res.read_text())


def test_card_numbers_are_the_evaluations(bundle, compact_tiny_run, tiny_data, latency,
                                          tmp_path):
    own = _evaluate(tiny_data, f"segan@compact={compact_tiny_run}", tmp_path / "own")
    # the bundle itself evaluated (its manifest's sha256) is accepted as well
    fp16 = _evaluate(tiny_data, f"segan@compact={bundle}", tmp_path / "fp16")
    out, res = tmp_path / "card.md", tmp_path / "card.json"
    assert model_card.main(["--bundle", str(bundle.parent), "--eval", f"own={own}",
                            "--eval", f"own_fp16={fp16}", "--command", "segan train ...",
                            "--latency-repeats", "1", "--latency", str(latency),
                            "--data-preset", "diverse_large",
                            "--out", str(out), "--results", str(res)]) == 0
    card = json.loads(res.read_text())
    assert card["bundle"]["manifest_sha256"] == file_sha256(bundle)
    text = out.read_text()
    assert text == model_card.render(card)
    # the training data named as given, in the recipe and in the limits
    assert card["data_preset"] == "diverse_large"
    assert "the `diverse_large` preset (`segan generate DIR --preset diverse_large`)" in text
    assert "procedural generator, `diverse_large` preset)" in text
    assert "`diverse` preset" not in text
    # a tiny model of overrides: no config file of configs/ holds its recipe, and the card says so
    assert card["recipe"] is None and "No config file of configs/ holds its recipe" in text
    for ev, folder in zip(card["evaluations"], (own, fp16), strict=True):
        results = json.loads((folder / "results.json").read_text())
        for section, key, label, scale, dec in model_card.METRICS:
            for m in ("segan@compact", "visible_as_full"):
                got = (results["methods"][m].get(section) or {}).get(key)
                assert ev["scores"][m][key] == got, (ev["name"], m, key)
            row = f"| {label} | " + " | ".join(
                model_card._fmt(ev["scores"][m][key], scale, dec)
                for m in ("segan@compact", "visible_as_full")) + " |"
            assert row in text
    assert card["cpu_latency"]["objects"] == 20 and card["cpu_latency"]["median_ms"] > 0
    measured = json.loads(latency.read_text())
    ort = card["onnx_latency"]
    assert ort["onnxruntime"] == measured["rows"]["onnx_predict"]
    assert ort["pytorch"] == measured["rows"]["predict"]
    assert ort["objects"] == 3 and ort["command"] == measured["command"]
    # each evaluation's results.json is kept beside the card, and the card reads back from them
    assert [ev["results"] for ev in card["evaluations"]] == [
        "model_card_evals/own/results.json", "model_card_evals/own_fp16/results.json"]
    assert model_card.check_evaluations(card, res, bundle) == []
    kept = tmp_path / "model_card_evals" / "own" / "results.json"
    doctored = json.loads(kept.read_text())
    doctored["methods"]["segan@compact"]["segmentation"]["full_iou/standard/mean_all"] = 0.99
    kept.write_text(json.dumps(doctored))
    assert model_card.check_evaluations(card, res, bundle) == [
        f"{kept}: its numbers differ from the card's 'own'"]
    assert (f"intra-op threads): median {ort['onnxruntime']['median_ms']} ms, p90 "
            f"{ort['onnxruntime']['p90_ms']} ms over 2 calls") in text


def test_keep_scores_adds_the_onnxruntime_row_only(bundle, compact_tiny_run, tiny_data, latency,
                                                   tmp_path, capsys):
    out, res, args, before = _card_without_latency(bundle, compact_tiny_run, tiny_data,
                                                   tmp_path)
    assert before["onnx_latency"] is None and "onnxruntime path" not in out.read_text()
    assert model_card.main([*args, "--keep-scores", "--latency", str(latency)]) == 0
    after = json.loads(res.read_text())
    assert {k: v for k, v in after.items() if k not in ("onnx_latency", "date")} == \
        {k: v for k, v in before.items() if k not in ("onnx_latency", "date")}
    assert after["onnx_latency"]["manifest_sha256"] == file_sha256(bundle)
    assert out.read_text() == model_card.render(after) and "onnxruntime path" in out.read_text()
    # a measurement of another model is refused, naming the field and the command
    other = tmp_path / "other.json"
    rec = json.loads(latency.read_text())
    rec["model"]["manifest_sha256"] = "0" * 64
    other.write_text(json.dumps(rec))
    assert model_card.main([*args, "--keep-scores", "--latency", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field 'model'" in err[0] and "--bundle --onnx" in err[0]
    assert json.loads(res.read_text()) == after  # nothing written


def test_card_refuses_another_models_scores(bundle, tiny_run, tiny_data, tmp_path, capsys):
    other = _evaluate(tiny_data, f"segan@compact={tiny_run}", tmp_path / "other")
    assert model_card.main(["--bundle", str(bundle), "--eval", f"own={other}", "--command", "x",
                            "--latency-repeats", "0", "--out", str(tmp_path / "c.md"),
                            "--results", str(tmp_path / "c.json")]) == 2
    assert "neither the bundle nor the run" in capsys.readouterr().err
    assert not (tmp_path / "c.md").exists()
    assert model_card.main(["--bundle", str(bundle), "--eval", f"own={tmp_path}",
                            "--command", "x", "--latency-repeats", "0"]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_shipped_card_matches_the_shipped_bundle():
    """A bundle in src/segan/weights ships with docs/model_card_results.json for exactly its
    files, and docs/model_card.md is that JSON rendered; no card without a bundle either."""
    card_json, card_md = ROOT / "docs" / "model_card_results.json", ROOT / "docs" / "model_card.md"
    manifest = package_bundle()
    assert manifest.exists() == card_json.exists() == card_md.exists()
    if not manifest.exists():
        return
    card = json.loads(card_json.read_text())
    assert card["bundle"]["files"] == verify_bundle(manifest)["files"]
    assert card["bundle"]["manifest_sha256"] == file_sha256(manifest)
    assert card_md.read_text() == model_card.render(card)
    # the card names the config file that trained it, found again from the manifest's config
    assert card["recipe"] == model_card.recipe_file(verify_bundle(manifest)["config"])
    assert card["recipe"] is not None, "the shipped model's recipe has no config file in configs/"
    # the card's numbers are those of the evaluations' results.json kept in docs/
    assert model_card.check_evaluations(card, card_json, manifest) == []
    ort = card.get("onnx_latency")
    assert ort and ort["manifest_sha256"] == file_sha256(manifest), (
        "docs/model_card_results.json has no onnxruntime timing of this bundle: `python "
        "benchmarks/predict_latency.py --bundle --onnx --exact-objects --threads 2 --json F`, "
        "then `python scripts/model_card.py --keep-scores --latency F`")


def test_card_reports_the_bundled_segmenters_recall(compact_tiny_run, tiny_visible_run, bundle,
                                                    tiny_data, tmp_path, capsys):
    """An evaluation with predicted S_V brings the segmenter's recall and precision to the
    card, but only when the bundle's own segmenter predicted them."""
    out = tmp_path / "weights"
    assert segan_main(["export-bundle", str(compact_tiny_run), "--visible-segmenter",
                       str(tiny_visible_run), "--out", str(out)]) == 0
    ev = tmp_path / "pred"
    assert segan_main(["evaluate", "--data", str(tiny_data), "--out", str(ev), "--method",
                       f"segan@compact={compact_tiny_run}", "--method", "visible_as_full",
                       "--visible", "predicted", "--visible-segmenter", str(tiny_visible_run),
                       "--visible-score-threshold", "0", "--device", "cpu", "--quiet",
                       "--limit", "2"]) == 0
    md, js = tmp_path / "c.md", tmp_path / "c.json"
    assert model_card.main(["--bundle", str(out), "--eval", f"own_pred={ev}", "--command", "x",
                            "--latency-repeats", "0", "--out", str(md), "--results",
                            str(js)]) == 0
    det = json.loads((ev / "results.json").read_text())["detection"]
    card = json.loads(js.read_text())
    assert card["evaluations"][0]["detection"]["recall"] == det["recall"]
    assert card["bundle"]["visible_segmenter"]["step"] == 2
    text = md.read_text()
    assert f"recall {det['recall'] * 100:.1f}%" in text and "visible-instance segmenter" in text
    assert "the `diverse` preset (`segan generate DIR --preset diverse`)" in text  # the default
    # the same evaluation for a bundle without that segmenter: refused
    assert model_card.main(["--bundle", str(bundle), "--eval", f"own_pred={ev}", "--command",
                            "x", "--latency-repeats", "0", "--out", str(tmp_path / "d.md"),
                            "--results", str(tmp_path / "d.json")]) == 2
    assert "not the bundle's visible segmenter" in capsys.readouterr().err


def test_rerun_section_from_evaluations(bundle, compact_tiny_run, tiny_run, tiny_data, tmp_path,
                                        capsys):
    """--rerun adds a Reproducibility section to a card (--keep-scores keeps everything else):
    its numbers are the rerun's results.json's, kept beside the card and read again; the
    card's own model, or other test images, are refused as a rerun."""
    again = _evaluate(tiny_data, f"segan@again={tiny_run}", tmp_path / "again")
    out, res, args, before = _card_without_latency(bundle, compact_tiny_run, tiny_data,
                                                   tmp_path)
    assert model_card.main([*args, "--keep-scores", "--rerun", f"own={again}",
                            "--rerun-method", "segan@again", "--rerun-command", "train again",
                            "--rerun-note", "on another machine"]) == 0
    card = json.loads(res.read_text())
    assert {k: v for k, v in card.items() if k not in ("reproducibility", "date")} == \
        {k: v for k, v in before.items() if k != "date"}
    sec = card["reproducibility"]
    (ev,) = sec["evaluations"]
    assert ev["results"] == "model_card_evals/rerun/own/results.json"
    kept = tmp_path / ev["results"]
    assert kept.read_bytes() == (again / "results.json").read_bytes()
    results = json.loads(kept.read_text())
    for row, (section, key, *_) in zip(ev["rows"], model_card.METRICS, strict=True):
        got = (results["methods"]["segan@again"].get(section) or {}).get(key)
        assert row["rerun"] == got and row["card"] == before["evaluations"][0]["scores"][
            "segan@compact"][key]
    text = out.read_text()
    assert text == model_card.render(card) and "## Reproducibility" in text
    assert "    train again" in text and "on another machine" in text
    # two 6-step models may differ by more than the tolerance: the check says which rows
    assert model_card.check_reproducibility(card, res) == model_card.outside_tolerance(sec)
    # the card's own model is not a rerun; other test images are not comparable
    same = _evaluate(tiny_data, f"segan@compact={compact_tiny_run}", tmp_path / "same")
    assert model_card.main([*args, "--keep-scores", "--rerun", f"own={same}",
                            "--rerun-command", "x"]) == 2
    assert "not a rerun" in capsys.readouterr().err
    assert segan_main(["evaluate", "--data", str(tiny_data), "--out", str(tmp_path / "one"),
                       "--method", f"segan@again={tiny_run}", "--method", "visible_as_full",
                       "--device", "cpu", "--quiet", "--limit", "1"]) == 0
    assert model_card.main([*args, "--keep-scores", "--rerun", f"own={tmp_path / 'one'}",
                            "--rerun-method", "segan@again", "--rerun-command", "x"]) == 2
    assert "field 'data'" in capsys.readouterr().err
    assert json.loads(res.read_text()) == card  # nothing written


def test_tolerance_check_can_fail():
    """compare_rows/outside_tolerance, the check the shipped card's test relies on: a
    difference of exactly the tolerance is within it, one beyond is reported, in either
    direction, and a missing number is never within."""
    keys = [key for _, key, *_ in model_card.METRICS]
    card = dict.fromkeys(keys, 0.5)
    rows = model_card.compare_rows(card, {k: 0.5 + 0.01 for k in keys}, model_card.TOLERANCE)
    assert all(r["within"] for r in rows)
    off = dict(card, **{keys[0]: 0.5 - 0.0101, keys[2]: None})
    rows = model_card.compare_rows(card, off, model_card.TOLERANCE)
    assert [r["within"] for r in rows] == [False, True, False, True]
    bad = model_card.outside_tolerance({"evaluations": [{"name": "own", "rows": rows}]})
    assert len(bad) == 2 and bad[0].startswith("own: full IoU") and "-1.01 outside ±1.0" in bad[0]


def test_shipped_card_is_reproduced_within_tolerance(tmp_path):
    """Issue 13: the recipe trained again gives the card's numbers within the stated tolerance
    (or, for a recipe trained once so far, the card says that it is not measured yet).
    The card's Reproducibility rows are read again from the rerun's kept results.json files
    (docs/model_card_evals/rerun/) and the card's own kept evaluations; full and invisible IoU
    are within tolerance, and a rerun number moved outside it is caught by the same check.
    Painting L1 and layering are not held to it, only to being stated: painting L1 misses since
    session 29's bundle (three trainings of the recipe: L1 0.051-0.084 on ood), layering on ood
    since session 30's third pass (the three trainings: 81.4-83.2 on ood with two passes, a
    spread wider than the 1.0 tolerance; docs/results.md), and the card names each miss in its
    rows and its summary line. Session 41's rerun of session 38's recipe: layering on Mitsuba
    (-1.08), the only row outside."""
    card_json = ROOT / "docs" / "model_card_results.json"
    if not package_bundle().exists():
        return
    card = json.loads(card_json.read_text())
    sec = card.get("reproducibility")
    if not sec:  # a new recipe, trained once (session 38): the card must say so, not be silent
        text = (ROOT / "docs" / "model_card.md").read_text()
        assert f"## Reproducibility\n\n{model_card.NO_RERUN}\n" in text
        return
    assert sec["tolerance"] == model_card.TOLERANCE
    # the known misses: painting L1 and layering only, each one a row marked outside and
    # named in the card
    known = model_card.check_reproducibility(card, card_json)
    stated = ("l1/masked_mean", "layering_accuracy/mean_images")
    labels = [model_card.METRIC_FORMAT[key][0] for key in stated]
    assert all(any(f": {lab}: rerun " in p for lab in labels) and "outside" in p
               for p in known), known
    misses = [(ev["name"], row["metric"]) for ev in sec["evaluations"] for row in ev["rows"]
              if not row["within"]]
    assert len(known) == len(misses) and all(m in stated for _, m in misses)
    if known:
        assert all(p in model_card.render(card) for p in known)
    # the same rows recomputed here from the two kept results.json files of each split
    card_evals = {ev["name"]: ev for ev in card["evaluations"]}
    for ev in sec["evaluations"]:
        rerun = json.loads((card_json.parent / ev["results"]).read_text())
        mine = json.loads((card_json.parent / card_evals[ev["name"]]["results"]).read_text())
        assert rerun["data"]["annotations_sha256"] == mine["data"]["annotations_sha256"]
        sha = rerun["methods"][ev["method"]]["checkpoint"]["sha256"]
        assert sha not in (card["bundle"]["manifest_sha256"], card["bundle"]["source_sha256"])
        for row, (section, key, *_) in zip(ev["rows"], model_card.METRICS, strict=True):
            c = mine["methods"][card["method"]][section][key]
            r = rerun["methods"][ev["method"]][section][key]
            assert (row["metric"], row["card"], row["rerun"]) == (key, c, r)
            assert row["difference"] == r - c
            assert row["within"] is (abs(r - c) <= model_card.TOLERANCE[key] + 1e-12)
            if key not in stated:
                assert row["within"], (ev["name"], key)
    assert "## Reproducibility" in model_card.render(card)
    # a rerun number outside the tolerance is detected: the card's copy, one file doctored
    # (its full IoU 2 points below the card's), the section written again from it
    copy = tmp_path / "docs" / "model_card_results.json"
    copy.parent.mkdir()
    for ev in card["evaluations"] + sec["evaluations"]:
        dst = copy.parent / ev["results"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((card_json.parent / ev["results"]).read_bytes())
    if sec.get("model"):
        (copy.parent / sec["model"]["manifest"]).write_bytes(
            (card_json.parent / sec["model"]["manifest"]).read_bytes())
    name, label = sec["evaluations"][0]["name"], sec["evaluations"][0]["method"]
    kept = copy.parent / sec["evaluations"][0]["results"]
    doctored = json.loads(kept.read_text())
    key = "full_iou/standard/mean_all"
    doctored["methods"][label]["segmentation"][key] = \
        card_evals[name]["scores"][card["method"]][key] - 0.02
    kept.write_text(json.dumps(doctored))
    assert model_card.check_reproducibility(card, copy) == [
        f"{kept}: its numbers differ from the card's rerun {name!r}"] + known
    reruns = [(ev["name"], (copy.parent / ev["results"]).parent, ev["method"])
              for ev in sec["evaluations"]]
    card["reproducibility"] = model_card.reproducibility(
        card, reruns, sec["command"], sec["note"], sec["model"] and {
            k: v for k, v in sec["model"].items() if k != "manifest"})
    for ev, old in zip(card["reproducibility"]["evaluations"], sec["evaluations"], strict=True):
        ev["results"] = old["results"]
    if sec.get("model"):
        card["reproducibility"]["model"]["manifest"] = sec["model"]["manifest"]
    problems = [p for p in model_card.check_reproducibility(card, copy) if p not in known]
    assert len(problems) == 1 and problems[0].startswith(f"{name}: full IoU") and \
        "-2.00 outside ±1.0" in problems[0]
    n = len(model_card.METRICS) * len(sec["evaluations"])
    text = model_card.render(card)
    assert "**no**" in text and f"{1 + len(known)} of {n} numbers outside tolerance" in text
