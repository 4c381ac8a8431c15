"""Backups of the project database with SQLite's online backup API (a part of :class:`~.project.Project`).

- :meth:`Backups.backup` writes a consistent copy while the project stays open (other
  sessions may keep writing; the copy is one committed state), by default to
  ``<project>/backups/backup-<time>.sqlite``. Manual backups are never deleted.
- Rolling automatic backups (``auto-<time>-<reason>.sqlite`` in the same folder) are taken before
  bulk or destructive actions: removing a class, importing COCO, accepting candidates across
  several images at once (accept-all on the project), and before a schema migration. Only the
  newest :attr:`Backups.keep_backups` automatic ones are kept (a project setting, default
  :data:`DEFAULT_KEEP`; 0 turns them off).
- :func:`restore_backup` puts a backup back as the project database (the current one, even a
  corrupt one, is first set aside as ``project.sqlite.before-restore-<time>``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from text2seg_widgets.core.processes import pid_alive
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import DB_NAME
from text2seg_widgets.store.sessions import exclusive

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database

__all__ = ["Backups", "BACKUP_DIR", "DEFAULT_KEEP", "restore_backup", "list_backups",
           "list_set_aside", "copy_database", "backup_stamp", "clean_partials", "RestoreResult",
           "DatabaseFacts", "read_facts", "APP"]

log = logging.getLogger(__name__)

#: Backups live in this folder inside the project folder.
BACKUP_DIR = "backups"
#: Automatic backups kept unless the project says otherwise.
DEFAULT_KEEP = 5
_KEEP_KEY = "auto_backups_keep"
_PARTIAL = ".partial"
#: The ``meta.app`` value of every project database.
APP = "text2seg-widgets"
_REASON = re.compile(r"[^a-z0-9]+")


def backup_stamp() -> str:
    """UTC time as used in backup file names (sorts chronologically)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def copy_database(conn: sqlite3.Connection, dest: Path) -> Path:
    """Copy the database behind ``conn`` to ``dest`` with the online backup API (atomic: written
    to ``<dest>.partial-<pid>`` first, then renamed; leftovers of killed copies are removed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(dest.parent)
    tmp = dest.with_name(f"{dest.name}{_PARTIAL}-{os.getpid()}")
    target = sqlite3.connect(str(tmp))
    try:
        conn.backup(target)
    except BaseException:
        target.close()
        tmp.unlink(missing_ok=True)
        raise
    target.close()
    tmp.replace(dest)
    return dest


def clean_partials(folder: Path) -> list[Path]:
    """Remove ``*.sqlite.partial-<pid>`` files of copies whose process has ended (and the
    ``*.sqlite.partial`` files of older versions untouched for a minute); returns them."""
    removed = []
    for path in folder.glob(f"*{_PARTIAL}*"):
        tail = path.name.rsplit(_PARTIAL, 1)[1].removesuffix("-journal")
        if tail.startswith("-"):
            stale = tail[1:].isdigit() and not pid_alive(int(tail[1:]))
        else:
            stale = tail == "" and time.time() - path.stat().st_mtime > 60
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
            log.info("removed the leftover of an interrupted backup: %s", path)
    return removed


def list_backups(folder: Path) -> list[Path]:
    """Every backup of the project in ``folder``, oldest first (manual and automatic)."""
    root = Path(folder) / BACKUP_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("*.sqlite") if p.is_file()),
                  key=lambda p: (p.name.split("-", 1)[1], p.name))


def list_set_aside(folder: Path) -> list[Path]:
    """The databases that restores set aside (``project.sqlite.before-restore-<time>``)."""
    return sorted(p for p in Path(folder).glob(f"{DB_NAME}.before-restore-*")
                  if p.is_file() and not p.name.endswith(("-wal", "-shm")))


@dataclass(frozen=True)
class DatabaseFacts:
    """What a restore compares: the project identity and how much work a database holds."""

    project_id: str | None
    created_at: str | None
    annotations: int
    done_images: int
    images: int
    candidates: int
    #: name -> role (empty: a project without members)
    members: tuple[tuple[str, str], ...] = ()

    def same_project(self, other: "DatabaseFacts") -> bool:
        if self.project_id and other.project_id:
            return self.project_id == other.project_id
        return self.created_at is not None and self.created_at == other.created_at

    def counts(self) -> dict[str, int]:
        return {"annotations": self.annotations, "done images": self.done_images,
                "images": self.images, "candidates": self.candidates}


def read_facts(path: Path) -> DatabaseFacts:
    """The :class:`DatabaseFacts` of a project database file, read only; :class:`InputError`
    when it is empty, damaged or not a text2seg project database."""
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{path} is empty or missing: it is not a backup")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"{path} cannot be opened ({exc})") from exc
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise InputError(f"{path} is damaged (integrity check failed)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("app") != APP:
            raise InputError(f"{path} is an SQLite file but not a text2seg project database")

        def count(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        has_members = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = 'members'").fetchone() is not None
        members = tuple((str(r[0]), str(r[1])) for r in conn.execute(
            "SELECT name, role FROM members ORDER BY name").fetchall()) if has_members else ()
        return DatabaseFacts(meta.get("project_id"), meta.get("created_at"),
                             count("SELECT count(*) FROM annotations"),
                             count("SELECT count(*) FROM images WHERE state = 'done'"),
                             count("SELECT count(*) FROM images"),
                             count("SELECT count(*) FROM candidates"), members)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is not a readable project database ({exc})") from exc
    finally:
        conn.close()


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_backup` did: the backup used, where the previous database was kept,
    and the counts before -> after (``before`` is empty when the previous one was unreadable)."""

    backup: Path
    set_aside: Path | None
    before: dict[str, int]
    after: dict[str, int]

    def changes(self) -> str:
        if not self.before:
            return "the previous database was unreadable: nothing to compare"
        return ", ".join(f"{k} {self.before[k]} -> {self.after[k]}" for k in self.after)


