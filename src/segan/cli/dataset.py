"""`segan generate`, `segan stats`, `segan convert`: make, inspect and convert datasets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from segan.cli.common import check_out_file, check_out_folder, positive_int, seed_int, unit_share


def cmd_generate(args: argparse.Namespace) -> int:
    from segan.data.generate import generate
    from segan.data.presets import make_config

    check_out_folder(args.out, "OUT")

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


def add_generate(sub: argparse._SubParsersAction) -> None:
    """`segan generate OUT`."""
    from segan.data.presets import PRESETS

    g = sub.add_parser("generate", help="generate a synthetic occlusion dataset (DYCE-like)")
    g.add_argument("out", help="output folder or fsspec URL (file://, s3://, ...); an "
                   "unfinished one is resumed")
    g.add_argument("--preset", default="tiny", choices=list(PRESETS),
                   help="tiny, dyce (the paper), diverse, diverse_plus, diverse_large, ood "
                        "(docs/dataset.md)")
    g.add_argument("--renderer", default="pyrender", choices=["pyrender", "mitsuba"])
    g.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes (default 1); with --ray, tasks at a time (default: "
                   "the cluster's CPUs)")
    g.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="run the tasks on a Ray cluster: auto (the running one), local (a "
                   "new one on this machine), HOST:PORT or ray://HOST:PORT (docs/scale.md)")
    g.add_argument("--seed", type=seed_int, default=0)
    g.add_argument("--views", type=positive_int, default=None, help="override views per scene")
    g.add_argument("--scenes", type=positive_int, default=None, help="only the first N scenes")
    g.add_argument("--size", type=positive_int, default=None, help="override image size (square)")
    g.add_argument("--chunk", type=positive_int, default=10, help="views per work unit")
    g.add_argument("--randomize", action="store_true",
                   help="randomise camera, image size, lights and photometry of every view "
                   "(segan.data.randomize.DIVERSE_RANDOMIZATION; sizes scale with --size)")
    g.add_argument("--deocclusion", type=unit_share, default=None, metavar="SHARE",
                   help="de-occlusion ground truth for this share (0-1) of the views: each "
                   "rendered again without some occluders, and the room shell alone "
                   "(docs/dataset.md); off by default")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)


def cmd_stats(args: argparse.Namespace) -> int:
    from segan.data.stats import contact_sheet, dataset_stats, format_stats

    sheet = Path(args.sheet) if args.sheet else Path(args.data) / "contact_sheet.png"
    check_out_file(sheet, "--sheet", "contact_sheet.png")
    if args.json:
        check_out_file(args.json, "--json", "stats.json")
    stats = dataset_stats(args.data)
    print(format_stats(stats))
    contact_sheet(args.data, sheet, n=args.rows, seed=args.seed)
    print(f"contact sheet: {sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2))
    return 0


def add_stats(sub: argparse._SubParsersAction) -> None:
    """`segan stats DATA`."""
    s = sub.add_parser("stats", help="dataset statistics (paper section 4.2) and a contact sheet")
    s.add_argument("data", type=Path)
    s.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG path")
    s.add_argument("--rows", type=positive_int, default=8)
    s.add_argument("--seed", type=seed_int, default=0)
    s.add_argument("--json", type=Path, default=None, help="also write the statistics as JSON")
    s.set_defaults(func=cmd_stats)


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

    check_out_folder(args.dst, "DST")
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


def add_convert(sub: argparse._SubParsersAction) -> None:
    """`segan convert SRC DST`."""
    from segan.data.formats import CHOICES as FORMAT_CHOICES

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
