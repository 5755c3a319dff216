"""The segan-coco format: masks against pycocotools, records, invariant checks, atomic writes."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segan.data.coco import (
    DatasetFormatError,
    decode_mask,
    encode_mask,
    load_annotations,
    make_annotation,
    make_image,
    mask_bbox,
    write_annotations,
    write_json_atomic,
)
from segan.data.coco import masks as coco_masks

H, W = 20, 30
CATS = [
    {"id": 1, "name": "sofa", "supercategory": "object"},
    {"id": 2, "name": "mug", "supercategory": "object"},
]


def rect(y0: int, y1: int, x0: int, x1: int, h: int = H, w: int = W) -> np.ndarray:
    """(h, w) bool mask, True on rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def small_dataset() -> dict:
    """Two images. Image 1: object 2 (in front) hides the right part of object 1.
    Image 2: one unoccluded object."""
    f1 = rect(2, 12, 3, 15)  # 10 x 12 = 120 px
    f2 = rect(0, 16, 10, 20)  # 160 px, in front
    v1 = f1 & ~f2  # 10 x 7 = 70 px visible, 50 hidden
    anns = [
        make_annotation(1, 1, 1, f1, v1, appearance_file="1_1.png", instance_id=7),
        make_annotation(2, 1, 2, f2, f2, instance_id=8),
        make_annotation(3, 2, 2, rect(5, 9, 5, 9), rect(5, 9, 5, 9)),
    ]
    images = [
        make_image(1, "a.png", W, H, scene_id="kitchen_0", depth_file="a.png", occlusion=[[2, 1]]),
        make_image(2, "b.png", W, H, scene_id="kitchen_0", occlusion=[]),
    ]
    return {"info": {}, "images": images, "annotations": anns, "categories": CATS}


@pytest.fixture
def valid_file(tmp_path: Path) -> Path:
    d = small_dataset()
    return write_annotations(
        tmp_path / "annotations" / "train.json", d["images"], d["annotations"], d["categories"]
    )


