"""Photographs from scikit-image's bundled ``skimage/data`` images, split by pool: the *train*
pool crops only the left half of a photograph, the *test* pool only its right half."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from segan.scene.textures.noise import Gen, _u8

PHOTO_POOLS = ("train", "test")
# greyscale surface photographs, tinted before use
SURFACE_PHOTOS = ("brick.png", "grass.png", "gravel.png")
# pictures for frames on the walls
ART_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "hubble_deep_field.jpg", "camera.png", "moon.png", "retina.jpg", "color.png",
)


@lru_cache(maxsize=1)
def _skimage_data_dir() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "data"
    return d if d.is_dir() else None


@lru_cache(maxsize=32)
def _load_photo(name: str) -> np.ndarray | None:
    """An image from skimage's data folder as float RGB in [0, 1], or None if unavailable."""
    d = _skimage_data_dir()
    if d is None or not (d / name).is_file():
        return None
    from PIL import Image

    with Image.open(d / name) as im:
        arr = np.asarray(im.convert("RGB"), np.float64) / 255.0
    return arr


def available_photos(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if _load_photo(n) is not None)


def photo_crop(
    name: str, pool: str, r: Gen, size: int, frac: float, aspect: float = 1.0
) -> tuple[np.ndarray, str]:
    """Crop from the pool's half of a photograph (train: left half, test: right half), resized
    to ``size`` columns by ``size / aspect`` rows; returns the image and a label for the name."""
    if pool not in PHOTO_POOLS:
        raise ValueError(f"photo_pool must be one of {PHOTO_POOLS}, got {pool!r}")
    from PIL import Image

    img = _load_photo(name)
    assert img is not None
    h, w = img.shape[:2]
    half = w // 2
    x_lo = 0 if pool == "train" else half
    ch = int(min(h, half / aspect) * frac)
    cw = int(ch * aspect)
    x0 = x_lo + int(r.integers(0, half - cw + 1))
    y0 = int(r.integers(0, h - ch + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    out_w = size
    out_h = max(8, int(round(size / aspect)))
    pil = Image.fromarray(_u8(crop)).resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(pil, np.float64) / 255.0, f"{x0},{y0},{cw}x{ch}->{out_w}x{out_h}"
