"""Dataset statistics (paper, section 4.2) and a contact sheet of examples (paper, Figure 3).

``dataset_stats(root)`` summarises every split file under ``root/annotations/``;
``format_stats`` renders it as markdown; ``contact_sheet`` draws, per sampled image, the image,
its visible instances each in its own colour, and its invisible regions in their owner's colour
over the image in dimmed grey, plus (when appearance files exist) a few full-object appearances.
"""

from __future__ import annotations

import functools
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segan.data.coco import (
    MIN_VISIBLE_PIXELS,
    AmodalDataset,
    DatasetFormatError,
    load_annotations,
    rle_areas,
)

SPLIT_ORDER = ("train", "val", "test")
RATE_EDGES = tuple(round(0.1 * i, 1) for i in range(11))  # occlusion-rate bins of 10%

# Contact sheet layout (pixels): the sheet is
#   width  = SHEET_PAD + columns * (cell_w + SHEET_PAD)
#   height = SHEET_HEADER + rows * (SHEET_LABEL + cell + SHEET_PAD)
# with cell_w = round(cell * W / H) of the first sampled image.
SHEET_PAD = 6
SHEET_HEADER = 22
SHEET_LABEL = 18
DIM = 0.45  # brightness of the (grey) image under the invisible regions
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def split_files(root: str | os.PathLike) -> dict[str, Path]:
    """Split name -> annotation file under ``root/annotations/``, train/val/test first."""
    folder = Path(root) / "annotations"
    files = {p.stem: p for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    if not files:
        raise FileNotFoundError(f"{folder}: no split files (annotations/<split>.json)")
    order = [s for s in SPLIT_ORDER if s in files] + [s for s in files if s not in SPLIT_ORDER]
    return {s: files[s] for s in order}


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int, check: bool) -> AmodalDataset:
    # Keyed by mtime and size so that a rewritten file is read again; lets the CLI compute
    # statistics and draw the sheet from one load.
    return load_annotations(path, check=check)


def load_splits(root: str | os.PathLike, check: bool = True) -> dict[str, AmodalDataset]:
    """Every split of a dataset folder, loaded (and validated when ``check``)."""
    out = {}
    for split, p in split_files(root).items():
        st = p.stat()
        out[split] = _load_cached(str(p), st.st_mtime_ns, st.st_size, check)
    return out


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": 0.0, "min": 0, "max": 0}
    a = np.asarray(values, np.float64)
    return {"mean": round(float(a.mean()), 3), "min": int(a.min()), "max": int(a.max())}


def _summary(
    images: list[dict[str, Any]], objects: list[dict[str, Any]], cat_names: dict[int, str]
) -> dict[str, Any]:
    """Statistics of a set of images (scene key, visible objects, pairs) and of their
    objects (scene key, object key, category id, occlusion rate)."""
    scene_objects: dict[str, set] = defaultdict(set)
    for im in images:
        scene_objects.setdefault(im["scene"], set())
    for ob in objects:
        scene_objects[ob["scene"]].add(ob["key"])
    rates = np.array([ob["rate"] for ob in objects], np.float64)
    counts, _ = np.histogram(rates, bins=np.array(RATE_EDGES))
    cats = Counter(ob["category_id"] for ob in objects)
    return {
        "num_scenes": len(scene_objects),
        "num_images": len(images),
        "num_objects": len(objects),
        "objects_per_scene": _spread([len(v) for v in scene_objects.values()]),
        "visible_objects_per_image": _spread([im["visible"] for im in images]),
        "occlusion_rate_histogram": {
            "edges": list(RATE_EDGES),
            "counts": [int(c) for c in counts],
        },
        "num_unoccluded": int((rates == 0).sum()),
        "mean_occlude_rate": round(float(rates.mean()), 4) if rates.size else 0.0,
        "fraction_occluded_over_10pct": round(float((rates > 0.1).mean()), 4)
        if rates.size
        else 0.0,
        "num_occlusion_pairs": int(sum(im["pairs"] for im in images)),
        "category_counts": {
            cat_names.get(c, f"category {c}"): int(cats.get(c, 0))
            for c in sorted(set(cat_names) | set(cats))
        },
    }


