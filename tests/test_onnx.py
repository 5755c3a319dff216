"""ONNX export of the compact family's network and the onnxruntime path of the predictor
(segan.onnx_export; the `onnx` extra, in `dev`): parity with PyTorch on a tiny trained run,
for two object counts (the object axis is dynamic), and `segan predict --onnx`. Skipped where
onnx, onnxscript or onnxruntime is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from segan.checkpoint import load_segan  # noqa: E402
from segan.cli import main  # noqa: E402
from segan.data.coco import load_annotations  # noqa: E402
from segan.inference import SeganPredictor  # noqa: E402
from segan.onnx_export import OUTPUTS, OnnxSegan, example_inputs  # noqa: E402

# max abs difference of onnxruntime's outputs from PyTorch's (both fp32 on the CPU): S_F
# probabilities and painted crops in [-1, 1] (measured: about 1e-6); painted RGB of the
# predictor in uint8 levels (1: a rounding step)
NET_TOL, PAINT_LEVELS = 1e-4, 1


@pytest.fixture(scope="module")
def onnx_model(compact_tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "segan.onnx"
    assert main(["export", "--onnx", str(out), "--checkpoint", str(compact_tiny_run)]) == 0
    return out


@pytest.mark.slow
def test_network_parity_for_several_object_counts(compact_tiny_run, onnx_model):
    net, cfg, _ = load_segan(compact_tiny_run, "cpu")
    ort_net = OnnxSegan.load(onnx_model)
    assert ort_net.config == cfg.to_dict()
    for n in (1, 5):  # the export traced 3 objects
        images, visible, boxes = example_inputs(cfg.data.image_size, n)
        with torch.no_grad():
            ref = net(images, visible, boxes)
        got = ort_net(images, visible, boxes)
        for k in OUTPUTS:
            assert got[k].shape == ref[k].shape
            assert (got[k] - ref[k]).abs().max().item() <= NET_TOL, k


@pytest.mark.slow
def test_predictor_and_cli_on_onnxruntime(compact_tiny_run, onnx_model, tiny_data, tmp_path):
    ds = load_annotations(tiny_data / "annotations" / "test.json", root=tiny_data)
    iid = max(ds.image_ids, key=lambda i: len(ds.annotations[i]))
    image, visible = ds.load_image(iid), ds.image_masks(iid)[1]
    ref = SeganPredictor.from_checkpoint(compact_tiny_run, device="cpu").predict(image, visible)
    got = SeganPredictor.from_onnx(onnx_model).predict(image, visible)
    assert np.abs(got.full_probs - ref.full_probs).max() <= NET_TOL
    assert np.abs(got.painted.astype(int) - ref.painted.astype(int)).max() <= PAINT_LEVELS
    assert (got.full_masks == ref.full_masks).all() and got.layers.tolist() == ref.layers.tolist()
    out = tmp_path / "pred"
    assert main(["predict", str(ds.image_path(iid)), "--onnx", str(onnx_model), "--masks",
                 str(tiny_data / "annotations" / "test.json"), "--out", str(out),
                 "--quiet"]) == 0
    assert len(json.loads((out / "predictions.json").read_text())["annotations"]) == len(visible)


def test_onnx_file_that_is_not_segan_is_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load the ONNX model"):
        OnnxSegan.load(bad)
