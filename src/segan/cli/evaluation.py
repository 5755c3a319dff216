"""`segan evaluate` (amodal and de-occlusion), its alias `segan evaluate-deocclusion`,
`segan report` and `segan predict-visible`: the paper's tables and what feeds them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segan.cli.common import (
    add_data_format,
    check_out_file,
    check_out_folder,
    count_int,
    positive_int,
)

# `segan evaluate` options that only the amodal task (the paper's tables) takes (fields of
# segan.eval.config.EvaluationConfig): --task deocclusion refuses them when set
AMODAL_ONLY = ("visible", "visible_segmenter", "visible_score_threshold", "sample", "cache_dir",
               "data_format", "fid_weights", "lpips_weights", "save_crops", "index_data")
DEOCCLUSION_ONLY = {"completer": None, "no_ssim": False}  # the reverse, with their defaults


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from segan.eval.config import EvaluationConfig, evaluation_defaults

    check_out_folder(args.out, "--out")
    if args.task == "deocclusion":
        bad = [_option(k) for k, v in evaluation_defaults(AMODAL_ONLY).items()
               if getattr(args, k) != v]
        if bad:
            raise ValueError(f"--task deocclusion does not take {', '.join(bad)}")
        if args.checkpoint is None:
            raise ValueError("--task deocclusion needs --checkpoint (the SeGAN run whose "
                             "paintings fill the hole)")
        return _evaluate_deocclusion(args.data, args.checkpoint, split=args.split,
                                     methods=args.method, limit=args.limit,
                                     ssim=not args.no_ssim, completer=args.completer,
                                     device=args.device, quiet=args.quiet,
                                     json_path=Path(args.out) / "deocclusion.json",
                                     md_path=Path(args.out) / "deocclusion.md",
                                     figure=Path(args.out) / "figure_deocclusion_best_worst.png",
                                     best_worst=args.best_worst)
    bad = [_option(k) for k, v in DEOCCLUSION_ONLY.items() if getattr(args, k) != v]
    if bad:
        raise ValueError(f"{', '.join(bad)}: only with --task deocclusion")
    cfg = EvaluationConfig(
        checkpoint=args.checkpoint, data=args.data, out=args.out, split=args.split,
        visible=args.visible, methods=tuple(args.method or ("segan",)),
        visible_segmenter=args.visible_segmenter,
        visible_score_threshold=args.visible_score_threshold, limit=args.limit,
        sample=args.sample, device=args.device, data_format=args.data_format,
        fid_weights=args.fid_weights, lpips_weights=args.lpips_weights,
        best_worst=args.best_worst, save_crops=args.save_crops, index_data=args.index_data,
        cache_dir=args.cache_dir)
    from segan.eval.evaluate import evaluate

    results = evaluate(cfg, progress=not args.quiet)
    print(f"results: {Path(args.out) / 'results.md'} ({results['num_images']} images, "
          f"{results['num_objects']} objects, {results['seconds']} s)")
    return 0


def _add_deocclusion_options(parser: argparse.ArgumentParser) -> None:
    """The de-occlusion evaluation's own options (`segan evaluate --task deocclusion` and
    `segan evaluate-deocclusion`)."""
    parser.add_argument("--completer", type=Path, default=None, metavar="RUN",
                        help="de-occlusion: a background completer run (configs/"
                        "background_completer.yaml): the SeGAN methods' background, and "
                        "method completer")
    parser.add_argument("--no-ssim", action="store_true",
                        help="de-occlusion: skip SSIM (needs scikit-image)")


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """`segan evaluate --data DATA --out OUT`."""
    from segan.data.formats import CHOICES as FORMAT_CHOICES

    e = sub.add_parser("evaluate", help="evaluate a model and baselines (section 5.2, "
                       "Tables 1, 2, 5)")
    e.add_argument("--checkpoint", type=Path, default=None,
                   help="a checkpoint .pt, a model.safetensors, or a run folder: for every "
                   "method named without its own (default: the first method's)")
    e.add_argument("--data", type=Path, required=True, help="dataset folder (segan-coco)")
    e.add_argument("--split", default="test", help="annotations/<split>.json (default test)")
    e.add_argument("--visible", default="gt", choices=["gt", "predicted"],
                   help="where S_V comes from: the ground truth, or the visible-instance "
                   "segmenter (--visible-segmenter)")
    e.add_argument("--visible-segmenter", type=Path, default=None, metavar="RUN",
                   help="with --visible predicted: a run of configs/visible_maskrcnn.yaml (its "
                   "folder, model.safetensors or a checkpoint .pt) or a bundle carrying one "
                   "(e.g. src/segan/weights)")
    e.add_argument("--visible-score-threshold", type=float, default=None, metavar="T",
                   help="keep predicted S_V with score >= T (default: the run's "
                   "detector.score_threshold)")
    e.add_argument("--out", type=Path, required=True, help="folder for results.{json,md}")
    e.add_argument("--task", default="amodal", choices=["amodal", "deocclusion"],
                   help="amodal (default): full masks, paintings and depth layers of the "
                   "objects (the paper's tables); deocclusion: remove objects and score the "
                   "result against the re-renders of `segan generate --deocclusion` (OUT/"
                   "deocclusion.{json,md}; docs/deocclusion.md)")
    e.add_argument("--method", action="append", metavar="NAME[@LABEL][=CHECKPOINT]",
                   help="method to evaluate (segan, visible_as_full, ...: segan.eval.methods), "
                   "with its own checkpoint after '='; repeat for several (default segan); "
                   "@LABEL names one of several runs of a method (segan@a=RUN_A segan@b=RUN_B). "
                   "With --task deocclusion: a de-occlusion method (segan, segan_unordered, "
                   "segan_true_masks, inpaint, inpaint_telea, inpaint_ns, completer; default: "
                   "all that can run)")
    e.add_argument("--limit", type=positive_int, default=None, help="the first N images only")
    e.add_argument("--sample", type=positive_int, default=None,
                   help="N images spread evenly over the split (instead of --limit)")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--cache-dir", type=Path, default=None,
                   help="decoded training cache of methods that read the training split, and "
                   "another format's converted copy (default $SEGAN_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/segan or ~/.cache/segan; never inside DATA)")
    e.add_argument("--index-data", type=Path, default=None, metavar="DIR",
                   help="a segan-coco dataset whose training split the methods that read one "
                   "use (nearest_neighbour's index; default: DATA's): the compared models' "
                   "training data, for a test set without a training split")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_format(e, FORMAT_CHOICES)
    e.add_argument("--fid-weights", type=Path, default=None, metavar="FILE",
                   help="FID of the painted objects: pytorch-fid's "
                   "pt_inception-2015-12-05-6726825d.pth, or torchvision's inception_v3_google "
                   "weights (labelled 'torchvision Inception'); without: not computed")
    e.add_argument("--lpips-weights", type=Path, nargs="+", default=None, metavar="PATH",
                   help="LPIPS of the painted objects: torchvision's alexnet-owt-7be5be79.pth "
                   "and the lpips package's weights/v0.1/alex.pth (two files, or a folder "
                   "with both); without: not computed")
    e.add_argument("--best-worst", type=count_int, default=4, metavar="K",
                   help="figure_<method>_best_worst.png: the K best and K worst occluded "
                   "objects by full IoU of each method that predicts S_F; with --task "
                   "deocclusion, figure_deocclusion_best_worst.png: segan's K best and K worst "
                   "removals by hole L1 (default 4; 0: none)")
    e.add_argument("--save-crops", type=count_int, default=0, metavar="N",
                   help="write OUT/crops/: each painting method's painted crop of the first N "
                   "occluded objects, with input and target (for `segan study create`)")
    _add_deocclusion_options(e)
    e.set_defaults(func=cmd_evaluate)


def _evaluate_deocclusion(data: Path, checkpoint: Path, *, split: str,
                          methods: list[str] | None, limit: int | None, ssim: bool,
                          completer: Path | None, device: str, quiet: bool,
                          json_path: Path | None, md_path: Path | None,
                          figure: Path | None = None, best_worst: int = 0) -> int:
    """`segan evaluate --task deocclusion` and its alias `segan evaluate-deocclusion`: the
    table on the terminal, and as JSON / Markdown where asked."""
    from segan.data.coco import write_json_atomic
    from segan.eval.deocclusion import evaluate_deocclusion, format_table
    from segan.eval.evaluate import finite_or_none

    for p, opt in ((json_path, "--json"), (md_path, "--out")):
        if p is not None:
            check_out_file(p, opt, p.name)

    def progress(done: int, total: int) -> None:
        if not quiet:
            print(f"\r{done}/{total} images", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    result = evaluate_deocclusion(data, checkpoint, split=split, methods=methods,
                                  device=None if device == "auto" else device, limit=limit,
                                  ssim=ssim, completer=completer, progress=progress,
                                  figure=figure, best_worst=best_worst)
    table = format_table(result)
    print(table)
    if json_path is not None:
        write_json_atomic(json_path, finite_or_none(result))  # NaN (no SSIM) -> null
    if md_path is not None:
        from segan.data.atomic import write_bytes_atomic

        write_bytes_atomic(md_path, (table + "\n").encode())
        shown = f", {figure}" if result["figure"] else ""
        print(f"results: {md_path}, {json_path}{shown}")
    return 0


def cmd_evaluate_deocclusion(args: argparse.Namespace) -> int:
    """The alias of `segan evaluate --task deocclusion` (positional DATA, --json FILE)."""
    return _evaluate_deocclusion(args.data, args.checkpoint, split=args.split,
                                 methods=args.method, limit=args.limit, ssim=not args.no_ssim,
                                 completer=args.completer, device=args.device, quiet=True,
                                 json_path=args.json, md_path=None)


def add_evaluate_deocclusion(sub: argparse._SubParsersAction) -> None:
    """`segan evaluate-deocclusion DATA`."""
    ed = sub.add_parser("evaluate-deocclusion", help="alias of `segan evaluate --task "
                        "deocclusion` (DATA positional, --json FILE instead of --out)")
    ed.add_argument("data", type=Path, help="dataset folder with de-occlusion ground truth")
    ed.add_argument("--checkpoint", type=Path, required=True,
                    help="a run folder, its model.safetensors, or a checkpoint .pt")
    ed.add_argument("--split", default="test", help="annotations/<split>.json (default test)")
    ed.add_argument("--method", action="append", metavar="NAME",
                    help="a de-occlusion method (segan, segan_unordered, segan_true_masks, "
                    "inpaint, inpaint_telea, inpaint_ns, completer); repeat for several "
                    "(default: all that can run)")
    ed.add_argument("--limit", type=positive_int, default=None, metavar="N",
                    help="only the first N images that have removals")
    _add_deocclusion_options(ed)
    ed.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    ed.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ed.set_defaults(func=cmd_evaluate_deocclusion)


def cmd_report(args: argparse.Namespace) -> int:
    from segan.eval.report import load_results, write_comparison

    check_out_file(args.out, "--out", "report.md")
    named = []
    for spec in args.results:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"segan report takes NAME=RESULTS (an evaluation's OUT folder or "
                             f"its results.json), got {spec!r}")
        named.append((name.strip(), load_results(path.strip())))
    text = write_comparison(named, args.out)
    print(text, end="")
    print(f"comparison: {args.out}")
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    """`segan report NAME=RESULTS ... --out FILE`."""
    rp = sub.add_parser("report", help="several evaluations side by side (e.g. in-domain and "
                        "out-of-domain): one column per dataset, for each method")
    rp.add_argument("results", nargs="+", metavar="NAME=RESULTS",
                    help="a column name and an OUT folder of `segan evaluate` (or its "
                    "results.json); repeat per dataset")
    rp.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    rp.set_defaults(func=cmd_report)


def cmd_predict_visible(args: argparse.Namespace) -> int:
    from segan.eval.predict_visible import predict_visible

    check_out_folder(args.out, "--out")
    summary = predict_visible(args.data, args.segmenter, args.out, splits=args.split,
                              score_threshold=args.score_threshold, device=args.device,
                              progress=not args.quiet)
    print(json.dumps(summary))
    return 0


def add_predict_visible(sub: argparse._SubParsersAction) -> None:
    """`segan predict-visible DATA`."""
    v = sub.add_parser("predict-visible", help="a copy of a dataset with each object's "
                       "predicted S_V (the paper's training inputs for SeGAN w/ predicted S_V)")
    v.add_argument("data", type=Path, help="dataset folder (segan-coco)")
    v.add_argument("--segmenter", type=Path, required=True, metavar="RUN",
                   help="a run of configs/visible_maskrcnn.yaml, or a bundle carrying one")
    v.add_argument("--out", type=Path, required=True, help="the new dataset folder")
    v.add_argument("--split", action="append", default=None,
                   help="split to process; repeat for several (default: all)")
    v.add_argument("--score-threshold", type=float, default=None, metavar="T",
                   help="keep predictions with score >= T (default: the run's)")
    v.add_argument("--device", default=None, choices=["cpu", "cuda"])
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_predict_visible)
