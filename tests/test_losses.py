"""Eq. 2-6 against values computed by hand with `math` on tiny tensors."""

import math

import pytest
import torch

from segan.losses import (
    LossWeights,
    amodal_box_loss,
    discriminator_loss,
    full_loss,
    generator_gan_loss,
    masked_bce,
    painter_loss,
    segmentation_loss,
    segmentation_regions,
    soft_iou_loss,
)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def bce(logit: float, g: float) -> float:
    o = sigmoid(logit)
    return -(g * math.log(o) + (1 - g) * math.log(1 - o))


def t(values, shape=(1, 1, 2, 2)) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(shape)


# one 2x2 object; pixel order (0,0), (0,1), (1,0), (1,1)
LOGITS = [1.0, -0.5, 0.3, 2.0]
FULL_GT = [0.9, 0.6, 0.2, 0.7]  # soft S_F, thresholded: 1 1 0 1
VISIBLE_GT = [0.8, 0.1, 0.0, 0.55]  # soft S_V, thresholded: 1 0 0 1
# so S_V = {0, 3}, S_I = {1}, background = {2}


def test_masked_bce_eq2():
    subset = t([True, True, False, True]).bool()
    expected = (bce(1.0, 0.9) + bce(-0.5, 0.6) + bce(2.0, 0.7)) / 3
    assert masked_bce(t(LOGITS), t(FULL_GT), subset).item() == pytest.approx(expected, rel=1e-6)


def test_masked_bce_empty_subset_contributes_zero():
    logits = torch.cat([t(LOGITS), t(LOGITS)])
    target = torch.cat([t(FULL_GT), t(FULL_GT)])
    subset = torch.cat([t([False, False, True, False]), torch.zeros(1, 1, 2, 2)]).bool()
    per_object = masked_bce(logits, target, subset, reduction="none")
    assert per_object.tolist() == pytest.approx([bce(0.3, 0.2), 0.0], rel=1e-6)
    assert masked_bce(logits, target, subset).item() == pytest.approx(bce(0.3, 0.2) / 2, rel=1e-6)


def test_segmentation_regions_partition():
    bg, sv, si = segmentation_regions(t(FULL_GT), t(VISIBLE_GT))
    assert sv.flatten().tolist() == [True, False, False, True]
    assert si.flatten().tolist() == [False, True, False, False]
    assert bg.flatten().tolist() == [False, False, True, False]
    # an S_V pixel outside the thresholded S_F counts as visible, never as background
    bg, sv, si = segmentation_regions(t([0.4, 0, 0, 0]), t([0.6, 0, 0, 0]))
    assert (sv[0, 0, 0, 0], bg[0, 0, 0, 0], si[0, 0, 0, 0]) == (True, False, False)
    assert ((bg.int() + sv.int() + si.int()) == 1).all()


