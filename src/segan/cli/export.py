"""`segan export-bundle` and `segan export`: a trained run as shipped weights or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from segan.cli.common import positive_int


def cmd_export_bundle(args: argparse.Namespace) -> int:
    import torch

    from segan.bundle import MiB, bundle_files, export_bundle, read_manifest

    manifest_path = export_bundle(args.run, args.out, name=args.name,
                                  dtype=getattr(torch, args.dtype),
                                  max_file_bytes=args.max_file_mib * MiB,
                                  max_total_bytes=args.max_total_mib * MiB,
                                  visible_segmenter=args.visible_segmenter,
                                  visible_test_size=args.visible_test_size,
                                  visible_merge_iou=args.visible_merge_iou,
                                  segmentor_only=args.segmentor_only)
    manifest = read_manifest(manifest_path)
    seg = manifest.get("visible_segmenter") or {}
    files = bundle_files(manifest)
    for f in files:
        print(f"{Path(args.out) / f['path']}: {f['bytes'] / MiB:.2f} MiB, sha256 {f['sha256']}")
    total = sum(f["bytes"] for f in files)
    params = manifest["parameters"] + seg.get("parameters", 0)
    print(f"bundle: {manifest_path} ({params / 1e6:.2f} M parameters"
          f"{' with the visible segmenter' if seg else ''}, {manifest['dtype']}, "
          f"{total / MiB:.2f} MiB in {len(files)} files)")
    return 0


def add_export_bundle(sub: argparse._SubParsersAction) -> None:
    """`segan export-bundle RUN --out DIR`."""
    xb = sub.add_parser("export-bundle", help="a trained run's inference weights as fp16 "
                        "safetensors + a JSON manifest (sha256, config): a bundle, as shipped "
                        "in segan/weights/")
    xb.add_argument("run", type=Path, metavar="RUN",
                    help="a run folder, its model.safetensors, a checkpoint .pt, or a bundle")
    xb.add_argument("--out", type=Path, required=True, help="the bundle's folder")
    xb.add_argument("--name", default="segan_compact",
                    help="file name stem (default segan_compact: the name the package loads)")
    xb.add_argument("--visible-segmenter", type=Path, default=None, metavar="RUN",
                    help="also this visible-instance segmenter (a run of configs/"
                    "visible_compact.yaml, or a bundle carrying one), used for images without "
                    "masks")
    xb.add_argument("--visible-test-size", type=positive_int, nargs="+", default=None,
                    metavar="PIXELS",
                    help="the image size the segmenter runs at (default: as the bundle given "
                    "to --visible-segmenter recorded, else its training size); larger finds "
                    "more small objects, at a higher cost; several: it runs at each and their "
                    "detections are merged (e.g. 500 1100)")
    xb.add_argument("--visible-merge-iou", type=float, default=None, metavar="IOU",
                    help="with several test sizes, a detection is a duplicate of a higher-"
                    "scored one above this mask IoU (default: as recorded, else 0.3)")
    xb.add_argument("--segmentor-only", action="store_true",
                    help="only the segmentor's weights (about a quarter of the compact model): "
                    "a distillation teacher for another run's loss.distill_from, which cannot "
                    "predict or paint")
    xb.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    xb.add_argument("--max-file-mib", type=positive_int, default=16,
                    help="split the weights into files of at most this size (default 16)")
    xb.add_argument("--max-total-mib", type=positive_int, default=40,
                    help="refuse weights larger than this in all (default 40)")
    xb.set_defaults(func=cmd_export_bundle)


def cmd_export(args: argparse.Namespace) -> int:
    from segan.onnx_export import export_onnx

    path = export_onnx(args.checkpoint, args.onnx)
    print(f"onnx: {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    """`segan export --onnx OUT`."""
    xo = sub.add_parser("export", help="the network as ONNX (for onnxruntime: segan predict "
                        "--onnx MODEL)")
    xo.add_argument("--onnx", type=Path, required=True, metavar="OUT",
                    help="the .onnx file to write")
    xo.add_argument("--checkpoint", type=Path, default=None,
                    help="a run folder, model.safetensors, checkpoint .pt or bundle folder "
                    "(default: the model bundled with the package)")
    xo.set_defaults(func=cmd_export)
