"""The one reader and writer of the amodal dataset format (segan-coco v1, see FORMAT.md).

A split is a COCO instance JSON file whose annotations carry the amodal fields of COCOA-cls,
D2SA and UOAIS:

- ``segmentation``: the FULL (amodal) mask S_F, compressed RLE with ``counts`` as str;
- ``visible_mask``: S_V, the pixels where the object is seen; ``invisible_mask``: S_I = S_F \\ S_V;
- ``bbox``/``area`` of S_F, ``visible_bbox`` of S_V, ``occlude_rate`` = |S_I| / |S_F|.

Masks in memory are ``bool`` arrays of shape (H, W), row-major, row 0 at the top. Boxes are
COCO ``[x, y, w, h]`` in pixels. Everything pixel-level goes through pycocotools so that COCO
tools read our files unchanged.

The reader also accepts the field names of other amodal datasets (``occluded_rate``, KINS
``inmodal_seg``/``inmodal_bbox``, KINS2020 ``a_segm``/``i_segm``/``a_bbox``/``i_bbox``/
``a_area``, UOAIS ``occluded_mask``) and polygons wherever RLE is allowed; it hands out
annotations under the canonical names with every mask as compressed RLE.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from segan.data.atomic import write_bytes_atomic

FORMAT_NAME = "segan-coco"
FORMAT_VERSION = 1

# Paper, section 4.2: "by visible we mean having at least 10 visible pixels".
MIN_VISIBLE_PIXELS = 10

# Checks on masks given as RLE are exact (up to float rounding); masks given as polygons are
# rasterised here, so their stored area/bbox/rate (usually computed from the polygon) and the
# visible-inside-full relation only hold up to rasterisation error.
RATE_TOL = 1e-3
BBOX_TOL_RLE = 1.0  # px; allows the w = x1 - x0 vs x1 - x0 + 1 conventions of other tools
BBOX_TOL_POLY = 2.0  # px
AREA_REL_TOL_POLY = 0.1
AREA_ABS_TOL_POLY = 10.0  # px
RATE_TOL_POLY = 0.05
SUBSET_REL_TOL_POLY = 0.05  # share of |S_V| (or |S_F|) that may disagree after rasterisation

# Other datasets' names -> canonical name. The canonical name wins where both are present.
ANNOTATION_ALIASES: dict[str, tuple[str, ...]] = {
    "segmentation": ("a_segm",),  # KINS2020 amodal
    "visible_mask": ("inmodal_seg", "i_segm"),  # KINS, KINS2020 inmodal
    "visible_bbox": ("inmodal_bbox", "i_bbox"),  # KINS, KINS2020
    "invisible_mask": ("occluded_mask",),  # UOAIS
    "bbox": ("a_bbox",),  # KINS2020
    "area": ("a_area",),  # KINS2020
    "occlude_rate": ("occluded_rate",),  # D2SA, UOAIS
}

MASK_FIELDS = ("segmentation", "visible_mask", "invisible_mask")


class DatasetFormatError(ValueError):
    """A dataset file breaks the format. The message names the file, the record and the field.

    ``errors`` holds every problem found (one line each); the message shows the first ones.
    """

    def __init__(self, errors: Sequence[str] | str, max_shown: int = 20):
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        shown = self.errors[:max_shown]
        msg = "\n".join(shown)
        if len(self.errors) > max_shown:
            msg += f"\n... and {len(self.errors) - max_shown} more problems"
        super().__init__(msg)


# --------------------------------------------------------------------------------------------
# Paths: every file a dataset names stays inside the dataset (FORMAT.md)
# --------------------------------------------------------------------------------------------

# The folder each path field is relative to.
PATH_FIELDS: dict[str, str] = {"file_name": "images", "depth_file": "depth",
                               "appearance_file": "appearance",
                               # de-occlusion ground truth (docs/dataset.md)
                               "image_file": "deocclusion", "background_file": "deocclusion"}


_DRIVE = re.compile(r"[A-Za-z]:")  # C:/x, C:x: absolute (or drive-relative) on Windows


def safe_relative(name: Any) -> str | None:
    """``name`` as a clean relative POSIX path, or None when it is not a str, empty, absolute
    (``/x``, ``C:/x``, ``\\\\host``) or leaves its folder (``..``)."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        return None
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or _DRIVE.match(name):
        return None
    return p.as_posix()


def path_problem(name: Any, folder: str) -> str | None:
    """Why ``name`` is not a usable path inside ``folder``/ (None when it is)."""
    if safe_relative(name) is None:
        return (f"must be a relative path inside {folder}/ (no absolute path, no '..'), "
                f"got {name!r}")
    return None


