"""Class-index label GeoTIFFs, written whole or window by window, finished as cloud-optimised GeoTIFFs.

Label convention across the project (:mod:`text2seg_widgets.imagery.labels`): ``uint8``,
0 = background (no class), ``i`` = the i-th class (1-based) of ``class_names``, 255 = nodata / ignore.

:class:`LabelRasterWriter` streams windows into a tiled, compressed scratch GeoTIFF next to the
target, so a scene far larger than memory can be written one tile at a time; on close it copies
the scratch file through GDAL's ``COG`` driver, which adds overviews (``mode`` resampling by
default, so overviews keep class values) and lays the file out as a cloud-optimised GeoTIFF. The
colour table (class colours, background black, nodata transparent) and the class names (tags
``CLASS_NAMES`` as JSON and ``CLASS_<i>``) survive the copy, so QGIS shows the legend colours.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.labels import BACKGROUND, NODATA, class_tags

__all__ = ["LabelRasterWriter", "write_label_geotiff", "label_colormap", "BACKGROUND", "NODATA"]

logger = logging.getLogger(__name__)

#: GDAL block cache for writing (MB): the COG copy streams blocks, so a small cache keeps memory flat.
_GDAL_CACHE_MB = 64


def label_colormap(colors: Sequence[Sequence[int]], nodata: int = NODATA) -> dict[int, tuple[int, int, int, int]]:
    """A GDAL colour table: 0 black, ``i`` = ``colors[i-1]``, nodata transparent, the rest grey."""
    if len(colors) > 254:
        raise InputError(f"{len(colors)} classes do not fit a uint8 label raster (at most 254); "
                         "merge classes or split the run")
    cmap: dict[int, tuple[int, int, int, int]] = {i: (128, 128, 128, 255) for i in range(256)}
    cmap[BACKGROUND] = (0, 0, 0, 255)
    for i, rgb in enumerate(colors, start=1):
        r, g, b = (int(v) for v in list(rgb)[:3])
        cmap[i] = (r, g, b, 255)
    cmap[int(nodata)] = (0, 0, 0, 0)
    return cmap


class LabelRasterWriter:
    """Write a uint8 class-index raster window by window; ``close()`` produces the COG.

    >>> with LabelRasterWriter("labels.tif", 4000, 3000, crs, transform, ["building"], [(255, 0, 0)]) as w:
    ...     w.write(Window(0, 0, 1024, 1024), tile_labels)

    Windows never written read back as ``nodata``. The target appears only when ``close`` succeeds.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, crs: Any,
                 transform: Affine | None, class_names: Sequence[str],
                 colors: Sequence[Sequence[int]], nodata: int = NODATA, *,
                 blocksize: int = 512, compress: str = "DEFLATE",
                 overview_resampling: str = "MODE") -> None:
        if width < 1 or height < 1:
            raise InputError(f"a label raster needs a positive size, got {width} x {height}")
        if len(class_names) != len(colors):
            raise InputError(f"{len(class_names)} class names but {len(colors)} colours: give one colour per class")
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.nodata = int(nodata)
        self._class_names = list(class_names)
        self._colors = [tuple(int(v) for v in list(c)[:3]) for c in colors]
        self._blocksize = blocksize
        self._compress = compress
        self._resampling = overview_resampling
        self._scratch = self.path.with_name(f".{self.path.name}.partial.tif")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._env = rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB, GDAL_PAM_ENABLED="NO")
        self._env.__enter__()
        profile = dict(driver="GTiff", width=self.width, height=self.height, count=1, dtype="uint8",
                       crs=crs, transform=transform if transform is not None else Affine.identity(),
                       nodata=self.nodata, tiled=True, blockxsize=256, blockysize=256,
                       compress="DEFLATE", predictor=1, BIGTIFF="IF_SAFER", SPARSE_OK="TRUE")
        if crs is None:
            profile.pop("crs")
        with warnings.catch_warnings():  # pixel-space rasters have no geotransform on purpose
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._ds = rasterio.open(self._scratch, "w", **profile)
        self._closed = False

    def write(self, window: Window, array: np.ndarray) -> None:
        """Write ``array`` (``window.height x window.width``, values 0..n_classes or nodata)."""
        array = np.asarray(array)
        h, w = int(window.height), int(window.width)
        if array.shape != (h, w):
            raise InputError(f"label array shape {array.shape} does not match window {h} x {w}")
        c0, r0 = int(window.col_off), int(window.row_off)
        if c0 < 0 or r0 < 0 or c0 + w > self.width or r0 + h > self.height:
            raise InputError(f"window {window} lies outside the {self.width} x {self.height} raster")
        if array.dtype != np.uint8:
            if array.size and (array.min() < 0 or array.max() > 255):
                raise InputError("label values must lie in 0..255 (uint8 class indices)")
            array = array.astype(np.uint8)
        self._ds.write(array, 1, window=Window(c0, r0, w, h))

    def close(self) -> Path:
        """Add the colour table and tags, then copy to the final COG and remove the scratch file."""
        if self._closed:
            return self.path
        try:
            self._ds.write_colormap(1, label_colormap(self._colors, self.nodata))
            self._ds.update_tags(**class_tags(self._class_names))
            self._ds.set_band_description(1, "class index")
            self._ds.close()
            rasterio.shutil.copy(self._scratch, self.path, driver="COG", COMPRESS=self._compress,
                                 BLOCKSIZE=self._blocksize, OVERVIEW_RESAMPLING=self._resampling,
                                 BIGTIFF="IF_SAFER")
        finally:
            self._closed = True
            if not self._ds.closed:
                self._ds.close()
            self._scratch.unlink(missing_ok=True)
            self._env.__exit__(None, None, None)
        logger.debug("wrote label COG %s (%d x %d)", self.path, self.width, self.height)
        return self.path

    def abort(self) -> None:
        """Drop the partial file without producing the target."""
        if not self._closed:
            self._closed = True
            self._ds.close()
            self._scratch.unlink(missing_ok=True)
            self._env.__exit__(None, None, None)

    def __enter__(self) -> "LabelRasterWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_label_geotiff(path: str | os.PathLike, labels: np.ndarray, crs: Any, transform: Affine | None,
                        class_names: Sequence[str], colors: Sequence[Sequence[int]],
                        nodata: int = NODATA, **kwargs: Any) -> Path:
    """Write a whole ``(H, W)`` label array as a class-index COG (see :class:`LabelRasterWriter`)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels must be a 2-D (height, width) array, got shape {labels.shape}")
    h, w = labels.shape
    with LabelRasterWriter(path, w, h, crs, transform, class_names, colors, nodata, **kwargs) as writer:
        writer.write(Window(0, 0, w, h), labels)
    return Path(path)
