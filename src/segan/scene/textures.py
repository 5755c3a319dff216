"""Procedural and photographic textures (numpy only, a few milliseconds each).

Every texture is drawn from its own generator seeded from the scene's rng, and the
:class:`Material` name spells out the kind, the parameters and that seed, so a name identifies
its pixels exactly and scenes built from different rngs share no procedural texture.

Photographs (optional, from scikit-image's bundled ``skimage/data`` images) are split by
pool: the *train* pool only ever crops the left half of a photograph and the *test* pool only
its right half, so train and test scenes share no photographic pixel either. Their names carry
the pool, the photograph, the crop and the tint.
"""

from __future__ import annotations

import colorsys
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from segan.scene.types import Material

Gen = np.random.Generator
RGB = tuple[float, float, float]

PHOTO_POOLS = ("train", "test")
# greyscale surface photographs, tinted before use
SURFACE_PHOTOS = ("brick.png", "grass.png", "gravel.png")
# pictures for frames on the walls
ART_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "hubble_deep_field.jpg", "camera.png", "moon.png", "retina.jpg", "color.png",
)


# ---------------------------------------------------------------------------------------------
# Noise


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


# ---------------------------------------------------------------------------------------------
# Texture generators: (rng, size, parameters) -> float image (size, size, 3) in [0, 1]


def tex_painted(r: Gen, size: int, color: RGB, amount: float = 0.04) -> np.ndarray:
    """Flat paint with a faint roller mottle."""
    n = fbm(r, size, (4, 4), 4) - 0.5
    return np.asarray(color) * (1 + amount * n)[..., None]


def tex_wood(r: Gen, size: int, color: RGB, planks: int = 0) -> np.ndarray:
    """Grain running along u (image columns); optional planks for floors."""
    v, u = _grid(size)
    streak = noise(r, size, (64, 2)) * 0.6 + noise(r, size, (128, 4)) * 0.4
    warp = fbm(r, size, (2, 2), 3)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (v * r.integers(6, 14) + 1.5 * warp))
    grain = 0.55 * streak + 0.45 * rings ** 3
    dark = _shade(color, 0.6)
    img = _mix(dark, color, 1 - 0.7 * grain)
    if planks:
        row = np.floor(v * planks).astype(int)
        tint = 1 + 0.12 * (r.random(planks) - 0.5)
        img *= tint[row][..., None]
        seam = np.abs(v * planks - np.round(v * planks)) < 0.6 * planks / size
        offsets = r.random(planks)
        end = np.abs(((u + offsets[row]) % 0.5) - 0.25) > 0.249
        img[seam | end] *= 0.55
    return img