def restore_backup(folder: str | Path, backup: str | Path | None = None, *, force: bool = False,
                   yes: bool = False, user: str | None = None) -> RestoreResult:
    """Make ``backup`` (default: the newest one) the project database of ``folder``.

    Refused (with :class:`InputError`, nothing changed) while any session has the project open,
    for an empty, damaged or non-project file, for another project's backup unless ``force``,
    and when the backup holds less work (annotations, done images) than the current database
    unless ``yes``. The swap is atomic: the backup is copied beside the database and verified,
    the current database is copied aside to ``project.sqlite.before-restore-<time>``, then one
    rename puts the copy in place; a kill at any moment leaves a whole project database.
    In a project with members only a manager may restore (``user``: default ``TEXT2SEG_USER``,
    else the login name)."""
    folder = Path(folder)
    if backup is None:
        found = list_backups(folder)
        if not found:
            raise InputError(f"{folder / BACKUP_DIR} holds no backup to restore")
        backup = found[-1]
    backup = Path(backup)
    if not backup.is_file():
        raise InputError(f"no backup file at {backup}; see {folder / BACKUP_DIR} "
                         f"(`text2seg-widgets project restore {folder} --list`)")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a project folder")
    with exclusive(folder, "restore a backup"):
        return _restore_locked(folder, backup, force=force, yes=yes, user=user)


def _restore_locked(folder: Path, backup: Path, *, force: bool, yes: bool,
                    user: str | None) -> RestoreResult:
    db = folder / DB_NAME
    clean_partials(folder)
    for stale in folder.glob(f"{DB_NAME}.restoring-*"):
        stale.unlink(missing_ok=True)
    try:
        new = read_facts(backup)
    except InputError as exc:
        raise InputError(f"not restored: {exc}; choose another backup from "
                         f"{folder / BACKUP_DIR}") from exc
    try:
        current: DatabaseFacts | None = read_facts(db) if db.exists() else None
    except InputError:
        current = None  # a damaged database is what restore is for; it is still kept aside
    if current is not None and current.members:
        from text2seg_widgets.store.people import NotAllowedError
        from text2seg_widgets.store.actor import default_user

        who = user or default_user()
        role = dict(current.members).get(who or "")
        if role != "manager":
            raise NotAllowedError(f"not restored: only managers may restore backups of this "
                                  f"project, and {who} is {role or 'not a member'}")
    if current is not None and not new.same_project(current) and not force:
        raise InputError(f"not restored: {backup} is a backup of another project (project id "
                         f"{new.project_id or new.created_at}, this one is "
                         f"{current.project_id or current.created_at}); pass --force to restore "
                         "it anyway")
    if current is not None and not yes and (new.annotations < current.annotations
                                            or new.done_images < current.done_images):
        changes = RestoreResult(backup, None, current.counts(), new.counts()).changes()
        raise InputError(f"not restored: the backup holds less work than the project ({changes}); "
                         "pass --yes to restore it anyway (the current database is kept aside)")
    staging = db.with_name(f"{DB_NAME}.restoring-{os.getpid()}")
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        copy_database(source, staging)
    finally:
        source.close()
    if current is not None and current.project_id and not new.project_id:
        _set_project_id(staging, current.project_id)  # an old backup keeps this project's identity
    aside = _set_aside(db) if db.exists() else None
    os.replace(staging, db)
    _fsync_dir(folder)
    result = RestoreResult(backup, aside, current.counts() if current else {}, new.counts())
    log.info("restored %s from %s (%s); previous database kept as %s", db, backup,
             result.changes(), aside)
    return result


