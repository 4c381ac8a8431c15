"""A review queue ordered by doubt: which proposed candidate a human should look at next.

Each proposed candidate gets a priority, the sum of weighted doubts in [0, 1], each with a
human-readable reason:

- **classes disagree** (weight ``WEIGHTS["conflict"]``): another live candidate (proposed or
  accepted) of a *different class* covers at least ``OVERLAP`` of the smaller of the two masks;
  the doubt is that covered share.
- **branches disagree** (``WEIGHTS["outline"]``): a live candidate of the *same class* from a
  *different branch* overlaps it (``OVERLAP`` of the smaller mask) but their IoU is below
  ``AGREE_IOU``; the doubt is ``1 - IoU``. When another branch agrees (IoU >= ``AGREE_IOU``) and
  nothing else is in doubt, the item gets the reason "confirmed by ..." and ``AGREEMENT`` is
  subtracted.
- **near the calibrated threshold** (``WEIGHTS["threshold"]``): ``1 - |score - t| / near`` for the
  (class, branch) threshold ``t``; a (class, branch) whose scores never reach the target precision
  counts ``0.5`` (every candidate of it needs a look).
- **few decisions** (``WEIGHTS["few"]``): ``1 - n / min_decisions`` while the (class, branch) has
  ``n < min_decisions`` decisions.
- **a look would change the outcome** (``WEIGHTS["change"]``): the chance that the reviewer's
  decision differs from what happens without a look. Without a look a candidate above its
  calibrated threshold is accepted (by "accept all above"), any other stays out of the labels; with
  ``p = (k + 1) / (n + 2)`` the smoothed accepted share of the (class, branch, score tenth) so far,
  the chance is ``1 - p`` above the threshold and ``p`` otherwise (0.5 with no decisions).

Thresholds are fitted live from the project's decisions (so the queue follows the reviewer)
unless ``thresholds`` is given. Ties keep image order (image id, then candidate id); priorities
are never negative. Only ``proposed`` candidates are queued.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from text2seg_widgets.core import boxes_overlap, rle_to_mask
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.calibration import Key, Threshold, fit_thresholds
from text2seg_widgets.insights.decisions import decisions

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["QueueItem", "review_queue", "WEIGHTS", "OVERLAP", "AGREE_IOU", "AGREEMENT"]

#: Weight of each kind of doubt in the priority (``review_queue(weights=...)`` overrides some).
WEIGHTS = {"conflict": 1.0, "outline": 0.8, "threshold": 0.8, "few": 0.6, "change": 1.0}
#: Share of the smaller mask two candidates must share to count as overlapping.
OVERLAP = 0.2
#: IoU at which two branches agree on an outline.
AGREE_IOU = 0.5
#: Subtracted from an item whose only overlap is an agreeing branch.
AGREEMENT = 0.25


@dataclass(frozen=True)
class QueueItem:
    """One proposed candidate to review, why, and how urgently (higher first)."""

    candidate_id: int
    image_id: int
    priority: float
    reasons: tuple[str, ...]


@dataclass
class _Live:
    id: int
    image_id: int
    class_name: str
    branch: str
    score: float
    status: str
    bbox: tuple[float, float, float, float]
    area: int
    rle: Any
    _mask: np.ndarray | None = None

    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = rle_to_mask(self.rle)
        return self._mask


def _pair(a: _Live, b: _Live) -> tuple[float, float]:
    """(IoU, intersection / smaller area) of two candidates' masks (counted inside the boxes' overlap)."""
    x0, y0 = int(max(a.bbox[0], b.bbox[0])), int(max(a.bbox[1], b.bbox[1]))
    x1 = int(np.ceil(min(a.bbox[0] + a.bbox[2], b.bbox[0] + b.bbox[2])))
    y1 = int(np.ceil(min(a.bbox[1] + a.bbox[3], b.bbox[1] + b.bbox[3])))
    inter = int(np.count_nonzero(a.mask()[y0:y1, x0:x1] & b.mask()[y0:y1, x0:x1]))
    union = a.area + b.area - inter
    return (inter / union if union else 0.0), inter / (min(a.area, b.area) or 1)


def _overlap_doubts(item: _Live, others: Sequence[_Live]) -> tuple[float, float, list[str], list[str]]:
    """(class conflict, outline doubt, reasons, agreements) of ``item`` against its image's others."""
    conflict = outline = 0.0
    reasons: list[str] = []
    agree: list[str] = []
    for other in others:
        if other.id == item.id or not boxes_overlap(item.bbox, other.bbox):
            continue
        if other.class_name == item.class_name and other.branch == item.branch:
            continue
        iou, share = _pair(item, other)
        if share < OVERLAP:
            continue
        what = f"{'an accepted' if other.status == 'accepted' else 'a'} {other.class_name!r} candidate " \
               f"#{other.id} from {other.branch}"
        if other.class_name != item.class_name:
            if share > conflict:
                conflict = share
            reasons.append(f"overlaps {what} ({share:.0%} of the smaller mask): classes disagree")
        elif iou < AGREE_IOU:
            outline = max(outline, 1.0 - iou)
            reasons.append(f"{item.branch} and {other.branch} disagree on its outline (IoU {iou:.2f})")
        else:
            agree.append(f"confirmed by {other.branch} (IoU {iou:.2f})")
    return conflict, outline, reasons, agree


