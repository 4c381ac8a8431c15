"""The annotation project: a folder holding one SQLite database (WAL) with everything that matters.

>>> p = Project.create("my-project", classes=["building", "road"])      # doctest: +SKIP
>>> img = p.add_image("tile.tif")                                         # doctest: +SKIP
>>> ids = p.add_candidates(img.id, candidates)                            # doctest: +SKIP
>>> ann_id = p.accept(ids[0]); p.undo(); p.redo()                         # doctest: +SKIP

Every user action (accept, reject, relabel, edit or add or delete a mask, set an image's state,
add/remove a class) is one transaction, committed before the method returns, and recorded in a
history that undo/redo replay (it survives closing and reopening). Pipeline writes (candidates,
runs) are transactions too but are not undoable. See :mod:`.db` and :mod:`.history`.

The project is composed, not inherited: it opens the database and builds small parts around it,
each given what it needs (the Annotator is built the same way):

* :attr:`Project.catalog` (:class:`~.images.Images`), :attr:`Project.class_table`
  (:class:`~.classes.Classes`), :attr:`Project.states` (:class:`~.states.States`),
  :attr:`Project.review` (:class:`~.review.Review`: candidates and annotations),
  :attr:`Project.navigation`, :attr:`Project.timing` (:class:`~.effort.Effort`),
  :attr:`Project.undo_log` (:class:`~.history.History`), :attr:`Project.batch_runs`
  (:class:`~.runs.Runs`), :attr:`Project.backup_store` (:class:`~.backup.Backups`),
  :attr:`Project.claims` (:class:`~.claims.Claims`).

The methods of :class:`Project` below are its public API, each handing the call to the part that
owns it (the SQL lives in the parts).
"""

from __future__ import annotations

import getpass
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from text2seg_widgets.core.candidate import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.actor import Actor
from text2seg_widgets.store.adding import ImageBatch
from text2seg_widgets.store.backup import (APP, BACKUP_DIR, Backups, backup_stamp, copy_database, list_backups,
                                           list_set_aside)
from text2seg_widgets.store.claims import Claims
from text2seg_widgets.store.classes import Classes, class_spec
from text2seg_widgets.store.db import DB_NAME, Database, now
from text2seg_widgets.store.effort import Effort
from text2seg_widgets.store.history import History, HistoryStep
from text2seg_widgets.store.images import Images
from text2seg_widgets.store.navigation import Navigation
from text2seg_widgets.store.records import (AnnotationRecord, CandidateRecord, ClassInfo, ImageRecord,
                                            ImageSummary, MaskRow)
from text2seg_widgets.store.review import Review
from text2seg_widgets.store.runs import Runs
from text2seg_widgets.store.schema import MIGRATIONS, migrate
from text2seg_widgets.store.sessions import SessionLock
from text2seg_widgets.store.states import States

__all__ = ["Project", "DB_NAME"]

log = logging.getLogger(__name__)


def _default_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return None


