"""The training runs of the paper's tables, one YAML each: configs/tables/NAME.yaml.

`scripts/reproduce_tables.sh` trains every run of the folder at the same time, each for the
same wall-clock minutes on its share of the GPUs. A run's file:

    config: pix2pix.yaml          # its training config, under configs/
    rate: 650                     # steps per minute of a whole H100 (measured or estimated)
    steps:                        # keys set from the run's step budget S
      schedule.stage2_steps: S
    overrides: [data.batch_objects=128]   # fixed KEY=VALUE overrides
    runtime: [data.num_workers=4]         # the GPU machine's settings ...
    smoke: [run.device=cpu]               # ... or, for the script's CPU smoke check, these
    methods: [nearest_neighbour]          # evaluated on this run too (besides its task's own)
    visible_segmenter: true               # this run gives the predicted S_V (one run)
    cache: true                           # its config builds the shared decoded cache (one run)

S = max(1, int(rate x min(1, GPUs / runs) x minutes)): the run's share of the machine, so its
schedule (stages, learning-rate decays) fits the time. A ``steps`` value is an integer
expression of S with ``+ - * //`` (``S - S // 3``). The overrides of a run are: steps, then
``overrides``, then ``runtime`` (or ``smoke``), each a `segan train` KEY=VALUE. Runs are in the
task registry's order (`segan list tasks`), others after them by name; a new baseline's table
run is one more file.

What the scripts evaluate comes from the registries, each method on the run of its task
(`segan list methods`); a run's ``methods`` are evaluated on it instead (nearest neighbour reads
SeGAN's trained backbone). The run with ``visible_segmenter: true`` is the predicted-S_V
evaluation's `--visible-segmenter`; the one with ``cache: true`` builds the decoded cache that
the object-level runs share, with its config's data settings.

    python -m segan.train.table_runs configs/tables --gpus 2 --minutes 5 [--smoke]

prints one line per run, ``NAME|CONFIG|OVERRIDES`` (what the script reads), after checking
that each run's config takes its overrides (`segan.config.load_config`). ``--only NAME``
(repeated) prints those runs alone, and ``--runs N`` says how many runs share the GPUs when
others train beside them (scripts/quality_run.sh's BASELINES beside its arms; default: the
folder's runs, or the --only ones).

    python -m segan.train.table_runs configs/tables --show cache|visible_segmenter|methods

prints the config of the ``cache`` run (after any --config), the name of the
``visible_segmenter`` run, or one line ``METHOD RUN`` per method of a run's ``methods``.
"""

from __future__ import annotations

import argparse
import ast
import operator
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from segan.config import ConfigError, load_config

KEYS = ("config", "rate", "steps", "overrides", "runtime", "smoke", "methods",
        "visible_segmenter", "cache")
ROLES = ("visible_segmenter", "cache")  # true on at most one run of a folder
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv}


@dataclass(frozen=True)
class TableRun:
    """One run of configs/tables/ (module docstring)."""

    name: str
    config: Path
    rate: float
    steps: dict[str, str]
    overrides: tuple[str, ...] = ()
    runtime: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # evaluation methods on this run besides its task's own
    visible_segmenter: bool = False  # the predicted-S_V evaluation's --visible-segmenter
    cache: bool = False  # its config builds the shared decoded cache

    def budget(self, gpus: int, runs: int, minutes: float) -> int:
        """S: the steps this run takes in `minutes` on its share of `gpus` among `runs`."""
        return max(1, int(self.rate * min(1.0, gpus / runs) * minutes))

    def train_overrides(self, budget: int, smoke: bool = False) -> list[str]:
        """Its `segan train` KEY=VALUE overrides for a step budget S = `budget`."""
        steps = [f"{k}={step_expression(v, budget)}" for k, v in self.steps.items()]
        return [*steps, *self.overrides, *(self.smoke if smoke else self.runtime)]


def step_expression(text: str, budget: int) -> int:
    """An integer expression of S (``S - S // 3``) at S = budget."""
    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Name) and node.id == "S":
            return budget
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise ValueError(f"{text!r}: a step count is an integer expression of S with + - * //")

    try:
        tree = ast.parse(str(text), mode="eval")
    except SyntaxError:
        raise ValueError(f"{text!r}: a step count is an integer expression of S with "
                         "+ - * //") from None
    return ev(tree)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ConfigError(f"{where}: expected a list of KEY=VALUE strings, got {value!r}")
    return tuple(value)


