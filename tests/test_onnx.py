"""ONNX export of the compact family's network and the onnxruntime path of the predictor
(segan.onnx_export; the `onnx` extra, in `dev`): parity with PyTorch on a tiny trained run,
for two object counts (the object axis is dynamic), and `segan predict --onnx`; the bundled
model exported by `segan export --onnx OUT` (no --checkpoint) and its parity on a real image.
Skipped where onnx, onnxscript or onnxruntime is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from segan.bundle import package_bundle  # noqa: E402
from segan.checkpoint import load_segan  # noqa: E402
from segan.cli import main  # noqa: E402
from segan.data.atomic import file_sha256  # noqa: E402
from segan.data.coco import load_annotations  # noqa: E402
from segan.eval.inputs import prepare_image  # noqa: E402
from segan.inference import SeganPredictor, run_segan  # noqa: E402
from segan.onnx_export import OUTPUTS, OnnxSegan, example_inputs  # noqa: E402
from segan.predict_io import masks_for_images, read_image  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "data" / "bundle_golden"  # tests/test_bundle_golden.py
# max abs difference of onnxruntime's outputs from PyTorch's (both fp32 on the CPU): S_F
# probabilities and painted crops in [-1, 1] (measured: about 1e-6 on the tiny run, 2.7e-6 for
# the bundled model's S_F on the golden kitchen image); painted RGB of the predictor in uint8
# levels (1: a rounding step)
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
        images, visible, boxes, union = example_inputs(cfg.data.image_size, n)
        with torch.no_grad():
            ref = net(images, visible, boxes)
        for got in (ort_net(images, visible, boxes), ort_net(images, visible, boxes, union)):
            for k in OUTPUTS:
                assert got[k].shape == ref[k].shape
                assert (got[k] - ref[k]).abs().max().item() <= NET_TOL, k
    # U is an input: the first object alone, beside all three's U, as PyTorch
    assert ort_net.takes_union
    with torch.no_grad():
        ref = net(images, visible[:1], boxes[:1], visible_union=union)
    got = ort_net(images, visible[:1], boxes[:1], union)
    assert (got["mask_probs"] - ref["mask_probs"]).abs().max().item() <= NET_TOL


@pytest.mark.slow
@pytest.mark.parametrize("passes", [2, 3])
def test_later_box_passes_on_onnxruntime(compact_tiny_run, onnx_model, tiny_data, passes):
    """data.box_passes 2 and 3 on onnxruntime (U is an input: only the objects whose S_F
    reaches their box's edge run again) give PyTorch's."""
    ds = load_annotations(tiny_data / "annotations" / "test.json", root=tiny_data)
    net, cfg, _ = load_segan(compact_tiny_run, "cpu")
    cfg.data.expand_test = 0.0  # tight first boxes: S_V reaches their edges, objects run again
    expand = 0.2 if passes == 2 else 0.1  # later boxes: 0.1 lets this run's o reach them again

    def arguments(iid):
        inputs = prepare_image(ds, iid, cfg, torch.device("cpu"))
        return inputs, (cfg.data.image_size, inputs.images, inputs.visible_masks, inputs.boxes,
                        inputs.orig_hw, None, torch.from_numpy(inputs.input_visible))

    if passes == 2:
        iid = max(ds.image_ids, key=lambda i: len(ds.annotations[i]))
    else:  # an image where some object runs a third time
        def runs_a_third_time(iid):
            args = arguments(iid)[1]
            return not torch.equal(run_segan(net, *args, box_passes=2, expand=expand).boxes,
                                   run_segan(net, *args, box_passes=3, expand=expand).boxes)

        iid = next((i for i in ds.image_ids if runs_a_third_time(i)), None)
        assert iid is not None, "no test image runs a third pass"
    inputs, args = arguments(iid)
    ref = run_segan(net, *args, box_passes=passes, expand=expand)
    got = run_segan(OnnxSegan.load(onnx_model), *args, box_passes=passes, expand=expand)
    assert not torch.equal(ref.boxes, inputs.boxes)  # a second pass ran
    torch.testing.assert_close(got.boxes, ref.boxes)
    assert (got.full_probs - ref.full_probs).abs().max().item() <= NET_TOL
    assert (got.painted - ref.painted).abs().max().item() <= NET_TOL


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


@pytest.fixture(scope="module")
def bundle_onnx(tmp_path_factory) -> Path:
    """The package's bundled model, exported as a user would: `segan export --onnx OUT`
    (about 20 s on 2 cores, so once per module)."""
    out = tmp_path_factory.mktemp("onnx_bundle") / "segan_compact.onnx"
    assert main(["export", "--onnx", str(out)]) == 0
    return out


@pytest.mark.slow
def test_export_without_checkpoint_is_the_bundled_model(bundle_onnx):
    model = OnnxSegan.load(bundle_onnx)
    assert model.source["sha256"] == file_sha256(package_bundle())
    assert model.source["path"] == str(package_bundle())


@pytest.mark.slow
def test_bundled_model_parity_on_a_real_image(bundle_onnx):
    """onnxruntime against PyTorch for the bundled model on a golden image (12 objects)."""
    path = GOLDEN / "s005_kitchen_00001.png"
    image = read_image(path)
    visible = masks_for_images([GOLDEN / "inputs.json"], [path], [image.shape[:2]])[0]
    ref = SeganPredictor.pretrained("cpu").predict(image, visible)
    got = SeganPredictor.from_onnx(bundle_onnx).predict(image, visible)
    assert np.abs(got.full_probs - ref.full_probs).max() <= NET_TOL
    assert np.abs(got.painted.astype(int) - ref.painted.astype(int)).max() <= PAINT_LEVELS
    assert (got.full_masks == ref.full_masks).all()
    assert got.occlusion_pairs == ref.occlusion_pairs and ref.occlusion_pairs
    assert got.layers.tolist() == ref.layers.tolist()


def test_onnx_file_that_is_not_segan_is_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load the ONNX model"):
        OnnxSegan.load(bad)


def test_a_model_with_the_amodal_box_head_is_refused_by_name(tmp_path):
    """Its box passes read the head's deltas, which the ONNX graph does not output yet."""
    from segan.onnx_export import export_onnx
    from segan.train import load_config
    from segan.train.checkpoint import export_safetensors
    from segan.train.tasks import build_segan

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml",
                      ["model.segmentor=crop_unet", "model.segmentor_input_size=64",
                       "model.amodal_box_head=true"])
    weights = export_safetensors(build_segan(cfg, "none"), tmp_path / "model.safetensors",
                                 cfg.to_dict(), step=0)
    with pytest.raises(ValueError, match="amodal_box_head is not exported to ONNX"):
        export_onnx(weights, tmp_path / "out.onnx")