def dump(path: Path, obj) -> Path:
    """Write JSON without our writer (which would refuse a broken file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = [
        np.zeros((7, 5), bool),
        np.ones((7, 5), bool),
        rect(3, 4, 2, 3, 7, 5),
        np.ones((1, 9), bool),
        rect(0, 1, 0, 1, 1, 1),
        rect(10, 300, 0, 640, 480, 640),
    ]
    for _ in range(30):
        h, w = rng.integers(1, 80, 2)
        out.append(rng.random((h, w)) < rng.random())
    return out


@pytest.mark.parametrize("mask", _masks(), ids=lambda m: f"{m.shape[0]}x{m.shape[1]}")
def test_encode_matches_pycocotools(mask: np.ndarray):
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    json.dumps(rle)  # JSON-ready
    coco_rle = {"size": rle["size"], "counts": rle["counts"].encode()}
    np.testing.assert_array_equal(mask_utils.decode(coco_rle).astype(bool), mask)
    assert mask_utils.area(coco_rle) == mask.sum()
    np.testing.assert_array_equal(mask_utils.toBbox(coco_rle), mask_bbox(mask))
    np.testing.assert_array_equal(decode_mask(rle, *mask.shape), mask)
    # pycocotools' own encoding is the same string
    assert (
        mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
        == (rle["counts"])
    )


def test_decode_uncompressed_rle_and_polygons():
    m = rect(2, 5, 1, 4, 6, 5)
    flat = m.flatten(order="F").astype(int)  # COCO runs go down the columns
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    np.testing.assert_array_equal(decode_mask({"size": [6, 5], "counts": runs}, 6, 5), m)

    poly = [[1.0, 1.0, 8.0, 1.0, 8.0, 6.0, 1.0, 6.0]]
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, 10, 12)))
    got = decode_mask(poly, 10, 12)
    np.testing.assert_array_equal(got, expected.astype(bool))
    assert got.dtype == bool and got.shape == (10, 12) and got[3, 4] and not got[8, 10]

    with pytest.raises(ValueError, match="differs from the image size"):
        decode_mask(encode_mask(m), 7, 5)
    with pytest.raises(ValueError, match="sum to"):
        decode_mask({"size": [6, 5], "counts": [3, 4]}, 6, 5)
    with pytest.raises(ValueError, match="polygon"):
        decode_mask([[1, 2, 3, 4]], 6, 5)


def test_rle_areas_beyond_pycocotools_chunk_limit():
    rles = [encode_mask(rect(0, 1 + i % 5, 0, 3, 6, 5)) for i in range(600)]
    expected = [3 * (1 + i % 5) for i in range(600)]
    np.testing.assert_array_equal(coco_masks.rle_areas(rles), expected)


def test_bulk_rle_validator_agrees_with_pycocotools():
    """The vectorised counts parser accepts every string pycocotools writes and catches
    corruptions that change the runs' sum or the alphabet."""
    rng = np.random.default_rng(1)
    strs, sizes = [], []
    for i in range(400):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        m = (
            rng.random((h, w)) < rng.random()
            if i % 2
            else rect(*sorted(rng.integers(0, h, 2)), *sorted(rng.integers(0, w, 2)), h, w)
        )
        strs.append(encode_mask(m)["counts"])
        sizes.append(h * w)
    strs.insert(3, "")
    sizes.insert(3, 0)
    for chunk in (1 << 18, 100, 1):  # chunking must not matter
        old, coco_masks._CHUNK = coco_masks._CHUNK, chunk
        try:
            assert coco_masks.rle_string_problems(strs, sizes) == [None] * len(strs)
        finally:
            coco_masks._CHUNK = old
    bad = [strs[0] + "1", strs[1][:-1] + "~", "é" + strs[2], strs[4] + "W", "", strs[5][:-1]]
    problems = coco_masks.rle_string_problems(
        bad, [sizes[0], sizes[1], sizes[2], sizes[4], 4, sizes[5]])
    assert all(p is not None for p in problems), problems
    assert "alphabet" in problems[1] and "alphabet" in problems[2]
    assert "truncated" in problems[3]  # 'W' has the continuation bit: a number left open
    assert "sum to 0" in problems[4]


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


def test_make_annotation_known_values():
    full = rect(2, 12, 3, 15)  # x 3..14, y 2..11: 120 px
    vis = full & ~rect(0, 20, 10, 30)  # x 3..9: 70 px
    ann = make_annotation(5, 9, 2, full, vis, appearance_file="x.png", instance_id=4)
    assert ann["id"] == 5 and ann["image_id"] == 9 and ann["category_id"] == 2
    assert ann["iscrowd"] == 0
    assert ann["bbox"] == [3, 2, 12, 10] and ann["area"] == 120
    assert ann["visible_bbox"] == [3, 2, 7, 10]
    assert ann["occlude_rate"] == pytest.approx(50 / 120, abs=1e-6)
    assert ann["appearance_file"] == "x.png" and ann["instance_id"] == 4
    np.testing.assert_array_equal(decode_mask(ann["segmentation"], H, W), full)
    np.testing.assert_array_equal(decode_mask(ann["visible_mask"], H, W), vis)
    np.testing.assert_array_equal(decode_mask(ann["invisible_mask"], H, W), full & ~vis)
    unoccluded = make_annotation(6, 9, 1, full, full)
    assert unoccluded["occlude_rate"] == 0 and "appearance_file" not in unoccluded
    json.dumps(ann)


def test_make_annotation_rejects_bad_masks():
    full = rect(2, 12, 3, 15)
    with pytest.raises(ValueError, match="12 visible pixels lie outside"):
        make_annotation(1, 1, 1, full, full | rect(0, 2, 3, 9))
    with pytest.raises(ValueError, match="same size"):
        make_annotation(1, 1, 1, full, full[:, :-1])
    with pytest.raises(ValueError, match="fewer than 10"):
        make_annotation(1, 1, 1, full, rect(2, 3, 3, 12))  # 9 visible pixels


