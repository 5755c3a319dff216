"""FID and LPIPS (segan.eval.perceptual, segan.eval.painting_metrics.frechet_distance): known
answers of the Fréchet distance, LPIPS's invariants and its formula against a direct
transcription of the lpips package's structure, the networks run end to end from randomly
initialised weight files in the real files' formats (tests/perceptual_weights.py), and the
errors for missing or wrong files.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from perceptual_weights import (
    alexnet_state_dict,
    lpips_lin_state_dict,
    write_inception_file,
    write_lpips_files,
)
from segan.eval.fid_inception import _tf_avg_pool
from segan.eval.metric_weights import WeightsError
from segan.eval.painting_metrics import fid_from_features, frechet_distance
from segan.eval.perceptual import (
    FID_COUNT_KEY,
    FID_KEY,
    LPIPS_KEY,
    InceptionPool3,
    PerceptualNetworks,
    load_fid_inception,
    load_lpips,
    load_perceptual,
)

# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_of_diagonal_gaussians():
    # |mu1 - mu2|^2 = 1 + 4 = 5; Tr(s1 + s2) = (1 + 4) + (4 + 9) = 18;
    # (s1 s2)^(1/2) = diag(sqrt(4), sqrt(36)) = diag(2, 6), trace 8 -> 5 + 18 - 16 = 7
    d = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]),
                         np.diag([4.0, 9.0]))
    assert d == pytest.approx(7.0, abs=1e-9)
    # equal covariances: only the means count
    s = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(np.ones(2), s, np.array([4.0, 5.0]), s) == pytest.approx(25.0)


def test_frechet_distance_singular_covariance_and_shape_errors():
    # rank-deficient covariances (sqrtm of a singular product): still the known answer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy: "Matrix is singular"
        d = frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2),
                             np.diag([4.0, 0.0]))
    assert d == pytest.approx(1.0, abs=1e-6)  # (1 - 2)^2
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(3))


def test_fid_from_features_routes_agree_and_self_is_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 16))
    b = 2.0 * rng.normal(size=(13, 16)) + 0.5
    # fewer samples than dimensions: the singular-value route vs scipy's sqrtm on the covariances
    reference = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0),
                                 np.cov(b, rowvar=False))
    assert fid_from_features(a, b) == pytest.approx(reference, rel=1e-6)
    assert fid_from_features(b, a) == pytest.approx(reference, rel=1e-6)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9)
    # at least D samples: sqrtm itself
    big_a, big_b = rng.normal(size=(40, 16)), rng.normal(size=(50, 16)) + 1.0
    reference = frechet_distance(big_a.mean(0), np.cov(big_a, rowvar=False), big_b.mean(0),
                                 np.cov(big_b, rowvar=False))
    assert fid_from_features(big_a, big_b) == pytest.approx(reference)
    assert fid_from_features(big_a, big_a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(a[:1], b)


# ----------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def lpips_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lpips_weights")
    write_lpips_files(folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def lpips_net(lpips_dir):
    net, identity = load_lpips(lpips_dir)
    assert sorted(f["kind"] for f in identity["files"]) == ["alexnet", "lpips-linear"]
    assert all(len(f["sha256"]) == 64 for f in identity["files"])
    return net


def _images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 3, size, size), generator=g)


def test_lpips_identical_is_zero_and_symmetric(lpips_net):
    x, y = _images(3, seed=0), _images(3, seed=1)
    d = lpips_net(x, y)
    assert d.shape == (3,) and torch.isfinite(d).all() and (d > 0).all()
    torch.testing.assert_close(lpips_net(y, x), d)
    assert torch.equal(lpips_net(x, x), torch.zeros(3))
    # a small change is nearer than an unrelated image
    assert (lpips_net(x, (x + 0.02).clamp(0, 1)) < d).all()


def test_lpips_matches_the_package_structure(lpips_dir, lpips_net):
    """A direct transcription of lpips.LPIPS(net="alex", version="0.1") forward: torchvision's
    AlexNet cut into slices [0:2], [2:5], [5:8], [8:10], [10:12] (relu1..relu5), ScalingLayer,
    normalize_tensor, 1x1 conv by lin_l, spatial mean, sum."""
    alex = torchvision.models.alexnet(weights=None)
    alex.load_state_dict(alexnet_state_dict(0))
    lins = lpips_lin_state_dict(1)
    shift = torch.tensor([-.030, -.088, -.188])[None, :, None, None]
    scale = torch.tensor([.458, .448, .450])[None, :, None, None]
    slices = [alex.features[a:b] for a, b in ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))]

    def feats(x):
        h, out = (x - shift) / scale, []
        for s in slices:
            h = s(h)
            out.append(h.clone())
        return out

    x, y = _images(2, seed=3), _images(2, seed=4)
    with torch.no_grad():
        f0, f1 = feats(2 * x - 1), feats(2 * y - 1)
        want = sum(
            F.conv2d((a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                      - b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)) ** 2,
                     lins[f"lin{k}.model.1.weight"]).mean((2, 3))
            for k, (a, b) in enumerate(zip(f0, f1, strict=True)))[:, 0]
        torch.testing.assert_close(lpips_net(x, y), want, rtol=1e-5, atol=1e-6)


def test_lpips_loads_files_folders_and_a_whole_lpips_state_dict(lpips_dir, lpips_net, tmp_path):
    x, y = _images(2, seed=5), _images(2, seed=6)
    want = lpips_net(x, y)
    alex, lin = lpips_dir / "alexnet-owt-7be5be79.pth", lpips_dir / "alex.pth"
    net, _ = load_lpips([lin, alex])
    torch.testing.assert_close(net(x, y), want)
    # lpips.LPIPS(net="alex").state_dict(): net.slice{k}.{i}.* beside lin{k}.model.1.weight
    ends = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    whole = {"scaling_layer.shift": torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1),
             "scaling_layer.scale": torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)}
    whole.update({f"net.slice{ends[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v
                  for k, v in alexnet_state_dict(0).items() if k.startswith("features.")})
    whole.update(lpips_lin_state_dict(1))
    torch.save(whole, tmp_path / "lpips_alex_full.pth")
    net, identity = load_lpips(tmp_path / "lpips_alex_full.pth")
    assert identity["files"][0]["kind"] == "alexnet+lpips-linear"
    torch.testing.assert_close(net(x, y), want)


def test_lpips_small_crops_are_resized_up(lpips_net):
    x, y = _images(2, size=16, seed=7), _images(2, size=16, seed=8)
    d = lpips_net(x, y)
    assert torch.isfinite(d).all() and (d > 0).all()


def test_lpips_weight_errors_name_the_file(lpips_dir, tmp_path):
    alex, lin = lpips_dir / "alexnet-owt-7be5be79.pth", lpips_dir / "alex.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_lpips(tmp_path / "nowhere.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no weights file"):
        load_lpips(tmp_path / "empty")
    with pytest.raises(WeightsError, match=r"no the LPIPS linear layers \(alex.pth"):
        load_lpips(alex)
    with pytest.raises(WeightsError, match="given twice"):
        load_lpips([alex, lin, alex])
    bad_lin = lpips_lin_state_dict(1)
    bad_lin["lin2.model.1.weight"] = torch.zeros(1, 100, 1, 1)
    torch.save(bad_lin, tmp_path / "bad_lin.pth")
    with pytest.raises(WeightsError, match=r"bad_lin.pth is not the LPIPS v0.1 AlexNet linear "
                       r"layers.*lin2.model.1.weight: \(1, 100, 1, 1\) instead of "
                       r"\(1, 384, 1, 1\)"):
        load_lpips([alex, tmp_path / "bad_lin.pth"])
    bad_alex = alexnet_state_dict(0)
    del bad_alex["features.3.weight"]
    torch.save(bad_alex, tmp_path / "bad_alex.pth")
    with pytest.raises(WeightsError, match="bad_alex.pth is not torchvision's AlexNet.*1 missing "
                       "keys \\(features.3.weight\\)"):
        load_lpips([tmp_path / "bad_alex.pth", lin])
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="other.pth is neither"):
        load_lpips([alex, lin, tmp_path / "other.pth"])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: cannot be read"):
        load_lpips([tmp_path / "junk.pth"])


# ----------------------------------------------------------------------------- FID network


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory):
    return write_inception_file(tmp_path_factory.mktemp("fid") / "pt_inception.pth",
                                "pytorch-fid", num_batches_tracked=False)


def test_fid_inception_runs_from_either_file_format(fid_file, tmp_path):
    net, identity = load_fid_inception(fid_file)
    assert identity["variant"] == "pytorch-fid" and "pytorch-fid" in identity["label"]
    x = _images(3, size=48, seed=9)  # any size: resized to 299
    with torch.no_grad():
        f = net(x)
    assert f.shape == (3, 2048) and torch.isfinite(f).all() and (f >= 0).all()
    assert f.std() > 0

    tv_file = write_inception_file(tmp_path / "inception_v3_google.pth", "torchvision", seed=2)
    tv_net, tv_identity = load_fid_inception(tv_file)
    assert tv_identity["variant"] == "torchvision"
    assert tv_identity["label"] == ("FID (torchvision Inception; not comparable with published "
                                    "FIDs)")
    # the same convolutions (seed 2 in both files): the TF FID blocks' pooling differs
    with torch.no_grad():
        g = tv_net(x)
    assert g.shape == (3, 2048) and not torch.allclose(f, g, rtol=1e-3, atol=1e-4)


def test_tf_average_pool_leaves_padding_out():
    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(_tf_avg_pool(x), x)  # torchvision's default would give 4/9 at corners
    assert F.avg_pool2d(x, 3, 1, 1)[0, 0, 0, 0] == pytest.approx(4 / 9)


def test_fid_weight_errors_name_the_file(fid_file, lpips_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        load_fid_inception(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth is not an Inception-v3 "
                       "state dict for FID: expected pytorch-fid's pt_inception"):
        load_fid_inception(lpips_dir / "alexnet-owt-7be5be79.pth")
    sd = torch.load(fid_file, weights_only=True)
    del sd["Mixed_7c.branch_pool.conv.weight"]
    sd["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match=r"broken.pth is not pytorch-fid's TF FID Inception "
                       r".*1 missing keys \(Mixed_7c.branch_pool.conv.weight\).*wrong shapes "
                       r"\(Mixed_5b.branch1x1.conv.weight: \(3, 3, 1, 1\) instead of "
                       r"\(64, 192, 1, 1\)\)"):
        load_fid_inception(tmp_path / "broken.pth")


# ----------------------------------------------------------------------------- the meter


def test_meter_composites_on_black_and_batches(fid_file, lpips_net):
    fid_net, fid_identity = load_fid_inception(fid_file)
    g = torch.Generator().manual_seed(10)
    painted = torch.rand((4, 3, 64, 64), generator=g)
    alpha = torch.zeros(4, 1, 64, 64)
    alpha[:, :, 16:48, 8:56] = 1.0
    target = painted * alpha  # premultiplied, as the dataset's appearance target
    noisy = painted.clone()
    noisy[:, :, :16] = torch.rand((4, 3, 16, 64), generator=g)  # outside S_F: must not count

    results = {}
    for batch in (2, 64):
        nets = PerceptualNetworks(lpips=lpips_net, fid=fid_net, fid_identity=fid_identity,
                                  batch_size=batch)
        meter = nets.meter()
        meter.add(noisy[:3], target[:3], alpha[:3])
        meter.add(noisy[3:], target[3:], alpha[3:])
        results[batch] = meter.compute()
    r = results[64]
    assert r[LPIPS_KEY] == pytest.approx(0.0, abs=1e-6)
    assert r[FID_KEY] == pytest.approx(0.0, abs=1e-4) and r[FID_COUNT_KEY] == 4
    # a different painting scores worse; batching changes nothing
    nets = PerceptualNetworks(lpips=lpips_net, fid=fid_net, fid_identity=fid_identity)
    meter = nets.meter()
    meter.add(painted.flip(-1), target, alpha)  # mirrored paintings
    other = meter.compute()
    assert other[LPIPS_KEY] > 0.01 and other[FID_KEY] > 1e-3
    for k in r:
        assert results[2][k] == pytest.approx(r[k], abs=1e-4)


def test_without_weights_nothing_is_computed():
    nets = load_perceptual(None, None)
    assert not nets.any
    assert nets.describe()["note"] == ("not computed: needs weights (--fid-weights / "
                                       "--lpips-weights)")
    meter = nets.meter()
    meter.add(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8))
    assert meter.compute() == {}


def test_fid_of_one_object_is_nan(fid_file):
    nets = load_perceptual(fid_weights=fid_file)
    assert nets.describe()["note"] == "not computed: needs weights (--lpips-weights)"
    meter = nets.meter()
    meter.add(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32))
    r = meter.compute()
    assert math.isnan(r[FID_KEY]) and r[FID_COUNT_KEY] == 1 and LPIPS_KEY not in r


def test_inception_variant_is_checked():
    with pytest.raises(ValueError, match="variant must be"):
        InceptionPool3("tf")
