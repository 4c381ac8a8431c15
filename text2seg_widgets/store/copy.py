"""Copying a whole project database between SQLite and PostgreSQL, in either direction (the rows;
:mod:`.projectcopy` opens the projects and maps the image paths).

Everything that makes the project is copied: classes, images, runs and their processed markers,
candidates, annotations, effort (image time), the undo history (actions and their row changes)
and the project's identity (``meta``), with the same ids and the same next id per table (so the
history's row snapshots keep pointing at the right rows, and a deleted id is never given again).
Claims and leases are work in progress and are not copied.

Invariants (tested):

* the source is read from ONE committed state, the destination written in ONE transaction: a
  copy interrupted at any point leaves no half project behind (the destination is removed when
  it was created by the copy);
* image paths are carried as files, not strings: each is resolved against the source's root and
  stored against the destination's (a folder for a one-person project, the image root of a team
  project), so the images are found on both sides;
* :func:`digest` of the source equals the digest of the copy, and a round trip
  SQLite -> PostgreSQL -> SQLite exports the same dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import Conn, Database, Row
from text2seg_widgets.store.schema import latest_version, schema_version

__all__ = ["COPY_TABLES", "copy_rows", "digest"]

log = logging.getLogger(__name__)

#: The tables a copy carries, parents before children (foreign keys point backwards).
COPY_TABLES = ("meta", "classes", "images", "runs", "processed", "candidates", "annotations",
               "image_time", "actions", "changes", "members", "assignments", "review_events")
#: Tables with an ``id`` the database gives out (their next id travels with the copy).
ID_TABLES = ("classes", "images", "runs", "candidates", "annotations", "actions", "changes",
             "review_events")
_BATCH = 2000
#: Row order of the tables without an ``id`` (every other table: by id).
_ORDER = {"meta": "key", "processed": "image_id, run_id", "image_time": "image_id",
          "members": "name", "assignments": 'image_id, "user"'}


def _next_ids(conn: Conn) -> dict[str, int]:
    """The id each table would give its next new row."""
    out: dict[str, int] = {}
    for table in ID_TABLES:
        top = conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()
        high = int(top[0]) + 1 if top is not None and top[0] is not None else 1
        if conn.dialect == "sqlite":
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
            seq = int(row[0]) + 1 if row is not None else 1
        else:
            row = conn.execute("SELECT last_value, is_called FROM "
                               f"{_sequence_name(conn, table)}").fetchone()
            assert row is not None  # a sequence always has one row
            seq = int(row[0]) + (1 if row[1] else 0)
        out[table] = max(high, seq)
    return out


def _sequence_name(conn: Conn, table: str) -> str:
    row = conn.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()
    assert row is not None and row[0]  # identity columns own a sequence
    return str(row[0])


def _set_next_ids(conn: Conn, next_ids: dict[str, int]) -> None:
    for table, nxt in next_ids.items():
        if conn.dialect == "sqlite":
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, nxt - 1))
        else:
            conn.execute("SELECT setval(?, ?, false)", (_sequence_name(conn, table), nxt))


def copy_rows(src: Database, dest: Database, *,
              path_map: Callable[[str], str] | None = None) -> dict[str, int]:
    """Copy every row of :data:`COPY_TABLES` from ``src`` into ``dest`` (same schema version;
    ``dest`` holds no images, candidates or annotations: its ``meta`` is replaced). ``path_map``
    turns a stored image path of ``src`` into the one ``dest`` stores (default: unchanged).
    Returns rows copied per table."""
    counts: dict[str, int] = {}
    with src.snapshot() as read:
        version = schema_version(read)
        if version != latest_version():
            raise InputError(f"the source is at schema {version}, this version writes "
                             f"{latest_version()}; open it once with Project.open to upgrade it")
        next_ids = _next_ids(read)
        with dest.raw() as tx:
            for table in ("images", "candidates", "annotations"):
                if tx.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    raise InputError(f"the destination {dest.label} already holds {table}; copy "
                                     "into a new project")
            for table in reversed(COPY_TABLES):
                tx.conn.execute(f"DELETE FROM {table}")
            for table in COPY_TABLES:
                counts[table] = _copy_table(read, tx.conn, table, path_map)
            _set_next_ids(tx.conn, next_ids)
    log.info("copied %s -> %s: %s", src.label, dest.label, counts)
    return counts


def _copy_table(read: Conn, write: Conn, table: str,
                path_map: Callable[[str], str] | None) -> int:
    rows = read.execute(f"SELECT * FROM {table} ORDER BY {_ORDER.get(table, 'id')}").fetchall()
    if not rows:
        return 0
    names = rows[0].keys()
    path_at = names.index("path") if table == "images" and path_map is not None else None
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
    values = [_values(r, path_at, path_map) for r in rows]
    for start in range(0, len(values), _BATCH):
        write.executemany(sql, values[start:start + _BATCH])
    return len(values)


def _values(row: Row, path_at: int | None,
            path_map: Callable[[str], str] | None) -> tuple[object, ...]:
    vals = tuple(row)
    if path_at is None or path_map is None:
        return vals
    return vals[:path_at] + (path_map(str(vals[path_at])),) + vals[path_at + 1:]


def digest(project_db: Database, *, resolve: Callable[[str], str] | None = None) -> dict[str, str]:
    """A sha256 per copied table over its rows (image paths passed through ``resolve``, so two
    projects storing the same files against different roots compare equal)."""
    out: dict[str, str] = {}
    with project_db.snapshot() as read:
        for table in COPY_TABLES:
            h = hashlib.sha256()
            for row in read.execute(f"SELECT * FROM {table} ORDER BY "
                                    f"{_ORDER.get(table, 'id')}").fetchall():
                item = dict(row)
                if table == "images" and resolve is not None:
                    item["path"] = resolve(str(item["path"]))
                h.update(json.dumps(item, sort_keys=True, default=str).encode())
            out[table] = h.hexdigest()
        out["next_ids"] = hashlib.sha256(json.dumps(_next_ids(read), sort_keys=True).encode()).hexdigest()
    return out
