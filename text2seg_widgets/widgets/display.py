"""Showing the store: redraw mask layers, the candidate list, progress and legend; messages.

:class:`Display` is the one part that turns store contents into what the browser sees for the
current image. Every action part calls :meth:`Display.refresh` after writing to the store and
:meth:`Display.say` to tell the annotator what happened.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets import storeview as sv
from text2seg_widgets.widgets.layers import MaskItem, MaskLayers, legend_html
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.state import AnnotatorState

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Display", "MAX_LISTED"]

#: the most masks the candidate list shows (the rest: pan or zoom the map to them)
MAX_LISTED = 500

log = logging.getLogger(__name__)


class Display:
    """Redraws the current image's masks and the panel from the store.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState`.
        panel: the side panel whose list, progress, legend and message it fills.
        layers: a callable returning the current :class:`MaskLayers` (the map may be replaced
            when a georeferenced image follows a plain one).
    """

    def __init__(self, project: "Project", state: AnnotatorState, panel: SidePanel, layers: Any) -> None:
        self.project = project
        self.state = state
        self.panel = panel
        self._layers = layers
        #: more redraws to run after each :meth:`refresh` (e.g. the image list)
        self.also: list[Any] = []
        #: called on every redraw, selection change or message: each action ends with one of
        #: these, so they mark the annotator's activity (the effort clock)
        self.on_activity: list[Any] = []
        #: the current image's MaskItems by stored row (reused while their row is unchanged)
        self._items: dict[Any, MaskItem] = {}

    @property
    def layers(self) -> MaskLayers:
        return self._layers()

    # -- reading -------------------------------------------------------------------------------
    def items(self) -> list[MaskItem]:
        """The current image's masks: candidates still proposed (and rejected), and annotations."""
        image_id = self.state.image_id
        return sv.mask_items(self.project, image_id, self._items) if image_id is not None else []

    def listed(self, items: list[MaskItem]) -> list[MaskItem]:
        """The masks the list shows: all of them up to :data:`MAX_LISTED`; beyond, the ones drawn on
        the map (in and around the view), best first, and the selection (a list of 10,000 labels
        re-sent after every accept would dominate the time of a click)."""
        if len(items) <= MAX_LISTED:
            return items
        drawn, sel = self.layers.drawn_keys, self.state.selection
        selected = [it for it in items if (it.kind, it.id) == sel]
        chosen = [it for it in items if it.key in drawn and (it.kind, it.id) != sel]
        return selected + chosen[:MAX_LISTED - len(selected)]

    def selected_item(self) -> MaskItem | None:
        sel = self.state.selection
        return None if sel is None else self.layers.items.get(f"{sel[0]}:{sel[1]}")

    def class_names(self) -> list[str]:
        return [n for n, _ in sv.class_list(self.project)]

    def check_class(self, class_name: str) -> None:
        names = self.class_names()
        if class_name not in names:
            raise InputError(f"unknown class {class_name!r}; choose one of {', '.join(names) or '(none)'}")

    def require_image(self) -> int:
        """The open image's id; :class:`InputError` when none is open."""
        if self.state.image_id is None:
            raise InputError("no image is open: add images with project.add_image(path), then refresh()")
        return self.state.image_id

    def require_selection(self) -> MaskItem:
        item = self.selected_item()
        if item is None:
            raise InputError("select a mask first: click it on the map or in the list")
        return item

    # -- drawing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw layers, list, progress and legend from the store."""
        st = self.state
        items = self.items()
        classes = sv.class_list(self.project)
        self.layers.update(items, dict(classes))
        if st.selection is not None and f"{st.selection[0]}:{st.selection[1]}" not in self.layers.items:
            st.select(None)
        self.layers.highlight(self.selected_item())
        names = [c for c, _ in classes]
        options = [(sv.item_label(it), (it.kind, it.id)) for it in self.listed(items)]
        with self.syncing():
            if list(self.panel.items.options) != options:  # ~500 labels: send only when changed
                self.panel.items.options = options
            if self.panel.items.value != st.selection:
                self.panel.items.value = st.selection
            if list(self.panel.class_picker.options) != names:
                self.panel.class_picker.options = names
            if list(self.panel.hidden.options) != names:
                self.panel.hidden.options = names
            if st.current_class in names:
                self.panel.class_picker.value = st.current_class
        self.panel.legend.value = legend_html(classes, st.current_class)
        self.panel.progress.value = sv.progress_html(self.project, st.image_id, items)
        for redraw in self.also:
            redraw()
        self._activity()

    def show_selection(self) -> None:
        self.layers.highlight(self.selected_item())
        with self.syncing():
            self.panel.items.value = self.state.selection
        self._activity()

    def _activity(self) -> None:
        for hook in self.on_activity:
            hook()

    def show_class(self) -> None:
        with self.syncing():
            if self.panel.class_picker.value != self.state.current_class:
                self.panel.class_picker.value = self.state.current_class
        self.panel.legend.value = legend_html(sv.class_list(self.project), self.state.current_class)

    def say(self, text: str, error: bool = False) -> None:
        """Show ``text`` (HTML, already escaped) in the message area; errors in red."""
        self.state.last_error = text if error else None
        color = "#b00020" if error else "#333"
        self.panel.message.value = (f"<div style='color:{color};font-size:12px;line-height:1.3;"
                                    f"white-space:normal;overflow-wrap:anywhere'>{text}</div>")
        self._activity()
        (log.warning if error else log.info)("%s", text)

    def syncing(self) -> "_Syncing":
        """A context in which widget changes made by the code are ignored by their observers."""
        return _Syncing(self.state)


class _Syncing:
    def __init__(self, state: AnnotatorState) -> None:
        self.state = state
        self.before = False

    def __enter__(self) -> None:
        self.before, self.state.syncing = self.state.syncing, True

    def __exit__(self, *exc: Any) -> None:
        self.state.syncing = self.before
