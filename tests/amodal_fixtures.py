"""Small datasets written in the layouts of the standard amodal formats, for the reader tests.

Every scene is a stack of axis-aligned rectangles (pixel-aligned, so their polygons rasterise
exactly: pycocotools fills [x0, x1) x [y0, y1) for the polygon with those corners), drawn back
to front: object k is hidden by the objects drawn after it. So the ground truth is known
exactly: S_F = the rectangle, S_V = S_F minus the rectangles in front, and q occludes p when q
is in front of p and their rectangles overlap. Each format's writer follows that format's own
conventions (polygons vs compressed vs uncompressed RLE, field names, 1-based region numbers,
file layouts), as the tests' docstrings and docs/formats.md describe.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

H, W = 40, 48
NAMES = ("chair_tolix (2)", "book 4", "mug", "lamp")  # DYCE-like tags, some with spaces


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    rects: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 (exclusive), back to front
    full: np.ndarray  # (N, H, W) bool
    visible: np.ndarray  # (N, H, W) bool
    appearance: np.ndarray  # (N, H, W, 3) uint8, the object alone on black
    categories: list[int]  # index into NAMES
    pairs: list[tuple[int, int]]  # (occluder, occludee), object indices

    @property
    def n(self) -> int:
        return len(self.rects)


def make_scene(seed: int, n: int = 5, hidden: bool = False) -> Scene:
    """n rectangles; with `hidden`, a last-but-one small object lies wholly behind the last
    (a fully occluded object: no visible pixel)."""
    rng = np.random.default_rng(seed)
    rects = []
    for _ in range(n):
        w, h = int(rng.integers(W // 4, W * 5 // 11)), int(rng.integers(H // 4, H * 5 // 11))
        x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        rects.append((x0, y0, x0 + w, y0 + h))
    if hidden:
        x0, y0, x1, y1 = rects[-1]
        rects.insert(n - 1, (x0 + 2, y0 + 2, x0 + 6, y0 + 6))
    full = np.zeros((len(rects), H, W), bool)
    for k, (x0, y0, x1, y1) in enumerate(rects):
        full[k, y0:y1, x0:x1] = True
    visible = full.copy()
    for k in range(len(rects)):
        for j in range(k + 1, len(rects)):
            visible[k] &= ~full[j]
    yy, xx = np.mgrid[0:H, 0:W]
    appearance = np.zeros((len(rects), H, W, 3), np.uint8)
    image = np.full((H, W, 3), 30, np.uint8)
    for k in range(len(rects)):
        colour = rng.integers(60, 255, 3)
        texture = (colour[None, None] * (0.75 + 0.25 * ((xx + yy + k) % 4 == 0))[..., None])
        appearance[k][full[k]] = texture.astype(np.uint8)[full[k]]
        image[full[k]] = appearance[k][full[k]]
    pairs = [(q, p) for p in range(len(rects)) for q in range(p + 1, len(rects))
             if (full[q] & full[p]).any()]
    cats = [int(c) for c in rng.integers(0, len(NAMES), len(rects))]
    return Scene(image, rects, full, visible, appearance, cats, pairs)


def scenes(split_sizes: dict[str, int], n: int = 5, hidden_in_first: bool = False
           ) -> dict[str, list[Scene]]:
    out: dict[str, list[Scene]] = {}
    seed = 0
    for split, count in split_sizes.items():
        out[split] = []
        for i in range(count):
            out[split].append(make_scene(seed, n, hidden=hidden_in_first and i == 0))
            seed += 1
    return out


# ----------------------------------------------------------------------------- encodings


def rect_polygon(r: tuple[int, int, int, int]) -> list[float]:
    x0, y0, x1, y1 = r
    return [float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0),
            float(y1)]


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """A mask as rectangles (row runs merged downwards), each a 4-corner polygon; rasterised
    by pycocotools they give the mask back exactly (checked)."""
    polys = []
    open_runs: dict[tuple[int, int], int] = {}  # (x0, x1) -> first row
    for y in range(mask.shape[0] + 1):
        row = mask[y] if y < mask.shape[0] else np.zeros(mask.shape[1], bool)
        padded = np.concatenate([[False], row, [False]])
        d = np.flatnonzero(padded[1:] != padded[:-1])
        runs = set(zip(d[::2].tolist(), d[1::2].tolist(), strict=True))
        for run in list(open_runs):
            if run not in runs:
                polys.append(rect_polygon((run[0], open_runs.pop(run), run[1], y)))
        for run in runs:
            open_runs.setdefault(run, y)
    back = decode(polys) if polys else np.zeros(mask.shape, bool)
    assert np.array_equal(back, mask), "rectangle decomposition must be exact"
    return polys


def decode(seg) -> np.ndarray:
    if isinstance(seg, list):
        seg = mask_utils.merge(mask_utils.frPyObjects(seg, H, W))
    elif isinstance(seg["counts"], list):
        seg = mask_utils.frPyObjects(seg, H, W)
    return mask_utils.decode(seg).astype(bool)


def rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": r["counts"].decode()}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with 0s."""
    flat = mask.T.reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": [H, W], "counts": counts}


