"""Assignment and leases: who labels which image, and "Next" that never gives two people the
same image.

* :meth:`Assignments.assign` spreads the images nobody is assigned (and not finished) over the
  annotators, balanced (counts differ by at most one), in id order, round-robin.
* A lease (``leases`` table) says an image is being labelled by a person until ``expires_at``.
  Every write a person makes on an image renews their lease (see :meth:`.people.People.guard`),
  so an image being worked on stays theirs; a closed laptop stops renewing and the image goes back
  to the pool when the lease runs out (:data:`~.people.LEASE_TTL_S`).
* :meth:`Assignments.next_for` gives a person their next image and leases it, in ONE transaction
  under the write lock (two people asking at once never get the same image): first an image
  they already hold, then their assigned images that need work (returned by a reviewer first,
  then in progress, then unreviewed), then an unassigned image nobody holds.

Invariant (checked by :func:`.integrity.check`): outside consensus images, no image has two live
leases.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import now

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database, Tx
    from text2seg_widgets.store.images import Images
    from text2seg_widgets.store.people import People
    from text2seg_widgets.store.records import ImageRecord

__all__ = ["Assignments", "NEEDS_WORK"]

#: An image needs work when it is not finished: unreviewed or in progress (a returned image is in
#: progress again).
NEEDS_WORK = "i.state IN ('unreviewed', 'in progress')"
#: A project image (not a replica) that is not labelled through replicas either.
OWN_WORK = "i.replica = '' AND NOT EXISTS (SELECT 1 FROM images r WHERE r.replica_of = i.id)"


class Assignments:
    """The assignments and leases of a project (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor", people: "People", images: "Images") -> None:
        self.db, self.actor, self.people, self.images = db, actor, people, images

    def assign(self, annotators: Sequence[str], *, image_ids: Sequence[int] | None = None,
               overlap: float = 0.0, honeypots: int = 0,
               user: str | None = None) -> dict[str, list[int]]:
        """Assign the images that need work and are assigned to nobody (or only ``image_ids``)
        to ``annotators`` (members of the project), balanced; returns name -> new image ids.

        ``overlap``: this share of those images becomes *consensus* images: each is labelled
        independently by two of the annotators, on replicas of their own (the ids returned), and
        compared (:mod:`.agreement`). ``honeypots``: this many finished images with imported
        ground truth are mixed into each annotator's work, as replicas without the truth."""
        names = [" ".join(a.split()) for a in annotators if a.strip()]
        if not names:
            raise InputError("give at least one annotator (--annotators anna,ben)")
        if len(set(names)) != len(names):
            raise InputError(f"an annotator is named twice in {', '.join(names)}")
        if not 0.0 <= float(overlap) <= 1.0:
            raise InputError(f"overlap is a share of the images, from 0 to 1; got {overlap}")
        if overlap > 0 and len(names) < 2:
            raise InputError("consensus images (overlap) need at least two annotators")
        if int(honeypots) < 0:
            raise InputError(f"honeypots is a number of images per annotator, got {honeypots}")
        who = self.actor.who(user)
        out: dict[str, list[int]] = {n: [] for n in names}
        with self.db.raw() as tx:
            self.people.require(tx, who, "assign")
            members = {str(r[0]) for r in tx.conn.execute("SELECT name FROM members").fetchall()}
            strangers = [n for n in names if n not in members]
            if members and strangers:
                raise InputError(f"{', '.join(strangers)} are not members of this project; add "
                                 "them first (`project members add PROJECT NAME --role annotator`)")
            free = [int(r[0]) for r in tx.conn.execute(
                f"SELECT i.id FROM images i WHERE {NEEDS_WORK} AND {OWN_WORK} AND NOT EXISTS "
                "(SELECT 1 FROM assignments a WHERE a.image_id = i.id) ORDER BY i.id").fetchall()]
            if image_ids is not None:
                keep = {int(i) for i in image_ids}
                free = [i for i in free if i in keep]
            load = {n: int(tx.conn.execute('SELECT COUNT(*) FROM assignments WHERE "user" = ?',
                                           (n,)).scalar()) for n in names}
            stamp = now()
            shared = round(float(overlap) * len(free))
            chosen = [free[int((k + 0.5) * len(free) / shared)] for k in range(shared)] if shared else []
            for k, image_id in enumerate(chosen):
                for name in (names[k % len(names)], names[(k + 1) % len(names)]):
                    out[name].append(self._replica(tx, image_id, name, "consensus", stamp))
                    load[name] += 1
            truth = [int(r[0]) for r in tx.conn.execute(
                "SELECT i.id FROM images i WHERE i.replica = '' AND i.state = 'done' AND EXISTS "
                "(SELECT 1 FROM annotations a WHERE a.image_id = i.id AND a.origin = 'imported') "
                "ORDER BY i.id").fetchall()]
            if honeypots and len(truth) < int(honeypots):
                raise InputError(f"{honeypots} honeypot(s) per annotator asked, but only "
                                 f"{len(truth)} finished image(s) hold imported ground truth "
                                 "(import it with `project import-coco`, then finish them)")
            for j, name in enumerate(names):
                for k in range(int(honeypots)):
                    image_id = truth[(j * int(honeypots) + k) % len(truth)]
                    if not tx.conn.execute("SELECT 1 FROM images WHERE replica_of = ? AND "
                                           "replica = ?", (image_id, name)).fetchone():
                        out[name].append(self._replica(tx, image_id, name, "honeypot", stamp))
            free = [i for i in free if i not in set(chosen)]
            for image_id in free:
                name = min(names, key=lambda n: (load[n], names.index(n)))
                tx.conn.execute('INSERT INTO assignments (image_id, "user", kind, assigned_at) '
                                "VALUES (?, ?, 'work', ?)", (image_id, name, stamp))
                load[name] += 1
                out[name].append(image_id)
        return out

    @staticmethod
    def _replica(tx: "Tx", image_id: int, name: str, kind: str, stamp: str) -> int:
        """A replica of ``image_id`` for ``name`` (its candidates copied, all proposed again;
        no annotations: nobody's masks, nor the ground truth, come along); returns its id."""
        row = tx.row("images", image_id)
        assert row is not None  # chosen from the images table in this transaction
        replica = tx.insert("images", {
            **{k: row[k] for k in ("path", "width", "height", "crs", "transform", "checksum", "win")},
            "added_at": stamp, "replica": name, "replica_of": image_id})
        tx.conn.execute(
            "INSERT INTO candidates (image_id, run_id, class_id, counts, height, width, bbox, area, "
            "score, branch, prompt, model, extra, status) SELECT ?, run_id, class_id, counts, "
            "height, width, bbox, area, score, branch, prompt, model, extra, 'proposed' FROM "
            "candidates WHERE image_id = ? ORDER BY id", (replica, image_id))
        tx.conn.execute('INSERT INTO assignments (image_id, "user", kind, assigned_at) '
                        "VALUES (?, ?, ?, ?)", (replica, name, kind, stamp))
        return replica

    def assigned(self, user: str | None = None) -> list[int]:
        """The image ids assigned to ``user`` (default: this session's user), by id."""
        who = self.actor.who(user)
        return [int(r[0]) for r in self.db.query(
            'SELECT image_id FROM assignments WHERE "user" = ? ORDER BY image_id', (who or "",))]

    def assignees(self) -> dict[int, list[str]]:
        """image id -> the people it is assigned to."""
        out: dict[int, list[str]] = {}
        for r in self.db.query('SELECT image_id, "user" FROM assignments ORDER BY image_id, "user"'):
            out.setdefault(int(r[0]), []).append(str(r[1]))
        return out

    def leases(self) -> list[tuple[int, str, float]]:
        """The live leases: ``(image_id, user, expires_at)``."""
        return [(int(r[0]), str(r[1]), float(r[2])) for r in self.db.query(
            'SELECT image_id, "user", expires_at FROM leases WHERE expires_at > ? '
            "ORDER BY image_id", (time.time(),))]

    def next_for(self, user: str | None = None, *, after: int | None = None) -> "ImageRecord | None":
        """``user``'s next image, leased to them (see the module doc); ``None`` when there is no
        work left for them. ``after``: the image they leave (its lease is given back)."""
        who = self.actor.who(user)
        with self.db.raw() as tx:
            self.people.require(tx, who, "annotate")
            if after is not None:
                tx.conn.execute('DELETE FROM leases WHERE image_id = ? AND "user" = ?',
                                (int(after), who or ""))
            image_id = self._pick(tx, who or "", after)
            if image_id is not None:
                self.people.hold(tx, image_id, who)
        return self.images.image(image_id) if image_id is not None else None

    def _pick(self, tx: "Tx", who: str, after: int | None) -> int | None:
        clock = time.time()
        skip = int(after) if after is not None else -1
        others = ('NOT EXISTS (SELECT 1 FROM leases l WHERE l.image_id = i.id AND l."user" != ? '
                  "AND l.expires_at > ? AND NOT EXISTS (SELECT 1 FROM assignments c WHERE "
                  "c.image_id = i.id AND c.kind = 'consensus'))")
        held = tx.conn.execute(
            f"SELECT i.id FROM images i JOIN leases l ON l.image_id = i.id WHERE "
            f'l."user" = ? AND l.expires_at > ? AND {NEEDS_WORK} AND i.id != ? ORDER BY i.id '
            "LIMIT 1", (who, clock, skip)).fetchone()
        if held is not None:
            return int(held[0])
        mine = tx.conn.execute(
            f"SELECT i.id FROM images i JOIN assignments a ON a.image_id = i.id WHERE "
            f'a."user" = ? AND {NEEDS_WORK} AND i.id != ? AND {others} ORDER BY '
            "CASE WHEN i.review = 'returned' THEN 0 WHEN i.state = 'in progress' THEN 1 ELSE 2 "
            "END, i.id LIMIT 1", (who, skip, who, clock)).fetchone()
        if mine is not None:
            return int(mine[0])
        pool = tx.conn.execute(
            f"SELECT i.id FROM images i WHERE {NEEDS_WORK} AND {OWN_WORK} AND i.id != ? AND NOT "
            f"EXISTS (SELECT 1 FROM assignments a WHERE a.image_id = i.id) AND {others} "
            "ORDER BY i.id LIMIT 1",
            (skip, who, clock)).fetchone()
        return int(pool[0]) if pool is not None else None

    def release(self, image_id: int, user: str | None = None) -> None:
        """Give back ``user``'s lease on an image (leaving it, or closing the Annotator)."""
        with self.db.raw() as tx:
            tx.conn.execute('DELETE FROM leases WHERE image_id = ? AND "user" = ?',
                            (int(image_id), self.actor.who(user) or ""))

    def renew(self, user: str | None = None) -> int:
        """Renew every live lease ``user`` holds (a heartbeat while they look without writing);
        returns how many."""
        with self.db.raw() as tx:
            return tx.conn.execute(
                'UPDATE leases SET expires_at = ? WHERE "user" = ? AND expires_at > ?',
                (time.time() + self.people.lease_ttl_s, self.actor.who(user) or "",
                 time.time())).rowcount
