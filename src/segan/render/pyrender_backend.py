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

pyrender is pinned (0.1.45): the renderer subclass below overrides private methods of its
``Renderer`` (framebuffers, viewport, camera matrices, forward pass, draw, context update).
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Sequence
from types import SimpleNamespace
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
from segan.render.base import Region, Renderer, RendererUnavailable, RenderResult
from segan.scene.types import Camera, Light, Material, Scene, View

_INSTALL_HINT = (
    "pyrender needs `pip install pyrender==0.1.45 'pyopengl>=3.1.7'` and an OpenGL platform: "
    "EGL (`apt-get install libegl1 libgl1-mesa-dri`, Mesa's llvmpipe renders on the CPU) or "
    "OSMesa (`apt-get install libosmesa6`, then platform='osmesa'; 4-5x slower)."
)
_PLATFORM_LIBS = {"egl": "EGL", "osmesa": "OSMesa"}
_loaded: dict[str, SimpleNamespace] = {}


def _library_loads(name: str) -> bool:
    path = ctypes.util.find_library(name)
    if path is None:
        return False
    try:
        ctypes.CDLL(path)
    except OSError:
        return False
    return True


def _choose_platform(platform: str | None) -> str:
    platform = platform or os.environ.get("PYOPENGL_PLATFORM")
    if platform is None:
        platform = next((p for p, lib in _PLATFORM_LIBS.items() if _library_loads(lib)), None)
        if platform is None:
            raise RendererUnavailable("no EGL or OSMesa library found. " + _INSTALL_HINT)
    if platform not in _PLATFORM_LIBS:
        raise ValueError(f"platform must be 'egl' or 'osmesa', got {platform!r}")
    return platform


def _load(platform: str | None) -> SimpleNamespace:
    """Import pyrender for ``platform`` and build the renderer subclass, once per process.

    PyOpenGL binds its platform when first imported, so PYOPENGL_PLATFORM must be set before
    that; a process can use a single platform."""
    platform = _choose_platform(platform)
    if platform in _loaded:
        return _loaded[platform]
    if _loaded or "OpenGL.GL" in sys.modules:
        current = os.environ.get("PYOPENGL_PLATFORM")
        if current != platform:
            raise RendererUnavailable(
                f"PyOpenGL was already imported for platform {current!r}; platform "
                f"{platform!r} needs PYOPENGL_PLATFORM={platform} set before any OpenGL import."
            )
    os.environ["PYOPENGL_PLATFORM"] = platform
    if not hasattr(np, "infty"):  # pyrender 0.1.45 uses np.infty, removed in NumPy 2
        np.infty = np.inf  # type: ignore[attr-defined]
    try:
        import pyrender
        from OpenGL import GL
    except Exception as exc:  # ImportError, or PyOpenGL failing to load the platform library
        raise RendererUnavailable(f"cannot import pyrender ({exc}). {_INSTALL_HINT}") from exc

    _loaded[platform] = ns = SimpleNamespace(
        pyrender=pyrender,
        GL=GL,
        GLRenderer=_make_gl_renderer(pyrender, GL),
        RankedNode=_make_ranked_node(pyrender),
        RenderFlags=pyrender.RenderFlags,
        platform=platform,
        offscreen=None,  # the shared context, made by _context()
        pid=None,  # the process that made it
    )
    return ns


