"""Small objects that rest on furniture: tableware, books, boxes, fruit, laptops."""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.primitives import (
    box,
    cylinder,
    ellipsoid,
    frustum,
    lathe,
    merge,
    quad,
    rotation,
    tube,
)


def spline(points: list[tuple[float, float]], n: int = 6) -> list[tuple[float, float]]:
    """Catmull-Rom curve through (r, z) control points, ``n`` samples per span."""
    p = np.asarray(points, np.float64)
    p = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    out = []
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    pts = np.concatenate(out)
    pts[:, 0] = np.maximum(pts[:, 0], 0.0)
    return [tuple(q) for q in pts]


# ---------------------------------------------------------------------------------------------
# Tableware


def mug(r: Gen, kit: MaterialKit) -> Model:
    r0, h, t = r.uniform(0.035, 0.046), r.uniform(0.08, 0.11), 0.004
    body = skin(kit.ceramic(), 6.0) if r.random() < 0.75 else skin(kit.pattern(64), 8.0)
    b = Builder("mug")
    b.add(lathe([(0, 0), (r0 * 0.92, 0), (r0, 0.008), (r0 * r.uniform(0.95, 1.05), h),
                 (r0 - t, h), (r0 - t, 0.008), (0, 0.008)], 18), body)
    hr = r.uniform(0.022, 0.032)
    a = np.linspace(-np.pi / 2, np.pi / 2, 9)
    path = np.stack([r0 - 0.003 + hr * np.cos(a) * 1.1, np.zeros(9), h / 2 + hr * np.sin(a)], 1)
    b.add(tube(path, r.uniform(0.005, 0.007), 6), body)
    return b.model()


def bowl(r: Gen, kit: MaterialKit, r0: float | None = None) -> Model:
    r0 = r0 or r.uniform(0.06, 0.15)
    h = r0 * r.uniform(0.4, 0.6)
    t, foot = 0.005, 0.55 * r0
    ang = np.linspace(0, np.pi / 2, 6)[1:]
    outer = [(foot + (r0 - foot) * np.sin(a), 0.008 + (h - 0.008) * (1 - np.cos(a))) for a in ang]
    inner = [(foot - t + (r0 - t - foot + t) * np.sin(a), 0.012 + (h - 0.012) * (1 - np.cos(a)))
             for a in ang[::-1]]
    prof = [(0, 0), (foot * 0.9, 0), (foot, 0.008), *outer, (r0 - t, h), *inner[1:],
            (foot - t, 0.012), (0, 0.012)]
    mat = kit.ceramic() if r.random() < 0.7 else kit.wood(size=64)
    b = Builder("bowl")
    b.add(lathe(prof, 20), skin(mat, 6.0))
    s = foot * 0.9
    b.surface(-s, -s, s, s, 0.012, 0.3, "inside", contains=True)
    return b.model()


def plate(r: Gen, kit: MaterialKit) -> Model:
    r0 = r.uniform(0.09, 0.14)
    h, t, flat = r.uniform(0.015, 0.025), 0.004, r0 * r.uniform(0.55, 0.7)
    b = Builder("plate")
    b.add(lathe([(0, 0), (flat, 0), (r0, h), (r0 - t, h), (flat, t + 0.002), (0, t + 0.002)], 24),
          skin(kit.ceramic(), 6.0))
    return b.model()


def bottle(r: Gen, kit: MaterialKit, max_height: float = 1.0) -> Model:
    """Glass or plastic bottle: lathed body, cap and a paper label band."""
    h = min(r.uniform(0.18, 0.33), max_height)
    rb, rn = r.uniform(0.028, 0.045), r.uniform(0.011, 0.016)
    zs, zn = h * r.uniform(0.45, 0.7), h * r.uniform(0.72, 0.82)
    cap_h = r.uniform(0.015, 0.03)
    glass = [(0.1, 0.3, 0.12), (0.35, 0.2, 0.07), (0.75, 0.85, 0.85), (0.2, 0.35, 0.6)]
    col = glass[int(r.integers(0, 4))] if r.random() < 0.7 else kit.vivid_color()
    b = Builder("bottle")
    outer = spline([(rb, 0.0), (rb, zs), (rn * 1.1, zn), (rn, h - cap_h)], 4)
    b.add(lathe([(0, 0), *outer, (0, h - cap_h)], 16), skin(kit.ceramic(col), 6.0))
    b.add(cylinder(rn + 0.002, cap_h, 12, z0=h - cap_h), skin(kit.plastic(kit.vivid_color()), 8.0))
    if r.random() < 0.8:
        z0, z1 = zs * r.uniform(0.15, 0.3), zs * r.uniform(0.75, 0.95)
        label = kit.pattern(64) if r.random() < 0.5 else kit.painted(kit.paint_color(True))
        circ = 2 * np.pi * (rb + 0.0015)
        b.add(frustum(rb + 0.0015, rb + 0.0015, z1 - z0, 16, z0=z0, caps=False),
              skin(label, (1.0 / circ, 1.0 / (z1 - z0))))
    return b.model()


