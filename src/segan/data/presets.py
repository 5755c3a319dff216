"""Dataset presets: which scenes a generation run builds, and how it renders them.

``dyce`` follows section 4.2 of the paper: 11 scenes (5 living rooms, 6 kitchens), 7 for
training and validation and 4 (2 living rooms, 2 kitchens) for testing, 500 views each,
500x500 images. We hold one kitchen of the 7 out as the validation split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from segan.data.randomize import ViewRandomization
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
    # Camera, image size, light and photometric randomisation (segan.data.randomize); None:
    # off, and then absent from generation.json, so unrandomised datasets keep their bytes.
    randomize: ViewRandomization | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scenes"] = [asdict(s) for s in self.scenes]
        if self.randomize is None:
            del d["randomize"]
        else:
            d["randomize"] = self.randomize.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerateConfig:
        d = dict(d)
        d["scenes"] = tuple(SceneSpec(**s) for s in d["scenes"])
        if d.get("randomize") is not None:
            d["randomize"] = ViewRandomization.from_dict(d["randomize"])
        return cls(**d)

    def scene_id(self, index: int) -> str:
        return f"s{index:03d}_{self.scenes[index].kind}"


_L, _K = "living_room", "kitchen"

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
}


def make_config(
    preset: str,
    *,
    renderer: str = "pyrender",
    seed: int = 0,
    views_per_scene: int | None = None,
    n_scenes: int | None = None,
    size: int | None = None,
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
    return cfg
