"""SeGAN's occluder_gate (not in the paper): a hidden part only under another object's visible
pixels. Known answers for the gate over boxes and in the image frame, the loss it implies (only
C's pixels judged), the network with it (shapes, finite, every parameter's gradient, rebuild),
and the predictor's guarantees (S_V inside S_F, S_I inside the other objects' S_V)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.inference import SeganPredictor
from segan.losses import full_loss, painter_loss, segmentation_loss
from segan.models import SeGAN, crop_object_masks
from segan.models.segan import gate_full_mask
from segan.occluder_gate import (
    MUTUAL_PEAK,
    attached_hidden,
    drop_detached_hidden,
    gate_full_probs,
    mutual_claims,
)
from segan.train import build_segan, load_config
from test_crop_segmentor import CROP
from test_models import make_objects, params_without_grad, tiny_segan
from test_predict_fast import scene

ROOT = Path(__file__).resolve().parents[1]


def two_objects() -> torch.Tensor:
    """One 8 x 8 image: A visible on columns 0-3, B on columns 4-5, background on 6-7."""
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, :, 0:4] = 1
    masks[1, :, :, 4:6] = 1
    return masks


def test_gate_over_boxes_known_answer():
    masks = two_objects()
    boxes = torch.tensor([[0, 0, 0, 8, 8], [0, 0, 0, 8, 8]], dtype=torch.float32)
    probs = torch.full((2, 1, 8, 8), 0.7)
    gated, C = gate_full_mask(probs, masks, boxes, None, 1)
    expect_a = torch.tensor([1, 1, 1, 1, 0.7, 0.7, 0, 0]).expand(8, 8)
    expect_b = torch.tensor([0.7, 0.7, 0.7, 0.7, 1, 1, 0, 0]).expand(8, 8)
    torch.testing.assert_close(gated[0, 0], expect_a)
    torch.testing.assert_close(gated[1, 0], expect_b)
    torch.testing.assert_close(C[0, 0], torch.tensor([0., 0, 0, 0, 1, 1, 0, 0]).expand(8, 8))
    # a given union wins over the objects of the call: B alone, with A's pixels in U
    alone, _ = gate_full_mask(probs[1:], masks[1:], boxes[1:], masks.amax(0, keepdim=True), 1)
    torch.testing.assert_close(alone[0, 0], expect_b)


def test_gate_in_image_frame_known_answer():
    visible = two_objects()[:, 0].bool()
    probs = torch.stack([torch.full((8, 8), 0.6), torch.full((8, 8), 0.7)])
    torch.testing.assert_close(gate_full_probs(probs, visible, one_way=False)[0],
                               torch.tensor([1, 1, 1, 1, 0.6, 0.6, 0, 0]).expand(8, 8))
    gated = gate_full_probs(probs, visible)
    # A claims B at 0.6, B claims A at 0.7: only B's claim (B behind A) stays
    torch.testing.assert_close(gated[0], torch.tensor([1., 1, 1, 1, 0, 0, 0, 0]).expand(8, 8))
    torch.testing.assert_close(gated[1], torch.tensor([0.7, 0.7, 0.7, 0.7, 1, 1, 0, 0]
                                                      ).expand(8, 8))
    # one object alone: nothing can hide it, S_F = S_V
    torch.testing.assert_close(gate_full_probs(probs[:1], visible[:1]), visible[:1].float())


def test_loss_with_candidate_judges_only_c_and_s_i():
    """With C, logits on S_V and on background outside C get no gradient; inside C and on S_I
    they do; without C every pixel does."""
    full = torch.zeros(1, 1, 4, 4)
    full[..., :, 0:3] = 1  # S_F: columns 0-2
    visible = torch.zeros(1, 1, 4, 4)
    visible[..., :, 0:1] = 1  # S_V: column 0; S_I: columns 1-2
    candidate = torch.zeros(1, 1, 4, 4)
    candidate[..., :, 1:4] = 1  # C: columns 1-3 (column 3: background under an occluder)
    for cand, judged in ((candidate, [False, True, True, True]), (None, [True] * 4)):
        for gate_loss in ("pixels", "regions"):
            logits = torch.zeros(1, 1, 4, 4, requires_grad=True)
            segmentation_loss(logits, full, visible, candidate=cand,
                              gate_loss=gate_loss).backward()
            got = (logits.grad[0, 0] != 0).all(0).tolist()
            assert got == judged, (cand is not None, gate_loss, got)
    # one pixel mean over C u S_I (columns 1-3), times lambda_SI = 3: column 3's 4 pixels of
    # BCE(0, 0) = log 2 over 12 pixels
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., :, 1:3] = 20.0  # S_I right
    logits[..., :, 0] = -20.0  # S_V wrong: ignored under the gate
    loss = segmentation_loss(logits, full, visible, candidate=candidate, gate_loss="pixels")
    torch.testing.assert_close(loss, torch.tensor(float(np.log(2))), atol=1e-4, rtol=0)
    logits[..., :, 1:3] = 0.0  # S_I at log 2 too: all 12 pixels of C u S_I, times 3
    loss = segmentation_loss(logits, full, visible, candidate=candidate, gate_loss="pixels")
    torch.testing.assert_close(loss, torch.tensor(3 * float(np.log(2))), atol=1e-4, rtol=0)


def test_segan_with_gate_gradients_and_rebuild():
    torch.manual_seed(0)
    model = tiny_segan(**CROP, segmentor_context=True, occluder_gate="one_way")
    images, masks, boxes = make_objects()
    out = model(images, masks, boxes)
    assert out["mask_probs"].shape == out["candidate"].shape == (3, 1, 16, 16)
    assert all(torch.isfinite(v).all() for v in out.values())
    vis16 = crop_object_masks(masks, boxes, 16)
    assert (out["mask_probs"] >= vis16 - 1e-6).all()  # S_V is always in
    # object 2 is alone in image 1: nothing may be claimed outside its S_V
    assert (out["mask_probs"][2] <= vis16[2] + 1e-6).all()
    full_gt = (vis16 > 0).float()
    l_segm = segmentation_loss(out["mask_logits"], full_gt, vis16, candidate=out["candidate"])
    fake = model.discriminator(out["generator_input"], out["painted"])
    full_loss(painter_loss(fake, out["painted"], torch.rand(3, 3, 64, 64) * 2 - 1),
              l_segm).backward()
    for part in (model.segmentor, model.generator, model.discriminator):
        assert params_without_grad(part) == []
    assert SeGAN.from_hparams(model.hparams).occluder_gate == "one_way"


def test_predictor_with_gate_keeps_sv_and_hides_only_under_others():
    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml",
                      ["model.backbone_weights=none", "model.occluder_gate=one_way"])
    net = build_segan(cfg, "none")
    with torch.no_grad():  # a segmentor that claims its whole box: the gate alone decides
        net.segmentor.mask_head.bias.fill_(30.0)
    p = SeganPredictor(net, cfg, torch.device("cpu"))
    image, visible = scene(90, 120, 5, seed=3)
    out = p.predict(image, visible)
    others = visible.any(0)[None] & ~visible
    assert (out.full_masks >= visible).all()
    assert not (out.invisible_masks & ~others).any()
    assert out.invisible_masks.any()  # the other objects' pixels in each box are claimed
    with pytest.warns(UserWarning, match="pass the mask of every object in front"):
        alone = p.predict(image, visible[:1])
    np.testing.assert_array_equal(alone.full_masks, visible[:1])


def test_gate_keeps_only_the_surer_of_two_mutual_claims():
    """Claims compare mean claimed (>= 0.5) probabilities over the claimed object's S_V inside
    the claimer's box (where its pasted o is > 0), not areas: A is 0.9 on 2 of B's 4 columns and
    0.01 on the rest (0.45), B is 0.6 on all of A's: B's claim stays, A's goes. A's claim on C,
    which claims nothing back, stays (each kept claim touches its claimer's S_V)."""
    visible = torch.zeros(3, 1, 10)
    visible[0, 0, 2:6] = 1  # A
    visible[1, 0, 6:10] = 1  # B
    visible[2, 0, 0:2] = 1  # C
    probs = torch.zeros(3, 1, 10)
    probs[0, 0, :] = 0.01  # A's box: the whole row
    probs[0, 0, 6:8] = 0.9  # A behind B?
    probs[0, 0, 0:2] = 0.8  # A behind C
    probs[1, 0, 2:10] = 0.6  # B's box: columns 2-9; B behind A?
    gated = gate_full_probs(probs, visible.bool())
    torch.testing.assert_close(gated[0, 0], torch.tensor([0.8, 0.8, 1, 1, 1, 1, 0, 0, 0, 0]))
    torch.testing.assert_close(gated[1, 0], torch.tensor([0, 0, 0.6, 0.6, 0.6, 0.6, 1, 1, 1,
                                                           1]))
    torch.testing.assert_close(gated[2, 0], visible[2, 0])


def test_gate_unsure_probability_does_not_outweigh_a_sure_claim():
    """A is 0.49 on all of B's 4 columns (a mean of 0.49, but no pixel claimed), B is 0.8 on
    one of A's 4 columns and 0 on the rest (0.2): B's claim stays."""
    visible = torch.zeros(2, 1, 8, dtype=torch.bool)
    visible[0, 0, 0:4] = True  # A
    visible[1, 0, 4:8] = True  # B
    probs = torch.zeros(2, 1, 8)
    probs[0, 0, 4:8] = 0.49
    probs[1, 0, 3] = 0.8
    gated = gate_full_probs(probs, visible)
    torch.testing.assert_close(gated[0, 0], torch.tensor([1., 1, 1, 1, 0, 0, 0, 0]))
    torch.testing.assert_close(gated[1, 0], torch.tensor([0, 0, 0, 0.8, 1, 1, 1, 1]))


def test_gate_keeps_mutual_claims_that_are_sure_on_both_sides():
    """A and B each reach MUTUAL_PEAK somewhere on the other's S_V: both claims stay (mutual
    occlusion); just under it, only the surer claim (B's, 0.45 against A's 0.24) does. Each
    box covers the whole row (0.01 where nothing else is set)."""
    visible = torch.zeros(2, 1, 8, dtype=torch.bool)
    visible[0, 0, 0:4] = True  # A
    visible[1, 0, 4:8] = True  # B
    for a_peak, both in ((MUTUAL_PEAK, True), (MUTUAL_PEAK - 0.01, False)):
        probs = torch.full((2, 1, 8), 0.01)
        probs[0, 0, 4] = a_peak  # A behind B on one column
        probs[1, 0, 2:4] = torch.tensor([0.99, 0.81])  # B behind A on two columns
        gated = gate_full_probs(probs, visible)
        assert bool(gated[0, 0, 4] == a_peak) is both, a_peak
        torch.testing.assert_close(gated[1, 0, 2:4], torch.tensor([0.99, 0.81]))
    assert (mutual_claims(torch.tensor([[0.0, 0.0, 0.99, 0], [0.985, 0, 0, 0]]),
                          torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool))
            == torch.tensor([[False, True], [True, False]])).all()


