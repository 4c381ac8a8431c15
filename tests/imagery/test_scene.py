"""Scenes from generated and real rasters: metadata, lazy windows, nodata, bands, one stretch, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from tests.imagery.rasters import BG, FG, UTM_TRANSFORM, write_raster
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.bands import resolve_bands
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.imagery.stretch import Stretch, compute_stretch, load_stretch


@pytest.mark.parametrize("count, dtype", [(1, "uint8"), (4, "uint16"), (13, "float32"), (3, "int16"),
                                          (2, "float64")])
def test_generated_rasters_open_with_their_properties(tmp_path, count, dtype):
    path = write_raster(tmp_path / "s.tif", 301, 177, count=count, dtype=dtype, rects=[(10, 20, 30, 40)])
    with open_scene(path) as sc:
        assert (sc.width, sc.height, sc.count) == (301, 177, count)
        assert sc.dtypes == (dtype,) * count
        assert sc.crs.to_epsg() == 32633 and sc.transform == UTM_TRANSFORM
        assert sc.res == (0.5, 0.5) and sc.nodata is None
        win = sc.read((5, 15, 40, 50))
        assert win.shape == (count, 50, 40) and win.dtype == np.dtype(dtype)
        assert win[0, 5, 5] == FG and win[0, 0, 0] == BG
        rgb = sc.read_rgb((0, 0, 64, 64))
        assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
        assert sc.bands == ((1, 2, 3) if count >= 3 else (1, 1, 1))


def test_no_crs_is_pixel_space(tmp_path):
    path = write_raster(tmp_path / "p.tif", 40, 30, crs=None, transform=None)
    with open_scene(path) as sc:
        assert sc.crs is None and sc.transform == Affine.identity() and not sc.is_georeferenced
        assert sc.res == (1.0, 1.0)


def test_nodata_border_mask_and_black_rgb(tmp_path):
    path = write_raster(tmp_path / "n.tif", 100, 80, count=4, dtype="uint16", nodata=0, border=7,
                        rects=[(20, 20, 10, 10)], fg=3000, bg=1000)
    with open_scene(path) as sc:
        valid = sc.valid_mask()
        assert valid.sum() == (100 - 14) * (80 - 14)
        assert not valid[:7].any() and valid[7:-7, 7:-7].all()
        rgb = sc.read_rgb()
        assert (rgb[:7] == 0).all()
        # one stretch: percentile of valid pixels only, applied identically to every window
        assert sc.stretch.method == "percentile" and sc.stretch.low == [1000.0] * 3
        a = sc.read_rgb((20, 20, 10, 10))
        b = sc.read_rgb((0, 0, 60, 60))[20:30, 20:30]
        np.testing.assert_array_equal(a, b)


def test_float_nan_is_nodata(tmp_path):
    path = write_raster(tmp_path / "f.tif", 50, 40, count=1, dtype="float32")
    with rasterio.open(path, "r+") as ds:
        arr = ds.read(1)
        arr[:5] = np.nan
        ds.write(arr, 1)
    with open_scene(path) as sc:
        assert sc.valid_mask().sum() == 50 * 35
        assert np.isfinite(sc.read_rgb()).all()


@pytest.mark.parametrize("spec, count, expected", [
    (None, 4, (1, 2, 3)), (None, 1, (1, 1, 1)), ("rgb", 4, (1, 2, 3)), ("nir-r-g", 4, (4, 1, 2)),
    ("s2", 13, (4, 3, 2)), ("4,3,2", 13, (4, 3, 2)), (" 8, 4 ,3", 13, (8, 4, 3)), (2, 4, (2, 2, 2)),
    ([3, 2, 1], 3, (3, 2, 1)), ("gray", 13, (1, 1, 1)),
])
def test_band_table(spec, count, expected):
    assert resolve_bands(spec, count) == expected


@pytest.mark.parametrize("spec, count, message", [
    ("5,3,2", 4, "band index 5 is out of range"), (0, 3, "out of range"), ("s2-nir", 4, "band index 8 is out of range"),
    ("1,2", 4, "choose 1 or 3 bands"), ("nope", 3, "unknown band choice"),
])
def test_bad_band_choices(spec, count, message):
    with pytest.raises(InputError, match=message):
        resolve_bands(spec, count)


def test_band_out_of_range_on_scene(tmp_path):
    path = write_raster(tmp_path / "s.tif", 20, 20, count=4)
    with pytest.raises(InputError, match="1..4"):
        open_scene(path, bands="4,5,6")
    with open_scene(path) as sc, pytest.raises(InputError, match="out of range"):
        sc.read(bands=[7])


def test_stretch_values_on_a_ramp_and_round_trip(tmp_path):
    path = tmp_path / "ramp.tif"
    ramp = np.tile(np.arange(1000, dtype=np.uint16), (3, 10, 1))
    with rasterio.open(path, "w", driver="GTiff", width=1000, height=10, count=3, dtype="uint16") as ds:
        ds.write(ramp)
    with open_scene(path) as sc:
        st = compute_stretch(sc, (1, 2, 3))
        assert st.low == pytest.approx([19.98] * 3) and st.high == pytest.approx([979.02] * 3)
        mm = compute_stretch(sc, (1, 2, 3), method="minmax")
        assert (mm.low, mm.high) == ([0.0] * 3, [999.0] * 3)
        out = mm.apply(sc.read(bands=[1, 2, 3]))
        assert out[0, 0].tolist() == [0, 0, 0] and out[0, 999].tolist() == [255, 255, 255]
    back = load_stretch(st.save(tmp_path / "stretch.json"))
    assert back == st
    with pytest.raises(InputError, match="'bands', 'low' and 'high'"):
        Stretch.from_dict({"bands": [1]})


def test_big_scene_stretch_samples_windows_lazily(tmp_path):
    path = write_raster(tmp_path / "big.tif", 3000, 2500, count=1, dtype="uint16", rects=[(0, 0, 3000, 1250)],
                        fg=500, bg=100)
    with open_scene(path) as sc:
        st = sc.stretch
        assert st.n_samples == 16 * 256 * 256
        assert st.bands == [1, 1, 1] and st.low == [100.0] * 3 and st.high == [500.0] * 3


def test_overview_backed_stretch(tmp_path):
    path = write_raster(tmp_path / "ov.tif", 2100, 1100, count=3, dtype="float32", overviews=True,
                        rects=[(0, 0, 1050, 1100)], fg=2.0, bg=1.0)
    with open_scene(path) as sc:
        assert sc.has_overviews
        st = sc.stretch
        assert st.method == "percentile" and st.low == [1.0] * 3 and st.high == [2.0] * 3


def test_window_checks(tmp_path):
    path = write_raster(tmp_path / "s.tif", 20, 20)
    with open_scene(path) as sc:
        with pytest.raises(InputError, match="outside"):
            sc.read((15, 15, 10, 10))
        padded = sc.read((15, 15, 10, 10), boundless=True, fill=7)
        assert padded.shape == (3, 10, 10) and padded[0, -1, -1] == 7 and padded[0, 0, 0] == BG
        with pytest.raises(InputError, match="empty"):
            sc.read((0, 0, 0, 5))


def test_missing_text_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_scene(tmp_path / "nope.tif")
    txt = tmp_path / "notes.tif"
    txt.write_text("this is not an image\n" * 50)
    with pytest.raises(InputError, match="cannot open .*notes.tif"):
        open_scene(txt)
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError):
        open_scene(garbage)


def test_truncated_file_fails_on_read_with_a_clear_message(tmp_path):
    path = write_raster(tmp_path / "t.tif", 512, 512, count=3, rects=[(0, 0, 100, 100)], tiled=True)
    rng = np.random.default_rng(0)
    with rasterio.open(path, "r+") as ds:  # noise compresses badly: a long file to cut
        ds.write(rng.integers(0, 255, (3, 512, 512), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged or truncated|cannot open"):
        with open_scene(cut) as sc:
            sc.read()


def test_one_by_many_scene_opens(tmp_path):
    path = write_raster(tmp_path / "line.tif", 100000, 1, count=1, tiled=False, block_rows=1)
    with open_scene(path) as sc:
        assert (sc.width, sc.height) == (100000, 1)
        assert sc.read((99990, 0, 10, 1)).shape == (1, 1, 10)


def test_real_naip_rgbn_in_utm(shared_data):
    with open_scene(shared_data / "geotiff" / "naip_m_4709963_se_14_1_20200831.tif", bands="nir-r-g") as sc:
        assert (sc.width, sc.height, sc.count) == (934, 723, 4)
        assert sc.crs.to_epsg() == 26914 and sc.res == (5.0, 5.0)
        assert sc.bands == (4, 1, 2)
        raw = sc.read((100, 100, 8, 8), bands=[4, 1, 2])
        rgb = sc.read_rgb((100, 100, 8, 8))
        np.testing.assert_array_equal(rgb, np.moveaxis(raw, 0, -1))  # uint8: no stretch ("none")
        assert sc.stretch.method == "none"


def test_real_float64_cog_in_epsg4326(shared_data):
    with open_scene(shared_data / "geotiff" / "cog_float64_epsg4326.tif") as sc:
        assert sc.crs.to_epsg() == 4326 and sc.dtypes[0] == "float64"
        st = sc.stretch
        assert st.method == "percentile" and all(h > lo for lo, h in zip(st.low, st.high))
        rgb = sc.read_rgb()
        assert rgb.shape == (206, 343, 3) and 20 < rgb.mean() < 235


def test_real_png_tiles_are_pixel_space(rs_samples):
    png = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    with open_scene(png) as sc:
        assert (sc.width, sc.height, sc.count) == (512, 512, 3)
        assert sc.crs is None and sc.transform == Affine.identity()
        from PIL import Image
        np.testing.assert_array_equal(sc.read_rgb(), np.array(Image.open(png).convert("RGB")))


def test_paletted_png_reads_its_colours(tmp_path):
    from PIL import Image

    idx = np.zeros((20, 30), np.uint8)
    idx[5:10, 5:25] = 1
    img = Image.fromarray(idx, mode="P")
    img.putpalette([10, 20, 30, 200, 100, 50] + [0, 0, 0] * 254)
    img.save(tmp_path / "p.png")
    with open_scene(tmp_path / "p.png") as sc:
        rgb = sc.read_rgb()
        assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[7, 7].tolist() == [200, 100, 50]
        np.testing.assert_array_equal(rgb, np.array(Image.open(tmp_path / "p.png").convert("RGB")))


def test_tiles_the_annotator_and_embed_read_the_same_pixels(tmp_path, rs_samples):
    """One reader of project pixels (``Scene.pixels``): a window read by the tile loop, by the
    Annotator's ``load_image`` and by ``embed`` is byte-identical, so a cached embedding is a hit
    for all three."""
    from text2seg_widgets.imagery.scene import open_scene
    from text2seg_widgets.pipeline.tiles import open_tiles
    from text2seg_widgets.widgets.overlay import load_image

    tif = rs_samples.parent / "geotiff" / "naip_m_4709963_se_14_1_20200831.tif"  # 4 bands, real NAIP
    window = (40, 30, 300, 260)
    with open_tiles(tif, window=window, tile_size=512, overlap=0) as plan:
        (tile,) = list(plan.read())
    annotator = load_image(tif, window).rgb
    with open_scene(tif) as scene:
        embed = np.ascontiguousarray(scene.pixels(window)[0])
    assert tile.rgb.shape == annotator.shape == (260, 300, 3)
    assert np.array_equal(tile.rgb, annotator) and np.array_equal(annotator, embed)
