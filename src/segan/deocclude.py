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
   ties: higher index first, as `segan.pictures.painted_scene`): each takes SeGAN's painted
   appearance G(M) on the pixels of the hole its predicted full mask S_F covers, so a nearer
   object ends on top. Its new visible mask is S_V plus the hole pixels it ends up owning.

``ordered=False`` draws them in index order instead (the ablation "paintings without
ordering"), ``objects=False`` draws none (the hole filled by inpainting alone).

Step 2's fill is any ``Fill`` (a callable (image, hole) -> image): `fill_hole` (the default),
OpenCV's Telea or Navier-Stokes inpainting (`opencv_fill`, the ``inpaint`` extra), or the
trained background completer (`CompleterFill.from_checkpoint(RUN)`, task
``background_completer``, which predicts the room shell behind the removed objects).

`deocclude_true_masks` is the baseline that separates segmentation from painting error: the
true new visible masks decide which hole pixels each object takes (exact masks and order),
and SeGAN's paintings give their colours.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segan.prediction import ScenePrediction, check_image

# step 2 of the composition: (image (H, W, 3) uint8, hole (H, W) bool) -> (H, W, 3) uint8 with
# the hole's pixels filled and every other pixel unchanged
Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]


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


def _check_hole(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = check_image(image)
    hole = np.asarray(hole)
    if hole.dtype != np.bool_ or hole.shape != image.shape[:2]:
        raise ValueError(f"hole must be (H, W) bool of the image's size {image.shape[:2]}, got "
                         f"{hole.dtype} {hole.shape}")
    return image, hole


OPENCV_METHODS = ("telea", "ns")


def opencv_fill(method: str = "telea", radius: int = 3) -> Fill:
    """OpenCV's classical inpainting as a `Fill`: ``telea`` (Telea 2004, fast marching) or
    ``ns`` (Bertalmio et al. 2001, Navier-Stokes), `radius` pixels around each point. Needs
    OpenCV (``pip install 'segan[inpaint]'``: opencv-python-headless)."""
    if method not in OPENCV_METHODS:
        raise ValueError(f"OpenCV inpainting method must be one of {OPENCV_METHODS}, got "
                         f"{method!r}")
    try:
        import cv2
    except ImportError:  # a ValueError: the CLI prints it as one line
        raise ValueError(f"inpainting method {method!r} needs OpenCV: pip install "
                         "'segan[inpaint]' (opencv-python-headless)") from None
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        image, hole = _check_hole(image, hole)
        if not hole.any():
            return image.copy()
        if hole.all():
            return np.full_like(image, 128)
        out = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8), radius, flag)
        out[~hole] = image[~hole]  # only the hole changes
        return out

    fill.__name__ = f"opencv_{method}"
    return fill


