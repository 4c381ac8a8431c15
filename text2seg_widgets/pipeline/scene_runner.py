"""Run a Text2Seg pipeline over a scene of any size, tile by tile, in memory bounded by the tile.

:func:`segment_scene` opens the scene lazily, computes ONE stretch for it, walks a grid of
overlapping tiles (skipping tiles that are mostly nodata), runs the pipeline on each tile and:

* writes each tile's labels into ``labels.tif`` window by window (hard keep-the-centre stitching,
  or ``stitch="soft"``: blended per-class score maps, arg-maxed per finished cell), finished as a
  class-index COG with the source CRS/transform, nodata 255, colour table, class tags, overviews;
* shifts each candidate to scene pixels as a bounding-box crop and merges the crops of
  neighbouring tiles (duplicates from overlaps, objects cut by a seam) without ever building a
  full-scene array; candidates get COCO RLE in scene coordinates;
* fills a downsampled preview as it goes (``overlay.png`` with a legend, at most
  ``preview_max_side`` pixels on a side).

Outputs in ``out_dir``: ``labels.tif``, ``labels.png`` (full-resolution paletted class-index PNG,
only for scenes up to ``png_max_pixels``; larger scenes skip it and say so in the log, because a
downsampled class map would not line up with the image), ``candidates.json``, ``overlay.png``,
``stretch.json`` and, when asked, ``vectors.gpkg`` / ``vectors.geojson`` (EPSG:4326).
Pixels of skipped tiles and nodata pixels are 255 (ignore) in the label raster.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from tqdm import tqdm

from text2seg_widgets.core import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.render import PreviewCanvas, overlay_with_legend
from text2seg_widgets.imagery.stitching import SoftStitcher
from text2seg_widgets.imagery.vectors import raster_to_records, write_features
from text2seg_widgets.imagery.writers import LabelRasterWriter
from text2seg_widgets.pipeline.tiles import (NODATA, StretchLike, TileAssembler, TilePlan, TileResult,
                                             merge_candidates, open_tiles, segment_tiles)

__all__ = ["segment_scene", "SceneOutputs", "PNG_MAX_PIXELS", "merge_candidates"]

logger = logging.getLogger(__name__)

#: Largest scene (pixels) that also gets a full-resolution ``labels.png`` (8192 x 8192).
PNG_MAX_PIXELS = 8192 * 8192
_GDAL_CACHE_MB = 64


class _Pipeline(Protocol):  # the part of Text2SegPipeline the runner uses
    classes: Any

    def run(self, image: np.ndarray) -> Any: ...


@dataclass
class SceneOutputs:
    """Paths written by :func:`segment_scene` and a summary of the run."""

    out_dir: Path
    labels_tif: Path
    candidates_json: Path
    overlay_png: Path
    stretch_json: Path
    labels_png: Path | None
    vectors: Path | None
    width: int
    height: int
    n_tiles: int
    n_tiles_skipped: int
    n_candidates: int
    seconds: float
    candidates: list[Candidate] = field(default_factory=list, repr=False)


def _write_candidates(path: Path, plan: TilePlan, image: str, cands: list[Candidate], names: Sequence[str],
                      colors: Sequence[Sequence[int]], settings: dict[str, Any]) -> None:
    doc = {"image": image, "width": plan.width, "height": plan.height,
           "crs": plan.crs.to_wkt() if plan.crs is not None else None,
           "crs_name": plan.crs.to_string() if plan.crs is not None else None,
           "transform": list(plan.transform)[:6], "classes": list(names),
           "colors": [list(map(int, c)) for c in colors], "settings": settings,
           "candidates": [c.to_dict() for c in cands]}
    path.write_text(json.dumps(doc))


def _write_pictures(out: Path, plan: TilePlan, preview: PreviewCanvas, names: Sequence[str],
                    colors: Sequence[Sequence[int]], png_max_pixels: int) -> Path | None:
    overlay_with_legend(preview.rgb, preview.labels, names, colors).save(out / "overlay.png")
    if plan.width * plan.height > png_max_pixels:
        logger.info("scene is %d x %d pixels: labels.png skipped (limit %d px); use labels.tif",
                    plan.width, plan.height, png_max_pixels)
        return None
    png = out / "labels.png"
    rasterio.shutil.copy(out / "labels.tif", png, driver="PNG", ZLEVEL=6)
    return png


def _check_args(vectors: str | None, stitch: str) -> None:
    if vectors not in (None, "gpkg", "geojson"):
        raise InputError(f"vectors must be None, 'gpkg' or 'geojson', got {vectors!r}")
    if stitch not in ("hard", "soft"):
        raise InputError(f"stitch must be 'hard' (keep the centre) or 'soft' (blended scores), got {stitch!r}")


def _write_tile(result: TileResult, writer: LabelRasterWriter, soft: SoftStitcher | None,
                preview: PreviewCanvas) -> None:
    tile = result.tile
    rs, cs = tile.core_slices
    core_x, core_y = int(tile.core.col_off), int(tile.core.row_off)
    preview.paste(core_x, core_y, rgb=result.input.rgb[rs, cs])
    if soft is None:
        writer.write(tile.core, result.labels[rs, cs])
        preview.paste(core_x, core_y, labels=result.labels[rs, cs])
        return
    for window, block in soft.add(tile, result.scores, result.input.valid):
        writer.write(window, block)
        preview.paste(int(window.col_off), int(window.row_off), labels=block)


def segment_scene(path: str | os.PathLike, pipeline: _Pipeline, out_dir: str | os.PathLike, *,
                  bands: str | int | Sequence[int] | None = None, tile_size: int = 1024, overlap: int = 128,
                  stretch: StretchLike = None, vectors: str | None = None,
                  min_area_px: int = 16, progress: bool = True, stitch: str = "hard",
                  max_nodata_fraction: float = 0.95, png_max_pixels: int = PNG_MAX_PIXELS,
                  preview_max_side: int = 2048, gsd: float | None = None, batch: int = 1,
                  device: Any = None, dtype: Any = None) -> SceneOutputs:
    """Segment the scene at ``path`` tile by tile and write the outputs to ``out_dir`` (module docs).

    The tiles, pixels and candidates come from the one tile loop (:mod:`.tiles`), so they equal
    what the batch engines store for the same image and settings. ``bands``: preset or 1-based
    indices (see :mod:`text2seg_widgets.imagery.bands`); ``stretch``: None (computed once for the
    scene), a method name, a :class:`Stretch`, its dict or a ``stretch.json`` path; ``vectors``:
    None, ``"gpkg"`` or ``"geojson"``, sieved to ``min_area_px``. ``gsd``: resample every tile to
    this ground sampling distance (CRS units per pixel) before the models see it; ``tile_size``/
    ``overlap`` are then in resampled pixels, and results come back to the source grid (nearest
    neighbour), so the outputs always match the source raster.
    """
    start = time.perf_counter()
    vectors = vectors.lower() if isinstance(vectors, str) else vectors
    _check_args(vectors, stitch)
    out = Path(out_dir)
    names, colors = list(pipeline.classes.names), [tuple(c) for c in pipeline.classes.colors]
    with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB, GDAL_PAM_ENABLED="NO"), \
            open_tiles(path, tile_size=tile_size, overlap=overlap, bands=bands, stretch=stretch, gsd=gsd) as plan:
        out.mkdir(parents=True, exist_ok=True)
        plan.stretch.save(out / "stretch.json")
        tiles = plan.tiles
        assembler = TileAssembler(plan.width, plan.height, names, n_tiles=len(tiles))
        preview = PreviewCanvas(plan.width, plan.height, preview_max_side)
        soft = SoftStitcher(tiles, plan.width, plan.height, len(names) + 1, ramp=max(1, overlap // 2)) \
            if stitch == "soft" else None
        bar = tqdm(total=len(tiles), disable=not progress, file=sys.stderr, unit="tile", desc=plan.name)
        with bar, LabelRasterWriter(out / "labels.tif", plan.width, plan.height, plan.crs, plan.transform,
                                    names, colors, NODATA) as writer:
            for result in segment_tiles(pipeline, plan, batch=batch, max_nodata_fraction=max_nodata_fraction,
                                        device=device, dtype=dtype):
                assembler.add(result)
                _write_tile(result, writer, soft, preview)
                bar.update(1)
        cands = assembler.candidates()
        settings = {"bands": list(plan.stretch.bands), "tile_size": tile_size, "overlap": overlap,
                    "stitch": stitch, "gsd": gsd, "resample_factor": plan.factor, "n_tiles": len(tiles),
                    "n_tiles_skipped": assembler.skipped, "min_area_px": min_area_px}
        _write_candidates(out / "candidates.json", plan, str(path), cands, names, colors, settings)
        labels_png = _write_pictures(out, plan, preview, names, colors, png_max_pixels)
        vec_path = None
        if vectors is not None:
            boxes = [(c.class_name, *c.bbox, c.score) for c in cands]
            records = raster_to_records(out / "labels.tif", names, min_px=min_area_px, boxes=boxes)
            vec_path = write_features(records, out / f"vectors.{vectors}", plan.crs,
                                      "GPKG" if vectors == "gpkg" else "GeoJSON")
        outputs = SceneOutputs(out, out / "labels.tif", out / "candidates.json", out / "overlay.png",
                               out / "stretch.json", labels_png, vec_path, plan.width, plan.height,
                               len(tiles), assembler.skipped, len(cands), round(time.perf_counter() - start, 3),
                               cands)
    logger.info("segmented %s: %d tiles (%d skipped), %d candidates in %.1f s", path, len(tiles),
                assembler.skipped, len(cands), outputs.seconds)
    return outputs
