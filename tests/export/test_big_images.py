"""A 40000 x 40000 image: `embed` and the label exports refuse it with its size and the way out
(before, they tried to hold several GB of pixels and masks in memory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from text2seg_widgets.cli import main
from text2seg_widgets.store import Project


def _sparse_geotiff(path: Path, size: int = 40000) -> Path:
    """A tiled GeoTIFF of ``size`` x ``size`` pixels whose blocks are never written (a few KB)."""
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       tiled=True, blockxsize=512, blockysize=512, sparse_ok=True, crs="EPSG:32633",
                       transform=from_origin(500000, 5000000, 0.5, 0.5)):
        pass
    return path


def test_a_40000_pixel_scene_is_refused_with_its_size_and_the_way_out(tmp_path: Path) -> None:
    scene = _sparse_geotiff(tmp_path / "big.tif")
    assert scene.stat().st_size < 10_000_000
    folder = tmp_path / "p"
    with Project.create(folder, classes=["building"]) as p:
        image = p.add_image(scene)
        assert (image.width, image.height) == (40000, 40000)
        p.finish_image(image.id)
    runner = CliRunner()
    env = {"TEXT2SEG_EMBED_CACHE": str(tmp_path / "cache"), "TEXT2SEG_EMBED_CACHE_GB": "1"}
    result = runner.invoke(main, ["embed", str(folder), "--models", "tiny", "--device", "cpu", "--no-progress"],
                           env={**os.environ, **env})
    assert result.exit_code == 1
    failed = json.loads(result.stdout[result.stdout.index("{"):])["failed"]
    assert "40000 x 40000 pixels (1600 million" in failed[str(image.id)]
    assert "--tile 2048" in failed[str(image.id)]
    for fmt in ("semantic", "chips"):
        result = runner.invoke(main, ["project", "export", str(folder), str(tmp_path / fmt), "--format", fmt])
        assert result.exit_code == 1 and "40000 x 40000 pixels" in result.output, result.output
        assert "--tile 4096" in result.output and not (tmp_path / fmt).exists()
    result = runner.invoke(main, ["project", "export", str(folder), str(tmp_path / "coco"), "--images", "none"])
    assert result.exit_code == 0, result.output  # the way out works
