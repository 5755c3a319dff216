"""Image-level models: the class-agnostic Mask R-CNN (visible and full masks), the depth network
and its losses (known answers), and the matching rule of --visible predicted (hand-made masks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from segan.eval.matching import best_per_object, mask_iou_matrix, match_greedy, match_masks
from segan.losses import l1_log_loss, scale_invariant_log_loss
from segan.models.depth_net import DepthNet
from segan.models.visible_segmenter import (
    MaskRCNNNet,
    VisibleSegmenter,
    load_maskrcnn,
)
from segan.train.checkpoint import export_safetensors

# a small detector for CPU tests (the configs' full size is ResNet-18-FPN, 256 channels)
TINY_DETECTOR = dict(backbone="resnet18", min_size=64, max_size=64, fpn_channels=32,
                     box_head_dim=64, rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                     rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                     rpn_batch_size_per_image=32, box_batch_size_per_image=32,
                     box_detections_per_img=20, anchor_sizes=(8, 16, 32, 64, 128))


def params_without_grad(module: nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters()
            if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]


def detection_sample(seed: int, size: int = 64) -> tuple[list[torch.Tensor], list[dict]]:
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, size, size, generator=g) for _ in range(2)]
    targets = []
    for k in range(2):
        masks = torch.zeros(2, size, size, dtype=torch.uint8)
        masks[0, 5:30, 8:40] = 1
        masks[1, 28 + k:60, 30:62] = 1
        boxes = torch.tensor([[8, 5, 40, 30], [30, 28 + k, 62, 60]], dtype=torch.float32)
        targets.append({"boxes": boxes, "labels": torch.ones(2, dtype=torch.int64),
                        "masks": masks})
    return images, targets


@pytest.mark.parametrize("mask_target", ["visible", "full"])
def test_maskrcnn_losses_finite_and_every_parameter_gets_a_gradient(mask_target):
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target=mask_target, **TINY_DETECTOR).train()
    images, targets = detection_sample(0)
    losses = net(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert params_without_grad(net) == []


def test_maskrcnn_inference_shapes_and_segmenter_api(tmp_path):
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target="visible", score_threshold=0.0, **TINY_DETECTOR).eval()
    with torch.no_grad():
        out = net([torch.rand(3, 50, 70)])[0]
    n = len(out["scores"])
    assert out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 1, 50, 70)
    assert torch.isfinite(out["masks"]).all() and torch.isfinite(out["scores"]).all()

    path = export_safetensors(net, tmp_path / "model.safetensors", {"task": "visible_maskrcnn"}, 7)
    seg = VisibleSegmenter.from_checkpoint(path, device="cpu")
    assert seg.mask_target == "visible" and seg.identity["step"] == 7
    image = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    masks, scores = seg.segment(image)
    assert masks.dtype == np.bool_ and masks.shape == (len(scores), 50, 70)
    assert scores.dtype == np.float32 and (np.diff(scores) <= 0).all()
    kept = seg.segment(image, score_threshold=float(np.median(scores)) if len(scores) else 0.5)[1]
    assert len(kept) <= len(scores) and (kept >= (np.median(scores) if len(scores) else 0.5)).all()
    # the exported weights rebuild the same network
    again, _ = load_maskrcnn(path, "cpu")
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        seg.segment(image.astype(np.float32))


def test_depth_net_shapes_gradients_and_initial_depth():
    torch.manual_seed(0)
    net = DepthNet(decoder_width=32, init_log_depth=math.log(3.0))
    x = torch.randn(2, 3, 64, 96)
    y = net(x)
    assert y.shape == (2, 1, 64, 96) and torch.isfinite(y).all()
    assert (y - math.log(3.0)).abs().max() < 0.05  # starts near the initial depth
    depth = torch.rand(2, 1, 64, 96) * 4 + 0.5
    scale_invariant_log_loss(y + 0.1 * torch.randn_like(y), depth).backward()
    assert params_without_grad(net) == []
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.randn(1, 3, 50, 64))


def test_scale_invariant_loss_known_answers():
    gt = torch.tensor([1.0, 2.0, 4.0, 0.0]).view(1, 1, 2, 2)  # last pixel: no surface
    # d = log(pred) - log(gt) = (1, 1, 1) on the valid pixels: a pure scale, so with lam = 1
    # the loss is 0 and with lam = 0.5 it is 1 - 0.5 * 9 / 9 = 0.5
    pred = torch.log(gt.clamp_min(1e-6)) + 1.0
    assert scale_invariant_log_loss(pred, gt, lam=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert scale_invariant_log_loss(pred, gt, lam=0.5).item() == pytest.approx(0.5, abs=1e-6)
    # d = (0, 0, 3): (1/3) 9 - 0.5 (1/9) 9 = 2.5
    pred2 = torch.log(gt.clamp_min(1e-6)) + torch.tensor([0.0, 0.0, 3.0, 7.0]).view(1, 1, 2, 2)
    assert scale_invariant_log_loss(pred2, gt).item() == pytest.approx(2.5, abs=1e-5)
    assert l1_log_loss(pred2, gt).item() == pytest.approx(1.0, abs=1e-6)
    # an image without valid pixels contributes 0 to the batch mean
    both = torch.cat([gt, torch.zeros_like(gt)])
    assert scale_invariant_log_loss(torch.cat([pred2, pred2]), both).item() == pytest.approx(1.25)


def _rect(h0: int, h1: int, w0: int, w1: int, size: int = 10) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[h0:h1, w0:w1] = True
    return m


def test_matching_rule_on_hand_made_masks():
    gt = np.stack([_rect(0, 4, 0, 4), _rect(0, 4, 5, 9), _rect(6, 10, 0, 10)])  # 16, 16, 40 px
    pred = np.stack([
        _rect(0, 4, 5, 9),    # = gt 1 exactly (IoU 1)
        _rect(0, 4, 0, 3),    # gt 0: 12 / 16 = 0.75
        _rect(0, 4, 0, 2),    # gt 0: 8 / 16 = 0.5, loses to pred 1 -> false positive
        _rect(6, 10, 0, 3),   # gt 2: 12 / 40 = 0.3 < 0.5 -> false positive, gt 2 missed
        _rect(0, 2, 0, 2),    # gt 0: 4 / 16 = 0.25 -> false positive
    ])
    iou = mask_iou_matrix(pred, gt)
    assert iou[1, 0] == pytest.approx(0.75) and iou[2, 0] == pytest.approx(0.5)
    assert iou[3, 2] == pytest.approx(0.3) and iou[0, 1] == 1.0 and iou[0, 0] == 0.0
    m = match_masks(pred, gt)
    assert m.pred_of_object.tolist() == [1, 0, -1]
    assert m.iou.tolist() == pytest.approx([0.75, 1.0, 0.0])
    assert m.false_positives.tolist() == [2, 3, 4]
    assert m.matched.tolist() == [True, True, False] and m.num_missed == 1
    # the 0.5 bound is inclusive: alone, pred 2 matches gt 0
    assert match_masks(pred[2:3], gt).pred_of_object.tolist() == [0, -1, -1]
    # training inputs (paper 5.2): each object's best prediction, not one to one
    best, best_iou = best_per_object(iou)
    assert best.tolist() == [1, 0, 3] and best_iou.tolist() == pytest.approx([0.75, 1.0, 0.3])
    # no predictions: every object missed
    empty = match_masks(np.zeros((0, 10, 10), bool), gt)
    assert empty.pred_of_object.tolist() == [-1, -1, -1] and empty.false_positives.size == 0
    assert best_per_object(np.zeros((0, 3)))[0].tolist() == [-1, -1, -1]


def test_greedy_ties_and_zero_threshold():
    iou = np.array([[0.6, 0.6], [0.6, 0.0]])
    # ties by (prediction, object): pred 0 takes object 0, pred 1 has nothing left above 0
    m = match_greedy(iou)
    assert m.pred_of_object.tolist() == [0, -1] and m.false_positives.tolist() == [1]
    # min_iou 0 still needs an overlap
    assert match_greedy(np.zeros((2, 2)), min_iou=0.0).pred_of_object.tolist() == [-1, -1]
    assert match_greedy(np.array([[0.1]]), min_iou=0.0).pred_of_object.tolist() == [0]
