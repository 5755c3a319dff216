"""SeGAN composed (paper Fig. 2): segmentor -> o (58x58) -> upsample -> O -> Eq. 1 -> M -> G.

Conventions shared by everything here:
- boxes are (K, 5) float: (batch_index, x1, y1, x2, y2) in pixels of the image, continuous
  coordinates where pixel (i, j) covers [j, j+1) x [i, i+1); (0, 0, W, H) is the whole image.
- each object is seen through its expanded box (section 5.1: S_V's box grown 10-30% per side
  in training, 20% at test, clipped to the image): the segmentor pools over it, the 58x58
  ground truth and the painter's 256x256 crops are resampled from it, so o, O, the crops and
  M all cover the same region.
- masks are float in [0, 1] (soft after bilinear resizing), shape (K, 1, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, Literal

import torch
import torch.nn as nn

from segan.config import ModelConfig

from .crop_segmentor import CropSegmentor
from .crops import crop_boxes, crop_object_masks, union_per_image
from .discriminator import PatchDiscriminator
from .painter import UNetGenerator
from .segmentor import Backbone, MaskFusion, Segmentor

Eq1Mode = Literal["paper", "clamp", "hard"]
SegmentorKind = Literal["roi_fc", "crop_unet"]

# SeGAN.hparams that came after the first checkpoints (mask_refine; backbone, segmentor and
# segmentor_input_size, segmentor_context, occluder_gate, amodal_box_head), each with its
# feature off by default:
# an older hparams dict lacks them (`SeGAN.from_hparams`)
LATER_HPARAMS = ("mask_refine", "backbone", "segmentor", "segmentor_input_size",
                 "segmentor_context", "occluder_gate", "amodal_box_head")


# ModelConfig's fields that the training loop reads, not SeGAN (the warm start's weights,
# segan.train.loop.warm_start): every other field is a constructor argument
TRAINING_LOOP_FIELDS = ("init_from",)


def constructor_fields() -> list[str]:
    """ModelConfig's fields that `SeGAN.__init__` takes (all but `TRAINING_LOOP_FIELDS`)."""
    return [f.name for f in fields(ModelConfig) if f.name not in TRAINING_LOOP_FIELDS]


def hparam_names() -> set[str]:
    """The names of `SeGAN.hparams`: ModelConfig's constructor fields, less the
    initialisation (backbone_weights), plus the colours of Eq. 1 (color_mean, color_std)."""
    return (set(constructor_fields()) - {"backbone_weights"}) | {"color_mean", "color_std"}


def compose_generator_input(
    image: torch.Tensor,
    full_mask_pred: torch.Tensor,
    visible_mask: torch.Tensor,
    red: torch.Tensor | None = None,
    blue: torch.Tensor | None = None,
    mode: Eq1Mode = "paper",
    threshold: float = 0.5,
) -> torch.Tensor:
    """Eq. 1: M(I, O, V) = I ⊙ V + R ⊙ (O − V) + B ⊙ (J − O − V).

    I is the image crop (N,3,S,S); O the upsampled predicted full mask and V the visible mask S_V,
    (N,1,S,S) (repeated over the 3 channels by broadcasting); J is all ones; R, B constant images
    whose first, resp. third, channel is 1. `red`/`blue` (3,) override those colours, e.g. minus
    the image mean as in the reference code. Intended reading (paper's text): visible pixels
    show the image, the invisible region O − V is red, the region outside the mask is blue.

    mode:
      "paper": the formula as printed, differentiable in O. With soft or imperfect masks the
          terms leave [0, 1]: O − V < 0 where O < V, and J − O − V = −1 on visible pixels where
          O = 1, so there M = I − B (blue lowered by 1), not I. Where V = 0 it is exact.
      "clamp": each term clamped to [0, 1], max(O − V, 0) and max(1 − O − V, 0): the set reading
          O \\ V, J \\ (O ∪ V) for binary masks with V ⊆ O (visible = I exactly), still
          differentiable in O where a term lies inside (0, 1).
      "hard": the reference code's version: O and V thresholded, visible -> I, O \\ V -> R,
          the rest -> B. No gradient reaches O.
    """
    dtype = image.dtype
    if red is None:
        red = torch.tensor([1.0, 0.0, 0.0], device=image.device)
    if blue is None:
        blue = torch.tensor([0.0, 0.0, 1.0], device=image.device)
    red, blue = red.to(dtype).view(1, 3, 1, 1), blue.to(dtype).view(1, 3, 1, 1)
    O, V = full_mask_pred.to(dtype), visible_mask.to(dtype)

    if mode == "hard":
        V = (V >= threshold).to(dtype)
        O = (O >= threshold).to(dtype)
        invisible, outside = O * (1 - V), (1 - O) * (1 - V)
    elif mode in ("paper", "clamp"):
        invisible, outside = O - V, 1 - O - V  # (O − V) and (J − O − V)
        if mode == "clamp":
            invisible, outside = invisible.clamp(0, 1), outside.clamp(0, 1)
    else:
        raise ValueError(f"mode must be 'paper', 'clamp' or 'hard', got {mode!r}")
    return image * V + red * invisible + blue * outside


