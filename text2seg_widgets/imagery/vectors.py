"""Masks and label rasters to polygons, sieving, areas in square metres.

Polygons come from :func:`rasterio.features.shapes` (4-connectivity, so every polygon is valid and
holes are kept as interior rings). With ``transform=None`` coordinates are pixel coordinates
(x = column, y = row, pixel corners on integers); with the raster's affine transform they are in
its CRS. Writing them to GeoPackage/GeoJSON files is :mod:`text2seg_widgets.export.vector_files`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import numpy as np
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from text2seg_widgets.errors import InputError

__all__ = ["sieve", "polygonize_labels", "area_m2", "as_crs", "polygonize_raster", "raster_to_records"]

logger = logging.getLogger(__name__)



def sieve(labels: np.ndarray, min_px: int, *, nodata: int | None = 255, connectivity: int = 4) -> np.ndarray:
    """Replace connected regions smaller than ``min_px`` pixels by their largest neighbour's value.

    ``nodata`` pixels are never changed and never grow. ``min_px <= 1`` returns a copy unchanged.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels must be 2-D (height, width), got shape {labels.shape}")
    if min_px <= 1 or labels.size == 0:
        return labels.copy()
    src = labels if labels.dtype in (np.uint8, np.int16, np.uint16, np.int32) else labels.astype(np.int32)
    valid = None if nodata is None else (src != nodata)
    out = rasterio.features.sieve(src, size=int(min_px), mask=valid, connectivity=connectivity)
    if valid is not None:
        out = np.where(valid, out, src)
    return out.astype(labels.dtype, copy=False)


def polygonize_labels(labels: np.ndarray, transform: Affine | None = None, *, nodata: int | None = 255,
                      background: int | None = 0) -> list[tuple[int, Polygon]]:
    """``(class value, polygon)`` for every connected region that is neither background nor nodata."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels must be 2-D (height, width), got shape {labels.shape}")
    keep = np.ones(labels.shape, bool)
    if nodata is not None:
        keep &= labels != nodata
    if background is not None:
        keep &= labels != background
    if not keep.any():
        return []
    src = labels if labels.dtype in (np.uint8, np.int16, np.uint16, np.int32) else labels.astype(np.int32)
    tr = transform if transform is not None else Affine.identity()
    return [(int(value), shape(geom))
            for geom, value in rasterio.features.shapes(src, mask=keep, connectivity=4, transform=tr)]


def as_crs(crs: Any) -> CRS | None:
    if crs is None or crs == "":
        return None
    try:
        return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except Exception as exc:  # rasterio raises CRSError
        raise InputError(f"cannot understand CRS {crs!r}: give an EPSG code like 'EPSG:32633' or WKT") from exc


def area_m2(geom: Polygon | MultiPolygon, crs: Any) -> float | None:
    """Area in square metres: CRS units scaled for projected CRSs, a local equal-area projection for
    geographic ones; ``None`` when there is no CRS (pixel space)."""
    src = as_crs(crs)
    if src is None:
        return None
    if src.is_geographic:
        c = geom.centroid
        laea = CRS.from_proj4(f"+proj=laea +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m +no_defs")
        return float(shape(rasterio.warp.transform_geom(src, laea, mapping(geom))).area)
    factor = 1.0
    try:
        factor = float(src.linear_units_factor[1])
    except Exception:  # CRS without a linear unit: assume metres
        logger.debug("CRS %s has no linear unit factor; assuming metres", src)
    return float(geom.area) * factor * factor


def polygonize_raster(path: str | os.PathLike, *, min_px: int = 0, nodata: int = 255,
                      background: int = 0, strip_rows: int = 2048) -> list[tuple[int, Polygon]]:
    """``(class value, polygon in the raster's CRS)`` of a label raster, read in strips of rows.

    Each strip is sieved with a halo of ``min_px`` rows (capped at 1024), so whether a region is
    smaller than ``min_px`` is judged as on the whole raster; polygons that touch a strip border
    are dissolved with their neighbours across it at the end. Memory follows the strip, not the raster.
    """
    import rasterio
    from rasterio.windows import Window
    from shapely.ops import unary_union

    done: list[tuple[int, Polygon]] = []
    pending: dict[int, list[Polygon]] = {}
    halo = min(max(int(min_px), 0), 1024)
    with rasterio.open(path) as ds:
        width, height, tr = ds.width, ds.height, ds.transform
        for top in range(0, height, strip_rows):
            bottom = min(height, top + strip_rows)
            r0, r1 = max(0, top - halo), min(height, bottom + halo)
            labels = ds.read(1, window=Window(0, r0, width, r1 - r0))
            if min_px > 1:
                labels = sieve(labels, min_px, nodata=nodata)
            core = labels[top - r0:bottom - r0]
            for value, poly in polygonize_labels(core, tr @ Affine.translation(0, top),
                                                 nodata=nodata, background=background):
                _, miny, _, maxy = _pixel_rows(poly, tr)
                if (top > 0 and miny <= top + 1e-6) or (bottom < height and maxy >= bottom - 1e-6):
                    pending.setdefault(value, []).append(poly)
                else:
                    done.append((value, poly))
    for value, polys in pending.items():
        merged = unary_union(polys)
        parts = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
        done.extend((value, p) for p in parts if isinstance(p, Polygon) and not p.is_empty)
    return done


def _pixel_rows(poly: Polygon, transform: Affine) -> tuple[float, float, float, float]:
    """Bounds of ``poly`` in pixel coordinates (col0, row0, col1, row1)."""
    inv = ~transform
    xs, ys = poly.exterior.coords.xy
    cols, rows = zip(*(inv @ (x, y) for x, y in zip(xs, ys)))
    return min(cols), min(rows), max(cols), max(rows)


def raster_to_records(path: str | os.PathLike, class_names: Sequence[str], *, min_px: int = 0,
                      boxes: Sequence[tuple[str, float, float, float, float, float]] = (),
                      strip_rows: int = 2048) -> list[dict[str, Any]]:
    """Feature records of a class-index raster (:func:`polygonize_raster`), ready for :func:`write_features`.

    Properties: ``class_name``, ``class_id``, ``score`` (the best score among ``boxes`` =
    ``(class_name, x, y, w, h, score)`` in pixel coordinates whose box meets the polygon's; None
    when none does), ``area_px`` (pixel count) and ``area_m2`` (None without a CRS).
    """
    import rasterio
    from shapely import STRtree, box

    with rasterio.open(path) as ds:
        crs, tr = ds.crs, ds.transform
    pixel_area = abs(tr.a * tr.e - tr.b * tr.d)
    by_class: dict[str, list[tuple[Any, float]]] = {}
    for name, x, y, w, h, box_score in boxes:
        by_class.setdefault(name, []).append((box(x, y, x + w, y + h), float(box_score)))
    trees = {k: (STRtree([b for b, _ in v]), [s for _, s in v]) for k, v in by_class.items()}
    records = []
    for value, poly in polygonize_raster(path, min_px=min_px, strip_rows=strip_rows):
        name = class_names[value - 1] if 1 <= value <= len(class_names) else f"class_{value}"
        c0, r0, c1, r1 = _pixel_rows(poly, tr)
        score: float | None = None
        if name in trees:
            tree, scores = trees[name]
            hits = tree.query(box(c0, r0, c1, r1))
            score = max((scores[i] for i in hits), default=None)
        records.append({"geometry": poly, "class_name": name, "class_id": value, "score": score,
                        "area_px": int(round(poly.area / pixel_area)), "area_m2": area_m2(poly, crs)})
    return records
