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
from typing import Any, Callable

import numpy as np

from text2seg_widgets.core.masks import mask_bbox_xyxy
from text2seg_widgets.errors import InputError

__all__ = ["RefineSession", "RefineResult", "EmbeddingKeeper"]

log = logging.getLogger(__name__)


@dataclass
class RefineResult:
    mask: np.ndarray
    score: float
    seconds: float


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


#: adapter attributes that are the model itself or bookkeeping, never per-image state
_NOT_STATE = frozenset({"model", "name", "device", "dtype", "encoder_calls"})


class EmbeddingKeeper:
    """The segmenter's image embedding: set once per image, prefetched for the next image.

    ``ensure(key, rgb)`` makes the segmenter hold image ``key`` (a no-op when it already does).
    ``prefetch(key, loader)`` encodes the next image in a background thread on a *shadow*
    adapter that shares the model weights but not the per-image state, so the annotator keeps
    clicking on the current image meanwhile; when ``ensure`` later asks for that image, the
    shadow's state is moved into the segmenter instead of encoding again. Adapters that cannot be
    shadowed (their constructor does not take the model) simply skip prefetching.
    """

    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter
        self.lock = threading.RLock()
        self.current: Any = None
        self._thread: threading.Thread | None = None
        self._ready: dict[Any, dict[str, Any]] = {}
        self.prefetch_encodes = 0

    def ensure(self, key: Any, rgb: np.ndarray) -> None:
        with self.lock:
            state = self._ready.pop(key, None)
            if state is not None and self.current != key:
                self.segmenter.__dict__.update(state)
                log.debug("image %s: using the prefetched embedding", key)
            else:
                # the segmenter may be shared (pipeline, other annotators): its own fingerprint
                # check makes this a no-op when it still holds this image, and re-encodes if not
                self.segmenter.set_image(rgb)
            self.current = key

    def _shadow(self) -> Any | None:
        seg = self.segmenter
        model = getattr(seg, "model", None)
        if model is None:
            return None
        try:
            return type(seg)(model, name=getattr(seg, "name", "shadow"), device=getattr(seg, "device", "cpu"))
        except TypeError:
            return None

    def prefetch(self, key: Any, rgb_loader: Callable[[], np.ndarray]) -> threading.Thread | None:
        """Encode ``rgb_loader()`` in the background for image ``key``; returns the thread (or None)."""
        if key == self.current or key in self._ready or (self._thread is not None and self._thread.is_alive()):
            return None
        shadow = self._shadow()
        if shadow is None:
            return None

        def work() -> None:
            try:
                shadow.set_image(rgb_loader())
            except Exception:  # a failed prefetch only costs the encode later
                log.warning("background embedding of image %s failed", key, exc_info=True)
                return
            state = {k: v for k, v in vars(shadow).items() if k not in _NOT_STATE}
            with self.lock:
                self._ready = {key: state}  # keep one prefetched image
                self.prefetch_encodes += 1

        self._thread = threading.Thread(target=work, name=f"t2s-prefetch-{key}", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