def test_make_image():
    img = make_image(3, "x.png", 30, 20, scene_id="s", occlusion=[(1, 2)])
    assert img == {
        "id": 3,
        "file_name": "x.png",
        "width": 30,
        "height": 20,
        "scene_id": "s",
        "occlusion": [[1, 2]],
    }
    assert "depth_file" not in img
    with pytest.raises(ValueError, match="one object"):
        make_image(3, "x.png", 30, 20, occlusion=[(4, 4)])


# --------------------------------------------------------------------------------------------
# reading a valid file
# --------------------------------------------------------------------------------------------


def test_written_file_reads_with_pycocotools(valid_file: Path):
    coco = COCO(str(valid_file))
    assert sorted(coco.getImgIds()) == [1, 2] and len(coco.getAnnIds()) == 3
    ann = coco.loadAnns([1])[0]
    np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), rect(2, 12, 3, 15))
    info = json.loads(valid_file.read_text())["info"]
    assert info["format"] == "segan-coco" and info["format_version"] == 1


def test_load_valid_file(valid_file: Path):
    ds = load_annotations(valid_file)
    assert len(ds) == 2 and ds.num_annotations == 3
    assert ds.root == valid_file.parent.parent.resolve()
    assert [a["id"] for a in ds.annotations[1]] == [1, 2] and ds.annotations[2][0]["id"] == 3
    assert ds.category_name(2) == "mug"
    assert ds.occlusion_pairs(1) == [(2, 1)] and ds.occlusion_pairs(2) == []
    f1, f2 = rect(2, 12, 3, 15), rect(0, 16, 10, 20)
    np.testing.assert_array_equal(ds.full_mask(1), f1)
    np.testing.assert_array_equal(ds.visible_mask(ds.annotation(1)), f1 & ~f2)
    np.testing.assert_array_equal(ds.invisible_mask(1), f1 & f2)
    full, vis, inv = ds.image_masks(1)
    assert full.shape == vis.shape == inv.shape == (2, H, W) and full.dtype == bool
    np.testing.assert_array_equal(inv[0], f1 & f2)
    assert not inv[1].any()
    assert ds.image_path(1) == ds.root / "images" / "a.png"
    assert ds.appearance_path(1) == ds.root / "appearance" / "1_1.png"
    assert ds.depth_path(2) is None
    assert ds.annotation(1)["instance_id"] == 7
    assert load_annotations(valid_file, root="/elsewhere").root == Path("/elsewhere")


def test_file_accessors(valid_file: Path):
    from PIL import Image

    root = valid_file.parent.parent
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    depth_mm = np.full((H, W), 1500, np.uint16)
    rgba = np.dstack([rgb, rect(2, 12, 3, 15).astype(np.uint8) * 255])
    for folder, name, arr in (
        ("images", "a.png", rgb),
        ("depth", "a.png", depth_mm),
        ("appearance", "1_1.png", rgba),
    ):
        (root / folder).mkdir(exist_ok=True)
        Image.fromarray(arr).save(root / folder / name)
    ds = load_annotations(valid_file)
    np.testing.assert_array_equal(ds.load_image(1), rgb)
    depth = ds.load_depth(1)
    assert depth.dtype == np.float32 and depth.shape == (H, W) and np.allclose(depth, 1.5)
    assert ds.load_depth(2) is None
    np.testing.assert_array_equal(ds.load_appearance(1), rgba)
    assert ds.load_appearance(2) is None


# --------------------------------------------------------------------------------------------
# every invariant violation names file, record and field
# --------------------------------------------------------------------------------------------


def _ann(d: dict, ann_id: int) -> dict:
    return next(a for a in d["annotations"] if a["id"] == ann_id)


def _img(d: dict, image_id: int) -> dict:
    return next(i for i in d["images"] if i["id"] == image_id)


def _set(ann_id: int, key: str, value):
    def f(d):
        _ann(d, ann_id)[key] = value

    return f


def _del(ann_id: int, key: str):
    def f(d):
        del _ann(d, ann_id)[key]

    return f


