"""Lamps, plants, the TV, cushions and pictures."""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.objects.small import spline
from segan.scene.primitives import (
    Skin,
    box,
    cylinder,
    ellipsoid,
    lathe,
    merge,
    quad,
    rotation,
    sphere,
    superellipsoid,
    tube,
)


def _shade(r0: float, r1: float, z0: float, z1: float, t: float = 0.004) -> list:
    """Open lamp shade with thickness: up the outside, down the inside, closed at the rims."""
    return [(r0, z0), (r1, z1), (r1 - t, z1), (r0 - t, z0), (r0, z0)]


def _shade_skin(r: Gen, kit: MaterialKit) -> Skin:
    g = r.random()
    if g < 0.6:
        c = (0.95, 0.92, 0.85) if r.random() < 0.6 else kit.paint_color(light=True)
        return skin(kit.fabric(c, size=64), 6.0)
    return skin(kit.fabric(size=64), 6.0) if g < 0.85 else skin(kit.pattern(64), 6.0)


def floor_lamp(r: Gen, kit: MaterialKit) -> Model:
    """Standard lamp: heavy base (or tripod), pole, fabric shade with a bulb inside."""
    h = r.uniform(1.4, 1.8)
    sh = r.uniform(0.25, 0.4)
    rb, rt = r.uniform(0.17, 0.25), r.uniform(0.1, 0.2)
    metal = skin(kit.metal(), 6.0) if r.random() < 0.7 else skin(kit.wood(size=64), 4.0)
    b = Builder("floor_lamp")
    if r.random() < 0.7:
        base_r = r.uniform(0.12, 0.18)
        b.add(cylinder(base_r, 0.03, 20), metal)
        b.add(cylinder(r.uniform(0.01, 0.016), h - sh * 0.6 - 0.03, 10, z0=0.03), metal)
    else:  # tripod
        spread = r.uniform(0.2, 0.3)
        top = h - sh * 0.6
        for k in range(3):
            a = 2 * np.pi * k / 3
            b.add(tube([(spread * np.cos(a), spread * np.sin(a), 0.01), (0, 0, top)], 0.012, 6),
                  metal)
    b.add(lathe(_shade(rb, rt, h - sh, h), 20), _shade_skin(r, kit))
    b.bulb((0, 0, h - sh * 0.5), r.uniform(40, 60))
    return b.model()


def table_lamp(r: Gen, kit: MaterialKit, max_height: float = 0.7) -> Model:
    """Bedside/table lamp: lathed ceramic or metal base, short neck, shade, bulb."""
    h = min(r.uniform(0.35, 0.6), max_height)
    sh = h * r.uniform(0.35, 0.5)
    rb = r.uniform(0.05, 0.09)
    base_h = (h - sh) * r.uniform(0.6, 0.85)
    body = skin(kit.ceramic(), 6.0) if r.random() < 0.6 else skin(kit.metal(), 6.0)
    b = Builder("table_lamp")
    belly = rb * r.uniform(0.9, 1.6)
    prof = spline([(rb, 0.0), (belly, base_h * r.uniform(0.3, 0.6)), (rb * 0.35, base_h)], 5)
    b.add(lathe([(0, 0), *prof, (0, base_h)], 18), body)
    b.add(cylinder(0.008, h - sh * 0.7 - base_h, 8, z0=base_h), skin(kit.metal(), 6.0))
    r0 = max(r.uniform(0.12, 0.2), belly + 0.02)
    b.add(lathe(_shade(r0, r0 * r.uniform(0.6, 1.0), h - sh, h), 18), _shade_skin(r, kit))
    b.bulb((0, 0, h - sh * 0.55), r.uniform(15, 30))
    return b.model()


