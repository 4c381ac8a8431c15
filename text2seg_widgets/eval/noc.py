"""Annotation-effort simulation: the standard simulated-click protocol, NoC@85/90, mIoU@k.

The protocol (as in the interactive-segmentation literature, e.g. RITM and SAM's evaluation):

1. The current prediction starts empty (``start="none"``), as the segmenter's answer to the
   object's ground-truth box (``start="box"``; the box is the first interaction), or as a given
   pseudo-label mask (``start="mask"``; free: it costs no interaction).
2. Error regions are the false negatives (object pixels not predicted) and the false positives
   (predicted pixels outside the object), each split into 4-connected components. The next click
   goes into the *largest* component (most pixels; ties: false negatives first, then raster order),
   at the pixel farthest from that component's boundary (Euclidean distance transform from
   ``scipy.ndimage``; the image border counts as boundary; ties: first pixel in raster order). It is
   positive in a false-negative region and negative in a false-positive one.
3. The segmenter gets every click so far (and the box, for ``start="box"``), plus its own previous
   low-resolution logits as ``mask_input`` when it returns them (for ``start="mask"`` the first
   ``mask_input`` is the pseudo-label converted to SAM-style logits, see
   :func:`mask_to_low_res_logits`).
4. At most ``max_clicks`` (20) interactions per object, the box included. ``ious[k]`` is the IoU
   after ``k`` interactions (``ious[0]``: the start, 0 for an empty start).
   ``NoC@t`` is the smallest ``k`` with ``ious[k] >= t``; **when the threshold is never reached,
   NoC@t is max_clicks (20)**. ``mIoU@k`` is the mean of ``ious[k]`` over all objects.

Box-only segmenters (LiteMedSAM: its ``predict`` raises :class:`InputError` for points) follow the
*box-only protocol* instead of crashing: the single possible interaction is the ground-truth box.
It counts as one interaction whether or not it reaches the threshold, so NoC@t is 1 when the box
mask reaches ``t`` and ``max_clicks`` otherwise (and 0 for a ``start="mask"`` pseudo-label that
already reaches it); ``ious[k]`` for ``k >= 1`` is the box result. Traces say ``box_only=True``.
A segmenter is treated as box-only when its ``supports_points`` attribute is False, or when its
first point prompt raises :class:`InputError`.

Objects come from a class-index map with :func:`label_objects` (connected components per class);
:func:`attach_pseudo_labels` gives each the best-overlapping proposal as its ``start="mask"`` mask.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Protocol, Sequence

import numpy as np
from scipy import ndimage

from text2seg_widgets.core.masks import mask_bbox_xyxy, mask_iou
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.protocols import MaskPrediction, PromptableSegmenter

__all__ = [
    "Click",
    "ObjectTrace",
    "NoCSummary",
    "GTObject",
    "mask_iou",
    "mask_box",
    "next_click",
    "mask_to_low_res_logits",
    "simulate_object",
    "simulate_image",
    "summarize",
    "label_objects",
    "attach_pseudo_labels",
    "DEFAULT_MAX_CLICKS",
    "DEFAULT_THRESHOLDS",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CLICKS = 20
DEFAULT_THRESHOLDS = (0.85, 0.90)
Start = Literal["none", "box", "mask"]


@dataclass(frozen=True)
class Click:
    """One simulated click at pixel ``(x, y)``; positive adds the object, negative removes."""

    x: int
    y: int
    positive: bool


@dataclass
class GTObject:
    """One ground-truth object: its mask, class, and an optional pseudo-label to start from."""

    mask: np.ndarray
    class_name: str = ""
    init_mask: np.ndarray | None = None
    ignore: np.ndarray | None = None


@dataclass
class ObjectTrace:
    """What happened to one object: the IoU after each interaction and the interactions."""

    ious: list[float]
    interactions: list[dict[str, Any]]
    start: str
    class_name: str = ""
    box_only: bool = False
    max_clicks: int = DEFAULT_MAX_CLICKS

    def noc(self, threshold: float, max_clicks: int | None = None) -> int:
        """Interactions needed to reach ``threshold``; ``max_clicks`` (by default the trace's own
        limit) when never reached."""
        max_clicks = self.max_clicks if max_clicks is None else max_clicks
        for k, iou in enumerate(self.ious[:max_clicks + 1]):
            if iou >= threshold:
                return k
        return max_clicks

    def iou_at(self, k: int) -> float:
        """IoU after ``k`` interactions (the last value carries on once the trace stopped)."""
        return self.ious[min(k, len(self.ious) - 1)]


@dataclass
class NoCSummary:
    """Means over objects: NoC per threshold, mIoU@k for k = 0..max_clicks, share reaching each t."""

    thresholds: tuple[float, ...]
    max_clicks: int
    objects: int
    noc: dict[float, float]
    reached: dict[float, float]
    miou_at: list[float]
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    box_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "max_clicks": self.max_clicks, "box_only": self.box_only,
                **{f"noc@{round(100 * t)}": _num(v) for t, v in self.noc.items()},
                **{f"reached@{round(100 * t)}": _num(v) for t, v in self.reached.items()},
                "miou_at_k": [_num(v) for v in self.miou_at], "per_class": self.per_class}


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


# ------------------------------------------------------------------------------------- geometry


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The tight box ``(x0, y0, x1, y1)`` of a mask with exclusive ``x1, y1`` (COCO ``x + w``)."""
    box = mask_bbox_xyxy(mask)
    if box is None:
        raise InputError("the object mask is empty; it has no box")
    return box.astype(np.float32)


