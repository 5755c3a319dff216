"""What a parametric object model is: textured parts plus where things can rest on it.

Object frame: origin at the centre of the footprint on the floor, z up, the object's front
facing +y (a sofa's seat opens towards +y, a bookshelf's shelves open towards +y). Models are
finalised so their box spans x and y symmetrically and starts at z = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from segan.scene.primitives import Geom, Skin
from segan.scene.textures import MaterialKit
from segan.scene.types import Material, Mesh

Gen = np.random.Generator


@dataclass
class Surface:
    """A horizontal rectangle where other objects can rest, in the object frame.

    clearance: free height above it (next shelf board, sofa back...).
    kind:      what it is ("top", "shelf", "seat", "burner", "inside", "sill"), for choosing
               what goes there.
    spots:     fixed (x, y) places (burners); None means anywhere in the rectangle.
    contains:  things rest *inside* this object's box (fruit in a bowl), so they may overlap
               their support's box.
    """

    lo: np.ndarray  # (2,) x, y
    hi: np.ndarray  # (2,)
    z: float
    clearance: float
    kind: str = "top"
    spots: list[tuple[float, float]] | None = None
    contains: bool = False

    def shifted(self, d: np.ndarray) -> Surface:
        spots = None if self.spots is None else [(x + d[0], y + d[1]) for x, y in self.spots]
        return replace(self, lo=self.lo + d[:2], hi=self.hi + d[:2], z=self.z + d[2], spots=spots)


@dataclass
class Model:
    """A built object instance in its own frame, ready to be posed."""

    category: str
    parts: list[Mesh]
    surfaces: list[Surface] = field(default_factory=list)
    bulbs: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (position, watts)

    def bounds(self) -> np.ndarray:
        v = np.concatenate([p.vertices for p in self.parts])
        return np.stack([v.min(0), v.max(0)]).astype(np.float64)

    @property
    def size(self) -> np.ndarray:
        b = self.bounds()
        return b[1] - b[0]

    def part_boxes(self) -> np.ndarray:
        """(P, 2, 3) axis-aligned box of each part, object frame."""
        return np.stack([
            np.stack([p.vertices.min(0), p.vertices.max(0)]) for p in self.parts
        ]).astype(np.float64)

    def finalised(self) -> Model:
        """Shift so the footprint is centred on the origin and the bottom is at z = 0."""
        b = self.bounds()
        d = np.array([-(b[0, 0] + b[1, 0]) / 2, -(b[0, 1] + b[1, 1]) / 2, -b[0, 2]])
        if np.allclose(d, 0):
            return self
        return Model(
            self.category,
            [_moved(p, d) for p in self.parts],
            [s.shifted(d) for s in self.surfaces],
            [(pos + d, w) for pos, w in self.bulbs],
        )

    def transformed(self, matrix: np.ndarray) -> Model:
        """Apply a transform to the geometry only (e.g. tip a book onto its side); surfaces
        and bulbs are dropped, the caller adds the ones that still make sense."""
        m = np.asarray(matrix, np.float64)
        parts = [
            Mesh((p.vertices @ m[:3, :3].T + m[:3, 3]).astype(np.float32), p.faces, p.uvs,
                 p.material)
            for p in self.parts
        ]
        return Model(self.category, parts)


def _moved(p: Mesh, d: np.ndarray) -> Mesh:
    return Mesh((p.vertices + d).astype(np.float32), p.faces, p.uvs, p.material)


class Builder:
    """Collects parts of one model: ``add(geom, skin)`` per separately-boxed part."""

    def __init__(self, category: str) -> None:
        self.category = category
        self.parts: list[Mesh] = []
        self.surfaces: list[Surface] = []
        self.bulbs: list[tuple[np.ndarray, float]] = []

    def add(self, geom: Geom | Sequence[Geom], skin: Skin) -> None:
        geoms = [geom] if isinstance(geom, Geom) else list(geom)
        for g in geoms:
            self.parts.append(g.mesh(skin))

    def surface(self, x0: float, y0: float, x1: float, y1: float, z: float, clearance: float,
                kind: str = "top", **kw: object) -> None:
        if x1 - x0 > 0.02 and y1 - y0 > 0.02:
            self.surfaces.append(
                Surface(np.array([x0, y0]), np.array([x1, y1]), z, clearance, kind, **kw))

    def bulb(self, position: Sequence[float], watts: float) -> None:
        self.bulbs.append((np.asarray(position, np.float64), float(watts)))

    def model(self) -> Model:
        return Model(self.category, self.parts, self.surfaces, self.bulbs).finalised()


def skin(material: Material, per_metre: float | tuple[float, float] = 1.0) -> Skin:
    return Skin.of(material, per_metre)


__all__ = ["Builder", "Gen", "MaterialKit", "Model", "Surface", "skin"]
