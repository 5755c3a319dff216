"""The bundled model's golden outputs (issue 13): what `SeganPredictor.pretrained()` predicts on
the CPU for two real generated images, stored so that tests/test_bundle_golden.py can check
that the shipped bundle, and every line of code between an image and a prediction, still
predict the same; and the README's picture of `segan predict` with the bundled model.

    python scripts/bundle_golden.py           # regenerate both (after a new bundle)
    python scripts/bundle_golden.py --check   # this machine's predictions against them

tests/data/bundle_golden/ (GOLDEN):

    inputs.json       COCO JSON of the images and the visible masks S_V of their objects
                      (compressed RLE in ``visible_mask``; `segan predict IMAGE --masks
                      inputs.json` reads it), and in ``info`` how the images were made
    <name>.png        the images, RGB
    expected.json     the bundle the outputs belong to (manifest and file sha256s) and per image
                      the predicted S_F (RLE), occlusion pairs and depth layers
    expected/<stem>_full_probs.png  (N H, W) uint16: object k's S_F probability x 65535,
                      rounded, in rows k H .. (k + 1) H - 1
    expected/<stem>_painted.png     (N H, W, 3) uint8: object k's painted RGB on its S_F, 0
                      elsewhere, stacked as above

The README's picture (README_PICTURE) is the overlay.png that the README's command writes:

    segan predict docs/images/predict_kitchen.png --masks docs/images/predict_kitchen_masks.json \
        --out OUT

Regeneration re-uses the stored inputs; they were made once from generated datasets:

    segan generate /tmp/g --preset diverse --scenes 6 --views 2 --seed 11 --size 192
    python scripts/bundle_golden.py --inputs-from /tmp/g \
        --image s005_kitchen/00001.png --image s004_living_room/00001.png
    segan generate /tmp/d --preset dyce --scenes 11 --views 1 --seed 11 --size 320
    python scripts/bundle_golden.py --readme-from /tmp/d --image s010_kitchen/00000.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "bundle_golden"
REGENERATE = "python scripts/bundle_golden.py"
FORMAT = "segan-bundle-golden"

README_IMAGE = ROOT / "docs" / "images" / "predict_kitchen.png"
README_MASKS = ROOT / "docs" / "images" / "predict_kitchen_masks.json"
README_PICTURE = ROOT / "docs" / "images" / "predict_kitchen_overlay.png"
PROB_SCALE = 65535  # S_F probabilities stored as uint16: rounding error at most 7.6e-6

# How far a prediction may drift from the stored one and still be the same model. Threads,
# CPUs and library builds reorder float sums. Measured on this project's 2-core AMD EPYC
# (AVX-512) against outputs it wrote with 1 thread: `--check --threads 2`, and `--check` with
# ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 or =default / =SSE41 (another CPU's
# kernels): probabilities within 9.4e-6 (7.6e-6 of it the storage's rounding), painted RGB
# within 1 level (mean 1.3e-4), no mask pixel, pair or layer changed; the README's picture
# redrawn with 0 to 6 of its 409,600 pixels changed (a pixel of a mask's edge, SSE). The limits
# leave room for other machines and still catch a real change of the model or of the code.
PICTURE_TOL = 0.002  # share of the README picture's pixels that may differ
FULL_IOU_MIN = 0.99  # per object, predicted S_F against the stored one
PROB_TOL = 1e-3  # max abs difference of S_F probabilities
PAINT_MEAN_TOL = 0.05  # mean abs difference of painted RGB, uint8 levels, where both S_F
PAINT_MAX_TOL = 2  # max abs difference of painted RGB, uint8 levels, where both S_F


def bundle_identity(manifest: Path | None = None) -> dict[str, Any]:
    """The installed bundle (default: the package's) as recorded in expected.json."""
    from segan.bundle import read_manifest, require_package_bundle
    from segan.data.atomic import file_sha256

    mpath = require_package_bundle() if manifest is None else manifest
    files = read_manifest(mpath)["files"]
    return {"name": mpath.stem, "manifest_sha256": file_sha256(mpath),
            "files": [{"path": f["path"], "sha256": f["sha256"]} for f in files]}


def stale_message(expected: dict[str, Any], installed: dict[str, Any],
                  where: Path = GOLDEN / "expected.json") -> str | None:
    """One line when `expected` belongs to another bundle than `installed`, else None."""
    want = expected.get("bundle") or {}
    if want.get("manifest_sha256") != installed["manifest_sha256"]:
        what = (f"bundle manifest sha256 {str(want.get('manifest_sha256'))[:16]}..., the "
                f"installed bundle's is {installed['manifest_sha256'][:16]}...")
    elif want.get("files") != installed["files"]:
        what = "other weight files than the installed bundle's (their sha256s differ)"
    else:
        return None
    rel = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    return f"{rel} belongs to {what}: regenerate the golden outputs with `{REGENERATE}`"


def load_inputs(golden: Path = GOLDEN) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, image (H, W, 3) uint8, S_V (N, H, W) bool) per stored image, read as
    `segan predict --masks inputs.json` reads them."""
    from segan.predict_io import masks_for_images, read_image

    records = json.loads((golden / "inputs.json").read_text(encoding="utf-8"))["images"]
    paths = [golden / r["file_name"] for r in records]
    images = [read_image(p) for p in paths]
    masks = masks_for_images([golden / "inputs.json"], paths, [im.shape[:2] for im in images])
    return [(p.name, im, m) for p, im, m in zip(paths, images, masks, strict=True)]


def predict_all(predictor: Any, golden: Path = GOLDEN) -> list[tuple[str, Any]]:
    """(file name, ScenePrediction) for each stored input."""
    return [(name, predictor.predict(image, visible))
            for name, image, visible in load_inputs(golden)]


def _stack(planes: np.ndarray) -> np.ndarray:
    return planes.reshape(-1, *planes.shape[2:])  # (N, H, W, ...) -> (N H, W, ...)


def readme_overlay(out: Path) -> Path:
    """The README's command (module docstring) with its output folder `out`: the path of the
    overlay.png it wrote."""
    from segan.predict_io import predict_files

    summary = predict_files(None, [README_IMAGE], out, masks=[README_MASKS], device="cpu",
                            progress=False)
    image = summary["images"][0]
    return out / image["folder"] / image["overlay"]


def picture_diff() -> float:
    """The share of README_PICTURE's pixels that the README's command now draws otherwise."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        got = np.asarray(Image.open(readme_overlay(Path(tmp) / "out")).convert("RGB"))
    want = np.asarray(Image.open(README_PICTURE).convert("RGB"))
    if got.shape != want.shape:
        return 1.0
    return float((got != want).any(-1).mean())


