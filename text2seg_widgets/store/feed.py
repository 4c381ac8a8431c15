"""Changes made by other sessions, as they happen: what an open Annotator listens to.

* PostgreSQL: every write transaction that touches images, candidates or annotations sends
  ``NOTIFY text2seg, '<session>:<image ids>'`` (delivered on commit, so a rolled-back action is
  never announced); a :class:`ChangeFeed` keeps its own connection with ``LISTEN text2seg`` and
  returns the image ids other sessions changed.
* SQLite: no notifications; the feed polls ``PRAGMA data_version`` on its own connection (it
  changes when another connection commits) and reports "something changed" (``None``).

A feed belongs to one watcher thread; :meth:`ChangeFeed.close` ends it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING

import psycopg

from text2seg_widgets.store.db import CHANNEL

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database

__all__ = ["ChangeFeed"]

log = logging.getLogger(__name__)


class ChangeFeed:
    """Other sessions' changes to the project behind ``db`` (see the module doc)."""

    def __init__(self, db: "Database") -> None:
        self.dialect = db.dialect
        self.session = db.session
        self.label = db.label
        self._url = db.engine.url
        self._pg: psycopg.Connection[tuple[object, ...]] | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._version: int | None = None
        self.closed = False

    def _connect(self) -> None:
        if self.dialect == "postgresql":
            conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            self._pg.execute(f"LISTEN {CHANNEL}")
        else:
            self._sqlite = sqlite3.connect(f"file:{self._url.database}?mode=ro", uri=True,
                                           check_same_thread=False)
            self._version = self._data_version()

    def _data_version(self) -> int:
        assert self._sqlite is not None
        return int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> set[int] | None:
        """Block up to ``timeout`` s; the image ids others changed (empty: nothing happened),
        or ``None``: something changed, reload everything. A lost server is retried quietly."""
        try:
            if self._pg is None and self._sqlite is None:
                self._connect()
            if self._pg is not None:
                return self._wait_pg(timeout)
            time.sleep(timeout)
            version = self._data_version()
            changed = version != self._version
            self._version = version
            return None if changed else set()
        except (psycopg.Error, sqlite3.Error, OSError) as exc:
            log.info("change feed of %s interrupted (%s); retrying", self.label, exc)
            self._drop()
            time.sleep(min(timeout, 1.0))
            return None  # after a gap, reload

    def _wait_pg(self, timeout: float) -> set[int] | None:
        assert self._pg is not None
        changed: set[int] = set()
        everything = False
        first = list(self._pg.notifies(timeout=timeout, stop_after=1))
        if not first:
            return changed
        for note in first + list(self._pg.notifies(timeout=0.05)):  # and whatever came with it
            session, _, ids = note.payload.partition(":")
            if session == self.session:
                continue  # our own writes
            if ids == "*":
                everything = True
            else:
                changed.update(int(i) for i in ids.split(",") if i)
        return None if everything else changed

    def _drop(self) -> None:
        for conn in (self._pg, self._sqlite):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - already broken
                    pass
        self._pg = self._sqlite = None

    def close(self) -> None:
        self.closed = True
        self._drop()