def _occ(pairs):
    def f(d):
        _img(d, 1)["occlusion"] = pairs

    return f


def _few_visible(d):
    d["annotations"][2] = make_annotation(
        3, 2, 2, rect(5, 9, 5, 9), rect(5, 6, 5, 9), min_visible=0
    )


def _vis_outside(d):
    a = _ann(d, 1)
    a["visible_mask"] = encode_mask(decode_mask(a["visible_mask"], H, W) | rect(0, 2, 3, 9))


def _inv_wrong(d):
    _ann(d, 1)["invisible_mask"] = encode_mask(rect(2, 12, 10, 14))  # one column short


def _dup_image(d):
    d["images"].append(dict(d["images"][0]))


def _dup_ann(d):
    d["annotations"].append(dict(d["annotations"][0]))


BROKEN = {
    # name: (mutation, substrings the message must contain)
    "missing visible_mask": (
        _del(1, "visible_mask"),
        ["annotation 1 (image 1)", "'visible_mask'", "missing"],
    ),
    "missing bbox": (_del(2, "bbox"), ["annotation 2 (image 1)", "'bbox'", "missing"]),
    "missing occlude_rate": (_del(3, "occlude_rate"), ["annotation 3", "'occlude_rate'"]),
    "missing image file_name": (lambda d: _img(d, 2).pop("file_name"), ["image 2", "'file_name'"]),
    "width not int": (lambda d: _img(d, 1).update(width="30"), ["image 1", "'width'", "'30'"]),
    "mask size": (
        _set(2, "segmentation", encode_mask(np.ones((H + 1, W), bool))),
        ["annotation 2 (image 1)", "'segmentation'", "21x30", "20x30"],
    ),
    "image_id nowhere": (
        _set(3, "image_id", 99),
        ["annotation 3 (image 99)", "'image_id'", "no image has id 99"],
    ),
    "category nowhere": (_set(3, "category_id", 42), ["annotation 3", "'category_id'", "42"]),
    "visible outside full": (
        _vis_outside,
        [
            "annotation 1 (image 1)",
            "'visible_mask'",
            "12 pixels lie outside the full mask 'segmentation'",
        ],
    ),
    "invisible not F minus V": (_inv_wrong, ["annotation 1", "'invisible_mask'", "10 pixels"]),
    "area": (_set(1, "area", 119), ["annotation 1", "'area'", "120"]),
    "bbox": (_set(1, "bbox", [3, 2, 15, 10]), ["annotation 1", "'bbox'", "[3, 2, 12, 10]"]),
    "visible_bbox": (_set(1, "visible_bbox", [0, 0, 1, 1]), ["annotation 1", "'visible_bbox'"]),
    "occlude_rate": (_set(1, "occlude_rate", 0.3), ["annotation 1", "'occlude_rate'", "0.416"]),
    "occlude_rate out of range": (_set(2, "occlude_rate", 1.5), ["annotation 2", "[0, 1]"]),
    "iscrowd": (_set(2, "iscrowd", 1), ["annotation 2", "'iscrowd'"]),
    "few visible pixels": (
        _few_visible,
        ["annotation 3 (image 2)", "'visible_mask'", "only 4 visible pixels"],
    ),
    "pair with itself": (_occ([[1, 1]]), ["image 1", "'occlusion'", "occluding itself"]),
    "pair across images": (_occ([[3, 1]]), ["image 1", "'occlusion'", "belongs to image 2"]),
    "pair names nothing": (_occ([[2, 77]]), ["image 1", "'occlusion'", "no annotation has id 77"]),
    "pair hides nothing": (_occ([[1, 2]]), ["image 1", "'occlusion'", "hides nothing"]),
    "pair malformed": (_occ([[1, 2, 3]]), ["image 1", "'occlusion'"]),
    "duplicate image id": (_dup_image, ["image 1", "'id'", "duplicate"]),
    "duplicate annotation id": (_dup_ann, ["annotation 1", "'id'", "duplicate"]),
    "rle runs beyond the image": (
        _set(
            3,
            "visible_mask",
            {"size": [H, W], "counts": encode_mask(rect(5, 9, 5, 9, 30, W))["counts"]},
        ),
        ["annotation 3", "'visible_mask'", "sum to 900, not height*width = 600"],
    ),
    "rle runs short of the image": (
        _set(
            3,
            "segmentation",
            {"size": [H, W], "counts": encode_mask(rect(5, 9, 5, 9, 10, W))["counts"]},
        ),
        ["annotation 3", "'segmentation'", "sum to 300"],
    ),
    "rle counts truncated": (
        _set(3, "segmentation", {"size": [H, W], "counts": "T71`01W"}),
        ["annotation 3", "'segmentation'", "truncated"],
    ),
    "rle counts bad char": (
        lambda d: _ann(d, 2)["segmentation"].update(counts="~~~"),
        ["annotation 2", "'segmentation'", "alphabet"],
    ),
    "no images list": (lambda d: d.pop("images"), ["'images'", "missing"]),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_copy_names_file_record_field(tmp_path: Path, name: str):
    mutate, needles = BROKEN[name]
    d = copy.deepcopy(small_dataset())
    mutate(d)
    path = dump(tmp_path / "annotations" / "train.json", d)
    with pytest.raises(DatasetFormatError) as exc:
        load_annotations(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)), msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    # the writer refuses the same content before writing anything
    out = tmp_path / "again" / "train.json"
    with pytest.raises(DatasetFormatError):
        write_annotations(out, d.get("images", []), d["annotations"], d["categories"])
    assert not out.exists()