def vase(r: Gen, kit: MaterialKit, max_height: float = 1.0) -> Model:
    h = min(r.uniform(0.12, 0.45), max_height)
    rb = r.uniform(0.03, 0.07)
    belly = r.uniform(max(rb, 0.05), 0.12)
    neck = r.uniform(0.02, min(belly, 0.06))
    lip = neck * r.uniform(1.0, 1.5)
    zb, zn = h * r.uniform(0.25, 0.55), h * r.uniform(0.75, 0.9)
    t = 0.004
    outer = spline([(rb, 0.0), (belly, zb), (neck, zn), (lip, h)], 5)
    prof = [(0, 0), *outer, (lip - t, h), (neck - t, zn), (0, zn - 0.02)]
    mat = kit.ceramic() if r.random() < 0.7 else kit.pattern(64)
    b = Builder("vase")
    b.add(lathe(prof, 20), skin(mat, 6.0))
    return b.model()


# ---------------------------------------------------------------------------------------------
# Books, boxes, fruit


def book(r: Gen, kit: MaterialKit, max_height: float = 0.3, lying: bool = False,
         max_depth: float = 0.25) -> Model:
    """Hardback or paperback standing on its tail, spine facing +y (lying: on its back cover,
    spine facing +y). Cover boards, spine and page block are separate parts."""
    h = min(r.uniform(0.16, 0.3), max_height)
    d = min(r.uniform(0.11, 0.22), max_depth, h * 0.85)
    th = r.uniform(0.012, 0.06)
    c = r.uniform(0.0012, 0.003)
    cover = skin(kit.book_cover(), (1.0 / th, 1.0 / h))
    b = Builder("book")
    hx, hy = th / 2, d / 2
    b.add(box((-hx, -hy, 0), (-hx + c, hy - c, h)), cover)
    b.add(box((hx - c, -hy, 0), (hx, hy - c, h)), cover)
    b.add(box((0, 0, 0), (th, c, h)).translated((-hx, hy - c, 0)), cover)
    b.add(box((-hx + c, -hy + 0.003, 0.003), (hx - c, hy - c, h - 0.003)),
          skin(kit.pages(), 8.0))
    m = b.model()
    if not lying:
        return m
    # tip onto the back cover: the spine keeps facing +y, the height runs along x
    flat = Model("book", m.transformed(rotation("y", -np.pi / 2)).parts).finalised()
    sz = flat.size
    lb = Builder("book")
    lb.parts = flat.parts
    lb.surface(-sz[0] / 2 + 0.01, -sz[1] / 2 + 0.01, sz[0] / 2 - 0.01, sz[1] / 2 - 0.01,
               sz[2], 1.0, "top")
    return lb.model()


def storage_box(r: Gen, kit: MaterialKit, max_height: float = 0.35) -> Model:
    w, d = r.uniform(0.1, 0.45), r.uniform(0.08, 0.35)
    h = min(r.uniform(0.06, 0.3), max_height)
    k = r.random()
    mat = kit.cardboard() if k < 0.35 else kit.pattern(64) if k < 0.6 else (
        kit.wood(size=64) if k < 0.8 else kit.painted())
    sk = skin(mat, 4.0)
    hx, hy = w / 2, d / 2
    b = Builder("box")
    style = r.random()
    if style < 0.45:  # body and a lid overlapping it
        lh = min(0.05, h * 0.3)
        b.add(box((-hx, -hy, 0), (hx, hy, h - lh)), sk)
        lid = sk if r.random() < 0.5 else skin(kit.painted(), 4.0)
        b.add(box((-hx - 0.004, -hy - 0.004, h - lh), (hx + 0.004, hy + 0.004, h)), lid)
    elif style < 0.7:  # open crate
        t = 0.008
        b.add(merge([box((-hx, -hy, 0), (hx, hy, t)),
                     box((-hx, -hy, 0), (-hx + t, hy, h)), box((hx - t, -hy, 0), (hx, hy, h)),
                     box((-hx, -hy, 0), (hx, -hy + t, h)), box((-hx, hy - t, 0), (hx, hy, h))]),
              sk)
    else:  # closed carton with a tape strip
        b.add(box((-hx, -hy, 0), (hx, hy, h)), sk)
        b.add(box((-0.025, -hy - 0.0005, h - 0.04), (0.025, hy + 0.0005, h + 0.0005)),
              skin(kit.painted(kit.paint_color(True)), 8.0))
    b.surface(-hx + 0.01, -hy + 0.01, hx - 0.01, hy - 0.01, h, 1.0, "top")
    return b.model()


