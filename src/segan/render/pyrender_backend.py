"""pyrender backend: OpenGL rasterisation (EGL, or OSMesa), the fast renderer.

How it works
- Built once per :class:`Scene`: one pyrender ``Mesh`` per (object, material), i.e. an
  object's parts that share a material are merged (llvmpipe pays per draw call), posed by
  the object's pose; one sRGB texture per ``Material.name``, uploaded once. One OpenGL context
  and shader cache per process, shared by every renderer: making them costs about a second.
  Rendering another scene re-uploads that scene's meshes and frees the previous ones.
- ids: pyrender's segmentation pass (``RenderFlags.SEG``): each object is drawn in a flat
  colour that encodes its instance id in 24 bits (R = bits 0-7, G = 8-15, B = 16-23), into a
  single-sample framebuffer with multisampling, blending and face culling off. A pixel gets
  the nearest surface at its centre, by OpenGL's rasterisation rule: exact, and back faces
  count (an open mesh seen from inside still belongs to its object).
- depth: the depth buffer of that same pass. It is reversed (window depth = znear / z, float
  32-bit, nearest wins, far plane at infinity), so depth has ~1e-7 relative precision at any
  distance and surfaces micrometres apart are told apart, as by Mitsuba's float32 ray casts;
  then z = znear / d, metres along the viewing axis at the pixel centre.
- rgb: pyrender's PBR shader (metallic-roughness; base colour decoded from sRGB by the texture
  unit; output gamma 1/2.2) with ``samples``x MSAA, an ambient term ``albedo * View.ambient``
  and all of the view's lights (the shader's light loops are sized to the lights present:
  llvmpipe otherwise runs them to pyrender's bound of 4 per kind). Hard shadows from spot and
  directional lights with ``shadows=True`` (pyrender has no point-light shadows). Light
  units: ``_shared.light_strength``.
- only: the other objects' meshes get ``is_visible = False``; nothing is rebuilt.
- region: the full image's viewport and projection with a scissor window: only the region's
  pixels are cleared, shaded and read back, and since the vertex transform and rasterisation
  are the full render's, the result is bit-equal to its crop (rgb, ids and depth). The
  framebuffers are allocated once at the largest image size seen.
- Deterministic: the same input gives identical bytes.

Measured (2 CPU cores, Mesa 22.3 llvmpipe over EGL, 500x500, best of 5-7 on a machine shared
with other work; ``python -m segan.render.testing``):
- test scene (9 meshes, 2 lights): scene RGB 22 ms with 4x MSAA (12 ms with samples=0), id
  pass 3.8 ms, ids + depth 4.4 ms; one object alone full-frame, all passes 11 ms; alone in its
  region 0.7 ms (ids + depth) and 2.5 ms (all passes).
- a generated living room (70 objects, 302 parts -> ~120 draws, 17k triangles, 6 lights):
  scene RGB 99 ms with 4x MSAA (46 ms with samples=0: llvmpipe's MSAA doubles the cost), ids
  9.4 ms, ids + depth 9.5 ms; its 21 visible objects alone in their regions: 109 ms for all
  passes (68 ms without MSAA), 17 ms for ids + depth.
- the first renderer of a process makes the context and compiles shaders (~1 s); each new
  combination of light counts compiles a shader variant (~0.3 s, once per process).

The pieces: :mod:`segan.render.pyrender_platform` (the OpenGL platform, pyrender's import
and the process's shared context) and :mod:`segan.render.pyrender_gl` (the renderer subclass).
pyrender is pinned (0.1.45): that renderer subclass overrides private methods of its
``Renderer`` (framebuffers, viewport, camera matrices, forward pass, draw, context update).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from segan.render._shared import (
    SPOT_INNER_FRACTION,
    check_only,
    check_region,
    light_frame,
    light_strength,
    material_key,
    merged_parts,
    transform_points,
)
from segan.render.base import Region, Renderer, RenderResult
from segan.render.pyrender_platform import load_pyrender, shared_context
from segan.scene.types import Camera, Light, Material, Scene, View


def _id_colour(instance_id: int) -> tuple[int, int, int]:
    if not 1 <= instance_id < 1 << 24:
        raise ValueError(f"instance id {instance_id} does not fit the 24-bit id pass")
    return instance_id & 255, (instance_id >> 8) & 255, (instance_id >> 16) & 255


class PyrenderRenderer(Renderer):
    """OpenGL renderer of one scene (see the module docstring).

    width, height: size of the first framebuffers (optional; they grow to the largest image
                   rendered). Images always have the view's camera size, or the region's.
    platform:      "egl" or "osmesa"; default PYOPENGL_PLATFORM, else EGL if its library
                   loads, else OSMesa. One platform per process.
    shadows:       hard shadows from spot and directional lights in the RGB pass.
    samples:       MSAA samples of the RGB pass (0: none).
    znear:         near clipping plane in metres: nearer geometry is not drawn (Mitsuba's
                   ray casts have no near plane).
    """

    name = "pyrender"

    def __init__(
        self,
        scene: Scene,
        width: int | None = None,
        height: int | None = None,
        platform: str | None = None,
        shadows: bool = False,
        samples: int = 4,
        znear: float = 0.05,
    ) -> None:
        super().__init__(scene)
        self._ns = ns = load_pyrender(platform)
        pr = ns.pyrender
        self.shadows = shadows
        self.samples = int(samples)
        self.znear = float(znear)
        self._size = (width or 64, height or 64)
        self._pscene = pr.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.0, 0.0, 0.0))
        self._seg_map: dict[Any, tuple[int, int, int]] = {}
        self._meshes: dict[int, list[Any]] = {}
        nodes, boxes = [], []
        textures: dict[str, Any] = {}
        materials: dict[tuple[str, float, float], Any] = {}
        for obj in scene.objects:
            colour = _id_colour(obj.instance_id)
            pose = np.asarray(obj.pose, np.float64)
            self._meshes[obj.instance_id] = []
            for part in merged_parts(obj):
                primitive = pr.Primitive(
                    positions=part.vertices, normals=part.normals, texcoord_0=part.uvs,
                    indices=part.faces,
                    material=self._material(part.material, textures, materials),
                )
                mesh = pr.Mesh([primitive])
                node = self._pscene.add(mesh, pose=pose)
                self._seg_map[node] = colour
                self._meshes[obj.instance_id].append(mesh)
                v = transform_points(pose, part.vertices)
                nodes.append(node)
                boxes.append((v.min(0), v.max(0)))
        self._nodes = nodes
        self._boxes = np.asarray(boxes).reshape(-1, 2, 3)
        self._camera = pr.IntrinsicsCamera(fx=1.0, fy=1.0, cx=0.0, cy=0.0, znear=self.znear)
        self._camera_node = self._pscene.add(self._camera, pose=np.eye(4))
        self._lights: tuple[Light, ...] | None = None
        self._light_nodes: list[Any] = []
        self._visible: frozenset[int] | None = None
        # Upload meshes and textures now rather than in the first render.
        _, gl = shared_context(ns, *self._size, self.samples)
        gl._update_context(self._pscene, 0)

    def _material(self, m: Material, textures: dict[str, Any],
                  materials: dict[tuple[str, float, float], Any]) -> Any:
        key = material_key(m)
        if key not in materials:
            if m.name not in textures:
                albedo = np.ascontiguousarray(m.albedo[..., :3], dtype=np.uint8)
                textures[m.name] = self._ns.GLRenderer.Texture(
                    source=albedo, source_channels="RGB"
                )
            materials[key] = self._ns.pyrender.MetallicRoughnessMaterial(
                baseColorTexture=textures[m.name],
                metallicFactor=float(m.metallic),
                roughnessFactor=float(m.roughness),
                doubleSided=True,
            )
        return materials[key]

    # -- per-render state ---------------------------------------------------------------------

    def _set_camera(self, camera: Camera) -> np.ndarray:
        k = camera.intrinsics()
        pose = camera.pose()
        self._camera.fx, self._camera.fy = k[0, 0], k[1, 1]
        self._camera.cx, self._camera.cy = k[0, 2], k[1, 2]
        self._camera.znear = self.znear  # and no far plane: see _get_camera_matrices
        self._pscene.set_pose(self._camera_node, pose)
        return pose[:3, 3]

    def _draw_order(self, eye: np.ndarray) -> list[Any]:
        """Mesh nodes sorted by the distance from the eye to their bounding box."""
        gap = np.maximum(np.maximum(self._boxes[:, 0] - eye, eye - self._boxes[:, 1]), 0.0)
        return [self._nodes[i] for i in np.argsort(np.linalg.norm(gap, axis=1), kind="stable")]

    def _set_visibility(self, only: frozenset[int] | None) -> None:
        if only == self._visible:
            return
        for instance_id, meshes in self._meshes.items():
            for mesh in meshes:
                mesh.is_visible = only is None or instance_id in only
        self._visible = only

    def _set_lights(self, view: View) -> None:
        self._pscene.ambient_light = np.asarray(view.ambient, np.float64)
        if view.lights == self._lights:
            return
        pr = self._ns.pyrender
        for node in self._light_nodes:
            self._pscene.remove_node(node)
        self._light_nodes = []
        for light in view.lights:
            color, strength = np.asarray(light.color, np.float64), light_strength(light)
            if light.kind == "point":
                pr_light = pr.PointLight(color=color, intensity=strength)
            elif light.kind == "spot":
                outer = min(float(light.spot_angle), np.pi / 2 - 1e-3)
                pr_light = pr.SpotLight(color=color, intensity=strength,
                                        innerConeAngle=SPOT_INNER_FRACTION * outer,
                                        outerConeAngle=outer)
            else:
                pr_light = pr.DirectionalLight(color=color, intensity=strength)
            pose = light_frame(light.position, light.direction)
            node = self._ns.RankedNode(len(self._light_nodes), light=pr_light, matrix=pose)
            self._pscene.add_node(node)
            self._light_nodes.append(node)
        self._lights = view.lights

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self,
        view: View,
        *,
        only: Sequence[int] | None = None,
        region: Region | None = None,
        rgb: bool = True,
        depth: bool = True,
        ids: bool = True,
    ) -> RenderResult:
        flags = self._ns.RenderFlags
        x0, y0, x1, y1 = check_region(region, view.camera)
        w, h = x1 - x0, y1 - y0
        subset = check_only(self.scene, only)
        eye = self._set_camera(view.camera)
        self._set_visibility(subset)
        _, gl = shared_context(self._ns, *self._size, self.samples)
        # The region is a scissor window of the full image's viewport: the same vertex
        # transform and rasterisation as a full render, so the crop is bit-exact.
        gl.viewport_width, gl.viewport_height = view.camera.width, view.camera.height
        gl.window = (x0, view.camera.height - y1, w, h)
        gl.draw_order = self._draw_order(eye)
        result = RenderResult()

        if ids or depth:
            gl.want_depth = depth
            colour, zbuf = gl.render(self._pscene, flags.OFFSCREEN | flags.SEG, self._seg_map)
            if ids:
                rgba = np.frombuffer(colour, np.uint32).reshape(h, w)[::-1]
                # Little-endian RGBA words: R | G << 8 | B << 16 | A << 24; ids < 2**24.
                result.ids = (rgba & np.uint32(0xFFFFFF)).view(np.int32)
            if depth:
                d = np.frombuffer(zbuf, np.float32).reshape(h, w)[::-1]
                result.depth = gl.window_depth_to_metres(d, self.znear)

        if rgb:
            self._set_lights(view)
            pass_flags = flags.OFFSCREEN
            if self.shadows:
                pass_flags |= flags.SHADOWS_DIRECTIONAL | flags.SHADOWS_SPOT
            colour, _ = gl.render(self._pscene, pass_flags)
            rgba = np.frombuffer(colour, np.uint8).reshape(h, w, 4)
            result.rgb = np.ascontiguousarray(rgba[::-1, :, :3])
        gl.draw_order = None
        return result

    def close(self) -> None:
        """Free this scene's meshes and textures (the shared context stays)."""
        ns = self._ns
        if ns.offscreen is None or ns.pid != os.getpid():
            return
        ns.offscreen._platform.make_current()
        gl = ns.offscreen._renderer
        if gl._meshes & self._pscene.meshes:
            gl._update_context(self._ns.pyrender.Scene(), 0)
