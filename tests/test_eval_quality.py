"""Evaluation for quality work: the oracle ceiling, the two layering ground truths, the
occlusion-rate breakdown, the multi-dataset comparison and the best/worst figure; known
answers on hand-made masks, then the tiny dataset end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.cli import main
from segan.eval.baselines import ImageInputs, MethodOutput, Oracle, VisibleAsFull
from segan.eval.metrics import (
    OCCLUSION_BINS,
    SEGMENTATION_CONVENTIONS,
    SegmentationMeter,
    occlusion_bin_index,
    segmentation_scores,
)
from segan.eval.scoring import MethodScores, ground_truth_pairs_5pct

C = 8  # painter crop size of the hand-made inputs


def _hand_made() -> tuple[ImageInputs, list[tuple[int, int]]]:
    """A 10 x 10 image of three objects (ann ids 1, 2, 3) and the dataset's pairs.

    A (1): columns 0-3, unoccluded (40 px). B (2): S_F = columns 2-7 (60 px), hidden by A on
    columns 2-3 (20 px) and by C at pixel (9, 7): |S_I| = 21, |S_V| = 39. C (3): row 9,
    columns 7-9, unoccluded (3 px). Any-overlap pairs: (1, 2) and (3, 2). The 5% rule on the
    ground truth: IoU(S_V_A, S_I_B) = 20 / 41 > 5%, IoU(S_V_C, S_I_B) = 1 / 23 < 5%: (1, 2)."""
    full = np.zeros((3, 10, 10), bool)
    full[0, :, 0:4] = True
    full[1, :, 2:8] = True
    full[2, 9, 7:10] = True
    visible = full.copy()
    visible[1, :, 2:4] = False
    visible[1, 9, 7] = False
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, C, C, generator=g)
    inputs = ImageInputs(
        image_id=7, ann_ids=[1, 2, 3], orig_hw=(10, 10), full=full, visible=visible,
        images=torch.rand(1, 3, 10, 10, generator=g),
        visible_masks=torch.from_numpy(visible[:, None].astype(np.float32)),
        boxes=torch.tensor([[0.0, 0, 0, 10, 10]] * 3), target=target,
        full_crop=torch.ones(3, 1, C, C), has_appearance=np.ones(3, bool))
    return inputs, [(1, 2), (3, 2)]


def _score(pred: MethodOutput, paints: bool) -> dict:
    inputs, gt_pairs = _hand_made()
    sc = MethodScores(paints, 2, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    sc.add(inputs, pred, gt_pairs)
    return sc.compute()


def test_ground_truth_pairs_follow_the_5pct_rule():
    inputs, _ = _hand_made()
    assert ground_truth_pairs_5pct(inputs) == [(1, 2)]


def test_oracle_layering_known_answers():
    inputs, _ = _hand_made()
    res = _score(Oracle()(inputs), paints=True)
    key = "layering_accuracy/mean_images"
    assert res["layering"][key] == 0.5  # (3, 2) overlaps by one pixel: below the 5% rule
    assert res["layering_gt_5pct"][key] == 1.0  # the ceiling
    seg = res["segmentation"]
    for conv in ("full_iou/standard", "invisible_iou/justamodal"):
        assert seg[f"{conv}/mean_all"] == 1.0
    assert seg["invisible_iou/svsi/mean_occluded"] == 1.0
    assert res["painting"]["l1/masked_mean"] == 0.0 and res["painting"]["count"] == 3


def test_layering_of_an_over_extended_mask_and_of_visible_as_full():
    inputs, _ = _hand_made()
    probs = torch.from_numpy(inputs.full.astype(np.float32))
    probs[1, :, 2:10] = 1  # B grown to columns 2-9: its S_I now covers all of C's S_V
    # IoU(S_V_C, pred S_I_B) = 3 / 41 > 5%, IoU(S_V_A, pred S_I_B) = 20 / 61: both pairs
    res = _score(MethodOutput(probs, None), paints=False)
    key = "layering_accuracy/mean_images"
    assert res["layering"][key] == 1.0 and res["layering_gt_5pct"][key] == 1.0
    by = res["segmentation_by_occlusion"]
    assert by["0%"]["count"] == 2 and by["25-50%"]["count"] == 1  # B: 21 / 60 = 35%
    assert by["0-25%"]["count"] == 0 and np.isnan(by["0-25%"]["full_iou/standard/mean"])
    assert by["0%"]["full_iou/standard/mean"] == 1.0
    assert by["25-50%"]["full_iou/standard/mean"] == 60 / 80
    assert by["25-50%"]["invisible_iou/justamodal/mean"] == 21 / 41
    assert by["25-50%"]["invisible_iou/svsi/mean"] == 1.0

    res = _score(VisibleAsFull(C)(inputs), paints=False)  # no S_I, no pair
    assert res["layering"][key] == 0.0 and res["layering_gt_5pct"][key] == 0.0


def test_occlusion_bins():
    rates = np.array([0.0, 1e-9, 0.25, 0.2500001, 0.5, 0.75, 1.0])
    assert occlusion_bin_index(rates).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert [b[0] for b in OCCLUSION_BINS] == ["0%", "0-25%", "25-50%", "50%+"]
    with pytest.raises(ValueError, match="occlusion rates"):
        occlusion_bin_index(np.array([1.5]))
    meter = SegmentationMeter()
    assert all(row["count"] == 0 for row in meter.compute_by_occlusion().values())
    assert set(meter.compute_by_occlusion()["0%"]) == {
        *(f"{c}/mean" for c in SEGMENTATION_CONVENTIONS), "count"}


def test_by_category_known_answers():
    """Two categories: a box (two objects, one occluded) and a cup (one, unoccluded)."""
    gt_full = np.zeros((3, 4, 4), bool)
    gt_full[:, :2, :2] = True  # every object: the top-left 2 x 2 square
    gt_vis = gt_full.copy()
    gt_vis[0, 0, 0] = False  # box 0: one pixel hidden
    pred = gt_vis.copy()  # nothing of the hidden pixel found: full IoU 3/4, justamodal 0
    meter = SegmentationMeter()
    meter.add_scores(segmentation_scores(pred, gt_full, gt_vis), ["box", "box", "cup"])
    by = meter.compute_by_category()
    assert list(by) == ["box", "cup"]  # most instances first
    assert by["box"]["count"] == 2 and by["box"]["count/occluded"] == 1
    assert by["box"]["full_iou/standard/mean"] == (0.75 + 1.0) / 2
    assert by["box"]["full_iou/standard/mean_occluded"] == 0.75
    assert by["box"]["invisible_iou/justamodal/mean_occluded"] == 0.0
    assert by["cup"]["full_iou/standard/mean"] == 1.0 and by["cup"]["count/occluded"] == 0
    assert np.isnan(by["cup"]["invisible_iou/justamodal/mean_occluded"])
    meter.add_scores(segmentation_scores(pred[:1], gt_full[:1], gt_vis[:1]))  # no names
    assert meter.compute_by_category()["unknown"]["count"] == 1
    with pytest.raises(ValueError, match="2 category names for 3 instances"):
        meter.add_scores(segmentation_scores(pred, gt_full, gt_vis), ["box", "cup"])


def test_report_tables_count_objects_in_the_singular_and_plural():
    """results.md's per-category and per-occlusion labels: "1 object", "2 objects"."""
    from segan.eval.report import _by_category_lines, _by_occlusion_lines

    meter = SegmentationMeter()
    gt = np.zeros((3, 4, 4), bool)
    gt[:, :2, :2] = True
    meter.add_scores(segmentation_scores(gt, gt, gt), ["box", "box", "cup"])
    results = {"methods": {"oracle": {
        "segmentation_by_category": meter.compute_by_category(),
        "segmentation_by_occlusion": meter.compute_by_occlusion()}}}
    category = "\n".join(_by_category_lines(results, ["oracle"]))
    assert "| box (2 objects, 0 occluded) |" in category
    assert "| cup (1 object, 0 occluded) |" in category
    occlusion = "\n".join(_by_occlusion_lines(results, ["oracle"]))
    assert "| 0% (3 objects) |" in occlusion and "(0 objects)" in occlusion
    assert "1 objects" not in category + occlusion