def test_segmentation_loss_eq3():
    l_bg = bce(0.3, 0.2)
    l_sv = (bce(1.0, 0.9) + bce(2.0, 0.7)) / 2
    l_si = bce(-0.5, 0.6)
    loss = segmentation_loss(t(LOGITS), t(FULL_GT), t(VISIBLE_GT))
    assert loss.item() == pytest.approx(1 * l_bg + 5 * l_sv + 3 * l_si, rel=1e-6)

    weights = LossWeights(lambda_bg=2.0, lambda_sv=0.0, lambda_si=0.5)
    loss = segmentation_loss(t(LOGITS), t(FULL_GT), t(VISIBLE_GT), weights)
    assert loss.item() == pytest.approx(2 * l_bg + 0.5 * l_si, rel=1e-6)

    # binarised target (the reference code's cleaned ground truth)
    loss = segmentation_loss(t(LOGITS), t(FULL_GT), t(VISIBLE_GT), binarize_target=True)
    expected = bce(0.3, 0) + 5 * (bce(1.0, 1) + bce(2.0, 1)) / 2 + 3 * bce(-0.5, 1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_segmentation_loss_object_without_occlusion():
    # S_I empty: its term is 0, not NaN
    loss = segmentation_loss(t(LOGITS), t(VISIBLE_GT), t(VISIBLE_GT))
    l_bg = (bce(-0.5, 0.1) + bce(0.3, 0.0)) / 2
    l_sv = (bce(1.0, 0.8) + bce(2.0, 0.55)) / 2
    assert loss.item() == pytest.approx(l_bg + 5 * l_sv, rel=1e-6)


def test_segmentation_loss_region_weighted_l1():
    o = [sigmoid(x) for x in LOGITS]
    err = [abs(oi - gi) for oi, gi in zip(o, FULL_GT, strict=True)]
    # mean over ALL 4 pixels of the region-masked error, times weight / normaliser
    expected = ((1 / 0.025) * err[2] + (5 / 0.01) * (err[0] + err[3]) + (3 / 0.03) * err[1]) / 4
    loss = segmentation_loss(t(LOGITS), t(FULL_GT), t(VISIBLE_GT), kind="l1")
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_discriminator_loss_eq4():
    real, fake = [0.5, -1.0], [2.0, 0.0]
    expected = (-math.log(sigmoid(0.5)) - math.log(sigmoid(-1.0))) / 2 + (
        -math.log(1 - sigmoid(2.0)) - math.log(1 - sigmoid(0.0))) / 2
    out = discriminator_loss(torch.tensor(real), torch.tensor(fake))
    assert out.item() == pytest.approx(expected, rel=1e-6)
    out = discriminator_loss(torch.tensor(real), torch.tensor(fake), scale=0.5)
    assert out.item() == pytest.approx(expected / 2, rel=1e-6)


def test_generator_gan_loss_eq4():
    fake = [2.0, -1.0, 0.25]
    non_saturating = sum(-math.log(sigmoid(x)) for x in fake) / 3
    saturating = sum(math.log(1 - sigmoid(x)) for x in fake) / 3
    assert generator_gan_loss(torch.tensor(fake)).item() == pytest.approx(non_saturating, rel=1e-6)
    out = generator_gan_loss(torch.tensor(fake), saturating=True)
    assert out.item() == pytest.approx(saturating, rel=1e-6)


def test_painter_and_full_loss_eq5_eq6():
    fake = torch.tensor([[0.5, -0.5]])
    painted = torch.tensor([0.1, -0.2, 0.3, 0.9]).view(1, 1, 2, 2)
    target = torch.tensor([0.0, 0.0, 0.5, 1.0]).view(1, 1, 2, 2)
    l_gan = (-math.log(sigmoid(0.5)) - math.log(sigmoid(-0.5))) / 2
    l1 = (0.1 + 0.2 + 0.2 + 0.1) / 4
    l_star = painter_loss(fake, painted, target)
    assert l_star.item() == pytest.approx(l_gan + 100 * l1, rel=1e-6)
    weights = LossWeights(lambda_l1=10.0, lambda_star=0.5)
    l_star = painter_loss(fake, painted, target, weights)
    assert l_star.item() == pytest.approx(l_gan + 10 * l1, rel=1e-6)

    l_segm = torch.tensor(2.0)
    assert full_loss(torch.tensor(3.0), l_segm).item() == pytest.approx(0.1 * 3 + 2)
    assert full_loss(torch.tensor(3.0), l_segm, weights).item() == pytest.approx(0.5 * 3 + 2)


def test_losses_take_bf16_and_return_fp32():
    logits = t(LOGITS).bfloat16().requires_grad_()
    loss = segmentation_loss(logits, t(FULL_GT).bfloat16(), t(VISIBLE_GT).bfloat16())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad.dtype == torch.bfloat16
    out = painter_loss(torch.zeros(2, 1, 3, 3, dtype=torch.bfloat16),
                       torch.zeros(2, 3, 4, 4, dtype=torch.bfloat16), torch.ones(2, 3, 4, 4))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(math.log(2) + 100, rel=1e-6)


def test_default_weights_are_section_5_1():
    w = LossWeights()
    lambdas = (w.lambda_bg, w.lambda_sv, w.lambda_si, w.lambda_l1, w.lambda_star)
    assert lambdas == (1, 5, 3, 100, 0.1)


def test_soft_iou_loss_known_answers():
    """1 - sum(o g) / sum(o + g - o g) per object; 0 where both are empty."""
    g = torch.zeros(4, 1, 2, 2)
    g[:, :, 0, :] = 1  # S_F: the top row, 2 pixels
    o = torch.zeros(4, 1, 2, 2)
    o[0] = g[0]  # exact: loss 0
    o[1, :, 1, :] = 1  # disjoint: loss 1
    o[2, :, :, 0] = 1  # the left column: 1 shared of 3 -> 1 - 1/3
    o[3] = 0.5  # o 0.5 everywhere: inter 1, union 2 + 2 - 1 = 3 -> 1 - 1/3
    got = soft_iou_loss(o, g, reduction="none")
    assert torch.allclose(got, torch.tensor([0.0, 1.0, 2 / 3, 2 / 3]))
    assert math.isclose(soft_iou_loss(o, g).item(), (0 + 1 + 4 / 3) / 4, rel_tol=1e-6)
    empty = torch.zeros(1, 1, 2, 2)
    assert soft_iou_loss(empty, empty).item() == 0.0
    # the gradient pushes o up inside S_F and down outside it
    o = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    soft_iou_loss(o, g[:1]).backward()
    assert (o.grad[0, 0, 0] < 0).all() and (o.grad[0, 0, 1] > 0).all()


def test_amodal_box_loss_known_answer():
    """Box (0, 0, 10, 20); amodal box (-2, 0, 10, 24): target deltas (-0.2, 0, 0, 0.2). Deltas
    (-0.2, 0, 0.05, 0.2): one side off by 0.05 < beta 0.1 -> 0.5 x 0.05^2 / 0.1 / 4 sides."""
    boxes = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    amodal = torch.tensor([[-2.0, 0.0, 10.0, 24.0]])
    assert amodal_box_loss(torch.tensor([[-0.2, 0.0, 0.0, 0.2]]), boxes, amodal).item() == 0
    got = amodal_box_loss(torch.tensor([[-0.2, 0.0, 0.05, 0.2]]), boxes, amodal).item()
    assert math.isclose(got, 0.5 * 0.05 ** 2 / 0.1 / 4, rel_tol=1e-5)
    # beyond beta: |d| - beta / 2
    got = amodal_box_loss(torch.tensor([[0.8, 0.0, 0.0, 0.2]]), boxes, amodal).item()
    assert math.isclose(got, (1.0 - 0.05) / 4, rel_tol=1e-5)
