"""Per-object painted crops of an evaluation (`segan evaluate --save-crops N`), the material of
the human preference study (`segan study create`, Table 3).

For the first N objects of the split (evaluation order) that are occluded, have an appearance
target and have ground-truth S_F in their crop (the objects Table 2 scores), OUT/crops/ gets:

    crops/input/<key>.png     the image crop over the object's box, dimmed outside S_V (the
                              input the methods see: image and visible mask), c x c RGB
    crops/target/<key>.png    the ground-truth appearance of the whole object (RGB * alpha)
    crops/<method>/<key>.png  each painting method's painted crop G(M), in [0, 1] -> uint8
    crops/index.json          {"format": "segan-crops", "version", "methods", "objects":
                              [{"key", "image_id", "ann_id", "occlusion_rate"}]}

key = "<image_id>_<ann_id>". Crops are c x c with c the method's own crop size (the input and
target: the first method's). uint8 = round(255 * clamp(x, 0, 1)).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segan.data.atomic import write_bytes_atomic, write_png_atomic
from segan.models import crop_object_masks

from .baselines import ImageInputs, MethodOutput

CROPS_FORMAT = "segan-crops"
CROPS_VERSION = 1
CROPS_FOLDER = "crops"
OUTSIDE_VISIBLE = 0.35  # brightness of the input crop outside S_V


def _u8(x: torch.Tensor) -> np.ndarray:
    """(3, c, c) float in [0, 1] -> (c, c, 3) uint8."""
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class CropWriter:
    """Writes the crops of up to `limit` objects for `methods` (the painting ones) into
    `folder`. Call `add` for every (method, image) in evaluation order, then `finish`."""

    def __init__(self, folder: str | Path, limit: int, methods: Sequence[str],
                 image_mean: Sequence[float], image_std: Sequence[float]):
        if limit < 1:
            raise ValueError(f"--save-crops must be >= 1, got {limit}")
        self.folder, self.limit, self.methods = Path(folder), limit, list(methods)
        self.image_mean, self.image_std = tuple(image_mean), tuple(image_std)
        self.objects: list[dict[str, Any]] = []
        self._picks: dict[int, list[int]] = {}  # image id -> its picked object indices

    def _pick(self, inputs: ImageInputs, detected: np.ndarray | None) -> list[int]:
        """The image's objects to save (decided once per image, with its first method)."""
        if inputs.image_id in self._picks:
            return self._picks[inputs.image_id]
        full, vis = inputs.full, inputs.visible
        occluded = (full & ~vis).any(axis=(1, 2))
        has_full = inputs.full_crop[:, 0].float().cpu().numpy().reshape(
            inputs.num_objects, -1).max(1) >= 0.5
        ok = occluded & np.asarray(inputs.has_appearance, bool) & has_full
        if detected is not None:
            ok &= np.asarray(detected, bool)
        picks = [int(k) for k in np.flatnonzero(ok)][:self.limit - len(self.objects)]
        self._picks[inputs.image_id] = picks
        c = inputs.target.shape[-1]
        mean = torch.tensor(self.image_mean, device=inputs.images.device).view(3, 1, 1)
        std = torch.tensor(self.image_std, device=inputs.images.device).view(3, 1, 1)
        for k in picks:
            key = f"{inputs.image_id}_{inputs.ann_ids[k]}"
            box = inputs.boxes[k:k + 1]
            image = crop_object_masks(inputs.images, box, c)[0] * std + mean
            sv = crop_object_masks(inputs.visible_masks[k:k + 1], box, c)[0] >= 0.5
            shown = torch.where(sv, image, image * OUTSIDE_VISIBLE)
            write_png_atomic(self.folder / "input" / f"{key}.png", _u8(shown))
            write_png_atomic(self.folder / "target" / f"{key}.png", _u8(inputs.target[k]))
            self.objects.append({
                "key": key, "image_id": int(inputs.image_id), "ann_id": int(inputs.ann_ids[k]),
                "occlusion_rate": round(float((full[k] & ~vis[k]).sum() / max(1, full[k].sum())),
                                        4)})
        return picks

    def add(self, method: str, inputs: ImageInputs, pred: MethodOutput | None,
            detected: np.ndarray | None = None) -> None:
        """One method's output on one image (`run_method`'s, None when nothing ran)."""
        picks = self._pick(inputs, detected)
        if method not in self.methods or pred is None or pred.painted is None:
            return
        for k in picks:
            key = f"{inputs.image_id}_{inputs.ann_ids[k]}"
            write_png_atomic(self.folder / method / f"{key}.png", _u8(pred.painted[k]))

    def finish(self) -> dict[str, Any]:
        """Write index.json; returns what results.json records under "crops"."""
        index = {"format": CROPS_FORMAT, "version": CROPS_VERSION, "methods": self.methods,
                 "objects": self.objects}
        write_bytes_atomic(self.folder / "index.json", json.dumps(index, indent=1).encode())
        return {"folder": self.folder.name, "count": len(self.objects), "methods": self.methods}
