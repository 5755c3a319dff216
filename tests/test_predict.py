"""The predictor API and `segan predict` on CPU: equality with the evaluation's forward, every
checkpoint form, the no-mask path, layering and painting-back on a known scene, every mask
input kind of the command and its errors on broken masks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import segan
from segan.cli import main
from segan.data.coco import decode_mask, load_annotations
from segan.eval.builtin_methods import SeGANMethod
from segan.eval.inputs import prepare_image
from segan.eval.metrics import occlusion_graph
from segan.inference import (
    NO_SEGMENTER_MESSAGE,
    SeganOutput,
    SeganPredictor,
    mirror_boxes,
    run_segan,
    second_pass_boxes,
)
from segan.pictures import INVISIBLE_COLOUR, VISIBLE_COLOUR, overlay, painted_scene
from segan.predict_io import unique_stems
from segan.prediction import ScenePrediction
from segan.train import load_config
from segan.train.checkpoint import latest_checkpoint
from segan.transforms import paste_to_image

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["schedule.stage1_steps=2", "schedule.stage2_steps=2", "run.checkpoint_every=4",
         "run.log_every=2", "run.grid_every=0", "run.tensorboard=false"]


@pytest.fixture(scope="module")
def predictor(tiny_run) -> SeganPredictor:
    return SeganPredictor.from_checkpoint(tiny_run, device="cpu")


@pytest.fixture(scope="module")
def test_split(tiny_data):
    ds = load_annotations(tiny_data / "annotations" / "test.json")
    ids = [i for i in ds.image_ids if len(ds.annotations[i]) >= 2]
    return ds, ids


def test_public_api_reexported():
    assert segan.SeganPredictor is SeganPredictor and segan.ScenePrediction is ScenePrediction


def test_predict_with_masks_matches_evaluation(predictor, test_split):
    ds, ids = test_split
    iid = ids[0]
    image = ds.load_image(iid)
    _, visible, _ = ds.image_masks(iid)
    scene = predictor.predict(image, visible)
    n, (H, W) = len(visible), image.shape[:2]
    assert len(scene) == n and scene.image_hw == (H, W)
    for name, shape, dtype in (("visible_masks", (n, H, W), bool), ("full_masks", (n, H, W), bool),
                               ("invisible_masks", (n, H, W), bool),
                               ("full_probs", (n, H, W), np.float32),
                               ("painted", (n, H, W, 4), np.uint8), ("boxes", (n, 4), np.float32),
                               ("layers", (n,), np.int64)):
        a = getattr(scene, name)
        assert a.shape == shape and a.dtype == dtype, name
    assert scene.scores is None
    assert np.isfinite(scene.full_probs).all()
    assert scene.full_probs.min() >= 0 and scene.full_probs.max() <= 1
    np.testing.assert_array_equal(scene.visible_masks, visible)
    assert (scene.full_masks >= visible).all()  # S_V inside S_F
    np.testing.assert_array_equal(scene.invisible_masks, scene.full_masks & ~visible)
    np.testing.assert_array_equal(scene.full_masks, (scene.full_probs >= 0.5) | visible)
    np.testing.assert_array_equal(scene.painted[..., 3], scene.full_masks * 255)
    assert ((scene.boxes[:, :2] >= 0) & (scene.boxes[:, 2:] <= [W, H])).all()
    assert (scene.boxes[:, 2:] > scene.boxes[:, :2]).all()
    # the evaluation's forward on the same image gives the same S_F probabilities
    inputs = prepare_image(ds, iid, predictor.cfg, torch.device("cpu"))
    ref = SeGANMethod(predictor.net, predictor.cfg)(inputs)
    np.testing.assert_array_equal(scene.full_probs, ref.full_probs.numpy())
    # section 5.2's rule, and layers that respect every pair outside a cycle
    assert set(scene.occlusion_pairs) == occlusion_graph(visible, scene.full_masks)
    pairs = set(scene.occlusion_pairs)
    for q, p in pairs:
        if (p, q) not in pairs:
            assert scene.layers[p] >= 1
    obj = scene.objects[0]
    assert obj.occluders == [q for q, p in scene.occlusion_pairs if p == 0]


def test_predicted_visible_context_runs_like_the_predictor(predictor, test_split):
    """--visible predicted: an unmatched prediction is not scored but SeGAN still sees it (the
    occluder context and gate), as `segan predict` sees every mask it is given. An image whose
    last object (an occluder where the image has one) is such a prediction and whose first one
    is a miss: the evaluation's S_F of the matched objects is the predictor's on the same
    masks, with the unmatched one appended; the context survives `subset`."""
    from segan.eval.scoring import run_method

    ds, ids = test_split
    iid = next((i for i in ids if len(ds.annotations[i]) >= 3), ids[0])
    image = ds.load_image(iid)
    _, visible, _ = ds.image_masks(iid)
    index = {int(a["id"]): k for k, a in enumerate(ds.annotations[iid])}
    occluders = [index[int(q)] for q, _ in ds.occlusion_pairs(iid)]  # pairs of annotation ids
    q = occluders[0] if occluders else len(visible) - 1
    rest = [k for k in range(len(visible)) if k != q]
    given = visible.copy()
    given[q] = False  # q: an unmatched prediction, not an object of this image's score
    given[rest[0]] = False  # and a miss
    detected = given.reshape(len(given), -1).any(1)
    inputs = prepare_image(ds, iid, predictor.cfg, torch.device("cpu"), given,
                           context_visible=visible[q:q + 1])
    plain = prepare_image(ds, iid, predictor.cfg, torch.device("cpu"))
    torch.testing.assert_close(inputs.context_masks, plain.visible_masks[q:q + 1])
    torch.testing.assert_close(inputs.context_boxes, plain.boxes[q:q + 1])
    sub = inputs.subset(detected)
    assert sub.num_objects == len(rest) - 1 and sub.context_visible is inputs.context_visible
    out = run_method(SeGANMethod(predictor.net, predictor.cfg), inputs, detected)
    assert out.full_probs.shape == (len(visible), *image.shape[:2])
    order = rest[1:] + [q]
    scene = predictor.predict(image, visible[order])
    np.testing.assert_array_equal(out.full_probs.numpy()[rest[1:]], scene.full_probs[:-1])
    assert (out.full_probs.numpy()[[rest[0], q]] == 0).all()  # the miss and the context


def test_flip_tta_is_mirror_equivariant(predictor, test_split):
    """The flip-averaged forward of a mirrored image is the mirror of the image's: holds only if
    the boxes are mirrored in the frame's continuous coordinates (x -> S - x)."""
    ds, ids = test_split
    inputs = prepare_image(ds, ids[0], predictor.cfg, torch.device("cpu"))
    S = predictor.cfg.data.image_size
    torch.testing.assert_close(mirror_boxes(mirror_boxes(inputs.boxes, S), S), inputs.boxes)
    args = (predictor.net, S, inputs.images, inputs.visible_masks, inputs.boxes, inputs.orig_hw)
    plain = run_segan(*args)
    tta = run_segan(*args, flip_tta=True)
    mirrored = run_segan(predictor.net, S, inputs.images.flip(-1), inputs.visible_masks.flip(-1),
                         mirror_boxes(inputs.boxes, S), inputs.orig_hw, flip_tta=True)
    for a, b in ((tta.box_full, mirrored.box_full), (tta.painted, mirrored.painted)):
        assert a.shape == b.shape and torch.isfinite(a).all()
        torch.testing.assert_close(a, b.flip(-1), atol=1e-4, rtol=0)
    torch.testing.assert_close(tta.full_probs, mirrored.full_probs.flip(-1), atol=2e-3, rtol=0)
    assert not torch.allclose(tta.box_full, plain.box_full)  # the second view counts
    # the evaluation method of that name runs the same forward
    out = SeGANMethod(predictor.net, predictor.cfg, flip_tta=True)(inputs)
    torch.testing.assert_close(out.box_full, run_segan(
        *args, visible_orig=torch.from_numpy(inputs.input_visible), flip_tta=True).box_full)


