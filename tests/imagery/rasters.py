"""Generated test rasters (written with rasterio in code) and a fake pipeline of the real shape."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.transform import from_origin
from rasterio.windows import Window
from scipy import ndimage

from text2seg_widgets.core import Candidate

__all__ = ["write_raster", "FakePipeline", "UTM", "UTM_TRANSFORM", "BG", "FG"]

UTM = "EPSG:32633"
UTM_TRANSFORM = from_origin(500000.0, 5000000.0, 0.5, 0.5)
BG, FG = 40, 200


def write_raster(path: Path, width: int, height: int, *, count: int = 3, dtype: str = "uint8",
                 rects: Sequence[tuple[int, int, int, int]] = (), fg: float = FG, bg: float = BG,
                 nodata: float | None = None, border: int = 0, crs: str | None = UTM,
                 transform: Affine | None = UTM_TRANSFORM, tiled: bool = True, block_rows: int = 512,
                 overviews: bool = False) -> Path:
    """A GeoTIFF with value ``fg`` in each ``(x, y, w, h)`` rect (all bands), ``bg`` elsewhere and a
    ``border`` of ``nodata`` pixels; written window by window so big scenes stay cheap."""
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=dtype,
                   compress="deflate")
    if tiled and width >= 16 and height >= 16:
        profile.update(tiled=True, blockxsize=256 if width >= 256 else 16, blockysize=256 if height >= 256 else 16)
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    elif transform is not None and transform != Affine.identity():
        profile.update(transform=transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        for top in range(0, height, block_rows):
            h = min(block_rows, height - top)
            block = np.full((h, width), bg, dtype=dtype)
            for x, y, w, rh in rects:
                y0, y1 = max(y, top), min(y + rh, top + h)
                if y0 < y1:
                    block[y0 - top:y1 - top, x:x + w] = fg
            if border and nodata is not None:
                rows = np.arange(top, top + h)[:, None]
                cols = np.arange(width)[None, :]
                edge = (rows < border) | (rows >= height - border) | (cols < border) | (cols >= width - border)
                block[edge] = nodata
            ds.write(np.broadcast_to(block, (count, h, width)), window=Window(0, top, width, h))
        if overviews:
            ds.build_overviews([2, 4])
    return path


class FakePipeline:
    """Pixels with red >= ``threshold`` are class 1 ('bright'); each 4-connected blob is a candidate."""

    def __init__(self, threshold: int = 128, names: Sequence[str] = ("bright",)) -> None:
        self.threshold = threshold
        self.classes = SimpleNamespace(names=list(names), colors=[(255, 0, 0), (0, 0, 255)][:len(names)])
        self.calls: list[tuple[int, ...]] = []

    def run(self, rgb: np.ndarray) -> SimpleNamespace:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.calls.append(rgb.shape)
        fg = rgb[..., 0] >= self.threshold
        blobs, n = ndimage.label(fg)
        cands = [Candidate.from_mask(blobs == i, class_name=self.classes.names[0], score=0.5 + 0.01 * i,
                                     branch="filter", prompt="bright", model="fake") for i in range(1, n + 1)]
        scores = np.stack([np.full(fg.shape, 0.5, np.float32), fg.astype(np.float32) * 0.9]
                          + [np.zeros(fg.shape, np.float32)] * (len(self.classes.names) - 1))
        return SimpleNamespace(candidates=cands, label_map=fg.astype(np.uint8), score_maps=scores)
