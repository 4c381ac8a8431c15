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
from text2seg_widgets.store.backup import APP, BACKUP_DIR, Backups, backup_stamp, copy_database, list_backups
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
        return str(self._db.query("SELECT value FROM meta WHERE key = 'project_id'")[0][0])

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
        """Add an image (or a ``(col, row, width, height)`` window of a big scene).

        Adding the same file and window again returns the existing record; so does adding a copy
        of a project image (same sha256) under another path, with a warning, unless
        ``allow_duplicates``. A missing, empty, unreadable or truncated file raises
        :class:`InputError` saying which."""
        return self.catalog.add_image(path, window=window, user=user,
                                      allow_duplicates=allow_duplicates)

    def add_images(self, paths: Iterable[str | Path]) -> list[ImageRecord]:
        """Add several files, each as :meth:`add_image` (the first bad file raises, after the
        ones before it were added). To add the good files of a folder and get each bad one
        with its reason, use :meth:`add_images_checked`."""
        return self.catalog.add_images(paths)

    def add_images_checked(self, paths: Iterable[str | Path], *, strict: bool = False,
                           tile: int | None = None, allow_duplicates: bool = False) -> ImageBatch:
        """Add the readable files of ``paths`` and report the others (see the module doc).

        ``tile``: add each file as windows of at most this many pixels instead of whole. A file
        whose bytes the project (or this batch) already holds under another path is skipped and
        listed in ``duplicates`` unless ``allow_duplicates``."""
        return self.catalog.add_images_checked(paths, strict=strict, tile=tile,
                                               allow_duplicates=allow_duplicates)

    def images(self, state: str | None = None) -> list[ImageRecord]:
        return self.catalog.images(state)

    def image(self, image_id: int) -> ImageRecord:
        return self.catalog.image(image_id)

    def image_path(self, image_id: int) -> Path:
        """The image file, checked to exist (:class:`InputError` naming :meth:`relink` if not)."""
        return self.catalog.image_path(image_id)

    def missing_images(self) -> list[ImageRecord]:
        return self.catalog.missing_images()

    def relink(self, image_id: int, new_path: str | Path, *, check: bool = True) -> ImageRecord:
        """Point image ``image_id`` at a moved file. With ``check`` the file must have the same
        checksum (same bytes) as the one that was added; pass ``check=False`` to accept any file
        of the same size."""
        return self.catalog.relink(image_id, new_path, check=check)

    # ----------------------------------------------------------------- classes (Classes)
    @property
    def classes(self) -> list[ClassInfo]:
        return self.class_table.all()

    def class_info(self, name_or_id: str | int) -> ClassInfo:
        return self.class_table.class_info(name_or_id)

    def add_class(self, name: str, color: str | None = None, prompts: Sequence[str] = (), *,
                  user: str | None = None) -> ClassInfo:
        return self.class_table.add_class(name, color, prompts, user=user)

    def update_class(self, name_or_id: str | int, *, name: str | None = None,
                     color: str | None = None, prompts: Sequence[str] | None = None,
                     user: str | None = None) -> ClassInfo:
        return self.class_table.update_class(name_or_id, name=name, color=color, prompts=prompts,
                                             user=user)

    def remove_class(self, name_or_id: str | int, *, cascade: bool = False,
                     user: str | None = None) -> None:
        """Remove a class. Its proposed/rejected candidates go with it; annotations only with
        ``cascade=True`` (otherwise :class:`InputError`). Undoable, and an automatic backup is
        taken first (see :mod:`.backup`)."""
        return self.class_table.remove_class(name_or_id, cascade=cascade, user=user)

    # ----------------------------------------------------------------- image states (States)
    def set_state(self, image_id: int, state: str, user: str | None = None) -> None:
        """Set an image's review state (one undoable action).

        ``done`` is refused with :class:`UnreviewedError` while candidates on the image are
        still proposed; see :meth:`finish_image` and :meth:`skip_image`."""
        return self.states.set_state(image_id, state, user)

    def finish_image(self, image_id: int, *, rest: str = "require", user: str | None = None) -> int:
        """Mark the image done; return how many proposed candidates were rejected to do so.

        ``rest="require"``: every candidate must already be reviewed (else
        :class:`UnreviewedError`, nothing changed). ``rest="reject"``: the proposed candidates
        left are rejected and the image marked done in ONE undoable action."""
        return self.states.finish_image(image_id, rest=rest, user=user)

    def skip_image(self, image_id: int, *, reason: str = "", user: str | None = None) -> None:
        """Mark the image ``skipped`` (left out of exports by default), with an optional reason;
        one undoable action. Its candidates keep their review state."""
        return self.states.skip_image(image_id, reason=reason, user=user)

    # ----------------------------------------------------------------- navigation (Navigation)
    def image_summaries(self, filter: str | None = None) -> list[ImageSummary]:
        """One :class:`ImageSummary` per image matching ``filter`` (see the module doc), by id."""
        return self.navigation.image_summaries(filter)

    def find_image(self, key: int | str) -> ImageRecord:
        """The image with this id (an int, or a string of digits that is not a file name), file
        name (``tile_03.png``) or stem (``tile_03``); names must be unique. :class:`InputError`
        listing close matches when nothing (or more than one) matches."""
        return self.navigation.find_image(key)

    def next_image(self, after: int | None = None, filter: str | None = None, *,
                   state: str | None = None) -> ImageRecord | None:
        """The first image after ``after`` (by id, wrapping around, never ``after`` itself) that
        matches ``filter``; ``None`` when none does. ``state=`` is the older name of ``filter``."""
        return self.navigation.next_image(after, filter, state=state)

    def previous_image(self, before: int | None = None, filter: str | None = None, *,
                       state: str | None = None) -> ImageRecord | None:
        """Like :meth:`next_image`, backwards: the last matching image before ``before``."""
        return self.navigation.previous_image(before, filter, state=state)

    # ----------------------------------------------------------------- effort (Effort)
    def add_time(self, image_id: int, seconds: float) -> None:
        """Add ``seconds`` (finite, >= 0) to the time spent on an image. Not an undo step."""
        return self.timing.add_time(image_id, seconds)

    def image_seconds(self, image_id: int) -> float:
        return self.timing.image_seconds(image_id)

    def effort(self) -> list[dict[str, Any]]:
        """Per class (class-id order, classes with no object included): ``class_name``,
        ``accepted_unchanged``, ``corrected``, ``drawn``, ``median_seconds_per_object`` (None
        without recorded time) and ``median_actions_per_object`` (None without objects)."""
        return self.timing.effort()

    # ----------------------------------------------------------------- candidates and annotations (Review)
    def add_candidates(self, image_id: int, candidates: Iterable[Candidate],
                       run_id: int | None = None, *, replace: bool = False,
                       mark_processed: bool = False) -> list[int]:
        """Store proposals for one image; returns their ids. Never touches annotations.

        ``mark_processed`` also records (image, ``run_id``) as done in the same transaction, so a
        killed batch run resumes exactly after the last image whose candidates were saved."""
        return self.review.add_candidates(image_id, candidates, run_id, replace=replace,
                                          mark_processed=mark_processed)

    def candidates(self, image_id: int | None = None,
                   status: str | None = None) -> list[CandidateRecord]:
        return self.review.candidates(image_id, status)

    def mask_rows(self, image_id: int) -> list[MaskRow]:
        """The image's drawable masks in one light read (no JSON decoded, no records built):
        candidates not accepted (proposed and rejected; an accepted one is drawn as its
        annotation), then annotations, each in id order. For displays that redraw often."""
        return self.review.mask_rows(image_id)

    def candidate(self, candidate_id: int) -> CandidateRecord:
        return self.review.candidate(candidate_id)

    def accept(self, candidate_id: int, class_name: str | None = None,
               user: str | None = None) -> int:
        """Accept a candidate (optionally as another class); returns the new annotation's id."""
        return self.review.accept(candidate_id, class_name, user)

    def accept_above(self, image_id: int, min_score: float, user: str | None = None) -> list[int]:
        """Accept every proposed candidate of the image scoring at least ``min_score``, as one
        undoable action; returns the new annotation ids (highest score first)."""
        return self.review.accept_above(image_id, min_score, user)

    def accept_many(self, candidate_ids: Sequence[int], description: str | None = None,
                    user: str | None = None) -> list[int]:
        """Accept the given candidates as ONE undoable action (e.g. "accept all above the
        calibrated threshold"); returns the new annotation ids in the order given. When they lie
        on more than one image an automatic backup is taken first (see :mod:`.backup`)."""
        return self.review.accept_many(candidate_ids, description, user)

    def reject(self, candidate_id: int, user: str | None = None) -> None:
        return self.review.reject(candidate_id, user)

    def annotations(self, image_id: int | None = None) -> list[AnnotationRecord]:
        return self.review.annotations(image_id)

    def annotation(self, annotation_id: int) -> AnnotationRecord:
        return self.review.annotation(annotation_id)

    def add_annotation(self, image_id: int, mask: Any, class_name: str, source: str = "manual",
                       score: float = 1.0, user: str | None = None, *, actions: int = 1) -> int:
        """Add a hand-made mask (array or COCO RLE in the image's pixels); returns its id.

        Effort: origin ``drawn`` with ``edit_actions = actions`` (the clicks/boxes/polygons it
        took); ``source="import"`` makes it ``imported`` (0 actions)."""
        return self.review.add_annotation(image_id, mask, class_name, source, score, user,
                                          actions=actions)

    def add_annotations(self, items: Iterable[dict[str, Any]], description: str | None = None,
                        user: str | None = None) -> list[int]:
        """Add many masks as ONE undoable action (e.g. an import). Each item: ``image_id``,
        ``mask`` (array or RLE), ``class_name``, optional ``source`` (default ``import``) and
        ``score``. Empty masks are skipped."""
        return self.review.add_annotations(items, description, user)

    def update_annotation_mask(self, annotation_id: int, mask: Any, user: str | None = None, *,
                               expected: AnnotationRecord | None = None, actions: int = 1) -> None:
        """Replace an annotation's mask (bbox and area follow). An empty mask is refused.

        ``expected``: the record the edit started from; if the stored annotation differs (another
        session edited it meanwhile) :class:`ConflictError` is raised instead of overwriting.
        Effort: ``edit_actions += actions`` (clicks/boxes/polygon edits of this refinement); the
        origin becomes ``corrected`` unless the annotation was ``drawn``."""
        return self.review.update_annotation_mask(annotation_id, mask, user, expected=expected,
                                                  actions=actions)

    def relabel(self, annotation_id: int, class_name: str, user: str | None = None, *,
                expected: AnnotationRecord | None = None) -> None:
        """Give an annotation another class (one edit action: a proposal becomes
        ``corrected``); relabelling to its own class costs no effort."""
        return self.review.relabel(annotation_id, class_name, user, expected=expected)

    def delete_annotation(self, annotation_id: int, user: str | None = None, *,
                          expected: AnnotationRecord | None = None) -> None:
        return self.review.delete_annotation(annotation_id, user, expected=expected)

    # ----------------------------------------------------------------- undo / redo (History)
    def undo(self) -> HistoryStep | None:
        return self.undo_log.undo()

    def redo(self) -> HistoryStep | None:
        return self.undo_log.redo()

    @property
    def can_undo(self) -> bool:
        return self.undo_log.can_undo

    @property
    def can_redo(self) -> bool:
        return self.undo_log.can_redo

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.undo_log.entries(limit)

    # ----------------------------------------------------------------- batch runs (Runs)
    def start_run(self, manifest: dict[str, Any]) -> int:
        return self.batch_runs.start(manifest)

    def join_or_start_run(self, manifest: dict[str, Any]) -> tuple[int, bool]:
        """``(run_id, joined)``: the newest run whose manifest has the same ``fingerprint``, or a
        new one, decided in one transaction (two runs started at once join one run)."""
        return self.batch_runs.join_or_start(manifest)

    def finish_run(self, run_id: int) -> None:
        return self.batch_runs.finish(run_id)

    def runs(self) -> list[dict[str, Any]]:
        return self.batch_runs.all()

    def mark_image_processed(self, image_id: int, run_id: int) -> None:
        return self.batch_runs.mark_processed(image_id, run_id)

    def processed_images(self, run_id: int) -> set[int]:
        return self.batch_runs.processed(run_id)

    # ----------------------------------------------------------------- backups (Backups)
    def backup(self, dest: str | Path | None = None) -> Path:
        """A consistent copy of the database (SQLite online backup) at ``dest`` (a file, or a
        folder to put it in); default ``<project>/backups/backup-<time>.sqlite``."""
        return self.backup_store.backup(dest)

    def backups(self) -> list[Path]:
        """This project's backups, oldest first."""
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
        """A rolling automatic backup before a bulk or destructive action (``None`` when turned
        off); the oldest automatic backups beyond :attr:`keep_backups` are deleted."""
        return self.backup_store.auto_backup(reason)


def _corrupt_message(folder: Path, path: Path, exc: Exception) -> str:
    found = list_backups(folder)
    where = (f"the newest backup is {found[-1]}; restore it with `text2seg-widgets project "
             f"restore {folder}` (or restore_backup({str(folder)!r}))" if found else
             f"there is no backup in {folder / BACKUP_DIR}; restore a copy of the folder")
    return (f"the project database {path} is corrupted or not a database ({exc}); backups are "
            f"kept in {folder / BACKUP_DIR}: {where}, or create a new project")
