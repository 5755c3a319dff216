"""The per-scene material factory."""

from __future__ import annotations

import colorsys

import numpy as np

from segan.scene.textures.noise import RGB, Gen, _hex, _shade, _u8, hsv
from segan.scene.textures.patterns import (
    tex_abstract,
    tex_brushed,
    tex_cardboard,
    tex_checks,
    tex_chevron,
    tex_cover,
    tex_dots,
    tex_fabric,
    tex_granite,
    tex_landscape,
    tex_leaves,
    tex_marble,
    tex_pages,
    tex_painted,
    tex_plaid,
    tex_rug,
    tex_screen,
    tex_sky,
    tex_speckle,
    tex_stripes,
    tex_tiles,
    tex_wood,
)
from segan.scene.textures.photos import (
    ART_PHOTOS,
    PHOTO_POOLS,
    SURFACE_PHOTOS,
    available_photos,
    photo_crop,
)
from segan.scene.types import Material


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
