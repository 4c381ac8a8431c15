"""Image review states and the invariant that keeps them honest (a part of :class:`~.project.Project`).

Invariant: **an image is ``done`` only when none of its candidates is ``proposed``.** A done image
with 0 annotations therefore always means "somebody looked and found nothing", never "nobody
looked". It holds through every path:

- :meth:`States.set_state` refuses ``done`` with proposed candidates left
  (:class:`~text2seg_widgets.errors.UnreviewedError`, which says how many and the ways out);
- :meth:`States.finish_image` marks the image done; with ``rest="reject"`` it first rejects
  the proposed candidates left, in the same undoable action;
- :meth:`States.skip_image` sets ``skipped`` (with a reason); skipped images are not exported
  by default, so their proposed candidates never become training data;
- adding candidates to a done image (a new pseudo-label run) moves it back to ``in progress``
  (:meth:`~.review.Review.add_candidates`);
- SQLite triggers (schema version 2) refuse any write that would break it, undo/redo included: a
  replay that would break it raises :class:`~.db.ConflictError` and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from text2seg_widgets.errors import InputError, UnreviewedError
from text2seg_widgets.store.db import Tx, now
from text2seg_widgets.store.schema import check_state

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.images import Images

__all__ = ["States", "check_state", "FINISH_RULES", "unreviewed_message"]

#: What :meth:`States.finish_image` does with proposed candidates left on the image.
FINISH_RULES = ("require", "reject")


def unreviewed_message(image_id: int, count: int) -> str:
    return (f"image {image_id} still has {count} unreviewed candidate(s), so it cannot be marked "
            "done (that would export 'nothing here' where nobody looked). Accept or reject "
            "them, or finish it with finish_image(image_id, rest='reject') to reject the rest, "
            "or skip_image(image_id) to leave it out of exports")


def proposed_count(tx: Tx, image_id: int) -> int:
    return int(tx.conn.execute("SELECT COUNT(*) FROM candidates WHERE image_id = ? AND "
                               "status = 'proposed'", (int(image_id),)).scalar())


class States:
    """Image state changes, each one undoable action (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor", images: "Images") -> None:
        self.db, self.actor, self.images = db, actor, images

    def set_state_in(self, tx: Tx, image_id: int, state: str, who: str | None,
                      note: str = "") -> None:
        if state == "done":
            left = proposed_count(tx, image_id)
            if left:
                raise UnreviewedError(unreviewed_message(image_id, left), image_id=image_id,
                                      count=left)
        values = {"state": state, "state_user": who, "state_at": now(), "state_note": note}
        if tx.conn.execute("SELECT 1 FROM members LIMIT 1").fetchone() is not None:
            # a team project: a finished image waits for a reviewer; reopening it withdraws it
            row = tx.row("images", image_id)
            current = row["review"] if row is not None else ""
            if row is not None and not row["replica"]:  # replicas are compared, not reviewed
                values["review"] = "pending" if state == "done" else (
                    "returned" if current == "returned" else "")
        tx.update("images", image_id, values)

    def set_state(self, image_id: int, state: str, user: str | None = None) -> None:
        """Set an image's review state (one undoable action).

        ``done`` is refused with :class:`UnreviewedError` while candidates on the image are
        still proposed; see :meth:`finish_image` and :meth:`skip_image`."""
        check_state(state)
        rec = self.images.image(image_id)
        who = self.actor.who(user)
        with self.db.action(f"mark image {rec.id} {state}", user=who) as tx:
            self.set_state_in(tx, rec.id, state, who)

    def finish_image(self, image_id: int, *, rest: str = "require",
                     user: str | None = None) -> int:
        """Mark the image done; return how many proposed candidates were rejected to do so.

        ``rest="require"``: every candidate must already be reviewed (else
        :class:`UnreviewedError`, nothing changed). ``rest="reject"``: the proposed candidates
        left are rejected and the image marked done in ONE undoable action."""
        if rest not in FINISH_RULES:
            raise InputError(f"rest must be one of {FINISH_RULES}, got {rest!r}")
        rec = self.images.image(image_id)
        who = self.actor.who(user)
        label = (f"mark image {rec.id} done" if rest == "require" else
                 f"mark image {rec.id} done, rejecting the rest")
        with self.db.action(label, user=who) as tx:
            rejected = 0
            if rest == "reject":
                stamp = now()
                for (cand_id,) in tx.conn.execute(
                        "SELECT id FROM candidates WHERE image_id = ? AND status = 'proposed' "
                        "ORDER BY id", (rec.id,)).fetchall():
                    tx.update("candidates", cand_id, {"status": "rejected", "reviewed_by": who,
                                                      "reviewed_at": stamp})
                    rejected += 1
            self.set_state_in(tx, rec.id, "done", who)
        return rejected

    def skip_image(self, image_id: int, *, reason: str = "", user: str | None = None) -> None:
        """Mark the image ``skipped`` (left out of exports by default), with an optional reason;
        one undoable action. Its candidates keep their review state."""
        rec = self.images.image(image_id)
        who = self.actor.who(user)
        note = " ".join(str(reason).split())[:500]
        with self.db.action(f"skip image {rec.id}" + (f" ({note})" if note else ""),
                             user=who) as tx:
            self.set_state_in(tx, rec.id, "skipped", who, note)

    def reopen_if_done(self, tx: Tx, image_id: int) -> None:
        """A done image that receives proposed candidates goes back to ``in progress``
        (pipeline write, not an undo step)."""
        row = tx.row("images", image_id)
        if row is not None and row["state"] == "done":
            tx.update("images", image_id, {"state": "in progress", "state_at": now(),
                                           "state_note": "new candidates"})
