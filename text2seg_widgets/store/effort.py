"""Annotation effort, measured for real (a mixin of :class:`Project`).

Each annotation records its ``origin`` (:data:`~.schema.ORIGINS`): ``proposed`` (a candidate
accepted as it was), ``corrected`` (its mask edited after that), ``drawn`` (made by hand) or
``imported``; and ``edit_actions``, the clicks/boxes/polygon edits spent on it (0 for an unchanged
proposal). The UI reports time spent on each image with :meth:`Effort.add_time`.

:meth:`Effort.effort` gives, per class, how many accepted objects were taken unchanged,
corrected or drawn, and the median seconds and actions per object. Seconds per object: an image's
seconds divided evenly between the objects (annotations not imported) on it; the median is over
the class's objects on images with recorded time. This is the honest measure of what the
pseudo-labels save (the simulated NoC of :mod:`text2seg_widgets.eval` stays beside it).
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.images import Images

__all__ = ["Effort"]

_EFFORT_SQL = """
SELECT a.image_id, a.origin, a.edit_actions, c.name AS class_name,
       COALESCE(t.seconds, 0) AS seconds,
       (SELECT COUNT(*) FROM annotations b WHERE b.image_id = a.image_id
        AND b.origin != 'imported') AS objects
FROM annotations a JOIN classes c ON c.id = a.class_id
LEFT JOIN image_time t ON t.image_id = a.image_id
WHERE a.origin != 'imported'
ORDER BY c.id, a.id
"""


class Effort:
    """Time and effort per image and class (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", images: "Images") -> None:
        self.db, self.images = db, images

    def add_time(self, image_id: int, seconds: float) -> None:
        """Add ``seconds`` (finite, >= 0) to the time spent on an image. Not an undo step."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise InputError(f"seconds must be a finite number >= 0, got {seconds!r}")
        rec = self.images.image(image_id)
        with self.db.raw() as tx:
            tx.conn.execute("INSERT INTO image_time (image_id, seconds) VALUES (?, ?) ON CONFLICT "
                            "(image_id) DO UPDATE SET seconds = image_time.seconds + excluded.seconds",
                            (rec.id, seconds))

    def image_seconds(self, image_id: int) -> float:
        rows = self.db.query("SELECT seconds FROM image_time WHERE image_id = ?", (int(image_id),))
        return float(rows[0][0]) if rows else 0.0

    def effort(self) -> list[dict[str, Any]]:
        """Per class (class-id order, classes with no object included): ``class_name``,
        ``accepted_unchanged``, ``corrected``, ``drawn``, ``median_seconds_per_object`` (None
        without recorded time) and ``median_actions_per_object`` (None without objects)."""
        rows = self.db.query(_EFFORT_SQL)
        names = [r[0] for r in self.db.query("SELECT name FROM classes ORDER BY id")]
        out = []
        for name in names:
            mine = [r for r in rows if r["class_name"] == name]
            timed = [r["seconds"] / r["objects"] for r in mine if r["seconds"] > 0]
            out.append({
                "class_name": name,
                "accepted_unchanged": sum(r["origin"] == "proposed" for r in mine),
                "corrected": sum(r["origin"] == "corrected" for r in mine),
                "drawn": sum(r["origin"] == "drawn" for r in mine),
                "median_seconds_per_object": float(statistics.median(timed)) if timed else None,
                "median_actions_per_object": (float(statistics.median(r["edit_actions"]
                                                                      for r in mine))
                                              if mine else None)})
        return out
