"""Dataset generation: scenes -> views -> exact amodal ground truth -> segan-coco files.

For every view (section 4.1 of the paper), :mod:`segan.data.view_truth` renders it and derives
its exact ground truth (S_V, S_F, S_I, appearance, occlusion pairs); this module writes the
files and runs the work.

Determinism: scene i is generated from SeedSequence([seed, i]) and view v of scene i from
SeedSequence([seed, i, v]), so any split of the work across processes or machines writes the
same bytes. With ``cfg.randomize`` (``segan.data.randomize``) a view's image size, light gain
and photometry come from a second stream, SeedSequence([seed, i, v, 1]); with ``cfg.deocclusion``
(``segan.data.deocclusion``) the removal sets from a third, SeedSequence([seed, i, v, 2]), and
the view is rendered again without each set (files under deocclusion/). Resumability: a
view's files are written atomically (``segan.data.storage``); its record in ``parts/`` is
written last, so a view with a record is complete and is skipped when a killed run is
started again.

Executors: one process, a pool of spawned processes (``workers``), or a Ray cluster
(``ray_address``, ``segan.data.ray_executor``) run the same tasks (a scene and a chunk of its
views, ``run_task``) into the same store, a local folder or an fsspec URL.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from segan import __version__
from segan.data import coco
from segan.data.atomic import png_bytes
from segan.data.deocclusion import DeocclusionTruth
from segan.data.presets import SPLITS, GenerateConfig
from segan.data.storage import Store, open_store
from segan.data.view_truth import ViewTruth, build_renderer, build_scene, render_view_truth
from segan.render.base import Renderer
from segan.scene.categories import category_id, coco_categories
from segan.scene.types import Scene, SceneObject

CONFIG_FILE = "generation.json"
PARTS_DIR = "parts"


def image_id_of(scene_index: int, view_index: int) -> int:
    return scene_index * 1_000_000 + view_index + 1


def annotation_id_of(image_id: int, instance_id: int) -> int:
    return image_id * 1000 + instance_id


def view_paths(cfg: GenerateConfig, scene_index: int, view_index: int) -> dict[str, str]:
    sid = cfg.scene_id(scene_index)
    stem = f"{sid}/{view_index:05d}"
    return {"image": f"{stem}.png", "depth": f"{stem}.png", "part": f"{stem}.json", "stem": stem}


def write_view(out: Store, cfg: GenerateConfig, scene_index: int, view_index: int,
               truth: ViewTruth) -> None:
    """Write a view's image, depth, appearances, then its record (last: marks it complete)."""
    paths = view_paths(cfg, scene_index, view_index)
    image_id = image_id_of(scene_index, view_index)
    out.write_bytes(f"images/{paths['image']}", png_bytes(truth.rgb))
    depth_mm = np.clip(np.round(truth.depth * 1000.0), 0, 65535).astype(np.uint16)
    out.write_bytes(f"depth/{paths['depth']}", png_bytes(depth_mm))

    ann_ids = {o.instance_id: annotation_id_of(image_id, o.instance_id) for o in truth.objects}
    annotations = []
    for obj in truth.objects:
        app_file = f"{paths['stem']}_{obj.instance_id:03d}.png"
        out.write_bytes(f"appearance/{app_file}", png_bytes(obj.appearance))
        ann = coco.make_annotation(
            ann_ids[obj.instance_id], image_id, category_id(obj.category),
            obj.full_mask, obj.visible_mask, appearance_file=app_file,
        )
        ann["instance_id"] = obj.instance_id
        annotations.append(ann)
    cam = truth.view.camera
    image = coco.make_image(
        image_id, paths["image"], cam.width, cam.height,
        scene_id=cfg.scene_id(scene_index), depth_file=paths["depth"],
        occlusion=[[ann_ids[q], ann_ids[p]] for q, p in truth.occlusion],
    )
    image["camera"] = {"position": list(cam.position), "target": list(cam.target),
                       "yfov": cam.yfov}
    if truth.image_params is not None:  # absent without randomisation: same bytes as before
        image["camera"]["roll"] = cam.roll
        image["randomization"] = truth.image_params.to_dict()
    if truth.deocclusion is not None:  # absent without cfg.deocclusion (docs/dataset.md)
        image.update(write_deocclusion(out, paths["stem"], truth.deocclusion, ann_ids))
    record = {"split": cfg.scenes[scene_index].split, "image": image, "annotations": annotations}
    out.write_bytes(f"{PARTS_DIR}/{paths['part']}", json.dumps(record).encode())