class Project:
    """An open annotation project. Build with :meth:`create` or :meth:`open`; :meth:`close` it."""

    def __init__(self, folder: Path, db: Database, *, user: str | None = None,
                 session: SessionLock | None = None) -> None:
        self.folder = folder
        self._db = db
        self._session = session
        self.actor = Actor(user if user is not None else _default_user())
        self.backup_store = Backups(db, folder)
        self.catalog = Images(db, folder)
        self.class_table = Classes(db, self.actor, self.backup_store)
        self.states = States(db, self.actor, self.catalog)
        self.navigation = Navigation(db, self.catalog)
        self.timing = Effort(db, self.catalog)
        self.review = Review(db, self.actor, self.catalog, self.class_table, self.states,
                             self.backup_store)
        self.undo_log = History(db)
        self.batch_runs = Runs(db)
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
            specs.append(class_spec(spec, [color for _, color, _ in specs]))
        session = SessionLock(folder)
        db = Database(folder / DB_NAME, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
        migrate(db.conn)
        project = cls(folder, db, user=user, session=session)
        with db.raw() as tx:
            for key, value in (("app", APP), ("created_at", now())):
                tx.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            for name, color, prompts in specs:
                project.class_table.insert(tx, name, color, prompts)
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
            aside = sorted(list_set_aside(folder) + list_backups(folder), key=lambda f: f.stat().st_mtime)
            if aside:  # a project whose database went missing (an old, interrupted restore)
                raise InputError(f"{folder} has no {DB_NAME}, but it holds {len(aside)} earlier "
                                 f"database(s), the newest {aside[-1]}; put one back with "
                                 f"`text2seg-widgets project restore {folder} {aside[-1]}` (see "
                                 "`project restore --list`)")
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
    def user(self) -> str | None:
        """Who this session's writes are recorded as when an action names nobody."""
        return self.actor.user

    @user.setter
    def user(self, value: str | None) -> None:
        self.actor.user = value

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def project_id(self) -> str:
        """The project's identity (random, given at creation; backups keep it)."""
        return self.backup_store.project_id

    @property
    def schema_version(self) -> int:
        return int(self._db.query("PRAGMA user_version")[0][0])

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


    # ----------------------------------------------------------------- images (Images)
    def add_image(self, path: str | Path, *, window: Sequence[int] | None = None,
                  user: str | None = None, allow_duplicates: bool = False) -> ImageRecord:
        """(see :meth:`.images.Images.add_image`)"""
        return self.catalog.add_image(path, window=window, user=user,
                                      allow_duplicates=allow_duplicates)

    def add_images(self, paths: Iterable[str | Path]) -> list[ImageRecord]:
        """(see :meth:`.images.Images.add_images`)"""
        return self.catalog.add_images(paths)

    def add_images_checked(self, paths: Iterable[str | Path], *, strict: bool = False,
                           tile: int | None = None, allow_duplicates: bool = False) -> ImageBatch:
        """(see :meth:`.images.Images.add_images_checked`)"""
        return self.catalog.add_images_checked(paths, strict=strict, tile=tile,
                                               allow_duplicates=allow_duplicates)

    def images(self, state: str | None = None) -> list[ImageRecord]:
        """(see :meth:`.images.Images.images`)"""
        return self.catalog.images(state)

    def image(self, image_id: int) -> ImageRecord:
        """(see :meth:`.images.Images.image`)"""
        return self.catalog.image(image_id)

    def image_path(self, image_id: int) -> Path:
        """(see :meth:`.images.Images.image_path`)"""
        return self.catalog.image_path(image_id)

    def missing_images(self) -> list[ImageRecord]:
        """(see :meth:`.images.Images.missing_images`)"""
        return self.catalog.missing_images()

    def relink(self, image_id: int, new_path: str | Path, *, check: bool = True) -> ImageRecord:
        """(see :meth:`.images.Images.relink`)"""
        return self.catalog.relink(image_id, new_path, check=check)

    # ----------------------------------------------------------------- classes (Classes)
    @property
    def classes(self) -> list[ClassInfo]:
        return self.class_table.all()

    def class_info(self, name_or_id: str | int) -> ClassInfo:
        """(see :meth:`.classes.Classes.class_info`)"""
        return self.class_table.class_info(name_or_id)

    def add_class(self, name: str, color: str | None = None, prompts: Sequence[str] = (), *,
                  user: str | None = None) -> ClassInfo:
        """(see :meth:`.classes.Classes.add_class`)"""
        return self.class_table.add_class(name, color, prompts, user=user)

    def update_class(self, name_or_id: str | int, *, name: str | None = None,
                     color: str | None = None, prompts: Sequence[str] | None = None,
                     user: str | None = None) -> ClassInfo:
        """(see :meth:`.classes.Classes.update_class`)"""
        return self.class_table.update_class(name_or_id, name=name, color=color, prompts=prompts,
                                             user=user)

    def remove_class(self, name_or_id: str | int, *, cascade: bool = False,
                     user: str | None = None) -> None:
        """(see :meth:`.classes.Classes.remove_class`)"""
        return self.class_table.remove_class(name_or_id, cascade=cascade, user=user)

    # ----------------------------------------------------------------- image states (States)
    def set_state(self, image_id: int, state: str, user: str | None = None) -> None:
        """Set an image's review state (one undoable action). (see :meth:`.states.States.set_state`)"""
        return self.states.set_state(image_id, state, user)

    def finish_image(self, image_id: int, *, rest: str = "require", user: str | None = None) -> int:
        """(see :meth:`.states.States.finish_image`)"""
        return self.states.finish_image(image_id, rest=rest, user=user)

    def skip_image(self, image_id: int, *, reason: str = "", user: str | None = None) -> None:
        """(see :meth:`.states.States.skip_image`)"""
        return self.states.skip_image(image_id, reason=reason, user=user)

    # ----------------------------------------------------------------- navigation (Navigation)
    def image_summaries(self, filter: str | None = None) -> list[ImageSummary]:
        """(see :meth:`.navigation.Navigation.image_summaries`)"""
        return self.navigation.image_summaries(filter)

    def find_image(self, key: int | str) -> ImageRecord:
        """(see :meth:`.navigation.Navigation.find_image`)"""
        return self.navigation.find_image(key)

    def next_image(self, after: int | None = None, filter: str | None = None, *,
                   state: str | None = None) -> ImageRecord | None:
        """(see :meth:`.navigation.Navigation.next_image`)"""
        return self.navigation.next_image(after, filter, state=state)

    def previous_image(self, before: int | None = None, filter: str | None = None, *,
                       state: str | None = None) -> ImageRecord | None:
        """(see :meth:`.navigation.Navigation.previous_image`)"""
        return self.navigation.previous_image(before, filter, state=state)

    # ----------------------------------------------------------------- effort (Effort)
    def add_time(self, image_id: int, seconds: float) -> None:
        """(see :meth:`.effort.Effort.add_time`)"""
        return self.timing.add_time(image_id, seconds)

    def image_seconds(self, image_id: int) -> float:
        """(see :meth:`.effort.Effort.image_seconds`)"""
        return self.timing.image_seconds(image_id)

    def effort(self) -> list[dict[str, Any]]:
        """(see :meth:`.effort.Effort.effort`)"""
        return self.timing.effort()

    # ----------------------------------------------------------------- candidates and annotations (Review)
    def add_candidates(self, image_id: int, candidates: Iterable[Candidate],
                       run_id: int | None = None, *, replace: bool = False,
                       mark_processed: bool = False) -> list[int]:
        """(see :meth:`.review.Review.add_candidates`)"""
        return self.review.add_candidates(image_id, candidates, run_id, replace=replace,
                                          mark_processed=mark_processed)

    def candidates(self, image_id: int | None = None,
                   status: str | None = None) -> list[CandidateRecord]:
        """(see :meth:`.review.Review.candidates`)"""
        return self.review.candidates(image_id, status)

    def mask_rows(self, image_id: int) -> list[MaskRow]:
        """(see :meth:`.review.Review.mask_rows`)"""
        return self.review.mask_rows(image_id)

    def candidate(self, candidate_id: int) -> CandidateRecord:
        """(see :meth:`.review.Review.candidate`)"""
        return self.review.candidate(candidate_id)

    def accept(self, candidate_id: int, class_name: str | None = None,
               user: str | None = None) -> int:
        """(see :meth:`.review.Review.accept`)"""
        return self.review.accept(candidate_id, class_name, user)

    def accept_above(self, image_id: int, min_score: float, user: str | None = None) -> list[int]:
        """(see :meth:`.review.Review.accept_above`)"""
        return self.review.accept_above(image_id, min_score, user)

    def accept_many(self, candidate_ids: Sequence[int], description: str | None = None,
                    user: str | None = None) -> list[int]:
        """(see :meth:`.review.Review.accept_many`)"""
        return self.review.accept_many(candidate_ids, description, user)

    def reject(self, candidate_id: int, user: str | None = None) -> None:
        """(see :meth:`.review.Review.reject`)"""
        return self.review.reject(candidate_id, user)

    def annotations(self, image_id: int | None = None) -> list[AnnotationRecord]:
        """(see :meth:`.review.Review.annotations`)"""
        return self.review.annotations(image_id)

    def annotation(self, annotation_id: int) -> AnnotationRecord:
        """(see :meth:`.review.Review.annotation`)"""
        return self.review.annotation(annotation_id)

    def add_annotation(self, image_id: int, mask: Any, class_name: str, source: str = "manual",
                       score: float = 1.0, user: str | None = None, *, actions: int = 1) -> int:
        """(see :meth:`.review.Review.add_annotation`)"""
        return self.review.add_annotation(image_id, mask, class_name, source, score, user,
                                          actions=actions)

    def add_annotations(self, items: Iterable[dict[str, Any]], description: str | None = None,
                        user: str | None = None) -> list[int]:
        """(see :meth:`.review.Review.add_annotations`)"""
        return self.review.add_annotations(items, description, user)

    def update_annotation_mask(self, annotation_id: int, mask: Any, user: str | None = None, *,
                               expected: AnnotationRecord | None = None, actions: int = 1) -> None:
        """(see :meth:`.review.Review.update_annotation_mask`)"""
        return self.review.update_annotation_mask(annotation_id, mask, user, expected=expected,
                                                  actions=actions)

    def relabel(self, annotation_id: int, class_name: str, user: str | None = None, *,
                expected: AnnotationRecord | None = None) -> None:
        """(see :meth:`.review.Review.relabel`)"""
        return self.review.relabel(annotation_id, class_name, user, expected=expected)

    def delete_annotation(self, annotation_id: int, user: str | None = None, *,
                          expected: AnnotationRecord | None = None) -> None:
        """(see :meth:`.review.Review.delete_annotation`)"""
        return self.review.delete_annotation(annotation_id, user, expected=expected)

    # ----------------------------------------------------------------- undo / redo (History)
    def undo(self) -> HistoryStep | None:
        """(see :meth:`.history.History.undo`)"""
        return self.undo_log.undo()

    def redo(self) -> HistoryStep | None:
        """(see :meth:`.history.History.redo`)"""
        return self.undo_log.redo()

    @property
    def can_undo(self) -> bool:
        return self.undo_log.can_undo

    @property
    def can_redo(self) -> bool:
        return self.undo_log.can_redo

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """(see :meth:`.history.History.entries`)"""
        return self.undo_log.entries(limit)

    # ----------------------------------------------------------------- batch runs (Runs)
    def start_run(self, manifest: dict[str, Any]) -> int:
        """(see :meth:`.runs.Runs.start`)"""
        return self.batch_runs.start(manifest)

    def join_or_start_run(self, manifest: dict[str, Any]) -> tuple[int, bool]:
        """(see :meth:`.runs.Runs.join_or_start`)"""
        return self.batch_runs.join_or_start(manifest)

    def finish_run(self, run_id: int) -> None:
        """(see :meth:`.runs.Runs.finish`)"""
        return self.batch_runs.finish(run_id)

    def runs(self) -> list[dict[str, Any]]:
        """(see :meth:`.runs.Runs.all`)"""
        return self.batch_runs.all()

    def mark_image_processed(self, image_id: int, run_id: int) -> None:
        """(see :meth:`.runs.Runs.mark_processed`)"""
        return self.batch_runs.mark_processed(image_id, run_id)

    def processed_images(self, run_id: int) -> set[int]:
        """(see :meth:`.runs.Runs.processed`)"""
        return self.batch_runs.processed(run_id)

    # ----------------------------------------------------------------- backups (Backups)
    def backup(self, dest: str | Path | None = None) -> Path:
        """(see :meth:`.backup.Backups.backup`)"""
        return self.backup_store.backup(dest)

    def backups(self) -> list[Path]:
        """This project's backups, oldest first. (see :meth:`.backup.Backups.all`)"""
        return self.backup_store.all()

    @property
    def backups_folder(self) -> Path:
        return self.backup_store.backups_folder

    @property
    def keep_backups(self) -> int:
        """How many automatic backups are kept (0: none are taken)."""
        return self.backup_store.keep_backups

    @keep_backups.setter
    def keep_backups(self, value: int) -> None:
        self.backup_store.keep_backups = value

    def auto_backup(self, reason: str) -> Path | None:
        """(see :meth:`.backup.Backups.auto_backup`)"""
        return self.backup_store.auto_backup(reason)

def _corrupt_message(folder: Path, path: Path, exc: Exception) -> str:
    found = list_backups(folder)
    where = (f"the newest backup is {found[-1]}; restore it with `text2seg-widgets project "
             f"restore {folder}` (or restore_backup({str(folder)!r}))" if found else
             f"there is no backup in {folder / BACKUP_DIR}; restore a copy of the folder")
    return (f"the project database {path} is corrupted or not a database ({exc}); backups are "
            f"kept in {folder / BACKUP_DIR}: {where}, or create a new project")
