"""Integrity checks of a project database: the file itself (SQLite), then the store's invariants,
the same on SQLite and PostgreSQL (run after a crash, a restore, a fault soak)."""

from __future__ import annotations

import time

from text2seg_widgets.store.db import Database

__all__ = ["check", "INVARIANTS"]

#: name -> a query counting the rows that break the invariant (0 when it holds).
INVARIANTS: dict[str, str] = {
    "done image with proposed candidates":
        "SELECT COUNT(*) FROM images i WHERE i.state = 'done' AND EXISTS (SELECT 1 FROM "
        "candidates c WHERE c.image_id = i.id AND c.status = 'proposed')",
    "accepted candidate without its annotation":
        "SELECT COUNT(*) FROM candidates c WHERE c.status = 'accepted' AND NOT EXISTS (SELECT 1 "
        "FROM annotations a WHERE a.candidate_id = c.id)",
    "candidate repeated within a run":
        "SELECT COUNT(*) FROM (SELECT image_id, run_id, class_id, counts FROM candidates WHERE "
        "run_id IS NOT NULL GROUP BY image_id, run_id, class_id, counts HAVING COUNT(*) > 1) d",
    "image held by two leases":
        "SELECT COUNT(*) FROM (SELECT l.image_id FROM leases l WHERE l.expires_at > "
        "CAST(? AS DOUBLE PRECISION) AND NOT EXISTS (SELECT 1 FROM assignments a WHERE "
        "a.image_id = l.image_id AND a.kind = 'consensus') GROUP BY l.image_id "
        "HAVING COUNT(*) > 1) d",
    "review verdict on an unfinished image":
        "SELECT COUNT(*) FROM images WHERE review IN ('pending', 'approved') AND state != 'done'",
    "change without its action":
        "SELECT COUNT(*) FROM changes ch WHERE NOT EXISTS (SELECT 1 FROM actions a WHERE "
        "a.id = ch.action_id)",
}


def check(db: Database) -> str:
    """``"ok"``, or one line per problem found."""
    problems: list[str] = []
    if db.dialect == "sqlite":
        result = str(db.query("PRAGMA integrity_check")[0][0])
        if result != "ok":
            problems.append(result)
        broken = db.query("PRAGMA foreign_key_check")
        if broken:
            problems.append(f"{len(broken)} row(s) point at missing rows (foreign keys)")
    for name, sql in INVARIANTS.items():
        count = int(db.query(sql, (time.time(),) if "?" in sql else ())[0][0])
        if count:
            problems.append(f"{count} x {name}")
    return "ok" if not problems else "; ".join(problems)
