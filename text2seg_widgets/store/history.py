"""Persisted undo/redo over the row-level change log written by :class:`~.db.Tx`.

The history is a list of actions; each has the before/after snapshot of every row it touched.
Undo takes the newest action that is not undone and puts each row back to its *before* snapshot
(in reverse order); redo takes the oldest undone action and re-applies the *after* snapshots. A new
action drops the undone ones (no branching history). Before replaying, every row must still
equal the snapshot the action left (or found): if another action or another session changed it
since, :class:`~.db.ConflictError` is raised and nothing is written. A replay that would break the
review invariant (a done image with proposed candidates, e.g. redoing "mark done" after a new
pseudo-label run added candidates) is refused the same way.

Undo and redo return a :class:`HistoryStep`: the action's description and the ids of the images
it changed (so a UI can show the image an undo acted on). ``str(step)`` is the description.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from text2seg_widgets.store.db import MINE, ConflictError, Database, IntegrityError, Tx
from text2seg_widgets.store.schema import INVARIANT_MESSAGE

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor

__all__ = ["HistoryStep", "History", "undo", "redo", "can_undo", "can_redo", "history"]


@dataclass(frozen=True)
class HistoryStep:
    """One undone or redone action: its description and the images it changed (ascending ids;
    empty for actions on classes only). ``str(step)`` is the description."""

    description: str
    image_ids: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.description


def can_undo(db: Database, user: str | None = None) -> bool:
    return bool(db.query(f"SELECT 1 FROM actions WHERE undone = 0 AND {MINE} LIMIT 1", (user,)))


def can_redo(db: Database, user: str | None = None) -> bool:
    return bool(db.query(f"SELECT 1 FROM actions WHERE undone = 1 AND {MINE} LIMIT 1", (user,)))


def history(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` actions: id, description, user, time, undone."""
    rows = db.query('SELECT id, description, "user", at, undone FROM actions ORDER BY id DESC '
                    "LIMIT ?", (limit,))
    return [dict(r) | {"undone": bool(r["undone"])} for r in rows]


def undo(db: Database, user: str | None = None) -> HistoryStep | None:
    """Undo the newest action (in a team: ``user``'s newest); return what it was, or ``None``
    when there is nothing to undo."""
    return _step(db, forward=False, user=user)


def redo(db: Database, user: str | None = None) -> HistoryStep | None:
    """Redo the oldest undone action (in a team: ``user``'s); return what it was, or ``None``."""
    return _step(db, forward=True, user=user)


def _step(db: Database, *, forward: bool, user: str | None) -> HistoryStep | None:
    """One undo (newest not-undone action, backwards) or redo (oldest undone action, forwards)."""
    query = (f"SELECT id, description FROM actions WHERE undone = 1 AND {MINE} ORDER BY id ASC "
             "LIMIT 1" if forward else
             f"SELECT id, description FROM actions WHERE undone = 0 AND {MINE} ORDER BY id DESC "
             "LIMIT 1")
    with db.raw() as tx:
        row = tx.conn.execute(query, (user,)).fetchone()
        if row is None:
            return None
        image_ids = _replay(tx, row["id"], row["description"], forward=forward)
        tx.conn.execute("UPDATE actions SET undone = ? WHERE id = ?", (0 if forward else 1, row["id"]))
        return HistoryStep(str(row["description"]), image_ids)


def _image_ids(changes: list[Any]) -> tuple[int, ...]:
    """The images an action's row changes touched (image rows, and the image of each
    candidate/annotation row, before or after)."""
    ids: set[int] = set()
    for ch in changes:
        if ch["tbl"] == "images":
            ids.add(int(ch["row_id"]))
        elif ch["tbl"] in ("candidates", "annotations"):
            for state in (ch["before"], ch["after"]):
                if state is not None and json.loads(state).get("image_id") is not None:
                    ids.add(int(json.loads(state)["image_id"]))
    return tuple(sorted(ids))


def _replay(tx: Tx, action_id: int, description: str, *, forward: bool) -> tuple[int, ...]:
    order, verb = ("ASC", "redo") if forward else ("DESC", "undo")
    changes = tx.conn.execute(f"SELECT tbl, row_id, before, after FROM changes WHERE action_id = ? "
                              f"ORDER BY id {order}", (action_id,)).fetchall()
    # Check every row first (snapshot of the state the action left / found).
    expected: dict[tuple[str, int], Any] = {}
    for ch in changes:
        key = (ch["tbl"], ch["row_id"])
        state = ch["before"] if forward else ch["after"]
        expected.setdefault(key, None if state is None else json.loads(state))
    for (table, row_id), want in expected.items():
        if not _same(tx.row(table, row_id), want):
            raise ConflictError(
                f"cannot {verb} '{description}': {table[:-1]} {row_id} was changed since by "
                f"another action or session; nothing was changed")
    try:
        for ch in changes:
            target = ch["after"] if forward else ch["before"]
            tx.restore(ch["tbl"], ch["row_id"], None if target is None else json.loads(target))
    except IntegrityError as exc:
        if INVARIANT_MESSAGE not in str(exc):
            raise
        raise ConflictError(
            f"cannot {verb} '{description}': new candidates were added to the image since, and "
            "an image with unreviewed candidates cannot be done; review them first. Nothing was "
            "changed") from exc
    return _image_ids(changes)


def _same(current: dict[str, Any] | None, snapshot: dict[str, Any] | None) -> bool:
    """Row equals snapshot on the snapshot's columns (a later migration may have added some)."""
    if current is None or snapshot is None:
        return current is snapshot
    return all(current.get(k) == v for k, v in snapshot.items())


class History:
    """Undo and redo of an open project (built by :class:`~.project.Project`). In a team project
    (one with members) each person undoes and redoes their own actions only."""

    def __init__(self, db: Database, actor: "Actor") -> None:
        self.db, self.actor = db, actor

    def undo(self) -> HistoryStep | None:
        return undo(self.db, self.actor.user)

    def redo(self) -> HistoryStep | None:
        return redo(self.db, self.actor.user)

    @property
    def can_undo(self) -> bool:
        return can_undo(self.db, self.actor.user)

    @property
    def can_redo(self) -> bool:
        return can_redo(self.db, self.actor.user)

    def entries(self, limit: int = 50) -> list[dict[str, Any]]:
        return history(self.db, limit)
