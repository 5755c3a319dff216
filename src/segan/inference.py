"""The predictor: one image and the visible masks of its objects -> each object's full mask,
invisible mask and painted appearance, and the scene's occlusion graph with depth layers.

    from segan import SeganPredictor
    predictor = SeganPredictor.from_checkpoint("runs/tiny")  # run folder, .safetensors or .pt
    scene = predictor.predict(image, visible_masks)  # (H, W, 3) uint8, (N, H, W) bool
    scene.full_masks, scene.invisible_masks, scene.painted, scene.layers

Inputs go through exactly the preprocessing of the evaluation (`segan.transforms.model_inputs`
after `resize_image_u8` / `resize_planes_u8`; here their tensor forms on the model's device),
and the network's forward is this module's `run_segan`, which the evaluation's SeGAN method
calls too, so a prediction here equals what `segan evaluate` scores for the same image and
masks (on a GPU, up to the resizing's float rounding when the image is not S x S already:
`segan.transforms.resize_planes_u8_t`). All N objects of an image go through one
forward of the network: with the paper's ``mask_fusion: input`` the backbone runs once over a
batch of N (image, S_V_k) inputs; with ``roi`` fusion it runs once over the image.

Without visible masks, a visible-instance segmenter (class-agnostic Mask R-CNN,
`segan.models.visible_segmenter.VisibleSegmenter`) finds them: pass its checkpoint as
``from_checkpoint(path, visible_segmenter=PATH)``.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from segan.checkpoint import load_segan
from segan.config import TrainConfig
from segan.device import autocast, autocast_dtype, resolve_device
from segan.layering import LAYERING_THRESHOLD, depth_layers, occlusion_pairs_from_counts
from segan.models import SeGAN
from segan.models.crops import crop_own_boxes
from segan.transforms import (
    mask_boxes_in_frame,
    model_inputs_t,
    one_cpu_thread,
    paste_planes,
    paste_to_image,
    resize_planes_u8_t,
)

if TYPE_CHECKING:
    from segan.deocclude import Deocclusion

MASK_THRESHOLD = 0.5  # as the evaluation (segan.eval.metrics.threshold)
NO_SEGMENTER_MESSAGE = (
    "predict() was called without visible_masks, which needs a visible-instance segmenter "
    "(class-agnostic Mask R-CNN) to find the objects' visible masks S_V, and none was given. "
    "Either pass visible_masks (N boolean (H, W) masks; `segan predict --masks FILE`), or load "
    "the predictor with SeganPredictor.from_checkpoint(CKPT, visible_segmenter=PATH) "
    "(`segan predict --visible-segmenter PATH`), PATH being a run folder, model.safetensors "
    "or checkpoint of `segan train --config configs/visible_maskrcnn.yaml` on your data.")


class VisibleSegmenterLike(Protocol):
    """What the predictor needs of a visible-instance segmenter."""

    def segment(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> masks (N, H, W) bool, scores (N,) float in [0, 1]."""
        ...


def load_visible_segmenter(path: str | os.PathLike, device: torch.device | str | None = None
                           ) -> VisibleSegmenterLike:
    """`VisibleSegmenter.from_checkpoint(path)` (segan.models.visible_segmenter), or the
    visible segmenter of a bundle (its folder or manifest; ValueError when it carries none)."""
    from segan.bundle import is_bundle, load_bundle_segmenter

    if (Path(path).suffix == ".json" or Path(path).is_dir()) and is_bundle(path):
        seg = load_bundle_segmenter(path, device or "cpu")
        if seg is None:
            raise ValueError(f"{path}: this bundle has no visible segmenter (export it with "
                             "`segan export-bundle RUN --visible-segmenter VRUN`)")
        return seg
    try:
        from segan.models.visible_segmenter import VisibleSegmenter  # type: ignore[import-not-found]
    except ImportError as e:
        raise ValueError(f"cannot load the visible segmenter {path}: this segan has no "
                         f"segan.models.visible_segmenter ({e})") from None
    if not Path(path).exists():
        raise FileNotFoundError(f"no visible-segmenter checkpoint {path}")
    return VisibleSegmenter.from_checkpoint(path, device=device)


