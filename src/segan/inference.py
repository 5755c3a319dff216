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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from segan.checkpoint import load_segan
from segan.config import TrainConfig
from segan.device import autocast, autocast_dtype, resolve_device
from segan.graphed_forward import GraphedForward
from segan.layering import LAYERING_THRESHOLD, depth_layers, occlusion_pairs_from_counts
from segan.models import SeGAN
from segan.models.baselines import apply_box_deltas, encode_box_deltas
from segan.models.crops import (
    box_union,
    crop_own_boxes,
    expand_boxes_per_side,
    mask_extent_boxes,
    union_per_image,
)
from segan.occluder_gate import drop_detached_hidden, gate_full_probs
from segan.pictures import INVISIBLE_COLOUR, VISIBLE_COLOUR, display_scale, overlay, painted_scene
from segan.prediction import (
    MASK_THRESHOLD,
    ObjectPrediction,
    ScenePrediction,
    check_image,
    check_visible_masks,
    empty_prediction,
)
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

# the predictor's public vocabulary, from the modules that define it (one home each)
__all__ = ["INVISIBLE_COLOUR", "MASK_THRESHOLD", "NO_SEGMENTER_MESSAGE", "VISIBLE_COLOUR",
           "ObjectPrediction", "ScenePrediction", "SeganOutput", "SeganPredictor", "StageTimer",
           "VisibleSegmenterLike", "check_image", "check_visible_masks", "display_scale",
           "drop_detached_hidden", "gate_full_probs", "load_visible_segmenter", "overlay",
           "painted_scene", "run_segan"]

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

    if is_bundle(path):
        seg = load_bundle_segmenter(path, resolve_device(device))
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
class SeganOutput:
    """The network's output for one image's N objects, as tensors on its device.

    full_probs: (N, H, W) float in [0, 1], the predicted S_F in the original image frame (0
        outside each object's box). box_full: (N, 1, c, c) float in [0, 1], S_F over each box
        at the painter's crop size c. painted: (N, 3, c, c) float RGB in [0, 1], the painter's
        G(M) over each box. boxes: (N, 5) (_, x1, y1, x2, y2), the boxes of the S x S frame
        these cover: the boxes given, or for the objects of a second pass
        (``data.box_passes``) their grown ones.
    """

    full_probs: torch.Tensor
    box_full: torch.Tensor
    painted: torch.Tensor
    boxes: torch.Tensor


def mirror_boxes(boxes: torch.Tensor, frame_size: int) -> torch.Tensor:
    """(N, 5) (_, x1, y1, x2, y2) boxes in continuous coordinates of the S x S frame -> the same
    boxes in the horizontally mirrored frame (x -> S - x)."""
    out = boxes.clone()
    out[:, 1], out[:, 3] = frame_size - boxes[:, 3], frame_size - boxes[:, 1]
    return out


def flip_averaged(net: SeGAN, images: torch.Tensor, visible_masks: torch.Tensor,
                  boxes: torch.Tensor, frame_size: int, visible_union: torch.Tensor | None = None
                  ) -> dict[str, torch.Tensor]:
    """Test-time augmentation: the network on the inputs and on their mirror image, its box-frame
    outputs (o, S_F over the box, G(M)) mirrored back and averaged. The models train with
    ``data.hflip``, so both views are in their training distribution. visible_union: U when
    the objects given are not all of the image's (SeGAN.forward)."""
    union = {} if visible_union is None else {"visible_union": visible_union}
    out = net(images, visible_masks, boxes, **union)
    if visible_union is not None:
        union = {"visible_union": visible_union.flip(-1)}
    flipped = net(images.flip(-1), visible_masks.flip(-1), mirror_boxes(boxes, frame_size),
                  **union)
    averaged = {k: (out[k].float() + flipped[k].float().flip(-1)) / 2
                for k in ("mask_probs", "full_mask", "painted")}
    if "amodal_deltas" in out:  # the mirrored box's deltas: x1 <-> x2, negated
        d = flipped["amodal_deltas"].float()
        mirrored = torch.stack([-d[:, 2], d[:, 1], -d[:, 0], d[:, 3]], dim=1)
        averaged["amodal_deltas"] = (out["amodal_deltas"].float() + mirrored) / 2
    return averaged