def gate_full_mask(probs: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                   visible_union: torch.Tensor | None, num_images: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """SeGAN's `occluder_gate` over the boxes: (o', C) with o' = V + (1 - V) C o, V = S_V and
    C = clamp(U - S_V, 0, 1) resampled to o's grid. probs: (K, 1, m, m) o; visible_masks
    (K, 1, H, W); visible_union (B, 1, H, W) U (None: the union of the objects given)."""
    m = probs.shape[-1]
    if visible_union is None:
        visible_union = union_per_image(visible_masks, boxes[:, 0].long(), num_images)
    V = crop_object_masks(visible_masks.to(probs.dtype), boxes, m)
    C = (crop_boxes(visible_union.to(probs.dtype), boxes, m) - V).clamp(0, 1)
    return V + (1 - V) * C * probs, C


class SeGAN(nn.Module):
    """Segmentor, generator G and discriminator D of SeGAN, and the glue between them (Fig. 2).

    forward() runs segmentor -> Eq. 1 -> G; D is held here (so one state dict has all weights)
    but called by the training task: `model.discriminator(M, image)`.

    Build it from a config, `SeGAN.from_config(ModelConfig(...))`, or from saved hparams,
    `SeGAN.from_hparams(hparams)`. The constructor's arguments are keyword-only and have no
    defaults: `segan.config.ModelConfig` is their one definition (its fields are these
    arguments less color_mean and color_std, which follow the data's image transform).

    Args (architecture; `hparams` keeps them to rebuild the model from a checkpoint):
        mask_size, roi_size, roi_op, mask_fusion, roi_mask_channel: see `Segmentor`.
        crop_size: side of O, M and the painter's crops (the paper's 256).
        num_downs, ngf, dropout: see `UNetGenerator` (the paper's 8, 64, 0.5 = unet_256).
        ndf, n_disc_layers: see `PatchDiscriminator` (the paper's 64, 3 = pix2pix "basic").
        eq1_mode: see `compose_generator_input` ("paper" = the printed formula).
        color_mean, color_std: R and B become (R - mean) / std, to match images normalised that
            way (the reference code subtracts its image mean from both); None keeps the paper's
            pure red and blue.
        backbone_weights: initialisation only (not in hparams): see `Segmentor`.
        mask_refine: S_V at mask resolution in the mask head (not in the paper): `Segmentor`.
        backbone: the segmentor's trunk, "resnet18" (paper) or "efficientnet_lite0/1/2" (not in
            the paper; expects images in [-1, 1]): `Segmentor`.
        segmentor: "roi_fc" (the paper's: whole image, ROI pooling, fc; `Segmentor`) or
            "crop_unet" (not in the paper: each object's box through an EfficientNet-Lite U-Net,
            `CropSegmentor`, with an EfficientNet-Lite `backbone`; the roi_* and mask_fusion
            arguments do not apply).
        segmentor_input_size: crop_unet's per-object input side.
        segmentor_context: crop_unet also sees where the image's other objects are visible
            (`CropSegmentor`'s `context`).
        occluder_gate: "none" (the paper), or not in the paper: "others" | "one_way". A hidden
            part can only lie under another object's
            visible pixels: o = S_V + (1 - S_V) C sigmoid(logits) over the box, C = U - S_V
            the other objects' visible pixels (U the union of the image's S_V), so S_V is
            always in S_F and nothing spills onto free background (`gate_full_mask`). Training
            then judges the logits only where C holds (Eq. 3 on C, `segmentation_loss`'s
            `candidate`); inference gates again with the exact image-resolution masks
            (`segan.inference.run_segan`; "one_way" there also keeps only the surer of two
            objects' claims on each other, unless both are sure, `gate_full_probs`). It
            assumes every occluder is one of the objects given (true of the datasets; one mask
            alone gets no hidden part).
        amodal_box_head: crop_unet also predicts the amodal box (`CropSegmentor`'s
            `box_head`; not in the paper): forward's ``amodal_deltas``.
    """

    def __init__(
        self,
        *,
        mask_size: int,
        roi_size: int,
        roi_op: Literal["align", "pool"],
        mask_fusion: MaskFusion,
        roi_mask_channel: Literal["union", "zero"],
        crop_size: int,
        num_downs: int,
        ngf: int,
        dropout: float,
        ndf: int,
        n_disc_layers: int,
        eq1_mode: Eq1Mode,
        color_mean: Sequence[float] | None,
        color_std: Sequence[float] | None,
        backbone_weights: str,
        mask_refine: bool,
        segmentor: SegmentorKind,
        segmentor_input_size: int,
        segmentor_context: bool,
        backbone: Backbone,
        occluder_gate: Literal["none", "others", "one_way"],
        amodal_box_head: bool,
    ):
        super().__init__()
        self.hparams = dict(
            mask_size=mask_size, roi_size=roi_size, roi_op=roi_op, mask_fusion=mask_fusion,
            roi_mask_channel=roi_mask_channel, crop_size=crop_size, num_downs=num_downs, ngf=ngf,
            dropout=dropout, ndf=ndf, n_disc_layers=n_disc_layers, eq1_mode=eq1_mode,
            color_mean=color_mean, color_std=color_std, mask_refine=mask_refine,
            segmentor=segmentor, segmentor_input_size=segmentor_input_size,
            segmentor_context=segmentor_context,
            backbone=backbone, occluder_gate=occluder_gate, amodal_box_head=amodal_box_head,
        )
        if occluder_gate not in ("none", "others", "one_way"):
            raise ValueError(f"occluder_gate must be 'none', 'others' or 'one_way', got "
                             f"{occluder_gate!r}")
        self.occluder_gate = occluder_gate
        if eq1_mode not in ("paper", "clamp", "hard"):
            raise ValueError(f"eq1_mode must be 'paper', 'clamp' or 'hard', got {eq1_mode!r}")
        self.crop_size, self.eq1_mode = crop_size, eq1_mode

        if amodal_box_head and segmentor != "crop_unet":
            raise ValueError(f"amodal_box_head needs the crop_unet segmentor, not {segmentor!r}")
        self.amodal_box_head = amodal_box_head
        if segmentor == "roi_fc":
            self.segmentor = Segmentor(mask_size, roi_size, roi_op, mask_fusion,
                                       roi_mask_channel, backbone_weights, mask_refine, backbone)
        elif segmentor == "crop_unet":
            self.segmentor = CropSegmentor(mask_size, segmentor_input_size, backbone,
                                           backbone_weights, context=segmentor_context,
                                           box_head=amodal_box_head)
        else:
            raise ValueError(f"segmentor must be 'roi_fc' or 'crop_unet', got {segmentor!r}")
        # o (58x58) -> O (256x256): bilinear, not trained (section 5.1)
        self.upsample = nn.Upsample(size=(crop_size, crop_size), mode="bilinear",
                                    align_corners=False)
        self.generator = UNetGenerator(3, 3, num_downs, ngf, dropout)
        self.discriminator = PatchDiscriminator(3, 3, ndf, n_disc_layers)

        mean = torch.tensor(color_mean if color_mean is not None else (0.0, 0.0, 0.0))
        std = torch.tensor(color_std if color_std is not None else (1.0, 1.0, 1.0))
        # derived from hparams, so not saved in the state dict
        self.register_buffer("red", (torch.tensor([1.0, 0.0, 0.0]) - mean) / std, persistent=False)
        self.register_buffer("blue", (torch.tensor([0.0, 0.0, 1.0]) - mean) / std,
                             persistent=False)

    @classmethod
    def from_config(cls, model: ModelConfig, color_mean: Sequence[float] | None = None,
                    color_std: Sequence[float] | None = None,
                    backbone_weights: str | None = None) -> SeGAN:
        """SeGAN as `model` describes it: every field of ModelConfig is a constructor argument
        (but `TRAINING_LOOP_FIELDS`).

        color_mean, color_std: the image normalisation that R and B of Eq. 1 follow (a
        TrainConfig's data.image_mean and data.image_std; None: the paper's pure red and
        blue). backbone_weights: the segmentor's initialisation, instead of
        model.backbone_weights (e.g. the path the training task resolved it to).
        """
        kwargs = {name: getattr(model, name) for name in constructor_fields()}
        if backbone_weights is not None:
            kwargs["backbone_weights"] = backbone_weights
        return cls(**kwargs, color_mean=None if color_mean is None else tuple(color_mean),
                   color_std=None if color_std is None else tuple(color_std))

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> SeGAN:
        """SeGAN rebuilt from the `hparams` a checkpoint, export or bundle saved, with random
        weights (the caller loads the saved ones; no backbone initialisation).

        A dict saved before SeGAN gained one of `LATER_HPARAMS` lacks it: it then takes
        ModelConfig's default, the value the constructor's own default had when that dict was
        saved (each came with its feature off). Every other argument has been saved since the
        first checkpoint; a dict without one, or with a key SeGAN does not take, is refused.
        """
        names = hparam_names()
        unknown = sorted(set(hparams) - names)
        missing = sorted(names - set(hparams) - set(LATER_HPARAMS))
        if unknown or missing:
            raise ValueError("not SeGAN's hparams: "
                             + "; ".join(f"{what} {', '.join(keys)}" for what, keys in
                                         (("unknown", unknown), ("missing", missing)) if keys))
        defaults = ModelConfig()
        kwargs = {k: getattr(defaults, k) for k in LATER_HPARAMS}
        return cls(**{**kwargs, **hparams}, backbone_weights="none")

    def forward(
        self,
        images: torch.Tensor,
        visible_masks: torch.Tensor,
        boxes: torch.Tensor,
        image_crops: torch.Tensor | None = None,
        visible_crops: torch.Tensor | None = None,
        detach_full_mask: bool = False,
        visible_union: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Segment and paint K objects of B images.

        Args:
            images: (B, 3, H, W), normalised (e.g. 500x500, mean-subtracted).
            visible_masks: (K, 1, H, W) S_V of each object in its image's frame, in [0, 1].
            boxes: (K, 5) expanded boxes (module docstring).
            image_crops, visible_crops: optional (K,3,S,S) / (K,1,S,S) painter crops if the data
                pipeline made them; by default cropped here from images / visible_masks.
            detach_full_mask: stop the painter's gradient from reaching the segmentor (training
                the two parts without the end-to-end coupling of Eq. 6).
            visible_union: (B, 1, H, W) union of every S_V of each image, for crop_unet's
                `segmentor_context` (training passes the cache's; by default the union of the
                objects given here, which at test time are all of the image's).
        Returns a dict:
            mask_logits (K,1,m,m): before the sigmoid, for L_segm (Eq. 3).
            mask_probs (K,1,m,m): o (gated with `occluder_gate`).
            candidate (K,1,m,m), with `occluder_gate` only: C over the box, where S_I may lie.
            amodal_deltas (K,4), with `amodal_box_head` only: the predicted amodal box as each
                side's offset from the box (x1, y1, x2, y2) in units of its width or height
                (`segan.models.baselines.encode_box_deltas`; outward: negative x1, y1).
            full_mask (K,1,S,S): O, o upsampled.
            image_crop (K,3,S,S), visible_crop (K,1,S,S): I and V of Eq. 1.
            generator_input (K,3,S,S): M, also D's condition.
            painted (K,3,S,S): G(M) in [-1, 1].
        """
        out = self.segment(images, visible_masks, boxes, visible_union)
        out.update(self.paint(images, visible_masks, boxes, out["mask_probs"], image_crops,
                              visible_crops, detach_full_mask))
        return out

    def segment(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                visible_union: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The segmentor's half of `forward`: mask_logits, mask_probs (o, gated), and candidate
        / amodal_deltas where the network has them. visible_union: as `forward`'s."""
        gated = self.occluder_gate != "none"
        if visible_union is None and (gated or getattr(self.segmentor, "context", False)):
            # U once for the context input and the gate (at test time: the objects given)
            visible_union = union_per_image(visible_masks, boxes[:, 0].long(), images.shape[0])
        amodal_deltas = None
        if isinstance(self.segmentor, CropSegmentor):
            mask_logits = self.segmentor(images, visible_masks, boxes, visible_union)
            if self.amodal_box_head:
                mask_logits, amodal_deltas = mask_logits
        else:
            mask_logits = self.segmentor(images, visible_masks, boxes)
        out = dict(mask_logits=mask_logits, mask_probs=torch.sigmoid(mask_logits))
        if gated:
            out["mask_probs"], out["candidate"] = gate_full_mask(
                out["mask_probs"], visible_masks, boxes, visible_union, images.shape[0])
        if amodal_deltas is not None:
            out["amodal_deltas"] = amodal_deltas
        return out

    def paint(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
              mask_probs: torch.Tensor, image_crops: torch.Tensor | None = None,
              visible_crops: torch.Tensor | None = None, detach_full_mask: bool = False
              ) -> dict[str, torch.Tensor]:
        """The painter's half of `forward` on o = mask_probs (K,1,m,m): full_mask (O),
        image_crop, visible_crop, generator_input (M, Eq. 1) and painted (G(M))."""
        S = self.crop_size
        full_mask = self.upsample(mask_probs)
        if image_crops is None:
            image_crops = crop_boxes(images, boxes, S)
        if visible_crops is None:
            visible_crops = crop_object_masks(visible_masks, boxes, S)
        O = full_mask.detach() if detach_full_mask else full_mask
        M = compose_generator_input(image_crops, O, visible_crops, self.red, self.blue,
                                    self.eq1_mode)
        return dict(full_mask=full_mask, image_crop=image_crops, visible_crop=visible_crops,
                    generator_input=M, painted=self.generator(M))
