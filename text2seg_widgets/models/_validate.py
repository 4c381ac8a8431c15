"""Cheap checks shared by the adapters: the image and prompt contracts of ``protocols``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from text2seg_widgets.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["check_rgb", "check_box", "check_points", "registry_sha256"]


def check_rgb(image: np.ndarray, who: str = "model") -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array of at least 2x2 pixels, else raise
    :class:`InputError` saying how to convert it (the imagery layer does band choice and stretch)."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{who}: expected a numpy array of shape (H, W, 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{who}: expected an RGB image of shape (H, W, 3), got shape {image.shape}; "
                         "choose three bands (e.g. with text2seg_widgets.imagery) before segmenting")
    if image.dtype != np.uint8:
        raise InputError(f"{who}: expected dtype uint8, got {image.dtype}; stretch the image to 0..255 "
                         "(e.g. with text2seg_widgets.imagery) before segmenting")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"{who}: image of {image.shape[1]}x{image.shape[0]} pixels is too small; "
                         "use at least 2x2 pixels")
    return image


def check_box(box: np.ndarray, hw: tuple[int, int], who: str = "model") -> np.ndarray:
    """An (N, 4) float xyxy array clipped to the image; raises for NaNs, reversed or outside boxes."""
    arr = np.asarray(box, dtype=np.float64).reshape(-1, 4)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{who}: box coordinates must be finite numbers, got {arr.tolist()}")
    h, w = hw
    if np.any(arr[:, 2] < arr[:, 0]) or np.any(arr[:, 3] < arr[:, 1]):
        raise InputError(f"{who}: boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {arr.tolist()}")
    outside = (arr[:, 2] < 0) | (arr[:, 3] < 0) | (arr[:, 0] > w) | (arr[:, 1] > h)
    if np.any(outside):
        raise InputError(f"{who}: box {arr[outside][0].tolist()} lies outside the {w}x{h} image; "
                         "give boxes in pixel coordinates of the image")
    arr[:, [0, 2]] = arr[:, [0, 2]].clip(0, w)
    arr[:, [1, 3]] = arr[:, [1, 3]].clip(0, h)
    return arr


def check_points(points: np.ndarray, labels: np.ndarray | None, hw: tuple[int, int],
                 who: str = "model") -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) xy float points inside the image (x in 0..W, y in 0..H, clipped to the last pixel) and
    (N,) int labels (1 positive, 0 negative); a point outside the image raises."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise InputError(f"{who}: point coordinates must be finite numbers")
    lab = np.ones(len(pts), dtype=np.int64) if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    if len(lab) != len(pts):
        raise InputError(f"{who}: got {len(pts)} points but {len(lab)} labels; give one label (1 or 0) per point")
    if not np.all(np.isin(lab, (0, 1))):
        raise InputError(f"{who}: point labels must be 1 (positive) or 0 (negative), got {sorted(set(lab.tolist()))}")
    h, w = hw
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
    if np.any(outside):
        raise InputError(f"{who}: point {pts[outside][0].tolist()} lies outside the {w}x{h} image; "
                         "give points as (x, y) pixel coordinates of the image")
    pts[:, 0] = pts[:, 0].clip(0, w - 1)
    pts[:, 1] = pts[:, 1].clip(0, h - 1)
    return pts, lab


def registry_sha256(name: str, path: str | Path) -> str | None:
    """The weight registry's recorded sha256 for spec ``name`` when ``path`` is that spec's file (same
    size as recorded), else None. Lets an adapter name its weights without hashing the file."""
    from text2seg_widgets.models import weights

    try:
        spec = weights.get_spec(name)
    except Exception:  # noqa: BLE001 - not a registered spec: the caller hashes the file
        return None
    size = spec.size
    try:
        if spec.sha256 and size is not None and Path(path).stat().st_size == size:
            return spec.sha256
    except OSError:
        return None
    log.debug("weight spec %s has no usable sha256 for %s; hashing the file", name, path)
    return None
