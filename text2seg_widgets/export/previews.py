"""Pictures of results: coloured label maps, blended overlays and a legend, drawn with PIL.

:class:`PreviewCanvas` fills a downsampled preview of a scene one window at a time (what
``segment`` writes as ``overlay.png``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.labels import NODATA

__all__ = ["colorize", "blend_overlay", "draw_legend", "overlay_with_legend", "preview_shape",
           "PreviewCanvas"]


def preview_shape(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` no larger than ``max_side`` on either side, keeping the aspect ratio."""
    f = min(1.0, max_side / max(width, height))
    return max(1, round(height * f)), max(1, round(width * f))


def colorize(labels: np.ndarray, colors: Sequence[Sequence[int]], nodata: int = NODATA) -> np.ndarray:
    """``(h, w)`` class indices -> ``(h, w, 3)`` uint8; background and nodata black."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels must be 2-D, got shape {labels.shape}")
    lut = np.zeros((256, 3), np.uint8)
    for i, rgb in enumerate(colors, start=1):
        lut[i] = [int(v) for v in list(rgb)[:3]]
    lut[nodata] = 0
    return lut[labels.astype(np.uint8)]


def blend_overlay(rgb: np.ndarray, labels: np.ndarray, colors: Sequence[Sequence[int]],
                  alpha: float = 0.5, nodata: int = NODATA) -> np.ndarray:
    """The image with every labelled pixel (class >= 1) tinted by its class colour."""
    rgb = np.asarray(rgb, np.uint8)
    if rgb.shape[:2] != np.asarray(labels).shape:
        raise InputError(f"image {rgb.shape[:2]} and labels {np.asarray(labels).shape} differ in size")
    painted = colorize(labels, colors, nodata)
    mask = (labels > 0) & (labels != nodata)
    out = rgb.copy()
    mixed = (1 - alpha) * rgb[mask].astype(np.float32) + alpha * painted[mask].astype(np.float32)
    out[mask] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def draw_legend(image: Image.Image, names: Sequence[str], colors: Sequence[Sequence[int]]) -> Image.Image:
    """A copy of ``image`` with a legend strip (colour swatch + class name per class) added below."""
    font = ImageFont.load_default()
    row_h, pad, swatch = 16, 6, 12
    legend_h = pad * 2 + row_h * max(1, len(names))
    out = Image.new("RGB", (max(image.width, 160), image.height + legend_h), (255, 255, 255))
    out.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    y = image.height + pad
    if not names:
        draw.text((pad, y), "no classes", fill=(0, 0, 0), font=font)
    for name, rgb in zip(names, colors):
        fill = tuple(int(v) for v in list(rgb)[:3])
        draw.rectangle([pad, y + 2, pad + swatch, y + 2 + swatch], fill=fill, outline=(0, 0, 0))
        draw.text((pad * 2 + swatch, y + 1), str(name), fill=(0, 0, 0), font=font)
        y += row_h
    return out


def overlay_with_legend(rgb: np.ndarray, labels: np.ndarray, names: Sequence[str],
                        colors: Sequence[Sequence[int]], alpha: float = 0.5) -> Image.Image:
    """:func:`blend_overlay` plus :func:`draw_legend` as a PIL image."""
    return draw_legend(Image.fromarray(blend_overlay(rgb, labels, colors, alpha)), names, colors)


class PreviewCanvas:
    """A nearest-neighbour preview (image + labels) of a scene, filled one window at a time.

    Preview pixel ``(r, c)`` shows scene pixel ``(floor((r + 0.5) * H / h), floor((c + 0.5) * W / w))``;
    windows pasted in any order give the same picture as one decimated read.
    """

    def __init__(self, width: int, height: int, max_side: int = 2048, nodata: int = NODATA) -> None:
        self.height, self.width = preview_shape(width, height, max_side)
        self.src_rows = ((np.arange(self.height) + 0.5) * height / self.height).astype(np.int64)
        self.src_cols = ((np.arange(self.width) + 0.5) * width / self.width).astype(np.int64)
        self.rgb = np.zeros((self.height, self.width, 3), np.uint8)
        self.labels = np.full((self.height, self.width), nodata, np.uint8)

    def paste(self, col_off: int, row_off: int, rgb: np.ndarray | None = None,
              labels: np.ndarray | None = None) -> None:
        """Paste ``(h, w, 3)`` image and/or ``(h, w)`` labels covering the scene region at ``(col_off, row_off)``."""
        ref = labels if labels is not None else rgb
        if ref is None:
            return
        h, w = ref.shape[:2]
        pr0, pr1 = np.searchsorted(self.src_rows, [row_off, row_off + h])
        pc0, pc1 = np.searchsorted(self.src_cols, [col_off, col_off + w])
        if pr0 == pr1 or pc0 == pc1:
            return
        rows = self.src_rows[pr0:pr1] - row_off
        cols = self.src_cols[pc0:pc1] - col_off
        if labels is not None:
            self.labels[pr0:pr1, pc0:pc1] = labels[np.ix_(rows, cols)]
        if rgb is not None:
            self.rgb[pr0:pr1, pc0:pc1] = rgb[np.ix_(rows, cols)]
