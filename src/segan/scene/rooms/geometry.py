"""Geometry of a room: poses, wall frames and wall boxes, world boxes of a model and their
overlap test."""

from __future__ import annotations

import numpy as np

from segan.scene.objects import Model
from segan.scene.primitives import rotation
from segan.scene.types import Room

Gen = np.random.Generator
EPS = 1e-3  # allowed overlap between boxes, metres
WALL_T = 0.12  # wall thickness


def pose_at(x: float, y: float, z: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    m = rotation("z", yaw)
    m[:3, 3] = (x, y, z)
    return m


def yaw_facing(direction: np.ndarray) -> float:
    """Yaw that turns an object's front (+y) towards the world (x, y) ``direction``."""
    return float(np.arctan2(-direction[0], direction[1]))


def wall_length(room: Room, wall: int) -> float:
    return room.width if wall % 2 == 0 else room.depth


def wall_frame(room: Room, wall: int, t: float, n: float) -> tuple[np.ndarray, float]:
    """Point at distance ``t`` along wall ``wall`` (its world x or y) and ``n`` into the room,
    and the yaw that faces away from that wall. Walls: 0 y=0, 1 x=width, 2 y=depth, 3 x=0."""
    w, d = room.width, room.depth
    return {
        0: (np.array([t, n]), 0.0),
        1: (np.array([w - n, t]), np.pi / 2),
        2: (np.array([t, d - n]), np.pi),
        3: (np.array([n, t]), -np.pi / 2),
    }[wall]


def wall_box(room: Room, wall: int, t0: float, t1: float, z0: float, z1: float, n0: float,
             n1: float) -> tuple[np.ndarray, np.ndarray]:
    """World box spanning [t0, t1] along the wall, [z0, z1] up and [n0, n1] into the room
    (negative n is inside the wall)."""
    w, d = room.width, room.depth
    if wall == 0:
        return np.array([t0, n0, z0]), np.array([t1, n1, z1])
    if wall == 2:
        return np.array([t0, d - n1, z0]), np.array([t1, d - n0, z1])
    if wall == 3:
        return np.array([n0, t0, z0]), np.array([n1, t1, z1])
    return np.array([w - n1, t0, z0]), np.array([w - n0, t1, z1])


def world_boxes(model: Model, pose: np.ndarray) -> np.ndarray:
    """(P, 2, 3) world boxes of the parts (exact for yaws that are multiples of 90 degrees,
    conservative otherwise)."""
    local = model.part_boxes()
    idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners = np.stack([local[:, idx[:, a], a] for a in range(3)], axis=-1)  # (P, 8, 3)
    w = corners @ pose[:3, :3].T + pose[:3, 3]
    return np.stack([w.min(1), w.max(1)], axis=1)


def overlaps(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> np.ndarray:
    """(Pa, Pb) whether boxes a[i] and b[j] overlap by more than eps along every axis."""
    lo = np.maximum(a[:, None, 0], b[None, :, 0])
    hi = np.minimum(a[:, None, 1], b[None, :, 1])
    return np.all(hi - lo > eps, axis=-1)