def load_table_run(path: str | Path, configs: str | Path | None = None) -> TableRun:
    """One run file; its ``config`` is read under `configs` (default: the folder above the
    file's, configs/ for configs/tables/NAME.yaml). A problem names the file and key."""
    path = Path(path)
    configs = path.parent.parent if configs is None else configs
    d = yaml.safe_load(path.read_text())
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping of {', '.join(KEYS)}")
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: "
                          f"{', '.join(KEYS)})")
    for key in ("config", "rate", "steps"):
        if key not in d:
            raise ConfigError(f"{path}: {key}: missing")
    config = Path(configs) / str(d["config"])
    if not config.is_file():
        raise ConfigError(f"{path}: config: no file {config}")
    rate = d["rate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise ConfigError(f"{path}: rate: must be a number > 0 (steps per minute), got {rate!r}")
    steps = d["steps"]
    if not isinstance(steps, dict) or not steps:
        raise ConfigError(f"{path}: steps: expected a mapping KEY: expression of S")
    for key, expr in steps.items():
        try:
            step_expression(expr, 1)
        except ValueError as e:
            raise ConfigError(f"{path}: steps.{key}: {e}") from None
    methods = d.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise ConfigError(f"{path}: methods: expected a list of method names, got {methods!r}")
    for key in ROLES:
        if not isinstance(d.get(key, False), bool):
            raise ConfigError(f"{path}: {key}: expected true or false, got {d[key]!r}")
    return TableRun(path.stem, config, float(rate), {str(k): str(v) for k, v in steps.items()},
                    *(_strings(d.get(k), f"{path}: {k}") for k in ("overrides", "runtime",
                                                                    "smoke")),
                    methods=tuple(methods), visible_segmenter=d.get("visible_segmenter", False),
                    cache=d.get("cache", False))


def load_table_runs(folder: str | Path, configs: str | Path | None = None) -> list[TableRun]:
    """Every NAME.yaml of `folder`, in the task registry's order, the others after by name."""
    from .registry import task_names

    order = {name: i for i, name in enumerate(task_names(sort=False))}
    runs = [load_table_run(p, configs) for p in sorted(Path(folder).glob("*.yaml"))]
    if not runs:
        raise ConfigError(f"{folder}: no table run (NAME.yaml)")
    for key in ROLES:
        marked = [r.name for r in runs if getattr(r, key)]
        if len(marked) > 1:
            raise ConfigError(f"{folder}: {key}: true on {len(marked)} runs ({', '.join(marked)}); "
                              "one run at most")
    claimed: dict[str, str] = {}
    for r in runs:
        for m in r.methods:
            if m in claimed:
                raise ConfigError(f"{folder}: method {m!r} is in the methods of both "
                                  f"{claimed[m]} and {r.name}")
            claimed[m] = r.name
    return sorted(runs, key=lambda r: (order.get(r.name, len(order)), r.name))


def run_with(runs: list[TableRun], role: str) -> TableRun:
    """The run marked ``role: true`` (`ROLES`)."""
    for r in runs:
        if getattr(r, role):
            return r
    raise ConfigError(f"no table run has {role}: true")


def method_runs(runs: list[TableRun]) -> dict[str, str]:
    """{method: the run it is evaluated on} for the runs' ``methods`` (the other methods take
    the run of their task)."""
    return {m: r.name for r in runs for m in r.methods}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segan.train.table_runs",
                                description="the table runs' training overrides, one line "
                                "per run: NAME|CONFIG|OVERRIDES; or (--show) what the scripts "
                                "evaluate them with")
    p.add_argument("folder", type=Path, help="configs/tables")
    p.add_argument("--gpus", type=int, help="the GPUs the runs share (the training lines)")
    p.add_argument("--minutes", type=float, help="every run's wall-clock minutes (the same)")
    p.add_argument("--smoke", action="store_true", help="the runs' smoke settings")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="the training lines of these runs alone (repeat)")
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help="how many runs share the GPUs (default: the runs printed)")
    p.add_argument("--config", action="append", default=[], metavar="NAME=PATH",
                   help="another training config for run NAME")
    p.add_argument("--show", choices=["cache", "visible_segmenter", "methods"],
                   help="instead of the training lines: the cache run's config, the "
                   "visible-segmenter run's name, or METHOD RUN per run's listed method")
    args = p.parse_args(argv)
    if args.show is None and (args.gpus is None or args.minutes is None):
        p.error("the training lines need --gpus and --minutes")
    if args.show is None and (args.gpus < 1 or args.minutes < 0):
        p.error("--gpus must be >= 1 and --minutes >= 0")
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be >= 1")
    configs = dict(item.split("=", 1) for item in args.config)
    try:
        runs = load_table_runs(args.folder)
        names = {r.name for r in runs}
        for option, asked in (("--config", configs), ("--only", args.only)):
            unknown = sorted(set(asked) - names)
            if unknown:
                raise ConfigError(f"{option}: no table run named {', '.join(unknown)} (the "
                                  f"runs of {args.folder}: {', '.join(sorted(names))})")
        lines = []
        if args.show == "cache":
            run = run_with(runs, "cache")
            lines.append(str(configs.get(run.name, run.config)))
        elif args.show == "visible_segmenter":
            lines.append(run_with(runs, "visible_segmenter").name)
        elif args.show == "methods":
            lines += [f"{m} {r}" for m, r in method_runs(runs).items()]
        else:
            printed = [r for r in runs if not args.only or r.name in args.only]
            sharing = args.runs if args.runs is not None else len(printed)
            for run in printed:
                config = Path(configs.get(run.name, run.config))
                overrides = run.train_overrides(run.budget(args.gpus, sharing, args.minutes),
                                                args.smoke)
                load_config(config, overrides)  # a wrong key fails here, before any training
                lines.append(f"{run.name}|{config}|{' '.join(overrides)}")
    except (ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if lines:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
