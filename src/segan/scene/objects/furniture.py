"""Living-room furniture: seating, tables, storage and the rug."""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.primitives import (
    Skin,
    box,
    cylinder,
    ellipse,
    extrude,
    frustum,
    rounded_rect,
    superellipsoid,
    torus,
)


def add_legs(
    b: Builder, r: Gen, xy: list[tuple[float, float]], height: float, width: float, sk: Skin,
    style: str | None = None, z0: float = 0.0,
) -> None:
    """One part per leg (so each leg has its own tight collision box)."""
    style = style or str(r.choice(["square", "round", "tapered"]))
    for x, y in xy:
        if style == "square":
            b.add(box((x - width / 2, y - width / 2, z0), (x + width / 2, y + width / 2, height)),
                  sk)
        elif style == "round":
            b.add(cylinder(width / 2, height - z0, 10, z0=z0).translated((x, y, 0)), sk)
        else:
            b.add(frustum(width * 0.3, width / 2, height - z0, 10, z0=z0).translated((x, y, 0)),
                  sk)


def corners(hx: float, hy: float) -> list[tuple[float, float]]:
    return [(-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy)]


def leg_skin(r: Gen, kit: MaterialKit) -> Skin:
    if r.random() < 0.6:
        return skin(kit.wood(size=64), 2.0)
    return skin(kit.metal(), 4.0)


# ---------------------------------------------------------------------------------------------
# Seating


def sofa(r: Gen, kit: MaterialKit, seats: int | None = None, category: str = "sofa") -> Model:
    """Upholstered sofa (or armchair with one seat): base, arms, back, seat and back cushions
    as separate soft parts on short legs."""
    n = seats if seats is not None else int(r.integers(2, 4))
    seat_w = r.uniform(0.55, 0.7) if n > 1 else r.uniform(0.5, 0.65)
    arm_w = r.uniform(0.08, 0.22)
    width = n * seat_w + 2 * arm_w
    depth = r.uniform(0.8, 0.95)
    leg_h = r.uniform(0.04, 0.14)
    seat_h = r.uniform(0.40, 0.46)
    cush_t = r.uniform(0.10, 0.16)
    back_h = r.uniform(0.72, 0.9)
    arm_h = r.uniform(0.55, min(0.68, back_h - 0.05))
    back_t = r.uniform(0.14, 0.22)
    e = r.uniform(0.12, 0.3)  # corner roundness of the upholstery
    fab = skin(kit.upholstery(), 3.0)
    b = Builder(category)
    hx, hy = width / 2, depth / 2
    ix = hx - arm_w
    base_top = seat_h - cush_t
    b.add(box((-ix, -hy, leg_h), (ix, hy, base_top)), fab)
    for s in (-1, 1):
        c = (s * (hx - arm_w / 2), 0.0, (leg_h + arm_h) / 2)
        b.add(superellipsoid((arm_w, depth, arm_h - leg_h), e, 12, 8).translated(c), fab)
    b.add(superellipsoid((2 * ix, back_t, back_h - leg_h), e, 12, 8).translated(
        (0, -hy + back_t / 2, (leg_h + back_h) / 2)), fab)
    cw = 2 * ix / n
    for k in range(n):
        cx = -ix + (k + 0.5) * cw
        b.add(superellipsoid((cw - 0.01, depth - back_t, cush_t), e, 12, 6).translated(
            (cx, back_t / 2, base_top + cush_t / 2)), fab)
    front = -hy + back_t
    if r.random() < 0.7:  # loose back cushions
        bt = r.uniform(0.1, 0.16)
        bh = min(back_h - seat_h + r.uniform(-0.05, 0.03), 0.55)
        for k in range(n):
            cx = -ix + (k + 0.5) * cw
            b.add(superellipsoid((cw - 0.01, bt, bh), e + 0.1, 12, 8).translated(
                (cx, front + bt / 2, seat_h + bh / 2)), fab)
        front += bt
    inset = 0.05
    add_legs(b, r, corners(hx - inset, hy - inset), leg_h, r.uniform(0.03, 0.05),
             leg_skin(r, kit))
    b.surface(-ix + 0.02, front + 0.005, ix - 0.02, hy - 0.1, seat_h, back_h - seat_h + 0.3,
              "seat")
    return b.model()


def armchair(r: Gen, kit: MaterialKit) -> Model:
    return sofa(r, kit, seats=1, category="armchair")


