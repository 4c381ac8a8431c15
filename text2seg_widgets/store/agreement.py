"""Agreement between annotators (consensus images) and their accuracy on honeypots.

A consensus image is labelled independently by two (or more) annotators, each on a replica of
their own (:mod:`.assignments`); a honeypot is a finished image with imported ground truth, given
to an annotator as a replica without the truth. Measures, per class, over finished replicas:

* **instance F1**: instances of one class matched one-to-one at mask IoU >= :data:`MATCH_IOU`
  (greedy, highest IoU first); F1 = 2 x matches / (instances of A + instances of B);
* **pixel IoU**: the union of A's masks of the class against the union of B's.

Both are pooled over images (matches and instance counts summed; intersections and unions summed),
so a big image weighs by its objects and pixels. Images where neither side has the class do not
count for it. :meth:`Agreement.resolve` ends a consensus: a reviewer picks one annotator's masks,
or merges them (every instance of the first, plus the others' unmatched instances), into the
image itself, which is then done and approved (one undoable action).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

from text2seg_widgets.core.masks import as_coco_rle
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import now
from text2seg_widgets.store.records import mask_columns

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database

__all__ = ["Agreement", "MATCH_IOU", "Tally", "compare"]

#: Two instances of a class are the same object at this mask IoU or more.
MATCH_IOU = 0.5

Instance = tuple[str, dict[str, Any]]  # (class name, COCO RLE)


@dataclass
class Tally:
    """Pooled counts of one class (or one pair, one annotator)."""

    matches: int = 0
    left: int = 0
    right: int = 0
    intersection: float = 0.0
    union: float = 0.0
    images: set[int] = field(default_factory=set)

    def add(self, other: "Tally") -> None:
        self.matches += other.matches
        self.left += other.left
        self.right += other.right
        self.intersection += other.intersection
        self.union += other.union
        self.images |= other.images

    def summary(self) -> dict[str, Any]:
        total = self.left + self.right
        return {"f1": round(2 * self.matches / total, 4) if total else None,
                "pixel_iou": round(self.intersection / self.union, 4) if self.union else None,
                "matched": self.matches, "instances": [self.left, self.right],
                "images": len(self.images)}


def _matches(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """One-to-one pairs (index in a, index in b) with IoU >= MATCH_IOU, highest IoU first."""
    if not a or not b:
        return []
    ious = np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=float).reshape(len(a), len(b))
    pairs = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        i, j = divmod(int(flat), len(b))
        if ious[i, j] < MATCH_IOU:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def _area(rles: list[dict[str, Any]], *, intersect: bool = False) -> float:
    if not rles:
        return 0.0
    return float(mask_utils.area(mask_utils.merge(rles, intersect=intersect)))


def compare(a: list[Instance], b: list[Instance], image_id: int) -> dict[str, Tally]:
    """Per class: matches, instance counts, pixel intersection and union of A against B."""
    out: dict[str, Tally] = {}
    for cls in sorted({c for c, _ in a} | {c for c, _ in b}):
        ra = [r for c, r in a if c == cls]
        rb = [r for c, r in b if c == cls]
        ua = mask_utils.merge(ra) if ra else None
        ub = mask_utils.merge(rb) if rb else None
        inter = _area([ua, ub], intersect=True) if ua is not None and ub is not None else 0.0
        union = _area([r for r in (ua, ub) if r is not None])
        out[cls] = Tally(len(_matches(ra, rb)), len(ra), len(rb), inter, union, {image_id})
    return out


class Agreement:
    """Consensus and honeypot measures, and resolving consensus (built by the Project)."""

    def __init__(self, db: "Database", actor: "Actor") -> None:
        self.db, self.actor = db, actor

    def _instances(self, image_id: int, origin: str | None = None) -> list[Instance]:
        """The image's annotations as (class, RLE), by id; ``origin``: only those of it."""
        sql = ("SELECT c.name, a.counts, a.height, a.width FROM annotations a JOIN classes c ON "
               "c.id = a.class_id WHERE a.image_id = ?")
        params: tuple[object, ...] = (int(image_id),)
        if origin is not None:
            sql, params = sql + " AND a.origin = ?", params + (origin,)
        rows = self.db.query(sql + " ORDER BY a.id", params)
        return [(str(r[0]), as_coco_rle({"size": [int(r[2]), int(r[3])], "counts": r[1]}))
                for r in rows]

    def _replicas(self, kind: str) -> dict[int, list[tuple[int, str]]]:
        """image id -> its finished replicas of ``kind``: (replica id, annotator)."""
        out: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for r in self.db.query(
                "SELECT i.replica_of, i.id, i.replica FROM images i JOIN assignments a ON "
                "a.image_id = i.id AND a.kind = ? WHERE i.state = 'done' ORDER BY i.replica_of, "
                "i.replica", (kind,)):
            out[int(r[0])].append((int(r[1]), str(r[2])))
        return out

    def to_resolve(self) -> dict[int, list[str]]:
        """Consensus images every annotator finished and nobody resolved yet: id -> annotators."""
        out: dict[int, list[str]] = {}
        rows = self.db.query(
            "SELECT i.replica_of, i.replica, i.state FROM images i JOIN assignments a ON "
            "a.image_id = i.id AND a.kind = 'consensus' JOIN images p ON p.id = i.replica_of "
            "WHERE p.state != 'done' ORDER BY i.replica_of, i.replica")
        states: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for r in rows:
            states[int(r[0])].append((str(r[1]), str(r[2])))
        for image_id, people in states.items():
            if all(state == "done" for _, state in people):
                out[image_id] = [name for name, _ in people]
        return out

    def consensus(self) -> dict[str, Any]:
        """Agreement between annotators on consensus images: per class and per pair."""
        by_class: dict[str, Tally] = defaultdict(Tally)
        by_pair: dict[str, Tally] = defaultdict(Tally)
        images = 0
        for image_id, done in self._replicas("consensus").items():
            if len(done) < 2:
                continue
            images += 1
            for (ra, na), (rb, nb) in itertools.combinations(done, 2):
                for cls, tally in compare(self._instances(ra), self._instances(rb), image_id).items():
                    by_class[cls].add(tally)
                    by_pair[f"{na}|{nb}"].add(tally)
        return {"images": images, "match_iou": MATCH_IOU,
                "by_class": {k: v.summary() for k, v in sorted(by_class.items())},
                "by_pair": {k: v.summary() for k, v in sorted(by_pair.items())}}

    def honeypots(self) -> dict[str, Any]:
        """Each annotator's accuracy on honeypots (their masks against the ground truth)."""
        by_annotator: dict[str, Tally] = defaultdict(Tally)
        per_class: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
        for image_id, done in self._replicas("honeypot").items():
            truth = self._instances(image_id, "imported")
            for replica, name in done:
                for cls, tally in compare(self._instances(replica), truth, image_id).items():
                    by_annotator[name].add(tally)
                    per_class[name][cls].add(tally)
        return {"match_iou": MATCH_IOU, "by_annotator": {
            name: {**tally.summary(), "by_class": {c: t.summary() for c, t in sorted(per_class[name].items())}}
            for name, tally in sorted(by_annotator.items())}}

    def resolve(self, image_id: int, *, pick: str | None = None, user: str | None = None) -> int:
        """End the consensus on ``image_id``: ``pick`` one annotator's masks, or merge (``None``);
        the image becomes done and approved. Returns how many masks it received."""
        who = self.actor.who(user)
        replicas = {str(r[1]): (int(r[0]), str(r[2])) for r in self.db.query(
            "SELECT id, replica, state FROM images WHERE replica_of = ? AND id IN (SELECT "
            "image_id FROM assignments WHERE kind = 'consensus') ORDER BY replica", (int(image_id),))}
        if not replicas:
            raise InputError(f"image {image_id} is not a consensus image")
        unfinished = [f"{n} ({s})" for n, (_, s) in replicas.items() if s != "done"]
        if unfinished:
            raise InputError(f"image {image_id} is not finished by every annotator yet: "
                             f"{', '.join(unfinished)}; resolve it when all are done")
        if pick is not None and pick not in replicas:
            raise InputError(f"{pick} did not label image {image_id}; pick one of "
                             f"{', '.join(replicas)}")
        chosen: list[tuple[str, Instance]] = []
        for name in ([pick] if pick is not None else list(replicas)):
            mine = self._instances(replicas[name][0])
            taken = [inst for _, inst in chosen]
            for inst in mine:
                same = [r for c, r in taken if c == inst[0]]
                if pick is None and _matches([inst[1]], same):
                    continue  # already in from an earlier annotator
                chosen.append((name, inst))
        verdict = f"consensus: picked {pick}" if pick else f"consensus: merged {', '.join(replicas)}"
        classes = {str(r[1]): int(r[0]) for r in self.db.query("SELECT id, name FROM classes")}
        with self.db.action(f"resolve consensus on image {image_id} ({verdict[11:]})",
                            user=who) as tx:
            stamp = now()
            for cand in tx.conn.execute("SELECT id FROM candidates WHERE image_id = ? AND "
                                        "status = 'proposed' ORDER BY id", (int(image_id),)).fetchall():
                tx.update("candidates", int(cand[0]), {"status": "rejected", "reviewed_by": who,
                                                       "reviewed_at": stamp})
            for name, (cls, rle) in chosen:
                counts = rle["counts"]
                stored = {"size": [int(v) for v in rle["size"]],
                          "counts": counts.decode() if isinstance(counts, bytes) else counts}
                tx.insert("annotations", {
                    "image_id": int(image_id), "class_id": classes[cls], **mask_columns(stored),
                    "score": 1.0, "source": f"consensus:{name}", "candidate_id": None, "user": who,
                    "created_at": stamp, "updated_at": stamp, "origin": "imported",
                    "edit_actions": 0})
            tx.update("images", int(image_id), {
                "state": "done", "state_user": who, "state_at": stamp, "review": "approved",
                "review_note": verdict, "reviewed_by": who, "reviewed_at": stamp})
            tx.conn.execute('INSERT INTO review_events (image_id, "user", verdict, comment, at) '
                            "VALUES (?, ?, 'approved', ?, ?)", (int(image_id), who, verdict, stamp))
        return len(chosen)

