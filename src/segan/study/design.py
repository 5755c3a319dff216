"""`segan study create`: the design of a preference study from an evaluation's painted crops.

An evaluation run with ``segan evaluate --save-crops N`` leaves OUT/crops/ (`segan.eval.crops`):
per object its input (image crop, dimmed outside S_V), its ground-truth appearance and every
painting method's painted crop. The study samples `pairs` of those objects (the same objects for
every baseline, so the comparisons are paired), and asks of each (object, baseline) "which one
looks more realistic?", ours and the baseline shown left and right in a random order drawn once
per pair. `checks` attention-check items show the ground-truth appearance against a clearly
broken painting (its blocks shuffled and its colours inverted); a participant who picks the
broken one fails. Images are copied to STUDY/images/ under content-hash names, so a page's
addresses do not tell which method painted what.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segan.data.atomic import file_sha256, png_bytes, write_bytes_atomic

from .db import DB_NAME, StudyError, connect, transaction

QUESTION = "Which one looks more realistic?"  # the paper's question (Sec. 5.2)
OURS = "segan"
DEFAULT_BASELINES = ("pix2pix", "context_encoder", "nearest_neighbour")
GROUND_TRUTH, BROKEN = "ground_truth", "broken"
BROKEN_BLOCKS = 4  # the broken painting: the target cut into 4 x 4 blocks, shuffled, inverted


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def load_crops(eval_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results.json, crops/index.json) of an evaluation output folder, with clear errors."""
    from segan.eval.crops import CROPS_FORMAT, CROPS_VERSION
    from segan.eval.report import load_results

    eval_dir = Path(eval_dir)
    try:
        results = load_results(eval_dir)
    except (FileNotFoundError, ValueError) as e:
        raise StudyError(f"{e}; a study is made from `segan evaluate ... --save-crops N "
                         "--out DIR`") from None
    crops = results.get("crops")
    index_file = eval_dir / (crops or {}).get("folder", "crops") / "index.json"
    if not crops or not index_file.is_file():
        raise StudyError(f"{eval_dir} has no painted crops: re-run `segan evaluate` with "
                         "--save-crops N (N objects, e.g. 100)")
    index = json.loads(index_file.read_text())
    if index.get("format") != CROPS_FORMAT or index.get("version") != CROPS_VERSION:
        raise StudyError(f"{index_file}: crops of format {index.get('format')!r} version "
                         f"{index.get('version')!r}, expected {CROPS_FORMAT} {CROPS_VERSION}")
    return results, index


