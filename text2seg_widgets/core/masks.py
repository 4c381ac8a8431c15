"""Mask helpers, written once: COCO RLE, boxes, IoU, polygons.

Conventions (shared by every folder that imports this module):

- masks are 2-D boolean ``(height, width)`` arrays in the pixel grid of their image or scene;
- RLE is COCO compressed RLE as a plain dict, ``size = [height, width]`` and ``counts`` a ``str``
  (pycocotools' bytes are decoded once here, so the records serialise to JSON and SQLite as is);
- boxes are ``xyxy`` with exclusive ``x1, y1`` (``x1 = x0 + w``) or COCO ``xywh``; both are the
  tight box of the True pixels, and an empty mask has no box (``None``) or ``[0, 0, 0, 0]`` (COCO).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from text2seg_widgets.errors import InputError

__all__ = ["mask_to_rle", "rle_to_mask", "rle_area", "rle_bbox", "as_coco_rle", "mask_bbox_xyxy",
           "mask_bbox_xywh", "boxes_overlap", "mask_iou", "crop_to_mask", "mask_to_polygons"]


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as COCO compressed RLE with ``counts`` as a str."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def as_coco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """The form pycocotools' C functions take: compressed, ``counts`` as bytes."""
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(rle, rle["size"][0], rle["size"][1])
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Decode COCO RLE (compressed or not, ``counts`` str or bytes) to a boolean mask."""
    return mask_utils.decode(as_coco_rle(rle)).astype(bool)


def rle_area(rle: dict[str, Any]) -> int:
    return int(mask_utils.area(as_coco_rle(rle)))


def rle_bbox(rle: dict[str, Any]) -> list[float]:
    """The tight xywh box of the mask (pycocotools convention), ``[0, 0, 0, 0]`` when empty."""
    return [float(v) for v in mask_utils.toBbox(as_coco_rle(rle))]


def mask_bbox_xyxy(mask: np.ndarray) -> np.ndarray | None:
    """The tight box ``(x0, y0, x1, y1)`` (exclusive ``x1, y1``) as float64, or None when empty."""
    mask = np.asarray(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def mask_bbox_xywh(mask: np.ndarray) -> tuple[float, float, float, float]:
    """COCO-style ``(x, y, width, height)`` of a mask; ``(0, 0, 0, 0)`` when empty."""
    box = mask_bbox_xyxy(mask)
    if box is None:
        return (0.0, 0.0, 0.0, 0.0)
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0, y0, x1 - x0, y1 - y0)


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two COCO ``xywh`` boxes share area (touching edges do not count)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def mask_iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None, *,
             empty: float = 1.0) -> float:
    """IoU of two boolean masks, pixels under ``ignore`` left out; ``empty`` when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if ignore is not None:
        valid = ~np.asarray(ignore, dtype=bool)
        a, b = a & valid, b & valid
    union = np.count_nonzero(a | b)
    return float(empty) if union == 0 else float(np.count_nonzero(a & b) / union)


def crop_to_mask(mask: np.ndarray, pad: int = 1) -> tuple[np.ndarray, int, int]:
    """The part of ``mask`` around its True pixels (``pad`` pixels of margin) and its (x0, y0);
    polygonising the crop instead of the whole image is much faster for small objects."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask[:0, :0], 0, 0
    y0, x0 = max(0, int(rows[0]) - pad), max(0, int(cols[0]) - pad)
    return mask[y0:int(rows[-1]) + 1 + pad, x0:int(cols[-1]) + 1 + pad], x0, y0


def mask_to_polygons(mask: np.ndarray, transform: Any = None) -> list[Any]:
    """The shapely polygons (holes kept) of the True pixels of a 2-D mask, 4-connected, in
    ``transform`` coordinates (an ``affine.Affine``; pixel coordinates when None)."""
    import rasterio.features
    from affine import Affine
    from shapely.geometry import shape

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    if mask.size == 0 or not mask.any():
        return []
    binary = mask.astype(bool).astype(np.uint8)
    tr = transform if transform is not None else Affine.identity()
    return [shape(geom) for geom, value in rasterio.features.shapes(binary, mask=binary.astype(bool),
                                                                    connectivity=4, transform=tr)
            if value == 1]
