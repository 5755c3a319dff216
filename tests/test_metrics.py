"""Known-answer tests of segan.eval.metrics and segan.eval.painting_metrics: every expected
number is counted by hand below."""

import math

import numpy as np
import pytest

from segan.eval import (
    SEGMENTATION_CONVENTIONS,
    LayeringMeter,
    PaintingMeter,
    SegmentationMeter,
    depth_layers,
    iou,
    layering_accuracy,
    occlusion_graph,
    painting_errors,
    segmentation_scores,
    threshold,
)
from segan.eval.painting_metrics import PSNR_CAP_DB


def box(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Bool (h, w) mask, True on rows r0..r1-1 and columns c0..c1-1."""
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


# ----------------------------------------------------------------------------- IoU


def test_threshold_is_greater_or_equal():
    prob = np.array([[0.0, 0.49], [0.5, 1.0]])
    assert threshold(prob).tolist() == [[False, False], [True, True]]
    assert threshold(prob, t=0.6).tolist() == [[False, False], [False, True]]


def test_iou_identical_disjoint_half_overlap():
    a = box(4, 4, 0, 4, 0, 2)  # columns 0-1: 8 px
    b = box(4, 4, 0, 4, 1, 3)  # columns 1-2: 8 px, 4 shared, union 12
    c = box(4, 4, 0, 4, 2, 4)  # columns 2-3: disjoint from a
    assert iou(a, a) == 1.0
    assert iou(a, c) == 0.0
    assert iou(a, b) == pytest.approx(4 / 12)
    # stacks (N, H, W) -> (N,)
    np.testing.assert_allclose(iou(np.stack([a, a, a]), np.stack([a, c, b])), [1, 0, 1 / 3])


def test_iou_empty_value_and_type_check():
    e = np.zeros((4, 4), dtype=bool)
    assert iou(e, e) == 1.0
    assert iou(e, e, empty=0.0) == 0.0
    with pytest.raises(TypeError, match="threshold"):
        iou(np.full((4, 4), 0.3), e)  # a probability map must be thresholded first


# ----------------------------------------------------------------------------- segmentation


def test_unoccluded_object_invisible_conventions():
    # S_V = S_F (nothing hidden) and a perfect prediction: S_I and pred \ S_V are both empty.
    s_f = box(4, 4, 1, 3, 1, 3)
    s = segmentation_scores(s_f.copy(), s_f, s_f.copy())
    assert not s["occluded"]
    assert s["invisible_iou/justamodal"] == 1.0  # both empty counts 1
    assert s["invisible_iou/svsi"] == 0.0  # no S_I counts 0
    assert s["invisible_iou/justamodal/union"] == 0
    assert s["full_iou/standard"] == 1.0
    assert s["visible_iou/modal"] == 1.0
    assert s["visible_iou/svsi"] == 1.0


# 10x10 object: S_F = rows 2-7 x cols 2-7 (36 px); S_V = cols 2-4 (18 px); S_I = cols 5-7 (18 px).
S_F = box(10, 10, 2, 8, 2, 8)
S_V = box(10, 10, 2, 8, 2, 5)


def test_visible_as_full_baseline():
    s = segmentation_scores(S_V.copy(), S_F, S_V)
    assert s["occluded"]
    assert s["full_iou/standard"] == pytest.approx(18 / 36)  # |S_V| / |S_F|
    assert s["invisible_iou/justamodal"] == 0.0  # pred \ S_V empty, S_I 18 px
    assert s["invisible_iou/svsi"] == 0.0
    assert s["visible_iou/modal"] == 1.0
    assert s["visible_iou/svsi"] == 1.0


def test_partial_prediction_every_convention():
    pred = S_V.copy()
    pred[2:8, 5] = True  # 6 of the 18 S_I pixels
    pred[0, 0:2] = True  # 2 pixels outside S_F
    # |pred| = 18 + 6 + 2 = 26
    s = segmentation_scores(pred, S_F, S_V)
    assert s["full_iou/standard"] == pytest.approx(24 / 38)  # I = 18 + 6, U = 36 + 2
    assert s["visible_iou/modal"] == pytest.approx(18 / 26)  # I = 18, U = |pred|
    assert s["visible_iou/svsi"] == pytest.approx(1.0)  # all of S_V kept
    # pred \ S_V = 8 px, S_I = 18 px, shared 6: U = 20
    assert s["invisible_iou/justamodal"] == pytest.approx(6 / 20)
    assert (s["invisible_iou/justamodal/inter"], s["invisible_iou/justamodal/union"]) == (6, 20)
    assert s["invisible_iou/svsi"] == pytest.approx(6 / 18)  # recall of S_I
    assert (s["invisible_iou/svsi/inter"], s["invisible_iou/svsi/union"]) == (6, 18)


def test_meter_mean_vs_pooled_and_occluded_subset():
    # A: unoccluded, S_F = S_V = row 0 (4 px), pred = 1 px -> full IoU 1/4.
    gt_a, vis_a, pred_a = box(4, 4, 0, 1, 0, 4), box(4, 4, 0, 1, 0, 4), box(4, 4, 0, 1, 0, 1)
    # B: occluded, S_F = rows 0-1 (8 px), S_V = row 0, pred = S_F -> every IoU 1.
    gt_b, vis_b, pred_b = box(4, 4, 0, 2, 0, 4), box(4, 4, 0, 1, 0, 4), box(4, 4, 0, 2, 0, 4)
    meter = SegmentationMeter()
    meter.add(pred_a, gt_a, vis_a)
    meter.add(pred_b, gt_b, vis_b)
    r = meter.compute()
    assert r["count/all"] == 2 and r["count/occluded"] == 1
    assert r["full_iou/standard/mean_all"] == pytest.approx((1 / 4 + 1) / 2)  # 0.625
    assert r["full_iou/standard/pooled_all"] == pytest.approx((1 + 8) / (4 + 8))  # 0.75
    assert r["full_iou/standard/mean_occluded"] == pytest.approx(1.0)
    assert r["full_iou/standard/pooled_occluded"] == pytest.approx(1.0)
    # JustAmodal: A has both empty (1, and I = U = 0 in the pool); B is 4/4.
    assert r["invisible_iou/justamodal/mean_all"] == pytest.approx(1.0)
    assert r["invisible_iou/justamodal/pooled_all"] == pytest.approx(1.0)
    # SV-SI: A counts 0 in the mean over all, B 1.
    assert r["invisible_iou/svsi/mean_all"] == pytest.approx(0.5)
    assert r["invisible_iou/svsi/mean_occluded"] == pytest.approx(1.0)
    assert r["invisible_iou/svsi/pooled_all"] == pytest.approx(1.0)
    # Every convention reports the four statistics.
    for c in SEGMENTATION_CONVENTIONS:
        for stat in ("mean_all", "pooled_all", "mean_occluded", "pooled_occluded"):
            assert f"{c}/{stat}" in r

    stacked = SegmentationMeter()
    stacked.add(np.stack([pred_a, pred_b]), np.stack([gt_a, gt_b]), np.stack([vis_a, vis_b]))
    assert stacked.compute() == r
    assert len(stacked) == 2


def test_meter_visible_as_full_gives_zero_invisible_on_occluded():
    meter = SegmentationMeter()
    meter.add(S_V.copy(), S_F, S_V)
    meter.add(S_F.copy(), S_F, S_F.copy())  # unoccluded object, perfect
    r = meter.compute()
    assert r["invisible_iou/justamodal/mean_occluded"] == 0.0
    assert r["invisible_iou/svsi/mean_occluded"] == 0.0
    assert r["invisible_iou/justamodal/mean_all"] == pytest.approx(0.5)  # the empty case is 1
    assert r["full_iou/standard/mean_occluded"] == pytest.approx(0.5)


def test_empty_meter_is_nan():
    r = SegmentationMeter().compute()
    assert math.isnan(r["full_iou/standard/mean_all"]) and r["count/all"] == 0


# ----------------------------------------------------------------------------- painting


def test_painting_constant_error():
    target = np.full((4, 4, 3), 0.5)
    painted = np.zeros((4, 4, 3))  # outside the mask: ignored
    mask = box(4, 4, 1, 3, 1, 3)
    painted[mask] = 0.6  # error 0.1 on every masked pixel and channel
    e = painting_errors(painted, target, mask)
    assert e["l1/masked_mean"] == pytest.approx(0.1)
    assert e["l2/masked_mse"] == pytest.approx(0.01)
    assert e["psnr/masked_db"] == pytest.approx(20.0)  # 10 log10(1 / 0.01)


def test_painting_perfect_is_capped_and_ssim_one_on_box_crop():
    rng = np.random.default_rng(0)
    target = rng.random((10, 10, 3))
    painted = target.copy()
    mask = box(10, 10, 2, 8, 2, 8)  # box 6x6, grown to rows/cols 2..8 (7x7)
    painted[9, :] = 0.0  # outside the grown box: affects no metric
    painted[:, 0] = 1.0
    e = painting_errors(painted, target, mask)
    assert e["l1/masked_mean"] == 0.0 and e["l2/masked_mse"] == 0.0
    assert e["psnr/masked_db"] == PSNR_CAP_DB
    assert e["ssim/bbox_crop"] == pytest.approx(1.0)
    other = painted.copy()
    other[2:9, 8] = 1 - other[2:9, 8]  # inside the box, outside the mask: SSIM sees it
    e2 = painting_errors(other, target, mask)
    assert e2["l1/masked_mean"] == 0.0 and e2["ssim/bbox_crop"] < 1.0


def test_painting_input_checks_and_meter():
    img = np.full((4, 4, 3), 0.5)
    mask = box(4, 4, 0, 2, 0, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        painting_errors(img * 255, img, mask)
    with pytest.raises(ValueError, match="empty"):
        painting_errors(img, img, np.zeros((4, 4), dtype=bool))
    meter = PaintingMeter()
    meter.add(img + 0.1, img, mask)
    meter.add(img + 0.3, img, mask)
    r = meter.compute()
    assert r["l1/masked_mean"] == pytest.approx(0.2)
    assert r["l2/masked_mse"] == pytest.approx((0.01 + 0.09) / 2)
    assert r["count"] == 2


# ----------------------------------------------------------------------------- depth layering


@pytest.mark.parametrize("k, occludes", [(19, True), (20, False), (21, False)])
def test_occlusion_graph_five_percent_boundary(k, occludes):
    # Object 1: S_V = row 1 cols 0-4; predicted S_I = row 0 cols 0..k-1 (k px).
    # Object 0: S_V = the single pixel (0, 0) inside it: IoU = 1 / k (1/20 = 0.05 is not above).
    h, w = 2, 30
    s_v = np.stack([box(h, w, 0, 1, 0, 1), box(h, w, 1, 2, 0, 5)])
    pred_full = np.stack([s_v[0].copy(), s_v[1] | box(h, w, 0, 1, 0, k)])
    pairs = occlusion_graph(s_v, pred_full)
    assert pairs == ({(0, 1)} if occludes else set())


def test_occlusion_graph_ignores_own_visible_region():
    s_v = np.stack([box(4, 4, 0, 2, 0, 2), box(4, 4, 0, 2, 0, 2)])
    assert occlusion_graph(s_v, s_v.copy()) == set()  # predicted S_I empty for both


def test_layering_accuracy_one_reversed_pair():
    gt = {(0, 1), (1, 2), (0, 2)}
    assert layering_accuracy({(0, 1), (2, 1), (0, 2)}, gt) == pytest.approx(2 / 3)
    assert layering_accuracy({(0, 1), (1, 0), (1, 2), (0, 2)}, gt) == pytest.approx(2 / 3)
    assert layering_accuracy(set(), gt) == 0.0
    assert layering_accuracy({(0, 1)}, set()) is None
    meter = LayeringMeter()
    meter.add({(0, 1), (2, 1), (0, 2)}, gt)
    meter.add(gt, gt)
    meter.add({(0, 1)}, set())
    r = meter.compute()
    assert r["layering_accuracy/mean_images"] == pytest.approx((2 / 3 + 1) / 2)
    assert r["count/images"] == 2 and r["count/skipped_images"] == 1


def test_depth_layers_chain_diamond_cycle():
    assert depth_layers({(0, 1), (1, 2)}, 3).tolist() == [0, 1, 2]
    assert depth_layers({(0, 1), (1, 2), (0, 2)}, 3).tolist() == [0, 1, 2]  # longest path
    assert depth_layers({(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)}, 5).tolist() == [0, 1, 1, 2, 0]
    # cycle 0 -> 1 -> 2 -> 0: all have one occluder, the lowest index (0) is placed first
    assert depth_layers({(0, 1), (1, 2), (2, 0)}, 3).tolist() == [0, 1, 2]
    # 0 -> 1 <-> 2: after 0, both 1 and 2 have one unplaced occluder; 1 goes first
    assert depth_layers({(0, 1), (1, 2), (2, 1)}, 3).tolist() == [0, 1, 2]
    # 0 is occluded only by the cycle 1 <-> 2, so it lies behind it, though it has the fewest
    # unplaced occluders (a tiny run's prediction once put it in front)
    assert depth_layers({(1, 2), (2, 1), (2, 0)}, 3).tolist() == [2, 0, 1]
    # a cycle behind another: only pairs inside each cycle are dropped
    layers = depth_layers({(0, 1), (1, 0), (1, 2), (2, 3), (3, 2)}, 4)
    assert layers.tolist() == [0, 1, 2, 3]
    assert depth_layers({(1, 1)}, 2).tolist() == [0, 0]  # self-pairs ignored
    with pytest.raises(ValueError):
        depth_layers({(0, 3)}, 3)


def test_occlusion_graph_matches_pairwise_loop_and_layers_respect_dag():
    rng = np.random.default_rng(1)
    s_v = rng.random((5, 8, 8)) < 0.3
    pred_full = s_v | (rng.random((5, 8, 8)) < 0.3)
    expected = {
        (q, p) for q in range(5) for p in range(5)
        if q != p and iou(s_v[q], pred_full[p] & ~s_v[p], empty=0.0) > 0.05
    }
    assert occlusion_graph(s_v, pred_full) == expected
    dag = {(q, p) for q in range(6) for p in range(q + 1, 6) if rng.random() < 0.5}
    layers = depth_layers(dag, 6)
    assert all(layers[p] > layers[q] for q, p in dag)
