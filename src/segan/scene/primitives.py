"""Triangle-mesh builders with texture coordinates.

Every builder returns a :class:`Geom`: vertices, counter-clockwise faces (seen from outside)
and UVs *in metres* (arc length along the surface). A texture's density is chosen only when a
material is bound (:meth:`Geom.mesh`), so one geometry can carry fine fabric or coarse wood.
Triangle counts stay small on purpose: the reference renderer rasterises on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segan.scene.types import Material, Mesh

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Skin:
    """A material with its tiling density: texture repeats per metre along u and v."""

    material: Material
    scale: tuple[float, float] = (1.0, 1.0)

    @staticmethod
    def of(material: Material, per_metre: float | tuple[float, float] = 1.0) -> Skin:
        s = (per_metre, per_metre) if np.isscalar(per_metre) else tuple(per_metre)
        return Skin(material, (float(s[0]), float(s[1])))


@dataclass(frozen=True)
class Geom:
    """Material-free triangle mesh: (V, 3) vertices, (F, 3) faces, (V, 2) metric UVs."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray

    def transformed(self, matrix: np.ndarray) -> Geom:
        """Apply a 4x4 affine transform; a mirroring transform also flips the winding."""
        m = np.asarray(matrix, np.float64)
        v = self.vertices @ m[:3, :3].T + m[:3, 3]
        f = self.faces[:, ::-1] if np.linalg.det(m[:3, :3]) < 0 else self.faces
        return Geom(v, f, self.uvs)

    def translated(self, offset: ArrayLike) -> Geom:
        return Geom(self.vertices + np.asarray(offset, np.float64), self.faces, self.uvs)

    def rotated(self, axis: str, angle: float, about: ArrayLike = (0.0, 0.0, 0.0)) -> Geom:
        c = np.asarray(about, np.float64)
        return self.translated(-c).transformed(rotation(axis, angle)).translated(c)

    def scaled(self, factors: ArrayLike) -> Geom:
        return self.transformed(np.diag([*np.broadcast_to(factors, 3), 1.0]))

    def bounds(self) -> np.ndarray:
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    def mesh(self, skin: Skin) -> Mesh:
        """Bind a material: scale the UVs, drop degenerate triangles, cast to the Mesh dtypes."""
        v, f = self.vertices, self.faces
        area2 = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
        f = f[area2 > 1e-12]
        uv = self.uvs * np.asarray(skin.scale)
        return Mesh(v.astype(np.float32), f.astype(np.int32), uv.astype(np.float32), skin.material)


def rotation(axis: str, angle: float) -> np.ndarray:
    """4x4 rotation about the x, y or z axis (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def merge(geoms: Sequence[Geom]) -> Geom:
    """One Geom holding all of ``geoms`` (same material once bound)."""
    offsets = np.cumsum([0] + [len(g.vertices) for g in geoms[:-1]])
    return Geom(
        np.concatenate([g.vertices for g in geoms]),
        np.concatenate([g.faces + o for g, o in zip(geoms, offsets, strict=True)]),
        np.concatenate([g.uvs for g in geoms]),
    )


# ---------------------------------------------------------------------------------------------
# Boxes

# For each face: outward axis, sign, and the two in-plane axes (u, v) ordered so that
# u x v points outward (counter-clockwise winding seen from outside).
_BOX_FACES = (
    (0, 1, 1, 2), (0, -1, 2, 1), (1, 1, 2, 0), (1, -1, 0, 2), (2, 1, 0, 1), (2, -1, 1, 0),
)


def box(lo: ArrayLike, hi: ArrayLike) -> Geom:
    """Axis-aligned box between corners ``lo`` and ``hi``: 24 vertices, 12 triangles.

    UVs are planar per face in metres; the horizontal axis (x before y) is u wherever the
    face allows it, so wood grain follows the length of boards and table tops.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    verts, uvs, faces = [], [], []
    for axis, sign, a, b in _BOX_FACES:
        corners = []
        for ca, cb in ((0, 0), (1, 0), (1, 1), (0, 1)):
            p = np.empty(3)
            p[axis] = hi[axis] if sign > 0 else lo[axis]
            p[a] = hi[a] if ca else lo[a]
            p[b] = hi[b] if cb else lo[b]
            corners.append(p)
        n = len(verts)
        verts += corners
        # u along the lower-numbered in-plane axis keeps grain horizontal on vertical faces
        ua, va = (a, b) if a < b else (b, a)
        uvs += [(p[ua], p[va]) for p in corners]
        faces += [(n, n + 1, n + 2), (n, n + 2, n + 3)]
    return Geom(np.array(verts), np.array(faces, np.int64), np.array(uvs))