# ----------------------------------------------------------------------------- tiny, end to end


@pytest.fixture(scope="module")
def evaluated(tiny_data, tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval_quality") / "test"
    rc = main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data),
               "--out", str(out), "--method", "segan", "--method", "visible_as_full",
               "--method", "oracle", "--method", f"segan@again={tiny_run}",
               "--device", "cpu", "--quiet"])
    assert rc == 0
    return out


def test_labelled_method_scores_like_its_method(evaluated):
    """segan@again is the same run under a label: scored apart, with the same numbers."""
    methods = json.loads((evaluated / "results.json").read_text())["methods"]
    assert methods["segan@again"]["segmentation"] == methods["segan"]["segmentation"]
    assert methods["segan@again"]["painting"] == methods["segan"]["painting"]


def test_oracle_reaches_every_ceiling(evaluated):
    results = json.loads((evaluated / "results.json").read_text())
    oracle = results["methods"]["oracle"]
    seg = oracle["segmentation"]
    assert seg["count/occluded"] > 0
    for conv in ("full_iou/standard", "invisible_iou/justamodal"):
        for avg in ("mean_all", "pooled_all", "mean_occluded", "pooled_occluded"):
            assert seg[f"{conv}/{avg}"] == 1.0, (conv, avg)
    assert seg["invisible_iou/svsi/mean_occluded"] == 1.0
    assert oracle["painting"]["l1/masked_mean"] == 0.0
    lay5 = oracle["layering_gt_5pct"]
    assert lay5["count/images"] > 0 and lay5["layering_accuracy/mean_images"] == 1.0
    assert 0 < oracle["layering"]["layering_accuracy/mean_images"] <= 1.0
    for row in oracle["segmentation_by_occlusion"].values():
        assert row["count"] == 0 or row["full_iou/standard/mean"] == 1.0
    assert sum(r["count"] for r in oracle["segmentation_by_occlusion"].values()) == \
        results["num_objects"]
    by_category = oracle["segmentation_by_category"]
    assert len(by_category) >= 2 and "unknown" not in by_category
    assert all(row["full_iou/standard/mean"] == 1.0 for row in by_category.values())
    assert sum(r["count"] for r in by_category.values()) == results["num_objects"]
    md = (evaluated / "results.md").read_text()
    for text in ("layering accuracy (GT: any overlap)", "layering accuracy (GT: 5% rule)",
                 "Table 1 by occlusion rate", "| 0% (", "oracle", "Table 1 by category",
                 f"| {next(iter(by_category))} ("):
        assert text in md, text


