"""The typed evaluation config: what one `segan evaluate` (Tables 1, 2 and 5) is asked to do.

    from segan.eval.config import EvaluationConfig
    from segan.eval.evaluate import evaluate
    cfg = EvaluationConfig(checkpoint="runs/tiny", data="data/tiny", out="out/eval",
                           methods=("segan", "visible_as_full"), limit=4)
    results = evaluate(cfg)

Validated when built (a wrong value raises `segan.config.ConfigError` naming the field and
its command-line option), saved as a dict under "evaluation" in results.json (`to_dict`; read
back with `from_dict`), and written there also as the equivalent command line
(`command_line`), the one thing a reader can paste to run the evaluation again. The CLI
(`segan evaluate`) only parses its options into this config; the loop is
`segan.eval.evaluate.evaluate`.

A field's metadata gives its command-line option (none: not a CLI option, e.g. `figure_objects`,
or not recorded in the command, e.g. `cache_dir`, a machine's folder) and whether the command
line always shows it (else only when it differs from the default). This module loads no torch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from segan.config import ConfigError

RESULTS_FORMAT = "segan-eval"  # results.json's "format" and "version"
RESULTS_VERSION = 1
VISIBLE_SOURCES = ("gt", "predicted")
DEVICES = ("auto", "cpu", "cuda")
PREDICTED_VISIBLE_MESSAGE = (
    "--visible predicted needs the visible-instance segmenter: pass --visible-segmenter RUN, a "
    "run of `segan train --config configs/visible_maskrcnn.yaml` (predicted S_V, the paper's "
    "second setting of Tables 1-2)")

PathLike = str | os.PathLike


def _opt(option: str | None, always: bool = False, repeat: bool = False) -> dict[str, Any]:
    """Field metadata: its `segan evaluate` option; always: written into the command line even
    at its default; repeat: a list written as ``--opt a --opt b`` (else ``--opt a b``)."""
    return {"option": option, "always": always, "repeat": repeat}


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """One evaluation of `methods` on DATA's `split`, written to OUT (`segan.eval.evaluate`).

    checkpoint: the reference checkpoint (a run folder, model.safetensors or .pt; see
        `segan.eval.methods.load_run`), used by every method named without its own; None: the
        first method's. Its config is the results' "config".
    data: the dataset folder; out: the folder for results.{json,md} and the figures.
    split: annotations/<split>.json.
    visible: "gt" (the ground-truth S_V is given) or "predicted": S_V from the visible-instance
        segmenter `visible_segmenter` (a run of configs/visible_maskrcnn.yaml), its masks with
        score >= `visible_score_threshold` (None: the run's) matched one to one to the objects
        (`segan.eval.matching`, IoU with the ground-truth S_V >= 0.5); an unmatched object is a
        miss (every IoU 0, no painting, its occlusion pairs wrong).
    methods: names of `segan.eval.methods` ("segan", "visible_as_full", ...), each optionally
        "NAME[@LABEL]=CHECKPOINT" (its own run); NAME@LABEL scores one method several times.
    limit: the first N images of the split only; sample: N images spread evenly over the split
        (every scene represented; deterministic), instead of `limit`.
    device: "auto", "cpu" or "cuda".
    figure_objects: rows of figure_<method>.png.
    index_data: the dataset whose training split the methods that read one use (nearest
        neighbour's index); None: DATA's own. A test set without a training split (an
        out-of-domain one) takes the training data of the compared models here.
    cache_dir: the decoded training cache of methods that read the training split, and another
        format's converted copy (None: the user cache, segan.data.atomic.default_cache_dir).
    data_format: DATA's format ("auto": detected; another than segan-coco is converted once,
        segan.data.formats.resolve_dataset).
    fid_weights, lpips_weights: local weights for FID and LPIPS of the painted objects
        (`segan.eval.perceptual`); None: those rows say "not computed".
    best_worst: k, for figure_<method>_best_worst.png of each method that predicts S_F: its k
        best and k worst occluded objects by full IoU (0: none).
    save_crops: N > 0 writes OUT/crops/: the painted crops of the first N occluded objects with
        an appearance target, for every painting method (`segan.eval.crops`, `segan study`).
    """

    checkpoint: Path | None = field(default=None, metadata=_opt("--checkpoint"))
    data: Path = field(metadata=_opt("--data", always=True))
    split: str = field(default="test", metadata=_opt("--split", always=True))
    visible: str = field(default="gt", metadata=_opt("--visible", always=True))
    out: Path = field(metadata=_opt("--out", always=True))
    methods: tuple[str, ...] = field(default=("segan",),
                                     metadata=_opt("--method", always=True, repeat=True))
    visible_segmenter: Path | None = field(default=None, metadata=_opt("--visible-segmenter"))
    visible_score_threshold: float | None = field(
        default=None, metadata=_opt("--visible-score-threshold"))
    limit: int | None = field(default=None, metadata=_opt("--limit"))
    sample: int | None = field(default=None, metadata=_opt("--sample"))
    device: str = field(default="auto", metadata=_opt("--device", always=True))
    data_format: str = field(default="auto", metadata=_opt("--data-format", always=True))
    fid_weights: Path | None = field(default=None, metadata=_opt("--fid-weights"))
    lpips_weights: tuple[Path, ...] | None = field(default=None,
                                                   metadata=_opt("--lpips-weights"))
    best_worst: int = field(default=4, metadata=_opt("--best-worst", always=True))
    save_crops: int = field(default=0, metadata=_opt("--save-crops"))
    index_data: Path | None = field(default=None, metadata=_opt("--index-data"))
    figure_objects: int = field(default=8, metadata=_opt(None))
    cache_dir: Path | None = field(default=None, metadata=_opt(None))

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("checkpoint", "data", "out", "visible_segmenter", "fid_weights",
                     "index_data", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                put(name, Path(value))
        methods = self.methods
        put("methods", (methods,) if isinstance(methods, str) else tuple(methods))
        lpips = self.lpips_weights
        if lpips is not None:
            put("lpips_weights", tuple(Path(p) for p in (
                [lpips] if isinstance(lpips, str | os.PathLike) else lpips)) or None)
        self.validate()

    def validate(self) -> None:
        """Each field alone and the fields together; a problem names the field (ConfigError).
        Method names are looked up in the registry by `evaluate`, before any loading."""
        for name in ("data", "out"):
            if getattr(self, name) is None:
                _fail(name, "missing (a folder)")
        if self.visible not in VISIBLE_SOURCES:
            _fail("visible", f"must be one of {', '.join(VISIBLE_SOURCES)}, got "
                  f"{self.visible!r}")
        if self.visible == "predicted" and self.visible_segmenter is None:
            _fail("visible_segmenter", PREDICTED_VISIBLE_MESSAGE)
        if self.visible == "gt" and self.visible_segmenter is not None:
            _fail("visible_segmenter", "is only used with --visible predicted")
        t = self.visible_score_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)
                              or not math.isfinite(t)):
            _fail("visible_score_threshold", f"must be a finite number, got {t!r}")
        if self.device not in DEVICES:
            _fail("device", f"must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}, got "
                  f"{self.device!r}")
        for name, least in (("limit", 1), ("sample", 1), ("best_worst", 0), ("save_crops", 0),
                            ("figure_objects", 0)):
            value = getattr(self, name)
            if value is None and name in ("limit", "sample"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                _fail(name, f"must be an integer >= {least}, got {value!r}")
        if self.sample is not None and self.limit is not None:
            _fail("sample", "cannot be given with --limit (one or the other)")
        if not self.split:
            _fail("split", "must name a split (annotations/<split>.json)")
        self.method_specs()

    def method_specs(self) -> dict[str, tuple[str, Path | None]]:
        """label -> (registered method name, its own checkpoint or None), in the given order;
        "segan@plus=RUN" -> {"segan@plus": ("segan", RUN)}."""
        specs: dict[str, tuple[str, Path | None]] = {}
        for spec in self.methods:
            label, path = parse_method_spec(spec)
            if label in specs and specs[label][1] != path:
                _fail("methods", f"method {label!r} is given twice with different checkpoints")
            specs[label] = (label.partition("@")[0], path)
        if not specs:
            _fail("methods", "no method to evaluate")
        return specs

    def command_line(self) -> str:
        """The `segan evaluate` command that runs this evaluation (results.json's "command")."""
        argv = ["segan", "evaluate"]
        for f in fields(self):
            meta = f.metadata
            value = getattr(self, f.name)
            if meta["option"] is None or (not meta["always"] and value == f.default):
                continue
            if isinstance(value, tuple):
                if meta["repeat"]:
                    for v in value:
                        argv += [meta["option"], str(v)]
                else:
                    argv += [meta["option"], *map(str, value)]
            else:
                argv += [meta["option"], str(value)]
        return shlex.join(argv)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings, tuples as lists."""
        def plain(v: Any) -> Any:
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return str(v) if isinstance(v, Path) else v

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationConfig:
        """`to_dict`'s inverse (e.g. results.json's "evaluation"); an unknown key is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown evaluation config key(s) {', '.join(unknown)} (known: "
                              f"{', '.join(sorted(known))})")
        return cls(**d)

    def replace(self, **changes: Any) -> EvaluationConfig:
        """A copy with `changes`, validated again."""
        return dataclasses.replace(self, **changes)


def _fail(name: str, problem: str) -> NoReturn:
    raise ConfigError(f"{name} (--{name.replace('_', '-')}): {problem}")


def parse_method_spec(spec: str) -> tuple[str, Path | None]:
    """"NAME" -> (NAME, None); "NAME=CHECKPOINT" -> (NAME, Path(CHECKPOINT)). NAME may carry a
    label, "segan@plus": the results are keyed by it (`evaluate` looks "segan" up)."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if not name or name.startswith("@") or name.endswith("@") or (sep and not path.strip()):
        raise ValueError(f"--method {spec!r}: expected NAME or NAME=CHECKPOINT")
    return name, Path(path.strip()) if sep else None


def evaluation_defaults(names: Sequence[str]) -> dict[str, Any]:
    """{field: its default} for `names` (e.g. the CLI's options of the amodal task only)."""
    defaults = {f.name: f.default for f in fields(EvaluationConfig)}
    return {n: defaults[n] for n in names}
