"""The training data pipeline on a hand-made dataset with known pixels: the decoded cache, the
data order, and section 5.1's crops made on the device (segan.train.cache, segan.train.data)."""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segan.config import DataConfig
from segan.data import coco
from segan.train import cache as cache_module
from segan.train.cache import PATCH_CHANNELS, open_cache
from segan.train.data import (
    BatchKey,
    ObjectBatches,
    ObjectBatchSampler,
    epoch_chunks,
    epoch_order,
    paste_patches,
    prepare_batch,
)
from segan.transforms import (
    crop_boxes,
    expand_boxes,
    expand_boxes_per_side,
    resize_planes,
    resize_weights,
    resize_window,
    window_weights,
)

CPU = torch.device("cpu")


def write_dataset(root: Path, size: int = 32, n_images: int = 2) -> dict:
    """n_images images of size x size, each with two objects whose masks are rectangles:
    object A: S_F = rows 4:12, cols 8:18, S_V = rows 4:12, cols 8:16 (an 8 x 8 box);
    object B: S_F = rows 14:30, cols 2:26, S_V = its top half. Appearance RGB is a pattern with
    garbage outside S_F (alpha = 0 there), to check premultiplication."""
    rng = np.random.default_rng(0)
    images, anns, truth = [], [], {}
    rects = {"A": ((4, 12, 8, 18), (4, 12, 8, 16)), "B": ((14, 30, 2, 26), (14, 22, 2, 26))}
    ann_id = 1
    for i in range(n_images):
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        name = f"s/{i}.png"
        (root / "images" / "s").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / "images" / name)
        images.append(coco.make_image(i + 1, name, size, size, scene_id="s"))
        for label, ((fy0, fy1, fx0, fx1), (vy0, vy1, vx0, vx1)) in rects.items():
            full = np.zeros((size, size), bool)
            full[fy0:fy1, fx0:fx1] = True
            vis = np.zeros((size, size), bool)
            vis[vy0:vy1, vx0:vx1] = True
            app = np.zeros((size, size, 4), np.uint8)
            app[..., :3] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            app[..., 3] = full * 255
            app_name = f"s/{i}_{label}.png"
            (root / "appearance" / "s").mkdir(parents=True, exist_ok=True)
            Image.fromarray(app, "RGBA").save(root / "appearance" / app_name)
            anns.append(coco.make_annotation(ann_id, i + 1, 1, full, vis, app_name))
            truth[ann_id] = dict(image=rgb, full=full, vis=vis,
                                 premult=app[..., :3] * full[..., None])
            ann_id += 1
    coco.write_annotations(root / "annotations" / "train.json", images, anns,
                                  [{"id": 1, "name": "box"}])
    return truth


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("handmade")
    return root, write_dataset(root)


def test_cache_without_resizing_holds_exact_pixels(handmade):
    root, truth = handmade
    cache = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    assert (cache.num_images, cache.num_objects) == (2, 4)
    assert cache.images.shape == (2, 32, 32, 3) and cache.images.dtype == np.uint8
    for j, ann_id in enumerate(cache.ann_ids):
        t = truth[int(ann_id)]
        np.testing.assert_array_equal(cache.images[cache.obj_image[j]], t["image"])
        x0, y0, w, h = cache.patch_xywh[j]
        patch = cache.patch(j)
        assert patch.shape == (h, w, PATCH_CHANNELS)
        np.testing.assert_array_equal(patch[..., 0], t["vis"][y0:y0 + h, x0:x0 + w] * 255)
        np.testing.assert_array_equal(patch[..., 1], t["full"][y0:y0 + h, x0:x0 + w] * 255)
        np.testing.assert_array_equal(patch[..., 2:], t["premult"][y0:y0 + h, x0:x0 + w])
        # the patch covers S_V's box grown by 30% on every side (clipped to the image)
        x1, y1, x2, y2 = cache.visible_box[j]
        assert x0 <= max(0, x1 - 0.3 * (x2 - x1)) and x0 + w >= min(32, x2 + 0.3 * (x2 - x1))
        assert y0 <= max(0, y1 - 0.3 * (y2 - y1)) and y0 + h >= min(32, y2 + 0.3 * (y2 - y1))
    # object A's S_V box, continuous coordinates: cols 8..16, rows 4..12
    np.testing.assert_array_equal(cache.visible_box[0], [8, 4, 16, 12])
    # U: per image, the union of all its objects' S_V
    assert cache.visible_union.shape == (2, 32, 32)
    for i in range(cache.num_images):
        objs = [truth[int(a)]["vis"] for j, a in enumerate(cache.ann_ids)
                if cache.obj_image[j] == i]
        np.testing.assert_array_equal(cache.visible_union[i], np.max(objs, axis=0) * 255)


