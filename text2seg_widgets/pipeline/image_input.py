"""Checks and conversions for in-memory images handed to the pipeline.

The models take ``(H, W, 3)`` uint8 RGB. What the pipeline does with anything else:

* ``(H, W)`` or ``(H, W, 1)`` grayscale: the band is repeated to three channels.
* ``(H, W, 3)`` uint8: used as is.
* ``(H, W, 3)`` of another dtype (uint16, int16, float): stretched to uint8 with the 2nd-98th
  percentile of each band (NaN and inf ignored, then painted black). For scenes, the imagery layer
  computes one stretch per scene instead; use ``open_scene(path).read_rgb()``.
* ``(H, W, 4+)``: refused. Choose three bands first (``image[..., :3]`` for RGB+NIR, or the
  band presets of the imagery layer), because guessing would silently mix up bands.
* Smaller than :data:`MIN_SIDE` pixels on a side, all-NaN, or not a numeric array: refused.
"""

from __future__ import annotations

import logging

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.stretch import Stretch

__all__ = ["as_rgb_uint8", "percentile_stretch", "MIN_SIDE"]

log = logging.getLogger(__name__)

MIN_SIDE = 8


def percentile_stretch(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Stretch each band of an (H, W, C) numeric array to uint8 with its own percentiles (via the
    imagery layer's :class:`~text2seg_widgets.imagery.stretch.Stretch`); non-finite pixels become 0."""
    finite = np.isfinite(image)
    if not finite.any():
        raise InputError("the image has no finite pixel values (all NaN or inf)")
    lows, highs = [], []
    for b in range(image.shape[2]):
        values = image[..., b][finite[..., b]]
        lo, hi = np.percentile(values, [low, high]) if values.size else (0.0, 0.0)
        lows.append(float(lo))
        highs.append(float(hi))
    stretch = Stretch(bands=list(range(1, image.shape[2] + 1)), low=lows, high=highs,
                      percentiles=[low, high], n_samples=int(finite[..., 0].sum()))
    return stretch.apply(np.moveaxis(image, 2, 0), valid=finite.all(axis=2))


def as_rgb_uint8(image: object) -> np.ndarray:
    """Validate and convert ``image`` to a contiguous (H, W, 3) uint8 array (rules in the module doc)."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array of shape (H, W, 3), got {type(image).__name__}; "
                         "load files with PIL/rasterio or text2seg_widgets.imagery.open_scene first")
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number):
        raise InputError(f"image dtype {image.dtype} is not numeric imagery")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise InputError(f"image must be (H, W) or (H, W, bands); got shape {image.shape}")
    h, w, bands = image.shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"image is {w}x{h} pixels; the models need at least {MIN_SIDE}x{MIN_SIDE}")
    if bands == 1:
        image = np.repeat(image, 3, axis=2)
    elif bands != 3:
        raise InputError(f"image has {bands} bands; choose 3 (e.g. image[..., :3] for RGB+NIR, or "
                         "open_scene(path, bands='nir-r-g') for false colour)")
    if image.dtype != np.uint8:
        log.info("stretching %s image to uint8 with the 2-98%% percentiles per band", image.dtype)
        image = percentile_stretch(image)
    return np.ascontiguousarray(image)

