"""De-occlusion: the metrics' known answers, the composition order on a hand-made three-layer
scene, the predictor method, and the two commands on the tiny preset."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from segan.cli import main
from segan.data import coco
from segan.deocclude import deocclude, deocclude_true_masks, fill_hole, opencv_fill
from segan.eval.deocclusion import (
    FIGURE_TILE,
    HOLE_OUTLINE,
    DeocclusionMeter,
    figure_columns,
    figure_row,
    hole_errors,
    revealed_ious,
)
from segan.eval.painting_metrics import PSNR_CAP_DB
from segan.layering import depth_layers
from segan.prediction import ScenePrediction

# ----------------------------------------------------------------------------- metrics


def test_figure_row_crops_around_the_hole_and_outlines_it():
    """A hole at the image's corner: every tile shows the same square around it (grey padding
    beyond the image), the input's outline lies just outside the hole."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    target, edit = np.zeros_like(image), np.full_like(image, 255)
    hole = np.zeros((90, 120), bool)
    hole[0:20, 100:120] = True  # at the top right: the square (1.5 * 19 + 16 = 44 px) leaves
    row = figure_row(image, target, [edit, edit], hole, tile=44)  # the image; no resizing
    assert row.shape == (44, 4 * 44, 3) and row.dtype == np.uint8
    shown, truth, edited = row[:, :44], row[:, 44:88], row[:, 88:132]
    outline = (shown == HOLE_OUTLINE).all(-1)
    assert outline[11, 22] and outline[22, 34]  # two pixels outside the hole's rows 13-32
    assert not outline[13:33, 13:33].any()  # the removed object itself stays visible
    assert (shown[13:33, 13:33] == image[0:20, 100:120]).all()
    assert (truth[22, 22] == 0).all() and (edited[22, 22] == 255).all()
    assert (truth[-1, -1] == 128).all()  # bottom right: outside the image, grey
    assert figure_columns(["inpaint", "segan", "inpaint_ns", "completer"]) == [
        "segan", "inpaint_ns"]
    with pytest.raises(ValueError, match="hole is empty"):
        figure_row(image, target, [edit], np.zeros_like(hole))


def test_hole_errors_known_answer():
    target = np.full((8, 8, 3), 100, np.uint8)
    edited = target.copy()
    hole = np.zeros((8, 8), bool)
    hole[2:5, 2:6] = True
    edited[hole] += 10  # 10/255 everywhere in the hole
    edited[0, 0] = 255  # outside the hole: not scored
    e = hole_errors(edited, target, hole)
    assert e["l1/hole"] == pytest.approx(10 / 255)
    assert e["mse/hole"] == pytest.approx((10 / 255) ** 2)
    assert e["psnr/hole_db"] == pytest.approx(20 * math.log10(255 / 10))  # 28.13 dB
    assert 0 < e["ssim/hole_bbox"] < 1
    same = hole_errors(target, target, hole)
    assert same["l1/hole"] == 0 and same["psnr/hole_db"] == PSNR_CAP_DB
    assert same["ssim/hole_bbox"] == pytest.approx(1.0)
    assert math.isnan(hole_errors(edited, target, hole, ssim=False)["ssim/hole_bbox"])
    with pytest.raises(ValueError, match="hole is empty"):
        hole_errors(edited, target, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="uint8"):
        hole_errors(edited / 255.0, target, hole)


def test_revealed_ious_known_answer():
    visible = np.zeros((3, 4, 10), bool)
    visible[:, :, :2] = True  # 8 px each
    target, predicted = visible.copy(), visible.copy()
    target[0, :, 2:6] = True  # object 0: 16 px revealed
    predicted[0, :, 4:8] = True  # 16 px predicted, 8 of them right
    target[1, :, 2:4] = True  # object 1: revealed, predicted nothing
    # object 2: nothing revealed in either: not scored
    rev, new = revealed_ious(predicted, target, visible)
    assert rev.tolist() == pytest.approx([8 / 24, 0.0])
    assert new.tolist() == pytest.approx([(8 + 8) / (8 + 24), 8 / 16])
    assert revealed_ious(visible, visible, visible)[0].size == 0


