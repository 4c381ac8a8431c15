"""The files ``text2seg-widgets segment`` writes for one scene, fed one tile at a time.

:class:`SceneWriter` receives each tile's source-resolution pixels, valid mask, class-index labels
and score maps (plain arrays: the tile loop of :mod:`text2seg_widgets.pipeline.tiles` produces
them, the command line wires the two together) and writes, in ``out_dir``:

* ``labels.tif``: class-index COG (0 background, ``i`` = i-th class, 255 nodata) with the source
  CRS/transform, colour table and class tags, written window by window: hard keep-the-centre
  stitching, or ``stitch="soft"`` (blended per-class scores, arg-maxed per finished cell);
* ``labels.png``: the same at full resolution as a paletted PNG, only for scenes up to
  ``png_max_pixels`` (a downsampled class map would not line up with the image);
* ``overlay.png``: a downsampled preview (at most ``preview_max_side`` a side) with a legend;
* ``stretch.json``: the scene's one stretch, reusable with ``--stretch``;
* ``scene_candidates.json``: the merged candidates (schema below; NOT the COCO file that
  ``project export coco`` writes);
* ``vectors.gpkg`` / ``vectors.geojson`` when asked: polygons of ``labels.tif`` sieved to
  ``min_area_px``, in EPSG:4326 for GeoJSON.

``scene_candidates.json`` schema (version 1)::

    {"schema": "text2seg-widgets/scene-candidates", "version": 1,
     "image": path, "width": W, "height": H,
     "crs": WKT or null, "crs_name": "EPSG:..." or null, "transform": [a, b, c, d, e, f],
     "classes": [name, ...], "colors": [[r, g, b], ...], "settings": {...run settings...},
     "candidates": [{"class_name", "rle": COCO RLE of the whole scene ({"size": [H, W], "counts": str}),
                     "bbox": [x, y, w, h], "area", "score", "branch", "prompt", "model", "extra"}, ...]}

Candidates are in scene pixels; ``extra`` holds ``tiles`` (indices of the tiles the object came
from) and ``merged_from``. Read it back with :func:`read_scene_candidates`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np
import rasterio.shutil

from text2seg_widgets.core import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.export.previews import PreviewCanvas, overlay_with_legend
from text2seg_widgets.export.rasters import NODATA, LabelRasterWriter
from text2seg_widgets.imagery.stitching import SoftStitcher
from text2seg_widgets.imagery.tiling import Tile
from text2seg_widgets.export.vector_files import write_features
from text2seg_widgets.imagery.vectors import raster_to_records

__all__ = ["SceneWriter", "read_scene_candidates", "CANDIDATES_FILE", "SCHEMA", "PNG_MAX_PIXELS"]

log = logging.getLogger(__name__)

#: The name of segment's candidates file (distinct from the COCO export's ``candidates.json``).
CANDIDATES_FILE = "scene_candidates.json"
SCHEMA = "text2seg-widgets/scene-candidates"
_VERSION = 1
#: Largest scene (pixels) that also gets a full-resolution ``labels.png`` (8192 x 8192).
PNG_MAX_PIXELS = 8192 * 8192


class SceneWriter:
    """Writes one scene's outputs (module docs). Use as a context manager: ``add`` every tile,
    then ``finish`` with the merged candidates; an exception drops the partial label raster."""

    def __init__(self, out_dir: str | os.PathLike, *, width: int, height: int, crs: Any, transform: Any,
                 tiles: Sequence[Tile], class_names: Sequence[str], colors: Sequence[Sequence[int]],
                 stitch: str = "hard", overlap: int = 0, preview_max_side: int = 2048,
                 png_max_pixels: int = PNG_MAX_PIXELS) -> None:
        if stitch not in ("hard", "soft"):
            raise InputError(f"stitch must be 'hard' (keep the centre) or 'soft' (blended scores), got {stitch!r}")
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.width, self.height, self.crs, self.transform = int(width), int(height), crs, transform
        self.names, self.colors = list(class_names), [tuple(int(v) for v in c) for c in colors]
        self.png_max_pixels = int(png_max_pixels)
        self.preview = PreviewCanvas(self.width, self.height, preview_max_side)
        self.soft = SoftStitcher(list(tiles), self.width, self.height, len(self.names) + 1,
                                 ramp=max(1, overlap // 2)) if stitch == "soft" else None
        self.labels_tif = self.out / "labels.tif"
        self._writer = LabelRasterWriter(self.labels_tif, self.width, self.height, crs, transform, self.names,
                                         self.colors, NODATA)

    def add(self, tile: Tile, rgb: np.ndarray, valid: np.ndarray, labels: np.ndarray,
            scores: np.ndarray | None) -> None:
        """One tile: ``rgb`` (h, w, 3), ``valid`` (h, w), ``labels`` (h, w) class indices with NODATA
        on invalid pixels, ``scores`` (classes + 1, h, w) or None for a skipped tile."""
        rs, cs = tile.core_slices
        core_x, core_y = int(tile.core.col_off), int(tile.core.row_off)
        self.preview.paste(core_x, core_y, rgb=rgb[rs, cs])
        if self.soft is None:
            self._writer.write(tile.core, labels[rs, cs])
            self.preview.paste(core_x, core_y, labels=labels[rs, cs])
            return
        for window, block in self.soft.add(tile, scores, valid):
            self._writer.write(window, block)
            self.preview.paste(int(window.col_off), int(window.row_off), labels=block)

    def finish(self, candidates: Sequence[Candidate], *, image: str, stretch: Any, settings: dict[str, Any],
               vectors: str | None = None, min_area_px: int = 16) -> dict[str, Path | None]:
        """Close the label raster and write the other files; returns their paths by name."""
        if vectors not in (None, "gpkg", "geojson"):
            raise InputError(f"vectors must be None, 'gpkg' or 'geojson', got {vectors!r}")
        self._writer.close()
        paths: dict[str, Path | None] = {"labels_tif": self.labels_tif}
        paths["stretch_json"] = stretch.save(self.out / "stretch.json")
        paths["candidates_json"] = self._write_candidates(candidates, image, settings)
        overlay_with_legend(self.preview.rgb, self.preview.labels, self.names, self.colors).save(
            self.out / "overlay.png")
        paths["overlay_png"] = self.out / "overlay.png"
        paths["labels_png"] = self._write_png()
        paths["vectors"] = None
        if vectors is not None:
            boxes = [(c.class_name, float(c.bbox[0]), float(c.bbox[1]), float(c.bbox[2]), float(c.bbox[3]),
                      float(c.score)) for c in candidates]
            records = raster_to_records(self.labels_tif, self.names, min_px=min_area_px, boxes=boxes)
            paths["vectors"] = write_features(records, self.out / f"vectors.{vectors}", self.crs,
                                              "GPKG" if vectors == "gpkg" else "GeoJSON")
        return paths

    def _write_candidates(self, cands: Sequence[Candidate], image: str, settings: dict[str, Any]) -> Path:
        doc = {"schema": SCHEMA, "version": _VERSION, "image": image, "width": self.width, "height": self.height,
               "crs": self.crs.to_wkt() if self.crs is not None else None,
               "crs_name": self.crs.to_string() if self.crs is not None else None,
               "transform": list(self.transform)[:6], "classes": self.names,
               "colors": [list(c) for c in self.colors], "settings": settings,
               "candidates": [c.to_dict() for c in cands]}
        path = self.out / CANDIDATES_FILE
        path.write_text(json.dumps(doc))
        return path

    def _write_png(self) -> Path | None:
        if self.width * self.height > self.png_max_pixels:
            log.info("scene is %d x %d pixels: labels.png skipped (limit %d px); use labels.tif",
                     self.width, self.height, self.png_max_pixels)
            return None
        png = self.out / "labels.png"
        rasterio.shutil.copy(self.labels_tif, png, driver="PNG", ZLEVEL=6)
        return png

    def abort(self) -> None:
        """Drop the partial label raster (the other files are written only by ``finish``)."""
        self._writer.abort()

    def __enter__(self) -> "SceneWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()


def read_scene_candidates(path: str | os.PathLike) -> tuple[dict[str, Any], list[Candidate]]:
    """``(document without candidates, candidates)`` of a ``scene_candidates.json``."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError(f"{path} is not a segment candidates file (schema {SCHEMA!r}); COCO files are read "
                         "with text2seg_widgets.export.import_coco")
    cands = [Candidate.from_dict(c) for c in doc.pop("candidates", [])]
    return doc, cands
