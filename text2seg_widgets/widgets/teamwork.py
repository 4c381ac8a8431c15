"""Working in a team project from the Annotator: my next image, the reviewer's verdicts, and
colleagues' changes as they happen.

* :class:`TeamWork` is the panel section shown when the project has members: who I am and my
  role, *Next assigned* (the store leases my next image: see :mod:`text2seg_widgets.store.assignments`),
  the reviewer's note on an image that came back, and, for reviewers and managers, the review
  queue with *Approve* and *Return* (a comment is required to return).
* :class:`LiveUpdates` watches the project for other sessions' changes (PostgreSQL LISTEN/NOTIFY,
  SQLite polling: :class:`~text2seg_widgets.store.feed.ChangeFeed`) on an owned background
  worker, and hands each change to the kernel's thread, where the image list (and the open image,
  when it was the one changed) is redrawn from the store. Without a running kernel loop (tests,
  plain Python) changes wait until :meth:`LiveUpdates.apply_pending`.
"""

from __future__ import annotations

import asyncio
import html
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

import ipywidgets as w

from text2seg_widgets.core.workers import Worker
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.feed import ChangeFeed

if TYPE_CHECKING:
    from text2seg_widgets.store import ImageRecord, Project
    from text2seg_widgets.widgets.display import Display
    from text2seg_widgets.widgets.navigation import Navigation
    from text2seg_widgets.widgets.state import AnnotatorState

__all__ = ["TeamWork", "LiveUpdates"]

log = logging.getLogger(__name__)

Changed = Callable[[set[int] | None], None]


class LiveUpdates:
    """Other sessions' changes, applied on the kernel's thread (see the module doc)."""

    def __init__(self, project: "Project", apply: Changed, *, interval_s: float = 1.0) -> None:
        self._apply = apply
        self._feed = ChangeFeed(project.database)
        self._pending: queue.Queue[set[int] | None] = queue.Queue()
        self.interval_s = float(interval_s)
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.closed = False
        self._worker = Worker(self._watch, name="t2s-live-updates").start()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            changed = self._feed.wait(self.interval_s)
            if stop.is_set():
                break
            if changed is None or changed:
                self._pending.put(changed)
                loop = self._loop
                if loop is not None and loop.is_running() and not loop.is_closed():
                    loop.call_soon_threadsafe(self._safe_apply)
        self._feed.close()

    def _safe_apply(self) -> None:
        try:
            self.apply_pending()
        except Exception:
            log.exception("applying a colleague's change failed")

    def apply_pending(self) -> int:
        """Apply the changes that arrived (merged into one redraw); returns how many."""
        merged: set[int] | None = set()
        n = 0
        while not self.closed:
            try:
                changed = self._pending.get_nowait()
            except queue.Empty:
                break
            n += 1
            merged = None if changed is None or merged is None else merged | changed
        if n and not self.closed:
            self._apply(merged)
        return n

    def close(self, timeout: float | None = None) -> bool:
        self.closed = True
        return self._worker.close(timeout)


