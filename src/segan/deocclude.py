"""Scene de-occlusion from SeGAN's predictions: remove objects, see what they hid.

    from segan import SeganPredictor
    predictor = SeganPredictor.from_checkpoint("runs/tiny")
    result = predictor.deocclude(image, visible_masks, remove=[k])  # (H, W, 3) uint8, (N, H, W)
    result.image, result.visible_masks, result.order

The baseline composition (`deocclude`), from one `ScenePrediction` of the image:

1. the hole is where the removed objects are seen: the union of their visible masks S_V;
2. the background: the hole filled from its surroundings (`fill_hole`: classical diffusion
   inpainting, the onion-peel mean of the known 8-neighbours, ring by ring);
3. the objects the removed ones hide (their occludees in the predicted occlusion graph,
   section 5.2's rule) are drawn back to front by their predicted depth layers (deepest first;
   ties: higher index first, as `segan.inference.painted_scene`): each takes SeGAN's painted
   appearance G(M) on the pixels of the hole its predicted full mask S_F covers, so a nearer
   object ends on top. Its new visible mask is S_V plus the hole pixels it ends up owning.

``ordered=False`` draws them in index order instead (the ablation "paintings without
ordering"), ``objects=False`` draws none (the hole filled by inpainting alone).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segan.inference import ScenePrediction, check_image


@dataclass
class Deocclusion:
    """The result of removing some objects from one (H, W) image with N objects.

    image: (H, W, 3) uint8, the edited image (equal to the input outside ``hole``).
    hole: (H, W) bool, the union of the removed objects' visible masks.
    removed: the removed object indices (sorted).
    background: (H, W, 3) uint8, the input with the hole filled by `fill_hole` (step 2).
    order: object indices in the order they were drawn into the hole (back to front).
    visible_masks: (N, H, W) bool, every object's new visible mask S_V' (S_V plus the hole
        pixels it now owns; all False for a removed object).
    layers: (len(order), H, W, 4) uint8 RGBA, what each drawn object put into the hole: its
        painted RGB and alpha 255 on the hole pixels of its predicted S_F (before nearer
        objects covered some of them).
    """

    image: np.ndarray
    hole: np.ndarray
    removed: list[int]
    background: np.ndarray
    order: list[int]
    visible_masks: np.ndarray
    layers: np.ndarray

    @property
    def revealed_masks(self) -> np.ndarray:
        """(N, H, W) bool: the hole pixels each object owns now (S_V' \\ S_V)."""
        return self.visible_masks & self.hole[None]


def fill_hole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Classical diffusion inpainting: each ring of hole pixels that touches known pixels takes
    the mean of its known 8-neighbours, until the hole is filled. (H, W, 3) uint8 in and out;
    pixels outside ``hole`` are unchanged. A hole that covers the whole image becomes grey."""
    image = check_image(image)
    hole = np.asarray(hole, dtype=bool)
    if hole.shape != image.shape[:2]:
        raise ValueError(f"hole is {hole.shape}, the image is {image.shape[:2]}")
    out = image.astype(np.float64)
    known = ~hole
    if not known.any():
        return np.full_like(image, 128)
    h, w = hole.shape
    while not known.all():
        value = np.pad(out * known[..., None], ((1, 1), (1, 1), (0, 0)))
        count = np.pad(known.astype(np.float64), 1)
        total = np.zeros_like(out)
        n = np.zeros((h, w))
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == dx == 1:
                    continue
                total += value[dy : dy + h, dx : dx + w]
                n += count[dy : dy + h, dx : dx + w]
        ring = ~known & (n > 0)
        out[ring] = total[ring] / n[ring][:, None]
        known = known | ring
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def hidden_by(scene: ScenePrediction, remove: Sequence[int]) -> list[int]:
    """Indices of the objects that the removed ones occlude (predicted graph), not removed."""
    gone = set(remove)
    return sorted({p for q, p in scene.occlusion_pairs if q in gone and p not in gone})


def deocclude(image: np.ndarray, scene: ScenePrediction, remove: Sequence[int], *,
              ordered: bool = True, objects: bool = True) -> Deocclusion:
    """Remove objects ``remove`` (indices into ``scene``) from ``image`` (the image ``scene``
    was predicted from): the composition of the module docstring."""
    image = check_image(image)
    n = len(scene)
    H, W = image.shape[:2]
    if scene.image_hw != (H, W):
        raise ValueError(f"the prediction is for a {scene.image_hw} image, this one is {(H, W)}")
    removed = sorted({int(k) for k in remove})
    if not removed:
        raise ValueError("nothing to remove: pass at least one object index")
    bad = [k for k in removed if not 0 <= k < n]
    if bad:
        raise ValueError(f"object indices {bad} out of range: the image has {n} objects "
                         f"(0..{n - 1})")
    hole = scene.visible_masks[removed].any(0)
    background = fill_hole(image, hole)
    out = background.copy()
    visible = scene.visible_masks.copy()
    visible[removed] = False
    candidates = hidden_by(scene, removed) if objects else []
    if ordered:
        order = sorted(candidates, key=lambda k: (-int(scene.layers[k]), -k))
    else:
        order = list(candidates)
    layers = np.zeros((len(order), H, W, 4), np.uint8)
    owner = np.full((H, W), -1, np.int64)
    for i, k in enumerate(order):
        m = scene.full_masks[k] & hole
        layers[i][m] = scene.painted[k][m]
        layers[i][..., 3] = m * np.uint8(255)
        out[m] = scene.painted[k][..., :3][m]
        owner[m] = k
    for k in order:
        visible[k] |= owner == k
    return Deocclusion(image=out, hole=hole, removed=removed, background=background,
                       order=order, visible_masks=visible, layers=layers)


def steps_picture(image: np.ndarray, result: Deocclusion, scale: int | None = None
                  ) -> np.ndarray:
    """One strip of the steps: the input with the hole tinted, the background fill, each
    drawn object's layer over a checkerboard, the edited image. (s H, s W (3 + L), 3) uint8."""
    from segan.inference import display_scale

    image = check_image(image)
    H, W = image.shape[:2]
    s = display_scale(H, W, min_side=240) if scale is None else int(scale)
    tinted = image.astype(np.float32)
    tinted[result.hole] = 0.4 * tinted[result.hole] + 0.6 * np.array([235, 40, 200])
    yy, xx = np.mgrid[:H, :W]
    checker = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 200, 150).astype(np.float32)
    panels = [tinted, result.background.astype(np.float32)]
    for layer in result.layers:
        a = layer[..., 3:4].astype(np.float32) / 255.0
        panels.append(a * layer[..., :3] + (1 - a) * checker)
    panels.append(result.image.astype(np.float32))
    strip = np.concatenate([np.round(p).astype(np.uint8) for p in panels], axis=1)
    return np.repeat(np.repeat(strip, s, 0), s, 1)