def contained(base: Path, name: str, also: Sequence[Path] = ()) -> Path | None:
    """``base / name`` when it resolves (symlinks followed) inside ``base`` or one of the
    folders ``also`` (already resolved); None when it leads out."""
    path = base / name
    real = path.resolve()
    for b in (base.resolve(), *also):
        if real == b or real.is_relative_to(b):
            return path
    return None


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a (H, W) mask (any dtype; nonzero = inside).

    Returns ``{"size": [H, W], "counts": str}`` (str, not bytes, so that it is JSON-ready).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode_mask: expected a (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def to_rle(seg: Any, height: int, width: int) -> dict:
    """Any COCO segmentation (compressed RLE, uncompressed RLE, polygons) -> compressed RLE.

    Raises ``ValueError`` when ``seg`` is none of these or its size is not (height, width).
    """
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise ValueError("an RLE needs 'size' and 'counts'")
        size = seg["size"]
        if not (isinstance(size, list | tuple) and len(size) == 2):
            raise ValueError(f"RLE 'size' must be [height, width], got {size!r}")
        if [int(size[0]), int(size[1])] != [height, width]:
            raise ValueError(
                f"mask size {int(size[0])}x{int(size[1])} (HxW) differs from the image size "
                f"{height}x{width}"
            )
        counts = seg["counts"]
        if isinstance(counts, str):
            return {"size": [height, width], "counts": counts}
        if isinstance(counts, bytes):
            return {"size": [height, width], "counts": counts.decode("ascii")}
        if isinstance(counts, list):
            _check_uncompressed_counts(counts, height * width)
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
            return {"size": [height, width], "counts": rle["counts"].decode()}
        raise ValueError(f"RLE 'counts' must be a str or a list, got {type(counts).__name__}")
    if isinstance(seg, list):
        _check_polygons(seg)
        rles = mask_utils.frPyObjects([[float(v) for v in p] for p in seg], height, width)
        rle = mask_utils.merge(rles)
        return {"size": [height, width], "counts": rle["counts"].decode()}
    raise ValueError(f"expected an RLE dict or a list of polygons, got {type(seg).__name__}")


def image_rgb(im: Any) -> np.ndarray:
    """A PIL image -> (H, W, 3) uint8 RGB. 16-bit (and 32-bit integer) grey is scaled to 8 bit
    (65535 -> 255), where PIL's own ``convert("RGB")`` clips every value above 255 to white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im).astype(np.int64)
        grey = (np.clip(a, 0, 65535) * 255 + 32767) // 65535
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def decode_mask(seg: Any, height: int, width: int, check: bool = False) -> np.ndarray:
    """Decode a COCO segmentation (compressed RLE, uncompressed RLE or polygons).

    Returns a (height, width) bool array. Raises ``ValueError`` on a malformed segmentation
    or one of another size. check: also check a compressed RLE's counts (alphabet, runs
    summing to height * width) before pycocotools decodes them, for masks that did not come
    through a validated dataset file (the decoder trusts them: garbage or a crash otherwise).
    """
    rle = to_rle(seg, height, width)
    if check:
        problem = _rle_string_problems([rle["counts"]], [height * width])[0]
        if problem is not None:
            raise ValueError(problem)
    return mask_utils.decode(rle).astype(bool)


def decode_masks(rles: Sequence[dict], height: int, width: int) -> np.ndarray:
    """Decode several compressed RLEs of one image in one pycocotools call.

    Returns (N, height, width) bool; N may be 0.
    """
    if not rles:
        return np.zeros((0, height, width), bool)
    m = mask_utils.decode(list(rles))  # (H, W, N) uint8, Fortran order
    return np.ascontiguousarray(m.transpose(2, 0, 1)).astype(bool)


def mask_bbox(mask: np.ndarray) -> list[int]:
    """COCO box ``[x, y, w, h]`` (ints, as ``pycocotools.mask.toBbox``) of a (H, W) mask.

    An empty mask gives ``[0, 0, 0, 0]``.
    """
    mask = np.asarray(mask) != 0
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _check_uncompressed_counts(counts: list, total: int) -> None:
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise ValueError("uncompressed RLE 'counts' must be non-negative ints")
    if sum(counts) != total:
        raise ValueError(f"RLE run lengths sum to {sum(counts)}, not height*width = {total}")


def _check_polygons(polys: list) -> None:
    if not polys:
        raise ValueError("empty polygon list")
    for p in polys:
        if not isinstance(p, list) or not all(_is_number(v) for v in p):
            raise ValueError("a polygon must be a flat list of numbers [x0, y0, x1, y1, ...]")
        # pycocotools reads a 4-number list as a box, not a polygon.
        if len(p) < 6 or len(p) % 2:
            raise ValueError(f"a polygon needs an even number >= 6 of coordinates, got {len(p)}")


def _rle_string_problems(strings: Sequence[str], sizes: Sequence[int]) -> list[str | None]:
    """Validate compressed RLE count strings in bulk, without trusting the C decoder.

    pycocotools' decoder writes past its buffer when the runs sum to more than H*W, so runs
    are decoded here (vectorised, mirroring ``rleFrString``) and checked: alphabet, no
    truncated number, no negative run, runs summing to H*W. Strings are processed in chunks
    of about 256k characters so that the work arrays stay in cache.
    Returns a problem description or None per string.
    """
    n = len(strings)
    out: list[str | None] = [None] * n
    strings = list(strings)
    for i, s in enumerate(strings):
        if not s.isascii():
            out[i] = "RLE 'counts' has characters outside the RLE alphabet"
            strings[i] = ""
    lens = np.fromiter((len(s) for s in strings), np.int64, n)
    sizes_arr = np.asarray(sizes, np.int64)
    bounds = np.searchsorted(np.cumsum(lens), np.arange(1, lens.sum() // _CHUNK + 1) * _CHUNK)
    edges = np.unique(np.concatenate([[0], bounds + 1, [n]]).clip(0, n))
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        problems = _rle_chunk_problems(strings[a:b], lens[a:b], sizes_arr[a:b])
        for i, p in enumerate(problems):
            if p is not None and out[a + i] is None:
                out[a + i] = p
    return out


_CHUNK = 1 << 18


def _rle_chunk_problems(
    strings: list[str], lens: np.ndarray, sizes: np.ndarray
) -> list[str | None]:
    n = len(strings)
    bad_char = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    too_long = np.zeros(n, bool)
    negative = np.zeros(n, bool)
    totals = np.zeros(n, np.int64)
    buf = np.frombuffer("".join(strings).encode("ascii"), np.uint8)
    if buf.size:
        str_end = (np.cumsum(lens) - 1).astype(np.int32)  # last char (the previous if empty)
        c = buf - np.uint8(48)  # wraps for chars below '0': caught as bad chars
        bad = c > 63
        if bad.any():
            bad_char[np.searchsorted(str_end, np.flatnonzero(bad))] = True
            c[bad] = 0
        is_end = (c & 0x20) == 0
        nonempty = lens > 0
        truncated[nonempty] = ~is_end[str_end[nonempty]]
        is_end[str_end[nonempty]] = True  # a number never crosses the end of its string
        end_pos = np.flatnonzero(is_end).astype(np.int32)
        # numbers per string: how many number ends lie at or before each string's last char
        per_str = np.diff(np.searchsorted(end_pos, str_end, "right"), prepend=0)
        num_sid = np.repeat(np.arange(n, dtype=np.int32), per_str)
        start_pos = np.empty_like(end_pos)
        start_pos[0] = 0
        start_pos[1:] = end_pos[:-1] + 1
        nchars = end_pos - start_pos + 1
        long_ = nchars > 7  # > 35 bits: no run of a real mask
        if long_.any():
            too_long[num_sid[long_]] = True
            nchars = np.minimum(nchars, 7)
        x = (c[start_pos] & 0x1F).astype(np.int64)
        sel = np.flatnonzero(nchars > 1)
        for k in range(1, int(nchars.max())):
            x[sel] += (c[start_pos[sel] + k].astype(np.int64) & 0x1F) << (5 * k)
            sel = sel[nchars[sel] > k + 1]
        neg = np.flatnonzero(c[end_pos] & 0x10)
        x[neg] -= np.int64(1) << (5 * nchars[neg])

        # Runs after the third are stored as differences to the run two before: undo with a
        # cumulative sum along each (string, parity) chain; run 0 is alone, chains start at
        # runs 1 and 2. A global cumsum per parity, less its value where each string begins.
        first = np.cumsum(per_str) - per_str  # index of each string's run 0
        runs = x
        for parity in (1, 2):
            cnt = (np.maximum(per_str - parity, 0) + 1) // 2  # runs of this chain, per string
            if not cnt.any():
                continue
            before = np.cumsum(cnt) - cnt  # chain elements of earlier strings
            idx = np.repeat(first + parity - 2 * before, cnt) + 2 * np.arange(cnt.sum())
            cs = np.cumsum(x[idx])
            base = np.where(before > 0, cs[np.maximum(before - 1, 0)], 0)
            runs[idx] = cs - np.repeat(base, cnt)
        negative[num_sid[runs < 0]] = True
        totals = np.bincount(num_sid, weights=runs, minlength=n).astype(np.int64)

    out: list[str | None] = [None] * n
    for i in np.flatnonzero(bad_char | truncated | too_long | negative | (totals != sizes)):
        if bad_char[i]:
            out[i] = "RLE 'counts' has characters outside the RLE alphabet"
        elif truncated[i]:
            out[i] = "RLE 'counts' is truncated (it ends inside a number)"
        elif too_long[i]:
            out[i] = "RLE 'counts' holds a number too long to be a run length"
        elif negative[i]:
            out[i] = "RLE 'counts' decodes to a negative run length"
        else:
            out[i] = f"RLE run lengths sum to {totals[i]}, not height*width = {sizes[i]}"
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def make_annotation(
    ann_id: int,
    image_id: int,
    category_id: int,
    full_mask: np.ndarray,
    visible_mask: np.ndarray,
    appearance_file: str | None = None,
    *,
    instance_id: int | None = None,
    min_visible: int = MIN_VISIBLE_PIXELS,
) -> dict:
    """One annotation record from the object's masks.

    full_mask:    (H, W) bool, S_F, the whole object as if nothing hid it.
    visible_mask: (H, W) bool, S_V, must lie inside S_F and have >= ``min_visible`` pixels
                  (the writer's side of the "fewer than 10 visible pixels" invariant).
    instance_id:  optional scene-level object id, written as the extra field ``instance_id``
                  (lets statistics count distinct objects per scene).

    Raises ``ValueError`` when the shapes differ, S_V is not inside S_F, or S_V is too small.
    """
    full = np.asarray(full_mask) != 0
    vis = np.asarray(visible_mask) != 0
    if full.ndim != 2 or full.shape != vis.shape:
        raise ValueError(
            f"annotation {ann_id}: full mask {full.shape} and visible mask {vis.shape} must be "
            "(H, W) of the same size"
        )
    outside = int(np.count_nonzero(vis & ~full))
    if outside:
        raise ValueError(f"annotation {ann_id}: {outside} visible pixels lie outside the full mask")
    n_vis = int(np.count_nonzero(vis))
    if n_vis < min_visible:
        raise ValueError(
            f"annotation {ann_id}: {n_vis} visible pixels; objects with fewer than "
            f"{min_visible} are not annotated"
        )
    invisible = full & ~vis
    area = int(np.count_nonzero(full))
    ann: dict[str, Any] = {
        "id": int(ann_id),
        "image_id": int(image_id),
        "category_id": int(category_id),
        "iscrowd": 0,
        "segmentation": encode_mask(full),
        "bbox": mask_bbox(full),
        "area": area,
        "visible_mask": encode_mask(vis),
        "visible_bbox": mask_bbox(vis),
        "invisible_mask": encode_mask(invisible),
        "occlude_rate": round(float(np.count_nonzero(invisible)) / area, 6) if area else 0.0,
    }
    if appearance_file is not None:
        ann["appearance_file"] = str(appearance_file)
    if instance_id is not None:
        ann["instance_id"] = int(instance_id)
    return ann


def make_image(
    image_id: int,
    file_name: str,
    width: int,
    height: int,
    scene_id: str | None = None,
    depth_file: str | None = None,
    occlusion: Iterable[Sequence[int]] | None = None,
) -> dict:
    """One image record. ``occlusion``: pairs ``(occluder_ann_id, occludee_ann_id)``."""
    img: dict[str, Any] = {
        "id": int(image_id),
        "file_name": str(file_name),
        "width": int(width),
        "height": int(height),
    }
    if scene_id is not None:
        img["scene_id"] = str(scene_id)
    if depth_file is not None:
        img["depth_file"] = str(depth_file)
    if occlusion is not None:
        pairs = [[int(a), int(b)] for a, b in occlusion]
        for a, b in pairs:
            if a == b:
                raise ValueError(f"image {image_id}: occlusion pair [{a}, {b}] is one object")
        img["occlusion"] = pairs
    return img


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON so that ``path`` is either the old file or the whole new one.

    The JSON goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is fsynced, then renamed over ``path``; on any failure the temporary file is
    removed and ``path`` is left untouched. numpy scalars/arrays are converted; NaN is refused.
    """
    data = json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False)
    write_bytes_atomic(path, data.encode("utf-8"))
    return Path(path)


