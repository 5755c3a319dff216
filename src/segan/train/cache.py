"""A decoded, resized copy of one dataset split, read by the training data pipeline.

PNG decoding, RLE decoding and resizing happen once, here; training then reads raw bytes from
memory-mapped files, so a DataLoader worker only copies slices (section 5.1's inputs are made
on the device from these, see `segan.train.data`).

Layout of a cache folder (``<split>-<size>px-<key>/``):

    images.u8    (N, S, S, 3) uint8  every image resized (bilinear, antialiased) to S x S
    visible_union.u8  (N, S, S) uint8  U: per image, the max of its objects' resized S_V
                 (where some annotated object is visible; crop_unet's `context` input)
    patches.u8   flat uint8: per object a (h, w, 5) patch, channel-last, in the resized frame:
                 [S_V, S_F, R*a, G*a, B*a] with a = S_F (the appearance's alpha), each 0..255.
                 S_V and S_F are the binary masks resized bilinearly, so they are soft, as in
                 the paper; RGB is the full object's appearance premultiplied by its alpha,
                 i.e. the object alone on black.
    index.npz    per image: image_ids, image_hw (original H, W), obj_start (N+1, objects of
                 image i are obj_start[i]:obj_start[i+1]); per object: ann_ids, category_ids,
                 obj_image, patch_xywh (x0, y0, w, h) int32 and patch_offset int64 (bytes into
                 patches.u8), visible_box / full_box (x1, y1, x2, y2) float32 in continuous
                 pixel coordinates of the resized frame, occlude_rate, has_appearance.
    meta.json    format, version, key and counts; written last (the folder is built under a
                 temporary name and renamed, so a folder with meta.json is complete).

An object's patch is its S_V box grown by `expand_max` of its size on every side plus a margin
of a few pixels (bilinear neighbours and the resize kernel's reach), clipped to the image. It
holds every nonzero pixel of S_V, and every pixel that a crop of any box expanded by at most
`expand_max` reads; pasted into a zero S x S canvas it gives the resized full-frame S_V, and
S_F and the appearance wherever such a crop looks. Each patch is resized from the source pixels
it reads alone (`render_patches`), which equals the full frame's resize but where float
rounding moves a value within 0.01 of a half by one grey level (4.2e-5 of the patch bytes on
`diverse` data, docs/device.md). A cache built for amodal boxes
(``data.amodal_box_share`` > 0) grows the union of S_V's and S_F's boxes instead: its crops may
start anywhere between the two.

The key hashes the cache version, the split's annotation file (its bytes), the image size and
expand_max; images and appearance files are assumed unchanged while their annotation file is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from segan.data import coco
from segan.data.atomic import default_cache_dir, file_sha256, write_bytes_atomic
from segan.transforms import (
    coco_box_in_frame,
    resize_image_u8,
    resize_planes_u8,
    resize_window,
    window_weights,
)

CACHE_VERSION = 3  # 2: visible_union.u8; 3: patches resized by window (render_patches)
CACHE_FORMAT = "segan-train-cache"
PATCH_CHANNELS = 5  # S_V, S_F, R*a, G*a, B*a
_INDEX_KEYS = (
    "image_ids", "image_hw", "obj_start", "ann_ids", "category_ids", "obj_image", "patch_xywh",
    "patch_offset", "visible_box", "full_box", "occlude_rate", "has_appearance",
)


def annotation_path(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / "annotations" / f"{split}.json"


def cache_key(ann_file: Path, image_size: int, expand_max: float,
              visible_input: str = "gt", amodal_boxes: bool = False) -> str:
    spec_d = {"version": CACHE_VERSION, "annotations": file_sha256(ann_file),
              "image_size": image_size, "expand_max": round(expand_max, 6)}
    if visible_input != "gt":  # absent for "gt": the keys of existing caches stay the same
        spec_d["visible_input"] = visible_input
    if amodal_boxes:  # likewise
        spec_d["amodal_boxes"] = True
    spec = json.dumps(spec_d)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def patch_margin(image_size: int, height: int, width: int) -> int:
    """Pixels around the expanded box: a resized mask spreads up to one output pixel (more when
    upsampling) beyond its box, and bilinear crops read one neighbour more."""
    return math.ceil(max(1.0, image_size / height, image_size / width)) + 1


def build_index(ds: coco.AmodalDataset, image_size: int, expand_max: float,
                amodal_boxes: bool = False) -> dict[str, np.ndarray]:
    """Everything about the cache that follows from the annotations alone (no pixels).
    amodal_boxes: each patch grows the union of S_V's and S_F's boxes (module docstring)."""
    S = image_size
    image_ids, image_hw, obj_start = [], [], [0]
    ann_ids, cats, obj_image, xywh, vboxes, fboxes, rates, has_app = [], [], [], [], [], [], [], []
    for i, iid in enumerate(ds.image_ids):
        img = ds.images[iid]
        H, W = img["height"], img["width"]
        margin = patch_margin(S, H, W)
        image_ids.append(iid)
        image_hw.append((H, W))
        for ann in ds.annotations[iid]:
            vb = ann.get("visible_bbox") or coco.mask_bbox(ds.visible_mask(ann))
            x1, y1, x2, y2 = vbox = coco_box_in_frame(vb, (H, W), S)
            fbox = coco_box_in_frame(ann["bbox"], (H, W), S)
            if amodal_boxes:
                x1, y1 = min(x1, fbox[0]), min(y1, fbox[1])
                x2, y2 = max(x2, fbox[2]), max(y2, fbox[3])
            ex, ey = expand_max * (x2 - x1), expand_max * (y2 - y1)
            px1 = max(0, math.floor(x1 - ex) - margin)
            py1 = max(0, math.floor(y1 - ey) - margin)
            px2 = min(S, math.ceil(x2 + ex) + margin)
            py2 = min(S, math.ceil(y2 + ey) + margin)
            ann_ids.append(ann["id"])
            cats.append(ann["category_id"])
            obj_image.append(i)
            xywh.append((px1, py1, px2 - px1, py2 - py1))
            vboxes.append(vbox)
            fboxes.append(fbox)
            rates.append(ann.get("occlude_rate", 0.0))
            has_app.append(ann.get("appearance_file") is not None)
        obj_start.append(len(ann_ids))
    patch = np.asarray(xywh, np.int64).reshape(-1, 4)
    sizes = patch[:, 2] * patch[:, 3] * PATCH_CHANNELS
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return {
        "image_ids": np.asarray(image_ids, np.int64),
        "image_hw": np.asarray(image_hw, np.int32).reshape(-1, 2),
        "obj_start": np.asarray(obj_start, np.int64),
        "ann_ids": np.asarray(ann_ids, np.int64),
        "category_ids": np.asarray(cats, np.int64),
        "obj_image": np.asarray(obj_image, np.int64),
        "patch_xywh": patch.astype(np.int32),
        "patch_offset": offsets,
        "visible_box": np.asarray(vboxes, np.float32).reshape(-1, 4),
        "full_box": np.asarray(fboxes, np.float32).reshape(-1, 4),
        "occlude_rate": np.asarray(rates, np.float32),
        "has_appearance": np.asarray(has_app, bool),
    }


def premultiplied(app: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 RGBA appearance -> (3, H, W) uint8 RGB x alpha, rounded: the object
    alone on black, as the cache stores it."""
    alpha = app[..., 3:4].astype(np.uint16)
    return ((app[..., :3] * alpha + 127) // 255).astype(np.uint8).transpose(2, 0, 1)


def render_image(ds: coco.AmodalDataset, iid: int, size: int,
                 image: np.ndarray | None = None,
                 masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One image resized to (S, S, 3) uint8, and its objects' (N, 5, S, S) uint8 planes
    [S_V, S_F, premultiplied RGB] in annotation order. image, masks: `ds.load_image(iid)` and
    `ds.image_masks(iid)` when the caller has them already (decoded here otherwise)."""
    image = ds.load_image(iid) if image is None else image
    image_u8 = resize_image_u8(image, size)
    full, vis, _ = ds.image_masks(iid) if masks is None else masks
    anns = ds.annotations[iid]
    H, W = image.shape[:2]
    planes = np.zeros((len(anns), PATCH_CHANNELS, H, W), np.uint8)
    planes[:, 0] = vis * np.uint8(255)
    planes[:, 1] = full * np.uint8(255)
    for k, ann in enumerate(anns):
        app = ds.load_appearance(ann)
        if app is not None:
            planes[k, 2:] = premultiplied(app)
    return image_u8, resize_planes_u8(planes, size)


def render_patches(ds: coco.AmodalDataset, iid: int, size: int, patch_xywh: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """What the cache stores of one image, each object resized only over its patch: the image
    (S, S, 3), the union U of the resized S_V (S, S), and per object (in annotation order,
    patch_xywh (N, 4) of `build_index`) its (h, w, 5) patch of `render_image`'s planes. The
    patches equal `render_image`'s up to float rounding (`segan.transforms.resize_window`:
    a grey level off where a value lies within 0.01 of a half), and cost the patch, not the
    frame: a resize of every object's five full-frame planes was most of a build's time. U is
    the max of the S_V patches, which hold every nonzero pixel of the resized S_V."""
    image = ds.load_image(iid)
    full, vis, _ = ds.image_masks(iid)
    H, W = image.shape[:2]
    union = np.zeros((size, size), np.uint8)
    patches = []
    for k, ann in enumerate(ds.annotations[iid]):
        x0, y0, w, h = (int(v) for v in patch_xywh[k])
        ty, tx = window_weights(H, size, y0, h), window_weights(W, size, x0, w)
        ys, xs = ty.span, tx.span
        src = np.zeros((PATCH_CHANNELS, ys.stop - ys.start, xs.stop - xs.start), np.float32)
        src[0] = vis[k, ys, xs] * np.float32(255)
        src[1] = full[k, ys, xs] * np.float32(255)
        app = ds.load_appearance(ann)
        if app is not None:
            src[2:] = premultiplied(app[ys, xs])
        patch = np.clip(np.rint(resize_window(src, ty, tx)), 0, 255).astype(np.uint8)
        np.maximum(union[y0:y0 + h, x0:x0 + w], patch[0], out=union[y0:y0 + h, x0:x0 + w])
        patches.append(patch.transpose(1, 2, 0))
    return resize_image_u8(image, size), union, patches


# --- building (optionally in worker processes) ---

def with_predicted_visible(ds: coco.AmodalDataset) -> coco.AmodalDataset:
    """The split with each object's `predicted_visible_mask` (`segan predict-visible`) as its
    S_V, for training on predicted S_V (`data.visible_input: predicted`, paper 5.2); objects
    without one (no prediction overlaps them) are left out. S_F and the appearance stay the
    ground truth. The result is not a valid segan-coco split (S_V may leave S_F): it only feeds
    the cache."""
    annotations: dict[int, list[dict]] = {}
    for iid, anns in ds.annotations.items():
        kept = []
        for a in anns:
            if "predicted_visible_mask" not in a:
                raise ValueError(f"{ds.path}: annotation {a['id']} has no predicted_visible_mask: "
                                 "data.visible_input=predicted needs a dataset written by "
                                 "`segan predict-visible`")
            rle = a["predicted_visible_mask"]
            if rle is not None:
                h, w = ds.images[iid]["height"], ds.images[iid]["width"]
                rle = coco.to_rle(rle, h, w)
                kept.append({**a, "visible_mask": rle,
                             "visible_bbox": coco.mask_bbox(
                                 coco.decode_mask(rle, h, w))})
        annotations[iid] = kept
    return coco.AmodalDataset(images=ds.images, annotations=annotations,
                                     categories=ds.categories, info=ds.info, path=ds.path,
                                     root=ds.root)


def _load_split(ann_file: str | Path, root: str | Path, visible_input: str,
                check: bool) -> coco.AmodalDataset:
    ds = coco.load_annotations(ann_file, check=check, root=root)
    if visible_input == "predicted":
        return with_predicted_visible(ds)
    if visible_input != "gt":
        raise ValueError(f"visible_input must be 'gt' or 'predicted', got {visible_input!r}")
    return ds


_WORKER: dict[str, Any] = {}


def _worker_init(ann_file: str, root: str, folder: str, visible_input: str = "gt",
                 in_pool: bool = True) -> None:
    """Load the split for `_fill`. In a pool worker, one torch thread per process; in the main
    process (in_pool=False) the thread count is left alone: the run that builds the cache must
    train exactly as one that finds it built."""
    if in_pool:
        import torch

        torch.set_num_threads(1)
    _WORKER["ds"] = _load_split(ann_file, root, visible_input, check=False)
    _WORKER["folder"] = Path(folder)
    _WORKER["index"] = dict(np.load(Path(folder) / "index.npz"))


def _fill(image_indices: list[int]) -> int:
    ds, folder, idx = _WORKER["ds"], _WORKER["folder"], _WORKER["index"]
    n_images, S = len(idx["image_ids"]), int(idx["image_size"])
    images = np.memmap(folder / "images.u8", np.uint8, "r+", shape=(n_images, S, S, 3))
    union = np.memmap(folder / "visible_union.u8", np.uint8, "r+", shape=(n_images, S, S))
    patches = np.memmap(folder / "patches.u8", np.uint8, "r+",
                        shape=(max(int(idx["patch_bytes"]), 1),))
    for i in image_indices:
        a, b = int(idx["obj_start"][i]), int(idx["obj_start"][i + 1])
        images[i], union[i], planes = render_patches(ds, int(idx["image_ids"][i]), S,
                                                     idx["patch_xywh"][a:b])
        for j, patch in zip(range(a, b), planes, strict=True):
            off = int(idx["patch_offset"][j])
            patches[off:off + patch.size] = patch.reshape(-1)
    return len(image_indices)


def build_cache(data_dir: str | os.PathLike, split: str, image_size: int, expand_max: float,
                out: Path, workers: int = 0, progress: bool = False,
                visible_input: str = "gt", amodal_boxes: bool = False) -> Path:
    """Decode a split into a cache folder `out` (built under a temporary name, then renamed).
    visible_input "predicted": S_V from `with_predicted_visible`; amodal_boxes: `build_index`."""
    ann_file = annotation_path(data_dir, split)
    start = time.perf_counter()
    ds = _load_split(ann_file, data_dir, visible_input, check=True)
    key = cache_key(ann_file, image_size, expand_max, visible_input, amodal_boxes)
    index = build_index(ds, image_size, expand_max, amodal_boxes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{out.name}.tmp-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    phases: dict[str, float] = {}  # where the time goes: meta.json's build_phases_s
    try:
        n_images, n_objects = len(index["image_ids"]), len(index["ann_ids"])
        patch_bytes = int(index["patch_offset"][-1] + np.prod(index["patch_xywh"][-1, 2:])
                          * PATCH_CHANNELS) if n_objects else 0
        np.savez(tmp / "index.npz", image_size=np.int64(image_size),
                 patch_bytes=np.int64(patch_bytes), **index)
        # allocate the files (sparse), workers fill them in place
        sizes = {"images.u8": n_images * image_size * image_size * 3,
                 "visible_union.u8": n_images * image_size * image_size,
                 "patches.u8": max(patch_bytes, 1)}
        for name, nbytes in sizes.items():
            with open(tmp / name, "wb") as f:
                f.truncate(nbytes)
        clock = time.perf_counter()
        phases["annotations_s"] = clock - start  # read, checked, indexed
        chunks = [list(range(a, min(a + 8, n_images))) for a in range(0, n_images, 8)]
        args = (str(ann_file), str(Path(data_dir)), str(tmp), visible_input)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_images, desc=f"cache {split} {image_size}px", unit="img")
        if workers > 1 and len(chunks) > 1:
            ctx = mp.get_context("spawn")  # no fork after torch's threads started
            with ctx.Pool(min(workers, len(chunks)), _worker_init, args) as pool:
                for n in pool.imap_unordered(_fill, chunks):
                    if bar is not None:
                        bar.update(n)
        else:
            _WORKER.clear()
            _worker_init(*args, in_pool=False)
            try:
                for c in chunks:
                    n = _fill(c)
                    if bar is not None:
                        bar.update(n)
            finally:
                _WORKER.clear()
        if bar is not None:
            bar.close()
        phases["decode_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        # durable before meta.json marks the folder whole: once, here, so the kernel writes
        # back in the background while the workers decode (a flush after every chunk made
        # them wait on the disk instead)
        for name in sizes:
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
        phases["fsync_s"] = time.perf_counter() - clock
        meta = {
            "format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "split": split,
            "annotations": str(ann_file), "image_size": image_size, "expand_max": expand_max,
            "visible_input": visible_input,
            "num_images": n_images, "num_objects": n_objects, "patch_bytes": patch_bytes,
            "build_seconds": round(time.perf_counter() - start, 2),
            "build_phases_s": {k: round(v, 2) for k, v in phases.items()},
            "bytes": sum(sizes.values()),
        }
        write_bytes_atomic(tmp / "meta.json", json.dumps(meta, indent=1).encode())
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished the same cache first: keep theirs
            if not (out / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class AmodalCache:
    """Read side of a cache folder. Memory maps open lazily in each process (so the object
    pickles cheaply into DataLoader workers); index arrays live in memory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())
        if self.meta.get("format") != CACHE_FORMAT or self.meta.get("version") != CACHE_VERSION:
            raise ValueError(f"{self.path}: not a version {CACHE_VERSION} training cache")
        with np.load(self.path / "index.npz") as z:
            for k in _INDEX_KEYS:
                setattr(self, k, z[k])
        self.image_size = int(self.meta["image_size"])
        self._images: np.memmap | None = None
        self._union: np.memmap | None = None
        self._patches: np.memmap | None = None
        self.built_here = False  # open_cache: this process built it (its startup's record)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_union"] = state["_patches"] = None
        return state

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def num_objects(self) -> int:
        return len(self.ann_ids)

    @property
    def images(self) -> np.memmap:
        """(N, S, S, 3) uint8."""
        if self._images is None:
            S = self.image_size
            self._images = np.memmap(self.path / "images.u8", np.uint8, "r",
                                     shape=(self.num_images, S, S, 3))
        return self._images

    @property
    def visible_union(self) -> np.memmap:
        """(N, S, S) uint8: U, the max of each image's resized S_V."""
        if self._union is None:
            S = self.image_size
            self._union = np.memmap(self.path / "visible_union.u8", np.uint8, "r",
                                    shape=(self.num_images, S, S))
        return self._union

    @property
    def patches(self) -> np.memmap:
        if self._patches is None:
            self._patches = np.memmap(self.path / "patches.u8", np.uint8, "r",
                                      shape=(max(int(self.meta["patch_bytes"]), 1),))
        return self._patches

    def patch(self, j: int) -> np.ndarray:
        """Object j's (h, w, 5) patch (a view of the memory map)."""
        x0, y0, w, h = (int(v) for v in self.patch_xywh[j])
        off = int(self.patch_offset[j])
        return self.patches[off:off + h * w * PATCH_CHANNELS].reshape(h, w, PATCH_CHANNELS)


