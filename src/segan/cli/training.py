"""`segan train`, `segan list`, `segan plot-losses`: training runs and the registries."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from segan.cli.common import add_data_format, check_out_file, check_out_folder, positive_int


def cmd_train(args: argparse.Namespace) -> int:
    from segan.train import resolve_config, training_loop

    if args.config is None and not args.resume:
        raise ValueError("--config is required (except with --resume on a run that has one)")
    check_out_folder(args.out, "--out")
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


def add_train(sub: argparse._SubParsersAction) -> None:
    """`segan train --config YAML --data DATA --out RUN`."""
    from segan.data.formats import CHOICES as FORMAT_CHOICES

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
    t.add_argument("--stop-at", type=positive_int, default=None, metavar="STEP",
                   help="checkpoint and stop after this step (resume later)")
    t.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop with a checkpoint at the first logging step after this long "
                        "(--resume continues)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    add_data_format(t, FORMAT_CHOICES)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    t.set_defaults(func=cmd_train)


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


def add_list(sub: argparse._SubParsersAction) -> None:
    """`segan list tasks|methods`."""
    ls = sub.add_parser("list", help="the registered training tasks or evaluation methods, one "
                        "a line (what scripts train and evaluate)")
    ls.add_argument("what", choices=["tasks", "methods"])
    ls.add_argument("--pretrained-backbone", action="store_true",
                    help="tasks: only those whose network --backbone-weights initialises")
    ls.add_argument("--all", action="store_true",
                    help="methods: also those outside the compared methods (the oracle)")
    ls.set_defaults(func=cmd_list)


def cmd_plot_losses(args: argparse.Namespace) -> int:
    from segan.train.plots import plot_losses

    if args.out:
        check_out_file(args.out, "--out", "losses.png")
    out = plot_losses(Path(args.run) / "stats.jsonl", args.out or Path(args.run) / "losses.png")
    print(f"loss curves: {out}")
    return 0


def add_plot_losses(sub: argparse._SubParsersAction) -> None:
    """`segan plot-losses RUN`."""
    p = sub.add_parser("plot-losses", help="plot a training run's loss curves (stats.jsonl)")
    p.add_argument("run", type=Path, help="a run folder of `segan train`")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default RUN/losses.png)")
    p.set_defaults(func=cmd_plot_losses)
