"""SAM-assisted correction: clicks and boxes against the embedding of the prompt's window.

A :class:`RefineSession` belongs to one target (a selected mask, or a new one) and accumulates
the prompts given so far: positive/negative points, a box, and the previous low-resolution logits,
which are fed back to SAM so that every click refines the last answer instead of starting over.
When a session starts on an existing mask, that mask's bounding box seeds the box prompt.

Prompts are kept in image pixels; :meth:`RefineSession.predict` decodes them on a
:class:`~text2seg_widgets.imagery.windows.PromptWindow` (the segmenter holds that window's
embedding) and returns the window's mask. The previous logits belong to a window: when the
prompts move to another window they are dropped and the answer starts over there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.windows import PromptWindow, choose_window, prompt_extent

if TYPE_CHECKING:
    from text2seg_widgets.models.protocols import PromptableSegmenter

__all__ = ["RefineSession", "RefineResult", "session_window"]

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
    #: the window the logits belong to
    window: PromptWindow | None = None

    @classmethod
    def for_mask(cls, target: tuple[str, int] | None, box: np.ndarray | None) -> "RefineSession":
        """A session on ``target`` (None: a new mask) seeded with ``box`` (its mask's xyxy box)."""
        return cls(target=target, box=None if box is None else np.asarray(box, np.float64))

    def add_point(self, x: float, y: float, positive: bool) -> None:
        self.points.append((float(x), float(y)))
        self.labels.append(1 if positive else 0)

    def set_box(self, box: np.ndarray) -> None:
        self.box = np.asarray(box, dtype=np.float64)
        self.logits = None  # a new box starts a fresh answer

    def use_window(self, window: PromptWindow) -> None:
        """Decode on ``window`` from now on (the previous logits are dropped if it changes)."""
        if window != self.window:
            self.logits = None
            self.window = window

    def predict(self, segmenter: "PromptableSegmenter") -> RefineResult:
        """Decode the accumulated prompts with ``segmenter``, which must hold the embedding of
        :attr:`window` (or of the whole image when there is no window); the mask is the window's."""
        if not self.points and self.box is None:
            raise InputError("nothing to refine with: click on the image or draw a box")
        t0 = time.perf_counter()
        win = self.window
        pts = np.asarray(self.points, dtype=np.float64) if self.points else None
        box = self.box
        if win is not None:
            pts = None if pts is None else win.to_local(pts)
            box = None if box is None else np.clip(win.box_to_local(box), 0, [win.width, win.height] * 2)
        lbl = np.asarray(self.labels, dtype=np.int64) if self.points else None
        multimask = self.box is None and len(self.points) == 1 and self.logits is None
        pred = segmenter.predict(points=pts, point_labels=lbl, box=box, mask_input=self.logits,
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


def session_window(session: RefineSession, width: int, height: int, input_size: int) -> PromptWindow:
    """The window a session's prompts (box and points, image pixels) are decoded on in a ``width`` x
    ``height`` image, for a segmenter whose encoder sees ``input_size`` pixels (see
    :func:`~text2seg_widgets.imagery.windows.choose_window`)."""
    return choose_window(prompt_extent(session.box, session.points), width, height, input_size)
