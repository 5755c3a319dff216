"""The methods `segan evaluate --method` knows (segan.eval.methods registers them by name)."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from segan.config import TrainConfig
from segan.inference import run_segan
from segan.models import SeGAN, SegmentorEnsemble
from segan.models.crops import recrop

from .baselines import ImageInputs, MethodOutput, Oracle, VisibleAsFull
from .inputs import add_split_arguments, load_split
from .methods import EvalMethod, MethodContext, ensemble_members, load_run, register_method


class SeGANMethod:
    """SeGAN with the given (ground-truth) S_V: segmentor -> Eq. 1 -> painter, one forward per
    image, no gradients, bf16 autocast on CUDA: the predictor's forward
    (`segan.inference.run_segan`) on the inputs `segan.eval.inputs.prepare_image` made."""

    name = "segan"
    paints = True

    def __init__(self, net: SeGAN | SegmentorEnsemble, cfg: TrainConfig,
                 amp_dtype: torch.dtype | None = None,
                 flip_tta: bool = False):
        self.net, self.cfg, self.amp_dtype, self.flip_tta = net, cfg, amp_dtype, flip_tta

    def __call__(self, inputs: ImageInputs) -> MethodOutput:
        masks, boxes, visible = (inputs.visible_masks, inputs.boxes,
                                 torch.from_numpy(inputs.input_visible))
        n = inputs.num_objects
        if inputs.context_visible is not None:  # run with them, as objects; score only the N
            masks = torch.cat([masks, inputs.context_masks])
            boxes = torch.cat([boxes, inputs.context_boxes])
            visible = torch.cat([visible, torch.from_numpy(inputs.context_visible)])
        d = self.cfg.data
        out = run_segan(self.net, d.image_size, inputs.images, masks, boxes, inputs.orig_hw,
                        self.amp_dtype, visible, self.flip_tta, box_passes=d.box_passes,
                        expand=d.expand_test)
        box_full, painted = out.box_full[:n], out.painted[:n]
        again = (out.boxes[:n] != inputs.boxes).any(1)
        if bool(again.any()):  # a second pass's crops, over the boxes scored
            src, dst = out.boxes[:n][again, 1:], inputs.boxes[again, 1:]
            box_full, painted = box_full.clone(), painted.clone()
            box_full[again] = recrop(box_full[again], src, dst)
            painted[again] = recrop(painted[again], src, dst)
        return MethodOutput(full_probs=out.full_probs[:n], box_full=box_full, painted=painted)


def segan_split_parser(description: str) -> argparse.ArgumentParser:
    """The options of an analysis script (scripts/) that runs a SeGAN model on one split as
    `segan evaluate` does: --checkpoint and `add_split_arguments`'s."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", required=True, help="a SeGAN run, checkpoint or bundle")
    add_split_arguments(parser)
    return parser


def segan_on_split(args: argparse.Namespace) -> tuple[SeGANMethod, TrainConfig, Any, list[int]]:
    """(the evaluation's SeGAN method on the CPU, its config, the split's dataset, its image
    ids) for `segan_split_parser`'s arguments."""
    net, cfg, _ = load_run(args.checkpoint, "cpu")
    ds, _, _, ids = load_split(args.data, args.split, args.data_format, sample=args.sample)
    return SeGANMethod(net, cfg), cfg, ds, ids


@register_method("segan", task="segan")
def build_segan(ctx: MethodContext) -> EvalMethod:
    """SeGAN (segmentor -> Eq. 1 -> painter) with the given S_V."""
    net, cfg, identity = ctx.load()
    return EvalMethod("segan", SeGANMethod(net, cfg, ctx.amp_dtype), cfg, paints=True,
                      checkpoint=identity, hparams=net.hparams)


@register_method("segan_flip", task="segan", in_tables=False)
def build_segan_flip(ctx: MethodContext) -> EvalMethod:
    """SeGAN with test-time flips: the forward averaged with the mirrored image's
    (`segan.inference.flip_averaged`)."""
    net, cfg, identity = ctx.load()
    return EvalMethod("segan_flip", SeGANMethod(net, cfg, ctx.amp_dtype, flip_tta=True), cfg,
                      paints=True, checkpoint=identity, hparams=net.hparams)


@register_method("segan_ensemble", task="segan", in_tables=False)
def build_segan_ensemble(ctx: MethodContext) -> EvalMethod:
    """SeGAN with o averaged over several trained networks, the first one painting
    (`segan.models.SegmentorEnsemble`): ``--method segan_ensemble@NAME=RUN_A+RUN_B[+...]``.
    The first member's config makes the inputs and the box passes."""
    members = ensemble_members(ctx.checkpoint) if ctx.checkpoint is not None else []
    if len(members) < 2:
        raise ValueError(f"method {ctx.name!r} needs two or more SeGAN checkpoints joined by "
                         f"'+' (--method segan_ensemble@{ctx.name}=RUN_A+RUN_B), got "
                         f"{str(ctx.checkpoint)!r}")
    loaded = []
    for path in members:
        if not path.exists():
            raise FileNotFoundError(f"method {ctx.name!r}: ensemble member {path} does not exist")
        net, cfg, identity = ctx.load_checkpoint(path)  # a SeGAN: the method's task
        assert isinstance(net, SeGAN)
        loaded.append((net, cfg, identity))
    ensemble = SegmentorEnsemble([net for net, _, _ in loaded]).eval()
    cfg = loaded[0][1]
    identity = dict(loaded[0][2], members=[i for _, _, i in loaded])
    return EvalMethod("segan_ensemble", SeGANMethod(ensemble, cfg, ctx.amp_dtype), cfg,
                      paints=True, checkpoint=identity, hparams=ensemble.hparams,
                      notes=[f"o: the mean of {len(loaded)} networks' o; the first one paints"])


@register_method("visible_as_full")
def build_visible_as_full(ctx: MethodContext) -> EvalMethod:
    """S_F := S_V; inputs as the reference config makes them (it has no weights)."""
    cfg = ctx.reference_cfg
    return EvalMethod("visible_as_full", VisibleAsFull(cfg.model.crop_size), cfg, paints=False)


@register_method("oracle", in_tables=False)
def build_oracle(ctx: MethodContext) -> EvalMethod:
    """The ground truth through the prediction path: each metric's ceiling (`Oracle`)."""
    return EvalMethod("oracle", Oracle(), ctx.reference_cfg, paints=True,
                      notes=["ceiling: ground-truth S_F and appearance as the prediction, "
                             "scored by the same path and rules"])
