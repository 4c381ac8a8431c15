"""Moving between images and through the history: open an image, next image, undo, redo.

:class:`Navigation` opens images on the map (a missing file is reported, its masks still shown),
moves to the next image to review, and replays the store's undo/redo history.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets import storeview as sv
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.mapview import MapView
from text2seg_widgets.widgets.overlay import load_image
from text2seg_widgets.widgets.state import AnnotatorState

__all__ = ["Navigation"]

log = logging.getLogger(__name__)


class Navigation:
    """Which image is open, and the way to the others.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
        view: the map the image is shown on.
        keeper: the segmenter's embedding keeper (the next image is prefetched), or None.
    """

    def __init__(self, project: Any, state: AnnotatorState, display: Display, view: MapView,
                 keeper: Any) -> None:
        self.project = project
        self.state = state
        self.display = display
        self.view = view
        self.keeper = keeper

    def show_image(self, image_id: int) -> None:
        """Open ``image_id``: load its pixels (a missing file is reported, its masks still shown)."""
        st = self.state
        record = self.project.image(image_id)
        st.image_id = int(record.id)
        st.selection = None
        st.session = None
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

    def next_image(self) -> int | None:
        """Mark this image done and open the next unreviewed one; returns its id (None at the end)."""
        self.display.require_image()
        current = self.state.image_id
        self.project.set_state(current, sv.DONE_STATE)
        nxt = sv.next_image_id(self.project, current)
        if nxt is None:
            self.display.refresh()
            self.display.say("all images are reviewed; export the project (see the quickstart notebook)")
            return None
        self.show_image(nxt)
        return nxt

    def undo(self) -> Any:
        return self._history(self.project.undo(), "undone")

    def redo(self) -> Any:
        return self._history(self.project.redo(), "redone")

    def _history(self, step: Any, verb: str) -> Any:
        self.state.session = None
        self.display.refresh()
        self.display.say(f"{verb}: {html.escape(str(step))}" if step else f"nothing to be {verb}")
        return step

    def prefetch_next(self) -> None:
        """Encode the next image in the background (called once this image is encoded)."""
        image_id = self.state.image_id
        if self.keeper is None or image_id is None:
            return
        nxt = sv.next_image_id(self.project, image_id)
        if nxt is None or nxt == image_id:
            return
        nrec = self.project.image(nxt)
        self.keeper.prefetch(nxt, lambda: load_image(nrec.path, nrec.window).rgb)
