"""SeGAN's network as ONNX, and onnxruntime in its place (`segan export --onnx`; the `onnx`
extra: onnx, onnxscript, onnxruntime).

What is exported is the network's forward for the N objects of one image, exactly the call
`segan.inference.run_segan` makes (the predictor's pre- and post-processing stay in
NumPy/PyTorch around it):

    inputs   images (1, 3, S, S) float32, normalised as data.image_mean / image_std
             visible_masks (N, 1, S, S) float32 in [0, 1], S_V of each object
             boxes (N, 5) float32 (0, x1, y1, x2, y2), the expanded boxes in the S x S frame
             visible_union (1, 1, S, S) float32, U: the union of every object's S_V (all the
             image's, also when only some objects are given: a second box pass)
    outputs  mask_probs (N, 1, m, m), full_mask (N, 1, C, C), painted (N, 3, C, C) in [-1, 1]

with N dynamic (1..512). Exports before session 29 take no visible_union (U is then the
given objects'; `OnnxSegan.takes_union`). The run's config and the architecture's hparams are
stored in the model's metadata ("segan_config", "segan_hparams" as JSON), so
`OnnxSegan.load(path)` and `SeganPredictor.from_onnx(path)` need nothing else. Export uses
torch.onnx's dynamo exporter (torch.export; torchvision's roi_align becomes ONNX RoiAlign),
opset 18.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segan.models.crops import union_per_image

OUTPUTS = ("mask_probs", "full_mask", "painted")
MAX_OBJECTS = 512
ONNX_MISSING = ("ONNX needs the onnx extra: pip install 'segan[onnx]' (onnx, onnxscript, "
                "onnxruntime)")


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} not installed: {ONNX_MISSING}")


class _Forward(torch.nn.Module):
    """SeGAN's forward with tensor outputs (ONNX has no dicts)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                visible_union: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(images, visible_masks, boxes, visible_union=visible_union)
        return tuple(out[k] for k in OUTPUTS)


def example_inputs(image_size: int, n: int = 3) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported call's shapes for n objects (boxes of several sizes): images,
    visible_masks, boxes, visible_union."""
    S = image_size
    g = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, S, S, generator=g) * 2 - 1
    x1 = torch.linspace(0.05, 0.5, n) * S
    y1 = torch.linspace(0.4, 0.1, n) * S
    w = torch.linspace(0.2, 0.45, n) * S
    boxes = torch.stack([torch.zeros(n), x1, y1, x1 + w, y1 + 0.8 * w], dim=1)
    yy, xx = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    visible = torch.stack([((xx >= b[1] + 0.1 * (b[3] - b[1])) & (xx < b[3] - 0.2 * (b[3] - b[1]))
                            & (yy >= b[2]) & (yy < b[4] - 0.3 * (b[4] - b[2]))).float()
                           for b in boxes])[:, None]
    return images, visible, boxes, union_per_image(visible, boxes[:, 0].long(), 1)


def export_onnx(checkpoint: str | os.PathLike | None, out: str | os.PathLike,
                opset: int = 18) -> Path:
    """The SeGAN of `checkpoint` (run folder, model.safetensors, checkpoint .pt or bundle;
    None: the package's bundle) -> an ONNX file at `out`, config and hparams in its
    metadata. Returns the path."""
    _require("onnx", "onnxscript")
    import onnx

    from segan.bundle import load_bundle
    from segan.checkpoint import load_segan, rebuild_segan

    if checkpoint is None:
        net, cfg, identity = load_bundle(None, "cpu", rebuild_segan)
    else:
        net, cfg, identity = load_segan(checkpoint, "cpu")
    if getattr(net, "amodal_box_head", False):  # its box passes read a fourth output
        raise ValueError(f"{checkpoint or 'the package bundle'}: model.amodal_box_head is not "
                         f"exported to ONNX yet (its outputs are {', '.join(OUTPUTS)})")
    net = net.float().eval()
    K = torch.export.Dim("objects", min=1, max=MAX_OBJECTS)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = torch.onnx.export(
            _Forward(net).eval(), example_inputs(cfg.data.image_size), dynamo=True,
            input_names=["images", "visible_masks", "boxes", "visible_union"],
            output_names=list(OUTPUTS), dynamic_shapes=({}, {0: K}, {0: K}, {}),
            opset_version=opset, verbose=False)
    model = program.model_proto
    meta = {"segan_config": json.dumps(cfg.to_dict()),
            "segan_hparams": json.dumps(net.hparams),
            "segan_source": json.dumps({k: identity[k] for k in ("path", "step", "sha256")})}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(out))
    return out


class OnnxSegan:
    """An onnxruntime session standing in for SeGAN in `run_segan` (and so in
    `SeganPredictor`): called with torch tensors, it returns a dict of CPU torch tensors."""

    def __init__(self, session: Any, config: dict[str, Any], path: str,
                 source: dict[str, Any] | None = None):
        self.session, self.config, self.path = session, config, path
        self.source = source or {}  # the weights it was exported from: path, step, sha256
        # SeGAN's image-frame gate (`run_segan`) follows the exported model's config
        self.occluder_gate = config.get("model", {}).get("occluder_gate", "none")
        # U as an input (exports since session 29; unless the network never reads it): a
        # second box pass then runs only the objects that need it (`run_segan`)
        self.takes_union = "visible_union" in {i.name for i in session.get_inputs()}

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = None) -> OnnxSegan:
        _require("onnxruntime")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ValueError(f"{path}: cannot load the ONNX model ({first})") from None
        meta = session.get_modelmeta().custom_metadata_map
        if "segan_config" not in meta:
            raise ValueError(f"{path}: not a SeGAN ONNX export (no segan_config metadata; "
                             "write one with `segan export --onnx`)")
        return cls(session, json.loads(meta["segan_config"]), str(path),
                   json.loads(meta.get("segan_source", "{}")))

    def eval(self) -> OnnxSegan:
        return self

    def __call__(self, images: torch.Tensor, visible_masks: torch.Tensor, boxes: torch.Tensor,
                 visible_union: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """SeGAN's forward (`segan.models.segan.SeGAN.forward`'s arguments; visible_union
        None: the union of the objects given)."""
        feed = {"images": images, "visible_masks": visible_masks, "boxes": boxes}
        if self.takes_union:
            feed["visible_union"] = (visible_union if visible_union is not None else
                                     union_per_image(visible_masks, boxes[:, 0].long(),
                                                     images.shape[0]))
        got = self.session.run(list(OUTPUTS), {k: np.ascontiguousarray(
            v.detach().float().cpu().numpy()) for k, v in feed.items()})
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, got, strict=True)}