def deocclude_file(checkpoint: str | os.PathLike, image_path: str | os.PathLike,
                   masks: Sequence[str | os.PathLike], remove: Sequence[int],
                   out: str | os.PathLike, *, device: str | None = None, ordered: bool = True
                   ) -> dict[str, Any]:
    """`segan deocclude`: one image, its visible masks (``--masks`` as `segan predict` reads
    them), the indices to remove. Writes into ``out``:

        edited.png                 the image without the removed objects
        background.png             step 2: the hole filled by inpainting alone
        layer_<i>_object_<k>.png   RGBA, what object k (drawn i-th, back to front) put there
        visible_<k>.png            0/255 new visible mask of each object that gained pixels
        steps.png                  the steps side by side (`steps_picture`)
        deocclusion.json           removed, order, revealed pixel counts, the files

    Returns the JSON's content."""
    from segan.data.atomic import write_png_atomic
    from segan.data.coco import write_json_atomic
    from segan.inference import SeganPredictor
    from segan.predict_io import masks_for_images, read_image

    image = read_image(image_path)
    visible = masks_for_images(masks, [image_path], [image.shape[:2]])[0]
    predictor = SeganPredictor.from_checkpoint(checkpoint, device=device)
    result = predictor.deocclude(image, visible, remove, ordered=ordered)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_png_atomic(out / "edited.png", result.image)
    write_png_atomic(out / "background.png", result.background)
    write_png_atomic(out / "steps.png", steps_picture(image, result))
    layers = []
    for i, k in enumerate(result.order):
        name = f"layer_{i}_object_{k}.png"
        write_png_atomic(out / name, result.layers[i])
        layers.append(name)
    revealed = result.revealed_masks
    gained = {}
    for k in range(len(revealed)):
        if revealed[k].any():
            write_png_atomic(out / f"visible_{k}.png", result.visible_masks[k] * np.uint8(255))
            gained[str(k)] = int(revealed[k].sum())
    summary = {"image": str(image_path), "objects": len(visible), "removed": result.removed,
               "hole_pixels": int(result.hole.sum()), "order": result.order,
               "revealed_pixels": gained, "edited": "edited.png",
               "background": "background.png", "layers": layers, "steps": "steps.png"}
    write_json_atomic(out / "deocclusion.json", summary)
    return summary
