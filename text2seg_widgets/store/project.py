"""The annotation project: a folder holding one SQLite database (WAL) with everything that matters.

>>> p = Project.create("my-project", classes=["building", "road"])      # doctest: +SKIP
>>> img = p.add_image("tile.tif")                                         # doctest: +SKIP
>>> ids = p.add_candidates(img.id, candidates)                            # doctest: +SKIP
>>> ann_id = p.accept(ids[0]); p.undo(); p.redo()                         # doctest: +SKIP

Every user action (accept, reject, relabel, edit or add or delete a mask, set an image's state,
add/remove a class) is one transaction, committed before the method returns, and recorded in a
history that undo/redo replay (it survives closing and reopening). Pipeline writes (candidates,
runs) are transactions too but are not undoable. See :mod:`.db` and :mod:`.history`.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import history as _history
from text2seg_widgets.store.db import DB_NAME, Database, now
from text2seg_widgets.store.history import HistoryStep
from text2seg_widgets.store.imagemeta import file_checksum, read_image_meta
from text2seg_widgets.store.adding import AddImagesMixin
from text2seg_widgets.store.backup import (APP, BACKUP_DIR, BackupMixin, backup_stamp, copy_database,
                                           list_backups)
from text2seg_widgets.store.effort import EffortMixin
from text2seg_widgets.store.navigation import NavigationMixin
from text2seg_widgets.core.colors import class_color
from text2seg_widgets.store.records import ClassInfo, ImageRecord, image_from_row
from text2seg_widgets.store.review import ReviewMixin
from text2seg_widgets.store.schema import MIGRATIONS, migrate
from text2seg_widgets.store.claims import Claims
from text2seg_widgets.store.sessions import SessionLock
from text2seg_widgets.store.states import StatesMixin, check_state

__all__ = ["Project", "DB_NAME"]

log = logging.getLogger(__name__)

_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def _default_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return None


class Project(StatesMixin, NavigationMixin, EffortMixin, AddImagesMixin, BackupMixin,
              ReviewMixin):
    """An open annotation project. Build with :meth:`create` or :meth:`open`; :meth:`close` it."""

    def __init__(self, folder: Path, db: Database, *, user: str | None = None,
                 session: SessionLock | None = None) -> None:
        self.folder = folder
        self._db = db
        self._session = session
        self.user = user if user is not None else _default_user()
        self.claims = Claims(db)

    # ----------------------------------------------------------------- open / create
    @classmethod
    def create(cls, folder: str | Path, classes: Iterable[Any] = (), *,
               user: str | None = None, synchronous: str = "FULL",
               busy_timeout_s: float = 10.0) -> "Project":
        """Create a new project in ``folder`` (created if missing; must not hold a project).

        ``synchronous="NORMAL"`` trades power-cut durability of the last actions for speed
        (a killed process still loses nothing); ``busy_timeout_s``: how long a write waits for
        another process's write lock (then retried a few times before
        :class:`~.db.ProjectBusyError`); see :class:`~.db.Database`."""
        folder = Path(folder)
        if (folder / DB_NAME).exists():
            raise InputError(f"{folder} already holds a project; open it with "
                             f"Project.open({str(folder)!r}) or choose another folder")
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file, not a folder; give a folder for the project")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the project folder {folder}: {exc}") from exc
        specs: list[tuple[str, str, tuple[str, ...]]] = []
        for spec in classes:
            specs.append(_class_spec(spec, [color for _, color, _ in specs]))
        session = SessionLock(folder)
        db = Database(folder / DB_NAME, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
        migrate(db.conn)
        project = cls(folder, db, user=user, session=session)
        with db.raw() as tx:
            for key, value in (("app", APP), ("created_at", now())):
                tx.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            for name, color, prompts in specs:
                project._insert_class(tx, name, color, prompts)
        return project

    @classmethod
    def open(cls, folder: str | Path, *, user: str | None = None,
             synchronous: str = "FULL", busy_timeout_s: float = 10.0) -> "Project":
        """Open an existing project (folder, or its ``project.sqlite``); migrates old schemas."""
        folder = Path(folder)
        if folder.is_file() and folder.name == DB_NAME:
            folder = folder.parent
        path = folder / DB_NAME
        if not path.is_file():
            raise InputError(f"{folder} is not a text2seg project (no {DB_NAME} in it); create "
                             f"one with Project.create({str(folder)!r}, classes=[...])")
        session = SessionLock(folder)
        try:
            return cls._open_locked(folder, path, session, user=user, synchronous=synchronous,
                                    busy_timeout_s=busy_timeout_s)
        except BaseException:
            session.release()
            raise

    @classmethod
    def _open_locked(cls, folder: Path, path: Path, session: SessionLock, *, user: str | None,
                     synchronous: str, busy_timeout_s: float) -> "Project":
        try:
            db = Database(path, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
            tables = {r[0] for r in db.query("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise InputError(_corrupt_message(folder, path, exc)) from exc
        if "meta" not in tables or not db.query("SELECT 1 FROM meta WHERE key = 'app' AND "
                                                "value = ?", (APP,)):
            db.close()
            raise InputError(f"{path} is an SQLite file but not a text2seg project database")
        try:
            version = int(db.query("PRAGMA user_version")[0][0])
            if 0 < version < max(MIGRATIONS):  # keep the old file before upgrading it
                copy_database(db.conn, folder / BACKUP_DIR /
                              f"auto-{backup_stamp()}-before-schema-{version}-upgrade.sqlite")
            before = migrate(db.conn)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise InputError(f"could not upgrade the project {folder} to this version's schema "
                             f"({exc}); the project was left unchanged") from exc
        if before < max(MIGRATIONS):
            log.info("migrated %s from schema %d to %d", path, before, max(MIGRATIONS))
        return cls(folder, db, user=user, session=session)

    def close(self) -> None:
        self._db.close()
        if self._session is not None:
            self._session.release()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def project_id(self) -> str:
        """The project's identity (random, given at creation; backups keep it)."""
        return str(self._db.query("SELECT value FROM meta WHERE key = 'project_id'")[0][0])

    @property
    def schema_version(self) -> int:
        return int(self._db.query("PRAGMA user_version")[0][0])

    # ----------------------------------------------------------------- classes
    @property
    def classes(self) -> list[ClassInfo]:
        rows = self._db.query("SELECT id, name, color, prompts FROM classes ORDER BY id")
        return [ClassInfo(r["id"], r["name"], r["color"], tuple(json.loads(r["prompts"])))
                for r in rows]

    def class_info(self, name_or_id: str | int) -> ClassInfo:
        for c in self.classes:
            if c.id == name_or_id or c.name == name_or_id:
                return c
        known = ", ".join(repr(c.name) for c in self.classes) or "none"
        raise InputError(f"unknown class {name_or_id!r} (known classes: {known}); add it with "
                         "project.add_class(name) first")

    def add_class(self, name: str, color: str | None = None, prompts: Sequence[str] = (),
                  *, user: str | None = None) -> ClassInfo:
        name, color, prompts = _class_spec({"name": name, "color": color, "prompts": prompts},
                                           [c.color for c in self.classes])
        with self._db.action(f"add class {name!r}", user=user or self.user) as tx:
            class_id = self._insert_class(tx, name, color, prompts)
        return self.class_info(class_id)

    def update_class(self, name_or_id: str | int, *, name: str | None = None,
                     color: str | None = None, prompts: Sequence[str] | None = None,
                     user: str | None = None) -> ClassInfo:
        info = self.class_info(name_or_id)
        new_name, new_color, new_prompts = _class_spec(
            {"name": name if name is not None else info.name, "color": color or info.color,
             "prompts": info.prompts if prompts is None else prompts}, ())
        if new_name != info.name and any(c.name == new_name for c in self.classes):
            raise InputError(f"a class named {new_name!r} already exists")
        with self._db.action(f"edit class {info.name!r}", user=user or self.user) as tx:
            tx.update("classes", info.id, {"name": new_name, "color": new_color,
                                           "prompts": json.dumps(list(new_prompts))})
        return self.class_info(info.id)

    def remove_class(self, name_or_id: str | int, *, cascade: bool = False,
                     user: str | None = None) -> None:
        """Remove a class. Its proposed/rejected candidates go with it; annotations only with
        ``cascade=True`` (otherwise :class:`InputError`). Undoable, and an automatic backup is
        taken first (see :mod:`.backup`)."""
        info = self.class_info(name_or_id)
        anns = self._db.query("SELECT id FROM annotations WHERE class_id = ?", (info.id,))
        if anns and not cascade:
            raise InputError(f"{len(anns)} annotation(s) use class {info.name!r}; relabel or "
                             "delete them first, or pass cascade=True to delete them too")
        self.auto_backup(f"remove class {info.name}")
        with self._db.action(f"remove class {info.name!r}", user=user or self.user) as tx:
            for (ann_id,) in tx.conn.execute("SELECT id FROM annotations WHERE class_id = ?",
                                             (info.id,)).fetchall():
                tx.delete("annotations", ann_id)
            for (cand_id,) in tx.conn.execute("SELECT id FROM candidates WHERE class_id = ?",
                                              (info.id,)).fetchall():
                for (ann_id,) in tx.conn.execute("SELECT id FROM annotations WHERE "
                                                 "candidate_id = ?", (cand_id,)).fetchall():
                    tx.update("annotations", ann_id, {"candidate_id": None})
                tx.delete("candidates", cand_id)
            tx.delete("classes", info.id)

    def _insert_class(self, tx: Any, name: str, color: str, prompts: Sequence[str]) -> int:
        if tx.conn.execute("SELECT 1 FROM classes WHERE name = ?", (name,)).fetchone():
            raise InputError(f"a class named {name!r} already exists")
        return tx.insert("classes", {"name": name, "color": color,
                                     "prompts": json.dumps(list(prompts))})

    # ----------------------------------------------------------------- images
    def _store_path(self, path: Path) -> str:
        path = path.resolve()
        try:
            return path.relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            return str(path)

    def _resolve(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.folder / p

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
        with self._db.raw() as tx:
            twin = None if allow_duplicates else self._duplicate_of(tx, path, win, meta.checksum)
            if twin is not None:
                log.warning("%s has the same content as image %d (%s); not added again (pass "
                            "allow_duplicates=True to add it anyway)", path, twin, self._path_of(tx, twin))
                image_id = twin
            else:
                image_id = self._insert_image(tx, path, win, meta)
        return self.image(image_id)

    def _duplicate_of(self, tx: Any, path: Path, win: tuple[int, ...] | None,
                      checksum: str) -> int | None:
        """The id of another image with the same bytes and window under another path, if any."""
        win_text = json.dumps(list(win)) if win else ""
        if tx.conn.execute("SELECT 1 FROM images WHERE path = ? AND win = ?",
                           (self._store_path(path), win_text)).fetchone():
            return None  # the same file again: the existing record, not a duplicate
        row = tx.conn.execute("SELECT id FROM images WHERE checksum = ? AND win = ? AND path != ? "
                              "ORDER BY id LIMIT 1",
                              (checksum, win_text, self._store_path(path))).fetchone()
        return None if row is None else int(row["id"])

    def _path_of(self, tx: Any, image_id: int) -> str:
        row = tx.conn.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
        return str(self._resolve(row["path"])) if row is not None else "?"

    def _insert_image(self, tx: Any, path: Path, win: tuple[int, ...] | None, meta: Any) -> int:
        """The id of the (path, window) image, inserted unless it is already there."""
        stored, win_text = self._store_path(path), json.dumps(list(win)) if win else ""
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
        if state is None:
            rows = self._db.query("SELECT * FROM images ORDER BY id")
        else:
            check_state(state)
            rows = self._db.query("SELECT * FROM images WHERE state = ? ORDER BY id", (state,))
        return [image_from_row(r, self._resolve) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        rows = self._db.query("SELECT * FROM images WHERE id = ?", (int(image_id),))
        if not rows:
            raise InputError(f"no image with id {image_id} in this project; see project.images()")
        return image_from_row(rows[0], self._resolve)

    def image_path(self, image_id: int) -> Path:
        """The image file, checked to exist (:class:`InputError` naming :meth:`relink` if not)."""
        rec = self.image(image_id)
        if not Path(rec.path).is_file():
            raise InputError(f"image {image_id} is missing: {rec.path} does not exist (moved or "
                             f"deleted?); point the project at its new place with "
                             f"project.relink({image_id}, new_path)")
        return Path(rec.path)

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
        with self._db.raw() as tx:
            tx.update("images", rec.id, {"path": self._store_path(new_path),
                                         "checksum": file_checksum(new_path)})
        return self.image(image_id)

    # ----------------------------------------------------------------- runs (batch resume)
    def start_run(self, manifest: dict[str, Any]) -> int:
        with self._db.raw() as tx:
            return tx.insert("runs", {"manifest": json.dumps(manifest, sort_keys=True, default=str),
                                      "started_at": now()})

    def join_or_start_run(self, manifest: dict[str, Any]) -> tuple[int, bool]:
        """``(run_id, joined)``: the newest run whose manifest has the same ``fingerprint``, or a
        new one, decided in one transaction (two runs started at once join one run)."""
        fingerprint = manifest.get("fingerprint")
        with self._db.raw() as tx:
            for row in tx.conn.execute("SELECT id, manifest FROM runs ORDER BY id DESC"):
                if json.loads(row["manifest"]).get("fingerprint") == fingerprint:
                    return int(row["id"]), True
            return tx.insert("runs", {"manifest": json.dumps(manifest, sort_keys=True,
                                                             default=str),
                                      "started_at": now()}), False

    def finish_run(self, run_id: int) -> None:
        with self._db.raw() as tx:
            tx.update("runs", int(run_id), {"finished_at": now()})

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT * FROM runs ORDER BY id")
        return [dict(r) | {"manifest": json.loads(r["manifest"])} for r in rows]

    def mark_image_processed(self, image_id: int, run_id: int) -> None:
        with self._db.raw() as tx:
            tx.conn.execute("INSERT OR IGNORE INTO processed (image_id, run_id, at) "
                            "VALUES (?, ?, ?)", (int(image_id), int(run_id), now()))

    def processed_images(self, run_id: int) -> set[int]:
        rows = self._db.query("SELECT image_id FROM processed WHERE run_id = ?", (int(run_id),))
        return {int(r[0]) for r in rows}

    # ----------------------------------------------------------------- history / stats
    def undo(self) -> HistoryStep | None:
        """Undo the newest action: what it was and which images it changed (``str(step)`` is
        its description), or ``None`` if there is nothing to undo."""
        return _history.undo(self._db)

    def redo(self) -> HistoryStep | None:
        """Redo the oldest undone action (see :meth:`undo`), or ``None``."""
        return _history.redo(self._db)

    @property
    def can_undo(self) -> bool:
        return _history.can_undo(self._db)

    @property
    def can_redo(self) -> bool:
        return _history.can_redo(self._db)

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        return _history.history(self._db, limit)

    def stats(self) -> dict[str, Any]:
        """Review statistics (:func:`text2seg_widgets.store.stats.review_stats`) plus
        ``effort``: :meth:`effort` per class."""
        from text2seg_widgets.store.stats import review_stats

        return review_stats(self._db) | {"effort": self.effort()}

    def agreement(self) -> list[dict[str, Any]]:
        """Per accepted annotation: IoU with the candidate it came from (1.0 = not edited)."""
        from text2seg_widgets.store.stats import annotation_candidate_iou

        return annotation_candidate_iou(self._db)

    def integrity_check(self) -> str:
        return str(self._db.query("PRAGMA integrity_check")[0][0])


def _corrupt_message(folder: Path, path: Path, exc: Exception) -> str:
    found = list_backups(folder)
    where = (f"the newest backup is {found[-1]}; restore it with `text2seg-widgets project "
             f"restore {folder}` (or restore_backup({str(folder)!r}))" if found else
             f"there is no backup in {folder / BACKUP_DIR}; restore a copy of the folder")
    return (f"the project database {path} is corrupted or not a database ({exc}); backups are "
            f"kept in {folder / BACKUP_DIR}: {where}, or create a new project")


def _class_spec(spec: Any, taken: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """Normalise a class given as a name, a dict or a ClassInfo to (name, color, prompts).

    Without a colour the class gets its conventional one by name (water blue, buildings red...;
    :func:`text2seg_widgets.core.colors.class_color`), avoiding the ``taken`` colours."""
    if isinstance(spec, str):
        spec = {"name": spec}
    elif isinstance(spec, ClassInfo):
        spec = {"name": spec.name, "color": spec.color, "prompts": spec.prompts}
    elif not isinstance(spec, dict):
        raise InputError(f"a class must be a name or a dict with name/color/prompts, got {spec!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"class name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > 200 or any(ord(ch) < 32 for ch in name):
        raise InputError(f"class name {name[:40]!r} is too long or has control characters")
    color = spec.get("color") or class_color(name, taken)
    if not isinstance(color, str) or not _COLOR.match(color):
        raise InputError(f"class colour must look like '#rrggbb', got {color!r}")
    color = color.lower()
    if len(color) == 4:
        color = "#" + "".join(ch * 2 for ch in color[1:])
    prompts = spec.get("prompts") or ()
    if isinstance(prompts, str):
        prompts = (prompts,)
    prompts = tuple(str(p).strip() for p in prompts if str(p).strip())
    return name, color, prompts