def test_meter_averages_records_and_objects():
    meter = DeocclusionMeter()
    img = np.zeros((4, 4, 3), np.uint8)
    hole = np.zeros((4, 4), bool)
    hole[1:3, 1:3] = True
    vis = np.zeros((1, 4, 4), bool)
    vis[0, 0] = True
    tgt = vis.copy()
    tgt[0, 1, 1:3] = True
    meter.add(img, img, hole, tgt, tgt, vis, ssim=False)  # perfect
    worse = img.copy()
    worse[hole] = 51  # 0.2
    meter.add(worse, img, hole, vis, tgt, vis, ssim=False)  # wrong colour, nothing revealed
    out = meter.compute()
    assert math.isnan(out["l1/hole_background"])  # no record gave its background pixels
    room = hole.copy()
    room[1, 1:3] = False  # the first row of the hole belongs to the object, the second is room
    row = meter.add(worse, img, hole, vis, tgt, vis, ssim=False, background=room)
    assert row["l1/hole_background"] == pytest.approx(0.2)
    meter.add(img, img, hole, tgt, tgt, vis, ssim=False, background=room)
    meter.add(img, img, hole, tgt, tgt, vis, ssim=False, background=np.zeros_like(hole))
    assert meter.compute()["l1/hole_background"] == pytest.approx(0.1)  # (0.2 + 0) / 2
    # the hole's object pixels: row 1 of the hole for the first two, all of it for the third
    assert row["l1/hole_objects"] == pytest.approx(0.2)
    assert meter.compute()["l1/hole_objects"] == pytest.approx(0.2 / 3)
    meter = DeocclusionMeter()
    meter.add(img, img, hole, tgt, tgt, vis, ssim=False)
    meter.add(worse, img, hole, vis, tgt, vis, ssim=False)
    out = meter.compute()
    assert out["l1/hole"] == pytest.approx(0.1)
    assert out["psnr/hole_db"] == pytest.approx((PSNR_CAP_DB + 20 * math.log10(1 / 0.2)) / 2)
    assert out["revealed_iou"] == pytest.approx(0.5)
    assert out["records"] == 2 and out["revealed_objects"] == 2


# ----------------------------------------------------------------------------- composition


def test_fill_hole():
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 5:] = 200
    hole = np.zeros((10, 10), bool)
    hole[3:7, 1:4] = True  # inside the black half: every known neighbour is black
    np.testing.assert_array_equal(fill_hole(image, hole), image)
    hole2 = np.zeros((10, 10), bool)
    hole2[4, 4:6] = True  # on the edge: a mix of the two sides
    filled = fill_hole(image, hole2)
    np.testing.assert_array_equal(filled[~hole2], image[~hole2])
    assert 0 < filled[4, 4, 0] < filled[4, 5, 0] < 200
    assert (fill_hole(image, np.ones((10, 10), bool)) == 128).all()


def three_layers() -> tuple[np.ndarray, ScenePrediction]:
    """A 1 x 12 strip of three objects: A (back) spans columns 0-11, B (middle) 4-9, C (front)
    6-11, each seen where nothing nearer is; painted colours A 10, B 20, C 30. Their indices
    are B 0, A 1, C 2, so that index order is not depth order."""
    W = 12
    A, B, C = 1, 0, 2
    full = np.zeros((3, 1, W), bool)
    full[A, 0, :] = True
    full[B, 0, 4:10] = True
    full[C, 0, 6:12] = True
    visible = full.copy()
    visible[A] &= ~(full[B] | full[C])
    visible[B] &= ~full[C]
    colours = {A: 10, B: 20, C: 30}
    painted = np.zeros((3, 1, W, 4), np.uint8)
    image = np.zeros((1, W, 3), np.uint8)
    for k in (A, B, C):  # back to front
        painted[k][full[k]] = (colours[k],) * 3 + (255,)
        image[visible[k]] = colours[k]
    pairs = sorted([(B, A), (C, A), (C, B)])
    scene = ScenePrediction(
        visible_masks=visible, full_masks=full, invisible_masks=full & ~visible,
        full_probs=full.astype(np.float32), painted=painted,
        boxes=np.tile(np.float32([0, 0, W, 1]), (3, 1)), scores=None, occlusion_pairs=pairs,
        layers=depth_layers(pairs, 3))
    return image, scene