def test_hidden_pieces_that_do_not_touch_the_visible_part_are_dropped():
    """drop_detached_hidden: of the pixels >= 0.5 outside S_V, the 8-connected pieces that
    touch S_V or its 8 neighbours stay (a diagonal step counts), the others go; pixels under
    0.5 and S_V are left as they are."""
    visible = torch.zeros(1, 7, 7, dtype=torch.bool)
    visible[0, 0:2, 0:2] = True
    probs = visible.float().clone()
    probs[0, 2, 2] = 0.7  # touches S_V diagonally
    probs[0, 3, 3] = 0.9  # continues it diagonally: stays
    probs[0, 3, 4] = 0.4  # under the threshold: not part of S_I, left as it is
    probs[0, 5:7, 5:7] = 0.8  # a piece of its own, far from S_V: dropped
    probs[0, 0, 5] = 0.6  # another: dropped
    out = drop_detached_hidden(probs, visible)
    want = probs.clone()
    want[0, 5:7, 5:7] = 0
    want[0, 0, 5] = 0
    torch.testing.assert_close(out, want)
    # an object whose hidden pixels all touch S_V, or that has none, is returned unchanged
    assert drop_detached_hidden(want, visible) is want


def _blobby_scene(seed: int, n: int = 6, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Random S_V blobs and S_F probabilities with pieces near and far from them."""
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 7, 1, 3)
    visible = smooth[:, 0] > smooth.flatten(1).quantile(0.8, dim=1)[:, None, None]
    probs = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 5, 1, 2)
    probs = ((probs[:, 0] - 0.45) * 6).clamp(0, 1)
    return torch.where(visible, torch.ones_like(probs), probs), visible


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attached_hidden_finds_the_pieces_that_scipy_labels(seed):
    """The GPU form of the second rule (a masked 3 x 3 dilation to its fixed point) keeps
    exactly the pieces that scipy's labelling keeps, also when a piece is longer than one
    round of dilations (check_every=2)."""
    probs, visible = _blobby_scene(seed)
    hidden = (probs >= 0.5) & ~visible
    scipy_out = drop_detached_hidden(probs, visible)
    assert not torch.equal(scipy_out, probs)  # the scene has detached pieces
    for every in (2, 32):
        tensor_out = probs.masked_fill(hidden & ~attached_hidden(hidden, visible, every), 0.0)
        torch.testing.assert_close(tensor_out, scipy_out, rtol=0, atol=0)


def test_attached_hidden_windows_at_the_frame_edges():
    """The steps run on one window per object (`_hidden_windows`): hidden parts inside boxes of
    different sizes, at the frame's corners and edges, and an object with nothing hidden give
    scipy's pieces; a frame with nothing hidden gives nothing."""
    probs, visible = _blobby_scene(4, n=5)
    size = probs.shape[-1]
    boxes = [(0, 9, 0, 12), (size - 20, size, size - 7, size), (10, 30, size - 25, size),
             (size - 3, size, 0, size), (5, 5, 5, 5)]  # the last: nothing hidden
    inside = torch.zeros_like(visible)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        inside[k, y0:y1, x0:x1] = True
    probs = torch.where(visible | inside, probs, torch.zeros_like(probs))
    hidden = (probs >= 0.5) & ~visible
    assert hidden[:4].flatten(1).any(1).all() and not hidden[4].any()
    scipy_out = drop_detached_hidden(probs, visible)
    assert (scipy_out != probs).flatten(1).any(1)[:4].all()  # each has a detached piece
    for every in (1, 32):
        tensor_out = probs.masked_fill(hidden & ~attached_hidden(hidden, visible, every), 0.0)
        torch.testing.assert_close(tensor_out, scipy_out, rtol=0, atol=0)
    none = torch.zeros_like(hidden)
    assert not attached_hidden(none, visible).any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_second_rule_on_the_gpu_equals_the_cpu():
    probs, visible = _blobby_scene(3)
    gpu = drop_detached_hidden(probs.cuda(), visible.cuda())
    torch.testing.assert_close(gpu.cpu(), drop_detached_hidden(probs, visible), rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_one_way_gate_on_the_gpu_equals_the_cpu():
    """The whole image-frame gate (claims, mutual claims, second rule) on CUDA, as on the CPU,
    with disjoint S_V (each pixel to the first object that shows it)."""
    probs, visible = _blobby_scene(4)
    visible &= visible.cumsum(0) == 1
    probs = probs.clamp(max=0.99) * ~visible + visible
    probs[0, visible[1]] = 0.985  # a mutual pair, both above MUTUAL_PEAK somewhere
    probs[1, visible[0]] = 0.99
    cpu = gate_full_probs(probs, visible)
    torch.testing.assert_close(gate_full_probs(probs.cuda(), visible.cuda()).cpu(), cpu,
                               rtol=0, atol=1e-6)


def test_gate_loss_regions_is_eq3_over_c():
    """gate_loss="regions": lambda_bg x mean BCE over bg n C + lambda_SI x mean over S_I."""
    full = torch.zeros(1, 1, 4, 4)
    full[..., :, 0:3] = 1
    visible = torch.zeros(1, 1, 4, 4)
    visible[..., :, 0:1] = 1
    candidate = torch.zeros(1, 1, 4, 4)
    candidate[..., :, 1:4] = 1
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., :, 1:3] = 20.0  # S_I right; column 3 (bg n C) at BCE log 2; S_V ignored
    logits[..., :, 0] = -20.0
    loss = segmentation_loss(logits, full, visible, candidate=candidate, gate_loss="regions")
    torch.testing.assert_close(loss, torch.tensor(float(np.log(2))), atol=1e-4, rtol=0)
    logits[..., :, 1:3] = 0.0  # now S_I at log 2 too, weighted 3
    loss = segmentation_loss(logits, full, visible, candidate=candidate, gate_loss="regions")
    torch.testing.assert_close(loss, torch.tensor(4 * float(np.log(2))), atol=1e-4, rtol=0)


def test_run_segan_box_full_is_the_gated_mask():
    """With the gate, run_segan's box_full is the scored (image-frame) S_F cropped back over each
    box, so figures show what was scored: the one-way rule's dropped claims are gone from it,
    while the network's own box mask (visible_orig not given) still has them."""
    from segan.inference import run_segan
    from segan.transforms import mask_boxes_in_frame, model_inputs_t, resize_planes_u8_t

    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml",
                      ["model.backbone_weights=none", "model.occluder_gate=one_way"])
    net = build_segan(cfg, "none").eval()
    image, visible = scene(90, 120, 6, seed=3)
    S, vis = cfg.data.image_size, torch.from_numpy(visible)
    img = resize_planes_u8_t(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous(), S)
    images, vis_t, boxes = model_inputs_t(img[0].permute(1, 2, 0), resize_planes_u8_t(
        vis[:, None], S), mask_boxes_in_frame(vis, S), cfg)
    raw = run_segan(net, S, images, vis_t, boxes, (90, 120), None, None).box_full
    one_way = run_segan(net, S, images, vis_t, boxes, (90, 120), None, vis).box_full
    net.occluder_gate = "others"
    others = run_segan(net, S, images, vis_t, boxes, (90, 120), None, vis).box_full
    assert one_way.shape == others.shape == raw.shape
    # "others" only sharpens the box gate's edges; one_way drops whole claims
    assert abs(others.sum() - raw.sum()) < 0.05 * raw.sum()
    assert one_way.sum() < others.sum() - 0.05 * raw.sum()


def test_cli_prints_the_one_object_warning_in_one_line(tmp_path, capsys):
    """`segan predict` with one mask and a gated model: one line on stderr, no source line."""
    from PIL import Image

    from segan.train.checkpoint import export_safetensors

    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / "tiny.yaml",
                      ["model.backbone_weights=none", "model.occluder_gate=one_way"])
    net = build_segan(cfg, "none")
    model = export_safetensors(net, tmp_path / "model.safetensors", cfg.to_dict(), 1)
    image, visible = scene(90, 120, 1, seed=3)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(visible[0].astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "segan.cli", "predict", str(tmp_path / "a.png"),
                           "--masks", str(tmp_path / "a_mask.png"), "--checkpoint", str(model),
                           "--out", str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert err == ["segan predict: warning: one object given: this model's occluder gate puts "
                   "hidden parts only under other objects' visible masks, so none is predicted; "
                   "pass the mask of every object in front too"]
