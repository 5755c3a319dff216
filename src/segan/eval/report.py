"""results.md from an evaluation's results dict: the paper's Tables 1, 2 and 5, side by side.

Every method evaluated in the run gets a column, and the paper's own SeGAN numbers (ground-truth
S_V) sit in a last column marked "paper (DYCE, different data)": they come from the authors'
DYCE data, not this dataset, so they are a reference point, not a like-for-like comparison.
IoUs and layering accuracy are shown in percent (the JSON keeps fractions).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from segan.data.atomic import write_bytes_atomic

from .config import RESULTS_FORMAT
from .metrics import OCCLUSION_BINS, SEGMENTATION_CONVENTIONS
from .perceptual import report_notes as perceptual_notes
from .perceptual import report_rows as perceptual_rows

PAPER_COLUMN = "paper (DYCE, different data)"
# SeGAN with ground-truth S_V. Fractions, as in results.json. Keys name our metric keys; the
# conventions are our reading of the paper (segan.eval.metrics docstring, PAPER_NOTES).
PAPER_NUMBERS: dict[str, Any] = {
    "source": PAPER_COLUMN,
    "method": "SeGAN, ground-truth S_V (Tables 1, 2; layering from the issue text)",
    "segmentation": {
        "full_iou/standard/mean_all": 0.7571,
        "visible_iou/modal/mean_all": 0.6805,
        "invisible_iou/svsi/mean_all": 0.2326,
    },
    "painting": {"l1/masked_mean": 0.026, "l2/masked_mse": 0.008},
    "layering": {"layering_accuracy/mean_images": 0.840},
}

_CONVENTION_LABEL = {
    "full_iou/standard": "full IoU (standard)",
    "visible_iou/modal": "visible IoU (modal)",
    "visible_iou/svsi": "visible IoU (svsi)",
    "invisible_iou/justamodal": "invisible IoU (justamodal)",
    "invisible_iou/svsi": "invisible IoU (svsi)",
}
_AVERAGING = (
    ("mean_all", "mean over instances"),
    ("pooled_all", "pooled"),
    ("mean_occluded", "mean, occluded only"),
    ("pooled_occluded", "pooled, occluded only"),
)
_PAINTING = (
    ("l1/masked_mean", "L1 (mean over S_F pixels)", 3),
    ("l2/masked_mse", "L2 (MSE over S_F pixels)", 4),
    ("psnr/masked_db", "PSNR (dB, over S_F pixels)", 2),
    ("ssim/bbox_crop", "SSIM (object's box)", 3),
)
_NA = "n/a"


def _fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _count(n: int | str, noun: str) -> str:
    """"1 object", "2 objects" ("?" for a count that differs between methods: plural)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_report(results: dict[str, Any]) -> str:
    """The Markdown text of results.md."""
    methods = list(results["methods"])
    paper = results.get("paper") or PAPER_NUMBERS
    header = [*methods, f"**{PAPER_COLUMN}**"]
    ckpt = results["checkpoint"]
    data = results["data"]
    first = next((results["methods"][m]["segmentation"] for m in methods
                  if results["methods"][m].get("segmentation")), None)
    occluded = "" if first is None else f", {int(first['count/occluded'])} occluded"
    lines = [
        f"# Evaluation: split `{data['split']}`, S_V = {results['visible']}",
        "",
        "Produced by:",
        "",
        "```",
        results.get("command") or "(library call)",
        "```",
        "",
        f"- checkpoint: `{ckpt['path']}` ({ckpt['format']}, step {ckpt['step']}, sha256 "
        f"{ckpt['sha256'][:12]})",
        *[f"- {m}: `{c['path']}` ({c['format']}, step {c['step']}, sha256 {c['sha256'][:12]})"
          for m, c in ((m, results["methods"][m].get("checkpoint")) for m in methods)
          if c and c["path"] != ckpt["path"]],
        *[f"- {m}: {note}" for m in methods for note in results["methods"][m].get("notes", [])],
        f"- data: `{data['annotations']}` (sha256 {data['annotations_sha256'][:12]}): "
        f"{_count(results['num_images'], 'image')}, "
        f"{_count(results['num_objects'], 'object')}{occluded}",
        *([f"- converted from `{data['source']}` (segan.data.formats; its conversion.json says "
             "what the source format lacks)"] if data.get("source") not in (None, data["path"])
          else []),
        *_visible_source_lines(results),
        f"- device {results['device']}, {results['precision']}, {results['seconds']} s",
        "- the last column is the paper's SeGAN with ground-truth S_V, on the authors' DYCE: "
        "**different data**, a reference point only",
        "",
        "## Table 1: segmentation (IoU, %)",
        "",
        "Predicted S_F is thresholded at 0.5 in the original image frame. Conventions "
        "(`segan.eval.metrics`): standard = IoU(pred, S_F); modal = IoU(pred, S_V); visible svsi "
        "= |pred ∩ S_V| / |S_V|; justamodal = IoU(pred \\ S_V, S_I); invisible svsi = "
        "|pred ∩ S_I| / |S_I| (0 for an object without S_I). Pooled = summed intersections / "
        "summed unions.",
        "",
        _row(["IoU", "averaging", *header]),
        _row(["---"] * (len(header) + 2)),
    ]
    for conv in SEGMENTATION_CONVENTIONS:
        for key, label in _AVERAGING:
            cells = [_CONVENTION_LABEL[conv], label]
            cells += [_NA if results["methods"][m].get("segmentation") is None else
                      _fmt(results["methods"][m]["segmentation"].get(f"{conv}/{key}"), 100)
                      for m in methods]
            cells.append(_fmt(paper["segmentation"].get(f"{conv}/{key}"), 100))
            lines.append(_row(cells))

    seg_notes = [f"{m}: {results['methods'][m]['segmentation_note']}" for m in methods
                 if results["methods"][m].get("segmentation_note")]
    if seg_notes:
        lines += ["", *(f"- {n}" for n in seg_notes)]
    lines += _by_occlusion_lines(results, methods)
    lines += _by_category_lines(results, methods)

    lines += [
        "",
        "## Table 2: painting (RGB in [0, 1], over the ground-truth S_F pixels of each box)",
        "",
        _row(["error", *header]),
        _row(["---"] * (len(header) + 1)),
    ]
    for key, label, digits in _PAINTING:
        cells = [label]
        for m in methods:
            p = results["methods"][m]["painting"]
            cells.append(_NA if p is None else _fmt(p.get(key), 1, digits))
        cells.append(_fmt(paper["painting"].get(key), 1, digits))
        lines.append(_row(cells))
    lines += [_row(cells) for cells in perceptual_rows(results, methods, _NA)]  # FID, LPIPS
    counts = []
    for m in methods:
        p = results["methods"][m]["painting"]
        missed = f", missed {int(p['count/missed'])}" if p and p.get("count/missed") else ""
        counts.append(_NA if p is None else
                      f"{int(p['count'])} (skipped {int(p['count/skipped'])}{missed})")
    lines.append(_row(["objects", *counts, "–"]))
    notes = [f"{m}: {results['methods'][m]['painting_note']}" for m in methods
             if results["methods"][m].get("painting_note")]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    lines += perceptual_notes(results)

    lines += [
        "",
        "## Table 5: depth layering (%, mean over images with occlusion pairs)",
        "",
        "Predicted pairs: q occludes p when IoU(S_V of q, predicted S_I of p) > 5% (the "
        "paper's rule). Ground truth, two readings: **any overlap** = the dataset's occlusion "
        "pairs (an occluder hides at least one pixel; the paper's \"occlusion relationships in "
        "the data\"), which even perfect masks cannot all recover; **5% rule** = the same rule "
        "on the ground-truth S_V and S_F, whose ceiling is 100%.",
        "",
        _row(["metric", *header]),
        _row(["---"] * (len(header) + 1)),
    ]
    key = "layering_accuracy/mean_images"
    for field, gt, paper_value in (("layering", "any overlap", paper["layering"].get(key)),
                                   ("layering_gt_5pct", "5% rule", None)):
        cells = [f"layering accuracy (GT: {gt})"]
        cells += [_NA if results["methods"][m].get(field) is None else
                  _fmt(results["methods"][m][field].get(key), 100) for m in methods]
        cells.append(_fmt(paper_value, 100, 1))
        lines.append(_row(cells))
        cells = [f"images (skipped: no pairs), GT: {gt}"]
        for m in methods:
            lay = results["methods"][m].get(field)
            cells.append(_NA if lay is None else
                         f"{int(lay['count/images'])} ({int(lay['count/skipped_images'])})")
        lines.append(_row([*cells, "–"]))
    notes = [f"{m}: {results['methods'][m]['layering_note']}" for m in methods
             if results["methods"][m].get("layering_note")]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]

    lines += _best_worst_lines(results)
    figures = results.get("figures") or {}
    if figures:
        cols = ", ".join(results.get("figure_columns", []))
        lines += ["", "## Examples", "", f"Columns: {cols} (all over the object's box).", ""]
        for m, name in figures.items():
            lines += [f"{m}:", "", f"![{m}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


_BY_OCCLUSION = (("full_iou/standard", "full IoU (standard)"),
                 ("invisible_iou/justamodal", "invisible IoU (justamodal)"),
                 ("invisible_iou/svsi", "invisible IoU (svsi)"))


def _by_occlusion_lines(results: dict[str, Any], methods: list[str]) -> list[str]:
    """Table 1 per occlusion-rate bin (mean over the bin's instances), one row per (bin,
    metric); [] when no method has the breakdown (results written before it existed)."""
    by = {m: results["methods"][m].get("segmentation_by_occlusion") for m in methods}
    if not any(by.values()):
        return []
    lines = ["", "### Table 1 by occlusion rate (IoU %, mean over the bin's instances)", "",
             "Occlusion rate = |S_I| / |S_F| of the ground truth; bins 0% (unoccluded), then "
             "(lo, hi].", "", _row(["occlusion rate", "metric", *methods]),
             _row(["---"] * (len(methods) + 2))]
    for label, _, _ in OCCLUSION_BINS:
        counts = {int(b[label]["count"]) for b in by.values() if b}
        count = counts.pop() if len(counts) == 1 else "?"
        for conv, name in _BY_OCCLUSION:
            cells = [f"{label} ({_count(count, 'object')})", name]
            cells += [_NA if by[m] is None else _fmt(by[m][label].get(f"{conv}/mean"), 100)
                      for m in methods]
            lines.append(_row(cells))
    return lines


_BY_CATEGORY = (("full_iou/standard/mean", "full IoU (standard)"),
                ("invisible_iou/justamodal/mean_occluded",
                 "invisible IoU (justamodal, occluded only)"))


def _by_category_lines(results: dict[str, Any], methods: list[str]) -> list[str]:
    """Table 1 per object category (means over its instances), most instances first; [] when
    no method has the breakdown or the objects have one category only."""
    by = {m: results["methods"][m].get("segmentation_by_category") for m in methods}
    first = next((b for b in by.values() if b), None)
    if first is None or len(first) < 2:
        return []
    lines = ["", "### Table 1 by category (IoU %, mean over the category's instances)", "",
             _row(["category", "metric", *methods]), _row(["---"] * (len(methods) + 2))]
    for name, row in first.items():
        label = (f"{name} ({_count(int(row['count']), 'object')}, "
                 f"{int(row['count/occluded'])} occluded)")
        for key, metric in _BY_CATEGORY:
            cells = [label, metric]
            cells += [_NA if not by[m] or name not in by[m] else _fmt(by[m][name].get(key), 100)
                      for m in methods]
            lines.append(_row(cells))
    return lines


def _best_worst_lines(results: dict[str, Any]) -> list[str]:
    """The best/worst figures: which objects, with their full IoU and occlusion rate."""
    figures = results.get("figures_best_worst") or {}
    if not figures:
        return []
    cols = ", ".join(results.get("figure_columns", []))
    lines = ["", "## Best and worst occluded objects by full IoU", "",
             f"Columns: {cols} (over the object's box). The best rows first (best at the "
             "top), a red band, then the worst (worst at the top).", ""]
    for m, fig in figures.items():
        def said(picks: list[dict]) -> str:
            return "; ".join(f"image {p['image_id']} object {p['ann_id']}: "
                             f"{_fmt(p['full_iou'], 100, 1)} ({_fmt(p['occlusion_rate'], 100, 0)}"
                             "% occluded)" for p in picks)
        lines += [f"{m}: best {said(fig['best'])}.", "", f"{m}: worst {said(fig['worst'])}.",
                  "", f"![{m} best and worst]({fig['file']})", ""]
    return lines


def _visible_source_lines(results: dict[str, Any]) -> list[str]:
    """With --visible predicted: the segmenter, the matching rule and its counts."""
    seg, det = results.get("visible_segmenter"), results.get("detection")
    if not seg or not det:
        return []
    return [
        f"- predicted S_V: visible-instance segmenter `{seg['path']}` ({seg['format']}, step "
        f"{seg['step']}, sha256 {seg['sha256'][:12]}), score >= {seg['score_threshold']:g}",
        f"- matching: {seg['rule']}",
        f"- detection: {int(det['count/matched'])} of {int(det['count/objects'])} objects "
        f"matched (recall {_fmt(det['recall'], 100)}%), {int(det['count/missed'])} missed, "
        f"{int(det['count/false_positives'])} false positives of "
        f"{int(det['count/predictions'])} predictions, mean IoU of matched pairs "
        f"{_fmt(det['matched_iou/mean'], 100)}%",
    ]


def write_report(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Write `format_report(results)` to path (atomic)."""
    write_bytes_atomic(path, format_report(results).encode())


# ----------------------------------------------------------------------------- several datasets

# The comparison's rows: (label, table, key, scale, digits); table "segmentation", "painting",
# "layering" or "layering_gt_5pct" of a method's results.
_COMPARE_ROWS: tuple[tuple[str, str, str, float, int], ...] = (
    ("full IoU (standard, mean)", "segmentation", "full_iou/standard/mean_all", 100, 2),
    ("visible IoU (modal, mean)", "segmentation", "visible_iou/modal/mean_all", 100, 2),
    ("invisible IoU (justamodal, occluded only)", "segmentation",
     "invisible_iou/justamodal/mean_occluded", 100, 2),
    ("invisible IoU (svsi, all: the paper's)", "segmentation", "invisible_iou/svsi/mean_all",
     100, 2),
    ("painting L1 (S_F pixels)", "painting", "l1/masked_mean", 1, 3),
    ("layering (GT: any overlap)", "layering", "layering_accuracy/mean_images", 100, 2),
    ("layering (GT: 5% rule)", "layering_gt_5pct", "layering_accuracy/mean_images", 100, 2),
)
MARGIN_LABEL = "full IoU margin over visible_as_full (points)"
_FULL_KEY = "full_iou/standard/mean_all"


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """An evaluation's results.json (or the OUT folder holding it), checked to be one."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise FileNotFoundError(f"no results file {p} (give an OUT folder of `segan evaluate` "
                                "or its results.json)")
    try:
        results = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not JSON ({e})") from None
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{p}: not a results file of `segan evaluate` (field 'format' is not "
                         f"{RESULTS_FORMAT!r})")
    if not isinstance(results.get("methods"), dict):
        raise ValueError(f"{p}: field 'methods' is missing")
    return results


def comparison_value(method: dict[str, Any] | None, table: str, key: str) -> float | None:
    """One number of a method's results (None: not evaluated, not applicable, or absent)."""
    if method is None or not method.get(table):
        return None
    v = method[table].get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def full_iou_margin(results: dict[str, Any], method: str) -> float | None:
    """Full IoU (mean) of `method` minus that of ``visible_as_full`` in the same results, as a
    fraction: what the method adds over copying S_V (None without either)."""
    a = comparison_value(results["methods"].get(method), "segmentation", _FULL_KEY)
    b = comparison_value(results["methods"].get("visible_as_full"), "segmentation", _FULL_KEY)
    return None if a is None or b is None else a - b


def format_comparison(named: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown: several evaluations (e.g. in-domain and out-of-domain) side by side, one
    column per dataset inside each method's rows. named: [(dataset name, results dict)]."""
    if not named:
        raise ValueError("nothing to compare: give at least one NAME=RESULTS")
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names must be unique, got {names}")
    methods: list[str] = []
    for _, res in named:
        methods += [m for m in res["methods"] if m not in methods]
    lines = ["# Evaluations side by side", ""]
    for name, res in named:
        data, seg_counts = res["data"], None
        for m in res["methods"].values():
            if m.get("segmentation"):
                seg_counts = m["segmentation"]
                break
        occluded = ("" if seg_counts is None
                    else f", {int(seg_counts['count/occluded'])} occluded")
        lines.append(f"- **{name}**: `{data['annotations']}` (split `{data['split']}`, S_V = "
                     f"{res['visible']}): {_count(res['num_images'], 'image')}, "
                     f"{_count(res['num_objects'], 'object')}{occluded}")
    for m in methods:  # the same method with other weights on another dataset: say so
        shas = {(res["methods"][m].get("checkpoint") or {}).get("sha256")
                for _, res in named if m in res["methods"]}
        if len(shas) > 1:
            lines.append(f"- note: {m} was evaluated with different checkpoints across the "
                         "datasets")
    lines += ["", "IoU and layering in %, L1 on RGB in [0, 1]; – = not evaluated or not "
              "applicable. The margin needs `visible_as_full` in the same evaluation.", "",
              _row(["method", "metric", *names]), _row(["---"] * (len(names) + 2))]
    for m in methods:
        for label, table, key, scale, digits in _COMPARE_ROWS:
            cells = [m, label]
            cells += [_fmt(comparison_value(res["methods"].get(m), table, key), scale, digits)
                      for _, res in named]
            lines.append(_row(cells))
        if m != "visible_as_full":
            lines.append(_row([m, MARGIN_LABEL,
                               *(_fmt(full_iou_margin(res, m), 100) for _, res in named)]))
    return "\n".join(lines) + "\n"


def write_comparison(named: list[tuple[str, dict[str, Any]]], path: str | os.PathLike) -> str:
    """Write `format_comparison(named)` to path (atomic); returns the text."""
    text = format_comparison(named)
    write_bytes_atomic(path, text.encode())
    return text
