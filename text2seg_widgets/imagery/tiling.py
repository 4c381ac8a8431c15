"""A grid of overlapping tiles that covers a scene exactly, and the region each tile owns.

Along each axis the tiles start at ``0, stride, 2 * stride, ...`` (``stride = tile - overlap``)
and the last one is moved back to end exactly at the border, so there are no gaps, no reads past
the edge and no padding; a scene smaller than the tile gets one tile of the scene's size.

Each tile also owns a *core*: the pixels for which it is the tile where they lie farthest from a
tile edge (along each axis; ties go to the earlier tile). Between two neighbours the cut lies in
the middle of their overlap. Cores partition the scene, so writing every tile's core reproduces a
label raster exactly (keep-the-centre hard stitching), one window at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
from rasterio.windows import Window

from text2seg_widgets.errors import InputError

__all__ = ["Tile", "axis_offsets", "axis_cores", "tile_grid", "check_tiling", "gsd_factor", "source_tiling",
           "resize_nearest"]


@dataclass(frozen=True)
class Tile:
    """One tile: ``window`` is what is read (halo included), ``core`` the part it owns."""

    index: int
    row: int
    col: int
    window: Window
    core: Window

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Slices of the core inside the tile's own array."""
        r0 = int(self.core.row_off - self.window.row_off)
        c0 = int(self.core.col_off - self.window.col_off)
        return slice(r0, r0 + int(self.core.height)), slice(c0, c0 + int(self.core.width))

    @property
    def offset(self) -> tuple[int, int]:
        """``(x, y)`` of the tile's top-left pixel in the scene."""
        return int(self.window.col_off), int(self.window.row_off)


def check_tiling(tile_size: int, overlap: int) -> None:
    if int(tile_size) < 1:
        raise InputError(f"tile_size must be at least 1 pixel, got {tile_size}")
    if int(overlap) < 0 or int(overlap) >= int(tile_size):
        raise InputError(f"overlap must be between 0 and tile_size - 1 ({int(tile_size) - 1}), got {overlap}; "
                         "a typical choice is tile_size // 8")


def axis_offsets(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets along one axis of ``length`` pixels."""
    check_tiling(tile, overlap)
    if length < 1:
        raise InputError(f"cannot tile an axis of {length} pixels")
    if length <= tile:
        return [0]
    stride = tile - overlap
    return list(range(0, length - tile, stride)) + [length - tile]


def axis_cores(length: int, offsets: list[int], tile: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the region each tile owns along one axis (keep-the-centre)."""
    size = min(tile, length)
    cuts = [(a + size - 1 + b) // 2 + 1 for a, b in zip(offsets[:-1], offsets[1:])]
    starts = [0, *cuts]
    stops = [*cuts, length]
    return list(zip(starts, stops))


def tile_grid(width: int, height: int, tile_size: int = 1024, overlap: int = 128) -> list[Tile]:
    """Row-major tiles covering a ``width x height`` scene (see the module docs)."""
    xs, ys = axis_offsets(width, tile_size, overlap), axis_offsets(height, tile_size, overlap)
    x_cores, y_cores = axis_cores(width, xs, tile_size), axis_cores(height, ys, tile_size)
    tw, th = min(tile_size, width), min(tile_size, height)
    tiles: list[Tile] = []
    for r, (y, (cy0, cy1)) in enumerate(zip(ys, y_cores)):
        for c, (x, (cx0, cx1)) in enumerate(zip(xs, x_cores)):
            tiles.append(Tile(len(tiles), r, c, Window(x, y, tw, th), Window(cx0, cy0, cx1 - cx0, cy1 - cy0)))
    return tiles



def gsd_factor(res: float, gsd: float | None) -> float:
    """Scale from source pixels to model pixels for a target ground sampling distance (1 = none)."""
    if gsd is None:
        return 1.0
    if not gsd > 0 or not res > 0:
        raise InputError(f"target GSD must be a positive number of CRS units per pixel, got {gsd}")
    return float(res) / float(gsd)


def source_tiling(tile_size: int, overlap: int, factor: float) -> tuple[int, int]:
    """Tile size and overlap in source pixels so that a resampled tile is ``tile_size`` model pixels."""
    size = max(1, int(round(tile_size / factor)))
    return size, min(size - 1, int(round(overlap / factor)))


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes to ``shape`` (pixel centres map to pixel centres)."""
    h, w = array.shape[-2:]
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
    return array[..., rows[:, None], cols[None, :]]
