"""The annotation project: a folder holding one SQLite database (WAL), or a PostgreSQL database
shared by a team (a ``postgresql://`` URL), with everything that matters.

>>> p = Project.create("my-project", classes=["building", "road"])      # doctest: +SKIP
>>> team = Project.open("postgresql://anna@db.example.org/roofs")         # doctest: +SKIP
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
owns it (the SQL lives in the parts, written once for both databases: see :mod:`.db`).

A team project keeps the same guarantees. What differs: image paths are stored relative to an
image root each machine maps (``image_root=`` or ``TEXT2SEG_IMAGE_ROOT``; without one they are
stored absolute), and :attr:`Project.folder` is this machine's workspace for the project (run
logs, backups: ``$TEXT2SEG_HOME/projects/<project id>``, by default under
``~/.local/share/text2seg-widgets``). Every write records its user: ``user=``, else
``TEXT2SEG_USER``, else the login name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from text2seg_widgets.core.candidate import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.actor import Actor, default_user
from text2seg_widgets.store.adding import ImageBatch
from text2seg_widgets.store.agreement import Agreement
from text2seg_widgets.store.assignments import Assignments
from text2seg_widgets.store.backup import (APP, BACKUP_DIR, Backups, backup_stamp, copy_database, list_backups,
                                           list_set_aside)
from text2seg_widgets.store.claims import Claims
from text2seg_widgets.store.classes import Classes, class_spec
from text2seg_widgets.store.db import DB_NAME, Database, DatabaseError, is_url, now, redact
from text2seg_widgets.store.effort import Effort
from text2seg_widgets.store.history import History, HistoryStep
from text2seg_widgets.store.images import Images
from text2seg_widgets.store.navigation import Navigation
from text2seg_widgets.store.people import People
from text2seg_widgets.store.records import (AnnotationRecord, CandidateRecord, ClassInfo, ImageRecord,
                                            ImageSummary, MaskRow)
from text2seg_widgets.store.review import Review
from text2seg_widgets.store.reviewstage import ReviewStage
from text2seg_widgets.store.runs import Runs
from text2seg_widgets.store.schema import latest_version, migrate, schema_version
from text2seg_widgets.store.sessions import SessionLock
from text2seg_widgets.store.states import States

__all__ = ["Project", "DB_NAME"]

log = logging.getLogger(__name__)


#: The tables of a project database (a non-empty database without them is not a project).
PROJECT_TABLES = ("meta", "classes", "images", "candidates", "annotations")


def _check_scheme(location: str | Path) -> None:
    """A URL that is not PostgreSQL's is an error, not a folder name."""
    if isinstance(location, str) and "://" in location and not is_url(location):
        raise InputError(f"{location.split('://', 1)[0]}:// is not a project location; give a "
                         "folder (one person, SQLite) or postgresql://USER@HOST:PORT/DATABASE "
                         "(a team project)")


def team_workspace(project_id: str) -> Path:
    """This machine's folder for a team project (run logs, backups)."""
    base = os.environ.get("TEXT2SEG_HOME") or str(Path.home() / ".local" / "share" / "text2seg-widgets")
    return Path(base) / "projects" / project_id


def image_root_from(image_root: str | Path | None) -> Path | None:
    """The image root of a team project on this machine: ``image_root``, else
    ``TEXT2SEG_IMAGE_ROOT``, else none (paths stored absolute)."""
    value = image_root if image_root is not None else os.environ.get("TEXT2SEG_IMAGE_ROOT")
    return Path(value).expanduser().absolute() if value else None


