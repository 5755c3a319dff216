"""Masks as COCO RLE: encoding, decoding (RLE or polygons), boxes and areas, and checks of
RLE count strings that do not trust pycocotools' decoder.

Masks in memory are ``bool`` arrays of shape (H, W), row-major, row 0 at the top; boxes are
COCO ``[x, y, w, h]`` in pixels. Everything pixel-level goes through pycocotools so that COCO
tools read our files unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .spec import is_number


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


def decode_mask(seg: Any, height: int, width: int, check: bool = False) -> np.ndarray:
    """Decode a COCO segmentation (compressed RLE, uncompressed RLE or polygons).

    Returns a (height, width) bool array. Raises ``ValueError`` on a malformed segmentation
    or one of another size. check: also check a compressed RLE's counts (alphabet, runs
    summing to height * width) before pycocotools decodes them, for masks that did not come
    through a validated dataset file (the decoder trusts them: garbage or a crash otherwise).
    """
    rle = to_rle(seg, height, width)
    if check:
        problem = rle_string_problems([rle["counts"]], [height * width])[0]
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
        if not isinstance(p, list) or not all(is_number(v) for v in p):
            raise ValueError("a polygon must be a flat list of numbers [x0, y0, x1, y1, ...]")
        # pycocotools reads a 4-number list as a box, not a polygon.
        if len(p) < 6 or len(p) % 2:
            raise ValueError(f"a polygon needs an even number >= 6 of coordinates, got {len(p)}")


def rle_string_problems(strings: Sequence[str], sizes: Sequence[int]) -> list[str | None]:
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


def rle_areas(rles: Sequence[dict]) -> np.ndarray:
    """Pixel counts of many RLEs, (N,) int64.

    Chunked: pycocotools >= 2.0.8 with numpy 2 raises OverflowError in ``area`` for lists of
    256 or more RLEs (it builds a uint8 array holding the list length).
    """
    rles = list(rles)
    parts = [mask_utils.area(rles[i : i + 255]) for i in range(0, len(rles), 255)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def merge_area(rles: list[dict], intersect: bool) -> int:
    return int(mask_utils.area(mask_utils.merge(rles, intersect=intersect)))
