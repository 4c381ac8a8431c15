"""What the annotator reads from the project store, shaped for display.

Small read-only helpers: classes with colours, image order, map frames of image records, the
drawable masks of an image, list labels, and the progress line.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from rasterio.crs import CRS
from rasterio.transform import Affine

from text2seg_widgets.widgets.geometry import Frame, GeoFrame, PixelFrame
from text2seg_widgets.widgets.layers import MaskItem
from text2seg_widgets.widgets.overlay import LoadedImage
from text2seg_widgets.widgets.scenetiles import WEB_MERCATOR, pixel_space_transform

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["class_list", "first_image_id", "next_image_id", "frame_of", "mask_items", "item_label",
           "progress_html", "summary_label", "plural", "DONE_STATE", "OPEN_STATES"]

#: the state "Next image" gives the image being left; the states of images still to review
DONE_STATE = "done"
OPEN_STATES = ("unreviewed", "in progress")


def plural(n: int, word: str) -> str:
    """``1 candidate``, ``2 candidates``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def class_list(project: "Project") -> list[tuple[str, str]]:
    """(name, colour) of every class, in the project's order."""
    return [(c.name, c.color) for c in project.classes]


def first_image_id(project: "Project") -> int | None:
    """The image being worked on (in progress), else the first unreviewed one, else the first image,
    else None (no images): reopening a project resumes where the annotator stopped."""
    for state in reversed(OPEN_STATES):
        nxt = project.next_image(None, filter=state)
        if nxt is not None:
            return int(nxt.id)
    images = project.images()
    return int(images[0].id) if images else None


def next_image_id(project: "Project", after: int | None) -> int | None:
    """The next image after ``after`` that is unreviewed (then in progress); None if none is left."""
    for state in OPEN_STATES:
        nxt = project.next_image(after, filter=state)
        if nxt is not None and nxt.id != after:
            return int(nxt.id)
    return None


def frame_of(record: Any, image: LoadedImage | None) -> Frame:
    """Where the image sits on the map: its CRS/transform when georeferenced; a big plain image
    served as tiles at its stand-in Web Mercator place (see :mod:`.scenetiles`); else pixel space."""
    width, height = int(record.width), int(record.height)
    if image is not None:
        height, width = image.height, image.width
    if getattr(record, "crs", None):
        t = tuple(record.transform)[:6]
        return GeoFrame(width=width, height=height, transform=Affine(*t), crs=CRS.from_user_input(record.crs))
    if image is not None and image.tiled:  # a big plain image, served as tiles at a stand-in place
        return GeoFrame(width=width, height=height, transform=pixel_space_transform(),
                        crs=CRS.from_user_input(WEB_MERCATOR), real=False)
    return PixelFrame(width=width, height=height)


def mask_items(project: "Project", image_id: int, cache: dict[Any, MaskItem] | None = None) -> list[MaskItem]:
    """Proposed candidates (best score first), then annotations, then rejected candidates.

    Read with the store's light query (:meth:`Project.mask_rows`: no record decoded). With
    ``cache`` (a dict the caller keeps), an item whose stored row is unchanged is the same
    :class:`MaskItem` object as last time; the cache is trimmed to this image's current rows."""
    rows = project.mask_rows(image_id)
    old = cache if cache is not None else {}
    made = {row: old.get(row) or _item_of(row) for row in rows}
    if cache is not None:
        cache.clear()
        cache.update(made)
    proposed = sorted((made[r] for r in rows if r.status == "proposed"), key=lambda it: (-it.score, it.id))
    accepted = [made[r] for r in rows if r.kind == "annotation"]
    rejected = [made[r] for r in rows if r.kind == "candidate" and r.status == "rejected"]
    return proposed + accepted + rejected


def _item_of(row: Any) -> MaskItem:
    return MaskItem(row.kind, row.id, row.class_name, row.status,
                    {"size": [row.height, row.width], "counts": row.counts}, row.score, row.branch)


def item_label(item: MaskItem) -> str:
    mark = {"proposed": "?", "accepted": "\u2713", "rejected": "\u2717"}.get(item.status, " ")
    kind = "cand" if item.kind == "candidate" else "ann"
    return f"{mark} {item.class_name}  {item.score:.2f}  {item.branch}  [{kind} {item.id}]"


def progress_html(project: "Project", image_id: int | None, items: list[MaskItem]) -> str:
    """Images done (and skipped, counted apart) / total, and candidates left on this image."""
    images = project.images()
    done = sum(1 for r in images if r.state == DONE_STATE)
    skipped = sum(1 for r in images if r.state == "skipped")
    left = sum(1 for it in items if it.status == "proposed")
    accepted = sum(1 for it in items if it.status == "accepted")
    where = "no image" if image_id is None else f"image {image_id}"
    cands = "candidate" if left == 1 else "candidates"
    anns = "annotation" if accepted == 1 else "annotations"
    skip = f", {skipped} skipped" if skipped else ""
    return (f"<div style='font-size:13px;line-height:1.4'><b>{done}/{len(images)}</b> images done{skip} &middot; "
            f"{html.escape(where)}: <b class='t2s-left'>{left}</b> {cands} left, "
            f"<b class='t2s-accepted'>{accepted}</b> {anns}</div>")


def summary_label(summary: Any) -> str:
    """One line of the image list: id, state, candidates left, annotations, then the file name
    (last, so a narrow list cuts the name rather than the counts)."""
    review = f" [{summary.review}]" if getattr(summary, "review", "") else ""
    return (f"{summary.id} {summary.state}{review}: {plural(summary.proposed, 'candidate')} left, "
            f"{plural(summary.annotations, 'annotation')} \u2014 {summary.name}")