class Project:
    """An open annotation project. Build with :meth:`create` or :meth:`open`; :meth:`close` it."""

    def __init__(self, folder: Path, db: Database, *, user: str | None = None,
                 session: SessionLock | None = None, url: str | None = None,
                 image_root: Path | None = None) -> None:
        self.folder = folder
        self._db = db
        self._session = session
        self._url = url
        self.actor = Actor(user if user is not None else default_user())
        self.backup_store = Backups(db, folder, url=url)
        self.catalog = (Images(db, folder) if url is None else
                        Images(db, image_root, root_name="image root (TEXT2SEG_IMAGE_ROOT)"))
        self.class_table = Classes(db, self.actor, self.backup_store)
        self.states = States(db, self.actor, self.catalog)
        self.navigation = Navigation(db, self.catalog, self.actor)
        self.timing = Effort(db, self.catalog)
        self.review = Review(db, self.actor, self.catalog, self.class_table, self.states,
                             self.backup_store)
        self.undo_log = History(db, self.actor)
        self.batch_runs = Runs(db, self.actor)
        self.claims = Claims(db)
        self.people = People(db, self.actor)
        self.assignments = Assignments(db, self.actor, self.people, self.catalog)
        self.review_stage = ReviewStage(db, self.actor, self.people, self.catalog)
        self.agreement_measures = Agreement(db, self.actor)
        db.guard = self.people.guard

    # ----------------------------------------------------------------- open / create
    @classmethod
    def create(cls, folder: str | Path, classes: Iterable[Any] = (), *,
               user: str | None = None, synchronous: str = "FULL",
               busy_timeout_s: float = 10.0, image_root: str | Path | None = None) -> "Project":
        """Create a new project in ``folder`` (created if missing; must not hold a project), or,
        given a ``postgresql://`` URL, a team project in that database (created on the server if
        missing; it must be empty).

        ``synchronous="NORMAL"`` trades power-cut durability of the last actions for speed
        (a killed process still loses nothing; SQLite only); ``busy_timeout_s``: how long a write
        waits for another process's write lock (then retried a few times before
        :class:`~.db.ProjectBusyError`); see :class:`~.db.Database`. ``image_root``: see the
        module doc (team projects)."""
        _check_scheme(folder)
        specs: list[tuple[str, str, tuple[str, ...]]] = []
        for spec in classes:
            specs.append(class_spec(spec, [color for _, color, _ in specs]))
        if is_url(folder):
            return cls._create_team(str(folder), specs, user=user, busy_timeout_s=busy_timeout_s,
                                    image_root=image_root)
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
        session = SessionLock(folder)
        db = Database.sqlite(folder / DB_NAME, synchronous=synchronous,
                             busy_timeout_s=busy_timeout_s)
        migrate(db)
        project = cls(folder, db, user=user, session=session)
        project._fill_new(specs)
        return project

    @classmethod
    def _create_team(cls, url: str, specs: list[tuple[str, str, tuple[str, ...]]], *,
                     user: str | None, busy_timeout_s: float,
                     image_root: str | Path | None) -> "Project":
        from text2seg_widgets.store.pgconnect import MissingDatabaseError, create_database

        try:
            db = Database.postgresql(url, busy_timeout_s=busy_timeout_s)
        except MissingDatabaseError:  # make it (through the server's maintenance database)
            create_database(url)
            db = Database.postgresql(url, busy_timeout_s=busy_timeout_s)
        try:
            tables = db.tables()
            if "meta" in tables:
                raise InputError(f"{db.label} already holds a project; open it with "
                                 "Project.open(URL), or name another database")
            if tables:
                raise InputError(f"{db.label} holds other tables ({', '.join(sorted(tables)[:5])}); "
                                 "a team project needs a database of its own: name a new one")
            migrate(db)
            project = cls._team(url, db, user=user, image_root=image_root)
            project._fill_new(specs)
            return project
        except BaseException:
            db.close()
            raise

    @classmethod
    def _team(cls, url: str, db: Database, *, user: str | None,
              image_root: str | Path | None) -> "Project":
        rows = db.query("SELECT value FROM meta WHERE key = 'project_id'")
        folder = team_workspace(str(rows[0][0]))
        return cls(folder, db, user=user, url=url, image_root=image_root_from(image_root))

    def _fill_new(self, specs: list[tuple[str, str, tuple[str, ...]]]) -> None:
        with self._db.raw() as tx:
            for key, value in (("app", APP), ("created_at", now())):
                tx.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            for name, color, prompts in specs:
                self.class_table.insert(tx, name, color, prompts)

    @classmethod
    def open(cls, folder: str | Path, *, user: str | None = None,
             synchronous: str = "FULL", busy_timeout_s: float = 10.0,
             image_root: str | Path | None = None) -> "Project":
        """Open an existing project (folder, its ``project.sqlite``, or a team project's
        ``postgresql://`` URL); migrates old schemas."""
        _check_scheme(folder)
        if is_url(folder):
            return cls._open_team(str(folder), user=user, busy_timeout_s=busy_timeout_s,
                                  image_root=image_root)
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
    def _open_team(cls, url: str, *, user: str | None, busy_timeout_s: float,
                   image_root: str | Path | None) -> "Project":
        db = Database.postgresql(url, busy_timeout_s=busy_timeout_s)
        try:
            if "meta" not in db.tables() or not db.query(
                    "SELECT 1 FROM meta WHERE key = 'app' AND value = ?", (APP,)):
                raise InputError(f"{db.label} is a PostgreSQL database but not a text2seg project; "
                                 "create one with Project.create(URL, classes=[...]) in a new "
                                 "database")
            try:
                before = migrate(db)
            except DatabaseError as exc:
                raise InputError(f"could not upgrade the project {db.label} to this version's "
                                 f"schema ({exc.orig}); the project was left unchanged") from exc
            if before < latest_version():
                log.info("migrated %s from schema %d to %d", db.label, before, latest_version())
            return cls._team(url, db, user=user, image_root=image_root)
        except BaseException:
            db.close()
            raise

    @classmethod
    def _open_locked(cls, folder: Path, path: Path, session: SessionLock, *, user: str | None,
                     synchronous: str, busy_timeout_s: float) -> "Project":
        try:
            db = Database.sqlite(path, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
            tables = db.tables()
        except DatabaseError as exc:
            raise InputError(_corrupt_message(folder, path, exc)) from exc
        if "meta" not in tables or not db.query("SELECT 1 FROM meta WHERE key = 'app' AND "
                                                "value = ?", (APP,)):
            db.close()
            raise InputError(f"{path} is an SQLite file but not a text2seg project database")
        try:
            with db.lock:
                version = schema_version(db.conn)
            if 0 < version < latest_version():  # keep the old file before upgrading it
                copy_database(db.sqlite_connection(), folder / BACKUP_DIR /
                              f"auto-{backup_stamp()}-before-schema-{version}-upgrade.sqlite")
            before = migrate(db)
        except DatabaseError as exc:
            db.close()
            raise InputError(f"could not upgrade the project {folder} to this version's schema "
                             f"({exc.orig}); the project was left unchanged") from exc
        except BaseException:
            db.close()
            raise
        if before < latest_version():
            log.info("migrated %s from schema %d to %d", path, before, latest_version())
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
    def is_team(self) -> bool:
        """True for a team project (PostgreSQL)."""
        return self._url is not None

    @property
    def location(self) -> str:
        """Where the project lives, as messages and manifests name it: the folder, or the URL
        without its password."""
        return str(self.folder.absolute()) if self._url is None else redact(self._url)

    @property
    def name(self) -> str:
        """The project's short name: its folder's name, or its database's name."""
        if self._url is None:
            return self.folder.absolute().name
        from text2seg_widgets.store.pgconnect import database_name

        return database_name(self._url)

    @property
    def url(self) -> str | None:
        """The URL a team project was opened with (credentials included when it had them; never
        log it: use :attr:`location`); ``None`` for a one-person project."""
        return self._url

    @property
    def image_root(self) -> Path | None:
        """Where relative image paths start on this machine."""
        return self.catalog.root

    @property
    def database(self) -> Database:
        """The project's database handle (for store tools such as :mod:`.copy`)."""
        return self._db

    @property
    def db_path(self) -> Path:
        if self._url is not None:
            raise InputError(f"{self.location} is a team project in PostgreSQL: it has no "
                             "database file")
        return self.folder / DB_NAME

    @property
    def project_id(self) -> str:
        """The project's identity (random, given at creation; backups keep it)."""
        return self.backup_store.project_id

    @property
    def schema_version(self) -> int:
        with self._db.lock:
            return schema_version(self._db.conn)

    def stats(self) -> dict[str, Any]:
        """Review statistics (:func:`text2seg_widgets.store.stats.review_stats`) plus
        ``effort`` (:meth:`effort` per class), ``consensus`` (agreement between annotators per
        class and pair) and ``honeypots`` (each annotator's accuracy): see :mod:`.agreement`."""
        from text2seg_widgets.store.stats import review_stats

        return review_stats(self._db) | {"effort": self.effort(),
                                         "consensus": self.agreement_measures.consensus(),
                                         "honeypots": self.agreement_measures.honeypots()}

    def agreement(self) -> list[dict[str, Any]]:
        """Per accepted annotation: IoU with the candidate it came from (1.0 = not edited)."""
        from text2seg_widgets.store.stats import annotation_candidate_iou

        return annotation_candidate_iou(self._db)

    def integrity_check(self) -> str:
        """``"ok"``, or what is wrong: SQLite's own check of the file, then the store's
        invariants on both databases (see :func:`.integrity.check`)."""
        from text2seg_widgets.store.integrity import check

        return check(self._db)


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

    # ----------------------------------------------------------------- team (People, Assignments, ReviewStage)
    def members(self) -> dict[str, str]:
        """(see :meth:`.people.People.members`)"""
        return self.people.members()

    def set_member(self, name: str, role: str, *, user: str | None = None) -> None:
        """(see :meth:`.people.People.set_member`)"""
        return self.people.set_member(name, role, user=user)

    def remove_member(self, name: str, *, user: str | None = None) -> None:
        """(see :meth:`.people.People.remove_member`)"""
        return self.people.remove_member(name, user=user)

    def assign(self, annotators: Sequence[str], *, image_ids: Sequence[int] | None = None,
               overlap: float = 0.0, honeypots: int = 0,
               user: str | None = None) -> dict[str, list[int]]:
        """(see :meth:`.assignments.Assignments.assign`)"""
        return self.assignments.assign(annotators, image_ids=image_ids, overlap=overlap,
                                       honeypots=honeypots, user=user)

    def resolve_consensus(self, image_id: int, *, pick: str | None = None,
                          user: str | None = None) -> int:
        """(see :meth:`.agreement.Agreement.resolve`)"""
        return self.agreement_measures.resolve(image_id, pick=pick, user=user)

    def next_assigned(self, user: str | None = None, *,
                      after: int | None = None) -> ImageRecord | None:
        """(see :meth:`.assignments.Assignments.next_for`)"""
        return self.assignments.next_for(user, after=after)

    def release_image(self, image_id: int, user: str | None = None) -> None:
        """(see :meth:`.assignments.Assignments.release`)"""
        return self.assignments.release(image_id, user)

    def review_queue(self) -> list[ImageRecord]:
        """(see :meth:`.reviewstage.ReviewStage.queue`)"""
        return self.review_stage.queue()

    def approve_image(self, image_id: int, comment: str = "", *, user: str | None = None) -> None:
        """(see :meth:`.reviewstage.ReviewStage.approve`)"""
        return self.review_stage.approve(image_id, comment, user=user)

    def return_image(self, image_id: int, comment: str, *, user: str | None = None) -> None:
        """(see :meth:`.reviewstage.ReviewStage.return_image`)"""
        return self.review_stage.return_image(image_id, comment, user=user)

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
