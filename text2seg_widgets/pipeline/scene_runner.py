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

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.instances import (Piece, crop_to_scene_rle, decode_crop, merge_pieces,
                                                piece_from_tile_mask, union_rle)
from text2seg_widgets.imagery.render import PreviewCanvas, overlay_with_legend
from text2seg_widgets.imagery.scene import Scene, open_scene
from text2seg_widgets.imagery.stitching import SoftStitcher
from text2seg_widgets.imagery.stretch import STRETCH_METHODS, Stretch, compute_stretch, load_stretch
from text2seg_widgets.imagery.tiling import (Tile, check_tiling, gsd_factor, resize_nearest, source_tiling,
                                             tile_grid)
from text2seg_widgets.imagery.vectors import raster_to_records, write_features
from text2seg_widgets.imagery.writers import NODATA, LabelRasterWriter
from text2seg_widgets.core import Candidate, rle_bbox
from text2seg_widgets.pipeline.image_input import MIN_SIDE

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


@dataclass
class _RunState:
    pieces: list[Piece] = field(default_factory=list)
    skipped: int = 0


def _resolve_stretch(scene: Scene, stretch: Stretch | dict | str | os.PathLike | None) -> Stretch:
    if stretch is None:
        return compute_stretch(scene, scene.bands)
    if isinstance(stretch, str) and stretch in STRETCH_METHODS:
        return compute_stretch(scene, scene.bands, method=stretch)
    if isinstance(stretch, dict):
        stretch = Stretch.from_dict(stretch)
    elif isinstance(stretch, (str, os.PathLike)):
        stretch = load_stretch(stretch)
    if not isinstance(stretch, Stretch):
        raise InputError(f"stretch must be None, a method ({', '.join(STRETCH_METHODS)}), a Stretch, a dict "
                         f"or a stretch.json path; got {type(stretch).__name__}")
    if list(stretch.bands) != list(scene.bands):
        raise InputError(f"the stretch is for bands {stretch.bands} but the run uses bands {list(scene.bands)}; "
                         "compute a new stretch or choose the same bands")
    return stretch


def _check_args(scene: Scene, tile_size: int, overlap: int, vectors: str | None, stitch: str) -> None:
    check_tiling(tile_size, overlap)
    if min(scene.width, scene.height) < MIN_SIDE:
        raise InputError(f"{scene.path.name} is {scene.width} x {scene.height} pixels; segmentation needs at "
                         f"least {MIN_SIDE} pixels on each side: crop or pad the scene to a usable shape")
    if tile_size < MIN_SIDE:
        raise InputError(f"tile_size {tile_size} is below the {MIN_SIDE}-pixel minimum the models accept")
    if vectors not in (None, "gpkg", "geojson"):
        raise InputError(f"vectors must be None, 'gpkg' or 'geojson', got {vectors!r}")
    if stitch not in ("hard", "soft"):
        raise InputError(f"stitch must be 'hard' (keep the centre) or 'soft' (blended scores), got {stitch!r}")


def _gsd_factor(scene: Scene, gsd: float | None) -> float:
    if gsd is not None and not scene.is_georeferenced:
        raise InputError(f"gsd={gsd} needs a georeferenced scene, and {scene.path.name} has no CRS; "
                         "leave gsd unset for plain images")
    return gsd_factor(scene.res[0], gsd)


def _tile_pieces(result: Any, tile: Tile, valid: np.ndarray, scene: Scene) -> list[Piece]:
    x, y = tile.offset
    th, tw = valid.shape
    pieces = []
    for cand in result.candidates:
        full = cand.mask()
        if full.shape != valid.shape:  # the tile was resampled to a target GSD
            full = resize_nearest(full, valid.shape)
            bx = by = 0
            bh, bw = full.shape
        else:
            bx, by, bw, bh = (int(v) for v in cand.bbox)
        if bw <= 0 or bh <= 0:
            continue
        rows, cols = slice(by, by + bh), slice(bx, bx + bw)
        mask = full[rows, cols] & valid[rows, cols]
        piece = piece_from_tile_mask(mask, x, y, scene.width, scene.height, key=cand.class_name,
                                     score=cand.score, payload=(cand, tile.index), source=tile.index,
                                     tile_size=(tw, th), at=(bx, by))
        if piece is not None:
            pieces.append(piece)
    return pieces


