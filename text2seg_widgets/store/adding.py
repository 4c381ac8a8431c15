"""Adding a folder of images that holds a few bad files (a mixin of :class:`Project`).

:meth:`AddImagesMixin.add_images_checked` reads every file first (size, georeferencing, and the
last pixel row, so truncated files are caught), then adds the good ones in ONE transaction and
reports each bad one with its reason. With ``strict=True`` it is all or nothing: any bad file
raises :class:`~text2seg_widgets.errors.InputError` listing every bad file, and nothing is added.
:meth:`Project.add_images` keeps its old behaviour (the first bad file raises) for existing
callers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.imagemeta import ImageMeta, read_image_meta

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.records import ImageRecord

__all__ = ["AddImagesMixin", "BadImage", "DuplicateImage", "ImageBatch", "tile_windows"]


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
    """What :meth:`AddImagesMixin.add_images_checked` did: image records added (or already
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


class AddImagesMixin:
    """Needs ``_db``, ``image`` and ``_insert_image`` from :class:`Project`."""

    _db: "Database"

    if TYPE_CHECKING:
        def image(self, image_id: int) -> "ImageRecord": ...
        def _insert_image(self, tx: Any, path: Path, win: tuple[int, ...] | None,
                          meta: Any) -> int: ...
        def _duplicate_of(self, tx: Any, path: Path, win: tuple[int, ...] | None,
                          checksum: str) -> int | None: ...
        def _path_of(self, tx: Any, image_id: int) -> str: ...

    def add_images_checked(self, paths: Iterable[str | Path], *, strict: bool = False,
                           tile: int | None = None,
                           allow_duplicates: bool = False) -> ImageBatch:
        """Add the readable files of ``paths`` and report the others (see the module doc).

        ``tile``: add each file as windows of at most this many pixels instead of whole. A file
        whose bytes the project (or this batch) already holds under another path is skipped and
        listed in ``duplicates`` unless ``allow_duplicates``."""
        good: list[tuple[Path, tuple[int, ...] | None, ImageMeta]] = []
        failed: list[BadImage] = []
        for raw in paths:
            path = Path(raw)
            try:
                meta = read_image_meta(path)
            except InputError as exc:
                failed.append(BadImage(str(path), str(exc)))
                continue
            if tile is None:
                good.append((path, None, meta))
                continue
            for win in tile_windows(meta.width, meta.height, tile):
                good.append((path, win, _window_meta(meta, win)))
        if strict and failed:
            listed = "; ".join(f"{b.path}: {b.reason}" for b in failed)
            raise InputError(f"{len(failed)} file(s) cannot be added, so nothing was added "
                             f"(strict): {listed}. Fix or remove them, or add without strict "
                             "to add the good files")
        ids: list[int] = []
        twins: list[DuplicateImage] = []
        with self._db.raw() as tx:
            for path, window, meta in good:
                twin = None if allow_duplicates else self._duplicate_of(tx, path, window, meta.checksum)
                if twin is not None:
                    twins.append(DuplicateImage(str(path), twin, self._path_of(tx, twin)))
                else:
                    ids.append(self._insert_image(tx, path, window, meta))
        return ImageBatch(tuple(self.image(i) for i in ids), tuple(failed), tuple(twins))


def _window_meta(meta: ImageMeta, win: tuple[int, int, int, int]) -> ImageMeta:
    """The metadata of a window of an already-read file (no second read)."""
    col, row, w, h = win
    a, b, c, d, e, f = meta.transform
    return ImageMeta(width=w, height=h, crs=meta.crs,
                     transform=(a, b, a * col + b * row + c, d, e, d * col + e * row + f),
                     checksum=meta.checksum)
