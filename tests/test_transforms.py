"""segan.transforms' box growing and frame conversions: known answers, and the one home of each
(training's cache, the evaluation's image baselines and IBBE use these, not copies)."""

import torch

from segan.transforms import (
    boxes_to_image_frame,
    coco_box_in_frame,
    expand_boxes_per_side,
    mask_boxes_in_frame,
    paste_to_image,
    visible_boxes_in_frame,
)


def test_growing_by_one_ratio_is_growing_every_side_by_it():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 90.0, 50.0, 100.0]])
    grown = expand_boxes_per_side(boxes, 0.25, 100)
    # w = 20, h = 40: 5 and 10 px a side; the second box is clipped to the 100 x 100 frame
    assert grown.tolist() == [[5.0, 10.0, 35.0, 70.0], [0.0, 87.5, 62.5, 100.0]]
    assert torch.equal(grown, expand_boxes_per_side(boxes, torch.full_like(boxes, 0.25), 100))
    # as IBBE grew its context box before (boxes + [-w, -h, w, h] * ratio, clipped): equal
    g = torch.Generator().manual_seed(0)
    b = torch.rand(500, 4, generator=g) * 200
    b[:, 2:] += b[:, :2]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    old = (b + torch.stack([-w, -h, w, h], dim=1) * 0.3).clamp(0, 256)
    assert torch.equal(expand_boxes_per_side(b, 0.3, 256), old)


def test_frame_conversions_known_answers():
    # a 200 x 400 (H x W) image in a 100 x 100 frame: x / 4, y / 2
    assert coco_box_in_frame([40, 20, 80, 60], (200, 400), 100) == (10.0, 10.0, 30.0, 40.0)
    vb = visible_boxes_in_frame([[40, 20, 80, 60]], (200, 400), 100, torch.device("cpu"))
    assert vb.dtype == torch.float32 and vb.tolist() == [[10.0, 10.0, 30.0, 40.0]]
    frame = torch.tensor([[3.0, 10.0, 10.0, 30.0, 40.0]])
    assert boxes_to_image_frame(frame, 100, 200, 400).tolist() == [[3.0, 40.0, 20.0, 120.0,
                                                                     80.0]]
    masks = torch.zeros(1, 200, 400, dtype=torch.bool)
    masks[0, 20:80, 40:120] = True
    assert mask_boxes_in_frame(masks, 100).tolist() == vb.tolist()


def test_paste_uses_the_box_in_the_image_frame():
    """A box map of ones pasted back covers the pixel centres inside the box scaled to H x W."""
    probs = torch.ones(1, 1, 4, 4)
    boxes = torch.tensor([[0.0, 10.0, 10.0, 30.0, 40.0]])  # 100 x 100 frame
    for by_box in (True, False):
        out = paste_to_image(probs, boxes, 100, 200, 400, by_box=by_box)[0]
        ys, xs = torch.nonzero(out > 0, as_tuple=True)
        assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20, 79, 40, 119)
