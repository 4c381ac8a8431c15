"""One database connection (SQLite or PostgreSQL), one-transaction-per-action writes and the
row-level change log.

A project lives in a folder (``project.sqlite``, the embedded default) or in a PostgreSQL
database (a ``postgresql://`` URL: a team project). Both are reached through SQLAlchemy 2 Core
(the ``pysqlite`` and ``psycopg`` 3 drivers); the SQL of the store's parts is written once, with
``?`` placeholders, in the subset both dialects share, and :class:`Conn` hands it to the driver.

Every write happens inside :meth:`Database.action`, and writers are serialised the same way on
both databases, so every check-then-write of the parts (claims, review invariants, undo conflict
checks) means the same thing:

* SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock; a busy timeout plus a bounded retry
  when another process holds it;
* PostgreSQL: ``BEGIN`` then a transaction-level advisory lock (:data:`WRITE_LOCK_KEY`), held until
  ``COMMIT``/``ROLLBACK``; ``lock_timeout`` bounds the wait, then the same bounded retry. Readers
  never wait.

``COMMIT`` happens before the method returns. An undoable action records, for each row it
touches, the row before and after (``changes`` table); undo and redo in
:mod:`text2seg_widgets.store.history` replay those snapshots and refuse, rather than overwrite,
when another action changed the row since.

A PostgreSQL connection lost between actions (a server restart, a network drop) is opened again
on the next action with a log line; one lost during an action raises
:class:`ConnectionLostError` (the action was rolled back by the server, or, if the loss came
during ``COMMIT``, may have been applied: the message says which).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from text2seg_widgets.errors import InputError, Text2SegError
from text2seg_widgets.store.pgconnect import connect_error, engine_url, is_url, redact

__all__ = ["DB_NAME", "Database", "Tx", "Conn", "Row", "Result", "ProjectBusyError",
           "ConflictError", "ConnectionLostError", "now", "UNDOABLE_TABLES", "DatabaseError",
           "IntegrityError", "is_url", "redact", "WRITE_LOCK_KEY", "CHANNEL", "payload"]

log = logging.getLogger(__name__)

#: The database file inside a project folder.
DB_NAME = "project.sqlite"
#: Tables whose changes are recorded for undo/redo.
UNDOABLE_TABLES = ("classes", "images", "candidates", "annotations")
#: Allowed ``PRAGMA synchronous`` levels.
SYNCHRONOUS = ("FULL", "NORMAL")
#: Keep at most this many actions in the history (the oldest are dropped).
HISTORY_LIMIT = 5000
#: The PostgreSQL advisory lock every write transaction takes (one project per database).
WRITE_LOCK_KEY = 0x7432_5365_6701
#: "This action is the user's (``?``)": every action in a project without members, the user's own
#: in a team (undo, redo and the redo stack are per person there).
MINE = ('(NOT EXISTS (SELECT 1 FROM members) OR COALESCE(actions."user", \'\') = '
        "COALESCE(?, ''))")
#: The notification channel of every team project (see :mod:`.feed`).
CHANNEL = "text2seg"
#: At most this many image ids in one notification (more: "*", i.e. reload everything).
MAX_NOTIFIED_IDS = 500

#: Every error the driver raises, wrapped by SQLAlchemy (both dialects).
DatabaseError = sa_exc.DBAPIError
#: A constraint or trigger refused a write (both dialects).
IntegrityError = sa_exc.IntegrityError


class ProjectBusyError(Text2SegError):
    """Another process held the project's write lock for too long; the action was not applied."""


class ConflictError(InputError):
    """The action lost a race: another session changed the same rows first. Nothing was written."""


class ConnectionLostError(Text2SegError):
    """The connection to the PostgreSQL server broke during an action (see the message for
    whether the action was applied); the next action reconnects."""


def payload(session: str, image_ids: set[int]) -> str:
    """The NOTIFY payload of one transaction: ``<session>:<image ids>`` (or ``<session>:*``)."""
    if len(image_ids) > MAX_NOTIFIED_IDS:
        return f"{session}:*"
    return f"{session}:{','.join(str(i) for i in sorted(image_ids))}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Row:
    """One result row: by position (``row[0]``), by column name (``row["id"]``) and as a mapping
    (``dict(row)``), the same on both databases."""

    __slots__ = ("_values", "_names")

    def __init__(self, values: tuple[Any, ...], names: dict[str, int]) -> None:
        self._values, self._names = values, names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key] if isinstance(key, int) else self._values[self._names[key]]

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values))!r})"