def write_deocclusion(out: Store, stem: str, truth: DeocclusionTruth, ann_ids: dict[int, int]
                      ) -> dict:
    """Write a view's de-occlusion images under deocclusion/; returns the image record's
    fields ``deocclusion`` (one entry per removal set) and ``background_file``."""
    entries = []
    for k, removal in enumerate(truth.removals):
        name = f"{stem}_remove{k}.png"
        out.write_bytes(f"deocclusion/{name}", png_bytes(removal.rgb))
        entries.append({
            "removed": [ann_ids[i] for i in removal.removed],
            "image_file": name,
            "revealed": [{"id": ann_ids[i], "visible_mask": coco.encode_mask(m)}
                         for i, m in sorted(removal.revealed.items())],
        })
    fields: dict = {"deocclusion": entries}
    if truth.background is not None:
        fields["background_file"] = f"{stem}_background.png"
        out.write_bytes(f"deocclusion/{fields['background_file']}", png_bytes(truth.background))
    return fields


def geometry_hash(obj: SceneObject) -> str:
    """Digest of an object's part meshes (object frame): equal only for the same instance."""
    h = hashlib.sha1()
    for part in obj.parts:
        h.update(np.ascontiguousarray(part.vertices, np.float32).tobytes())
        h.update(np.ascontiguousarray(part.faces, np.int32).tobytes())
    return h.hexdigest()[:16]


def scene_record(scene: Scene, split: str) -> dict:
    """What a scene is made of, for provenance and the train/test disjointness checks."""
    return {
        "scene_id": scene.scene_id,
        "seed": list(scene.seed),
        "split": split,
        "room": {"kind": scene.room.kind, "width": scene.room.width, "depth": scene.room.depth,
                 "height": scene.room.height},
        "objects": [
            {"instance_id": o.instance_id, "category": o.category, "annotated": o.annotated,
             "support_id": o.support_id,
             "textures": sorted({p.material.name for p in o.parts}),
             "geometry": geometry_hash(o),
             "aabb": o.world_aabb().round(4).tolist()}
            for o in scene.objects
        ],
    }


def part_path(cfg: GenerateConfig, scene_index: int, view_index: int) -> str:
    return f"{PARTS_DIR}/{view_paths(cfg, scene_index, view_index)['part']}"


def view_done(out: Store, cfg: GenerateConfig, scene_index: int, view_index: int) -> bool:
    return out.exists(part_path(cfg, scene_index, view_index))


@dataclass(frozen=True)
class Task:
    scene_index: int
    views: tuple[int, ...]


_worker_cache: dict[tuple, tuple[Scene, Renderer]] = {}


def _scene_and_renderer(cfg: GenerateConfig, scene_index: int) -> tuple[Scene, Renderer]:
    """One scene and renderer alive per process: tasks of the same scene reuse them."""
    key = (json.dumps(cfg.to_dict(), sort_keys=True), scene_index)
    if key not in _worker_cache:
        for _, renderer in _worker_cache.values():
            renderer.close()
        _worker_cache.clear()
        scene = build_scene(cfg, scene_index)
        _worker_cache[key] = (scene, build_renderer(cfg, scene))
    return _worker_cache[key]


def run_task(cfg: GenerateConfig, out: Store, task: Task) -> int:
    """Generate the task's views that are not stored yet; returns how many views it wrote.
    Running it again (a retry, a resumed run, a duplicate) writes the same bytes."""
    scene, renderer = _scene_and_renderer(cfg, task.scene_index)
    scene_file = f"scenes/{scene.scene_id}.json"
    if not out.exists(scene_file):
        split = cfg.scenes[task.scene_index].split
        out.write_bytes(scene_file, json.dumps(scene_record(scene, split)).encode())
    written = 0
    for v in task.views:
        if view_done(out, cfg, task.scene_index, v):
            continue
        truth = render_view_truth(cfg, scene, renderer, task.scene_index, v)
        write_view(out, cfg, task.scene_index, v, truth)
        written += 1
    return written


def _run_task_star(args: tuple[GenerateConfig, Store, Task]) -> tuple[Task, int]:
    return args[2], run_task(*args)


def _init_worker(threads: int) -> None:
    # llvmpipe starts one raster thread per core in every process: share the cores instead.
    os.environ.setdefault("LP_NUM_THREADS", str(threads))


def plan_tasks(cfg: GenerateConfig, out: Store, chunk: int) -> list[Task]:
    """Chunks of not-yet-written views, scene by scene."""
    done = out.list_files(PARTS_DIR)  # one listing, not a lookup per view (object stores)
    tasks = []
    for s in range(len(cfg.scenes)):
        todo = [v for v in range(cfg.views_per_scene) if part_path(cfg, s, v) not in done]
        for i in range(0, len(todo), chunk):
            tasks.append(Task(s, tuple(todo[i : i + chunk])))
    return tasks