def chair(r: Gen, kit: MaterialKit, design: dict | None = None) -> Model:
    """Dining chair: four legs, a seat (maybe padded) and a back of slats, spindles or a
    panel. ``design`` fixes the random choices so a table's chairs match."""
    d = design or chair_design(r, kit)
    b = Builder("chair")
    sw, sd, sh, st = d["sw"], d["sd"], d["sh"], d["st"]
    lw, top = d["lw"], d["back_h"]
    hx, hy = sw / 2, sd / 2
    frame, seat = d["frame"], d["seat"]
    b.add(box((-hx, -hy, sh - st), (hx, hy, sh)), seat)
    front = [(-hx + lw / 2, hy - lw / 2), (hx - lw / 2, hy - lw / 2)]
    add_legs(b, r, front, sh - st, lw, frame, d["leg_style"])
    for x in (-hx + lw / 2, hx - lw / 2):  # back legs continue up as the back posts
        b.add(box((x - lw / 2, -hy, 0), (x + lw / 2, -hy + lw, top)), frame)
    y0, y1 = -hy, -hy + lw * 0.8
    inner = hx - lw
    if d["back"] == "panel":
        b.add(box((-inner, y0, sh + 0.12), (inner, y1, top - 0.02)), frame)
    elif d["back"] == "slats":
        n = d["n"]
        span = top - sh - 0.1
        for k in range(n):
            z = sh + 0.1 + span * (k + 0.5) / n
            b.add(box((-inner, y0, z - 0.025), (inner, y1, z + 0.025)), frame)
    else:  # spindles under a top rail
        b.add(box((-inner, y0, top - 0.07), (inner, y1, top)), frame)
        n = d["n"] + 2
        for k in range(n):
            x = -inner + 2 * inner * (k + 0.5) / n
            b.add(box((x - 0.008, y0, sh), (x + 0.008, y1, top - 0.07)), frame)
    if d["pad"] is not None:
        b.add(superellipsoid((sw - 0.04, sd - lw - 0.03, 0.04), 0.3, 10, 6).translated(
            (0, lw / 2, sh + 0.02)), d["pad"])
    return b.model()


def chair_design(r: Gen, kit: MaterialKit) -> dict:
    frame = skin(kit.wood(size=64), 2.0) if r.random() < 0.65 else skin(kit.painted(), 2.0)
    seat = frame if r.random() < 0.6 else skin(kit.plastic(), 2.0)
    return {
        "sw": r.uniform(0.4, 0.5), "sd": r.uniform(0.4, 0.48), "sh": r.uniform(0.44, 0.48),
        "st": r.uniform(0.02, 0.05), "lw": r.uniform(0.025, 0.045),
        "back_h": r.uniform(0.8, 1.0), "frame": frame, "seat": seat,
        "leg_style": str(r.choice(["square", "round", "tapered"])),
        "back": str(r.choice(["panel", "slats", "spindles"])), "n": int(r.integers(1, 5)),
        "pad": skin(kit.upholstery(), 4.0) if r.random() < 0.4 else None,
    }


def stool(r: Gen, kit: MaterialKit, bar: bool | None = None) -> Model:
    """Round or square stool on three or four legs; bar stools have a foot ring."""
    bar = bool(r.random() < 0.5) if bar is None else bar
    h = r.uniform(0.62, 0.78) if bar else r.uniform(0.42, 0.5)
    rad = r.uniform(0.15, 0.2)
    st = r.uniform(0.03, 0.05)
    frame = leg_skin(r, kit)
    top = skin(kit.wood(size=64), 2.0) if r.random() < 0.5 else skin(kit.upholstery(), 4.0)
    b = Builder("stool")
    if r.random() < 0.6:
        b.add(cylinder(rad, st, 20, z0=h - st), top)
    else:
        b.add(box((-rad, -rad, h - st), (rad, rad, h)), top)
    n = int(r.integers(3, 5))
    lr = rad * 0.75
    ang = 2 * np.pi * np.arange(n) / n + np.pi / 4
    add_legs(b, r, [(lr * np.cos(a), lr * np.sin(a)) for a in ang], h - st,
             r.uniform(0.025, 0.04), frame, "round")
    if bar:
        b.add(torus(lr, 0.01, 20, 6).translated((0, 0, r.uniform(0.25, 0.32))), frame)
    return b.model()


# ---------------------------------------------------------------------------------------------
# Tables


