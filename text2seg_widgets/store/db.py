"""SQLite connection, one-transaction-per-action writes and the row-level change log.

Every write happens inside :meth:`Database.action`: ``BEGIN IMMEDIATE`` (so two processes
serialise on the write lock instead of failing at commit), a busy timeout plus a bounded retry
when another process holds the lock, and ``COMMIT`` before the method returns. An undoable action
records, for each row it touches, the row before and after (``changes`` table); undo and redo in
:mod:`text2seg_widgets.store.history` replay those snapshots and refuse, rather than overwrite,
when another action changed the row since.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from text2seg_widgets.errors import InputError, Text2SegError

__all__ = ["DB_NAME", "Database", "Tx", "ProjectBusyError", "ConflictError", "now",
           "UNDOABLE_TABLES"]

log = logging.getLogger(__name__)

#: The database file inside a project folder.
DB_NAME = "project.sqlite"
#: Tables whose changes are recorded for undo/redo.
UNDOABLE_TABLES = ("classes", "images", "candidates", "annotations")
#: Allowed ``PRAGMA synchronous`` levels.
SYNCHRONOUS = ("FULL", "NORMAL")
#: Keep at most this many actions in the history (the oldest are dropped).
HISTORY_LIMIT = 5000


class ProjectBusyError(Text2SegError):
    """Another process held the project's write lock for too long; the action was not applied."""


class ConflictError(InputError):
    """The action lost a race: another session changed the same rows first. Nothing was written."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Tx:
    """The writes of one action. Use :meth:`insert`, :meth:`update`, :meth:`delete`."""

    def __init__(self, conn: sqlite3.Connection, action_id: int | None) -> None:
        self.conn = conn
        self.action_id = action_id
        self.changed = 0

    def row(self, table: str, row_id: int) -> dict[str, Any] | None:
        r = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        return dict(r) if r is not None else None

    def _log(self, table: str, row_id: int, before: Any, after: Any) -> None:
        self.changed += 1
        if self.action_id is None or table not in UNDOABLE_TABLES:
            return
        self.conn.execute(
            "INSERT INTO changes (action_id, tbl, row_id, before, after) VALUES (?, ?, ?, ?, ?)",
            (self.action_id, table, row_id, _dump(before), _dump(after)))

    def insert(self, table: str, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                tuple(values.values()))
        row_id = int(cur.lastrowid)  # type: ignore[arg-type]  # lastrowid is set after an INSERT
        self._log(table, row_id, None, self.row(table, row_id))
        return row_id

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        before = self.row(table, row_id)
        if before is None:
            raise ConflictError(f"{table[:-1]} {row_id} no longer exists (deleted by another "
                                "action or session); reload and try again")
        sets = ", ".join(f"{c} = ?" for c in values)
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
        exists = self.row(table, row_id) is not None
        if values is None:
            if exists:
                self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
            return
        if exists:
            sets = ", ".join(f"{c} = ?" for c in values if c != "id")
            params = [v for c, v in values.items() if c != "id"]
            self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*params, row_id))
        else:
            cols = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                              tuple(values.values()))


def _dump(row: Any) -> str | None:
    return None if row is None else json.dumps(row, sort_keys=True)


class Database:
    """One connection to a project database, shared by the methods of one :class:`Project`."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0, retries: int = 5,
                 synchronous: str = "FULL") -> None:
        if synchronous not in SYNCHRONOUS:
            raise InputError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
        self.path = path
        self.retries = retries
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                    timeout=busy_timeout_s)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("could not switch %s to WAL (journal mode %s)", path, mode)
        # FULL (default): a committed action survives a power cut too; NORMAL: it survives a
        # killed process (WAL), and commits do not wait for the disk (several times faster).
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def _begin(self) -> None:
        delay = 0.05
        for attempt in range(self.retries + 1):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == self.retries:
                    raise ProjectBusyError(
                        f"the project {self.path.parent} is locked by another process (another "
                        "notebook or a batch run) and stayed locked; nothing was changed. Try "
                        "again, or close the other session") from exc
                log.info("project busy, retrying in %.2fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def action(self, description: str | None, *, user: str | None = None) -> Iterator[Tx]:
        """One transaction. ``description`` set: an undoable action recorded in the history."""
        with self.lock:
            self._begin()
            try:
                action_id = None
                if description is not None:
                    self.conn.execute("DELETE FROM actions WHERE undone = 1")  # clears redo
                    cur = self.conn.execute(
                        "INSERT INTO actions (description, user, at) VALUES (?, ?, ?)",
                        (description, user, now()))
                    action_id = int(cur.lastrowid)  # type: ignore[arg-type]  # lastrowid is set after an INSERT
                tx = Tx(self.conn, action_id)
                yield tx
                if action_id is not None:
                    self._finish_history(action_id, tx)
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

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
