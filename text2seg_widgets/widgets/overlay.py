"""The image as the browser sees it: a downsampled PNG data URL, and the RGB reader behind it.

Big scenes are never sent at full resolution: the base overlay is at most ``max_side`` pixels on
its long side, and :func:`detail_window` picks the part of the scene worth re-sending at a finer
scale when the annotator zooms in.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from text2seg_widgets.errors import InputError

__all__ = ["LoadedImage", "load_image", "png_data_url", "downsample", "detail_window"]


@dataclass
class LoadedImage:
    """An image opened for review: its pixels (``rgb``) when it is small enough to hold, else read
    by window from ``path`` (``rgb`` None: a scene); plus its georeferencing (``transform``/``crs``
    None when there is none) and whether the map shows it as tiles (``tiled``).

    ``window`` is the record's ``(col, row, width, height)`` in the file (None: the whole file);
    :meth:`read` takes windows in the image's own pixels."""

    rgb: np.ndarray | None
    transform: Any = None
    crs: Any = None
    path: Path | None = None
    window: tuple[int, int, int, int] | None = None
    size: tuple[int, int] = (0, 0)
    tiled: bool = False
    #: the scene's one stretch, computed once when it was opened (a window read reuses it)
    stretch: Any = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0]) if self.rgb is not None else int(self.size[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1]) if self.rgb is not None else int(self.size[0])

    def read(self, win: Any) -> np.ndarray:
        """``(h, w, 3)`` uint8 of a window (anything with ``x0, y0, x1, y1``) through the scene's
        one pixel reader: a slice of :attr:`rgb`, or a read of the file."""
        x0, y0, x1, y1 = int(win.x0), int(win.y0), int(win.x1), int(win.y1)
        if self.rgb is not None:
            return np.ascontiguousarray(self.rgb[y0:y1, x0:x1])
        if self.path is None:
            raise InputError("this image has no pixels to read")
        from text2seg_widgets.imagery.scene import open_scene

        col, row = (self.window[0], self.window[1]) if self.window is not None else (0, 0)
        with open_scene(self.path, stretch=self.stretch) as scene:
            return np.ascontiguousarray(scene.pixels((col + x0, row + y0, x1 - x0, y1 - y0))[0])


def load_image(path: str | Path, window: tuple[int, int, int, int] | None = None) -> LoadedImage:
    """Open an image file (or a ``(col, row, width, height)`` window of it) for review: small
    images are read whole as stretched RGB uint8; bigger than
    :data:`~text2seg_widgets.widgets.scenetiles.SCENE_SIDE` they are read by window on demand.

    Raises :class:`InputError` naming the path when the file is missing or unreadable.
    """
    from text2seg_widgets.imagery.scene import open_scene
    from text2seg_widgets.widgets.scenetiles import SCENE_SIDE, shows_as_tiles

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path} (moved or deleted? put it back or relink it "
                         "with project.relink(image_id, new_path); the masks below are kept, and "
                         "'Next image' moves on)")
    with open_scene(path) as scene:
        crs = scene.crs if scene.is_georeferenced else None
        transform = scene.transform if crs is not None else None
        width, height = (int(window[2]), int(window[3])) if window is not None else (scene.width, scene.height)
        big = max(width, height) > SCENE_SIDE
        rgb = None if big else np.ascontiguousarray(scene.pixels(window)[0])
        stretch = scene.stretch if scene.palette is None else None
    win = None if window is None else (int(window[0]), int(window[1]), int(window[2]), int(window[3]))
    return LoadedImage(rgb=rgb, transform=transform, crs=crs, path=path, window=win, size=(width, height),
                       tiled=shows_as_tiles(width, height, crs is not None), stretch=stretch)


def downsample(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``rgb`` shrunk so that its long side is at most ``max_side``; returns (image, scale<=1)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)), scale


def png_data_url(rgb: np.ndarray, max_side: int = 2048) -> str:
    """A ``data:image/png;base64,...`` URL of ``rgb`` downsampled to ``max_side``."""
    small, _ = downsample(np.ascontiguousarray(rgb, dtype=np.uint8), max_side)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def detail_window(view: tuple[float, float, float, float], width: int, height: int,
                  base_scale: float, zoom_scale: float) -> tuple[int, int, int, int] | None:
    """The pixel window (x0, y0, x1, y1) to re-send at finer detail, or None if not needed.

    ``view`` is the visible pixel box; ``base_scale`` the base overlay's scale (<= 1) and
    ``zoom_scale`` the screen pixels per image pixel at the current zoom. Detail is needed only
    when the screen shows the base overlay enlarged by more than 1.5 times.
    """
    if base_scale >= 1.0 or zoom_scale <= base_scale * 1.5:
        return None
    x0, y0, x1, y1 = view
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1
