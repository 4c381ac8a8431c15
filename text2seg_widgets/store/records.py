"""Read-only records the project hands out: classes, images, candidates, annotations.

They are snapshots of database rows; changing the project goes through :class:`Project` methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from text2seg_widgets.core import Candidate, rle_to_mask
from text2seg_widgets.core.masks import rle_area, rle_bbox

if TYPE_CHECKING:
    from text2seg_widgets.store.db import Row

__all__ = ["ClassInfo", "ImageRecord", "CandidateRecord", "AnnotationRecord", "ImageSummary", "MaskRow"]

@dataclass(frozen=True)
class ClassInfo:
    """A class: stable id (never reused), unique name, ``#rrggbb`` colour, text prompts/synonyms."""

    id: int
    name: str
    color: str
    prompts: tuple[str, ...] = ()

    @property
    def rgb(self) -> tuple[int, int, int]:
        c = self.color.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@dataclass(frozen=True)
class ImageRecord:
    """An image (or a window of a large scene) in the project.

    ``width``/``height`` are those of the window when there is one; ``transform`` is the affine
    (a, b, c, d, e, f) of the window's pixel grid (identity-like for plain PNG/JPEG); ``crs`` is WKT
    or ``None`` when the image is not georeferenced. ``window`` is ``(col_off, row_off, width,
    height)`` in the source file's pixels, or ``None`` for the whole file.
    """

    id: int
    path: str
    width: int
    height: int
    crs: str | None
    transform: tuple[float, ...]
    checksum: str
    state: str
    window: tuple[int, int, int, int] | None = None
    state_user: str | None = None
    state_at: str | None = None
    state_note: str = ""
    #: The review stage of a team project: '' (none), pending, approved or returned; the
    #: reviewer's note (why it was returned) and who gave the verdict.
    review: str = ""
    review_note: str = ""
    reviewed_by: str | None = None
    #: A replica (consensus or honeypot copy labelled by one annotator): their name and the image
    #: it copies; '' / None for the project's own images.
    replica: str = ""
    replica_of: int | None = None

    @property
    def name(self) -> str:
        """The file name (what :meth:`Project.find_image` matches besides the id and stem)."""
        return Path(self.path).name

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None


@dataclass(frozen=True)
class CandidateRecord:
    """A stored proposal with its review ``status`` (proposed / accepted / rejected)."""

    id: int
    image_id: int
    class_name: str
    candidate: Candidate
    status: str
    run_id: int | None = None

    def mask(self) -> np.ndarray:
        return self.candidate.mask()


@dataclass(frozen=True)
class AnnotationRecord:
    """An accepted or hand-made instance mask. ``rle`` is COCO compressed RLE (``counts`` str)."""

    id: int
    image_id: int
    class_name: str
    rle: dict[str, Any]
    bbox: list[float]
    area: int
    score: float
    source: str
    candidate_id: int | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    origin: str = "drawn"
    edit_actions: int = 0

    def mask(self) -> np.ndarray:
        return rle_to_mask(self.rle)


class MaskRow(NamedTuple):
    """One drawable mask of an image as stored, without decoding anything (see
    :meth:`Project.mask_rows`): ``kind`` "candidate" (``status`` proposed/rejected) or "annotation"
    (``status`` "accepted", ``branch`` its source); ``counts`` is the COCO RLE string."""

    kind: str
    id: int
    class_name: str
    status: str
    counts: str
    height: int
    width: int
    score: float
    branch: str


@dataclass(frozen=True)
class ImageSummary:
    """One line of the image list: state and review counts of an image (see
    :meth:`Project.image_summaries`). ``proposed``/``accepted``/``rejected`` count candidates;
    ``annotations`` counts every annotation (accepted and drawn); ``seconds``: time spent on it."""

    id: int
    name: str
    state: str
    proposed: int
    accepted: int
    rejected: int
    annotations: int
    seconds: float
    #: the review stage ('' outside team projects): pending, approved, returned
    review: str = ""


def mask_columns(rle: dict[str, Any]) -> dict[str, Any]:
    """The mask columns of a candidates/annotations row from a COCO RLE with ``str`` counts."""
    return {"counts": rle["counts"], "height": rle["size"][0], "width": rle["size"][1],
            "bbox": json.dumps(rle_bbox(rle)), "area": rle_area(rle)}


def image_from_row(row: Row, resolve: Callable[[str], Path]) -> ImageRecord:
    win = tuple(json.loads(row["win"])) if row["win"] else None
    return ImageRecord(id=row["id"], path=str(resolve(row["path"])), width=row["width"],
                       height=row["height"], crs=row["crs"],
                       transform=tuple(json.loads(row["transform"])), checksum=row["checksum"],
                       state=row["state"], window=win,
                       state_user=row["state_user"], state_at=row["state_at"],
                       state_note=row["state_note"], review=row["review"],
                       review_note=row["review_note"], reviewed_by=row["reviewed_by"],
                       replica=row["replica"], replica_of=row["replica_of"])


def candidate_from_row(row: Row, class_name: str) -> CandidateRecord:
    rle = {"size": [row["height"], row["width"]], "counts": row["counts"]}
    cand = Candidate(class_name=class_name, rle=rle, bbox=json.loads(row["bbox"]),
                     area=row["area"], score=row["score"], branch=row["branch"],
                     prompt=row["prompt"], model=row["model"], extra=json.loads(row["extra"]))
    return CandidateRecord(id=row["id"], image_id=row["image_id"], class_name=class_name,
                           candidate=cand, status=row["status"], run_id=row["run_id"])


def annotation_from_row(row: Row, class_name: str) -> AnnotationRecord:
    rle = {"size": [row["height"], row["width"]], "counts": row["counts"]}
    return AnnotationRecord(id=row["id"], image_id=row["image_id"], class_name=class_name, rle=rle,
                            bbox=json.loads(row["bbox"]), area=row["area"], score=row["score"],
                            source=row["source"], candidate_id=row["candidate_id"],
                            user=row["user"], origin=row["origin"],
                            edit_actions=row["edit_actions"])
