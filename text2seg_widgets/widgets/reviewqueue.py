"""Review-queue order: previous/next jump to the candidates a human should look at first.

:class:`QueueOrder` walks :func:`text2seg_widgets.insights.review_queue` (proposed candidates,
highest priority first): each step opens the candidate's image, selects the candidate and says
why it is in doubt. Candidates reviewed since the queue was computed are passed over; at the end
the queue is computed again (the reviewer's decisions move the thresholds), and when nothing is
left it says so.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Callable

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.navigation import Navigation
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.reviewing import ReviewActions
from text2seg_widgets.widgets.state import AnnotatorState

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["QueueOrder", "ORDERS"]

#: the orders previous/next can follow
ORDERS = ("images", "queue")


def _default_queue(project: "Project") -> list[Any]:
    from text2seg_widgets.insights import review_queue

    return review_queue(project)


class QueueOrder:
    """The order previous/next follow: image order (:class:`Navigation`) or the review queue.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
        panel: the side panel (its order switch).
        navigation: opens images (and moves in image order).
        review: selects the candidate.
        build_queue: ``project -> list[QueueItem]`` (default: ``insights.review_queue``).
    """

    def __init__(self, project: "Project", state: AnnotatorState, display: Display, panel: SidePanel,
                 navigation: Navigation, review: ReviewActions,
                 build_queue: Callable[[Any], list[Any]] = _default_queue) -> None:
        self.project = project
        self.state = state
        self.display = display
        self.panel = panel
        self.navigation = navigation
        self.review = review
        self.build_queue = build_queue
        self.order = "images"
        self.items: list[Any] = []
        self.index = -1

    def set_order(self, order: str) -> int | None:
        """Follow ``"images"`` (image order, under the filter) or ``"queue"`` (the review queue,
        starting at its head); returns the image opened (None if none)."""
        if order not in ORDERS:
            raise InputError(f"unknown order {order!r}; use 'images' or 'queue'")
        self.order = order
        if self.panel.order.value != order:
            with self.display.syncing():
                self.panel.order.value = order
        if order == "images":
            self.display.say("previous/next follow the image order")
            return None
        self.items, self.index = self.build_queue(self.project), -1
        return self.step(1)

    def toggle(self) -> int | None:
        return self.set_order("queue" if self.order == "images" else "images")

    def step(self, delta: int) -> int | None:
        """Open the next (``delta`` 1) or previous (-1) candidate of the queue still proposed."""
        i = self._find(self.index + delta, delta)
        if i is None and delta > 0:
            self.items, self.index = self.build_queue(self.project), -1
            i = self._find(0, 1)
        if i is None:
            self.display.say("the review queue is empty: every candidate is reviewed" if delta > 0 else
                             "start of the review queue: press . for the next candidate")
            return None
        self.index = i
        item = self.items[i]
        if item.image_id != self.state.image_id:
            self.navigation.show_image(item.image_id)
        self.review.select(("candidate", item.candidate_id))
        why = "; ".join(html.escape(r) for r in item.reasons) or "no particular doubt"
        self.display.say(f"queue {i + 1}/{len(self.items)}: candidate {item.candidate_id} on image "
                         f"{item.image_id}, priority {item.priority:.2f} ({why})")
        return int(item.image_id)

    def _find(self, start: int, delta: int) -> int | None:
        i = start
        while 0 <= i < len(self.items):
            if self._proposed(self.items[i].candidate_id):
                return i
            i += delta
        return None

    def _proposed(self, candidate_id: int) -> bool:
        try:
            return self.project.candidate(candidate_id).status == "proposed"
        except InputError:  # removed with its class meanwhile
            return False
