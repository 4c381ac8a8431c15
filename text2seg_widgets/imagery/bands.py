"""Choosing the three bands a model sees: 1-based indices, presets, or one band repeated.

Presets name band orders of common sensors (1-based, as rasterio counts bands):

========== =========== =====================================================
preset     bands       meaning
========== =========== =====================================================
rgb        1, 2, 3     true colour for RGB(N) rasters (NAIP, aerial, PNG/JPEG)
naip       1, 2, 3     NAIP RGBN true colour
nir-r-g    4, 1, 2     false colour (NIR, red, green) for RGBN rasters
s2         4, 3, 2     Sentinel-2 true colour (B4, B3, B2 of the 13-band L1C order)
s2-nir     8, 4, 3     Sentinel-2 false colour (B8, B4, B3)
gray       1, 1, 1     the first band repeated
========== =========== =====================================================
"""

from __future__ import annotations

from typing import Sequence, Union

from text2seg_widgets.errors import InputError

__all__ = ["BAND_PRESETS", "BandSpec", "resolve_bands", "default_bands"]

BAND_PRESETS: dict[str, tuple[int, int, int]] = {
    "rgb": (1, 2, 3),
    "naip": (1, 2, 3),
    "nir-r-g": (4, 1, 2),
    "s2": (4, 3, 2),
    "sentinel2": (4, 3, 2),
    "s2-nir": (8, 4, 3),
    "gray": (1, 1, 1),
    "grey": (1, 1, 1),
}

BandSpec = Union[None, str, int, Sequence[int]]


def default_bands(count: int) -> tuple[int, int, int]:
    """``(1, 2, 3)`` when there are at least 3 bands, else the first band repeated."""
    return (1, 2, 3) if count >= 3 else (1, 1, 1)


def _parse(spec: BandSpec, count: int) -> tuple[int, ...]:
    if spec is None:
        return default_bands(count)
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in BAND_PRESETS:
            return BAND_PRESETS[key]
        try:
            return tuple(int(part) for part in key.replace(" ", "").split(",") if part)
        except ValueError:
            raise InputError(f"unknown band choice {spec!r}: use a preset ({', '.join(sorted(BAND_PRESETS))}) "
                             "or 1-based indices like '4,3,2'") from None
    if isinstance(spec, int):
        return (spec,)
    try:
        return tuple(int(b) for b in spec)
    except (TypeError, ValueError):
        raise InputError(f"bands must be a preset name, an int or a list of ints, got {spec!r}") from None


def resolve_bands(spec: BandSpec, count: int) -> tuple[int, int, int]:
    """Three 1-based band indices for a raster with ``count`` bands; one index is repeated 3 times.

    Raises :class:`InputError` naming the valid range when an index does not exist.
    """
    bands = _parse(spec, count)
    if len(bands) == 1:
        bands = bands * 3
    if len(bands) != 3:
        raise InputError(f"choose 1 or 3 bands, got {len(bands)} ({list(bands)}); "
                         "for example bands='4,3,2' or bands=1")
    bad = [b for b in bands if b < 1 or b > count]
    if bad:
        raise InputError(f"band index {bad[0]} is out of range: this raster has {count} band(s), "
                         f"numbered 1..{count} (band indices are 1-based)")
    return (bands[0], bands[1], bands[2])
