"""The Annotator's tile route (``imagery/tileroute.py``): the same tiles as localtileserver's own
route, pixel for pixel and tile for tile (none dropped at the scene's edges), from readers kept
open per thread and reopened when the file changes. The app is the real one, called in-process;
``tests/widgets/test_scene_view.py`` fetches the route from the server's own process."""

from __future__ import annotations

import io
import os
from pathlib import Path

import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from text2seg_widgets.imagery.tileroute import ReaderCache, SceneReader, bounds_in, create_app
from text2seg_widgets.imagery.tileserver import ROUTE
from text2seg_widgets.widgets.scenetiles import DisplayVrt, display_vrt, native_zoom

NAIP = "geotiff/naip_m_4709963_se_14_1_20200831.tif"  # 934 x 723, UTM 14N on NAD83
pytestmark = pytest.mark.filterwarnings("ignore::rio_tiler.errors.NoOverviewWarning")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def _grid(shown: DisplayVrt, zoom: int) -> list[tuple[int, int]]:
    """The tiles over the image at ``zoom`` and a ring of one tile around them."""
    (south, west), (north, east) = shown.frame.bounds()
    tms = morecantile.tms.get("WebMercatorQuad")
    top_left, bottom_right = tms.tile(west, north, zoom), tms.tile(east, south, zoom)
    return [(x, y) for x in range(top_left.x - 1, bottom_right.x + 2)
            for y in range(top_left.y - 1, bottom_right.y + 2)]


def _compare(client: TestClient, shown: DisplayVrt, zoom: int) -> tuple[int, int]:
    """(tiles asked, tiles served) over :func:`_grid`, asserting both routes agree on each."""
    ours = ROUTE.split("{z}")[0]
    served = 0
    grid = _grid(shown, zoom)
    for x, y in grid:
        query = f"{zoom}/{x}/{y}.png?filename={shown.path}"
        a, b = client.get(ours + query), client.get("/api/tiles/" + query)
        assert a.status_code == b.status_code, (x, y, a.status_code, b.status_code)
        if a.status_code == 200:
            served += 1
            assert a.headers["content-type"] == "image/png"
            got, want = (np.asarray(Image.open(io.BytesIO(r.content))) for r in (a, b))
            assert got.shape == (256, 256, 4) and np.array_equal(got, want), (x, y)
    return len(grid), served


def test_a_utm_scene_gives_localtileservers_tiles_at_native_zoom_and_zoomed_out(
        tmp_path: Path, shared_data: Path, client: TestClient) -> None:
    shown = display_vrt(shared_data / NAIP, tmp_path / "naip.vrt")
    (south, _), (north, _) = shown.frame.bounds()
    zoom = native_zoom(shown.frame.transform, shown.frame.crs, (south + north) / 2)
    assert zoom == 15
    assert _compare(client, shown, zoom) == (63, 35)      # 7 x 5 tiles over it, none dropped at the edges
    assert _compare(client, shown, zoom - 3) == (12, 2)


def test_a_plain_image_in_its_pixel_space_gives_the_same_tiles(tmp_path: Path, shared_data: Path,
                                                               client: TestClient) -> None:
    shown = display_vrt(shared_data / "scenes" / "berkeley_campus.jpg", tmp_path / "b.vrt")
    assert _compare(client, shown, 18) == (48, 24)  # 6 x 4 tiles, one image pixel per tile pixel


def test_missing_files_and_tiles_outside_the_image_are_404s(tmp_path: Path, shared_data: Path,
                                                            client: TestClient) -> None:
    shown = display_vrt(shared_data / NAIP, tmp_path / "naip.vrt")
    url = ROUTE.format(z=15, x=7350, y=11520)  # five tiles west of the image
    assert client.get(f"{url}?filename={shown.path}").status_code == 404
    reply = client.get(f"{url}?filename={tmp_path / 'gone.vrt'}")
    assert reply.status_code == 404 and "no such file" in reply.json()["detail"]


def test_the_tile_check_reprojects_the_scene_once(tmp_path: Path, shared_data: Path) -> None:
    shown = display_vrt(shared_data / NAIP, tmp_path / "naip.vrt")
    bounds_in.cache_clear()
    with SceneReader(str(shown.path)) as reader:
        assert reader.tile_exists(7357, 11522, 15) and not reader.tile_exists(7350, 11522, 15)
        assert reader.tile_exists(0, 0, 0)  # the world tile holds it
    info = bounds_in.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_readers_are_kept_per_file_and_reopened_when_it_changes(tmp_path: Path, shared_data: Path) -> None:
    a = display_vrt(shared_data / NAIP, tmp_path / "a.vrt").path
    b = display_vrt(shared_data / NAIP, tmp_path / "b.vrt", window=(0, 0, 512, 512)).path
    cache = ReaderCache(size=1)
    try:
        first = cache.get(str(a))
        assert cache.get(str(a)) is first and first.width == 934
        os.utime(a, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns + 10**9))  # the file changed
        second = cache.get(str(a))
        assert second is not first and first.dataset.closed and not second.dataset.closed
        other = cache.get(str(b))  # one kept: the older is closed
        assert other.width == 512 and second.dataset.closed
    finally:
        cache.close()
    assert other.dataset.closed