def test_composition_order_three_layers():
    image, scene = three_layers()
    A, B, C = 1, 0, 2
    assert scene.layers.tolist() == [1, 2, 0]  # B, A, C
    result = deocclude(image, scene, [C])  # remove the front object
    assert result.order == [A, B]  # A, then B over it
    # C was seen on columns 6-11; B's full mask covers 6-9, A's the rest
    assert result.image[0, :, 0].tolist() == [10] * 4 + [20] * 6 + [10] * 2
    assert result.hole[0].tolist() == [False] * 6 + [True] * 6
    assert np.flatnonzero(result.visible_masks[B, 0]).tolist() == list(range(4, 10))
    assert np.flatnonzero(result.visible_masks[A, 0]).tolist() == [0, 1, 2, 3, 10, 11]
    assert not result.visible_masks[C].any()
    assert result.layers.shape == (2, 1, 12, 4)
    assert (result.layers[0, 0, 6:, 3] == 255).all() and (result.layers[1, 0, 6:10, 3] == 255).all()
    # index order draws A last, over B: wrong where both cover the hole
    flat = deocclude(image, scene, [C], ordered=False)
    assert flat.order == [B, A]
    assert flat.image[0, :, 0].tolist() == [10] * 4 + [20] * 2 + [10] * 6
    # removing B and C reveals A alone; inpainting alone reveals nothing
    both = deocclude(image, scene, [B, C])
    assert both.order == [A] and (both.image[0, :, 0] == 10).all()
    none = deocclude(image, scene, [C], objects=False)
    assert none.order == [] and (none.revealed_masks.sum() == 0)
    np.testing.assert_array_equal(none.image, fill_hole(image, result.hole))
    with pytest.raises(ValueError, match="out of range"):
        deocclude(image, scene, [3])
    with pytest.raises(ValueError, match="nothing to remove"):
        deocclude(image, scene, [])


def test_true_masks_baseline_three_layers():
    image, scene = three_layers()
    A, B, C = 1, 0, 2
    revealed = np.zeros_like(scene.visible_masks)
    revealed[B, 0, 6:10] = True  # the truth as drawn: B over 6-9, A on 10-11
    revealed[A, 0, 10:12] = True
    result = deocclude_true_masks(image, scene, [C], revealed)
    assert result.image[0, :, 0].tolist() == [10] * 4 + [20] * 6 + [10] * 2
    assert result.order == [A, B] and not result.visible_masks[C].any()
    np.testing.assert_array_equal(result.revealed_masks, revealed)
    # a truth that differs from the prediction wins: A takes the whole hole
    revealed[:] = False
    revealed[A, 0, 6:12] = True
    result = deocclude_true_masks(image, scene, [C], revealed)
    assert result.image[0, :, 0].tolist() == [10] * 4 + [20] * 2 + [10] * 6
    assert result.order == [A]
    # where SeGAN painted nothing (outside A's box) the fill's background stays
    scene.boxes[A] = [0, 0, 8, 1]
    result = deocclude_true_masks(image, scene, [C], revealed)
    assert result.image[0, 6:8, 0].tolist() == [10, 10]
    np.testing.assert_array_equal(result.image[0, 8:], result.background[0, 8:])
    assert result.visible_masks[A, 0, 6:].all()  # the masks are the truth's all the same
    overlap = revealed.copy()
    overlap[B, 0, 6] = True
    with pytest.raises(ValueError, match="overlap"):
        deocclude_true_masks(image, scene, [C], overlap)
    with pytest.raises(ValueError, match=r"revealed must be \(N, H, W\) bool"):
        deocclude_true_masks(image, scene, [C], revealed[:2])


def test_opencv_fills_change_only_the_hole():
    pytest.importorskip("cv2")
    image = np.zeros((20, 20, 3), np.uint8)
    image[:, :] = (40, 90, 160)
    image[:, 12:] = (200, 200, 200)
    hole = np.zeros((20, 20), bool)
    hole[5:10, 2:7] = True  # inside the uniform left part: filled with its colour
    for method in ("telea", "ns"):
        fill = opencv_fill(method)
        out = fill(image, hole)
        np.testing.assert_array_equal(out[~hole], image[~hole])
        assert np.abs(out[hole].astype(int) - (40, 90, 160)).max() <= 3  # NS: +-2
        assert (fill(image, np.ones_like(hole)) == 128).all()
    with pytest.raises(ValueError, match="must be one of"):
        opencv_fill("fmm")
    with pytest.raises(ValueError, match="hole must be"):
        opencv_fill("telea")(image, hole.astype(np.uint8))


