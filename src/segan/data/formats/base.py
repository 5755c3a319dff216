"""What every reader of a foreign amodal format hands to the converter, and shared checks.

A reader turns one split of its format into a `SourceSplit`: the split's categories and an
iterator of `SourceImage`s, each with its objects' masks decoded to (H, W) bool arrays in the
image's frame (row 0 at the top), occlusion pairs as indices into the image's objects, and
the files the converter copies (image, appearance, depth). The converter
(`segan.data.formats.convert`) does the rest the same way for every format: checks the image
files, applies our format's invariants (FORMAT.md) and writes segan-coco.

Problems are reported as ``FILE: RECORD: field 'FIELD': PROBLEM`` lines (the convention of
`segan.data.coco`) and raised together as one `DatasetFormatError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segan.data.coco import DatasetFormatError, safe_relative  # noqa: F401 (re-exported)

# Stop collecting after this many problems: a systematic error (a wrong image folder) would
# otherwise decode the whole dataset to list the same problem thousands of times.
MAX_PROBLEMS = 50


class Problems:
    """Collects ``file: record: field: problem`` lines; `raise_if_any` raises them together."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self.lines: list[str] = []
        self.limit = limit

    def add(self, file: str | os.PathLike, record: str | None, fld: str | None,
            problem: str) -> None:
        where = str(file)
        if record:
            where += f": {record}"
        if fld is not None:
            where += f": field '{fld}'"
        self.lines.append(f"{where}: {problem}")
        if len(self.lines) >= self.limit:
            raise DatasetFormatError(self.lines + [f"(stopped after {self.limit} problems)"])

    def __bool__(self) -> bool:
        return bool(self.lines)

    def raise_if_any(self) -> None:
        if self.lines:
            raise DatasetFormatError(self.lines)


@dataclass
class SourceObject:
    """One annotated object of a source image.

    full, visible: (H, W) bool, S_F and S_V as the source encodes them (polygons rasterised
        by pycocotools, PNG masks: nonzero = inside). The converter enforces S_V ⊆ S_F.
    invisible: S_I when the source stores it (only compared with S_F \\ S_V), else None.
    category_id: an id of the split's `categories`.
    source_id: the object's id in the source (kept as the annotation id), or None.
    appearance: the object rendered alone (RGB or RGBA file of the image's size), or None;
        appearance_name: its name in the converted dataset (None: chosen by the converter).
    extra: source fields carried into the annotation unchanged (JSON-ready).
    """

    label: str
    category_id: int
    full: np.ndarray
    visible: np.ndarray
    invisible: np.ndarray | None = None
    source_id: int | None = None
    appearance: Path | None = None
    appearance_name: str | None = None
    appearance_field: str = "appearance_file"  # the source's name for it, for messages
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceImage:
    """One source image and its objects.

    file_name: the image's name relative to its folder in the source (kept, under the split's
        folder, in the converted dataset); path: where the file is.
    pairs: (occluder, occludee) indices into `objects`, when the format has occlusion pairs.
    folder: the source folder that file_name is relative to (the converter refuses a path
        that a symlink leads out of it); None when the reader checked containment itself.
    depth: a 16-bit PNG in millimetres (our format's depth), or None; depth_name: its name
        in the converted dataset (None: chosen by the converter).
    verified: the reader has decoded the image file and taken its size from it already.
    files: other files the image's fields name, copied (or linked) as they are: (field, name
        in the converted dataset, source path), the field one of `PATH_FIELDS` (segan-coco's
        de-occlusion renders: ``image_file`` of ``deocclusion`` records, ``background_file``).
    """

    label: str
    path: Path
    file_name: str
    width: int
    height: int
    objects: list[SourceObject]
    source_id: int | None = None
    pairs: list[tuple[int, int]] = field(default_factory=list)
    depth: Path | None = None
    depth_name: str | None = None
    verified: bool = False
    folder: Path | None = None  # the folder file_name is relative to: path must stay in it
    extra: dict[str, Any] = field(default_factory=dict)
    files: list[tuple[str, str, Path]] = field(default_factory=list)