def write_annotations(
    path: str | os.PathLike,
    images: Sequence[dict],
    annotations: Sequence[dict],
    categories: Sequence[dict],
    info: dict | None = None,
    check: bool = True,
) -> Path:
    """Write one split file atomically. With ``check`` it is first validated exactly as
    ``load_annotations`` would (raising ``DatasetFormatError``, nothing written)."""
    data = encode_annotations(str(path), images, annotations, categories, info, check)
    write_bytes_atomic(path, data)
    return Path(path)


def encode_annotations(
    name: str,
    images: Sequence[dict],
    annotations: Sequence[dict],
    categories: Sequence[dict],
    info: dict | None = None,
    check: bool = True,
) -> bytes:
    """The bytes ``write_annotations`` writes (for stores other than a local folder);
    ``name`` is the file named in validation errors."""
    info = dict(info or {})
    info.setdefault("description", "segan amodal dataset")
    info.setdefault("format", FORMAT_NAME)
    info.setdefault("format_version", FORMAT_VERSION)
    obj = {
        "info": info,
        "licenses": [],
        "images": list(images),
        "annotations": list(annotations),
        "categories": list(categories),
    }
    if check:
        _Validator(name, obj, check=True).run()
    return json.dumps(obj, separators=(",", ":"), default=_json_default,
                      allow_nan=False).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class AmodalDataset:
    """One loaded split. Annotations use the canonical field names; masks are compressed RLE.

    images:      image id -> image record, in file order.
    annotations: image id -> that image's annotation records, in file order (every image has
                 an entry, possibly empty).
    categories:  category id -> category record.
    root:        dataset folder holding ``images/``, ``appearance/``, ``depth/`` (or None).
    """

    images: dict[int, dict]
    annotations: dict[int, list[dict]]
    categories: dict[int, dict]
    info: dict = field(default_factory=dict)
    path: Path | None = None
    root: Path | None = None
    _by_id: dict[int, dict] = field(default_factory=dict, repr=False)
    _links: list[Path] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self._by_id:
            self._by_id = {a["id"]: a for anns in self.annotations.values() for a in anns}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_ids(self) -> list[int]:
        return list(self.images)

    @property
    def num_annotations(self) -> int:
        return len(self._by_id)

    def iter_annotations(self) -> Iterator[dict]:
        for anns in self.annotations.values():
            yield from anns

    def annotation(self, ann_id: int) -> dict:
        return self._by_id[ann_id]

    def category_name(self, category_id: int) -> str:
        return self.categories[category_id]["name"]

    def occlusion_pairs(self, image_id: int) -> list[tuple[int, int]]:
        """(occluder_ann_id, occludee_ann_id) pairs of one image; [] when not given."""
        return [(int(a), int(b)) for a, b in self.images[image_id].get("occlusion") or []]

    # --- masks ---

    def _ann(self, ann: dict | int) -> dict:
        return ann if isinstance(ann, dict) else self._by_id[int(ann)]

    def _hw(self, ann: dict) -> tuple[int, int]:
        img = self.images[ann["image_id"]]
        return img["height"], img["width"]

    def full_mask(self, ann: dict | int) -> np.ndarray:
        """S_F of an annotation (record or id), (H, W) bool."""
        ann = self._ann(ann)
        return decode_mask(ann["segmentation"], *self._hw(ann))

    def visible_mask(self, ann: dict | int) -> np.ndarray:
        """S_V, (H, W) bool."""
        ann = self._ann(ann)
        return decode_mask(ann["visible_mask"], *self._hw(ann))

    def invisible_mask(self, ann: dict | int) -> np.ndarray:
        """S_I, (H, W) bool: the stored ``invisible_mask``, else S_F \\ S_V."""
        ann = self._ann(ann)
        if ann.get("invisible_mask") is not None:
            return decode_mask(ann["invisible_mask"], *self._hw(ann))
        return self.full_mask(ann) & ~self.visible_mask(ann)

    def image_masks(self, image_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(full, visible, invisible) masks of all annotations of an image, each (N, H, W) bool
        in the order of ``annotations[image_id]``; decoded in bulk, invisible = full & ~visible."""
        img = self.images[image_id]
        h, w = img["height"], img["width"]
        anns = self.annotations[image_id]
        full = decode_masks([a["segmentation"] for a in anns], h, w)
        vis = decode_masks([a["visible_mask"] for a in anns], h, w)
        return full, vis, full & ~vis

    # --- files ---

    def _file(self, record: str, fld: str, name: Any) -> Path:
        """The file a path field names, inside its folder of the dataset (FORMAT.md): an
        absolute path, a ``..`` or a symlink that leads out of the dataset raises
        `DatasetFormatError` naming the file, record and field."""
        if self.root is None:
            raise ValueError("this dataset has no root folder; pass root= to load_annotations")
        folder = PATH_FIELDS[fld]
        where = f"{self.path}: {record}: field '{fld}'"
        problem = path_problem(name, folder)
        if problem:
            raise DatasetFormatError(f"{where}: {problem}")
        path = contained(self.root / folder, safe_relative(name) or "", self._link_roots())
        if path is None:
            raise DatasetFormatError(
                f"{where}: {name!r} leads outside the dataset (to "
                f"{(self.root / folder / name).resolve()}) through a symlink")
        return path

    def _link_roots(self) -> list[Path]:
        """Folders outside the root whose files a converted copy links to (its
        conversion.json, written by `segan convert --link` and the format cache)."""
        if self._links is None:
            self._links = []
            try:
                summary = json.loads((Path(self.root or ".") / "conversion.json").read_text())
            except (OSError, ValueError):
                summary = None
            if isinstance(summary, dict) and summary.get("link_images"):
                roots = summary.get("link_roots")
                if not isinstance(roots, list):  # written before link_roots: the source
                    src = Path(str(summary.get("source", "")))
                    roots = [src if src.is_dir() else src.parent.parent
                             if src.parent.name == "annotations" else src.parent]
                self._links = [Path(str(r)).resolve() for r in roots
                               if len(Path(str(r)).resolve().parts) > 1]  # never all of /
        return self._links

    def image_path(self, image_id: int) -> Path:
        return self._file(f"image {image_id}", "file_name", self.images[image_id]["file_name"])

    def _read_file(self, record: str, fld: str, path: Path, hw: tuple[int, int],
                   read: Any) -> np.ndarray:
        """read(PIL image) of the file `path` of a record, which must be hw (H, W) in size: a
        missing, unreadable or wrongly sized file raises `DatasetFormatError` naming the
        annotation file, the record and the field."""
        from PIL import Image

        where = f"{self.path}: {record}: field '{fld}': {path}"
        try:
            with Image.open(path) as im:
                size = (im.height, im.width)
                if size != tuple(hw):
                    raise DatasetFormatError(
                        f"{where} is {size[1]}x{size[0]} (WxH) but the record says "
                        f"{hw[1]}x{hw[0]}")
                return read(im)
        except FileNotFoundError:
            raise DatasetFormatError(f"{where}: no such file") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            if isinstance(e, DatasetFormatError):
                raise
            raise DatasetFormatError(f"{where}: not a readable image ({e})") from None

    def missing_files(self, image_ids: Sequence[int] | None = None) -> list[str]:
        """One line per file that a record of `image_ids` (default: all) names but that does
        not exist (``file_name``, ``depth_file``, ``appearance_file``), naming the annotation
        file, the record and the field; a path leaving the dataset raises as in `_file`."""
        out = []
        for iid in self.image_ids if image_ids is None else image_ids:
            found = [(f"image {iid}", "file_name", self.image_path(iid)),
                     (f"image {iid}", "depth_file", self.depth_path(iid))]
            found += [(f"annotation {a['id']}", "appearance_file", self.appearance_path(a))
                      for a in self.annotations[iid]]
            out += [f"{self.path}: {record}: field '{fld}': {p}: no such file"
                    for record, fld, p in found if p is not None and not p.is_file()]
        return out

    def _hw_of(self, image_id: int) -> tuple[int, int]:
        img = self.images[image_id]
        return img["height"], img["width"]

    def load_image(self, image_id: int) -> np.ndarray:
        """The RGB image, (H, W, 3) uint8 (16-bit grey scaled: `image_rgb`)."""
        return self._read_file(f"image {image_id}", "file_name", self.image_path(image_id),
                               self._hw_of(image_id), image_rgb)

    def depth_path(self, image_id: int) -> Path | None:
        name = self.images[image_id].get("depth_file")
        return None if name is None else self._file(f"image {image_id}", "depth_file", name)

    def load_depth(self, image_id: int) -> np.ndarray | None:
        """Depth in metres, (H, W) float32, 0 where no surface; None when the image has none."""

        p = self.depth_path(image_id)
        if p is None:
            return None
        return self._read_file(f"image {image_id}", "depth_file", p, self._hw_of(image_id),
                               lambda im: np.asarray(im, dtype=np.float32) / 1000.0)  # mm

    def deocclusion(self, image_id: int) -> list[dict]:
        """The image's de-occlusion records (docs/dataset.md), [] when it has none: each
        ``{"removed": [ann_id, ...], "image_file": str, "revealed": [{"id": ann_id,
        "visible_mask": RLE}, ...]}`` (masks as compressed RLE after reading)."""
        return list(self.images[image_id].get("deocclusion") or [])

    def deoccluded_path(self, image_id: int, k: int) -> Path:
        name = self.deocclusion(image_id)[k]["image_file"]
        return self._file(f"image {image_id}: deocclusion[{k}]", "image_file", name)

    def load_deoccluded(self, image_id: int, k: int) -> np.ndarray:
        """The view without record k's removed objects, (H, W, 3) uint8 RGB."""
        from PIL import Image

        with Image.open(self.deoccluded_path(image_id, k)) as im:
            return np.asarray(im.convert("RGB"))

    def revealed_masks(self, image_id: int, k: int) -> dict[int, np.ndarray]:
        """Annotation id -> new visible mask S_V' (H, W) bool of every remaining object of
        the image once record k's objects are removed (S_V where it does not change);
        removed objects are absent."""
        rec = self.deocclusion(image_id)[k]
        img = self.images[image_id]
        h, w = img["height"], img["width"]
        removed = set(rec["removed"])
        out = {a["id"]: self.visible_mask(a) for a in self.annotations[image_id]
               if a["id"] not in removed}
        for r in rec["revealed"]:
            out[r["id"]] = decode_mask(r["visible_mask"], h, w)
        return out

    def background_path(self, image_id: int) -> Path | None:
        name = self.images[image_id].get("background_file")
        return None if name is None else self._file(f"image {image_id}", "background_file",
                                                    name)

    def load_background(self, image_id: int) -> np.ndarray | None:
        """The room shell alone in this view, (H, W, 3) uint8; None when not given."""
        from PIL import Image

        p = self.background_path(image_id)
        if p is None:
            return None
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))

    def appearance_path(self, ann: dict | int) -> Path | None:
        ann = self._ann(ann)
        name = ann.get("appearance_file")
        if name is None:
            return None
        return self._file(f"annotation {ann['id']}", "appearance_file", name)

    def load_appearance(self, ann: dict | int) -> np.ndarray | None:
        """The object alone, (H, W, 4) uint8 RGBA with alpha = S_F; None when not given."""
        p = self.appearance_path(ann)
        if p is None:
            return None
        ann = self._ann(ann)
        return self._read_file(f"annotation {ann['id']}", "appearance_file", p,
                               self._hw_of(ann["image_id"]),
                               lambda im: np.asarray(im.convert("RGBA")))

    def to_json(self) -> dict:
        """The split as a COCO dict (canonical names), e.g. to write a subset back."""
        return {
            "info": self.info,
            "images": list(self.images.values()),
            "annotations": list(self.iter_annotations()),
            "categories": list(self.categories.values()),
        }