class CompleterFill:
    """The trained background completer (task ``background_completer``) as a `Fill`.

    The image is resized to the network's S x S frame (as in training: bilinear, antialiased),
    the hole too (`segan.transforms.resize_hole`, grown by the run's ``hole_dilate``), the
    predicted room shell is resized back to (H, W) and written into the hole's pixels only.

        fill = CompleterFill.from_checkpoint("runs/completer")
        edited = fill(image, hole)  # (H, W, 3) uint8, (H, W) bool -> (H, W, 3) uint8
    """

    def __init__(self, net: torch.nn.Module, image_size: int, hole_dilate: int,
                 identity: dict[str, Any] | None = None):
        self.net = net.eval()
        self.image_size, self.hole_dilate = int(image_size), int(hole_dilate)
        self.identity = identity or {}
        self.device = next(net.parameters()).device

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None
                        ) -> CompleterFill:
        """path: a run folder of configs/background_completer.yaml, its model.safetensors or a
        checkpoint .pt; device: default CUDA when present, else the CPU."""
        from segan.checkpoint import load_network
        from segan.device import resolve_device

        def rebuild(cfg: Any, hparams: dict[str, Any], where: Path
                    ) -> tuple[torch.nn.Module, tuple[str, ...]]:
            if cfg.task != "background_completer":
                raise ValueError(f"{where} is a run of task {cfg.task!r}, not a background "
                                 "completer (configs/background_completer.yaml)")
            from segan.models.background_completer import BackgroundCompleter

            return BackgroundCompleter(**{**hparams, "dilations": tuple(hparams["dilations"])}
                                       ), ()

        net, cfg, identity = load_network(path, resolve_device(device), rebuild)
        return cls(net, cfg.completer.image_size, cfg.completer.hole_dilate, identity)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import torch.nn.functional as F

        from segan.transforms import resize_hole, resize_image_u8

        image, hole = _check_hole(image, hole)
        out = image.copy()
        if not hole.any():
            return out
        H, W = image.shape[:2]
        S = self.image_size
        x = torch.from_numpy(resize_image_u8(image, S)).to(self.device)
        x = x.permute(2, 0, 1)[None].float() / 255
        h = torch.from_numpy(resize_hole(hole, S, self.hole_dilate)).to(self.device)
        predicted = self.net(x, h[None, None].float())
        if (H, W) != (S, S):
            predicted = F.interpolate(predicted, size=(H, W), mode="bilinear",
                                      align_corners=False, antialias=True)
        rgb = (predicted[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8)
        out[hole] = rgb.cpu().numpy()[hole]
        return out


def painted_support(scene: ScenePrediction) -> np.ndarray:
    """(N, H, W) bool: the pixels where each object's painted RGB is defined (pixel centres
    inside the box it was painted through, `ScenePrediction.boxes`); 0 elsewhere."""
    H, W = scene.image_hw
    cy, cx = np.arange(H) + 0.5, np.arange(W) + 0.5
    b = scene.boxes.astype(np.float64)
    inside_y = (cy[None] >= b[:, 1:2]) & (cy[None] < b[:, 3:4])  # (N, H)
    inside_x = (cx[None] >= b[:, 0:1]) & (cx[None] < b[:, 2:3])  # (N, W)
    return inside_y[:, :, None] & inside_x[:, None, :]


def hidden_by(scene: ScenePrediction, remove: Sequence[int]) -> list[int]:
    """Indices of the objects that the removed ones occlude (predicted graph), not removed."""
    gone = set(remove)
    return sorted({p for q, p in scene.occlusion_pairs if q in gone and p not in gone})


def _removal(image: np.ndarray, scene: ScenePrediction, remove: Sequence[int]
             ) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The checked image, the sorted removed indices and the hole."""
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
    return image, removed, scene.visible_masks[removed].any(0)


def deocclude(image: np.ndarray, scene: ScenePrediction, remove: Sequence[int], *,
              ordered: bool = True, objects: bool = True, fill: Fill = fill_hole
              ) -> Deocclusion:
    """Remove objects ``remove`` (indices into ``scene``) from ``image`` (the image ``scene``
    was predicted from): the composition of the module docstring, with step 2 by ``fill``."""
    image, removed, hole = _removal(image, scene, remove)
    H, W = image.shape[:2]
    background = fill(image, hole)
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


def deocclude_true_masks(image: np.ndarray, scene: ScenePrediction, remove: Sequence[int],
                         revealed: np.ndarray, *, fill: Fill = fill_hole) -> Deocclusion:
    """The baseline "ground-truth masks with SeGAN's paintings": which hole pixels each
    object takes comes from the truth, their colours from SeGAN.

    revealed: (N, H, W) bool, the true revealed part S_V' \\ S_V of each object (pixels
    outside the hole are ignored; all False for objects that gain nothing). Every hole pixel
    that an object takes in the truth gets that object's painted RGB where SeGAN painted it
    (`painted_support`: inside the box it was painted through; the rest keeps ``fill``'s
    background); the other hole pixels keep ``fill``'s background. So its masks are exact
    (revealed IoU 1 by construction) and its image error is SeGAN's painting error alone, plus
    the background's. ``order``: the objects that take pixels, back to front by their
    predicted layers (the truth's parts are disjoint, so the order changes nothing)."""
    image, removed, hole = _removal(image, scene, remove)
    H, W = image.shape[:2]
    revealed = np.asarray(revealed)
    if revealed.dtype != np.bool_ or revealed.shape != scene.visible_masks.shape:
        raise ValueError(f"revealed must be (N, H, W) bool like the visible masks "
                         f"{scene.visible_masks.shape}, got {revealed.dtype} {revealed.shape}")
    taken = revealed & hole[None]
    taken[removed] = False
    if (taken.sum(0) > 1).any():
        raise ValueError("revealed parts of two objects overlap: each hole pixel belongs to "
                         "one object")
    background = fill(image, hole)
    out = background.copy()
    gainers = [k for k in range(len(scene)) if taken[k].any()]
    order = sorted(gainers, key=lambda k: (-int(scene.layers[k]), -k))
    support = painted_support(scene)
    layers = np.zeros((len(order), H, W, 4), np.uint8)
    for i, k in enumerate(order):
        m = taken[k] & support[k]
        layers[i][m] = scene.painted[k][m]
        layers[i][..., 3] = m * np.uint8(255)
        out[m] = scene.painted[k][..., :3][m]
    visible = scene.visible_masks | taken
    visible[removed] = False
    return Deocclusion(image=out, hole=hole, removed=removed, background=background,
                       order=order, visible_masks=visible, layers=layers)


def steps_picture(image: np.ndarray, result: Deocclusion, scale: int | None = None
                  ) -> np.ndarray:
    """One strip of the steps: the input with the hole tinted, the background fill, each
    drawn object's layer over a checkerboard, the edited image. (s H, s W (3 + L), 3) uint8."""
    from segan.pictures import display_scale

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


FILL_METHODS = ("diffusion", *OPENCV_METHODS)


def make_fill(method: str | None = None, completer: str | os.PathLike | None = None,
              device: str | torch.device | None = None) -> Fill:
    """Step 2's fill by name: ``diffusion`` (`fill_hole`, the default), ``telea`` or ``ns``
    (`opencv_fill`), or the background completer run ``completer`` (`CompleterFill`; then
    ``method`` must be None)."""
    if completer is not None:
        if method is not None:
            raise ValueError(f"choose one fill: the background completer {completer} or "
                             f"inpainting {method!r}, not both")
        return CompleterFill.from_checkpoint(completer, device=device)
    method = method or "diffusion"
    if method not in FILL_METHODS:
        raise ValueError(f"fill must be one of {', '.join(FILL_METHODS)}, got {method!r}")
    return fill_hole if method == "diffusion" else opencv_fill(method)


def deocclude_file(checkpoint: str | os.PathLike, image_path: str | os.PathLike,
                   masks: Sequence[str | os.PathLike], remove: Sequence[int],
                   out: str | os.PathLike, *, device: str | None = None, ordered: bool = True,
                   fill: str | None = None, completer: str | os.PathLike | None = None
                   ) -> dict[str, Any]:
    """`segan deocclude`: one image, its visible masks (``--masks`` as `segan predict` reads
    them), the indices to remove; step 2 by `make_fill` (``fill``, ``completer``). Writes into
    ``out``:

        edited.png                 the image without the removed objects
        background.png             step 2: the hole filled by the fill alone
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
    filler = make_fill(fill, completer, device)
    predictor = SeganPredictor.from_checkpoint(checkpoint, device=device)
    result = predictor.deocclude(image, visible, remove, ordered=ordered, fill=filler)
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
               "background": "background.png", "layers": layers, "steps": "steps.png",
               "fill": str(completer) if completer is not None else (fill or "diffusion")}
    write_json_atomic(out / "deocclusion.json", summary)
    return summary
