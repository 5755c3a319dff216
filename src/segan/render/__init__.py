"""Renderers: one scene description (:mod:`segan.scene.types`), several backends.

``make_renderer("pyrender" | "mitsuba", scene, **options)`` builds a backend; its
``render(view, only=..., region=..., rgb=..., depth=..., ids=...)`` returns a
:class:`RenderResult` (rgb uint8 sRGB, depth float32 metres along the viewing axis, ids int32
instance ids, 0 = no surface). Backends import their library only when built and raise
:class:`RendererUnavailable`, saying what to install, when it cannot load.

- :class:`~segan.render.pyrender_backend.PyrenderRenderer`: OpenGL rasterisation (EGL or
  OSMesa, Mesa's llvmpipe on CPUs), milliseconds per pass.
- :class:`~segan.render.mitsuba_backend.MitsubaRenderer`: Mitsuba 3 path tracing, 1-3 s per
  500x500 image at 16 spp on 2 cores; masks from ray casts, equal to pyrender's but for
  pixel centres on an edge shared by two surfaces.
"""

from segan.render.base import (
    RENDERERS,
    Region,
    Renderer,
    RendererUnavailable,
    RenderResult,
    make_renderer,
)
from segan.render.mitsuba_backend import MitsubaRenderer
from segan.render.pyrender_backend import PyrenderRenderer

__all__ = [
    "RENDERERS", "MitsubaRenderer", "PyrenderRenderer", "Region", "RenderResult", "Renderer",
    "RendererUnavailable", "make_renderer",
]
