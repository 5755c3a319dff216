"""The training loop: one loop for every configuration; what a step does lives in the task.

    cfg = resolve_config("configs/tiny.yaml", ["run.seed=1"], run_dir, resume=False)
    training_loop(cfg, data_dir, run_dir)

The config's `task` picks the task object (segan.train.registry: networks, optimisers, data,
the train step, the log grid, the inference export). The loop keeps the runtime and DDP, exact
resume, the warm start from saved weights (`model.init_from`: `warm_start`), logging,
checkpointing and the progress bar.

RUN/ receives config.yaml (the resolved config), stats.jsonl and tensorboard/ (segan.train.logs),
grids/, checkpoints/ (segan.train.checkpoint) and model.safetensors (inference weights, updated
with every checkpoint). Under torchrun every rank runs this loop; rank 0 alone writes files.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm import tqdm

from segan.checkpoint import CHECKPOINT_VERSION, SavedWeights, load_checkpoint, read_task_weights
from segan.config import ConfigError, TrainConfig, apply_overrides, config_diff, load_config
from segan.data.atomic import write_bytes_atomic
from segan.data.formats import resolve_dataset
from segan.weights_io import load_torch

from . import distributed
from .checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .logs import RunLogger
from .prefetch import DevicePrefetcher
from .registry import Task, backbone_record, build_task, get_task
from .runtime import Runtime, make_runtime
from .tasks import build_segan
from .weight_average import WeightAverage

__all__ = ["backbone_record", "build_segan", "read_init_from", "resolve_config",
           "training_loop", "warm_start"]


def resolve_config(config_path: str | os.PathLike | None, overrides: Sequence[str],
                   run_dir: str | os.PathLike, resume: bool = False,
                   backbone_weights: str | None = None) -> TrainConfig:
    """The config a run uses. Fresh: the YAML file (or defaults) + overrides. Resuming a run
    that has a checkpoint: the checkpoint's config + overrides (e.g. more steps); a --config
    given as well, with the overrides, must equal the checkpoint's in every key the overrides
    do not set (so the command that started the run, plus --resume, is accepted). Its task
    must be registered (`segan.train.registry`): else a ConfigError naming the known tasks."""
    overrides = list(overrides)
    if backbone_weights is not None:
        overrides.append(f"model.backbone_weights={backbone_weights}")
    cfg = _resolve_config(config_path, overrides, run_dir, resume)
    try:
        task = get_task(cfg.task)  # a ConfigError naming the known tasks
    except ConfigError as e:
        task_overrides = [o for o in overrides if o.partition("=")[0].strip() == "task"]
        if task_overrides:  # blame the override that set it, as load_config does
            raise ConfigError(f"override {task_overrides[-1]!r}: {e}") from None
        raise
    if task.config_section is not None:
        cfg.section(task.config_section)  # saved with the run, defaults included
    return cfg


def _resolve_config(config_path: str | os.PathLike | None, overrides: list[str],
                    run_dir: str | os.PathLike, resume: bool) -> TrainConfig:
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is None:
        if resume and config_path is None:
            raise ConfigError(f"{run_dir} has no checkpoint to resume: pass --config to start it")
        return load_config(config_path, overrides)
    saved = TrainConfig.from_dict(load_torch(ckpt, mmap=True)["config"])
    if config_path is not None:
        # the command that started the run (file + overrides), plus --resume, agrees; keys
        # set by an override may change (e.g. more steps)
        keys = [o.partition("=")[0].strip() for o in overrides]
        differ = [k for k in config_diff(load_config(config_path, overrides), saved)
                  if not any(k == key or k.startswith(f"{key}.") for key in keys)]
        if differ:
            raise ConfigError(f"--config {config_path} differs from the run being resumed "
                              f"({ckpt.name}) in: {', '.join(differ)}. Resume without --config, "
                              "and pass key=value overrides to change settings")
    return TrainConfig.from_dict(apply_overrides(saved.to_dict(), overrides))


def read_init_from(cfg: TrainConfig) -> SavedWeights | None:
    """The saved weights `model.init_from` names for a fresh run of cfg's task (None for
    "none"): a run folder, an export, a checkpoint .pt or a bundle (`read_task_weights`). A
    path that does not exist is a ConfigError naming the key; weights of another task a
    ValueError naming the file."""
    init_from = cfg.model.init_from
    if init_from == "none":
        return None
    if not Path(init_from).exists():
        raise ConfigError(f"model.init_from: no file or folder {init_from} (give a run folder, "
                          "its model.safetensors, a checkpoint .pt or a bundle; or none)")
    return read_task_weights(init_from, cfg.task)


def warm_start(net: nn.Module, task: Task, saved: SavedWeights) -> dict[str, Any]:
    """`saved` (`read_init_from`) loaded over `net`, the fresh network of `task` built from the
    run's config with backbone weights "none"; returns the run's backbone_init record.

    A warm start, not a resume: the caller's optimisers, lr schedule and step start fresh.
    The architecture must match (a missing or unexpected key or a tensor of another shape is
    a ValueError naming the file: `SavedWeights.load_into`); the training-only networks that
    an export or bundle lacks (`task.export_exclude`, e.g. SeGAN's discriminator) keep their
    fresh initialisation. The record says where the run started, with the saved weights' own
    backbone_init where known (a model card's ImageNet licence and sha256 stay reachable)."""
    saved.load_into(net, task.export_exclude,
                    what=f"the {task.name!r} network of this run's config (model.init_from)")
    record: dict[str, Any] = {"weights": "init_from", "init_from": task.cfg.model.init_from,
                              **saved.identity()}
    if saved.backbone_init:
        record["backbone_init"] = saved.backbone_init
    return record


def training_loop(cfg: TrainConfig, data_dir: str | os.PathLike, run_dir: str | os.PathLike,
                  resume: bool = False, cache_dir: str | os.PathLike | None = None,
                  stop_at: int | None = None, progress: bool = True,
                  time_limit_s: float | None = None, data_format: str = "auto"
                  ) -> dict[str, Any]:
    """Train the config's task on DATA (its `data.train_split`) into run_dir.

    resume: continue from the newest checkpoint of run_dir (model, optimisers, scaler, every
        rank's random generators, data order); without one, start fresh. Without `resume`, a
        run_dir that has checkpoints is refused. A fresh start with `model.init_from` loads
        those weights over the new network (`warm_start`); a resume does not load them again.
    stop_at: stop (with a checkpoint) after this many steps, e.g. to fit a time-limited job.
    time_limit_s: stop (with a checkpoint) at the first logging step after this many seconds
        of training (rank 0's clock decides for every rank); `--resume` goes on from there.
    data_format: the dataset's format ("auto": detected); any other than segan-coco is
        converted once into the cache folder (segan.data.formats.resolve_dataset). Data
        without appearance images trains the segmentor alone (task segan: SeGANTask.open_data).
    Returns a summary: steps, seconds, the last logged losses, the last checkpoint.
    """
    task = build_task(cfg)
    if task.total_steps < 1:
        raise ConfigError(f"task {task.name!r} would train 0 steps: set "
                          f"{' / '.join(task.steps_keys)} (their sum is the run's length)")
    rt = make_runtime(cfg.run, static_shapes=task.static_shapes)
    try:
        return _train(cfg, task, rt, Path(data_dir), Path(run_dir), resume, cache_dir, stop_at,
                      progress, time_limit_s, data_format)
    finally:
        distributed.destroy()


def _train(cfg: TrainConfig, task: Task, rt: Runtime, data_dir: Path, run_dir: Path,
           resume: bool, cache_dir: str | os.PathLike | None, stop_at: int | None,
           progress: bool, time_limit_s: float | None = None, data_format: str = "auto"
           ) -> dict[str, Any]:
    t_enter = time.perf_counter()
    # where the time before the first step goes (the summary's "startup"): a GPU lease pays
    # for the data cache's build and the first step's warm-up before any training
    startup: dict[str, float] = {}
    ckpt_path = latest_checkpoint(run_dir) if resume else None
    if not resume and list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already has checkpoints: pass --resume to continue it, or "
                         "choose another --out")
    # a warm start's weights, read before the data so that a wrong path fails at once
    init = read_init_from(cfg) if ckpt_path is None else None
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(run_dir / "config.yaml", cfg.to_yaml().encode())

    # another format: converted once (segan.data.formats) by local rank 0 of each node, the
    # other ranks wait for it and find the same copy
    builder = rt.dist.local_rank == 0
    if builder:
        data_dir = resolve_dataset(data_dir, data_format, cache_dir,
                                   progress=progress and rt.is_main)
    distributed.barrier()
    if not builder:
        data_dir = resolve_dataset(data_dir, data_format, cache_dir, build=False)
    data = task.open_data(data_dir, cache_dir, rt, progress)
    startup["data_s"] = time.perf_counter() - t_enter
    if getattr(data, "built_here", False):  # a decoded cache built now: where its time went
        startup.update({f"cache_{k}": v for k, v in data.meta["build_phases_s"].items()})

    # networks: identical init on every rank (seed), then per-rank streams (seed + rank)
    state = load_checkpoint(ckpt_path) if ckpt_path is not None else None
    rt.seed(cfg.run.seed)
    # the checkpoint or the warm start's weights overwrite the backbone's initialisation
    backbone = cfg.model.backbone_weights if state is None and init is None else "none"
    net = task.build_network(backbone)
    if state is not None:
        backbone_init = state["backbone_init"]
        net.load_state_dict(state["model"])
    elif init is not None:
        backbone_init = warm_start(net, task, init)
        del init
    else:
        backbone_init = task.backbone_record(backbone)
    model = task.prepare_model(net, rt)
    net.train()
    opt = task.make_optimizers(net)
    scaler = rt.grad_scaler()
    step, epoch, index = 0, 0, 0
    rt.seed(cfg.run.seed + rt.dist.rank)
    # run.ema_decay: the exported weights are an average over the steps (WeightAverage)
    ema = WeightAverage(net, cfg.run.ema_decay) if cfg.run.ema_decay else None
    if state is not None:
        if ema is not None:
            if not state.get("ema"):
                raise ValueError(f"{ckpt_path}: field 'ema': no weight average in this "
                                 "checkpoint, but the run's run.ema_decay is "
                                 f"{cfg.run.ema_decay}")
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizers"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, epoch, index = state["step"], state["data"]["epoch"], state["data"]["index"]
        if state.get("world_size") == rt.dist.world_size:
            set_rng_state(state["rng"][rt.dist.rank], rt.device)
        else:  # not exact: keep the epoch and the share of it done, restart dropout streams
            index = index * state["world_size"] // rt.dist.world_size
            warnings.warn(f"resuming a run of {state['world_size']} processes with "
                          f"{rt.dist.world_size}: dropout streams restart from seed + rank",
                          stacklevel=2)
        del state

    loader = task.make_loader(data, rt, epoch, index)
    logger = RunLogger(run_dir, rt.is_main, cfg.run.tensorboard, start_step=step)
    total = task.total_steps
    end = total if stop_at is None else min(total, stop_at)
    last_ckpt: Path | None = ckpt_path
    data_state = {"epoch": epoch, "index": index}

    def save(step: int) -> None:
        nonlocal last_ckpt
        rngs = distributed.all_gather_object(rng_state(rt.device))
        if rt.is_main:
            ckpt = {
                "version": CHECKPOINT_VERSION, "config": cfg.to_dict(),
                "model_hparams": net.hparams, "backbone_init": backbone_init,
                "model": net.state_dict(), "optimizers": opt.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "step": step, "rng": rngs, "data": dict(data_state),
                "world_size": rt.dist.world_size, **task.run_info(),
                "ema": ema.state_dict() if ema is not None else None,
            }
            last_ckpt = save_checkpoint(checkpoint_path(run_dir, step), ckpt)
            with ema.swapped_in() if ema is not None else nullcontext(net) as exported:
                task.export(exported, run_dir / "model.safetensors", cfg.to_dict(), step,
                            backbone_init)
            prune_checkpoints(run_dir, cfg.run.keep_checkpoints)
        distributed.barrier()

    startup["network_s"] = time.perf_counter() - t_enter - startup["data_s"]
    summary: dict[str, Any] = {"start_step": step, **task.run_info(), "data": str(data_dir),
                               "startup": startup}
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    samples = 0
    data_wait = 0.0
    t_start = t_log = time.perf_counter()
    bar = tqdm(total=total, initial=step, disable=not (progress and rt.is_main),
               dynamic_ncols=True, desc=f"train {task.name}")
    it = iter(loader)
    batches = DevicePrefetcher(it, lambda raw: task.prepare_batch(raw, rt), rt.device)
    try:
        while step < end:
            t0 = time.perf_counter()
            batch = next(batches)  # on CUDA prepared one step ahead, on a side stream
            data_wait += time.perf_counter() - t0
            lrs = task.set_learning_rates(opt, step)
            stage = task.stage(step)
            losses, out = task.train_step(step, model, net, batch, opt, rt, scaler)
            if ema is not None:
                ema.update()
            step += 1
            if step == summary["start_step"] + 1:  # the first step, its batch included
                if rt.device.type == "cuda":
                    torch.cuda.synchronize(rt.device)
                startup["first_step_s"] = time.perf_counter() - t_start
                startup["first_batch_wait_s"] = data_wait
            data_state = task.data_position(batch)
            samples += task.batch_size(batch)
            if (time_limit_s is not None and step % cfg.run.log_every == 0 and step < end
                    and distributed.broadcast_object(
                        time.perf_counter() - t_start >= time_limit_s)):
                end = step  # out of time: log, checkpoint and stop here
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                counts[k] = counts.get(k, 0) + 1

            if step % cfg.run.log_every == 0 or step == end:
                names = sorted(sums)
                means = distributed.all_reduce_mean(
                    torch.stack([sums[k] / counts[k] for k in names]).float())
                now = time.perf_counter()
                record: dict[str, Any] = {
                    "stage": stage, "epoch": data_state["epoch"],
                    **{f"loss/{k}": float(v) for k, v in zip(names, means.tolist(),
                                                            strict=True)},
                    **{f"lr/{k}": v for k, v in lrs.items()},
                    "samples_per_s": samples * rt.dist.world_size / (now - t_log),
                    "data_wait_frac": data_wait / (now - t_log),
                    "time_s": now - t_start,
                }
                logger.scalars(step, record)
                bar.set_postfix({k.removeprefix("loss/"): f"{v:.3g}" for k, v in record.items()
                                 if k.startswith("loss/")}, refresh=False)
                summary["last"] = record
                sums, counts, samples, data_wait, t_log = {}, {}, 0, 0.0, now
            if (rt.is_main and cfg.run.grid_every and
                    (step % cfg.run.grid_every == 0 or step == 1)):
                grid = task.make_grid(out, batch)
                if grid is not None:
                    logger.image(step, grid)
            if step % cfg.run.checkpoint_every == 0 or step == end:
                save(step)
                logger.flush()
            bar.update(1)
    finally:
        bar.close()
        logger.close()
        del batches, it
    summary.update(steps=step, seconds=time.perf_counter() - t_start,
                   checkpoint=str(last_ckpt) if last_ckpt else None,
                   finished=step >= total)
    return summary
