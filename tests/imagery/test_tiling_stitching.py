"""Tile grids (pinned offset tables), keep-the-centre cores, hard and soft stitching."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.stitching import SoftStitcher, axis_weights, stitch_hard
from text2seg_widgets.imagery.tiling import axis_cores, axis_offsets, tile_grid


@pytest.mark.parametrize("length, tile, overlap, expected", [
    (1024, 1024, 128, [0]),
    (1000, 1024, 128, [0]),            # smaller than a tile: one tile of the scene's size
    (2000, 1024, 128, [0, 896, 976]),  # last tile pulled back to the border
    (2048, 1024, 0, [0, 1024]),
    (2049, 1024, 0, [0, 1024, 1025]),
    (100, 32, 8, [0, 24, 48, 68]),
    (97, 10, 3, [0, 7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 87]),
    (1, 1024, 128, [0]),
    (100000, 25000, 0, [0, 25000, 50000, 75000]),
])
def test_axis_offsets_table(length, tile, overlap, expected):
    assert axis_offsets(length, tile, overlap) == expected


@pytest.mark.parametrize("length, tile, overlap, expected", [
    (100, 32, 8, [(0, 28), (28, 52), (52, 74), (74, 100)]),
    (2000, 1024, 128, [(0, 960), (960, 1448), (1448, 2000)]),
    (2048, 1024, 0, [(0, 1024), (1024, 2048)]),
    (50, 64, 8, [(0, 50)]),
])
def test_axis_cores_table(length, tile, overlap, expected):
    assert axis_cores(length, axis_offsets(length, tile, overlap), tile) == expected


def test_core_is_where_pixel_is_farthest_from_tile_edge():
    length, tile = 100, 32
    offs = axis_offsets(length, tile, 8)
    cores = axis_cores(length, offs, tile)
    for p in range(length):
        dist = [min(p - o, o + tile - 1 - p) if o <= p < o + tile else -1 for o in offs]
        owner = next(i for i, (a, b) in enumerate(cores) if a <= p < b)
        assert dist[owner] == max(dist), p


@pytest.mark.parametrize("width, height", [(300, 200), (200, 300), (257, 129), (64, 64), (1, 1000)])
def test_grid_covers_exactly_without_out_of_bounds(width, height):
    tiles = tile_grid(width, height, tile_size=64, overlap=16)
    seen = np.zeros((height, width), np.int32)
    covered = np.zeros((height, width), bool)
    for t in tiles:
        w = t.window
        assert w.col_off >= 0 and w.row_off >= 0
        assert w.col_off + w.width <= width and w.row_off + w.height <= height
        assert (w.width, w.height) == (min(64, width), min(64, height))
        covered[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = True
        c = t.core
        seen[int(c.row_off):int(c.row_off + c.height), int(c.col_off):int(c.col_off + c.width)] += 1
    assert covered.all()
    assert (seen == 1).all()  # cores partition the scene


def test_rectangular_grid_table():
    tiles = tile_grid(300, 130, tile_size=128, overlap=32)
    assert [(t.row, t.col, int(t.window.col_off), int(t.window.row_off)) for t in tiles] == [
        (0, 0, 0, 0), (0, 1, 96, 0), (0, 2, 172, 0), (1, 0, 0, 2), (1, 1, 96, 2), (1, 2, 172, 2)]


def test_bad_tiling_arguments():
    with pytest.raises(InputError, match="overlap"):
        tile_grid(100, 100, 64, 64)
    with pytest.raises(InputError, match="tile_size"):
        tile_grid(100, 100, 0, 0)


@pytest.mark.parametrize("overlap", [0, 7, 20])
def test_hard_stitch_round_trip_is_exact(overlap):
    rng = np.random.default_rng(overlap)
    labels = rng.integers(0, 6, size=(151, 233)).astype(np.uint8)
    tiles = tile_grid(233, 151, tile_size=48, overlap=overlap)
    parts = [labels[int(t.window.row_off):int(t.window.row_off + t.window.height),
                    int(t.window.col_off):int(t.window.col_off + t.window.width)] for t in tiles]
    np.testing.assert_array_equal(stitch_hard(tiles, parts, 233, 151), labels)


def test_axis_weights_positive_and_untapered_at_scene_border():
    np.testing.assert_allclose(axis_weights(6, 3), np.array([1, 2, 3, 3, 2, 1]) / 3)
    np.testing.assert_allclose(axis_weights(6, 3, taper_start=False), np.array([3, 3, 3, 3, 2, 1]) / 3)


def _run_soft(scores_full, tiles, width, height, valid_full=None, skip=()):
    st = SoftStitcher(tiles, width, height, scores_full.shape[0], ramp=8)
    out = np.full((height, width), 77, np.uint8)
    written = np.zeros((height, width), np.int32)
    max_pending = 0
    for t in tiles:
        r, c = int(t.window.row_off), int(t.window.col_off)
        sl = (slice(r, r + int(t.window.height)), slice(c, c + int(t.window.width)))
        sc = None if t.index in skip else scores_full[(slice(None),) + sl]
        valid = None if valid_full is None else valid_full[sl]
        for win, block in st.add(t, sc, valid):
            rs = slice(int(win.row_off), int(win.row_off + win.height))
            cs = slice(int(win.col_off), int(win.col_off + win.width))
            out[rs, cs] = block
            written[rs, cs] += 1
        max_pending = max(max_pending, st.pending_cells)
    assert (written == 1).all() and st.pending_cells == 0
    return out, max_pending


def test_soft_stitch_of_consistent_scores_is_their_argmax():
    rng = np.random.default_rng(3)
    scores = rng.random((4, 90, 130)).astype(np.float32)
    tiles = tile_grid(130, 90, tile_size=40, overlap=12)
    out, _ = _run_soft(scores, tiles, 130, 90)
    np.testing.assert_array_equal(out, scores.argmax(0))


def test_soft_stitch_blends_disagreeing_tiles_by_weight():
    # tile 0 says class 1 everywhere, tile 1 says class 2: the overlap flips where weights cross
    tiles = tile_grid(60, 10, tile_size=40, overlap=20)  # x offsets 0, 20
    st = SoftStitcher(tiles, 60, 10, 3, ramp=10)
    s0 = np.zeros((3, 10, 40), np.float32); s0[1] = 1
    s1 = np.zeros((3, 10, 40), np.float32); s1[2] = 1
    out = np.full((10, 60), 99, np.uint8)
    for t, s in zip(tiles, (s0, s1)):
        for win, block in st.add(t, s):
            out[:, int(win.col_off):int(win.col_off + win.width)] = block
    row = out[0]
    assert (row[:20] == 1).all() and (row[40:] == 2).all()
    # in the overlap [20, 40): tile 0 weight min(40 - x, 10), tile 1 min(x - 19, 10)
    expected = [1 if min(40 - x, 10) >= min(x - 19, 10) else 2 for x in range(20, 40)]
    assert row[20:40].tolist() == expected


def test_soft_stitch_nodata_and_skipped_tiles():
    scores = np.zeros((2, 50, 50), np.float32); scores[1, :, 25:] = 1
    valid = np.ones((50, 50), bool); valid[:5] = False
    tiles = tile_grid(50, 50, tile_size=30, overlap=10)
    out, _ = _run_soft(scores, tiles, 50, 50, valid, skip={0})
    assert (out[:5] == 255).all()
    # pixels covered only by the skipped tile 0 are nodata
    others = tiles[1:]
    only0 = np.zeros((50, 50), bool); only0[:30, :30] = True
    for t in others:
        w = t.window
        only0[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = False
    assert only0.any() and (out[only0] == 255).all()
    rest = ~only0 & valid
    np.testing.assert_array_equal(out[rest], scores.argmax(0)[rest])


def test_soft_stitch_memory_follows_width_not_area():
    pend = []
    for height in (200, 800):
        scores = np.zeros((2, height, 120), np.float32)
        _, max_pending = _run_soft(scores, tile_grid(120, height, 40, 10), 120, height)
        pend.append(max_pending)
    assert pend[0] == pend[1]


def test_soft_stitch_rejects_wrong_shape():
    tiles = tile_grid(50, 50, 30, 10)
    st = SoftStitcher(tiles, 50, 50, 3)
    with pytest.raises(InputError, match="do not match"):
        st.add(tiles[0], np.zeros((2, 30, 30), np.float32))
    assert isinstance(tiles[0].window, Window)
