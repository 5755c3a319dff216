"""Procedural indoor scenes (the DYCE-like living rooms and kitchens of the paper, section 4).

``generate_scene`` builds a furnished room; ``sample_view`` picks a camera and lighting for
one picture of it. Everything is plain data (:mod:`segan.scene.types`), independent of the
renderer.
"""

from segan.scene.categories import CATEGORIES, category_id, coco_categories
from segan.scene.objects import BUILDERS, build
from segan.scene.rooms import generate_scene, sample_room
from segan.scene.sampling import camera_ok, kelvin_rgb, sample_camera, sample_view, vary_lights
from segan.scene.textures import MaterialKit
from segan.scene.types import (
    Camera,
    Light,
    Material,
    Mesh,
    Room,
    RoomKind,
    Scene,
    SceneObject,
    View,
)

__all__ = [
    "BUILDERS", "CATEGORIES", "Camera", "Light", "Material", "MaterialKit", "Mesh", "Room",
    "RoomKind", "Scene", "SceneObject", "View", "build", "camera_ok", "category_id",
    "coco_categories", "generate_scene", "kelvin_rgb", "sample_camera", "sample_room",
    "sample_view", "vary_lights",
]