def _make_ranked_node(pyrender: Any) -> type:
    class RankedNode(pyrender.Node):
        """A node hashed by its rank. pyrender keeps light nodes in sets and binds lights in
        set order; the default hash is the object's address, so that order, and with it the
        float summation of the shading, changed from one renderer to the next (RGB values
        off by one). Ranked hashes make renders byte-identical across processes."""

        def __init__(self, rank: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._rank = rank

        def __hash__(self) -> int:
            return self._rank

    return RankedNode


def _make_gl_renderer(pyrender: Any, GL: Any) -> type:
    """pyrender's Renderer with framebuffers kept at their largest size, scissored regions,
    a single-sample exact id pass, no face culling and less per-draw Python work."""
    from pyrender.constants import ProgramFlags, RenderFlags
    from pyrender.shader_program import ShaderProgramCache

    class SRGBProgramCache(ShaderProgramCache):
        # Textures are uploaded as GL_SRGB8, so the shader must not decode them again.
        def get_program(self, vertex_shader: str, fragment_shader: str,
                        geometry_shader: str | None = None,
                        defines: dict[str, Any] | None = None) -> Any:
            if fragment_shader == "mesh.frag":
                defines = {**(defines or {}), "SRGB_CORRECTED": 1}
            return super().get_program(vertex_shader, fragment_shader, geometry_shader,
                                       defines)

    class GLRenderer(pyrender.Renderer):
        samples = 4  # MSAA of the RGB pass; 0 renders it single-sample
        want_depth = True  # read the depth buffer back after the next SEG pass
        window = (0, 0, 1, 1)  # (x, y, w, h) drawn and read, OpenGL window coordinates
        light_counts = (0, 0, 0)  # directional, spot and point lights of the current pass
        _context_scene = None  # the pyrender scene whose meshes are uploaded
        draw_order: list[Any] | None = None  # mesh nodes, front to back

        def __init__(self, width: int, height: int) -> None:
            super().__init__(width, height)
            self.reversed_depth = bool(GL.glClipControl)
            self._program_cache = SRGBProgramCache()
            self._programs: dict[tuple[int, ...], Any] = {}

        # -- framebuffers ---------------------------------------------------------------------

        def _configure_main_framebuffer(self) -> None:
            w, h = self.viewport_width, self.viewport_height
            cap_w, cap_h = self._main_fb_dims
            if self._main_fb is not None and w <= cap_w and h <= cap_h:
                return
            if self._main_fb is not None:  # grow, and never shrink again
                w, h = max(w, cap_w), max(h, cap_h)
                self._delete_main_framebuffer()
            w, h = -(-w // 64) * 64, -(-h // 64) * 64
            self._main_cb, self._main_db = GL.glGenRenderbuffers(2)
            self._main_fb = self._framebuffer(self._main_cb, self._main_db, w, h, 0)
            self._main_cb_ms, self._main_db_ms = GL.glGenRenderbuffers(2)
            self._main_fb_ms = self._framebuffer(
                self._main_cb_ms, self._main_db_ms, w, h, self.samples
            )
            self._main_fb_dims = (w, h)

        @staticmethod
        def _framebuffer(cb: int, db: int, w: int, h: int, samples: int) -> int:
            for buf, fmt in ((cb, GL.GL_RGBA8), (db, GL.GL_DEPTH_COMPONENT32F)):
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buf)
                if samples > 1:
                    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, w, h)
                else:
                    GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, w, h)
            fb = GL.glGenFramebuffers(1)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, fb)
            GL.glFramebufferRenderbuffer(
                GL.GL_DRAW_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, cb
            )
            GL.glFramebufferRenderbuffer(
                GL.GL_DRAW_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, db
            )
            return fb

        def _configure_forward_pass_viewport(self, flags: int) -> None:
            self._configure_main_framebuffer()
            single = bool(flags & RenderFlags.SEG) or self.samples <= 1
            GL.glBindFramebuffer(
                GL.GL_DRAW_FRAMEBUFFER, self._main_fb if single else self._main_fb_ms
            )
            GL.glViewport(0, 0, self.viewport_width, self.viewport_height)
            # Clear, draw and shade only the requested window (and the framebuffer may be
            # larger than the image).
            GL.glEnable(GL.GL_SCISSOR_TEST)
            GL.glScissor(*self.window)
            # Reversed depth: window depth = znear / distance in a float buffer, cleared to 0
            # (infinitely far), nearer wins. Its relative precision, ~1e-7 at any distance,
            # separates surfaces a few micrometres apart, as Mitsuba's float32 ray hits do.
            # (PyOpenGL finds no glClipControl under OSMesa: standard depth there.)
            if self.reversed_depth:
                GL.glClipControl(GL.GL_LOWER_LEFT, GL.GL_ZERO_TO_ONE)
                GL.glClearDepth(0.0)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDepthFunc(GL.GL_GREATER if self.reversed_depth else GL.GL_LESS)
            GL.glDepthRange(0.0, 1.0)

        def _get_camera_matrices(self, scene: Any) -> tuple[np.ndarray, np.ndarray]:
            """pyrender's view matrix, and a projection with the far plane at infinity:
            clip w = distance along the viewing axis, clip z = znear (reversed depth) or
            distance - 2 znear (OpenGL's usual depth)."""
            V, P = super()._get_camera_matrices(scene)
            n = scene.main_camera_node.camera.znear
            P = P.copy()
            P[2, :] = (0.0, 0.0, 0.0, n) if self.reversed_depth else (0.0, 0.0, -1.0, -2.0 * n)
            return V, P

        def window_depth_to_metres(self, d: np.ndarray, znear: float) -> np.ndarray:
            """Inverse of the depth mapping above; 0 where nothing was drawn."""
            n = np.float32(znear)
            with np.errstate(divide="ignore"):
                if self.reversed_depth:
                    z = n / d
                    z[d <= 0.0] = 0.0
                else:  # d = (1 - n / z) with the far plane at infinity
                    z = n / (np.float32(1.0) - d)
                    z[d >= 1.0] = 0.0
            return z

        def _read_main_framebuffer(self, scene: Any, flags: int) -> tuple[Any, Any]:
            x, y, w, h = self.window
            seg = bool(flags & RenderFlags.SEG)
            if not seg and self.samples > 1:  # resolve the MSAA colour into the plain buffer
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb_ms)
                GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._main_fb)
                GL.glBlitFramebuffer(
                    x, y, x + w, y + h, x, y, x + w, y + h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST
                )
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb)
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
            color = GL.glReadPixels(x, y, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
            depth = None
            if seg and self.want_depth:
                depth = GL.glReadPixels(x, y, w, h, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT)
            # Back to OpenGL's defaults, which pyrender's shadow-map pass expects.
            GL.glDisable(GL.GL_SCISSOR_TEST)
            if self.reversed_depth:
                GL.glClipControl(GL.GL_LOWER_LEFT, GL.GL_NEGATIVE_ONE_TO_ONE)
                GL.glClearDepth(1.0)
            return color, depth

        # -- drawing ----------------------------------------------------------------------------

        def _update_context(self, scene: Any, flags: int) -> None:
            # pyrender walks every material's textures before each pass; our scenes never
            # change their meshes, so do it once per scene (and when shadow maps are wanted).
            shadows = flags & (RenderFlags.SHADOWS_DIRECTIONAL | RenderFlags.SHADOWS_SPOT)
            if scene is not self._context_scene or shadows:
                super()._update_context(scene, flags)
                self._context_scene = scene

        def _sorted_mesh_nodes(self, scene: Any) -> list[Any]:
            # Front to back (all surfaces are opaque): early depth tests skip hidden shading.
            if self.draw_order is not None:
                return self.draw_order
            return super()._sorted_mesh_nodes(scene)[::-1]

        def _compute_max_n_lights(self, flags: int) -> list[int]:
            # pyrender sizes the shader's light loops for 4 lights of each kind, and llvmpipe
            # runs them to that bound whatever the number of lights: size them to the lights
            # present (the program cache keeps one variant per combination).
            shadows = flags & (RenderFlags.SHADOWS_DIRECTIONAL | RenderFlags.SHADOWS_SPOT)
            limits = super()._compute_max_n_lights(flags) if shadows else [64, 64, 64]
            return [max(1, min(n, m)) for n, m in zip(self.light_counts, limits, strict=True)]

        def _get_primitive_program(self, primitive: Any, flags: int,
                                   program_flags: int) -> Any:
            # pyrender rebuilds the shader's #define set for every draw; ours are all alike.
            key = (int(primitive.buf_flags), int(primitive.material.tex_flags), int(flags),
                   int(program_flags), *self.light_counts)
            program = self._programs.get(key)
            if program is None or not program._in_context():
                program = super()._get_primitive_program(primitive, flags, program_flags)
                self._programs[key] = program
            return program

        def _forward_pass(self, scene: Any, flags: int,
                          seg_node_map: dict[Any, Any] | None = None) -> Any:
            """pyrender's forward pass, with camera and light uniforms set once per program
            and pass rather than once per draw (they persist in the program object)."""
            seg = bool(flags & RenderFlags.SEG)
            self._configure_forward_pass_viewport(flags)
            GL.glClearColor(*(0.0, 0.0, 0.0, 1.0) if seg else scene.bg_color)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
            (GL.glDisable if seg else GL.glEnable)(GL.GL_MULTISAMPLE)
            V, P = self._get_camera_matrices(scene)
            cam_pos = scene.get_pose(scene.main_camera_node)[:3, 3]
            self.light_counts = (len(scene.directional_light_nodes), len(scene.spot_light_nodes),
                                 len(scene.point_light_nodes))
            # With shadows, or more lights than a program takes, pyrender binds lights (and
            # shadow-map texture units) per draw: keep that path then.
            max_lights = self._compute_max_n_lights(flags)
            shadows = flags & (RenderFlags.SHADOWS_DIRECTIONAL | RenderFlags.SHADOWS_SPOT)
            light_per_draw = bool(shadows) or any(
                n > m for n, m in zip(self.light_counts, max_lights, strict=True))
            ready: set[int] = set()
            program = None
            for node in self._sorted_mesh_nodes(scene):
                if not node.mesh.is_visible or (seg and node not in seg_node_map):
                    continue
                pose = scene.get_pose(node)
                for primitive in node.mesh.primitives:
                    program = self._get_primitive_program(
                        primitive, flags, ProgramFlags.USE_MATERIAL
                    )
                    program._bind()
                    if id(program) not in ready:
                        program.set_uniform("V", V)
                        program.set_uniform("P", P)
                        program.set_uniform("cam_pos", cam_pos)
                        if not seg and not light_per_draw:
                            self._bind_lighting(scene, program, node, flags)
                        ready.add(id(program))
                    if seg:
                        program.set_uniform("color", np.asarray(seg_node_map[node]) / 255.0)
                    elif light_per_draw:
                        self._bind_lighting(scene, program, node, flags)
                    self._bind_and_draw_primitive(primitive, pose, program, flags)
                    self._reset_active_textures()
            if program is not None:
                program._unbind()
            GL.glFlush()
            return self._read_main_framebuffer(scene, flags)

        def _bind_and_draw_primitive(self, primitive: Any, pose: Any, program: Any,
                                     flags: int) -> None:
            program.set_uniform("M", pose)
            primitive._bind()
            if not flags & (RenderFlags.DEPTH_ONLY | RenderFlags.SEG):
                material = primitive.material
                if material.baseColorTexture is not None:
                    self._bind_texture(
                        material.baseColorTexture, "material.base_color_texture", program
                    )
                program.set_uniform("material.emissive_factor", material.emissiveFactor)
                program.set_uniform("material.base_color_factor", material.baseColorFactor)
                program.set_uniform("material.metallic_factor", material.metallicFactor)
                program.set_uniform("material.roughness_factor", material.roughnessFactor)
            GL.glDisable(GL.GL_BLEND)
            GL.glDisable(GL.GL_CULL_FACE)  # back faces are part of the object too
            GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_FILL)
            GL.glDrawElementsInstanced(
                primitive.mode, primitive.indices.size, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0), 1
            )
            primitive._unbind()

    class SRGBTexture(pyrender.Texture):
        """An 8-bit sRGB texture decoded by the texture unit (GL_SRGB8): mipmaps are then
        averaged in linear space and the shader saves a pow() per fragment."""

        def _add_to_context(self) -> None:
            if self._texid is not None:
                raise ValueError("Texture already loaded into OpenGL context")
            self._texid = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._texid)
            data = np.ascontiguousarray(self.source[::-1])  # row 0 of the image is v = 1
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_SRGB8, data.shape[1], data.shape[0], 0,
                            GL.GL_RGB, GL.GL_UNSIGNED_BYTE, data)
            GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER,
                               GL.GL_LINEAR_MIPMAP_LINEAR)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_REPEAT)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_REPEAT)
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)

    GLRenderer.Texture = SRGBTexture
    return GLRenderer