def test_all_problems_are_listed(tmp_path: Path):
    d = small_dataset()
    for a in d["annotations"]:
        a["area"] += 1
    path = dump(tmp_path / "x.json", d)
    with pytest.raises(DatasetFormatError) as exc:
        load_annotations(path)
    assert len(exc.value.errors) == 3
    assert all(f"annotation {i}" in exc.value.errors[i - 1] for i in (1, 2, 3))


@pytest.mark.parametrize("content", [b"", b'{"images": [', b"\x89PNG\r\n\x1a\n\0\0", b"[1, 2"])
def test_non_json_names_the_file(tmp_path: Path, content: bytes):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(DatasetFormatError, match=str(bad)):
        load_annotations(bad)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
def test_truncated_file_says_so(valid_file: Path, fraction: float):
    data = valid_file.read_bytes()
    valid_file.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DatasetFormatError, match="truncated") as exc:
        load_annotations(valid_file)
    assert str(exc.value).startswith(str(valid_file))


def test_top_level_not_an_object(tmp_path: Path):
    with pytest.raises(DatasetFormatError, match="top level must be a JSON object"):
        load_annotations(dump(tmp_path / "x.json", [1, 2]))


# --------------------------------------------------------------------------------------------
# other datasets' field names, polygons, check=False
# --------------------------------------------------------------------------------------------


def _square(x0, y0, x1, y1) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_kins_names_and_polygons(tmp_path: Path):
    """KINS: amodal polygon in 'segmentation', visible in 'inmodal_seg'/'inmodal_bbox',
    'occluded_rate' for occlude_rate (D2SA/UOAIS spelling)."""
    amodal, inmodal = _square(2, 2, 12, 10), _square(2, 2, 7, 10)
    full = decode_mask(amodal, H, W)
    vis = decode_mask(inmodal, H, W)
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "segmentation": amodal,
        "bbox": [2, 2, 10, 8],
        "area": 80.0,
        "inmodal_seg": inmodal,
        "inmodal_bbox": [2, 2, 5, 8],
        "occluded_rate": 1 - vis.sum() / full.sum(),
    }
    d = {"images": [make_image(1, "a.png", W, H)], "annotations": [ann], "categories": CATS}
    ds = load_annotations(dump(tmp_path / "kins.json", d))
    a = ds.annotation(1)
    assert "inmodal_seg" not in a and "occluded_rate" not in a
    assert isinstance(a["visible_mask"]["counts"], str)  # polygons handed out as RLE
    np.testing.assert_array_equal(ds.visible_mask(1), vis)
    np.testing.assert_array_equal(ds.invisible_mask(1), full & ~vis)
    assert a["occlude_rate"] == ann["occluded_rate"] and a["visible_bbox"] == [2, 2, 5, 8]

    # errors name the field as spelled in the file
    ann["inmodal_seg"] = _square(2, 2, 20, 10)  # sticks far out of the amodal polygon
    with pytest.raises(DatasetFormatError, match="field 'inmodal_seg'"):
        load_annotations(dump(tmp_path / "kins.json", d))


