"""Map frames, mask outlines and drawn shapes (pixel space and a real georeferenced GeoTIFF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio import features as rio_features
from shapely.geometry import shape

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project
from text2seg_widgets.widgets.geometry import (GeoFrame, PixelFrame, box_from_rings, geojson_to_pixel_rings,
                                               mask_to_geometry, rasterize_polygon)

NAIP = "geotiff/naip_m_4709963_se_14_1_20200831.tif"


def back_to_mask(geom: dict, frame, h: int, w: int) -> np.ndarray:
    """Rasterise a map-space outline back onto the pixel grid."""
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    out = np.zeros((h, w), dtype=bool)
    for poly in polys:
        rings = []
        for ring in poly:
            arr = np.asarray(ring, float)
            x, y = frame.to_pixel(arr[:, 0], arr[:, 1])
            rings.append(np.stack([x, y], 1).tolist())
        out |= rio_features.rasterize([({"type": "Polygon", "coordinates": rings}, 1)], out_shape=(h, w)).astype(bool)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_pixel_frame_flips_y_and_round_trips() -> None:
    f = PixelFrame(width=400, height=300)
    lng, lat = f.to_map(np.array([10.0, 399.0]), np.array([20.0, 0.0]))
    assert lng.tolist() == [10.0, 399.0] and lat.tolist() == [-20.0, -0.0]
    x, y = f.to_pixel(lng, lat)
    assert x.tolist() == [10.0, 399.0] and y.tolist() == [20.0, 0.0]
    assert f.bounds() == ((-300.0, 0.0), (0.0, 400.0))
    assert f.fit_zoom(800, 600) == 1.0


def test_outlines_trace_masks_with_holes_and_parts() -> None:
    f = PixelFrame(width=120, height=100)
    m = np.zeros((100, 120), dtype=bool)
    m[10:60, 10:70] = True
    m[25:40, 30:45] = False  # a hole
    m[80:95, 90:118] = True  # a second part
    geom = mask_to_geometry(m, f, tolerance=0)
    assert geom["type"] == "MultiPolygon"
    assert np.array_equal(back_to_mask(geom, f, 100, 120), m)
    assert shape({"type": geom["type"], "coordinates": geom["coordinates"]}).area == pytest.approx(m.sum())
    assert mask_to_geometry(np.zeros((5, 5), bool), f) is None


def test_drawn_shapes_come_back_as_pixels() -> None:
    f = PixelFrame(width=200, height=200)
    rect = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
        [[20, -30], [20, -80], [120, -80], [120, -30], [20, -30]]]}}
    rings = geojson_to_pixel_rings(rect, f)
    assert box_from_rings(rings) == (20.0, 30.0, 120.0, 80.0)
    with pytest.raises(InputError, match="polygon or rectangle"):
        geojson_to_pixel_rings({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}, f)
    tri = rasterize_polygon([(0, 0), (100, 0), (0, 100)], 200, 200)
    assert abs(int(tri.sum()) - 5000) < 150
    with pytest.raises(InputError, match="no area"):
        rasterize_polygon([(0, 0), (10, 10), (20, 20)], 50, 50)


def test_georeferenced_image_sits_at_its_place(shared_data: Path, tmp_path: Path, open_app) -> None:
    p = Project.create(tmp_path / "geo", classes=["water"])
    try:
        rec = p.add_image(shared_data / NAIP)
        app = open_app(p)
        frame = app.frame
        assert isinstance(frame, GeoFrame) and app.map._t2s_geographic
        (s, w), (n, e) = frame.bounds()
        assert 46.5 < s < n < 48.0 and -100.0 < w < e < -98.5  # North Dakota
        assert s < app.map.center[0] < n and w < app.map.center[1] < e
        xs, ys = np.array([0.0, 500.5, 933.0]), np.array([0.0, 300.25, 722.0])
        lng, lat = frame.to_map(xs, ys)
        bx, by = frame.to_pixel(lng, lat)
        assert np.allclose(bx, xs, atol=1e-6) and np.allclose(by, ys, atol=1e-6)
        m = np.zeros((rec.height, rec.width), dtype=bool)
        m[100:180, 200:330] = True
        geom = mask_to_geometry(m, frame, tolerance=0)
        assert iou(back_to_mask(geom, frame, rec.height, rec.width), m) > 0.97
        ann = app.polygon([(200, 100), (330, 100), (330, 180), (200, 180)])
        assert p.annotation(ann).area == 130 * 80
        assert app.layers.groups() == {("water", "accepted")}
    finally:
        p.close()


def test_a_big_image_is_sent_downsampled_and_refined_when_zoomed(tmp_path: Path, shared_data: Path, open_app) -> None:
    import base64
    import io

    from PIL import Image

    big = np.asarray(Image.open(shared_data / "scenes" / "berkeley_campus.jpg").convert("RGB"))  # 1311 x 771
    p = Project.create(tmp_path / "big", classes=["building"])
    try:
        p.add_image(shared_data / "scenes" / "berkeley_campus.jpg")
        app = open_app(p, max_display=512)

        def png_size(url: str) -> tuple[int, int]:
            return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size

        assert png_size(app.view.overlay.url) == (512, round(771 * 512 / 1311))  # never the full raster
        assert app.view.detail is None
        # the browser zooms in (2 screen px per image px) on the part x 300..700, y 200..500
        app.map.zoom = 1
        app.map.set_trait("south", -500.0)
        app.map.set_trait("north", -200.0)
        app.map.set_trait("west", 300.0)
        app.map.set_trait("east", 700.0)
        assert app.view.detail is not None and app.view.detail in app.map.layers
        assert [tuple(c) for c in app.view.detail.bounds] == [(-500.0, 300.0), (-200.0, 700.0)]
        detail = np.asarray(Image.open(io.BytesIO(base64.b64decode(app.view.detail.url.split(",", 1)[1]))))
        assert np.array_equal(detail, app.image.rgb[200:500, 300:700])  # that part at full resolution
        assert np.abs(detail[0, 0].astype(int) - big[200, 300].astype(int)).max() < 60
        app.map.zoom = -1  # zoomed back out: the base overlay is enough
        app.map.set_trait("east", 701.0)
        assert app.view.detail is None
    finally:
        p.close()
