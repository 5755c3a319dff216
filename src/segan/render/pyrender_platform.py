"""The OpenGL platform (EGL or OSMesa) of the pyrender backend, pyrender's import once per
process, and the one OpenGL context and renderer that every PyrenderRenderer of the process
shares."""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

from segan.render.base import RendererUnavailable
from segan.render.pyrender_gl import make_gl_renderer, make_ranked_node

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


def load_pyrender(platform: str | None) -> SimpleNamespace:
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
        GLRenderer=make_gl_renderer(pyrender, GL),
        RankedNode=make_ranked_node(pyrender),
        RenderFlags=pyrender.RenderFlags,
        platform=platform,
        offscreen=None,  # the shared context, made by shared_context()
        pid=None,  # the process that made it
    )
    return ns


def shared_context(ns: SimpleNamespace, width: int, height: int, samples: int) -> tuple[Any, Any]:
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
