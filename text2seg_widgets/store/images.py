"""The project's images: adding (whole files or windows of big scenes, bad files reported, copies
skipped), reading records, paths relative to the project, relinking moved files (a part of
:class:`~.project.Project`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.adding import (BadImage, DuplicateImage, ImageBatch, tile_windows,
                                           window_meta)
from text2seg_widgets.store.db import now
from text2seg_widgets.store.imagemeta import ImageMeta, file_checksum, read_image_meta
from text2seg_widgets.store.records import ImageRecord, image_from_row
from text2seg_widgets.store.schema import check_state

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database, Tx

__all__ = ["Images"]

log = logging.getLogger(__name__)


class Images:
    """The images table (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", root: Path | None, *, root_name: str = "project folder") -> None:
        """``root``: where relative image paths start (a one-person project: its folder; a team
        project: the image root this machine maps, or ``None``: paths are stored absolute).
        ``root_name`` says in messages what the root is and how to set it."""
        self.db, self.root, self.root_name = db, root, root_name

    def store_path(self, path: Path) -> str:
        """How ``path`` is stored: relative to :attr:`root` when inside it, else absolute."""
        path = path.resolve()
        if self.root is None:
            return str(path)
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        p = Path(stored)
        if p.is_absolute():
            return p
        return self.root / p if self.root is not None else p

    def _missing(self, image_id: int, stored: str, path: Path) -> str:
        if Path(stored).is_absolute():
            where = f"{path} does not exist (moved or deleted?)"
        elif self.root is None:
            where = (f"its path {stored} is relative to an image root and none is set; set "
                     "TEXT2SEG_IMAGE_ROOT (or --image-root / image_root=) to the folder that holds "
                     "the project's images on this machine")
        else:
            where = (f"{stored} is not under the {self.root_name} {self.root} (is that the "
                     "right root on this machine?)")
        return (f"image {image_id} is missing: {where}; point the project at its new place with "
                f"project.relink({image_id}, new_path)")

    def add_image(self, path: str | Path, *, window: Sequence[int] | None = None,
                  user: str | None = None, allow_duplicates: bool = False) -> ImageRecord:
        """Add an image (or a ``(col, row, width, height)`` window of a big scene).

        Adding the same file and window again returns the existing record; so does adding a copy
        of a project image (same sha256) under another path, with a warning, unless
        ``allow_duplicates``. A missing, empty, unreadable or truncated file raises
        :class:`InputError` saying which."""
        path = Path(path)
        win = tuple(int(v) for v in window) if window is not None else None
        meta = read_image_meta(path, win)  # type: ignore[arg-type]  # a 4-tuple window
        with self.db.raw() as tx:
            twin = None if allow_duplicates else self.duplicate_of(tx, path, win, meta.checksum)
            if twin is not None:
                log.warning("%s has the same content as image %d (%s); not added again (pass "
                            "allow_duplicates=True to add it anyway)", path, twin, self.path_of(tx, twin))
                image_id = twin
            else:
                image_id = self.insert(tx, path, win, meta)
        return self.image(image_id)

    def duplicate_of(self, tx: "Tx", path: Path, win: tuple[int, ...] | None,
                      checksum: str) -> int | None:
        """The id of another image with the same bytes and window under another path, if any."""
        win_text = json.dumps(list(win)) if win else ""
        if tx.conn.execute("SELECT 1 FROM images WHERE path = ? AND win = ?",
                           (self.store_path(path), win_text)).fetchone():
            return None  # the same file again: the existing record, not a duplicate
        row = tx.conn.execute("SELECT id FROM images WHERE checksum = ? AND win = ? AND path != ? "
                              "ORDER BY id LIMIT 1",
                              (checksum, win_text, self.store_path(path))).fetchone()
        return None if row is None else int(row["id"])

    def path_of(self, tx: "Tx", image_id: int) -> str:
        row = tx.conn.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
        return str(self.resolve(row["path"])) if row is not None else "?"

    def insert(self, tx: "Tx", path: Path, win: tuple[int, ...] | None, meta: ImageMeta) -> int:
        """The id of the (path, window) image, inserted unless it is already there."""
        stored, win_text = self.store_path(path), json.dumps(list(win)) if win else ""
        row = tx.conn.execute("SELECT id FROM images WHERE path = ? AND win = ?",
                              (stored, win_text)).fetchone()
        if row is not None:
            return int(row["id"])
        return tx.insert("images", {
            "path": stored, "width": meta.width, "height": meta.height, "crs": meta.crs,
            "transform": json.dumps(list(meta.transform)), "checksum": meta.checksum,
            "win": win_text, "added_at": now()})

    def add_images(self, paths: Iterable[str | Path]) -> list[ImageRecord]:
        """Add several files, each as :meth:`add_image` (the first bad file raises, after the
        ones before it were added). To add the good files of a folder and get each bad one
        with its reason, use :meth:`add_images_checked`."""
        return [self.add_image(p) for p in paths]

    def images(self, state: str | None = None) -> list[ImageRecord]:
        """The project's images (not the replicas annotators label on their own: see
        :meth:`replicas`), by id; ``state``: only those in that state."""
        if state is None:
            rows = self.db.query("SELECT * FROM images WHERE replica = '' ORDER BY id")
        else:
            check_state(state)
            rows = self.db.query("SELECT * FROM images WHERE replica = '' AND state = ? "
                                 "ORDER BY id", (state,))
        return [image_from_row(r, self.resolve) for r in rows]

    def replicas(self, of: int | None = None) -> list[ImageRecord]:
        """Replicas (consensus and honeypot copies), of one image or of all, by id."""
        if of is None:
            rows = self.db.query("SELECT * FROM images WHERE replica != '' ORDER BY id")
        else:
            rows = self.db.query("SELECT * FROM images WHERE replica_of = ? ORDER BY id", (int(of),))
        return [image_from_row(r, self.resolve) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        rows = self.db.query("SELECT * FROM images WHERE id = ?", (int(image_id),))
        if not rows:
            raise InputError(f"no image with id {image_id} in this project; see project.images()")
        return image_from_row(rows[0], self.resolve)

    def image_path(self, image_id: int) -> Path:
        """The image file, checked to exist (:class:`InputError` naming :meth:`relink` if not)."""
        rec = self.image(image_id)
        if not Path(rec.path).is_file():
            raise InputError(self._missing(image_id, self.stored_path(image_id), Path(rec.path)))
        return Path(rec.path)

    def stored_path(self, image_id: int) -> str:
        """The path as the database holds it (relative to the root, or absolute)."""
        rows = self.db.query("SELECT path FROM images WHERE id = ?", (int(image_id),))
        if not rows:
            raise InputError(f"no image with id {image_id} in this project; see project.images()")
        return str(rows[0][0])

    def missing_images(self) -> list[ImageRecord]:
        return [r for r in self.images() if not Path(r.path).is_file()]

    def relink(self, image_id: int, new_path: str | Path, *, check: bool = True) -> ImageRecord:
        """Point image ``image_id`` at a moved file. With ``check`` the file must have the same
        checksum (same bytes) as the one that was added; pass ``check=False`` to accept any file
        of the same size."""
        rec = self.image(image_id)
        new_path = Path(new_path)
        meta = read_image_meta(new_path, rec.window)
        if (meta.width, meta.height) != (rec.width, rec.height):
            raise InputError(f"{new_path} is {meta.width} x {meta.height} pixels but image "
                             f"{image_id} is {rec.width} x {rec.height}; it is not the same image")
        if check and meta.checksum != rec.checksum:
            raise InputError(f"{new_path} has different content from the image that was added "
                             f"({rec.path}); relink it anyway with `project relink --no-check` "
                             "(Python: check=False)")
        with self.db.raw() as tx:
            tx.update("images", rec.id, {"path": self.store_path(new_path),
                                         "checksum": file_checksum(new_path)})
        return self.image(image_id)

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
                good.append((path, win, window_meta(meta, win)))
        if strict and failed:
            listed = "; ".join(f"{b.path}: {b.reason}" for b in failed)
            raise InputError(f"{len(failed)} file(s) cannot be added, so nothing was added "
                             f"(strict): {listed}. Fix or remove them, or add without strict "
                             "to add the good files")
        ids: list[int] = []
        twins: list[DuplicateImage] = []
        with self.db.raw() as tx:
            for path, window, meta in good:
                twin = None if allow_duplicates else self.duplicate_of(tx, path, window, meta.checksum)
                if twin is not None:
                    twins.append(DuplicateImage(str(path), twin, self.path_of(tx, twin)))
                else:
                    ids.append(self.insert(tx, path, window, meta))
        return ImageBatch(tuple(self.image(i) for i in ids), tuple(failed), tuple(twins))
