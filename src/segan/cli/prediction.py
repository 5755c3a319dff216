"""`segan predict`, `segan deocclude`, `segan quickstart`, `segan demo`: a model on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segan.cli.common import check_out_folder, positive_int


def cmd_predict(args: argparse.Namespace) -> int:
    from segan.predict_io import predict_files

    check_out_folder(args.out, "--out")
    summary = predict_files(args.checkpoint, args.images, args.out, masks=args.masks,
                            visible_segmenter=args.visible_segmenter,
                            device=None if args.device == "auto" else args.device,
                            progress=not args.quiet, onnx=args.onnx)
    for im in summary["images"]:
        print(f"{im['image']}: {im['objects']} objects, {im['layers']} depth layers -> "
              f"{Path(args.out) / im['folder'] / im['overlay']}")
    print(f"predictions: {Path(args.out) / 'predictions.json'} ({summary['seconds']} s)")
    return 0


def add_predict(sub: argparse._SubParsersAction) -> None:
    """`segan predict IMAGE ... --out OUT`."""
    pr = sub.add_parser("predict", help="complete and paint the occluded objects of images",
                        description="Full and invisible masks, painted objects and depth "
                        "layers for every object of each IMAGE. Visible masks (--masks): one "
                        "COCO/segan-coco JSON (any number of images, matched by file name), "
                        "or for one image an instance-id PNG, several one-object PNGs, or a "
                        "folder of them. Without --masks, --visible-segmenter finds them.")
    pr.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    pr.add_argument("--checkpoint", type=Path, default=None,
                    help="a run folder, its model.safetensors, a checkpoint .pt or a bundle "
                    "folder (default: the model bundled with the package)")
    pr.add_argument("--onnx", type=Path, default=None, metavar="MODEL",
                    help="run the network of `segan export --onnx` with onnxruntime (CPU) "
                    "instead of a checkpoint")
    pr.add_argument("--masks", nargs="+", type=Path, default=None, metavar="FILE",
                    help="visible masks: a JSON, an id PNG, object PNGs or a folder")
    pr.add_argument("--visible-segmenter", type=Path, default=None, metavar="PATH",
                    help="visible-instance segmenter: a run or a bundle (used without "
                    "--masks; default with the bundled model: the bundle's own)")
    pr.add_argument("--out", type=Path, required=True, help="output folder")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)


def cmd_deocclude(args: argparse.Namespace) -> int:
    from segan.deocclude import deocclude_file

    summary = deocclude_file(args.checkpoint, args.image, args.masks, args.remove, args.out,
                             device=None if args.device == "auto" else args.device,
                             ordered=not args.unordered, fill=args.fill,
                             completer=args.completer)
    print(f"removed {summary['removed']} ({summary['hole_pixels']} px); drew objects "
          f"{summary['order']} back to front -> {Path(args.out) / 'edited.png'}, "
          f"{Path(args.out) / 'steps.png'}")
    return 0


def add_deocclude(sub: argparse._SubParsersAction) -> None:
    """`segan deocclude IMAGE --masks ... --remove K ...`."""
    dc = sub.add_parser("deocclude", help="remove objects from an image and show what they "
                        "hid (SeGAN's paintings in predicted depth order)",
                        description="Remove the objects --remove (indices into the visible "
                        "masks, in the order --masks gives them, as `segan predict`) from "
                        "IMAGE: the hole is filled by inpainting, then the objects the removed "
                        "ones hide are drawn back to front with SeGAN's painted appearance.")
    dc.add_argument("image", type=Path, metavar="IMAGE")
    dc.add_argument("--masks", nargs="+", type=Path, required=True, metavar="FILE",
                    help="visible masks: a JSON, an id PNG, object PNGs or a folder")
    dc.add_argument("--remove", nargs="+", type=int, required=True, metavar="K",
                    help="indices of the objects to remove (0-based)")
    dc.add_argument("--checkpoint", type=Path, required=True,
                    help="a run folder, its model.safetensors, or a checkpoint .pt")
    dc.add_argument("--out", type=Path, required=True, help="output folder")
    dc.add_argument("--unordered", action="store_true",
                    help="draw the revealed objects in index order, not by depth layer")
    dc.add_argument("--fill", default=None, choices=["diffusion", "telea", "ns"],
                    help="classical inpainting of the background (default diffusion; telea and "
                    "ns are OpenCV's: the inpaint extra)")
    dc.add_argument("--completer", type=Path, default=None, metavar="RUN",
                    help="the background by a trained background completer (configs/"
                    "background_completer.yaml) instead of inpainting")
    dc.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    dc.set_defaults(func=cmd_deocclude)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from segan.quickstart import quickstart

    check_out_folder(args.out, "OUT")
    result = quickstart(args.out, config=args.config, progress=not args.quiet)
    print(json.dumps(result, indent=1))
    print(f"overlay: {result['overlay']}")
    return 0


def add_quickstart(sub: argparse._SubParsersAction) -> None:
    """`segan quickstart [OUT]`."""
    q = sub.add_parser("quickstart", help="the whole job on the tiny default, offline: "
                       "generate, train, predict, write the overlay picture")
    q.add_argument("out", type=Path, nargs="?", default=Path("out/quickstart"),
                   help="output folder (default out/quickstart; a finished one is reused)")
    q.add_argument("--config", type=Path, default=None,
                   help="training config (default configs/tiny.yaml)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_quickstart)


def cmd_demo(args: argparse.Namespace) -> int:
    from segan.demo import launch_demo

    print(f"segan demo on http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch_demo(args.checkpoint, data=args.data, split=args.split, samples=args.samples,
                visible_segmenter=args.visible_segmenter,
                device=None if args.device == "auto" else args.device, host=args.host,
                port=args.port, completer=args.completer)


def add_demo(sub: argparse._SubParsersAction) -> None:
    """`segan demo`."""
    dm = sub.add_parser("demo", help="a local web page: click an object, see its full mask, "
                        "painted appearance and occlusion order, remove it and see what it "
                        "hid (Gradio, offline)")
    dm.add_argument("--checkpoint", type=Path, default=None,
                    help="a run folder, its model.safetensors, a checkpoint .pt or a bundle "
                    "folder (default: the model bundled with the package)")
    dm.add_argument("--data", type=Path, default=None,
                    help="a segan-coco dataset whose images are offered as samples")
    dm.add_argument("--split", default="test", help="the samples' split (default test)")
    dm.add_argument("--samples", type=positive_int, default=8, help="how many sample images")
    dm.add_argument("--visible-segmenter", type=Path, default=None, metavar="PATH",
                    help="finds the objects of uploaded images (else upload their masks)")
    dm.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    dm.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dm.add_argument("--port", type=int, default=7860)
    dm.add_argument("--completer", type=Path, default=None, metavar="RUN",
                    help="\"Remove\": the background by a trained background completer "
                    "(configs/background_completer.yaml; default diffusion inpainting)")
    dm.set_defaults(func=cmd_demo)