# ----------------------------------------------------------------------------- end to end


def test_predictor_method_and_cli(tiny_run: Path, tiny_deocc_data: Path, tmp_path: Path,
                                  capsys):
    from segan import SeganPredictor

    ds = coco.load_annotations(tiny_deocc_data / "annotations" / "test.json")
    iid = ds.image_ids[0]
    image = ds.load_image(iid)
    _, visible, _ = ds.image_masks(iid)
    predictor = SeganPredictor.from_checkpoint(tiny_run, device="cpu")
    result = predictor.deocclude(image, visible, [0, 1])
    np.testing.assert_array_equal(result.image[~result.hole], image[~result.hole])
    assert result.hole.sum() == (visible[0] | visible[1]).sum()

    out = tmp_path / "out"
    rc = main(["deocclude", str(ds.image_path(iid)), "--masks",
               str(tiny_deocc_data / "annotations" / "test.json"), "--remove", "0", "1",
               "--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu"])
    assert rc == 0
    summary = json.loads((out / "deocclusion.json").read_text())
    assert summary["removed"] == [0, 1] and summary["hole_pixels"] == int(result.hole.sum())
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(out / "edited.png")), result.image)
    for name in ("background.png", "steps.png", *summary["layers"]):
        assert (out / name).is_file()
    if importlib.util.find_spec("cv2") is not None:  # OpenCV's Telea as the background
        rc = main(["deocclude", str(ds.image_path(iid)), "--masks",
                   str(tiny_deocc_data / "annotations" / "test.json"), "--remove", "0", "1",
                   "--checkpoint", str(tiny_run), "--out", str(tmp_path / "telea"),
                   "--device", "cpu", "--fill", "telea"])
        assert rc == 0
        assert json.loads((tmp_path / "telea" / "deocclusion.json").read_text())["fill"] == \
            "telea"
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "telea" /
                                                            "background.png")),
                                      opencv_fill("telea")(image, result.hole))
    rc = main(["deocclude", str(ds.image_path(iid)), "--masks",
               str(tiny_deocc_data / "annotations" / "test.json"), "--remove", "99",
               "--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu"])
    assert rc == 2 and "out of range" in capsys.readouterr().err


