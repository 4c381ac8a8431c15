"""Prompts on local windows (imagery.windows): the window choice pinned as a table, window ->
scene mapping, masks crossing the window grid's edges, the cache keyed by window pixels, and the
rule that the same box gives the same mask on a whole 10,000-pixel scene as on a tile cut from it
(LiteMedSAM, real weights)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.instances import crop_to_scene_rle, scene_rle_crop
from text2seg_widgets.imagery.windows import PromptWindow, choose_window, prompt_extent, view_windows
from text2seg_widgets.store import Project
from tests.scenes import SceneObject, synthetic_scene


@pytest.mark.parametrize("extent, size, expected", [
    # a small box in a 10k scene, LiteMedSAM (256): the level-256 window nearest to centred on it
    ((1000, 1000, 1080, 1060), (10000, 10000), PromptWindow(896, 896, 1152, 1152, 256)),
    # the same box shifted by one grid stride (128): the window shifts with it
    ((1128, 1000, 1208, 1060), (10000, 10000), PromptWindow(1024, 896, 1280, 1152, 256)),
    # a box whose 10 % margin does not fit any 256 window: the next level, 512, stride 256
    ((1000, 1000, 1230, 1200), (10000, 10000), PromptWindow(768, 768, 1280, 1280, 512)),
    # at the right/bottom edge the window is pulled back inside the image
    ((9950, 9950, 9990, 9990), (10000, 10000), PromptWindow(9744, 9744, 10000, 10000, 256)),
    # an image no bigger than the input: the whole image
    ((10, 10, 50, 50), (256, 200), PromptWindow(0, 0, 256, 200, 256)),
    # a box as big as the image: the whole image, whatever its size
    ((0, 0, 1024, 1024), (1024, 1024), PromptWindow(0, 0, 1024, 1024, 1024)),
    # a thin image: the short axis is whole, the long one on the grid
    ((3000, 10, 3050, 60), (8000, 100), PromptWindow(2944, 0, 3200, 100, 256)),
])
def test_window_choice_table(extent, size, expected) -> None:
    assert choose_window(extent, *size, 256) == expected


def test_a_window_holds_the_prompt_and_its_margin_and_is_on_the_grid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        w, h = (int(v) for v in rng.integers(300, 6000, 2))
        x0, y0 = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
        bw, bh = rng.uniform(1, min(w - x0, 900)), rng.uniform(1, min(h - y0, 900))
        win = choose_window((x0, y0, x0 + bw, y0 + bh), w, h, 256)
        pad = 0.1 * max(bw, bh)
        assert win.contains(max(0, x0 - pad), max(0, y0 - pad), min(w, x0 + bw + pad), min(h, y0 + bh + pad))
        assert win.width == min(w, win.level) and win.height == min(h, win.level)
        stride = win.level // 2
        assert win.x0 % stride == 0 or win.x1 == w
        assert win.y0 % stride == 0 or win.y1 == h


def test_window_to_scene_and_back() -> None:
    win = PromptWindow(896, 1024, 1152, 1280, 256)
    assert win.rasterio == (896, 1024, 256, 256)
    assert win.to_local(np.array([[900.0, 1030.0]])).tolist() == [[4.0, 6.0]]
    assert win.box_to_local([900, 1030, 1000, 1100]).tolist() == [4.0, 6.0, 104.0, 76.0]
    local = np.zeros((256, 256), bool)
    local[6:76, 4:104] = True  # a mask decoded on the window, put back in a 20k scene
    rle = crop_to_scene_rle(local, win.x0, win.y0, 20000, 20000)
    crop, x0, y0 = scene_rle_crop(rle)
    assert (x0, y0, crop.shape) == (900, 1030, (70, 100)) and crop.all()
    assert prompt_extent((5, 6, 7, 8), [(1, 20)]) == (1, 6, 7, 20)
    with pytest.raises(InputError, match="a box or at least one point"):
        prompt_extent(None, [])


def test_masks_that_cross_grid_edges_get_a_window_that_holds_them() -> None:
    # an object straddling the grid lines at x 1024 and y 1024 (and bigger than a stride): the
    # overlapping windows (stride = half a window) hold it whole
    win = choose_window((960, 980, 1100, 1090), 10000, 10000, 256)
    assert win.contains(946, 966, 1114, 1104) and win == PromptWindow(896, 896, 1152, 1152, 256)
    # one too big for any 256 window goes up a level instead of being cut
    win = choose_window((900, 900, 1200, 1100), 10000, 10000, 256)
    assert win.contains(870, 870, 1230, 1130) and win.level == 512
    # points on both sides of a level-256 window edge: one window holds them all
    win = choose_window(prompt_extent(None, [(1020, 500), (1030, 505)]), 10000, 10000, 256)
    assert win.contains(1020, 500, 1030, 505)


def test_view_windows_cover_the_view_nearest_first() -> None:
    wins = view_windows((1000, 1000, 1400, 1300), 10000, 10000, 256, limit=50)
    assert wins[0].contains(1072, 1022, 1328, 1278) or wins[0].level == 256
    covered = np.zeros((1300, 1400), bool)
    for w in wins:
        covered[w.y0:min(w.y1, 1300), w.x0:min(w.x1, 1400)] = True
    assert covered[1000:1300, 1000:1400].all()
    assert len(view_windows((0, 0, 100, 100), 200, 200, 256)) == 1  # a small image: itself


@pytest.fixture
def open_app():
    """Annotators closed (threads joined, tile server released) when the test ends."""
    from text2seg_widgets.widgets import Annotator

    apps = []

    def make(*args, **kwargs):
        apps.append(Annotator(*args, **kwargs))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


@pytest.fixture(scope="module")
def scene_10k(tmp_path_factory) -> Path:
    objects = [SceneObject(6020, 4040, 6100, 4100), SceneObject(6300, 4200, 6360, 4290)]
    return synthetic_scene(tmp_path_factory.mktemp("scene") / "scene10k.tif", 10000, objects)


def test_the_same_box_gives_the_same_mask_on_the_scene_and_on_a_tile_of_it(
        scene_10k: Path, tmp_path: Path, monkeypatch, open_app) -> None:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.modelset import ModelSet

    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "1")
    seg = LiteMedSamSegmenter.from_checkpoint(device="cpu")
    p = Project.create(tmp_path / "p", classes=["building"])
    try:
        scene = p.add_image(scene_10k)
        tile = p.add_image(scene_10k, window=(5120, 3072, 2048, 2048))  # as `add-images --tile 2048` cuts
        app = open_app(p, ModelSet(segmenter=seg), image_id=scene.id)
        assert app.view.tile_layer is not None and app.image.rgb is None  # served, never loaded whole
        box = (6010, 4030, 6110, 4110)
        on_scene = scene_rle_crop(p.annotation(app.box(*box)).rle)
        crop, x0, y0 = on_scene
        truth = np.zeros((10000, 10000), bool)[4000:4200, 6000:6200]
        truth[40:100, 20:100] = True  # the 80 x 60 square at (6020, 4040)
        got = np.zeros_like(truth)
        got[y0 - 4000:y0 - 4000 + crop.shape[0], x0 - 6000:x0 - 6000 + crop.shape[1]] = crop
        assert (got & truth).sum() / (got | truth).sum() > 0.95  # the right place and size, not shrunk away
        calls = seg.encoder_calls
        app.box(*box)  # the same window again: its embedding is held, nothing encoded
        assert seg.encoder_calls == calls
        app.show_image(tile.id)
        on_tile = scene_rle_crop(p.annotation(app.box(6010 - 5120, 4030 - 3072, 6110 - 5120, 4110 - 3072)).rle)
        assert np.array_equal(on_tile[0], on_scene[0]) and (on_tile[1], on_tile[2]) == (900, 968)
        assert seg.encoder_calls == calls  # the tile's window has the same pixels: a cache hit
        assert len(os.listdir(tmp_path / "cache")) >= 1
    finally:
        p.close()


def test_cache_entries_are_per_window(scene_10k: Path, tmp_path: Path) -> None:
    from text2seg_widgets.models.embedding_cache import EmbeddingCache
    from text2seg_widgets.models.embedding_source import EmbeddingSource
    from text2seg_widgets.models.tiny import tiny_sam_segmenter
    from text2seg_widgets.widgets.overlay import load_image

    image = load_image(scene_10k)
    seg = tiny_sam_segmenter(seed=0)
    source = EmbeddingSource(seg, EmbeddingCache(tmp_path / "cache", max_gb=1))
    a = choose_window((6010, 4030, 6110, 4110), image.width, image.height, seg.input_size)
    b = choose_window((6290, 4190, 6370, 4300), image.width, image.height, seg.input_size)
    assert a != b
    source.embed(image.read(a), source=str(scene_10k), window=a.rasterio)
    source.embed(image.read(b), source=str(scene_10k), window=b.rasterio)
    assert source.encoded == 2 and source.hits == 0
    again = EmbeddingSource(seg, EmbeddingCache(tmp_path / "cache", max_gb=1))
    again.embed(image.read(a))
    again.embed(image.read(b))
    assert again.encoded == 0 and again.hits == 2  # one entry per window, found by its pixels
