"""The `segan` command: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path


def _int(value: str, least: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= {least}, got {value!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {n}")
    return n


def _positive(value: str) -> int:
    return _int(value, 1)


def _seed(value: str) -> int:
    return _int(value, 0)


def _count(value: str) -> int:
    return _int(value, 0)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``segan CMD: error: argument --opt: ...`` (exit 2), like the
    command's own errors; ``--help`` prints the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def _check_out_folder(path: str | os.PathLike, option: str) -> None:
    """An output folder the command may write: refused before any work when it is a file, or
    its nearest existing ancestor is a file or not writable."""
    p = Path(path)
    if "://" in str(path):  # an fsspec URL (generate): its filesystem says
        return
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {p}: exists and is not a folder")
    _check_writable(p, option, p)


def _check_out_file(path: str | os.PathLike, option: str, example: str = "out") -> None:
    """An output file: not a folder, in a folder the command may write."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {p}: is a folder; give a file path (e.g. {p / example})")
    _check_writable(p.parent, option, target=p)


def _check_writable(folder: Path, option: str, target: Path) -> None:
    """The nearest existing ancestor of `folder` (itself if it exists) is a folder this
    process may write into."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{option} {target}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {target}: no permission to write in {probe}")


def _share(value: str) -> float:
    x = float(value)
    if not 0.0 <= x <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return x


def cmd_generate(args: argparse.Namespace) -> int:
    from segan.data.generate import generate
    from segan.data.presets import make_config

    _check_out_folder(args.out, "OUT")

    cfg = make_config(args.preset, renderer=args.renderer, seed=args.seed,
                      views_per_scene=args.views, n_scenes=args.scenes, size=args.size,
                      deocclusion=args.deocclusion)
    if args.randomize:
        from dataclasses import replace

        from segan.data.randomize import DIVERSE_RANDOMIZATION

        cfg = replace(cfg, randomize=DIVERSE_RANDOMIZATION)
    start = time.perf_counter()
    counts = generate(args.out, cfg, workers=args.workers, chunk=args.chunk,
                      progress=not args.quiet, ray_address=args.ray)
    seconds = time.perf_counter() - start
    print(json.dumps({"out": str(args.out), "seconds": round(seconds, 1), **counts}))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from segan.data.stats import contact_sheet, dataset_stats, format_stats

    sheet = Path(args.sheet) if args.sheet else Path(args.data) / "contact_sheet.png"
    _check_out_file(sheet, "--sheet", "contact_sheet.png")
    if args.json:
        _check_out_file(args.json, "--json", "stats.json")
    stats = dataset_stats(args.data)
    print(format_stats(stats))
    contact_sheet(args.data, sheet, n=args.rows, seed=args.seed)
    print(f"contact sheet: {sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from segan.train import resolve_config, training_loop

    if args.config is None and not args.resume:
        raise ValueError("--config is required (except with --resume on a run that has one)")
    _check_out_folder(args.out, "--out")
    cfg = resolve_config(args.config, args.overrides, args.out, resume=args.resume,
                         backbone_weights=args.backbone_weights)
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    summary = training_loop(cfg, args.data, args.out, resume=args.resume,
                            cache_dir=args.cache_dir, stop_at=args.stop_at,
                            time_limit_s=None if args.time_limit is None else args.time_limit * 60,
                            progress=not args.quiet, data_format=args.data_format)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """The registries, one entry a line in the built-in modules' order, for scripts: tasks by name
    (their config is configs/NAME.yaml); methods as "NAME TASK" (TASK: the training task of
    its checkpoint, "-" for none)."""
    if args.what == "tasks":
        from segan.train import get_task, task_names

        for name in task_names(sort=False):
            if not args.pretrained_backbone or get_task(name).pretrained_backbone:
                print(name)
    else:
        from segan.eval.methods import get_method, method_names

        for name in method_names(sort=False):
            entry = get_method(name)
            if entry.in_tables or args.all:
                print(name, entry.task or "-")
    return 0


def cmd_plot_losses(args: argparse.Namespace) -> int:
    from segan.train.plots import plot_losses

    if args.out:
        _check_out_file(args.out, "--out", "losses.png")
    out = plot_losses(Path(args.run) / "stats.jsonl", args.out or Path(args.run) / "losses.png")
    print(f"loss curves: {out}")
    return 0


# `segan evaluate` options that only the amodal task (the paper's tables) takes (fields of
# segan.eval.config.EvaluationConfig): --task deocclusion refuses them when set
AMODAL_ONLY = ("visible", "visible_segmenter", "visible_score_threshold", "sample", "cache_dir",
               "data_format", "fid_weights", "lpips_weights", "save_crops")
DEOCCLUSION_ONLY = {"completer": None, "no_ssim": False}  # the reverse, with their defaults


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from segan.eval.config import EvaluationConfig, evaluation_defaults

    _check_out_folder(args.out, "--out")
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
        best_worst=args.best_worst, save_crops=args.save_crops, cache_dir=args.cache_dir)
    from segan.eval.evaluate import evaluate

    results = evaluate(cfg, progress=not args.quiet)
    print(f"results: {Path(args.out) / 'results.md'} ({results['num_images']} images, "
          f"{results['num_objects']} objects, {results['seconds']} s)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from segan.eval.report import load_results, write_comparison

    _check_out_file(args.out, "--out", "report.md")
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


def _split_map(values: list[str] | None, what: str, default_key: str | None = None
               ) -> dict[str, str] | None:
    """["NAME=PATH", ...] (or a bare PATH under `default_key`) -> {NAME: PATH}."""
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            if default_key is None:
                raise ValueError(f"{what} takes NAME=PATH, got {v!r}")
            name, path = default_key, v
        out[name] = path
    return out


def cmd_convert(args: argparse.Namespace) -> int:
    from segan.data.formats import convert
    from segan.data.formats.convert import dropped_message

    _check_out_folder(args.dst, "DST")
    summary = convert(args.src, args.dst, fmt=args.from_format,
                      splits=_split_map(args.split, "--split"),
                      images=_split_map(args.images, "--images", default_key="*"),
                      link=args.link, progress=not args.quiet)
    for name, st in summary["splits"].items():
        print(f"{name}: {st['images']} images, {st['objects']} objects "
              f"({st['dropped_few_visible']} dropped: fewer than 10 visible pixels), "
              f"{st['pairs']} occlusion pairs")
    for line in summary["lost"]:
        print(f"lost: {line}")
    dropped = dropped_message(summary)
    if dropped:
        print(f"dropped: {dropped}")
    print(f"wrote {args.dst} ({summary['source_format']}, {summary['seconds']} s; "
          f"details in {Path(args.dst) / 'conversion.json'})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from segan.predict_io import predict_files

    _check_out_folder(args.out, "--out")
    summary = predict_files(args.checkpoint, args.images, args.out, masks=args.masks,
                            visible_segmenter=args.visible_segmenter,
                            device=None if args.device == "auto" else args.device,
                            progress=not args.quiet, onnx=args.onnx)
    for im in summary["images"]:
        print(f"{im['image']}: {im['objects']} objects, {im['layers']} depth layers -> "
              f"{Path(args.out) / im['folder'] / im['overlay']}")
    print(f"predictions: {Path(args.out) / 'predictions.json'} ({summary['seconds']} s)")
    return 0


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
            _check_out_file(p, opt, p.name)

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


def cmd_export_bundle(args: argparse.Namespace) -> int:
    import torch

    from segan.bundle import MiB, bundle_files, export_bundle, read_manifest

    manifest_path = export_bundle(args.run, args.out, name=args.name,
                                  dtype=getattr(torch, args.dtype),
                                  max_file_bytes=args.max_file_mib * MiB,
                                  max_total_bytes=args.max_total_mib * MiB,
                                  visible_segmenter=args.visible_segmenter)
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


def cmd_export(args: argparse.Namespace) -> int:
    from segan.onnx_export import export_onnx

    path = export_onnx(args.checkpoint, args.onnx)
    print(f"onnx: {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from segan.quickstart import quickstart

    _check_out_folder(args.out, "OUT")
    result = quickstart(args.out, config=args.config, progress=not args.quiet)
    print(json.dumps(result, indent=1))
    print(f"overlay: {result['overlay']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from segan.demo import launch_demo

    print(f"segan demo on http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch_demo(args.checkpoint, data=args.data, split=args.split, samples=args.samples,
                visible_segmenter=args.visible_segmenter,
                device=None if args.device == "auto" else args.device, host=args.host,
                port=args.port, completer=args.completer)


def cmd_predict_visible(args: argparse.Namespace) -> int:
    from segan.eval.predict_visible import predict_visible

    _check_out_folder(args.out, "--out")
    summary = predict_visible(args.data, args.segmenter, args.out, splits=args.split,
                              score_threshold=args.score_threshold, device=args.device,
                              progress=not args.quiet)
    print(json.dumps(summary))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from segan import study

    if args.study_command == "create":
        _check_out_folder(args.out, "--out")
        summary = study.create_study(args.eval, args.out, baselines=args.methods,
                                     pairs=args.pairs, checks=args.checks, seed=args.seed)
        print(json.dumps(summary))
    elif args.study_command == "serve":
        from segan.study.app import serve

        serve(args.study, host=args.host, port=args.port, ready=lambda url: print(
            f"segan study on {url} (Ctrl+C stops it)", flush=True))
    else:
        rep = study.write_report(args.study, args.out)
        for r in rep["rows"]:
            share = "n/a" if r["share_ours"] is None else f"{100 * r['share_ours']:.1f}%"
            print(f"{rep['ours']} vs {r['baseline']}: {share} of {r['votes']} votes")
        print(f"report: {', '.join(rep['files'])}")
    return 0


def _add_data_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """--data-format, shared by the commands that read a dataset of any supported format."""
    parser.add_argument("--data-format", default="auto", choices=choices,
                        help="DATA's format (default: detected; others are converted into the "
                        "cache folder, docs/formats.md)")


def _add_deocclusion_options(parser: argparse.ArgumentParser) -> None:
    """The de-occlusion evaluation's own options (`segan evaluate --task deocclusion` and
    `segan evaluate-deocclusion`)."""
    parser.add_argument("--completer", type=Path, default=None, metavar="RUN",
                        help="de-occlusion: a background completer run (configs/"
                        "background_completer.yaml): the SeGAN methods' background, and "
                        "method completer")
    parser.add_argument("--no-ssim", action="store_true",
                        help="de-occlusion: skip SSIM (needs scikit-image)")


def build_parser() -> argparse.ArgumentParser:
    from segan.data.formats import CHOICES as FORMAT_CHOICES
    from segan.data.presets import PRESETS

    parser = _Parser(prog="segan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate a synthetic occlusion dataset (DYCE-like)")
    g.add_argument("out", help="output folder or fsspec URL (file://, s3://, ...); an "
                   "unfinished one is resumed")
    g.add_argument("--preset", default="tiny", choices=list(PRESETS),
                   help="tiny, dyce (the paper), diverse, ood (docs/dataset.md)")
    g.add_argument("--renderer", default="pyrender", choices=["pyrender", "mitsuba"])
    g.add_argument("--workers", type=_positive, default=None,
                   help="worker processes (default 1); with --ray, tasks at a time (default: "
                   "the cluster's CPUs)")
    g.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="run the tasks on a Ray cluster: auto (the running one), local (a "
                   "new one on this machine), HOST:PORT or ray://HOST:PORT (docs/scale.md)")
    g.add_argument("--seed", type=_seed, default=0)
    g.add_argument("--views", type=_positive, default=None, help="override views per scene")
    g.add_argument("--scenes", type=_positive, default=None, help="only the first N scenes")
    g.add_argument("--size", type=_positive, default=None, help="override image size (square)")
    g.add_argument("--chunk", type=_positive, default=10, help="views per work unit")
    g.add_argument("--randomize", action="store_true",
                   help="randomise camera, image size, lights and photometry of every view "
                   "(segan.data.randomize.DIVERSE_RANDOMIZATION; sizes scale with --size)")
    g.add_argument("--deocclusion", type=_share, default=None, metavar="SHARE",
                   help="de-occlusion ground truth for this share (0-1) of the views: each "
                   "rendered again without some occluders, and the room shell alone "
                   "(docs/dataset.md); off by default")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("stats", help="dataset statistics (paper section 4.2) and a contact sheet")
    s.add_argument("data", type=Path)
    s.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG path")
    s.add_argument("--rows", type=_positive, default=8)
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--json", type=Path, default=None, help="also write the statistics as JSON")
    s.set_defaults(func=cmd_stats)

    t = sub.add_parser("train", help="train SeGAN (section 5.1) or a baseline (the config's "
                       "task); torchrun: -m segan.train",
                       description="Train the config's task (segan, pix2pix, context_encoder, "
                       "ibbe, ...). Overrides are KEY=VALUE with dotted keys of the config (e.g. "
                       "optim.painter_lr=1e-4 data.batch_objects=64 task=pix2pix).")
    t.add_argument("--config", type=Path, default=None, help="YAML config (configs/*.yaml)")
    t.add_argument("--data", type=Path, required=True, help="dataset folder (segan-coco)")
    t.add_argument("--out", type=Path, required=True, help="run folder")
    t.add_argument("--resume", action="store_true",
                   help="continue the run's newest checkpoint (start fresh if it has none)")
    t.add_argument("--backbone-weights", default=None, metavar="none|imagenet|PATH",
                   help="segmentor backbone init (sets model.backbone_weights)")
    t.add_argument("--cache-dir", type=Path, default=None,
                   help="where the decoded data cache lives (default $SEGAN_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/segan or ~/.cache/segan; never inside DATA)")
    t.add_argument("--stop-at", type=_positive, default=None, metavar="STEP",
                   help="checkpoint and stop after this step (resume later)")
    t.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop with a checkpoint at the first logging step after this long "
                        "(--resume continues)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    _add_data_format(t, FORMAT_CHOICES)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    t.set_defaults(func=cmd_train)
    ls = sub.add_parser("list", help="the registered training tasks or evaluation methods, one "
                        "a line (what scripts train and evaluate)")
    ls.add_argument("what", choices=["tasks", "methods"])
    ls.add_argument("--pretrained-backbone", action="store_true",
                    help="tasks: only those whose network --backbone-weights initialises")
    ls.add_argument("--all", action="store_true",
                    help="methods: also those outside the compared methods (the oracle)")
    ls.set_defaults(func=cmd_list)
    p = sub.add_parser("plot-losses", help="plot a training run's loss curves (stats.jsonl)")
    p.add_argument("run", type=Path, help="a run folder of `segan train`")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default RUN/losses.png)")
    p.set_defaults(func=cmd_plot_losses)

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
                   "folder, model.safetensors or a checkpoint .pt)")
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
    e.add_argument("--limit", type=_positive, default=None, help="the first N images only")
    e.add_argument("--sample", type=_positive, default=None,
                   help="N images spread evenly over the split (instead of --limit)")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--cache-dir", type=Path, default=None,
                   help="decoded training cache of methods that read the training split, and "
                   "another format's converted copy (default $SEGAN_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/segan or ~/.cache/segan; never inside DATA)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_format(e, FORMAT_CHOICES)
    e.add_argument("--fid-weights", type=Path, default=None, metavar="FILE",
                   help="FID of the painted objects: pytorch-fid's "
                   "pt_inception-2015-12-05-6726825d.pth, or torchvision's inception_v3_google "
                   "weights (labelled 'torchvision Inception'); without: not computed")
    e.add_argument("--lpips-weights", type=Path, nargs="+", default=None, metavar="PATH",
                   help="LPIPS of the painted objects: torchvision's alexnet-owt-7be5be79.pth "
                   "and the lpips package's weights/v0.1/alex.pth (two files, or a folder "
                   "with both); without: not computed")
    e.add_argument("--best-worst", type=_count, default=4, metavar="K",
                   help="figure_<method>_best_worst.png: the K best and K worst occluded "
                   "objects by full IoU of each method that predicts S_F; with --task "
                   "deocclusion, figure_deocclusion_best_worst.png: segan's K best and K worst "
                   "removals by hole L1 (default 4; 0: none)")
    e.add_argument("--save-crops", type=_count, default=0, metavar="N",
                   help="write OUT/crops/: each painting method's painted crop of the first N "
                   "occluded objects, with input and target (for `segan study create`)")
    _add_deocclusion_options(e)
    e.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("report", help="several evaluations side by side (e.g. in-domain and "
                        "out-of-domain): one column per dataset, for each method")
    rp.add_argument("results", nargs="+", metavar="NAME=RESULTS",
                    help="a column name and an OUT folder of `segan evaluate` (or its "
                    "results.json); repeat per dataset")
    rp.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    rp.set_defaults(func=cmd_report)

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
                    help="visible-instance segmenter checkpoint (used without --masks)")
    pr.add_argument("--out", type=Path, required=True, help="output folder")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)

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
    ed.add_argument("--limit", type=_positive, default=None, metavar="N",
                    help="only the first N images that have removals")
    _add_deocclusion_options(ed)
    ed.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    ed.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ed.set_defaults(func=cmd_evaluate_deocclusion)

    xb = sub.add_parser("export-bundle", help="a trained run's inference weights as fp16 "
                        "safetensors + a JSON manifest (sha256, config): a bundle, as shipped "
                        "in segan/weights/")
    xb.add_argument("run", type=Path, metavar="RUN",
                    help="a run folder, its model.safetensors, or a checkpoint .pt")
    xb.add_argument("--out", type=Path, required=True, help="the bundle's folder")
    xb.add_argument("--name", default="segan_compact",
                    help="file name stem (default segan_compact: the name the package loads)")
    xb.add_argument("--visible-segmenter", type=Path, default=None, metavar="RUN",
                    help="also this visible-instance segmenter (a run of configs/"
                    "visible_effnet.yaml), used for images without masks")
    xb.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    xb.add_argument("--max-file-mib", type=_positive, default=16,
                    help="split the weights into files of at most this size (default 16)")
    xb.add_argument("--max-total-mib", type=_positive, default=40,
                    help="refuse weights larger than this in all (default 40)")
    xb.set_defaults(func=cmd_export_bundle)

    xo = sub.add_parser("export", help="the network as ONNX (for onnxruntime: segan predict "
                        "--onnx MODEL)")
    xo.add_argument("--onnx", type=Path, required=True, metavar="OUT",
                    help="the .onnx file to write")
    xo.add_argument("--checkpoint", type=Path, default=None,
                    help="a run folder, model.safetensors, checkpoint .pt or bundle folder "
                    "(default: the model bundled with the package)")
    xo.set_defaults(func=cmd_export)

    q = sub.add_parser("quickstart", help="the whole job on the tiny default, offline: "
                       "generate, train, predict, write the overlay picture")
    q.add_argument("out", type=Path, nargs="?", default=Path("out/quickstart"),
                   help="output folder (default out/quickstart; a finished one is reused)")
    q.add_argument("--config", type=Path, default=None,
                   help="training config (default configs/tiny.yaml)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_quickstart)

    dm = sub.add_parser("demo", help="a local web page: click an object, see its full mask, "
                        "painted appearance and occlusion order, remove it and see what it "
                        "hid (Gradio, offline)")
    dm.add_argument("--checkpoint", type=Path, default=None,
                    help="a run folder, its model.safetensors, a checkpoint .pt or a bundle "
                    "folder (default: the model bundled with the package)")
    dm.add_argument("--data", type=Path, default=None,
                    help="a segan-coco dataset whose images are offered as samples")
    dm.add_argument("--split", default="test", help="the samples' split (default test)")
    dm.add_argument("--samples", type=_positive, default=8, help="how many sample images")
    dm.add_argument("--visible-segmenter", type=Path, default=None, metavar="PATH",
                    help="finds the objects of uploaded images (else upload their masks)")
    dm.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    dm.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dm.add_argument("--port", type=int, default=7860)
    dm.add_argument("--completer", type=Path, default=None, metavar="RUN",
                    help="\"Remove\": the background by a trained background completer "
                    "(configs/background_completer.yaml; default diffusion inpainting)")
    dm.set_defaults(func=cmd_demo)

    v = sub.add_parser("predict-visible", help="a copy of a dataset with each object's "
                       "predicted S_V (the paper's training inputs for SeGAN w/ predicted S_V)")
    v.add_argument("data", type=Path, help="dataset folder (segan-coco)")
    v.add_argument("--segmenter", type=Path, required=True, metavar="RUN",
                   help="a run of configs/visible_maskrcnn.yaml")
    v.add_argument("--out", type=Path, required=True, help="the new dataset folder")
    v.add_argument("--split", action="append", default=None,
                   help="split to process; repeat for several (default: all)")
    v.add_argument("--score-threshold", type=float, default=None, metavar="T",
                   help="keep predictions with score >= T (default: the run's)")
    v.add_argument("--device", default=None, choices=["cpu", "cuda"])
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_predict_visible)

    c = sub.add_parser("convert", help="convert an amodal dataset (COCOA, COCOA-cls, D2SA, "
                       "UOAIS, KINS, DYCE release) into segan-coco (docs/formats.md)")
    c.add_argument("src", type=Path, help="the source dataset folder or annotation file")
    c.add_argument("dst", type=Path, help="output folder (must not exist or be empty)")
    c.add_argument("--from", dest="from_format", default="auto", choices=FORMAT_CHOICES,
                   help="source format (default: detected)")
    c.add_argument("--split", action="append", metavar="NAME=FILE",
                   help="a split and its annotation/list file (repeat; default: found in SRC)")
    c.add_argument("--images", action="append", metavar="[SPLIT=]DIR",
                   help="image folder, for every split or for one (repeat)")
    c.add_argument("--link", action="store_true", help="symlink the images instead of copying")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_convert)
    st = sub.add_parser("study", help="the human preference study of Table 3: create it "
                        "from an evaluation's painted crops, serve its page, report the votes")
    ss = st.add_subparsers(dest="study_command", required=True)
    sc = ss.add_parser("create", help="sample objects and pairs; write STUDY/images and "
                       "STUDY/study.sqlite")
    sc.add_argument("--eval", type=Path, required=True,
                    help="an OUT folder of `segan evaluate --save-crops N`")
    sc.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                    help="the baselines compared with segan (default: every painting method "
                    "with crops; segan itself may be listed)")
    sc.add_argument("--pairs", type=_positive, default=50,
                    help="objects per baseline (default 50; the same objects for each)")
    sc.add_argument("--checks", type=_count, default=5,
                    help="attention-check items: ground truth against a broken painting")
    sc.add_argument("--seed", type=_seed, default=0)
    sc.add_argument("--out", type=Path, required=True, help="the study folder to make")
    sc.set_defaults(func=cmd_study)
    sv = ss.add_parser("serve", help="the study page (one vote per participant and pair)")
    sv.add_argument("study", type=Path)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sv.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    sv.set_defaults(func=cmd_study)
    sr = ss.add_parser("report", help="Table 3 from the votes: table3.{md,json,png}")
    sr.add_argument("study", type=Path)
    sr.add_argument("--out", type=Path, default=None, help="folder (default STUDY/report)")
    sr.set_defaults(func=cmd_study)
    return parser


def _error_lines(e: BaseException) -> list[str]:
    """A known error as message lines, each naming its file, record or option."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        return [f"{e.filename}: {e.strerror.lower()}"]
    if isinstance(e, RecursionError):
        return ["input nested too deeply"]
    if type(e).__name__ == "DecompressionBombError":
        return [f"image too large to decode safely: {str(e).splitlines()[0]}"]
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines or [type(e).__name__]


def main(argv: list[str] | None = None) -> int:
    """Run one command. Known errors (a bad file, record, option or value) are printed as one
    line each, ``segan COMMAND: error: ...``, with exit code 2 (no traceback); Ctrl+C exits
    130."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a usage error (one line printed) or --help
        return e.code if isinstance(e.code, int) else 2
    previous = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:
        # warnings as one line each, like the errors (not file:line plus the source line);
        # on a line of their own when a progress bar is drawn. (formatwarning, not
        # showwarning: warnings.catch_warnings(record=True) still records them.)
        from tqdm import tqdm

        newline = "\n" if getattr(tqdm, "_instances", None) else ""
        return f"{newline}segan {args.command}: warning: {message}\n"

    warnings.formatwarning = one_line
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"segan {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RecursionError, _decompression_bomb()) as e:
        for line in _error_lines(e):
            print(f"segan {args.command}: error: {line}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = previous


def _decompression_bomb() -> type[BaseException]:
    from PIL import Image

    return Image.DecompressionBombError


if __name__ == "__main__":
    sys.exit(main())
