"""Generic large furniture: the office's desk and office chair, the storage room's crates and
racks, the workshop's workbench. Each builder takes ``(rng, kit)``."""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.primitives import (
    box,
    box_c,
    cylinder,
    merge,
    superellipsoid,
    tube,
)


def desk(r: Gen, kit: MaterialKit) -> Model:
    """A top on legs or side panels, often with a drawer pedestal; the top holds clutter."""
    w, d, h = r.uniform(1.0, 1.6), r.uniform(0.6, 0.8), r.uniform(0.72, 0.76)
    t = r.uniform(0.025, 0.04)
    top = skin(kit.wood() if r.random() < 0.6 else kit.painted(light=True), 1.5)
    frame = skin(kit.metal() if r.random() < 0.6 else kit.painted(), 4.0)
    hx, hy = w / 2, d / 2
    b = Builder("desk")
    b.add(box((-hx, -hy, h - t), (hx, hy, h)), top)
    if r.random() < 0.5:
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (hx - 0.04), sy * (hy - 0.04)
                b.add(box((x - 0.02, y - 0.02, 0), (x + 0.02, y + 0.02, h - t)), frame)
    else:
        for sx in (-1, 1):
            b.add(box((sx * hx - (0.025 if sx > 0 else 0), -hy + 0.03, 0),
                      (sx * hx + (0.025 if sx < 0 else 0), hy - 0.03, h - t)), top)
    if r.random() < 0.6:
        pw = r.uniform(0.35, 0.45)
        x0 = hx - 0.03 - pw if r.random() < 0.5 else -hx + 0.03
        b.add(box((x0, -hy + 0.05, 0.02), (x0 + pw, hy - 0.02, h - t - 0.02)), top)
    b.surface(-hx + 0.02, -hy + 0.02, hx - 0.02, hy - 0.02, h, 1.0, "top")
    return b.model()


def office_chair(r: Gen, kit: MaterialKit) -> Model:
    """Five-spoke base, gas column, seat and back (facing +y)."""
    sr = r.uniform(0.28, 0.34)
    seat_z = r.uniform(0.42, 0.52)
    dark = skin(kit.metal(), 4.0)
    pad = skin(kit.fabric() if r.random() < 0.7 else kit.plastic(), 6.0)
    b = Builder("office_chair")
    for k in range(5):
        a = 2 * np.pi * k / 5 + np.pi / 2
        path = np.array([[0, 0, 0.06], [sr * np.cos(a), sr * np.sin(a), 0.04]])
        b.add(tube(path, 0.018, 6), dark)
    b.add(cylinder(0.025, seat_z - 0.08, 10, z0=0.06), dark)
    sw = r.uniform(0.44, 0.52)
    b.add(superellipsoid((sw, sw, 0.08), 0.3).translated((0, 0, seat_z - 0.02)), pad)
    bh = r.uniform(0.35, 0.6)
    b.add(box_c((0, -sw / 2 + 0.02, seat_z + 0.06), (0.04, 0.03, 0.12)), dark)
    b.add(superellipsoid((sw * 0.9, 0.07, bh), 0.3).translated(
        (0, -sw / 2 + 0.02, seat_z + 0.1 + bh / 2)), pad)
    return b.model()


def crate(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """An open plastic or wooden crate; things rest inside it."""
    w, d = r.uniform(0.25, 0.5), r.uniform(0.2, 0.4)
    h = r.uniform(0.12, 0.3) if max_height is None else min(r.uniform(0.12, 0.3), max_height)
    t = 0.01
    sk = skin(kit.plastic(kit.vivid_color()) if r.random() < 0.6 else kit.wood(size=64), 4.0)
    hx, hy = w / 2, d / 2
    b = Builder("crate")
    b.add(merge([box((-hx, -hy, 0), (hx, hy, t)),
                 box((-hx, -hy, 0), (-hx + t, hy, h)), box((hx - t, -hy, 0), (hx, hy, h)),
                 box((-hx, -hy, 0), (hx, -hy + t, h)), box((-hx, hy - t, 0), (hx, hy, h))]), sk)
    b.surface(-hx + t + 0.003, -hy + t + 0.003, hx - t - 0.003, hy - t - 0.003, t, 0.6,
              "inside", contains=True)
    return b.model()


def rack(r: Gen, kit: MaterialKit) -> Model:
    """Metal shelving: four posts and 3-6 shelves, every level a surface."""
    w, d, h = r.uniform(0.8, 1.5), r.uniform(0.35, 0.55), r.uniform(1.4, 2.0)
    post = skin(kit.metal(), 4.0)
    board = skin(kit.metal() if r.random() < 0.5 else kit.wood(size=64), 2.0)
    hx, hy, p, t = w / 2, d / 2, 0.03, 0.02
    b = Builder("rack")
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(box((sx * hx - (p if sx > 0 else 0), sy * hy - (p if sy > 0 else 0), 0),
                      (sx * hx + (p if sx < 0 else 0), sy * hy + (p if sy < 0 else 0), h)), post)
    n = int(r.integers(3, 7))
    levels = 0.08 + (h - 0.1) * np.arange(n) / (n - 1) if n > 1 else np.array([0.08])
    levels = np.minimum(levels, h - t)
    for k, z in enumerate(levels):
        b.add(box((-hx + p, -hy, z), (hx - p, hy, z + t)), board)
        c = (levels[k + 1] - z - t) if k + 1 < n else 1.0
        b.surface(-hx + p + 0.005, -hy + 0.005, hx - p - 0.005, hy - 0.005, z + t, c, "shelf")
    return b.model()


def workbench(r: Gen, kit: MaterialKit) -> Model:
    """A thick wooden top on a frame with a lower shelf."""
    w, d, h = r.uniform(1.2, 2.0), r.uniform(0.6, 0.8), r.uniform(0.85, 0.95)
    t = r.uniform(0.04, 0.06)
    top = skin(kit.wood(planks=int(r.integers(3, 7))), 1.0)
    frame = skin(kit.metal() if r.random() < 0.5 else kit.painted(), 4.0)
    hx, hy = w / 2, d / 2
    b = Builder("workbench")
    b.add(box((-hx, -hy, h - t), (hx, hy, h)), top)
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (hx - 0.06), sy * (hy - 0.06)
            b.add(box((x - 0.03, y - 0.03, 0), (x + 0.03, y + 0.03, h - t)), frame)
    sz = r.uniform(0.12, 0.2)
    b.add(box((-hx + 0.09, -hy + 0.03, sz), (hx - 0.09, hy - 0.03, sz + 0.02)), top)
    b.surface(-hx + 0.02, -hy + 0.02, hx - 0.02, hy - 0.02, h, 1.0, "top")
    b.surface(-hx + 0.1, -hy + 0.04, hx - 0.1, hy - 0.04, sz + 0.02, h - t - sz - 0.03, "shelf")
    return b.model()