def _read_tile(scene: Scene, tile: Tile, stretch: Stretch, factor: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(model rgb, source-resolution rgb, source-resolution valid mask)`` of a tile."""
    data = scene.read(tile.window, scene.bands)
    valid = scene.valid_mask(tile.window, scene.bands, data=data)
    own = None if scene.palette is not None else stretch  # a paletted image shows its colour table
    rgb = scene.to_rgb(data, valid, own)
    if factor == 1.0:
        return rgb, rgb, valid
    h, w = valid.shape
    shape = (max(MIN_SIDE, round(h * factor)), max(MIN_SIDE, round(w * factor)))
    model_data = scene.read(tile.window, scene.bands, out_shape=shape)
    model_valid = scene.valid_mask(tile.window, scene.bands, out_shape=shape)
    return scene.to_rgb(model_data, model_valid, own), rgb, valid


def _process_tile(scene: Scene, pipeline: _Pipeline, tile: Tile, stretch: Stretch, state: _RunState,
                  writer: LabelRasterWriter, soft: SoftStitcher | None, preview: PreviewCanvas,
                  max_nodata_fraction: float, factor: float = 1.0) -> None:
    model_rgb, rgb, valid = _read_tile(scene, tile, stretch, factor)
    rs, cs = tile.core_slices
    core_x, core_y = int(tile.core.col_off), int(tile.core.row_off)
    if 1.0 - float(valid.mean()) > max_nodata_fraction:
        state.skipped += 1
        labels = np.full(valid.shape, NODATA, np.uint8)
        scores = None
    else:
        result = pipeline.run(model_rgb)
        labels = np.asarray(result.label_map, np.uint8)
        scores = result.score_maps
        if labels.shape != valid.shape:
            labels, scores = resize_nearest(labels, valid.shape), resize_nearest(np.asarray(scores), valid.shape)
        labels = labels.copy()
        labels[~valid] = NODATA
        state.pieces.extend(_tile_pieces(result, tile, valid, scene))
    preview.paste(core_x, core_y, rgb=rgb[rs, cs])
    if soft is None:
        writer.write(tile.core, labels[rs, cs])
        preview.paste(core_x, core_y, labels=labels[rs, cs])
        return
    for window, block in soft.add(tile, scores, valid):
        writer.write(window, block)
        preview.paste(int(window.col_off), int(window.row_off), labels=block)


def merge_candidates(pieces: list[Piece], width: int, height: int, names: Sequence[str]) -> list[Candidate]:
    out = []
    for group in merge_pieces(pieces):
        members = [pieces[i] for i in group]
        best = max(members, key=lambda p: p.score)
        cand, _ = best.payload
        if len(members) == 1:
            rle, area = crop_to_scene_rle(decode_crop(best.rle), best.x0, best.y0, height, width), best.area
        else:
            rle, area = union_rle(members, height, width)
        extra = dict(cand.extra)
        extra.update(tiles=sorted({p.payload[1] for p in members}), merged_from=len(members))
        out.append(Candidate(class_name=best.key, rle=rle, bbox=rle_bbox(rle), area=area,
                             score=best.score, branch=cand.branch, prompt=cand.prompt, model=cand.model,
                             extra=extra))
    order = {n: i for i, n in enumerate(names)}
    out.sort(key=lambda c: (order.get(c.class_name, len(order)), -c.score, c.bbox[1], c.bbox[0]))
    return out


def _write_candidates(path: Path, scene: Scene, cands: list[Candidate], names: Sequence[str],
                      colors: Sequence[Sequence[int]], settings: dict[str, Any]) -> None:
    doc = {"image": str(scene.path), "width": scene.width, "height": scene.height,
           "crs": scene.crs.to_wkt() if scene.crs is not None else None,
           "crs_name": scene.crs.to_string() if scene.crs is not None else None,
           "transform": list(scene.transform)[:6], "classes": list(names),
           "colors": [list(map(int, c)) for c in colors], "settings": settings,
           "candidates": [c.to_dict() for c in cands]}
    path.write_text(json.dumps(doc))


def _write_pictures(out: Path, scene: Scene, preview: PreviewCanvas, names: Sequence[str],
                    colors: Sequence[Sequence[int]], png_max_pixels: int) -> Path | None:
    overlay_with_legend(preview.rgb, preview.labels, names, colors).save(out / "overlay.png")
    if scene.width * scene.height > png_max_pixels:
        logger.info("scene is %d x %d pixels: labels.png skipped (limit %d px); use labels.tif",
                    scene.width, scene.height, png_max_pixels)
        return None
    png = out / "labels.png"
    rasterio.shutil.copy(out / "labels.tif", png, driver="PNG", ZLEVEL=6)
    return png


def segment_scene(path: str | os.PathLike, pipeline: _Pipeline, out_dir: str | os.PathLike, *,
                  bands: str | int | Sequence[int] | None = None, tile_size: int = 1024, overlap: int = 128,
                  stretch: Stretch | dict | str | os.PathLike | None = None, vectors: str | None = None,
                  min_area_px: int = 16, progress: bool = True, stitch: str = "hard",
                  max_nodata_fraction: float = 0.95, png_max_pixels: int = PNG_MAX_PIXELS,
                  preview_max_side: int = 2048, gsd: float | None = None) -> SceneOutputs:
    """Segment the scene at ``path`` tile by tile and write the outputs to ``out_dir`` (module docs).

    ``bands``: preset or 1-based indices (see :mod:`text2seg_widgets.imagery.bands`); ``stretch``:
    None (computed once for the scene), a method name, a :class:`Stretch`, its dict or a
    ``stretch.json`` path; ``vectors``: None, ``"gpkg"`` or ``"geojson"``, sieved to ``min_area_px``.
    ``gsd``: resample every tile to this ground sampling distance (CRS units per pixel) before the
    models see it; ``tile_size``/``overlap`` are then in resampled pixels, and results come back to
    the source grid (nearest neighbour), so the outputs always match the source raster.
    """
    start = time.perf_counter()
    vectors = vectors.lower() if isinstance(vectors, str) else vectors
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names, colors = list(pipeline.classes.names), [tuple(c) for c in pipeline.classes.colors]
    with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB, GDAL_PAM_ENABLED="NO"), open_scene(path, bands=bands) as scene:
        _check_args(scene, tile_size, overlap, vectors, stitch)
        st = _resolve_stretch(scene, stretch)
        scene.stretch = st
        st.save(out / "stretch.json")
        factor = _gsd_factor(scene, gsd)
        tiles = tile_grid(scene.width, scene.height, *source_tiling(tile_size, overlap, factor))
        state = _RunState()
        preview = PreviewCanvas(scene.width, scene.height, preview_max_side)
        soft = SoftStitcher(tiles, scene.width, scene.height, len(names) + 1, ramp=max(1, overlap // 2)) \
            if stitch == "soft" else None
        with LabelRasterWriter(out / "labels.tif", scene.width, scene.height, scene.crs, scene.transform,
                               names, colors, NODATA) as writer:
            for tile in tqdm(tiles, disable=not progress, file=sys.stderr, unit="tile", desc=scene.path.name):
                _process_tile(scene, pipeline, tile, st, state, writer, soft, preview, max_nodata_fraction, factor)
        cands = merge_candidates(state.pieces, scene.width, scene.height, names)
        settings = {"bands": list(scene.bands), "tile_size": tile_size, "overlap": overlap, "stitch": stitch,
                    "gsd": gsd, "resample_factor": factor,
                    "n_tiles": len(tiles), "n_tiles_skipped": state.skipped, "min_area_px": min_area_px}
        _write_candidates(out / "candidates.json", scene, cands, names, colors, settings)
        labels_png = _write_pictures(out, scene, preview, names, colors, png_max_pixels)
        vec_path = None
        if vectors is not None:
            boxes = [(c.class_name, *c.bbox, c.score) for c in cands]
            records = raster_to_records(out / "labels.tif", names, min_px=min_area_px, boxes=boxes)
            vec_path = write_features(records, out / f"vectors.{vectors}", scene.crs,
                                      "GPKG" if vectors == "gpkg" else "GeoJSON")
        outputs = SceneOutputs(out, out / "labels.tif", out / "candidates.json", out / "overlay.png",
                               out / "stretch.json", labels_png, vec_path, scene.width, scene.height,
                               len(tiles), state.skipped, len(cands), round(time.perf_counter() - start, 3),
                               cands)
    logger.info("segmented %s: %d tiles (%d skipped), %d candidates in %.1f s", path, len(tiles),
                state.skipped, len(cands), outputs.seconds)
    return outputs