def broken_painting(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clearly broken painting of a (c, c, 3) uint8 appearance: its BROKEN_BLOCKS^2 blocks in
    a shuffled order (never the identity), colours inverted."""
    c = target.shape[0] - target.shape[0] % BROKEN_BLOCKS
    b = c // BROKEN_BLOCKS
    img = target[:c, :c]
    blocks = [img[i * b:(i + 1) * b, j * b:(j + 1) * b]
              for i in range(BROKEN_BLOCKS) for j in range(BROKEN_BLOCKS)]
    order = np.arange(len(blocks))
    while (order == np.arange(len(blocks))).all():
        order = rng.permutation(len(blocks))
    rows = [np.concatenate([blocks[order[i * BROKEN_BLOCKS + j]] for j in range(BROKEN_BLOCKS)],
                           axis=1) for i in range(BROKEN_BLOCKS)]
    return 255 - np.concatenate(rows, axis=0)


class _Images:
    """Copies images into STUDY/images/ under content-hash names."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def add_bytes(self, data: bytes) -> str:
        name = hashlib.sha256(data).hexdigest()[:20] + ".png"
        if not (self.folder / name).exists():
            write_bytes_atomic(self.folder / name, data)
        return name

    def add_file(self, path: Path) -> str:
        if not path.is_file():
            raise StudyError(f"missing crop {path}: the evaluation output is incomplete")
        return self.add_bytes(path.read_bytes())


def create_study(eval_dir: str | os.PathLike, out: str | os.PathLike,
                 baselines: Sequence[str] | None = None, pairs: int = 50, checks: int = 5,
                 seed: int = 0) -> dict[str, Any]:
    """Make STUDY = `out` (must not exist, or be empty): images/ and study.sqlite.

    baselines: the methods compared with ``segan`` (None: every painting method of the crops
    besides segan, in DEFAULT_BASELINES' order first). pairs: objects per baseline (the same
    objects for each). checks: attention-check items. Returns a summary."""
    results, index = load_crops(eval_dir)
    eval_dir, out = Path(eval_dir), Path(out)
    crops_dir = eval_dir / results["crops"]["folder"]
    methods = list(index["methods"])
    if OURS not in methods:
        raise StudyError(f"{eval_dir} has no painted crops of {OURS!r} (methods with crops: "
                         f"{', '.join(methods) or 'none'})")
    if baselines is None:
        others = [m for m in methods if m != OURS]
        baselines = ([m for m in DEFAULT_BASELINES if m in others]
                     + [m for m in others if m not in DEFAULT_BASELINES])
    baselines = [m for m in dict.fromkeys(baselines) if m != OURS]  # segan may be listed
    if not baselines:
        raise StudyError(f"no baseline to compare {OURS} with: {eval_dir} has crops of "
                         f"{', '.join(methods)} only")
    for m in baselines:
        if m not in methods:
            raise StudyError(f"baseline {m!r} has no painted crops in {eval_dir} (methods "
                             f"with crops: {', '.join(methods)})")
    objects = [o["key"] for o in index["objects"]]
    if pairs < 1 or checks < 0:
        raise StudyError(f"--pairs must be >= 1 and --checks >= 0, got {pairs} and {checks}")
    if pairs > len(objects) or checks > len(objects):
        raise StudyError(f"--pairs {pairs} / --checks {checks}: the evaluation saved crops of "
                         f"{len(objects)} objects (re-run it with a larger --save-crops)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")

    rng = np.random.default_rng(seed)
    pair_objects = [objects[i] for i in sorted(rng.choice(len(objects), pairs, replace=False))]
    check_objects = [objects[i] for i in sorted(rng.choice(len(objects), checks, replace=False))]
    out.mkdir(parents=True, exist_ok=True)
    images = _Images(out / "images")
    rows = []
    for baseline in baselines:
        for key in pair_objects:
            ours_img = images.add_file(crops_dir / OURS / f"{key}.png")
            other_img = images.add_file(crops_dir / baseline / f"{key}.png")
            swap = bool(rng.integers(2))
            left, right = ((baseline, other_img), (OURS, ours_img)) if swap else (
                (OURS, ours_img), (baseline, other_img))
            rows.append(("pair", key, baseline, left[0], right[0], left[1], right[1],
                         images.add_file(crops_dir / "input" / f"{key}.png")))
    for key in check_objects:
        target_file = crops_dir / "target" / f"{key}.png"
        truth = images.add_file(target_file)
        broken = images.add_bytes(png_bytes(broken_painting(
            np.asarray(Image.open(target_file).convert("RGB")), rng)))
        swap = bool(rng.integers(2))
        left, right = ((BROKEN, broken), (GROUND_TRUTH, truth)) if swap else (
            (GROUND_TRUTH, truth), (BROKEN, broken))
        rows.append(("check", key, None, left[0], right[0], left[1], right[1],
                     images.add_file(crops_dir / "input" / f"{key}.png")))

    con = connect(out / DB_NAME, create=True)
    try:
        with transaction(con):
            cur = con.execute(
                "INSERT INTO studies (created_at, eval_dir, eval_results_sha256, ours, "
                "baselines, pairs_per_baseline, checks, seed, question) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now(), str(eval_dir.resolve()), file_sha256(eval_dir / "results.json"), OURS,
                 json.dumps(baselines), pairs, checks, seed, QUESTION))
            con.executemany(
                "INSERT INTO items (study_id, kind, object_key, baseline, left_method, "
                "right_method, left_image, right_image, input_image) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(cur.lastrowid, *r) for r in rows])
    finally:
        con.close()
    return {"study": str(out), "pairs": len(rows) - checks, "checks": checks,
            "baselines": baselines, "objects": len(pair_objects)}