def potted_plant(r: Gen, kit: MaterialKit, large: bool | None = None,
                 max_height: float = 2.0) -> Model:
    """Pot with soil and a plant: rosette of leaves, bush, small tree or cactus."""
    large = bool(r.random() < 0.4) if large is None else large
    total = min(r.uniform(0.7, 1.5) if large else r.uniform(0.15, 0.4), max_height)
    ph = total * r.uniform(0.25, 0.4)
    rt = ph * r.uniform(0.45, 0.7)
    rb = rt * r.uniform(0.65, 0.95)
    t = 0.008 if large else 0.005
    soil_z = ph * 0.88
    b = Builder("potted_plant")
    pot_mat = kit.speckled((0.7, 0.35, 0.2), 0.2) if r.random() < 0.4 else kit.ceramic()
    b.add(lathe([(0, 0), (rb, 0), (rt, ph), (rt - t, ph), (rt - t, soil_z), (0, soil_z)], 20),
          skin(pot_mat, 4.0))
    leaves = skin(kit.leaves(), 8.0)
    kind = str(r.choice(["rosette", "bush", "tree", "cactus"] if large else
                        ["rosette", "bush", "cactus"]))
    height = total - ph
    radius = rt * r.uniform(1.2, 2.2)
    if kind == "rosette":
        n = int(r.integers(8, 20))
        parts = []
        for k in range(n):
            ln = height * r.uniform(0.6, 1.0)
            elev = r.uniform(0.5, 1.3)
            leaf = ellipsoid((ln / 2, ln * r.uniform(0.08, 0.2), 0.004), 8, 4).translated(
                (ln / 2, 0, 0))
            leaf = leaf.transformed(rotation("y", -elev)).transformed(
                rotation("z", 2 * np.pi * k / n + r.uniform(-0.3, 0.3)))
            parts.append(leaf.translated((0, 0, soil_z)))
        b.add(merge(parts), leaves)
    elif kind == "bush":
        blobs = []
        for _ in range(int(r.integers(4, 9))):
            rr = radius * r.uniform(0.35, 0.6)
            a, d = r.uniform(0, 2 * np.pi), r.uniform(0, radius - rr)
            z = soil_z + rr * 0.6 + r.uniform(0, max(height - 2 * rr, 0.01))
            blobs.append(sphere(rr, 10, 6).translated((d * np.cos(a), d * np.sin(a), z)))
        b.add(merge(blobs), leaves)
    elif kind == "tree":
        trunk_h = height * r.uniform(0.4, 0.6)
        b.add(tube([(0, 0, soil_z - 0.01), (r.uniform(-0.05, 0.05), 0, soil_z + trunk_h)],
                   [0.02, 0.012], 6), skin(kit.wood(size=64), 8.0))
        blobs = []
        cr = (height - trunk_h) * 0.5
        for _ in range(int(r.integers(4, 8))):
            rr = cr * r.uniform(0.5, 0.8)
            off = r.normal(0, cr * 0.35, 3)
            blobs.append(sphere(rr, 10, 6).translated((off[0], off[1],
                                                       soil_z + trunk_h + cr + off[2] * 0.5)))
        b.add(merge(blobs), leaves)
    else:
        green = skin(kit.speckled((0.2, 0.45, 0.2), 0.3), 8.0)
        arms = []
        for _ in range(int(r.integers(1, 4))):
            ch = height * r.uniform(0.5, 1.0)
            cw = min(rt * 0.5, ch * 0.35)
            off = r.uniform(-rt * 0.35, rt * 0.35, 2)
            arms.append(superellipsoid((cw, cw, ch), 0.8, 10, 8).translated(
                (off[0], off[1], soil_z + ch / 2)))
        b.add(merge(arms), green)
    b.add(lathe([(0, soil_z - 0.002), (rt - t, soil_z - 0.002), (rt - t, soil_z + 0.004),
                 (0, soil_z + 0.006)], 16), skin(kit.speckled((0.25, 0.17, 0.1), 0.5), 8.0))
    return b.model()


