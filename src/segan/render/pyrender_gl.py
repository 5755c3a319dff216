"""pyrender's ``Renderer``, subclassed for the pyrender backend (pyrender pinned at 0.1.45: it
overrides private methods): framebuffers kept at their largest size, scissored regions, a
single-sample exact id pass, no face culling, sRGB textures, light nodes in a fixed order."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np


def make_ranked_node(pyrender: Any) -> type:
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


def make_gl_renderer(pyrender: Any, GL: Any) -> type:
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
