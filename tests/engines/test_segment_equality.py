"""`segment` and `pseudo-label` read, tile and merge through the one tile loop, so for the same
image and settings they give identical candidates (class, score, branch, bbox, RLE), whatever
the image kind: RGB, paletted PNG (colour table), uint16 (percentile stretch) and 4 bands chosen
with ``--bands``. Images are generated here; the models are the tiny random ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image

from tests.engines.helpers import make_settings
from tests.tiny_models import synthetic_rgb
from text2seg_widgets.cli import main
from text2seg_widgets.engines.work import ImageJob, read_tiles
from text2seg_widgets.store import Project

H, W = 160, 200
#: the same settings for both commands: 128 px tiles (four per image, so seams are merged too)
OPTIONS = ["--classes", "building,road", "--models", "tiny", "--branches", "detector,heatmap",
           "--tile-size", "128", "--overlap", "16", "--device", "cpu", "--box-threshold", "0",
           "--text-threshold", "0"]
#: a colour table whose entries are far from their indices (index 1 is red, not [1, 1, 1])
PALETTE = np.array([[30, 90, 40], [220, 40, 40], [240, 230, 210], [60, 60, 200], [200, 180, 40],
                    [120, 120, 120], [20, 20, 20], [250, 250, 250]], np.uint8)


def _indices() -> np.ndarray:
    """(H, W) palette indices 0..7: blocks of one colour, so the colour table matters."""
    rgb = synthetic_rgb(H, W, seed=11)
    return (rgb[..., 0] // 32).astype(np.uint8)


def _write_rgb(path: Path) -> Path:
    Image.fromarray(synthetic_rgb(H, W, seed=5)).save(path)
    return path


def _write_paletted(path: Path) -> Path:
    image = Image.fromarray(_indices(), mode="P")
    image.putpalette(PALETTE.reshape(-1).tolist() + [0] * (768 - PALETTE.size))
    image.save(path)
    return path


def _write_tif(path: Path, bands: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=bands.shape[0],
                       dtype=str(bands.dtype)) as ds:
        ds.write(bands)
    return path


def _write_uint16(path: Path) -> Path:
    rgb = synthetic_rgb(H, W, seed=7).astype(np.uint16) * 16 + 300  # 940..4380: needs the stretch
    return _write_tif(path, np.moveaxis(rgb, 2, 0))


def _write_four_band(path: Path) -> Path:
    rgb = np.moveaxis(synthetic_rgb(H, W, seed=9), 2, 0)
    nir = synthetic_rgb(H, W, seed=10)[..., 1]
    return _write_tif(path, np.concatenate([rgb, nir[None]]))


KINDS = {
    "rgb": (_write_rgb, "tile.png", []),
    "paletted": (_write_paletted, "paletted.png", []),
    "uint16": (_write_uint16, "uint16.tif", []),
    "four-band": (_write_four_band, "four.tif", ["--bands", "4,3,2"]),
}


def _key(cand: dict) -> tuple:
    return (cand["class_name"], round(float(cand["score"]), 6), cand["branch"],
            tuple(int(v) for v in cand["bbox"]), tuple(cand["rle"]["size"]), cand["rle"]["counts"])


def _segment(image: Path, out: Path, extra: list[str]) -> list[tuple]:
    result = CliRunner().invoke(main, ["segment", str(image), "--out", str(out), *OPTIONS, *extra])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    doc = json.loads(Path(summary["candidates_json"]).read_text())
    return sorted(_key(c) for c in doc["candidates"])


def _pseudo_label(image: Path, folder: Path, extra: list[str]) -> list[tuple]:
    result = CliRunner().invoke(main, ["pseudo-label", str(folder), str(image), *OPTIONS, *extra, "--no-progress"])
    assert result.exit_code == 0, result.output
    with Project.open(folder) as project:
        (record,) = project.images()
        return sorted(_key(c.candidate.to_dict()) for c in project.candidates(record.id))


@pytest.mark.parametrize("kind", list(KINDS))
def test_segment_and_pseudo_label_give_identical_candidates(kind, tmp_path):
    write, name, extra = KINDS[kind]
    image = write(tmp_path / name)
    from_segment = _segment(image, tmp_path / "segment", extra)
    from_engine = _pseudo_label(image, tmp_path / "project", extra)
    assert from_segment, f"{kind}: the tiny models proposed nothing, so the comparison would be empty"
    assert from_engine == from_segment


def test_engine_tiles_of_a_paletted_png_show_its_colour_table(tmp_path):
    """The engine reads through ``Scene.to_rgb``: the models see the colours, not the indices
    (an engine that stretched the raw indices saw pixels like [1, 1, 1])."""
    image = _write_paletted(tmp_path / "paletted.png")
    settings = make_settings(tile_size=128, overlap=16)
    tiles = list(read_tiles(ImageJob(1, str(image), W, H), settings))
    assert len(tiles) == 4
    indices = _indices()
    for item in tiles:
        win = item.tile.window
        rows = slice(int(win.row_off), int(win.row_off + win.height))
        cols = slice(int(win.col_off), int(win.col_off + win.width))
        np.testing.assert_array_equal(item.image, PALETTE[indices[rows, cols]])


def test_identical_with_the_embedding_cache_on_whichever_command_fills_it(tmp_path, monkeypatch):
    """With the persistent embedding cache on, `segment` fills it and `pseudo-label` reads it (and
    the other way round): the candidates stay identical."""
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "1")
    image = _write_rgb(tmp_path / "tile.png")
    first = _segment(image, tmp_path / "segment", [])
    stored = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(stored) >= 4, f"segment wrote {stored} to the cache, expected one embedding per tile"
    assert _pseudo_label(image, tmp_path / "project", []) == first
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == stored  # all hits
    assert first and _segment(image, tmp_path / "again", []) == first