def test_comparison_known_answers(evaluated):
    from segan.eval.report import MARGIN_LABEL, format_comparison, load_results

    a = load_results(evaluated)  # the folder
    b = json.loads((evaluated / "results.json").read_text())
    b["methods"]["segan"]["segmentation"]["full_iou/standard/mean_all"] = 0.5
    b["methods"]["visible_as_full"]["segmentation"]["full_iou/standard/mean_all"] = 0.375
    b["methods"]["segan"]["layering_gt_5pct"] = None  # e.g. results of an older version
    del b["methods"]["oracle"]
    md = format_comparison([("in", a), ("ood", b)])
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]):
            [c.strip() for c in line.strip("|").split("|")[2:]]
            for line in md.splitlines() if line.startswith("| ")}
    assert rows[("method", "metric")] == ["in", "ood"]
    full = a["methods"]["segan"]["segmentation"]["full_iou/standard/mean_all"]
    vaf = a["methods"]["visible_as_full"]["segmentation"]["full_iou/standard/mean_all"]
    assert rows[("segan", "full IoU (standard, mean)")] == [f"{100 * full:.2f}", "50.00"]
    assert rows[("segan", MARGIN_LABEL)] == [f"{100 * (full - vaf):.2f}", "12.50"]
    assert rows[("segan", "layering (GT: 5% rule)")][1] == "–"
    assert rows[("oracle", "full IoU (standard, mean)")] == ["100.00", "–"]  # not evaluated
    assert rows[("oracle", "painting L1 (S_F pixels)")] == ["0.000", "–"]
    assert rows[("visible_as_full", "painting L1 (S_F pixels)")] == ["–", "–"]  # n/a
    assert ("visible_as_full", MARGIN_LABEL) not in rows
    with pytest.raises(ValueError, match="unique"):
        format_comparison([("in", a), ("in", b)])