def test_second_box_pass(predictor, test_split):
    """data.box_passes 2: the objects whose S_F reaches their box's edge run again on a box
    grown around it, beside every object's U (as if all had run on the new boxes); the others
    keep the first pass; the evaluation scores the new crops over its own boxes; the predictor
    runs the same forward."""
    ds, ids = test_split
    cfg = copy.deepcopy(predictor.cfg)
    cfg.data.expand_test = 0.0  # tight boxes: S_V reaches their edges, so objects run again
    inputs = prepare_image(ds, ids[0], cfg, torch.device("cpu"))
    S, net = cfg.data.image_size, predictor.net
    vis = torch.from_numpy(inputs.input_visible)
    args = (net, S, inputs.images, inputs.visible_masks, inputs.boxes, inputs.orig_hw, None, vis)
    one = run_segan(*args)
    two = run_segan(*args, box_passes=2, expand=0.2)
    with torch.no_grad():
        first = net(inputs.images, inputs.visible_masks, inputs.boxes)
        again, boxes = second_pass_boxes(first["mask_probs"], inputs.boxes, 0.2, S)
        everyone = net(inputs.images, inputs.visible_masks, boxes)  # all objects, new boxes
    assert 0 < len(again) and torch.equal(two.boxes, boxes)
    stay = torch.ones(len(boxes), dtype=torch.bool)
    stay[again] = False
    assert torch.equal(two.boxes[stay], inputs.boxes[stay])
    torch.testing.assert_close(two.painted[stay], one.painted[stay])
    torch.testing.assert_close(two.painted[again],
                               ((everyone["painted"][again] + 1) / 2).clamp(0, 1),
                               atol=1e-5, rtol=0)
    new, old = two.boxes[again, 1:], inputs.boxes[again, 1:]
    assert (new[:, :2] <= old[:, :2]).all() and (new[:, 2:] >= old[:, 2:]).all()
    # S_F (before the gate): both passes' mean inside the first box, the second beyond it
    plain1, plain2 = run_segan(*args[:6]), run_segan(*args[:6], box_passes=2, expand=0.2)
    H, W = inputs.orig_hw
    first_box = paste_to_image(torch.ones(len(again), 1, 4, 4), inputs.boxes[again], S, H, W) > 0
    assert first_box.any() and (~first_box).any()
    second = paste_to_image(everyone["mask_probs"][again].float(), boxes[again], S, H, W)
    torch.testing.assert_close(plain2.full_probs[again][first_box],
                               (plain1.full_probs[again][first_box] + second[first_box]) / 2,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(plain2.full_probs[again][~first_box], second[~first_box],
                               atol=1e-5, rtol=0)
    assert torch.isfinite(two.full_probs).all() and not torch.equal(two.full_probs,
                                                                    one.full_probs)
    # the evaluation (its config's expand_test grows the second boxes): crops over its own
    # boxes; the predictor: the same S_F
    cfg.data.box_passes, cfg.data.expand_test = 2, 0.2
    scored = SeGANMethod(net, cfg)(inputs)
    two = run_segan(*args, box_passes=2, expand=0.2)
    assert scored.painted.shape == one.painted.shape
    torch.testing.assert_close(scored.full_probs, two.full_probs)
    torch.testing.assert_close(scored.painted[stay], one.painted[stay])
    assert not torch.allclose(scored.painted[again], one.painted[again])
    inputs = prepare_image(ds, ids[0], cfg, torch.device("cpu"))  # boxes grown by 0.2
    image = ds.load_image(ids[0])
    scene = SeganPredictor(net, cfg, torch.device("cpu")).predict(image, inputs.input_visible)
    np.testing.assert_array_equal(scene.full_probs, SeGANMethod(net, cfg)(inputs).full_probs
                                  .numpy())


def test_third_box_pass(predictor, test_split):
    """data.box_passes 3: of the objects that ran a second time, those whose second S_F still
    reaches its box's edge run a third time on a box grown around that one; S_F is the mean of
    what came before and the third pass inside the second box, the third pass beyond it."""
    ds, ids = test_split
    cfg = copy.deepcopy(predictor.cfg)
    cfg.data.expand_test = 0.0
    inputs = prepare_image(ds, ids[0], cfg, torch.device("cpu"))
    S, net = cfg.data.image_size, predictor.net
    args = (net, S, inputs.images, inputs.visible_masks, inputs.boxes, inputs.orig_hw)
    two = run_segan(*args, box_passes=2, expand=0.2)
    three = run_segan(*args, box_passes=3, expand=0.2)
    with torch.no_grad():
        first = net(inputs.images, inputs.visible_masks, inputs.boxes)
        again2, boxes2 = second_pass_boxes(first["mask_probs"], inputs.boxes, 0.2, S)
        second = net(inputs.images, inputs.visible_masks, boxes2)  # all objects, second boxes
        again3, grown = second_pass_boxes(second["mask_probs"][again2], boxes2[again2], 0.2, S)
        again3 = again2[again3]
        boxes3 = boxes2.clone()
        boxes3[again3] = grown[torch.isin(again2, again3)]
        third = net(inputs.images, inputs.visible_masks, boxes3)
    assert 0 < len(again3) < len(again2)
    torch.testing.assert_close(three.boxes, boxes3)
    stay = torch.ones(len(boxes3), dtype=torch.bool)
    stay[again3] = False
    torch.testing.assert_close(three.full_probs[stay], two.full_probs[stay])
    torch.testing.assert_close(three.painted[again3],
                               ((third["painted"][again3] + 1) / 2).clamp(0, 1),
                               atol=1e-5, rtol=0)
    H, W = inputs.orig_hw
    inside = paste_to_image(torch.ones(len(again3), 1, 4, 4), boxes2[again3], S, H, W) > 0
    new = paste_to_image(third["mask_probs"][again3].float(), boxes3[again3], S, H, W)
    torch.testing.assert_close(three.full_probs[again3],
                               torch.where(inside, (two.full_probs[again3] + new) / 2, new),
                               atol=1e-5, rtol=0)


def test_second_box_pass_without_u_runs_every_object(predictor, test_split):
    """A network that takes no U (an ONNX export from before session 29) runs every object on
    the second boxes, so that U stays every object's: the same S_F and crops as SeGAN's."""
    ds, ids = test_split
    cfg = copy.deepcopy(predictor.cfg)
    cfg.data.expand_test = 0.0
    inputs = prepare_image(ds, ids[0], cfg, torch.device("cpu"))
    net, calls = predictor.net, []

    class NoUnion:  # SeGAN's forward without the visible_union argument
        occluder_gate = net.occluder_gate

        def __call__(self, images, visible_masks, boxes):
            calls.append(len(boxes))
            return net(images, visible_masks, boxes)

    args = (cfg.data.image_size, inputs.images, inputs.visible_masks, inputs.boxes,
            inputs.orig_hw, None, torch.from_numpy(inputs.input_visible))
    ref = run_segan(net, *args, box_passes=2, expand=0.2)
    got = run_segan(NoUnion(), *args, box_passes=2, expand=0.2)
    assert calls == [len(inputs.boxes)] * 2 and not torch.equal(ref.boxes, inputs.boxes)
    torch.testing.assert_close(got.boxes, ref.boxes)
    torch.testing.assert_close(got.full_probs, ref.full_probs, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.painted, ref.painted, atol=1e-5, rtol=0)


def test_every_checkpoint_form_gives_the_same_prediction(tiny_run, predictor, test_split):
    ds, ids = test_split
    image = ds.load_image(ids[1])
    visible = ds.image_masks(ids[1])[1]
    ref = predictor.predict(image, list(visible))  # a list of masks works too
    for path in (tiny_run / "model.safetensors", latest_checkpoint(tiny_run)):
        other = SeganPredictor.from_checkpoint(path, device="cpu").predict(image, visible)
        np.testing.assert_allclose(other.full_probs, ref.full_probs, atol=1e-5)
        np.testing.assert_array_equal(other.layers, ref.layers)


def test_bad_inputs_say_what_is_wrong(predictor, test_split):
    ds, ids = test_split
    image = ds.load_image(ids[0])
    visible = ds.image_masks(ids[0])[1]
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(image.astype(np.float32), visible)
    with pytest.raises(ValueError, match=r"visible mask 0 is \(10, 10\)"):
        predictor.predict(image, np.zeros((1, 10, 10), bool))
    empty = visible.copy()
    empty[1] = False
    with pytest.raises(ValueError, match="visible mask 1 is empty"):
        predictor.predict(image, empty)
    with pytest.raises(ValueError, match="must be bool"):
        predictor.predict(image, visible.astype(np.uint8))
    scene = predictor.predict(image, np.zeros((0, *image.shape[:2]), bool))
    assert len(scene) == 0 and painted_scene(image, scene).shape == image.shape


def test_no_masks_needs_a_visible_segmenter(predictor, test_split):
    ds, ids = test_split
    image = ds.load_image(ids[0])
    with pytest.raises(ValueError) as e:
        predictor.predict(image)
    assert str(e.value) == NO_SEGMENTER_MESSAGE and "visible_segmenter=PATH" in str(e.value)


def test_no_masks_with_a_segmenter(tiny_run, test_split):
    """The no-mask path with an object that meets the VisibleSegmenter contract (here: it
    returns the dataset's S_V plus an empty mask, which is dropped)."""
    ds, ids = test_split
    image = ds.load_image(ids[0])
    visible = ds.image_masks(ids[0])[1]

    class GroundTruthSegmenter:
        def segment(self, img):
            assert img.shape == image.shape and img.dtype == np.uint8
            masks = np.concatenate([visible, np.zeros((1, *img.shape[:2]), bool)])
            return masks, np.linspace(1, 0.5, len(masks))

    p = SeganPredictor.from_checkpoint(tiny_run, device="cpu",
                                       visible_segmenter=GroundTruthSegmenter())
    scene = p.predict(image)
    with_masks = p.predict(image, visible)
    np.testing.assert_array_equal(scene.full_probs, with_masks.full_probs)
    assert scene.scores is not None and scene.scores.shape == (len(visible),)


def test_no_masks_with_the_real_visible_segmenter(tiny_run, test_split, tmp_path, capsys):
    """segan.models.visible_segmenter (helper/maskrcnn): an untrained tiny class-agnostic
    Mask R-CNN keeping every detection, exported and loaded by path, through the API and the
    command."""
    from segan.models.visible_segmenter import MaskRCNNNet, VisibleSegmenter
    from segan.train.checkpoint import export_safetensors

    torch.manual_seed(0)
    det = MaskRCNNNet(mask_target="visible", score_threshold=0.0, backbone="resnet18",
                      min_size=64, max_size=64, fpn_channels=32, box_head_dim=64,
                      rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                      box_detections_per_img=20, anchor_sizes=(8, 16, 32, 64, 128)).eval()
    seg_path = export_safetensors(det, tmp_path / "seg" / "model.safetensors",
                                  {"task": "visible_maskrcnn"}, 1)
    ds, ids = test_split
    image = ds.load_image(ids[0])
    masks, scores = VisibleSegmenter.from_checkpoint(seg_path, device="cpu").segment(image)
    keep = masks.any(axis=(1, 2))
    assert keep.any(), "the untrained detector found nothing: the test would not test"
    p = SeganPredictor.from_checkpoint(tiny_run, device="cpu", visible_segmenter=seg_path)
    scene = p.predict(image)
    np.testing.assert_array_equal(scene.visible_masks, masks[keep])
    np.testing.assert_allclose(scene.scores, scores[keep])
    assert scene.full_masks.shape == masks[keep].shape and (scene.full_masks >= masks[keep]).all()
    # the command without --masks
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tiny_run), str(ds.image_path(ids[0])),
                 "--visible-segmenter", str(seg_path), "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0
    anns = json.loads((out / "predictions.json").read_text())["annotations"]
    assert len(anns) == int(keep.sum()) and all("score" in a for a in anns)


