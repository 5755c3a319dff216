"""Render backends: known answers, the only/region contract, and pyrender == Mitsuba masks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from segan.render import (
    MitsubaRenderer,
    PyrenderRenderer,
    Renderer,
    RendererUnavailable,
    make_renderer,
)
from segan.render.testing import (
    box_mesh,
    checker_material,
    make_test_scene,
    make_test_view,
    quad_mesh,
)
from segan.scene.types import Camera, Light, Room, Scene, SceneObject, View

BACKENDS = ["pyrender", pytest.param("mitsuba", marks=pytest.mark.mitsuba)]


def build(name: str, scene: Scene) -> Renderer:
    try:
        return make_renderer(name, scene)
    except RendererUnavailable as exc:
        pytest.skip(f"{name} unavailable: {exc}")


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_test_scene()


@pytest.fixture(scope="module")
def view(scene: Scene) -> View:
    return make_test_view(scene, 160, 120)


@pytest.fixture(scope="module")
def renderers(scene: Scene) -> dict[str, Renderer]:
    return {}  # built lazily, one per backend for the whole module


@pytest.fixture(params=BACKENDS)
def renderer(request: pytest.FixtureRequest, scene: Scene,
             renderers: dict[str, Renderer]) -> Renderer:
    if request.param not in renderers:
        renderers[request.param] = build(request.param, scene)
    return renderers[request.param]


@pytest.fixture
def both(scene: Scene, renderers: dict[str, Renderer]) -> tuple[Renderer, Renderer]:
    for name in ("pyrender", "mitsuba"):
        if name not in renderers:
            renderers[name] = build(name, scene)
    return renderers["pyrender"], renderers["mitsuba"]


# -- known geometry -----------------------------------------------------------------------------

def head_on_scene() -> tuple[Scene, View]:
    """A box seen head-on (id 1) and, beside it, a quad whose front faces away (id 2)."""
    mat = checker_material("test/grey", (128, 128, 128), (100, 100, 100))
    box = SceneObject(1, "box", [box_mesh((1.0, 0.5, 0.6), mat)])
    # Counter-clockwise seen from +y: the camera (at -y) sees its back face.
    quad = quad_mesh(np.array([[1.4, 0, -0.3], [0.8, 0, -0.3], [0.8, 0, 0.3], [1.4, 0, 0.3]]), mat)
    back = SceneObject(2, "panel", [quad])
    scene = Scene("head-on", (0,), Room("living_room", 4, 4, 3), [box, back],
                  [Light("directional", (1, 1, 1), 2.0, direction=(0.2, 1.0, -0.3))])
    camera = Camera((0.0, -4.0, 0.0), (0.0, 0.0, 0.0), np.deg2rad(40.0), 160, 120)
    return scene, View(camera, tuple(scene.lights))


def expected_rectangle(camera: Camera, corners: np.ndarray) -> np.ndarray:
    """Pixels whose centres fall strictly inside the projection of a camera-facing rectangle."""
    uv, _ = camera.project(corners)
    (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
    cols, rows = np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5
    # Keep the test away from ties: no pixel centre within 0.01 px of an edge.
    assert np.abs(np.subtract.outer([u0, u1], cols)).min() > 0.01
    assert np.abs(np.subtract.outer([v0, v1], rows)).min() > 0.01
    inside_u, inside_v = (cols > u0) & (cols < u1), (rows > v0) & (rows < v1)
    return inside_v[:, None] & inside_u[None, :]


@pytest.mark.parametrize("name", BACKENDS)
def test_head_on_box_covers_known_rectangle(name: str) -> None:
    scene, view = head_on_scene()
    renderer = build(name, scene)
    out = renderer.render(view)
    face = np.array([[x, -0.25, z] for x in (-0.5, 0.5) for z in (-0.3, 0.3)])
    panel = np.array([[x, 0.0, z] for x in (0.8, 1.4) for z in (-0.3, 0.3)])
    box_px, panel_px = expected_rectangle(view.camera, face), expected_rectangle(view.camera, panel)
    expected = np.where(box_px, 1, np.where(panel_px, 2, 0))
    np.testing.assert_array_equal(out.ids, expected)  # back faces count too
    np.testing.assert_allclose(out.depth[box_px], 3.75, rtol=1e-4)
    np.testing.assert_allclose(out.depth[panel_px], 4.0, rtol=1e-4)
    assert (out.depth[expected == 0] == 0).all()
    assert out.rgb.shape == (120, 160, 3) and out.rgb.dtype == np.uint8
    assert out.ids.dtype == np.int32 and out.depth.dtype == np.float32
    renderer.close()


def test_plane_depth_matches_ray_plane_distance(renderer: Renderer, view: View) -> None:
    out = renderer.render(view, rgb=False)
    cam = view.camera
    k, pose = cam.intrinsics(), cam.pose()
    u, v = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    ray = np.stack([(u - k[0, 2]) / k[0, 0], -(v - k[1, 2]) / k[1, 1], -np.ones_like(u)], -1)
    ray = ray @ pose[:3, :3].T  # world direction with unit component along the view axis
    eye = pose[:3, 3]
    # floor z = 0 (id 1), back wall y = 4 (id 2), left wall x = 0 (id 3)
    for instance_id, axis, level in ((1, 2, 0.0), (2, 1, 4.0), (3, 0, 0.0)):
        mask = out.ids == instance_id
        assert mask.sum() > 1000
        expected = (level - eye[axis]) / ray[..., axis][mask]
        np.testing.assert_allclose(out.depth[mask], expected, rtol=1e-4)


# -- the contract: only, region, determinism -----------------------------------------------------

def dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    return np.any([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def test_only_gives_full_masks_containing_visible_masks(renderer: Renderer, scene: Scene,
                                                         view: View) -> None:
    full = renderer.render(view, rgb=False)
    for obj in scene.objects:
        k = obj.instance_id
        alone = renderer.render(view, only=[k])
        assert set(np.unique(alone.ids)) <= {0, k}
        visible, whole = full.ids == k, alone.ids == k
        assert visible.any() and not (visible & ~whole).any()  # S_V within S_F
        np.testing.assert_allclose(alone.depth[visible], full.depth[visible], rtol=1e-5)
        # Nothing else drawn: black beyond the mask's anti-aliased edge.
        assert (alone.rgb[~dilate(whole)] == 0).all()
    occluded = renderer.render(view, only=[4], rgb=False).ids == 4
    assert occluded.sum() > (full.ids == 4).sum() * 1.1  # the cabinet is partly hidden
    two = renderer.render(view, only=[4, 5], rgb=False, depth=False).ids
    assert set(np.unique(two)) == {0, 4, 5}


REGIONS = [(0, 0, 160, 120), (37, 21, 101, 88), (0, 50, 33, 51), (150, 0, 160, 120),
           (59, 59, 60, 60)]


@pytest.mark.parametrize("region", REGIONS)
def test_region_equals_crop(renderer: Renderer, view: View, region: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = region
    crop = (slice(y0, y1), slice(x0, x1))
    for only in (None, [4]):
        full = renderer.render(view, only=only)
        part = renderer.render(view, only=only, region=region)
        assert part.ids.shape == (y1 - y0, x1 - x0)
        np.testing.assert_array_equal(part.ids, full.ids[crop])
        np.testing.assert_allclose(part.depth, full.depth[crop], rtol=1e-6)
        if renderer.name == "pyrender":
            np.testing.assert_array_equal(part.rgb, full.rgb[crop])
        else:  # path tracing: same expectation, independent noise
            diff = part.rgb.astype(np.float64) - full.rgb[crop]
            assert abs(diff.mean()) < 3.0 + 60.0 / np.sqrt(diff[..., 0].size)


def test_bad_arguments(renderer: Renderer, view: View) -> None:
    with pytest.raises(ValueError):
        renderer.render(view, region=(10, 10, 10, 20))
    with pytest.raises(ValueError):
        renderer.render(view, region=(0, 0, 161, 120))
    with pytest.raises(KeyError):
        renderer.render(view, only=[99])


def test_deterministic(renderer: Renderer, scene: Scene, view: View) -> None:
    a, b = renderer.render(view), renderer.render(view)
    fresh = build(renderer.name, make_test_scene()).render(view)
    for field in ("rgb", "depth", "ids"):
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes()
        assert getattr(a, field).tobytes() == getattr(fresh, field).tobytes()


def test_rgb_is_sane(renderer: Renderer, view: View) -> None:
    rgb = renderer.render(view, ids=False, depth=False).rgb
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert 60 < rgb.mean() < 220
    assert (rgb.max(-1) < 10).mean() < 0.02  # hardly any black
    assert (rgb.min(-1) == 255).mean() < 0.05  # hardly any saturated white
    assert rgb.reshape(-1, 3).std(0).min() > 15  # not flat


def test_pyrender_scenes_share_the_context(scene: Scene, view: View) -> None:
    first = build("pyrender", scene)
    expected = first.render(view)
    other_scene, other_view = head_on_scene()
    other = build("pyrender", other_scene)
    other_first = other.render(other_view)
    again = first.render(view)  # re-uploads the first scene
    assert again.rgb.tobytes() == expected.rgb.tobytes()
    assert again.ids.tobytes() == expected.ids.tobytes()
    assert other.render(other_view).ids.tobytes() == other_first.ids.tobytes()
    assert isinstance(first, PyrenderRenderer)


# -- pyrender and Mitsuba agree ------------------------------------------------------------------

def mask_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """IoU and relative pixel-count difference of two boolean masks."""
    iou = (a & b).sum() / max((a | b).sum(), 1)
    return iou, abs(int(a.sum()) - int(b.sum())) / max(a.sum(), 1)


@pytest.mark.mitsuba
def test_backends_give_the_same_masks(both: tuple[Renderer, Renderer], scene: Scene) -> None:
    pyr, mts = both
    view = make_test_view(scene, 320, 240)
    visible_a, visible_b = (r.render(view, rgb=False, depth=False).ids for r in both)
    differing = int((visible_a != visible_b).sum())
    for obj in scene.objects:
        k = obj.instance_id
        full_a = pyr.render(view, only=[k], rgb=False, depth=False).ids == k
        full_b = mts.render(view, only=[k], rgb=False, depth=False).ids == k
        differing += int((full_a != full_b).sum())
        for a, b in ((visible_a == k, visible_b == k), (full_a, full_b)):
            iou, count = mask_agreement(a, b)
            assert iou > 0.995 and count < 0.005, (k, iou, count)
    # Exact but for pixel centres on an edge shared by two surfaces (a handful at most).
    assert differing <= 10, differing


@pytest.mark.mitsuba
def test_backends_have_similar_brightness(both: tuple[Renderer, Renderer], view: View) -> None:
    def linear_mean(renderer: Renderer, v: View) -> float:
        rgb = renderer.render(v, ids=False, depth=False).rgb
        return float(((rgb / 255.0) ** 2.2).mean())

    ratio = linear_mean(both[1], view) / linear_mean(both[0], view)
    assert 0.8 < ratio < 1.5, ratio  # Mitsuba adds bounce light
    # Ambient light alone shows albedo * ambient: textures, UVs and gamma must match.
    flat = dataclasses.replace(view, lights=(), ambient=(0.8, 0.8, 0.8))
    a, b = (r.render(flat, ids=False, depth=False).rgb.astype(np.float64) for r in both)
    assert np.abs(a - b).mean() < 4.0
    assert abs(a.mean() - b.mean()) < 1.5


@pytest.mark.mitsuba
def test_unknown_mitsuba_variant_is_unavailable(scene: Scene) -> None:
    build("mitsuba", scene)  # skips where Mitsuba cannot load at all
    with pytest.raises(RendererUnavailable, match="pip install"):
        MitsubaRenderer(scene, variant="no_such_variant")
