"""The `segan` command: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import argparse
import sys
import warnings

from segan.cli import dataset, evaluation, export, prediction, study, training
from segan.cli.common import Parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The commands, in the order `segan --help` lists them; each is added by its group's
    module (segan.cli.dataset, .training, .evaluation, .prediction, .export, .study)."""
    parser = Parser(prog="segan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dataset.add_generate(sub)
    dataset.add_stats(sub)
    training.add_train(sub)
    training.add_list(sub)
    training.add_plot_losses(sub)
    evaluation.add_evaluate(sub)
    evaluation.add_report(sub)
    prediction.add_predict(sub)
    prediction.add_deocclude(sub)
    evaluation.add_evaluate_deocclusion(sub)
    export.add_export_bundle(sub)
    export.add_export(sub)
    prediction.add_quickstart(sub)
    prediction.add_demo(sub)
    evaluation.add_predict_visible(sub)
    dataset.add_convert(sub)
    study.add_study(sub)
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