def test_layers_and_painting_back_on_a_known_scene(predictor, monkeypatch):
    """Object 1 (a bar in front) hides the middle of object 0; the network is replaced by one
    that predicts object 0's whole square. Rule: IoU(S_V of 1, S_I of 0) > 5% -> (1, 0)."""
    H = W = 40
    image = np.full((H, W, 3), 90, np.uint8)
    full0 = np.zeros((H, W), bool)
    full0[8:32, 8:32] = True
    bar = np.zeros((H, W), bool)
    bar[16:24, 4:36] = True
    visible = np.stack([full0 & ~bar, bar])

    def fake_run_segan(net, frame, images, vis, boxes, orig_hw, amp=None, visible_orig=None,
                       forward=None, **_):
        c = predictor.cfg.model.crop_size
        probs = torch.from_numpy(np.stack([full0, bar]).astype(np.float32))
        painted = torch.zeros(2, 3, c, c)
        painted[0, 0] = 1.0  # object 0 painted pure red
        return SeganOutput(full_probs=probs, box_full=torch.zeros(2, 1, c, c), painted=painted,
                           boxes=boxes)

    monkeypatch.setattr("segan.inference.run_segan", fake_run_segan)
    scene = predictor.predict(image, visible)
    assert scene.occlusion_pairs == [(1, 0)]
    np.testing.assert_array_equal(scene.layers, [1, 0])
    np.testing.assert_array_equal(scene.invisible_masks[0], full0 & bar)
    assert not scene.invisible_masks[1].any()
    back = painted_scene(image, scene)
    hidden = full0 & bar
    assert (back[hidden] == [255, 0, 0]).all()  # object 0 painted back over the bar
    assert (back[~hidden] == 90).all()
    pic = overlay(image, scene, scale=2)
    assert pic.shape == (2 * H, 2 * W, 3) and pic.dtype == np.uint8
    # S_V green; S_I of 0 lies on the bar's S_V: green, then magenta over it
    green = 0.55 * 90 + 0.45 * np.array(VISIBLE_COLOUR)
    np.testing.assert_array_equal(pic[2 * 10, 2 * 12], np.round(green))
    np.testing.assert_array_equal(pic[2 * 18, 2 * 10],
                                  np.round(0.35 * green + 0.65 * np.array(INVISIBLE_COLOUR)))
    np.testing.assert_array_equal(pic[0, 0], [90, 90, 90])


