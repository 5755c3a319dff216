"""Generic object families: primitives, deformed primitives, composites (tools, toys),
organic blobs, everyday items; office / storage / workshop furniture is
:mod:`segan.scene.objects.generic_furniture`.

They exist so that a model cannot get by on memorising the 32 household categories: shapes
with no fixed class look, random proportions and any material. Which family belongs to the
training group and which is held out for out-of-domain tests is decided in
:mod:`segan.scene.categories` (``TRAIN_FAMILIES``, ``HELDOUT_FAMILIES``), not here.

Every builder takes ``(rng, kit)`` and, for small objects, ``max_height`` (the free height
above the surface it is meant for); the model is scaled down uniformly to fit.
"""

from __future__ import annotations

import numpy as np

from segan.scene.objects.base import Builder, Gen, MaterialKit, Model, skin
from segan.scene.objects.generic_furniture import crate, desk, office_chair, rack, workbench
from segan.scene.primitives import (
    Geom,
    box,
    box_c,
    cylinder,
    lathe,
    quad,
    sphere,
    superellipsoid,
    torus,
)
from segan.scene.primitives import Skin as _Skin

# ---------------------------------------------------------------------------------------------
# Shapes and deformations (pure geometry)


def prism(sides: int, radius: float, height: float, rings: int = 6, top: float = 1.0) -> Geom:
    """Regular ``sides``-gon prism (a cylinder for many sides) standing on z = 0, its top
    radius ``top`` times the bottom's (0: a pyramid or cone); ``rings`` rows of vertices up
    the side so that bends and twists stay smooth."""
    z = np.linspace(0.0, height, rings + 1)
    r = radius * (1.0 + (top - 1.0) * z / height)
    prof = [(0.0, 0.0), *zip(r, z, strict=True)] + ([(0.0, height)] if top > 0 else [])
    # start half a side off the x axis: a square prism is then axis-aligned
    return lathe(prof, sides, start=np.pi / sides)


def taper(g: Geom, k: float) -> Geom:
    """Scale x and y by 1 + k * (height fraction): k < 0 narrows towards the top."""
    v = g.vertices.copy()
    z0, z1 = v[:, 2].min(), v[:, 2].max()
    v[:, :2] *= (1.0 + k * (v[:, 2] - z0) / max(z1 - z0, 1e-9))[:, None]
    return Geom(v, g.faces, g.uvs)


def twist(g: Geom, angle: float) -> Geom:
    """Rotate each height's cross-section about z by ``angle`` times its height fraction."""
    v = g.vertices.copy()
    z0, z1 = v[:, 2].min(), v[:, 2].max()
    a = angle * (v[:, 2] - z0) / max(z1 - z0, 1e-9)
    c, s = np.cos(a), np.sin(a)
    v[:, 0], v[:, 1] = c * g.vertices[:, 0] - s * g.vertices[:, 1], s * g.vertices[:, 0] + c * \
        g.vertices[:, 1]
    return Geom(v, g.faces, g.uvs)


def bend(g: Geom, k: float) -> Geom:
    """Shift x by k * height * (height fraction)^2: a banana-like lean."""
    v = g.vertices.copy()
    z0, z1 = v[:, 2].min(), v[:, 2].max()
    t = (v[:, 2] - z0) / max(z1 - z0, 1e-9)
    v[:, 0] += k * (z1 - z0) * t ** 2
    return Geom(v, g.faces, g.uvs)


def displace(g: Geom, r: Gen, amount: float, waves: int = 5) -> Geom:
    """Push vertices along their direction from the centre by a smooth random field (a sum of
    ``waves`` sinusoids of position): coincident seam vertices move together, so the surface
    stays closed."""
    v = g.vertices
    c = 0.5 * (v.min(0) + v.max(0))
    d = v - c
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    unit = d / np.maximum(norm, 1e-9)
    scale = float(np.ptp(v, axis=0).max())
    field = np.zeros(len(v))
    for _ in range(waves):
        w = r.normal(0.0, 1.0, 3)
        w *= r.uniform(1.5, 4.0) / (np.linalg.norm(w) * scale) * 2 * np.pi
        field += np.sin(d @ w + r.uniform(0, 2 * np.pi)) / waves
    return Geom(v + unit * (amount * scale * field)[:, None], g.faces, g.uvs)