def open_cache(data_dir: str | os.PathLike, split: str, image_size: int, expand_max: float,
               cache_dir: str | os.PathLike | None = None, workers: int = 0,
               build: bool = True, progress: bool = False, visible_input: str = "gt",
               amodal_boxes: bool = False) -> AmodalCache:
    """The split's cache for these settings; built first when missing (or stale) and `build`.
    visible_input: "gt", or "predicted" (`with_predicted_visible`; its own cache folder).
    amodal_boxes: patches that hold crops starting from S_V u S_F's box (`build_index`).

    cache_dir defaults to `segan.data.atomic.default_cache_dir` (a user cache, not DATA/). A
    folder whose key matches is reused; other versions of the same split stay where they are
    (delete them by hand). Openers on one machine build one at a time (a lock file beside the
    folder): a run started beside another on the same data reuses its cache.
    """
    ann_file = annotation_path(data_dir, split)
    if not ann_file.is_file():
        raise FileNotFoundError(f"no annotation file {ann_file}")
    key = cache_key(ann_file, image_size, expand_max, visible_input, amodal_boxes)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_dir)
    folder = root / f"{split}-{image_size}px-{key}"
    meta_file = folder / "meta.json"

    def valid() -> bool:
        with contextlib.suppress(ValueError, OSError):
            return json.loads(meta_file.read_text()).get("key") == key
        return False

    if valid():
        return AmodalCache(folder)
    if not build:
        raise FileNotFoundError(f"no cache for split {split!r} at {folder}")
    # one build at a time: runs started side by side on the same data wait for the first
    # one's cache instead of each decoding the split again (they competed for the same cores)
    with _build_lock(root / f"{folder.name}.lock"):
        if valid():
            return AmodalCache(folder)
        if folder.exists():  # broken (the key is in the name): rebuild
            shutil.rmtree(folder, ignore_errors=True)
        build_cache(data_dir, split, image_size, expand_max, folder, workers, progress,
                    visible_input, amodal_boxes)
    cache = AmodalCache(folder)
    cache.built_here = True
    return cache


@contextlib.contextmanager
def _build_lock(path: Path):
    """An exclusive advisory lock on `path` (fcntl.flock: processes of one machine; where it is
    missing or the file system refuses it, no lock, and the atomic rename in build_cache still
    keeps concurrent builds safe, only slower)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
