"""Vector export of the annotations: GeoPackage (source CRS) and GeoJSON (EPSG:4326).

One feature per annotation: a (multi)polygon traced from the mask with holes kept
(:func:`text2seg_widgets.core.mask_to_polygons`), with ``annotation_id``,
``class_name``, ``class_id``, ``score``, ``source``, ``image_id``, ``image_path``, ``area_px`` and
``area_m2``. Annotations on georeferenced images go to ``annotations.gpkg`` (in the images' CRS;
when images have different CRSs, everything is reprojected to EPSG:4326) and
``annotations.geojson`` (EPSG:4326, as RFC 7946 asks). Annotations on images without
georeferencing go to ``pixel_annotations.gpkg`` in pixel coordinates (x = column, y = row).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from text2seg_widgets.export.atomic import atomic_dir, write_manifest
from text2seg_widgets.core.masks import crop_to_mask, mask_to_polygons
from text2seg_widgets.export.common import (protected_by, DEFAULT_STATES, left_out, select_images,
                                            shifted_transform)
from text2seg_widgets.store import Project

__all__ = ["export_vectors", "FIELDS"]

#: Field types of every feature.
FIELDS = {"annotation_id": "int", "class_name": "str", "class_id": "int", "score": "float",
          "source": "str", "image_id": "int", "image_path": "str", "area_px": "int",
          "area_m2": "float"}


def _records(project: Project, images: list[Any]) -> tuple[list[dict[str, Any]],
                                                           list[dict[str, Any]]]:
    from shapely.geometry import MultiPolygon

    from text2seg_widgets.imagery.vectors import area_m2

    geo: list[dict[str, Any]] = []
    pixel: list[dict[str, Any]] = []
    class_ids = {c.name: c.id for c in project.classes}
    for rec in images:
        grid = rec.transform if rec.georeferenced else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        for ann in project.annotations(rec.id):
            crop, x0, y0 = crop_to_mask(ann.mask())
            polys = mask_to_polygons(crop, shifted_transform(grid, x0, y0))
            if not polys:
                continue
            geom = MultiPolygon(polys)
            row = {"geometry": geom, "annotation_id": ann.id, "class_name": ann.class_name,
                   "class_id": class_ids[ann.class_name], "score": ann.score,
                   "source": ann.source, "image_id": rec.id, "image_path": rec.path,
                   "area_px": ann.area,
                   "area_m2": area_m2(geom, rec.crs) if rec.georeferenced else None,
                   "_crs": rec.crs}
            (geo if rec.georeferenced else pixel).append(row)
    return geo, pixel


def _common_crs(records: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """One CRS for the GeoPackage layer: the shared one, else EPSG:4326 (reprojecting)."""
    import rasterio.warp
    from rasterio.crs import CRS
    from shapely.geometry import mapping, shape

    crss = {r["_crs"] for r in records}
    if len(crss) <= 1:
        return (crss.pop() if crss else None), records
    out = []
    for r in records:
        geom = shape(rasterio.warp.transform_geom(CRS.from_wkt(r["_crs"]), "EPSG:4326",
                                                  mapping(r["geometry"])))
        out.append(r | {"geometry": geom})
    return "EPSG:4326", out


def export_vectors(project: Project, out: str | Path, *,
                   states: Iterable[str] | None = DEFAULT_STATES,
                   overwrite: bool = False) -> dict[str, Any]:
    """Write the vector export folder atomically; return its manifest."""
    from text2seg_widgets.export.vector_files import write_features

    images = select_images(project, states)
    geo, pixel = _records(project, images)
    crs, geo_layer = _common_crs(geo)
    files: dict[str, str] = {}
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        if geo:
            strip = [{k: v for k, v in r.items() if k != "_crs"} for r in geo_layer]
            write_features(strip, tmp / "annotations.gpkg", crs, "GPKG", schema=FIELDS,
                           layer="annotations")
            original = [{k: v for k, v in r.items() if k != "_crs"} for r in geo]
            by_crs: dict[str, list[dict[str, Any]]] = {}
            for r, o in zip(geo, original):
                by_crs.setdefault(r["_crs"], []).append(o)
            _write_geojson_4326(tmp / "annotations.geojson", by_crs)
            files |= {"gpkg": "annotations.gpkg", "geojson": "annotations.geojson"}
        if pixel:
            write_features([{k: v for k, v in r.items() if k != "_crs"} for r in pixel],
                           tmp / "pixel_annotations.gpkg", None, "GPKG", schema=FIELDS,
                           layer="annotations")
            files["pixel_gpkg"] = "pixel_annotations.gpkg"
        return write_manifest(
            tmp, "vectors", project=project.location, project_id=project.project_id, files=files,
            counts={"images": len(images), "georeferenced_features": len(geo),
                    "pixel_features": len(pixel)},
            crs={"gpkg": crs if crs is None or crs == "EPSG:4326" else "source CRS (WKT below)",
                 "gpkg_wkt": crs, "geojson": "EPSG:4326"},
            classes=[{"id": c.id, "name": c.name, "color": c.color} for c in project.classes],
            options={"states": None if states is None else list(states)},
            left_out=left_out(project, images, states),
            images=[{"image_id": r.id, "path": r.path, "checksum": r.checksum, "crs": r.crs}
                    for r in images])


def _write_geojson_4326(path: Path, by_crs: dict[str, list[dict[str, Any]]]) -> None:
    """GeoJSON in EPSG:4326 of features from possibly several source CRSs."""
    import json

    from text2seg_widgets.export.vector_files import write_features

    features: list[Any] = []
    for i, (crs, records) in enumerate(by_crs.items()):
        part = path.with_name(f".part{i}.geojson")
        write_features(records, part, crs, "GeoJSON", schema=FIELDS)
        features += json.loads(part.read_text())["features"]
        part.unlink()
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