def any_skin(r: Gen, kit: MaterialKit, per_metre: float = 6.0) -> _Skin:
    """Any material a made thing might have: plastic, paint, metal, wood, ceramic, a print."""
    k = r.random()
    if k < 0.3:
        mat = kit.plastic(kit.vivid_color())
    elif k < 0.45:
        mat = kit.painted()
    elif k < 0.6:
        mat = kit.metal()
    elif k < 0.72:
        mat = kit.wood(size=64)
    elif k < 0.82:
        mat = kit.ceramic()
    elif k < 0.92:
        mat = kit.pattern(64)
    else:
        mat = kit.speckled(kit.vivid_color(), float(r.uniform(0.1, 0.3)))
    return skin(mat, per_metre)


def capped(model: Model, max_height: float | None) -> Model:
    """Scale a small model down uniformly so it is at most ``max_height`` tall."""
    h = float(model.size[2])
    if max_height is None or h <= max_height:
        return model
    return model.transformed(np.diag([max_height / h] * 3 + [1.0])).finalised()


def _standing(g: Geom) -> Geom:
    """Moved so it rests on z = 0."""
    return g.translated((0.0, 0.0, -g.vertices[:, 2].min()))


# ---------------------------------------------------------------------------------------------
# Primitive families


def block(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A box or prism of random proportions, sometimes tapered or twisted."""
    sides = int(r.choice([4, 4, 4, 3, 5, 6, 8]))
    rad = r.uniform(0.03, 0.12)
    g = prism(sides, rad, r.uniform(0.03, 0.28))
    g = g.scaled((1.0, r.uniform(0.4, 1.0), 1.0))
    if r.random() < 0.35:
        g = taper(g, r.uniform(-0.6, 0.4))
    if r.random() < 0.25:
        g = twist(g, r.uniform(-1.2, 1.2))
    b = Builder("block")
    b.add(g, any_skin(r, kit))
    return capped(b.model(), max_height)


def cylinder_shape(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A cylinder, tube-like or squat, sometimes bent or tapered."""
    g = prism(int(r.choice([12, 16, 20])), r.uniform(0.02, 0.09), r.uniform(0.04, 0.3),
              top=r.uniform(0.7, 1.2))
    if r.random() < 0.3:
        g = bend(g, r.uniform(-0.35, 0.35))
    b = Builder("cylinder")
    b.add(g, any_skin(r, kit))
    return capped(b.model(), max_height)


def cone(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A cone or pyramid, sometimes cut off (a frustum)."""
    sides = int(r.choice([3, 4, 16, 16]))
    g = prism(sides, r.uniform(0.03, 0.1), r.uniform(0.06, 0.25),
              top=0.0 if r.random() < 0.6 else r.uniform(0.2, 0.6))
    b = Builder("cone")
    b.add(g, any_skin(r, kit))
    return capped(b.model(), max_height)


def ball(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A sphere or ellipsoid resting on its lowest point."""
    rad = r.uniform(0.025, 0.1)
    g = sphere(1.0, 16, 10).scaled((rad, rad * r.uniform(0.6, 1.0), rad * r.uniform(0.6, 1.1)))
    b = Builder("ball")
    b.add(_standing(g), any_skin(r, kit, 10.0))
    return capped(b.model(), max_height)


def ring(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A torus lying flat (a quoit, a donut, a rubber ring)."""
    major = r.uniform(0.03, 0.1)
    g = torus(major, major * r.uniform(0.15, 0.45), 20, 10).scaled((1.0, 1.0, r.uniform(0.6, 1.0)))
    b = Builder("ring")
    b.add(_standing(g), any_skin(r, kit, 10.0))
    return capped(b.model(), max_height)


def superquadric(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A superellipsoid: anything from a pillow-like rounded box to a pinched star shape."""
    size = r.uniform(0.05, 0.2, 3) * np.array([1.0, 1.0, r.uniform(0.5, 1.2)])
    g = superellipsoid(size, float(r.choice([0.2, 0.4, 0.7, 1.0, 1.6, 2.2])), 20, 14)
    b = Builder("superquadric")
    b.add(_standing(g), any_skin(r, kit, 8.0))
    return capped(b.model(), max_height)


# ---------------------------------------------------------------------------------------------
# Composites: tools, toys


def _handle_skin(r: Gen, kit: MaterialKit) -> _Skin:
    return skin(kit.wood(size=64) if r.random() < 0.4 else kit.plastic(kit.vivid_color()), 8.0)


def hammer(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying on its side: a handle along x and a head across it at one end."""
    ln, hr = r.uniform(0.2, 0.35), r.uniform(0.01, 0.017)
    head_w, head_s = r.uniform(0.08, 0.14), r.uniform(0.02, 0.032)
    b = Builder("hammer")
    b.add(cylinder(hr, ln, 10).rotated("y", np.pi / 2).translated((0, 0, head_s / 2)),
          _handle_skin(r, kit))
    b.add(box_c((ln + head_s / 2, 0, head_s / 2), (head_s, head_w, head_s)), skin(kit.metal(), 8))
    return capped(b.model(), max_height)


def screwdriver(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying: a fat handle and a thin shaft along x."""
    hl, hr = r.uniform(0.08, 0.12), r.uniform(0.012, 0.02)
    sl = r.uniform(0.06, 0.18)
    b = Builder("screwdriver")
    b.add(prism(int(r.choice([6, 12])), hr, hl, 2, top=0.85).rotated("y", np.pi / 2)
          .translated((0, 0, hr)), _handle_skin(r, kit))
    b.add(cylinder(hr * 0.3, sl, 8).rotated("y", np.pi / 2).translated((hl, 0, hr)),
          skin(kit.metal(), 8.0))
    return capped(b.model(), max_height)


def spray_bottle(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A standing bottle body with a trigger head and a nozzle to one side."""
    br, bh = r.uniform(0.03, 0.05), r.uniform(0.12, 0.22)
    body = any_skin(r, kit)
    head = skin(kit.plastic(kit.vivid_color()), 8.0)
    b = Builder("spray_bottle")
    b.add(prism(16, br, bh, 3, top=r.uniform(0.7, 1.0)).scaled((1.0, r.uniform(0.6, 1.0), 1.0)),
          body)
    nh = r.uniform(0.04, 0.07)
    b.add(cylinder(br * 0.35, 0.03, 10, z0=bh), head)
    b.add(box_c((br * 0.3, 0, bh + 0.03 + nh / 2), (br * 1.6 + 0.02, br * 0.7, nh)), head)
    b.add(box_c((-br * 0.2, 0, bh + 0.03 - 0.015), (0.012, 0.01, 0.04)), head)  # trigger
    return capped(b.model(), max_height)


def toy_stack(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """2-4 primitives stacked on each other, each its own colour (toy-like)."""
    b = Builder("toy_stack")
    z = 0.0
    base = r.uniform(0.03, 0.08)
    for _ in range(int(r.integers(2, 5))):
        kind = int(r.integers(0, 4))
        rad = base * r.uniform(0.5, 1.0)
        h = r.uniform(0.02, 0.08)
        if kind == 0:
            g = prism(4, rad, h, 1)
        elif kind == 1:
            g = cylinder(rad, h, 16)
        elif kind == 2:
            g = _standing(sphere(rad, 14, 8))
        else:
            g = prism(16, rad, h, 1, top=0.0)
        top = float(g.vertices[:, 2].max())
        b.add(g.translated((r.uniform(-0.2, 0.2) * rad, 0.0, z)),
              skin(kit.plastic(kit.vivid_color()), 10.0))
        z += top
        if kind in (2, 3):  # nothing balances on a ball or a point
            break
    return capped(b.model(), max_height)


# ---------------------------------------------------------------------------------------------
# Everyday and office items


def tin_can(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A can with a printed label and metal rims."""
    rad, h = r.uniform(0.025, 0.05), r.uniform(0.05, 0.16)
    rim = skin(kit.metal(), 8.0)
    b = Builder("tin_can")
    b.add(cylinder(rad * 0.97, 0.006, 16), rim)
    b.add(cylinder(rad, h - 0.012, 16, z0=0.006), skin(kit.pattern(64), 8.0))
    b.add(cylinder(rad * 0.97, 0.006, 16, z0=h - 0.006), rim)
    return capped(b.model(), max_height)


def stapler(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    ln, w = r.uniform(0.12, 0.2), r.uniform(0.035, 0.05)
    body = skin(kit.plastic(kit.vivid_color()) if r.random() < 0.6 else kit.metal(), 8.0)
    b = Builder("stapler")
    b.add(box((0, -w / 2, 0), (ln, w / 2, 0.012)), skin(kit.metal(), 8.0))
    b.add(box((0.01, -w / 2 + 0.004, 0.012), (ln, w / 2 - 0.004, r.uniform(0.035, 0.05))), body)
    return capped(b.model(), max_height)


def keyboard(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    w, d = r.uniform(0.28, 0.45), r.uniform(0.11, 0.16)
    b = Builder("keyboard")
    b.add(box((-w / 2, -d / 2, 0), (w / 2, d / 2, 0.015)), skin(kit.plastic(), 8.0))
    b.add(box((-w / 2 + 0.01, -d / 2 + 0.01, 0.015), (w / 2 - 0.01, d / 2 - 0.01, 0.025)),
          skin(kit.tiles(kit.paint_color(), count=int(r.integers(10, 16)), size=64), 1.0))
    return capped(b.model(), max_height)


def monitor(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A flat screen on a neck and a foot, facing +y."""
    w = r.uniform(0.4, 0.65)
    sh = w * r.uniform(0.55, 0.65)
    lift = r.uniform(0.08, 0.15)
    case = skin(kit.plastic(kit.paint_color()) if r.random() < 0.5 else kit.metal(), 4.0)
    b = Builder("monitor")
    b.add(box_c((0, 0, 0.006), (w * 0.4, 0.18, 0.012)), case)
    b.add(box_c((0, -0.03, (lift + 0.012) / 2), (0.05, 0.025, lift)), case)
    b.add(box((-w / 2, -0.005, lift), (w / 2, 0.015, lift + sh)), case)
    b.add(quad((-w / 2 + 0.01, 0.015, lift + 0.01), (w / 2 - 0.01, 0.016, lift + sh - 0.01), "+y"),
          skin(kit.screen(), 1.0))
    return capped(b.model(), max_height)


def waste_bin(r: Gen, kit: MaterialKit) -> Model:
    """An open bin on the floor (round or square)."""
    rad, h = r.uniform(0.12, 0.2), r.uniform(0.25, 0.4)
    t = 0.006
    sides = 4 if r.random() < 0.4 else 20
    b = Builder("waste_bin")
    prof = [(0.0, 0.0), (rad, 0.0), (rad * 1.15, h), (rad * 1.15 - t, h), (rad - t, t), (0.0, t)]
    b.add(lathe(prof, sides, start=np.pi / sides), any_skin(r, kit, 4.0))
    return b.model()


# ---------------------------------------------------------------------------------------------
# Held-out families (see categories.HELDOUT_FAMILIES): shapes and layouts no training scene has


def capsule(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A pill: a cylinder with hemispherical ends, standing or lying."""
    rad, ln = r.uniform(0.015, 0.06), r.uniform(0.02, 0.2)
    a = np.linspace(-np.pi / 2, 0, 6)
    prof = [(rad * np.cos(t), rad * np.sin(t)) for t in a]
    prof += [(rad * np.cos(t), ln + rad * np.sin(t)) for t in -a[::-1]]
    g = lathe(prof, 16)
    if r.random() < 0.5:
        g = g.rotated("y", np.pi / 2)
    b = Builder("capsule")
    b.add(_standing(g), any_skin(r, kit, 10.0))
    return capped(b.model(), max_height)


def twisted_prism(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A star- or flower-shaped column twisted along its height."""
    n = int(r.integers(3, 7))
    ro, ri = r.uniform(0.03, 0.09), r.uniform(0.4, 0.7)
    g = prism(4 * n, ro, r.uniform(0.05, 0.25), rings=8)
    v = g.vertices.copy()
    lobes = 0.5 + 0.5 * np.cos(n * np.arctan2(v[:, 1], v[:, 0]))
    if r.random() < 0.5:  # sharp points rather than round petals
        lobes = lobes ** 3
    v[:, :2] *= (ri + (1.0 - ri) * lobes)[:, None]
    g = twist(Geom(v, g.faces, g.uvs), r.uniform(0.6, 2.5) * float(r.choice([-1, 1])))
    b = Builder("twisted_prism")
    b.add(g, any_skin(r, kit))
    return capped(b.model(), max_height)


def lumpy_blob(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A noise-displaced sphere: a stone, a potato, a lump of clay."""
    rad = r.uniform(0.03, 0.1)
    g = sphere(1.0, 20, 14).scaled((rad, rad * r.uniform(0.6, 1.0), rad * r.uniform(0.5, 0.9)))
    g = displace(g, r, r.uniform(0.08, 0.2))
    mat = kit.speckled(kit.paint_color(), float(r.uniform(0.1, 0.4))) if r.random() < 0.6 \
        else kit.plastic(kit.vivid_color())
    b = Builder("lumpy_blob")
    b.add(_standing(g), skin(mat, 10.0))
    return capped(b.model(), max_height)


def wrench(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """Lying flat: a bar with an open jaw at one end and a ring at the other."""
    ln, w, t = r.uniform(0.12, 0.25), r.uniform(0.012, 0.02), r.uniform(0.005, 0.009)
    jr = w * r.uniform(1.3, 1.8)
    steel = skin(kit.metal(), 8.0)
    b = Builder("wrench")
    b.add(box((-ln / 2, -w / 2, 0), (ln / 2, w / 2, t)), steel)
    b.add(torus(jr * 0.75, jr * 0.3, 14, 6).scaled((1, 1, t / (0.6 * jr))).translated(
        (ln / 2 + jr * 0.7, 0, t / 2)), steel)
    b.add(torus(jr * 0.7, jr * 0.3, 14, 6, arc=1.4 * np.pi).rotated("z", 0.8 * np.pi).scaled(
        (1, 1, t / (0.6 * jr))).translated((-ln / 2 - jr * 0.6, 0, t / 2)), steel)
    return capped(b.model(), max_height)


def toy_figure(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A standing figure: legs, a body, arms and a head, each a primitive."""
    s = r.uniform(0.06, 0.2)
    body, limbs = (skin(kit.plastic(kit.vivid_color()), 10.0) for _ in range(2))
    b = Builder("toy_figure")
    for sx in (-1, 1):
        b.add(cylinder(s * 0.07, s * 0.4, 8).translated((sx * s * 0.1, 0, 0)), limbs)
    b.add(superellipsoid((s * 0.4, s * 0.25, s * 0.4), 0.5).translated((0, 0, s * 0.6)), body)
    for sx in (-1, 1):
        b.add(cylinder(s * 0.05, s * 0.32, 8).rotated("y", sx * 0.4).translated(
            (sx * s * 0.26, 0, s * 0.45)), limbs)
    b.add(sphere(s * 0.16, 12, 8).translated((0, 0, s * 0.96)), body)
    return capped(b.model(), max_height)


def jar(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A rounded jar with a screw lid."""
    rad, h = r.uniform(0.03, 0.07), r.uniform(0.06, 0.18)
    nr = rad * r.uniform(0.6, 0.85)
    b = Builder("jar")
    prof = [(0, 0), (rad * 0.9, 0), (rad, 0.01), (rad, h * 0.85), (nr, h * 0.95), (0, h * 0.95)]
    b.add(lathe(prof, 18), any_skin(r, kit))
    b.add(cylinder(nr * 1.05, h * 0.12, 18, z0=h * 0.92), skin(kit.metal(), 8.0))
    return capped(b.model(), max_height)


def tape_roll(r: Gen, kit: MaterialKit, max_height: float | None = None) -> Model:
    """A roll of tape standing on its edge or lying flat: a thick, short annulus."""
    ro = r.uniform(0.03, 0.06)
    ri, w = ro * r.uniform(0.5, 0.75), r.uniform(0.015, 0.05)
    g = lathe([(ri, 0), (ro, 0), (ro, w), (ri, w), (ri, 0)], 20)
    if r.random() < 0.5:
        g = g.rotated("x", np.pi / 2)
    b = Builder("tape_roll")
    b.add(_standing(g), any_skin(r, kit, 10.0))
    return capped(b.model(), max_height)


GENERIC_BUILDERS = {
    "block": block, "cylinder": cylinder_shape, "cone": cone, "ball": ball, "ring": ring,
    "superquadric": superquadric, "hammer": hammer, "screwdriver": screwdriver,
    "spray_bottle": spray_bottle, "toy_stack": toy_stack, "tin_can": tin_can,
    "stapler": stapler, "keyboard": keyboard, "monitor": monitor, "waste_bin": waste_bin,
    "desk": desk, "office_chair": office_chair,
    "capsule": capsule, "twisted_prism": twisted_prism, "lumpy_blob": lumpy_blob,
    "wrench": wrench, "toy_figure": toy_figure, "jar": jar, "tape_roll": tape_roll,
    "crate": crate, "rack": rack, "workbench": workbench,
}
# small objects: built with max_height (the free height above their surface)
SMALL_GENERIC = frozenset(GENERIC_BUILDERS) - {"waste_bin", "desk", "office_chair", "rack",
                                               "workbench"}

__all__ = ["GENERIC_BUILDERS", "SMALL_GENERIC", "bend", "capped", "displace", "prism", "taper",
           "twist"]