@dataclass
class ObjectPrediction:
    """One object of a `ScenePrediction` (views into its arrays; see there for conventions)."""

    index: int
    visible_mask: np.ndarray
    full_mask: np.ndarray
    invisible_mask: np.ndarray
    full_prob: np.ndarray
    painted: np.ndarray
    box: np.ndarray
    layer: int
    score: float | None
    occluders: list[int]
    occludees: list[int]


@dataclass
class ScenePrediction:
    """The prediction for the N objects of one (H, W) image, in the order of the input masks.

    visible_masks: (N, H, W) bool, S_V (given, or found by the visible segmenter).
    full_masks: (N, H, W) bool, the full (amodal) mask S_F: the predicted probability >= 0.5,
        united with S_V (the visible pixels are part of the object by definition).
    invisible_masks: (N, H, W) bool, S_I = S_F \\ S_V: where the object is hidden.
    full_probs: (N, H, W) float32 in [0, 1], the network's S_F probability in the image frame
        (0 outside the object's box), before the union with S_V.
    painted: (N, H, W, 4) uint8 RGBA in the image frame: RGB the painter's G(M) (the whole
        object's appearance, visible and hidden parts), alpha 255 on S_F and 0 elsewhere.
    boxes: (N, 4) float32 (x1, y1, x2, y2), the box each object was seen through (S_V's box
        grown by ``expand_test`` per side and clipped), continuous pixel coordinates of the
        image: pixel (i, j) covers [j, j + 1) x [i, i + 1).
    scores: (N,) float32 of the visible segmenter, or None when the masks were given.
    occlusion_pairs: sorted (q, p) index pairs, "q occludes p": IoU(S_V of q, S_I of p) > 5%
        (section 5.2's rule, `segan.layering.occlusion_pairs_from_counts`).
    layers: (N,) int64 depth layers from the pairs (`segan.layering.depth_layers`): 0 for an
        object no one occludes (front), else 1 + the deepest of its occluders. The rule's pairs
        can form cycles (q hides part of p and p part of q); a cycle is broken deterministically:
        when only cycles remain, the unplaced object with the fewest unplaced occluders (ties:
        lowest index) is placed next and its pairs from still-unplaced objects are dropped.
    """

    visible_masks: np.ndarray
    full_masks: np.ndarray
    invisible_masks: np.ndarray
    full_probs: np.ndarray
    painted: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None
    occlusion_pairs: list[tuple[int, int]]
    layers: np.ndarray

    def __len__(self) -> int:
        return int(self.visible_masks.shape[0])

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.visible_masks.shape[1]), int(self.visible_masks.shape[2])

    @property
    def objects(self) -> list[ObjectPrediction]:
        return [self.object(k) for k in range(len(self))]

    def object(self, k: int) -> ObjectPrediction:
        return ObjectPrediction(
            index=k, visible_mask=self.visible_masks[k], full_mask=self.full_masks[k],
            invisible_mask=self.invisible_masks[k], full_prob=self.full_probs[k],
            painted=self.painted[k], box=self.boxes[k], layer=int(self.layers[k]),
            score=None if self.scores is None else float(self.scores[k]),
            occluders=[q for q, p in self.occlusion_pairs if p == k],
            occludees=[p for q, p in self.occlusion_pairs if q == k])


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, or a ValueError saying what is wrong."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array, got {image.dtype} "
                         f"{image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: {image.shape}")
    return image


def check_visible_masks(masks: Any, height: int, width: int) -> np.ndarray:
    """N visible masks, each (H, W) bool and non-empty -> (N, H, W) bool, or a ValueError
    naming the mask."""
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        masks = masks[None]
    stack = [np.asarray(m) for m in masks]
    for k, m in enumerate(stack):
        if m.shape != (height, width):
            raise ValueError(f"visible mask {k} is {m.shape}, the image is ({height}, {width})")
        if m.dtype != np.bool_:
            raise ValueError(f"visible mask {k} must be bool, got {m.dtype} (use mask > 0)")
        if not m.any():
            raise ValueError(f"visible mask {k} is empty (no pixel set)")
    if not stack:
        return np.zeros((0, height, width), bool)
    return np.stack(stack)


