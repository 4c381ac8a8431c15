"""Masks and label rasters to polygons, sieving, areas in square metres, GeoPackage/GeoJSON output.

Polygons come from :func:`rasterio.features.shapes` (4-connectivity, so every polygon is valid and
holes are kept as interior rings). With ``transform=None`` coordinates are pixel coordinates
(x = column, y = row, pixel corners on integers); with the raster's affine transform they are in
its CRS. GeoJSON is always written in EPSG:4326 (RFC 7946); GeoPackage keeps the source CRS.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from text2seg_widgets.core.masks import mask_to_polygons
from text2seg_widgets.errors import InputError, require

__all__ = ["sieve", "polygonize_labels", "area_m2", "write_features", "polygonize_raster",
           "raster_to_records",
           "DEFAULT_SCHEMA"]

logger = logging.getLogger(__name__)

#: Fields written when the record list is empty (and the default types of the usual fields).
DEFAULT_SCHEMA: dict[str, str] = {"class_name": "str", "class_id": "int", "score": "float",
                                  "area_px": "int", "area_m2": "float"}
_DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}


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


def _as_crs(crs: Any) -> CRS | None:
    if crs is None or crs == "":
        return None
    try:
        return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except Exception as exc:  # rasterio raises CRSError
        raise InputError(f"cannot understand CRS {crs!r}: give an EPSG code like 'EPSG:32633' or WKT") from exc


def area_m2(geom: Polygon | MultiPolygon, crs: Any) -> float | None:
    """Area in square metres: CRS units scaled for projected CRSs, a local equal-area projection for
    geographic ones; ``None`` when there is no CRS (pixel space)."""
    src = _as_crs(crs)
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


def _field_types(records: Sequence[Mapping[str, Any]], schema: Mapping[str, str] | None) -> dict[str, str]:
    if schema is not None:
        return dict(schema)
    if not records:
        return dict(DEFAULT_SCHEMA)
    types: dict[str, str] = {}
    for rec in records:
        for key, value in rec.items():
            if key == "geometry" or value is None:
                continue
            kind = "int" if isinstance(value, (bool, int, np.integer)) else \
                "float" if isinstance(value, (float, np.floating)) else "str"
            if types.get(key) == "float" and kind == "int":
                continue
            types[key] = kind if types.get(key) in (None, kind, "int") else "str"
    return types


def _column(records: Sequence[Mapping[str, Any]], key: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    values = [rec.get(key) for rec in records]
    missing = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values], bool)
    if kind == "int":
        arr = np.array([0 if m else int(v) for v, m in zip(values, missing)], np.int64)
    elif kind == "float":
        arr = np.array([math.nan if m else float(v) for v, m in zip(values, missing)], np.float64)
    else:
        arr = np.array(["" if m else str(v) for v, m in zip(values, missing)], dtype=object)
    return arr, missing


def _reproject(records: Sequence[Mapping[str, Any]], src: CRS | None, dst: str) -> list[Any]:
    geoms = [rec["geometry"] for rec in records]
    if src is None or src == CRS.from_string(dst):
        return geoms
    return [shape(rasterio.warp.transform_geom(src, dst, mapping(g))) for g in geoms]


def _write_geojson(path: Path, records: Sequence[Mapping[str, Any]], geoms: Sequence[Any],
                   types: Mapping[str, str]) -> None:
    features = []
    for rec, geom in zip(records, geoms):
        props = {k: rec.get(k) for k in types}
        features.append({"type": "Feature", "geometry": mapping(geom), "properties": _jsonable(props)})
    doc = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(doc))


def _jsonable(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in props.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = value
    return out


def _write_gpkg(path: Path, geoms: Sequence[Any], records: Sequence[Mapping[str, Any]],
                types: Mapping[str, str], crs: CRS | None, layer: str) -> None:
    require("pyogrio", "geo")
    import pyogrio.raw  # the raw writer needs no geopandas
    import shapely

    names = list(types)
    columns = [_column(records, name, types[name]) for name in names]
    wkb = np.array(shapely.to_wkb([shapely.geometry.shape(mapping(g)) for g in geoms]) if geoms else [],
                   dtype=object)
    if path.exists():
        path.unlink()
    pyogrio.raw.write(str(path), wkb, [c[0] for c in columns], names, field_mask=[c[1] for c in columns],
              layer=layer, driver="GPKG", geometry_type="MultiPolygon",
              crs=crs.to_wkt() if crs is not None else None, promote_to_multi=True)


def write_features(records: Iterable[Mapping[str, Any]], path: str | os.PathLike, crs: Any,
                   driver: str = "GPKG", *, schema: Mapping[str, str] | None = None,
                   layer: str = "features") -> Path:
    """Write ``[{"geometry": shapely geometry, **properties}, ...]`` (geometries in ``crs``).

    ``driver="GPKG"`` keeps ``crs``; ``driver="GeoJSON"`` reprojects to EPSG:4326 (left in pixel
    coordinates, with a warning, when ``crs`` is None). An empty list writes a valid empty file with
    the fields of ``schema`` (default :data:`DEFAULT_SCHEMA`).
    """
    records = list(records)
    drv = _DRIVERS.get(str(driver).lower())
    if drv is None:
        raise InputError(f"unknown vector driver {driver!r}: use 'GPKG' or 'GeoJSON'")
    for i, rec in enumerate(records):
        if "geometry" not in rec or rec["geometry"] is None:
            raise InputError(f"record {i} has no 'geometry': give each record a shapely geometry")
    src = _as_crs(crs)
    types = _field_types(records, schema)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if drv == "GeoJSON":
        if src is None:
            logger.warning("no CRS: GeoJSON %s is written in pixel coordinates, not EPSG:4326", out)
        _write_geojson(out, records, _reproject(records, src, "EPSG:4326"), types)
    else:
        _write_gpkg(out, [rec["geometry"] for rec in records], records, types, src, layer)
    logger.debug("wrote %d features to %s", len(records), out)
    return out


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
    for name, x, y, w, h, score in boxes:
        by_class.setdefault(name, []).append((box(x, y, x + w, y + h), float(score)))
    trees = {k: (STRtree([b for b, _ in v]), [s for _, s in v]) for k, v in by_class.items()}
    records = []
    for value, poly in polygonize_raster(path, min_px=min_px, strip_rows=strip_rows):
        name = class_names[value - 1] if 1 <= value <= len(class_names) else f"class_{value}"
        c0, r0, c1, r1 = _pixel_rows(poly, tr)
        score = None
        if name in trees:
            tree, scores = trees[name]
            hits = tree.query(box(c0, r0, c1, r1))
            score = max((scores[i] for i in hits), default=None)
        records.append({"geometry": poly, "class_name": name, "class_id": value, "score": score,
                        "area_px": int(round(poly.area / pixel_area)), "area_m2": area_m2(poly, crs)})
    return records
