"""Views of a scene: a camera where a person's head can be, aimed at an object, and this
view's lighting (fixtures dimmed, recoloured or switched off, daylight by time of day)."""

from __future__ import annotations

import weakref

import numpy as np

from segan.scene.types import Camera, Light, Scene, View

Gen = np.random.Generator

HEAD_HEIGHT = (1.4, 1.9)
WALL_MARGIN = 0.3
BODY_RADIUS = 0.2
YFOV_DEG = (55.0, 65.0)
MIN_DISTANCE = 0.6  # horizontal, camera to target centre
MAX_DISTANCE = 5.0
CEILING_MARGIN = 0.2
# room kind -> (camera height range, horizontal distance range to the target); kinds not
# listed use HEAD_HEIGHT and MIN/MAX_DISTANCE. Tabletop: seated or leaning over the table,
# close; storage and workshop: anywhere from crouching to standing.
VIEW_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "tabletop": ((0.95, 1.5), (0.45, 1.4)),
    "storage": ((1.0, 1.8), (0.6, 3.5)),
    "workshop": ((1.0, 1.8), (0.6, 3.5)),
}

_obstacles: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scene_boxes(scene: Scene) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """World boxes of every part that a standing person would bump into (not the floor,
    walls, ceiling or rugs), and each annotated object's overall box. Cached per scene
    object (scenes are not expected to change once generated)."""
    if scene in _obstacles:
        return _obstacles[scene]
    solid, whole = [], {}
    for o in scene.objects:
        if o.annotated:
            whole[o.instance_id] = o.world_aabb()
        if o.category in ("floor", "wall", "ceiling", "rug"):
            continue
        for p in o.parts:
            v = p.vertices.astype(np.float64) @ o.pose[:3, :3].T + o.pose[:3, 3]
            solid.append(np.stack([v.min(0), v.max(0)]))
    out = (np.stack(solid) if solid else np.zeros((0, 2, 3)), whole)
    _obstacles[scene] = out
    return out


def camera_ok(scene: Scene, position: np.ndarray,
              heights: tuple[float, float] | None = None) -> bool:
    """In the height range (None: the room kind's VIEW_RANGES, else head height; never within
    CEILING_MARGIN of the ceiling), inside the room and away from the walls, with room for a
    body below."""
    r = scene.room
    x, y, z = position
    if heights is None:
        heights = VIEW_RANGES.get(r.kind, (HEAD_HEIGHT,))[0]
    if not (WALL_MARGIN <= x <= r.width - WALL_MARGIN and WALL_MARGIN <= y <= r.depth
            - WALL_MARGIN and heights[0] <= z <= min(heights[1], r.height - CEILING_MARGIN)):
        return False
    boxes, _ = _scene_boxes(scene)
    body = np.array([[x - BODY_RADIUS, y - BODY_RADIUS, 0.05],
                     [x + BODY_RADIUS, y + BODY_RADIUS, z + 0.15]])
    lo = np.maximum(boxes[:, 0], body[0])
    hi = np.minimum(boxes[:, 1], body[1])
    return not np.any(np.all(hi > lo, axis=1))


def sample_camera(
    scene: Scene,
    rng: Gen,
    width: int,
    height: int,
    tries: int = 200,
    *,
    heights: tuple[float, float] | None = None,
    yfov_deg: tuple[float, float] = YFOV_DEG,
    aim_offset: float = 0.0,
    roll_deg: float = 0.0,
) -> Camera:
    """A camera at ``heights`` (None: the room kind's VIEW_RANGES, else head height) looking at
    (near) the centre of a random annotated object. ``aim_offset`` > 0 moves the object off
    the image centre, up to that fraction of the half-width and half-height (1: to the
    border, so objects get cut);
    ``roll_deg`` > 0 turns the camera about its axis by up to that angle. At their defaults
    neither draws from ``rng``, so head-height views are the same as without them."""
    _, whole = _scene_boxes(scene)
    ids = sorted(whole)
    if not ids:
        raise ValueError(f"scene {scene.scene_id} has no annotated object to look at")
    r = scene.room
    kind_heights, (near, far) = VIEW_RANGES.get(r.kind,
                                                (HEAD_HEIGHT, (MIN_DISTANCE, MAX_DISTANCE)))
    heights = kind_heights if heights is None else heights
    for _ in range(tries):
        box = whole[ids[int(rng.integers(0, len(ids)))]]
        centre = box.mean(0)
        for _ in range(10):
            pos = np.array([rng.uniform(WALL_MARGIN, r.width - WALL_MARGIN),
                            rng.uniform(WALL_MARGIN, r.depth - WALL_MARGIN),
                            rng.uniform(*heights)])
            dist = np.linalg.norm(pos[:2] - centre[:2])
            if near <= dist <= far and camera_ok(scene, pos, heights):
                extent = np.clip(box[1] - box[0], 0.05, 0.5)
                target = centre + rng.normal(0.0, 0.1, 3) * extent
                yfov = float(np.radians(rng.uniform(*yfov_deg)))
                if aim_offset > 0:
                    target = _offset_aim(pos, target, yfov, width, height,
                                         rng.uniform(-aim_offset, aim_offset, 2))
                roll = float(np.radians(rng.uniform(-roll_deg, roll_deg))) if roll_deg else 0.0
                return Camera(tuple(map(float, pos)), tuple(map(float, target)), yfov,
                              width, height, roll)
    raise RuntimeError(f"no camera position found in scene {scene.scene_id}")


