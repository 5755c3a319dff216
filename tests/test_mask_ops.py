"""Known answers of `segan.mask_ops`: the mask IoU matrix and duplicate suppression."""

import numpy as np
import pytest

from segan import mask_ops
from segan.mask_ops import mask_iou_matrix, suppress_duplicates


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_suppress_duplicates_keeps_the_higher_score_of_each_overlapping_pair():
    a = _rect(20, 20, 0, 10, 0, 10)  # 100 px
    b = _rect(20, 20, 0, 10, 2, 10)  # 80 px inside a: IoU 0.8
    c = _rect(20, 20, 0, 10, 8, 18)  # 100 px, 20 shared with a: IoU 20 / 180 = 0.11
    d = _rect(20, 20, 15, 20, 15, 20)  # apart
    masks = np.stack([a, b, c, d])
    np.testing.assert_allclose(mask_iou_matrix(masks[:1], masks[1:3])[0], [0.8, 20 / 180])
    # b scores highest: it stays and drops a (IoU 0.8); c and d stay; order by score
    kept = suppress_duplicates(masks, np.array([0.6, 0.9, 0.7, 0.5]), 0.3)
    assert kept.tolist() == [1, 2, 3]
    # a threshold above 0.8 keeps all four, highest score first; ties by index
    assert suppress_duplicates(masks, np.array([0.5, 0.9, 0.5, 0.7]), 0.85).tolist() == [1, 3, 0, 2]
    # below 0.125 c goes too (its IoU with b: 20 / 160); d, apart, never
    assert suppress_duplicates(masks, np.array([0.6, 0.9, 0.7, 0.5]), 0.12).tolist() == [1, 3]
    assert suppress_duplicates(masks, np.array([0.6, 0.9, 0.7, 0.5]), 0.13).tolist() == [1, 2, 3]
    assert suppress_duplicates(masks, np.array([0.9, 0.6, 0.7, 0.5]), 0.1).tolist() == [0, 3]
    assert suppress_duplicates(masks[:0], np.zeros(0), 0.3).tolist() == []


def test_suppress_duplicates_subsamples_large_images(monkeypatch):
    """IoU on every k-th row and column (k = ceil(side / SUPPRESS_MAX_SIDE)): the same
    decisions as at full resolution for masks that are not thinner than k."""
    monkeypatch.setattr(mask_ops, "SUPPRESS_MAX_SIDE", 8)
    a = _rect(32, 32, 0, 16, 0, 16)
    b = _rect(32, 32, 0, 16, 4, 16)  # IoU 0.75 at full resolution and on the 4-pixel grid
    c = _rect(32, 32, 20, 32, 20, 32)
    kept = suppress_duplicates(np.stack([a, b, c]), np.array([0.9, 0.8, 0.7]), 0.5)
    assert kept.tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"max_iou must be in \[0, 1\]"):
        suppress_duplicates(np.stack([a]), np.array([1.0]), 1.5)
    with pytest.raises(ValueError, match="need"):
        suppress_duplicates(np.stack([a, b]), np.array([1.0]), 0.5)


def test_thresholding_after_suppression_keeps_what_suppressing_above_the_threshold_keeps():
    """A mask is dropped only by a higher-scored kept one, so the score threshold and the
    suppression commute (scripts/segmenter_pr.py merges once at threshold 0, then thresholds)."""
    rng = np.random.default_rng(0)
    masks = np.zeros((40, 32, 32), bool)
    for m in masks:
        y, x = rng.integers(0, 24, 2)
        h, w = rng.integers(3, 9, 2)
        m[y:y + h, x:x + w] = True
    scores = rng.random(40)
    merged = suppress_duplicates(masks, scores, 0.3)
    assert len(merged) < 40  # some pairs overlap above 0.3
    for t in (0.2, 0.5, 0.8):
        above = np.flatnonzero(scores >= t)
        direct = above[suppress_duplicates(masks[above], scores[above], 0.3)]
        assert merged[scores[merged] >= t].tolist() == direct.tolist()


def test_grown_box_mask_known_answer():
    """S_V's box grown by r of its width / height per side, clipped to the image: a 2 x 5 box at
    rows 4-5, columns 2-6 of a 10 x 10 image, grown by 0.4 -> rows 4-0.8 .. 6+0.8 (3..7 after
    int / ceil), columns 0..8 (2-2 = 0, ceil(7+2) = 9); an empty mask has an empty box."""
    from segan.mask_ops import grown_box_mask

    visible = np.zeros((10, 10), bool)
    visible[4:6, 2:7] = True
    expected = np.zeros((10, 10), bool)
    expected[3:7, 0:9] = True
    assert np.array_equal(grown_box_mask(visible, 0.4), expected)
    assert np.array_equal(grown_box_mask(visible, 0.0), visible)
    assert not grown_box_mask(np.zeros((4, 4), bool), 0.5).any()
