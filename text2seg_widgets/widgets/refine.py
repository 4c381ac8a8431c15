"""SAM-assisted correction: clicks and boxes against the cached image embedding.

A :class:`RefineSession` belongs to one target (a selected mask, or a new one) and accumulates
the prompts given so far: positive/negative points, a box, and the previous low-resolution logits,
which are fed back to SAM so that every click refines the last answer instead of starting over.
When a session starts on an existing mask, that mask's bounding box seeds the box prompt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from text2seg_widgets.core.masks import mask_bbox_xyxy
from text2seg_widgets.errors import InputError

if TYPE_CHECKING:
    from text2seg_widgets.models.protocols import PromptableSegmenter

__all__ = ["RefineSession", "RefineResult"]

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

    def predict(self, segmenter: "PromptableSegmenter") -> RefineResult:
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