def test_cache_is_reused_and_rebuilt_when_annotations_change(tmp_path):
    write_dataset(tmp_path, n_images=1)
    a = open_cache(tmp_path, "train", 32, 0.3, cache_dir=tmp_path / "c")
    b = open_cache(tmp_path, "train", 32, 0.3, cache_dir=tmp_path / "c")
    assert a.path == b.path and a.meta == b.meta
    ann_file = tmp_path / "annotations" / "train.json"
    d = json.loads(ann_file.read_text())
    d["annotations"] = d["annotations"][:1]
    ann_file.write_text(json.dumps(d))
    c = open_cache(tmp_path, "train", 32, 0.3, cache_dir=tmp_path / "c")
    assert c.path != a.path and c.num_objects == 1
    assert open_cache(tmp_path, "train", 24, 0.3, cache_dir=tmp_path / "c").path != c.path


def test_runs_side_by_side_build_the_cache_once(tmp_path, monkeypatch):
    """Two openers of a missing cache at once (two training runs on the same data): the second
    waits for the first one's build and reuses it instead of decoding the split again."""
    write_dataset(tmp_path, n_images=2)
    builds = []
    real_build = cache_module.build_cache

    def slow_build(*args, **kwargs):  # long enough for the other opener to arrive meanwhile
        builds.append(1)
        time.sleep(0.5)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(cache_module, "build_cache", slow_build)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: open_cache(tmp_path, "train", 32, 0.3,
                                             cache_dir=tmp_path / "c"), range(2))
    assert len(builds) == 1
    assert a.path == b.path and a.meta == b.meta and a.num_objects > 0


def test_pasted_patches_equal_the_resized_full_frame(handmade):
    """Resizing 32 -> 20: the patch of S_V holds every nonzero pixel of the resized mask, and
    each patch is the full frame's resize over its window (computed from that window's source
    pixels alone: a value within float rounding of a half may round one grey level off)."""
    root, truth = handmade
    cache = open_cache(root, "train", 20, 0.3, cache_dir=root / "cache")
    xywh = torch.from_numpy(cache.patch_xywh.astype(np.int64))
    patches = torch.cat([torch.from_numpy(np.array(cache.patch(j))).view(-1, PATCH_CHANNELS)
                         for j in range(cache.num_objects)])
    canvas = paste_patches(patches, xywh, 20).numpy()
    for j, ann_id in enumerate(cache.ann_ids):
        t = truth[int(ann_id)]
        planes = np.stack([t["vis"] * 255.0, t["full"] * 255.0,
                           *t["premult"].transpose(2, 0, 1).astype(np.float64)])
        resized = np.clip(np.rint(resize_planes(planes.astype(np.float32), 20)), 0, 255)
        np.testing.assert_allclose(canvas[j, ..., 0], resized[0], atol=1, rtol=0)  # whole frame
        assert (canvas[j, ..., 0] > 0).sum() == (resized[0] > 0).sum()
        x0, y0, w, h = cache.patch_xywh[j]
        np.testing.assert_allclose(canvas[j, y0:y0 + h, x0:x0 + w, 1:].transpose(2, 0, 1),
                                   resized[1:, y0:y0 + h, x0:x0 + w], atol=1, rtol=0)
        assert 0 < canvas[j, ..., 0].max() <= 255 and len(np.unique(canvas[j, ..., 0])) > 2