@dataclass
class SeganOutput:
    """The network's output for one image's N objects, as tensors on its device.

    full_probs: (N, H, W) float in [0, 1], the predicted S_F in the original image frame (0
        outside each object's box). box_full: (N, 1, c, c) float in [0, 1], S_F over each box
        at the painter's crop size c. painted: (N, 3, c, c) float RGB in [0, 1], the painter's
        G(M) over each box.
    """

    full_probs: torch.Tensor
    box_full: torch.Tensor
    painted: torch.Tensor


@torch.no_grad()
def run_segan(net: SeGAN, frame_size: int, images: torch.Tensor, visible_masks: torch.Tensor,
              boxes: torch.Tensor, orig_hw: tuple[int, int],
              amp_dtype: torch.dtype | None = None,
              visible_orig: torch.Tensor | None = None) -> SeganOutput:
    """One forward of all N objects of one image (inputs from `segan.transforms.model_inputs`
    or `model_inputs_t`): the predicted S_F pasted back to the original (H, W) = orig_hw frame,
    and the painted crops in [0, 1] (`SeganOutput`). amp_dtype: autocast dtype (None: fp32).
    visible_orig: (N, H, W) bool S_V in the original frame; with the network's `occluder_gate`
    S_F is gated again there, with exact edges (`gate_full_probs`).
    The predictor's forward, and the evaluation's (`segan.eval.builtin_methods.SeGANMethod`)."""
    with autocast(images.device, amp_dtype):
        out = net(images, visible_masks, boxes)
    H, W = orig_hw
    full_probs = paste_to_image(out["mask_probs"].float(), boxes, frame_size, H, W)
    box_full = out["full_mask"].float()
    gate = getattr(net, "occluder_gate", "none")
    if visible_orig is not None and gate != "none":
        full_probs = gate_full_probs(full_probs, visible_orig, one_way=gate == "one_way")
        # box_full as scored: the gated S_F cropped back over each box (figures, studies)
        scale = boxes.new_tensor([W / frame_size, H / frame_size] * 2)
        box_full = crop_own_boxes(full_probs[:, None], boxes[:, 1:] * scale, box_full.shape[-1])
    painted = ((out["painted"].float() + 1) / 2).clamp(0, 1)
    return SeganOutput(full_probs=full_probs, box_full=box_full, painted=painted)


def gate_full_probs(full_probs: torch.Tensor, visible: torch.Tensor, one_way: bool = True
                    ) -> torch.Tensor:
    """SeGAN's `occluder_gate` in the image frame: 1 on S_V, the prediction where the image's
    other objects are visible (U - S_V), 0 elsewhere; then with `one_way`, of two objects that
    claim each other's visible pixels only the surer claim stays: p hides behind q or q behind
    p, not both (section 5.2's pairs are one-way); last, hidden pieces that do not touch the
    object's S_V go (`drop_detached_hidden`). full_probs (N, H, W) float, visible (N, H, W)
    bool."""
    visible = visible.to(full_probs.device, torch.bool)
    others = visible.any(0, keepdim=True) & ~visible
    probs = full_probs * others
    n = len(probs)
    if one_way and n > 1:
        v = visible.reshape(n, -1).to(probs.dtype)
        flat = full_probs.reshape(n, -1)
        # claims[p, q]: p's mean probability over the pixels of S_V_q inside p's box (the
        # pasted o is 0 outside it, sigmoid > 0 inside), so sizes do not decide
        seen = (flat > 0).to(probs.dtype) @ v.T
        claims = (probs.reshape(n, -1) @ v.T) / seen.clamp(min=1)
        lose = claims < claims.T  # p's claim on q is the weaker of the two
        # pixels of the lost claims: each pixel is visible in at most one object (disjoint S_V)
        dropped = (lose.to(probs.dtype) @ v).reshape(probs.shape) > 0
        probs = probs.masked_fill(dropped, 0.0)
    return drop_detached_hidden(torch.where(visible, torch.ones_like(full_probs), probs), visible)


