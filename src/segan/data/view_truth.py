"""One view of a generated scene and its exact amodal ground truth (section 4.1 of the paper).

- the scene is rendered once (RGB, depth, instance ids); the id pass gives each object's
  visible mask S_V exactly;
- every object with at least 10 visible pixels is rendered again with every other object
  removed (room shell included): its ids give the full mask S_F, its RGB the full object's
  appearance (alpha = S_F) and its depth the occlusion pairs; S_I = S_F \\ S_V;
- q occludes p when q lies in front of p on at least one pixel of p's S_I.

Scene i is drawn from SeedSequence([seed, i]) (``scene_rng``) and view v of scene i from
SeedSequence([seed, i, v]) (``view_rng``): any split of the work gives the same views."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from segan.data.deocclusion import DeocclusionTruth, removal_rng, render_deocclusion
from segan.data.presets import GenerateConfig
from segan.data.randomize import (
    ImageParams,
    colour_transform,
    degrade_image,
    image_rng,
    sample_image_params,
    scale_lights,
)
from segan.render.base import Region, Renderer, RenderResult, make_renderer
from segan.scene import generate_scene, sample_view
from segan.scene.types import Scene, View


def scene_rng(seed: int, scene_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, scene_index]))


def view_rng(seed: int, scene_index: int, view_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, scene_index, view_index]))


def build_scene(cfg: GenerateConfig, scene_index: int) -> Scene:
    spec = cfg.scenes[scene_index]
    return generate_scene(
        cfg.scene_id(scene_index),
        spec.kind,
        scene_rng(cfg.seed, scene_index),
        n_objects=cfg.n_objects,
        photo_pool="test" if spec.split == "test" else "train",
        seed=(cfg.seed, scene_index),
        content=cfg.content,
    )


def build_renderer(cfg: GenerateConfig, scene: Scene) -> Renderer:
    options: dict[str, object] = {}
    if cfg.renderer == "mitsuba":
        options["spp"] = cfg.mitsuba_spp
    return make_renderer(cfg.renderer, scene, **options)


@dataclass
class ObjectTruth:
    """One annotated object of one view, stored inside its pixel window ``region`` (the
    object alone projects nowhere else); the full-image arrays are built on demand."""

    instance_id: int
    category: str
    region: Region  # (x0, y0, x1, y1) of the full image
    image_size: tuple[int, int]  # (H, W)
    visible: np.ndarray  # S_V inside the region, (h, w) bool
    full: np.ndarray  # S_F inside the region, (h, w) bool
    rgb: np.ndarray  # the object alone inside the region, (h, w, 3) uint8
    depth: np.ndarray  # the object alone inside the region, (h, w) float32, 0 outside S_F

    def _paste(self, local: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.region
        out = np.zeros(self.image_size + local.shape[2:], local.dtype)
        out[y0:y1, x0:x1] = local
        return out

    @property
    def visible_mask(self) -> np.ndarray:  # S_V, (H, W) bool
        return self._paste(self.visible)

    @property
    def full_mask(self) -> np.ndarray:  # S_F, (H, W) bool
        return self._paste(self.full)

    @property
    def invisible_mask(self) -> np.ndarray:  # S_I = S_F \ S_V, (H, W) bool
        return self._paste(self.full & ~self.visible)

    @property
    def appearance(self) -> np.ndarray:
        """(H, W, 4) uint8 RGBA of the object alone; alpha = 255 on S_F, RGB 0 elsewhere."""
        rgba = np.concatenate([self.rgb, self.full[..., None] * np.uint8(255)], axis=2)
        rgba[..., :3] *= self.full[..., None]
        return self._paste(rgba)


@dataclass
class ViewTruth:
    view: View
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, 0 = no surface
    ids: np.ndarray  # (H, W) int32 instance-id pass of the whole scene
    objects: list[ObjectTruth]
    occlusion: list[tuple[int, int]]  # (occluder instance id, occludee instance id)
    attempts: int = 1  # camera samples drawn before one showed enough objects
    repaired_pixels: int = 0  # S_V pixels missing from S_F after re-rendering (edge cases)
    unannotated_ids: list[int] = field(default_factory=list)  # seen, but < 10 pixels
    image_params: ImageParams | None = None  # this view's randomisation (cfg.randomize)
    deocclusion: DeocclusionTruth | None = None  # the view without some objects (cfg.deocclusion)


def object_region(scene: Scene, view: View, instance_id: int) -> Region:
    """Pixel window that holds the object's projection (whole image if it crosses the near
    plane), padded by 2 pixels so rasterisation at its border is inside."""
    cam = view.camera
    pixels, depth = cam.project(scene.object(instance_id).world_vertices())
    if (depth <= 0.05).any():
        return (0, 0, cam.width, cam.height)
    x0 = int(np.clip(np.floor(pixels[:, 0].min()) - 2, 0, cam.width))
    y0 = int(np.clip(np.floor(pixels[:, 1].min()) - 2, 0, cam.height))
    x1 = int(np.clip(np.ceil(pixels[:, 0].max()) + 3, 0, cam.width))
    y1 = int(np.clip(np.ceil(pixels[:, 1].max()) + 3, 0, cam.height))
    if x1 <= x0 or y1 <= y0:
        return (0, 0, cam.width, cam.height)
    return (x0, y0, x1, y1)


def visible_counts(ids: np.ndarray, scene: Scene) -> dict[int, int]:
    """Visible pixel count of every annotatable (non-shell) object seen in the id pass."""
    counts = np.bincount(ids.ravel())
    annotatable = set(scene.annotated_ids())
    return {int(i): int(c) for i, c in enumerate(counts) if c and i in annotatable}


def choose_view(
    cfg: GenerateConfig, scene: Scene, renderer: Renderer, rng: np.random.Generator,
    size: tuple[int, int] | None = None,
) -> tuple[View, RenderResult, int]:
    """Sample cameras until one shows enough objects (section 4.1); returns the view, its id
    and depth passes and the number of attempts. After ``max_view_attempts`` the best view
    seen is kept. ``size`` (W, H) overrides the config's image size; ``cfg.randomize``
    widens the camera ranges."""
    width, height = size or (cfg.width, cfg.height)
    camera = cfg.randomize.camera_options() if cfg.randomize is not None else {}
    best: tuple[int, View, RenderResult] | None = None
    for attempt in range(1, cfg.max_view_attempts + 1):
        view = sample_view(scene, rng, width, height, **camera)
        passes = renderer.render(view, rgb=False)  # ids and depth come from one pass
        assert passes.ids is not None
        counts = visible_counts(passes.ids, scene).values()
        n_seen = sum(c >= cfg.min_visible_pixels for c in counts)
        if n_seen >= cfg.min_visible_objects:
            return view, passes, attempt
        if best is None or n_seen > best[0]:
            best = (n_seen, view, passes)
    assert best is not None
    return best[1], best[2], cfg.max_view_attempts


def render_view_truth(
    cfg: GenerateConfig, scene: Scene, renderer: Renderer, scene_index: int, view_index: int
) -> ViewTruth:
    rng = view_rng(cfg.seed, scene_index, view_index)
    params, photo_rng = None, None
    if cfg.randomize is not None:
        photo_rng = image_rng(cfg.seed, scene_index, view_index)
        params = sample_image_params(cfg.randomize, photo_rng, cfg.width, cfg.height)
    size = None if params is None else (params.width, params.height)
    view, passes, attempts = choose_view(cfg, scene, renderer, rng, size)
    if params is not None:
        view = scale_lights(view, params.light_gain)
    rgb = renderer.render(view, depth=False, ids=False).rgb
    ids, depth = passes.ids, passes.depth
    assert rgb is not None and ids is not None and depth is not None
    h, w = ids.shape

    objects: list[ObjectTruth] = []
    repaired = 0
    unannotated = []
    for inst, count in sorted(visible_counts(ids, scene).items()):
        if count < cfg.min_visible_pixels:
            unannotated.append(inst)
            continue
        x0, y0, x1, y1 = region = object_region(scene, view, inst)
        alone = renderer.render(view, only=[inst], region=region)
        assert alone.rgb is not None and alone.depth is not None and alone.ids is not None
        visible = ids[y0:y1, x0:x1] == inst
        if visible.sum() != count:  # the projection missed some pixels: use the whole image
            x0, y0, x1, y1 = region = (0, 0, w, h)
            alone = renderer.render(view, only=[inst])
            assert alone.rgb is not None and alone.depth is not None and alone.ids is not None
            visible = ids == inst
        full_mask = alone.ids == inst
        # Rasterising the object alone covers exactly its pixels in the full render; a pixel
        # on a triangle edge could still flip between two renders, so S_V ⊆ S_F is enforced.
        missing = visible & ~full_mask
        repaired += int(missing.sum())
        full_mask |= missing
        obj_depth = np.where(full_mask, alone.depth, np.float32(0))
        # A repaired pixel has no depth of its own in the alone pass: take the scene's.
        obj_depth[missing] = depth[y0:y1, x0:x1][missing]
        category = scene.object(inst).category
        # The appearance gets the image's colour transform only (segan.data.randomize).
        obj_rgb = alone.rgb if params is None else colour_transform(alone.rgb, params)
        objects.append(ObjectTruth(inst, category, region, (h, w), visible, full_mask,
                                   obj_rgb, obj_depth))
    finish = None
    if params is not None:
        assert photo_rng is not None
        noise = copy.deepcopy(photo_rng)  # re-renders get the image's own noise draws
        rgb = degrade_image(rgb, params, photo_rng)
        finish = lambda x: degrade_image(x, params, copy.deepcopy(noise))  # noqa: E731
    occlusion = occlusion_pairs(objects)
    deocclusion = None
    if cfg.deocclusion is not None:
        deocclusion = render_deocclusion(
            cfg.deocclusion, scene, renderer, view, objects, occlusion,
            removal_rng(cfg.seed, scene_index, view_index), finish or (lambda x: x))
    return ViewTruth(
        view=view,
        rgb=rgb,
        depth=depth,
        ids=ids,
        objects=objects,
        occlusion=occlusion,
        attempts=attempts,
        repaired_pixels=repaired,
        unannotated_ids=unannotated,
        image_params=params,
        deocclusion=deocclusion,
    )


def occlusion_pairs(objects: Sequence[ObjectTruth]) -> list[tuple[int, int]]:
    """(occluder, occludee) instance-id pairs: q occludes p when q's full mask covers a pixel
    of p's invisible region S_I and q is nearer the camera there than p."""
    pairs = []
    for p in objects:
        hidden = p.full & ~p.visible  # S_I of p, in p's region
        if not hidden.any():
            continue
        px0, py0, px1, py1 = p.region
        for q in objects:
            qx0, qy0, qx1, qy1 = q.region
            # the two regions' overlap, in image coordinates
            x0, y0, x1, y1 = max(px0, qx0), max(py0, qy0), min(px1, qx1), min(py1, qy1)
            if q is p or x0 >= x1 or y0 >= y1:
                continue
            in_p = np.s_[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
            in_q = np.s_[y0 - qy0 : y1 - qy0, x0 - qx0 : x1 - qx0]
            overlap = hidden[in_p] & q.full[in_q]
            if overlap.any() and (q.depth[in_q][overlap] < p.depth[in_p][overlap]).any():
                pairs.append((q.instance_id, p.instance_id))
    return pairs