def _offset_aim(pos: np.ndarray, target: np.ndarray, yfov: float, width: int, height: int,
                uv: np.ndarray, steps: int = 6) -> np.ndarray:
    """A new aim point that puts ``target`` at image position ``uv`` (each in [-1, 1] of the
    half-width / half-height; +u right, +v up) instead of the centre: the aim moves the other
    way within the plane through the aim facing the camera, corrected a few times for the
    camera turning with it. A position the camera cannot reach (it would have to pitch past
    straight down or up) gets the nearest aim found."""
    dist = float(np.linalg.norm(target - pos))
    half_h = np.tan(0.5 * yfov) * dist
    aim, now = target.copy(), np.zeros(2)
    best, best_err = aim, float(np.abs(uv).max())
    for _ in range(steps):
        pose = Camera(tuple(pos), tuple(aim), yfov, width, height).pose()
        err = uv - now
        aim = aim - err[0] * half_h * width / height * pose[:3, 0] - err[1] * half_h * pose[:3, 1]
        pixel, depth = Camera(tuple(pos), tuple(aim), yfov, width, height).project(target[None])
        now = np.array([pixel[0, 0] / (0.5 * width) - 1.0, 1.0 - pixel[0, 1] / (0.5 * height)])
        if depth[0] > 0 and float(np.abs(uv - now).max()) < best_err:
            best, best_err = aim, float(np.abs(uv - now).max())
    return best


# ---------------------------------------------------------------------------------------------
# Lighting


def kelvin_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximate linear RGB of a black body, normalised so the largest channel is 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * np.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * np.log(t - 10) - 305.04)
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0, 1)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return tuple(float(c) for c in lin / lin.max())  # type: ignore[return-value]


def light_role(scene: Scene, light: Light) -> str:
    """"window", "ceiling" or "lamp", from where the fixture is."""
    if light.kind != "point":
        return "window"
    return "ceiling" if light.position[2] > scene.room.height - 0.5 else "lamp"


def vary_lights(scene: Scene, rng: Gen) -> tuple[tuple[Light, ...], tuple[float, float, float]]:
    """This view's lights and ambient term: daylight by time of day, ceiling lights and lamps
    each on or off, dimmed or brightened, warmer or cooler."""
    day = rng.uniform(0.0, 1.0)  # 0 night .. 1 midday
    sun = np.clip(np.sin(day * np.pi / 2) ** 1.5, 0.03, 1.0)
    sky = kelvin_rgb(3200 + 3300 * day)
    roles = [light_role(scene, light) for light in scene.lights]
    ceiling_on = rng.random() < (0.95 if day < 0.4 else 0.6)
    out = []
    for light, role in zip(scene.lights, roles, strict=True):
        if role == "window":
            color, scale = sky, sun * rng.uniform(0.7, 1.3)
        elif role == "ceiling":
            if not ceiling_on:
                continue
            color, scale = kelvin_rgb(rng.uniform(2700, 5000)), rng.uniform(0.6, 1.4)
        else:
            if rng.random() < 0.35:
                continue
            color, scale = kelvin_rgb(rng.uniform(2400, 3200)), rng.uniform(0.6, 1.3)
        out.append(Light(light.kind, color, float(light.intensity * scale), light.position,
                         light.direction, light.spot_angle))
    if not ceiling_on and sun < 0.2:  # never leave a view in the dark: one ceiling light on
        out.extend([light for light, role in zip(scene.lights, roles, strict=True)
                    if role == "ceiling"][:1])
    level = rng.uniform(0.12, 0.3) * (0.7 + 0.3 * sun)
    tint = np.asarray(kelvin_rgb(rng.uniform(3500, 7000)))
    ambient = tuple(float(c) for c in level * tint)
    return tuple(out), ambient  # type: ignore[return-value]


def sample_view(scene: Scene, rng: Gen, width: int, height: int, **camera: object) -> View:
    """A view of ``scene``: a camera where a person's head can be (1.4-1.9 m up, or the
    kind's ``VIEW_RANGES``, inside the room, 0.3 m clear of the walls, with no furniture where
    the body would be), looking at a random annotated object's centre with a little jitter,
    vertical field of view 55-65 degrees; plus this view's lighting. ``camera`` keywords
    (``sample_camera``'s: heights, yfov_deg, aim_offset, roll_deg) widen those ranges.
    Deterministic given ``rng``."""
    cam = sample_camera(scene, rng, width, height, **camera)  # type: ignore[arg-type]
    lights, ambient = vary_lights(scene, rng)
    return View(cam, lights, ambient)