# ----------------------------------------------------------------------------- the command


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def cli_inputs(test_split, tmp_path_factory):
    ds, ids = test_split
    d = tmp_path_factory.mktemp("pred_inputs")
    iid = ids[0]
    image = ds.image_path(iid)
    visible = ds.image_masks(iid)[1]
    ids_png = np.zeros(visible.shape[1:], np.uint16)
    for k in range(len(visible)):
        ids_png[visible[k]] = 1000 + k  # disjoint S_V: one id each, 16 bit
    folder = d / "objects"
    folder.mkdir()
    objs = [_png(folder / f"m{k:02d}.png", visible[k] * np.uint8(255))
            for k in range(len(visible))]
    return {"ds": ds, "ids": ids, "image": image, "visible": visible,
            "id_png": _png(d / "ids.png", ids_png), "folder": folder, "objects": objs, "dir": d}


def _predict(run, out, images, masks, *extra) -> int:
    return main(["predict", "--checkpoint", str(run), *map(str, images), "--masks",
                 *map(str, masks), "--out", str(out), "--device", "cpu", "--quiet", *extra])


def _visible_of(out: Path) -> list[np.ndarray]:
    pred = json.loads((out / "predictions.json").read_text())
    rec = pred["images"][0]
    return [decode_mask(a["visible_mask"], rec["height"], rec["width"])
            for a in pred["annotations"] if a["image_id"] == rec["id"]]


