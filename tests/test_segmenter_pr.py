"""scripts/segmenter_pr.py's miss breakdown: why each missed object was missed (known answers
on hand-made IoU matrices and masks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "segmenter_pr.py"
spec = importlib.util.spec_from_file_location("segmenter_pr", SCRIPT)
pr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pr)


def test_each_miss_gets_the_first_reason_that_applies():
    # 4 detections (the first two kept) x 5 objects; object 0 is matched to detection 0
    mask_iou = np.array([[0.8, 0.6, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 0.7, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.3, 0.0]])
    box_iou = np.array([[0.9, 0.7, 0.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0, 0.4],
                        [0.0, 0.0, 0.8, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 0.6, 0.0]])
    kept = np.array([True, True, False, False])
    matched = np.array([True, False, False, False, False])
    got = pr.miss_reasons(mask_iou, box_iou, kept, matched)
    assert [pr.MISS_REASONS[r] for r in got] == ["taken", "low score", "mask off", "not found"]
    # a kept mask that would match outranks a lower-scored one and a box-only overlap
    mask_iou[2, 1] = 0.9
    assert pr.MISS_REASONS[pr.miss_reasons(mask_iou, box_iou, kept, matched)[0]] == "taken"
    # no detections at all: every object "not found"
    none = np.zeros((0, 3))
    assert list(pr.miss_reasons(none, none, np.zeros(0, bool), np.zeros(3, bool))) == [3, 3, 3]


def test_boxes_of_masks_and_their_iou():
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:6, 3:9] = True  # box x 3-8, y 2-5
    masks[1, 2:6, 6:12] = True  # box x 6-11, same rows
    boxes = pr.boxes_of(masks)
    np.testing.assert_array_equal(boxes, [[3, 2, 8, 5], [6, 2, 11, 5]])
    iou = pr.box_iou_matrix(boxes, boxes)
    np.testing.assert_allclose(np.diag(iou), 1.0)
    np.testing.assert_allclose(iou[0, 1], (2 * 3) / (5 * 3 + 5 * 3 - 2 * 3))  # torchvision's
    assert pr.boxes_of(np.zeros((0, 20, 30), bool)).shape == (0, 4)
    assert pr.box_iou_matrix(boxes, np.zeros((0, 4))).shape == (2, 0)


def test_hidden_pixels_under_other_given_masks():
    """An object's hidden pixels count where another given mask (an object's or an extra
    thing's) covers them, never where only its own does."""
    hidden = np.zeros((2, 4, 6), bool)
    hidden[0, 0, 0:4] = True  # 4 hidden pixels of object 0
    hidden[1, 3, 0:2] = True  # 2 of object 1
    given = np.zeros((3, 4, 6), bool)
    given[0, 0, 0:4] = True  # object 0's own mask over its hidden pixels: not counted
    given[1, 0, 0:1] = True  # object 1 covers one of object 0's
    given[2, 0, 3:6] = True  # an extra thing covers another one
    given[2, 3, 1] = True  # and one of object 1's
    assert pr.hidden_under_others(hidden, given) == (3, 6)
    assert pr.hidden_under_others(hidden, given[:2]) == (1, 6)
    assert pr.hidden_under_others(hidden[:0], given[:0]) == (0, 0)