def test_evaluate_deocclusion_cli(tiny_run: Path, tiny_deocc_data: Path, tmp_path: Path,
                                  capsys):
    rc = main(["evaluate-deocclusion", str(tiny_deocc_data), "--checkpoint", str(tiny_run),
               "--device", "cpu", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| segan |" in table and "| inpaint |" in table
    result = json.loads((tmp_path / "r.json").read_text())
    ds = coco.load_annotations(tiny_deocc_data / "annotations" / "test.json")
    records = [(i, k) for i in ds.image_ids for k in range(len(ds.deocclusion(i)))]
    assert result["records"] == len(records) > 0
    # known answer for inpainting alone: no object gains a pixel, so every revealed IoU is 0
    # and each new visible IoU is |S_V| / |S_V'| of the truth
    ratios = []
    for iid, k in records:
        h, w = ds.images[iid]["height"], ds.images[iid]["width"]
        for r in ds.deocclusion(iid)[k]["revealed"]:
            new = coco.decode_mask(r["visible_mask"], h, w)
            ratios.append(ds.visible_mask(r["id"]).sum() / new.sum())
    inpaint = result["methods"]["inpaint"]
    assert inpaint["revealed_iou"] == 0.0
    assert inpaint["revealed_objects"] == len(ratios)
    assert inpaint["new_visible_iou"] == pytest.approx(np.mean(ratios))
    segan = result["methods"]["segan"]
    assert 0 <= segan["revealed_iou"] <= 1 and segan["records"] == len(records)
    for m in result["methods"].values():
        assert 0 <= m["l1/hole"] <= 1 and m["psnr/hole_db"] > 0


def test_evaluate_task_deocclusion_is_the_same_evaluation(tiny_run: Path, tiny_deocc_data: Path,
                                                          tmp_path: Path, capsys):
    """`segan evaluate --task deocclusion` writes OUT/deocclusion.{json,md}; the alias gives
    the same numbers; the true-masks baseline's masks are exact by construction."""
    methods = ["--method", "segan_true_masks", "--method", "segan", "--method", "inpaint"]
    out = tmp_path / "eval"
    rc = main(["evaluate", "--task", "deocclusion", "--data", str(tiny_deocc_data),
               "--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu",
               "--limit", "2", "--no-ssim", "--quiet", *methods])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "deocclusion.json").read_text())
    assert list(result["methods"]) == ["segan_true_masks", "segan", "inpaint"]
    assert result["images"] == 2 and result["fill"] == "diffusion"
    md = (out / "deocclusion.md").read_text()
    assert "| segan_true_masks |" in md and "| inpaint |" in md
    # segan's best and worst removals by hole L1 (fewer than the default 4 here: all of them
    # in each half), one row of tiles each, the red band between
    fig = result["figure"]
    assert fig["file"] == "figure_deocclusion_best_worst.png" and fig["file"] in md
    assert fig["columns"] == ["input", "re-render", "segan", "segan_true_masks", "inpaint"]
    n = min(4, result["records"])
    assert len(fig["best"]) == len(fig["worst"]) == n
    best_l1 = [p["l1/hole"] for p in fig["best"]]
    worst_l1 = [p["l1/hole"] for p in fig["worst"]]
    assert best_l1 == sorted(best_l1) and worst_l1 == sorted(worst_l1, reverse=True)
    assert best_l1[0] <= worst_l1[-1] and best_l1[-1] <= worst_l1[0]
    from PIL import Image

    with Image.open(out / fig["file"]) as im:
        assert im.size == (5 * FIGURE_TILE, 2 * n * FIGURE_TILE + FIGURE_TILE // 16)
        picture = np.asarray(im.convert("RGB"))
    assert (picture[n * FIGURE_TILE] == (255, 0, 0)).all()  # the band
    true = result["methods"]["segan_true_masks"]
    assert true["revealed_objects"] > 0
    assert true["revealed_iou"] == 1.0 and true["new_visible_iou"] == 1.0
    assert true["ssim/hole_bbox"] is None  # --no-ssim: NaN written as null
    # on the hole's room pixels the true-masks baseline draws nothing: it is the fill there,
    # as diffusion inpainting of the whole hole is
    assert true["l1/hole_background"] == pytest.approx(
        result["methods"]["inpaint"]["l1/hole_background"], abs=1e-12)
    assert 0 < true["l1/hole_background"] < 1
    rc = main(["evaluate-deocclusion", str(tiny_deocc_data), "--checkpoint", str(tiny_run),
               "--device", "cpu", "--limit", "2", "--no-ssim", *methods, "--json",
               str(tmp_path / "alias.json")])
    assert rc == 0
    alias = json.loads((tmp_path / "alias.json").read_text())
    assert alias["methods"] == result["methods"] and alias["records"] == result["records"]
    assert alias["figure"] is None  # the alias writes only --json
    capsys.readouterr()
    # options of the other task are refused, naming them
    for argv, message in (
            (["--visible", "predicted"], "--task deocclusion does not take --visible"),
            (["--save-crops", "2", "--sample", "3"],
             "--task deocclusion does not take --sample, --save-crops"),
            (["--method", "bogus"], "unknown de-occlusion methods ['bogus']"),
            (["--method", "completer"], "method completer needs a background completer run")):
        rc = main(["evaluate", "--task", "deocclusion", "--data", str(tiny_deocc_data),
                   "--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu",
                   *argv])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and err.count("\n") == 1, err
    rc = main(["evaluate", "--task", "deocclusion", "--data", str(tiny_deocc_data),
               "--out", str(out)])
    assert rc == 2 and "needs --checkpoint" in capsys.readouterr().err
    rc = main(["evaluate", "--data", str(tiny_deocc_data), "--checkpoint", str(tiny_run),
               "--out", str(out), "--completer", str(tiny_run)])
    assert rc == 2 and "--completer: only with --task deocclusion" in capsys.readouterr().err
