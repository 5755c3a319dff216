"""Pictures of a prediction: the overlay `segan predict` writes (S_V green, predicted S_I
magenta, S_F outlined, depth layer numbers) and the scene painted back whole."""

from __future__ import annotations

from typing import Any

import numpy as np

from segan.prediction import ScenePrediction, check_image

VISIBLE_COLOUR = (40, 200, 60)  # green: S_V
INVISIBLE_COLOUR = (235, 40, 200)  # magenta: predicted S_I


def display_scale(height: int, width: int, min_side: int = 480) -> int:
    """Integer upscaling that makes a small image's longer side at least `min_side` pixels
    (so drawn numbers stay legible on the 160 px images of the tiny preset)."""
    return max(1, -(-min_side // max(height, width)))


def overlay(image: np.ndarray, scene: ScenePrediction, scale: int | None = None) -> np.ndarray:
    """A picture of the prediction: S_V tinted green, predicted S_I tinted magenta (drawn over
    the occluders, which is where it lies), each object's S_F outlined, and its depth layer
    number at the centre of its visible part. Returns (s H, s W, 3) uint8, s = `scale`
    (default `display_scale`, nearest-neighbour upscaling)."""
    from PIL import Image, ImageDraw, ImageFont

    image = check_image(image)
    H, W = image.shape[:2]
    s = display_scale(H, W) if scale is None else int(scale)
    out = image.astype(np.float32)
    vis_any = scene.visible_masks.any(0) if len(scene) else np.zeros((H, W), bool)
    inv_any = scene.invisible_masks.any(0) if len(scene) else np.zeros((H, W), bool)
    out[vis_any] = 0.55 * out[vis_any] + 0.45 * np.array(VISIBLE_COLOUR)
    out[inv_any] = 0.35 * out[inv_any] + 0.65 * np.array(INVISIBLE_COLOUR)
    up = np.repeat(np.repeat(out.round().astype(np.uint8), s, 0), s, 1)
    # outlines of each S_F: pixels of the mask with a 4-neighbour outside it
    for k in range(len(scene)):
        m = np.repeat(np.repeat(scene.full_masks[k], s, 0), s, 1)
        inner = m.copy()
        inner[1:] &= m[:-1]
        inner[:-1] &= m[1:]
        inner[:, 1:] &= m[:, :-1]
        inner[:, :-1] &= m[:, 1:]
        up[m & ~inner] = (255, 255, 255)
    pil = Image.fromarray(up)
    draw = ImageDraw.Draw(pil)
    size = max(10, min(H, W) * s // 24)
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    for k in range(len(scene)):
        ys, xs = np.nonzero(scene.visible_masks[k])
        # the visible pixel nearest the visible part's centroid, so the label sits on the object
        j = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        x, y = (xs[j] + 0.5) * s, (ys[j] + 0.5) * s
        draw.text((x, y), str(int(scene.layers[k])), fill=(255, 255, 255), font=font,
                  anchor="mm", stroke_width=max(1, size // 8), stroke_fill=(0, 0, 0))
    return np.asarray(pil)


def painted_scene(image: np.ndarray, scene: ScenePrediction) -> np.ndarray:
    """The scene with every occluded object painted back whole: each object's predicted S_I
    pixels take its painted appearance, drawn from the deepest layer to the front (ties: higher
    index first), so an object nearer the camera stays on top. (H, W, 3) uint8."""
    out = check_image(image).copy()
    order = sorted(range(len(scene)), key=lambda k: (-int(scene.layers[k]), -k))
    for k in order:
        m = scene.invisible_masks[k]
        out[m] = scene.painted[k][..., :3][m]
    return out
