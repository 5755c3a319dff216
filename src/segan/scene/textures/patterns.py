"""Texture generators: (rng, size, parameters) -> float image (size, size, 3) in [0, 1]."""

from __future__ import annotations

import numpy as np

from segan.scene.textures.noise import RGB, Gen, _grid, _mix, _shade, fbm, hsv, noise


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