def test_report_command(evaluated, tiny_data, tiny_run, tmp_path, capsys):
    ood = tmp_path / "val"
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data),
                 "--split", "val", "--limit", "2", "--out", str(ood), "--method", "segan",
                 "--method", "visible_as_full", "--device", "cpu", "--quiet"]) == 0
    out = tmp_path / "compare.md"
    assert main(["report", f"test={evaluated}", f"val={ood / 'results.json'}",
                 "--out", str(out)]) == 0
    md = out.read_text()
    assert "| method | metric | test | val |" in md and "split `val`" in md
    assert md in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    assert main(["report", f"x={bad}", "--out", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["report", str(bad), "--out", str(out)]) == 2
    assert "NAME=RESULTS" in capsys.readouterr().err


def test_best_worst_figure(evaluated):
    from PIL import Image

    results = json.loads((evaluated / "results.json").read_text())
    figs = results["figures_best_worst"]
    assert set(figs) == {"segan", "visible_as_full", "oracle", "segan@again"}  # with an S_F
    fig = figs["segan"]
    occluded = int(results["methods"]["segan"]["segmentation"]["count/occluded"])
    k = min(4, occluded)
    assert len(fig["best"]) == len(fig["worst"]) == k
    best = [p["full_iou"] for p in fig["best"]]
    worst = [p["full_iou"] for p in fig["worst"]]
    assert best == sorted(best, reverse=True) and worst == sorted(worst)
    assert best[0] >= worst[-1] and worst[0] <= best[-1]
    assert all(p["occlusion_rate"] > 0 for p in fig["best"] + fig["worst"])
    c = results["config"]["model"]["crop_size"]
    with Image.open(evaluated / fig["file"]) as im:
        im.load()
        assert im.mode == "RGB" and im.width == 6 * c
        assert im.height == 2 * k * c + max(2, c // 16)
        band = np.asarray(im)[k * c]
    assert (band == (255, 0, 0)).all()
    assert all(p["full_iou"] == 1.0 for p in figs["oracle"]["best"] + figs["oracle"]["worst"])
    md = (evaluated / "results.md").read_text()
    assert f"![segan best and worst]({fig['file']})" in md


def test_best_worst_keeps_extremes_and_earlier_ties():
    from segan.eval.figures import BestWorst

    bw = BestWorst(2)
    for i, v in enumerate([0.5, 0.9, 0.1, 0.9, 0.3, 0.1]):
        bw.add(v, {"i": i}, lambda i=i: np.full((1, 2, 3), i, np.uint8))
    best, worst = bw.picks()
    assert [p["i"] for p in best] == [1, 3] and [p["i"] for p in worst] == [2, 5]
    fig = bw.figure()
    assert fig[:, 0, 0].tolist() == [1, 3, 255, 255, 2, 5]
    assert BestWorst(0).figure() is None
