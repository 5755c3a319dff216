"""Small hand-made scenes for renderer tests and benchmarks.

Independent of the scene generator on purpose: the geometry here is simple enough that the
expected masks and depths can be computed by hand (see ``tests/test_render.py``).

    python -m segan.render.testing [--backends pyrender mitsuba] [--size 500]

times each backend's passes on :func:`make_test_scene`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from segan.render.base import Region, Renderer, make_renderer
from segan.scene.types import Camera, Light, Material, Mesh, Room, Scene, SceneObject, View


def checker_material(
    name: str,
    color_a: tuple[int, int, int],
    color_b: tuple[int, int, int],
    *,
    squares: int = 4,
    size: int = 64,
    roughness: float = 0.7,
) -> Material:
    """A ``squares`` x ``squares`` checkerboard albedo (sRGB uint8), with a light grey top-left
    square so that texture orientation errors are visible."""
    cell = size // squares
    ij = np.indices((size, size)) // cell
    tex = np.where(((ij[0] + ij[1]) % 2 == 0)[..., None], color_a, color_b).astype(np.uint8)
    tex[:cell, :cell] = 220
    return Material(name=name, albedo=tex, roughness=roughness)


def quad_mesh(corners: np.ndarray, material: Material, *, tile: float = 0.5) -> Mesh:
    """A planar quad from 4 corners in counter-clockwise order seen from its front side.
    UVs are in metres / ``tile`` so that textures repeat every ``tile`` metres."""
    c = np.asarray(corners, np.float64)
    e0, e1 = c[1] - c[0], c[3] - c[0]
    uv = np.array(
        [[0, 0], [np.linalg.norm(e0), 0], [np.linalg.norm(e0), np.linalg.norm(e1)],
         [0, np.linalg.norm(e1)]]
    ) / tile
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    return Mesh(c.astype(np.float32), faces, uv.astype(np.float32), material)


def box_mesh(size: tuple[float, float, float], material: Material, *, tile: float = 0.25) -> Mesh:
    """An axis-aligned box centred on the origin with the given (x, y, z) size; 24 vertices so
    that each face has its own normals and UVs."""
    h = 0.5 * np.asarray(size, np.float64)
    faces_v, uvs = [], []
    # (normal axis, sign): 4 corners counter-clockwise seen from outside.
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_ax, v_ax = (axis + 1) % 3, (axis + 2) % 3  # u x v = +axis
            if sign < 0:  # keep counter-clockwise winding from outside
                u_ax, v_ax = v_ax, u_ax
            quad = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u_ax], p[v_ax] = sign * h[axis], du * h[u_ax], dv * h[v_ax]
                quad.append(p)
            faces_v.append(quad)
            uvs.append([[0, 0], [2 * h[u_ax], 0], [2 * h[u_ax], 2 * h[v_ax]], [0, 2 * h[v_ax]]])
    v = np.asarray(faces_v).reshape(-1, 3)
    uv = np.asarray(uvs).reshape(-1, 2) / tile
    f = np.concatenate([[[4 * i, 4 * i + 1, 4 * i + 2], [4 * i, 4 * i + 2, 4 * i + 3]]
                        for i in range(6)])
    return Mesh(v.astype(np.float32), f.astype(np.int32), uv.astype(np.float32), material)


def sphere_mesh(radius: float, material: Material, *, rings: int = 12, segments: int = 24) -> Mesh:
    """A UV sphere centred on the origin (shared vertices, so smooth shading)."""
    theta = np.linspace(0.0, np.pi, rings + 1)  # from +z down to -z
    phi = np.linspace(0.0, 2 * np.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    v = radius * np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1)
    uv = np.stack([p / (2 * np.pi), 1.0 - t / np.pi], -1) * 2.0
    idx = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    # counter-clockwise from outside: a (top-left), d (bottom-left), c, b
    f = np.concatenate([np.stack([a, d, c], 1), np.stack([a, c, b], 1)])
    f = f[np.abs(np.cross(v.reshape(-1, 3)[f[:, 1]] - v.reshape(-1, 3)[f[:, 0]],
                          v.reshape(-1, 3)[f[:, 2]] - v.reshape(-1, 3)[f[:, 0]])).sum(1) > 1e-12]
    return Mesh(v.reshape(-1, 3).astype(np.float32), f.astype(np.int32),
                uv.reshape(-1, 2).astype(np.float32), material)


def translation(x: float, y: float, z: float, yaw: float = 0.0) -> np.ndarray:
    """4x4 pose: rotation by ``yaw`` radians about +z, then translation."""
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:2, :2] = [[c, -s], [s, c]]
    pose[:3, 3] = (x, y, z)
    return pose


def make_test_scene() -> Scene:
    """A 4 x 4 x 2.6 m room corner: floor (id 1), back wall y = 4 (id 2), left wall x = 0
    (id 3), four boxes (ids 4-7, some overlapping in the image) and a sphere (id 8)."""
    room = Room(kind="living_room", width=4.0, depth=4.0, height=2.6)
    wood = checker_material("test/wood", (150, 100, 60), (120, 80, 50))
    plaster = checker_material("test/plaster", (200, 200, 190), (180, 180, 175), squares=2)
    reds = checker_material("test/red", (180, 40, 40), (140, 30, 30), roughness=0.5)
    blues = checker_material("test/blue", (40, 60, 170), (30, 40, 120))
    greens = checker_material("test/green", (50, 150, 60), (30, 110, 40), roughness=0.3)
    W, D, H = room.width, room.depth, room.height
    floor = quad_mesh(np.array([[0, 0, 0], [W, 0, 0], [W, D, 0], [0, D, 0]]), wood)
    back = quad_mesh(np.array([[0, D, 0], [W, D, 0], [W, D, H], [0, D, H]]), plaster)
    left = quad_mesh(np.array([[0, 0, 0], [0, D, 0], [0, D, H], [0, 0, H]]), plaster)
    objects = [
        SceneObject(1, "floor", [floor], annotated=False),
        SceneObject(2, "wall", [back], annotated=False),
        SceneObject(3, "wall", [left], annotated=False),
        SceneObject(4, "cabinet", [box_mesh((1.2, 0.5, 0.9), blues)],
                    translation(1.2, 3.6, 0.45), support_id=1),
        SceneObject(5, "box", [box_mesh((0.4, 0.4, 0.3), reds)],
                    translation(1.0, 3.5, 1.05, yaw=0.4), support_id=4),
        SceneObject(6, "table", [box_mesh((1.0, 0.7, 0.05), wood),
                                 box_mesh((0.08, 0.08, 0.7), wood)],
                    translation(2.0, 2.2, 0.35), support_id=1),
        SceneObject(7, "box", [box_mesh((0.5, 0.5, 0.5), greens)],
                    translation(2.6, 1.7, 0.25, yaw=0.7), support_id=1),
        SceneObject(8, "ball", [sphere_mesh(0.2, reds)], translation(1.9, 2.0, 0.9),
                    support_id=6),
    ]
    # Table legs sit under the top: move the leg part down in the object's frame.
    legs = objects[5].parts[1]
    objects[5].parts[1] = Mesh(legs.vertices - np.float32([0, 0, 0.35]), legs.faces, legs.uvs,
                               legs.material)
    lights = [
        Light("point", (1.0, 0.95, 0.9), 150.0, position=(2.0, 1.5, 2.4)),
        Light("directional", (0.9, 0.95, 1.0), 1.0, direction=(-0.3, 0.5, -0.8)),
    ]
    return Scene("test-room", (0,), room, objects, lights)


def make_test_view(scene: Scene, width: int = 160, height: int = 120) -> View:
    """A view of :func:`make_test_scene` from inside the room, towards the back-left corner."""
    camera = Camera(position=(3.6, 0.3, 1.6), target=(1.4, 3.0, 0.6), yfov=np.deg2rad(55.0),
                    width=width, height=height)
    return View(camera=camera, lights=tuple(scene.lights), ambient=(0.15, 0.15, 0.15))


def object_region(renderer: Renderer, view: View, instance_id: int) -> Region:
    """The pixel bounding box (x0, y0, x1, y1) of an object's full mask, from a full-frame
    render of the object alone."""
    ys, xs = np.nonzero(renderer.render(view, only=[instance_id], rgb=False, depth=False).ids)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def benchmark(
    backends: Sequence[str] = ("pyrender", "mitsuba"),
    size: int = 500,
    repeat: int = 5,
    instance_id: int = 4,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, float]]:
    """Milliseconds per render call (best of ``repeat``, after a warm-up) on
    :func:`make_test_scene` at ``size`` x ``size``, per backend and pass."""
    scene = make_test_scene()
    view = make_test_view(scene, size, size)
    table: dict[str, dict[str, float]] = {}
    for name in backends:
        renderer = make_renderer(name, scene, **(options or {}).get(name, {}))
        region = object_region(renderer, view, instance_id)
        calls: dict[str, Callable[[], object]] = {
            "scene rgb": lambda r=renderer: r.render(view, ids=False, depth=False),
            "scene ids": lambda r=renderer: r.render(view, rgb=False, depth=False),
            "scene ids+depth": lambda r=renderer: r.render(view, rgb=False),
            "object alone, full frame, all passes":
                lambda r=renderer: r.render(view, only=[instance_id]),
            "object alone, region, ids+depth":
                lambda r=renderer, b=region: r.render(view, only=[instance_id], region=b,
                                                      rgb=False),
            "object alone, region, all passes":
                lambda r=renderer, b=region: r.render(view, only=[instance_id], region=b),
        }
        table[name] = {}
        for label, call in calls.items():
            call()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
            table[name][label] = 1000.0 * min(times)
        renderer.close()
    return table


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Time the render backends on the test scene.")
    parser.add_argument("--backends", nargs="+", default=["pyrender", "mitsuba"])
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = benchmark(args.backends, args.size, args.repeat)
    for backend, rows in results.items():
        for label, ms in rows.items():
            print(f"{backend:9s} {label:40s} {ms:9.1f} ms")
