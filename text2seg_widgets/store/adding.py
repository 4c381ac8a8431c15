"""Adding a folder of images that holds a few bad files: the records of what was added and left out.

:meth:`~.images.Images.add_images_checked` reads every file first (size, georeferencing, and the
last pixel row, so truncated files are caught), then adds the good ones in ONE transaction and
reports each bad one with its reason. With ``strict=True`` it is all or nothing: any bad file
raises :class:`~text2seg_widgets.errors.InputError` listing every bad file, and nothing is added.
:meth:`Project.add_images` keeps its old behaviour (the first bad file raises) for existing
callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.imagemeta import ImageMeta

if TYPE_CHECKING:
    from text2seg_widgets.store.records import ImageRecord

__all__ = ["BadImage", "DuplicateImage", "ImageBatch", "tile_windows", "window_meta"]


@dataclass(frozen=True)
class BadImage:
    """A file that was not added, and why (``reason`` is the message of the error)."""

    path: str
    reason: str


@dataclass(frozen=True)
class DuplicateImage:
    """A file left out because the project already holds the same bytes (sha256) and window."""

    path: str
    image_id: int
    existing_path: str


@dataclass(frozen=True)
class ImageBatch:
    """What :meth:`~.images.Images.add_images_checked` did: image records added (or already
    there), in order, the files left out, and the copies of project images skipped."""

    added: tuple["ImageRecord", ...]
    failed: tuple[BadImage, ...]
    duplicates: tuple[DuplicateImage, ...] = ()


def tile_windows(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """``(col, row, w, h)`` windows of at most ``tile`` pixels covering the image, row by row."""
    if tile <= 0:
        raise InputError(f"tile must be a positive number of pixels, got {tile}")
    return [(col, row, min(tile, width - col), min(tile, height - row))
            for row in range(0, height, tile) for col in range(0, width, tile)]


def window_meta(meta: ImageMeta, win: tuple[int, int, int, int]) -> ImageMeta:
    """The metadata of a window of an already-read file (no second read)."""
    col, row, w, h = win
    a, b, c, d, e, f = meta.transform
    return ImageMeta(width=w, height=h, crs=meta.crs,
                     transform=(a, b, a * col + b * row + c, d, e, d * col + e * row + f),
                     checksum=meta.checksum)