class TeamWork:
    """The team section of the panel (built by the Annotator when the project has members)."""

    def __init__(self, project: "Project", state: "AnnotatorState", display: "Display",
                 navigation: "Navigation", ui: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.project, self.state, self.display, self.navigation = project, state, display, navigation
        self.user = project.user
        self.role = project.members().get(self.user or "")
        self.reviewer = self.role in ("reviewer", "manager")
        self.who = w.HTML().add_class("t2s-team-who")
        self.note = w.HTML().add_class("t2s-review-note")
        self.next_button = w.Button(description="Next assigned", icon="forward",
                                    tooltip="Open (and hold) my next image").add_class("t2s-team-next")
        self.next_button.on_click(ui(lambda _b: self.open_next()))
        rows: list[w.Widget] = [self.who, self.next_button, self.note]
        self.queue_label = w.HTML().add_class("t2s-review-queue")
        self.comment = w.Text(placeholder="comment (required to return)",
                              layout=w.Layout(width="98%")).add_class("t2s-review-comment")
        self.approve_button = w.Button(description="Approve", button_style="success",
                                       icon="check").add_class("t2s-approve")
        self.return_button = w.Button(description="Return", button_style="warning",
                                      icon="undo").add_class("t2s-return")
        self.review_next = w.Button(description="Next to review", icon="eye").add_class("t2s-review-next")
        self.resolve_choice = w.Dropdown(options=[], layout=w.Layout(width="auto")).add_class(
            "t2s-resolve-choice")
        self.resolve_button = w.Button(description="Resolve consensus", icon="compress").add_class(
            "t2s-resolve")
        self.resolve_box = w.HBox([self.resolve_choice, self.resolve_button],
                                  layout=w.Layout(display="none"))
        self.approve_button.on_click(ui(lambda _b: self.approve()))
        self.return_button.on_click(ui(lambda _b: self.return_image()))
        self.review_next.on_click(ui(lambda _b: self.open_next_review()))
        self.resolve_button.on_click(ui(lambda _b: self.resolve()))
        if self.reviewer:
            rows += [self.queue_label, self.review_next, self.comment,
                     w.HBox([self.approve_button, self.return_button]), self.resolve_box]
        self.widget = w.Accordion(children=[w.VBox(rows)], titles=("Team",), selected_index=0)
        self.widget.add_class("t2s-team")
        self.update()

    # ----------------------------------------------------------------- annotator
    def next_id(self, after: int | None) -> int | None:
        """My next image (leased to me), leaving ``after``."""
        rec = self.project.next_assigned(after=after)
        return int(rec.id) if rec is not None else None

    def open_next(self) -> int | None:
        nxt = self.next_id(self.state.image_id)
        if nxt is None:
            self.display.say("no image is left for you: every image assigned to you (and in the "
                             "pool) is finished or held by a colleague")
            return None
        self.navigation.show_image(nxt)
        return nxt

    # ----------------------------------------------------------------- reviewer
    def first_id(self) -> int | None:
        """The image to open first: a reviewer's oldest waiting image, else my next one."""
        if self.role == "reviewer":
            queue_ = self.project.review_queue()
            if queue_:
                return int(queue_[0].id)
        return self.next_id(None)

    def _waiting(self) -> tuple[list[int], dict[int, list[str]]]:
        """The ids of finished images waiting for a verdict and of consensus images ready to
        resolve, in order; and the latter with their annotators."""
        ready = self.project.agreement_measures.to_resolve()
        return sorted({r.id for r in self.project.review_queue()} | set(ready)), ready

    def open_next_review(self) -> int | None:
        """Open the next image waiting for review or resolution (after the open one, wrapping)."""
        queue_, ready = self._waiting()
        if not queue_:
            self.display.say("nothing waits for review")
            self.update()
            return None
        current = self.state.image_id
        later = [i for i in queue_ if current is None or i > current] or queue_
        self.navigation.show_image(later[0])
        if later[0] in ready:
            self.display.say(f"image {later[0]} was labelled by several annotators: merge their "
                             "masks or pick one annotator's, then Resolve consensus")
        else:
            self.display.say(f"image {later[0]} waits for your verdict: approve, or write what to "
                             "fix and return it")
        return later[0]

    def resolve(self) -> int | None:
        """Resolve the open consensus image as the dropdown says (merge, or pick one)."""
        image_id = self.display.require_image()
        choice = str(self.resolve_choice.value or "merge")
        pick = choice.removeprefix("pick ") if choice.startswith("pick ") else None
        n = self.project.resolve_consensus(image_id, pick=pick)
        self.display.say(f"image {image_id}: {n} mask(s) from {pick or 'every annotator (merged)'}; "
                         "done and approved (undo: z)")
        self.display.refresh()
        return self._after_verdict()

    def approve(self) -> int | None:
        image_id = self.display.require_image()
        self.project.approve_image(image_id, self.comment.value)
        self.comment.value = ""
        self.display.say(f"image {image_id} approved (undo: z)")
        return self._after_verdict()

    def return_image(self) -> int | None:
        image_id = self.display.require_image()
        if not self.comment.value.strip():
            raise InputError("write what to fix in the comment box, then Return")
        self.project.return_image(image_id, self.comment.value)
        self.comment.value = ""
        self.display.say(f"image {image_id} returned to its annotator (undo: z)")
        return self._after_verdict()

    def _after_verdict(self) -> int | None:
        self.navigation.show_image_list()
        queue_ = [i for i in self._waiting()[0] if i != self.state.image_id]
        if queue_:
            self.navigation.show_image(queue_[0])
        self.update()
        return queue_[0] if queue_ else None

    # ----------------------------------------------------------------- display
    def update(self, record: "ImageRecord | None" = None) -> None:
        """Redraw: who I am, the open image's review note, the queue length."""
        role = self.role or "not a member (ask a manager to add you)"
        mine = len(self.project.assignments.assigned())
        self.who.value = (f"<b>{html.escape(self.user or '?')}</b>: {html.escape(role)}; "
                          f"{mine} image(s) assigned to you")
        if record is None and self.state.image_id is not None:
            try:
                record = self.project.image(self.state.image_id)
            except InputError:
                record = None
        note = ""
        if record is not None and record.review == "returned":
            note = (f"<div class='t2s-returned' style='background:#fff3cd;padding:4px'>returned by "
                    f"{html.escape(record.reviewed_by or '?')}: "
                    f"<i>{html.escape(record.review_note)}</i></div>")
        elif record is not None and record.review:
            note = f"<div class='t2s-review'>review: {html.escape(record.review)}</div>"
        self.note.value = note
        if self.reviewer:
            ready = self.project.agreement_measures.to_resolve()
            waiting = len(self.project.review_queue())
            self.queue_label.value = (f"{waiting} image(s) wait for review" +
                                      (f", {len(ready)} consensus image(s) to resolve" if ready else ""))
            names = ready.get(record.id) if record is not None else None
            if names:
                self.resolve_choice.options = ["merge", *(f"pick {n}" for n in names)]
                self.resolve_box.layout.display = "flex"
            else:
                self.resolve_box.layout.display = "none"
