"""SAM-assisted correction: clicks and boxes against the cached image embedding.

A :class:`RefineSession` belongs to one target (a selected mask, or a new one) and accumulates
the prompts given so far: positive/negative points, a box, and the previous low-resolution logits,
which are fed back to SAM so that every click refines the last answer instead of starting over.
When a session starts on an existing mask, that mask's bounding box seeds the box prompt.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from text2seg_widgets.errors import InputError

__all__ = ["RefineSession", "RefineResult", "EmbeddingKeeper", "mask_bbox_xyxy"]

log = logging.getLogger(__name__)


@dataclass
class RefineResult:
    mask: np.ndarray
    score: float
    seconds: float


def mask_bbox_xyxy(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


@dataclass
class RefineSession:
    """Prompts accumulated for one target: ``target`` is ("annotation"|"candidate", id) or None (new)."""

    target: tuple[str, int] | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: np.ndarray | None = None
    logits: np.ndarray | None = None

    @classmethod
    def for_mask(cls, target: tuple[str, int] | None, mask: np.ndarray | None) -> "RefineSession":
        return cls(target=target, box=None if mask is None else mask_bbox_xyxy(mask))

    def add_point(self, x: float, y: float, positive: bool) -> None:
        self.points.append((float(x), float(y)))
        self.labels.append(1 if positive else 0)

    def set_box(self, box: np.ndarray) -> None:
        self.box = np.asarray(box, dtype=np.float64)
        self.logits = None  # a new box starts a fresh answer

    def predict(self, segmenter: Any) -> RefineResult:
        """Decode the accumulated prompts with ``segmenter`` (its image must already be set)."""
        if not self.points and self.box is None:
            raise InputError("nothing to refine with: click on the image or draw a box")
        t0 = time.perf_counter()
        pts = np.asarray(self.points, dtype=np.float64) if self.points else None
        lbl = np.asarray(self.labels, dtype=np.int64) if self.points else None
        multimask = self.box is None and len(self.points) == 1 and self.logits is None
        pred = segmenter.predict(points=pts, point_labels=lbl, box=self.box, mask_input=self.logits,
                                 multimask=multimask)
        masks = np.asarray(pred.masks)
        scores = np.asarray(pred.scores, dtype=float).reshape(-1)
        best = int(np.argmax(scores)) if scores.size else 0
        if pred.low_res_logits is not None:
            logits = np.asarray(pred.low_res_logits)
            self.logits = logits[best:best + 1] if logits.ndim == 3 else logits
        mask = masks[best] if masks.ndim == 3 else masks
        return RefineResult(mask=mask.astype(bool), score=float(scores[best]) if scores.size else 0.0,
                            seconds=time.perf_counter() - t0)


class EmbeddingKeeper:
    """Serialises use of one segmenter between the UI thread and the background prefetch.

    ``ensure(key, rgb)`` sets the segmenter's image unless ``key`` is the image it holds; the
    adapter caches the embedding, so repeated prompts on the same image never re-encode.
    ``prefetch(key, rgb)`` encodes an image in a background thread (the next image) when the
    adapter keeps several embeddings (``cache_size`` > 1); otherwise prefetching would only evict
    the current image's embedding, so it is skipped.
    """

    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter
        self.lock = threading.RLock()
        self.current: Any = None
        self._thread: threading.Thread | None = None
        self.prefetched: set[Any] = set()

    def ensure(self, key: Any, rgb: np.ndarray) -> None:
        with self.lock:
            if self.current != key:
                self.segmenter.set_image(rgb)
                self.current = key

    def can_prefetch(self) -> bool:
        return int(getattr(self.segmenter, "cache_size", 1) or 1) > 1

    def prefetch(self, key: Any, rgb_loader: Any) -> threading.Thread | None:
        """Encode ``rgb_loader()`` in the background under ``key``; returns the thread (or None)."""
        if not self.can_prefetch() or key in self.prefetched:
            return None

        def work() -> None:
            try:
                rgb = rgb_loader()
                with self.lock:
                    previous = self.current
                    self.segmenter.set_image(rgb)
                    self.prefetched.add(key)
                    self.current = key
                    del previous
            except Exception:  # a prefetch failure only costs time later
                log.warning("background embedding of image %s failed", key, exc_info=True)

        self._thread = threading.Thread(target=work, name=f"t2s-prefetch-{key}", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
