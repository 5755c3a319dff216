"""One split of a segan-coco dataset cut to the N images that `segan evaluate --sample N` picks,
with only the files those images name: a test set small enough to carry to the GPU machine
(a device call carries at most 64 MiB; docs/device.md).

    python scripts/subset_dataset.py .ood_mitsuba .ood_mitsuba30 --split test --sample 30

OUT holds annotations/<split>.json (the picked images, their annotations, every category),
their images, depth maps, appearance and de-occlusion files, the scene files they name, and
generation.json. `segan evaluate --data OUT` scores the same images, objects and ground truth
as `segan evaluate --data DATA --sample N`. Every copied path comes from the dataset's own
checked paths (`segan.data.coco`: nothing outside DATA); OUT must not exist yet (a copy that
was killed is deleted and made again), and the annotation file is written last, so a folder
with one is whole.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from segan.data.coco.writer import write_json_atomic
from segan.eval.inputs import load_split


def subset(data: Path, out: Path, split: str, sample: int) -> dict:
    """Write the subset (module docstring); returns {"images", "objects", "files"}."""
    ds, root, _, image_ids = load_split(data, split, data_format="segan-coco", sample=sample)
    if out.exists():
        raise FileExistsError(f"{out} exists: give a new folder")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed copy's leftovers
    root = root.resolve()
    files = [p for i in image_ids for _, _, p in ds.named_files(i)]
    scenes = {ds.images[i].get("scene_id") for i in image_ids} - {None}
    files += [p for s in sorted(scenes) if (p := root / "scenes" / f"{s}.json").is_file()]
    if (root / "generation.json").is_file():
        files.append(root / "generation.json")
    for src in files:
        rel = src.resolve().relative_to(root)  # inside DATA: the reader checked each name
        dst = tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    split_json = ds.to_json()
    keep = set(image_ids)
    split_json["images"] = [im for im in split_json["images"] if im["id"] in keep]
    split_json["annotations"] = [a for a in split_json["annotations"] if a["image_id"] in keep]
    write_json_atomic(tmp / "annotations" / f"{split}.json", split_json)
    tmp.rename(out)
    return {"images": len(image_ids), "objects": len(split_json["annotations"]),
            "files": len(files)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="a segan-coco dataset folder")
    p.add_argument("out", type=Path, help="the subset's folder (must not exist)")
    p.add_argument("--split", default="test")
    p.add_argument("--sample", type=int, required=True, metavar="N",
                   help="images spread evenly over the split (segan evaluate --sample N's)")
    args = p.parse_args(argv)
    if args.sample < 1:
        p.error("--sample must be >= 1")
    try:
        n = subset(args.data, args.out, args.split, args.sample)
    except (OSError, ValueError) as e:
        print(f"subset_dataset: error: {e}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: {n['images']} images, {n['objects']} objects, {n['files']} files, "
          f"{size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