def _table(r: Gen, kit: MaterialKit, category: str, w: float, d: float, h: float,
           round_top: bool) -> tuple[Builder, tuple | None]:
    """Top and legs (or a pedestal); returns the builder and, for legged tables, the leg
    frame (half extents, leg width, underside height, skin) for rails and shelves."""
    b = Builder(category)
    top_t = r.uniform(0.025, 0.055)
    k = r.random()
    if k < 0.55:
        top = frame = skin(kit.wood(), 1.5)
    elif k < 0.75:
        top, frame = skin(kit.stone(), 1.5), skin(kit.metal(), 4.0)
    else:
        top = frame = skin(kit.painted(), 2.0)
    if r.random() < 0.3:
        frame = skin(kit.metal(), 4.0)
    if round_top:
        outline = ellipse(w, d, 32)
    else:
        outline = rounded_rect(w, d, r.uniform(0.0, 0.12) if r.random() < 0.5 else 0.0)
    b.add(extrude(outline, h - top_t, h), top)
    under = h - top_t
    lw = r.uniform(0.035, 0.07)
    if round_top and r.random() < 0.6:  # pedestal
        b.add(cylinder(r.uniform(0.03, 0.06), under - 0.03, 12, z0=0.03), frame)
        b.add(cylinder(min(w, d) * r.uniform(0.25, 0.35), 0.03, 20), frame)
        return b, None
    inset = r.uniform(0.04, 0.12)
    if round_top:
        hx = hy = (min(w, d) / 2) * 0.62
    else:
        hx, hy = w / 2 - inset - lw / 2, d / 2 - inset - lw / 2
    add_legs(b, r, corners(hx, hy), under, lw, frame)
    return b, (hx, hy, lw, under, frame)


def coffee_table(r: Gen, kit: MaterialKit) -> Model:
    round_top = r.random() < 0.25
    w = r.uniform(0.6, 0.95) if round_top else r.uniform(0.8, 1.4)
    d = w if round_top else r.uniform(0.45, 0.75)
    h = r.uniform(0.36, 0.48)
    b, apron = _table(r, kit, "coffee_table", w, d, h, round_top)
    if apron is not None and r.random() < 0.45:  # lower shelf between the legs
        hx, hy, lw, under, frame = apron
        z = r.uniform(0.08, 0.16)
        b.add(box((-hx + lw / 2, -hy + lw / 2, z), (hx - lw / 2, hy - lw / 2, z + 0.02)), frame)
        b.surface(-hx + lw / 2 + 0.01, -hy + lw / 2 + 0.01, hx - lw / 2 - 0.01, hy - lw / 2 - 0.01,
                  z + 0.02, under - z - 0.03, "shelf")
    s = 0.35 if round_top else 0.48
    b.surface(-w * s, -d * s, w * s, d * s, h, 1.0, "top")
    return b.model()


def dining_table(r: Gen, kit: MaterialKit) -> Model:
    round_top = r.random() < 0.25
    if round_top:
        w = d = r.uniform(0.9, 1.2)
    else:
        w, d = r.uniform(1.1, 2.0), r.uniform(0.75, 1.0)
    h = r.uniform(0.72, 0.77)
    b, apron = _table(r, kit, "dining_table", w, d, h, round_top)
    if apron is not None and not round_top:  # rails between the legs, under the top
        hx, hy, lw, under, frame = apron
        ah = r.uniform(0.06, 0.1)
        z0 = under - ah
        t = 0.02
        for s in (-1, 1):
            b.add(box((-hx + lw / 2, s * hy - t / 2, z0), (hx - lw / 2, s * hy + t / 2, under)),
                  frame)
            b.add(box((s * hx - t / 2, -hy + lw / 2, z0), (s * hx + t / 2, hy - lw / 2, under)),
                  frame)
    s = 0.35 if round_top else 0.47
    b.surface(-w * s, -d * s, w * s, d * s, h, 1.0, "top")
    return b.model()


# ---------------------------------------------------------------------------------------------
# Storage


