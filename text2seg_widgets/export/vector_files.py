"""Feature records (``{"geometry": shapely geometry, **properties}``) written as GeoPackage or GeoJSON.

GeoJSON is always written in EPSG:4326 (RFC 7946); GeoPackage keeps the source CRS. The records
come from :mod:`text2seg_widgets.imagery.vectors` (label rasters and masks to polygons) or from
the project's annotations (:mod:`.vectors`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import rasterio.warp
from rasterio.crs import CRS
from shapely.geometry import mapping, shape

from text2seg_widgets.errors import InputError, require
from text2seg_widgets.imagery.vectors import as_crs

__all__ = ["write_features", "DEFAULT_SCHEMA"]

logger = logging.getLogger(__name__)

#: Fields written when the record list is empty (and the default types of the usual fields).
DEFAULT_SCHEMA: dict[str, str] = {"class_name": "str", "class_id": "int", "score": "float",
                                  "area_px": "int", "area_m2": "float"}
_DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}


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
    arr: np.ndarray
    if kind == "int":
        arr = np.array([0 if v is None or m else int(v) for v, m in zip(values, missing)], np.int64)
    elif kind == "float":
        arr = np.array([math.nan if v is None or m else float(v) for v, m in zip(values, missing)], np.float64)
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
    src = as_crs(crs)
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