def second_pass_boxes(mask_probs: torch.Tensor, boxes: torch.Tensor, expand: float,
                      frame_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``data.box_passes`` 2 and 3: which objects run again, and on which box. mask_probs
    (N, 1, m, m) o over boxes (N, 5) from the pass before -> (indices of the objects whose
    o >= 0.5 reaches a side of its box that is not at the frame's edge, (N, 5) boxes: those
    objects' o's extent grown by `expand` per side and clipped (never smaller than the box
    before), the others' boxes before). The models learn such crops from
    ``data.amodal_box_share``."""
    extent, edges = mask_extent_boxes(mask_probs.float(), boxes)
    xyxy = boxes[:, 1:]
    inner = torch.stack([xyxy[:, 0] > 0, xyxy[:, 1] > 0, xyxy[:, 2] < frame_size,
                         xyxy[:, 3] < frame_size], dim=1)
    again = (edges & inner).any(1)
    grown = expand_boxes_per_side(extent, expand, frame_size)
    grown = box_union(grown, xyxy)
    new = torch.where(again[:, None], torch.cat([boxes[:, :1], grown], dim=1), boxes)
    return again.nonzero()[:, 0], new


def head_pass_boxes(deltas: torch.Tensor, boxes: torch.Tensor, expand: float,
                    frame_size: int, min_reach: float = 0.05
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """`second_pass_boxes` for a network with `amodal_box_head`: its predicted amodal boxes
    ((N, 4) deltas from boxes (N, 5)) grown by `expand` per side and clipped, never smaller
    than the box before -> (indices of the objects for which that box reaches more than
    min_reach of the box's width or height beyond one of its sides, (N, 5) those objects' new
    boxes and the others' boxes before)."""
    xyxy = boxes[:, 1:]
    grown = expand_boxes_per_side(apply_box_deltas(xyxy, deltas.float(), frame_size), expand,
                                  frame_size)
    grown = box_union(grown, xyxy)
    again = (encode_box_deltas(xyxy, grown).abs() > min_reach).any(1)
    new = torch.where(again[:, None], torch.cat([boxes[:, :1], grown], dim=1), boxes)
    return again.nonzero()[:, 0], new


@torch.no_grad()
def run_segan(net: SeGAN, frame_size: int, images: torch.Tensor, visible_masks: torch.Tensor,
              boxes: torch.Tensor, orig_hw: tuple[int, int],
              amp_dtype: torch.dtype | None = None,
              visible_orig: torch.Tensor | None = None, flip_tta: bool = False,
              forward: Callable[..., dict[str, torch.Tensor]] | None = None,
              box_passes: int = 1, expand: float = 0.2) -> SeganOutput:
    """One forward of all N objects of one image (inputs from `segan.transforms.model_inputs`
    or `model_inputs_t`): the predicted S_F pasted back to the original (H, W) = orig_hw frame,
    and the painted crops in [0, 1] (`SeganOutput`). amp_dtype: autocast dtype (None: fp32).
    visible_orig: (N, H, W) bool S_V in the original frame; with the network's `occluder_gate`
    S_F is gated again there, with exact edges (`gate_full_probs`). flip_tta: average the
    forward with that of the mirrored image (`flip_averaged`; twice the network's cost).
    forward: runs `net(images, visible_masks, boxes)` in its place, with its own precision
    (the predictor's `GraphedForward` on a GPU); not with flip_tta.
    box_passes 2 (the config's ``data.box_passes``, with its ``expand_test`` as expand): the
    objects whose o reaches their box's edge run again on a box grown around it
    (`second_pass_boxes`); their S_F is both passes' mean inside the first box and the second
    pass's beyond it. box_passes 3: those of them whose second o reaches its box's edge run a
    third time, merged the same way against the second box. Box-frame rows come from each
    object's last pass, over its boxes (`SeganOutput.boxes`). A network with
    `amodal_box_head` picks the objects and boxes of the later passes from its predicted
    amodal boxes instead of o's extent (`head_pass_boxes`).
    The predictor's forward, and the evaluation's (`segan.eval.builtin_methods.SeGANMethod`)."""
    if forward is not None and not flip_tta:
        out = forward(images, visible_masks, boxes)
    else:
        with autocast(images.device, amp_dtype):
            out = (flip_averaged(net, images, visible_masks, boxes, frame_size) if flip_tta
                   else net(images, visible_masks, boxes))
    H, W = orig_hw
    full_probs = paste_to_image(out["mask_probs"].float(), boxes, frame_size, H, W)
    # later passes: the objects whose latest o reaches their latest box's edge run again
    # on a box grown around it; pass 3 considers only the objects that ran in pass 2
    active = torch.arange(len(boxes), device=boxes.device)
    takes_union = isinstance(net, torch.nn.Module) or getattr(net, "takes_union", False)
    # every object's U, beside which a subset runs again (the same for every pass)
    union = (union_per_image(visible_masks, boxes[:, 0].long(), images.shape[0])
             if box_passes > 1 and takes_union and len(boxes) else None)
    for _ in range(box_passes - 1):
        if not len(active):
            break
        if "amodal_deltas" in out:  # the network's own amodal box (model.amodal_box_head)
            again, grown = head_pass_boxes(out["amodal_deltas"][active], boxes[active], expand,
                                           frame_size)
        else:
            again, grown = second_pass_boxes(out["mask_probs"][active], boxes[active], expand,
                                             frame_size)
        if not len(again):
            break
        again = active[again]
        grown = boxes.index_copy(0, active, grown)
        out = {k: out[k].float().clone() for k in ("mask_probs", "full_mask", "painted",
                                                   "amodal_deltas") if k in out}
        if takes_union:  # the objects again, beside all objects' U
            with autocast(images.device, amp_dtype):
                rerun = (flip_averaged(net, images, visible_masks[again], grown[again],
                                       frame_size, union) if flip_tta
                         else net(images, visible_masks[again], grown[again],
                                  visible_union=union))
        else:  # a network that takes no U (an older ONNX export): every object again
            rerun = {k: v[again] for k, v in net(images, visible_masks, grown).items()}
        for k in out:
            out[k][again] = rerun[k].float()
        # S_F: inside the previous box, where both passes see, their mean (two crops of one
        # object: better than either alone, docs/results.md session 29); beyond it the
        # new pass's alone
        latest = paste_to_image(rerun["mask_probs"].float(), grown[again], frame_size, H, W)
        inside = paste_to_image(torch.ones_like(rerun["mask_probs"]).float(), boxes[again],
                                frame_size, H, W) > 0
        full_probs[again] = torch.where(inside, (full_probs[again] + latest) / 2, latest)
        boxes, active = grown, again
    box_full = out["full_mask"].float()
    gate = getattr(net, "occluder_gate", "none")
    if visible_orig is not None and gate != "none":
        full_probs = gate_full_probs(full_probs, visible_orig, one_way=gate == "one_way")
        # box_full as scored: the gated S_F cropped back over each box (figures, studies)
        scale = boxes.new_tensor([W / frame_size, H / frame_size] * 2)
        box_full = crop_own_boxes(full_probs[:, None], boxes[:, 1:] * scale, box_full.shape[-1])
    painted = ((out["painted"].float() + 1) / 2).clamp(0, 1)
    return SeganOutput(full_probs=full_probs, box_full=box_full, painted=painted, boxes=boxes)


class SeganPredictor:
    """SeGAN for inference: segments and paints the invisible parts of an image's objects.

    Build with `from_checkpoint`; `predict` takes NumPy and returns NumPy (`ScenePrediction`).
    On a GPU the network's forward is replayed from CUDA graphs (`graphed`, a
    `segan.graphed_forward.GraphedForward`: the same numbers, a fraction of the launch time);
    cuda_graphs=False, or setting `graphed` to None, runs it plainly.
    """

    def __init__(self, net: SeGAN, cfg: TrainConfig, device: torch.device,
                 identity: dict[str, Any] | None = None,
                 visible_segmenter: VisibleSegmenterLike | None = None,
                 cuda_graphs: bool = True):
        self.net, self.cfg, self.device = net.eval(), cfg, device
        self.identity = identity or {}
        self.visible_segmenter = visible_segmenter
        # bf16 autocast on CUDA, fp32 on CPU: as the evaluation
        self.amp_dtype = autocast_dtype(device)
        self.graphed = (GraphedForward(self.net, self.amp_dtype)
                        if cuda_graphs and device.type == "cuda" else None)

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
        d = self.cfg.data
        return run_segan(self.net, d.image_size, images, visible_masks, boxes, orig_hw,
                         self.amp_dtype, visible_orig, forward=self.graphed,
                         box_passes=d.box_passes, expand=d.expand_test)

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
        synchronisation, but for one per 32 steps of the occluder gate's connectivity rule,
        `segan.occluder_gate.attached_hidden`): resizing, S_V's boxes, the network, pasting
        S_F and the painted RGB into the image frame, the union with S_V, RGBA, and the pixel
        counts of section 5.2's occlusion rule. Only the N x N IoUs, the pairs and the layers
        are computed on the host.
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
            return empty_prediction(H, W, scores)
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
        boxes = out.boxes  # a second pass's objects: their grown boxes
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