def bookshelf(r: Gen, kit: MaterialKit, height: float | None = None) -> Model:
    """Open shelving unit: sides, top, bottom, back panel and 2-5 inner shelves; every
    compartment is a surface for books and ornaments."""
    w = r.uniform(0.6, 1.2)
    d = r.uniform(0.26, 0.4)
    h = height if height is not None else r.uniform(1.1, 2.0)
    t = r.uniform(0.018, 0.03)
    plinth = r.uniform(0.0, 0.08)
    body = skin(kit.wood(), 1.5) if r.random() < 0.65 else skin(kit.painted(), 1.5)
    back = body if r.random() < 0.6 else skin(kit.painted(light=True), 1.5)
    b = Builder("bookshelf")
    hx, hy = w / 2, d / 2
    bt = 0.008
    for s in (-1, 1):
        b.add(box((s * hx - t / 2 - s * t / 2, -hy, 0), (s * hx + t / 2 - s * t / 2, hy, h)), body)
    b.add(box((-hx + t, -hy, h - t), (hx - t, hy, h)), body)
    b.add(box((-hx + t, -hy, 0), (hx - t, -hy + bt, h - t)), back)
    if plinth > 0.01:
        b.add(box((-hx + t, hy - 0.03, 0), (hx - t, hy - 0.01, plinth)), body)
    n = max(2, int(round((h - plinth) / r.uniform(0.3, 0.42))))
    levels = plinth + (h - t - plinth) * np.arange(n) / n
    levels += np.concatenate([[0.0], r.uniform(-0.03, 0.03, n - 1)])
    tops = []
    for z in levels:
        b.add(box((-hx + t, -hy + bt, z), (hx - t, hy, z + t)), body)
        tops.append(z + t)
    ceilings = list(levels[1:]) + [h - t]
    for z, c in zip(tops, ceilings, strict=True):
        b.surface(-hx + t + 0.005, -hy + bt + 0.005, hx - t - 0.005, hy - 0.005, z, c - z, "shelf")
    return b.model()


def _handle(b: Builder, r: Gen, x: float, z: float, y: float, sk: Skin, style: str,
            vertical: bool) -> None:
    if style == "knob":
        b.add(cylinder(0.012, 0.025, 8).rotated("x", -np.pi / 2).translated((x, y, z)), sk)
    else:
        ln = 0.12
        if vertical:
            b.add(box((x - 0.006, y, z - ln / 2), (x + 0.006, y + 0.025, z + ln / 2)), sk)
        else:
            b.add(box((x - ln / 2, y, z - 0.006), (x + ln / 2, y + 0.025, z + 0.006)), sk)


def add_fronts(
    b: Builder, r: Gen, x0: float, x1: float, z0: float, z1: float, y: float,
    front: Skin, handle: Skin, *, drawers: int = 0, style: str | None = None,
) -> None:
    """Doors (and a column of drawers on top) covering the front rectangle at depth y."""
    style = style or str(r.choice(["knob", "bar"]))
    gap, th = 0.004, 0.018
    zs = z1
    if drawers:
        dh = min(0.18, (z1 - z0) / (drawers + 1))
        for k in range(drawers):
            top = z1 - k * dh
            b.add(box((x0 + gap, y, top - dh + gap), (x1 - gap, y + th, top - gap)), front)
            _handle(b, r, (x0 + x1) / 2, top - dh / 2, y + th, handle, style, False)
        zs = z1 - drawers * dh
    n = max(1, int(round((x1 - x0) / 0.5)))
    dw = (x1 - x0) / n
    for k in range(n):
        a = x0 + k * dw
        b.add(box((a + gap, y, z0 + gap), (a + dw - gap, y + th, zs - gap)), front)
        hx = a + dw - 0.05 if k % 2 == 0 else a + 0.05
        if n == 1:
            hx = a + dw - 0.05
        _handle(b, r, hx, zs - 0.1 if zs - z0 > 0.5 else (zs + z0) / 2, y + th, handle, style,
                True)


