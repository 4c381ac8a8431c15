"""Putting tile results back together: hard labels (keep the centre) and soft score maps (blended).

* Hard: every tile writes the labels of its core (see :mod:`.tiling`); cores partition the scene,
  so the result is exact and each core can go straight to a :class:`~.writers.LabelRasterWriter`.
* Soft: :class:`SoftStitcher` blends per-class score maps ``(C + 1, h, w)`` with a weight window that
  ramps up over ``ramp`` pixels from every tile edge that lies inside the scene (edges on the
  scene border are not tapered), and arg-maxes each pixel once every tile covering it has been
  seen. The scene is cut into *cells* by all tile boundaries; a cell is finished (and returned as
  a window of labels) when its last covering tile arrives. Tiles come in row-major order, so only
  the cells of the overlap strip below the current tile row are pending: memory grows with the
  scene *width* times the overlap, never with the scene area.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Sequence

import numpy as np
from rasterio.windows import Window

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.tiling import Tile

__all__ = ["stitch_hard", "axis_weights", "weight_window", "SoftStitcher"]

NODATA = 255


def stitch_hard(tiles: Sequence[Tile], arrays: Sequence[np.ndarray], width: int, height: int,
                fill: int = NODATA) -> np.ndarray:
    """In-memory keep-the-centre stitching of per-tile label arrays (for small scenes and tests)."""
    out = np.full((height, width), fill, dtype=np.asarray(arrays[0]).dtype if arrays else np.uint8)
    for tile, arr in zip(tiles, arrays):
        rs, cs = tile.core_slices
        core = tile.core
        out[int(core.row_off):int(core.row_off + core.height),
            int(core.col_off):int(core.col_off + core.width)] = np.asarray(arr)[rs, cs]
    return out


def axis_weights(n: int, ramp: int, taper_start: bool = True, taper_end: bool = True) -> np.ndarray:
    """1-D blending weights: ``min(distance to a tapered edge + 1, ramp) / ramp``; always > 0."""
    ramp = max(1, int(ramp))
    idx = np.arange(n, dtype=np.float32)
    w = np.full(n, float(ramp), np.float32)
    if taper_start:
        w = np.minimum(w, idx + 1)
    if taper_end:
        w = np.minimum(w, n - idx)
    return w / ramp


def weight_window(tile: Tile, width: int, height: int, ramp: int) -> np.ndarray:
    """The 2-D weight window of ``tile`` in a ``width x height`` scene."""
    win = tile.window
    x0, y0, w, h = int(win.col_off), int(win.row_off), int(win.width), int(win.height)
    wy = axis_weights(h, ramp, y0 > 0, y0 + h < height)
    wx = axis_weights(w, ramp, x0 > 0, x0 + w < width)
    return np.outer(wy, wx)


class _Axis:
    """Cell boundaries along one axis and, per tile offset, the cells it covers."""

    def __init__(self, spans: Sequence[tuple[int, int]]):
        self.bounds = sorted({b for span in spans for b in span})
        self.cover = [0] * (len(self.bounds) - 1)
        for a, b in set(spans):
            for i in self.cells(a, b):
                self.cover[i] += 1

    def cells(self, start: int, stop: int) -> range:
        return range(bisect_left(self.bounds, start), bisect_left(self.bounds, stop))


class SoftStitcher:
    """Blend soft score maps tile by tile; :meth:`add` returns the label windows it finished."""

    def __init__(self, tiles: Sequence[Tile], width: int, height: int, n_layers: int, *,
                 ramp: int = 64, nodata: int = NODATA) -> None:
        if n_layers < 1:
            raise InputError("soft stitching needs at least one score layer")
        self.tiles, self.width, self.height = list(tiles), int(width), int(height)
        self.n_layers, self.ramp, self.nodata = int(n_layers), int(ramp), int(nodata)
        spans_x = [(int(t.window.col_off), int(t.window.col_off + t.window.width)) for t in self.tiles]
        spans_y = [(int(t.window.row_off), int(t.window.row_off + t.window.height)) for t in self.tiles]
        self._x, self._y = _Axis(spans_x), _Axis(spans_y)
        self._remaining: dict[tuple[int, int], int] = {}
        self._acc: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def pending_cells(self) -> int:
        return len(self._acc)

    def _cell_window(self, i: int, j: int) -> Window:
        y0, y1 = self._y.bounds[i], self._y.bounds[i + 1]
        x0, x1 = self._x.bounds[j], self._x.bounds[j + 1]
        return Window(x0, y0, x1 - x0, y1 - y0)

    def add(self, tile: Tile, scores: np.ndarray | None, valid: np.ndarray | None = None
            ) -> list[tuple[Window, np.ndarray]]:
        """Accumulate ``scores`` ``(n_layers, h, w)`` of ``tile`` (None = a skipped tile)."""
        win = tile.window
        x0, y0, w, h = int(win.col_off), int(win.row_off), int(win.width), int(win.height)
        if scores is not None:
            scores = np.asarray(scores, np.float32)
            if scores.shape != (self.n_layers, h, w):
                raise InputError(f"score maps of shape {scores.shape} do not match the tile "
                                 f"({self.n_layers}, {h}, {w})")
            weights = weight_window(tile, self.width, self.height, self.ramp)
        done: list[tuple[Window, np.ndarray]] = []
        for i in self._y.cells(y0, y0 + h):
            for j in self._x.cells(x0, x0 + w):
                key = (i, j)
                cw = self._cell_window(i, j)
                if key not in self._remaining:
                    self._remaining[key] = self._y.cover[i] * self._x.cover[j]
                if scores is not None:
                    self._accumulate(key, cw, x0, y0, scores, weights, valid)
                self._remaining[key] -= 1
                if self._remaining[key] == 0:
                    done.append((cw, self._finish(key, cw)))
        return done

    def _accumulate(self, key: tuple[int, int], cw: Window, x0: int, y0: int, scores: np.ndarray,
                    weights: np.ndarray, valid: np.ndarray | None) -> None:
        ch, cwid = int(cw.height), int(cw.width)
        if key not in self._acc:
            self._acc[key] = (np.zeros((self.n_layers, ch, cwid), np.float32),
                              np.zeros((ch, cwid), np.float32), np.ones((ch, cwid), bool))
        acc, wsum, ok = self._acc[key]
        rs = slice(int(cw.row_off) - y0, int(cw.row_off) - y0 + ch)
        cs = slice(int(cw.col_off) - x0, int(cw.col_off) - x0 + cwid)
        wt = weights[rs, cs]
        acc += scores[:, rs, cs] * wt
        wsum += wt
        if valid is not None:
            ok &= np.asarray(valid, bool)[rs, cs]

    def _finish(self, key: tuple[int, int], cw: Window) -> np.ndarray:
        self._remaining.pop(key)
        entry = self._acc.pop(key, None)
        if entry is None:  # every covering tile was skipped
            return np.full((int(cw.height), int(cw.width)), self.nodata, np.uint8)
        acc, wsum, ok = entry
        labels = acc.argmax(axis=0).astype(np.uint8)
        labels[(wsum <= 0) | ~ok] = self.nodata
        return labels
