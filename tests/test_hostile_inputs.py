"""Hostile and careless input (issue 14): every case goes through the CLI in-process
(`segan.cli.main`) and must end with exit code 2 and one line per problem on stderr that names
the file, record, field or option, no traceback, and nothing written outside the output
folder. Path containment is checked for the segan-coco reader, the COCO-like readers and
`segan convert` with ``..``, absolute paths and symlinks that lead out of the dataset.

Tiny hand-made files shared at module scope keep the whole suite to a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segan.cli import main
from segan.data.coco import (
    DatasetFormatError,
    load_annotations,
    make_annotation,
    make_image,
    write_annotations,
)

H = W = 16
CATS = [{"id": 1, "name": "box"}]


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_dataset(root: Path) -> Path:
    """Two images of two boxes each, with appearance and depth files: a valid segan-coco
    dataset (train and test splits)."""
    rng = np.random.default_rng(0)
    for split, iid in (("train", 1), ("test", 2)):
        name = f"{split}/{iid:05d}.png"
        _png(root / "images" / name, rng.integers(0, 255, (H, W, 3), np.uint8))
        _png(root / "depth" / name, np.full((H, W), 1500, np.uint16))
        anns = []
        for k, (full, vis) in enumerate([(_rect(0, 8, 0, 8), _rect(0, 8, 0, 4)),
                                         (_rect(0, 8, 4, 12), _rect(0, 8, 4, 12))]):
            aid = iid * 10 + k
            app = f"{split}/{aid}.png"
            rgba = np.dstack([rng.integers(0, 255, (H, W, 3), np.uint8),
                              full.astype(np.uint8) * 255])
            _png(root / "appearance" / app, rgba)
            anns.append(make_annotation(aid, iid, 1, full, vis, app))
        img = make_image(iid, name, W, H, scene_id=f"s{iid}", depth_file=name,
                         occlusion=[(iid * 10 + 1, iid * 10)])
        write_annotations(root / "annotations" / f"{split}.json", [img], anns, CATS)
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("hostile") / "clean")


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A file outside every dataset (the target of the escapes)."""
    d = tmp_path_factory.mktemp("outside")
    _png(d / "secret.png", np.full((H, W, 3), 7, np.uint8))
    return d / "secret.png"


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def run_cli(argv: list[str], capsys, code: int = 2) -> list[str]:
    """Run the CLI; assert exit code, no traceback, and error lines naming the command.
    Returns the stderr lines."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln]
    if code == 2:
        assert lines, "no message"
        for ln in lines:
            assert ln.startswith(f"segan {argv[0]}: error: "), ln
    return lines


def edit_split(root: Path, split: str, fn) -> Path:
    """Rewrite annotations/<split>.json through fn(obj) (no validation)."""
    f = root / "annotations" / f"{split}.json"
    obj = json.loads(f.read_text())
    fn(obj)
    f.write_text(json.dumps(obj))
    return f


# --------------------------------------------------------------------------------------------
# Security: paths stay inside the dataset
# --------------------------------------------------------------------------------------------

ESCAPES = ["../../outside.png", "/etc/passwd", "a/../../b.png", "C:/x.png", "..\\..\\x.png",
           "", "/"]
FIELDS = ["file_name", "depth_file", "appearance_file"]


def _set_field(obj: dict, field: str, value: str) -> None:
    if field == "appearance_file":
        obj["annotations"][0][field] = value
    else:
        obj["images"][0][field] = value


@pytest.mark.parametrize("value", ESCAPES)
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("command", ["stats", "convert"])
def test_path_escape_refused(clean, tmp_path, capsys, command, field, value):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    f = edit_split(data, "test", lambda o: _set_field(o, field, value))
    before = digest(tmp_path)
    out = tmp_path / "out"
    argv = {"stats": ["stats", data, "--sheet", out / "sheet.png"],
            "convert": ["convert", data, out, "--quiet"],
            "evaluate": ["evaluate", "--data", data, "--out", out, "--method",
                         "visible_as_full", "--device", "cpu", "--quiet",
                         "--cache-dir", out / "cache"]}[command]
    lines = run_cli(argv, capsys)
    msg = "\n".join(lines)
    assert str(f) in msg and f"field '{field}'" in msg, msg
    assert "image 2" in msg or "annotation 20" in msg, msg
    assert digest(tmp_path) == before  # nothing written, the dataset untouched
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


@pytest.mark.parametrize("field", FIELDS)
def test_path_escape_refused_by_the_reader(clean, tmp_path, field):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    edit_split(data, "test", lambda o: _set_field(o, field, "../../x.png"))
    for check in (True, False):
        with pytest.raises(DatasetFormatError, match=f"image 2.*field '{field}'|"
                           f"annotation 20.*field '{field}'"):
            load_annotations(data / "annotations" / "test.json", check=check)


SYMLINKED = {"file_name": "images/test/00002.png", "depth_file": "depth/test/00002.png",
             "appearance_file": "appearance/test/20.png"}


@pytest.mark.parametrize("command,field", [
    (c, f) for c in ("stats", "convert", "convert-link", "reader") for f in FIELDS
    if (c, f) != ("stats", "depth_file")])  # stats reads no depth
def test_symlink_out_of_the_dataset_refused(clean, outside, tmp_path, capsys, command, field):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    link = data / SYMLINKED[field]
    link.unlink()
    link.symlink_to(outside)
    out = tmp_path / "out"
    if command == "reader":
        ds = load_annotations(data / "annotations" / "test.json")
        with pytest.raises(DatasetFormatError, match=f"field '{field}'.*leads outside"):
            {"file_name": lambda: ds.load_image(2), "depth_file": lambda: ds.load_depth(2),
             "appearance_file": lambda: ds.load_appearance(20)}[field]()
        return
    argv = {"stats": ["stats", data, "--sheet", out / "sheet.png"],
            "convert": ["convert", data, out, "--quiet"],
            "convert-link": ["convert", data, out, "--quiet", "--link"]}[command]
    lines = run_cli(argv, capsys)
    msg = "\n".join(lines)
    assert f"field '{field}'" in msg and "leads outside" in msg, msg
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_symlinked_folder_of_the_owner_is_followed(clean, tmp_path, capsys):
    """A dataset whose images/ folder is a symlink (the owner's choice) is read: only a path
    that leaves the folder it names is refused."""
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    shutil.move(data / "images", tmp_path / "images_elsewhere")
    (data / "images").symlink_to(tmp_path / "images_elsewhere", target_is_directory=True)
    ds = load_annotations(data / "annotations" / "test.json")
    assert ds.load_image(2).shape == (H, W, 3)


def test_linked_conversion_reads_through_its_links(clean, tmp_path, capsys):
    """`convert --link` symlinks into the source: its conversion.json names the folders, and
    the converted copy is read (and converted again) like any dataset."""
    run_cli(["convert", clean, tmp_path / "linked", "--quiet", "--link"], capsys, code=0)
    assert (tmp_path / "linked/images/test/00002.png").is_symlink()
    ds = load_annotations(tmp_path / "linked/annotations/test.json")
    assert ds.load_image(2).shape == (H, W, 3)
    run_cli(["convert", tmp_path / "linked", tmp_path / "again", "--quiet"], capsys, code=0)


def test_absolute_appearance_does_not_overwrite_a_file(clean, outside, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    before = outside.read_bytes()
    edit_split(data, "test", lambda o: _set_field(o, "appearance_file", str(outside)))
    lines = run_cli(["convert", data, tmp_path / "out", "--quiet"], capsys)
    assert "field 'appearance_file'" in lines[0]
    assert outside.read_bytes() == before


def _coco_amodal(root: Path, file_name: str) -> Path:
    """A COCO-amodal (COCOA-cls / D2SA style) source with one image."""
    _png(root / "images" / "a.png", np.zeros((H, W, 3), np.uint8))
    from segan.data.coco import encode_mask

    full, vis = _rect(0, 8, 0, 8), _rect(0, 8, 0, 4)
    obj = {"images": [{"id": 1, "file_name": file_name, "width": W, "height": H}],
           "categories": CATS,
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                            "segmentation": encode_mask(full), "visible_mask": encode_mask(vis),
                            "occluded_rate": 0.5}]}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "train.json").write_text(json.dumps(obj))
    return root


@pytest.mark.parametrize("name", ["../a.png", "/etc/passwd", "x/../../a.png", "C:/a.png",
                                  "symlink"])
def test_coco_like_reader_stays_inside(outside, tmp_path, capsys, name):
    src = _coco_amodal(tmp_path / "src", "a.png" if name == "symlink" else name)
    if name == "symlink":
        (src / "images" / "a.png").unlink()
        (src / "images" / "a.png").symlink_to(outside)
    lines = run_cli(["convert", src, tmp_path / "out", "--quiet", "--from", "coco-amodal"],
                    capsys)
    msg = "\n".join(lines)
    assert "image 1" in msg and "field 'file_name'" in msg, msg
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Malformed dataset files: one line naming file, record and field
# --------------------------------------------------------------------------------------------


def _deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_JSON = {
    "deeply_nested": (lambda f: f.write_text('{"images": ' + _deep(100000) + "}"),
                      "nested too deeply"),
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[:50]), "truncated"),
    "empty": (lambda f: f.write_text(""), "empty file"),
    "binary": (lambda f: f.write_bytes(b"\xff\xfe\x00garbage"), "JSON"),
    "top_list": (lambda f: f.write_text("[]"), "top level"),
    "no_images": (lambda f: f.write_text('{"annotations": [], "categories": []}'),
                  "field 'images'"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
@pytest.mark.parametrize("command", ["stats", "convert"])
def test_malformed_json(clean, tmp_path, capsys, case, command):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    f = data / "annotations" / "test.json"
    make, expect = BAD_JSON[case]
    make(f)
    out = tmp_path / "out"
    argv = {"stats": ["stats", data, "--sheet", out / "s.png"],
            "convert": ["convert", data, out, "--quiet", "--from", "segan-coco"],
            "evaluate": ["evaluate", "--data", data, "--out", out, "--method", "visible_as_full",
                         "--device", "cpu", "--quiet", "--data-format", "segan-coco"]}[command]
    lines = run_cli(argv, capsys)
    assert str(f) in lines[0] and expect in "\n".join(lines), lines


BAD_RECORDS = {
    "nan_bbox": (lambda o: o["annotations"][0].__setitem__("bbox", [0, 0, float("nan"), 8]),
                 "annotation 20", "bbox"),
    "string_width": (lambda o: o["images"][0].__setitem__("width", "16"), "image 2", "width"),
    "negative_height": (lambda o: o["images"][0].__setitem__("height", -1), "image 2", "height"),
    "rle_sum": (lambda o: o["annotations"][0]["segmentation"].__setitem__("counts", "0`0"),
                "annotation 20", "segmentation"),
    "mask_size": (lambda o: o["annotations"][0]["visible_mask"].__setitem__("size", [8, 8]),
                  "annotation 20", "visible_mask"),
    "dup_image": (lambda o: o["images"].append(dict(o["images"][0])), "image 2", "id"),
    "no_image_id": (lambda o: o["annotations"][0].pop("image_id"), "annotation 20",
                    "image_id"),
    "self_pair": (lambda o: o["images"][0].__setitem__("occlusion", [[20, 20]]), "image 2",
                  "occlusion"),
    "rate_range": (lambda o: o["annotations"][0].__setitem__("occlude_rate", 2.0),
                   "annotation 20", "occlude_rate"),
    "file_name_int": (lambda o: o["images"][0].__setitem__("file_name", 3), "image 2",
                      "file_name"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
@pytest.mark.parametrize("command", ["stats", "convert"])
def test_malformed_record(clean, tmp_path, capsys, case, command):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    fn, record, field = BAD_RECORDS[case]
    f = edit_split(data, "test", fn)
    out = tmp_path / "out"
    argv = {"stats": ["stats", data, "--sheet", out / "s.png"],
            "convert": ["convert", data, out, "--quiet"]}[command]
    lines = run_cli(argv, capsys)
    msg = "\n".join(lines)
    assert str(f) in msg and record in msg and f"field '{field}'" in msg, msg


def _bomb_png(path: Path, w: int, h: int) -> None:
    """A PNG whose header claims w x h (its data is one row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + raw + chunk(b"IDAT", zlib.compress(b"\x00" * 4))
                     + chunk(b"IEND", b""))


BAD_IMAGES = {
    "bomb": lambda p: _bomb_png(p, 100000, 100000),
    "smaller": lambda p: _png(p, np.zeros((8, 8, 3), np.uint8)),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:40]),
    "not_an_image": lambda p: p.write_text("hello"),
    "missing": lambda p: p.unlink(),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