def box_c(center: ArrayLike, size: ArrayLike) -> Geom:
    """Box given its centre and full size."""
    c, h = np.asarray(center, np.float64), 0.5 * np.asarray(size, np.float64)
    return box(c - h, c + h)


# ---------------------------------------------------------------------------------------------
# Surfaces of revolution


def lathe(
    profile: ArrayLike, segments: int = 20, *, arc: float = 2 * np.pi, start: float = 0.0
) -> Geom:
    """Revolve a (r, z) polyline about the z axis.

    Walk the profile so that the solid lies on the left (e.g. up the outside of a cup, then
    down its inside): faces then point outwards. Points with r = 0 close the surface there.
    u is the arc length at the profile's widest radius, v the length along the profile.
    """
    prof = np.asarray(profile, np.float64)
    # segments + 1 columns: a closed surface repeats its first column so u stays continuous
    n_ang = segments + 1
    ang = start + arc * np.arange(n_ang) / segments
    r, z = prof[:, 0], prof[:, 1]
    verts = np.stack(
        [np.outer(r, np.cos(ang)), np.outer(r, np.sin(ang)), np.repeat(z[:, None], n_ang, 1)],
        axis=-1,
    ).reshape(-1, 3)
    v = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(r), np.diff(z)))])
    u = (ang - start) * max(r.max(), 1e-3)
    uvs = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)
    i = np.arange(len(r) - 1)[:, None] * n_ang
    j = np.arange(segments)[None, :]
    a, b = (i + j).ravel(), (i + j + 1).ravel()
    c, d = a + n_ang, b + n_ang
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return Geom(verts, faces, uvs)


def frustum(
    r_bottom: float, r_top: float, height: float, segments: int = 16, *, z0: float = 0.0,
    caps: bool = True,
) -> Geom:
    """Closed (or open-ended) truncated cone standing on z = z0; a cylinder when radii match."""
    side = lathe([(r_bottom, z0), (r_top, z0 + height)], segments)
    if not caps:
        return side
    return merge([side, disc(r_bottom, z0, segments, up=False), disc(r_top, z0 + height, segments)])


def cylinder(radius: float, height: float, segments: int = 16, *, z0: float = 0.0) -> Geom:
    return frustum(radius, radius, height, segments, z0=z0)


def disc(radius: float, z: float, segments: int = 16, *, up: bool = True) -> Geom:
    """Flat filled circle at height z facing up (or down)."""
    ang = 2 * np.pi * np.arange(segments) / segments
    rim = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.full(segments, z)], 1)
    verts = np.concatenate([[[0.0, 0.0, z]], rim])
    k = np.arange(segments)
    faces = np.stack([np.zeros(segments, np.int64), 1 + k, 1 + (k + 1) % segments], 1)
    if not up:
        faces = faces[:, ::-1]
    return Geom(verts, faces, verts[:, :2].copy())


def sphere(radius: float, segments: int = 16, rings: int = 10) -> Geom:
    """Sphere centred at the origin."""
    t = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    return lathe(np.stack([radius * np.cos(t), radius * np.sin(t)], 1), segments)


def ellipsoid(radii: ArrayLike, segments: int = 16, rings: int = 10) -> Geom:
    return sphere(1.0, segments, rings).scaled(radii)


