"""Geospatial imagery at any size: scenes, bands and stretch, tiles, stitching, instances, polygons.

Imports nothing else of this package except its errors. Modules, one concept each:

* :mod:`.scene` - :func:`open_scene` / :class:`Scene`: lazy windowed reads, CRS, transform, nodata mask
* :mod:`.bands` - band presets and 1-based band choice; :mod:`.stretch` - one stretch per scene
* :mod:`.tiling` - tile grids with overlap and keep-the-centre cores; :mod:`.stitching` - hard/soft
* :mod:`.instances` - instance masks of tiles merged in scene coordinates (RLE, no scene arrays)
* :mod:`.labels` - the class-index label raster convention; :mod:`.vectors` - polygons, sieve, areas

Writers of result files (label COGs, overlays, GeoPackage/GeoJSON, segment's outputs) live in :mod:`text2seg_widgets.export`.

The names below load on first use, so ``import text2seg_widgets.imagery`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Scene", "open_scene", "resolve_bands", "BAND_PRESETS", "Stretch", "compute_stretch", "load_stretch",
           "Tile", "tile_grid", "stitch_hard", "SoftStitcher", "read_class_names", "NODATA",
           "sieve", "area_m2"]

_LAZY = {
    "Scene": "scene", "open_scene": "scene", "resolve_bands": "bands", "BAND_PRESETS": "bands",
    "Stretch": "stretch", "compute_stretch": "stretch", "load_stretch": "stretch", "Tile": "tiling",
    "tile_grid": "tiling", "stitch_hard": "stitching", "SoftStitcher": "stitching",
    "read_class_names": "labels", "NODATA": "labels",
    "sieve": "vectors", "area_m2": "vectors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"text2seg_widgets.imagery.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'text2seg_widgets.imagery' has no attribute {name!r}")