def drop_detached_hidden(full_probs: torch.Tensor, visible: torch.Tensor,
                         threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """The gate's second rule: an object's hidden part continues its visible part, so a piece
    of S_I (pixels >= threshold outside S_V, 8-connected) that touches no pixel of S_V (nor
    its 8 neighbours) is dropped (probability 0). Measured on the bundled model (ground-truth
    S_V, mean over instances): +0.3 full / +0.2 invisible IoU in-domain, +0.2 / +0.2 on the
    Mitsuba set (docs/results.md). full_probs (N, H, W) float, visible (N, H, W) bool."""
    from scipy import ndimage

    hidden_t = (full_probs >= threshold) & ~visible.to(full_probs.device, torch.bool)
    has = torch.nonzero(hidden_t.flatten(1).any(1)).flatten().tolist()
    if not has:
        return full_probs
    hidden, vis = hidden_t[has].cpu().numpy(), visible[has].cpu().numpy()
    H, W = hidden.shape[1:]
    eight = np.ones((3, 3), bool)
    out = full_probs
    for i, k in enumerate(has):
        ys, xs = np.nonzero(hidden[i])
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        h = hidden[i, y0:y1, x0:x1]
        # S_V and its 8 neighbours over the crop (one pixel of margin for the neighbours)
        py0, py1, px0, px1 = max(y0 - 1, 0), min(y1 + 1, H), max(x0 - 1, 0), min(x1 + 1, W)
        near = ndimage.binary_dilation(vis[i, py0:py1, px0:px1], eight)
        near = near[y0 - py0:y0 - py0 + h.shape[0], x0 - px0:x0 - px0 + h.shape[1]]
        labels, n = ndimage.label(h, structure=eight)
        touching = np.unique(labels[h & near])
        if len(touching) == n:  # every piece touches S_V (label 0 is never under h)
            continue
        drop = h & ~np.isin(labels, touching)
        if out is full_probs:
            out = full_probs.clone()
        region = out[k, y0:y1, x0:x1]
        out[k, y0:y1, x0:x1] = region.masked_fill(torch.from_numpy(drop).to(region.device), 0.0)
    return out


class SeganPredictor:
    """SeGAN for inference: segments and paints the invisible parts of an image's objects.

    Build with `from_checkpoint`; `predict` takes NumPy and returns NumPy (`ScenePrediction`).
    """

    def __init__(self, net: SeGAN, cfg: TrainConfig, device: torch.device,
                 identity: dict[str, Any] | None = None,
                 visible_segmenter: VisibleSegmenterLike | None = None):
        self.net, self.cfg, self.device = net.eval(), cfg, device
        self.identity = identity or {}
        self.visible_segmenter = visible_segmenter
        # bf16 autocast on CUDA, fp32 on CPU: as the evaluation
        self.amp_dtype = autocast_dtype(device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                        visible_segmenter: str | os.PathLike | VisibleSegmenterLike | None = None
                        ) -> SeganPredictor:
        """Rebuild the model from the checkpoint alone.

        path: a run folder (its model.safetensors), an exported model.safetensors, a
        training checkpoint .pt, or a bundle (`segan.bundle`: its manifest or folder).
        device: "cpu", "cuda", a torch.device, or None (CUDA when available).
        visible_segmenter: a VisibleSegmenter checkpoint path (or an object with
        ``segment(image) -> (masks, scores)``), needed only for ``predict(image)`` without masks.
        """
        dev = resolve_device(device)
        return cls._with_segmenter(*load_segan(path, dev), dev, visible_segmenter)

    @classmethod
    def _with_segmenter(cls, net: SeGAN, cfg: TrainConfig, identity: dict[str, Any],
                        dev: torch.device,
                        visible_segmenter: str | os.PathLike | VisibleSegmenterLike | None
                        ) -> SeganPredictor:
        seg: VisibleSegmenterLike | None
        if visible_segmenter is None or hasattr(visible_segmenter, "segment"):
            seg = visible_segmenter  # type: ignore[assignment]
        else:
            seg = load_visible_segmenter(visible_segmenter, dev)  # type: ignore[arg-type]
        return cls(net, cfg, dev, identity, seg)

    @classmethod
    def pretrained(cls, device: str | torch.device | None = None,
                   visible_segmenter: str | os.PathLike | VisibleSegmenterLike | None = None,
                   bundle: str | os.PathLike | None = None) -> SeganPredictor:
        """The model bundled with the package (`segan.bundle`: fp16 safetensors under
        segan/weights/, each file checked against the manifest's sha256), or the bundle at
        `bundle` (a manifest .json or its folder, as `segan export-bundle` writes). Raises
        `segan.bundle.NoBundleError` (one line: how to pass a checkpoint instead) when the
        package has none, `segan.bundle.BundleError` when a file is missing or corrupted.
        visible_segmenter: None takes the bundle's own (if it has one) for images without
        masks; a path or object as `from_checkpoint`."""
        from segan.bundle import load_bundle, load_bundle_segmenter
        from segan.checkpoint import rebuild_segan

        dev = resolve_device(device)
        loaded = load_bundle(bundle, dev, rebuild_segan)
        if visible_segmenter is None:
            visible_segmenter = load_bundle_segmenter(bundle, dev)
        return cls._with_segmenter(*loaded, dev, visible_segmenter)

    @classmethod
    def from_onnx(cls, path: str | os.PathLike,
                  visible_segmenter: str | os.PathLike | VisibleSegmenterLike | None = None,
                  threads: int | None = None) -> SeganPredictor:
        """The network as an ONNX file of `segan export --onnx`, run by onnxruntime on the CPU
        (the `onnx` extra); everything around it as `predict` always does. threads: its
        intra-op threads (None: onnxruntime's default)."""
        from segan.data.atomic import file_sha256
        from segan.onnx_export import OnnxSegan

        net = OnnxSegan.load(path, threads)
        cfg = TrainConfig.from_dict(net.config)
        identity = {"path": str(path), "format": "onnx", "step": net.source.get("step"),
                    "sha256": file_sha256(path)}
        dev = torch.device("cpu")
        return cls._with_segmenter(net, cfg, identity, dev,  # type: ignore[arg-type]
                                   visible_segmenter)

    def segment_visible(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The visible segmenter's masks (N, H, W) bool and scores (N,) float32 (empty masks
        dropped); raises ValueError (how to get one) when the predictor has none."""
        image = check_image(image)
        if self.visible_segmenter is None:
            raise ValueError(NO_SEGMENTER_MESSAGE)
        masks, scores = self.visible_segmenter.segment(image)
        masks = np.asarray(masks, dtype=bool).reshape(-1, *image.shape[:2])
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if len(scores) != len(masks):
            raise ValueError(f"the visible segmenter returned {len(masks)} masks but "
                             f"{len(scores)} scores")
        keep = masks.any(axis=(1, 2))
        return masks[keep], scores[keep]

    def predict_torch(self, images: torch.Tensor, visible_masks: torch.Tensor,
                      boxes: torch.Tensor, orig_hw: tuple[int, int],
                      visible_orig: torch.Tensor | None = None) -> SeganOutput:
        """The network on prepared inputs (`segan.transforms.model_inputs_t`, on the model's
        device): `run_segan` with this predictor's network, frame size and precision.
        visible_orig: (N, H, W) bool S_V in the original frame (`run_segan`)."""
        return run_segan(self.net, self.cfg.data.image_size, images, visible_masks, boxes,
                         orig_hw, self.amp_dtype, visible_orig)

    @torch.no_grad()
    def predict(self, image: np.ndarray, visible_masks: np.ndarray | Sequence[np.ndarray] | None
                = None, *, timer: StageTimer | None = None) -> ScenePrediction:
        """Segment and paint every object of one image.

        image: (H, W, 3) uint8 RGB. visible_masks: (N, H, W) bool (or N (H, W) bool arrays),
        S_V of each object, each non-empty; None: found by the visible segmenter (then
        ``scores`` is set). Returns a `ScenePrediction` (shapes, dtypes and ranges there).
        timer: a `StageTimer` that records how long each stage took (the benchmark's
        ``--breakdown``).

        Everything from the inputs' upload to the results runs on the model's device, batched
        over the N objects, and comes back in one device -> host copy at the end (the only
        synchronisation): resizing, S_V's boxes, the network, pasting S_F and the painted RGB
        into the image frame, the union with S_V, RGBA, and the pixel counts of section 5.2's
        occlusion rule. Only the N x N IoUs, the pairs and the layers are computed on the host.
        On a GPU the result's arrays are in pinned host memory (`_to_host`); on the CPU, the
        work around the network runs on one intra-op thread (`one_cpu_thread`).
        """
        if timer is not None:
            timer.begin(self.device)
        image = check_image(image)
        H, W = image.shape[:2]
        scores = None
        if visible_masks is None:
            visible, scores = self.segment_visible(image)
        else:
            visible = check_visible_masks(visible_masks, H, W)
        n = len(visible)
        if n == 0:
            return _empty(H, W, scores)
        if n == 1 and getattr(self.net, "occluder_gate", "none") != "none":
            warnings.warn("one object given: this model's occluder gate puts hidden parts only "
                          "under other objects' visible masks, so none is predicted; pass the "
                          "mask of every object in front too", stacklevel=2)

        S = self.cfg.data.image_size
        dev = self.device
        # many small ops: one CPU thread (see one_cpu_thread); the network gets all of them
        with one_cpu_thread(dev.type == "cpu"):
            # Inputs exactly as evaluated (`model_inputs`): image and S_V resized to S x S, S_V's
            # boxes, expand_test.
            nb = dev.type == "cuda"
            image_t = torch.from_numpy(image if image.flags.writeable else image.copy()
                                       ).to(dev, non_blocking=nb)
            vis = torch.from_numpy(visible).to(dev, non_blocking=nb)  # (N, H, W) bool
            if (H, W) != (S, S):
                image_t = resize_planes_u8_t(image_t.permute(2, 0, 1)[None].contiguous(), S
                                             )[0].permute(1, 2, 0)
            # (N, 1, S, S) uint8; already S x S: the bool masks as they are (model_inputs_t: 0/1)
            vis_s = resize_planes_u8_t(vis[:, None], S) if (H, W) != (S, S) else vis[:, None]
            images, visible_masks_t, boxes = model_inputs_t(
                image_t, vis_s, mask_boxes_in_frame(vis, S), self.cfg)
        if timer is not None:
            timer.mark("prepare")

        # the network and S_F: o pasted to the image frame, exactly as `segan evaluate` runs it
        out = self.predict_torch(images, visible_masks_t, boxes, (H, W), vis)
        if timer is not None:
            timer.mark("network + S_F paste")

        with one_cpu_thread(dev.type == "cpu"):
            full_probs = out.full_probs.clamp_(0, 1)
            full = (full_probs >= MASK_THRESHOLD) | vis  # united with S_V
            invisible = full & ~vis
            # RGBA: the painted crops G(M) (N, 3, c, c) -> image frame by the same mapping as S_F's,
            # written straight into the RGB channels; alpha 255 on S_F
            painted = torch.zeros(n, H, W, 4, dtype=torch.uint8, device=dev)
            paste_planes(out.painted, boxes, S, H, W, to_u8=True,
                         out=painted.permute(0, 3, 1, 2)[:, :3], out_is_zero=True)
            painted[..., 3] = full.to(torch.uint8).mul_(255)
            if timer is not None:
                timer.mark("paint paste/compose")

            # section 5.2's rule: |S_V_q n S_I_p| for all pairs in one matmul (0/1 in float32:
            # exact while counts stay below 2**24; float64 above)
            count_dtype = torch.float32 if H * W < 2 ** 24 else torch.float64
            v = (visible_masks_t.reshape(n, -1)  # the network's 0/1 input, as float already
                 if visible_masks_t.shape[-2:] == (H, W) and count_dtype == torch.float32
                 else vis.reshape(n, -1).to(count_dtype))
            i = invisible.reshape(n, -1).to(count_dtype)
            inter = (v @ i.T).to(torch.int64)
            counts = torch.stack([v.sum(1), i.sum(1)]).to(torch.int64)  # (2, N): |S_V|, |S_I|
        if timer is not None:
            timer.mark("occlusion graph")

        scale = torch.tensor([W / S, H / S, W / S, H / S], device=dev)
        host = _to_host(dict(full=full, invisible=invisible, full_probs=full_probs,
                             painted=painted, boxes=boxes[:, 1:] * scale, inter=inter,
                             counts=counts))
        if timer is not None:
            timer.mark("copy to host")

        pairs = sorted(occlusion_pairs_from_counts(host["inter"], host["counts"][0],
                                                   host["counts"][1], LAYERING_THRESHOLD))
        scene = ScenePrediction(
            visible_masks=visible, full_masks=host["full"], invisible_masks=host["invisible"],
            full_probs=host["full_probs"], painted=host["painted"], boxes=host["boxes"],
            scores=scores, occlusion_pairs=pairs, layers=depth_layers(pairs, n))
        if timer is not None:
            timer.mark("pairs/layers (host)", host=True)
            timer.end()
        return scene


    def deocclude(self, image: np.ndarray, visible_masks: np.ndarray | Sequence[np.ndarray] |
                  None, remove: Sequence[int], **options: Any) -> Deocclusion:
        """Remove objects ``remove`` (indices into the N visible masks) and show what they hid:
        `predict`, then `segan.deocclude.deocclude` (options: ``ordered``, ``objects``,
        ``fill``: the background fill, e.g. `segan.deocclude.CompleterFill`).
        Returns a `segan.deocclude.Deocclusion` (edited image, new visible masks, layers)."""
        from segan.deocclude import deocclude

        return deocclude(image, self.predict(image, visible_masks), remove, **options)


def _to_host(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Tensors -> NumPy. On a GPU: asynchronous copies into pinned (page-locked) host memory,
    then one synchronisation; pinned blocks come from PyTorch's caching host allocator, so
    once a prediction's arrays are dropped their memory serves the next call. On the CPU the
    arrays share the tensors' memory (no copy)."""
    first = next(iter(tensors.values()))
    if first.device.type != "cuda":
        return {k: t.numpy() for k, t in tensors.items()}
    host = {k: torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for k, t in tensors.items()}
    for k, t in tensors.items():
        host[k].copy_(t, non_blocking=True)
    torch.cuda.current_stream(first.device).synchronize()
    return {k: t.numpy() for k, t in host.items()}


class StageTimer:
    """Where the time of `SeganPredictor.predict` goes, stage by stage, over repeated calls.

    On a GPU, stages are timed by CUDA events on the stream (no extra synchronisation: they are
    read after the call's own final copy), so a stage's time is the GPU timeline between its
    end and the previous stage's end, host time before its kernels included; stages after the
    final copy (host only) by the wall clock. On the CPU, all by the wall clock.

        timer = StageTimer()
        for _ in range(10):
            predictor.predict(image, masks, timer=timer)
        timer.medians_ms()  # {"prepare": ..., "network": ..., ...}
    """

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        # per mark: stage, CUDA event (None on the CPU), wall clock, host-only stage
        self._marks: list[tuple[str, Any, float, bool]] = []
        self._cuda = False

    def begin(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._marks = []
        self.mark("")

    def mark(self, stage: str, host: bool = False) -> None:
        """End of `stage` (host: a stage after the final copy, timed by the wall clock)."""
        ev = None
        if self._cuda and not host:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
        self._marks.append((stage, ev, time.perf_counter(), host))

    def end(self) -> None:
        """Turn the call's marks into times (after the call's final synchronisation)."""
        for (_, ev_a, wall_a, _), (stage, ev_b, wall_b, host) in zip(
                self._marks, self._marks[1:], strict=False):
            if ev_a is not None and ev_b is not None and not host:
                ev_b.synchronize()
                ms = ev_a.elapsed_time(ev_b)
            else:
                ms = 1000 * (wall_b - wall_a)
            self.times.setdefault(stage, []).append(ms)
        self._marks = []

    def medians_ms(self) -> dict[str, float]:
        """Median milliseconds of each stage, in the order of the stages."""
        return {k: statistics.median(v) for k, v in self.times.items()}


def _empty(H: int, W: int, scores: np.ndarray | None) -> ScenePrediction:
    z = np.zeros((0, H, W), bool)
    return ScenePrediction(
        visible_masks=z, full_masks=z, invisible_masks=z,
        full_probs=np.zeros((0, H, W), np.float32), painted=np.zeros((0, H, W, 4), np.uint8),
        boxes=np.zeros((0, 4), np.float32),
        scores=None if scores is None else np.zeros(0, np.float32),
        occlusion_pairs=[], layers=np.zeros(0, np.int64))


# ----------------------------------------------------------------------------- pictures

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
