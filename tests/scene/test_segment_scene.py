"""segment_scene end to end with a fake pipeline of the real shape (thresholds the red band)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
from PIL import Image

from tests.imagery.rasters import UTM_TRANSFORM, FakePipeline, write_raster
from text2seg_widgets.errors import InputError
from text2seg_widgets.export.scene_outputs import read_scene_candidates
from text2seg_widgets.core import Candidate
from text2seg_widgets.engines.scene import segment_scene

W, H, BORDER = 523, 389, 6
# (x, y, w, h): one inside a tile, one crossing several seams, one touching the nodata border
RECTS = [(20, 20, 30, 25), (100, 90, 200, 150), (400, 300, 123, 40)]


def _expected(rects=RECTS):
    lab = np.zeros((H, W), np.uint8)
    for x, y, w, h in rects:
        lab[y:y + h, x:x + w] = 1
    lab[:BORDER] = lab[-BORDER:] = 255
    lab[:, :BORDER] = lab[:, -BORDER:] = 255
    return lab


@pytest.fixture()
def scene_path(tmp_path):
    return write_raster(tmp_path / "scene.tif", W, H, count=4, dtype="uint16", rects=RECTS, fg=3000, bg=1000,
                        nodata=0, border=BORDER)


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.profile, ds.colormap(1), ds.overviews(1), ds.tags()


@pytest.mark.parametrize("stitch", ["hard", "soft"])
def test_outputs_georeferenced_and_exact(scene_path, tmp_path, stitch):
    pipe = FakePipeline()
    out = segment_scene(scene_path, pipe, tmp_path / "out", tile_size=128, overlap=16, stitch=stitch,
                        progress=False)
    labels, prof, cmap, ovr, tags = _read(out.labels_tif)
    np.testing.assert_array_equal(labels, _expected())
    assert prof["crs"].to_epsg() == 32633 and prof["transform"] == UTM_TRANSFORM and prof["nodata"] == 255
    assert cmap[1] == (255, 0, 0, 255) and ovr and json.loads(tags["CLASS_NAMES"]) == ["background", "bright"]
    assert out.n_tiles == 20 and out.n_tiles_skipped == 0
    assert all(shape[0] <= 128 and shape[1] <= 128 for shape in pipe.calls)   # never more than a tile
    np.testing.assert_array_equal(np.array(Image.open(out.labels_png)), labels)
    assert json.loads(out.stretch_json.read_text())["low"] == [1000.0] * 3


def test_candidates_in_scene_pixels_one_per_object(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "out", tile_size=128, overlap=16, progress=False)
    doc = json.loads(out.candidates_json.read_text())
    assert (doc["width"], doc["height"]) == (W, H) and "32633" in doc["crs_name"]
    assert doc["transform"] == list(UTM_TRANSFORM)[:6] and doc["classes"] == ["bright"]
    cands = [Candidate.from_dict(c) for c in doc["candidates"]]
    assert len(cands) == 3   # the seam-crossing rectangle is ONE candidate
    by_box = {tuple(c.bbox): c for c in cands}
    clipped = [(20, 20, 30, 25), (100, 90, 200, 150), (400, 300, 117, 40)]  # last one cut by nodata
    assert set(by_box) == {tuple(float(v) for v in b) for b in clipped}
    big = by_box[(100.0, 90.0, 200.0, 150.0)]
    assert big.area == 200 * 150 and big.extra["merged_from"] >= 4 and len(big.extra["tiles"]) >= 4
    mask = big.mask()
    assert mask.shape == (H, W) and mask[90:240, 100:300].all() and mask.sum() == 30000


def test_candidates_file_has_its_own_name_and_schema(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "out", tile_size=128, overlap=16, progress=False)
    assert out.candidates_json.name == "scene_candidates.json"
    assert not (tmp_path / "out" / "candidates.json").exists()  # the COCO export's file name
    doc, cands = read_scene_candidates(out.candidates_json)
    assert (doc["schema"], doc["version"]) == ("text2seg-widgets/scene-candidates", 1)
    assert [c.to_dict() for c in cands] == [c.to_dict() for c in out.candidates]
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(InputError, match="not a segment candidates file"):
        read_scene_candidates(coco)


def test_no_overlap_still_merges_seam_objects(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "o", tile_size=100, overlap=0, progress=False)
    assert out.n_candidates == 3
    assert sorted(c.area for c in out.candidates) == [750, 4680, 30000]


def test_vectors_overlay_the_raster(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "v", tile_size=128, overlap=16, vectors="gpkg",
                        min_area_px=4, progress=False)
    gdf = gpd.read_file(out.vectors)
    assert gdf.crs.to_epsg() == 32633 and len(gdf) == 3
    labels, prof, *_ = _read(out.labels_tif)
    burned = rasterio.features.rasterize(((g, 1) for g in gdf.geometry), out_shape=(H, W),
                                         transform=prof["transform"], fill=0)
    np.testing.assert_array_equal(burned == 1, labels == 1)
    pixel_area = 0.5 * 0.5
    for _, row in gdf.iterrows():
        assert row.geometry.area == pytest.approx(row["area_px"] * pixel_area)
        assert row["area_m2"] == pytest.approx(row["area_px"] * pixel_area)
        assert row["class_name"] == "bright" and 0.5 < row["score"] < 1
    assert sorted(gdf["area_px"]) == [750, 4680, 30000]


def test_geojson_vectors_are_wgs84(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "g", tile_size=256, overlap=32, vectors="geojson",
                        progress=False)
    gdf = gpd.read_file(out.vectors)
    assert out.vectors.name == "vectors.geojson" and gdf.crs.to_epsg() == 4326 and len(gdf) == 3
    assert gdf.total_bounds[0] == pytest.approx(15.0, abs=0.01)


def test_min_area_sieves_vectors_only(tmp_path):
    path = write_raster(tmp_path / "s.tif", 200, 100, rects=[(10, 10, 3, 3), (50, 50, 40, 20)])
    out = segment_scene(path, FakePipeline(), tmp_path / "o", tile_size=128, overlap=16, vectors="gpkg",
                        min_area_px=20, progress=False)
    assert sorted(gpd.read_file(out.vectors)["area_px"]) == [800]
    assert out.n_candidates == 2


def test_all_nodata_scene_gives_empty_valid_outputs(tmp_path):
    path = write_raster(tmp_path / "empty.tif", 300, 200, count=3, nodata=0, bg=0)
    out = segment_scene(path, FakePipeline(), tmp_path / "o", tile_size=128, overlap=16, vectors="gpkg",
                        progress=False)
    assert out.n_tiles_skipped == out.n_tiles == 6 and out.n_candidates == 0
    labels, *_ = _read(out.labels_tif)
    assert (labels == 255).all()
    assert json.loads(out.candidates_json.read_text())["candidates"] == []
    gdf = gpd.read_file(out.vectors)
    assert len(gdf) == 0 and gdf.crs.to_epsg() == 32633
    assert Image.open(out.overlay_png).size[0] > 0


def test_mostly_nodata_tiles_are_skipped(tmp_path):
    path = write_raster(tmp_path / "m.tif", 256, 128, nodata=0, rects=[(0, 0, 128, 128)], fg=0, bg=50)
    pipe = FakePipeline()
    out = segment_scene(path, pipe, tmp_path / "o", tile_size=128, overlap=0, progress=False)
    assert out.n_tiles == 2 and out.n_tiles_skipped == 1 and len(pipe.calls) == 1
    labels, *_ = _read(out.labels_tif)
    assert (labels[:, :128] == 255).all() and (labels[:, 128:] == 0).all()


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda p: write_raster(p, 100000, 1, count=1, tiled=False, block_rows=1), {}, "at least 8 pixels"),
    (lambda p: (p.write_text("not an image"), p)[1], {}, "cannot open"),
    (lambda p: write_raster(p, 50, 50, count=4), {"bands": "4,5,1"}, "band index 5 is out of range"),
    (lambda p: write_raster(p, 50, 50), {"vectors": "shp"}, "vectors must be"),
    (lambda p: write_raster(p, 50, 50), {"overlap": 64, "tile_size": 64}, "overlap"),
    (lambda p: write_raster(p, 50, 50), {"stitch": "blend"}, "stitch must be"),
    (lambda p: write_raster(p, 50, 50), {"stretch": {"bands": [1, 2, 3]}}, "'low'"),
])
def test_bad_input(tmp_path, make, kwargs, message):
    path = make(tmp_path / "bad.tif")
    with pytest.raises(InputError, match=message):
        segment_scene(path, FakePipeline(), tmp_path / "o", progress=False, **kwargs)


def test_stretch_file_reused_and_band_mismatch(scene_path, tmp_path):
    first = segment_scene(scene_path, FakePipeline(), tmp_path / "a", tile_size=256, overlap=32, progress=False)
    again = segment_scene(scene_path, FakePipeline(), tmp_path / "b", tile_size=256, overlap=32,
                          stretch=first.stretch_json, progress=False)
    assert again.stretch_json.read_text() == first.stretch_json.read_text()
    with pytest.raises(InputError, match="bands"):
        segment_scene(scene_path, FakePipeline(), tmp_path / "c", bands="nir-r-g", stretch=first.stretch_json,
                      progress=False)


def test_progress_bar_on_stderr(scene_path, tmp_path, capfd):
    segment_scene(scene_path, FakePipeline(), tmp_path / "p", tile_size=256, overlap=32, progress=True)
    captured = capfd.readouterr()
    assert "tile" in captured.err and "6/6" in captured.err and captured.out == ""


def test_big_scene_skips_full_png_and_downsamples_overlay(scene_path, tmp_path):
    out = segment_scene(scene_path, FakePipeline(), tmp_path / "b", tile_size=256, overlap=32,
                        png_max_pixels=1000, preview_max_side=300, progress=False)
    assert out.labels_png is None and not (tmp_path / "b" / "labels.png").exists()
    img = Image.open(out.overlay_png)
    assert img.size[0] == 300 and img.size[1] > round(300 * H / W)   # legend strip below the preview


def test_plain_png_tile(rs_samples, tmp_path):
    png = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    out = segment_scene(png, FakePipeline(threshold=200), tmp_path / "png", tile_size=256, overlap=32,
                        progress=False)
    labels = np.array(Image.open(out.labels_png))
    rgb = np.array(Image.open(png).convert("RGB"))
    np.testing.assert_array_equal(labels, (rgb[..., 0] >= 200).astype(np.uint8))
    doc = json.loads(out.candidates_json.read_text())
    assert doc["crs"] is None and doc["transform"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    with rasterio.open(out.labels_tif) as ds:
        assert ds.crs is None
    assert sum(c["area"] for c in doc["candidates"]) == int(labels.sum())


def test_real_naip_false_colour(shared_data, tmp_path):
    path = shared_data / "geotiff" / "naip_m_4709963_se_14_1_20200831.tif"
    out = segment_scene(path, FakePipeline(threshold=150), tmp_path / "naip", bands="nir-r-g", tile_size=512,
                        overlap=64, vectors="gpkg", min_area_px=25, progress=False)
    with rasterio.open(path) as src, rasterio.open(out.labels_tif) as lab:
        assert lab.crs == src.crs and lab.transform == src.transform
        nir = src.read(4)
        np.testing.assert_array_equal(lab.read(1) == 1, nir >= 150)
    assert json.loads(out.stretch_json.read_text())["bands"] == [4, 1, 2]
    gdf = gpd.read_file(out.vectors)
    assert gdf.crs.to_epsg() == 26914 and (gdf["area_px"] >= 25).all()
    np.testing.assert_allclose(gdf.geometry.area, gdf["area_px"] * 25.0)


def test_target_gsd_resamples_tiles_and_returns_to_the_source_grid(tmp_path):
    rects = [(20, 20, 40, 30), (100, 130, 200, 60)]   # even edges: exact at half resolution
    path = write_raster(tmp_path / "g.tif", 400, 250, rects=rects)   # 0.5 m pixels
    pipe = FakePipeline()
    out = segment_scene(path, pipe, tmp_path / "o", tile_size=64, overlap=8, gsd=1.0, progress=False)
    assert max(max(s[:2]) for s in pipe.calls) == 64      # the models saw 1 m tiles of 64 px
    assert out.n_tiles == 3 * 4     # 128 source px per tile, 16 px overlap: x 0,112,224,272; y 0,112,122
    with rasterio.open(out.labels_tif) as ds:
        labels = ds.read(1)
        assert (ds.width, ds.height) == (400, 250) and ds.transform == UTM_TRANSFORM
    expected = np.zeros((250, 400), np.uint8)
    for x, y, w, h in rects:
        expected[y:y + h, x:x + w] = 1
    np.testing.assert_array_equal(labels, expected)
    assert sorted(c.area for c in out.candidates) == [1200, 12000]
    settings = json.loads(out.candidates_json.read_text())["settings"]
    assert settings["gsd"] == 1.0 and settings["resample_factor"] == 0.5


def test_gsd_needs_a_crs(tmp_path):
    path = write_raster(tmp_path / "p.tif", 64, 64, crs=None, transform=None)
    with pytest.raises(InputError, match="georeferenced"):
        segment_scene(path, FakePipeline(), tmp_path / "o", gsd=1.0, progress=False)


def test_thirteen_band_sentinel_preset(tmp_path):
    path = write_raster(tmp_path / "s2.tif", 150, 120, count=13, dtype="uint16", rects=[(30, 40, 50, 20)],
                        fg=2500, bg=400)
    out = segment_scene(path, FakePipeline(), tmp_path / "o", bands="s2", tile_size=96, overlap=16,
                        progress=False)
    st = json.loads(out.stretch_json.read_text())
    assert st["bands"] == [4, 3, 2] and st["method"] == "percentile"
    labels, *_ = _read(out.labels_tif)
    assert int(labels.sum()) == 50 * 20 and labels[40:60, 30:80].all()
    assert [c.area for c in out.candidates] == [1000]


def test_paletted_png_uses_its_colour_table(tmp_path):
    idx = np.zeros((60, 80), np.uint8)
    idx[10:30, 20:50] = 1
    img = Image.fromarray(idx, mode="P")
    img.putpalette([30, 30, 30, 220, 40, 40] + [0, 0, 0] * 254)
    img.save(tmp_path / "p.png")
    out = segment_scene(tmp_path / "p.png", FakePipeline(), tmp_path / "o", tile_size=64, overlap=8, progress=False)
    np.testing.assert_array_equal(np.array(Image.open(out.labels_png)), idx)