def tex_fabric(r: Gen, size: int, color: RGB, threads: int = 48) -> np.ndarray:
    """Plain weave: alternating over/under threads with slub noise."""
    v, u = _grid(size)
    wx = np.sin(np.pi * u * threads * 2) ** 2
    wy = np.sin(np.pi * v * threads * 2) ** 2
    checker = (np.floor(u * threads * 2) + np.floor(v * threads * 2)) % 2
    weave = np.where(checker > 0, wx, wy)
    slub = noise(r, size, (size // 4, 8)) - 0.5
    shade = 0.82 + 0.18 * weave + 0.08 * slub + 0.05 * (fbm(r, size, (4, 4), 3) - 0.5)
    return np.asarray(color) * shade[..., None]


def tex_marble(r: Gen, size: int, base: RGB, vein: RGB) -> np.ndarray:
    v, u = _grid(size)
    turb = fbm(r, size, (3, 3), 5)
    k = int(r.integers(1, 4))
    s = np.abs(np.sin(np.pi * (k * (u + v) + 4.0 * turb)))
    veins = (1 - s) ** 8
    cloud = fbm(r, size, (6, 6), 3)
    return _mix(base, vein, np.clip(veins + 0.15 * cloud, 0, 1))


def tex_granite(r: Gen, size: int, base: RGB) -> np.ndarray:
    """Speckled stone (counter tops)."""
    cols = np.array([base, _shade(base, 0.45), _shade(base, 1.35), _shade(base, 0.75)])
    idx = np.digitize(noise(r, size, (size // 2, size // 2)), [0.55, 0.7, 0.85])
    img = cols[idx]
    return img * (0.9 + 0.2 * fbm(r, size, (4, 4), 3))[..., None]


def tex_brushed(r: Gen, size: int, color: RGB) -> np.ndarray:
    """Brushed metal: fine streaks along u."""
    streak = noise(r, size, (size, 4)) * 0.5 + noise(r, size, (size // 2, 16)) * 0.5
    return np.asarray(color) * (0.85 + 0.25 * streak)[..., None]


def tex_stripes(r: Gen, size: int, colors: np.ndarray, count: int, vertical: bool) -> np.ndarray:
    v, u = _grid(size)
    t = u if vertical else v
    widths = r.random(len(colors)) + 0.5
    edges = np.cumsum(widths) / widths.sum()
    idx = np.searchsorted(edges, (t * count) % 1.0, side="right")
    return colors[np.minimum(idx, len(colors) - 1)]


def tex_checks(r: Gen, size: int, a: RGB, b: RGB, count: int) -> np.ndarray:
    """Gingham: two translucent stripe sets crossing."""
    v, u = _grid(size)
    su = (np.floor(u * count * 2) % 2).astype(float)
    sv = (np.floor(v * count * 2) % 2).astype(float)
    return _mix(a, b, 0.5 * (su + sv))


def tex_dots(r: Gen, size: int, ground: RGB, dot: RGB, count: int, radius: float) -> np.ndarray:
    v, u = _grid(size)
    fu, fv = (u * count) % 1.0 - 0.5, (v * count) % 1.0 - 0.5
    # staggered rows read as a printed pattern rather than a grid
    fu = np.where(np.floor(v * count) % 2 > 0, (u * count + 0.5) % 1.0 - 0.5, fu)
    d = np.hypot(fu, fv)
    return _mix(ground, dot, np.clip((radius - d) * 40, 0, 1))


def tex_plaid(r: Gen, size: int, colors: np.ndarray, count: int) -> np.ndarray:
    a = tex_stripes(r, size, colors, count, True)
    b = tex_stripes(r, size, colors[::-1], count, False)
    return 0.5 * (a + b)


def tex_chevron(r: Gen, size: int, a: RGB, b: RGB, count: int) -> np.ndarray:
    v, u = _grid(size)
    t = (v * count + np.abs((u * count) % 1.0 - 0.5)) % 1.0
    return _mix(a, b, (t > 0.5).astype(float))


def tex_tiles(r: Gen, size: int, color: RGB, grout: RGB, count: int) -> np.ndarray:
    v, u = _grid(size)
    iu, iv = np.floor(u * count).astype(int), np.floor(v * count).astype(int)
    tint = 1 + 0.08 * (r.random((count, count)) - 0.5)
    img = np.asarray(color) * tint[iv, iu][..., None]
    img = img * (0.95 + 0.1 * fbm(r, size, (8, 8), 2))[..., None]
    line = 0.035
    g = ((u * count) % 1.0 < line) | ((v * count) % 1.0 < line)
    img[g] = grout
    return img


def tex_leaves(r: Gen, size: int, color: RGB) -> np.ndarray:
    v, u = _grid(size)
    veins = np.abs(np.sin(np.pi * (u * 6 + v * 10 + 0.6 * fbm(r, size, (4, 4), 3)))) ** 20
    blotch = fbm(r, size, (8, 8), 3)
    img = _mix(_shade(color, 0.6), _shade(color, 1.25), blotch)
    return img * (1 + 0.35 * veins)[..., None]


def tex_screen(r: Gen, size: int, tone: float) -> np.ndarray:
    """Switched-off screen: near black with a soft reflection band."""
    v, u = _grid(size)
    glow = np.exp(-(((u + v) - r.uniform(0.6, 1.4)) ** 2) / 0.05)
    base = tone * (1 + 0.3 * fbm(r, size, (2, 2), 2))
    return np.repeat((base + 0.06 * glow)[..., None], 3, axis=2) * np.array([0.9, 0.95, 1.05])


def tex_sky(r: Gen, size: int, dusk: float) -> np.ndarray:
    """Bright window pane: washed-out sky with a faint skyline near the bottom."""
    v, u = _grid(size)
    top = np.array(hsv(0.58 - 0.5 * dusk * 0.1, 0.25 + 0.15 * dusk, 1.0))
    horizon = np.array(hsv(0.12, 0.15 * dusk, 1.0))
    img = top + (horizon - top) * v[..., None]
    clouds = np.clip(fbm(r, size, (3, 6), 4) - 0.45, 0, 1) * 1.5
    img = img + (1 - img) * clouds[..., None]
    ridge = 0.82 + 0.1 * noise(r, size, (1, 6))[0]
    img[v > ridge[None, :]] *= np.array([0.75, 0.85, 0.8])
    return img


def tex_pages(r: Gen, size: int, color: RGB) -> np.ndarray:
    v, _ = _grid(size)
    lines = 0.94 + 0.06 * np.sin(np.pi * v * size / 2) ** 2
    return np.asarray(color) * (lines * (0.97 + 0.05 * noise(r, size, (size // 2, 4))))[..., None]


def tex_cover(r: Gen, size: int, color: RGB, band: RGB) -> np.ndarray:
    """Book cloth: a colour with bands near both ends of the spine (v runs along height)."""
    img = tex_fabric(r, size, color, threads=32)
    v, _ = _grid(size)
    for c in r.uniform(0.08, 0.2, size=int(r.integers(1, 3))):
        m = (np.abs(v - c) < 0.015) | (np.abs(v - (1 - c)) < 0.015)
        img[m] = band
    title = (np.abs(v - 0.5) < r.uniform(0.05, 0.2)) & (r.random() < 0.6)
    img[title] = img[title] * 0.6 + 0.4 * np.asarray(band)
    return img


def tex_rug(r: Gen, size: int, colors: np.ndarray) -> np.ndarray:
    """Whole-rug image (mapped once): border, inner field and a repeated motif."""
    v, u = _grid(size)
    d = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v))  # distance to the edge
    motif = int(r.integers(0, 3))
    n = int(r.integers(3, 8))
    if motif == 0:
        field = np.abs((u * n) % 1 - 0.5) + np.abs((v * n) % 1 - 0.5) < 0.3
    elif motif == 1:
        field = (np.floor(u * n) + np.floor(v * n)) % 2 > 0
    else:
        field = np.sin(2 * np.pi * (u * n)) * np.sin(2 * np.pi * (v * n)) > 0.3
    img = np.where(field[..., None], colors[1], colors[0])
    border = r.uniform(0.05, 0.12)
    img = np.where((d < border)[..., None], colors[2], img)
    img = np.where((np.abs(d - border) < 0.01)[..., None], colors[3], img)
    pile = 0.85 + 0.25 * noise(r, size, (size // 2, size // 2))
    return img * pile[..., None]


def tex_landscape(r: Gen, size: int) -> np.ndarray:
    """Painted landscape for picture frames when no photograph is available."""
    v, u = _grid(size)
    sky = _mix(hsv(r.uniform(0.5, 0.65), 0.5, 0.9), hsv(r.uniform(0.0, 0.15), 0.4, 1.0), v)
    img = sky
    for k in range(int(r.integers(2, 4))):
        h = 0.35 + 0.15 * k + 0.2 * noise(r, size, (1, int(r.integers(2, 6))))[0]
        col = hsv(r.uniform(0.2, 0.4), r.uniform(0.3, 0.7), 0.6 - 0.15 * k)
        img = np.where((v > h[None, :])[..., None], np.asarray(col), img)
    return img


def tex_abstract(r: Gen, size: int) -> np.ndarray:
    """Colour-field painting: a few soft rectangles over a ground."""
    img = np.ones((size, size, 3)) * np.asarray(hsv(r.random(), 0.2, 0.9))
    v, u = _grid(size)
    for _ in range(int(r.integers(2, 6))):
        x0, y0 = r.uniform(0, 0.7, 2)
        w, h = r.uniform(0.15, 0.5, 2)
        m = (u > x0) & (u < x0 + w) & (v > y0) & (v < y0 + h)
        img[m] = hsv(r.random(), r.uniform(0.4, 0.9), r.uniform(0.4, 0.95))
    return img * (0.95 + 0.1 * fbm(r, size, (8, 8), 2))[..., None]


def tex_cardboard(r: Gen, size: int, color: RGB) -> np.ndarray:
    v, _ = _grid(size)
    flutes = 0.96 + 0.04 * np.sin(2 * np.pi * v * 24)
    return np.asarray(color) * (flutes * (0.9 + 0.2 * fbm(r, size, (8, 8), 3)))[..., None]


def tex_speckle(r: Gen, size: int, color: RGB, amount: float) -> np.ndarray:
    """Glazed ceramic, fruit skin, soil: a colour with fine speckles."""
    n = noise(r, size, (size // 2, size // 2))
    return np.asarray(color) * (1 + amount * (n - 0.5) + 0.1 * (fbm(r, size, (4, 4), 2) - 0.5))[
        ..., None]


# ---------------------------------------------------------------------------------------------
# Photographs


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


# ---------------------------------------------------------------------------------------------
# The per-scene material factory


class MaterialKit:
    """Makes the materials of one scene from its rng.

    Each call draws its parameters and a 64-bit texture seed from the scene rng, so a scene
    is reproducible from its rng alone and two scenes share a texture only if their rngs
    coincide. ``photo_pool`` chooses which half of each photograph may be used.
    """

    def __init__(self, rng: Gen, photo_pool: str = "train", use_photos: bool = True) -> None:
        if photo_pool not in PHOTO_POOLS:
            raise ValueError(f"photo_pool must be one of {PHOTO_POOLS}, got {photo_pool!r}")
        self.rng = rng
        self.pool = photo_pool
        self.surface_photos = available_photos(SURFACE_PHOTOS) if use_photos else ()
        self.art_photos = available_photos(ART_PHOTOS) if use_photos else ()

    # -- plumbing
    def _seed(self) -> tuple[int, Gen]:
        s = int(self.rng.integers(0, 2**63))
        return s, np.random.default_rng(s)

    def _make(self, kind: str, params: str, fn, *args, size: int = 128,
              roughness: float = 0.7, metallic: float = 0.0) -> Material:
        seed, r = self._seed()
        img = _u8(fn(r, size, *args))
        name = f"{kind}[{params}]#{seed:016x}" if params else f"{kind}#{seed:016x}"
        return Material(name, img, roughness, metallic)

    # -- colour palettes (drawn from the scene rng)
    def wood_color(self) -> RGB:
        g = self.rng
        return hsv(g.uniform(0.05, 0.11), g.uniform(0.35, 0.75), g.uniform(0.25, 0.85))

    def fabric_color(self) -> RGB:
        g = self.rng
        if g.random() < 0.45:  # neutrals dominate upholstery
            return hsv(g.uniform(0.05, 0.15), g.uniform(0.0, 0.25), g.uniform(0.25, 0.85))
        return hsv(g.random(), g.uniform(0.25, 0.7), g.uniform(0.25, 0.8))

    def paint_color(self, light: bool = False) -> RGB:
        g = self.rng
        if light:
            return hsv(g.random(), g.uniform(0.0, 0.18), g.uniform(0.8, 0.97))
        if g.random() < 0.4:
            return hsv(g.random(), g.uniform(0.0, 0.1), g.uniform(0.15, 0.95))
        return hsv(g.random(), g.uniform(0.3, 0.8), g.uniform(0.35, 0.9))

    def vivid_color(self) -> RGB:
        g = self.rng
        return hsv(g.random(), g.uniform(0.45, 0.9), g.uniform(0.45, 0.95))

    # -- materials
    def painted(self, color: RGB | None = None, *, light: bool = False, roughness: float = 0.6,
                size: int = 64) -> Material:
        c = color if color is not None else self.paint_color(light)
        return self._make("painted", _hex(c), tex_painted, c, size=size, roughness=roughness)

    def wood(self, color: RGB | None = None, *, planks: int = 0, size: int = 128) -> Material:
        c = color if color is not None else self.wood_color()
        return self._make("wood", f"{_hex(c)},planks={planks}", tex_wood, c, planks, size=size,
                          roughness=0.55)

    def fabric(self, color: RGB | None = None, *, size: int = 128) -> Material:
        c = color if color is not None else self.fabric_color()
        threads = int(self.rng.choice([24, 32, 48]))
        return self._make("fabric", f"{_hex(c)},t={threads}", tex_fabric, c, threads, size=size,
                          roughness=0.95)

    def marble(self, size: int = 128) -> Material:
        g = self.rng
        base = hsv(g.uniform(0, 1), g.uniform(0, 0.08), g.uniform(0.75, 0.95))
        if g.random() < 0.25:
            base = hsv(g.uniform(0, 1), g.uniform(0, 0.1), g.uniform(0.12, 0.25))
        vein = _shade(base, g.uniform(0.4, 0.7)) if base[0] > 0.5 else hsv(0, 0, 0.85)
        return self._make("marble", f"{_hex(base)},{_hex(vein)}", tex_marble, base, vein,
                          size=size, roughness=0.25)

    def granite(self, size: int = 128) -> Material:
        g = self.rng
        base = hsv(g.uniform(0, 0.15), g.uniform(0, 0.3), g.uniform(0.2, 0.75))
        return self._make("granite", _hex(base), tex_granite, base, size=size, roughness=0.35)

    def stone(self, size: int = 128) -> Material:
        """Counter-top stone: marble, granite or a tinted gravel photograph."""
        k = self.rng.random()
        if k < 0.2 and "gravel.png" in self.surface_photos:  # terrazzo-like: small pebbles
            return self.photo_surface("gravel.png", hsv(self.rng.uniform(0, 0.15),
                                                        self.rng.uniform(0, 0.2), 1.0), size,
                                      repeat=3)
        return self.marble(size) if k < 0.6 else self.granite(size)

    def metal(self, color: RGB | None = None, *, size: int = 64) -> Material:
        g = self.rng
        if color is None:
            kind = g.random()
            if kind < 0.6:
                color = hsv(0.6, g.uniform(0.0, 0.05), g.uniform(0.55, 0.85))  # steel
            elif kind < 0.8:
                color = hsv(0.0, 0.0, g.uniform(0.1, 0.25))  # black
            else:
                color = hsv(g.uniform(0.06, 0.12), g.uniform(0.4, 0.6), g.uniform(0.6, 0.85))
        return self._make("brushed", _hex(color), tex_brushed, color, size=size, roughness=0.35,
                          metallic=0.8)

    def ceramic(self, color: RGB | None = None, *, size: int = 64) -> Material:
        c = color if color is not None else (
            hsv(0.1, 0.03, 0.95) if self.rng.random() < 0.35 else self.vivid_color())
        return self._make("ceramic", _hex(c), tex_speckle, c, 0.06, size=size, roughness=0.2)

    def plastic(self, color: RGB | None = None, *, size: int = 32) -> Material:
        c = color if color is not None else self.paint_color()
        return self._make("plastic", _hex(c), tex_painted, c, 0.02, size=size, roughness=0.4)

    def speckled(self, color: RGB, amount: float = 0.15, *, size: int = 64,
                 roughness: float = 0.6) -> Material:
        return self._make("speckle", f"{_hex(color)},a={amount:.2f}", tex_speckle, color, amount,
                          size=size, roughness=roughness)

    def pattern(self, size: int = 128) -> Material:
        """A printed/woven pattern: stripes, checks, dots, plaid or chevron."""
        g = self.rng
        kind = ("stripes", "checks", "dots", "plaid", "chevron")[int(g.integers(0, 5))]
        a, b = self.fabric_color(), self.vivid_color()
        cols = np.array([a, b, self.paint_color(light=True)])[: int(g.integers(2, 4))]
        count = int(g.choice([2, 4, 8]))
        if kind == "stripes":
            vert = bool(g.random() < 0.5)
            return self._make("stripes", f"{_hex(a)},{_hex(b)},n={count},v={vert}", tex_stripes,
                              cols, count, vert, size=size, roughness=0.9)
        if kind == "checks":
            return self._make("checks", f"{_hex(a)},{_hex(b)},n={count}", tex_checks, a, b,
                              count, size=size, roughness=0.9)
        if kind == "dots":
            rad = float(g.uniform(0.12, 0.3))
            return self._make("dots", f"{_hex(a)},{_hex(b)},n={count},r={rad:.3f}", tex_dots, a,
                              b, count * 2, rad, size=size, roughness=0.9)
        if kind == "plaid":
            return self._make("plaid", f"{_hex(a)},{_hex(b)},n={count}", tex_plaid, cols, count,
                              size=size, roughness=0.9)
        return self._make("chevron", f"{_hex(a)},{_hex(b)},n={count}", tex_chevron, a, b, count,
                          size=size, roughness=0.9)

    def upholstery(self) -> Material:
        return self.fabric(size=128) if self.rng.random() < 0.75 else self.pattern()

    def tiles(self, color: RGB | None = None, count: int = 4, size: int = 128) -> Material:
        c = color if color is not None else self.paint_color(light=self.rng.random() < 0.6)
        grout = hsv(0.1, 0.05, float(self.rng.uniform(0.3, 0.85)))
        return self._make("tiles", f"{_hex(c)},{_hex(grout)},n={count}", tex_tiles, c, grout,
                          count, size=size, roughness=0.3)

    def leaves(self, size: int = 64) -> Material:
        g = self.rng
        if g.random() < 0.25 and "grass.png" in self.surface_photos:
            return self.photo_surface("grass.png", hsv(g.uniform(0.22, 0.33), 0.7, 1.0), size)
        c = hsv(g.uniform(0.2, 0.36), g.uniform(0.5, 0.85), g.uniform(0.3, 0.65))
        return self._make("leaves", _hex(c), tex_leaves, c, size=size, roughness=0.6)

    def screen(self) -> Material:
        tone = float(self.rng.uniform(0.02, 0.07))
        return self._make("screen", f"{tone:.3f}", tex_screen, tone, size=64, roughness=0.1)

    def sky(self) -> Material:
        dusk = float(self.rng.uniform(0, 1))
        return self._make("sky", f"{dusk:.3f}", tex_sky, dusk, size=128, roughness=1.0)

    def pages(self) -> Material:
        c = hsv(0.12, self.rng.uniform(0.03, 0.15), self.rng.uniform(0.85, 0.97))
        return self._make("pages", _hex(c), tex_pages, c, size=32)

    def book_cover(self) -> Material:
        c = self.paint_color() if self.rng.random() < 0.5 else self.vivid_color()
        band = hsv(0.13, 0.6, 0.8) if self.rng.random() < 0.5 else hsv(0, 0, 0.1)
        return self._make("cover", f"{_hex(c)},{_hex(band)}", tex_cover, c, band, size=64,
                          roughness=0.6)

    def rug(self) -> Material:
        g = self.rng
        if g.random() < 0.15 and "grass.png" in self.surface_photos:  # shag pile
            return self.photo_surface("grass.png", self.fabric_color(), 128)
        base = self.fabric_color()
        cols = np.array([base, self.vivid_color(), _shade(base, 0.6), self.paint_color(True)])
        return self._make("rug", ",".join(_hex(c) for c in cols), tex_rug, cols, size=128,
                          roughness=1.0)

    def cardboard(self) -> Material:
        c = hsv(self.rng.uniform(0.07, 0.1), self.rng.uniform(0.35, 0.55),
                self.rng.uniform(0.55, 0.8))
        return self._make("cardboard", _hex(c), tex_cardboard, c, size=64)

    def floor(self, kind: str) -> Material:
        g = self.rng
        k = g.random()
        if kind == "kitchen" and k < 0.6:
            return self.tiles(count=int(g.choice([2, 4])), size=256)
        if k < 0.8:
            return self.wood(planks=int(g.choice([4, 6, 8])), size=256)
        return self.marble(size=256) if g.random() < 0.5 else self.tiles(count=2, size=256)

    def wall(self) -> Material:
        if self.rng.random() < 0.2:
            return self.wallpaper()
        return self.painted(light=True, roughness=0.9, size=128)

    def wallpaper(self) -> Material:
        """Quiet wallpaper: a light ground with a slightly darker stripe or dot print."""
        g = self.rng
        a = self.paint_color(light=True)
        b = _shade(hsv(*colorsys.rgb_to_hsv(*a)[:1], 0.25, 0.8), 1.0) if g.random() < 0.5 \
            else _shade(a, g.uniform(0.8, 0.9))
        if g.random() < 0.5:
            n = int(g.choice([4, 8]))
            return self._make("wallpaper-stripes", f"{_hex(a)},{_hex(b)},n={n}", tex_stripes,
                              np.array([a, b]), n, True, size=128, roughness=0.9)
        rad = float(g.uniform(0.08, 0.18))
        return self._make("wallpaper-dots", f"{_hex(a)},{_hex(b)},r={rad:.3f}", tex_dots, a, b,
                          8, rad, size=128, roughness=0.9)

    def accent_wall(self) -> Material:
        if self.surface_photos and "brick.png" in self.surface_photos and self.rng.random() < 0.5:
            return self.photo_surface("brick.png", hsv(self.rng.uniform(0.0, 0.08),
                                                       self.rng.uniform(0.3, 0.6), 1.0), 256)
        return self.painted(self.paint_color(), roughness=0.9, size=64)

    def art(self, aspect: float) -> Material:
        """The picture inside a frame: a photograph crop when available, else a painting."""
        g = self.rng
        if self.art_photos and g.random() < 0.6:
            name = self.art_photos[int(g.integers(0, len(self.art_photos)))]
            _, r = self._seed()
            img, crop = photo_crop(name, self.pool, r, 128, float(r.uniform(0.6, 1.0)), aspect)
            return Material(f"photo:{name}:{self.pool}:{crop}", _u8(img), 0.3)
        if g.random() < 0.5:
            return self._make("landscape", "", tex_landscape, size=128, roughness=0.5)
        return self._make("abstract", "", tex_abstract, size=128, roughness=0.5)

    def photo_surface(self, name: str, tint: RGB, size: int = 128, repeat: int = 1
                      ) -> Material:
        """Tinted crop of a surface photograph (brick, grass, gravel) from the pool's half,
        optionally shrunk and tiled ``repeat`` times each way (finer grain)."""
        _, r = self._seed()
        img, crop = photo_crop(name, self.pool, r, size // repeat, float(r.uniform(0.35, 0.6)))
        img = np.tile(img, (repeat, repeat, 1))
        lum = img.mean(axis=2, keepdims=True)
        out = _u8(lum / max(lum.mean(), 1e-3) * 0.6 * np.asarray(tint))
        return Material(f"photo:{name}:{self.pool}:{crop}:x{repeat}:tint={_hex(tint)}", out, 0.85)