def fruit(r: Gen, kit: MaterialKit, kind: str | None = None) -> Model:
    kind = kind or str(r.choice(["apple", "apple", "orange", "lemon", "pear", "banana"]))
    b = Builder("fruit")
    stem = skin(kit.painted((0.3, 0.2, 0.1)), 8.0)
    if kind == "apple":
        rad = r.uniform(0.035, 0.045)
        col = [(0.7, 0.08, 0.06), (0.45, 0.7, 0.15), (0.85, 0.7, 0.2)][int(r.integers(0, 3))]
        t = np.linspace(-np.pi / 2, np.pi / 2, 9)
        prof = [(0, 0.15 * rad)] + [(rad * np.cos(a) * (1 + 0.12 * np.sin(a)),
                                     rad * (1 + np.sin(a)) * 0.92) for a in t[1:-1]]
        prof += [(0, 1.7 * rad)]
        b.add(lathe(prof, 14), skin(kit.speckled(col, 0.25, roughness=0.4), 10.0))
        b.add(cylinder(0.002, 0.02, 5, z0=1.6 * rad), stem)
    elif kind == "orange":
        rad = r.uniform(0.035, 0.045)
        b.add(ellipsoid((rad, rad, rad * 0.93), 14, 9).translated((0, 0, rad * 0.93)),
              skin(kit.speckled((0.95, 0.5, 0.05), 0.35, roughness=0.5), 12.0))
    elif kind == "lemon":
        rad = r.uniform(0.027, 0.033)
        prof = spline([(0, -1.45 * rad), (0.2 * rad, -1.3 * rad), (rad, 0), (0.2 * rad, 1.3 * rad),
                       (0, 1.45 * rad)], 3)
        g = lathe(prof, 12).rotated("y", np.pi / 2).translated((0, 0, rad))
        b.add(g, skin(kit.speckled((0.95, 0.85, 0.15), 0.3, roughness=0.4), 12.0))
    elif kind == "pear":
        rad = r.uniform(0.033, 0.04)
        prof = spline([(0, 0), (0.8 * rad, 0.1 * rad), (rad, 0.6 * rad), (0.55 * rad, 1.4 * rad),
                       (0.4 * rad, 1.8 * rad), (0, 2.05 * rad)], 3)
        b.add(lathe(prof, 14), skin(kit.speckled((0.6, 0.7, 0.2), 0.3, roughness=0.5), 10.0))
        b.add(cylinder(0.002, 0.02, 5, z0=2.0 * rad), stem)
    else:  # banana: a curved pentagonal tube lying on the surface
        R, half = r.uniform(0.1, 0.14), r.uniform(0.55, 0.75)
        a = np.linspace(-half, half, 9)
        path = np.stack([R * np.sin(a), np.zeros(9), R * (1 - np.cos(a))], 1)
        radii = 0.017 * np.sin(np.linspace(0.35, np.pi - 0.35, 9)) + 0.002
        g = tube(path, radii, 5)
        b.add(g.translated((0, 0, -g.bounds()[0, 2])), skin(kit.speckled((0.95, 0.8, 0.2), 0.25),
                                                             10.0))
    return b.model()


def laptop(r: Gen, kit: MaterialKit) -> Model:
    """Open laptop: base with keyboard and touchpad, lid tilted back with its screen."""
    w, d = r.uniform(0.3, 0.4), r.uniform(0.21, 0.27)
    bt, lt = r.uniform(0.012, 0.02), 0.006
    shell = skin(kit.metal(), 6.0) if r.random() < 0.6 else skin(kit.plastic(
        (0.1, 0.1, 0.11) if r.random() < 0.6 else kit.paint_color()), 6.0)
    b = Builder("laptop")
    hx, hy = w / 2, d / 2
    b.add(box((-hx, -hy, 0), (hx, hy, bt)), shell)
    keys = skin(kit.fabric((0.05, 0.05, 0.05), size=32), 40.0)
    b.add(quad((-hx + 0.02, -hy + 0.02, bt), (hx - 0.02, -hy + d * 0.55, bt + 0.0005), "+z"),
          keys)
    b.add(quad((-0.05, -hy + d * 0.62, bt), (0.05, hy - 0.015, bt + 0.0005), "+z"),
          skin(kit.painted((0.3, 0.3, 0.32)), 4.0))
    tilt = np.radians(r.uniform(5, 30))  # past vertical
    hinge = np.array([0, -hy, bt])
    lid = box((-hx, -lt, 0), (hx, 0, d)).rotated("x", tilt).translated(hinge)
    b.add(lid, shell)
    screen = kit.screen() if r.random() < 0.5 else kit.art(1.6)
    sq = quad((-hx + 0.015, 0.0002, 0.015), (hx - 0.015, 0.0005, d - 0.015), "+y")
    b.add(sq.rotated("x", tilt).translated(hinge), skin(screen, 1.0))
    return b.model()
