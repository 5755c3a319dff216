"""SegmentorEnsemble and the `segan_ensemble` evaluation method: SeGAN.forward is segment()
then paint(); the ensemble's o is the members' mean and the first member paints it; an
ensemble of one network twice scores as that network."""

from __future__ import annotations

import json

import pytest
import torch

from segan.cli import main
from segan.models import SegmentorEnsemble
from test_crop_segmentor import CROP
from test_models import make_objects, tiny_segan

GATED = dict(CROP, mask_size=16, segmentor_context=True, occluder_gate="one_way")


def _net(seed: int, **kw):
    torch.manual_seed(seed)
    return tiny_segan(**{**GATED, **kw}).eval()


def test_forward_is_segment_then_paint():
    net = _net(0)
    images, masks, boxes = make_objects()
    with torch.no_grad():
        out = net(images, masks, boxes)
        union = torch.zeros(2, 1, *images.shape[-2:])
        union[0] = masks[:2].amax(0)
        union[1] = masks[2]
        seg = net.segment(images, masks, boxes, union)
        paint = net.paint(images, masks, boxes, seg["mask_probs"])
    assert set(out) == set(seg) | set(paint)
    for k, v in {**seg, **paint}.items():
        torch.testing.assert_close(out[k], v, msg=k)


def test_ensemble_averages_o_and_the_first_member_paints():
    a, b = _net(0), _net(1)
    images, masks, boxes = make_objects()
    with torch.no_grad():
        ens = SegmentorEnsemble([a, b])(images, masks, boxes)
        oa, ob = a(images, masks, boxes), b(images, masks, boxes)
        assert not torch.allclose(oa["mask_probs"], ob["mask_probs"])
        mean = (oa["mask_probs"] + ob["mask_probs"]) / 2
        torch.testing.assert_close(ens["mask_probs"], mean)
        painted = a.paint(images, masks, boxes, mean)["painted"]
    torch.testing.assert_close(ens["painted"], painted)
    assert ens["full_mask"].shape == oa["full_mask"].shape == (3, 1, 64, 64)
    assert all(torch.isfinite(v).all() for v in ens.values())
    # one network twice is that network
    with torch.no_grad():
        twice = SegmentorEnsemble([a, a])(images, masks, boxes)
    for k in ("mask_probs", "full_mask", "painted"):
        torch.testing.assert_close(twice[k], oa[k], msg=k)


def test_ensemble_refuses_members_that_cannot_be_averaged():
    with pytest.raises(ValueError, match="at least one"):
        SegmentorEnsemble([])
    with pytest.raises(ValueError, match="member 1 has mask_size=32"):
        SegmentorEnsemble([_net(0), _net(1, mask_size=32)])


def _segan_scores(results: dict, label: str) -> tuple[float, float, float]:
    m = results["methods"][label]
    return (m["segmentation"]["full_iou/standard/mean_all"],
            m["segmentation"]["invisible_iou/justamodal/mean_occluded"],
            m["painting"]["l1/masked_mean"])


def test_segan_ensemble_method_of_one_run_twice_scores_as_the_run(
        compact_tiny_run, tiny_data, tmp_path):
    """`segan evaluate --method segan_ensemble@e=RUN+RUN` (no --checkpoint: its first member
    is the reference) gives the run's own numbers, box passes included."""
    out = tmp_path / "ev"
    run = str(compact_tiny_run)
    rc = main(["evaluate", "--data", str(tiny_data), "--out", str(out), "--device", "cpu",
               "--method", f"segan@one={run}", "--method", f"segan_ensemble@two={run}+{run}",
               "--quiet"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert _segan_scores(results, "segan@one") == _segan_scores(results, "segan_ensemble@two")
    assert len(results["methods"]["segan_ensemble@two"]["checkpoint"]["members"]) == 2


def test_segan_ensemble_method_bad_members_fail_clearly(compact_tiny_run, tiny_data, tmp_path,
                                                        capsys):
    base = ["evaluate", "--checkpoint", str(compact_tiny_run), "--data", str(tiny_data),
            "--out", str(tmp_path / "ev"), "--device", "cpu", "--quiet"]
    assert main([*base, "--method", f"segan_ensemble@e={compact_tiny_run}"]) == 2
    assert "two or more SeGAN checkpoints joined by '+'" in capsys.readouterr().err
    assert main([*base, "--method",
                 f"segan_ensemble@e={compact_tiny_run}+{tmp_path / 'nope'}"]) == 2
    assert "ensemble member" in capsys.readouterr().err
