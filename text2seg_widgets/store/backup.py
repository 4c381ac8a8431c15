"""Backups of the project database with SQLite's online backup API (a mixin of :class:`Project`).

- :meth:`BackupMixin.backup` writes a consistent copy while the project stays open (other
  sessions may keep writing; the copy is one committed state), by default to
  ``<project>/backups/backup-<time>.sqlite``. Manual backups are never deleted.
- Rolling automatic backups (``auto-<time>-<reason>.sqlite`` in the same folder) are taken before
  bulk or destructive actions: removing a class, importing COCO, accepting candidates across
  several images at once (accept-all on the project), and before a schema migration. Only the
  newest :attr:`BackupMixin.keep_backups` automatic ones are kept (a project setting, default
  :data:`DEFAULT_KEEP`; 0 turns them off).
- :func:`restore_backup` puts a backup back as the project database (the current one, even a
  corrupt one, is first set aside as ``project.sqlite.before-restore-<time>``).
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import DB_NAME

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database

__all__ = ["BackupMixin", "BACKUP_DIR", "DEFAULT_KEEP", "restore_backup", "list_backups",
           "copy_database", "backup_stamp"]

log = logging.getLogger(__name__)

#: Backups live in this folder inside the project folder.
BACKUP_DIR = "backups"
#: Automatic backups kept unless the project says otherwise.
DEFAULT_KEEP = 5
_KEEP_KEY = "auto_backups_keep"
_REASON = re.compile(r"[^a-z0-9]+")


def backup_stamp() -> str:
    """UTC time as used in backup file names (sorts chronologically)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def copy_database(conn: sqlite3.Connection, dest: Path) -> Path:
    """Copy the database behind ``conn`` to ``dest`` with the online backup API (atomic: written
    to a temporary name first)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    target = sqlite3.connect(str(tmp))
    try:
        conn.backup(target)
    finally:
        target.close()
    tmp.replace(dest)
    return dest


def list_backups(folder: Path) -> list[Path]:
    """Every backup of the project in ``folder``, oldest first (manual and automatic)."""
    root = Path(folder) / BACKUP_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("*.sqlite") if p.is_file()),
                  key=lambda p: (p.name.split("-", 1)[1], p.name))


def restore_backup(folder: str | Path, backup: str | Path | None = None) -> Path:
    """Make ``backup`` (default: the newest one) the project database of ``folder``; return the
    path the current database was set aside to. The project must not be open anywhere."""
    folder = Path(folder)
    if backup is None:
        found = list_backups(folder)
        if not found:
            raise InputError(f"{folder / BACKUP_DIR} holds no backup to restore")
        backup = found[-1]
    backup = Path(backup)
    if not backup.is_file():
        raise InputError(f"no backup file at {backup}; see {folder / BACKUP_DIR}")
    source = sqlite3.connect(str(backup))
    try:
        if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise InputError(f"the backup {backup} is damaged too; restore an older one")
    except sqlite3.DatabaseError as exc:
        source.close()
        raise InputError(f"{backup} is not a readable backup ({exc}); restore another one "
                         f"from {folder / BACKUP_DIR}") from exc
    db = folder / DB_NAME
    aside = db.with_name(f"{DB_NAME}.before-restore-{backup_stamp()}")
    if db.exists():
        shutil.move(db, aside)
    for suffix in ("-wal", "-shm"):  # a stale log would be replayed onto the restored copy
        side = db.with_name(DB_NAME + suffix)
        if side.exists():
            shutil.move(side, aside.with_name(aside.name + suffix))
    try:
        copy_database(source, db)
    finally:
        source.close()
    log.info("restored %s from %s (previous database kept as %s)", db, backup, aside)
    return aside


class BackupMixin:
    """Needs ``_db`` and ``folder`` from :class:`Project`."""

    _db: "Database"
    folder: Path

    @property
    def backups_folder(self) -> Path:
        return self.folder / BACKUP_DIR

    def backup(self, dest: str | Path | None = None) -> Path:
        """A consistent copy of the database (SQLite online backup) at ``dest`` (a file, or a
        folder to put it in); default ``<project>/backups/backup-<time>.sqlite``."""
        default = self.backups_folder / f"backup-{backup_stamp()}.sqlite"
        target = default if dest is None else Path(dest)
        if target.is_dir():
            target = target / f"backup-{backup_stamp()}.sqlite"
        try:
            with self._db.lock:
                return copy_database(self._db.conn, target)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot write the backup {target}: {exc}") from exc

    def backups(self) -> list[Path]:
        """This project's backups, oldest first."""
        return list_backups(self.folder)

    @property
    def keep_backups(self) -> int:
        """How many automatic backups are kept (0: none are taken)."""
        rows = self._db.query("SELECT value FROM meta WHERE key = ?", (_KEEP_KEY,))
        return int(rows[0][0]) if rows else DEFAULT_KEEP

    @keep_backups.setter
    def keep_backups(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputError(f"keep_backups must be a whole number >= 0, got {count!r}")
        with self._db.raw() as tx:
            tx.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                            "UPDATE SET value = excluded.value", (_KEEP_KEY, str(count)))

    def auto_backup(self, reason: str) -> Path | None:
        """A rolling automatic backup before a bulk or destructive action (``None`` when turned
        off); the oldest automatic backups beyond :attr:`keep_backups` are deleted."""
        keep = self.keep_backups
        if keep == 0:
            return None
        label = _REASON.sub("-", reason.lower()).strip("-")[:40] or "action"
        path = self.backup(self.backups_folder / f"auto-{backup_stamp()}-{label}.sqlite")
        autos = [p for p in self.backups() if p.name.startswith("auto-")]
        for old in autos[:-keep]:
            old.unlink(missing_ok=True)
        log.info("automatic backup before %s: %s", reason, path)
        return path
