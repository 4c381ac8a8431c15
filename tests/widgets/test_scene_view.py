"""Scenes on the map, kernel side: the display VRT shows the scene's own pixels (stretch, bands,
palette, window), plain big images get a stand-in place, the tiles come from a real
localtileserver app in a child process that is stopped on close (and ends when its kernel dies),
and only the masks in view are sent."""

from __future__ import annotations

import io
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from text2seg_widgets.core import Candidate
from text2seg_widgets.imagery.instances import crop_to_scene_rle
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.store import Project
from text2seg_widgets.widgets.layers import MAX_DRAWN
from text2seg_widgets.widgets.scenetiles import (PIXEL_SPACE_ZOOM, SceneTiles, display_vrt, native_zoom,
                                                 pixel_space_transform)


def _uint16_scene(path: Path, width: int = 3000, height: int = 2500) -> Path:
    rng = np.random.default_rng(1)
    data = (rng.random((4, height, width)) * 3000 + 200).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=4, dtype="uint16",
                       crs="EPSG:32614", transform=from_origin(500000, 5200000, 0.6, 0.6), tiled=True,
                       nodata=0) as ds:
        ds.write(data)
    return path


def test_the_display_vrt_shows_the_scenes_own_pixels(tmp_path: Path) -> None:
    scene = _uint16_scene(tmp_path / "s.tif")
    shown = display_vrt(scene, tmp_path / "s.vrt", window=(1000, 500, 1200, 900))
    vrt, transform, crs = shown.path, shown.frame.transform, shown.frame.crs
    assert crs.to_epsg() == 32614 and transform.c == 500000 + 1000 * 0.6 and transform.f == 5200000 - 500 * 0.6
    with open_scene(vrt) as shown, open_scene(scene) as src:
        assert (shown.width, shown.height, shown.count, shown.dtypes[0]) == (1200, 900, 3, "uint8")
        got = shown.read((100, 200, 64, 48)).transpose(1, 2, 0).astype(int)
        want = src.pixels((1100, 700, 64, 48))[0].astype(int)  # the pipeline's bands and stretch
        assert np.abs(got - want).max() <= 1


def test_a_plain_image_gets_the_pixel_space_stand_in(tmp_path: Path, shared_data: Path) -> None:
    jpg = shared_data / "scenes" / "berkeley_campus.jpg"
    shown = display_vrt(jpg, tmp_path / "b.vrt")
    vrt, transform, crs = shown.path, shown.frame.transform, shown.frame.crs
    assert transform == pixel_space_transform() and crs.to_epsg() == 3857
    assert native_zoom(transform, crs, 0.0) == PIXEL_SPACE_ZOOM  # one pixel per tile pixel
    with open_scene(vrt) as shown, open_scene(jpg) as src:
        assert np.array_equal(shown.read((10, 20, 30, 30)).transpose(1, 2, 0), src.pixels((10, 20, 30, 30))[0])


def test_tiles_come_from_a_real_tile_server_that_is_stopped_on_close(tmp_path: Path) -> None:
    import morecantile

    scene = _uint16_scene(tmp_path / "s.tif")
    tiles = SceneTiles()
    try:
        tiled = tiles.tiled(scene)
        assert tiled.native_zoom == 18 and tiled.layer.max_native_zoom == 18
        (south, west), (north, east) = tiled.frame.bounds()
        tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 14)
        url = tiled.layer.url.format(z=tile.z, x=tile.x, y=tile.y)
        png = np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(url, timeout=60).read())))
        assert png.shape == (256, 256, 4) and png[..., 3].max() == 255  # the scene is in it
        assert tiles.tiled(scene) is tiled  # one layer per image
        assert tiles.direct_url(tiled) == url.replace(f"/{tile.z}/{tile.x}/{tile.y}.", "/{z}/{x}/{y}.")
        server = [p for p in psutil.Process().children() if "text2seg_widgets.imagery.tileserver" in " ".join(p.cmdline())]
        assert len(server) == 1
        server += server[0].children(recursive=True)  # its workers
    finally:
        tiles.close()
    assert not [p for p in server if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]  # waited for
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)  # the server is gone