def test_predict_cli_json_several_images(tiny_run, tiny_data, cli_inputs, tmp_path):
    ds, ids = cli_inputs["ds"], cli_inputs["ids"]
    images = [ds.image_path(i) for i in ids[:2]]
    assert _predict(tiny_run, tmp_path, images, [tiny_data / "annotations" / "test.json"]) == 0
    pred = load_annotations(tmp_path / "predictions.json")  # a valid segan-coco file
    assert len(pred.images) == 2
    for rec, iid, stem in zip(pred.images.values(), ids[:2], unique_stems(images), strict=True):
        anns = pred.annotations[rec["id"]]
        assert len(anns) == len(ds.annotations[iid])
        folder = tmp_path / stem
        assert (folder / "overlay.png").is_file() and (folder / "painted_scene.png").is_file()
        for k, ann in enumerate(anns):
            np.testing.assert_array_equal(pred.visible_mask(ann),
                                          ds.visible_mask(ds.annotations[iid][k]))
            assert isinstance(ann["depth_layer"], int)
            painted = np.asarray(Image.open(tmp_path / ann["painted_file"]))
            assert painted.shape == (rec["height"], rec["width"], 4)
            np.testing.assert_array_equal(painted[..., 3] > 0, pred.full_mask(ann))
            full_png = np.asarray(Image.open(folder / f"object_{k}_full.png")) > 0
            np.testing.assert_array_equal(full_png, pred.full_mask(ann))
        # the image's occlusion pairs are section 5.2's rule on the written masks
        index = {a["id"]: k for k, a in enumerate(anns)}
        full = np.stack([pred.full_mask(a) for a in anns])
        vis = np.stack([pred.visible_mask(a) for a in anns])
        got = {(index[q], index[p]) for q, p in pred.occlusion_pairs(rec["id"])}
        assert got == occlusion_graph(vis, full)


