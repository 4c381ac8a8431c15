"""The class-index label raster convention, shared by the writers (:mod:`text2seg_widgets.export.rasters`)
and every reader of their files (evaluation, exports).

``uint8``: 0 = background (no class), ``i`` = the i-th class (1-based) of the run's class names,
255 = nodata / ignore. The class names travel with the file as GDAL tags: ``CLASS_NAMES`` (a JSON
list starting with ``background``) and ``CLASS_<i>`` per index.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import rasterio

from text2seg_widgets.errors import InputError

__all__ = ["BACKGROUND", "NODATA", "class_tags", "read_class_names"]

BACKGROUND = 0
NODATA = 255


def class_tags(class_names: Sequence[str]) -> dict[str, str]:
    """The GDAL tags that carry ``class_names`` in a label raster (read back by :func:`read_class_names`)."""
    tags = {"CLASS_NAMES": json.dumps(["background", *class_names]),
            "LABEL_CONVENTION": "0=background, i=i-th class (1-based), 255=nodata"}
    tags["CLASS_0"] = "background"
    for i, name in enumerate(class_names, start=1):
        tags[f"CLASS_{i}"] = str(name)
    return tags


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names stored in a label raster (index 0 = ``background``)."""
    with rasterio.open(path) as ds:
        raw = ds.tags().get("CLASS_NAMES")
    if raw is None:
        raise InputError(f"{path} has no CLASS_NAMES tag: it was not written by text2seg-widgets")
    return list(json.loads(raw))