def test_kins2020_and_uoais_names(tmp_path: Path):
    full, vis = rect(2, 12, 3, 15), rect(2, 12, 3, 10)
    ref = make_annotation(1, 1, 1, full, vis)
    kins2020 = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "a_segm": ref["segmentation"],
        "a_bbox": ref["bbox"],
        "a_area": ref["area"],
        "i_segm": ref["visible_mask"],
        "i_bbox": ref["visible_bbox"],
        "occlude_rate": ref["occlude_rate"],
    }
    uoais = dict(ref, id=2, occluded_mask=ref["invisible_mask"], occluded_rate=ref["occlude_rate"])
    del uoais["invisible_mask"], uoais["occlude_rate"]
    d = {
        "images": [make_image(1, "a.png", W, H)],
        "annotations": [kins2020, uoais],
        "categories": CATS,
    }
    ds = load_annotations(dump(tmp_path / "k.json", d))
    for ann_id in (1, 2):
        a = ds.annotation(ann_id)
        for k in ("segmentation", "visible_mask", "bbox", "area", "visible_bbox", "occlude_rate"):
            assert a[k] == ref[k], k
        np.testing.assert_array_equal(ds.full_mask(ann_id), full)
        np.testing.assert_array_equal(ds.invisible_mask(ann_id), full & ~vis)
    assert ds.annotation(2)["invisible_mask"] == ref["invisible_mask"]

    uoais["occluded_mask"] = encode_mask(full)  # S_I overlapping S_V
    with pytest.raises(DatasetFormatError, match="field 'occluded_mask'"):
        load_annotations(dump(tmp_path / "k.json", d))


def test_check_false_derives_missing_fields(tmp_path: Path):
    d = small_dataset()
    for a in d["annotations"]:
        for k in ("bbox", "area", "visible_bbox", "occlude_rate", "iscrowd", "invisible_mask"):
            a.pop(k)
    path = dump(tmp_path / "x.json", d)
    with pytest.raises(DatasetFormatError, match="field 'bbox': missing"):
        load_annotations(path)
    ds = load_annotations(path, check=False)
    a = ds.annotation(1)
    assert a["area"] == 120 and a["bbox"] == [3, 2, 12, 10] and a["iscrowd"] == 0
    assert a["occlude_rate"] == pytest.approx(50 / 120, abs=1e-6)
    np.testing.assert_array_equal(ds.invisible_mask(1), rect(2, 12, 10, 15))


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------


def test_atomic_write_leaves_no_partial_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "annotations" / "train.json"
    write_json_atomic(target, {"old": True})
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)

    with pytest.raises(TypeError):  # fails half-way through serialising
        write_json_atomic(target, {"a": list(range(1000)), "b": object()})
    assert json.loads(target.read_text()) == {"old": True}
    assert os.listdir(target.parent) == ["train.json"]

    with pytest.raises(ValueError):  # NaN is not JSON
        write_json_atomic(target, {"rate": float("nan")})
    assert json.loads(target.read_text()) == {"old": True}

    def boom(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        write_json_atomic(target, {"new": True})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert os.listdir(target.parent) == ["train.json"]

    write_json_atomic(target, {"n": np.int64(3), "x": np.float32(0.5), "m": np.arange(2)})
    assert json.loads(target.read_text()) == {"n": 3, "x": 0.5, "m": [0, 1]}