def check_or_write_config(out: Store, cfg: GenerateConfig) -> None:
    """A folder holds one dataset: resuming with another config is an error, not a mix."""
    path = out.describe(CONFIG_FILE)
    if out.exists(CONFIG_FILE):
        try:
            old = json.loads(out.read_bytes(CONFIG_FILE))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); remove it or use a new folder") from e
        new = cfg.to_dict()
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise ValueError(
                f"{path}: this folder was generated with a different config "
                f"(fields {', '.join(diff)} differ); use a new output folder"
            )
        return
    out.write_bytes(CONFIG_FILE, json.dumps(cfg.to_dict(), indent=2).encode())


def generate(
    out: str | os.PathLike | Store,
    cfg: GenerateConfig,
    *,
    workers: int | None = None,
    chunk: int = 10,
    progress: bool = True,
    ray_address: str | None = None,
) -> dict[str, int]:
    """Generate (or finish) the dataset ``cfg`` describes in ``out``; returns counts.

    ``out`` is a folder, an fsspec URL (``s3://bucket/prefix``, ...) or a store
    (``segan.data.storage``). ``workers`` processes (None: 1) share the work on this machine;
    with ``ray_address`` (``auto``, ``local``, ``HOST:PORT``, ``ray://HOST:PORT``) the tasks
    run on that Ray cluster instead, ``workers`` at a time (None: as many as its CPUs). Tasks
    are a scene and ``chunk`` of its views (fewer: more even load, more scene builds).
    """
    store = open_store(out)
    parallel = ray_address is not None or (workers or 1) > 1
    if parallel and store.process_local:
        raise ValueError(
            f"{store.describe()}: this filesystem lives inside one process, so worker "
            "processes and Ray tasks cannot write to it; use a folder, file:// or an object "
            "store URL (s3://, gs://, ...), or workers=1 without Ray"
        )
    store.prepare()
    check_or_write_config(store, cfg)
    store.remove_stale_temporaries()
    tasks = plan_tasks(cfg, store, chunk)
    total = len(cfg.scenes) * cfg.views_per_scene
    remaining = sum(len(t.views) for t in tasks)
    where = "" if ray_address is None else ", Ray"
    bar = tqdm(total=total, initial=total - remaining, unit="view", disable=not progress,
               desc=f"generate {cfg.preset} ({cfg.renderer}{where})")
    if ray_address is not None:
        from segan.data.ray_executor import run_on_ray

        run_on_ray(cfg, store, tasks, ray_address, max_in_flight=workers,
                   on_done=lambda task: bar.update(len(task.views)))
    elif (workers or 1) <= 1:
        _init_worker(max(1, os.cpu_count() or 1))
        for task in tasks:
            run_task(cfg, store, task)
            bar.update(len(task.views))
    else:
        assert workers is not None
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")  # GL contexts must not be inherited through fork
        with ctx.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
            args = [(cfg, store, t) for t in tasks]
            for task, _ in pool.imap_unordered(_run_task_star, args):
                bar.update(len(task.views))
    bar.close()
    # A worker killed mid-write (its task retried or the run resumed) can leave a temporary
    # behind; no writer is alive now, so every one left is stale.
    store.remove_stale_temporaries()
    return assemble(store, cfg)


def iter_parts(out: Store, cfg: GenerateConfig) -> Iterable[dict]:
    for s in range(len(cfg.scenes)):
        paths = [part_path(cfg, s, v) for v in range(cfg.views_per_scene)]
        try:
            records = out.read_many(paths)  # one scene at a time: batched on object stores
        except FileNotFoundError:
            missing = next(p for p in paths if not out.exists(p))
            v = paths.index(missing)
            raise FileNotFoundError(
                f"{out.describe(missing)}: view {v} of scene {cfg.scene_id(s)} is missing; "
                "run `segan generate` again on this folder to finish it"
            ) from None
        for path in paths:
            try:
                yield json.loads(records[path])
            except json.JSONDecodeError as e:
                raise ValueError(f"{out.describe(path)}: not valid JSON ({e})") from e


def assemble(out: str | os.PathLike | Store, cfg: GenerateConfig) -> dict[str, int]:
    """Gather the per-view records into annotations/{split}.json (in scene, view order)."""
    out = open_store(out)
    images: dict[str, list[dict]] = {s: [] for s in SPLITS}
    annotations: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for record in iter_parts(out, cfg):
        images[record["split"]].append(record["image"])
        annotations[record["split"]].extend(record["annotations"])
    info = {"description": f"segan synthetic occlusion dataset, preset {cfg.preset}",
            "version": cfg.format_version, "generator": f"segan {__version__}",
            "renderer": cfg.renderer, "seed": cfg.seed}
    counts = {}
    for split in SPLITS:
        if not images[split]:
            continue
        rel = f"annotations/{split}.json"
        out.write_bytes(rel, coco.encode_annotations(
            out.describe(rel), images[split], annotations[split], coco_categories(cfg.content),
            info=info,
        ))
        counts[f"{split}_images"] = len(images[split])
        counts[f"{split}_objects"] = len(annotations[split])
    return counts
