"""segan.transforms' box growing and frame conversions: known answers, and the one home of each
(training's cache, the evaluation's image baselines and IBBE use these, not copies)."""

import torch

from segan.models.crops import crop_own_boxes, recrop
from segan.transforms import (
    amodal_base_boxes,
    boxes_to_image_frame,
    coco_box_in_frame,
    expand_boxes_per_side,
    mask_boxes_in_frame,
    mask_extent_boxes,
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


def test_amodal_base_boxes_move_each_side_toward_the_amodal_box():
    vbox = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    fbox = torch.tensor([[12.0, 0.0, 40.0, 20.0]])  # S_F's box; the amodal box: (10, 0, 40, 20)
    assert amodal_base_boxes(vbox, fbox, torch.zeros(1, 4)).tolist() == vbox.tolist()
    assert amodal_base_boxes(vbox, fbox, torch.ones(1, 4)).tolist() == [[10.0, 0.0, 40.0, 20.0]]
    half = amodal_base_boxes(vbox, fbox, torch.tensor([[0.5, 0.5, 0.5, 0.0]]))
    assert half.tolist() == [[10.0, 5.0, 30.0, 20.0]]


def test_mask_extent_boxes_known_answers():
    probs = torch.zeros(3, 1, 4, 4)
    probs[0, 0, 1:3, 1:3] = 0.9  # inside: cells 1..3 of a box (0, 10, 20, 50, 60) -> 10 px each
    probs[1, 0, 0:2, 2:4] = 0.6  # reaches the top and the right edge
    boxes = torch.tensor([[0.0, 10.0, 20.0, 50.0, 60.0]] * 3)
    extent, edges = mask_extent_boxes(probs, boxes)
    assert extent.tolist() == [[20.0, 30.0, 40.0, 50.0], [30.0, 20.0, 50.0, 40.0],
                               [10.0, 20.0, 50.0, 60.0]]  # an empty mask: its box
    assert edges.tolist() == [[False] * 4, [False, True, True, False], [False] * 4]
    # two cells on the top and right edges: reached when at least 2 must be, not at 3
    assert mask_extent_boxes(probs, boxes, min_edge_cells=2)[1][1].tolist() == [False, True,
                                                                                  True, False]
    assert not mask_extent_boxes(probs, boxes, min_edge_cells=3)[1].any()


def test_recrop_equals_cropping_the_frame_again():
    # a linear ramp: every bilinear or box-averaged sample of it is exact, so cropping a
    # sub-box off a crop gives what cropping the frame gives
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    frame = torch.stack([xs / 64, 0.3 * xs / 64 + ys / 64])[None]
    big = torch.tensor([[8.0, 4.0, 56.0, 52.0]])  # 48 x 48: one sample per cell
    small = torch.tensor([[20.0, 16.0, 44.0, 40.0]])
    over_big = crop_own_boxes(frame, big, 48)
    assert torch.allclose(recrop(over_big, big, big), over_big, atol=1e-6)
    again = recrop(over_big, big, small)
    assert again.shape == (1, 2, 48, 48)
    torch.testing.assert_close(again, crop_own_boxes(frame, small, 48), atol=1e-5, rtol=0)
