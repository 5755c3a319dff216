"""The scene as pure data: what a renderer observes, kept apart from any renderer.

Conventions (every module follows them):
- World frame: metres, z up, the floor is z = 0, a room spans x in [0, width], y in [0, depth].
- Meshes live in their object's frame; ``SceneObject.pose`` maps object to world (4x4).
- Colours: textures are sRGB uint8; light colours are linear RGB in [0, 1].
- Cameras follow OpenGL: the camera looks down its -z axis with +y up; images are row-major
  with row 0 at the top.
- Instance ids: every object of a scene, room shell included, has a unique id >= 1; 0 means
  "no surface" in an id pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

RoomKind = Literal["living_room", "kitchen", "office", "tabletop", "storage", "workshop"]
LightKind = Literal["point", "spot", "directional"]


@dataclass(frozen=True, eq=False)
class Material:
    """A tiled albedo texture with simple shading parameters.

    ``name`` identifies the texture exactly (its generator, parameters and seed, or the
    photograph it came from): two scenes that share no ``name`` share no texture.
    """

    name: str
    albedo: np.ndarray  # (H, W, 3) uint8 sRGB, tiled by the mesh UVs
    roughness: float = 0.7
    metallic: float = 0.0


@dataclass(frozen=True, eq=False)
class Mesh:
    """One part of an object: a triangle mesh with texture coordinates and one material."""

    vertices: np.ndarray  # (V, 3) float32, metres, object frame
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    uvs: np.ndarray  # (V, 2) float32; textures repeat outside [0, 1]
    material: Material

    def __post_init__(self) -> None:
        v, f, uv = self.vertices, self.faces, self.uvs
        if v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"Mesh.vertices must be (V, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"Mesh.faces must be (F, 3), got {f.shape}")
        if uv.shape != (v.shape[0], 2):
            raise ValueError(f"Mesh.uvs must be ({v.shape[0]}, 2), got {uv.shape}")
        if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
            raise ValueError("Mesh.faces index outside the vertex array")


@dataclass(eq=False)
class SceneObject:
    """An object instance placed in the world, made of one or more textured parts."""

    instance_id: int
    category: str  # e.g. "sofa", "mug"; room shell parts use "floor", "wall", "ceiling", ...
    parts: list[Mesh]
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))  # (4, 4) object -> world
    annotated: bool = True  # False for the room shell: it is rendered but never annotated
    support_id: int | None = None  # instance id of what it rests on; None for floor/shell

    def world_vertices(self) -> np.ndarray:
        """All part vertices in world coordinates, (V_total, 3) float64."""
        v = np.concatenate([p.vertices for p in self.parts]).astype(np.float64)
        return v @ self.pose[:3, :3].T + self.pose[:3, 3]

    def world_aabb(self) -> np.ndarray:
        """Axis-aligned world bounding box, (2, 3): row 0 min corner, row 1 max corner."""
        v = self.world_vertices()
        return np.stack([v.min(0), v.max(0)])


@dataclass(frozen=True)
class Light:
    """A light source. Intensity: watts for point and spot lights, lux for directional."""

    kind: LightKind
    color: tuple[float, float, float]
    intensity: float
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)  # point and spot
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)  # spot and directional
    spot_angle: float = 0.8  # outer cone half-angle in radians, spot only


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at ``position`` looking at ``target`` with world +z as up, turned by
    ``roll`` about its viewing axis."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    yfov: float  # vertical field of view, radians
    width: int
    height: int
    roll: float = 0.0  # radians; positive turns the camera counter-clockwise (seen from behind)

    def pose(self) -> np.ndarray:
        """Camera-to-world 4x4 in the OpenGL convention (looks down -z, +y up)."""
        eye = np.asarray(self.position, np.float64)
        forward = np.asarray(self.target, np.float64) - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        if np.linalg.norm(right) < 1e-8:  # looking straight up or down
            right = np.cross(forward, (0.0, 1.0, 0.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        if self.roll:  # skipped at 0 so unrolled poses stay bit-identical
            c, s = np.cos(self.roll), np.sin(self.roll)
            right, up = c * right + s * up, c * up - s * right
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -forward, eye
        return pose

    def intrinsics(self) -> np.ndarray:
        """3x3 pixel intrinsics K (square pixels, principal point at the image centre)."""
        f = 0.5 * self.height / np.tan(0.5 * self.yfov)
        return np.array([[f, 0, 0.5 * self.width], [0, f, 0.5 * self.height], [0, 0, 1.0]])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) as (x right, y down), and depth (N,)
        along the viewing axis (positive in front of the camera)."""
        world_to_cam = np.linalg.inv(self.pose())
        p = np.asarray(points, np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        depth = -p[:, 2]
        k = self.intrinsics()
        with np.errstate(divide="ignore", invalid="ignore"):
            x = k[0, 0] * p[:, 0] / depth + k[0, 2]
            y = -k[1, 1] * p[:, 1] / depth + k[1, 2]
        return np.stack([x, y], axis=1), depth


@dataclass(frozen=True)
class Room:
    kind: RoomKind
    width: float  # along x, metres
    depth: float  # along y
    height: float  # floor to ceiling


@dataclass(eq=False)
class Scene:
    """A furnished room: the shell and every object, with its fixed light fixtures.

    ``objects`` holds everything that is rendered; ``annotated`` tells objects from shell.
    ``seed`` records the entropy the scene was generated from, for provenance.
    """

    scene_id: str
    seed: tuple[int, ...]
    room: Room
    objects: list[SceneObject]
    lights: list[Light]  # fixtures: ceiling lights, lamps, window light (a view may vary them)

    def object(self, instance_id: int) -> SceneObject:
        for obj in self.objects:
            if obj.instance_id == instance_id:
                return obj
        raise KeyError(f"scene {self.scene_id} has no instance id {instance_id}")

    def annotated_ids(self) -> list[int]:
        return [o.instance_id for o in self.objects if o.annotated]


@dataclass(frozen=True)
class View:
    """One picture of a scene: the camera and this view's lighting."""

    camera: Camera
    lights: tuple[Light, ...]
    ambient: tuple[float, float, float] = (0.25, 0.25, 0.25)  # linear RGB ambient term
