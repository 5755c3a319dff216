"""The renderer interface: one scene description, several backends.

A backend is built once per scene (it uploads meshes and textures) and then renders any
number of views. ``only`` removes every object not listed, room shell included: that is how
the full mask S_F and the appearance of an object are made (paper, section 4.1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segan.scene.types import Scene, View

# (x0, y0, x1, y1) pixel window of the full image, half-open: columns x0..x1-1, rows y0..y1-1.
Region = tuple[int, int, int, int]


@dataclass
class RenderResult:
    """What one render returns; a pass not asked for is None.

    rgb:   (h, w, 3) uint8 sRGB.
    depth: (h, w) float32 metres along the camera's viewing axis, 0 where no surface.
    ids:   (h, w) int32 instance id of the nearest surface, 0 where no surface.
    (h, w) is the image size, or the region's size when a region was given.
    """

    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    ids: np.ndarray | None = None


class RendererUnavailable(RuntimeError):
    """The backend's library or its system dependencies are missing; the message says how
    to install them."""


class Renderer(ABC):
    """Renders views of one scene."""

    name: str = "base"

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    @abstractmethod
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
        """Render ``view``.

        only:   instance ids to keep; None keeps the whole scene (shell included).
        region: render only this pixel window of the view's image (same camera, so pixel
                (r, c) of the result equals pixel (y0 + r, x0 + c) of a full render).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release GPU/GL resources."""

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_renderer(name: str, scene: Scene, **options: object) -> Renderer:
    """Build the backend called ``name`` ("pyrender" or "mitsuba") for ``scene``."""
    if name == "pyrender":
        from segan.render.pyrender_backend import PyrenderRenderer

        return PyrenderRenderer(scene, **options)  # type: ignore[arg-type]
    if name == "mitsuba":
        from segan.render.mitsuba_backend import MitsubaRenderer

        return MitsubaRenderer(scene, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown renderer {name!r}: choose 'pyrender' or 'mitsuba'")


RENDERERS = ("pyrender", "mitsuba")