def dataset_stats(root: str | os.PathLike, check: bool = True) -> dict[str, Any]:
    """Statistics of a dataset folder over all its splits (paper, section 4.2).

    Returns a JSON-ready dict: the totals at the top level (``num_scenes``, ``num_images``,
    ``num_objects`` = annotated object instances over all images, ``objects_per_scene``,
    ``visible_objects_per_image`` as mean/min/max, ``occlusion_rate_histogram`` with bins of
    10%, ``fraction_occluded_over_10pct``, ``num_occlusion_pairs``, ``category_counts``), the
    same per split under ``splits``, ``objects_counted_by`` and ``scenes_shared_between_splits``.

    Scenes are the distinct ``scene_id`` values; an image without one is its own scene.
    Distinct objects of a scene are its distinct ``instance_id`` values (the generator's
    scene-level id); an annotation without ``instance_id`` counts as an object of its own.
    Visible objects are annotations with at least 10 visible pixels (all of them in a valid
    file).
    """
    splits = load_splits(root, check=check)
    if check:  # every file a record names exists (else one line per missing file)
        missing = [line for ds in splits.values() for line in ds.missing_files()]
        if missing:
            raise DatasetFormatError(missing)
    cat_names: dict[int, str] = {}
    images: dict[str, list[dict[str, Any]]] = {}
    objects: dict[str, list[dict[str, Any]]] = {}
    by_instance = by_annotation = 0
    scene_splits: dict[str, set[str]] = defaultdict(set)
    for split, ds in splits.items():
        cat_names.update({c: cat.get("name", f"category {c}") for c, cat in ds.categories.items()})
        images[split], objects[split] = [], []
        for iid, img in ds.images.items():
            anns = ds.annotations[iid]
            if "scene_id" in img:
                scene = f"scene {img['scene_id']}"
                scene_splits[str(img["scene_id"])].add(split)
            else:
                scene = f"{split} image {iid}"
            n_vis = rle_areas([a["visible_mask"] for a in anns])
            images[split].append(
                {
                    "scene": scene,
                    "visible": int((n_vis >= MIN_VISIBLE_PIXELS).sum()),
                    "pairs": len(img.get("occlusion") or []),
                }
            )
            for a in anns:
                if "instance_id" in a:
                    key: tuple = ("instance", a["instance_id"])
                    by_instance += 1
                else:
                    key = ("annotation", split, a["id"])
                    by_annotation += 1
                objects[split].append(
                    {
                        "scene": scene,
                        "key": key,
                        "category_id": a["category_id"],
                        "rate": float(a["occlude_rate"]),
                    }
                )
    all_images = [im for s in splits for im in images[s]]
    all_objects = [ob for s in splits for ob in objects[s]]
    stats: dict[str, Any] = {"root": str(root)}
    stats.update(_summary(all_images, all_objects, cat_names))
    stats["splits"] = {s: _summary(images[s], objects[s], cat_names) for s in splits}
    stats["objects_counted_by"] = (
        "instance_id" if not by_annotation else "annotation" if not by_instance else "mixed"
    )
    stats["scenes_shared_between_splits"] = sorted(
        s for s, where in scene_splits.items() if len(where) > 1
    )
    return stats


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_stats(stats: dict[str, Any]) -> str:
    """Markdown rendering of ``dataset_stats``: a paragraph in the manner of the paper's
    section 4.2, then tables per split, per occlusion-rate bin and per category."""
    splits = stats["splits"]
    ops, vpi = stats["objects_per_scene"], stats["visible_objects_per_image"]
    scene_parts = ", ".join(f"{v['num_scenes']} for {s}" for s, v in splits.items())
    data_parts = "; ".join(
        f"{s}: {_n(v['num_objects'], 'object')} in {_n(v['num_images'], 'image')}"
        for s, v in splits.items()
    )
    counted = {
        "instance_id": "distinct instance ids",
        "annotation": "annotations; no instance_id in the files",
        "mixed": "instance ids where given, else annotations",
    }[stats["objects_counted_by"]]
    lines = [
        f"# Dataset statistics: {stats['root']}",
        "",
        f"The number of scenes is {stats['num_scenes']} ({scene_parts}). "
        f"On average, each scene contains {ops['mean']:.1f} annotated objects "
        f"(min {ops['min']}, max {ops['max']}; counted by {counted}) and the number of visible "
        f"objects per image is {vpi['mean']:.1f} (min {vpi['min']}, max {vpi['max']}; visible: "
        f"at least {MIN_VISIBLE_PIXELS} visible pixels). There are {stats['num_objects']} "
        f"annotated objects in {stats['num_images']} images ({data_parts}). "
        f"{_pct(stats['fraction_occluded_over_10pct'])} of the annotated objects are occluded "
        f"by more than 10% (mean occlusion rate {_pct(stats['mean_occlude_rate'])}); the images "
        f"list {stats['num_occlusion_pairs']} occlusion pairs.",
        "",
    ]
    if stats["scenes_shared_between_splits"]:
        shared = ", ".join(stats["scenes_shared_between_splits"])
        lines += [f"**Warning:** scenes shared between splits: {shared}.", ""]

    lines += [
        "| split | scenes | images | objects | objects / scene | visible objects / image "
        "| occluded > 10% | occlusion pairs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in [*splits.items(), ("all", stats)]:
        o, p = v["objects_per_scene"], v["visible_objects_per_image"]
        lines.append(
            f"| {name} | {v['num_scenes']} | {v['num_images']} | {v['num_objects']} "
            f"| {o['mean']:.1f} ({o['min']}-{o['max']}) | {p['mean']:.1f} ({p['min']}-{p['max']}) "
            f"| {_pct(v['fraction_occluded_over_10pct'])} | {v['num_occlusion_pairs']} |"
        )

    hist = stats["occlusion_rate_histogram"]
    total = max(stats["num_objects"], 1)
    lines += [
        "",
        "## Occlusion rate",
        "",
        "| occlusion rate | objects | share |",
        "|---|---:|---:|",
    ]
    edges = hist["edges"]
    for i, c in enumerate(hist["counts"]):
        lo, hi = round(100 * edges[i]), round(100 * edges[i + 1])
        bracket = "]" if i == len(hist["counts"]) - 1 else ")"
        lines.append(f"| [{lo}%, {hi}%{bracket} | {c} | {_pct(c / total)} |")
    lines.append(
        f"| of which unoccluded (0%) | {stats['num_unoccluded']} | "
        f"{_pct(stats['num_unoccluded'] / total)} |"
    )

    lines += ["", "## Categories", "", "| category | objects | share |", "|---|---:|---:|"]
    for name, c in sorted(stats["category_counts"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {name} | {c} | {_pct(c / total)} |")
    return "\n".join(lines) + "\n"


def plot_occlusion_histogram(stats: dict[str, Any], out_png: str | os.PathLike) -> Path:
    """Bar chart of the occlusion-rate histogram per split (share of the split's objects).
    Uses matplotlib's Agg canvas directly, so no global backend is touched."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), dpi=100)
    ax = fig.add_subplot()
    edges = np.array(stats["occlusion_rate_histogram"]["edges"])
    centers = (edges[:-1] + edges[1:]) / 2 * 100
    groups = list(stats["splits"].items()) or [("all", stats)]
    width = 10 / (len(groups) + 1)
    for k, (name, v) in enumerate(groups):
        counts = np.array(v["occlusion_rate_histogram"]["counts"], np.float64)
        share = 100 * counts / max(counts.sum(), 1)
        ax.bar(centers + (k - (len(groups) - 1) / 2) * width, share, width, label=name)
    ax.set_xticks(edges * 100)
    ax.set_xlabel("occlusion rate |S_I| / |S_F| (%)")
    ax.set_ylabel("objects (%)")
    ax.set_title("Occlusion rate of annotated objects")
    ax.legend()
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


# --------------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------------


def palette(n: int) -> np.ndarray:
    """n well-separated colours, (n, 3) uint8: golden-angle hues, alternating saturation and
    value so that neighbours in the list differ even when hues come close."""
    from matplotlib.colors import hsv_to_rgb

    i = np.arange(n)
    hsv = np.stack(
        [(i * 0.618033988749895) % 1.0, np.where(i % 2, 0.55, 0.9), np.where(i % 3 == 2, 0.7, 1.0)],
        axis=1,
    )
    return (hsv_to_rgb(hsv) * 255).round().astype(np.uint8).reshape(n, 3)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _clip_text(draw: ImageDraw.ImageDraw, text: str, font, max_w: int) -> str:
    """``text`` shortened with '...' to fit ``max_w`` pixels (narrow cells keep headers apart)."""
    if draw.textlength(text, font=font) <= max_w:
        return text
    while text and draw.textlength(text + "...", font=font) > max_w:
        text = text[:-1]
    return text.rstrip() + "..." if text else ""


def _fit(im: Image.Image, w: int, h: int, resample: int, bg=(24, 24, 24)) -> Image.Image:
    """``im`` scaled to fit (w, h) with its aspect ratio kept, centred on a ``bg`` canvas."""
    s = min(w / im.width, h / im.height)
    size = (max(1, round(im.width * s)), max(1, round(im.height * s)))
    canvas = Image.new("RGB", (w, h), bg)
    canvas.paste(im.convert("RGB").resize(size, resample), ((w - size[0]) // 2, (h - size[1]) // 2))
    return canvas


def _row_panels(
    ds: AmodalDataset, image_id: int, n_app: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The image (H, W, 3), visible panel, invisible panel (both (H, W, 3) uint8) and up to
    ``n_app`` (RGBA crop, owner colour) appearances, most occluded objects first."""
    img = ds.load_image(image_id)
    anns = ds.annotations[image_id]
    full, vis, inv = ds.image_masks(image_id)
    colours = palette(len(anns))
    visible = np.zeros_like(img)
    for k in range(len(anns)):
        visible[vis[k]] = colours[k]
    # Grey, dimmed: the owner colours are then the only colours in the panel.
    grey = img.astype(np.float32) @ np.array(GREY_WEIGHTS, np.float32) * DIM
    invisible = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    # Hidden regions of several objects can overlap (A before B before C): paint big objects
    # first so that small ones stay visible on top.
    for k in np.argsort(-full.reshape(len(anns), -1).sum(1), kind="stable"):
        invisible[inv[k]] = colours[k]
    apps = []
    order = sorted(range(len(anns)), key=lambda k: -float(anns[k]["occlude_rate"]))
    for k in order:
        if len(apps) == n_app:
            break
        p = ds.appearance_path(anns[k]) if ds.root is not None else None
        if p is None or not p.is_file():
            continue
        rgba = ds.load_appearance(anns[k])
        x, y, w, h = (int(round(v)) for v in anns[k]["bbox"])
        crop = rgba[y : y + max(h, 1), x : x + max(w, 1)]
        if crop.size:
            apps.append((crop, colours[k]))
    return img, visible, invisible, apps


def _checker(w: int, h: int, step: int = 8) -> Image.Image:
    yy, xx = np.mgrid[:h, :w]
    tile = np.where(((yy // step + xx // step) % 2)[..., None] == 0, 90, 60).astype(np.uint8)
    return Image.fromarray(np.repeat(tile, 3, axis=2))


def _appearance_panel(
    apps: list[tuple[np.ndarray, np.ndarray]], w: int, h: int, font
) -> Image.Image:
    """Up to 4 appearances in a 2x2 grid, each on a checkerboard, framed in its owner's colour."""
    panel = Image.new("RGB", (w, h), (24, 24, 24))
    draw = ImageDraw.Draw(panel)
    if not apps:
        draw.text((6, h // 2 - 6), "no appearance files", fill=(160, 160, 160), font=font)
        return panel
    tw, th = w // 2, h // 2
    for k, (crop, colour) in enumerate(apps[:4]):
        ox, oy = (k % 2) * tw, (k // 2) * th
        inner_w, inner_h = max(tw - 6, 1), max(th - 6, 1)
        rgba = Image.fromarray(crop, "RGBA")
        s = min(inner_w / rgba.width, inner_h / rgba.height)
        rgba = rgba.resize(
            (max(1, round(rgba.width * s)), max(1, round(rgba.height * s))), Image.BILINEAR
        )
        tile = _checker(inner_w, inner_h)
        tile.paste(rgba, ((inner_w - rgba.width) // 2, (inner_h - rgba.height) // 2), rgba)
        panel.paste(tile, (ox + 3, oy + 3))
        draw.rectangle(
            [ox + 1, oy + 1, ox + tw - 2, oy + th - 2],
            outline=tuple(int(c) for c in colour),
            width=2,
        )
    return panel


def contact_sheet(
    root: str | os.PathLike,
    out_png: str | os.PathLike,
    n: int = 8,
    seed: int = 0,
    split: str | None = None,
    cell: int = 256,
    appearances: int = 4,
    hist_png: str | os.PathLike | None = None,
    check: bool = True,
) -> Path:
    """Draw a Figure-3-like grid of ``n`` random images (``seed``) of ``split`` (all splits
    when None) and save it as PNG.

    Columns: the image; visible instances S_V, each in its own colour on black; invisible
    regions S_I in their owner's colour (the same as in the visible column) over the image
    in dimmed grey; and, when the dataset has appearance files, up to ``appearances`` (<= 4)
    full-object appearances of the most occluded objects, framed in their owner's colour.
    Each row is
    titled with split, image id, file name and counts. Cells are ``cell`` pixels high; see
    SHEET_* for the resulting size. ``hist_png``: also save the occlusion-rate histogram.
    Returns the path of the sheet.
    """
    splits = load_splits(root, check=check)
    if split is not None:
        if split not in splits:
            raise ValueError(f"{root}: no split {split!r}; found {', '.join(splits)}")
        splits = {split: splits[split]}
    pool = [(s, iid) for s, ds in splits.items() for iid in ds.images]
    if not pool:
        raise ValueError(f"{root}: no images to draw")
    rng = np.random.default_rng(seed)
    picks = [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]

    rows = []
    for s, iid in picks:
        ds = splits[s]
        rows.append((s, iid, *_row_panels(ds, iid, min(appearances, 4))))
    has_app = any(r[-1] for r in rows)
    h0, w0 = rows[0][2].shape[:2]
    cell_h, cell_w = cell, max(1, round(cell * w0 / h0))
    ncols = 4 if has_app else 3
    width = SHEET_PAD + ncols * (cell_w + SHEET_PAD)
    height = SHEET_HEADER + len(rows) * (SHEET_LABEL + cell_h + SHEET_PAD)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    titles = ["image", "visible instances (S_V)", "invisible regions (S_I), owner's colour"]
    if has_app:
        titles.append("full appearance, most occluded")
    for c, t in enumerate(titles):
        t = _clip_text(draw, t, font, cell_w)
        draw.text((SHEET_PAD + c * (cell_w + SHEET_PAD), 4), t, fill=(0, 0, 0), font=font)

    y = SHEET_HEADER
    for s, iid, img, visible, invisible, apps in rows:
        ds = splits[s]
        n_obj = len(ds.annotations[iid])
        n_pairs = len(ds.images[iid].get("occlusion") or [])
        label = (
            f"{s} | image {iid} | {ds.images[iid]['file_name']} | {n_obj} objects | "
            f"{n_pairs} occlusion pairs"
        )
        label = _clip_text(draw, label, font, width - 2 * SHEET_PAD)
        draw.text((SHEET_PAD, y + 2), label, fill=(0, 0, 0), font=font)
        panels = [
            _fit(Image.fromarray(img), cell_w, cell_h, Image.BILINEAR),
            _fit(Image.fromarray(visible), cell_w, cell_h, Image.NEAREST),
            _fit(Image.fromarray(invisible), cell_w, cell_h, Image.NEAREST),
        ]
        if has_app:
            panels.append(_appearance_panel(apps, cell_w, cell_h, font))
        for c, p in enumerate(panels):
            sheet.paste(p, (SHEET_PAD + c * (cell_w + SHEET_PAD), y + SHEET_LABEL))
        y += SHEET_LABEL + cell_h + SHEET_PAD

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    if hist_png is not None:
        plot_occlusion_histogram(dataset_stats(root, check=check), hist_png)
    return out
