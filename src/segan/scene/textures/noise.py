"""Value noise and fBm, pixel grids and the colour helpers the textures share."""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

Gen = np.random.Generator
RGB = tuple[float, float, float]


@lru_cache(maxsize=64)
def _interp_weights(size: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice indices (i0, i1) and smoothstep weight t of ``size`` samples of a periodic
    lattice of ``cells`` points."""
    x = (np.arange(size) + 0.5) * cells / size - 0.5
    i0 = np.floor(x).astype(int)
    t = x - i0
    return i0 % cells, (i0 + 1) % cells, t * t * (3 - 2 * t)


def noise(r: Gen, size: int, cells: tuple[int, int]) -> np.ndarray:
    """Tileable value noise in [0, 1], shape (size, size); ``cells`` = lattice (rows, cols).

    Separable gathers rather than matrix products: BLAS threading costs more than the maths
    at these sizes."""
    g = r.random(cells)
    c0, c1, ct = _interp_weights(size, cells[1])
    g = g[:, c0] * (1 - ct) + g[:, c1] * ct
    r0, r1, rt = _interp_weights(size, cells[0])
    return g[r0] * (1 - rt)[:, None] + g[r1] * rt[:, None]


def fbm(r: Gen, size: int, cells: tuple[int, int] = (4, 4), octaves: int = 4) -> np.ndarray:
    """Fractal sum of noise octaves, normalised to [0, 1]."""
    out = np.zeros((size, size))
    amp = 1.0
    for k in range(octaves):
        c = (min(cells[0] << k, size), min(cells[1] << k, size))
        out += amp * noise(r, size, c)
        amp *= 0.5
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-9)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (v) and column (u) coordinates in [0, 1)."""
    t = np.arange(size) / size
    return t[:, None] * np.ones((1, size)), np.ones((size, 1)) * t[None, :]


def _mix(a: RGB | np.ndarray, b: RGB | np.ndarray, t: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a + (b - a) * t[..., None]


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def hsv(h: float, s: float, v: float) -> RGB:
    return colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))


def _shade(c: RGB, f: float) -> RGB:
    return tuple(float(np.clip(x * f, 0, 1)) for x in c)  # type: ignore[return-value]


def _hex(c: RGB) -> str:
    return "".join(f"{int(round(255 * np.clip(x, 0, 1))):02x}" for x in c)
