"""Image metadata for the project: size, CRS, transform (via rasterio) and a content checksum."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from text2seg_widgets.errors import InputError

__all__ = ["ImageMeta", "read_image_meta", "file_checksum"]


@dataclass(frozen=True)
class ImageMeta:
    width: int
    height: int
    crs: str | None
    transform: tuple[float, ...]
    checksum: str


def file_checksum(path: Path, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()


#: The most raw bytes per file byte a real file of these formats reaches (measured on constant
#: 8000 x 8000 images: baseline JPEG 192, progressive 511; RGB PNG 948, 1-bit PNG 8163), with room.
#: A header that claims more pixels than that lies (a damaged or forged file: a 1024 x 1024 JPEG
#: whose header says 60000 x 60000 decodes for half a minute into grey).
MAX_EXPANSION = {"JPEG": 4000, "PNG": 40000}


def _check_plausible_size(path: Path, driver: str, raw_bytes: int) -> None:
    limit = MAX_EXPANSION.get(driver)
    size = path.stat().st_size
    if limit is not None and raw_bytes > limit * size:
        raise InputError(f"{path} claims more pixels than its {size} bytes can hold ({raw_bytes} "
                         f"bytes of pixels, over {limit} per file byte): its header is damaged or "
                         "forged. Copy the image again or re-save it with an image editor")


def read_image_meta(path: Path, window: tuple[int, int, int, int] | None = None) -> ImageMeta:
    """Size, CRS (WKT) and affine transform of ``path`` (or of a ``(col, row, w, h)`` window).

    The file must decode to its end: the last pixel row is read, which catches truncated PNG,
    JPEG and TIFF files (their header alone looks fine). :class:`InputError` says what is
    wrong: missing, empty, not an image, or truncated/corrupt."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.windows import Window

    if not path.is_file():
        raise InputError(f"image not found: {path}; check the path")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file (0 bytes); copy the image again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                width, height, crs, transform = src.width, src.height, src.crs, src.transform
                _check_plausible_size(path, src.driver, width * height * src.count *
                                      np.dtype(src.dtypes[0]).itemsize)
                try:
                    src.read(1, window=Window(0, height - 1, width, 1))
                except RasterioIOError as exc:
                    raise InputError(f"{path} is truncated or corrupt: its pixels cannot be "
                                     f"decoded ({exc}); copy the image again") from exc
    except RasterioIOError as exc:
        raise InputError(f"cannot read {path} as an image ({exc}); give a GeoTIFF, PNG or "
                         "JPEG file") from exc
    if window is not None:
        col, row, w, h = (int(v) for v in window)
        if col < 0 or row < 0 or w <= 0 or h <= 0 or col + w > width or row + h > height:
            raise InputError(f"window {window} (col, row, width, height) does not fit inside "
                             f"{path.name} ({width} x {height} pixels)")
        a, b, c, d, e, f = tuple(transform)[:6]
        transform = (a, b, a * col + b * row + c, d, e, d * col + e * row + f)
        width, height = w, h
    return ImageMeta(width=int(width), height=int(height),
                     crs=crs.to_wkt() if crs else None,
                     transform=tuple(float(v) for v in tuple(transform)[:6]),
                     checksum=file_checksum(path))