def test_resize_weights_are_interpolates_kernel():
    """resize_weights: known values (4 -> 2: a triangle two pixels wide, cut at the border and
    renormalised); any window of a resize by these weights is torch's antialiased resize."""
    np.testing.assert_allclose(resize_weights(4, 2), [[3 / 7, 3 / 7, 1 / 7, 0],
                                                      [0, 1 / 7, 3 / 7, 3 / 7]], rtol=1e-6)
    np.testing.assert_array_equal(resize_weights(5, 5), np.eye(5))  # no resize: exact
    rng = np.random.default_rng(0)
    for (H, W), S in (((328, 415), 500), ((795, 559), 500), ((37, 1200), 64), ((32, 32), 20)):
        planes = (rng.random((2, H, W)) * 255).astype(np.float32)
        whole = resize_planes(planes, S)
        y0, x0, h, w = S // 5, S // 7, S // 3, S // 4
        ty, tx = window_weights(H, S, y0, h), window_weights(W, S, x0, w)
        ys, xs = ty.span, tx.span
        assert ys.stop - ys.start < H and xs.stop - xs.start < W  # reads its window only
        np.testing.assert_allclose(resize_window(planes[:, ys, xs], ty, tx),
                                   whole[:, y0:y0 + h, x0:x0 + w], atol=0.02, rtol=0)


def test_paste_patches_known_values():
    xywh = torch.tensor([[1, 2, 2, 1], [0, 0, 1, 2]])
    patches = torch.tensor([[1, 10], [2, 20], [3, 30], [4, 40]], dtype=torch.uint8)
    canvas = paste_patches(patches, xywh, 4)
    expected = torch.zeros(2, 4, 4, 2, dtype=torch.uint8)
    expected[0, 2, 1], expected[0, 2, 2] = torch.tensor([1, 10]), torch.tensor([2, 20])
    expected[1, 0, 0], expected[1, 1, 0] = torch.tensor([3, 30]), torch.tensor([4, 40])
    assert torch.equal(canvas, expected)


def test_expand_per_side_matches_the_model_helper():
    boxes = torch.tensor([[10, 20, 30, 60], [0, 0, 100, 50.0]])
    ratios = torch.full((2, 4), 0.2)
    with_index = torch.cat([torch.zeros(2, 1), boxes], 1)
    torch.testing.assert_close(expand_boxes_per_side(boxes, ratios, 100),
                               expand_boxes(with_index, 0.2, 100, 100)[:, 1:])
    out = expand_boxes_per_side(boxes[:1], torch.tensor([[0.1, 0.0, 0.5, 0.25]]), 100)
    torch.testing.assert_close(out, torch.tensor([[8.0, 20, 40, 70]]))


def _raw(cache, cfg, objects, ratios=None, train=False, with_union=True):
    raw = ObjectBatches(cache, cfg, seed=0, train=train,
                        with_union=with_union)[BatchKey(0, 0, 0, tuple(objects))]
    if ratios is not None:
        raw["ratios"] = torch.full_like(raw["ratios"], ratios)
    return raw


def test_batch_shapes_dtypes_and_ranges(handmade):
    root, _ = handmade
    cfg = DataConfig(image_size=32)
    cache = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    raw = _raw(cache, cfg, [3, 0, 1], train=True)
    assert raw["images"].shape == (2, 32, 32, 3) and raw["images"].dtype == torch.uint8
    assert raw["patches"].dtype == torch.uint8 and raw["patches"].shape[1] == 5
    assert raw["obj_image"].tolist() == [1, 0, 0]
    assert ((raw["ratios"] >= 0.1) & (raw["ratios"] <= 0.3)).all()
    b = prepare_batch(raw, CPU, cfg, mask_size=58, crop_size=64)
    assert b.images.shape == (2, 3, 32, 32) and b.visible_masks.shape == (3, 1, 32, 32)
    assert b.boxes.shape == (3, 5) and b.boxes[:, 0].tolist() == [1, 0, 0]
    assert b.full_gt.shape == b.visible_gt.shape == (3, 1, 58, 58)
    assert b.target.shape == (3, 3, 64, 64) and b.full_crop.shape == (3, 1, 64, 64)
    for t in (b.visible_masks, b.full_gt, b.visible_gt, b.full_crop):
        assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
    assert b.target.min() >= -1 and b.target.max() <= 1
    # U holds every object of the image, also those not in the batch (object 2 of image 1)
    assert b.visible_union.shape == (2, 1, 32, 32)
    torch.testing.assert_close(b.visible_union[:, 0],
                               torch.from_numpy(cache.visible_union[[1, 0]]).float() / 255)
    # models without the context input: batches carry no U
    raw = _raw(cache, cfg, [3, 0, 1], train=True, with_union=False)
    assert "visible_union" not in raw
    assert prepare_batch(raw, CPU, cfg, mask_size=58, crop_size=64).visible_union is None
    assert (b.boxes[:, 1:] >= 0).all() and (b.boxes[:, 1:] <= 32).all()
    assert (b.visible_gt <= b.full_gt + 1e-6).all()  # S_V inside S_F
    # evaluation: the fixed 20% of the reference code, no flips
    raw = _raw(cache, DataConfig(image_size=32, hflip=True), [3, 0, 1], train=False)
    assert (raw["ratios"] == 0.2).all() and not raw["flip"].any()


