"""Vector export: GeoPackage in the source CRS, GeoJSON in EPSG:4326, pixel-space layer."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from text2seg_widgets.export import export_vectors
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_geotiff, write_png

#: Images with hand-drawn annotations and no candidates are "in progress" until finished.
PROGRESS = ("in progress", "done")


def test_gpkg_and_geojson_with_holes_and_attributes(tmp_path: Path) -> None:
    tif = write_geotiff(tmp_path / "g.tif", height=100, width=120, crs="EPSG:32633", res=0.5)
    name = 'roof/"flat"'
    p = Project.create(tmp_path / "p", classes=["water", name])
    rec = p.add_image(tif)
    holed = rect(100, 120, 10, 10, 30, 40)
    holed[15:20, 15:20] = False
    a = p.add_annotation(rec.id, holed, "water", score=0.7, source="detector")
    p.add_annotation(rec.id, rect(100, 120, 50, 50, 52, 53), name)
    png = p.add_image(write_png(tmp_path / "plain.png"))
    p.add_annotation(png.id, rect(64, 80, 0, 0, 4, 4), "water")
    manifest = export_vectors(p, tmp_path / "vec", states=PROGRESS)
    assert manifest["counts"] == {"images": 2, "georeferenced_features": 2, "pixel_features": 1}
    gdf = gpd.read_file(tmp_path / "vec" / "annotations.gpkg")
    assert gdf.crs.to_epsg() == 32633
    first = gdf[gdf.annotation_id == a].iloc[0]
    assert (first.class_name, first.score, first.source, first.image_id) == (
        "water", 0.7, "detector", rec.id)
    assert first.area_px == 575 and first.area_m2 == pytest.approx(575 * 0.25)
    assert first.geometry.area == pytest.approx(575 * 0.25)
    assert len(first.geometry.geoms[0].interiors) == 1
    minx, miny, maxx, maxy = first.geometry.bounds
    assert (minx, maxy) == (500000.0 + 5.0, 5000000.0 - 5.0)
    assert set(gdf.class_name) == {"water", name}
    gj = gpd.read_file(tmp_path / "vec" / "annotations.geojson")
    assert gj.crs.to_epsg() == 4326 and len(gj) == 2
    lon, lat = gj.geometry.iloc[0].centroid.coords[0]
    assert 14.99 < lon < 15.01 and 45.1 < lat < 45.2  # UTM 33N easting 500 km = 15 deg E
    pix = gpd.read_file(tmp_path / "vec" / "pixel_annotations.gpkg")
    assert pix.crs is None and pix.geometry.iloc[0].bounds == (0.0, 0.0, 4.0, 4.0)


def test_images_in_different_crs_share_epsg4326(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["a"])
    for i, crs in enumerate(("EPSG:32633", "EPSG:32632")):
        rec = p.add_image(write_geotiff(tmp_path / f"{i}.tif", crs=crs))
        p.add_annotation(rec.id, rect(64, 80, 0, 0, 10, 10), "a")
    export_vectors(p, tmp_path / "vec", states=PROGRESS)
    gdf = gpd.read_file(tmp_path / "vec" / "annotations.gpkg")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 2
    lons = sorted(g.centroid.x for g in gdf.geometry)
    assert lons[0] == pytest.approx(9.0, abs=0.01) and lons[1] == pytest.approx(15.0, abs=0.01)
    assert np.isclose(gdf.area_m2, 100 * 0.25).all()