@dataclass
class SourceSplit:
    """One split of a source dataset, ready to convert.

    files: the annotation files this split was read from (their bytes key the conversion).
    images: called with a `Problems`, yields the split's images; a reader that meets a broken
        image reports it there and skips the image.
    stats: counts the reader keeps while reading (records skipped and why), reported with
        the converter's own.
    dropped_fields: fields of the source that our format does not get, as
        ``"images[].NAME"`` / ``"annotations[].NAME"`` -> how many records have them
        (`segan convert` and the converted copies of evaluate/train say so on the terminal).
    """

    name: str
    files: list[Path]
    categories: dict[int, dict]
    num_images: int
    images: Callable[[Problems], Iterator[SourceImage]]
    has_appearance: bool = False
    has_occlusion: bool = False
    categories_by_name: bool = False  # ids are provisional: renumbered by name over all splits
    keep_names: bool = False  # file names kept as they are (else put under the split's folder)
    stats: dict[str, int] = field(default_factory=dict)
    dropped_fields: dict[str, int] = field(default_factory=dict)


@dataclass
class SplitSpec:
    """A split found in a source before reading it: its name, annotation files and image folder
    (None: looked for next to the annotations)."""

    name: str
    files: list[Path]
    images_dir: Path | None = None


# --------------------------------------------------------------------------------------------
# helpers shared by the readers
# --------------------------------------------------------------------------------------------

_SPLIT_WORDS = (("train", "train"), ("val", "val"), ("test", "test"))


def guess_split_name(stem: str) -> str:
    """A split name from an annotation file's name: the first word that starts with train, val
    or test (``COCO_amodal_train2014`` -> train, ``D2S_amodal_validation`` -> val,
    ``update_test_2020`` -> test), else the name itself made safe."""
    for word in re.split(r"[^a-z0-9]+", stem.lower()):
        for prefix, name in _SPLIT_WORDS:
            if word.startswith(prefix):
                return name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def escape_problem(base: Path, name: str) -> str | None:
    """Why ``base / name`` is not a file inside ``base``: a symlink on the way leads out of it
    (`segan.data.coco.contained`). None when it stays inside."""
    from segan.data.coco import contained

    if contained(base, name) is None:
        return (f"{name!r} leads outside {base} (to {(base / name).resolve()}) through a "
                "symlink")
    return None


def image_problem(path: Path, width: int | None = None, height: int | None = None
                  ) -> tuple[str | None, tuple[int, int] | None]:
    """Open and fully decode an image file. Returns (problem or None, (width, height))."""
    from PIL import Image

    if not path.is_file():
        return f"file not found: {path}", None
    try:
        with Image.open(path) as im:
            im.load()  # a truncated file fails here, not at open
            size = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot read image {path}: {e}", None
    if width is not None and height is not None and size != (width, height):
        return (f"image {path} is {size[0]}x{size[1]} (WxH) but the record says "
                f"{width}x{height}"), size
    return None, size


def image_size_problem(path: Path, width: int, height: int) -> str | None:
    """The header-only check of `image_problem` (the pixels are decoded later)."""
    from PIL import Image

    if not path.is_file():
        return f"file not found: {path}"
    try:
        with Image.open(path) as im:
            size = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot read image {path}: {e}"
    if size != (width, height):
        return f"{path} is {size[0]}x{size[1]} (WxH) but the image is {width}x{height}"
    return None


def read_mask_png(path: Path) -> np.ndarray:
    """A mask image as (H, W) bool: nonzero in any colour channel = inside (an alpha channel
    is ignored unless it is the only one). Raises OSError/ValueError on unreadable files."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., :3] if a.shape[2] >= 3 else a[..., :1]
        return a.any(axis=2)
    return a != 0


def first_existing(candidates: list[Path], name: str) -> Path | None:
    """The first folder of `candidates` that holds the file `name`."""
    for d in candidates:
        if (d / name).is_file():
            return d
    return None
