"""Dataset presets: which scenes a generation run builds, and how it renders them.

``dyce`` follows section 4.2 of the paper: 11 scenes (5 living rooms, 6 kitchens), 7 for
training and validation and 4 (2 living rooms, 2 kitchens) for testing, 500 views each,
500x500 images. We hold one kitchen of the 7 out as the validation split.

``diverse`` and ``ood`` are for out-of-domain generalisation: ``diverse`` trains on many
scenes of every training-group room kind with the generic training families mixed in
(content "train"); ``ood`` is a test split of held-out room kinds holding only held-out
families (content "heldout"), sharing no category, room kind or photo half with ``diverse``'s
training scenes (see :mod:`segan.scene.categories`). Their scene lists are interleaved so that
any prefix (``--scenes N``) mixes the kinds and splits. ``diverse_plus`` is ``diverse`` with the
thin, branching and articulated training families too (content "train_plus"), for a data A/B.
``diverse_large`` is ``diverse`` followed by as many training scenes again (scene i is seeded by
its index, so its first 360 scenes, val and test among them, are ``diverse``'s byte for byte):
twice the training rooms and objects, for a data-quantity A/B.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from segan.data.deocclusion import DeocclusionConfig
from segan.data.randomize import DIVERSE_RANDOMIZATION, ViewRandomization
from segan.scene.categories import CONTENT, HELDOUT_KINDS, TRAIN_KINDS, check_content
from segan.scene.types import RoomKind

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SceneSpec:
    kind: RoomKind
    split: str  # "train" | "val" | "test"


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that decides the bytes a generation run writes (saved as generation.json)."""

    preset: str
    scenes: tuple[SceneSpec, ...]
    views_per_scene: int
    width: int
    height: int
    n_objects: int  # annotated objects per scene
    min_visible_objects: int  # a view showing fewer (>= 10 px each) is rejected (section 4.1)
    min_visible_pixels: int = 10  # objects with fewer visible pixels are not annotated (4.2)
    renderer: str = "pyrender"
    seed: int = 0
    mitsuba_spp: int = 16
    max_view_attempts: int = 60
    format_version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # which object families and room kinds scenes may use: a group of
    # segan.scene.categories.CONTENT ("classic", "train" or "heldout")
    content: str = "classic"
    # Camera, image size, light and photometric randomisation (segan.data.randomize); None:
    # off, and then absent from generation.json, so unrandomised datasets keep their bytes.
    randomize: ViewRandomization | None = None
    # De-occlusion ground truth (segan.data.deocclusion): views rendered again with objects
    # removed. None: off, and then absent from generation.json (existing datasets keep bytes).
    deocclusion: DeocclusionConfig | None = None

    def __post_init__(self) -> None:
        check_content(self.content)
        for i, s in enumerate(self.scenes):
            if s.kind not in CONTENT[self.content][1]:
                check_content(self.content, s.kind)  # raises, naming the kind and group
            if s.split not in SPLITS:
                raise ValueError(f"scenes[{i}].split: {s.split!r} is not one of {SPLITS}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scenes"] = [asdict(s) for s in self.scenes]
        if self.randomize is None:
            del d["randomize"]
        else:
            d["randomize"] = self.randomize.to_dict()
        if self.deocclusion is None:
            del d["deocclusion"]
        else:
            d["deocclusion"] = self.deocclusion.to_dict()
        if self.content == "classic":
            # left out at its default: generation.json of dyce and tiny stay byte for byte
            # what they were, and folders made before the field existed still resume
            del d["content"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerateConfig:
        d = dict(d)
        d["scenes"] = tuple(SceneSpec(**s) for s in d["scenes"])
        if d.get("randomize") is not None:
            d["randomize"] = ViewRandomization.from_dict(d["randomize"])
        if d.get("deocclusion") is not None:
            d["deocclusion"] = DeocclusionConfig.from_dict(d["deocclusion"])
        return cls(**d)

    def scene_id(self, index: int) -> str:
        return f"s{index:03d}_{self.scenes[index].kind}"


_L, _K = "living_room", "kitchen"


def interleaved(kinds: tuple[str, ...], n_train: int, n_val: int, n_test: int
                ) -> tuple[SceneSpec, ...]:
    """A scene list whose every prefix is a fair mix. It opens with each (kind, split) pair
    once, kinds and splits rotating (the first len(kinds) scenes hold every kind; the first
    3 * len(kinds) every pair when the counts are coprime); then each next scene goes to the
    split furthest below its share so far, kinds taking turns within each split."""
    want = {"train": n_train, "val": n_val, "test": n_test}
    if any(want[s] < len(kinds) for s in SPLITS):
        raise ValueError(f"every split needs at least one scene per kind ({len(kinds)})")
    n = len(kinds) * len(SPLITS)
    out = [SceneSpec(kinds[i % len(kinds)], SPLITS[i % len(SPLITS)])  # type: ignore[arg-type]
           for i in range(n)]
    made = {s: len(kinds) for s in SPLITS}
    turn = dict.fromkeys(SPLITS, 0)
    total = sum(want.values())
    while len(out) < total:
        k = len(out) + 1
        split = max(SPLITS, key=lambda s: want[s] * k / total - made[s])
        out.append(SceneSpec(kinds[turn[split] % len(kinds)], split))  # type: ignore[arg-type]
        turn[split] += 1
        made[split] += 1
    return tuple(out)

_DIVERSE = GenerateConfig(
    preset="diverse",
    scenes=interleaved(TRAIN_KINDS, 300, 20, 40),
    views_per_scene=8,
    width=500,
    height=500,
    n_objects=50,
    min_visible_objects=6,
    content="train",
    randomize=DIVERSE_RANDOMIZATION,
)

# diverse's scenes, then 300 more training scenes, the kinds taking turns
_DIVERSE_LARGE = replace(
    _DIVERSE, preset="diverse_large",
    scenes=_DIVERSE.scenes + tuple(
        SceneSpec(TRAIN_KINDS[i % len(TRAIN_KINDS)], "train")  # type: ignore[arg-type]
        for i in range(300)))

PRESETS: dict[str, GenerateConfig] = {
    "dyce": GenerateConfig(
        preset="dyce",
        scenes=(
            SceneSpec(_L, "train"), SceneSpec(_L, "train"), SceneSpec(_L, "train"),
            SceneSpec(_K, "train"), SceneSpec(_K, "train"), SceneSpec(_K, "train"),
            SceneSpec(_K, "val"),
            SceneSpec(_L, "test"), SceneSpec(_L, "test"),
            SceneSpec(_K, "test"), SceneSpec(_K, "test"),
        ),
        views_per_scene=500,
        width=500,
        height=500,
        n_objects=60,
        min_visible_objects=8,
    ),
    # A few small scenes and views: seconds on one core, for tests and the README.
    "tiny": GenerateConfig(
        preset="tiny",
        scenes=(
            SceneSpec(_L, "train"), SceneSpec(_K, "train"),
            SceneSpec(_K, "val"), SceneSpec(_L, "test"),
        ),
        views_per_scene=4,
        width=160,
        height=160,
        n_objects=30,
        min_visible_objects=4,
    ),
    # Out-of-domain training: hundreds of scenes, few views each, every training kind.
    "diverse": _DIVERSE,
    # diverse with the thin, branching and articulated training families too (content
    # "train_plus"): the same scenes, kinds and randomisation; a data A/B against diverse.
    "diverse_plus": replace(_DIVERSE, preset="diverse_plus", content="train_plus"),
    # diverse with twice its training scenes (a data-quantity A/B; the same val and test)
    "diverse_large": _DIVERSE_LARGE,
    # Out-of-domain test: held-out kinds and families only, the test photo half.
    "ood": GenerateConfig(
        preset="ood",
        scenes=tuple(SceneSpec(HELDOUT_KINDS[i % len(HELDOUT_KINDS)], "test")  # type: ignore
                     for i in range(40)),
        views_per_scene=8,
        width=500,
        height=500,
        n_objects=50,
        min_visible_objects=6,
        content="heldout",
        randomize=DIVERSE_RANDOMIZATION,
    ),
}


def make_config(
    preset: str,
    *,
    renderer: str = "pyrender",
    seed: int = 0,
    views_per_scene: int | None = None,
    n_scenes: int | None = None,
    size: int | None = None,
    deocclusion: float | None = None,
) -> GenerateConfig:
    """The preset's config with the command line's overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = replace(PRESETS[preset], renderer=renderer, seed=seed)
    if views_per_scene is not None:
        if views_per_scene < 1:
            raise ValueError("--views must be >= 1")
        cfg = replace(cfg, views_per_scene=views_per_scene)
    if n_scenes is not None:
        if not 1 <= n_scenes <= len(cfg.scenes):
            raise ValueError(f"--scenes must be in 1..{len(cfg.scenes)} for preset {preset}")
        cfg = replace(cfg, scenes=cfg.scenes[:n_scenes])
    if size is not None:
        if size < 32:
            raise ValueError("--size must be >= 32 pixels")
        cfg = replace(cfg, width=size, height=size)
    if deocclusion is not None:  # the share of views; the other fields at their defaults
        cfg = replace(cfg, deocclusion=DeocclusionConfig(share=deocclusion))
    return cfg
