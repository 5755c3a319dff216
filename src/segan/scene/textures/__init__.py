"""Procedural and photographic textures (numpy only, a few milliseconds each).

Every texture is drawn from its own generator seeded from the scene's rng, and the
:class:`Material` name spells out the kind, the parameters and that seed, so a name identifies
its pixels exactly and scenes built from different rngs share no procedural texture.

Photographs (optional, from scikit-image's bundled ``skimage/data`` images) are split by
pool: the *train* pool only ever crops the left half of a photograph and the *test* pool only
its right half, so train and test scenes share no photographic pixel either. Their names carry
the pool, the photograph, the crop and the tint.

The modules: ``noise`` (value noise, fBm, colour helpers), ``patterns`` (the procedural
texture generators), ``photos`` (the photograph pools and crops) and ``kit``
(:class:`MaterialKit`, the per-scene material factory).
"""

from __future__ import annotations

from segan.scene.textures.kit import MaterialKit
from segan.scene.textures.noise import Gen, fbm, hsv, noise
from segan.scene.textures.photos import (
    ART_PHOTOS,
    PHOTO_POOLS,
    SURFACE_PHOTOS,
    available_photos,
    photo_crop,
)

__all__ = ["ART_PHOTOS", "PHOTO_POOLS", "SURFACE_PHOTOS", "Gen", "MaterialKit", "available_photos",
           "fbm", "hsv", "noise", "photo_crop"]
