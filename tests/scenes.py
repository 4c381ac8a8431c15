"""Big GeoTIFF scenes for the scene tests and benchmarks, written window by window (never whole).

* :func:`synthetic_scene`: an RGB scene in Web Mercator whose pixels are exactly the zoom-18 tile
  pixels (origin on a tile corner), so a screenshot at native zoom can be compared pixel for pixel;
  a sharp periodic texture (an upsampled overview would blur it) with bright squares at known places.
* :func:`naip_mosaic`: the shared NAIP tile repeated (mirrored, so there are no seams) into a
  ``size`` x ``size`` scene with its CRS kept: the benchmark scene of issue 17.

Both are tiled 512 x 512, deflate-compressed, with overviews down to 512 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

__all__ = ["SceneObject", "synthetic_scene", "naip_mosaic", "texture", "Z18_PIXEL", "Z18_ORIGIN"]

_HALF_WORLD = 20037508.342789244
#: metres per pixel of a zoom-18 Web Mercator tile
Z18_PIXEL = 2 * _HALF_WORLD / (256 * 2 ** 18)
#: (tile x, tile y) at zoom 18 of the synthetic scene's top-left corner (a place in Nebraska)
Z18_ORIGIN = (60416, 97280)
_PROFILE = dict(driver="GTiff", dtype="uint8", tiled=True, blockxsize=512, blockysize=512,
                compress="deflate", interleave="pixel")


@dataclass(frozen=True)
class SceneObject:
    """A bright square of the synthetic scene: ``[x0, x1) x [y0, y1)`` in scene pixels."""

    x0: int
    y0: int
    x1: int
    y1: int


def texture(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(3, h, w)`` uint8 of the synthetic scene's texture at these pixel coordinates: dark,
    periodic, sharp from one pixel to the next."""
    x, y = np.meshgrid(cols, rows)
    r = 40 + ((x * 7 + y * 13) % 48)
    g = 50 + ((x * 11 + y * 5) % 40)
    b = 60 + ((x * 3 + y * 17) % 36)
    return np.stack([r, g, b]).astype(np.uint8)


def _overviews(path: Path, size: int) -> None:
    factors = [2 ** k for k in range(1, 12) if size // 2 ** k >= 256]
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews(factors, Resampling.average)
        ds.update_tags(ns="rio_overview", resampling="average")


def synthetic_scene(path: Path, size: int, objects: list[SceneObject]) -> Path:
    """Write the synthetic scene (module docs) with ``objects`` painted white-ish."""
    tx, ty = Z18_ORIGIN
    west = -_HALF_WORLD + tx * 256 * Z18_PIXEL
    north = _HALF_WORLD - ty * 256 * Z18_PIXEL
    transform = Affine(Z18_PIXEL, 0.0, west, 0.0, -Z18_PIXEL, north)
    with rasterio.open(path, "w", width=size, height=size, count=3, crs="EPSG:3857", transform=transform,
                       **_PROFILE) as ds:
        step = 1024
        for r0 in range(0, size, step):
            rows = np.arange(r0, min(size, r0 + step))
            block = texture(np.arange(size), rows)
            for o in objects:
                if o.y1 > r0 and o.y0 < r0 + len(rows):
                    block[:, max(o.y0, r0) - r0:min(o.y1, r0 + len(rows)) - r0, o.x0:o.x1] = np.array([235, 230, 220], np.uint8)[:, None, None]
            ds.write(block, window=Window(0, r0, size, len(rows)))
    _overviews(path, size)
    return path


def naip_mosaic(source: Path, path: Path, size: int) -> Path:
    """The NAIP tile ``source`` mirrored into a ``size`` x ``size`` scene (module docs)."""
    with rasterio.open(source) as src:
        tile = src.read()
        profile = {**_PROFILE, "count": src.count, "crs": src.crs, "transform": src.transform}
    count, th, tw = tile.shape
    with rasterio.open(path, "w", width=size, height=size, **profile) as ds:
        step = 1024
        cols = np.arange(size)
        xi = np.where((cols // tw) % 2 == 0, cols % tw, tw - 1 - cols % tw)
        for r0 in range(0, size, step):
            rows = np.arange(r0, min(size, r0 + step))
            yi = np.where((rows // th) % 2 == 0, rows % th, th - 1 - rows % th)
            ds.write(tile[:, yi][:, :, xi], window=Window(0, r0, size, len(rows)))
    _overviews(path, size)
    return path
