"""Helpers shared by the render backends (NumPy only, no renderer imports)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from segan.render.base import Region
from segan.scene.types import Camera, Light, Material, Mesh, Scene, SceneObject

# Spot lights only carry their outer cone; the inner (full-intensity) cone is this fraction of it.
SPOT_INNER_FRACTION = 0.75
# Both backends encode linear colour with this display gamma (pyrender's shader does so).
DISPLAY_GAMMA = 2.2


def light_strength(light: Light) -> float:
    """The radiometric strength both renderers take for ``light``.

    Point and spot lights: radiant intensity in W/sr, ``watts / (4 pi)`` (an isotropic source;
    a spot is a point light masked to its cone, as in Blender). Directional lights: the
    irradiance in W/m^2 on a surface facing the light, taken equal to ``Light.intensity``
    (the "lux" of the contract are read as radiometric units, no luminous efficacy).
    pyrender's ``intensity`` and Mitsuba's ``intensity`` / ``irradiance`` are exactly these
    quantities, so the same value goes to both.
    """
    if light.kind in ("point", "spot"):
        return float(light.intensity) / (4.0 * np.pi)
    if light.kind == "directional":
        return float(light.intensity)
    raise ValueError(f"unknown light kind {light.kind!r}")


def light_frame(position: Sequence[float], direction: Sequence[float]) -> np.ndarray:
    """4x4 pose at ``position`` whose -z axis points along ``direction`` (OpenGL lights)."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    z = -d
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, np.cross(z, x), z
    pose[:3, 3] = position
    return pose


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit length; (0, 0, 1) for unused vertices), float32.

    The contract's meshes carry no normals; both backends shade with these, so smooth and
    faceted looks (shared or split vertices) agree between them.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 1e-20, n / np.maximum(length, 1e-20), (0.0, 0.0, 1.0))
    return n.astype(np.float32)


@dataclass(frozen=True)
class MergedPart:
    """An object's parts that share a material, concatenated (object frame)."""

    material: Material
    vertices: np.ndarray  # (V, 3) float32
    normals: np.ndarray  # (V, 3) float32, each part's own vertex normals
    uvs: np.ndarray  # (V, 2) float32
    faces: np.ndarray  # (F, 3) uint32


def material_key(m: Material) -> tuple[str, float, float]:
    return m.name, float(m.roughness), float(m.metallic)


def merged_parts(obj: SceneObject) -> list[MergedPart]:
    """``obj.parts`` grouped by material: one draw call (pyrender) or one shape (Mitsuba) per
    group. Renderers pay per draw call and per shape (Mitsuba traces each registered shape
    for every render call), and masks only need objects apart."""
    groups: dict[tuple[str, float, float], list[Mesh]] = {}
    for part in obj.parts:
        groups.setdefault(material_key(part.material), []).append(part)
    merged = []
    for parts in groups.values():
        offsets = np.cumsum([0] + [len(p.vertices) for p in parts])[:-1]
        merged.append(MergedPart(
            material=parts[0].material,
            vertices=np.concatenate([p.vertices for p in parts]).astype(np.float32),
            normals=np.concatenate([vertex_normals(p.vertices, p.faces) for p in parts]),
            uvs=np.concatenate([p.uvs for p in parts]).astype(np.float32),
            faces=np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)]
                                 ).astype(np.uint32),
        ))
    return merged


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ pose[:3, :3].T + pose[:3, 3]


def transform_normals(pose: np.ndarray, normals: np.ndarray) -> np.ndarray:
    n = np.asarray(normals, np.float64) @ np.linalg.inv(pose[:3, :3])  # inverse transpose
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def check_region(region: Region | None, camera: Camera) -> Region:
    """Validate ``region`` against the camera's image; None means the whole image."""
    if region is None:
        return 0, 0, camera.width, camera.height
    x0, y0, x1, y1 = (int(c) for c in region)
    if not (0 <= x0 < x1 <= camera.width and 0 <= y0 < y1 <= camera.height):
        raise ValueError(
            f"region {region} is empty or outside the {camera.width}x{camera.height} image"
        )
    return x0, y0, x1, y1


def check_only(scene: Scene, only: Sequence[int] | None) -> frozenset[int] | None:
    """``only`` as a frozenset of known instance ids (None: the whole scene)."""
    if only is None:
        return None
    ids = frozenset(int(i) for i in only)
    unknown = ids - {o.instance_id for o in scene.objects}
    if unknown:
        raise KeyError(f"scene {scene.scene_id} has no instance ids {sorted(unknown)}")
    return ids


def encode_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB -> uint8 with the display gamma, rounded like an 8-bit framebuffer."""
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0) ** np.float32(1.0 / DISPLAY_GAMMA)
    return np.round(x * np.float32(255.0)).astype(np.uint8)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A tiny least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()
