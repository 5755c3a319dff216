"""Reading segan-coco: one split file into an `AmodalDataset` (annotations under the
canonical names, masks as compressed RLE) and the files its records name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .masks import decode_mask, decode_masks
from .paths import PATH_FIELDS, contained, path_problem, safe_relative
from .spec import DatasetFormatError
from .validator import Validator


def image_rgb(im: Any) -> np.ndarray:
    """A PIL image -> (H, W, 3) uint8 RGB. 16-bit (and 32-bit integer) grey is scaled to 8 bit
    (65535 -> 255), where PIL's own ``convert("RGB")`` clips every value above 255 to white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im).astype(np.int64)
        grey = (np.clip(a, 0, 65535) * 255 + 32767) // 65535
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


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

    def category_name(self, category_id: int | None) -> str:
        """The category's name; its id as text when the record has no name (an unchecked
        file), "unknown" for an id the file does not define (or none)."""
        rec = self.categories.get(category_id) if category_id is not None else None
        return "unknown" if rec is None else str(rec.get("name", category_id))

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
        return [f"{self.path}: {record}: field '{fld}': {p}: no such file"
                for iid in (self.image_ids if image_ids is None else image_ids)
                for record, fld, p in self.named_files(iid, deocclusion=False)
                if not p.is_file()]

    def named_files(self, image_id: int, deocclusion: bool = True
                    ) -> list[tuple[str, str, Path]]:
        """(record, field, path) of every file that the image's records name: the image, its
        depth map, its objects' appearance files and (deocclusion) its background and
        de-occlusion views; paths checked as in `_file`."""
        rec = f"image {image_id}"
        found = [(rec, "file_name", self.image_path(image_id)),
                 (rec, "depth_file", self.depth_path(image_id))]
        if deocclusion:
            found.append((rec, "background_file", self.background_path(image_id)))
            found += [(f"{rec}: deocclusion[{k}]", "image_file",
                       self.deoccluded_path(image_id, k))
                      for k in range(len(self.deocclusion(image_id)))]
        found += [(f"annotation {a['id']}", "appearance_file", self.appearance_path(a))
                  for a in self.annotations[image_id]]
        return [(r, f, p) for r, f, p in found if p is not None]

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
    v = Validator(str(path), obj, check=check)
    v.run()
    return AmodalDataset(
        images=v.images,
        annotations=v.anns_by_image,
        categories=v.categories,
        info=obj.get("info") or {},
        path=path,
        root=Path(root) if root is not None else _default_root(path),
    )
