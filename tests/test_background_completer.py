"""The background completer of scene de-occlusion (issue 17): the network's contract (shapes,
range, finite values, a gradient for every parameter), its training data (holes from the
objects' visible masks, deterministic), a 2-step CPU run through the one training loop on
the tiny preset with de-occlusion ground truth, and the trained run as the de-occlusion fill
(`CompleterFill`, `segan deocclude --completer`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.checkpoint import load_checkpoint
from segan.cli import main
from segan.data.coco import load_annotations
from segan.deocclude import CompleterFill, deocclude, fill_hole, make_fill
from segan.models.background_completer import BackgroundCompleter, composite
from segan.train import load_config, training_loop
from segan.train.checkpoint import latest_checkpoint
from segan.train.completer_task import BackgroundCompleterTask, hole_l1
from segan.train.image_data import CompleterBatches, ImageBatchKey
from segan.transforms import dilate, resize_hole

ROOT = Path(__file__).resolve().parents[1]
# the tiny CPU variant of configs/background_completer.yaml
COMPLETER = ["completer.image_size=64", "completer.width=8", "completer.depth=3",
             "completer.batch_images=2", "completer.steps=2", "run.device=cpu",
             "data.num_workers=0", "run.log_every=1", "run.tensorboard=false",
             "run.grid_every=2"]


def test_network_shapes_range_and_gradients():
    torch.manual_seed(0)
    net = BackgroundCompleter(width=8, depth=3, dilations=(2, 4))
    image = torch.rand(2, 3, 32, 48)
    hole = torch.zeros(2, 1, 32, 48)
    hole[:, :, 8:20, 10:30] = 1
    out = net(image, hole)
    assert out.shape == (2, 3, 32, 48) and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    # the hole's input pixels are blanked: what was there cannot leak into the prediction
    other = image.clone()
    other[hole.expand_as(image) > 0] = torch.rand(int(hole.sum() * 3))
    assert torch.equal(net(other, hole), out)
    loss = hole_l1(out, torch.rand_like(out), hole)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} gets no gradient"
    done = composite(image, hole, out)
    assert torch.equal(done[hole.expand_as(done) == 0], image[hole.expand_as(image) == 0])
    with pytest.raises(ValueError, match="multiple of 2\\^depth = 8"):
        net(torch.rand(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"need image \(B, 3, H, W\)"):
        net(image, hole[:, :, :16])


def test_hole_l1_known_answer():
    pred = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    target[..., :2, :] = 0.5  # off by 0.5 on the top half
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., 0, :] = 1  # the hole: the first row (all wrong)
    assert hole_l1(pred, target, hole).item() == pytest.approx(0.5)
    hole[..., 3, :] = 1  # and the last row (all right)
    assert hole_l1(pred, target, hole).item() == pytest.approx(0.25)
    assert hole_l1(pred, target, torch.zeros_like(hole)).item() == 0


def test_resize_hole_and_dilate():
    hole = np.zeros((10, 10), bool)
    hole[4, 4] = True
    assert dilate(hole, 1).sum() == 9 and dilate(hole, 2).sum() == 25
    assert (resize_hole(hole, 10) == hole).all()
    small = resize_hole(hole, 5)  # a pixel touches at least one pixel of the coarse frame
    assert small.shape == (5, 5) and small.any()
    big = np.zeros((100, 100), bool)
    big[10:30, 40:90] = True
    r = resize_hole(big, 20)
    assert r[2:6, 8:18].all() and not r[10:, :].any()  # covers its area, nothing far


def test_training_data_holes_come_from_objects(tiny_deocc_data):
    ds = load_annotations(tiny_deocc_data / "annotations" / "train.json",
                          root=tiny_deocc_data)
    task = BackgroundCompleterTask(load_config(ROOT / "configs" / "background_completer.yaml",
                                               COMPLETER))
    ids = task.usable_images(ds)
    assert ids and all(ds.images[i]["background_file"] for i in ids)
    data = CompleterBatches(ds, ids, 64, seed=0, hole_objects=3, hole_dilate=0)
    key = ImageBatchKey(0, 0, 0, (0, 1))
    a, b = data[key], data[key]
    for k in ("images", "backgrounds", "holes"):
        assert torch.equal(a[k], b[k])  # deterministic in (seed, epoch, batch)
    assert a["images"].shape == (2, 64, 64, 3) and a["holes"].dtype == torch.bool
    for j, pos in enumerate(key.images):
        iid = ids[pos]
        union = resize_hole(ds.image_masks(iid)[1].any(0), 64)
        hole = a["holes"][j].numpy()
        assert hole.any() and not (hole & ~union).any()  # inside the objects' S_V
    other = data[ImageBatchKey(1, 0, 0, (0, 1))]  # another epoch: other draws
    assert not torch.equal(other["holes"], a["holes"]) or len(ds.annotations[ids[0]]) == 1
    # images without a room shell cannot train it: the message names the file and the flag
    for i in ds.image_ids:
        ds.images[i].pop("background_file", None)
    with pytest.raises(ValueError, match=r"train.json: no image has a background_file.*"
                                         r"--deocclusion SHARE"):
        task.usable_images(ds)


@pytest.fixture(scope="module")
def completer_run(tiny_deocc_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("completer") / "run"
    summary = training_loop(load_config(ROOT / "configs" / "background_completer.yaml",
                                        COMPLETER), tiny_deocc_data, run, progress=False)
    assert summary["finished"] and summary["steps"] == 2
    return run


def test_trains_through_the_loop(completer_run):
    stats = [json.loads(line) for line in
             (completer_run / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2]
    assert {k for k in stats[-1] if k.startswith("loss/")} == {"loss/hole_l1", "loss/input_l1"}
    assert all(math.isfinite(v) and v >= 0 for s in stats for k, v in s.items()
               if k.startswith("loss/"))
    state = load_checkpoint(latest_checkpoint(completer_run))
    assert state["config"]["task"] == "background_completer" and state["step"] == 2
    assert state["model_hparams"] == {"width": 8, "depth": 3, "dilations": [2, 4, 8]}
    assert (completer_run / "model.safetensors").is_file()
    grids = sorted((completer_run / "grids").iterdir())
    assert [p.name for p in grids] == ["step-00000001.png", "step-00000002.png"]
    from PIL import Image

    with Image.open(grids[-1]) as im:  # 2 images x (input | completed | room shell), 64 px
        assert im.size == (3 * 64, 2 * 64)


def test_resume_equals_an_uninterrupted_run(completer_run, tiny_deocc_data, tmp_path):
    cfg = load_config(ROOT / "configs" / "background_completer.yaml", COMPLETER)
    training_loop(cfg, tiny_deocc_data, tmp_path / "b", stop_at=1, progress=False)
    training_loop(cfg, tiny_deocc_data, tmp_path / "b", resume=True, progress=False)
    a = load_checkpoint(latest_checkpoint(completer_run))["model"]  # 2 steps in one go
    b = load_checkpoint(latest_checkpoint(tmp_path / "b"))["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_trained_completer_fills_only_the_hole(completer_run, tiny_deocc_data, tiny_run):
    from segan import SeganPredictor

    fill = CompleterFill.from_checkpoint(completer_run, device="cpu")
    assert fill.image_size == 64 and fill.identity["step"] == 2
    ds = load_annotations(tiny_deocc_data / "annotations" / "test.json", root=tiny_deocc_data)
    iid = ds.image_ids[0]
    image = ds.load_image(iid)
    _, visible, _ = ds.image_masks(iid)
    hole = visible[0] | visible[1]
    out = fill(image, hole)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert (out[hole] != image[hole]).any()
    # the same network through the run's checkpoint .pt
    again = CompleterFill.from_checkpoint(latest_checkpoint(completer_run), device="cpu")(
        image, hole)
    np.testing.assert_array_equal(again, out)
    # as step 2 of the composition: the background is the completer's
    predictor = SeganPredictor.from_checkpoint(tiny_run, device="cpu")
    scene = predictor.predict(image, visible)
    result = deocclude(image, scene, [0, 1], fill=fill)
    np.testing.assert_array_equal(result.background, out)
    assert make_fill() is fill_hole
    with pytest.raises(ValueError, match="not both"):
        make_fill("telea", completer_run)
    with pytest.raises(ValueError, match="is a run of task 'segan', not a background completer"):
        CompleterFill.from_checkpoint(tiny_run, device="cpu")


def test_deocclude_cli_with_completer(completer_run, tiny_deocc_data, tiny_run, tmp_path):
    from PIL import Image

    ds = load_annotations(tiny_deocc_data / "annotations" / "test.json", root=tiny_deocc_data)
    iid = ds.image_ids[0]
    out = tmp_path / "out"
    rc = main(["deocclude", str(ds.image_path(iid)), "--masks",
               str(tiny_deocc_data / "annotations" / "test.json"), "--remove", "0", "1",
               "--checkpoint", str(tiny_run), "--completer", str(completer_run), "--out",
               str(out), "--device", "cpu"])
    assert rc == 0
    summary = json.loads((out / "deocclusion.json").read_text())
    assert summary["fill"] == str(completer_run)
    image = ds.load_image(iid)
    hole = ds.image_masks(iid)[1][[0, 1]].any(0)
    expected = CompleterFill.from_checkpoint(completer_run, device="cpu")(image, hole)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "background.png")), expected)


def test_evaluate_deocclusion_with_completer(completer_run, tiny_deocc_data, tiny_run,
                                             tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--task", "deocclusion", "--data", str(tiny_deocc_data),
               "--checkpoint", str(tiny_run), "--completer", str(completer_run), "--out",
               str(out), "--device", "cpu", "--limit", "1", "--no-ssim", "--quiet",
               "--method", "completer", "--method", "segan", "--method", "inpaint"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "deocclusion.json").read_text())
    assert result["fill"] == str(completer_run)
    assert list(result["methods"]) == ["completer", "segan", "inpaint"]
    for m in result["methods"].values():
        assert 0 <= m["l1/hole"] <= 1 and m["records"] == result["records"] > 0
    # the completer and diffusion inpainting are different fills of the same holes
    assert result["methods"]["completer"]["l1/hole"] != result["methods"]["inpaint"]["l1/hole"]
    assert result["methods"]["completer"]["revealed_iou"] == 0.0  # it reveals no object
