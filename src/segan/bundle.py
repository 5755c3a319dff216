"""Released weights: a trained SeGAN as fp16 safetensors files + a JSON manifest (a "bundle").

A bundle is a folder with ``NAME.json`` (the manifest) beside its weight files:

    NAME.json                   {"format": "segan-bundle", "version": 1, "name": NAME,
                                 "dtype": "float16", "files": [{"path", "bytes", "sha256"}],
                                 "hparams": SeGAN.hparams, "config": the run's TrainConfig dict,
                                 "step", "backbone_init", "source": {"path", "sha256"},
                                 optional "visible_segmenter": {"files", "hparams", "config",
                                 "step", "source"}}
    NAME-00.safetensors, ...    the inference tensors (segmentor + generator; floats in fp16,
                                integer buffers as they are), split so that no file exceeds
                                `max_file_bytes` (16 MiB by default)
    NAME-visible-00.safetensors the visible-instance segmenter's tensors (optional: a Mask R-CNN
                                run of configs/visible_compact.yaml), so that an image without
                                masks works too; the size limits count both networks

`export_bundle(RUN, DIR)` writes one from a run (`segan export-bundle RUN --out DIR`);
`load_bundle(DIR)` checks each file it reads (size and sha256) against the manifest first (a
missing or corrupted file raises `BundleError`, one line naming the file and what to do) and
rebuilds the network in fp32 (weights rounded to fp16 once, computation as any checkpoint's);
`load_bundle_segmenter(DIR)` does the same for the visible segmenter (None when it has none).
Both read with `read_bundle_weights` (so does a warm start from a bundle, `model.init_from`).

The package's own bundle is package data: ``segan/weights/segan_compact.json`` and its files
(`PACKAGE_BUNDLE`), used by `SeganPredictor.pretrained()` and by `segan predict` without
``--checkpoint``. A source checkout has none until one is trained and exported there (issue 13,
docs/training.md); then `NoBundleError` says so in one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from segan.data.atomic import file_sha256, write_bytes_atomic
from segan.weights_io import load_safetensors

if TYPE_CHECKING:
    from segan.checkpoint import Rebuild, SavedWeights

BUNDLE_FORMAT = "segan-bundle"
BUNDLE_VERSION = 1
PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
PACKAGE_BUNDLE_NAME = "segan_compact"
MiB = 1 << 20
MAX_FILE_BYTES = 16 * MiB  # issue 13: at most 16 MiB per file and 40 MiB in all
MAX_TOTAL_BYTES = 40 * MiB


class BundleError(ValueError):
    """A bundle that cannot be used: the message (one line) names the file and the fault."""


class NoBundleError(BundleError, FileNotFoundError):
    """No bundle where one was looked for (e.g. the package has no bundled model)."""


def package_bundle() -> Path:
    """The manifest of the package's bundled model (it may not exist: `load_bundle` says so)."""
    return PACKAGE_WEIGHTS / f"{PACKAGE_BUNDLE_NAME}.json"


def require_package_bundle() -> Path:
    """The package bundle's manifest; `NoBundleError` (one line) when none is installed."""
    mpath = package_bundle()
    if not mpath.is_file():
        raise NoBundleError(
            f"no bundled model is installed ({mpath} not found): pass --checkpoint RUN (a run "
            "folder, model.safetensors or checkpoint .pt of `segan train`, or a bundle folder "
            "of `segan export-bundle`)")
    return mpath


def is_bundle(path: str | os.PathLike) -> bool:
    """Whether `path` is a bundle manifest, or a folder holding exactly one manifest."""
    try:
        find_manifest(path)
    except BundleError:
        return False
    return True


def find_manifest(path: str | os.PathLike) -> Path:
    """A manifest .json, or a folder with one ``*.json`` manifest -> the manifest's path."""
    p = Path(path)
    if p.is_dir():
        found = [q for q in sorted(p.glob("*.json")) if _is_manifest(q)]
        if len(found) != 1:
            raise NoBundleError(f"{p}: {'no' if not found else 'more than one'} "
                                f"{BUNDLE_FORMAT} manifest (*.json) in this folder")
        return found[0]
    if p.suffix == ".json" and p.is_file() and _is_manifest(p):
        return p
    raise NoBundleError(f"{p}: not a {BUNDLE_FORMAT} manifest or a folder holding one")