@pytest.mark.parametrize("command", ["convert"])
def test_bad_image_file(clean, tmp_path, capsys, case, command):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    BAD_IMAGES[case](data / "images" / "test" / "00002.png")
    out = tmp_path / "out"
    argv = {"convert": ["convert", data, out, "--quiet"]}[command]
    lines = run_cli(argv, capsys)
    assert "00002.png" in "\n".join(lines), lines


# --------------------------------------------------------------------------------------------
# Weight files: truncated, foreign, malicious
# --------------------------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _weights(kind: str, path: Path) -> Path:
    import torch

    if kind == "truncated_pt":
        torch.save({"a": torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "pickle_code":
        path.write_bytes(pickle.dumps(_Evil()))
    elif kind == "torch_code":
        torch.save({"x": _Evil()}, path)
    elif kind == "random_bytes":
        path.write_bytes(os.urandom(256))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not weights\n")
    return path


WEIGHT_KINDS = ["truncated_pt", "pickle_code", "torch_code", "random_bytes", "empty", "text"]


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("kind", WEIGHT_KINDS)
@pytest.mark.parametrize("command", ["predict", "evaluate", "backbone"])
def test_bad_weights(clean, tmp_path, capsys, monkeypatch, command, kind, suffix):
    monkeypatch.chdir(tmp_path)
    w = _weights(kind, tmp_path / f"weights{suffix}")
    out = tmp_path / "out"
    mask = tmp_path / "mask.png"
    _png(mask, _rect(0, 8, 0, 8).astype(np.uint8) * 255)
    argv = {"predict": ["predict", clean / "images/test/00002.png", "--checkpoint", w,
                        "--masks", mask, "--out", out, "--device", "cpu", "--quiet"],
            "evaluate": ["evaluate", "--checkpoint", w, "--data", clean, "--out", out,
                         "--device", "cpu", "--quiet"],
            "backbone": ["train", "--config", Path(__file__).parents[1] / "configs/tiny.yaml",
                         "--data", clean, "--out", out, "--backbone-weights", w, "--quiet",
                         "--cache-dir", tmp_path / "cache", "schedule.stage1_steps=1",
                         "schedule.stage2_steps=0"]}[command]
    lines = run_cli(argv, capsys)
    msg = "\n".join(lines)
    assert str(w) in msg or w.name in msg, msg
    assert "weights_only=False" not in msg
    assert not (tmp_path / "PWNED").exists()


# --------------------------------------------------------------------------------------------
# Configs and options
# --------------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "syntax": ("model: [1, 2\n", "not a valid YAML config"),
    "python_tag": ("model: !!python/object/apply:os.system ['touch PWNED']\n",
                   "not a valid YAML config"),
    "empty": ("", "empty config"),
    "list": ("- 1\n- 2\n", "mapping"),
    "unknown_key": ("modle: {}\n", "modle"),
    "string_width": ("data: {image_size: big}\n", "data.image_size"),
    "negative_lr": ("optim: {segmentor_lr: -1.0}\n", "optim.segmentor_lr"),
    "nan_lr": ("optim: {segmentor_lr: .nan}\n", "optim.segmentor_lr"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config(clean, tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    text, expect = BAD_CONFIGS[case]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    lines = run_cli(["train", "--config", cfg, "--data", clean, "--out", tmp_path / "run",
                     "--dry-run"], capsys)
    assert str(cfg) in lines[0] and expect in lines[0], lines
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "run").exists()


BAD_OVERRIDES = {
    "no_equals": ("schedule.stage1_steps", "key=value"),
    "bad_yaml": ("optim.segmentor_lr=[1", "optim.segmentor_lr"),
    "unknown": ("model.nope=1", "model.nope"),
    "negative": ("optim.segmentor_lr=-1", "optim.segmentor_lr"),
    "nan": ("optim.segmentor_lr=.nan", "optim.segmentor_lr"),
    "string_int": ("data.image_size=big", "data.image_size"),
    "section": ("model=3", "model"),
}


@pytest.mark.parametrize("case", list(BAD_OVERRIDES))
def test_bad_override_is_blamed_not_the_file(clean, tmp_path, capsys, case):
    item, expect = BAD_OVERRIDES[case]
    tiny = Path(__file__).parents[1] / "configs" / "tiny.yaml"
    lines = run_cli(["train", "--config", tiny, "--data", clean, "--out", tmp_path / "run",
                     "--dry-run", item], capsys)
    assert f"override {item!r}" in lines[0] and expect in lines[0], lines
    assert str(tiny) not in lines[0]


@pytest.mark.parametrize("argv,expect", [
    (["generate", "/dev/null/x", "--quiet"], "/dev/null"),
    (["stats", "/nonexistent/data"], "/nonexistent/data"),
    (["convert", "/nonexistent/src", "OUT"], "/nonexistent/src"),
    (["report", "a", "--out", "r.md"], "NAME=RESULTS"),
    (["plot-losses", "/nonexistent/run"], "/nonexistent/run"),
])
def test_bad_paths_and_options(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    lines = run_cli(argv, capsys)
    assert expect in "\n".join(lines), lines


# --------------------------------------------------------------------------------------------
# Silently wrong before: each is now a clear error or the right result
# --------------------------------------------------------------------------------------------


def test_format_detected_by_fields_without_info(clean, tmp_path, capsys):
    """A file that follows FORMAT.md without ``info.format`` is ours: nothing dropped."""
    from segan.data.formats import detect_format

    data = tmp_path / "data"
    shutil.copytree(clean, data)
    for split in ("train", "test"):
        edit_split(data, split, lambda o: o.pop("info", None))
    assert detect_format(data) == "segan-coco"
    run_cli(["convert", data, tmp_path / "out", "--quiet"], capsys, code=0)
    ds = load_annotations(tmp_path / "out/annotations/test.json")
    assert ds.occlusion_pairs(2) and ds.depth_path(2) is not None
    assert all(a.get("appearance_file") for a in ds.iter_annotations())


def test_conversion_names_dropped_fields(clean, tmp_path, capsys):
    """Read as another format, our fields are dropped: the terminal says which, not only
    conversion.json."""
    f = clean / "annotations/test.json"
    assert main(["convert", str(f), str(tmp_path / "out"), "--quiet", "--from", "coco-amodal",
                 "--images", str(clean / "images")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("dropped:")]
    assert len(lines) == 1 and "annotations[].appearance_file (2 records)" in lines[0], lines
    assert "images[].occlusion (1 record)" in lines[0] and "coco-amodal" in lines[0]
    summary = json.loads((tmp_path / "out/conversion.json").read_text())
    assert summary["dropped_fields"] == {"annotations[].appearance_file": 2,
                                         "images[].depth_file": 1, "images[].occlusion": 1,
                                         "images[].scene_id": 1}


# `segan predict --masks`: every mask input is checked before the model loads, so these cases
# need no trained model (a checkpoint that is never opened).


def _mask_json(path: Path, fn=None) -> Path:
    """A COCO masks file for the test image 00002.png (two objects), edited by fn(obj)."""
    from segan.data.coco import encode_mask

    obj = {"images": [{"id": 2, "file_name": "00002.png", "width": W, "height": H}],
           "categories": CATS,
           "annotations": [{"id": 1, "image_id": 2, "category_id": 1,
                            "segmentation": encode_mask(_rect(0, 8, 0, 4))},
                           {"id": 2, "image_id": 2, "category_id": 1,
                            "segmentation": encode_mask(_rect(8, 16, 4, 12))}]}
    if fn is not None:
        fn(obj)
    path.write_text(json.dumps(obj))
    return path


def _antialiased_disk() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    d = np.hypot(yy - 7.5, xx - 7.5)
    return (np.clip(5.5 - d, 0, 1) * 255).round().astype(np.uint8)


BAD_MASKS = {
    "rle_sum": (lambda o: o["annotations"][0]["segmentation"].__setitem__("counts", "0`0"),
                "annotation 1", "RLE run lengths sum to"),
    "dup_image_id": (lambda o: o["images"].append(dict(o["images"][0], file_name="x.png")),
                     "image 2", "2 images[] records have this id"),
    "no_image_id": (lambda o: o["annotations"][1].pop("image_id"), "annotation 2",
                    "field 'image_id': missing"),
    "other_file": (lambda o: o["images"][0].__setitem__("file_name", "other.png"),
                   "no images[] record", "'00002.png'"),
    "string_width": (lambda o: o["images"][0].__setitem__("width", "16"), "image 2",
                     "field 'width'"),
}


@pytest.mark.parametrize("case", list(BAD_MASKS))
def test_predict_bad_mask_json(clean, tmp_path, capsys, case):
    fn, record, expect = BAD_MASKS[case]
    masks = _mask_json(tmp_path / "masks.json", fn)
    out = tmp_path / "out"
    lines = run_cli(["predict", clean / "images/test/00002.png", "--checkpoint",
                     tmp_path / "never_opened.pt", "--masks", masks, "--out", out,
                     "--device", "cpu", "--quiet"], capsys)
    assert len(lines) == 1 and str(masks) in lines[0], lines
    assert record in lines[0] and expect in lines[0], lines
    assert not out.exists()


def test_predict_two_images_on_one_record(clean, tmp_path, capsys):
    """a/00002.png and b/00002.png would both get the masks of the JSON's one 00002.png."""
    for d in ("a", "b"):
        _png(tmp_path / d / "00002.png", np.zeros((H, W, 3), np.uint8))
    masks = _mask_json(tmp_path / "masks.json")
    lines = run_cli(["predict", tmp_path / "a/00002.png", tmp_path / "b/00002.png",
                     "--checkpoint", tmp_path / "never_opened.pt", "--masks", masks,
                     "--out", tmp_path / "out", "--device", "cpu", "--quiet"], capsys)
    assert "a/00002.png and " in lines[0] and "both match image 2" in lines[0], lines


@pytest.mark.parametrize("colour", [False, True])
def test_predict_antialiased_mask_is_not_an_id_map(clean, tmp_path, capsys, colour):
    disk = _antialiased_disk()
    assert len(np.unique(disk)) > 3  # grey levels on its rim: once read as many objects
    mask = tmp_path / "disk.png"
    _png(mask, np.dstack([disk] * 3) if colour else disk)
    lines = run_cli(["predict", clean / "images/test/00002.png", "--checkpoint",
                     tmp_path / "never_opened.pt", "--masks", mask, "--out", tmp_path / "out",
                     "--device", "cpu", "--quiet"], capsys)
    assert str(mask) in lines[0] and "antialiased" in lines[0], lines


def test_id_map_is_still_an_id_map(tmp_path):
    """Objects that touch are an id map (not the rim of the largest id)."""
    from segan.predict_io import read_id_png

    ids = np.zeros((H, W), np.uint8)
    ids[:, :6], ids[:, 6:12] = 1, 2
    _png(tmp_path / "ids.png", ids)
    assert read_id_png(tmp_path / "ids.png", (H, W)).shape == (2, H, W)


def test_16_bit_grey_image_is_not_white(tmp_path):
    from segan.predict_io import read_image

    ramp = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 257)
    _png(tmp_path / "g16.png", ramp)
    rgb = read_image(tmp_path / "g16.png")
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.arange(H * W).reshape(H, W).astype(np.uint8))


def test_predict_same_base_names_keep_their_outputs(tiny_run, tmp_path, capsys):
    """a/x.png and b/x.png (masks told apart by their folders in the JSON): two output
    folders and two records, neither overwritten; with c/x_2.png, no clash either."""
    from segan.predict_io import unique_stems

    assert unique_stems(["a/x.png", "b/x.png", "c/x_2.png"]) == ["x", "x_3", "x_2"]
    imgs = [tmp_path / "a/x.png", tmp_path / "b/x.png"]
    for p in imgs:
        _png(p, np.zeros((H, W, 3), np.uint8))

    def two_images(obj):
        obj["images"] = [dict(obj["images"][0], file_name="a/x.png"),
                         dict(obj["images"][0], id=3, file_name="b/x.png")]
        obj["annotations"][1]["image_id"] = 3

    out = tmp_path / "out"
    run_cli(["predict", *imgs, "--checkpoint", tiny_run, "--masks",
             _mask_json(tmp_path / "m.json", two_images), "--out", out, "--device", "cpu",
             "--quiet"], capsys, code=0)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["x", "x_2"]
    pred = json.loads((out / "predictions.json").read_text())
    visible = [a["visible_mask"]["counts"] for a in pred["annotations"]]
    assert len(visible) == 2 and visible[0] != visible[1]  # each image its own mask


def _evaluate(data: Path, out: Path, run: Path) -> list:
    return ["evaluate", "--checkpoint", run, "--data", data, "--out", out, "--method",
            "visible_as_full", "--device", "cpu", "--quiet", "--cache-dir", out.parent / "c"]


DATASET_FAULTS = {  # name -> (edit of the copied dataset, annotation file, expected text)
    "empty_split": (lambda d: edit_split(d, "test", lambda o: (o.__setitem__("images", []),
                                                              o.__setitem__("annotations", []))),
                    "no annotated object"),
    "smaller_image": (lambda d: _png(d / "images/test/00002.png", np.zeros((8, 8, 3), np.uint8)),
                      "image 2: field 'file_name'"),
    "missing_appearance": (lambda d: (d / "appearance/test/20.png").unlink(),
                           "annotation 20: field 'appearance_file'"),
    "missing_depth": (lambda d: (d / "depth/test/00002.png").unlink(),
                      "image 2: field 'depth_file'"),
}


@pytest.mark.parametrize("command,case", [  # stats counts an empty split (zeros): no fault
    (c, f) for c in ("evaluate", "stats") for f in DATASET_FAULTS
    if (c, f) != ("stats", "empty_split")])
def test_dataset_fault_named(clean, tiny_run, tmp_path, capsys, command, case):
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    edit, expect = DATASET_FAULTS[case]
    edit(data)
    out = tmp_path / "out"
    argv = (_evaluate(data, out, tiny_run) if command == "evaluate"
            else ["stats", data, "--sheet", out / "s.png"])
    lines = run_cli(argv, capsys)
    msg = "\n".join(lines)
    assert str(data / "annotations/test.json") in msg and expect in msg, msg
    if case == "smaller_image":
        assert "8x8 (WxH)" in msg and "16x16" in msg
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_evaluate_clean_dataset_runs(clean, tiny_run, tmp_path, capsys):
    """The control of the cases above: the untouched dataset evaluates (exit 0)."""
    run_cli(_evaluate(clean, tmp_path / "out", tiny_run), capsys, code=0)
    assert json.loads((tmp_path / "out/results.json").read_text())["num_objects"] == 2


def test_zero_steps_refused(clean, tmp_path, capsys):
    tiny = Path(__file__).parents[1] / "configs" / "tiny.yaml"
    lines = run_cli(["train", "--config", tiny, "--data", clean, "--out", tmp_path / "run",
                     "--quiet", "schedule.stage1_steps=0", "schedule.stage2_steps=0"], capsys)
    assert "0 steps" in lines[0] and "schedule.stage1_steps" in lines[0], lines
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# Outputs checked before the work; options named
# --------------------------------------------------------------------------------------------


def _out_argv(command: str, clean: Path, out: Path, tmp: Path) -> list:
    tiny = Path(__file__).parents[1] / "configs" / "tiny.yaml"
    mask = tmp / "mask.png"
    _png(mask, _rect(0, 8, 0, 8).astype(np.uint8) * 255)
    return {"evaluate": ["evaluate", "--checkpoint", tmp / "never_opened.pt", "--data", clean,
                         "--out", out, "--device", "cpu", "--quiet"],
            "predict": ["predict", clean / "images/test/00002.png", "--checkpoint",
                        tmp / "never_opened.pt", "--masks", mask, "--out", out, "--quiet"],
            "train": ["train", "--config", tiny, "--data", clean, "--out", out, "--quiet"],
            "convert": ["convert", clean, out, "--quiet"],
            "generate": ["generate", out, "--quiet"],
            "stats": ["stats", clean, "--sheet", out],
            "stats-json": ["stats", clean, "--sheet", tmp / "s.png", "--json", out],
            "report": ["report", f"a={tmp}", "--out", out]}[command]


OUT_COMMANDS = ["evaluate", "predict", "train", "convert", "generate"]
FILE_COMMANDS = ["stats", "stats-json", "report"]


@pytest.mark.parametrize("command", OUT_COMMANDS + FILE_COMMANDS)
def test_output_of_the_wrong_kind(clean, tmp_path, capsys, command):
    """A file where a folder goes (--out, DST, OUT), a folder where a file goes (--sheet,
    --json, report --out): refused before any work, naming the option."""
    out = tmp_path / "target"
    if command in OUT_COMMANDS:
        out.write_text("keep me")
    else:
        out.mkdir()
    argv = _out_argv(command, clean, out, tmp_path)
    before = digest(tmp_path)
    lines = run_cli(argv, capsys)
    assert len(lines) == 1 and str(out) in lines[0], lines
    assert ("exists and is not a folder" if command in OUT_COMMANDS else "is a folder") \
        in lines[0]
    option = {"convert": "DST", "generate": "OUT", "stats": "--sheet",
              "stats-json": "--json"}.get(command, "--out")
    assert lines[0].split("error: ")[1].startswith(option), lines
    assert digest(tmp_path) == before


@pytest.mark.parametrize("command", OUT_COMMANDS + ["stats"])
def test_output_without_write_permission(clean, tmp_path, capsys, monkeypatch, command):
    """A folder this process may not write in (simulated: the tests may run as root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: Path(p) != locked
                        and real(p, mode, *a, **k))
    out = locked / "sub" / ("s.png" if command == "stats" else "out")
    lines = run_cli(_out_argv(command, clean, out, tmp_path), capsys)
    assert len(lines) == 1 and f"no permission to write in {locked}" in lines[0], lines
    assert not any(locked.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_output_read_only_folder(clean, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        lines = run_cli(_out_argv("convert", clean, locked / "out", tmp_path), capsys)
    finally:
        locked.chmod(0o755)
    assert "no permission to write" in lines[0], lines


@pytest.mark.parametrize("argv,expect", [
    (["generate", "OUT", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["stats", "DATA", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["generate", "OUT", "--size", "big"], "argument --size: must be an int >= 1, got 'big'"),
    (["generate", "OUT", "--workers", "0"], "argument --workers: must be >= 1, got 0"),
    (["evaluate", "--data", "D", "--out", "O", "--best-worst", "-2"],
     "argument --best-worst: must be >= 0"),
    (["generate", "/dev/null/x", "--quiet"], "OUT /dev/null/x: /dev/null is not a folder"),
])
def test_option_values_named(tmp_path, capsys, monkeypatch, argv, expect):
    monkeypatch.chdir(tmp_path)
    lines = run_cli(argv, capsys)
    assert len(lines) == 1 and expect in lines[0], lines
    assert not any(tmp_path.iterdir())