def _threshold_doubt(item: _Live, t: Threshold | None, near: float) -> tuple[float, str | None]:
    if t is None or t.status == "too few":
        return 0.0, None
    if t.status == "unreachable":
        return 0.5, (f"no score reaches precision {t.target_precision:.2f} for {item.class_name} / "
                     f"{item.branch} yet")
    gap = round(abs(item.score - float(t.threshold)), 9)  # type: ignore[arg-type]  # 0.9 - 0.8 is 0.0999..
    if gap >= near:
        side = "above" if item.score >= float(t.threshold) else "below"  # type: ignore[arg-type]  # only calibrated thresholds (not None) reach here
        return 0.0, f"score {item.score:.2f} well {side} the calibrated threshold {t.threshold:.2f}"
    return 1.0 - gap / near, (f"score {item.score:.2f} is near the calibrated threshold {t.threshold:.2f} "
                              f"for {item.class_name} / {item.branch}")


def review_queue(project: "Project", *, limit: int | None = None, thresholds: Mapping[Key, Threshold] | None = None,
                 target_precision: float = 0.95, min_decisions: int = 20, near: float = 0.1,
                 image_ids: Sequence[int] | None = None,
                 weights: Mapping[str, float] | None = None) -> list[QueueItem]:
    """Proposed candidates ranked by the expected value of a human look (see the module doc)."""
    unknown = sorted(set(weights or {}) - set(WEIGHTS))
    if unknown:
        raise InputError(f"unknown queue weight(s) {unknown}; use {', '.join(WEIGHTS)}")
    weight = {**WEIGHTS, **(weights or {})}
    if limit is not None and int(limit) < 0:
        raise InputError(f"limit must be a positive number of items, got {limit}")
    if near <= 0:
        raise InputError(f"near must be a positive score distance, got {near}")
    made = decisions(project)
    counts: dict[Key, int] = {}
    binned: dict[tuple[str, str, int], list[int]] = {}
    for d in made:
        counts[(d.class_name, d.branch)] = counts.get((d.class_name, d.branch), 0) + 1
        kn = binned.setdefault((d.class_name, d.branch, _tenth(d.score)), [0, 0])
        kn[0] += d.accepted
        kn[1] += 1
    table = thresholds if thresholds is not None else fit_thresholds(
        made, target_precision=target_precision, min_decisions=min_decisions)
    wanted = None if image_ids is None else {int(i) for i in image_ids}
    by_image: dict[int, list[_Live]] = {}
    for status in ("proposed", "accepted"):
        for rec in project.candidates(status=status):
            if wanted is not None and rec.image_id not in wanted:
                continue
            c = rec.candidate
            by_image.setdefault(rec.image_id, []).append(_Live(
                rec.id, rec.image_id, rec.class_name, str(c.branch), float(c.score), status,
                tuple(float(v) for v in c.bbox), int(c.area), c.rle))  # type: ignore[arg-type]  # a 4-float bbox
    items = []
    for image_id in sorted(by_image):
        live = by_image[image_id]
        for cand in (c for c in live if c.status == "proposed"):
            kn = binned.get((cand.class_name, cand.branch, _tenth(cand.score)), [0, 0])
            items.append(_score(cand, live, table.get((cand.class_name, cand.branch)),
                                counts.get((cand.class_name, cand.branch), 0), (kn[0], kn[1]),
                                min_decisions, near, weight))
    items.sort(key=lambda q: (-q.priority, q.image_id, q.candidate_id))
    return items if limit is None else items[:int(limit)]


def _tenth(score: float) -> int:
    return min(max(int(float(score) * 10), 0), 9)


def _change(cand: _Live, threshold: Threshold | None, kn: tuple[int, int]) -> tuple[float, str | None]:
    """Chance that a look changes the outcome, and the acceptance evidence behind it."""
    p = (kn[0] + 1) / (kn[1] + 2)
    auto = (threshold is not None and threshold.status == "ok"
            and cand.score >= float(threshold.threshold))  # type: ignore[arg-type]  # only calibrated thresholds (not None) reach here
    lo = _tenth(cand.score) / 10
    why = None if not kn[1] else (f"{kn[0]} of {kn[1]} {cand.class_name} / {cand.branch} candidates scoring "
                                  f"{lo:.1f}-{lo + 0.1:.1f} were accepted")
    return (1.0 - p if auto else p), why


def _score(cand: _Live, live: Sequence[_Live], threshold: Threshold | None, n: int, kn: tuple[int, int],
           min_decisions: int, near: float, weight: Mapping[str, float]) -> QueueItem:
    conflict, outline, reasons, agree = _overlap_doubts(cand, live)
    near_doubt, near_reason = _threshold_doubt(cand, threshold, near)
    few = max(0.0, 1.0 - n / min_decisions)
    change, change_reason = _change(cand, threshold, kn)
    priority = (weight["conflict"] * conflict + weight["outline"] * outline
                + weight["threshold"] * near_doubt + weight["few"] * few + weight["change"] * change)
    if few > 0:
        reasons.append(f"few decisions for {cand.class_name} / {cand.branch} so far ({n} of {min_decisions})")
    if near_reason:
        reasons.append(near_reason)
    if change_reason and weight["change"]:
        reasons.append(change_reason)
    if agree and not conflict and not outline:
        priority -= AGREEMENT
        reasons += agree
    return QueueItem(cand.id, cand.image_id, round(max(priority, 0.0), 6), tuple(reasons))
