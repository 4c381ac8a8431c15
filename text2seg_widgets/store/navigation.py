"""Moving between images: the image list with review counts, go-to by id or name, next/previous
under a filter (a part of :class:`Project`; read-only).

Filters (:data:`IMAGE_FILTERS`): ``None`` (every image), ``"unreviewed"``, ``"in progress"``,
``"done"``, ``"skipped"`` (by state) and ``"candidates left"`` (at least one proposed candidate,
whatever the state). Order is always by image id; next/previous wrap around and never return the
image they start from.
"""

from __future__ import annotations

import json

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.records import ImageSummary
from text2seg_widgets.store.schema import IMAGE_STATES

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database
    from text2seg_widgets.store.images import Images
    from text2seg_widgets.store.records import ImageRecord

__all__ = ["Navigation", "IMAGE_FILTERS", "check_filter"]

#: The filters :meth:`Navigation.image_summaries` and next/previous accept (besides None).
IMAGE_FILTERS = (*IMAGE_STATES, "candidates left")

_SUMMARY_SQL = """
SELECT i.id, i.path, i.state, i.win, i.review,
       COALESCE(c.proposed, 0) AS proposed, COALESCE(c.accepted, 0) AS accepted,
       COALESCE(c.rejected, 0) AS rejected, COALESCE(a.n, 0) AS annotations,
       COALESCE(t.seconds, 0) AS seconds
FROM images i
LEFT JOIN (SELECT image_id, SUM(CASE WHEN status = 'proposed' THEN 1 ELSE 0 END) AS proposed,
                  SUM(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END) AS accepted, SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) AS rejected
           FROM candidates GROUP BY image_id) c ON c.image_id = i.id
LEFT JOIN (SELECT image_id, COUNT(*) AS n FROM annotations GROUP BY image_id) a
    ON a.image_id = i.id
LEFT JOIN image_time t ON t.image_id = i.id
"""


def check_filter(filter: str | None) -> None:
    if filter is not None and filter not in IMAGE_FILTERS:
        raise InputError(f"unknown image filter {filter!r}; use None or one of "
                         f"{', '.join(map(repr, IMAGE_FILTERS))}")


def _where(filter: str | None, user: str | None) -> tuple[str, tuple[Any, ...]]:
    """The project's images, and the replicas ``user`` labels (nobody else's)."""
    check_filter(filter)
    mine = " WHERE (i.replica = '' OR i.replica = ?)"
    if filter is None:
        return mine, (user or "",)
    if filter == "candidates left":
        return mine + " AND COALESCE(c.proposed, 0) > 0", (user or "",)
    return mine + " AND i.state = ?", (user or "", filter)


def _name(path: str, win: str | None) -> str:
    """The list name of an image: its file name, with the window of a tile cut from a scene
    (``scene.tif [2048,1024 1024x1024]``) so the tiles of one file can be told apart."""
    name = Path(path).name
    if not win:
        return name
    col, row, w, h = (int(v) for v in json.loads(win))
    return f"{name} [{col},{row} {w}x{h}]"


class Navigation:
    """The image list and moving through it (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", images: "Images", actor: "Actor") -> None:
        self.db, self.images, self.actor = db, images, actor

    def image_summaries(self, filter: str | None = None) -> list[ImageSummary]:
        """One :class:`ImageSummary` per image matching ``filter`` (see the module doc), by id."""
        where, params = _where(filter, self.actor.user)
        rows = self.db.query(_SUMMARY_SQL + where + " ORDER BY i.id", params)
        return [ImageSummary(id=r["id"], name=_name(r["path"], r["win"]), state=r["state"],
                             proposed=int(r["proposed"]), accepted=int(r["accepted"]),
                             rejected=int(r["rejected"]), annotations=int(r["annotations"]),
                             seconds=float(r["seconds"]), review=str(r["review"])) for r in rows]

    def _matching_ids(self, filter: str | None) -> list[int]:
        where, params = _where(filter, self.actor.user)
        return [int(r[0]) for r in self.db.query(
            "SELECT i.id FROM images i LEFT JOIN (SELECT image_id, SUM(CASE WHEN status = 'proposed' THEN 1 ELSE 0 END) AS "
            "proposed FROM candidates GROUP BY image_id) c ON c.image_id = i.id" + where +
            " ORDER BY i.id", params)]

    def find_image(self, key: int | str) -> "ImageRecord":
        """The image with this id (an int, or a string of digits that is not a file name), file
        name (``tile_03.png``) or stem (``tile_03``); names must be unique. :class:`InputError`
        listing close matches when nothing (or more than one) matches.

        Searched among the images this session's user has in the image list: the project's and
        their own replicas. A name that is both an image's and the user's replica of it finds the
        replica (the copy they label); an id finds exactly that image."""
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise InputError(f"find an image by id (int) or by file name/stem (str), not {key!r}")
        user = self.actor.user or ""
        mine = [r for r in self.images.replicas() if user and r.replica == user]
        replicated = {r.replica_of for r in mine}
        images = sorted([*self.images.images(), *mine], key=lambda r: r.id)
        if isinstance(key, int):
            for rec in images:
                if rec.id == key:
                    return rec
            raise InputError(f"no image with id {key}; ids run from "
                             f"{images[0].id if images else '-'} to "
                             f"{images[-1].id if images else '-'} (see project.image_summaries())")
        text = key.strip()
        for attr in ("name", "stem"):
            hits = [r for r in images if _names(r)[attr] == text]
            hits = [r for r in hits if r.id not in replicated] if len(hits) > 1 else hits
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                ids = ", ".join(str(r.id) for r in hits)
                raise InputError(f"{len(hits)} images are named {text!r} (ids {ids}); go to one "
                                 "by its id")
        if text.isdigit():
            return self.find_image(int(text))
        names = sorted({n for r in images for n in _names(r).values()})
        close = difflib.get_close_matches(text, names, n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise InputError(f"no image named {text!r} in this project{hint} (search by id, file "
                         "name or file stem)")

    def next_image(self, after: int | None = None, filter: str | None = None, *,
                   state: str | None = None) -> "ImageRecord | None":
        """The first image after ``after`` (by id, wrapping around, never ``after`` itself) that
        matches ``filter``; ``None`` when none does. ``state=`` is the older name of ``filter``."""
        return self._step_image(after, filter if filter is not None else state, forward=True)

    def previous_image(self, before: int | None = None, filter: str | None = None, *,
                       state: str | None = None) -> "ImageRecord | None":
        """Like :meth:`next_image`, backwards: the last matching image before ``before``."""
        return self._step_image(before, filter if filter is not None else state, forward=False)

    def _step_image(self, start: int | None, filter: str | None, *,
                    forward: bool) -> "ImageRecord | None":
        ids = self._matching_ids(filter)
        if not forward:
            ids.reverse()
        if start is None:
            return self.images.image(ids[0]) if ids else None
        ahead = [i for i in ids if (i > start if forward else i < start)]
        behind = [i for i in ids if (i < start if forward else i > start)]
        found = ahead or behind
        return self.images.image(found[0]) if found else None


def _names(rec: "ImageRecord") -> dict[str, str]:
    path = Path(rec.path)
    return {"name": path.name, "stem": path.stem}
