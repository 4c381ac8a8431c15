"""Candidates and annotations: the review actions (a part of :class:`~.project.Project`).

Rules (each is one transaction; the user actions are undoable):

- :meth:`add_candidates` only inserts proposals; it never touches annotations, so re-running
  pseudo-labelling cannot overwrite accepted work. ``replace=True`` drops the image's *proposed*
  candidates first (accepted and rejected ones stay, they are review history).
- :meth:`accept` turns a proposed (or rejected) candidate into an annotation; a candidate is
  accepted at most once. Accepting or adding on an ``unreviewed`` image moves it to
  ``in progress`` in the same action.
- :meth:`delete_annotation` marks the candidate it came from ``rejected``.
- :meth:`add_candidates` on a ``done`` image moves it back to ``in progress`` (see :mod:`.states`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.core import (Candidate, mask_to_rle, rle_area, rle_to_mask)
from text2seg_widgets.store.db import ConflictError, Tx, now
from text2seg_widgets.store.records import (mask_columns, AnnotationRecord, CandidateRecord, MaskRow,
                                            annotation_from_row, candidate_from_row)
from text2seg_widgets.store.schema import CANDIDATE_STATUSES

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.backup import Backups
    from text2seg_widgets.store.classes import Classes
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.images import Images
    from text2seg_widgets.store.records import ImageRecord
    from text2seg_widgets.store.states import States

__all__ = ["Review"]

log = logging.getLogger(__name__)


def _rle_of(mask: Any, height: int, width: int) -> dict[str, Any]:
    """A mask given as an array or as COCO RLE, checked against the image size."""
    if isinstance(mask, dict):
        rle = mask_to_rle(rle_to_mask(mask)) if not isinstance(mask.get("counts"), str) else mask
    else:
        rle = mask_to_rle(np.asarray(mask).astype(bool))
    size = [int(v) for v in rle["size"]]
    if size != [height, width]:
        raise InputError(f"mask is {size[0]} x {size[1]} (height x width) but the image is "
                         f"{height} x {width}; masks are in the image's own pixel grid")
    return {"size": size, "counts": rle["counts"]}


def _check_actions(actions: Any) -> int:
    if isinstance(actions, bool) or not isinstance(actions, (int, np.integer)) or actions < 0:
        raise InputError(f"actions must be a whole number >= 0 (clicks, boxes or polygon edits "
                         f"spent), got {actions!r}")
    return int(actions)


def _edited(row: dict[str, Any], actions: int) -> dict[str, Any]:
    """Effort columns after an edit of ``actions`` steps (drawn stays drawn)."""
    origin = row["origin"] if row["origin"] == "drawn" else "corrected"
    return {"origin": origin, "edit_actions": int(row["edit_actions"]) + actions}


class Review:
    """Candidates and annotations (built by :class:`~.project.Project` with the parts it uses)."""

    def __init__(self, db: "Database", actor: "Actor", images: "Images", classes: "Classes",
                 states: "States", backups: "Backups") -> None:
        self.db, self.actor, self.images = db, actor, images
        self.classes, self.states, self.backups = classes, states, backups

    def _class_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.classes.all()}

    # ----------------------------------------------------------------- candidates
    def add_candidates(self, image_id: int, candidates: Iterable[Candidate],
                       run_id: int | None = None, *, replace: bool = False,
                       mark_processed: bool = False) -> list[int]:
        """Store proposals for one image; returns their ids. Never touches annotations.

        ``mark_processed`` also records (image, ``run_id``) as done in the same transaction, so a
        killed batch run resumes exactly after the last image whose candidates were saved."""
        rec = self.images.image(image_id)
        ids_by_name = {c.name: c.id for c in self.classes.all()}
        rows = []
        for cand in candidates:
            if cand.class_name not in ids_by_name:
                raise InputError(f"candidate class {cand.class_name!r} is not a project class "
                                 f"({', '.join(map(repr, ids_by_name))}); add it first")
            rle = _rle_of(cand.rle, rec.height, rec.width)
            rows.append({"image_id": rec.id, "run_id": run_id,
                         "class_id": ids_by_name[cand.class_name], **mask_columns(rle),
                         "score": float(cand.score), "branch": str(cand.branch),
                         "prompt": cand.prompt or "", "model": cand.model or "",
                         "extra": json.dumps(cand.extra or {}, default=str)})
        if mark_processed and run_id is None:
            raise InputError("mark_processed=True needs a run_id from project.start_run()")
        with self.db.raw() as tx:
            if mark_processed and tx.conn.execute(
                    "SELECT 1 FROM processed WHERE image_id = ? AND run_id = ?",
                    (rec.id, run_id)).fetchone():
                log.warning("image %d was already stored by run %s (another process of the same "
                            "run); these %d candidates are not stored twice", rec.id, run_id,
                            len(rows))
                return []
            if replace:
                tx.conn.execute("DELETE FROM candidates WHERE image_id = ? AND status = "
                                "'proposed'", (rec.id,))
            if rows:
                self.states.reopen_if_done(tx, rec.id)  # new proposals: the image is not done any more
            ids = [tx.insert("candidates", row) for row in rows]
            if mark_processed:
                tx.conn.execute("INSERT INTO processed (image_id, run_id, at) VALUES "
                                "(?, ?, ?) ON CONFLICT (image_id, run_id) DO NOTHING",
                                (rec.id, run_id, now()))
        return ids

    def candidates(self, image_id: int | None = None,
                   status: str | None = None) -> list[CandidateRecord]:
        if status is not None and status not in CANDIDATE_STATUSES:
            raise InputError(f"unknown status {status!r}; use one of {CANDIDATE_STATUSES}")
        sql, params = "SELECT * FROM candidates WHERE 1=1", list[Any]()
        if image_id is not None:
            sql, params = sql + " AND image_id = ?", [*params, int(image_id)]
        if status is not None:
            sql, params = sql + " AND status = ?", [*params, status]
        names = self._class_names()
        return [candidate_from_row(r, names[r["class_id"]])
                for r in self.db.query(sql + " ORDER BY id", tuple(params))]

    def mask_rows(self, image_id: int) -> list[MaskRow]:
        """The image's drawable masks in one light read (no JSON decoded, no records built):
        candidates not accepted (proposed and rejected; an accepted one is drawn as its
        annotation), then annotations, each in id order. For displays that redraw often."""
        names = self._class_names()
        rows = self.db.query(
            "SELECT 'candidate', id, class_id, status, counts, height, width, score, branch FROM candidates "
            "WHERE image_id = ? AND status != 'accepted' "
            "UNION ALL SELECT 'annotation', id, class_id, 'accepted', counts, height, width, score, source "
            "FROM annotations WHERE image_id = ? ORDER BY 1 DESC, 2", (int(image_id), int(image_id)))
        return [MaskRow(r[0], r[1], names[r[2]], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def candidate(self, candidate_id: int) -> CandidateRecord:
        rows = self.db.query("SELECT * FROM candidates WHERE id = ?", (int(candidate_id),))
        if not rows:
            raise InputError(f"no candidate with id {candidate_id}")
        return candidate_from_row(rows[0], self._class_names()[rows[0]["class_id"]])

    def _review_candidate(self, tx: Tx, candidate_id: int, status: str, who: str | None) -> dict:
        row = tx.row("candidates", int(candidate_id))
        if row is None:
            raise InputError(f"no candidate with id {candidate_id} (deleted, or never stored)")
        if row["status"] == "accepted":
            raise ConflictError(f"candidate {candidate_id} is already accepted (maybe in another "
                                "session); edit or delete its annotation instead")
        tx.update("candidates", row["id"], {"status": status, "reviewed_by": who,
                                            "reviewed_at": now()})
        return row

    def _touch_image(self, tx: Tx, image_id: int, who: str | None) -> None:
        row = tx.row("images", image_id)
        if row is not None and row["state"] == "unreviewed":
            tx.update("images", image_id, {"state": "in progress", "state_user": who,
                                           "state_at": now()})

    def _accept_in(self, tx: Tx, candidate_id: int, class_id: int | None, who: str | None) -> int:
        row = self._review_candidate(tx, candidate_id, "accepted", who)
        stamp = now()
        relabelled = class_id is not None and class_id != row["class_id"]
        ann_id = tx.insert("annotations", {
            "image_id": row["image_id"], "class_id": class_id or row["class_id"],
            "counts": row["counts"], "height": row["height"], "width": row["width"],
            "bbox": row["bbox"], "area": row["area"], "score": row["score"],
            "source": row["branch"], "candidate_id": row["id"], "user": who,
            "created_at": stamp, "updated_at": stamp,
            # accepted as another class: one correction; else taken as proposed
            "origin": "corrected" if relabelled else "proposed",
            "edit_actions": 1 if relabelled else 0})
        self._touch_image(tx, row["image_id"], who)
        return ann_id

    def accept(self, candidate_id: int, class_name: str | None = None,
               user: str | None = None) -> int:
        """Accept a candidate (optionally as another class); returns the new annotation's id."""
        class_id = self.classes.class_info(class_name).id if class_name is not None else None
        who = self.actor.who(user)
        with self.db.action(f"accept candidate {candidate_id}", user=who) as tx:
            return self._accept_in(tx, candidate_id, class_id, who)

    def accept_above(self, image_id: int, min_score: float, user: str | None = None) -> list[int]:
        """Accept every proposed candidate of the image scoring at least ``min_score``, as one
        undoable action; returns the new annotation ids (highest score first)."""
        who = self.actor.who(user)
        with self.db.action(f"accept candidates >= {min_score:g} on image {image_id}",
                             user=who) as tx:
            ids = [r[0] for r in tx.conn.execute(
                "SELECT id FROM candidates WHERE image_id = ? AND status = 'proposed' AND "
                "score >= ? ORDER BY score DESC, id", (int(image_id), float(min_score)))]
            return [self._accept_in(tx, cid, None, who) for cid in ids]

    def accept_many(self, candidate_ids: Sequence[int], description: str | None = None,
                    user: str | None = None) -> list[int]:
        """Accept the given candidates as ONE undoable action (e.g. "accept all above the
        calibrated threshold"); returns the new annotation ids in the order given. When they lie
        on more than one image an automatic backup is taken first (see :mod:`.backup`)."""
        who = self.actor.who(user)
        ids = [int(c) for c in candidate_ids]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        images = self.db.query(f"SELECT COUNT(DISTINCT image_id) FROM candidates WHERE id IN "
                                f"({marks})", tuple(ids))[0][0]
        if images > 1:  # accept-all across the project: keep a copy first
            self.backups.auto_backup(f"accept {len(ids)} candidates on {images} images")
        with self.db.action(description or f"accept {len(ids)} candidates", user=who) as tx:
            return [self._accept_in(tx, cid, None, who) for cid in ids]

    def reject(self, candidate_id: int, user: str | None = None) -> None:
        who = self.actor.who(user)
        with self.db.action(f"reject candidate {candidate_id}", user=who) as tx:
            self._review_candidate(tx, candidate_id, "rejected", who)

    # ----------------------------------------------------------------- annotations
    def annotations(self, image_id: int | None = None) -> list[AnnotationRecord]:
        names = self._class_names()
        if image_id is None:
            rows = self.db.query("SELECT * FROM annotations ORDER BY id")
        else:
            rows = self.db.query("SELECT * FROM annotations WHERE image_id = ? ORDER BY id",
                                  (int(image_id),))
        return [annotation_from_row(r, names[r["class_id"]]) for r in rows]

    def annotation(self, annotation_id: int) -> AnnotationRecord:
        rows = self.db.query("SELECT * FROM annotations WHERE id = ?", (int(annotation_id),))
        if not rows:
            raise InputError(f"no annotation with id {annotation_id} (deleted?)")
        return annotation_from_row(rows[0], self._class_names()[rows[0]["class_id"]])

    def add_annotation(self, image_id: int, mask: Any, class_name: str, source: str = "manual",
                       score: float = 1.0, user: str | None = None, *, actions: int = 1) -> int:
        """Add a hand-made mask (array or COCO RLE in the image's pixels); returns its id.

        Effort: origin ``drawn`` with ``edit_actions = actions`` (the clicks/boxes/polygons it
        took); ``source="import"`` makes it ``imported`` (0 actions)."""
        actions = _check_actions(actions)
        rec = self.images.image(image_id)
        class_id = self.classes.class_info(class_name).id
        rle = _rle_of(mask, rec.height, rec.width)
        if rle_area(rle) == 0:
            raise InputError("the mask is empty (no pixel set); nothing to add")
        who = self.actor.who(user)
        with self.db.action(f"add {class_name!r} mask on image {rec.id}", user=who) as tx:
            stamp = now()
            ann_id = tx.insert("annotations", {
                "image_id": rec.id, "class_id": class_id, **mask_columns(rle),
                "score": float(score), "source": source, "candidate_id": None, "user": who,
                "created_at": stamp, "updated_at": stamp,
                "origin": "imported" if source == "import" else "drawn",
                "edit_actions": 0 if source == "import" else actions})
            self._touch_image(tx, rec.id, who)
        return ann_id

    def add_annotations(self, items: Iterable[dict[str, Any]], description: str | None = None,
                        user: str | None = None) -> list[int]:
        """Add many masks as ONE undoable action (e.g. an import). Each item: ``image_id``,
        ``mask`` (array or RLE), ``class_name``, optional ``source`` (default ``import``) and
        ``score``. Empty masks are skipped."""
        who, stamp = self.actor.who(user), now()
        rows: list[dict[str, Any]] = []
        images: dict[int, ImageRecord] = {}
        ids_by_name = {c.name: c.id for c in self.classes.all()}
        for item in items:
            rec = images.get(item["image_id"]) or self.images.image(item["image_id"])
            images[rec.id] = rec
            if item["class_name"] not in ids_by_name:
                self.classes.class_info(item["class_name"])  # raises the unknown-class InputError
            rle = _rle_of(item["mask"], rec.height, rec.width)
            if rle_area(rle) == 0:
                continue
            source = str(item.get("source", "import"))
            rows.append({"image_id": rec.id, "class_id": ids_by_name[item["class_name"]],
                         **mask_columns(rle), "score": float(item.get("score", 1.0)),
                         "source": source, "candidate_id": None,
                         "user": who, "created_at": stamp, "updated_at": stamp,
                         "origin": "imported" if source == "import" else "drawn",
                         "edit_actions": 0 if source == "import" else
                         _check_actions(item.get("actions", 1))})
        if not rows:
            return []
        with self.db.action(description or f"add {len(rows)} annotations", user=who) as tx:
            ids = [tx.insert("annotations", row) for row in rows]
            for image_id in images:
                self._touch_image(tx, image_id, who)
        return ids

    def _existing(self, tx: Tx, annotation_id: int,
                  expected: AnnotationRecord | None = None) -> dict[str, Any]:
        """The row, checked against ``expected`` (the record the caller's edit is based on)."""
        row = tx.row("annotations", int(annotation_id))
        if row is None:
            raise ConflictError(f"annotation {annotation_id} does not exist (deleted, maybe in "
                                "another session); reload the image")
        if expected is not None:
            names = {r[0]: r[1] for r in tx.conn.execute("SELECT id, name FROM classes")}
            if (row["counts"], names.get(row["class_id"])) != (expected.rle["counts"],
                                                               expected.class_name):
                raise ConflictError(f"annotation {annotation_id} was changed (maybe in another "
                                    "session) since it was loaded; reload the image and redo "
                                    "the edit. Nothing was changed")
        return row

    def update_annotation_mask(self, annotation_id: int, mask: Any, user: str | None = None,
                               *, expected: AnnotationRecord | None = None,
                               actions: int = 1) -> None:
        """Replace an annotation's mask (bbox and area follow). An empty mask is refused.

        ``expected``: the record the edit started from; if the stored annotation differs (another
        session edited it meanwhile) :class:`ConflictError` is raised instead of overwriting.
        Effort: ``edit_actions += actions`` (clicks/boxes/polygon edits of this refinement); the
        origin becomes ``corrected`` unless the annotation was ``drawn``."""
        actions = _check_actions(actions)
        who = self.actor.who(user)
        with self.db.action(f"edit mask of annotation {annotation_id}", user=who) as tx:
            row = self._existing(tx, annotation_id, expected)
            rle = _rle_of(mask, row["height"], row["width"])
            if rle_area(rle) == 0:
                raise InputError("the edited mask is empty; use delete_annotation() to remove it")
            tx.update("annotations", row["id"], {**mask_columns(rle), "user": who,
                                                 "updated_at": now(), **_edited(row, actions)})

    def relabel(self, annotation_id: int, class_name: str, user: str | None = None, *,
                expected: AnnotationRecord | None = None) -> None:
        """Give an annotation another class (one edit action: a proposal becomes
        ``corrected``); relabelling to its own class costs no effort."""
        class_id = self.classes.class_info(class_name).id
        who = self.actor.who(user)
        with self.db.action(f"relabel annotation {annotation_id} as {class_name!r}",
                             user=who) as tx:
            row = self._existing(tx, annotation_id, expected)
            effort = _edited(row, 1) if row["class_id"] != class_id else {}
            tx.update("annotations", row["id"], {"class_id": class_id, "user": who,
                                                 "updated_at": now(), **effort})

    def delete_annotation(self, annotation_id: int, user: str | None = None, *,
                          expected: AnnotationRecord | None = None) -> None:
        who = self.actor.who(user)
        with self.db.action(f"delete annotation {annotation_id}", user=who) as tx:
            row = self._existing(tx, annotation_id, expected)
            tx.delete("annotations", row["id"])
            if row["candidate_id"] is not None and tx.row("candidates", row["candidate_id"]):
                tx.update("candidates", row["candidate_id"], {
                    "status": "rejected", "reviewed_by": who, "reviewed_at": now()})
