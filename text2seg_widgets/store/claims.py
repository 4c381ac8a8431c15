"""Claims: an image is held by one worker at a time, so concurrent runs share work, never repeat it.

A claim is a row ``(image_id, kind, holder, expires_at)``; ``kind`` names the work
(``"pseudo-label:<run id>"``, ``"embed:<model>"``), ``holder`` the worker
(``<host>:<pid>:<token>``). Invariants:

* at most one live claim per (image, kind): :meth:`Claims.take` checks and writes in ONE
  transaction (``BEGIN IMMEDIATE``), so two processes asking at once get one yes and one no;
* a claim ends three ways: its holder releases it, it expires (``expires_at`` passed: a closed
  laptop or a killed run on another machine does not hold an image for ever), or its holder was a
  process on this host that is no longer alive (a ``kill -9`` is taken over at once);
* a holder renews its claims while it works (:meth:`Claims.renew`).

Claims decide who does the work; whether it is already done (``unless_processed_in`` of
:meth:`Claims.take`) is checked inside the same transaction, so a finished image is never taken.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from text2seg_widgets.core.processes import pid_alive
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import Database

__all__ = ["Claims", "DEFAULT_TTL_S", "new_holder", "holder_alive"]

log = logging.getLogger(__name__)

#: How long a claim lives without renewal.
DEFAULT_TTL_S = 600.0


def new_holder() -> str:
    """A holder name unique to this process and call: ``host:pid:token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """False only when ``holder`` is a process of this host that has ended; other hosts' holders
    are trusted until their claim expires."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    return pid_alive(int(pid_text))


class Claims:
    """The claims table of one project database (built by :class:`~.project.Project`)."""

    def __init__(self, db: Database, ttl_s: float = DEFAULT_TTL_S) -> None:
        if ttl_s <= 0:
            raise InputError(f"a claim needs a lifetime > 0 seconds, got {ttl_s}")
        self._db = db
        self.ttl_s = float(ttl_s)

    def take(self, image_id: int, kind: str, holder: str, *,
             unless_processed_in: int | None = None) -> bool:
        """Claim ``image_id`` for ``kind`` work by ``holder``; False when another live holder has
        it, or when the image is already processed in run ``unless_processed_in`` (checked in the
        same transaction, so a finished image is never taken again)."""
        with self._db.raw() as tx:
            if unless_processed_in is not None and tx.conn.execute(
                    "SELECT 1 FROM processed WHERE image_id = ? AND run_id = ?",
                    (int(image_id), int(unless_processed_in))).fetchone():
                return False
            row = tx.conn.execute("SELECT holder, expires_at FROM claims WHERE image_id = ? AND "
                                  "kind = ?", (int(image_id), kind)).fetchone()
            now = time.time()
            if row is not None and row["holder"] != holder and row["expires_at"] > now \
                    and holder_alive(row["holder"]):
                return False
            if row is not None and row["holder"] != holder:
                log.info("image %d: taking over the %s claim of %s (expired or ended)",
                         image_id, kind, row["holder"])
            tx.conn.execute(
                "INSERT INTO claims (image_id, kind, holder, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (image_id, kind) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at", (int(image_id), kind, holder, now + self.ttl_s))
            return True

    def renew(self, holder: str) -> int:
        """Extend every claim of ``holder``; returns how many it holds."""
        with self._db.raw() as tx:
            cur = tx.conn.execute("UPDATE claims SET expires_at = ? WHERE holder = ?",
                                  (time.time() + self.ttl_s, holder))
            return int(cur.rowcount)

    def release(self, image_id: int, kind: str, holder: str) -> None:
        """End ``holder``'s claim on ``image_id`` (nothing happens if another holds it)."""
        with self._db.raw() as tx:
            tx.conn.execute("DELETE FROM claims WHERE image_id = ? AND kind = ? AND holder = ?",
                            (int(image_id), kind, holder))

    def release_all(self, holder: str) -> None:
        with self._db.raw() as tx:
            tx.conn.execute("DELETE FROM claims WHERE holder = ?", (holder,))

    def held(self, kind: str | None = None) -> list[tuple[int, str, str, float]]:
        """Live and stale claims: ``(image_id, kind, holder, expires_at)``."""
        sql, params = "SELECT image_id, kind, holder, expires_at FROM claims", tuple[str, ...]()
        if kind is not None:
            sql, params = sql + " WHERE kind = ?", (kind,)
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3]))
                for r in self._db.query(sql + " ORDER BY image_id", params)]
