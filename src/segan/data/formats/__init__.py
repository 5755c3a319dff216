"""Readers of the standard amodal dataset formats, auto-detection, and conversion to ours.

    from segan.data.formats import convert, detect_format, resolve_dataset
    convert("KINS/", "data/kins")                    # -> a segan-coco dataset folder
    data = resolve_dataset("KINS/")                  # converted once into KINS/cache/..., reused

Formats (one module each; docs/formats.md has the field mappings and what each one lacks):

| name          | module          | what it is                                                    |
|---------------|-----------------|---------------------------------------------------------------|
| segan-coco    | segan_coco      | ours (FORMAT.md)                                              |
| coco-amodal   | coco_amodal     | COCO JSON + visible/invisible masks: COCOA-cls, D2SA, UOAIS   |
| cocoa         | cocoa           | COCOA original: regions per image, depth_constraint          |
| kins          | kins            | KINS, KINS2020                                                |
| dyce          | dyce            | the paper's DYCE release (PNG masks, list files)              |

Every reader has ``NAME``, ``ALIASES``, ``TITLE``, ``HAS_APPEARANCE``, ``HAS_OCCLUSION``,
``LOST`` (what our format will miss), ``discover(src, splits, images) -> [SplitSpec]`` (cheap:
names and files) and ``read(src, spec) -> SourceSplit`` (parses and checks, raising
`DatasetFormatError` that names file, record and field).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from segan.data.atomic import default_cache_dir
from segan.data.coco import FORMAT_NAME, read_json

from . import _cocolike, coco_amodal, cocoa, dyce, kins, segan_coco
from .base import SplitSpec
from .convert import conversion_key, dropped_message, read_summary, write_converted

READERS: dict[str, ModuleType] = {m.NAME: m for m in (segan_coco, coco_amodal, cocoa, kins, dyce)}
ALIASES: dict[str, str] = {a: m.NAME for m in READERS.values() for a in m.ALIASES}
FORMAT_NAMES: tuple[str, ...] = tuple(READERS)
CHOICES: tuple[str, ...] = ("auto", *FORMAT_NAMES, *ALIASES)


def canonical(name: str) -> str:
    """A format name or alias -> the reader's name; ValueError for an unknown one."""
    key = name.lower()
    if key in READERS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown data format {name!r} (known: {', '.join(CHOICES)})")


def _is_ours(folder: Path) -> bool:
    """Our writer puts ``info`` (with ``"format":"segan-coco"``) first: a prefix tells."""
    token = f'"format":"{FORMAT_NAME}"'.encode()
    for f in sorted((folder / "annotations").glob("*.json")):
        with open(f, "rb") as fh:
            if token in fh.read(4096).replace(b" ", b""):
                return True
    return False


def detect_format(src: str | os.PathLike) -> str:
    """The format of a dataset folder or annotation file (a name of `FORMAT_NAMES`)."""
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"no such file or folder: {src}")
    if dyce.looks_like(src):
        return dyce.NAME
    if src.is_dir() and _is_ours(src):
        return segan_coco.NAME
    for f in _cocolike.json_files(src):
        name = _cocolike.sniff(read_json(f))
        if name is not None:
            return name
    raise ValueError(f"{src}: cannot tell its format (no amodal fields found); name it with "
                     f"--data-format / --from (one of {', '.join(FORMAT_NAMES)})")


def _parse_map(values: dict[str, Any] | None) -> dict[str, Path] | None:
    return None if values is None else {k: Path(v) for k, v in values.items()}


def convert(src: str | os.PathLike, dst: str | os.PathLike, fmt: str = "auto",
            splits: dict[str, str | os.PathLike] | None = None,
            images: dict[str, str | os.PathLike] | None = None, link: bool = False,
            progress: bool = True) -> dict[str, Any]:
    """Convert the dataset `src` (folder or annotation file) into a segan-coco folder `dst`.

    fmt: a format name or "auto". splits: ``name -> annotation/list file`` (default: found in
    src, named train/val/test from the file names). images: ``split -> image folder`` (key
    "*" for every split; default: looked for next to the annotations). link: symlink the
    images instead of copying them. Returns the summary written to DST/conversion.json: per
    split the counts of images and objects, what was dropped or fixed and why.
    """
    src = Path(src)
    name = detect_format(src) if fmt == "auto" else canonical(fmt)
    module = READERS[name]
    specs = module.discover(src, _parse_map(splits), _parse_map(images))
    return write_converted(module, src, specs, Path(dst), link=link, progress=progress,
                           key=conversion_key(name, specs))


def resolve_dataset(data: str | os.PathLike, fmt: str = "auto",
                    cache_dir: str | os.PathLike | None = None, build: bool = True,
                    progress: bool = False) -> Path:
    """A segan-coco folder for the dataset `data` in any known format.

    Ours is returned as it is. Any other is converted once (images symlinked) into
    ``CACHE/converted-<format>-<key>/`` where CACHE is `cache_dir` (default: the user cache,
    `segan.data.atomic.default_cache_dir`) and the
    key hashes the source's annotation files (`conversion_key`); later calls reuse it. Source
    fields our format does not get are named on stderr (`convert.dropped_message`).
    build=False raises FileNotFoundError instead of converting (e.g. non-building ranks).
    """
    data = Path(data)
    name = detect_format(data) if fmt == "auto" else canonical(fmt)
    if name == segan_coco.NAME:
        if not data.is_dir():
            raise ValueError(f"{data}: a segan-coco dataset is a folder holding annotations/")
        return data
    module = READERS[name]
    specs: list[SplitSpec] = module.discover(data)
    key = conversion_key(name, specs)
    base = data if data.is_dir() else data.parent
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir(base)
    out = root / f"converted-{name}-{key}"
    summary = read_summary(out)
    if summary is None or summary.get("key") != key:
        if not build:
            raise FileNotFoundError(f"no converted copy of {data} at {out}")
        if out.exists():  # unfinished or stale (the key is in the name): start again
            import shutil

            shutil.rmtree(out)
        summary = write_converted(module, data, specs, out, link=True, progress=progress,
                                  key=key)
    message = dropped_message(summary)
    if message and build:  # said on the terminal, not only in conversion.json (once per node)
        import sys

        print(f"segan: note: {message}", file=sys.stderr)
    return out


def describe(name: str) -> dict[str, Any]:
    """What a format has and lacks (for docs and messages)."""
    m = READERS[canonical(name)]
    return {"name": m.NAME, "aliases": list(m.ALIASES), "title": m.TITLE,
            "has_appearance": m.HAS_APPEARANCE, "has_occlusion": m.HAS_OCCLUSION,
            "lost": list(m.LOST)}


__all__ = ["CHOICES", "FORMAT_NAMES", "READERS", "canonical", "convert", "describe",
           "detect_format", "resolve_dataset"]