def _id_colour(instance_id: int) -> tuple[int, int, int]:
    if not 1 <= instance_id < 1 << 24:
        raise ValueError(f"instance id {instance_id} does not fit the 24-bit id pass")
    return instance_id & 255, (instance_id >> 8) & 255, (instance_id >> 16) & 255


def _context(ns: SimpleNamespace, width: int, height: int, samples: int) -> tuple[Any, Any]:
    """The process's OpenGL context and renderer for this platform, made on first use.

    Creating a context and compiling the shaders costs about a second, far more than a
    render: every PyrenderRenderer shares them. The meshes of the last scene rendered stay
    uploaded; rendering another scene frees them (pyrender's context update does)."""
    forked = ns.offscreen is not None and ns.pid != os.getpid()
    try:
        if ns.offscreen is None or forked:
            offscreen = ns.pyrender.OffscreenRenderer(width, height)
            offscreen._renderer.delete()  # replaced by ours, made while the context is current
            offscreen._renderer = ns.GLRenderer(width, height)
            ns.offscreen, ns.pid = offscreen, os.getpid()
            atexit.register(_release_context, ns)
        ns.offscreen._platform.make_current()
    except Exception as exc:  # no device or display for this platform
        hint = (" This process was forked after its parent had made an OpenGL context, which "
                "EGL does not survive: use the 'spawn' or 'forkserver' start method, or render "
                "only in the child processes." if forked else "")
        raise RendererUnavailable(
            f"cannot create an {ns.platform} OpenGL context ({exc}).{hint} {_INSTALL_HINT}"
        ) from exc
    gl = ns.offscreen._renderer
    if gl.samples != samples and gl._main_fb is not None:
        gl._delete_main_framebuffer()
    gl.samples = samples
    return ns.offscreen, gl


def _release_context(ns: SimpleNamespace) -> None:
    if ns.offscreen is not None and ns.pid == os.getpid():
        ns.offscreen.delete()
        ns.offscreen = None


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
        self._ns = ns = _load(platform)
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
        _, gl = _context(ns, *self._size, self.samples)
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
        _, gl = _context(self._ns, *self._size, self.samples)
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