def _default_root(path: Path) -> Path:
    parent = path.resolve().parent
    return parent.parent if parent.name == "annotations" else parent


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a truncated or non-JSON file raises ``DatasetFormatError``."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return json.loads(data)
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not a JSON file (not UTF-8 text: {e.reason})") from None
    except RecursionError:
        raise DatasetFormatError(f"{path}: JSON nested too deeply to be an annotation file"
                                 ) from None
    except json.JSONDecodeError as e:
        what = "empty file" if not data.strip() else "not valid JSON"
        # A cut file fails at (or a few characters before) its end, or inside a string that
        # runs to the end.
        cut = len(data[e.pos :].strip()) <= 8 or e.msg.startswith("Unterminated string")
        hint = " (truncated?)" if cut and data.strip() else ""
        raise DatasetFormatError(
            f"{path}: {what}{hint}: {e.msg} at line {e.lineno}, column {e.colno} "
            f"(byte {e.pos} of {len(data)})"
        ) from None


def load_annotations(
    path: str | os.PathLike, check: bool = True, root: str | os.PathLike | None = None
) -> AmodalDataset:
    """Read one split file.

    check=True verifies every invariant of FORMAT.md and raises ``DatasetFormatError`` listing
    all problems. check=False trusts the file: only what is needed to read it is verified
    (structure, ids, references, mask sizes) and derivable fields that are missing (bbox, area,
    visible_bbox, occlude_rate, iscrowd) are computed.
    root: the dataset folder; default: the folder above ``annotations/`` (else the file's).
    """
    path = Path(path)
    obj = read_json(path)
    v = _Validator(str(path), obj, check=check)
    v.run()
    return AmodalDataset(
        images=v.images,
        annotations=v.anns_by_image,
        categories=v.categories,
        info=obj.get("info") or {},
        path=path,
        root=Path(root) if root is not None else _default_root(path),
    )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """An int or a finite float (NaN and infinities are no coordinate, area or rate)."""
    return isinstance(v, int) and not isinstance(v, bool) or (
        isinstance(v, float) and np.isfinite(v))


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v)


