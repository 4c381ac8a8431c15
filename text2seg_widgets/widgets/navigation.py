"""Moving between images and through the history.

:class:`Navigation` opens images on the map (a missing file is reported, its masks still shown),
finishes images under the review invariant, moves through the image list under a filter, and
replays the store's undo/redo history on the image it changed.

Review integrity: "Next image" marks the image done only when no proposed candidate is left on
it; otherwise it stays and says how many are left, offering "done: reject the rest"
(:meth:`Navigation.finish_reject_rest`, key d) and "skip" (:meth:`Navigation.skip_image`, key x),
both one undoable store action. Previous/next in the list (keys , and .) and go-to never change
an image's state.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any, Callable

from text2seg_widgets.errors import InputError, UnreviewedError
from text2seg_widgets.widgets import storeview as sv
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.effort import ImageClock
from text2seg_widgets.widgets.mapview import MapView
from text2seg_widgets.imagery.windows import PromptWindow
from text2seg_widgets.widgets.overlay import load_image
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.state import AnnotatorState

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Navigation", "GUARD_HINT"]

log = logging.getLogger(__name__)

#: how the Next guard offers the two ways out
GUARD_HINT = ("review them (a / r), or press <kbd>d</kbd> done: reject the rest, or <kbd>x</kbd> skip "
              "this image (both undoable)")


class Navigation:
    """Which image is open, and the way to the others.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
        view: the map the image is shown on.
        panel: the side panel (filter, go-to box and image list).
        keeper: the segmenter's embedding keeper (the next image is prefetched), or None.
        clock: times the open image; its seconds go to ``project.add_time`` when it is left.
    """

    def __init__(self, project: "Project", state: AnnotatorState, display: Display, view: MapView,
                 panel: SidePanel, keeper: Any, clock: ImageClock) -> None:
        self.project = project
        self.state = state
        self.display = display
        self.view = view
        self.panel = panel
        self.keeper = keeper
        self.clock = clock
        self.filter: str | None = None
        #: the image "Next" opens after ``after`` (a team project: the store's next assigned image)
        self.next_id: Callable[[int | None], int | None] = lambda after: sv.next_image_id(project, after)
        #: called with the record of every image opened (e.g. the team section's review note)
        self.on_show: list[Callable[[Any], None]] = []
        display.also.append(self.show_image_list)

    # -- opening -------------------------------------------------------------------------------
    def show_image(self, image_id: int) -> None:
        """Open ``image_id``: load its pixels (a missing file is reported, its masks still shown)."""
        st = self.state
        record = self.project.image(image_id)
        self.leave()
        st.image_id = int(record.id)
        st.select(None)
        st.pending_actions = 0
        self.clock.start(st.image_id)
        self._offer_ways_out(False)
        try:
            st.image = load_image(record.path, record.window)
        except (InputError, OSError) as exc:
            st.image = None
            self.display.say(html.escape(str(exc)), error=True)
        else:
            self.display.say(f"image {record.id}: {html.escape(str(record.path))}")
        st.frame = sv.frame_of(record, st.image)
        self.view.show(st.image, st.frame)
        self.display.refresh()
        for hook in self.on_show:
            hook(record)

    def _offer_ways_out(self, on: bool) -> None:
        """Highlight "done: reject rest" and "skip" while the Next guard is being shown."""
        for button in (self.panel.done_reject, self.panel.skip):
            button.button_style = "warning" if on else ""

    def leave(self) -> None:
        """Record the time spent on the open image (if any) in the store."""
        image_id, seconds = self.clock.stop()
        if image_id is None or seconds <= 0:
            return
        try:
            self.project.add_time(image_id, seconds)
        except InputError as exc:  # image removed, or project closed first
            log.warning("%.0f s on image %s not recorded: %s", seconds, image_id, exc)

    def _open_next_to_review(self, done_text: str) -> int | None:
        nxt = self.next_id(self.state.image_id)
        if nxt is None:
            self.display.refresh()
            self.display.say(f"{done_text}; all images are reviewed: export the project "
                             "(see the quickstart notebook)")
            return None
        self.show_image(nxt)
        self.display.say(f"{done_text}; image {nxt} opened")
        return nxt

    # -- finishing -----------------------------------------------------------------------------
    def next_image(self) -> int | None:
        """Mark this image done and open the next one to review; returns its id (None: stayed, or
        nothing is left). With candidates left nothing changes: the message offers the ways out."""
        current = self.display.require_image()
        try:
            self.project.finish_image(current, rest="require")
        except UnreviewedError as exc:
            left = exc.count
            self.display.say(f"{sv.plural(left, 'candidate')} left on image {current}: {GUARD_HINT}",
                             error=True)
            self._offer_ways_out(True)
            return None
        return self._open_next_to_review(f"image {current} done")

    def finish_reject_rest(self) -> int | None:
        """Reject the candidates left, mark this image done (one undoable step), open the next."""
        current = self.display.require_image()
        rejected = self.project.finish_image(current, rest="reject")
        return self._open_next_to_review(
            f"image {current} done: {sv.plural(rejected, 'candidate')} rejected (undo: z)")

    def skip_image(self, reason: str = "") -> int | None:
        """Mark this image skipped (left out of exports; its candidates untouched), open the next."""
        current = self.display.require_image()
        self.project.skip_image(current, reason=reason)
        return self._open_next_to_review(f"image {current} skipped (undo: z)")

    # -- moving --------------------------------------------------------------------------------
    def set_filter(self, name: str | None) -> None:
        """Which images previous/next and the image list go through: None or "all" (every image),
        "unreviewed", "candidates left", "in progress", "done", "skipped"."""
        value = None if name in (None, "all") else str(name)
        self.project.image_summaries(value)  # validates the name (InputError listing the choices)
        self.filter = value
        want = "all" if value is None else value
        if self.panel.filter.value != want:
            with self.display.syncing():
                self.panel.filter.value = want
        self.show_image_list()

    def go_next(self) -> int | None:
        """The next image in the list (under the filter, wrapping); its state is not changed."""
        return self._go(self.project.next_image(self.state.image_id, filter=self.filter))

    def go_previous(self) -> int | None:
        """The previous image in the list (under the filter, wrapping)."""
        return self._go(self.project.previous_image(self.state.image_id, filter=self.filter))

    def _go(self, record: Any) -> int | None:
        if record is None or record.id == self.state.image_id:
            where = "" if self.filter is None else f" with filter '{self.filter}'"
            self.display.say(f"no other image{where}")
            return None
        self.show_image(int(record.id))
        return int(record.id)

    def go_to(self, key: int | str) -> int:
        """Open an image by id, file name or file stem (:class:`InputError` with close matches)."""
        if isinstance(key, str) and not key.strip():
            raise InputError("type an image id or file name to go to")
        record = self.project.find_image(key)
        self.show_image(int(record.id))
        return int(record.id)

    def goto_typed(self, text: str) -> None:
        """The go-to box: open what was typed, then clear the box."""
        if not text:
            return
        try:
            self.go_to(text.strip())
        finally:
            with self.display.syncing():
                self.panel.goto.value = ""

    def image_picked(self, image_id: Any) -> None:
        if image_id is not None and image_id != self.state.image_id:
            self.show_image(int(image_id))

    def show_image_list(self) -> None:
        """Fill the image list (state and counts of every image under the filter)."""
        options = [(sv.summary_label(s), s.id) for s in self.project.image_summaries(self.filter)]
        panel = self.panel.images
        with self.display.syncing():
            if list(panel.options) != options:
                panel.options = options
            current = self.state.image_id
            panel.value = current if any(v == current for _, v in options) else None

    # -- history -------------------------------------------------------------------------------
    def undo(self) -> Any:
        """Undo the newest action; opens the image it changed and says what was undone."""
        return self._history(self.project.undo(), "undone")

    def redo(self) -> Any:
        return self._history(self.project.redo(), "redone")

    def _history(self, step: Any, verb: str) -> Any:
        self.state.session = None
        if step is None:
            self.display.refresh()
            self.display.say(f"nothing to be {verb}")
            return None
        changed = tuple(getattr(step, "image_ids", ()) or ())
        opened = ""
        if changed and self.state.image_id not in changed:
            self.show_image(changed[0])
            opened = f" (image {changed[0]} opened)"
        else:
            self.display.refresh()
        self.display.say(f"{verb}: {html.escape(str(step))}{opened}")
        return step

    # -- background ----------------------------------------------------------------------------
    def prefetch_next(self) -> None:
        """Encode the next image in the background (called once this image is encoded)."""
        image_id = self.state.image_id
        if self.keeper is None or image_id is None:
            return
        nxt = sv.next_image_id(self.project, image_id)
        if nxt is None or nxt == image_id:
            return
        nrec = self.project.image(nxt)
        size = self.keeper.segmenter.input_size
        if max(int(nrec.width), int(nrec.height)) > size:
            return  # prompts there are decoded on windows, encoded when (and where) they come
        whole = PromptWindow(0, 0, int(nrec.width), int(nrec.height), size)  # its one prompt window
        self.keeper.prefetch((nxt, whole.rasterio), lambda: load_image(nrec.path, nrec.window).read(whole))