def cabinet(r: Gen, kit: MaterialKit, kind: str | None = None, width: float | None = None,
            depth: float | None = None, height: float | None = None,
            body: Skin | None = None, fronts: Skin | None = None, handles: Skin | None = None
            ) -> Model:
    """Closed cabinet: sideboard, low or tall cupboard, or a kitchen wall cupboard."""
    kind = kind or str(r.choice(["sideboard", "sideboard", "low", "tall"]))
    dims = {
        "sideboard": ((0.8, 1.8), (0.4, 0.5), (0.7, 0.95)),
        "low": ((0.5, 1.0), (0.35, 0.5), (0.5, 0.7)),
        "tall": ((0.6, 1.0), (0.4, 0.55), (1.6, 2.0)),
        "wall": ((0.4, 1.0), (0.3, 0.36), (0.6, 0.8)),
    }[kind]
    w = width or r.uniform(*dims[0])
    d = depth or r.uniform(*dims[1])
    h = height or r.uniform(*dims[2])
    body = body or (skin(kit.wood(), 1.5) if r.random() < 0.5 else skin(kit.painted(), 1.5))
    front = fronts or (body if r.random() < 0.5 else skin(kit.painted(), 1.5))
    handle = handles or skin(kit.metal(), 4.0)
    b = Builder("cabinet")
    legs = 0.0 if kind == "wall" or r.random() < 0.4 else r.uniform(0.08, 0.2)
    hx, hy = w / 2, d / 2
    y_front = hy - 0.018
    b.add(box((-hx, -hy, legs), (hx, y_front, h)), body)
    if legs:
        add_legs(b, r, corners(hx - 0.04, hy - 0.05), legs, 0.035, leg_skin(r, kit))
    drawers = int(r.integers(0, 2)) if kind in ("sideboard", "low") else 0
    add_fronts(b, r, -hx, hx, legs, h, y_front, front, handle, drawers=drawers)
    if kind != "wall":
        b.surface(-hx + 0.02, -hy + 0.02, hx - 0.02, y_front - 0.01, h, 1.5, "top")
    return b.model()


def tv_stand(r: Gen, kit: MaterialKit) -> Model:
    """Low media unit: open compartments and doors/drawers under a top."""
    w, d, h = r.uniform(1.2, 2.0), r.uniform(0.35, 0.5), r.uniform(0.4, 0.6)
    body = skin(kit.wood(), 1.5) if r.random() < 0.6 else skin(kit.painted(), 1.5)
    front = body if r.random() < 0.5 else skin(kit.painted(), 1.5)
    handle = skin(kit.metal(), 4.0)
    t = r.uniform(0.018, 0.03)
    legs = r.uniform(0.05, 0.15) if r.random() < 0.5 else 0.0
    b = Builder("tv_stand")
    hx, hy = w / 2, d / 2
    yf = hy - 0.018
    b.add(box((-hx, -hy, h - t), (hx, hy, h)), body)
    b.add(box((-hx, -hy, legs), (hx, yf, legs + t)), body)
    b.add(box((-hx + t, -hy, legs + t), (hx - t, -hy + 0.008, h - t)), body)
    n = int(r.integers(2, 5))
    xs = np.linspace(-hx, hx, n + 1)
    for k, x in enumerate(xs):
        x0 = min(max(x - t / 2, -hx), hx - t)
        lo, hi = (-hy, yf) if k in (0, n) else (-hy + 0.008, yf)
        b.add(box((x0, lo, legs + t), (x0 + t, hi, h - t)), body)
    if legs:
        add_legs(b, r, corners(hx - 0.04, hy - 0.05), legs, 0.035, leg_skin(r, kit))
    for k in range(n):
        a, c = xs[k] + t / 2, xs[k + 1] - t / 2
        if k == 0:
            a = xs[0] + t
        if k == n - 1:
            c = xs[-1] - t
        if r.random() < 0.5:  # open compartment
            b.surface(a + 0.005, -hy + 0.015, c - 0.005, yf - 0.005, legs + t, h - legs - 2 * t,
                      "shelf")
        else:
            add_fronts(b, r, a, c, legs + t, h - t, yf, front, handle,
                       drawers=int(r.random() < 0.3))
    b.surface(-hx + 0.02, -hy + 0.02, hx - 0.02, hy - 0.02, h, 1.5, "top")
    return b.model()


def rug(r: Gen, kit: MaterialKit, width: float | None = None, depth: float | None = None
        ) -> Model:
    """Flat textile on the floor; the pattern is mapped once over the whole rug."""
    w = width or r.uniform(1.4, 3.0)
    d = depth or r.uniform(1.0, 2.2)
    t = r.uniform(0.006, 0.012)
    b = Builder("rug")
    sk = skin(kit.rug(), (1.0 / w, 1.0 / d))
    if r.random() < 0.2:
        outline = ellipse(w, d, 40) + np.array([w / 2, d / 2])
        b.add(extrude(outline, 0, t).translated((-w / 2, -d / 2, 0)), sk)
    else:
        b.add(box((0, 0, 0), (w, d, t)).translated((-w / 2, -d / 2, 0)), sk)
    b.surface(-w / 2 + 0.05, -d / 2 + 0.05, w / 2 - 0.05, d / 2 - 0.05, t, 3.0, "rug")
    return b.model()