def write_readme_picture() -> Path:
    import tempfile

    from segan.data.atomic import write_bytes_atomic

    with tempfile.TemporaryDirectory() as tmp:
        write_bytes_atomic(README_PICTURE, readme_overlay(Path(tmp) / "out").read_bytes())
    return README_PICTURE


def write_expected(predictor: Any, golden: Path = GOLDEN) -> Path:
    """The predictions on the stored inputs -> expected.json and expected/*.png."""
    import torch

    from segan.data.atomic import png_bytes, write_bytes_atomic
    from segan.data.coco import encode_mask

    images = []
    for name, scene in predict_all(predictor, golden):
        stem = Path(name).stem
        probs = np.round(scene.full_probs * PROB_SCALE).astype(np.uint16)
        painted = np.where(scene.full_masks[..., None], scene.painted[..., :3], 0)
        files = {"full_probs_file": f"expected/{stem}_full_probs.png",
                 "painted_file": f"expected/{stem}_painted.png"}
        write_bytes_atomic(golden / files["full_probs_file"], png_bytes(_stack(probs), 9))
        write_bytes_atomic(golden / files["painted_file"],
                           png_bytes(_stack(painted.astype(np.uint8)), 9))
        images.append({"file_name": name, "objects": len(scene),
                       "full_masks": [encode_mask(m) for m in scene.full_masks],
                       "occlusion_pairs": [list(p) for p in scene.occlusion_pairs],
                       "layers": scene.layers.tolist(), **files})
    expected = {
        "format": FORMAT, "version": 1, "regenerate": REGENERATE,
        "bundle": bundle_identity(Path(predictor.identity["path"])),
        "written_on": {"cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "images": images}
    path = golden / "expected.json"
    write_bytes_atomic(path, (json.dumps(expected, indent=1) + "\n").encode())
    return path


def read_expected(golden: Path = GOLDEN) -> dict[str, Any]:
    path = golden / "expected.json"
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no golden outputs; write them with `{REGENERATE}`") from None
    if expected.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return expected


def compare(scene: Any, want: dict[str, Any], golden: Path = GOLDEN) -> dict[str, Any]:
    """One image's prediction against its stored record: the measured differences."""
    from PIL import Image

    from segan.data.coco import decode_mask

    n, (H, W) = len(scene), scene.image_hw
    if n != want["objects"]:
        raise ValueError(f"{want['file_name']}: {n} objects predicted, {want['objects']} stored")
    full = np.stack([decode_mask(r, H, W) for r in want["full_masks"]])
    probs = np.asarray(Image.open(golden / want["full_probs_file"])).reshape(n, H, W)
    painted = np.asarray(Image.open(golden / want["painted_file"])).reshape(n, H, W, 3)
    inter = (full & scene.full_masks).sum((1, 2))
    union = (full | scene.full_masks).sum((1, 2))
    both = full & scene.full_masks
    paint_diff = np.abs(scene.painted[..., :3].astype(int) - painted.astype(int))[both]
    return {"file_name": want["file_name"],
            "min_full_iou": float((inter / np.maximum(union, 1)).min()),
            "max_prob_diff": float(np.abs(scene.full_probs - probs / PROB_SCALE).max()),
            "mean_paint_diff": float(paint_diff.mean()),
            "max_paint_diff": int(paint_diff.max()),
            "same_pairs": [list(p) for p in scene.occlusion_pairs] == want["occlusion_pairs"],
            "same_layers": scene.layers.tolist() == want["layers"]}


def failures(diff: dict[str, Any]) -> list[str]:
    """What of `compare`'s result is outside the tolerances, as readable lines."""
    name, bad = diff["file_name"], []
    if diff["min_full_iou"] < FULL_IOU_MIN:
        bad.append(f"{name}: an object's S_F IoU with the stored one is "
                   f"{diff['min_full_iou']:.4f} < {FULL_IOU_MIN}")
    if diff["max_prob_diff"] > PROB_TOL:
        bad.append(f"{name}: S_F probabilities differ by up to {diff['max_prob_diff']:.4g} "
                   f"> {PROB_TOL}")
    if diff["mean_paint_diff"] > PAINT_MEAN_TOL or diff["max_paint_diff"] > PAINT_MAX_TOL:
        bad.append(f"{name}: painted RGB differs by {diff['mean_paint_diff']:.3g} levels on "
                   f"average (limit {PAINT_MEAN_TOL}), {diff['max_paint_diff']} at most "
                   f"(limit {PAINT_MAX_TOL})")
    for what in ("pairs", "layers"):
        if not diff[f"same_{what}"]:
            bad.append(f"{name}: other occlusion {what} than the stored ones")
    return bad


def write_inputs(data: Path, file_names: list[str], images: list[Path], json_path: Path
                 ) -> Path:
    """Copy the images `file_names` of a `segan generate` folder to `images` and their S_V
    into the COCO JSON `json_path` (once: the outputs are regenerated from these)."""
    from segan.data.atomic import png_bytes, write_bytes_atomic
    from segan.data.coco import encode_mask, load_annotations

    gen = json.loads((data / "generation.json").read_text(encoding="utf-8"))
    made_by = (f"segan generate DIR --preset {gen['preset']} --scenes {len(gen['scenes'])} "
               f"--views {gen['views_per_scene']} --seed {gen['seed']} --size {gen['width']}")
    found: dict[str, tuple[Any, int]] = {}
    for split in ("train", "val", "test"):
        if (data / "annotations" / f"{split}.json").is_file():
            ds = load_annotations(data / "annotations" / f"{split}.json", root=data)
            found.update({ds.images[i]["file_name"]: (ds, i) for i in ds.image_ids})
    records, anns = [], []
    for image_id, (fname, out) in enumerate(zip(file_names, images, strict=True), start=1):
        if fname not in found:
            raise ValueError(f"{data}: no image {fname!r} in its annotations")
        ds, iid = found[fname]
        image, visible = ds.load_image(iid), ds.image_masks(iid)[1]
        write_bytes_atomic(out, png_bytes(image, 9))
        records.append({"id": image_id, "file_name": out.name, "width": image.shape[1],
                        "height": image.shape[0], "source": fname})
        anns += [{"id": len(anns) + k + 1, "image_id": image_id, "category_id": 1,
                  "visible_mask": encode_mask(m)} for k, m in enumerate(visible)]
    obj = {"info": {"description": "visible masks S_V (field visible_mask) of images made by "
                    "`segan generate`", "made_by": made_by},
           "images": records, "annotations": anns,
           "categories": [{"id": 1, "name": "object"}]}
    write_bytes_atomic(json_path, (json.dumps(obj, indent=1) + "\n").encode())
    return json_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare this machine's predictions with the stored ones")
    ap.add_argument("--inputs-from", type=Path, default=None, metavar="DATA",
                    help="first replace the stored inputs by images of this `segan generate` "
                    "folder (--image)")
    ap.add_argument("--readme-from", type=Path, default=None, metavar="DATA",
                    help="first replace the README's example image and masks by an image of "
                    "this `segan generate` folder (--image)")
    ap.add_argument("--image", action="append", default=[], metavar="FILE_NAME",
                    help="with --inputs-from or --readme-from: an image's file_name there "
                    "(repeatable)")
    # one thread by default: the stored bytes then do not depend on the machine's core count
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--golden", type=Path, default=GOLDEN, metavar="DIR",
                    help="the golden folder (default tests/data/bundle_golden)")
    args = ap.parse_args(argv)
    import torch

    from segan.bundle import BundleError
    from segan.inference import SeganPredictor

    torch.set_num_threads(args.threads)
    if args.inputs_from is not None and args.readme_from is not None:
        ap.error("give --inputs-from or --readme-from, not both")
    if args.inputs_from is not None:
        if not args.image:
            ap.error("--inputs-from needs --image FILE_NAME")
        images = [args.golden / f.replace("/", "_") for f in args.image]
        path = write_inputs(args.inputs_from, args.image, images, args.golden / "inputs.json")
        print(f"inputs: {path}")
    if args.readme_from is not None:
        if len(args.image) != 1:
            ap.error("--readme-from needs one --image FILE_NAME")
        path = write_inputs(args.readme_from, args.image, [README_IMAGE], README_MASKS)
        print(f"README example: {path}")
    try:
        predictor = SeganPredictor.pretrained("cpu")
        if not args.check:
            print(f"expected outputs: {write_expected(predictor, args.golden)}")
            print(f"README picture: {write_readme_picture()}")
            return 0
        expected = read_expected(args.golden)
        stale = stale_message(expected, bundle_identity(), args.golden / "expected.json")
        if stale:
            print(f"bundle_golden: {stale}", file=sys.stderr)
            return 1
    except (BundleError, ValueError) as e:
        print(f"bundle_golden: {e}", file=sys.stderr)
        return 2
    bad = []
    stored = {want["file_name"]: want for want in expected["images"]}
    for name, scene in predict_all(predictor, args.golden):
        try:
            if name not in stored:
                raise ValueError(f"{name}: no stored outputs")
            diff = compare(scene, stored[name], args.golden)
        except ValueError as e:
            bad.append(str(e))
            continue
        print(json.dumps(diff))
        bad += failures(diff)
    picture = picture_diff()
    print(json.dumps({"file_name": README_PICTURE.name, "differing_pixels": picture}))
    if picture > PICTURE_TOL:
        bad.append(f"{README_PICTURE.name}: {picture:.2%} of its pixels differ from what the "
                   f"README's command draws now (limit {PICTURE_TOL:.2%})")
    print(f"{torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} cores, torch {torch.__version__}")
    for line in bad:
        print(f"bundle_golden: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