@pytest.mark.parametrize("kind", ["id_png", "folder", "objects"])
def test_predict_cli_png_masks(tiny_run, cli_inputs, tmp_path, kind):
    src = cli_inputs[kind]
    masks = src if isinstance(src, list) else [src]
    assert _predict(tiny_run, tmp_path, [cli_inputs["image"]], masks) == 0
    got = _visible_of(tmp_path)
    np.testing.assert_array_equal(np.stack(got), cli_inputs["visible"])
    assert (tmp_path / "00000" / "overlay.png").is_file()


def test_predict_cli_broken_masks(tiny_run, cli_inputs, tiny_data, tmp_path, capsys):
    d, image, visible = cli_inputs["dir"], cli_inputs["image"], cli_inputs["visible"]
    H, W = visible.shape[1:]
    small = _png(d / "small.png", np.full((H // 2, W), 255, np.uint8))
    empty = _png(d / "empty.png", np.zeros((H, W), np.uint8))
    junk = d / "junk.png"
    junk.write_text("not a png")
    bad_json = d / "bad.json"
    ann = {"id": 7, "image_id": 1, "category_id": 1,
           "segmentation": {"size": [H, W], "counts": [5, 3]}}
    bad_json.write_text(json.dumps({"images": [{"id": 1, "file_name": "00000.png", "width": W,
                                                "height": H}],
                                    "annotations": [ann], "categories": []}))
    other = d / "other.json"
    other.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.png", "width": W,
                                             "height": H}, {"id": 2, "file_name": "y.png",
                                                            "width": W, "height": H}],
                                 "annotations": [], "categories": []}))
    cases = [
        ([small], f"{small}: mask is {W}x{H // 2} (WxH) but the image"),
        ([empty], f"{empty}: the instance-id mask is empty"),
        ([cli_inputs["objects"][0], empty], f"{empty}: the mask is empty"),
        ([junk], f"{junk}: not a readable image"),
        ([bad_json], f"{bad_json}: annotation 7 (image 1): field 'segmentation'"),
        ([other], f"{other}: no images[] record with file_name '00000.png'"),
        ([d / "missing.png"], "no such mask file"),
    ]
    for masks, message in cases:
        out = tmp_path / "out"
        assert _predict(tiny_run, out, [image], masks) == 2, masks
        err = capsys.readouterr().err
        assert message in err, (message, err)
        assert not out.exists()  # inputs are checked before anything is written
    # several images with PNG masks: refused with the way out
    assert _predict(tiny_run, tmp_path / "o2", [image, image], [cli_inputs["id_png"]]) == 2
    assert "one COCO JSON" in capsys.readouterr().err