class Result:
    """The rows of one statement (read eagerly) and how many rows it changed."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return list(self._rows)

    def scalar(self) -> Any:
        """The first column of the first row (:class:`LookupError` when there is no row)."""
        if not self._rows:
            raise LookupError("the statement returned no row")
        return self._rows[0][0]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


def _to_format_style(sql: str, has_params: bool) -> str:
    """``?`` placeholders (outside string literals) to psycopg's ``%s``; a literal ``%`` doubled
    when the statement has parameters."""
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "?" and not quoted:
            out.append("%s")
        elif ch == "%" and has_params:
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Conn:
    """Runs the store's SQL (``?`` placeholders) on one SQLAlchemy connection of either dialect."""

    def __init__(self, connection: Connection, dialect: str) -> None:
        self.sa = connection
        self.dialect = dialect
        self._translated: dict[tuple[str, bool], str] = {}

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Result:
        params = tuple(params)
        if self.dialect == "postgresql":
            key = (sql, bool(params))
            text = self._translated.get(key)
            if text is None:
                text = self._translated[key] = _to_format_style(sql, bool(params))
        else:
            text = sql
        cur = self.sa.exec_driver_sql(text, params) if params else self.sa.exec_driver_sql(text)
        if cur.returns_rows:
            names = {k: i for i, k in enumerate(cur.keys())}
            rows = [Row(tuple(r), names) for r in cur.fetchall()]
        else:
            rows = []
        return Result(rows, int(cur.rowcount))


    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many parameter rows (bulk copies)."""
        if not rows:
            return
        text = _to_format_style(sql, True) if self.dialect == "postgresql" else sql
        self.sa.exec_driver_sql(text, rows)


#: A check run on every row change of a user action before it stands: ``(tx, table, before,
#: after)``; raising rolls the whole action back (see :meth:`.people.People.guard`).
Guard = Callable[["Tx", str, "dict[str, Any] | None", "dict[str, Any] | None"], None]


class Tx:
    """The writes of one action. Use :meth:`insert`, :meth:`update`, :meth:`delete`.

    ``user``: who makes the action; ``guard``: checked on each row change of an undoable
    (user) action."""

    def __init__(self, conn: Conn, action_id: int | None, *, user: str | None = None,
                 guard: Guard | None = None) -> None:
        self.conn = conn
        self.action_id = action_id
        self.user = user
        self.guard = guard
        self.changed = 0
        #: The images whose rows (or candidates, annotations) this transaction changed.
        self.touched: set[int] = set()

    def _touch(self, table: str, row_id: int, values: Any) -> None:
        if table == "images":
            self.touched.add(int(row_id))
        elif table in ("candidates", "annotations") and values and values.get("image_id") is not None:
            self.touched.add(int(values["image_id"]))

    def row(self, table: str, row_id: int) -> dict[str, Any] | None:
        r = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        return dict(r) if r is not None else None

    def _log(self, table: str, row_id: int, before: Any, after: Any) -> None:
        self.changed += 1
        self._touch(table, row_id, after if after is not None else before)
        if self.action_id is None or table not in UNDOABLE_TABLES:
            return
        if self.guard is not None:
            self.guard(self, table, before, after)
        self.conn.execute(
            "INSERT INTO changes (action_id, tbl, row_id, before, after) VALUES (?, ?, ?, ?, ?)",
            (self.action_id, table, row_id, _dump(before), _dump(after)))

    def insert(self, table: str, values: dict[str, Any]) -> int:
        row_id = self.insert_returning_id(table, values)
        self._log(table, row_id, None, self.row(table, row_id))
        return row_id

    def insert_returning_id(self, table: str, values: dict[str, Any]) -> int:
        """``INSERT ... RETURNING id`` without a change-log entry."""
        cols = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join("?" for _ in values)
        row = self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id",
                                tuple(values.values())).fetchone()
        assert row is not None  # RETURNING gives the new row
        return int(row[0])

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        before = self.row(table, row_id)
        if before is None:
            raise ConflictError(f"{table[:-1]} {row_id} no longer exists (deleted by another "
                                "action or session); reload and try again")
        sets = ", ".join(f'"{c}" = ?' for c in values)
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values.values(), row_id))
        self._log(table, row_id, before, self.row(table, row_id))

    def delete(self, table: str, row_id: int) -> None:
        before = self.row(table, row_id)
        if before is None:
            return
        self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        self._log(table, row_id, before, None)

    def restore(self, table: str, row_id: int, values: dict[str, Any] | None) -> None:
        """Put a row back to ``values`` (``None``: no row); used by undo/redo."""
        current = self.row(table, row_id)
        exists = current is not None
        self._touch(table, row_id, values if values is not None else current)
        if values is None:
            if exists:
                self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
            return
        if exists:
            sets = ", ".join(f'"{c}" = ?' for c in values if c != "id")
            params = [v for c, v in values.items() if c != "id"]
            self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*params, row_id))
        else:
            cols = ", ".join(f'"{c}"' for c in values)
            marks = ", ".join("?" for _ in values)
            self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                              tuple(values.values()))


def _dump(row: Any) -> str | None:
    return None if row is None else json.dumps(row, sort_keys=True)


@dataclass(frozen=True)
class _Settings:
    busy_timeout_s: float
    retries: int


def _connection_broken(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


class Database:
    """One connection to a project database, shared by the parts of one :class:`Project`.

    Build with :meth:`sqlite` or :meth:`postgresql`. ``label`` names the project in messages
    (the folder, or the URL without its password)."""

    def __init__(self, engine: Engine, *, label: str, busy_timeout_s: float = 10.0,
                 retries: int = 5) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.label = label
        self.settings = _Settings(busy_timeout_s, retries)
        self.lock = threading.RLock()
        self.closed = False
        self._broken = False
        #: How many times the connection was opened again after a loss.
        self.reconnects = 0
        #: Names this handle's writes in change notifications (its own are not echoed back).
        self.session = uuid.uuid4().hex[:12]
        self.conn = Conn(engine.connect(), self.dialect)
        #: Called after a reconnect (e.g. a LISTEN to renew); set by whoever needs it.
        self.on_reconnect: list[Callable[[], None]] = []
        #: Checked on every row change of a user action (set by the project: roles, leases).
        self.guard: Guard | None = None

    # ---------------------------------------------------------------- building
    @classmethod
    def sqlite(cls, path: Path, *, busy_timeout_s: float = 10.0, retries: int = 5,
               synchronous: str = "FULL") -> "Database":
        if synchronous not in SYNCHRONOUS:
            raise InputError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
        engine = sa.create_engine(
            sa.URL.create("sqlite", database=str(path)), poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"check_same_thread": False, "timeout": busy_timeout_s})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("could not switch %s to WAL (journal mode %s)", path, mode)
            # FULL (default): a committed action survives a power cut too; NORMAL: it survives a
            # killed process (WAL), and commits do not wait for the disk (several times faster).
            cur.execute(f"PRAGMA synchronous = {synchronous}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        return cls(engine, label=str(path.parent), busy_timeout_s=busy_timeout_s, retries=retries)

    @classmethod
    def postgresql(cls, url: str, *, busy_timeout_s: float = 10.0,
                   retries: int = 5) -> "Database":
        """Connect to the PostgreSQL database of ``url`` (credentials from the URL, ``PGPASSFILE``
        or the ``PG*`` environment); :class:`InputError` with one clear line when that fails."""
        engine = sa.create_engine(
            engine_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": max(1, int(busy_timeout_s)),
                          "options": f"-c lock_timeout={int(busy_timeout_s * 1000)}"})
        try:
            return cls(engine, label=redact(url), busy_timeout_s=busy_timeout_s, retries=retries)
        except sa_exc.DBAPIError as exc:
            engine.dispose()
            raise connect_error(url, exc) from None

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    self.conn.sa.close()
                except sa_exc.SQLAlchemyError:  # a connection the server already dropped
                    pass
                self.engine.dispose()

    # ---------------------------------------------------------------- reading
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        """Rows of one read (its own snapshot; never waits for writers)."""
        with self.lock:
            self._ensure_connected()
            try:
                return self.conn.execute(sql, params).fetchall()
            except sa_exc.DBAPIError as exc:
                if not _connection_broken(exc):
                    raise
                self._reconnect(exc)
                return self.conn.execute(sql, params).fetchall()

    @contextmanager
    def snapshot(self) -> Iterator[Conn]:
        """Several reads from ONE committed state (a read transaction; writers go on)."""
        with self.lock:
            self._check_open()
            self.conn.execute("BEGIN" if self.dialect == "sqlite" else
                              "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield self.conn
            finally:
                self._rollback_quietly()

    # ---------------------------------------------------------------- writing
    def _check_open(self) -> None:
        if self.closed:
            raise InputError(f"the project {self.label} is closed; open it again")

    def _reconnect(self, exc: BaseException) -> None:
        """Drop the broken connection and open a new one (:class:`ConnectionLostError` when the
        server cannot be reached; the next call tries again)."""
        log.warning("the connection to %s was lost (%s); connecting again", self.label,
                    _first_line(exc))
        old = self.conn.sa
        for step in (old.invalidate, old.close):
            try:
                step()
            except sa_exc.SQLAlchemyError:  # pragma: no cover - already gone
                pass
        self._broken = True
        self._connect_again()

    def _connect_again(self) -> None:
        try:
            self.conn = Conn(self.engine.connect(), self.dialect)
        except sa_exc.DBAPIError as again:
            raise ConnectionLostError(
                f"the connection to the project {self.label} was lost and could not be opened "
                f"again ({_first_line(again)}); nothing more was written. Try again when the "
                "server is back") from None
        self._broken = False
        self.reconnects += 1
        log.info("connected to %s again", self.label)
        for hook in self.on_reconnect:
            hook()

    def _ensure_connected(self) -> None:
        self._check_open()
        if self._broken:
            self._connect_again()

    def _begin(self) -> None:
        delay = 0.05
        retries = self.settings.retries
        for attempt in range(retries + 1):
            try:
                if self.dialect == "sqlite":
                    self.conn.execute("BEGIN IMMEDIATE")
                else:
                    self.conn.execute("BEGIN")
                    self.conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
                return
            except sa_exc.DBAPIError as exc:
                if self.dialect == "postgresql" and _connection_broken(exc):
                    self._reconnect(exc)
                    continue
                if not _lock_busy(exc):
                    self._rollback_quietly()
                    raise
                self._rollback_quietly()
                if attempt == retries:
                    raise ProjectBusyError(
                        f"the project {self.label} is locked by another process (another "
                        "notebook or a batch run) and stayed locked; nothing was changed. Try "
                        "again, or close the other session") from exc
                log.info("project busy, retrying in %.2fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise ProjectBusyError(f"could not start a transaction on {self.label}")  # pragma: no cover

    def _rollback_quietly(self) -> None:
        if self._broken:
            return
        try:
            self.conn.execute("ROLLBACK")
        except sa_exc.SQLAlchemyError:
            pass

    @contextmanager
    def action(self, description: str | None, *, user: str | None = None) -> Iterator[Tx]:
        """One transaction. ``description`` set: an undoable action recorded in the history."""
        with self.lock:
            self._ensure_connected()
            self._begin()
            committing = False
            try:
                action_id = None
                if description is not None:
                    # a new action clears the redo steps (in a team: the writer's own)
                    self.conn.execute(f"DELETE FROM actions WHERE undone = 1 AND {MINE}", (user,))
                    row = self.conn.execute(
                        'INSERT INTO actions (description, "user", at) VALUES (?, ?, ?) '
                        "RETURNING id", (description, user, now())).fetchone()
                    assert row is not None  # RETURNING gives the new row
                    action_id = int(row[0])
                tx = Tx(self.conn, action_id, user=user,
                        guard=self.guard if action_id is not None else None)
                yield tx
                if action_id is not None:
                    self._finish_history(action_id, tx)
                if tx.touched and self.dialect == "postgresql":  # delivered on COMMIT only
                    self.conn.execute("SELECT pg_notify(?, ?)",
                                      (CHANNEL, payload(self.session, tx.touched)))
                committing = True
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if isinstance(exc, sa_exc.DBAPIError) and _connection_broken(exc):
                    self._lost_during_action(exc, committing)
                self._rollback_quietly()
                raise

    def _lost_during_action(self, exc: sa_exc.DBAPIError, committing: bool) -> None:
        try:
            self._reconnect(exc)
        except ConnectionLostError:
            pass
        if committing:
            raise ConnectionLostError(
                f"the connection to the project {self.label} broke while the action was being "
                "committed; it may or may not have been applied: look before repeating it") from exc
        raise ConnectionLostError(
            f"the connection to the project {self.label} broke during the action; it was not "
            "applied (nothing was written). Try it again") from exc

    @contextmanager
    def raw(self) -> Iterator[Tx]:
        """A transaction outside the undo history (undo/redo themselves, migrations)."""
        with self.action(None) as tx:
            yield tx

    def _finish_history(self, action_id: int, tx: Tx) -> None:
        if tx.changed == 0:
            self.conn.execute("DELETE FROM actions WHERE id = ?", (action_id,))
            return
        if action_id % 100 == 0:
            self.conn.execute("DELETE FROM actions WHERE id <= ?", (action_id - HISTORY_LIMIT,))

    # ---------------------------------------------------------------- facts
    def sqlite_connection(self) -> sqlite3.Connection:
        """The driver connection of an SQLite project (for its online backup API)."""
        if self.dialect != "sqlite":
            raise InputError(f"{self.label} is a PostgreSQL project, not an SQLite file")
        raw = self.conn.sa.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    def tables(self) -> set[str]:
        """The names of the tables in the database (both dialects)."""
        with self.lock:
            self._check_open()
            return set(sa.inspect(self.conn.sa).get_table_names())


def _lock_busy(exc: sa_exc.DBAPIError) -> bool:
    text = str(exc.orig)
    return ("locked" in text or "busy" in text  # SQLite
            or "lock timeout" in text or getattr(exc.orig, "sqlstate", None) == "55P03")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