def tv(r: Gen, kit: MaterialKit, max_width: float = 1.5) -> Model:
    """Flat-screen TV on a pedestal or two feet."""
    sw = min(r.uniform(0.8, 1.5), max_width)
    sh = sw * 9 / 16
    bez, d = r.uniform(0.008, 0.03), r.uniform(0.03, 0.06)
    lift = r.uniform(0.05, 0.1)
    plastic = skin(kit.plastic((0.05, 0.05, 0.055) if r.random() < 0.8 else
                               (0.5, 0.5, 0.52)), 4.0)
    b = Builder("tv")
    hx = sw / 2 + bez
    b.add(box((-hx, -d / 2, lift), (hx, d / 2, lift + sh + 2 * bez)), plastic)
    b.add(quad((-sw / 2, d / 2, lift + bez), (sw / 2, d / 2 + 0.001, lift + bez + sh), "+y"),
          skin(kit.screen(), 1.0))
    if r.random() < 0.5:
        bw, bd = sw * r.uniform(0.25, 0.4), r.uniform(0.18, 0.25)
        b.add(merge([box((-bw / 2, -bd / 2, 0), (bw / 2, bd / 2, 0.015)),
                     box((-0.03, -0.02, 0.015), (0.03, 0.01, lift))]), plastic)
    else:
        fx = sw * r.uniform(0.3, 0.45)
        fd = r.uniform(0.16, 0.22)
        for s in (-1, 1):
            b.add(box((s * fx - 0.02, -fd / 2, 0), (s * fx + 0.02, fd / 2, lift)), plastic)
    return b.model()


def cushion(r: Gen, kit: MaterialKit, lean: float | None = None) -> Model:
    """Throw pillow standing on a seat, leaning back by ``lean`` radians."""
    w = r.uniform(0.35, 0.55)
    h = w * r.uniform(0.8, 1.0)
    t = r.uniform(0.1, 0.17)
    mat = kit.pattern() if r.random() < 0.55 else kit.fabric()
    g = superellipsoid((w, t, h), r.uniform(0.25, 0.45), 14, 10)
    lean = r.uniform(0.08, 0.25) if lean is None else lean
    g = g.transformed(rotation("x", lean))
    b = Builder("cushion")
    b.add(g, skin(mat, 4.0))
    return b.model()


def picture_frame(r: Gen, kit: MaterialKit, standing: bool = False,
                  max_size: float = 1.0) -> Model:
    """Frame, optional mount and the picture, thin along y and facing +y; ``standing``
    frames are small and lean back on a shelf or table."""
    aspect = float(r.choice([0.67, 0.75, 1.0, 1.33, 1.5]))
    w = r.uniform(0.1, 0.22) if standing else r.uniform(0.3, 1.0)
    w = min(w, max_size, max_size * aspect)
    h = w / aspect
    bw = w * r.uniform(0.04, 0.1)
    d = r.uniform(0.015, 0.035)
    k = r.random()
    frame = skin(kit.wood(size=64), 4.0) if k < 0.5 else skin(
        kit.metal(), 6.0) if k < 0.7 else skin(kit.painted(), 4.0)
    hx, hd = w / 2, d / 2
    b = Builder("picture_frame")
    b.add(merge([
        box((-hx, -hd, 0), (-hx + bw, hd, h)), box((hx - bw, -hd, 0), (hx, hd, h)),
        box((-hx + bw, -hd, 0), (hx - bw, hd, bw)), box((-hx + bw, -hd, h - bw), (hx - bw, hd, h)),
        box((-hx + bw, -hd, bw), (hx - bw, -hd + 0.004, h - bw)),
    ]), frame)
    inner = (hx - bw, h - 2 * bw)
    mount = w * r.uniform(0.04, 0.12) if r.random() < 0.5 else 0.0
    if mount:
        b.add(quad((-inner[0], hd - 0.009, bw), (inner[0], hd - 0.008, h - bw), "+y"),
              skin(kit.painted((0.93, 0.92, 0.88)), 4.0))
    pw, ph = 2 * inner[0] - 2 * mount, inner[1] - 2 * mount
    b.add(quad((-pw / 2, hd - 0.008, bw + mount), (pw / 2, hd - 0.007, bw + mount + ph), "+y"),
          skin(kit.art(pw / ph), 1.0))
    m = b.model()
    if not standing:
        return m
    return Model("picture_frame", m.transformed(rotation("x", r.uniform(0.12, 0.25))).parts
                 ).finalised()