def _set_project_id(path: Path, project_id: str) -> None:
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('project_id', ?)",
                      (project_id,))
        conn.commit()
    finally:
        conn.close()


def _set_aside(db: Path) -> Path:
    """Copy the current database (with its write-ahead log folded in, when readable) to a
    ``before-restore`` file and remove its log files; the database file itself stays in place
    until the rename that replaces it."""
    aside = db.with_name(f"{DB_NAME}.before-restore-{backup_stamp()}")
    try:
        conn = sqlite3.connect(str(db))
        try:
            copy_database(conn, aside)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        shutil.copy2(db, aside)  # damaged: keep the bytes as they are
        for suffix in ("-wal", "-shm"):
            side = db.with_name(DB_NAME + suffix)
            if side.exists():
                shutil.copy2(side, aside.with_name(aside.name + suffix))
    for suffix in ("-wal", "-shm"):  # a stale log would be replayed onto the restored copy
        db.with_name(DB_NAME + suffix).unlink(missing_ok=True)
    return aside


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Backups:
    """Backups of an open project (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", folder: Path, *, url: str | None = None) -> None:
        """``folder``: the project folder (a team project: this machine's workspace for it,
        where its backups go); ``url``: a team project's database."""
        self.db, self.folder, self.url = db, folder, url

    @property
    def backups_folder(self) -> Path:
        return self.folder / BACKUP_DIR

    def backup(self, dest: str | Path | None = None) -> Path:
        """A consistent copy of the database at ``dest`` (a file, or a folder to put it in);
        default ``<project>/backups/backup-<time>.sqlite``. An SQLite project is copied with the
        online backup API; a team project (PostgreSQL) is copied from one snapshot into an SQLite
        file of the same schema (image paths as stored, relative to the image root)."""
        default = self.backups_folder / f"backup-{backup_stamp()}.sqlite"
        target = default if dest is None else Path(dest)
        if target.is_dir():
            target = target / f"backup-{backup_stamp()}.sqlite"
        if target.exists() or target.is_symlink():
            self._check_replaceable(target)
        try:
            if self.db.dialect != "sqlite":
                return self._copy_team(target)
            with self.db.lock:
                return copy_database(self.db.sqlite_connection(), target)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot write the backup {target}: {exc}") from exc

    def _copy_team(self, target: Path) -> Path:
        from text2seg_widgets.store.copy import copy_rows
        from text2seg_widgets.store.db import Database
        from text2seg_widgets.store.schema import migrate

        target.parent.mkdir(parents=True, exist_ok=True)
        clean_partials(target.parent)
        tmp = target.with_name(f"{target.name}{_PARTIAL}-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        copy = Database.sqlite(tmp, synchronous="NORMAL")
        try:
            migrate(copy)
            copy_rows(self.db, copy)
        except BaseException:
            copy.close()
            tmp.unlink(missing_ok=True)
            raise
        copy.close()
        for suffix in ("-wal", "-shm"):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)
        tmp.replace(target)
        return target

    def _check_replaceable(self, target: Path) -> None:
        """A backup only ever replaces an older backup of this same project."""
        if target.resolve() == (self.folder / DB_NAME).resolve():
            raise InputError(f"{target} is the project database itself; give another file")
        try:
            facts = read_facts(target)
        except InputError as exc:
            raise InputError(f"not overwriting {target}: it is not a backup of this project "
                             f"({exc}); give another file name or a folder") from exc
        if facts.project_id != self.project_id:
            raise InputError(f"not overwriting {target}: it is a backup of another project; "
                             "give another file name or a folder")

    @property
    def project_id(self) -> str:
        """The identity every backup of this project carries (``meta.project_id``)."""
        return str(self.db.query("SELECT value FROM meta WHERE key = 'project_id'")[0][0])

    def all(self) -> list[Path]:
        """This project's backups, oldest first."""
        return list_backups(self.folder)

    @property
    def keep_backups(self) -> int:
        """How many automatic backups are kept (0: none are taken)."""
        rows = self.db.query("SELECT value FROM meta WHERE key = ?", (_KEEP_KEY,))
        return int(rows[0][0]) if rows else DEFAULT_KEEP

    @keep_backups.setter
    def keep_backups(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputError(f"keep_backups must be a whole number >= 0, got {count!r}")
        with self.db.raw() as tx:
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
        autos = [p for p in self.all() if p.name.startswith("auto-")]
        for old in autos[:-keep]:
            old.unlink(missing_ok=True)
        log.info("automatic backup before %s: %s", reason, path)
        return path
