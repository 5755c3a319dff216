"""The methods `segan evaluate --method` knows (segan.eval.methods registers them by name)."""

from __future__ import annotations

from .baselines import Oracle, VisibleAsFull
from .methods import EvalMethod, MethodContext, register_method


@register_method("segan", task="segan")
def build_segan(ctx: MethodContext) -> EvalMethod:
    """SeGAN (segmentor -> Eq. 1 -> painter) with the given S_V."""
    from .evaluate import SeGANMethod

    net, cfg, identity = ctx.load()
    return EvalMethod("segan", SeGANMethod(net, cfg, ctx.amp_dtype), cfg, paints=True,
                      checkpoint=identity, hparams=net.hparams)


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
