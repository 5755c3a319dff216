"""Domain randomisation of views and images, so models trained on segan's synthetic data meet
other cameras and renderers: wider camera placement, per-view image size and aspect, light
level, and a photometric pipeline on the RGB image (exposure, white balance, gamma, blur,
vignetting, sensor noise, JPEG).

What each output gets (``segan.data.generate``):
- masks, depth, occlusion: only the camera and image size change them; nothing else.
- the RGB image: the colour transform (exposure, white balance, gamma), then blur, vignetting,
  noise, quantisation and JPEG, in that order (optics, then sensor, then encoder).
- per-object appearance (the painter's target): the same colour transform only, so an object's
  colours match the image it is painted into; no blur, vignetting, noise or JPEG, which would
  teach the painter to reproduce artefacts that are not the object's.
The light gain scales every light and the ambient term before rendering, so the image and the
appearance passes see the same lights.

Randomness: ranges live in ``ViewRandomization`` (saved in generation.json); each view draws
its ``ImageParams`` from its own stream (``image_rng``), apart from the camera's, so switching
photometric options on or off leaves every camera, mask and depth map unchanged.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from PIL import Image

from segan.scene.sampling import HEAD_HEIGHT, YFOV_DEG
from segan.scene.types import View

Range = tuple[float, float]

MIN_IMAGE_SIDE = 16  # pixels; a smaller image cannot show min_visible_objects objects


@dataclass(frozen=True)
class ViewRandomization:
    """Ranges a generation run draws each view's camera and image from (uniform unless said).
    The defaults change nothing: every field is "off" until set."""

    # camera (segan.scene.sampling.sample_camera)
    camera_height: Range = HEAD_HEIGHT  # metres above the floor (capped under the ceiling)
    yfov_deg: Range = YFOV_DEG  # vertical field of view, degrees
    aim_offset: float = 0.0  # object moved off centre by up to this fraction of the half-image
    roll_deg: float = 0.0  # camera turned about its axis by up to +-this
    # image size: width = config width * size_scale; height = width / aspect (log-uniform);
    # aspect None keeps the config's width:height
    size_scale: Range = (1.0, 1.0)
    aspect: Range | None = None
    # lighting: every light and the ambient term times this (log-uniform)
    light_gain: Range = (1.0, 1.0)
    # colour transform, RGB image and appearance alike
    exposure_ev: Range = (0.0, 0.0)  # stops, applied in linear RGB
    white_balance: Range = (1.0, 1.0)  # gains of R and of B relative to G, each (log-uniform)
    gamma: Range = (1.0, 1.0)  # exponent on the sRGB-encoded value in [0, 1]
    # RGB image only
    blur_prob: float = 0.0
    blur_sigma: Range = (0.5, 1.5)  # Gaussian, pixels
    motion_blur_prob: float = 0.0
    motion_length: Range = (3.0, 9.0)  # pixels, along a random direction
    vignette_prob: float = 0.0
    vignette_strength: Range = (0.1, 0.5)  # fraction of brightness lost in the corners
    gaussian_noise: Range = (0.0, 0.0)  # read noise std, in units of the full 0..1 range
    shot_noise: Range = (0.0, 0.0)  # signal-dependent: std = sqrt(shot_noise * value)
    jpeg_prob: float = 0.0
    jpeg_quality: Range = (30.0, 90.0)

    def __post_init__(self) -> None:
        bounds: dict[str, tuple[float, float]] = {
            "camera_height": (0.1, 5.0), "yfov_deg": (10.0, 150.0), "size_scale": (0.05, 8.0),
            "aspect": (0.2, 5.0), "light_gain": (0.01, 100.0), "exposure_ev": (-6.0, 6.0),
            "white_balance": (0.25, 4.0), "gamma": (0.2, 5.0), "blur_sigma": (0.05, 20.0),
            "motion_length": (1.0, 100.0), "vignette_strength": (0.0, 1.0),
            "gaussian_noise": (0.0, 1.0), "shot_noise": (0.0, 1.0), "jpeg_quality": (1.0, 95.0),
        }
        scalars = {"aim_offset": (0.0, 1.0), "roll_deg": (0.0, 90.0), "blur_prob": (0.0, 1.0),
                   "motion_blur_prob": (0.0, 1.0), "vignette_prob": (0.0, 1.0),
                   "jpeg_prob": (0.0, 1.0)}
        for name, (lo_b, hi_b) in bounds.items():
            value = getattr(self, name)
            if value is None and name == "aspect":
                continue
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
                raise ValueError(f"ViewRandomization.{name}: expected a (low, high) pair of "
                                 f"numbers, got {value!r}")
            lo, hi = float(value[0]), float(value[1])
            if not lo_b <= lo <= hi <= hi_b:
                raise ValueError(f"ViewRandomization.{name}: need {lo_b:g} <= low <= high <= "
                                 f"{hi_b:g}, got ({lo:g}, {hi:g})")
            object.__setattr__(self, name, (lo, hi))  # lists from JSON become tuples
        for name, (lo_b, hi_b) in scalars.items():
            value = getattr(self, name)
            if (not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not lo_b <= value <= hi_b):
                raise ValueError(f"ViewRandomization.{name}: need a number in "
                                 f"[{lo_b:g}, {hi_b:g}], got {value!r}")
            object.__setattr__(self, name, float(value))

    def camera_options(self) -> dict[str, Any]:
        """Keyword arguments of ``segan.scene.sampling.sample_camera``."""
        return {"heights": self.camera_height, "yfov_deg": self.yfov_deg,
                "aim_offset": self.aim_offset, "roll_deg": self.roll_deg}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (pairs as lists, as they read back from generation.json)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViewRandomization:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ViewRandomization: unknown field(s) {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# Ranges for training data that should transfer to other cameras and renderers: phone-wide to
# normal lenses, from a low robot's eye to above head height, objects cut by the border,
# landscape and portrait images, under- and over-exposure, colour casts, soft focus, shake,
# noisy sensors and compressed files.
DIVERSE_RANDOMIZATION = ViewRandomization(
    camera_height=(0.4, 2.4),
    yfov_deg=(40.0, 90.0),
    aim_offset=0.7,
    roll_deg=8.0,
    size_scale=(0.64, 1.28),  # 320-640 pixels wide for a 500-pixel config
    aspect=(0.6, 1.8),
    light_gain=(0.6, 1.6),
    exposure_ev=(-0.8, 0.8),
    white_balance=(0.8, 1.25),
    gamma=(0.8, 1.25),
    blur_prob=0.3,
    blur_sigma=(0.5, 1.5),
    motion_blur_prob=0.15,
    motion_length=(3.0, 9.0),
    vignette_prob=0.3,
    vignette_strength=(0.1, 0.4),
    gaussian_noise=(0.0, 0.02),
    shot_noise=(0.0, 0.01),
    jpeg_prob=0.4,
    jpeg_quality=(35.0, 90.0),
)


# ---------------------------------------------------------------------------------------------
# One view's draw


def image_rng(seed: int, scene_index: int, view_index: int) -> np.random.Generator:
    """The view's image stream (size, lights, photometry, noise), apart from its camera's
    stream ``segan.data.generate.view_rng`` (SeedSequence([seed, scene, view]))."""
    return np.random.default_rng(np.random.SeedSequence([seed, scene_index, view_index, 1]))


@dataclass(frozen=True)
class ImageParams:
    """What one view drew; recorded in its image record as ``randomization``."""

    width: int
    height: int
    light_gain: float
    exposure_ev: float
    white_balance: tuple[float, float]  # R and B gains relative to G
    gamma: float
    blur_sigma: float  # 0: no Gaussian blur
    motion_length: float  # 0: no motion blur
    motion_angle: float  # radians, direction of the motion blur
    vignette: float  # 0: none
    gaussian_noise: float
    shot_noise: float
    jpeg_quality: int  # 0: no JPEG

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["white_balance"] = list(self.white_balance)
        return d


def _log_uniform(rng: np.random.Generator, r: Range) -> float:
    return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1]))))


def sample_image_params(r: ViewRandomization, rng: np.random.Generator, width: int,
                        height: int) -> ImageParams:
    """One view's draw for a config of ``width`` x ``height``. Every value is drawn whether
    its option is on or not, so the stream (and the noise after it) does not depend on which
    options are on."""
    scale = rng.uniform(*r.size_scale)
    aspect = _log_uniform(rng, r.aspect) if r.aspect is not None else width / height
    w = int(round(width * scale))
    h = int(round(w / aspect))
    if min(w, h) < MIN_IMAGE_SIDE:
        raise ValueError(f"ViewRandomization.size_scale/aspect: a {width}x{height} config "
                         f"gives a {w}x{h} image, under {MIN_IMAGE_SIDE} pixels a side")
    light_gain = _log_uniform(rng, r.light_gain)
    exposure = float(rng.uniform(*r.exposure_ev))
    wb = (_log_uniform(rng, r.white_balance), _log_uniform(rng, r.white_balance))
    gamma = _log_uniform(rng, r.gamma)
    blur_on, blur = rng.random() < r.blur_prob, float(rng.uniform(*r.blur_sigma))
    motion_on, motion = rng.random() < r.motion_blur_prob, float(rng.uniform(*r.motion_length))
    angle = float(rng.uniform(0.0, np.pi))
    vig_on, vig = rng.random() < r.vignette_prob, float(rng.uniform(*r.vignette_strength))
    noise = float(rng.uniform(*r.gaussian_noise))
    shot = float(rng.uniform(*r.shot_noise))
    jpeg_on, quality = rng.random() < r.jpeg_prob, int(round(rng.uniform(*r.jpeg_quality)))
    return ImageParams(
        width=w, height=h, light_gain=light_gain, exposure_ev=exposure, white_balance=wb,
        gamma=gamma, blur_sigma=blur if blur_on else 0.0,
        motion_length=motion if motion_on else 0.0, motion_angle=angle,
        vignette=vig if vig_on else 0.0, gaussian_noise=noise, shot_noise=shot,
        jpeg_quality=quality if jpeg_on else 0,
    )


def scale_lights(view: View, gain: float) -> View:
    """``view`` with every light's intensity and the ambient term times ``gain``."""
    if gain == 1.0:
        return view
    lights = tuple(replace(light, intensity=light.intensity * gain) for light in view.lights)
    ambient = tuple(float(c * gain) for c in view.ambient)
    return View(view.camera, lights, ambient)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Photometry


