"""The evaluation command end to end on CPU (tiny data, a few training steps), the
visible-as-full baseline's known answers, the box -> image frame mapping, and the refusal of
--visible predicted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from segan.cli import main
from segan.data.coco import load_annotations
from segan.eval.config import EvaluationConfig
from segan.eval.evaluate import evaluate
from segan.eval.inputs import prepare_image
from segan.eval.metrics import SEGMENTATION_CONVENTIONS, iou, threshold
from segan.models import crop_object_masks
from segan.train import load_config
from segan.train.checkpoint import latest_checkpoint
from segan.transforms import paste_to_image

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["schedule.stage1_steps=3", "schedule.stage2_steps=3", "run.checkpoint_every=6",
         "run.log_every=3", "run.grid_every=0", "run.tensorboard=false"]


@pytest.fixture(scope="module")
def evaluated(tiny_data, tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval_out") / "both"
    rc = main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data),
               "--out", str(out),
               "--method", "segan", "--method", "visible_as_full", "--device", "cpu",
               "--quiet"])
    assert rc == 0
    return out


def test_results_have_every_table(evaluated, tiny_run):
    results = json.loads((evaluated / "results.json").read_text())
    assert results["format"] == "segan-eval" and results["visible"] == "gt"
    assert results["checkpoint"]["path"] == str(tiny_run / "model.safetensors")
    assert results["checkpoint"]["step"] == 6 and len(results["checkpoint"]["sha256"]) == 64
    assert results["config"]["data"]["expand_test"] == 0.2
    assert results["num_images"] > 0 and results["num_objects"] > 0
    assert list(results["methods"]) == ["segan", "visible_as_full"]
    for name, m in results["methods"].items():
        seg = m["segmentation"]
        for conv in SEGMENTATION_CONVENTIONS:
            for avg in ("mean_all", "pooled_all", "mean_occluded", "pooled_occluded"):
                v = seg[f"{conv}/{avg}"]
                assert v is not None and math.isfinite(v) and 0.0 <= v <= 1.0, (name, conv, avg)
        assert seg["count/all"] == results["num_objects"]
        lay = m["layering"]["layering_accuracy/mean_images"]
        assert lay is not None and 0.0 <= lay <= 1.0
    paint = results["methods"]["segan"]["painting"]
    assert paint["count"] + paint["count/skipped"] == results["num_objects"]
    assert 0 <= paint["l1/masked_mean"] <= 1 and 0 <= paint["l2/masked_mse"] <= 1
    assert math.isfinite(paint["psnr/masked_db"])
    assert results["methods"]["visible_as_full"]["painting"] is None
    for m in ("segan", "visible_as_full"):
        assert (evaluated / results["figures"][m]).is_file()

    md = (evaluated / "results.md").read_text()
    assert any(line.startswith("segan evaluate --checkpoint")
               for line in md.splitlines()[:8])  # the command, at the top
    for text in ("Table 1", "Table 2", "Table 5", "paper (DYCE, different data)", "75.71",
                 "68.05", "23.26", "0.026", "84.0", "n/a", "pooled, occluded only",
                 "invisible IoU (svsi)"):
        assert text in md, text


def test_results_record_the_config(evaluated):
    """results.json's "evaluation" is the config's dict; its "command" the config's line."""
    results = json.loads((evaluated / "results.json").read_text())
    cfg = EvaluationConfig.from_dict(results["evaluation"])
    assert results["command"] == cfg.command_line()
    assert cfg.out == evaluated and results["data"]["split"] == cfg.split


def test_visible_as_full_known_answers(evaluated, tiny_data):
    results = json.loads((evaluated / "results.json").read_text())
    seg = results["methods"]["visible_as_full"]["segmentation"]
    ds = load_annotations(tiny_data / "annotations" / "test.json")
    ratios, occluded = [], 0
    for iid in ds.image_ids:
        full, vis, inv = ds.image_masks(iid)
        ratios += list(vis.sum(axis=(1, 2)) / full.sum(axis=(1, 2)))  # S_V in S_F
        occluded += int(inv.any(axis=(1, 2)).sum())
    assert occluded > 0
    assert seg["count/occluded"] == occluded
    assert seg["full_iou/standard/mean_all"] == pytest.approx(np.mean(ratios), abs=1e-12)
    assert seg["invisible_iou/svsi/mean_occluded"] == 0.0
    assert seg["invisible_iou/svsi/pooled_occluded"] == 0.0
    assert seg["visible_iou/modal/mean_all"] == 1.0


def test_checkpoint_and_export_give_the_same_numbers(tiny_data, tiny_run, tmp_path):
    a = evaluate(EvaluationConfig(checkpoint=latest_checkpoint(tiny_run), data=tiny_data,
                                  out=tmp_path / "pt", limit=1, device="cpu"), progress=False)
    b = evaluate(EvaluationConfig(checkpoint=tiny_run / "model.safetensors", data=tiny_data,
                                  out=tmp_path / "st", limit=1, device="cpu"), progress=False)
    assert a["checkpoint"]["format"] == "checkpoint" and b["checkpoint"]["format"] == "safetensors"
    assert a["num_images"] == 1
    assert a["methods"]["segan"]["segmentation"] == b["methods"]["segan"]["segmentation"]


