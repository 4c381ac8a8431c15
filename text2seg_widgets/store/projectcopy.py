"""``project copy``: a whole project from one place to another (folder <-> PostgreSQL URL, or a
backup file into a new place), with image paths re-rooted; the rows move with :mod:`.copy`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from text2seg_widgets.store.copy import copy_rows
from text2seg_widgets.store.db import Database, is_url
from text2seg_widgets.store.images import Images
from text2seg_widgets.store.project import Project, image_root_from

__all__ = ["CopyReport", "copy_project"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_project` copied: rows per table, from where to where (no passwords)."""

    source: str
    destination: str
    rows: dict[str, int]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {t}" for t, n in self.rows.items() if n)
        return f"copied {self.source} -> {self.destination}: {counts or 'an empty project'}"


def copy_project(source: str | Path, destination: str | Path, *,
                 source_image_root: str | Path | None = None,
                 image_root: str | Path | None = None, user: str | None = None) -> CopyReport:
    """Copy the project at ``source`` (a folder, a ``postgresql://`` URL, or a backup file
    ``*.sqlite``) to ``destination``
    (a new folder, or a URL of a new or empty database). The roots: where each side's relative
    image paths start (team projects; see :class:`~.project.Project`)."""
    src = _Source.open(source, image_root=source_image_root, user=user)
    try:
        dest_is_new_folder = not is_url(destination) and not Path(destination).exists()
        dest = Project.create(destination, user=user, image_root=image_root)
        try:
            rows = copy_rows(src.db, dest.database,
                             path_map=lambda stored: dest.catalog.store_path(
                                 src.images.resolve(stored).absolute()))
            report = CopyReport(src.label, dest.location, rows)
        except BaseException:
            location = dest.location
            dest.close()
            _remove_failed(destination, dest_is_new_folder, location)
            raise
        dest.close()
        return report
    finally:
        src.close()


@dataclass
class _Source:
    """What a copy reads: a project (folder or URL), or a backup file of one."""

    db: Database
    images: Images
    label: str
    close: Callable[[], None]

    @classmethod
    def open(cls, source: str | Path, *, image_root: str | Path | None,
             user: str | None) -> "_Source":
        if not is_url(source) and Path(source).is_file() and Path(source).suffix == ".sqlite":
            # a backup file (of a team project: paths relative to its image root)
            db = Database.sqlite(Path(source))
            root = image_root_from(image_root)
            return cls(db, Images(db, root, root_name="image root (TEXT2SEG_IMAGE_ROOT)"),
                       str(Path(source).absolute()), db.close)
        project = Project.open(source, user=user, image_root=image_root)
        return cls(project.database, project.catalog, project.location, project.close)


def _remove_failed(destination: str | Path, new_folder: bool, location: str) -> None:
    """Remove what a failed copy created (the destination transaction already rolled back)."""
    if new_folder:
        shutil.rmtree(destination, ignore_errors=True)
    log.warning("the copy to %s failed; nothing was kept there", location)
