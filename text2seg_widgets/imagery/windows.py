"""Prompt windows: the part of a big image a box or a click is decoded on.

A promptable segmenter sees a square of ``input_size`` pixels (SAM 1024, LiteMedSAM 256). Encoding
a whole 10,000-pixel scene at that size shrinks a 80-pixel object to 2 pixels, so a prompt on a
big image is decoded against the embedding of a *window* around it instead, and the mask is put
back in scene pixels.

Invariant (the rule the tests pin): windows lie on a grid anchored at the image origin. A window
of level ``L = input_size * 2**k`` is ``L`` pixels square and starts at a multiple of ``L // 2``
(the stride) on each axis, except that a window is pulled back inside the image at the right and
bottom edges, and is the whole axis where the image is shorter than ``L``. The window of a prompt
is the one of the smallest level that holds the prompt's extent plus ``margin`` of its long side
on every side, centred on it as nearly as the grid allows. The choice depends on the prompt and
the image size only, so the same box on a whole scene and on a tile cut from it at a multiple of
the stride (``add-images --tile`` cuts at multiples of the tile size) gets the same pixels, the
same embedding (the cache keys embeddings by their pixels) and the same mask.

Small images whose long side is at most ``input_size`` have one window: the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from text2seg_widgets.errors import InputError

__all__ = ["PromptWindow", "prompt_extent", "choose_window", "view_windows", "prefetch_window_count",
           "DEFAULT_MARGIN", "PREFETCH_ENV"]

#: how many windows around a scene's view are encoded ahead (0: none; default 4)
PREFETCH_ENV = "TEXT2SEG_PREFETCH_WINDOWS"

#: context around a prompt, as a share of its long side (measured: 10 % beat none, DESIGN.md s5)
DEFAULT_MARGIN = 0.1


@dataclass(frozen=True)
class PromptWindow:
    """``[x0, x1) x [y0, y1)`` of the image, of grid level ``level`` (pixels)."""

    x0: int
    y0: int
    x1: int
    y1: int
    level: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def rasterio(self) -> tuple[int, int, int, int]:
        """``(col_off, row_off, width, height)``, the form :class:`~.scene.Scene` reads."""
        return self.x0, self.y0, self.width, self.height

    def contains(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return self.x0 <= x0 and self.y0 <= y0 and x1 <= self.x1 and y1 <= self.y1

    def to_local(self, xy: np.ndarray) -> np.ndarray:
        """Image pixel coordinates (..., 2) -> window coordinates."""
        return np.asarray(xy, dtype=np.float64) - np.array([self.x0, self.y0], dtype=np.float64)

    def box_to_local(self, box: Sequence[float] | np.ndarray) -> np.ndarray:
        return np.asarray(box, dtype=np.float64) - np.array([self.x0, self.y0, self.x0, self.y0], np.float64)


def prompt_extent(box: Sequence[float] | np.ndarray | None, points: Iterable[Sequence[float]] = ()) -> tuple[float, float, float, float]:
    """The xyxy extent of a box and points (image pixels); :class:`InputError` when both are empty."""
    xs: list[float] = []
    ys: list[float] = []
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        xs += [x0, x1]
        ys += [y0, y1]
    for x, y in points:
        xs.append(float(x))
        ys.append(float(y))
    if not xs:
        raise InputError("a prompt needs a box or at least one point")
    return min(xs), min(ys), max(xs), max(ys)


def _axis_start(lo: float, hi: float, size: int, level: int) -> int | None:
    """The start of the level-``level`` window that holds ``[lo, hi)`` on an axis of ``size`` pixels,
    nearest to centred; None when no window of this level holds it."""
    if size <= level:
        return 0
    stride = level // 2
    last = size - level
    centre = (lo + hi) / 2.0
    first_k = max(0, math.floor((hi - level) / stride))
    options = {min(k * stride, last) for k in range(first_k, math.floor(lo / stride) + 1)}
    fits = sorted(p for p in options if p <= lo and p + level >= hi)
    if not fits:
        return None
    return min(fits, key=lambda p: (abs(p + level / 2.0 - centre), p))


def choose_window(extent: Sequence[float], width: int, height: int, input_size: int, *,
                  margin: float = DEFAULT_MARGIN, min_level: int | None = None) -> PromptWindow:
    """The window of a prompt whose xyxy ``extent`` lies in a ``width`` x ``height`` image (module
    docs). ``min_level``: the smallest window side to consider (default ``input_size``)."""
    if width < 1 or height < 1:
        raise InputError(f"an image of {width} x {height} pixels has no window")
    if input_size < 16:
        raise InputError(f"input_size must be at least 16 pixels, got {input_size}")
    x0, y0, x1, y1 = (float(v) for v in extent)
    x0, x1 = max(0.0, min(x0, x1)), min(float(width), max(x0, x1))
    y0, y1 = max(0.0, min(y0, y1)), min(float(height), max(y0, y1))
    if x1 < x0 or y1 < y0:
        raise InputError(f"the prompt ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}) lies outside the "
                         f"{width} x {height} image")
    pad = max(x1 - x0, y1 - y0, 1.0) * max(0.0, margin)
    lo_x, hi_x = max(0.0, x0 - pad), min(float(width), x1 + pad)
    lo_y, hi_y = max(0.0, y0 - pad), min(float(height), y1 + pad)
    level = int(input_size)
    while level < (min_level or input_size):
        level *= 2
    while True:
        if level >= max(width, height):
            return PromptWindow(0, 0, width, height, level)
        sx = _axis_start(lo_x, hi_x, width, level)
        sy = _axis_start(lo_y, hi_y, height, level)
        if sx is not None and sy is not None:
            return PromptWindow(sx, sy, min(width, sx + level), min(height, sy + level), level)
        level *= 2


def prefetch_window_count() -> int:
    """``$TEXT2SEG_PREFETCH_WINDOWS`` (default 4): windows encoded ahead around a scene's view."""
    import os

    raw = os.environ.get(PREFETCH_ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else 4
    except ValueError:
        raise InputError(f"{PREFETCH_ENV} must be a whole number of windows (0 turns prefetch off), "
                         f"not {raw!r}") from None


def view_windows(view: Sequence[int], width: int, height: int, input_size: int, *,
                 limit: int = 8) -> list[PromptWindow]:
    """The level-``input_size`` grid windows (stride ``input_size // 2``) that cover the xyxy
    ``view``, nearest the view's centre first, at most ``limit``: what a prefetch encodes so that a
    box drawn in view finds its window ready."""
    if max(width, height) <= input_size:
        return [PromptWindow(0, 0, width, height, input_size)]
    level, stride = int(input_size), int(input_size) // 2
    vx0, vy0, vx1, vy1 = (int(v) for v in view)
    cx, cy = (vx0 + vx1) / 2.0, (vy0 + vy1) / 2.0
    out = []
    for sy in sorted({min(k * stride, max(0, height - level))
                      for k in range(max(0, (vy0 - level) // stride), vy1 // stride + 1)}):
        for sx in sorted({min(k * stride, max(0, width - level))
                          for k in range(max(0, (vx0 - level) // stride), vx1 // stride + 1)}):
            win = PromptWindow(sx, sy, min(width, sx + level), min(height, sy + level), level)
            if win.x1 > vx0 and win.x0 < vx1 and win.y1 > vy0 and win.y0 < vy1:
                out.append(win)
    out.sort(key=lambda w: (abs((w.x0 + w.x1) / 2 - cx) + abs((w.y0 + w.y1) / 2 - cy), w.y0, w.x0))
    return out[:limit]
