"""The review stage of a team project: a finished image waits for a reviewer, who approves it or
returns it to its annotator with a comment.

In a project with members (see :mod:`.people`), finishing an image (state ``done``) sets its
``review`` to ``pending``. A reviewer then:

* :meth:`ReviewStage.approve` -> ``approved`` (exports can take approved images only:
  ``states=("approved",)``);
* :meth:`ReviewStage.return_image` with a comment -> ``returned``; the image is ``in progress``
  again, assigned to the annotator who finished it, who finds it first in their *Next* with the
  comment (:attr:`~.records.ImageRecord.review_note`).

Each verdict is one undoable action of the reviewer, and a row of ``review_events`` (the image's
review history). Only reviewers and managers may give verdicts (checked by the store's guard).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import now

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.images import Images
    from text2seg_widgets.store.people import People
    from text2seg_widgets.store.records import ImageRecord

__all__ = ["ReviewStage"]


class ReviewStage:
    """Verdicts on finished images (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor", people: "People", images: "Images") -> None:
        self.db, self.actor, self.people, self.images = db, actor, people, images

    def queue(self) -> list["ImageRecord"]:
        """Images waiting for a verdict, oldest finished first."""
        rows = self.db.query("SELECT id FROM images WHERE review = 'pending' ORDER BY state_at, id")
        return [self.images.image(int(r[0])) for r in rows]

    def approve(self, image_id: int, comment: str = "", *, user: str | None = None) -> None:
        self._verdict(image_id, "approved", comment, user)

    def return_image(self, image_id: int, comment: str, *, user: str | None = None) -> None:
        """Send a finished image back to its annotator; ``comment`` says what to fix."""
        if not " ".join(str(comment).split()):
            raise InputError("say why the image goes back (a comment the annotator will read)")
        self._verdict(image_id, "returned", comment, user)

    def _verdict(self, image_id: int, verdict: str, comment: str, user: str | None) -> None:
        rec = self.images.image(image_id)
        who = self.actor.who(user)
        note = " ".join(str(comment).split())[:2000]
        verb = "approve" if verdict == "approved" else "return"
        with self.db.action(f"{verb} image {rec.id}" + (f": {note[:60]}" if note else ""),
                            user=who) as tx:
            row = tx.row("images", rec.id)
            if row is None or row["state"] != "done" or row["review"] not in ("pending", "approved"):
                state = "" if row is None else f" (it is {row['state']}" + (
                    f", review {row['review']})" if row and row["review"] else ")")
                raise InputError(f"image {rec.id} is not waiting for review{state}; only "
                                 "finished images are approved or returned")
            values: dict[str, Any] = {"review": verdict, "review_note": note,
                                      "reviewed_by": who, "reviewed_at": now()}
            if verdict == "returned":
                values.update(state="in progress", state_at=now())
                owner = row["state_user"]
                if owner and not tx.conn.execute('SELECT 1 FROM assignments WHERE image_id = ? AND '
                                                 '"user" = ?', (rec.id, owner)).fetchone():
                    tx.conn.execute('INSERT INTO assignments (image_id, "user", kind, assigned_at) '
                                    "VALUES (?, ?, 'work', ?)", (rec.id, owner, now()))
            tx.update("images", rec.id, values)
            tx.conn.execute('INSERT INTO review_events (image_id, "user", verdict, comment, at) '
                            "VALUES (?, ?, ?, ?, ?)", (rec.id, who, verdict, note, now()))

    def events(self, image_id: int) -> list[dict[str, Any]]:
        """The image's verdicts, oldest first: user, verdict, comment, at."""
        return [dict(r) for r in self.db.query(
            'SELECT "user", verdict, comment, at FROM review_events WHERE image_id = ? '
            "ORDER BY id", (int(image_id),))]