def test_the_tile_server_ends_when_its_kernel_is_killed() -> None:
    code = ("import time; from text2seg_widgets.imagery.tileserver import TileServer; "
            "s = TileServer(workers=2); print(s.port, flush=True); time.sleep(600)")
    kernel = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        port = int(kernel.stdout.readline())  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/palettes", timeout=120) as reply:
            assert reply.status == 200  # served by a worker
        server = psutil.Process(kernel.pid).children(recursive=True)
        assert len(server) >= 3  # the supervisor and two workers
    finally:
        kernel.kill()
        kernel.wait()
    gone, alive = psutil.wait_procs(server, timeout=30)
    assert not alive, f"left running after the kernel died: {[p.pid for p in alive]}"


def test_only_masks_in_view_are_sent_on_a_scene(tmp_path: Path, open_app) -> None:
    scene = _uint16_scene(tmp_path / "s.tif", 6000, 6000)
    p = Project.create(tmp_path / "p", classes=["building"])
    try:
        rec = p.add_image(scene)
        rng = np.random.default_rng(0)
        cands = []
        for _ in range(3000):
            x, y = (int(v) for v in rng.integers(0, 5980, 2))
            rle = crop_to_scene_rle(np.ones((12, 12), bool), x, y, 6000, 6000)
            cands.append(Candidate(class_name="building", rle=rle, bbox=[x, y, 12, 12], area=144,
                                   score=float(rng.uniform(0.3, 0.9)), branch="filter"))
        p.add_candidates(rec.id, cands)
        app = open_app(p)
        assert app.image.rgb is None and app.view.tile_layer in app.map.layers
        drawn = len(app.layers.drawn_keys)
        assert drawn == MAX_DRAWN and app.layers.left_out == 3000 - MAX_DRAWN  # view unknown: the best first
        assert len(app.panel.items.options) == 500
        frame = app.state.frame
        lng, lat = frame.to_map(np.array([1000.0, 1600.0]), np.array([1400.0, 1000.0]))
        with app.map.hold_trait_notifications():  # the browser shows x 1000-1600, y 1000-1400
            app.map.zoom = 17
            for name, value in (("south", lat[0]), ("north", lat[1]), ("west", lng[0]), ("east", lng[1])):
                app.map.set_trait(name, float(value))
        keys = app.layers.drawn_keys
        inside = {f"candidate:{c.id}" for c in p.candidates(rec.id)
                  if 700 <= c.candidate.bbox[0] <= 1900 and 800 <= c.candidate.bbox[1] <= 1600}
        assert inside and inside <= keys and len(keys) < 400  # around the view only
        sel = sorted(inside)[0]
        app.select(("candidate", int(sel.split(":")[1])))
        ann = app.accept_selected()
        assert f"annotation:{ann}" in app.layers.drawn_keys
    finally:
        p.close()


def test_window_prefetch_waits_for_the_view_to_rest_and_yields_to_a_prompt(tmp_path: Path) -> None:
    from text2seg_widgets.models.tiny import tiny_sam_segmenter
    from text2seg_widgets.widgets.embeddings import EmbeddingKeeper

    rng = np.random.default_rng(0)
    windows = {k: rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for k in range(3)}
    seg = tiny_sam_segmenter(seed=0)
    with EmbeddingKeeper(seg, cache=None) as keeper:
        worker = keeper.prefetch_many([(k, lambda k=k: windows[k]) for k in windows], delay=5.0)
        assert worker is not None
        keeper.stop_prefetch()  # a box came before the view rested
        assert keeper.join(timeout=10) and keeper.prefetch_encodes == 0
        keeper.prefetch_many([(k, lambda k=k: windows[k]) for k in windows], delay=0.0)
        assert keeper.join(timeout=120) and keeper.prefetch_encodes == 3
        calls = seg.encoder_calls
        keeper.ensure(1, windows[1])  # a prefetched window: nothing encoded on the segmenter
        assert seg.encoder_calls == calls