def _fmt_box(b: Sequence[float]) -> str:
    return "[" + ", ".join(f"{float(x):g}" for x in b) + "]"


def rle_areas(rles: Sequence[dict]) -> np.ndarray:
    """Pixel counts of many RLEs, (N,) int64.

    Chunked: pycocotools >= 2.0.8 with numpy 2 raises OverflowError in ``area`` for lists of
    256 or more RLEs (it builds a uint8 array holding the list length).
    """
    rles = list(rles)
    parts = [mask_utils.area(rles[i : i + 255]) for i in range(0, len(rles), 255)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _merge_area(rles: list[dict], intersect: bool) -> int:
    return int(mask_utils.area(mask_utils.merge(rles, intersect=intersect)))


class _Validator:
    """Checks and normalises one parsed split. Fills ``images``, ``anns_by_image``,
    ``categories``; ``run`` raises one ``DatasetFormatError`` with every problem found."""

    def __init__(self, file: str, obj: Any, check: bool):
        self.file = file
        self.obj = obj
        self.check = check
        self.errors: list[str] = []
        self.images: dict[int, dict] = {}
        self.anns_by_image: dict[int, list[dict]] = {}
        self.categories: dict[int, dict] = {}
        self.bad_images: set[int] = set()  # reported already: their annotations are skipped
        self.anns: list[dict] = []  # normalised, structurally sound annotations
        self.src_names: list[dict[str, str]] = []  # per ann: canonical -> name in the file
        self.from_poly: list[bool] = []

    # --- reporting ---

    def err(self, record: str, fld: str | None, problem: str) -> None:
        where = f"{self.file}: {record}" if record else self.file
        if fld is not None:
            where += f": field '{fld}'"
        self.errors.append(f"{where}: {problem}")

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DatasetFormatError(self.errors)

    @staticmethod
    def ann_label(ann: dict, idx: int) -> str:
        aid, iid = ann.get("id"), ann.get("image_id")
        label = f"annotation {aid}" if _is_int(aid) else f"annotations[{idx}]"
        if _is_int(iid):
            label += f" (image {iid})"
        return label

    # --- driver ---

    def run(self) -> None:
        obj = self.obj
        if not isinstance(obj, dict):
            self.err("", None, f"top level must be a JSON object, got {type(obj).__name__}")
            self.raise_if_errors()
        for key in ("images", "annotations", "categories"):
            if key not in obj:
                self.err("", key, "missing (a COCO file needs images, annotations, categories)")
            elif not isinstance(obj[key], list):
                self.err("", key, f"must be a list, got {type(obj[key]).__name__}")
        self.raise_if_errors()
        self.check_categories(obj["categories"])
        self.check_images(obj["images"])
        self.check_annotations(obj["annotations"])
        self.raise_if_errors()  # pixel checks below need sound structure
        self.check_pixels()
        self.check_occlusion()
        self.check_deocclusion()
        self.raise_if_errors()

    # --- records ---

    def check_categories(self, cats: list) -> None:
        for i, c in enumerate(cats):
            if not isinstance(c, dict) or not _is_int(c.get("id")):
                self.err(f"categories[{i}]", "id", "missing or not an int")
                continue
            if c["id"] in self.categories:
                self.err(f"category {c['id']}", "id", "duplicate category id")
            if self.check and not isinstance(c.get("name"), str):
                self.err(f"category {c['id']}", "name", "missing or not a str")
            self.categories[c["id"]] = c

    def check_images(self, images: list) -> None:
        for i, img in enumerate(images):
            if not isinstance(img, dict):
                self.err(f"images[{i}]", None, f"must be an object, got {type(img).__name__}")
                continue
            iid = img.get("id")
            if not _is_int(iid):
                self.err(f"images[{i}]", "id", "missing or not an int")
                continue
            rec = f"image {iid}"
            if iid in self.images:
                self.err(rec, "id", "duplicate image id")
                continue
            ok = True
            if not isinstance(img.get("file_name"), str):
                self.err(rec, "file_name", "missing or not a str")
                ok = False
            for k in ("file_name", "depth_file", "background_file"):
                if isinstance(img.get(k), str) and path_problem(img[k], PATH_FIELDS[k]):
                    self.err(rec, k, path_problem(img[k], PATH_FIELDS[k]) or "")
                    ok = False
            if "background_file" in img and not isinstance(img["background_file"], str):
                self.err(rec, "background_file", "must be a str, got "
                         f"{type(img['background_file']).__name__}")
                ok = False
            ok &= self.check_deocclusion_record(img, rec)
            for k in ("width", "height"):
                if not _is_int(img.get(k)) or img[k] <= 0:
                    self.err(rec, k, f"missing or not a positive int (got {img.get(k)!r})")
                    ok = False
            if self.check:
                for k in ("scene_id", "depth_file"):
                    if k in img and not isinstance(img[k], str):
                        self.err(rec, k, f"must be a str, got {type(img[k]).__name__}")
                occ = img.get("occlusion")
                if occ is not None and not (
                    isinstance(occ, list)
                    and all(
                        isinstance(p, list) and len(p) == 2 and all(_is_int(x) for x in p)
                        for p in occ
                    )
                ):
                    self.err(rec, "occlusion", "must be a list of [occluder_id, occludee_id] ints")
            if ok:
                self.images[iid] = img
                self.anns_by_image[iid] = []
            else:
                self.bad_images.add(iid)

    def check_deocclusion_record(self, img: dict, rec: str) -> bool:
        """The structure of an image's ``deocclusion`` list (docs/dataset.md); masks and
        references are checked in `check_deocclusion`."""
        entries = img.get("deocclusion")
        if entries is None:
            return True
        if not isinstance(entries, list):
            self.err(rec, "deocclusion", f"must be a list, got {type(entries).__name__}")
            return False
        ok = True
        for k, e in enumerate(entries):
            fld = f"deocclusion[{k}]"
            if not isinstance(e, dict):
                self.err(rec, fld, f"must be an object, got {type(e).__name__}")
                ok = False
                continue
            removed = e.get("removed")
            if not (isinstance(removed, list) and removed and all(_is_int(x) for x in removed)):
                self.err(rec, f"{fld}.removed", "must be a non-empty list of annotation ids")
                ok = False
            elif len(set(removed)) != len(removed):
                self.err(rec, f"{fld}.removed", f"names an annotation twice: {removed}")
                ok = False
            name = e.get("image_file")
            problem = ("missing or not a str" if not isinstance(name, str)
                       else path_problem(name, PATH_FIELDS["image_file"]))
            if problem:
                self.err(rec, f"{fld}.image_file", problem)
                ok = False
            revealed = e.get("revealed")
            if not (isinstance(revealed, list) and all(
                    isinstance(r, dict) and _is_int(r.get("id")) and "visible_mask" in r
                    for r in revealed)):
                self.err(rec, f"{fld}.revealed",
                         'must be a list of {"id": annotation id, "visible_mask": RLE}')
                ok = False
        return ok

    def check_deocclusion(self) -> None:
        """De-occlusion records name annotations of their image; a revealed object is not a
        removed one and is listed once; its new visible mask S_V' has the image's size and
        S_V ⊆ S_V' ⊆ S_F (removing objects only uncovers more of an object, never beyond its
        full mask)."""
        by_id = {a["id"]: (i, a) for i, a in enumerate(self.anns)}
        masks: list[tuple[str, str, int, dict, dict]] = []  # to check against S_V and S_F
        for iid, img in self.images.items():
            entries = img.get("deocclusion")
            if not entries:
                continue
            rec = f"image {iid}"
            h, w = img["height"], img["width"]
            for k, e in enumerate(entries):
                fld = f"deocclusion[{k}]"
                for x in e["removed"]:
                    hit = by_id.get(x)
                    if hit is None or hit[1]["image_id"] != iid:
                        self.err(rec, f"{fld}.removed", f"annotation {x} is not one of image "
                                 f"{iid}'s")
                seen: set[int] = set()
                for r in e["revealed"]:
                    x = r["id"]
                    hit = by_id.get(x)
                    if hit is None or hit[1]["image_id"] != iid:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is not one of image "
                                 f"{iid}'s")
                        continue
                    if x in e["removed"]:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is removed, so "
                                 "nothing of it is revealed")
                        continue
                    if x in seen:
                        self.err(rec, f"{fld}.revealed", f"annotation {x} is listed twice")
                        continue
                    seen.add(x)
                    try:
                        r["visible_mask"] = to_rle(r["visible_mask"], h, w)
                    except (ValueError, TypeError) as err:
                        self.err(rec, f"{fld}.revealed", f"annotation {x}: {err}")
                        continue
                    if self.check and not self.from_poly[hit[0]]:
                        masks.append((rec, fld, x, r["visible_mask"], hit[1]))
        if not masks:
            return
        # never hand malformed runs to the C decoder (as check_pixels)
        problems = _rle_string_problems([m[3]["counts"] for m in masks],
                                        [m[3]["size"][0] * m[3]["size"][1] for m in masks])
        for (rec, fld, x, new, ann), problem in zip(masks, problems, strict=True):
            if problem is not None:
                self.err(rec, f"{fld}.revealed", f"annotation {x}: {problem}")
                continue
            vis, full = ann["visible_mask"], ann["segmentation"]
            if _merge_area([new, vis], True) != _merge_area([vis], False):
                self.err(rec, f"{fld}.revealed", f"annotation {x}: the new visible mask does "
                         "not contain the visible mask S_V")
            if _merge_area([new, full], True) != _merge_area([new], False):
                self.err(rec, f"{fld}.revealed", f"annotation {x}: the new visible mask leaves "
                         "the full mask S_F")

    def check_annotations(self, anns: list) -> None:
        seen: set[int] = set()
        for i, raw in enumerate(anns):
            if not isinstance(raw, dict):
                self.err(f"annotations[{i}]", None, f"must be an object, got {type(raw).__name__}")
                continue
            ann, names = self.normalise(raw)
            rec = self.ann_label(ann, i)
            ok = True
            for k in ("id", "image_id", "category_id"):
                if not _is_int(ann.get(k)):
                    self.err(rec, k, "missing or not an int")
                    ok = False
            if not ok:
                continue
            if ann["id"] in seen:
                self.err(rec, "id", "duplicate annotation id")
                continue
            seen.add(ann["id"])
            img = self.images.get(ann["image_id"])
            if ann["image_id"] in self.bad_images:
                continue
            if img is None:
                self.err(rec, "image_id", f"no image has id {ann['image_id']}")
                continue
            if self.check and ann["category_id"] not in self.categories:
                self.err(rec, "category_id", f"no category has id {ann['category_id']}")
            if not self.check_fields(ann, names, rec):
                continue
            h, w = img["height"], img["width"]
            poly = False
            for k in MASK_FIELDS:
                seg = ann.get(k)
                if seg is None:
                    if k != "invisible_mask":
                        self.err(rec, names[k], "missing")
                        ok = False
                    continue
                poly |= isinstance(seg, list)
                try:
                    ann[k] = to_rle(seg, h, w)
                except (ValueError, TypeError) as e:
                    self.err(rec, names[k], str(e))
                    ok = False
            if ok:
                self.anns.append(ann)
                self.src_names.append(names)
                self.from_poly.append(poly)
                self.anns_by_image[ann["image_id"]].append(ann)

    def normalise(self, raw: dict) -> tuple[dict, dict[str, str]]:
        """Copy of ``raw`` under canonical names, and canonical -> name used in the file."""
        ann = dict(raw)
        names = {k: k for k in (*MASK_FIELDS, *ANNOTATION_ALIASES)}
        for canon, aliases in ANNOTATION_ALIASES.items():
            for a in aliases:
                if a in ann:
                    v = ann.pop(a)
                    if canon not in ann:
                        ann[canon] = v
                        names[canon] = a
        return ann, names

    def check_fields(self, ann: dict, names: dict[str, str], rec: str) -> bool:
        """Types of the scalar fields; with check=False missing derivable ones are allowed."""
        ok = True
        if "iscrowd" not in ann:
            if self.check:
                self.err(rec, "iscrowd", "missing")
            ann["iscrowd"] = 0
        elif self.check and ann["iscrowd"] != 0:
            self.err(
                rec,
                "iscrowd",
                f"must be 0 (amodal annotations are single objects), got {ann['iscrowd']!r}",
            )
        for k, test, what in (
            ("bbox", _is_box, "a list of 4 numbers [x, y, w, h]"),
            ("visible_bbox", _is_box, "a list of 4 numbers [x, y, w, h]"),
            ("area", _is_number, "a number"),
            ("occlude_rate", _is_number, "a number"),
        ):
            if k not in ann:
                if self.check:
                    self.err(rec, names[k], "missing")
                    ok = False
            elif not test(ann[k]):
                self.err(rec, names[k], f"must be {what}, got {ann[k]!r}")
                ok = False
        if ok and _is_number(ann.get("occlude_rate")) and not 0 <= ann["occlude_rate"] <= 1:
            self.err(rec, names["occlude_rate"], f"must lie in [0, 1], got {ann['occlude_rate']}")
        app = ann.get("appearance_file")
        if self.check and "appearance_file" in ann and not isinstance(app, str):
            self.err(rec, "appearance_file", "must be a str")
        elif isinstance(app, str) and path_problem(app, "appearance"):
            self.err(rec, "appearance_file", path_problem(app, "appearance") or "")
            ok = False
        return ok

    # --- pixels ---

    def check_pixels(self) -> None:
        """Mask-level invariants, on RLEs in bulk (no full-size decode)."""
        anns = self.anns
        if not anns:
            return
        F = [a["segmentation"] for a in anns]
        V = [a["visible_mask"] for a in anns]
        if self.check:
            self.check_rle_counts()
            self.raise_if_errors()  # never hand malformed runs to the C decoder
        aF = rle_areas(F)
        aV = rle_areas(V)
        bF = mask_utils.toBbox(F)
        bV = mask_utils.toBbox(V)
        # |S_V ∩ S_F| needs one merge per annotation (pycocotools has no pairwise batch op).
        aVF = np.array([_merge_area([v, f], True) for v, f in zip(V, F, strict=True)], np.int64)
        rate = np.where(aF > 0, (aF - aVF) / np.maximum(aF, 1), 0.0)

        if not self.check:  # fill what is missing, trust the rest
            for i, a in enumerate(anns):
                a.setdefault("area", int(aF[i]))
                a.setdefault("bbox", [float(x) for x in bF[i]])
                a.setdefault("visible_bbox", [float(x) for x in bV[i]])
                a.setdefault("occlude_rate", round(float(rate[i]), 6))
            return

        poly = np.array(self.from_poly)
        area = np.array([a["area"] for a in anns], np.float64)
        box = np.array([a["bbox"] for a in anns], np.float64)
        vbox = np.array([a["visible_bbox"] for a in anns], np.float64)
        occ = np.array([a["occlude_rate"] for a in anns], np.float64)
        area_tol = np.where(poly, np.maximum(AREA_ABS_TOL_POLY, AREA_REL_TOL_POLY * aF), 0.5)
        box_tol = np.where(poly, BBOX_TOL_POLY, BBOX_TOL_RLE)
        rate_tol = np.where(poly, RATE_TOL_POLY, RATE_TOL)
        outside = aV - aVF
        out_tol = np.where(poly, SUBSET_REL_TOL_POLY * aV, 0)

        bad_area = np.abs(area - aF) > area_tol
        bad_box = np.abs(box - bF).max(1) > box_tol
        bad_vbox = np.abs(vbox - bV).max(1) > box_tol
        bad_rate = np.abs(occ - rate) > rate_tol
        bad_out = outside > out_tol
        small = aV < MIN_VISIBLE_PIXELS
        for i in np.flatnonzero(bad_area | bad_box | bad_vbox | bad_rate | bad_out | small):
            a, n = anns[i], self.src_names[i]
            rec = self.ann_label(a, i)
            if bad_out[i]:
                self.err(
                    rec,
                    n["visible_mask"],
                    f"{outside[i]} pixels lie outside the full mask '{n['segmentation']}'",
                )
            if small[i]:
                self.err(
                    rec,
                    n["visible_mask"],
                    f"only {aV[i]} visible pixels; objects with "
                    f"fewer than {MIN_VISIBLE_PIXELS} visible pixels are not annotated",
                )
            if bad_area[i]:
                self.err(
                    rec,
                    n["area"],
                    f"is {a['area']:g} but the full mask '{n['segmentation']}' has {aF[i]} pixels",
                )
            if bad_box[i]:
                self.err(
                    rec,
                    n["bbox"],
                    f"is {_fmt_box(a['bbox'])} but the full mask's box is {_fmt_box(bF[i])}",
                )
            if bad_vbox[i]:
                self.err(
                    rec,
                    n["visible_bbox"],
                    f"is {_fmt_box(a['visible_bbox'])} but the "
                    f"visible mask's box is {_fmt_box(bV[i])}",
                )
            if bad_rate[i]:
                self.err(
                    rec,
                    n["occlude_rate"],
                    f"is {a['occlude_rate']:.6g} but the masks give "
                    f"|S_F \\ S_V| / |S_F| = {rate[i]:.6g}",
                )

        # S_I = S_F \ S_V where S_I is stored: |S_I Δ (S_F \ S_V)| = |I| + |D| - 2|I ∩ D|,
        # with |D| = |F| - |V ∩ F| and |I ∩ D| = |I ∩ F| - |I ∩ V ∩ F|.
        for i, a in enumerate(anns):
            inv = a.get("invisible_mask")
            if inv is None:
                continue
            aI = int(mask_utils.area(inv))
            aIF = _merge_area([inv, F[i]], True)
            aIVF = _merge_area([inv, V[i], F[i]], True)
            sym = aI + (aF[i] - aVF[i]) - 2 * (aIF - aIVF)
            tol = SUBSET_REL_TOL_POLY * aF[i] if poly[i] else 0
            if sym > tol:
                n = self.src_names[i]
                self.err(
                    self.ann_label(a, i),
                    n["invisible_mask"],
                    f"differs from the full mask minus the visible mask "
                    f"('{n['segmentation']}' \\ '{n['visible_mask']}') in {sym} pixels",
                )

    def check_rle_counts(self) -> None:
        strs: list[str] = []
        sizes: list[int] = []
        where: list[tuple[int, str]] = []
        for i, a in enumerate(self.anns):
            for k in MASK_FIELDS:
                rle = a.get(k)
                if rle is not None:
                    strs.append(rle["counts"])
                    sizes.append(rle["size"][0] * rle["size"][1])
                    where.append((i, k))
        for (i, k), problem in zip(where, _rle_string_problems(strs, sizes), strict=True):
            if problem is not None:
                self.err(self.ann_label(self.anns[i], i), self.src_names[i][k], problem)

    def check_occlusion(self) -> None:
        """Pairs name two different annotations of this image; the occluder's full mask must
        cover some of the occludee's invisible region (else it hides nothing of it)."""
        if not self.check:
            return
        by_id = {a["id"]: (i, a) for i, a in enumerate(self.anns)}
        for iid, img in self.images.items():
            occ = img.get("occlusion")
            if not isinstance(occ, list):
                continue
            rec = f"image {iid}"
            for pair in occ:
                if not (isinstance(pair, list) and len(pair) == 2):
                    continue  # reported by check_images
                a_id, b_id = pair
                if a_id == b_id:
                    self.err(
                        rec,
                        "occlusion",
                        f"pair [{a_id}, {b_id}] has annotation {a_id} occluding itself",
                    )
                    continue
                ends = []
                for x in (a_id, b_id):
                    hit = by_id.get(x)
                    if hit is None:
                        self.err(
                            rec, "occlusion", f"pair [{a_id}, {b_id}]: no annotation has id {x}"
                        )
                    elif hit[1]["image_id"] != iid:
                        self.err(
                            rec,
                            "occlusion",
                            f"pair [{a_id}, {b_id}]: annotation {x} "
                            f"belongs to image {hit[1]['image_id']}, not to image {iid}",
                        )
                    else:
                        ends.append(hit)
                if len(ends) != 2 or self.from_poly[ends[0][0]] or self.from_poly[ends[1][0]]:
                    continue
                fa, b = ends[0][1]["segmentation"], ends[1][1]
                # |S_F(a) ∩ S_I(b)| = |F_a ∩ F_b| - |F_a ∩ F_b ∩ V_b|
                hidden = _merge_area([fa, b["segmentation"]], True) - _merge_area(
                    [fa, b["segmentation"], b["visible_mask"]], True
                )
                if hidden <= 0:
                    self.err(
                        rec,
                        "occlusion",
                        f"pair [{a_id}, {b_id}]: the full mask of "
                        f"annotation {a_id} covers none of the invisible region of "
                        f"annotation {b_id}, so it hides nothing of it",
                    )
