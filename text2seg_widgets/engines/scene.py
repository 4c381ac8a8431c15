"""One scene (any size) segmented into a folder of files: the wiring behind ``segment``.

The one tile loop (:mod:`text2seg_widgets.pipeline.tiles`) produces per-tile results and merged
candidates; the writers of :mod:`text2seg_widgets.export.scene_outputs` turn them into files (see
that module for the files and the ``scene_candidates.json`` schema). Memory stays bounded by a tile
whatever the scene size. (This is why ``engines`` may import ``export``: a batch job writes files.)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["segment_scene", "cached_encoder", "SceneOutputs"]

log = logging.getLogger(__name__)
_GDAL_CACHE_MB = 64


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
    candidates: list[Any] = field(default_factory=list, repr=False)


def _written(paths: dict[str, Path | None], name: str) -> Path:
    """A file the writer always writes (its path is never None)."""
    path = paths[name]
    if path is None:
        raise RuntimeError(f"the scene writer wrote no {name}")
    return path


def cached_encoder(models: Any) -> Any:
    """The embedding hook ``pseudo-label`` uses when the persistent embedding cache is on (see
    :mod:`text2seg_widgets.models.embedding_cache`), so both commands get their embeddings the same
    way; None when the cache is off (``TEXT2SEG_EMBED_CACHE_GB=0``) or there is no segmenter."""
    from text2seg_widgets.engines.batching import EmbeddingBatcher

    return EmbeddingBatcher.from_env(models.segmenter)


def segment_scene(path: str | os.PathLike, pipeline: Any, out_dir: str | os.PathLike, *,
                  bands: str | int | Sequence[int] | None = None, tile_size: int = 1024, overlap: int = 128,
                  stretch: Any = None, vectors: str | None = None, min_area_px: int = 16, progress: bool = True,
                  stitch: str = "hard", max_nodata_fraction: float = 0.95, png_max_pixels: int | None = None,
                  preview_max_side: int = 2048, gsd: float | None = None, batch: int = 1, device: Any = None,
                  dtype: Any = None, encoder: Any = None) -> SceneOutputs:
    """Segment the scene at ``path`` tile by tile into ``out_dir``.

    ``bands``: preset or 1-based indices; ``stretch``: None (computed once for the scene), a method
    name, a Stretch, its dict or a ``stretch.json`` path; ``vectors``: None, ``"gpkg"`` or
    ``"geojson"``, sieved to ``min_area_px``; ``gsd``: resample tiles to this ground sampling
    distance (outputs stay on the source grid). Tiles with more than ``max_nodata_fraction``
    nodata are not segmented (255 in the label raster). ``encoder``: the tile loop's embedding hook
    (:func:`text2seg_widgets.pipeline.tiles.encode_tiles`), e.g. :func:`cached_encoder`."""
    import rasterio
    from tqdm import tqdm

    from text2seg_widgets.errors import InputError
    from text2seg_widgets.export.scene_outputs import PNG_MAX_PIXELS, SceneWriter
    from text2seg_widgets.pipeline.tiles import TileAssembler, open_tiles, segment_tiles

    start = time.perf_counter()
    vectors = vectors.lower() if isinstance(vectors, str) else vectors
    if vectors not in (None, "gpkg", "geojson"):
        raise InputError(f"vectors must be None, 'gpkg' or 'geojson', got {vectors!r}")
    if stitch not in ("hard", "soft"):
        raise InputError(f"stitch must be 'hard' (keep the centre) or 'soft' (blended scores), got {stitch!r}")
    names, colors = list(pipeline.classes.names), [tuple(c) for c in pipeline.classes.colors]
    with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB, GDAL_PAM_ENABLED="NO"), \
            open_tiles(path, tile_size=tile_size, overlap=overlap, bands=bands, stretch=stretch, gsd=gsd) as plan:
        assembler = TileAssembler(plan.width, plan.height, names, n_tiles=len(plan.tiles))
        writer = SceneWriter(out_dir, width=plan.width, height=plan.height, crs=plan.crs, transform=plan.transform,
                             tiles=plan.tiles, class_names=names, colors=colors, stitch=stitch, overlap=overlap,
                             preview_max_side=preview_max_side,
                             png_max_pixels=PNG_MAX_PIXELS if png_max_pixels is None else png_max_pixels)
        bar = tqdm(total=len(plan.tiles), disable=not progress, file=sys.stderr, unit="tile", desc=plan.name)
        with writer, bar:
            for result in segment_tiles(pipeline, plan, batch=batch, max_nodata_fraction=max_nodata_fraction,
                                        device=device, dtype=dtype, encoder=encoder):
                assembler.add(result)
                writer.add(result.tile, result.input.rgb, result.input.valid, result.labels, result.scores)
                bar.update(1)
            cands = assembler.candidates()
            settings = {"bands": list(plan.stretch.bands), "tile_size": tile_size, "overlap": overlap,
                        "stitch": stitch, "gsd": gsd, "resample_factor": plan.factor, "n_tiles": len(plan.tiles),
                        "n_tiles_skipped": assembler.skipped, "min_area_px": min_area_px}
            paths = writer.finish(cands, image=str(path), stretch=plan.stretch, settings=settings, vectors=vectors,
                                  min_area_px=min_area_px)
    outputs = SceneOutputs(Path(out_dir), _written(paths, "labels_tif"), _written(paths, "candidates_json"),
                           _written(paths, "overlay_png"), _written(paths, "stretch_json"), paths["labels_png"],
                           paths["vectors"], plan.width, plan.height,
                           len(plan.tiles), assembler.skipped, len(cands), round(time.perf_counter() - start, 3),
                           cands)
    log.info("segmented %s: %d tiles (%d skipped), %d candidates in %.1f s", path, outputs.n_tiles,
             outputs.n_tiles_skipped, outputs.n_candidates, outputs.seconds)
    return outputs