def test_predict_cli_without_masks_or_segmenter(tiny_run, cli_inputs, tmp_path, capsys):
    rc = main(["predict", "--checkpoint", str(tiny_run), str(cli_inputs["image"]), "--out",
               str(tmp_path), "--device", "cpu", "--quiet"])
    assert rc == 2 and "--visible-segmenter" in capsys.readouterr().err


def test_quickstart_end_to_end(tmp_path, capsys):
    """The README's main command with a shortened schedule (the real one trains 250 steps)."""
    cfg = tmp_path / "short.yaml"
    cfg.write_text(load_config(ROOT / "configs" / "tiny.yaml", SHORT).to_yaml())
    out = tmp_path / "qs"
    assert main(["quickstart", str(out), "--config", str(cfg), "--quiet"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed[:printed.rindex("}") + 1])
    overlay_png = np.asarray(Image.open(result["overlay"]))
    assert overlay_png.ndim == 3 and min(overlay_png.shape[:2]) >= 480  # upscaled 160 px image
    pred = load_annotations(result["predictions"])
    assert sum(len(a) for a in pred.annotations.values()) == result["objects"] >= 2
    # again on the same folder: generation and training are reused, prediction redone
    assert main(["quickstart", str(out), "--config", str(cfg), "--quiet"]) == 0
    again = capsys.readouterr().out
    assert json.loads(again[:again.rindex("}") + 1])["image"] == result["image"]
