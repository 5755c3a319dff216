"""Files in and out of `segan predict`: images, visible masks in several forms, and results.

Visible masks S_V (the objects to complete) come as:

- a COCO / segan-coco JSON (any number of images): the `images[]` record whose ``file_name``
  ends the image's path (else whose base name is the image's; a record for another file name
  is refused, and so are two images matching one record). Each of
  its annotations is one object, S_V read from ``visible_mask`` (or KINS ``inmodal_seg`` /
  ``i_segm``) when present, else ``segmentation`` (a plain COCO file's instance masks are the
  visible ones). RLE (compressed or not) or polygons.
- an instance-id PNG (one image): 0 is background, every other value one object (8 or 16 bit
  grey, palette indices, or RGB colours); a binary PNG is one object. An antialiased single
  mask (grey levels only on the rim of its brightest region) is refused, not read as ids.
- one PNG per object (one image): several files, or a folder of them (sorted by name); nonzero
  (or, with an alpha channel that is not all opaque, alpha > 0) is the object.

Every problem raises `MaskFileError` naming the file (and record) and what is wrong.

Outputs in OUT (`write_outputs`):

    predictions.json                 segan-coco: per object segmentation (S_F), visible_mask,
                                     invisible_mask (RLE), depth_layer, score (found masks
                                     only), painted_file; per image the occlusion pairs
    <image stem>/overlay.png         S_V green, predicted S_I magenta, depth layer numbers
    <image stem>/painted_scene.png   the image with each occluded object painted back whole
    <image stem>/object_<k>_full.png, object_<k>_invisible.png   0/255 masks
    <image stem>/object_<k>_painted.png                          RGBA, image frame, alpha = S_F
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segan.data import coco
from segan.data.atomic import write_png_atomic
from segan.pictures import overlay, painted_scene
from segan.prediction import ScenePrediction

MASK_SUFFIXES = (".png",)
VISIBLE_FIELDS = ("visible_mask", *coco.ANNOTATION_ALIASES["visible_mask"])


class MaskFileError(ValueError):
    """A visible-mask input is unreadable, of the wrong size, empty, or malformed."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB (alpha dropped, grey expanded, 16 bit scaled)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image {path}")
    try:
        with Image.open(path) as im:
            return coco.image_rgb(im)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def _read_png(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise MaskFileError(f"{path}: no such mask file")
    try:
        im = Image.open(path)
        im.load()
        return im
    except (UnidentifiedImageError, OSError) as e:
        raise MaskFileError(f"{path}: not a readable image ({e})") from None


def _check_size(path: Path, shape: tuple[int, ...], hw: tuple[int, int], image: str) -> None:
    if tuple(shape[:2]) != tuple(hw):
        raise MaskFileError(f"{path}: mask is {shape[1]}x{shape[0]} (WxH) but the image "
                            f"{image} is {hw[1]}x{hw[0]}")


def read_object_png(path: str | os.PathLike, hw: tuple[int, int], image: str = "") -> np.ndarray:
    """One object's binary mask PNG -> (H, W) bool (nonzero inside; alpha > 0 for a PNG with
    a non-opaque alpha channel)."""
    path = Path(path)
    im = _read_png(path)
    a = np.asarray(im)
    _check_size(path, a.shape, hw, image)
    if im.mode in ("RGBA", "LA") and (a[..., -1] < 255).any():
        m = a[..., -1] > 0
    else:
        m = (a != 0) if a.ndim == 2 else (a[..., :3] != 0).any(-1) if a.ndim == 3 else a != 0
    if not m.any():
        raise MaskFileError(f"{path}: the mask is empty (no nonzero pixel)")
    return m


def read_id_png(path: str | os.PathLike, hw: tuple[int, int], image: str = "") -> np.ndarray:
    """An instance-id PNG -> (N, H, W) bool, one mask per nonzero id (ascending)."""
    path = Path(path)
    im = _read_png(path)
    a = np.asarray(im)
    _check_size(path, a.shape, hw, image)
    if a.ndim == 3:  # colour-coded ids; alpha ignored
        rgb = a[..., :3].astype(np.int64)
        grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
        a = rgb[..., 0] if grey else (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8)
    ids = np.unique(a)
    ids = ids[ids != 0]
    if ids.size == 0:
        raise MaskFileError(f"{path}: the instance-id mask is empty (every pixel is 0, the "
                            "background)")
    if ids.size > 1 and _antialiased(a, ids):
        raise MaskFileError(
            f"{path}: looks like one object's antialiased mask (values {int(ids[0])}..."
            f"{int(ids[-1])} only along the edge of its {int(ids[-1])} region), not an "
            f"instance-id map of {ids.size} objects: save it as 0/255, or put it in a folder "
            "of object PNGs (nonzero is the object)")
    return a[None] == ids[:, None, None]


def _antialiased(ids_map: np.ndarray, ids: np.ndarray) -> bool:
    """Whether an id map is rather one antialiased mask: every pixel of a value between 0 and
    the largest lies within one pixel (8-neighbourhood) of the largest value's region (an id
    map's objects are regions of their own, not a one-pixel rim of another)."""
    top = ids_map == ids[-1]
    near = top.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.zeros_like(top)
            ys = slice(max(dy, 0), top.shape[0] + min(dy, 0))
            yd = slice(max(-dy, 0), top.shape[0] + min(-dy, 0))
            xs = slice(max(dx, 0), top.shape[1] + min(dx, 0))
            xd = slice(max(-dx, 0), top.shape[1] + min(-dx, 0))
            shifted[yd, xd] = top[ys, xs]
            near |= shifted
    rim = (ids_map != 0) & ~top
    return bool(rim.any() and near[rim].all())


def read_json_masks(path: str | os.PathLike, image_name: str, hw: tuple[int, int],
                    single: bool = False) -> np.ndarray:
    """The visible masks of one image from a COCO / segan-coco JSON (module docstring).

    image_name: the image's file name (`match_image_record`); single: one image whose name
    says nothing (an upload: then a JSON with one image record matches it by default).
    Every annotation needs an int ``image_id``; compressed RLE counts are checked.
    Returns (N, H, W) bool, in the file's annotation order.
    """
    path = Path(path)
    try:
        obj = coco.read_json(path)
    except coco.DatasetFormatError as e:
        raise MaskFileError(str(e)) from None
    except OSError as e:
        raise MaskFileError(f"{path}: cannot read ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list) \
            or not isinstance(obj.get("annotations"), list):
        raise MaskFileError(f"{path}: not a COCO file (needs 'images' and 'annotations' lists)")
    rec = match_image_record(path, obj, image_name, single)
    iid = rec["id"]
    base = Path(image_name).name
    H, W = hw
    for fld in ("width", "height"):
        if not _is_id(rec.get(fld)):
            raise MaskFileError(f"{path}: image {iid}: field '{fld}': must be an int (pixels), "
                                f"got {rec.get(fld)!r}")
    if (rec.get("height"), rec.get("width")) != (H, W):
        raise MaskFileError(f"{path}: image {iid} is {rec.get('width')}x{rec.get('height')} (WxH) "
                            f"in the JSON but {image_name} is {W}x{H}")
    masks = []
    for i, ann in enumerate(obj["annotations"]):
        if not isinstance(ann, dict):
            raise MaskFileError(f"{path}: annotations[{i}]: not a JSON object")
        if not _is_id(ann.get("image_id")):
            fault = "missing" if "image_id" not in ann else "not an int"
            raise MaskFileError(f"{path}: annotation {ann.get('id', f'[{i}]')}: field "
                                f"'image_id': {fault} (which image its mask belongs to)")
        if ann["image_id"] != iid:
            continue
        label = f"annotation {ann.get('id', f'[{i}]')} (image {iid})"
        fld = next((f for f in VISIBLE_FIELDS if ann.get(f) is not None), "segmentation")
        if ann.get(fld) is None:
            raise MaskFileError(f"{path}: {label}: no visible mask (field 'visible_mask' or "
                                "'segmentation')")
        try:
            m = coco.decode_mask(ann[fld], H, W, check=True)
        except (ValueError, TypeError) as e:
            raise MaskFileError(f"{path}: {label}: field '{fld}': {e}") from None
        if not m.any():
            raise MaskFileError(f"{path}: {label}: field '{fld}': the mask is empty")
        masks.append(m)
    if not masks:
        raise MaskFileError(f"{path}: image {iid} ({base}) has no annotations")
    return np.stack(masks)


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def match_image_record(path: Path, obj: dict, image_name: str, single: bool = False) -> dict:
    """The ``images[]`` record of a COCO JSON that describes the image file `image_name`: the
    one whose ``file_name`` ends the image's path, else the one with the same base name; with
    `single` (one image whose name says nothing, e.g. an upload), a JSON's only record.
    Raises MaskFileError for none, several, a record without an int id, or an id that
    several records share (their masks could not be told apart)."""
    images = [r for r in obj["images"] if isinstance(r, dict)]
    base = Path(image_name).name
    full = "/" + Path(image_name).resolve().as_posix()
    named = [r for r in images if isinstance(r.get("file_name"), str)]
    # the image's path ends with file_name (e.g. images/<scene>/00000.png), else same base name
    match = [r for r in named if full.endswith("/" + r["file_name"].lstrip("/"))]
    if not match:
        match = [r for r in named if Path(r["file_name"]).name == base]
    if not match and single and len(images) == 1:
        match = images
    if len(match) != 1:
        names = [r.get("file_name") for r in images][:10]
        what = "no images[] record" if not match else f"{len(match)} images[] records"
        raise MaskFileError(f"{path}: {what} with file_name {base!r} (file names: {names})")
    rec = match[0]
    iid = rec.get("id")
    if not _is_id(iid):
        raise MaskFileError(f"{path}: images[] record {rec.get('file_name')!r}: field 'id': "
                            f"{'missing' if iid is None else 'not an int'}")
    same = sum(1 for r in images if r.get("id") == iid)
    if same > 1:
        raise MaskFileError(f"{path}: image {iid}: field 'id': {same} images[] records have "
                            "this id, so their annotations cannot be told apart")
    return rec


def masks_for_images(sources: Sequence[str | os.PathLike], images: Sequence[str | os.PathLike],
                     sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """The visible masks of each image from the ``--masks`` sources (module docstring):
    one JSON for any number of images; PNG sources (one id PNG, several object PNGs, or a
    folder of object PNGs) for a single image. Returns per image (N, H, W) bool."""
    paths = [Path(s) for s in sources]
    if not paths:
        raise MaskFileError("no mask source given")
    jsons = [p for p in paths if p.suffix.lower() == ".json"]
    if jsons:
        if len(paths) != 1:
            raise MaskFileError(f"give one JSON mask file alone, got {[str(p) for p in paths]}")
        if not jsons[0].is_file():
            raise MaskFileError(f"{jsons[0]}: no such mask file")
        obj_masks = [read_json_masks(jsons[0], str(img), hw)
                     for img, hw in zip(images, sizes, strict=True)]
        _one_record_per_image(jsons[0], images)
        return obj_masks
    if len(images) != 1:
        raise MaskFileError("PNG masks describe one image: with several images give the masks "
                            "as one COCO JSON (matched by file name), or run predict per image")
    hw, name = sizes[0], str(images[0])
    if len(paths) == 1 and paths[0].is_dir():
        files = sorted(p for p in paths[0].iterdir()
                       if p.is_file() and p.suffix.lower() in MASK_SUFFIXES)
        if not files:
            raise MaskFileError(f"{paths[0]}: folder holds no PNG masks")
        return [np.stack([read_object_png(f, hw, name) for f in files])]
    if len(paths) == 1:
        return [read_id_png(paths[0], hw, name)]
    return [np.stack([read_object_png(p, hw, name) for p in paths])]


def _one_record_per_image(path: Path, images: Sequence[str | os.PathLike]) -> None:
    """Two images given that match the same images[] record would get the same masks."""
    obj = coco.read_json(path)
    seen: dict[int, str] = {}
    for img in images:
        iid = match_image_record(path, obj, str(img))["id"]
        if iid in seen:
            raise MaskFileError(f"{path}: images {seen[iid]} and {img} both match image {iid} "
                                "(the same file name): give the JSON file names with their "
                                "folders (a/x.png, b/x.png), or run predict per image")
        seen[iid] = str(img)


# ----------------------------------------------------------------------------- outputs


def write_image_outputs(folder: str | os.PathLike, image: np.ndarray, scene: ScenePrediction
                        ) -> dict[str, Any]:
    """One image's PNGs in `folder`; returns their names relative to it."""
    folder = Path(folder)
    files: dict[str, Any] = {"overlay": "overlay.png", "painted_scene": "painted_scene.png",
                             "object_files": []}
    write_png_atomic(folder / "overlay.png", overlay(image, scene))
    write_png_atomic(folder / "painted_scene.png", painted_scene(image, scene))
    for k in range(len(scene)):
        names = {"full": f"object_{k}_full.png", "invisible": f"object_{k}_invisible.png",
                 "painted": f"object_{k}_painted.png"}
        write_png_atomic(folder / names["full"], scene.full_masks[k] * np.uint8(255))
        write_png_atomic(folder / names["invisible"], scene.invisible_masks[k] * np.uint8(255))
        write_png_atomic(folder / names["painted"], scene.painted[k])
        files["object_files"].append(names)
    return files


def unique_stems(images: Sequence[str | os.PathLike]) -> list[str]:
    """One output folder name per image: its stem, suffixed _2, _3 ... on a clash."""
    taken = {Path(p).stem for p in images}
    used: set[str] = set()
    out = []
    for p in images:
        stem = name = Path(p).stem
        k = 1
        while name in used or (k > 1 and name in taken):  # a/x, b/x, x_2: x, x_3, x_2
            k += 1
            name = f"{stem}_{k}"
        used.add(name)
        out.append(name)
    return out


def write_predictions_json(path: str | os.PathLike, images: Sequence[str | os.PathLike],
                           stems: Sequence[str], scenes: Sequence[ScenePrediction],
                           info: dict[str, Any] | None = None) -> Path:
    """All images' predictions as one segan-coco file (validated unless an object has fewer
    than the format's 10 visible pixels)."""
    image_recs, anns = [], []
    ann_id = 1
    small = False
    for i, (img, stem, scene) in enumerate(zip(images, stems, scenes, strict=True), start=1):
        H, W = scene.image_hw
        ids = list(range(ann_id, ann_id + len(scene)))
        for k in range(len(scene)):
            small |= int(scene.visible_masks[k].sum()) < coco.MIN_VISIBLE_PIXELS
            ann = coco.make_annotation(ids[k], i, 1, scene.full_masks[k],
                                       scene.visible_masks[k], min_visible=1)
            ann["depth_layer"] = int(scene.layers[k])
            if scene.scores is not None:
                ann["score"] = round(float(scene.scores[k]), 6)
            ann["painted_file"] = f"{stem}/object_{k}_painted.png"
            anns.append(ann)
        pairs = [(ids[q], ids[p]) for q, p in scene.occlusion_pairs]
        image_recs.append(coco.make_image(i, Path(img).name, W, H, occlusion=pairs))
        ann_id += len(scene)
    info = dict(info or {})
    info.setdefault("description", "segan predictions")
    return coco.write_annotations(path, image_recs, anns, [{"id": 1, "name": "object"}],
                                  info=info, check=not small)


def predict_files(checkpoint: str | os.PathLike | None, images: Sequence[str | os.PathLike],
                  out_dir: str | os.PathLike, masks: Sequence[str | os.PathLike] | None = None,
                  visible_segmenter: str | os.PathLike | None = None, device: str | None = None,
                  progress: bool = True, onnx: str | os.PathLike | None = None
                  ) -> dict[str, Any]:
    """`segan predict`: every image through `SeganPredictor`, outputs written to OUT (module
    docstring). checkpoint: as `SeganPredictor.from_checkpoint`; None: the package's bundled
    model (`SeganPredictor.pretrained`). onnx: an ONNX export run by onnxruntime instead
    (`SeganPredictor.from_onnx`; checkpoint must then be None). masks: the ``--masks``
    sources, or None to find the objects with the visible segmenter (`visible_segmenter`, else
    the bundle's own when the bundled model is used and has one). Every input is read and
    checked before the model is loaded. Returns a summary."""
    import time

    from tqdm import tqdm

    from segan.inference import NO_SEGMENTER_MESSAGE, SeganPredictor

    if not images:
        raise ValueError("no image given")
    if onnx is not None and checkpoint is not None:
        raise ValueError("give either --checkpoint or --onnx, not both")
    bundled_segmenter = False
    if checkpoint is None and onnx is None:
        from segan.bundle import has_visible_segmenter, require_package_bundle

        # before any work: one line when the package has none
        bundled_segmenter = has_visible_segmenter(require_package_bundle())
    if masks is None and visible_segmenter is None and not bundled_segmenter:
        raise ValueError("no --masks given; " + NO_SEGMENTER_MESSAGE)
    start = time.perf_counter()
    arrays = [read_image(p) for p in images]
    sizes = [a.shape[:2] for a in arrays]
    visible = masks_for_images(masks, images, sizes) if masks else [None] * len(images)
    if onnx is not None:
        if device not in (None, "cpu"):
            raise ValueError("--onnx runs on the CPU (onnxruntime): leave --device out")
        predictor = SeganPredictor.from_onnx(onnx, visible_segmenter)
    elif checkpoint is None:
        predictor = SeganPredictor.pretrained(device, visible_segmenter)
    else:
        predictor = SeganPredictor.from_checkpoint(checkpoint, device=device,
                                                   visible_segmenter=visible_segmenter)
    out = Path(out_dir)
    stems = unique_stems(images)
    scenes, per_image = [], []
    for path, stem, image, vis in tqdm(list(zip(images, stems, arrays, visible, strict=True)),
                                       desc="predict", unit="img", disable=not progress):
        scene = predictor.predict(image, vis)
        scenes.append(scene)
        files = write_image_outputs(out / stem, image, scene)
        per_image.append({"image": str(path), "folder": stem, "objects": len(scene),
                          "occlusion_pairs": len(scene.occlusion_pairs),
                          "layers": int(scene.layers.max()) + 1 if len(scene) else 0, **files})
    write_predictions_json(out / "predictions.json", images, stems, scenes,
                           info={"checkpoint": predictor.identity,
                                 "visible_masks": "given" if masks else "visible segmenter"})
    return {"out": str(out), "device": str(predictor.device), "images": per_image,
            "seconds": round(time.perf_counter() - start, 2)}
