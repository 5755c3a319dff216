"""The predictor's device-side path (issue 5, latency) against straightforward references:
the whole `predict()` against the NumPy implementation it replaced, box-window pasting against
the whole-frame paste, S_V boxes and resizing on tensors against their NumPy forms, and the
stage timer. Random-weight tiny models, no training: fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segan.data.coco import mask_bbox
from segan.eval.metrics import occlusion_graph
from segan.inference import SeganPredictor, StageTimer
from segan.layering import LAYERING_THRESHOLD, depth_layers, occlusion_pairs_from_counts
from segan.train import build_segan, load_config
from segan.transforms import (
    mask_boxes_in_frame,
    model_inputs,
    paste_planes,
    paste_to_image,
    resize_image_u8,
    resize_planes_u8,
    resize_planes_u8_t,
    visible_boxes_in_frame,
)

ROOT = Path(__file__).resolve().parents[1]


def scene(h: int, w: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An (h, w, 3) uint8 image and n non-empty visible masks: ellipses, later ones in front
    (so earlier ones are partly hidden), one touching the image's corner."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ids = np.full((h, w), -1)
    yy, xx = np.mgrid[:h, :w]
    for k in range(n):
        cy, cx = (0.0, 0.0) if k == 0 else rng.uniform(0.1, 0.9, 2) * (h, w)
        ry, rx = rng.uniform(0.1, 0.3, 2) * (h, w)
        ids[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k
    masks = ids[None] == np.arange(n)[:, None, None]
    return image, masks[masks.any(axis=(1, 2))]


GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_predictor(device: str) -> SeganPredictor:
    torch.manual_seed(0)
    # without the occluder gate: the reference below is the ungated predict() it replaced
    # (the gate's own tests: tests/test_occluder_gate.py)
    cfg = load_config(ROOT / "configs" / "tiny.yaml",
                      ["model.backbone_weights=none", "model.occluder_gate=none"])
    net = build_segan(cfg, "none")
    return SeganPredictor(net.to(device), cfg, torch.device(device))


@pytest.fixture(scope="module")
def predictor() -> SeganPredictor:
    return make_predictor("cpu")


@torch.no_grad()
def reference_predict(p: SeganPredictor, image: np.ndarray, visible: np.ndarray) -> dict:
    """predict() as it was before the device-side path: NumPy preprocessing (`model_inputs`),
    whole-frame pastes, the NumPy union, RGBA and `occlusion_graph` at full resolution."""
    H, W = image.shape[:2]
    S, n = p.cfg.data.image_size, len(visible)
    images, vis_t, boxes = model_inputs(
        resize_image_u8(image, S), resize_planes_u8(visible[:, None].astype(np.uint8) * 255, S),
        [mask_bbox(m) for m in visible], (H, W), p.cfg, p.device)
    with torch.autocast(p.device.type, dtype=p.amp_dtype or torch.float32,
                        enabled=p.amp_dtype is not None):
        out = p.net(images, vis_t, boxes)
    full_probs = paste_to_image(out["mask_probs"].float(), boxes, S, H, W, by_box=False)
    full_probs = full_probs.clamp(0, 1).cpu().numpy()
    full = (full_probs >= 0.5) | visible
    painted = ((out["painted"].float() + 1) / 2).clamp(0, 1)
    c = painted.shape[-1]
    rgb = paste_to_image(painted.reshape(n * 3, 1, c, c), boxes.repeat_interleave(3, dim=0), S,
                         H, W, by_box=False).reshape(n, 3, H, W)
    rgb_u8 = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    pairs = sorted(occlusion_graph(visible, full, LAYERING_THRESHOLD))
    scale = torch.tensor([W / S, H / S, W / S, H / S], device=p.device)
    return dict(full_masks=full, invisible_masks=full & ~visible, full_probs=full_probs,
                painted=np.concatenate([rgb_u8, (full * np.uint8(255))[..., None]], -1),
                boxes=(boxes[:, 1:] * scale).cpu().numpy(), occlusion_pairs=pairs,
                layers=depth_layers(pairs, n))


def check_equal_to_reference(predictor: SeganPredictor, hw: tuple[int, int]) -> StageTimer:
    image, visible = scene(*hw, n=7, seed=hw[1])
    timer = StageTimer()
    got = predictor.predict(image, visible, timer=timer)
    ref = reference_predict(predictor, image, visible)
    assert len(got) == len(visible) >= 5
    for name, want in ref.items():
        have = getattr(got, name)
        if isinstance(want, np.ndarray):
            assert have.dtype == want.dtype and have.shape == want.shape, name
        np.testing.assert_array_equal(have, want, err_msg=name)
    assert got.full_masks.any() and got.invisible_masks.any() and got.occlusion_pairs
    np.testing.assert_array_equal(got.visible_masks, visible)
    return timer


@pytest.mark.parametrize("hw", [(120, 160), (96, 96)])  # resized to S = 96; already S x S
def test_predict_equals_the_reference(predictor, hw):
    timer = check_equal_to_reference(predictor, hw)
    # every stage timed once, in order
    assert list(timer.times) == ["prepare", "network + S_F paste", "paint paste/compose",
                                 "occlusion graph", "copy to host", "pairs/layers (host)"]
    assert all(len(v) == 1 and v[0] >= 0 for v in timer.times.values())


def test_box_window_paste_equals_whole_frame():
    g = torch.Generator().manual_seed(1)
    n, S, H, W = 9, 50, 37, 61
    xy = torch.rand(n, 2, generator=g) * 60 - 5  # some boxes past the frame's edges
    wh = torch.rand(n, 2, generator=g) * 30
    wh[0] = 0  # an empty box
    wh[1] = torch.tensor([0.3, 0.2])  # smaller than a pixel
    boxes = torch.cat([torch.zeros(n, 1), xy, xy + wh], 1).clamp(0, S)
    maps = torch.rand(n, 3, 11, 11, generator=g)
    for to_u8 in (False, True):
        whole = paste_planes(maps, boxes, S, H, W, by_box=False, to_u8=to_u8)
        window = paste_planes(maps, boxes, S, H, W, by_box=True, to_u8=to_u8)
        assert whole.dtype == (torch.uint8 if to_u8 else torch.float32)
        assert torch.equal(whole, window)
        # three channels at once = three one-channel pastes
        one = paste_to_image(maps.reshape(3 * n, 1, 11, 11), boxes.repeat_interleave(3, 0), S,
                             H, W, by_box=False).reshape(n, 3, H, W)
        if not to_u8:
            assert torch.equal(whole, one)
        # into a strided view (the predictor's RGBA buffer), stale values overwritten
        rgba = torch.full((n, H, W, 4), 7, dtype=whole.dtype)
        paste_planes(maps, boxes, S, H, W, by_box=True, to_u8=to_u8,
                     out=rgba.permute(0, 3, 1, 2)[:, :3])
        assert torch.equal(rgba[..., :3].permute(0, 3, 1, 2), whole)
        assert (rgba[..., 3] == 7).all()
    assert not whole[0].any() and whole[2:].any()


def test_mask_boxes_and_resizing_on_tensors_equal_numpy():
    _, masks = scene(45, 70, n=6, seed=3)
    got = mask_boxes_in_frame(torch.from_numpy(masks), 33)
    want = visible_boxes_in_frame([mask_bbox(m) for m in masks], (45, 70), 33,
                                  torch.device("cpu"))
    assert got.dtype == torch.float32 and torch.equal(got, want)
    planes = masks[:, None].astype(np.uint8) * np.uint8(255)
    np.testing.assert_array_equal(resize_planes_u8_t(torch.from_numpy(masks[:, None]), 33).numpy(),
                                  resize_planes_u8(planes, 33))
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    t = resize_planes_u8_t(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous(), 33)
    np.testing.assert_array_equal(t[0].permute(1, 2, 0).numpy(), resize_image_u8(image, 33))


def test_occlusion_pairs_from_counts_known_answer():
    # |S_V_0| = 10, |S_I_1| = 30, overlap 2: IoU 2 / 38 = 5.3% > 5%; |S_V_1| = 40, |S_I_0| = 4,
    # overlap 2: IoU 2 / 42 = 4.8%, not a pair; the diagonal never counts
    inter = np.array([[4, 2], [2, 30]])
    assert occlusion_pairs_from_counts(inter, np.array([10, 40]), np.array([4, 30])) == {(0, 1)}
    assert occlusion_pairs_from_counts(np.zeros((2, 2)), np.zeros(2), np.zeros(2)) == set()


@pytest.mark.gpu
@GPU
def test_predict_on_cuda_equals_the_reference_on_cuda():
    """Same device, same network kernels: equal outputs when the image needs no resizing (a
    GPU resize may round a grey level differently from the CPU's: at most 1 apart)."""
    timer = check_equal_to_reference(make_predictor("cuda"), (96, 96))
    assert "copy to host" in timer.times
    planes = torch.from_numpy(scene(120, 160, n=7, seed=0)[1][:, None])
    diff = (resize_planes_u8_t(planes.cuda(), 96).cpu().int()
            - resize_planes_u8_t(planes, 96).int()).abs()
    assert diff.max() <= 1


@pytest.mark.gpu
@GPU
@pytest.mark.parametrize("config", ["tiny.yaml", "segan_compact.yaml"])
def test_cuda_graph_replay_equals_the_plain_forward(config):
    """On a GPU the predictor replays the network from CUDA graphs, one per object count
    (`segan.graphed_forward`): the same outputs as the plain forward, bit for bit, for new and
    repeated counts and after the oldest graph was dropped."""
    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / config, ["model.backbone_weights=none"])
    net = build_segan(cfg, "none").cuda()
    graphed = SeganPredictor(net, cfg, torch.device("cuda"))
    plain = SeganPredictor(net, cfg, torch.device("cuda"), cuda_graphs=False)
    assert graphed.graphed is not None and plain.graphed is None
    graphed.graphed.max_graphs = 2
    counts = []
    for n, seed in [(5, 0), (8, 1), (5, 2), (3, 3), (8, 4)]:
        image, masks = scene(120, 160, n, seed)
        counts.append(len(masks))
        got, want = graphed.predict(image, masks), plain.predict(image, masks)
        for field in ("full_probs", "full_masks", "invisible_masks", "painted", "boxes"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), field)
        assert got.occlusion_pairs == want.occlusion_pairs
    assert graphed.graphed.failed is None
    assert len(set(counts)) == 3 and len(graphed.graphed.graphs) == 2
