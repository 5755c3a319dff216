"""Evaluate SeGAN and baselines on a dataset split: the paper's Tables 1, 2 and 5 (Sec. 5.2).

    from segan.eval.config import EvaluationConfig
    from segan.eval.evaluate import evaluate
    results = evaluate(EvaluationConfig(checkpoint="runs/tiny", data="data/tiny",
                                        out="out/eval", methods=("segan", "visible_as_full")))
    evaluate(EvaluationConfig(data="data/tiny", out="out/eval",
                              methods=("segan=runs/tiny", "pix2pix=runs/p2p")))

This module is the loop; each job has its own module:

- `segan.eval.config`: what to evaluate (`EvaluationConfig`, validated, saved in results.json);
- `segan.eval.methods`: the methods, looked up by name, each built from its own checkpoint;
- `segan.eval.inputs`: the split's images and each image's objects as the methods see them
  (`prepare_image`: as in training at test time), all its annotated objects in one forward;
- `segan.eval.scoring`: one method's scores, image by image (`MethodScores`: Tables 1, 2, 5);
- `segan.eval.figures`: the figures (the paper's Figures 4-5, best and worst objects).

Outputs in OUT: results.json (every number, the evaluation config, the reference checkpoint's
config and identity), results.md (`segan.eval.report`), figure_<method>.png and, for a method
that predicts S_F, figure_<method>_best_worst.png (`segan.eval.figures`); OUT/crops/ with
``save_crops`` (`segan.eval.crops`).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tqdm import tqdm

from segan.data.atomic import file_sha256, write_bytes_atomic
from segan.device import autocast_dtype, precision_name, resolve_device
from segan.inference import load_visible_segmenter

from .baselines import ImageInputs
from .config import RESULTS_FORMAT, RESULTS_VERSION, EvaluationConfig
from .crops import CROPS_FOLDER, CropWriter
from .figures import FIGURE_COLUMNS, write_figures
from .image_methods import DetectionMeter, PredictedVisible
from .inputs import input_key, load_split, prepare_image
from .methods import MethodContext, ensemble_members, get_method, load_run
from .perceptual import load_perceptual
from .report import PAPER_NUMBERS, write_report
from .scoring import MethodScores, ground_truth_pairs_5pct, run_method

VISIBLE_PREDICTED_RULE = (
    "predicted masks with score >= the threshold are matched one to one to the ground-truth "
    "objects, greedily by IoU with the ground-truth S_V, a pair needing IoU >= 0.5; a matched "
    "object gets the predicted mask as its S_V input; an unmatched object is a miss (every "
    "IoU 0, no painting, occlusion pairs involving it wrong); unmatched predictions are false "
    "positives, and the methods see them as other things' visible pixels (SeGAN's occluder "
    "context and gate), as segan predict does, without scoring them")


def finite_or_none(obj: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evaluate(cfg: EvaluationConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate `cfg.methods` on `cfg.data`'s split and write OUT/results.{json,md} and the
    figures (see `EvaluationConfig` for every field).

    Each method's inputs follow its own config (image size, box expansion, crop size); the
    results' "config" is the reference checkpoint's (`cfg.checkpoint`, else the first
    method's). A split without appearance images (or without occlusion pairs, which its format
    lacks) gets "not applicable" painting (or layering) results for every method, with a note
    saying why. progress: a progress bar. Returns the results dict written to results.json.
    """
    # label -> (registered method name, checkpoint); NAME@LABEL scores one method several
    # times in one run (e.g. segan@plus=RUN_A segan@prev=RUN_B), under its label
    specs = cfg.method_specs()
    for name, _ in specs.values():
        get_method(name)  # unknown names fail here, before any loading
    # else the first method's checkpoint (an ensemble's: its first member)
    reference = cfg.checkpoint if cfg.checkpoint is not None else next(
        (ensemble_members(p)[0] for _, p in specs.values() if p is not None), None)
    if reference is None:
        raise ValueError("no checkpoint: pass --checkpoint, or NAME=CHECKPOINT for a method")
    for label, (name, path) in specs.items():
        if path is None and cfg.checkpoint is None and get_method(name).task is not None:
            raise ValueError(f"method {label!r} needs a checkpoint: --method {label}=RUN_DIR, "
                             "or --checkpoint")

    start = time.perf_counter()
    dev = resolve_device(cfg.device, "--device")
    # a wrong file fails here
    perceptual = load_perceptual(cfg.fid_weights, cfg.lpips_weights, dev)
    ref_net, ref_cfg, identity = load_run(reference, dev)
    amp_dtype = autocast_dtype(dev)
    ds, data_dir, ann_file, image_ids = load_split(cfg.data, cfg.split, cfg.data_format,
                                                   cfg.cache_dir, cfg.limit, cfg.sample,
                                                   progress)

    runs = {reference: (ref_net, ref_cfg, identity)}
    built = {}
    for label, (name, path) in specs.items():
        entry = get_method(name)
        ctx = MethodContext(name=label, task=entry.task, checkpoint=path or reference,
                            own_checkpoint=path, reference_cfg=ref_cfg, device=dev,
                            amp_dtype=amp_dtype, data_dir=data_dir, cache_dir=cfg.cache_dir,
                            index_data_dir=cfg.index_data,
                            progress=progress, _runs=runs)
        built[label] = entry.build(ctx)
    scores = {m: MethodScores(b.paints, cfg.figure_objects, b.cfg.data.image_mean,
                              b.cfg.data.image_std,
                              perceptual.meter() if b.paints and perceptual.any else None,
                              cfg.best_worst)
              for m, b in built.items()}
    for m, b in built.items():
        segments = getattr(b.run, "segments", True)
        scores[m].kind_hint = (segments, getattr(b.run, "layers", segments))
    source = detections = None
    if cfg.visible == "predicted":
        source = PredictedVisible(load_visible_segmenter(cfg.visible_segmenter, dev),
                                  cfg.visible_score_threshold)
        detections = DetectionMeter()

    if not any("occlusion" in img for img in ds.images.values()):  # e.g. KINS, D2SA, DYCE
        for sc in scores.values():
            sc.layering_note = ("not applicable: the dataset has no occlusion pairs (its "
                                "format has none)")
    num_objects = 0
    crops = None
    if cfg.save_crops:
        first = next(iter(built.values())).cfg.data
        crops = CropWriter(cfg.out / CROPS_FOLDER, cfg.save_crops,
                           [m for m, b in built.items() if b.paints], first.image_mean,
                           first.image_std)
    # Scoring (CPU: masks at full resolution, SSIM) runs in one worker thread per method, so
    # the methods' scores are computed side by side and overlap the next image's forward
    # passes; each meter still sees the images in order, so the results do not change.
    scorers = {m: ThreadPoolExecutor(1, thread_name_prefix=f"score-{m}") for m in built}
    pending: deque[Future] = deque()
    try:
        for iid in tqdm(image_ids, desc=f"evaluate {cfg.split}", unit="img",
                        disable=not progress, dynamic_ncols=True):
            prepared: dict[tuple, ImageInputs] = {}
            gt_pairs = ds.occlusion_pairs(iid)
            gt_pairs_5pct = None  # from the first prepared inputs: the same for every method
            image, masks = ds.load_image(iid), ds.image_masks(iid)  # decoded once per image
            given = detected = context = None
            if source is not None:
                given, match, n_pred, context = source(image, masks[1])
                detections.add(match, n_pred)
                detected = match.matched
            for m, b in built.items():
                key = input_key(b.cfg)
                if key not in prepared:
                    prepared[key] = prepare_image(ds, iid, b.cfg, dev, given, image, masks,
                                                  context)
                inputs = prepared[key]
                if gt_pairs_5pct is None:
                    gt_pairs_5pct = ground_truth_pairs_5pct(inputs)
                pred = run_method(b.run, inputs, detected)
                if crops is not None:
                    crops.add(m, inputs, pred, detected)
                pending.append(scorers[m].submit(scores[m].add, inputs, pred, gt_pairs,
                                                 detected, gt_pairs_5pct))
            num_objects += inputs.num_objects
            while len(pending) > 4 * len(built):  # bound the images held in memory
                pending.popleft().result()
        while pending:
            pending.popleft().result()  # re-raises a scoring error
    finally:
        for pool in scorers.values():
            pool.shutdown(wait=True, cancel_futures=True)

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    figures, best_worst_figures = write_figures(out, scores)
    method_results = {}
    for m, b in built.items():
        method_results[m] = scores[m].compute()
        method_results[m].update(checkpoint=b.checkpoint, notes=list(b.notes))
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "command": cfg.command_line(),
        "evaluation": cfg.to_dict(),
        "data": {"path": str(data_dir), "source": str(cfg.data), "split": cfg.split,
                 "annotations": str(ann_file),
                 "annotations_sha256": file_sha256(ann_file)},
        "visible": cfg.visible,
        "visible_segmenter": None if source is None else {
            **{k: v for k, v in source.segmenter.identity.items() if k != "config"},
            "score_threshold": source.score_threshold, "match_iou": source.min_iou,
            "rule": VISIBLE_PREDICTED_RULE},
        "detection": None if detections is None else detections.compute(),
        "checkpoint": identity,
        "config": ref_cfg.to_dict(),
        "model_hparams": ref_net.hparams,
        "device": str(dev),
        "precision": precision_name(amp_dtype),
        "limit": cfg.limit,
        "sample": cfg.sample,
        "num_images": len(image_ids),
        "num_objects": num_objects,
        "mask_threshold": 0.5,
        "methods": method_results,
        "perceptual": perceptual.describe(),
        "figures": figures,
        "figure_columns": list(FIGURE_COLUMNS),
        "figures_best_worst": best_worst_figures,
        "crops": None if crops is None else crops.finish(),
        "paper": PAPER_NUMBERS,
        "seconds": round(time.perf_counter() - start, 2),
    }
    results = finite_or_none(results)
    write_bytes_atomic(out / "results.json", json.dumps(results, indent=1).encode())
    write_report(results, out / "results.md")
    return results