def test_paste_to_image_covers_exactly_the_box():
    # S = 10 frame, box (2, 2) - (6, 8) -> original 20 x 20 frame box (4, 4) - (12, 16)
    probs = torch.ones(1, 1, 5, 5)
    boxes = torch.tensor([[0.0, 2.0, 2.0, 6.0, 8.0]])
    out = paste_to_image(probs, boxes, 10, 20, 20)[0]
    expected = torch.zeros(20, 20)
    expected[4:16, 4:12] = 1
    assert torch.equal(out, expected)
    # a left-to-right ramp stays a ramp in the same direction
    ramp = torch.linspace(0, 1, 5).view(1, 1, 1, 5).expand(1, 1, 5, 5).contiguous()
    out = paste_to_image(ramp, boxes, 10, 20, 20)[0]
    assert out[10, 4] < out[10, 8] < out[10, 11]


def test_box_frame_round_trip(tiny_data):
    """S_F cropped to the segmentor's m x m box frame (the training target), pasted back:
    close to the dataset's S_F at the original resolution."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    ds = load_annotations(tiny_data / "annotations" / "test.json")
    iid = ds.image_ids[0]
    inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
    from segan.train.cache import render_image

    _, planes = render_image(ds, iid, cfg.data.image_size)
    full_s = torch.from_numpy(planes[:, 1:2]).float() / 255
    box_full = crop_object_masks(full_s, inputs.boxes, cfg.model.mask_size)
    H, W = inputs.orig_hw
    pasted = threshold(paste_to_image(box_full, inputs.boxes, cfg.data.image_size, H, W).numpy())
    big = inputs.full.sum(axis=(1, 2)) >= 200
    assert big.any()
    scores = iou(pasted[big], inputs.full[big])
    assert scores.mean() > 0.8, scores


def test_visible_predicted_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="visible-instance segmenter"):
        evaluate(EvaluationConfig(checkpoint=tmp_path / "none", data=tmp_path,
                                  out=tmp_path / "out", visible="predicted"))
    rc = main(["evaluate", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--out",
               str(tmp_path / "o"), "--visible", "predicted"])
    assert rc == 2
    assert "visible-instance segmenter" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sample_spreads_images_over_the_split(tiny_data, tiny_run, tmp_path):
    ds = load_annotations(tiny_data / "annotations" / "test.json")
    ids = [i for i in ds.image_ids if ds.annotations[i]]
    res = evaluate(EvaluationConfig(checkpoint=tiny_run, data=tiny_data, out=tmp_path / "s",
                                    methods=("visible_as_full",), sample=2,
                                    device="cpu"), progress=False)
    assert res["num_images"] == 2 and res["sample"] == 2
    first_last = sum(len(ds.annotations[i]) for i in (ids[0], ids[-1]))
    assert res["num_objects"] == first_last  # the first and the last image of the split
    with pytest.raises(ValueError, match="--sample"):
        evaluate(EvaluationConfig(checkpoint=tiny_run, data=tiny_data, out=tmp_path / "t",
                                  sample=2, limit=2, device="cpu"), progress=False)


def test_fid_lpips_not_computed_without_weights(evaluated):
    results = json.loads((evaluated / "results.json").read_text())
    assert results["perceptual"]["note"] == ("not computed: needs weights (--fid-weights / "
                                             "--lpips-weights)")
    assert "lpips/alex_v0.1" not in results["methods"]["segan"]["painting"]
    md = (evaluated / "results.md").read_text()
    lpips_row = next(line for line in md.splitlines() if line.startswith("| LPIPS"))
    fid_row = next(line for line in md.splitlines() if line.startswith("| FID"))
    # segan paints, visible_as_full does not, the paper column has none
    assert lpips_row.endswith("| not computed: needs weights (--lpips-weights) | n/a | – |")
    assert fid_row.endswith("| not computed: needs weights (--fid-weights) | n/a | – |")


def test_fid_lpips_with_weight_files(tiny_data, tiny_run, tmp_path, capsys):
    from perceptual_weights import write_inception_file, write_lpips_files

    fid = write_inception_file(tmp_path / "w" / "pt_inception-2015-12-05-6726825d.pth")
    write_lpips_files(tmp_path / "w" / "lpips")
    out = tmp_path / "perceptual"
    rc = main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data),
               "--out", str(out),
               "--method", "segan", "--method", "visible_as_full", "--device", "cpu",
               "--limit", "1", "--quiet", "--fid-weights", str(fid),
               "--lpips-weights", str(tmp_path / "w" / "lpips")])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    paint = results["methods"]["segan"]["painting"]
    assert paint["fid/count"] == paint["count"] >= 2
    assert math.isfinite(paint["fid/pool3"]) and paint["fid/pool3"] > 0
    assert math.isfinite(paint["lpips/alex_v0.1"]) and paint["lpips/alex_v0.1"] > 0
    info = results["perceptual"]
    assert info["note"] is None and info["fid"]["variant"] == "pytorch-fid"
    assert info["fid"]["files"][0]["path"] == str(fid)
    assert len(info["lpips"]["files"]) == 2
    md = (out / "results.md").read_text()
    assert f"| LPIPS (AlexNet, v0.1) | {paint['lpips/alex_v0.1']:.4f} | n/a | – |" in md
    assert (f"| FID (TF FID Inception of pytorch-fid, pool3) | {paint['fid/pool3']:.2f} | n/a "
            "| – |") in md
    assert f"`{fid}` (sha256 {info['fid']['files'][0]['sha256'][:12]})" in md
    assert "both on black" in md
    assert "--fid-weights" in results["command"] and "--lpips-weights" in results["command"]

    # a wrong file: a clear error before anything runs
    rc = main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data), "--out",
               str(tmp_path / "bad"), "--quiet", "--device", "cpu", "--fid-weights",
               str(tmp_path / "w" / "lpips" / "alex.pth")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "alex.pth is not an Inception-v3 state dict for FID" in err, err
    assert not (tmp_path / "bad").exists()
