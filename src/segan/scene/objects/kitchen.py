"""Kitchen units, appliances and cookware."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.objects.furniture import add_fronts
from segan.scene.primitives import (
    Skin,
    box,
    cylinder,
    frustum,
    lathe,
    merge,
    quad,
    torus,
    tube,
)


@dataclass
class KitchenStyle:
    """What the units of one kitchen share, so the runs read as one fitted kitchen."""

    height: float
    depth: float
    plinth: float
    top_t: float
    top: Skin
    body: Skin
    front: Skin
    handle: Skin
    handle_style: str
    appliance: Skin  # fridge, stove and microwave finish
    dark: Skin  # glass, hob, plinth


def kitchen_style(r: Gen, kit: MaterialKit) -> KitchenStyle:
    body = skin(kit.painted(light=r.random() < 0.5), 1.5)
    front = skin(kit.wood(), 1.5) if r.random() < 0.4 else skin(kit.painted(), 1.5)
    top = skin(kit.stone(), 1.5) if r.random() < 0.7 else skin(kit.wood(), 1.5)
    if r.random() < 0.6:
        appliance = skin(kit.metal((0.75, 0.76, 0.78)), 4.0)
    else:
        appliance = skin(kit.painted(light=True, roughness=0.3), 2.0)
    return KitchenStyle(
        height=r.uniform(0.86, 0.92), depth=r.uniform(0.58, 0.65), plinth=r.uniform(0.08, 0.12),
        top_t=r.uniform(0.025, 0.04), top=top, body=body, front=front,
        handle=skin(kit.metal(), 4.0), handle_style=str(r.choice(["knob", "bar"])),
        appliance=appliance, dark=skin(kit.painted((0.04, 0.04, 0.045), roughness=0.15), 2.0),
    )


def counter(r: Gen, kit: MaterialKit, style: KitchenStyle, width: float,
            sink: bool = False) -> Model:
    """Base unit: recessed plinth, carcass, doors/drawers, worktop; optionally a sink."""
    b = Builder("counter")
    hx, hy, h = width / 2, style.depth / 2, style.height
    under = h - style.top_t
    yf = hy - 0.045  # carcass front; fronts and handles stand proud of it under the overhang
    b.add(box((-hx, -hy, 0), (hx, yf - 0.05, style.plinth)), style.dark)
    basin_z = h - r.uniform(0.16, 0.2)
    # a sink unit's carcass stops under the basin; side and back panels close it up to the top
    carcass_top = basin_z - 0.005 if sink else under
    b.add(box((-hx, -hy, style.plinth), (hx, yf, carcass_top)), style.body)
    if sink:
        b.add([box((-hx, -hy, carcass_top), (-hx + 0.018, yf, under)),
               box((hx - 0.018, -hy, carcass_top), (hx, yf, under)),
               box((-hx + 0.018, -hy, carcass_top), (hx - 0.018, -hy + 0.018, under))],
              style.body)
    drawers = 0 if sink else int(r.choice([0, 1, 1, 3]))
    add_fronts(b, r, -hx, hx, style.plinth, under, yf, style.front, style.handle,
               drawers=drawers, style=style.handle_style)
    if not sink:
        b.add(box((-hx, -hy, under), (hx, hy, h)), style.top)
        b.surface(-hx + 0.02, -hy + 0.03, hx - 0.02, hy - 0.04, h, 1.2, "top")
        return b.model()
    sw = min(width - 0.16, r.uniform(0.4, 0.6))
    sd = r.uniform(0.34, 0.42)
    cy = r.uniform(0.0, 0.04)
    y0, y1 = cy - sd / 2, cy + sd / 2
    for lo, hi in (((-hx, -hy), (-sw / 2, hy)), ((sw / 2, -hy), (hx, hy)),
                   ((-sw / 2, -hy), (sw / 2, y0)), ((-sw / 2, y1), (sw / 2, hy))):
        b.add(box((*lo, under), (*hi, h)), style.top)
    steel = skin(kit.metal((0.7, 0.71, 0.73)), 4.0)
    t = 0.006
    b.add(merge([
        box((-sw / 2, y0, basin_z), (sw / 2, y1, basin_z + t)),
        box((-sw / 2, y0, basin_z), (-sw / 2 + t, y1, h - 0.001)),
        box((sw / 2 - t, y0, basin_z), (sw / 2, y1, h - 0.001)),
        box((-sw / 2, y0, basin_z), (sw / 2, y0 + t, h - 0.001)),
        box((-sw / 2, y1 - t, basin_z), (sw / 2, y1, h - 0.001)),
    ]), steel)
    fy = (y0 - hy) / 2
    fh = r.uniform(0.22, 0.35)
    reach = min(r.uniform(0.15, 0.22), (y0 - fy) + sd * 0.45)
    ang = np.linspace(0, np.pi, 9)
    arc = np.stack([np.zeros(9), fy + reach / 2 - reach / 2 * np.cos(ang),
                    h + fh + reach / 2 * np.sin(ang) * 0.6], 1)
    path = np.concatenate([[[0, fy, h]], arc, [[0, fy + reach, h + fh - 0.06]]])
    b.add(merge([tube(path, 0.012, 8), cylinder(0.025, 0.02, 10, z0=h).translated((0, fy, 0))]),
          steel)
    if hx - sw / 2 > 0.12:
        for s in (-1, 1):
            a, c = sorted((s * (sw / 2 + 0.02), s * (hx - 0.02)))
            b.surface(a, -hy + 0.03, c, hy - 0.04, h, 1.2, "top")
    return b.model()


def stove(r: Gen, kit: MaterialKit, style: KitchenStyle, width: float | None = None) -> Model:
    """Free-standing range: hob with four burners, control knobs, oven door with a window."""
    w = width or float(r.choice([0.6, 0.6, 0.76]))
    hx, hy, h = w / 2, style.depth / 2, style.height
    body = style.appliance
    b = Builder("stove")
    b.add(box((-hx, -hy, 0), (hx, hy - 0.03, h - 0.03)), body)
    gas = r.random() < 0.5
    hob = style.dark if not gas or r.random() < 0.5 else body
    b.add(box((-hx, -hy, h - 0.03), (hx, hy - 0.03, h)), hob)
    spots, top = [], h
    burner = skin(kit.painted((0.12, 0.12, 0.12), roughness=0.4), 4.0)
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * w / 4, sy * (style.depth / 4) - 0.015
            rad = r.uniform(0.06, 0.1)
            if gas:
                grate = merge([
                    box((x - rad - 0.01, y - 0.006, h), (x + rad + 0.01, y + 0.006, h + 0.03)),
                    box((x - 0.006, y - rad - 0.01, h), (x + 0.006, y + rad + 0.01, h + 0.03)),
                    torus(rad * 0.5, 0.008, 16, 6).translated((x, y, h + 0.01)),
                ])
                b.add(grate, burner)
                top = h + 0.03
            else:
                b.add(cylinder(rad, 0.004, 20, z0=h).translated((x, y, 0)), burner)
                top = max(top, h + 0.004)
            spots.append((x, y))
    knob = skin(kit.plastic((0.1, 0.1, 0.1)), 8.0)
    n = 4 + int(r.integers(0, 2))
    knobs = [
        cylinder(0.018, 0.025, 10).rotated("x", -np.pi / 2).translated(
            (-hx + w * (k + 0.5) / n, hy - 0.03, h - 0.075))
        for k in range(n)
    ]
    b.add(merge(knobs), knob)
    door_top = h - 0.13
    b.add(box((-hx + 0.01, hy - 0.03, 0.12), (hx - 0.01, hy - 0.01, door_top)), body)
    b.add(quad((-hx + 0.08, hy - 0.01, 0.2), (hx - 0.08, hy - 0.009, door_top - 0.1), "+y"),
          skin(kit.screen(), 1.0))
    b.add(merge([
        tube([(-hx + 0.06, hy + 0.025, door_top - 0.04), (hx - 0.06, hy + 0.025, door_top - 0.04)],
             0.01, 8),
        box((-hx + 0.055, hy - 0.01, door_top - 0.05), (-hx + 0.075, hy + 0.02, door_top - 0.03)),
        box((hx - 0.075, hy - 0.01, door_top - 0.05), (hx - 0.055, hy + 0.02, door_top - 0.03)),
    ]), style.handle)
    b.add(box((-hx + 0.01, hy - 0.03, 0.01), (hx - 0.01, hy - 0.01, 0.11)), body)
    b.surface(-hx + 0.02, -hy + 0.02, hx - 0.02, hy - 0.05, top, 1.0, "burner", spots=spots)
    return b.model()


def fridge(r: Gen, kit: MaterialKit, style: KitchenStyle | None = None) -> Model:
    """Tall fridge-freezer: body, one to three doors, long bar handles."""
    w = r.uniform(0.6, 0.9)
    d = style.depth + r.uniform(0.0, 0.08) if style else r.uniform(0.6, 0.72)
    h = r.uniform(1.65, 1.95)
    if style is not None and r.random() < 0.8:
        finish = style.appliance
    else:
        finish = skin(kit.painted(kit.vivid_color(), roughness=0.3), 2.0)
    hx, hy = w / 2, d / 2
    b = Builder("fridge")
    b.add(box((-hx, -hy, 0.02), (hx, hy - 0.045, h)), finish)
    b.add(box((-hx + 0.02, -hy, 0), (hx - 0.02, hy - 0.08, 0.02)),
          skin(kit.painted((0.05, 0.05, 0.05)), 2.0))
    yf, gap = hy - 0.045, 0.004
    layout = str(r.choice(["top", "bottom", "side"] if w > 0.8 else ["top", "bottom", "single"]))
    split = r.uniform(0.28, 0.36) * h
    if layout == "top":
        doors = [(-hx, hx, 0.02, h - split), (-hx, hx, h - split, h)]
    elif layout == "bottom":
        doors = [(-hx, hx, 0.02, split), (-hx, hx, split, h)]
    elif layout == "side":
        doors = [(-hx, -hx * 0.1, 0.02, h), (-hx * 0.1, hx, 0.02, h)]
    else:
        doors = [(-hx, hx, 0.02, h)]
    hs = style.handle if style else skin(kit.metal(), 4.0)
    for k, (x0, x1, z0, z1) in enumerate(doors):
        b.add(box((x0 + gap, yf, z0 + gap), (x1 - gap, hy - 0.03, z1 - gap)), finish)
        hx_ = x1 - 0.05 if (layout != "side" or k == 0) else x0 + 0.05
        ln = min(0.6, (z1 - z0) * 0.6)
        # handles sit near hand height, or at the bottom edge of a door above it
        zc = float(np.clip(1.05, z0 + ln / 2 + 0.05, z1 - ln / 2 - 0.05))
        b.add(merge([
            box((hx_ - 0.01, hy - 0.01, zc - ln / 2), (hx_ + 0.01, hy, zc + ln / 2)),
            box((hx_ - 0.006, hy - 0.03, zc - ln / 2 + 0.02), (hx_ + 0.006, hy - 0.01,
                                                                zc - ln / 2 + 0.04)),
            box((hx_ - 0.006, hy - 0.03, zc + ln / 2 - 0.04), (hx_ + 0.006, hy - 0.01,
                                                                zc + ln / 2 - 0.02)),
        ]), hs)
    b.surface(-hx + 0.03, -hy + 0.03, hx - 0.03, hy - 0.06, h, 0.6, "top")
    return b.model()


def microwave(r: Gen, kit: MaterialKit, style: KitchenStyle | None = None) -> Model:
    w, d, h = r.uniform(0.44, 0.58), r.uniform(0.33, 0.42), r.uniform(0.25, 0.33)
    finish = style.appliance if style and r.random() < 0.6 else skin(kit.painted(), 2.0)
    hx, hy = w / 2, d / 2
    b = Builder("microwave")
    feet = 0.012
    b.add(merge([cylinder(0.012, feet, 8).translated((x, y, 0))
                 for x, y in ((-hx + 0.04, -hy + 0.04), (hx - 0.04, -hy + 0.04),
                              (-hx + 0.04, hy - 0.05), (hx - 0.04, hy - 0.05))]),
          skin(kit.plastic((0.05, 0.05, 0.05)), 8.0))
    b.add(box((-hx, -hy, feet), (hx, hy - 0.015, h)), finish)
    pw = w * r.uniform(0.22, 0.3)
    dark = skin(kit.screen(), 1.0)
    door = finish if r.random() < 0.5 else skin(kit.painted((0.08, 0.08, 0.08), roughness=0.3),
                                                2.0)
    b.add(box((-hx + 0.005, hy - 0.015, feet + 0.005), (hx - pw, hy, h - 0.005)), door)
    b.add(quad((-hx + 0.04, hy, feet + 0.04), (hx - pw - 0.06, hy + 0.001, h - 0.04), "+y"), dark)
    b.add(box((hx - pw - 0.04, hy, feet + 0.04), (hx - pw - 0.02, hy + 0.02, h - 0.04)), finish)
    panel = skin(kit.painted((0.15, 0.15, 0.16), roughness=0.4), 4.0)
    b.add(box((hx - pw + 0.005, hy - 0.015, feet + 0.005), (hx - 0.005, hy - 0.002, h - 0.005)),
          panel)
    cx = hx - pw / 2
    b.add(quad((cx - pw * 0.35, hy - 0.002, h - 0.07), (cx + pw * 0.35, hy - 0.001, h - 0.03),
               "+y"), skin(kit.painted((0.1, 0.25, 0.15)), 4.0))
    buttons = [
        box((cx + (i - 1) * 0.025 - 0.008, hy - 0.002, h - 0.11 - j * 0.025 - 0.008),
            (cx + (i - 1) * 0.025 + 0.008, hy + 0.004, h - 0.11 - j * 0.025 + 0.008))
        for i in range(3) for j in range(4)
    ]
    b.add(merge(buttons), skin(kit.plastic(kit.paint_color(light=True)), 8.0))
    return b.model()


def kettle(r: Gen, kit: MaterialKit) -> Model:
    """Electric jug kettle or stove-top kettle: lathed body, spout, handle, lid knob."""
    b = Builder("kettle")
    metal = r.random() < 0.5
    finish = skin(kit.metal(), 6.0) if metal else skin(kit.plastic(kit.vivid_color()), 6.0)
    trim = skin(kit.plastic((0.06, 0.06, 0.06)), 6.0)
    if r.random() < 0.5:  # electric jug
        r0, r1, h = r.uniform(0.07, 0.09), r.uniform(0.055, 0.075), r.uniform(0.2, 0.26)
        b.add(cylinder(r0 + 0.01, 0.02, 16), trim)
        b.add(lathe([(0, 0.02), (r0, 0.02), (r1, h), (0, h + 0.01)], 18), finish)
        path = [(-r1 + 0.005, 0, h - 0.02), (-r1 - 0.06, 0, h - 0.04), (-r0 - 0.06, 0, 0.07),
                (-r0 + 0.005, 0, 0.05)]
        b.add(tube(path, 0.013, 8), trim)
        b.add(frustum(0.02, 0.01, 0.04, 8).rotated("y", np.pi / 3).translated((r1 - 0.01, 0,
                                                                               h - 0.03)), finish)
        return b.model()
    r0, h = r.uniform(0.08, 0.11), r.uniform(0.12, 0.17)
    prof = [(0, 0), (r0, 0), (r0 * 1.03, h * 0.3), (r0 * 0.85, h * 0.75), (r0 * 0.45, h),
            (0, h + 0.005)]
    b.add(lathe(prof, 20), finish)
    b.add(cylinder(0.015, 0.02, 10, z0=h), trim)
    b.add(tube([(r0 * 0.9, 0, h * 0.35), (r0 + 0.05, 0, h * 0.65), (r0 + 0.08, 0, h * 0.85)],
               [0.018, 0.012, 0.008], 8), finish)
    ang = np.linspace(0, np.pi, 9)
    hr = r0 * 0.6
    arc = np.stack([hr * np.cos(ang), np.zeros(9), h * 0.9 + r.uniform(0.05, 0.09) * np.sin(ang)],
                   1)
    b.add(tube(arc, 0.01, 8), trim)
    return b.model()


def pot(r: Gen, kit: MaterialKit) -> Model:
    """Cooking pot: thin-walled cylinder, maybe a lid, two loop handles or one long one."""
    r0, h = r.uniform(0.08, 0.13), r.uniform(0.08, 0.17)
    t = 0.004
    finish = skin(kit.metal(), 6.0) if r.random() < 0.7 else skin(kit.ceramic(), 6.0)
    b = Builder("pot")
    b.add(lathe([(0, 0), (r0, 0), (r0, h), (r0 - t, h), (r0 - t, t), (0, t)], 20), finish)
    if r.random() < 0.7:
        dh = r.uniform(0.015, 0.04)
        b.add(lathe([(r0 + 0.004, h), (r0 * 0.7, h + dh * 0.8), (0, h + dh)], 20), finish)
        b.add(cylinder(0.015, 0.02, 10, z0=h + dh - 0.002),
              skin(kit.plastic((0.05, 0.05, 0.05)), 6.0))
    grip = skin(kit.plastic((0.05, 0.05, 0.05)), 6.0) if r.random() < 0.5 else finish
    if r.random() < 0.6:
        for s in (-1, 1):
            ang = np.linspace(-np.pi / 2, np.pi / 2, 7)
            loop = np.stack([s * (r0 + 0.02 * np.cos(ang)), 0.03 * np.sin(ang),
                             np.full(7, h * 0.8)], 1)
            b.add(tube(loop, 0.006, 6), grip)
    else:
        ln = r.uniform(0.14, 0.2)
        b.add(tube([(r0 - 0.002, 0, h * 0.85), (r0 + ln, 0, h * 0.85 + ln * 0.15)], 0.011, 8),
              grip)
    return b.model()


def pan(r: Gen, kit: MaterialKit) -> Model:
    """Frying pan: flared shallow body (outside and non-stick inside) and a long handle."""
    r0, h = r.uniform(0.1, 0.14), r.uniform(0.035, 0.055)
    rb, t = r0 - r.uniform(0.015, 0.03), 0.004
    b = Builder("pan")
    outer = skin(kit.metal(), 6.0) if r.random() < 0.6 else skin(kit.plastic(kit.vivid_color()),
                                                                  6.0)
    b.add(lathe([(0, 0), (rb, 0), (r0, h), (r0 - t, h)], 20), outer)
    b.add(lathe([(r0 - t, h), (rb - t, t), (0, t)], 20),
          skin(kit.speckled((0.08, 0.08, 0.09), 0.3, roughness=0.4), 6.0))
    ln = r.uniform(0.15, 0.2)
    grip = skin(kit.wood(size=64), 4.0) if r.random() < 0.3 else skin(
        kit.plastic((0.06, 0.06, 0.06)), 6.0)
    b.add(tube([(r0 - 0.005, 0, h * 0.8), (r0 + ln * 0.5, 0, h * 0.8 + ln * 0.08),
                (r0 + ln, 0, h * 0.8 + ln * 0.15)], 0.011, 8), grip)
    return b.model()