def _is_manifest(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and head.get("format") == BUNDLE_FORMAT


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest (checked for format, version and the fields a loader needs)."""
    p = Path(path)
    try:
        manifest = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoBundleError(f"{p}: no such bundle manifest") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"{p}: unreadable bundle manifest ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{p}: not a {BUNDLE_FORMAT} manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{p}: bundle version {manifest.get('version')!r}, this segan reads "
                          f"version {BUNDLE_VERSION}: install the segan that wrote it")
    if (not _files_ok(manifest.get("files"))
            or not all(isinstance(manifest.get(k), dict) for k in ("hparams", "config"))):
        raise BundleError(f"{p}: malformed bundle manifest (files, hparams or config missing)")
    seg = manifest.get("visible_segmenter")
    if seg is not None and (not isinstance(seg, dict) or not _files_ok(seg.get("files"))
                            or not isinstance(seg.get("hparams"), dict)):
        raise BundleError(f"{p}: malformed bundle manifest (visible_segmenter: files or hparams "
                          "missing)")
    for f in bundle_files(manifest):  # file names only: a manifest never points outside its folder
        if Path(f["path"]).name != f["path"] or f["path"] in ("", ".", ".."):
            raise BundleError(f"{p}: bundle file name {f['path']!r} is not a plain file name")
    return manifest


def _files_ok(files: Any) -> bool:
    return isinstance(files, list) and bool(files) and all(
        isinstance(f, dict) and {"path", "bytes", "sha256"} <= f.keys() for f in files)


def bundle_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's file records: SeGAN's, then the visible segmenter's (if any)."""
    return manifest["files"] + (manifest.get("visible_segmenter") or {}).get("files", [])


def verify_bundle(manifest_path: str | os.PathLike) -> dict[str, Any]:
    """Every file of the bundle present, of the recorded size and sha256; the manifest."""
    manifest = read_manifest(manifest_path)
    _check_files(Path(manifest_path), bundle_files(manifest))
    return manifest


def _check_files(mpath: Path, files: list[dict[str, Any]]) -> None:
    """Each of these file records of the manifest at mpath present, of its size and sha256
    (each loader checks the files it reads, so none is hashed twice)."""
    fix = ("reinstall segan (pip install --force-reinstall segan) or pass --checkpoint RUN"
           if mpath.parent == PACKAGE_WEIGHTS else "export the bundle again "
           "(segan export-bundle RUN --out DIR)")
    for f in files:
        fp = mpath.parent / f["path"]
        if not fp.is_file():
            raise BundleError(f"{fp}: file of bundle {mpath.name} is missing; {fix}")
        size = fp.stat().st_size
        if size != f["bytes"]:
            raise BundleError(f"{fp}: corrupted ({size} bytes, the manifest says {f['bytes']}); "
                              f"{fix}")
        digest = file_sha256(fp)
        if digest != f["sha256"]:
            raise BundleError(f"{fp}: corrupted (sha256 {digest[:16]}..., the manifest says "
                              f"{f['sha256'][:16]}...); {fix}")


def load_bundle(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                rebuild: Rebuild | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(the network in eval mode and fp32 on `device`, its TrainConfig, identity {"path",
    "format": "bundle", "step", "sha256" (of the manifest), "name"}). path: a manifest or its
    folder; None: the package's bundle (`NoBundleError` in one line when it is not installed).
    rebuild: makes the network from the manifest's config and hparams (`segan.checkpoint`;
    the predictor passes `rebuild_segan`); None: the config's training task does
    (`segan.train.registry.rebuild_network`)."""
    from segan.config import TrainConfig

    if rebuild is None:
        from segan.train.registry import rebuild_network as rebuild

    mpath = require_package_bundle() if path is None else find_manifest(path)
    manifest = read_manifest(mpath)
    if manifest.get("parts"):
        raise BundleError(f"{mpath}: holds only the SeGAN's {', '.join(manifest['parts'])} "
                          "(`segan export-bundle --segmentor-only`: a distillation teacher for "
                          "loss.distill_from); it cannot predict or paint")
    saved = _weights_of(mpath, manifest)
    cfg = TrainConfig.from_dict(saved.config)
    net, training_only = rebuild(cfg, saved.hparams, mpath)
    _load_into(saved, net, training_only, "the architecture in the manifest")
    identity = {**saved.identity(), "name": manifest.get("name")}
    return net.to(device).eval(), cfg, identity


def read_bundle_weights(path: str | os.PathLike, visible_segmenter: bool = False
                        ) -> SavedWeights:
    """The SeGAN weights of the bundle at `path` (a manifest or its folder), or its visible
    segmenter's (`BundleError` when it has none), their files checked first: tensors as stored
    (fp16), format "bundle", path the manifest's, the run's config and hparams as recorded
    (the segmenter's backbone initialisation is not recorded: {})."""
    mpath = find_manifest(path)
    return _weights_of(mpath, read_manifest(mpath), visible_segmenter)


def _weights_of(mpath: Path, manifest: dict[str, Any], visible_segmenter: bool = False
                ) -> SavedWeights:
    """`read_bundle_weights` of the manifest at mpath, already read (`read_manifest`)."""
    from segan.checkpoint import SavedWeights

    record, backbone_init = manifest, manifest.get("backbone_init") or {}
    if visible_segmenter:
        record, backbone_init = manifest.get("visible_segmenter"), {}
        if record is None:
            raise BundleError(f"{mpath}: this bundle has no visible segmenter (attach one with "
                              "`segan export-bundle BUNDLE --visible-segmenter VRUN`)")
    return SavedWeights(mpath, "bundle", int(record.get("step", 0)), record.get("config") or {},
                        record["hparams"], _tensors(mpath, record["files"]), backbone_init)


def _load_into(saved: SavedWeights, net: torch.nn.Module, training_only: Sequence[str],
               what: str) -> None:
    """`SavedWeights.load_into` (fp16 -> fp32 copies), a mismatch as a `BundleError`."""
    try:
        saved.load_into(net, training_only, what)
    except ValueError as e:
        raise BundleError(str(e)) from None


def has_visible_segmenter(path: str | os.PathLike) -> bool:
    """Whether the bundle at `path` (a manifest or its folder) carries a visible segmenter."""
    return "visible_segmenter" in read_manifest(find_manifest(path))


def load_bundle_segmenter(path: str | os.PathLike | None = None,
                          device: str | torch.device = "cpu") -> Any:
    """The bundle's visible-instance segmenter (`segan.models.visible_segmenter.
    VisibleSegmenter`, fp32 on `device`), or None when the bundle has none. path: as
    `load_bundle` (None: the package's bundle); its files are checked first."""
    from segan.models.visible_segmenter import DEFAULT_MERGE_IOU, MaskRCNNNet, VisibleSegmenter

    mpath = require_package_bundle() if path is None else find_manifest(path)
    manifest = read_manifest(mpath)
    seg = manifest.get("visible_segmenter")
    if seg is None:
        return None
    saved = _weights_of(mpath, manifest, visible_segmenter=True)
    net = MaskRCNNNet(**saved.hparams)
    _load_into(saved, net, (), "the visible segmenter's architecture in the manifest")
    identity = {**saved.identity(), "mask_target": saved.hparams["mask_target"],
                "config": saved.config}
    seg_out = VisibleSegmenter(net.to(device).eval(), identity)
    if seg.get("test_sizes"):  # several sizes, merged (`VisibleSegmenter.set_test_sizes`)
        seg_out.set_test_sizes(seg["test_sizes"], float(seg.get("merge_iou", DEFAULT_MERGE_IOU)))
    elif seg.get("test_size") is not None:
        seg_out.set_test_size(int(seg["test_size"]))
    return seg_out


def _record_test_sizes(record: dict[str, Any], sizes: int | Sequence[int] | None,
                       merge_iou: float | None) -> None:
    """The segmenter's test sizes into its manifest record (`export_bundle`), checked as the
    segmenter checks them (ValueError); None keeps what the record has."""
    from segan.models.visible_segmenter import DEFAULT_MERGE_IOU, check_test_sizes

    if sizes is not None:
        sizes = check_test_sizes([sizes] if isinstance(sizes, int) else sizes)
        record.pop("test_sizes", None)
        record.pop("merge_iou", None)
        record["test_size"] = max(sizes)
        if len(sizes) > 1:
            record["test_sizes"] = list(sizes)
    if merge_iou is not None:
        if "test_sizes" not in record:
            raise BundleError(f"merge IoU {merge_iou}: only for several visible test sizes")
        record["merge_iou"] = float(merge_iou)
    if "test_sizes" in record:
        record.setdefault("merge_iou", DEFAULT_MERGE_IOU)
        check_test_sizes(record["test_sizes"], record["merge_iou"])


def _tensors(mpath: Path, files: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The tensors of these file records of the manifest at mpath, the files checked first."""
    _check_files(mpath, files)
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_safetensors(mpath.parent / f["path"]))
    return tensors


def _write_shards(tensors: dict[str, torch.Tensor], out: Path, stem: str, name: str,
                  max_file_bytes: int) -> list[dict[str, Any]]:
    """tensors -> out/STEM-NN.safetensors files of at most max_file_bytes; their records."""
    from safetensors.torch import save

    files = []
    for i, shard in enumerate(_shards(tensors, max_file_bytes)):
        fname = f"{stem}-{i:02d}.safetensors"
        data = save(shard, metadata={"format": f"{BUNDLE_FORMAT}-shard", "bundle": name})
        write_bytes_atomic(out / fname, data)
        files.append({"path": fname, "bytes": len(data), "sha256": file_sha256(out / fname)})
    return files


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).detach().contiguous()
            for k, v in state.items()}


def _shards(tensors: dict[str, torch.Tensor], max_file_bytes: int
            ) -> list[dict[str, torch.Tensor]]:
    """Tensors in state-dict order, split greedily into files of at most max_file_bytes
    (less the safetensors header, kept under 1 MiB)."""
    budget = max_file_bytes - MiB
    out: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if n > budget:
            raise BundleError(f"tensor {k} ({n / MiB:.1f} MiB) alone exceeds the per-file limit "
                              f"of {max_file_bytes / MiB:.0f} MiB")
        if used + n > budget and out[-1]:
            out.append({})
            used = 0
        out[-1][k] = v
        used += n
    return out


def _backbone_init(identity: dict[str, Any]) -> dict[str, Any]:
    """How the run's segmentor backbone was initialised (its ImageNet weights' licence and
    sha256 belong on the model card), from the export's metadata or the checkpoint."""
    from segan.checkpoint import load_checkpoint, read_export_metadata

    if identity["format"] == "bundle":  # a bundle made again: what it recorded
        return read_manifest(identity["path"]).get("backbone_init") or {}
    if identity["format"] == "safetensors":
        return read_export_metadata(identity["path"]).get("backbone_init") or {}
    return load_checkpoint(identity["path"]).get("backbone_init") or {}


def _source(identity: dict[str, Any]) -> dict[str, Any]:
    """The run a bundle's SeGAN weights come from: the checkpoint's own identity, or, for a
    bundle made again from a bundle (e.g. to attach a new visible segmenter), the source that
    bundle recorded (identity["path"] is its manifest), so evaluations of the run still
    identify the shipped weights."""
    if identity["format"] == "bundle":
        return dict(read_manifest(identity["path"])["source"])
    return {"path": identity["path"], "sha256": identity["sha256"]}


def export_bundle(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                  name: str = PACKAGE_BUNDLE_NAME, dtype: torch.dtype = torch.float16,
                  max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES,
                  visible_segmenter: str | os.PathLike | None = None,
                  visible_test_size: int | Sequence[int] | None = None,
                  visible_merge_iou: float | None = None, segmentor_only: bool = False) -> Path:
    """A trained SeGAN run (folder, model.safetensors or checkpoint .pt) -> a bundle in
    out_dir: NAME-NN.safetensors (inference tensors, floats cast to `dtype`) and NAME.json;
    with `visible_segmenter` (a Mask R-CNN run of the visible task) also its tensors as
    NAME-visible-NN.safetensors (visible_segmenter may also be a bundle carrying one: its
    weights and record are copied); visible_test_size: the image size the segmenter runs at
    (`VisibleSegmenter.set_test_size`; None: as recorded, else its training size), or several,
    whose detections are merged at mask IoU `visible_merge_iou` (`set_test_sizes`; None: as
    recorded, else `DEFAULT_MERGE_IOU`); recorded as "test_size" (the largest), "test_sizes"
    and "merge_iou". segmentor_only: only the segmentor's tensors, recorded as "parts":
    ["segmentor"] (a distillation teacher, `segan.checkpoint.load_segmentor`; `load_bundle`
    refuses it). Raises BundleError when the weights exceed max_total_bytes.
    Returns the manifest's path."""
    from segan.checkpoint import SEGAN_TRAINING_ONLY, load_segan

    if Path(name).name != name or not name or name.startswith("."):
        raise BundleError(f"bundle name {name!r} must be a plain file name")
    if segmentor_only and visible_segmenter is not None:
        raise BundleError("a segmentor-only bundle carries no visible segmenter")
    net, cfg, identity = load_segan(checkpoint, "cpu")
    skip = tuple(f"{n}." for n in SEGAN_TRAINING_ONLY)
    state = net.state_dict()
    keep = [k for k in state if not k.startswith(skip)
            and (not segmentor_only or k.startswith("segmentor."))]
    tensors = _cast({k: state[k] for k in keep}, dtype)
    seg_tensors, seg_record = {}, None
    if visible_segmenter is not None and is_bundle(visible_segmenter):
        # another bundle's segmenter (e.g. this bundle's, with another test size): its
        # tensors and its record, source included
        seg_mpath = find_manifest(visible_segmenter)
        seg_manifest = read_manifest(seg_mpath)
        seg_tensors = _cast(_weights_of(seg_mpath, seg_manifest, visible_segmenter=True).state,
                            dtype)
        seg_record = {k: v for k, v in seg_manifest["visible_segmenter"].items() if k != "files"}
    elif visible_segmenter is not None:
        from segan.models.visible_segmenter import load_maskrcnn

        det, det_id = load_maskrcnn(visible_segmenter, "cpu")
        if det.mask_target != "visible":
            raise BundleError(f"{det_id['path']}: a detector of {det.mask_target} masks; the "
                              "bundle's visible segmenter must predict visible masks "
                              "(configs/visible_compact.yaml)")
        seg_tensors = _cast(det.state_dict(), dtype)
        seg_record = {"hparams": det.hparams, "config": det_id["config"], "step": det_id["step"],
                      "parameters": sum(p.numel() for p in det.parameters()),
                      "source": {"path": det_id["path"], "sha256": det_id["sha256"]}}
    if seg_record is not None:  # checked before any file is written
        _record_test_sizes(seg_record, visible_test_size, visible_merge_iou)
    total = sum(v.numel() * v.element_size()
                for v in [*tensors.values(), *seg_tensors.values()])
    if total > max_total_bytes:
        raise BundleError(f"{identity['path']}: {total / MiB:.1f} MiB of weights in {dtype}"
                          f"{' with the visible segmenter' if seg_record else ''}, more than "
                          f"the limit of {max_total_bytes / MiB:.0f} MiB")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _write_shards(tensors, out, name, name, max_file_bytes)
    manifest = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": name,
        "dtype": str(dtype).removeprefix("torch."), "files": files,
        "parameters": sum(p.numel() for k, p in net.named_parameters() if k in keep),
        "hparams": net.hparams, "config": cfg.to_dict(), "step": identity["step"],
        "backbone_init": _backbone_init(identity),
        "source": _source(identity),
    }
    if segmentor_only:
        manifest["parts"] = ["segmentor"]
    if seg_record is not None:
        seg_record["files"] = _write_shards(seg_tensors, out, f"{name}-visible", name,
                                            max_file_bytes)
        manifest["visible_segmenter"] = seg_record
    mpath = out / f"{name}.json"
    write_bytes_atomic(mpath, (json.dumps(manifest, indent=1) + "\n").encode())
    return mpath
