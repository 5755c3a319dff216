"""The whole job on the small built-in default, offline: generate the `tiny` dataset, train
the tiny config on it, predict on one of its test images, write the pictures.

    segan quickstart OUT        # OUT/data, OUT/run, OUT/predict/<image>/overlay.png

The test image is the one whose objects are most occluded (largest summed |S_I|), and its
objects' visible masks are the dataset's S_V (what `segan evaluate --visible gt` gives too).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs" / "tiny.yaml"


def pick_test_image(data_dir: str | os.PathLike, split: str = "test") -> tuple[Path, Path]:
    """The split's image with the largest hidden area over its objects (ties: first), and its
    annotation file."""
    from segan.data.coco import load_annotations
    from segan.train.cache import annotation_path

    ann_file = annotation_path(data_dir, split)
    ds = load_annotations(ann_file, root=data_dir)
    best, best_hidden = None, -1
    for iid in ds.image_ids:
        if len(ds.annotations[iid]) < 2:
            continue
        hidden = int(ds.image_masks(iid)[2].sum())
        if hidden > best_hidden:
            best, best_hidden = iid, hidden
    if best is None:
        raise ValueError(f"{ann_file}: no image with two or more objects")
    return ds.image_path(best), ann_file


def quickstart(out_dir: str | os.PathLike, config: str | os.PathLike | None = None,
               device: str | None = "cpu", progress: bool = True) -> dict[str, Any]:
    """Generate, train, predict; returns what was written and how long each step took.

    config: the training config (default configs/tiny.yaml of this checkout); device: where
    the prediction runs (None: CUDA when available).
    An OUT that holds a finished step is reused (generation and training resume, and a
    finished run trains no further), so running it again only predicts again.
    """
    from segan.data.generate import generate
    from segan.data.presets import make_config
    from segan.predict_io import predict_files
    from segan.train import resolve_config, training_loop

    out = Path(out_dir)
    cfg_path = Path(config) if config is not None else DEFAULT_CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no config {cfg_path} (pass --config configs/tiny.yaml from a "
                                "checkout of segan)")
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    data = out / "data"
    generate(data, make_config("tiny"), progress=progress)
    seconds["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    run = out / "run"
    cfg = resolve_config(cfg_path, [], run, resume=True)  # the config's device (tiny: cpu)
    training_loop(cfg, data, run, resume=True, progress=progress)
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    image, ann_file = pick_test_image(data)
    summary = predict_files(run, [image], out / "predict", masks=[ann_file], device=device,
                            progress=progress)
    seconds["predict"] = time.perf_counter() - t
    im = summary["images"][0]
    folder = out / "predict" / im["folder"]
    return {
        "data": str(data), "run": str(run), "image": str(image),
        "overlay": str(folder / im["overlay"]),
        "painted_scene": str(folder / im["painted_scene"]),
        "predictions": str(out / "predict" / "predictions.json"),
        "objects": im["objects"], "layers": im["layers"],
        "seconds": {k: round(float(np.round(v, 1)), 1) for k, v in seconds.items()},
    }