def test_crops_of_a_known_box(handmade):
    root, truth = handmade
    cfg = DataConfig(image_size=32, image_mean=(0.5, 0.25, 0.0), image_std=(0.5, 1.0, 2.0))
    cache = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    t = truth[int(cache.ann_ids[0])]  # object A: S_V box (8, 4, 16, 12), S_F two columns wider
    full, vis = torch.from_numpy(t["full"]).float(), torch.from_numpy(t["vis"]).float()
    target = torch.from_numpy(t["premult"]).permute(2, 0, 1).float() / 255 * 2 - 1

    # no expansion, crops the size of the box: exactly the pixels
    b = prepare_batch(_raw(cache, cfg, [0], ratios=0.0), CPU, cfg, mask_size=8, crop_size=8)
    assert b.boxes.tolist() == [[0, 8, 4, 16, 12]]
    torch.testing.assert_close(b.full_gt[0, 0], full[4:12, 8:16])
    torch.testing.assert_close(b.visible_gt[0, 0], vis[4:12, 8:16])
    torch.testing.assert_close(b.target[0], target[:, 4:12, 8:16])
    torch.testing.assert_close(b.full_crop[0, 0], full[4:12, 8:16])

    # grown by half on every side: (4, 0, 20, 16). The ground truth (mask_size) comes from the
    # EXPANDED box, 16 px -> 8: means of 2 x 2 pixels; the painter's 16 x 16 crops are exact
    b = prepare_batch(_raw(cache, cfg, [0], ratios=0.5), CPU, cfg, mask_size=8, crop_size=16)
    assert b.boxes.tolist() == [[0, 4, 0, 20, 16]]
    pooled = torch.nn.functional.avg_pool2d(full[None, None, 0:16, 4:20], 2)[0, 0]
    torch.testing.assert_close(b.full_gt[0, 0], pooled)
    torch.testing.assert_close(b.full_gt, crop_boxes(full[None, None], b.boxes, 8))
    torch.testing.assert_close(b.target[0], target[:, 0:16, 4:20])
    torch.testing.assert_close(b.visible_masks[0, 0], vis)  # S_V over the whole frame
    mean = torch.tensor(cfg.image_mean).view(3, 1, 1)
    std = torch.tensor(cfg.image_std).view(3, 1, 1)
    image = torch.from_numpy(t["image"]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(b.images[0], (image - mean) / std)
    # outside S_F the target is the appearance's black background (-1)
    assert (b.target[0][:, b.full_crop[0, 0] == 0] == -1).all()


def test_horizontal_flip_mirrors_everything(handmade):
    root, _ = handmade
    cfg = DataConfig(image_size=32)
    cache = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    raw = _raw(cache, cfg, [0, 1], ratios=0.2)
    plain = prepare_batch(raw, CPU, cfg, mask_size=16, crop_size=32)
    raw["flip"] = torch.ones_like(raw["flip"])
    flipped = prepare_batch(raw, CPU, cfg, mask_size=16, crop_size=32)
    torch.testing.assert_close(flipped.images, plain.images.flip(-1))
    torch.testing.assert_close(flipped.visible_masks, plain.visible_masks.flip(-1))
    torch.testing.assert_close(flipped.full_gt, plain.full_gt.flip(-1))
    torch.testing.assert_close(flipped.target, plain.target.flip(-1))
    torch.testing.assert_close(flipped.boxes[:, 1], 32 - plain.boxes[:, 3])
    torch.testing.assert_close(flipped.visible_union, plain.visible_union.flip(-1))


def test_epoch_order_covers_every_object_once_grouped_by_image():
    obj_start = np.array([0, 5, 5, 12, 13, 30])  # 5 images (one empty), 30 objects
    image_of = np.repeat(np.arange(5), np.diff(obj_start))
    order = epoch_order(obj_start, 4, seed=3, epoch=0)
    assert sorted(order.tolist()) == list(range(30))
    assert np.array_equal(order, epoch_order(obj_start, 4, seed=3, epoch=0))
    assert not np.array_equal(order, epoch_order(obj_start, 4, seed=3, epoch=1))
    # chunks: one image each, near-equal parts of at most 4 (17 objects -> 4, 4, 3, 3, 3)
    chunks = epoch_chunks(obj_start, 4, seed=3, epoch=0)
    assert np.array_equal(np.concatenate(chunks), order)
    for c in chunks:
        assert len(set(image_of[c].tolist())) == 1
    sizes = {int(image_of[c[0]]): [] for c in chunks}
    for c in chunks:
        sizes[int(image_of[c[0]])].append(len(c))
    assert {i: sorted(v) for i, v in sizes.items()} == {
        0: [2, 3], 2: [3, 4], 3: [1], 4: [3, 3, 3, 4, 4]}
    # objects_per_image=1 is a plain shuffle; a large value keeps each image's objects together
    whole = epoch_chunks(obj_start, 100, seed=3, epoch=0)
    assert sorted(len(c) for c in whole) == [1, 5, 7, 17]


def test_fixed_images_chunks_hold_exactly_n_objects_of_one_image():
    obj_start = np.array([0, 5, 5, 12, 13, 30])  # image sizes 5, 0, 7, 1, 17
    image_of = np.repeat(np.arange(5), np.diff(obj_start))
    chunks = epoch_chunks(obj_start, 4, seed=3, epoch=0, fixed=True)
    assert all(len(c) == 4 and len(set(image_of[c].tolist())) == 1 for c in chunks)
    # ceil(5/4) + ceil(7/4) + ceil(1/4) + ceil(17/4) chunks; every object at least once
    assert len(chunks) == 2 + 2 + 1 + 5
    flat = np.concatenate(chunks)
    assert set(flat.tolist()) == set(range(30))
    counts = np.bincount(flat, minlength=30)
    # redraws only fill an image's last chunk: 3 + 1 + 3 + 3 of them
    assert counts.sum() == 40 and counts[12] == 4  # the lone object of image 3, four times
    per_image = {i: counts[image_of == i] for i in (0, 2, 4)}
    assert {i: int((v - 1).sum()) for i, v in per_image.items()} == {0: 3, 2: 1, 4: 3}
    assert all(v.max() <= 2 for v in per_image.values())  # without replacement while they last
    again = epoch_chunks(obj_start, 4, seed=3, epoch=0, fixed=True)
    assert all(np.array_equal(a, b) for a, b in zip(chunks, again, strict=True))
    # the sampler: batches of whole chunks, every batch K / n images
    s = ObjectBatchSampler(obj_start, 8, 4, seed=3, fixed_images=True)
    assert s.batches_per_epoch == 40 // 8
    keys = [k for k, _ in zip(s, range(6), strict=False)]
    assert keys[5].epoch == 1 and all(k.per_image == 4 and len(k.objects) == 8 for k in keys)
    assert all(len(set(image_of[list(k.objects[:4])])) == 1 for k in keys)
    with pytest.raises(ValueError, match="divisible"):
        ObjectBatchSampler(obj_start, 6, 4, seed=3, fixed_images=True)


def test_fixed_images_batch_gives_each_run_its_own_image_row(handmade):
    root, truth = handmade
    cfg = DataConfig(image_size=32, objects_per_image=2, fixed_images=True)
    cache = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    ds = ObjectBatches(cache, cfg, seed=0, train=True)
    # objects 0, 1 are image 0's, 2, 3 image 1's; image 1 twice, image 0 once, in that order
    raw = ds[BatchKey(0, 0, 0, (3, 2, 0, 1, 2, 2), per_image=2)]
    assert raw["images"].shape == (3, 32, 32, 3)
    assert raw["obj_image"].tolist() == [0, 0, 1, 1, 2, 2]
    for row, image in enumerate([1, 0, 1]):
        np.testing.assert_array_equal(raw["images"][row].numpy(), cache.images[image])
    assert prepare_batch(raw, CPU, cfg, mask_size=8, crop_size=16).images.shape[0] == 3
    with pytest.raises(ValueError, match="runs of 2 of one image"):
        ds[BatchKey(0, 0, 0, (0, 2, 1, 3), per_image=2)]


def test_sampler_shards_ranks_and_resumes():
    obj_start = np.array([0, 7, 15, 20, 33])
    K, W = 4, 2
    order = epoch_order(obj_start, 2, seed=1, epoch=0)
    per_rank = []
    for rank in range(W):
        s = ObjectBatchSampler(obj_start, K, 2, seed=1, rank=rank, world_size=W)
        assert s.batches_per_epoch == 33 // K // W
        it = iter(s)
        keys = [next(it) for _ in range(s.batches_per_epoch + 1)]
        assert keys[-1].epoch == 1 and keys[-1].index == 0
        per_rank.append(keys[:-1])
    seen = sorted(o for keys in per_rank for k in keys for o in k.objects)
    assert seen == sorted(order[:8 * K].tolist())  # disjoint, the first 8 global batches
    # resuming at (epoch, index) continues the same sequence
    full = iter(ObjectBatchSampler(obj_start, K, 2, seed=1))
    keys = [next(full) for _ in range(12)]
    resumed = iter(ObjectBatchSampler(obj_start, K, 2, seed=1, epoch=keys[9].epoch,
                                      index=keys[9].index))
    assert [next(resumed) for _ in range(3)] == keys[9:12]
    with pytest.raises(ValueError, match="fewer than batch_objects"):
        ObjectBatchSampler(obj_start, 40, 2, seed=1)


def test_amodal_boxes_start_between_visible_and_amodal_box(handmade, tmp_path):
    """data.amodal_box_share: object B (S_V = the top half of its S_F) with its bottom side
    pulled all the way: the crop is S_F's box, and the cache built for amodal boxes holds its
    ground truth there (the plain cache's patch stops 30% below S_V's box)."""
    root, truth = handmade
    cfg = DataConfig(image_size=32, amodal_box_share=1.0)
    plain = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache")
    amodal = open_cache(root, "train", 32, 0.3, cache_dir=root / "cache", amodal_boxes=True)
    assert amodal.path != plain.path
    j = 1  # object B of image 0
    t = truth[int(amodal.ann_ids[j])]
    full = torch.from_numpy(t["full"]).float()[None, None]
    raw = _raw(amodal, cfg, [j], ratios=0.0, train=True)
    assert ((raw["pull"] >= 0) & (raw["pull"] <= 1)).all() and raw["pull"].any()
    raw["pull"] = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    raw["flip"] = torch.zeros_like(raw["flip"])
    b = prepare_batch(raw, CPU, cfg, mask_size=8, crop_size=16)
    assert b.boxes.tolist() == [[0, 2, 14, 26, 30]]  # S_V's (2, 14, 26, 22) down to S_F's
    torch.testing.assert_close(b.full_gt, crop_boxes(full, b.boxes, 8))
    raw_plain = dict(raw, patches=_raw(plain, cfg, [j])["patches"],
                     patch_xywh=_raw(plain, cfg, [j])["patch_xywh"])
    cut = prepare_batch(raw_plain, CPU, cfg, mask_size=8, crop_size=16)
    assert cut.full_gt.sum() < b.full_gt.sum()  # the plain patch misses S_F's bottom rows
    # half-way: the bottom side at 22 + 0.5 * 8
    raw["pull"] = torch.tensor([[0.0, 0.0, 0.0, 0.5]])
    assert prepare_batch(raw, CPU, cfg, 8, 16).boxes.tolist() == [[0, 2, 14, 26, 26]]


def test_amodal_share_draws_last():
    """The pulls are drawn after every other draw: share 0 and share 0.5 give the same ratios
    and flips for the same batch key; share 0 never pulls, and at test time nothing is."""
    with tempfile.TemporaryDirectory() as d:
        write_dataset(Path(d))
        cache = open_cache(d, "train", 32, 0.3, cache_dir=Path(d) / "c", amodal_boxes=True)
        a = _raw(cache, DataConfig(image_size=32, hflip=True), [0, 1, 2, 3], train=True)
        b = _raw(cache, DataConfig(image_size=32, hflip=True, amodal_box_share=0.5),
                 [0, 1, 2, 3], train=True)
        c = _raw(cache, DataConfig(image_size=32, amodal_box_share=1.0), [0, 1], train=False)
    assert torch.equal(a["ratios"], b["ratios"]) and torch.equal(a["flip"], b["flip"])
    assert not a["pull"].any() and not c["pull"].any()
