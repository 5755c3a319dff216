"""A test-time ensemble of SeGAN networks: o is the mean of their segmentors' (gated) o, and
the first network paints from it. Runs of one recipe make partly independent errors, so their
mean o is a better S_F than any one (docs/results.md, session 34); one painter suffices, as
G(M) only follows O. It costs one segmentor per member, so it is an evaluation method
(`segan_ensemble`), not the bundled model (issue 13's latency and size)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from .crops import union_per_image
from .segan import SeGAN

# what must agree for the members' o to be averaged and painted by the first
_SAME = ("mask_size", "crop_size", "occluder_gate")


class SegmentorEnsemble(nn.Module):
    """SeGAN's test-time interface (`forward(images, visible_masks, boxes, visible_union)` ->
    mask_probs, full_mask, painted, ...) over several trained SeGANs: mask_probs is the mean
    of every member's `SeGAN.segment` o; full_mask, painted and the crops are the first
    member's `SeGAN.paint` on it. amodal_deltas: the members' mean, where all have the head."""

    def __init__(self, nets: Sequence[SeGAN]):
        super().__init__()
        if not nets:
            raise ValueError("an ensemble needs at least one network")
        first = nets[0].hparams
        for i, net in enumerate(nets[1:], 1):
            for k in _SAME:
                if net.hparams.get(k) != first.get(k):
                    raise ValueError(f"ensemble member {i} has {k}={net.hparams.get(k)!r}, "
                                     f"member 0 {k}={first.get(k)!r}: their o cannot be "
                                     "averaged")
        self.members = nn.ModuleList(nets)
        self.occluder_gate = nets[0].occluder_gate
        self.hparams = dict(first, ensemble_members=len(nets))

    def segment(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                visible_union: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """mask_probs: the mean of the members' `SeGAN.segment` o (float32); amodal_deltas:
        their mean, where every member has the head. Also the distillation target of a
        training run (``loss.distill_from``)."""
        if visible_union is None:  # every member's U (the objects given), made once
            visible_union = union_per_image(visible_masks, boxes[:, 0].long(), images.shape[0])
        outs = [net.segment(images, visible_masks, boxes, visible_union)
                for net in self.members]
        out = {"mask_probs": torch.stack([o["mask_probs"].float() for o in outs]).mean(0)}
        if all("amodal_deltas" in o for o in outs):
            out["amodal_deltas"] = torch.stack([o["amodal_deltas"].float() for o in outs]).mean(0)
        return out

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                visible_union: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = self.segment(images, visible_masks, boxes, visible_union)
        out.update(self.members[0].paint(images, visible_masks, boxes, out["mask_probs"]))
        return out