def next_click(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """The next simulated click (see the module docs), or None when there is no error left."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    valid = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, dtype=bool)
    best: tuple[int, bool, np.ndarray, tuple[slice, slice]] | None = None
    for positive, error in ((True, gt & ~pred & valid), (False, pred & ~gt & valid)):
        labels, count = ndimage.label(error)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        index = int(np.argmax(sizes))  # first largest in raster order of the label ids
        if best is None or sizes[index] > best[0]:
            region_slice = ndimage.find_objects(labels, max_label=index + 1)[index]
            best = (int(sizes[index]), positive, labels == index + 1, region_slice)
    if best is None:
        return None
    _, positive, region, (ys, xs) = best
    crop = np.pad(region[ys, xs], 1)  # a zero border: the image edge is a boundary too
    dist = ndimage.distance_transform_edt(crop)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(x=int(x + xs.start), y=int(y + ys.start), positive=positive)


def mask_to_low_res_logits(mask: np.ndarray, size: int = 256, value: float = 10.0) -> np.ndarray:
    """A (1, size, size) float32 logit map in SAM's ``mask_input`` frame: the mask resized so its
    longer side is ``size``, placed top-left, padded with background; ``+value`` inside, ``-value``
    outside (SAM thresholds logits at 0)."""
    from PIL import Image

    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.array(Image.fromarray(mask.astype(np.uint8) * 255).resize((new_w, new_h), Image.Resampling.BILINEAR)) >= 128
    out = np.full((1, size, size), -value, dtype=np.float32)
    out[0, :new_h, :new_w] = np.where(small, value, -value)
    return out


# ----------------------------------------------------------------------------------- simulation


class Prompter(Protocol):
    """What the click simulation asks of a segmenter: decode one prompt (its image already set)."""

    name: str
    supports_points: bool

    def predict(self, *, points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> MaskPrediction: ...


class _Session:
    """The prompts given so far for one object, and the segmenter's last answer."""

    def __init__(self, segmenter: Prompter, feed_logits: bool) -> None:
        self.segmenter = segmenter
        self.feed_logits = feed_logits
        self.points: list[tuple[int, int]] = []
        self.labels: list[int] = []
        self.box: np.ndarray | None = None
        self.logits: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        points = np.array(self.points, dtype=np.float32).reshape(-1, 2) if self.points else None
        labels = np.array(self.labels, dtype=np.int64) if self.points else None
        mask_input = self.logits if self.feed_logits else None
        result = self.segmenter.predict(points=points, point_labels=labels, box=self.box,
                                        mask_input=mask_input, multimask=False)
        return self._best(result)

    def _best(self, result: MaskPrediction) -> np.ndarray:
        masks = np.asarray(result.masks)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.shape[0] == 0:
            raise InputError(f"segmenter {getattr(self.segmenter, 'name', '?')} returned no mask")
        best = int(np.argmax(result.scores)) if len(np.atleast_1d(result.scores)) == masks.shape[0] else 0
        if result.low_res_logits is not None:
            logits = np.asarray(result.low_res_logits)
            self.logits = logits[best][None] if logits.ndim == 3 else logits
        return masks[best].astype(bool)


def _box_only_flag(segmenter: Prompter) -> bool | None:
    flag = getattr(segmenter, "supports_points", None)
    return None if flag is None else not bool(flag)


def simulate_object(segmenter: Prompter, gt: np.ndarray, *, start: Start = "none",
                    init_mask: np.ndarray | None = None, ignore: np.ndarray | None = None,
                    max_clicks: int = DEFAULT_MAX_CLICKS, feed_logits: bool = True,
                    stop_at: float | None = None, class_name: str = "") -> ObjectTrace:
    """Run the click protocol on one object of the image already set on ``segmenter``.

    ``stop_at``: stop clicking once the IoU reaches it (the remaining ``ious`` then carry the
    last value, which keeps NoC at thresholds <= ``stop_at`` exact and saves decoder calls).
    """
    gt = np.asarray(gt, dtype=bool)
    if not gt.any():
        raise InputError("the ground-truth object mask is empty; drop empty objects before simulating")
    if start not in ("none", "box", "mask"):
        raise InputError(f"start must be 'none', 'box' or 'mask', got {start!r}")
    if start == "mask" and (init_mask is None or np.shape(init_mask) != gt.shape):
        raise InputError(f"start='mask' needs init_mask of the object's size {gt.shape}, got "
                         f"{None if init_mask is None else np.shape(init_mask)}")
    session = _Session(segmenter, feed_logits)
    trace = ObjectTrace(ious=[], interactions=[], start=start, class_name=class_name)
    pred = np.zeros_like(gt)
    if start == "mask":
        pred = np.asarray(init_mask, dtype=bool)
        session.logits = mask_to_low_res_logits(pred)
    trace.ious.append(mask_iou(pred, gt, ignore))
    box_only = _box_only_flag(segmenter)
    if box_only or start == "box":
        if box_only and stop_at is not None and trace.ious[0] >= stop_at:
            return _finish(trace, max_clicks, box_only=True)
        session.box = mask_box(gt)
        session.logits = None if box_only else session.logits
        pred = session.ask()
        trace.interactions.append({"type": "box", "box": [float(v) for v in session.box]})
        trace.ious.append(mask_iou(pred, gt, ignore))
        if box_only:
            return _finish(trace, max_clicks, box_only=True)
    try:
        _click_loop(session, trace, gt, pred, ignore, max_clicks, stop_at)
    except _PointsRefused:
        if box_only is not None:
            raise InputError(f"segmenter {getattr(segmenter, 'name', '?')} says it supports points "
                             "but refused a point prompt") from None
        logger.info("segmenter %s refused point prompts; using the box-only protocol",
                    getattr(segmenter, "name", "?"))
        if start == "box":  # the box was already given: that is all a box-only model takes
            return _finish(trace, max_clicks, box_only=True)
        return simulate_object(_BoxOnly(segmenter), gt, start=start, init_mask=init_mask, ignore=ignore,
                               max_clicks=max_clicks, feed_logits=feed_logits, stop_at=stop_at,
                               class_name=class_name)
    return _finish(trace, max_clicks, box_only=False)


class _PointsRefused(Exception):
    """The first point prompt raised InputError: the segmenter takes boxes only."""


def _click_loop(session: _Session, trace: ObjectTrace, gt: np.ndarray, pred: np.ndarray,
                ignore: np.ndarray | None, max_clicks: int, stop_at: float | None) -> None:
    while len(trace.ious) <= max_clicks:
        if stop_at is not None and trace.ious[-1] >= stop_at:
            return
        click = next_click(gt, pred, ignore)
        if click is None:
            return
        session.points.append((click.x, click.y))
        session.labels.append(1 if click.positive else 0)
        try:
            pred = session.ask()
        except InputError:
            if len(session.points) == 1:
                raise _PointsRefused() from None
            raise
        trace.interactions.append({"type": "click", "x": click.x, "y": click.y, "positive": click.positive})
        trace.ious.append(mask_iou(pred, gt, ignore))


class _BoxOnly:
    """Wraps a segmenter that refused points so the protocol knows it is box-only."""

    supports_points = False

    def __init__(self, inner: Prompter) -> None:
        self._inner = inner
        self.name = getattr(inner, "name", "?")

    def predict(self, *, points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> MaskPrediction:
        return self._inner.predict(points=points, point_labels=point_labels, box=box, mask_input=None,
                                   multimask=multimask)


def _finish(trace: ObjectTrace, max_clicks: int, *, box_only: bool) -> ObjectTrace:
    trace.box_only = box_only
    trace.max_clicks = max_clicks
    last = trace.ious[-1]
    trace.ious.extend([last] * (max_clicks + 1 - len(trace.ious)))
    return trace


def simulate_image(segmenter: PromptableSegmenter, image: np.ndarray, objects: Sequence[GTObject], *,
                   start: Start = "none", max_clicks: int = DEFAULT_MAX_CLICKS, feed_logits: bool = True,
                   stop_at: float | None = None) -> list[ObjectTrace]:
    """Encode ``image`` once, then simulate every object on it."""
    for obj in objects:
        if np.shape(obj.mask) != tuple(np.shape(image)[:2]):
            raise InputError(f"object mask size {np.shape(obj.mask)} differs from the image size "
                             f"{tuple(np.shape(image)[:2])}")
    segmenter.set_image(image)
    traces = []
    for obj in objects:
        traces.append(simulate_object(segmenter, obj.mask, start=start, init_mask=obj.init_mask,
                                      ignore=obj.ignore, max_clicks=max_clicks, feed_logits=feed_logits,
                                      stop_at=stop_at, class_name=obj.class_name))
    return traces


def summarize(traces: Iterable[ObjectTrace], *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
              max_clicks: int = DEFAULT_MAX_CLICKS) -> NoCSummary:
    """Mean NoC per threshold, share of objects reaching it, mIoU@k, and the same per class."""
    traces = list(traces)
    if not traces:
        raise InputError("no objects were simulated; nothing to summarise")
    summary = _summary_of(traces, tuple(thresholds), max_clicks)
    for name in sorted({t.class_name for t in traces}):
        sub = _summary_of([t for t in traces if t.class_name == name], tuple(thresholds), max_clicks)
        summary.per_class[name or "<unnamed>"] = {k: v for k, v in sub.to_dict().items() if k != "per_class"}
    return summary


def _summary_of(traces: list[ObjectTrace], thresholds: tuple[float, ...], max_clicks: int) -> NoCSummary:
    nocs = {t: float(np.mean([tr.noc(t, max_clicks) for tr in traces])) for t in thresholds}
    reached = {t: float(np.mean([max(tr.ious[:max_clicks + 1]) >= t for tr in traces])) for t in thresholds}
    miou = [float(np.mean([tr.iou_at(k) for tr in traces])) for k in range(max_clicks + 1)]
    return NoCSummary(thresholds=thresholds, max_clicks=max_clicks, objects=len(traces), noc=nocs,
                      reached=reached, miou_at=miou, box_only=all(tr.box_only for tr in traces))


def label_objects(label: np.ndarray, class_names: Sequence[str], *, classes: Sequence[str] | None = None,
                  min_area: int = 1, ignore_index: int = 255) -> list[GTObject]:
    """Objects of a class-index map: 4-connected components of each class of at least
    ``min_area`` pixels, each with the map's ignore pixels attached."""
    label = np.asarray(label)
    wanted = list(class_names) if classes is None else list(classes)
    unknown = [c for c in wanted if c not in class_names]
    if unknown:
        raise InputError(f"classes {unknown} are not in the label classes {list(class_names)}")
    ignore = label == ignore_index
    objects = []
    for name in wanted:
        components, count = ndimage.label(label == class_names.index(name))
        if count == 0:
            continue
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        for comp in np.nonzero(sizes[1:] >= min_area)[0] + 1:
            objects.append(GTObject(mask=components == comp, class_name=name,
                                    ignore=ignore if ignore.any() else None))
    return objects


def attach_pseudo_labels(objects: Sequence[GTObject], instances: Iterable[tuple[str, np.ndarray]]) -> list[GTObject]:
    """Give each object the pseudo-label to start from: the ``(class name, mask)`` instance of the
    same class with the highest IoU with it (an empty mask when none overlaps), as an annotator
    would pick the proposal to fix. Returns the objects, with ``init_mask`` set."""
    by_class: dict[str, list[np.ndarray]] = {}
    for name, mask in instances:
        by_class.setdefault(name, []).append(np.asarray(mask, dtype=bool))
    for obj in objects:
        best, best_iou = np.zeros_like(obj.mask, dtype=bool), 0.0
        for mask in by_class.get(obj.class_name, []):
            if mask.shape != obj.mask.shape:
                raise InputError(f"pseudo-label size {mask.shape} differs from the object size {obj.mask.shape}")
            iou = mask_iou(mask, obj.mask, obj.ignore)
            if iou > best_iou:
                best, best_iou = mask, iou
        obj.init_mask = best
    return list(objects)
