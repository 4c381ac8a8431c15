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
    """The RGB pixels of one image plus its georeferencing (``transform``/``crs`` may be None)."""

    rgb: np.ndarray
    transform: Any = None
    crs: Any = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def load_image(path: str | Path, window: tuple[int, int, int, int] | None = None) -> LoadedImage:
    """Read an image file (or a ``(col, row, width, height)`` window of it) as stretched RGB uint8.

    Raises :class:`InputError` naming the path when the file is missing or unreadable.
    """
    from text2seg_widgets.imagery.scene import open_scene

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path} (moved or deleted? put it back or relink it "
                         "with project.relink(image_id, new_path); the masks below are kept, and "
                         "'Next image' moves on)")
    with open_scene(path) as scene:
        rgb = np.ascontiguousarray(scene.pixels(window)[0])
        crs = scene.crs if scene.is_georeferenced else None
        transform = scene.transform if crs is not None else None
    return LoadedImage(rgb=rgb, transform=transform, crs=crs)


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