def box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def save_image(path: Path, image: np.ndarray, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


# ----------------------------------------------------------------------------- COCO-style

COCO_STYLE = {
    # variant: (file name per split, image folder per split, file_name of image i)
    "cocoa-cls": ("annotations/COCO_amodal_{split}2014_with_classes.json", "{split}2014",
                  "COCO_{split}2014_{i:012d}.jpg"),
    "d2sa": ("annotations/D2S_amodal_{long}.json", "images", "D2S_{i:06d}.jpg"),
    "uoais": ("annotations/coco_anns_uoais_sim_{split}.json", "{split}", "bin/color/{i:06d}.png"),
}
D2SA_NAMES = {"train": "training_rot0", "val": "validation"}


def write_coco_amodal(root: Path, data: dict[str, list[Scene]], variant: str) -> dict:
    """COCOA-cls: polygon amodal masks, compressed RLE visible/invisible, occlude_rate.
    D2SA: polygons, UNcompressed RLE visible/invisible, occluded_rate.
    UOAIS: compressed RLE everywhere, occluded_mask, occluded_rate, visible_bbox.
    Returns {split: {image_id: (scene, [ann ids])}}."""
    ann_pat, img_dir, name_pat = COCO_STYLE[variant]
    index: dict = {}
    ann_id = 7
    for split, scs in data.items():
        images, anns = [], []
        index[split] = {}
        for i, sc in enumerate(scs):
            iid = 100 + i
            name = name_pat.format(split=split, i=iid)
            save_image(root / img_dir.format(split=split) / name, sc.image,
                       "JPEG" if name.endswith(".jpg") else "PNG")
            images.append({"id": iid, "file_name": name, "width": W, "height": H})
            ids = []
            for k in range(sc.n):
                full, vis = sc.full[k], sc.visible[k]
                inv = full & ~vis
                rate = float(inv.sum() / full.sum())
                a = {"id": ann_id, "image_id": iid, "category_id": 1 + sc.categories[k],
                     "iscrowd": 0, "bbox": box(full), "area": float(full.sum())}
                if variant == "cocoa-cls":
                    a.update(segmentation=[rect_polygon(sc.rects[k])], visible_mask=rle(vis),
                             invisible_mask=rle(inv), occlude_rate=rate)
                elif variant == "d2sa":
                    a.update(segmentation=[rect_polygon(sc.rects[k])],
                             visible_mask=uncompressed_rle(vis),
                             invisible_mask=uncompressed_rle(inv), occluded_rate=rate)
                else:
                    a.update(segmentation=rle(full), visible_mask=rle(vis),
                             occluded_mask=rle(inv), occluded_rate=rate, visible_bbox=box(vis))
                anns.append(a)
                ids.append(ann_id)
                ann_id += 1
            index[split][iid] = (sc, ids)
        cats = [{"id": 1 + c, "name": n, "supercategory": "thing"} for c, n in enumerate(NAMES)]
        f = ann_pat.format(split=split, long=D2SA_NAMES.get(split, split))
        write_json(root / f, {"images": images, "annotations": anns, "categories": cats})
    return index


# ----------------------------------------------------------------------------- COCOA original


def write_cocoa(root: Path, data: dict[str, list[Scene]], extra_annotator: bool = True) -> dict:
    """COCOA: one record per image with `regions` front to back (order 1 = front), the amodal
    mask as ONE flat polygon, visible/invisible compressed RLE only for occluded regions,
    depth_constraint "i-j" (1-based, i in front). The first image gets a second annotator
    record (skipped by the reader). Returns {split: {image_id: scene}}."""
    index: dict = {}
    for split, scs in data.items():
        images, anns = [], []
        index[split] = {}
        for i, sc in enumerate(scs):
            iid = 36 + i
            name = f"COCO_{split}2014_{iid:012d}.jpg"
            save_image(root / f"{split}2014" / name, sc.image, "JPEG")
            images.append({"id": iid, "file_name": name, "width": W, "height": H,
                           "license": 1, "coco_url": "", "flickr_url": "",
                           "date_captured": ""})
            order = list(range(sc.n))[::-1]  # region r is object order[r]; r = 0 in front
            regions = []
            for r, k in enumerate(order):
                full, vis = sc.full[k], sc.visible[k]
                reg = {"segmentation": rect_polygon(sc.rects[k]), "name": NAMES[sc.categories[k]],
                       "area": float(full.sum()), "isStuff": 0, "order": r + 1,
                       "occlude_rate": float((full & ~vis).sum() / full.sum())}
                if (full & ~vis).any():
                    reg["visible_mask"] = rle(vis)
                    reg["invisible_mask"] = rle(full & ~vis)
                regions.append(reg)
            pos = {k: r + 1 for r, k in enumerate(order)}
            dc = ",".join(f"{pos[q]}-{pos[p]}" for q, p in sc.pairs)
            rec = {"id": 500 + i, "image_id": iid, "regions": regions, "depth_constraint": dc,
                   "size": len(regions), "author": "a", "url": ""}
            anns.append(rec)
            if extra_annotator and i == 0:
                anns.append({**rec, "id": 900, "author": "b", "regions": regions[:1],
                             "depth_constraint": "", "size": 1})
            index[split][iid] = sc
        write_json(root / "annotations" / f"COCO_amodal_{split}2014.json",
                   {"images": images, "annotations": anns})
    return index


# ----------------------------------------------------------------------------- KINS

KINS_IDS = (1, 2, 4, 6)  # KINS' category ids have gaps


def write_kins(root: Path, data: dict[str, list[Scene]], v2020: bool = False) -> dict:
    """KINS: polygons for both masks (`segmentation`, `inmodal_seg`), `bbox`/`inmodal_bbox`,
    oco_id/ico_id; KINS2020: `a_segm`/`i_segm`/`a_bbox`/`i_bbox`/`a_area`/`i_area`, no iscrowd.
    Images training/image_2 and testing/image_2, with the SAME file names in both.
    Returns {split: {image_id: (scene, [ann ids])}}."""
    index: dict = {}
    ann_id = 1
    for split, scs in data.items():
        images, anns = [], []
        index[split] = {}
        folder = "training" if split == "train" else "testing"
        for i, sc in enumerate(scs):
            iid = i  # KINS image ids start at 0 in each file
            name = f"{i:06d}.png"
            save_image(root / folder / "image_2" / name, sc.image)
            images.append({"id": iid, "file_name": name, "width": W, "height": H})
            ids = []
            for k in range(sc.n):
                full, vis = sc.full[k], sc.visible[k]
                cat = KINS_IDS[sc.categories[k]]
                if v2020:
                    a = {"id": ann_id, "image_id": iid, "category_id": cat,
                         "a_segm": [rect_polygon(sc.rects[k])], "i_segm": mask_polygons(vis),
                         "a_bbox": box(full), "i_bbox": box(vis), "a_area": int(full.sum()),
                         "i_area": int(vis.sum()), "oco_id": 1, "ico_id": sc.n - k}
                else:
                    a = {"id": ann_id, "image_id": iid, "category_id": cat, "iscrowd": 0,
                         "segmentation": [rect_polygon(sc.rects[k])],
                         "inmodal_seg": mask_polygons(vis), "bbox": box(full),
                         "inmodal_bbox": box(vis), "area": int(full.sum()), "oco_id": 1,
                         "ico_id": sc.n - k}
                anns.append(a)
                ids.append(ann_id)
                ann_id += 1
            index[split][iid] = (sc, ids)
        cats = [{"id": c, "name": n, "supercategory": "x"}
                for c, n in zip(KINS_IDS, ("cyclist", "pedestrian", "car", "truck"), strict=True)]
        fname = (f"update_{'train' if split == 'train' else 'test'}_2020.json" if v2020
                 else f"instances_{split}.json")
        write_json(root / fname, {"images": images, "annotations": anns, "categories": cats})
    return index


# ----------------------------------------------------------------------------- DYCE release


def write_dyce(root: Path, data: dict[str, list[Scene]]) -> dict:
    """The DYCE release: Images/, modal/ and amodal/ (0/255 PNG per object), FullObj/ (the
    object alone, RGB), annotations/<split>.txt with `imid modal amodal x1 y1 x2 y2 tag
    fullobj` per object, boxes (of S_F) on a 1000 scale. Returns {split: [(imid, scene)]}."""
    index: dict = {}
    for split, scs in data.items():
        lines = []
        index[split] = []
        for i, sc in enumerate(scs):
            imid = f"{split}_scene{i % 2}_{i:05d}.png"
            stem = imid[:-4]
            save_image(root / "Images" / imid, sc.image)
            for k in range(sc.n):
                m, a, f = (f"{stem}_{k}_modal.png", f"{stem}_{k}_amodal.png",
                           f"{stem}/{k}.png")
                save_image(root / "modal" / m, sc.visible[k].astype(np.uint8) * 255)
                save_image(root / "amodal" / a, sc.full[k].astype(np.uint8) * 255)
                save_image(root / "FullObj" / f, sc.appearance[k])
                x, y, w, h = box(sc.full[k])
                b = [x * 1000 / W, y * 1000 / H, (x + w) * 1000 / W, (y + h) * 1000 / H]
                lines.append(f"{imid} {m} {a} " + " ".join(f"{v:.1f}" for v in b)
                             + f" {NAMES[sc.categories[k]]} {f}")
            index[split].append((imid, sc))
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return index
