"""The one tile loop's in-memory entry point (the Annotator's prompt runs) and its embedding hook."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.imagery.rasters import FakePipeline
from text2seg_widgets.engines.scene import segment_scene
from text2seg_widgets.errors import InputError
from text2seg_widgets.pipeline.tiles import array_tiles, open_tiles, run_tiles, segment_array

H, W = 150, 220
#: bright rectangles (x, y, w, h); the second crosses the seams of 96 px tiles
RECTS = [(10, 12, 30, 20), (70, 60, 80, 50), (180, 120, 30, 25)]


def _image() -> np.ndarray:
    rgb = np.full((H, W, 3), 40, np.uint8)
    for x, y, w, h in RECTS:
        rgb[y:y + h, x:x + w] = 220
    return rgb


def _keys(cands) -> list[tuple]:
    return [(c.class_name, round(c.score, 6), c.branch, tuple(c.bbox), tuple(c.rle["size"]), c.rle["counts"])
            for c in cands]


def test_whole_image_as_one_tile_equals_the_pipeline():
    rgb = _image()
    got = segment_array(FakePipeline(), rgb)
    want = FakePipeline().run(rgb).candidates
    assert sorted(tuple(c.bbox) for c in got) == sorted(RECTS)
    assert [c.score for c in got] == sorted((c.score for c in got), reverse=True)  # best first
    assert sorted(_keys(got)) == sorted(_keys(want))
    assert all(c.extra["tiles"] == [0] and c.extra["merged_from"] == 1 for c in got)


def test_a_window_comes_back_in_the_whole_images_grid():
    pipe = FakePipeline()
    got = segment_array(pipe, _image(), window=(60, 50, 120, 80))  # col, row, width, height
    assert pipe.calls == [(80, 120, 3)]
    assert [tuple(c.bbox) for c in got] == [(70, 60, 80, 50)]
    (cand,) = got
    mask = cand.mask()
    assert mask.shape == (H, W) and mask[60:110, 70:150].all() and mask.sum() == 80 * 50


def test_tiled_in_memory_pixels_give_the_candidates_segment_writes(tmp_path):
    rgb = _image()
    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    from_file = segment_scene(path, FakePipeline(), tmp_path / "out", tile_size=96, overlap=16, progress=False)
    in_memory = segment_array(FakePipeline(), rgb, tile_size=96, overlap=16)
    assert from_file.n_tiles == 6 and len(in_memory) == 3  # the seam-crossing rectangle is one candidate
    assert _keys(in_memory) == _keys(from_file.candidates)


@pytest.mark.parametrize("window, message", [
    ((0, 0, W + 1, 10), "lies outside"),
    ((-1, 0, 10, 10), "lies outside"),
    ((0, 0, 4, 40), "at least 8"),
    ((1, 2, 3), "col_off, row_off, width, height"),
])
def test_bad_windows_are_refused(window, message):
    with pytest.raises(InputError, match=message):
        segment_array(FakePipeline(), _image(), window=window)


class _RecordingEncoder:
    """A TileEncoder that records what the loop asks of it."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.installed: list[tuple[int, ...]] = []

    def encode(self, images):
        self.batches.append(len(images))
        return [f"embedding-{k}" for k in range(len(images))]

    def install(self, image, embedding):
        self.installed.append((image.shape, embedding))


def test_the_embedding_hook_sees_each_batch_once_before_its_tiles_run():
    encoder = _RecordingEncoder()
    pipe = FakePipeline()
    got = segment_array(pipe, _image(), tile_size=96, overlap=16, batch=4, encoder=encoder)
    assert encoder.batches == [4, 2]  # six tiles, four then two
    assert [e for _, e in encoder.installed] == [f"embedding-{k}" for k in (0, 1, 2, 3, 0, 1)]
    assert [s for s, _ in encoder.installed] == pipe.calls
    assert len(got) == 3


def test_mostly_nodata_tiles_are_not_encoded_or_run(tmp_path):
    plan = array_tiles(_image(), tile_size=96, overlap=16)
    items = list(plan.read())
    items[0].valid[:] = False
    encoder, pipe = _RecordingEncoder(), FakePipeline()
    results = run_tiles(pipe, items, encoder=encoder)
    assert [r.skipped for r in results] == [True] + [False] * 5
    assert encoder.batches == [5] and len(pipe.calls) == 5
    assert results[0].candidates == [] and results[0].scores is None and (results[0].labels == 255).all()


def test_open_tiles_reads_a_window_of_a_file(tmp_path):
    rgb = _image()
    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    with open_tiles(path, window=(60, 50, 120, 80), tile_size=64, overlap=8) as plan:
        assert (plan.width, plan.height, plan.origin) == (120, 80, (60, 50))
        items = list(plan.read())
    for item in items:
        win = item.tile.window
        r0, c0 = 50 + int(win.row_off), 60 + int(win.col_off)
        np.testing.assert_array_equal(item.rgb, rgb[r0:r0 + int(win.height), c0:c0 + int(win.width)])