def superellipsoid(
    size: ArrayLike, exponent: float = 0.3, segments: int = 16, rings: int = 12
) -> Geom:
    """Rounded box of full ``size`` centred at the origin; exponent 1 is an ellipsoid, small
    exponents approach a box (cushions, upholstery)."""
    half = 0.5 * np.asarray(size, np.float64)

    def spow(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.abs(x) ** exponent

    t = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    ang = 2 * np.pi * np.arange(segments + 1) / segments
    ct, st = spow(np.cos(t))[:, None], spow(np.sin(t))[:, None]
    x = half[0] * ct * spow(np.cos(ang))[None]
    y = half[1] * ct * spow(np.sin(ang))[None]
    z = half[2] * np.broadcast_to(st, x.shape)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    n_ang = segments + 1
    u = ang * max(half[0], half[1])
    v = (t - t[0]) * half[2]
    uvs = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
    i = np.arange(rings)[:, None] * n_ang
    j = np.arange(segments)[None, :]
    a, b = (i + j).ravel(), (i + j + 1).ravel()
    c, d = a + n_ang, b + n_ang
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return Geom(verts, faces, uvs)


def torus(
    major: float, minor: float, segments: int = 16, sides: int = 8, *, arc: float = 2 * np.pi
) -> Geom:
    """Torus (or a partial ring when arc < 2 pi) in the xy plane, centred at the origin."""
    t = np.linspace(0, 2 * np.pi, sides + 1)
    # the tube cross-section walked so the solid lies on the left: faces point outwards
    profile = np.stack([major + minor * np.cos(t), minor * np.sin(t)], 1)
    return lathe(profile, segments, arc=arc)


def tube(path: ArrayLike, radii: ArrayLike | float, sides: int = 8) -> Geom:
    """Sweep a circle along a 3D polyline (handles, spouts, bananas, lamp arms); open ends are
    closed with fans."""
    p = np.asarray(path, np.float64)
    r = np.broadcast_to(np.asarray(radii, np.float64), (len(p),))
    tang = np.gradient(p, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tang[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    rings, normal = [], None
    for k in range(len(p)):
        # parallel transport keeps the rings from twisting
        n = ref - tang[k] * (ref @ tang[k]) if normal is None else normal - tang[k] * (
            normal @ tang[k])
        normal = n / np.linalg.norm(n)
        binormal = np.cross(tang[k], normal)
        ang = 2 * np.pi * np.arange(sides + 1) / sides
        rings.append(
            p[k] + r[k] * (np.outer(np.cos(ang), normal) + np.outer(np.sin(ang), binormal))
        )
    verts = np.concatenate(rings)
    n_ang = sides + 1
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    u = 2 * np.pi * np.arange(n_ang) / sides * r.max()
    uvs = np.stack(np.meshgrid(u, length), -1).reshape(-1, 2)
    i = np.arange(len(p) - 1)[:, None] * n_ang
    j = np.arange(sides)[None, :]
    a, b = (i + j).ravel(), (i + j + 1).ravel()
    c, d = a + n_ang, b + n_ang
    faces = [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    # end caps
    caps_v, caps_f, caps_uv = [], [], []
    for end, flip in ((0, True), (len(p) - 1, False)):
        centre = len(verts) + len(caps_v)
        caps_v.append(p[end])
        caps_uv.append((0.0, 0.0))
        ring = end * n_ang + np.arange(sides)
        nxt = end * n_ang + np.arange(1, sides + 1)
        tri = np.stack([np.full(sides, centre), ring, nxt], 1)
        caps_f.append(tri[:, ::-1] if flip else tri)
    verts = np.concatenate([verts, np.array(caps_v)])
    uvs = np.concatenate([uvs, np.array(caps_uv)])
    return Geom(verts, np.concatenate(faces + caps_f), uvs)


# ---------------------------------------------------------------------------------------------
# Extrusions


def extrude(polygon: ArrayLike, z0: float, z1: float) -> Geom:
    """Prism from a convex, counter-clockwise (x, y) polygon, from z0 up to z1."""
    poly = np.asarray(polygon, np.float64)
    n = len(poly)
    k = np.arange(n)
    bottom = np.column_stack([poly, np.full(n, z0)])
    top = np.column_stack([poly, np.full(n, z1)])
    cap_faces = np.stack([np.zeros(n - 2, np.int64), k[1:-1], k[2:]], 1)
    # sides: duplicate the corners so each side quad shades flat only where the
    # outline turns sharply; smooth outlines (circles) still look round
    closed = np.concatenate([poly, poly[:1]])
    perim = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    side_v = np.concatenate([
        np.column_stack([closed, np.full(n + 1, z0)]),
        np.column_stack([closed, np.full(n + 1, z1)]),
    ])
    side_uv = np.concatenate([np.column_stack([perim, np.full(n + 1, z0)]),
                              np.column_stack([perim, np.full(n + 1, z1)])])
    a, b = k, k + 1
    side_f = np.concatenate(
        [np.stack([a, b, b + n + 1], 1), np.stack([a, b + n + 1, a + n + 1], 1)]
    )
    verts = np.concatenate([bottom, top, side_v])
    faces = np.concatenate([cap_faces[:, ::-1], cap_faces + n, side_f + 2 * n])
    uvs = np.concatenate([poly, poly, side_uv])
    return Geom(verts, faces, uvs)


def rounded_rect(width: float, depth: float, radius: float, corner_segments: int = 4) -> np.ndarray:
    """Counter-clockwise outline of a rectangle with rounded corners, centred at the origin."""
    r = min(radius, 0.5 * width - 1e-4, 0.5 * depth - 1e-4)
    if r <= 1e-4:
        w, d = 0.5 * width, 0.5 * depth
        return np.array([(-w, -d), (w, -d), (w, d), (-w, d)])
    pts = []
    cx, cy = 0.5 * width - r, 0.5 * depth - r
    for k, (sx, sy) in enumerate(((1, -1), (1, 1), (-1, 1), (-1, -1))):
        a0 = -np.pi / 2 + k * np.pi / 2
        for a in a0 + np.linspace(0, np.pi / 2, corner_segments + 1):
            pts.append((sx * cx + r * np.cos(a), sy * cy + r * np.sin(a)))
    return np.array(pts)


def ellipse(width: float, depth: float, segments: int = 24) -> np.ndarray:
    """Counter-clockwise elliptic outline centred at the origin."""
    a = 2 * np.pi * np.arange(segments) / segments
    return np.stack([0.5 * width * np.cos(a), 0.5 * depth * np.sin(a)], 1)


def quad(lo: ArrayLike, hi: ArrayLike, facing: str) -> Geom:
    """Single rectangle spanning the box ``lo``..``hi`` (flat along the facing axis), facing
    "+x", "-x", "+y", "-y", "+z" or "-z"; UVs run from 0 to 1 over the rectangle (for
    pictures, screens and labels)."""
    axis = "xyz".index(facing[1])
    sign = 1 if facing[0] == "+" else -1
    a, b = next((a, b) for ax, sg, a, b in _BOX_FACES if ax == axis and sg == sign)
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    verts, uvs = [], []
    ua, va = (a, b) if a < b else (b, a)
    for ca, cb in ((0, 0), (1, 0), (1, 1), (0, 1)):
        p = lo.copy()
        p[axis] = hi[axis] if sign > 0 else lo[axis]
        p[a] = hi[a] if ca else lo[a]
        p[b] = hi[b] if cb else lo[b]
        verts.append(p)
        uvs.append(((p[ua] - lo[ua]) / max(hi[ua] - lo[ua], 1e-9),
                    (p[va] - lo[va]) / max(hi[va] - lo[va], 1e-9)))
    uv = np.array(uvs)
    if facing in ("+y", "-x"):  # keep images unmirrored when seen from the front
        uv[:, 0] = 1.0 - uv[:, 0]
    return Geom(np.array(verts), np.array([(0, 1, 2), (0, 2, 3)], np.int64), uv)
