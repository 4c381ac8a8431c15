"""Batch runs: their manifests, and which images each run has processed (a part of
:class:`~.project.Project`; resumable runs skip what is processed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from text2seg_widgets.store.db import now

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database

__all__ = ["Runs"]


class Runs:
    """The runs and processed tables (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor") -> None:
        self.db, self.actor = db, actor

    def _manifest(self, manifest: dict[str, Any]) -> str:
        """The stored manifest, naming who started the run (``started_by``)."""
        return json.dumps({"started_by": self.actor.user, **manifest}, sort_keys=True, default=str)

    def start(self, manifest: dict[str, Any]) -> int:
        with self.db.raw() as tx:
            return tx.insert("runs", {"manifest": self._manifest(manifest), "started_at": now()})

    def join_or_start(self, manifest: dict[str, Any]) -> tuple[int, bool]:
        """``(run_id, joined)``: the newest run whose manifest has the same ``fingerprint``, or a
        new one, decided in one transaction (two runs started at once join one run)."""
        fingerprint = manifest.get("fingerprint")
        with self.db.raw() as tx:
            for row in tx.conn.execute("SELECT id, manifest FROM runs ORDER BY id DESC"):
                if json.loads(row["manifest"]).get("fingerprint") == fingerprint:
                    return int(row["id"]), True
            return tx.insert("runs", {"manifest": self._manifest(manifest),
                                      "started_at": now()}), False

    def finish(self, run_id: int) -> None:
        with self.db.raw() as tx:
            tx.update("runs", int(run_id), {"finished_at": now()})

    def all(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM runs ORDER BY id")
        return [dict(r) | {"manifest": json.loads(r["manifest"])} for r in rows]

    def mark_processed(self, image_id: int, run_id: int) -> None:
        with self.db.raw() as tx:
            tx.conn.execute("INSERT INTO processed (image_id, run_id, at) "
                            "VALUES (?, ?, ?) ON CONFLICT (image_id, run_id) DO NOTHING",
                            (int(image_id), int(run_id), now()))

    def processed(self, run_id: int) -> set[int]:
        rows = self.db.query("SELECT image_id FROM processed WHERE run_id = ?", (int(run_id),))
        return {int(r[0]) for r in rows}
