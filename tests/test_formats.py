"""Readers of the standard amodal formats (segan.data.formats) on small fixtures written in each
format by `amodal_fixtures`: conversion to segan-coco keeps the exact masks, ids and occlusion
pairs the fixture encoded; broken variants (missing field, wrong mask size, an id pointing
nowhere, a truncated file or image) fail with errors naming file, record and field; the
`segan convert` command; segan-coco round trips unchanged."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amodal_fixtures import (
    KINS_IDS,
    NAMES,
    H,
    W,
    rle,
    scenes,
    write_coco_amodal,
    write_cocoa,
    write_dyce,
    write_kins,
)
from segan.cli import main
from segan.data.coco import MIN_VISIBLE_PIXELS, DatasetFormatError, load_annotations
from segan.data.formats import (
    FORMAT_NAMES,
    canonical,
    convert,
    describe,
    detect_format,
    resolve_dataset,
)
from segan.data.formats.base import guess_split_name
from segan.data.formats.cocoa import parse_pairs


def kept(sc) -> list[int]:
    """Objects the converter keeps: at least 10 visible pixels (FORMAT.md)."""
    return [k for k in range(sc.n) if sc.visible[k].sum() >= MIN_VISIBLE_PIXELS]


def load(out: Path, split: str):
    return load_annotations(out / "annotations" / f"{split}.json", check=True)


def assert_masks(ds, iid: int, sc, objects: list[int]) -> None:
    full, vis, inv = ds.image_masks(iid)
    assert len(full) == len(objects)
    for j, k in enumerate(objects):
        assert np.array_equal(full[j], sc.full[k]), (iid, k)
        assert np.array_equal(vis[j], sc.visible[k]), (iid, k)
        assert np.array_equal(inv[j], sc.full[k] & ~sc.visible[k]), (iid, k)


def cut(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("variant", ["cocoa-cls", "d2sa", "uoais"])
def test_coco_style_amodal_round_trip(tmp_path, variant):
    data = scenes({"train": 2, "val": 1})
    index = write_coco_amodal(tmp_path / "src", data, variant)
    assert detect_format(tmp_path / "src") == "coco-amodal"
    summary = convert(tmp_path / "src", tmp_path / "out", progress=False)
    assert summary["source_format"] == "coco-amodal"
    assert any("no appearance" in line for line in summary["lost"])
    for split, images in index.items():
        ds = load(tmp_path / "out", split)
        assert sorted(ds.images) == sorted(images)  # image ids kept
        for iid, (sc, ids) in images.items():
            objects = kept(sc)
            assert [a["id"] for a in ds.annotations[iid]] == [ids[k] for k in objects]
            assert [a["category_id"] for a in ds.annotations[iid]] == [
                1 + sc.categories[k] for k in objects]
            assert_masks(ds, iid, sc, objects)
            assert all(a.get("appearance_file") is None for a in ds.annotations[iid])
            assert "occlusion" not in ds.images[iid]  # the format has none
            src_name = ds.images[iid]["file_name"]
            assert src_name.startswith(f"{split}/") and (tmp_path / "out/images" / src_name
                                                          ).is_file()
        st = summary["splits"][split]
        assert st["images"] == len(images)
        assert st["objects"] == sum(len(kept(sc)) for sc, _ in images.values())
        assert st["full_grown_objects"] == 0 and st["invisible_differs"] == 0
    assert {c["name"] for c in ds.categories.values()} == set(NAMES)


def test_cocoa_round_trip_carries_depth_constraints(tmp_path):
    data = scenes({"train": 2, "val": 2}, hidden_in_first=True)
    index = write_cocoa(tmp_path / "src", data)
    assert detect_format(tmp_path / "src") == "cocoa"
    summary = convert(tmp_path / "src", tmp_path / "out", progress=False)
    name_ids = {n: i + 1 for i, n in enumerate(sorted(set(NAMES) & {
        NAMES[c] for split in data.values() for sc in split for c in sc.categories}))}
    total_pairs = 0
    for split, images in index.items():
        ds = load(tmp_path / "out", split)
        assert {c["id"]: c["name"] for c in ds.categories.values()} == {
            i: n for n, i in name_ids.items()}  # one table for every split
        for iid, sc in images.items():
            anns = ds.annotations[iid]
            # regions are front to back: region r is object n - 1 - r
            objects = [sc.n - a["region_index"] for a in anns]
            assert objects == [k for k in range(sc.n)[::-1] if k in kept(sc)]
            assert_masks(ds, iid, sc, objects)
            assert [a["category_id"] for a in anns] == [
                name_ids[NAMES[sc.categories[k]]] for k in objects]
            ann_of = {k: a["id"] for k, a in zip(objects, anns, strict=True)}
            expected = {(ann_of[q], ann_of[p]) for q, p in sc.pairs
                        if q in ann_of and p in ann_of}
            assert set(ds.occlusion_pairs(iid)) == expected
            total_pairs += len(expected)
    st = summary["splits"]
    assert sum(s["pairs"] for s in st.values()) == total_pairs > 0
    # the fully hidden object of the first scene is dropped, with the pair that names it
    assert st["train"]["dropped_few_visible"] >= 1
    assert st["train"]["pairs_dropped_object_dropped"] >= 1
    assert st["train"]["annotator_records_skipped"] == 1


@pytest.mark.parametrize("v2020", [False, True])
def test_kins_round_trip(tmp_path, v2020):
    data = scenes({"train": 2, "val": 1})
    index = write_kins(tmp_path / "src", data, v2020=v2020)
    assert detect_format(tmp_path / "src") == "kins"
    summary = convert(tmp_path / "src", tmp_path / "out", progress=False)
    splits = {"train": "train", "val": "test" if v2020 else "val"}
    for split, images in index.items():
        ds = load(tmp_path / "out", splits[split])
        for iid, (sc, ids) in images.items():
            objects = kept(sc)
            anns = ds.annotations[iid]
            assert [a["id"] for a in anns] == [ids[k] for k in objects]
            assert [a["category_id"] for a in anns] == [KINS_IDS[sc.categories[k]]
                                                        for k in objects]
            assert [a["ico_id"] for a in anns] == [sc.n - k for k in objects]  # carried
            assert_masks(ds, iid, sc, objects)
            # train and test images share file names in KINS: each split has its own folder
            image = ds.root / "images" / ds.images[iid]["file_name"]
            assert ds.images[iid]["file_name"] == f"{splits[split]}/{iid:06d}.png"
            with Image.open(image) as im:
                assert np.array_equal(np.asarray(im), sc.image)
    assert set(summary["splits"]) == set(splits.values())


def test_dyce_release_round_trip_with_appearance(tmp_path):
    data = scenes({"train": 2, "test": 1})
    index = write_dyce(tmp_path / "src", data)
    assert detect_format(tmp_path / "src") == "dyce"
    summary = convert(tmp_path / "src", tmp_path / "out", progress=False)
    tags = sorted({NAMES[c] for split in data.values() for sc in split for c in sc.categories})
    for split, images in index.items():
        ds = load(tmp_path / "out", split)
        assert [c["name"] for c in ds.categories.values()] == tags  # tags with spaces intact
        assert [img["file_name"] for img in ds.images.values()] == [
            f"{split}/{imid}" for imid, _ in images]
        for iid, (_, sc) in zip(ds.images, images, strict=True):
            objects = kept(sc)
            anns = ds.annotations[iid]
            assert_masks(ds, iid, sc, objects)
            assert [ds.category_name(a["category_id"]) for a in anns] == [
                NAMES[sc.categories[k]] for k in objects]
            for a, k in zip(anns, objects, strict=True):
                app = ds.load_appearance(a)
                assert app.shape == (H, W, 4)
                assert np.array_equal(app[..., 3] > 0, sc.full[k])  # alpha = S_F
                assert np.array_equal(app[..., :3][sc.full[k]], sc.appearance[k][sc.full[k]])
                x, y, w, h = a["bbox"]
                assert a["dyce_box_1000"] == pytest.approx(
                    [x * 1000 / W, y * 1000 / H, (x + w) * 1000 / W, (y + h) * 1000 / H],
                    abs=0.06)
            with Image.open(ds.image_path(iid)) as im:
                assert np.array_equal(np.asarray(im), sc.image)
    assert summary["splits"]["train"]["with_appearance"] == summary["splits"]["train"]["objects"]


def test_segan_coco_round_trip_is_unchanged(tmp_path):
    write_cocoa(tmp_path / "src", scenes({"train": 2}))
    convert(tmp_path / "src", tmp_path / "ours", progress=False)
    assert detect_format(tmp_path / "ours") == "segan-coco"
    assert resolve_dataset(tmp_path / "ours") == tmp_path / "ours"  # read as it is
    convert(tmp_path / "ours", tmp_path / "again", progress=False)
    a = json.loads((tmp_path / "ours/annotations/train.json").read_text())
    b = json.loads((tmp_path / "again/annotations/train.json").read_text())
    for key in ("images", "annotations", "categories"):
        assert a[key] == b[key], key


def test_resolve_converts_once_keyed_by_content(tmp_path):
    write_kins(tmp_path / "src", scenes({"train": 1, "val": 1}))
    first = resolve_dataset(tmp_path / "src", cache_dir=tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith("converted-kins-")
    assert (first / "images/train/000000.png").is_symlink()
    stamp = (first / "conversion.json").stat().st_mtime_ns
    assert resolve_dataset(tmp_path / "src", "kins", tmp_path / "cache") == first
    assert (first / "conversion.json").stat().st_mtime_ns == stamp  # reused, not redone
    ann = json.loads((tmp_path / "src/instances_val.json").read_text())
    ann["annotations"] = ann["annotations"][1:]
    (tmp_path / "src/instances_val.json").write_text(json.dumps(ann))
    second = resolve_dataset(tmp_path / "src", cache_dir=tmp_path / "cache")
    assert second != first  # the source changed: a new key
    with pytest.raises(FileNotFoundError, match="no converted copy"):
        resolve_dataset(tmp_path / "src", cache_dir=tmp_path / "elsewhere", build=False)


def test_registry_names_and_helpers():
    assert set(FORMAT_NAMES) == {"segan-coco", "coco-amodal", "cocoa", "kins", "dyce"}
    assert canonical("D2SA") == "coco-amodal" and canonical("KINS2020") == "kins"
    with pytest.raises(ValueError, match="unknown data format"):
        canonical("pascal")
    assert describe("kins")["has_appearance"] is False and describe("dyce")["has_appearance"]
    assert [guess_split_name(s) for s in ("COCO_amodal_train2014", "D2S_amodal_validation",
                                          "update_test_2020", "instances_val", "augmented")] \
        == ["train", "val", "test", "val", "augmented"]
    assert parse_pairs("1-2, 3-1", 3) == ([(0, 1), (2, 0)], None)
    assert parse_pairs("", 0) == ([], None)
    assert "does not exist" in parse_pairs("1-4", 3)[1]
    assert "not a pair" in parse_pairs("1_2", 3)[1]
    assert "itself" in parse_pairs("2-2", 3)[1]


# ------------------------------------------------------------------------- broken variants


def _coco(tmp_path, variant="cocoa-cls"):
    src = tmp_path / "src"
    write_coco_amodal(src, scenes({"train": 2}), variant)
    return src, next((src / "annotations").glob("*.json"))


def _edit(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def _expect(src: Path, *parts: str, fmt: str = "auto") -> None:
    with pytest.raises(DatasetFormatError) as e:
        convert(src, src.parent / "out", fmt=fmt, progress=False)
    msg = str(e.value)
    for p in parts:
        assert p in msg, (p, msg)
    assert not (src.parent / "out").exists()  # nothing half-written


def test_coco_style_missing_field(tmp_path):
    src, f = _coco(tmp_path)
    _edit(f, lambda o: o["annotations"][2].pop("visible_mask"))
    _expect(src, f.name, "annotation 9 (image 100)", "field 'visible_mask'", "missing")


def test_coco_style_wrong_mask_size(tmp_path):
    src, f = _coco(tmp_path, "uoais")
    _edit(f, lambda o: o["annotations"][0].update(
        occluded_mask={"size": [H + 1, W], "counts": rle(np.zeros((H, W), bool))["counts"]}))
    _expect(src, f.name, "annotation 7 (image 100)", "field 'occluded_mask'",
            f"mask size {H + 1}x{W}")


@pytest.mark.parametrize("fld, value, problem", [
    ("image_id", 999, "no image has id 999"),
    ("category_id", 77, "no category has id 77"),
])
def test_coco_style_id_pointing_nowhere(tmp_path, fld, value, problem):
    src, f = _coco(tmp_path, "d2sa")
    _edit(f, lambda o: o["annotations"][1].update({fld: value}))
    _expect(src, f.name, "annotation 8", f"field '{fld}'", problem)


def test_coco_style_truncated_json_and_image(tmp_path):
    src, f = _coco(tmp_path)
    data = f.read_bytes()
    cut(f)
    _expect(src, f.name, "truncated", fmt="coco-amodal")
    f.write_bytes(data)
    cut(src / "train2014" / "COCO_train2014_000000000101.jpg", 0.5)
    _expect(src, f.name, "image 101", "field 'file_name'", "cannot read image")


def test_coco_style_images_not_found_says_where_it_looked(tmp_path):
    src, f = _coco(tmp_path)
    shutil.rmtree(src / "train2014")
    _expect(src, f.name, "image 100", "field 'file_name'", "--images train=DIR")


def test_cocoa_broken_variants(tmp_path):
    src = tmp_path / "src"
    write_cocoa(src, scenes({"train": 2}), extra_annotator=False)
    f = src / "annotations" / "COCO_amodal_train2014.json"
    good = f.read_text()
    _edit(f, lambda o: o["annotations"][1]["regions"][2].pop("name"))
    _expect(src, f.name, "annotation 501 (image 37): regions[2]", "field 'name'", "missing")
    f.write_text(good)
    _edit(f, lambda o: o["annotations"][0].update(depth_constraint="1-2,1-9"))
    _expect(src, "annotation 500 (image 36)", "field 'depth_constraint'",
            "region 9 does not exist")
    f.write_text(good)

    def small_mask(o):
        reg = next(r for r in o["annotations"][0]["regions"] if "visible_mask" in r)
        reg["visible_mask"] = {"size": [10, 10], "counts": "0"}
    _edit(f, small_mask)
    _expect(src, "annotation 500 (image 36): regions[", "field 'visible_mask'",
            "differs from the image size")
    f.write_text(good)
    _edit(f, lambda o: o["annotations"][1].update(image_id=4242))
    _expect(src, "annotation 501", "field 'image_id'", "no image has id 4242")
    f.write_text(good)
    cut(f)
    _expect(src, f.name, "truncated", fmt="cocoa")
    f.write_text(good)
    cut(src / "train2014" / "COCO_train2014_000000000037.jpg", 0.4)
    _expect(src, "image 37", "field 'file_name'", "cannot read image")


def test_kins_broken_variants(tmp_path):
    src = tmp_path / "src"
    write_kins(src, scenes({"train": 2}))
    f = src / "instances_train.json"
    good = f.read_text()
    _edit(f, lambda o: o["annotations"][3].pop("inmodal_seg"))
    _expect(src, f.name, "annotation 4 (image 0)", "field 'inmodal_seg'", "missing")
    f.write_text(good)
    _edit(f, lambda o: o["images"][1].update(width=W + 5))  # record and file disagree
    _expect(src, f.name, "image 1", "field 'file_name'", f"but the record says {W + 5}x{H}")
    f.write_text(good)
    _edit(f, lambda o: o["annotations"][0].update(image_id=12))
    _expect(src, f.name, "annotation 1", "field 'image_id'", "no image has id 12")
    f.write_text(good)
    cut(f)
    _expect(src, f.name, "truncated", fmt="kins")
    f.write_text(good)
    cut(src / "training" / "image_2" / "000001.png", 0.5)
    _expect(src, "image 1", "field 'file_name'", "cannot read image")


def test_kins2020_missing_field_uses_its_own_name(tmp_path):
    src = tmp_path / "src"
    write_kins(src, scenes({"train": 1}), v2020=True)
    f = src / "update_train_2020.json"
    _edit(f, lambda o: o["annotations"][0].pop("a_segm"))
    _expect(src, "annotation 1 (image 0)", "field 'a_segm'", "missing", fmt="kins")


def test_dyce_broken_variants(tmp_path):
    src = tmp_path / "src"
    index = write_dyce(src, scenes({"train": 2}))
    lst = src / "annotations" / "train.txt"
    good = lst.read_text()
    lines = good.splitlines()
    # a line without its tag and appearance file
    lst.write_text("\n".join(lines[:2] + [" ".join(lines[2].split()[:7])] + lines[3:]) + "\n")
    _expect(src, f"{lst}: line 3", "has 7 fields, expected 9: imid modal_png", fmt="dyce")
    lst.write_text(good)
    amodal = src / "amodal" / lines[1].split()[2]
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(amodal)
    _expect(src, f"{lst}: line 2", "field 'amodal_png'", "is 20x20 (WxH) but the image")
    imid, sc = index["train"][0]
    Image.fromarray(sc.full[1].astype(np.uint8) * 255).save(amodal)
    lst.write_text(good.replace(lines[3].split()[1], "nowhere.png"))
    _expect(src, f"{lst}: line 4", "field 'modal_png'", "file not found")
    lst.write_text("\n".join(lines[:-1] + [" ".join(lines[-1].split()[:5])]))  # cut short
    _expect(src, f"{lst}: line {len(lines)}", "(truncated?)")
    lst.write_text(good)
    full_obj = src / "FullObj" / lines[2].split()[-1]
    appearance = full_obj.read_bytes()
    cut(full_obj, 0.5)
    _expect(src, f"{lst}: line 3", "field 'fullobj_png'", "cannot read appearance")
    full_obj.write_bytes(appearance)
    cut(src / "Images" / imid, 0.5)
    _expect(src, f"{lst}: line 1", "field 'imid'", "cannot read image")


def test_dyce_box_checks(tmp_path):
    src = tmp_path / "src"
    write_dyce(src, scenes({"train": 1}))
    lst = src / "annotations" / "train.txt"
    tok = lst.read_text().splitlines()[0].split()
    tok[5] = "1200"
    lst.write_text(" ".join(tok) + "\n")
    _expect(src, f"{lst}: line 1", "field 'x2'", "[0, 1000]")


# ------------------------------------------------------------------------- the command


def test_convert_command(tmp_path, capsys):
    write_kins(tmp_path / "src", scenes({"train": 2, "val": 1}))
    rc = main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--from", "kins",
               "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "train: 2 images" in out and "lost: no appearance images" in out
    assert load(tmp_path / "out", "val").num_annotations > 0
    # explicit split files and image folders
    rc = main(["convert", str(tmp_path / "src"), str(tmp_path / "out2"), "--quiet",
               "--split", f"mine={tmp_path / 'src/instances_val.json'}",
               "--images", f"mine={tmp_path / 'src/testing/image_2'}", "--link"])
    assert rc == 0 and (tmp_path / "out2/images/mine/000000.png").is_symlink()
    assert sorted(p.name for p in (tmp_path / "out2/annotations").iterdir()) == ["mine.json"]
    # refusals: output exists, broken source (exit code 2, message on stderr)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--quiet"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    cut(tmp_path / "src" / "instances_train.json")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out3"), "--from", "kins",
                 "--quiet"]) == 2
    assert "instances_train.json: not valid JSON (truncated?)" in capsys.readouterr().err


# ------------------------------------------------- training and evaluation on foreign formats

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
SHORT = ["schedule.stage1_steps=3", "schedule.stage2_steps=3", "run.checkpoint_every=6",
         "run.log_every=3", "run.grid_every=0", "run.tensorboard=false"]


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> Iterator[Path]:
    """A KINS dataset (no appearance, no occlusion pairs) and a DYCE release (appearance)."""
    root = tmp_path_factory.mktemp("foreign")
    write_kins(root / "kins", scenes({"train": 3, "val": 2}, hidden_in_first=True))
    write_dyce(root / "dyce", scenes({"train": 3, "test": 2}))
    yield root
    shutil.rmtree(root, ignore_errors=True)  # with its converted copies: not kept to the run's end


def _train(data: Path, run: Path, *extra: str) -> int:
    return main(["train", "--config", str(TINY), "--data", str(data), "--out", str(run),
                 "--quiet", *extra, *SHORT])


def _evaluate(run: Path, data: Path, split: str, out: Path, *extra: str) -> dict:
    rc = main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--split", split,
               "--out", str(out), "--method", "segan", "--method", "visible_as_full",
               "--device", "cpu", "--quiet", *extra])
    assert rc == 0
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def kins_run(foreign) -> Path:
    run = foreign / "run_kins"
    with pytest.warns(UserWarning, match="no appearance images: training the segmentor only"):
        assert _train(foreign / "kins", run) == 0
    return run


def test_train_on_kins_trains_the_segmentor_alone(foreign, kins_run):
    import torch

    from segan.checkpoint import load_checkpoint
    from segan.data.atomic import default_cache_dir
    from segan.train import build_segan, load_config
    from segan.train.checkpoint import latest_checkpoint

    converted = list(default_cache_dir(foreign / "kins").glob("converted-kins-*"))
    assert not (foreign / "kins" / "cache").exists()  # never inside the user's dataset
    assert len(converted) == 1 and (converted[0] / "annotations" / "train.json").is_file()
    ckpt = load_checkpoint(latest_checkpoint(kins_run))
    assert ckpt["step"] == 6 and ckpt["painter_trained"] is False
    cfg = load_config(kins_run / "config.yaml")
    torch.manual_seed(cfg.run.seed)  # the loop's init: the same seed, then SeGAN(...)
    init = build_segan(cfg, "none").state_dict()
    for k, v in ckpt["model"].items():
        if k.startswith(("generator.", "discriminator.")):
            assert torch.equal(v, init[k]), k  # neither stepped
    assert not torch.equal(ckpt["model"]["segmentor.mask_head.weight"],
                           init["segmentor.mask_head.weight"])
    stats = [json.loads(line) for line in (kins_run / "stats.jsonl").read_text().splitlines()]
    assert stats and all(set(k for k in s if k.startswith("loss/")) == {"loss/segm", "loss/total"}
                         for s in stats)
    assert all(np.isfinite(s["loss/segm"]) for s in stats)


def test_evaluate_on_kins_says_painting_and_layering_are_not_applicable(foreign, kins_run):
    res = _evaluate(kins_run, foreign / "kins", "val", foreign / "eval_kins")
    assert res["data"]["source"] == str(foreign / "kins")
    assert "converted-kins-" in res["data"]["path"]
    assert res["num_objects"] == sum(len(kept(sc)) for sc in scenes({"train": 3, "val": 2},
                                                                      hidden_in_first=True)["val"])
    seg = res["methods"]["segan"]
    assert seg["painting"] is None and "no object of the split has an appearance image" in \
        seg["painting_note"]
    assert seg["layering"] is None and "no occlusion pairs" in seg["layering_note"]
    for v in (seg["segmentation"]["full_iou/standard/mean_all"],
              res["methods"]["visible_as_full"]["segmentation"]["full_iou/standard/mean_all"]):
        assert v is not None and 0 < v <= 1
    md = (foreign / "eval_kins" / "results.md").read_text()
    assert "converted from" in md and "not applicable: no object of the split" in md
    assert "| layering accuracy (GT: any overlap) | n/a | n/a |" in md
    # the 5%-rule ground truth needs only the masks: it applies without the dataset's pairs
    lay5 = seg["layering_gt_5pct"]
    assert lay5["count/images"] + lay5["count/skipped_images"] == res["num_images"]


def test_train_and_evaluate_on_the_dyce_release(foreign):
    from segan.checkpoint import load_checkpoint
    from segan.train.checkpoint import latest_checkpoint

    run = foreign / "run_dyce"
    assert _train(foreign / "dyce", run, "--data-format", "dyce") == 0
    assert load_checkpoint(latest_checkpoint(run))["painter_trained"] is True
    res = _evaluate(run, foreign / "dyce", "test", foreign / "eval_dyce")
    paint = res["methods"]["segan"]["painting"]
    assert paint["count"] == res["num_objects"] > 0 and paint["count/skipped"] == 0
    assert 0 <= paint["l1/masked_mean"] <= 1 and np.isfinite(paint["psnr/masked_db"])


def test_wrong_data_format_is_a_clear_error(foreign, kins_run, capsys):
    assert main(["evaluate", "--checkpoint", str(kins_run), "--data", str(foreign / "kins"),
                 "--split", "val", "--out", str(foreign / "eval_x"), "--device", "cpu",
                 "--quiet", "--data-format", "cocoa"]) == 2
    err = capsys.readouterr().err
    assert "instances_train.json: annotation 1 (image 0): field 'regions': missing" in err


def test_segmentor_only_step_reaches_every_segmentor_parameter(foreign, kins_run):
    import copy

    import torch

    from segan.train import build_segan, load_config
    from segan.train.cache import open_cache
    from segan.train.data import ObjectBatches, ObjectBatchSampler, prepare_batch
    from segan.train.runtime import make_runtime
    from segan.train.tasks import SeGANTask, make_optimizers

    cfg = load_config(TINY)
    d = cfg.data
    data = resolve_dataset(foreign / "kins", build=False)
    cache = open_cache(data, "train", d.image_size, d.expand_max, foreign / "unit_cache")
    assert not cache.has_appearance.any()
    key = next(iter(ObjectBatchSampler(cache.obj_start, d.batch_objects, d.objects_per_image, 0)))
    batch = prepare_batch(ObjectBatches(cache, d, seed=0)[key], torch.device("cpu"), d,
                          cfg.model.mask_size, cfg.model.crop_size)
    torch.manual_seed(0)
    net = build_segan(cfg, "none")
    rt = make_runtime(cfg.run)
    opt, task = make_optimizers(net, cfg.optim), SeGANTask(cfg, paints=False)
    assert task.trained_modules(net, 2) == [net.segmentor]
    before = copy.deepcopy(net.state_dict())
    for step in (0, cfg.schedule.stage1_steps):  # stage 1 and stage 2 alike
        logs, out = task.train_step(step, net, net, batch, opt, rt, rt.grad_scaler())
        assert set(logs) == {"segm", "total"} and all(torch.isfinite(v) for v in logs.values())
        assert out["mask_logits"].shape[0] == batch.num_objects
        no_grad = [n for n, p in net.segmentor.named_parameters()
                   if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert no_grad == []
    for k, v in net.state_dict().items():
        if k.startswith(("generator.", "discriminator.")) and v.is_floating_point():
            assert torch.equal(v, before[k]), k


def test_mixed_appearance_is_refused(foreign, tmp_path):
    from segan.train import load_config, training_loop

    data = tmp_path / "dyce_ours"
    shutil.copytree(resolve_dataset(foreign / "dyce", build=False), data, symlinks=True)
    f = data / "annotations" / "train.json"
    _edit(f, lambda o: o["annotations"][0].pop("appearance_file"))
    with pytest.raises(ValueError, match=r"1 of \d+ objects of split 'train' have no "
                                         r"appearance_file"):
        training_loop(load_config(TINY, SHORT), data, tmp_path / "run", progress=False)