def colour_lut(p: ImageParams) -> np.ndarray:
    """(256, 3) float64 display values 0..255: the colour transform of each 8-bit value per
    channel. sRGB is decoded to linear, scaled by exposure and white balance (clipped at
    white, as a sensor saturates), re-encoded, then raised to ``gamma``."""
    x = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    gains = 2.0 ** p.exposure_ev * np.array([p.white_balance[0], 1.0, p.white_balance[1]])
    lin = np.clip(lin[:, None] * gains, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(srgb, 0.0, 1.0) ** p.gamma * 255.0


def _apply_lut(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 display values through a per-channel LUT."""
    return np.stack([lut[rgb[..., c], c] for c in range(3)], axis=-1).astype(np.float32)


def _quantise(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def colour_transform(rgb: np.ndarray, p: ImageParams) -> np.ndarray:
    """(H, W, 3) uint8 -> uint8: exposure, white balance and gamma only (the per-object
    appearance's transform; black stays black, so its outside stays 0)."""
    return _quantise(_apply_lut(rgb, colour_lut(p)))


def _shifted_mean(x: np.ndarray, offsets: list[tuple[int, int]],
                  weights: np.ndarray) -> np.ndarray:
    """sum_k weights[k] * x shifted by offsets[k] = (dy, dx), edges replicated."""
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    pad = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for (dy, dx), wk in zip(offsets, weights, strict=True):
        out += np.float32(wk) * pad[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C) float32, kernel radius ceil(3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    x = _shifted_mean(x, [(0, int(d)) for d in t], k)
    return _shifted_mean(x, [(int(d), 0) for d in t], k)


def motion_blur(x: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Average of (H, W, C) float32 along a line of ``length`` pixels at ``angle`` (camera
    shake during the exposure), on whole-pixel offsets."""
    n = max(2, int(round(length)))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, n)
    offsets = [(int(round(-s * np.sin(angle))), int(round(s * np.cos(angle)))) for s in t]
    return _shifted_mean(x, offsets, np.full(n, 1.0 / n))


def vignette(x: np.ndarray, strength: float) -> np.ndarray:
    """Darken (H, W, C) float32 towards the corners: cos^4-like falloff, ``strength`` of the
    brightness lost at the corners."""
    h, w = x.shape[:2]
    yy = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / ((h - 1) / 2 or 1)
    xx = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / ((w - 1) / 2 or 1)
    r2 = (yy[:, None] ** 2 + xx[None, :] ** 2) / 2  # 1 at the corners
    return x * (1.0 - np.float32(strength) * r2 ** 2)[..., None]


def jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 encoded as JPEG at ``quality`` and decoded (block and ringing
    artefacts, chroma subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def degrade_image(rgb: np.ndarray, p: ImageParams, rng: np.random.Generator) -> np.ndarray:
    """The view's RGB image as a different camera would record it: (H, W, 3) uint8 -> uint8.
    Colour transform, blur, motion blur, vignetting, noise (drawn from ``rng``, always, so
    the stream does not depend on the options), quantisation, JPEG."""
    x = _apply_lut(rgb, colour_lut(p))
    if p.blur_sigma > 0:
        x = gaussian_blur(x, p.blur_sigma)
    if p.motion_length > 0:
        x = motion_blur(x, p.motion_length, p.motion_angle)
    if p.vignette > 0:
        x = vignette(x, p.vignette)
    z = rng.standard_normal(x.shape, dtype=np.float32)
    if p.gaussian_noise > 0 or p.shot_noise > 0:
        var = p.gaussian_noise**2 + p.shot_noise * np.clip(x / 255.0, 0.0, 1.0)
        x = x + 255.0 * np.sqrt(var) * z
    out = _quantise(x)
    return jpeg_round_trip(out, p.jpeg_quality) if p.jpeg_quality else out


__all__ = [
    "DIVERSE_RANDOMIZATION", "ImageParams", "ViewRandomization", "colour_lut",
    "colour_transform", "degrade_image", "gaussian_blur", "image_rng", "jpeg_round_trip",
    "motion_blur", "sample_image_params", "scale_lights", "vignette",
]
