"""Label COGs (colour table, class tags, overviews, CRS kept) and vectors read back by GDAL/geopandas."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.transform import from_origin
from rasterio.windows import Window
from shapely.geometry import box

from text2seg_widgets.errors import InputError
from text2seg_widgets.core import mask_to_polygons
from text2seg_widgets.export.vector_files import write_features
from text2seg_widgets.imagery.vectors import area_m2, polygonize_labels, polygonize_raster, raster_to_records, sieve
from text2seg_widgets.export.rasters import LabelRasterWriter, write_label_geotiff
from text2seg_widgets.imagery.labels import read_class_names

TR = from_origin(500000.0, 5000000.0, 2.0, 2.0)


def _labels(h=700, w=900):
    lab = np.zeros((h, w), np.uint8)
    lab[100:300, 50:400] = 1
    lab[400:650, 500:880] = 2
    lab[:, :3] = 255
    return lab


def test_whole_array_cog_keeps_everything(tmp_path):
    lab = _labels()
    path = write_label_geotiff(tmp_path / "l.tif", lab, "EPSG:32633", TR, ["building", "road"],
                               [(230, 25, 75), (60, 180, 75)])
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(1), lab)
        assert ds.crs.to_epsg() == 32633 and ds.transform == TR
        assert ds.nodata == 255 and ds.dtypes == ("uint8",)
        assert ds.block_shapes[0] == (512, 512)
        assert ds.compression.name.lower() == "deflate"
        assert ds.overviews(1) == [2]
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        cmap = ds.colormap(1)
        assert cmap[1] == (230, 25, 75, 255) and cmap[2] == (60, 180, 75, 255)
        assert cmap[0] == (0, 0, 0, 255) and cmap[255][3] == 0
        assert ds.tags()["CLASS_1"] == "building"
        # mode overviews keep class values only
        assert set(np.unique(ds.read(1, out_shape=(350, 450)))) <= {0, 1, 2, 255}
    assert read_class_names(path) == ["background", "building", "road"]
    assert not list(tmp_path.glob(".*partial*"))


def test_windowed_writer_equals_whole_and_unwritten_is_nodata(tmp_path):
    lab = _labels(300, 500)
    with LabelRasterWriter(tmp_path / "w.tif", 500, 300, "EPSG:32633", TR, ["a", "b"], [(1, 2, 3), (4, 5, 6)]) as w:
        for r in range(0, 300, 128):
            for c in range(0, 400, 128):  # columns 400..499 never written
                hh, ww = min(128, 300 - r), min(128, 400 - c)
                w.write(Window(c, r, ww, hh), lab[r:r + hh, c:c + ww])
    with rasterio.open(tmp_path / "w.tif") as ds:
        got = ds.read(1)
    np.testing.assert_array_equal(got[:, :400], lab[:, :400])
    assert (got[:, 400:] == 255).all()


def test_writer_errors_and_abort(tmp_path):
    with pytest.raises(InputError, match="does not match"):
        with LabelRasterWriter(tmp_path / "x.tif", 10, 10, None, None, ["a"], [(1, 2, 3)]) as w:
            w.write(Window(0, 0, 5, 5), np.zeros((4, 5), np.uint8))
    assert not (tmp_path / "x.tif").exists() and not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="one colour per class"):
        LabelRasterWriter(tmp_path / "y.tif", 10, 10, None, None, ["a", "b"], [(1, 2, 3)])
    with pytest.raises(InputError, match="outside"):
        with LabelRasterWriter(tmp_path / "z.tif", 10, 10, None, None, ["a"], [(1, 2, 3)]) as w:
            w.write(Window(8, 0, 5, 5), np.zeros((5, 5), np.uint8))


def test_no_crs_writes_pixel_space(tmp_path):
    write_label_geotiff(tmp_path / "p.tif", np.ones((20, 30), np.uint8), None, None, ["a"], [(9, 9, 9)])
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.crs is None and ds.transform == Affine.identity()


def test_mask_to_polygons_holes_and_pixel_coordinates():
    m = np.zeros((20, 30), bool)
    m[2:12, 3:20] = True
    m[5:7, 8:10] = False          # a hole
    m[15:18, 25:28] = True
    polys = sorted(mask_to_polygons(m), key=lambda p: p.area)
    assert [p.area for p in polys] == [9.0, 166.0]
    assert len(polys[1].interiors) == 1
    assert polys[0].bounds == (25.0, 15.0, 28.0, 18.0)   # x = column, y = row
    assert mask_to_polygons(np.zeros((4, 4), bool)) == []


def test_polygon_area_is_pixel_count_times_pixel_area():
    m = np.zeros((50, 60), bool); m[10:30, 5:45] = True; m[12:14, 20:22] = False
    (poly,) = mask_to_polygons(m, TR)
    assert poly.area == m.sum() * 4.0
    assert area_m2(poly, "EPSG:32633") == pytest.approx(m.sum() * 4.0)
    assert area_m2(poly, None) is None


def test_area_in_geographic_crs_is_metres():
    deg = box(10.0, 45.0, 10.001, 45.001)
    # 0.001 deg lat ~ 111.1 m, 0.001 deg lon at 45 N ~ 78.8 m
    assert area_m2(deg, "EPSG:4326") == pytest.approx(111.1 * 78.8, rel=0.01)


def test_sieve_removes_small_regions_and_keeps_nodata():
    lab = np.zeros((20, 20), np.uint8)
    lab[0:10, 0:10] = 1
    lab[3, 3] = 2
    lab[15:, 15:] = 255
    lab[12, 2] = 1
    out = sieve(lab, 2)
    assert out[3, 3] == 1 and out[12, 2] == 0
    assert (out[15:, 15:] == 255).all()
    np.testing.assert_array_equal(sieve(lab, 1), lab)


def test_write_features_gpkg_and_geojson_read_back(tmp_path):
    m = np.zeros((40, 40), bool); m[5:15, 5:25] = True
    polys = mask_to_polygons(m, TR)
    recs = [{"geometry": p, "class_name": "building", "score": 0.75, "area_m2": area_m2(p, "EPSG:32633")}
            for p in polys]
    g = gpd.read_file(write_features(recs, tmp_path / "v.gpkg", "EPSG:32633"))
    assert g.crs.to_epsg() == 32633 and len(g) == 1
    assert g.geometry.iloc[0].area == pytest.approx(800.0)
    assert g["class_name"].tolist() == ["building"] and g["score"].tolist() == [0.75]
    gj = gpd.read_file(write_features(recs, tmp_path / "v.geojson", "EPSG:32633", driver="GeoJSON"))
    assert gj.crs.to_epsg() == 4326
    minx, miny, _, _ = gj.geometry.iloc[0].bounds
    assert 14.9 < minx < 15.1 and 45.0 < miny < 45.3   # UTM 33N near 500 km E, 5000 km N
    doc = json.loads((tmp_path / "v.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc


def test_empty_feature_lists_write_valid_files(tmp_path):
    g = gpd.read_file(write_features([], tmp_path / "e.gpkg", "EPSG:32633"))
    assert len(g) == 0 and g.crs.to_epsg() == 32633
    assert {"class_name", "score", "area_m2"} <= set(g.columns)
    gj = gpd.read_file(write_features([], tmp_path / "e.geojson", "EPSG:32633", driver="GeoJSON"))
    assert len(gj) == 0
    with pytest.raises(InputError, match="GPKG"):
        write_features([], tmp_path / "e.shp", None, driver="shapefile")
    with pytest.raises(InputError, match="geometry"):
        write_features([{"class_name": "x"}], tmp_path / "f.gpkg", None)


def test_polygonize_raster_in_strips_equals_whole(tmp_path):
    lab = _labels(300, 200)
    lab[50:52, 150:152] = 1     # 4 px: sieved away at min_px=10
    lab[120:180, 100:160] = 2
    lab[130:140, 110:120] = 0   # a hole
    write_label_geotiff(tmp_path / "l.tif", lab, "EPSG:32633", TR, ["a", "b"], [(1, 1, 1), (2, 2, 2)])
    strips = polygonize_raster(tmp_path / "l.tif", min_px=10, strip_rows=64)
    whole = polygonize_labels(sieve(lab, 10), TR)
    key = lambda vp: (vp[0], vp[1].area, len(vp[1].interiors))  # noqa: E731
    assert sorted(map(key, strips)) == sorted(map(key, whole))
    assert all(p.area != 16.0 for _, p in strips)
    recs = raster_to_records(tmp_path / "l.tif", ["a", "b"], min_px=10,
                             boxes=[("b", 100.0, 120.0, 60.0, 60.0, 0.9)])
    by_class = {r["class_name"]: r for r in recs}
    assert by_class["b"]["score"] == 0.9 and by_class["a"]["score"] is None
    assert by_class["b"]["area_px"] == 60 * 60 - 100
    assert by_class["b"]["area_m2"] == pytest.approx((60 * 60 - 100) * 4.0)


def test_label_png_palette_from_cog(tmp_path):
    import rasterio.shutil

    lab = _labels(64, 64)
    write_label_geotiff(tmp_path / "l.tif", lab, None, None, ["a", "b"], [(1, 2, 3), (4, 5, 6)])
    rasterio.shutil.copy(tmp_path / "l.tif", tmp_path / "l.png", driver="PNG")
    img = Image.open(tmp_path / "l.png")
    assert img.mode == "P"
    np.testing.assert_array_equal(np.array(img), lab)
